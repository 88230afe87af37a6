"""Stylize Textures and Revert to Original Materials."""

from __future__ import annotations

import bpy

from ..bridge import materials
from ..jobs.base import RunningJob, error_message, services_of
from ..jobs.textures import TexturesJob
from ..ml.errors import RestyleError
from . import state
from .jobs import JobOperator, Result
from .settings import texture_options_of


def _selected_meshes(context: bpy.types.Context) -> list[bpy.types.Object]:
    return [obj for obj in context.selected_objects if obj.type == "MESH"]


def textures_job(context: bpy.types.Context) -> TexturesJob:
    """The job a click starts: the selected objects with the panel's settings."""
    options, style_image = texture_options_of(context)
    return TexturesJob(context.selected_objects, options, services_of(context), style_image)


class RESTYLE_OT_stylize_textures(JobOperator, bpy.types.Operator):
    """Restyle the colour textures of the selected meshes into new materials (originals are kept)"""

    bl_idname = "restyle.stylize_textures"
    bl_label = "Stylize Textures"
    bl_options = {"REGISTER", "UNDO"}

    job_label = "Restyle"
    failure_prefix = "Restyle failed, nothing was changed"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if state.job_running(cls):
            return False
        if context.mode != "OBJECT":
            cls.poll_message_set("Switch to Object Mode to restyle textures")
            return False
        if not _selected_meshes(context):
            cls.poll_message_set("Select one or more mesh objects")
            return False
        if not any(slot.material for obj in _selected_meshes(context) for slot in obj.material_slots):
            cls.poll_message_set("The selected meshes have no materials")
            return False
        return True

    def start_job(self, context: bpy.types.Context) -> RunningJob:
        return textures_job(context)

    def finish_job(self, context: bpy.types.Context, job: RunningJob) -> Result:
        assert isinstance(job, TexturesJob)
        try:
            outcome = job.finish()
        except (RestyleError, OSError) as exc:  # building the results failed: undone, so "nothing was changed"
            self.report({"ERROR"}, f"{self.failure_prefix}: {error_message(exc)}")
            return {"CANCELLED"}
        for warning in outcome.warnings:
            self.report({"WARNING"}, warning)
        self.report({"WARNING"} if outcome.failed else {"INFO"}, outcome.summary(job.style))
        return {"FINISHED"}


class RESTYLE_OT_revert_materials(bpy.types.Operator):
    """Put the original materials back on the selected objects"""

    bl_idname = "restyle.revert_materials"
    bl_label = "Revert to Original Materials"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if not any(materials.is_restyled(slot.material) for obj in context.selected_objects
                   for slot in getattr(obj, "material_slots", ())):
            cls.poll_message_set("No selected object uses a restyled material")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> Result:
        count = materials.revert(context.selected_objects)
        self.report({"INFO"}, f"Restored the original material in {count} slot(s)")
        return {"FINISHED"}
