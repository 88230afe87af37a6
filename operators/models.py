"""Download, remove and add style and depth models."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import bpy
from bpy.props import EnumProperty, StringProperty

from .. import preferences
from ..jobs.base import RunningJob, services_of
from ..jobs.models import AddModelJob, DownloadJob, megabytes, not_added, remove_model, start_download
from ..ml.errors import JobCancelled, RestyleError
from ..ml.models import registry
from ..ml.models.custom import PREFIX, read_list
from ..ml.options import DepthOutput, ModelKind, enum_items
from . import state
from .jobs import JobOperator

Result = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]
log = logging.getLogger(__name__)


class RESTYLE_OT_download_model(JobOperator, bpy.types.Operator):
    """Download this style's or depth model's file(s), checked against their published checksum"""

    bl_idname = "restyle.download_model"
    bl_label = "Download"
    bl_options = {"REGISTER", "INTERNAL"}

    job_label = "Download"
    failure_prefix = "Download failed"

    model_id: StringProperty(name="Model")  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if state.job_running(cls):
            return False
        if not bpy.app.online_access:
            cls.poll_message_set(f"{preferences.offline_reason()}. Or add the file with Add Custom Style from File")
            return False
        return True

    def start_job(self, context: bpy.types.Context) -> DownloadJob:
        """Everything from bpy is read here, on the main thread (the entry, the folder, online
        access, the mirror); the thread then runs on plain Python only."""
        return start_download(self.model_id, services_of(context))

    def finish_job(self, context: bpy.types.Context, job: RunningJob) -> Result:
        assert isinstance(job, DownloadJob)
        self.report({"INFO"}, job.finish().summary())
        return {"FINISHED"}


class RESTYLE_OT_remove_model(bpy.types.Operator):
    """Delete this model's file(s) from disk to free space (asks first)"""

    bl_idname = "restyle.remove_model"
    bl_label = "Remove"
    bl_options = {"REGISTER", "INTERNAL"}

    model_id: StringProperty(name="Model")  # type: ignore[valid-type]

    def _describe(self, context: bpy.types.Context) -> tuple[str, int]:
        """The style's name and the bytes its files take on disk."""
        root = preferences.model_root(context, create=False)
        if self.model_id.startswith(PREFIX):
            item = next((i for i in read_list(root).items if i["id"] == self.model_id), None)
            if item is None:
                raise RestyleError(f"'{self.model_id}' is not one of your custom styles or depth models")
            path = root / "custom" / item["file"]
            return item["name"], path.stat().st_size if path.is_file() else 0
        entry = registry.describe(self.model_id).entry
        if not entry.files:
            raise RestyleError(f"'{entry.name}' is built into Neural Restyle: it has no file and cannot be removed")
        store = preferences.model_store(context)
        return entry.name, sum(p.stat().st_size for p in store.paths(entry).values() if p.is_file())

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        try:
            name, size = self._describe(context)
        except RestyleError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        # Deleting up to 390 MB that may take long to download again: ask first. execute() stays
        # direct for scripts and the CLI.
        return context.window_manager.invoke_confirm(  # type: ignore[no-any-return]
            self, event, title=f"Remove {name}?",
            message=f"Delete its model file(s) ({megabytes(size)}) from disk? Download or add it again to use it",
            confirm_text="Remove", icon="WARNING",
        )

    def execute(self, context: bpy.types.Context) -> Result:
        try:
            self.report({"INFO"}, remove_model(self.model_id, services_of(context)))
        except (RestyleError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


DEPTH_OUTPUTS = enum_items(DepthOutput)  # identifiers as .blend files and scripts saved them: AUTO, ...


class RESTYLE_OT_install_model_file(JobOperator, bpy.types.Operator):
    """Add a style or depth model from a file on disk (PyTorch .pth/.pt or .safetensors). A published
    checkpoint installs as its catalog entry; a Depth Anything V2 file of any size becomes a custom depth
    model (Import Photo's Depth Model); any other supported network becomes a custom style"""

    bl_idname = "restyle.install_model_file"
    bl_label = "Add Custom Style from File"  # adds depth models too; label kept (tests, docs)
    bl_options = {"REGISTER"}

    job_label = "Add Model"
    failure_prefix = "The file was not added"

    filepath: StringProperty(subtype="FILE_PATH")  # type: ignore[valid-type]
    filter_glob: StringProperty(  # type: ignore[valid-type]
        default="*.pth;*.pt;*.ckpt;*.bin;*.safetensors;*.zip", options={"HIDDEN"})
    name: StringProperty(name="Name", description="Name of the new model (default: from the file name)")  # type: ignore[valid-type]
    depth_output: EnumProperty(name="Depth Output", items=DEPTH_OUTPUTS, default=DepthOutput.AUTO.name,  # type: ignore[valid-type]
                               description="For Depth Anything V2 files: relative or metric head (their tensors "
                                           "are the same, so the file cannot tell)")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not state.job_running(cls)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        self.browsing = True
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> Result:
        if getattr(self, "browsing", False):  # back from the file browser: run with progress and Esc
            self.browsing = False
            return self.run_modal(context)
        return super().execute(context)

    def _source(self) -> Path:
        return Path(bpy.path.abspath(self.filepath))

    def _report_error(self, exc: BaseException) -> None:
        if isinstance(exc, (RestyleError, OSError)) and not isinstance(exc, JobCancelled):
            self.report({"ERROR"}, not_added(self._source(), exc))
            return
        super()._report_error(exc)

    def start_job(self, context: bpy.types.Context) -> RunningJob:
        return AddModelJob(self._source(), services_of(context), self.name, self.depth_output)

    def finish_job(self, context: bpy.types.Context, job: RunningJob) -> Result:
        assert isinstance(job, AddModelJob)
        entry, text = job.finish()
        if entry.kind != ModelKind.DEPTH:  # a depth checkpoint is picked in the photo import instead
            context.scene.restyle.style = entry.id  # type: ignore[attr-defined]
        self.report({"INFO"}, text)
        return {"FINISHED"}
