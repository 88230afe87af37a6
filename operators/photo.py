"""Import Photo as Reconstructed Mesh."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Literal

import bpy
import numpy as np
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from mathutils import Euler, Matrix

from .. import preferences
from ..bridge import compat, images
from ..bridge.reconstruction import add_reconstruction, describe_error, emission_material
from ..ml.catalog import DEPTH_MODELS, StyleEntry
from ..ml.client import shared_client
from ..ml.custom import custom_depth_models, find_depth_model
from ..ml.errors import RestyleError
from ..ml.exif import orient, read_photo_info, stored_uv
from ..ml.reconstruct import Intrinsics, depth_from_disparity, depth_to_mesh
from .run import package_root

log = logging.getLogger(__name__)
Result = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]
PHOTO_EXTENSIONS = ".jpg;.jpeg;.png;.tif;.tiff;.webp;.bmp"
SENSOR_35MM = 36.0
_depth_items: list[tuple[str, str, str]] = []
DEPTH_MODEL_TIP = (
    "How the distance of each pixel is estimated. Auto: a downloaded depth model when one is installed "
    "(then your own, added with Add Custom Style from File), else the built-in fast one shipped with the extension. "
    + " ".join(f"{e.name}: {e.description.rstrip('.')}." for e in DEPTH_MODELS)
    + " Flat: no depth, the photo is placed on a plane facing its camera"
)


def user_depth_models(context: bpy.types.Context | None) -> list[StyleEntry]:
    """The depth models added from files; none when the model folder cannot be read."""
    try:
        return custom_depth_models(preferences.model_root(context or bpy.context, create=False))
    except (RestyleError, OSError, ValueError) as exc:  # an unreadable folder must not empty the menu
        log.warning("custom depth models could not be read: %s", exc)
        return []


def depth_model_items(_self: object, context: bpy.types.Context | None) -> list[tuple[str, str, str]]:
    items = [("AUTO", "Auto", "A downloaded depth model if one is installed, else the built-in fast one")]
    items += [(e.id, e.name, e.description) for e in DEPTH_MODELS]
    items += [(e.id, e.name, e.description) for e in user_depth_models(context)]
    items.append(("FLAT", "Flat", "No depth: the photo on a plane"))
    _depth_items[:] = items
    return _depth_items


def builtin_depth_available() -> bool:
    return (Path(__file__).resolve().parent.parent / "ml" / "weights" / "depth_fast.safetensors").exists()


def choose_depth_model(context: bpy.types.Context, choice: str) -> StyleEntry | None:
    store = preferences.model_store(context)
    if choice == "FLAT":
        return None
    downloaded = [e for e in DEPTH_MODELS if e.files]
    builtin = [e for e in DEPTH_MODELS if not e.files]
    # Auto: a downloaded model when one is installed, then the user's own, else the built-in one shipped inside.
    if choice == "AUTO":
        candidates = downloaded + user_depth_models(context) + builtin
    else:  # a custom model whose file is gone says where it was
        candidates = [find_depth_model(choice, preferences.model_root(context, create=False))]
    for entry in candidates:
        if store.is_installed(entry) and (entry.files or builtin_depth_available()):
            return entry
    if choice != "AUTO" and not candidates[0].files:
        raise RestyleError(f"'{candidates[0].name}' is missing from this installation of Neural Restyle: reinstall "
                           "the extension, or pick another depth model")
    if choice != "AUTO":
        raise RestyleError(f"'{candidates[0].name}' is not downloaded: download it under Depth Models in the "
                           "Restyle panel, or add its file with Add Custom Style from File")
    return None


class RESTYLE_OT_import_photo_mesh(bpy.types.Operator):
    """Estimate the depth of photos and build each as a textured mesh in front of a camera
    that matches it"""

    bl_idname = "restyle.import_photo_mesh"
    bl_label = "Photo as Reconstructed Mesh"
    bl_options = {"REGISTER", "UNDO", "PRESET"}

    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    directory: StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})  # type: ignore[valid-type]
    files: CollectionProperty(type=bpy.types.OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"})  # type: ignore[valid-type]
    filter_glob: StringProperty(default="*" + ";*".join(PHOTO_EXTENSIONS.split(";")), options={"HIDDEN"})  # type: ignore[valid-type]
    depth_model: EnumProperty(name="Depth Model", items=depth_model_items, description=DEPTH_MODEL_TIP)  # type: ignore[valid-type]
    near: FloatProperty(name="Near Distance", description="Distance of the nearest point from the camera",  # type: ignore[valid-type]
                        default=2.0, min=0.01, soft_max=100.0, unit="LENGTH")
    depth_range: FloatProperty(name="Depth Range", description="How far behind the nearest point the farthest lies",  # type: ignore[valid-type]
                               default=6.0, min=0.01, soft_max=1000.0, unit="LENGTH")
    max_side: IntProperty(name="Resolution", description="Vertices along the photo's longer side",  # type: ignore[valid-type]
                          default=512, min=2, max=8192)
    cut_threshold: FloatProperty(name="Cut at Depth Jump", default=0.08, min=0.0, max=10.0,  # type: ignore[valid-type]
                                 description="Relative depth difference at which faces are not bridged")
    focal_35mm: FloatProperty(name="Focal Length (35 mm)", default=35.0, min=1.0, max=5000.0,  # type: ignore[valid-type]
                              description="Used when the photo does not say its focal length (EXIF)")
    simplify: BoolProperty(name="Simplify Flat Regions", default=False,  # type: ignore[valid-type]
                           description="Add a planar Decimate modifier that merges nearly flat faces")

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        if self.files and self.directory:  # dropped onto the viewport
            return self.execute(context)
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def _paths(self) -> list[Path]:
        if self.files and self.directory:
            return [Path(self.directory) / f.name for f in self.files if f.name]
        return [Path(bpy.path.abspath(self.filepath))] if self.filepath else []

    def execute(self, context: bpy.types.Context) -> Result:
        paths = self._paths()
        missing = [str(p) for p in paths if not p.is_file()]
        if not paths or missing:
            self.report({"ERROR"}, f"No such photo: {', '.join(missing) or 'none given'}")
            return {"CANCELLED"}
        try:
            # Everything made is recorded in one place and removed unless every photo is built.
            with compat.CreatedData() as created:
                entry = choose_depth_model(context, self.depth_model)
                photos = [self._load(path, created) for path in paths]
                depths = self._estimate(context, entry, photos)
                cameras = [self._build(context, index, photo, depth, entry, created)
                           for index, (photo, depth) in enumerate(zip(photos, depths, strict=True))]
                # The scene is changed only once every photo is built, so a failure leaves it as it was.
                h, w = photos[0]["displayed"].shape[:2]
                scene = context.scene
                scene.camera = cameras[0]
                scene.render.resolution_x, scene.render.resolution_y = w, h
                scene.render.resolution_percentage = 100
                scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
                created.commit()
        except Exception as exc:  # an operator never raises: every failure is a report, nothing is left
            if not isinstance(exc, RestyleError | OSError):
                log.exception("Import Photo failed unexpectedly")
            self.report({"ERROR"}, f"Nothing was imported: {describe_error(exc)}")
            return {"CANCELLED"}
        for photo in photos:  # EXIF values that were ignored: the import went on with the defaults
            for warning in photo["info"].warnings:
                self.report({"WARNING"}, f"{photo['path'].name}: {warning}")
        if entry is None and self.depth_model == "FLAT":
            self.report({"INFO"}, f"Placed {len(photos)} photo(s) on flat planes")
        elif entry is None:
            self.report({"WARNING"}, "No depth model is available (the built-in one is missing from this "
                                     "installation), so the photos were placed on flat planes. For relief, download "
                                     "Depth Anything V2 under Depth Models in the Restyle panel, or add a Depth "
                                     "Anything V2 checkpoint with Add Custom Style from File")
        else:
            self.report({"INFO"}, f"Reconstructed {len(photos)} photo(s) with {entry.name}")
        return {"FINISHED"}

    def _load(self, path: Path, created: compat.CreatedData) -> dict:
        try:
            image = created.add(bpy.data.images.load(str(path), check_existing=False))
        except RuntimeError as exc:  # Blender's way of saying it cannot decode the file
            raise RestyleError(f"{path.name} cannot be read as an image ({str(exc).strip()})") from exc
        info = read_photo_info(path)
        try:
            pixels = images.read_sources(image)[0].pixels
        except images.ImageReadError as exc:
            raise RestyleError(f"{path.name}: {exc}") from exc
        rgb = pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
        return {"path": path, "image": image, "info": info, "displayed": orient(rgb, info.orientation)}

    def _estimate(self, context: bpy.types.Context, entry: StyleEntry | None, photos: list[dict]) -> list:
        if entry is None:
            return [None] * len(photos)
        prefs = preferences.get(context)
        client = shared_client(package_root(), threads=prefs.worker_threads if prefs else 0)
        model_file = str(preferences.model_store(context).paths(entry).get("model", ""))
        job = client.submit_depth([(str(i), p["displayed"]) for i, p in enumerate(photos)], model_file, entry.max_depth)
        results = job.wait()
        depths = []
        for i, photo in enumerate(photos):
            result = results.get(str(i))
            if result is None or result.array is None:  # never a silent flat plane for a failed estimate
                reason = (result.error if result is not None else None) or "no result"
                raise RestyleError(f"the depth of {photo['path'].name} could not be estimated: {reason}")
            depths.append(result.array)
        return depths

    def _build(self, context: bpy.types.Context, index: int, photo: dict, disparity: np.ndarray | None,
               entry: StyleEntry | None, created: compat.CreatedData) -> bpy.types.Object:
        h, w = photo["displayed"].shape[:2]
        info = photo["info"]
        focal = info.equivalent_35mm() or self.focal_35mm
        camera_model = Intrinsics.from_lens(w, h, focal, SENSOR_35MM, "AUTO")
        if disparity is None:
            depth = np.full((h, w), self.near + self.depth_range / 2, np.float32)
        elif entry is not None and entry.max_depth is not None:
            depth = np.maximum(disparity, 1e-3)  # metric models give metres
        else:
            depth = depth_from_disparity(disparity, self.near, self.depth_range)
        grid = depth_to_mesh(depth, camera_model, self.max_side if disparity is not None else 2, self.cut_threshold)
        su, sv = stored_uv(grid.uvs[:, 0], grid.uvs[:, 1], info.orientation)
        grid.uvs = np.stack([su, sv], axis=1).astype(np.float32)

        stem = photo["path"].stem
        collection = created.add(bpy.data.collections.new(stem))
        context.scene.collection.children.link(collection)
        camera_data = created.add(bpy.data.cameras.new(f"{stem} Camera"))
        camera_data.lens, camera_data.sensor_width, camera_data.sensor_fit = focal, SENSOR_35MM, "AUTO"
        camera = created.add(bpy.data.objects.new(f"{stem} Camera", camera_data))
        # Cameras look down their -Z: turned a quarter about X, each photo's rig looks along +Y.
        placement = Matrix.LocRotScale((index * (self.depth_range + self.near), 0.0, 0.0),
                                       Euler((math.pi / 2, 0, 0)), None)
        camera.matrix_world = placement
        collection.objects.link(camera)
        material = created.add(emission_material(stem, photo["image"]))
        obj = add_reconstruction(stem, grid, placement, material, collection, created)
        if self.simplify:
            modifier = obj.modifiers.new("Simplify", "DECIMATE")
            modifier.decimate_type = "DISSOLVE"
            modifier.angle_limit = math.radians(1.0)
        return camera


class RESTYLE_FH_photo_mesh(bpy.types.FileHandler):
    bl_idname = "RESTYLE_FH_photo_mesh"
    bl_label = "Photo as Reconstructed Mesh"
    bl_import_operator = "restyle.import_photo_mesh"
    bl_file_extensions = PHOTO_EXTENSIONS

    @classmethod
    def poll_drop(cls, context: bpy.types.Context | None) -> bool:
        return context.area is not None and context.area.type == "VIEW_3D"


def menu_import(self: bpy.types.Menu, context: bpy.types.Context) -> None:
    self.layout.operator(RESTYLE_OT_import_photo_mesh.bl_idname, text="Photo as Reconstructed Mesh")
