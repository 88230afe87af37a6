"""One runner for long operators: modal with a timer, progress and Esc in the UI, blocking
in the background, and a clean-up that always runs.

An operator mixes in JobOperator and supplies two steps: start_job() (validate, read the
scene, hand work to the worker; returns a jobs.base.RunningJob) and finish_job() (build the results
from the finished job). Between them the user keeps working for minutes, so a RunningJob
holds names, never RNA references. Whatever happens (an error, Esc, an unexpected
exception, the window closing or another file loading) the status flag, the timer,
the status text and the progress bar are reset in one place.
"""

from __future__ import annotations

import logging
from typing import Literal

import bpy

from ..jobs.base import RunningJob, error_message, is_defect
from ..ml.errors import JobCancelled, RestyleError
from . import state

log = logging.getLogger(__name__)

TIMER_INTERVAL_S = 0.1
Result = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]


def _redraw_panels(context: bpy.types.Context) -> None:
    screen = context.screen
    if screen is None:
        return
    for area in screen.areas:
        if area.type == "VIEW_3D":
            area.tag_redraw()


class JobOperator:
    """Mix-in for a bpy.types.Operator subclass (listed before it)."""

    job_label = "Job"  # what the status bar calls the job
    failure_prefix = "Failed, nothing was changed"
    prefix_domain_errors = False  # True: domain errors are reported after failure_prefix too

    _job: RunningJob | None = None
    _timer: bpy.types.Timer | None = None

    # -- the two steps a subclass supplies ---------------------------------------------
    def start_job(self, context: bpy.types.Context) -> RunningJob:
        raise NotImplementedError

    def finish_job(self, context: bpy.types.Context, job: RunningJob) -> Result:
        raise NotImplementedError

    # -- the runner -----------------------------------------------------------------------
    def _report_error(self, exc: BaseException) -> None:
        """One line for the user: the text jobs.base.error_message gives the command line too, after
        failure_prefix unless it is a domain error that says enough by itself."""
        report = getattr(self, "report")  # noqa: B009  (a mix-in: report comes from bpy.types.Operator)
        message = error_message(exc)
        if isinstance(exc, JobCancelled):
            report({"WARNING"}, message)
            return
        if is_defect(exc):  # a bug, not a user error: the traceback goes to the log, the user gets one line
            log.error("%s failed", self.job_label, exc_info=exc)
        plain = isinstance(exc, RestyleError) and not self.prefix_domain_errors
        report({"ERROR"}, message if plain else f"{self.failure_prefix}: {message}")

    def _begin(self, context: bpy.types.Context) -> bool:
        try:
            self._job = self.start_job(context)
        except Exception as exc:  # noqa: BLE001  every failure to start is reported, none escapes
            self._job = None
            self._report_error(exc)
            return False
        state.begin(self._job.text)  # the panel says what the first step does before it runs
        return True

    def _end(self, context: bpy.types.Context) -> Result:
        job = self._job
        assert job is not None
        try:
            return self.finish_job(context, job)
        except Exception as exc:  # noqa: BLE001  reported as one line; finish_job undoes its own work
            self._report_error(exc)
            return {"CANCELLED"}

    def _stop(self, context: bpy.types.Context) -> None:
        """The clean-up every way out of a job reaches: the running flag is cleared first,
        and a job that fails to close (its worker gone) is logged, never raised from here."""
        job, self._job = self._job, None
        state.end()
        try:
            if job is not None:
                job.close()
        except Exception:  # noqa: BLE001  the job's own error was reported already
            log.warning("%s: the job did not close cleanly", self.job_label, exc_info=True)
        finally:
            timer, self._timer = self._timer, None
            wm = context.window_manager
            if timer is not None and wm is not None:
                wm.event_timer_remove(timer)
            if context.workspace is not None:
                context.workspace.status_text_set(None)
            if not bpy.app.background and wm is not None:
                wm.progress_end()
            _redraw_panels(context)

    def execute(self, context: bpy.types.Context) -> Result:
        """Blocking run (background mode and scripts)."""
        if not self._begin(context):
            return {"CANCELLED"}
        try:
            assert self._job is not None
            try:
                self._job.wait()
            except Exception as exc:  # noqa: BLE001  cancelled, worker died, ...: reported
                self._report_error(exc)
                return {"CANCELLED"}
            return self._end(context)
        finally:
            self._stop(context)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        return self.run_modal(context)

    def run_modal(self, context: bpy.types.Context) -> Result:
        """Start the job and drive it from a timer (blocking instead where there is no window).
        Also the way on from execute() after a file browser, which Blender answers with execute()."""
        if bpy.app.background or context.window is None:
            return JobOperator.execute(self, context)
        if not self._begin(context):
            return {"CANCELLED"}
        try:
            wm = context.window_manager
            self._timer = wm.event_timer_add(TIMER_INTERVAL_S, window=context.window)
            wm.progress_begin(0, 100)
            wm.modal_handler_add(self)  # type: ignore[arg-type]  # a mix-in: self is an Operator
            # Shown now: the first timer tick may run a long step (a render) before any progress arrives.
            assert self._job is not None
            self._show_progress(context, self._job)
        except BaseException:
            if self._job is not None:
                self._job.cancel()
            self._stop(context)
            raise
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        job = self._job
        if job is None:  # already stopped (cancel() ran): nothing left to drive
            return {"CANCELLED"}
        if event.type not in ("TIMER", "ESC"):
            return {"PASS_THROUGH"}
        stop = True
        try:
            if event.type == "ESC":
                job.cancel()
            if not job.poll():
                self._show_progress(context, job)
                stop = False
                return {"RUNNING_MODAL"}
            return self._end(context)
        except Exception as exc:  # noqa: BLE001  cancelled, worker died, a defect: reported, cleaned up
            self._report_error(exc)
            return {"CANCELLED"}
        finally:
            if stop:
                self._stop(context)

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender calls this when the window closes or a file loads during the modal run."""
        job = self._job
        try:
            if job is not None:
                job.cancel()
        finally:
            self._stop(context)

    def _show_progress(self, context: bpy.types.Context, job: RunningJob) -> None:
        state.update(job.fraction, job.text)
        context.window_manager.progress_update(int(job.fraction * 100))
        if context.workspace is not None:
            context.workspace.status_text_set(f"{self.job_label}: {job.fraction:.0%} ({job.text}) - Esc to cancel")
        _redraw_panels(context)
