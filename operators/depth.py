"""Mesh from Render Depth Pass: the operator; the job itself is jobs/depth_pass.py."""

from __future__ import annotations

import bpy
from bpy.props import FloatProperty, IntProperty, StringProperty

from ..bridge import compat
from ..jobs.base import RunningJob
from ..jobs.depth_pass import DepthPassJob
from ..ml.options import MESH_RESOLUTION, PASS_CUT, DepthPassMeshOptions
from . import state
from .jobs import JobOperator, Result
from .settings import scene_has_camera


class RESTYLE_OT_mesh_from_depth_pass(JobOperator, bpy.types.Operator):
    """Render the active camera with its Depth pass (or read a multilayer EXR) and build the
    visible surfaces as a mesh, textured with the render"""

    bl_idname = "restyle.mesh_from_depth_pass"
    bl_label = "Mesh from Render Depth Pass"
    bl_options = {"REGISTER", "UNDO"}

    job_label = "Mesh from Depth Pass"
    failure_prefix = "No mesh was made"
    prefix_domain_errors = True

    filepath: StringProperty(  # type: ignore[valid-type]
        name="Multilayer EXR", description="Use this render instead of rendering now (Combined and Depth passes)",
        subtype="FILE_PATH", default="", options=compat.BLEND_RELATIVE_PATH,
    )
    # Limits from ml/options.py: the command line and the job check the same ones.
    max_side: IntProperty(  # type: ignore[valid-type]
        name="Resolution", description="Vertices along the longer side of the frame",
        default=int(MESH_RESOLUTION.default), min=int(MESH_RESOLUTION.min), max=int(MESH_RESOLUTION.max),
    )
    cut_threshold: FloatProperty(  # type: ignore[valid-type]
        name="Cut at Depth Jump", description="Relative depth difference at which faces are not bridged",
        default=PASS_CUT.default, min=PASS_CUT.min, max=PASS_CUT.max, subtype="FACTOR",
    )

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not state.job_running(cls) and scene_has_camera(cls, context)

    def start_job(self, context: bpy.types.Context) -> RunningJob:
        assert context.scene is not None  # poll() checked it
        options = DepthPassMeshOptions(exr=self.filepath, resolution=self.max_side, cut_threshold=self.cut_threshold)
        return DepthPassJob(context.scene, options)

    def finish_job(self, context: bpy.types.Context, job: RunningJob) -> Result:
        assert isinstance(job, DepthPassJob)
        self.report({"INFO"}, job.finish().summary())
        return {"FINISHED"}
