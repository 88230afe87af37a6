"""Stylize Textures and Revert to Original Materials."""

from __future__ import annotations

from typing import Literal

import bpy

from ..bridge import materials
from ..ml.errors import JobCancelled, RestyleError
from . import state
from .run import StylizeRun

TIMER_INTERVAL_S = 0.1
Result = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]


def _selected_meshes(context: bpy.types.Context) -> list[bpy.types.Object]:
    return [obj for obj in context.selected_objects if obj.type == "MESH"]


def _redraw_panels(context: bpy.types.Context) -> None:
    screen = context.screen
    if screen is None:
        return
    for area in screen.areas:
        if area.type == "VIEW_3D":
            area.tag_redraw()


class RESTYLE_OT_stylize_textures(bpy.types.Operator):
    """Restyle the colour textures of the selected meshes into new materials (originals are kept)"""

    bl_idname = "restyle.stylize_textures"
    bl_label = "Stylize Textures"
    bl_options = {"REGISTER", "UNDO"}

    _run: StylizeRun | None = None
    _timer: bpy.types.Timer | None = None

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if state.CURRENT.running:
            cls.poll_message_set("A restyle job is already running (press Esc to cancel it)")
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

    def _start(self, context: bpy.types.Context) -> bool:
        try:
            self._run = StylizeRun(context)
        except RestyleError as exc:
            self.report({"ERROR"}, str(exc))
            return False
        state.CURRENT.running, state.CURRENT.fraction, state.CURRENT.text = True, 0.0, "Starting"
        return True

    def _complete(self, context: bpy.types.Context) -> Result:
        assert self._run is not None
        try:
            outcome = self._run.finish()
        except (RestyleError, RuntimeError, OSError) as exc:
            self.report({"ERROR"}, f"Restyle failed, nothing was changed: {exc}")
            return {"CANCELLED"}
        for warning in outcome.warnings:
            self.report({"WARNING"}, warning)
        self.report({"WARNING"} if outcome.failed else {"INFO"}, outcome.summary(self._run.style))
        return {"FINISHED"}

    def _stop(self, context: bpy.types.Context) -> None:
        state.CURRENT.running = False
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        if not bpy.app.background:
            context.window_manager.progress_end()
        _redraw_panels(context)

    def execute(self, context: bpy.types.Context) -> Result:
        """Blocking run (background mode and scripts)."""
        if not self._start(context):
            return {"CANCELLED"}
        assert self._run is not None
        try:
            self._run.job.wait()
            return self._complete(context)
        except JobCancelled as exc:
            self.report({"WARNING"}, str(exc))
            return {"CANCELLED"}
        except RestyleError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        finally:
            self._stop(context)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        if bpy.app.background or context.window is None:
            return self.execute(context)
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_INTERVAL_S, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        assert self._run is not None
        if event.type == "ESC":
            self._run.cancel()
        if event.type not in ("TIMER", "ESC"):
            return {"PASS_THROUGH"}
        try:
            done = self._run.poll()
        except JobCancelled as exc:
            self.report({"WARNING"}, str(exc))
            self._stop(context)
            return {"CANCELLED"}
        except RestyleError as exc:
            self.report({"ERROR"}, str(exc))
            self._stop(context)
            return {"CANCELLED"}
        job = self._run.job
        state.CURRENT.fraction, state.CURRENT.text = job.fraction, job.text
        context.window_manager.progress_update(int(job.fraction * 100))
        if context.workspace is not None:
            context.workspace.status_text_set(f"Restyle: {job.fraction:.0%} ({job.text}) - Esc to cancel")
        _redraw_panels(context)
        if not done:
            return {"RUNNING_MODAL"}
        result = self._complete(context)
        self._stop(context)
        return result


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
