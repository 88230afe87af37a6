"""Import Photo as Reconstructed Mesh: the operator and its menu entries; the job itself is jobs/photo.py."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from .. import preferences
from ..jobs import photo as photo_job
from ..jobs.base import RunningJob, services_of
from ..jobs.photo import (
    PHOTO_EXTENSIONS,
    builtin_depth_available,  # noqa: F401  (panels/depth_models.py reads it here)
)
from ..ml.errors import RestyleError
from ..ml.models.catalog import DEPTH_MODELS, ModelEntry
from ..ml.options import (
    DEPTH_RANGE,
    FOCAL_35MM,
    MESH_RESOLUTION,
    NEAR,
    PHOTO_CUT,
    DepthSource,
    ImportPhotoOptions,
    description,
    label,
)
from ..properties import custom_enum_number
from . import state
from .jobs import JobOperator, Result

_depth_items: list[tuple[str, str, str, str, int]] = []
DEPTH_MODEL_TIP = (
    "How the distance of each pixel is estimated. Auto: a downloaded depth model when one is installed "
    "(then your own, added with Add Custom Style from File), else the built-in fast one shipped with the extension. "
    + " ".join(f"{e.name}: {e.description.rstrip('.')}." for e in DEPTH_MODELS)
    + " Flat: no depth, the photo is placed on a plane facing its camera"
)


def user_depth_models(context: bpy.types.Context | None) -> list[ModelEntry]:
    """The depth models added from files; none when the model folder cannot be read."""
    return photo_job.user_depth_models(preferences.model_root(context or bpy.context, create=False))


def depth_model_items(_self: object, context: bpy.types.Context | None) -> list[tuple[str, str, str, str, int]]:
    """Auto, the catalog's depth models, the user's own, Flat. Each has a fixed number (the
    value Blender saves for remembered settings and presets): numbered by position, Flat
    would turn into a custom model the moment one is added."""
    auto, flat = DepthSource.AUTO, DepthSource.FLAT
    items = [(auto.value, label(auto), description(auto), "NONE", 0)]
    items += [(e.id, e.name, e.description, "NONE", 10 + i) for i, e in enumerate(DEPTH_MODELS)]
    items += [(e.id, e.name, e.description, "NONE", custom_enum_number(e.id)) for e in user_depth_models(context)]
    items.append((flat.value, label(flat), description(flat), "NONE", 1))
    _depth_items[:] = items
    return _depth_items


class RESTYLE_OT_import_photo_mesh(JobOperator, bpy.types.Operator):
    """Estimate the depth of photos and build each as a textured mesh in front of a camera
    that matches it"""

    bl_idname = "restyle.import_photo_mesh"
    bl_label = "Photo as Reconstructed Mesh"
    bl_options = {"REGISTER", "UNDO", "PRESET"}

    job_label = "Import Photo"
    failure_prefix = "Nothing was imported"
    prefix_domain_errors = True

    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})  # type: ignore[valid-type]
    directory: StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})  # type: ignore[valid-type]
    files: CollectionProperty(type=bpy.types.OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"})  # type: ignore[valid-type]
    filter_glob: StringProperty(default="*" + ";*".join(PHOTO_EXTENSIONS.split(";")), options={"HIDDEN"})  # type: ignore[valid-type]
    depth_model: EnumProperty(name="Depth Model", items=depth_model_items, description=DEPTH_MODEL_TIP)  # type: ignore[valid-type]
    # Limits from ml/options.py: the command line and the job check the same ones.
    near: FloatProperty(name="Near Distance", description="Distance of the nearest point from the camera",  # type: ignore[valid-type]
                        default=NEAR.default, min=NEAR.min, max=NEAR.max, soft_max=NEAR.soft_max, unit="LENGTH")
    depth_range: FloatProperty(name="Depth Range", description="How far behind the nearest point the farthest lies",  # type: ignore[valid-type]
                               default=DEPTH_RANGE.default, min=DEPTH_RANGE.min, max=DEPTH_RANGE.max,
                               soft_max=DEPTH_RANGE.soft_max, unit="LENGTH")
    max_side: IntProperty(name="Resolution", description="Vertices along the photo's longer side",  # type: ignore[valid-type]
                          default=int(MESH_RESOLUTION.default), min=int(MESH_RESOLUTION.min),
                          max=int(MESH_RESOLUTION.max))
    cut_threshold: FloatProperty(name="Cut at Depth Jump", default=PHOTO_CUT.default, min=PHOTO_CUT.min,  # type: ignore[valid-type]
                                 max=PHOTO_CUT.max,
                                 description="Relative depth difference at which faces are not bridged")
    focal_35mm: FloatProperty(name="Focal Length (35 mm)", default=FOCAL_35MM.default, min=FOCAL_35MM.min,  # type: ignore[valid-type]
                              max=FOCAL_35MM.max,
                              description="Used when the photo does not say its focal length (EXIF)")
    simplify: BoolProperty(name="Simplify Flat Regions", default=False,  # type: ignore[valid-type]
                           description="Add a planar Decimate modifier that merges nearly flat faces")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not state.job_running(cls) and context.scene is not None

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        if self.files and self.directory:  # dropped onto the viewport
            return super().invoke(context, event)
        self.browsing = True
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> Result:
        if getattr(self, "browsing", False):  # back from the file browser: run with progress and Esc
            self.browsing = False
            return self.run_modal(context)
        return super().execute(context)

    def _paths(self) -> list[Path]:
        if self.files and self.directory:
            return [Path(self.directory) / f.name for f in self.files if f.name]
        return [Path(bpy.path.abspath(self.filepath))] if self.filepath else []

    def start_job(self, context: bpy.types.Context) -> RunningJob:
        options = ImportPhotoOptions(depth_model=self.depth_model, near=self.near, depth_range=self.depth_range,
                                     resolution=self.max_side, cut_threshold=self.cut_threshold,
                                     focal_35mm=self.focal_35mm, simplify=self.simplify)
        assert context.scene is not None  # poll() checked it
        return photo_job.PhotoJob(context.scene, self._paths(), options, services_of(context))

    def finish_job(self, context: bpy.types.Context, job: RunningJob) -> Result:
        assert isinstance(job, photo_job.PhotoJob)
        outcome = job.finish()
        for warning in outcome.warnings:  # EXIF values that were ignored: the import went on with the defaults
            self.report({"WARNING"}, warning)
        level, text = outcome.summary()
        self.report({"WARNING"} if level == "WARNING" else {"INFO"}, text)
        return {"FINISHED"}


class RESTYLE_OT_look_through_photo(bpy.types.Operator):
    """Make the selected photo's camera the scene camera, with the resolution of its photo, and
    look through it (a scene has one resolution: each photo camera reproduces its photo only
    with its own)"""

    bl_idname = "restyle.look_through_photo"
    bl_label = "Look Through Photo Camera"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if context.scene is None or photo_job.photo_camera_of(context.active_object) is None:
            cls.poll_message_set("Select the mesh or the camera of an imported photo")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> Result:
        camera = photo_job.photo_camera_of(context.active_object)
        assert camera is not None and context.scene is not None  # poll() checked both
        try:  # the size property can be edited by hand
            width, height = photo_job.use_photo_camera(context.scene, camera)
        except RestyleError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        space = context.space_data
        if isinstance(space, bpy.types.SpaceView3D) and space.region_3d is not None:
            space.region_3d.view_perspective = "CAMERA"
        self.report({"INFO"}, f"Looking through {camera.name} at {width} x {height}")
        return {"FINISHED"}


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
