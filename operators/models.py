"""Download, remove and add style and depth models."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Literal

import bpy
from bpy.props import EnumProperty, StringProperty

from .. import preferences
from ..jobs.base import RunningJob, services_of
from ..jobs.models import AddModelJob, megabytes, remove_model
from ..ml.errors import DownloadCancelled, JobCancelled, RestyleError
from ..ml.models.catalog import StyleEntry, get_style
from ..ml.models.custom import PREFIX, read_list
from ..ml.models.store import ModelStore
from . import state
from .jobs import JobOperator

Result = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]
log = logging.getLogger(__name__)


def _catalog_entry(model_id: str) -> StyleEntry:
    """A catalog entry, styles and depth models alike (an unknown id raises a clear error)."""
    return get_style(model_id)


class DownloadTask:
    """A download on a background thread. Everything it needs is resolved on the main thread
    before it starts (the store holds plain paths and flags): the thread never touches bpy, and
    the operator only reads these plain attributes from its timer."""

    def __init__(self, store: ModelStore, entry: StyleEntry) -> None:
        self.store, self.entry = store, entry
        self.done, self.total = 0, entry.download_size
        self.cancel_requested = False
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self.run, name="neural-restyle-download", daemon=True)

    def _progress(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total

    def run(self) -> None:
        try:
            self.store.download(self.entry, progress=self._progress, cancelled=lambda: self.cancel_requested)
        except (RestyleError, OSError) as exc:
            self.error = exc
        except Exception as exc:  # noqa: BLE001 - a thread's exception would only reach the console
            log.exception("download failed")
            self.error = RestyleError(f"Download of {self.entry.name} failed: {type(exc).__name__}: {exc}")

    # -- the job runner's view (jobs.base.RunningJob) --------------------------------------
    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def text(self) -> str:
        return self.status_text()

    def status_text(self) -> str:
        percent = f" ({self.fraction:.0%})" if self.total else ""
        return f"Downloading {self.entry.name}: {megabytes(self.done)} of {megabytes(self.total)}{percent}"

    def poll(self) -> bool:
        if self.thread.is_alive():
            return False
        if isinstance(self.error, DownloadCancelled):
            raise JobCancelled(str(self.error))
        if self.error is not None:
            raise self.error
        return True

    def wait(self) -> None:
        while not self.poll():
            self.thread.join(0.1)

    def cancel(self) -> None:
        self.cancel_requested = True  # the thread stops at its next chunk and keeps the partial file

    def close(self) -> None:
        if self.thread.is_alive():
            self.cancel()


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

    def start_job(self, context: bpy.types.Context) -> DownloadTask:
        """Everything from bpy is read here, on the main thread (the entry, the folder, online
        access, the mirror); the thread then runs on plain Python only."""
        entry = _catalog_entry(self.model_id)
        if not entry.files:
            raise RestyleError(f"'{entry.name}' is built into Neural Restyle: there is nothing to download")
        task = DownloadTask(preferences.model_store(context), entry)
        task.thread.start()
        return task

    def finish_job(self, context: bpy.types.Context, job: RunningJob) -> Result:
        assert isinstance(job, DownloadTask)
        self.report({"INFO"}, f"Downloaded {job.entry.name}")
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
        entry = _catalog_entry(self.model_id)
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


DEPTH_OUTPUTS = [
    ("AUTO", "Auto", "Depth Anything V2 files: metric when the file name says 'metric' (Hypersim or 'indoor': "
     "20 m, VKITTI, KITTI or 'outdoor': 80 m), else relative"),
    ("RELATIVE", "Relative", "The network gives relative inverse depth (the published non-metric checkpoints)"),
    ("METRIC_INDOOR", "Metric, Indoor (20 m)", "A metric head trained for rooms: depth in metres up to 20"),
    ("METRIC_OUTDOOR", "Metric, Outdoor (80 m)", "A metric head trained for streets: depth in metres up to 80"),
]


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
        default="*.pth;*.pt;*.ckpt;*.bin;*.safetensors", options={"HIDDEN"})
    name: StringProperty(name="Name", description="Name of the new model (default: from the file name)")  # type: ignore[valid-type]
    depth_output: EnumProperty(name="Depth Output", items=DEPTH_OUTPUTS, default="AUTO",  # type: ignore[valid-type]
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
            source = self._source()
            self.report({"ERROR"}, f"{source.name or source} was not added: {exc}")
            return
        super()._report_error(exc)

    def start_job(self, context: bpy.types.Context) -> RunningJob:
        return AddModelJob(self._source(), services_of(context), self.name, self.depth_output)

    def finish_job(self, context: bpy.types.Context, job: RunningJob) -> Result:
        assert isinstance(job, AddModelJob)
        entry, text = job.finish()
        if entry.family != "depth":  # a depth checkpoint is picked in the photo import instead
            context.scene.restyle.style = entry.id  # type: ignore[attr-defined]
        self.report({"INFO"}, text)
        return {"FINISHED"}
