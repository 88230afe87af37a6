"""Import Photo as Reconstructed Mesh: read photos, estimate their depth in the worker, build
each as a textured mesh in front of a camera that matches it.

While the worker estimates depth, one photo at a time, nothing of the photos is in the file yet
(their pixels are read from temporary images, removed at once); the meshes, images, materials, cameras and
collections are all made in finish(), recorded in one CreatedData and removed unless every
photo is built. The scene is held by its name.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np
from mathutils import Euler, Matrix

from ..bridge import compat, images
from ..bridge.reconstruction import add_reconstruction, emission_material
from ..ml.depth.exif import PhotoInfo, orient, read_photo_info, stored_uv
from ..ml.depth.reconstruct import GridMesh, Intrinsics, depth_from_disparity, depth_to_mesh
from ..ml.errors import RestyleError
from ..ml.models import registry
from ..ml.models.catalog import DEPTH_MODELS, ModelEntry
from ..ml.models.custom import custom_depth_models
from ..ml.models.registry import ModelDescriptor
from ..ml.options import DEPTH_RANGE, NEAR, DepthSource, ImportPhotoOptions
from ..ml.runtime.client import ItemResult
from ..ml.runtime.client import Job as WorkerJob
from .base import Services, checked, run_to_end, stopping, wait_by_polling

log = logging.getLogger(__name__)
# On each photo camera: the photo's upright size, which the scene resolution must have for the
# camera to reproduce the photo (one scene, one resolution: see use_photo_camera).
PHOTO_SIZE = "restyle_photo_size"
PHOTO_EXTENSIONS = ".jpg;.jpeg;.png;.tif;.tiff;.webp;.bmp"  # what the file browser, drops and folders take


def photo_camera_of(obj: bpy.types.Object | None) -> bpy.types.Object | None:
    """The photo camera of an imported photo's rig: the object itself, or the camera in the
    collection of its mesh; None for anything else."""
    if obj is None:
        return None
    if obj.type == "CAMERA" and obj.get(PHOTO_SIZE) is not None:
        return obj
    for collection in obj.users_collection:
        for other in collection.objects:
            if other.type == "CAMERA" and other.get(PHOTO_SIZE) is not None:
                return other
    return None


def use_photo_camera(scene: bpy.types.Scene, camera: bpy.types.Object) -> tuple[int, int]:
    """Make ``camera`` the scene's camera with its photo's resolution; returns (width, height)."""
    size = camera.get(PHOTO_SIZE)
    try:
        width, height = (int(v) for v in size)
        if width < 1 or height < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise RestyleError(f"'{camera.name}' has no valid photo size ('{PHOTO_SIZE}'): import the photo "
                           "again") from None
    scene.camera = camera
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    return width, height


def builtin_depth_available() -> bool:
    return (Path(__file__).resolve().parent.parent / "ml" / "weights" / "depth_fast.safetensors").exists()


def user_depth_models(model_root: Path) -> list[ModelEntry]:
    """The depth models added from files; none when the model folder cannot be read."""
    try:
        return custom_depth_models(model_root)
    except (RestyleError, OSError, ValueError) as exc:  # an unreadable folder must not empty the menu
        log.warning("custom depth models could not be read: %s", exc)
        return []


def choose_depth_model(choice: str, services: Services) -> ModelDescriptor | None:
    """The depth model for a choice of the Depth Model menu (None: flat planes)."""
    store = services.store
    if choice == DepthSource.FLAT:
        return None
    downloaded = [e for e in DEPTH_MODELS if e.files]
    builtin = [e for e in DEPTH_MODELS if not e.files]
    # Auto: a downloaded model when one is installed, then the user's own, else the built-in one shipped inside.
    if choice == DepthSource.AUTO:
        candidates = [registry.descriptor_of(e) for e in downloaded + user_depth_models(services.model_root) + builtin]
    else:  # a custom model whose file is gone says where it was
        candidates = [registry.depth_model(choice, services.model_root)]
    for model in candidates:
        if store.is_installed(model.entry) and (model.needs_files or builtin_depth_available()):
            return model
    if choice != DepthSource.AUTO and not candidates[0].needs_files:
        raise RestyleError(f"'{candidates[0].name}' is missing from this installation of Neural Restyle: reinstall "
                           "the extension, or pick another depth model")
    if choice != DepthSource.AUTO:
        raise RestyleError(f"'{candidates[0].name}' is not downloaded: download it under Depth Models in the "
                           "Restyle panel, or add its file with Add Custom Style from File (from the command line: "
                           f"restyle models download {candidates[0].id}, or restyle models install FILE)")
    return None


@dataclass
class Photo:
    path: Path
    info: PhotoInfo
    size: tuple[int, int]  # upright (height, width)
    displayed: np.ndarray | None  # upright RGB, top-down; None once handed over (or never needed: Flat)


@dataclass
class PhotoOutcome:
    collections: list[str]
    model: str | None  # the depth model's name; None: flat planes
    flat_chosen: bool = False  # flat planes because Flat was asked for (not for want of a model)
    warnings: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # why each photo left out was left out

    def summary(self) -> tuple[str, str]:
        """('INFO' or 'WARNING', one line) about what was built."""
        level, text = self._built()
        if self.failed:
            level = "WARNING"
            text += f"; {len(self.failed)} photo(s) could not be imported: " + "; ".join(self.failed)
        return level, text

    def _built(self) -> tuple[str, str]:
        count = len(self.collections)
        if self.model is None and self.flat_chosen:
            return "INFO", f"Placed {count} photo(s) on flat planes"
        if self.model is None:
            return "WARNING", ("No depth model is available (the built-in one is missing from this installation), so "
                               "the photos were placed on flat planes. For relief, download Depth Anything V2 under "
                               "Depth Models in the Restyle panel, or add a Depth Anything V2 checkpoint with Add "
                               "Custom Style from File")
        return "INFO", f"Reconstructed {count} photo(s) with {self.model}"


def read_photo(path: Path, pixels: bool = True) -> Photo:
    """The photo's size and, when ``pixels``, its pixels (a float copy of the whole photo, only
    for a depth model) through Blender's readers, EXIF orientation applied; no datablock is left."""
    try:
        image = bpy.data.images.load(str(path), check_existing=False)
    except RuntimeError as exc:  # Blender's way of saying it cannot decode the file
        raise RestyleError(f"{path.name} cannot be read as an image ({str(exc).strip()})") from exc
    try:
        source = images.read_sources(image)[0] if pixels else None
        width, height = images.image_size(image)
        if width < 1 or height < 1:
            raise RestyleError(f"{path.name} cannot be read as an image (it has no pixels)")
        if min(width, height) < MIN_PHOTO_SIDE:  # its camera frame could not take the photo's shape
            raise RestyleError(f"{path.name} is {width} x {height} px: too small to import (a camera frame in "
                               f"Blender is at least {MIN_PHOTO_SIDE} px on each side)")
    except images.ImageReadError as exc:
        raise RestyleError(f"{path.name}: {exc}") from exc
    finally:
        bpy.data.images.remove(image)
    info = read_photo_info(path)
    size = (width, height) if info.orientation >= 5 else (height, width)  # 5-8 turn the photo a quarter
    if source is None:
        return Photo(path, info, size, None)
    rgb = source.pixels[..., :3] if source.pixels.shape[2] >= 3 else np.repeat(source.pixels[..., :1], 3, axis=2)
    return Photo(path, info, size, orient(rgb, info.orientation))


MIN_PHOTO_SIDE = 4  # Blender's smallest render resolution


class PhotoJob:
    """A steppable Import Photo (see jobs.base.Job).

    With a depth model the photos go to the worker one at a time: each poll() reads the next photo
    once the last one's depth is back, so Blender never holds more than one photo's pixels (nor
    the worker's temporary folder more than one photo's), and reading a folder of big photos
    never freezes the interface before the first estimate. A photo that cannot be read, or whose
    depth cannot be estimated, is left out and named in the outcome; the others are imported.
    Only when no photo is left does the job fail, and then nothing is made. A failure of the
    worker or of the model itself (not of one photo) fails the import."""

    def __init__(self, scene: bpy.types.Scene, paths: list[Path], options: ImportPhotoOptions,
                 services: Services) -> None:
        if not paths:
            raise RestyleError("No such photo: none given")
        self.scene_name = scene.name
        self.options = options = checked(options)
        self.model = choose_depth_model(options.depth_model, services)
        # A missing path or a folder among the photos is left out and named, as an unreadable photo is.
        self.failed: list[str] = [f"{p.name or p}: {'a folder, not a photo' if p.is_dir() else 'no such file'}"
                                  for p in paths if not p.is_file()]
        self.paths = [p for p in paths if p.is_file()]
        if not self.paths:
            raise RestyleError(f"No such photo: {', '.join(str(p) for p in paths)}")
        self.photos: list[Photo] = []  # read (and, with a model, estimated), in the order given
        self.depths: list[np.ndarray | None] = []
        self.worker_job: WorkerJob | None = None
        self.current: tuple[int, Photo] | None = None  # the photo (and its index) whose depth is being estimated
        self.next = 0  # the index in paths of the next photo to read
        self.cancelled = False
        if self.model is None:  # flat planes: only the sizes, no worker
            for path in self.paths:
                self._read(path, pixels=False)
            self.next = len(self.paths)
            self._check_left()
            self.done = True
            return
        self.done = False
        self.client = services.client()
        self.model_file = str(services.store.paths(self.model.entry).get("model", ""))
        self._submit_next()

    def _read(self, path: Path, pixels: bool) -> Photo | None:
        try:
            photo = read_photo(path, pixels=pixels)
        except RestyleError as exc:
            self.failed.append(str(exc))
            return None
        if not pixels:
            self.photos.append(photo)
            self.depths.append(None)
        return photo

    def _submit_next(self) -> None:
        """Read photos until one can be read and hand it to the worker; with none left, the
        estimates are done (or the job fails when no photo at all could be used)."""
        assert self.model is not None
        while self.next < len(self.paths):
            index, self.next = self.next, self.next + 1
            photo = self._read(self.paths[index], pixels=True)
            if photo is None:
                continue
            assert photo.displayed is not None
            self.worker_job = self.client.submit_depth([(str(index), photo.displayed)], self.model_file,
                                                       self.model.max_depth, device=self.options.device)
            photo.displayed = None  # the worker has its own copy now
            self.current = (index, photo)
            return
        self._check_left()
        self.done = True

    # -- Job ----------------------------------------------------------------------------------
    @property
    def fraction(self) -> float:
        """Photos handled so far: the worker sends no progress within one depth estimate. Until
        the last photo's depth is back this stays below 1 (never "100%" while the job runs)."""
        if self.done or self.model is None:
            return float(self.done)
        handled = len(self.photos) + len(self.failed)
        return 0.95 * handled / len(self.paths)

    @property
    def text(self) -> str:
        if self.done:
            return "building the meshes"
        if len(self.paths) == 1:
            return "estimating depth"
        return f"estimating depth ({min(self.next, len(self.paths))} of {len(self.paths)})"

    def _check_left(self) -> None:
        """Fail (nothing is made yet) when no photo is left: one reason alone, or every photo's."""
        if self.photos:
            return
        if len(self.failed) == 1:
            raise RestyleError(self.failed[0])
        raise RestyleError(f"none of the {len(self.failed)} photos could be imported: " + "; ".join(self.failed))

    def _take(self, results: dict[str, ItemResult]) -> None:
        """The current photo's depth (or why it has none), then the next photo."""
        assert self.current is not None
        (index, photo), self.current, self.worker_job = self.current, None, None
        result = results.get(str(index))
        if result is None or result.array is None:  # never a silent flat plane for a failed estimate
            reason = (result.error if result is not None else None) or "no result"
            self.failed.append(f"the depth of {photo.path.name} could not be estimated: {reason}")
        else:
            self.photos.append(photo)
            self.depths.append(result.array)
        self._submit_next()

    def poll(self) -> bool:
        if stopping(self.cancelled, self.worker_job):
            return False
        if not self.done and self.worker_job is not None and self.worker_job.poll():
            self._take(self.worker_job.results)
        return self.done

    def wait(self) -> None:
        wait_by_polling(self)

    def cancel(self) -> None:
        self.cancelled = True
        if self.worker_job is not None and not self.done:
            self.worker_job.cancel()

    def close(self) -> None:
        """Nothing is in the file before finish(), which undoes its own work: only the worker is let go."""
        worker_job, self.worker_job = self.worker_job, None
        if worker_job is not None:
            worker_job.close()

    def finish(self) -> PhotoOutcome:
        """Build every photo left (all of them or nothing), then point the scene's camera at the first."""
        scene = bpy.data.scenes.get(self.scene_name)
        if scene is None:
            raise RestyleError(f"the scene '{self.scene_name}' was deleted while importing")
        # Rigs of earlier imports stay where they are: this import's start beside the last of them.
        earlier = [o.matrix_world.translation.x for o in scene.objects if photo_camera_of(o) is o]
        start = max(earlier) + self._spacing if earlier else 0.0
        # The meshes first (numpy only): a photo whose depth gives no mesh is left out and named.
        grids: list[tuple[Photo, GridMesh]] = []
        for photo, depth in zip(self.photos, self.depths, strict=True):
            try:
                grids.append((photo, self._grid(photo, depth)))
            except RestyleError as exc:
                self.failed.append(f"{photo.path.name}: {exc}")
        self.photos = [photo for photo, _ in grids]
        self._check_left()
        # Everything made is recorded in one place and removed unless every photo left is built.
        with compat.CreatedData() as created:
            rigs = [self._build(scene, index, start, photo, grid, created)
                    for index, (photo, grid) in enumerate(grids)]
            # The scene is changed only once every photo is built, so a failure leaves it as it was.
            use_photo_camera(scene, rigs[0][0])
            created.commit()
        warnings = [f"{photo.path.name}: {warning}" for photo in self.photos for warning in photo.info.warnings]
        warnings.extend(self._model_notices())
        shapes = {_aspect(photo) for photo in self.photos}
        if len(shapes) > 1:
            warnings.append(f"The photos differ in shape; the scene's resolution fits {self.photos[0].path.name}. "
                            "To look through another photo's camera, select its mesh or camera and click Look "
                            "Through Photo Camera in the Restyle panel")
        return PhotoOutcome([collection for _, collection in rigs],
                            self.model.name if self.model is not None else None,
                            self.options.depth_model == DepthSource.FLAT, warnings, list(self.failed))

    def _model_notices(self) -> list[str]:
        """What the user may not expect of the depth model used: a license Auto chose for them, and
        settings a metric model does not use."""
        model, options = self.model, self.options
        notices: list[str] = []
        if model is None:
            return notices
        if options.depth_model == DepthSource.AUTO and model.entry.non_commercial:
            notices.append(f"Auto used {model.name}, whose license is "
                           f"{model.entry.license}. For commercial work, pick another model under Depth Model")
        if model.max_depth is not None and (options.near != NEAR.default or options.depth_range != DEPTH_RANGE.default):
            notices.append(f"{model.name} gives depth in metres, so Near and Depth Range were not used")
        return notices

    @property
    def _spacing(self) -> float:
        """Distance between rigs side by side: the depth a mesh reaches (a metric model's: its range),
        which clears the next rig for lenses from about 35 mm (wider ones may overlap at the far end)."""
        if self.model is not None and self.model.max_depth is not None:
            return self.model.max_depth
        return self.options.depth_range + self.options.near

    def _grid(self, photo: Photo, disparity: np.ndarray | None) -> GridMesh:
        """One photo's mesh in its camera's space, UVs on the stored photo (RestyleError: none can be made)."""
        options, model = self.options, self.model
        h, w = photo.size
        info = photo.info
        focal, sensor = info.lens(w, h, options.focal_35mm)
        camera_model = Intrinsics.from_lens(w, h, focal, sensor, "AUTO")
        if disparity is None:
            depth = np.full((h, w), options.near + options.depth_range / 2, np.float32)
        elif model is not None and model.max_depth is not None:
            depth = np.maximum(disparity, 1e-3)  # metric models give metres
        else:
            depth = depth_from_disparity(disparity, options.near, options.depth_range)
        grid = depth_to_mesh(depth, camera_model, options.resolution if disparity is not None else 2,
                             options.cut_threshold)
        su, sv = stored_uv(grid.uvs[:, 0], grid.uvs[:, 1], info.orientation)
        grid.uvs = np.stack([su, sv], axis=1).astype(np.float32)
        if len(grid.faces) == 0:  # a strip a pixel or two high at this resolution, or every face cut
            raise RestyleError("its depth gives no surface to build a mesh from (too thin a photo for the "
                               "Resolution, or every face cut at a depth jump: raise Cut at Depth Jump)")
        if not np.isfinite(grid.vertices).all():
            raise RestyleError("its depth gives vertices at infinite or undefined (NaN) positions")
        return grid

    def _build(self, scene: bpy.types.Scene, index: int, start: float, photo: Photo, grid: GridMesh,
               created: compat.CreatedData) -> tuple[bpy.types.Object, str]:
        """One photo's rig; returns its camera and its collection's name (a taken name gets a suffix)."""
        options = self.options
        h, w = photo.size
        focal, sensor = photo.info.lens(w, h, options.focal_35mm)
        try:
            image = created.add(bpy.data.images.load(str(photo.path), check_existing=False))
        except RuntimeError as exc:  # the file changed or went away since it was read
            raise RestyleError(f"{photo.path.name} cannot be read as an image ({str(exc).strip()})") from exc
        stem = photo.path.stem
        collection = created.add(bpy.data.collections.new(stem))
        scene.collection.children.link(collection)
        camera_data = created.add(bpy.data.cameras.new(f"{stem} Camera"))
        camera_data.lens, camera_data.sensor_width, camera_data.sensor_fit = focal, sensor, "AUTO"
        camera = created.add(bpy.data.objects.new(f"{stem} Camera", camera_data))
        camera[PHOTO_SIZE] = [w, h]
        # Cameras look down their -Z: turned a quarter about X, each photo's rig looks along +Y.
        placement = Matrix.LocRotScale((start + index * self._spacing, 0.0, 0.0), Euler((math.pi / 2, 0, 0)), None)
        camera.matrix_world = placement
        collection.objects.link(camera)
        material = created.add(emission_material(stem, image))
        obj = add_reconstruction(stem, grid, placement, material, collection, created)
        if options.simplify:
            modifier = obj.modifiers.new("Simplify", "DECIMATE")
            assert isinstance(modifier, bpy.types.DecimateModifier)
            modifier.decimate_type = "DISSOLVE"
            modifier.angle_limit = math.radians(1.0)
        return camera, collection.name


def _aspect(photo: Photo) -> float:
    h, w = photo.size
    return round(w / h, 3)


def import_photos(scene: bpy.types.Scene, paths: list[Path], options: ImportPhotoOptions,
                  services: Services) -> PhotoOutcome:
    """Blocking Import Photo (command line, scripts): the same steps the panel's operator drives."""
    return run_to_end(PhotoJob(scene, paths, options, services))
