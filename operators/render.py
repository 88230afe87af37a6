"""Stylize Render: the operator; the job itself is jobs/render.py."""

from __future__ import annotations

import bpy
from bpy.props import FloatProperty, IntProperty, StringProperty

from ..bridge import compat
from ..jobs.base import RunningJob, services_of
from ..jobs.render import RenderJob, RenderOutcome
from ..ml.options import DEPTH_FALLOFF, OUTLINES, TEMPORAL, StylizeRenderOptions
from ..properties import restyle_options
from . import state
from .jobs import JobOperator, Result
from .settings import scene_has_camera


class RESTYLE_OT_stylize_render(JobOperator, bpy.types.Operator):
    """Render the active camera and restyle the render with the chosen style (a new image;
    files too when an output folder is set)"""

    bl_idname = "restyle.stylize_render"
    bl_label = "Stylize Render"
    bl_options = {"REGISTER", "UNDO"}

    job_label = "Stylize Render"
    failure_prefix = "Stylize Render failed"
    prefix_domain_errors = True

    # No hard limits on the frames: a script's -3 is refused by the job with a message, not clamped to 0 ("current").
    frame_start: IntProperty(name="Start Frame", default=0, description="0: the current frame")  # type: ignore[valid-type]
    frame_end: IntProperty(name="End Frame", default=0, description="0: the start frame; never before it")  # type: ignore[valid-type]
    output_dir: StringProperty(name="Output Folder", subtype="DIR_PATH", default="",  # type: ignore[valid-type]
                               options=compat.BLEND_RELATIVE_PATH)
    # Limits from ml/options.py: the command line and the job check the same ones.
    outlines: FloatProperty(name="Outlines", default=OUTLINES.default, min=OUTLINES.min, max=OUTLINES.max,  # type: ignore[valid-type]
                            subtype="FACTOR", description="Ink lines where depth jumps or normals turn sharply")
    depth_falloff: FloatProperty(name="Depth Falloff", default=DEPTH_FALLOFF.default, min=DEPTH_FALLOFF.min,  # type: ignore[valid-type]
                                 max=DEPTH_FALLOFF.max, subtype="FACTOR", description="Restyle distant surfaces less")
    temporal: FloatProperty(name="Temporal Steadiness", default=TEMPORAL.default, min=TEMPORAL.min,  # type: ignore[valid-type]
                            max=TEMPORAL.max, subtype="FACTOR",
                            description="Hold the previous frame's style where the render did not change")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not state.job_running(cls) and scene_has_camera(cls, context)

    def start_job(self, context: bpy.types.Context) -> RunningJob:
        scene = context.scene
        assert scene is not None  # poll() checked it
        settings = scene.restyle  # type: ignore[attr-defined]
        start = self.frame_start or scene.frame_current
        # 0 is "the current frame" here; the job takes frame numbers as they are.
        options = StylizeRenderOptions(
            style=str(settings.style), frame_start=start, frame_end=self.frame_end or start,
            output_dir=self.output_dir, restyle=restyle_options(settings), outlines=self.outlines,
            depth_falloff=self.depth_falloff, temporal=self.temporal,
        )
        return RenderJob(scene, options, services_of(context))

    def finish_job(self, context: bpy.types.Context, job: RunningJob) -> Result:
        assert isinstance(job, RenderJob)
        outcome: RenderOutcome = job.finish()
        self.report({"INFO"}, outcome.summary())
        return {"FINISHED"}
