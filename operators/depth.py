"""Mesh from Render Depth Pass."""

from __future__ import annotations

import logging
from typing import Literal

import bpy
from bpy.props import FloatProperty, IntProperty, StringProperty

from ..bridge import compat, passes
from ..bridge.reconstruction import add_reconstruction, describe_error, emission_material, image_from_pixels
from ..ml.errors import RestyleError
from ..ml.reconstruct import depth_to_mesh
from .run import scene_has_camera

log = logging.getLogger(__name__)
Result = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]


class RESTYLE_OT_mesh_from_depth_pass(bpy.types.Operator):
    """Render the active camera with its Depth pass (or read a multilayer EXR) and build the
    visible surfaces as a mesh, textured with the render"""

    bl_idname = "restyle.mesh_from_depth_pass"
    bl_label = "Mesh from Render Depth Pass"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(  # type: ignore[valid-type]
        name="Multilayer EXR", description="Use this render instead of rendering now (Combined and Depth passes)",
        subtype="FILE_PATH", default="", options=compat.BLEND_RELATIVE_PATH,
    )
    max_side: IntProperty(  # type: ignore[valid-type]
        name="Resolution", description="Vertices along the longer side of the frame", default=512, min=2, max=8192,
    )
    cut_threshold: FloatProperty(  # type: ignore[valid-type]
        name="Cut at Depth Jump", description="Relative depth difference at which faces are not bridged",
        default=0.05, min=0.0, max=10.0, subtype="FACTOR",
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return scene_has_camera(cls, context)

    def execute(self, context: bpy.types.Context) -> Result:
        scene = context.scene
        assert scene is not None  # poll() checked it
        try:
            camera = passes.scene_camera(scene)
            if self.filepath:
                rendered = passes.read_multilayer_exr(bpy.path.abspath(self.filepath))
            else:
                rendered = passes.render_passes(scene)
            h, w = rendered.depth.shape
            intrinsics = passes.camera_intrinsics(scene, w, h)
            valid = rendered.depth < camera.data.clip_end
            if not valid.any():
                raise passes.PassError("the render shows nothing but background")
            grid = depth_to_mesh(rendered.depth, intrinsics, self.max_side, self.cut_threshold, valid,
                                 planar_depth=True)
            name = f"{camera.name} Depth Mesh"
            with compat.CreatedData() as created:  # all of it, or nothing if any step fails
                image = created.add(image_from_pixels(f"{name} Render", rendered.combined, is_float=True))
                material = created.add(emission_material(name, image))
                collection = created.add(bpy.data.collections.new(name))
                scene.collection.children.link(collection)
                add_reconstruction(name, grid, camera.matrix_world.copy(), material, collection, created)
                created.commit()
        except Exception as exc:  # an operator never raises: every failure is a report, nothing is left
            if not isinstance(exc, RestyleError | OSError):
                log.exception("Mesh from Depth Pass failed unexpectedly")
            self.report({"ERROR"}, f"No mesh was made: {describe_error(exc)}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Built {len(grid.vertices):,} vertices and {len(grid.faces):,} faces")
        return {"FINISHED"}
