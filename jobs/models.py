"""Download a model, add a model from a file, remove a model: shared by the operators and the
command line.

Downloading and adding take a while (hundreds of megabytes; the worker reads a file for real:
weights fit the network, no NaN), so both are jobs the runner can drive: the work runs on a
thread that touches no bpy, and Esc stops it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..ml.errors import DownloadCancelled, JobCancelled, RestyleError
from ..ml.models import registry
from ..ml.models.catalog import ADAIN_HALVES, ALL_STYLES, DEPTH_ARCHS, DEPTH_MODELS, ModelEntry
from ..ml.models.custom import PREFIX, add_custom, read_list, remove_custom
from ..ml.models.registry import ModelDescriptor, ModelSource
from ..ml.models.store import ModelStore, check_model_file, matching_arch, regular_file, sha256_of
from ..ml.options import METRIC_RANGES, DepthOutput, choice
from .base import Services, error_message, run_to_end, stopping, wait_by_polling

CANCEL_WAIT_S = 1.0  # how long Esc waits for a download thread to stop before the job is over anyway

log = logging.getLogger(__name__)


def megabytes(size: int | None, estimate: bool = False) -> str:
    if not size:
        return "unknown size"
    return f"{'about ' if estimate else ''}{size / 1e6:.1f} MB"


def metric_range(output: DepthOutput | str, file_name: str) -> tuple[float | None, str]:
    """The metric range (None: relative) for a Depth Anything V2 file, and how it was decided.

    Relative and metric heads hold the same tensors, so only the user or the file's name can say."""
    output = choice(DepthOutput, output)
    if output == DepthOutput.RELATIVE:
        return None, "relative depth"
    if output in METRIC_RANGES:
        metres = METRIC_RANGES[output]
        return metres, f"metric, up to {metres:g} m"
    lower = file_name.lower()
    if "metric" not in lower:
        return None, "relative depth (set Depth Output if the file is a metric model)"
    outdoor = any(word in lower for word in ("vkitti", "kitti", "outdoor"))
    metres = METRIC_RANGES[DepthOutput.METRIC_OUTDOOR if outdoor else DepthOutput.METRIC_INDOOR]
    guessed = "" if outdoor or any(w in lower for w in ("hypersim", "indoor")) else ", assumed indoor"
    return metres, f"metric, up to {metres:g} m{guessed}"


# -- download ---------------------------------------------------------------------------------
ProgressFn = Callable[[int, int | None], None]  # bytes done, bytes expected (None: unknown)


def downloadable(model_id: str, services: Services) -> ModelDescriptor:
    """The model ``model_id`` names, checked to be one the extension can download (a published file:
    not built in, not one the user added)."""
    model = registry.describe(model_id, services.model_root)
    if model.source == ModelSource.USER_FILE:
        raise RestyleError(f"'{model.name}' was added from a file: there is nothing to download")
    return model


class DownloadJob:
    """A download on a background thread (see jobs.base.Job). Everything it needs is resolved on the
    main thread before it starts (the store holds plain paths and flags): the thread never touches
    bpy, and the runner only reads these plain attributes from its timer. ``on_progress`` (bytes done,
    bytes expected) is called on the download thread."""

    def __init__(self, store: ModelStore, entry: ModelEntry, on_progress: ProgressFn | None = None) -> None:
        if not entry.files:
            raise RestyleError(f"'{entry.name}' is built into Neural Restyle: there is nothing to download")
        self.store, self.entry, self.on_progress = store, entry, on_progress
        self.done, self.total = 0, entry.download_size
        self.cancel_requested = False
        self.cancelled_at: float | None = None
        self.fetched = False
        self.paths: dict[str, Path] = {}
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self.run, name="neural-restyle-download", daemon=True)

    def start(self) -> DownloadJob:
        self.thread.start()
        return self

    def _progress(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total
        self.fetched = bool(total) and done >= (total or 0)  # only checking and installing are left
        if self.on_progress is not None:
            self.on_progress(done, total)

    def run(self) -> None:
        try:
            self.paths = self.store.download(self.entry, progress=self._progress,
                                             cancelled=lambda: self.cancel_requested)
        except (RestyleError, OSError) as exc:
            self.error = exc
        except Exception as exc:  # noqa: BLE001 - a thread's exception would only reach the console
            log.exception("download failed")
            self.error = RestyleError(f"Download of {self.entry.name} failed: {error_message(exc)}")

    # -- Job --------------------------------------------------------------------------------
    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def text(self) -> str:
        percent = f" ({self.fraction:.0%})" if self.total else ""
        done = megabytes(self.done) if self.done else "0 MB"  # nothing yet is no unknown size
        return f"Downloading {self.entry.name}: {done} of {megabytes(self.total)}{percent}"

    def poll(self) -> bool:
        if self.thread.is_alive():
            if (self.cancelled_at is not None and not self.fetched
                    and time.monotonic() - self.cancelled_at > CANCEL_WAIT_S):
                # Blocked on a server that does not answer (up to its timeout): the user is not kept
                # waiting for it. The thread stops at its next step and keeps the partial file; its
                # lock keeps a new download of the same file off until then. Once every byte is in,
                # the install (a few seconds) is waited for: "cancelled" must not be followed by it.
                raise JobCancelled("Download cancelled; it will resume where it stopped")
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
        if self.cancelled_at is None:
            self.cancelled_at = time.monotonic()

    def close(self) -> None:
        if self.thread.is_alive():
            self.cancel()

    def finish(self) -> DownloadOutcome:
        return DownloadOutcome(self.entry.id, self.entry.name, dict(self.paths))


@dataclass(frozen=True)
class DownloadOutcome:
    model: str  # the model's id
    name: str
    paths: dict[str, Path]  # its files by role; empty for a built-in model

    def summary(self) -> str:
        if not self.paths:
            return f"'{self.name}' is built into Neural Restyle: there is nothing to download"
        return f"Downloaded {self.name}"


def start_download(model_id: str, services: Services, on_progress: ProgressFn | None = None) -> DownloadJob:
    """The Download button's job: checked on the calling (main) thread, then running on its own."""
    return DownloadJob(services.store, downloadable(model_id, services).entry, on_progress).start()


def download_model(model_id: str, services: Services, on_progress: ProgressFn | None = None) -> DownloadOutcome:
    """Blocking download (command line, scripts). A built-in model has nothing to download, which is
    no failure here: a script making sure its models are present may list every one it uses."""
    model = downloadable(model_id, services)
    if not model.needs_files:
        return DownloadOutcome(model.id, model.name, {})
    return run_to_end(start_download(model_id, services, on_progress))


# -- add from a file ----------------------------------------------------------------------------
def not_added(source: Path, exc: BaseException) -> str:
    """Why a file was not added, as the panel and the command line both say it."""
    return f"{source.name or source} was not added: {error_message(exc)}"


class AddModelJob:
    """A steppable Add Model from File (see jobs.base.Job); finish() returns the entry and a summary."""

    def __init__(self, source: Path, services: Services, name: str = "",
                 depth_output: DepthOutput | str = DepthOutput.AUTO) -> None:
        self.source, self.services, self.name, self.depth_output = source, services, name, depth_output
        services.store.make_root()  # a model folder that is a file: the Download button's clear message
        self.info: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.cancelled = False
        self.thread: threading.Thread | None = None
        self.known: ModelEntry | None = None
        self.role = ""
        self.archive = source.suffix.lower() == ".zip"  # a published archive of several models (offline install)
        if self.archive:
            self.target = regular_file(source)
            return  # unpacked and checked in finish(): no worker needed
        # The cheap, torch-free checks first (folder, empty, extension, truncated, too big, code in
        # the pickle, integer weights): a clear message without starting the worker.
        self.target = regular_file(source)
        contents = check_model_file(self.target, name=source.name)
        digest = sha256_of(self.target)
        for entry in ALL_STYLES + DEPTH_MODELS:  # a published file we know by its checksum
            for file in entry.files:
                if file.sha256 == digest:
                    self.known, self.role = entry, file.role
        if self.known is not None:
            return  # installed as its catalog entry: no worker needed
        arch = matching_arch(contents)
        if arch in ADAIN_HALVES:  # add_custom refuses half of AdaIN: say so before starting the worker
            add_custom(services.model_root, source, str(arch))
        self.client = services.client()
        self.thread = threading.Thread(target=self._inspect, name="neural-restyle-inspect", daemon=True)
        self.thread.start()

    def _inspect(self) -> None:
        try:
            self.info = self.client.inspect(str(self.target))
        except Exception as exc:  # noqa: BLE001  handed to the main thread, which reports it
            self.error = exc

    # -- Job ----------------------------------------------------------------------------------
    @property
    def fraction(self) -> float:
        return 0.0 if self.thread is not None and self.thread.is_alive() else 1.0

    @property
    def text(self) -> str:
        return f"reading {self.source.name}"

    def poll(self) -> bool:
        stopping(self.cancelled, None)  # no worker job: close() kills a worker still reading the file
        if self.thread is not None and self.thread.is_alive():
            return False
        if self.error is not None:
            raise self.error
        return True

    def wait(self) -> None:
        wait_by_polling(self)

    def cancel(self) -> None:
        self.cancelled = True

    def close(self) -> None:
        """A worker still reading the file is stopped: it restarts with the next job."""
        thread, self.thread = self.thread, None
        if thread is not None and thread.is_alive():
            self.client.kill()
            thread.join(10)

    def finish(self) -> tuple[ModelEntry, str]:
        root, source = self.services.model_root, self.source
        if self.archive:
            entries = self.services.store.install_archive(self.target)
            return entries[0], f"Installed {', '.join(e.name for e in entries)} from {source.name}"
        if self.known is not None:
            store = self.services.store
            store.install_file(self.known, self.role, self.target)
            missing = [f.filename for f in self.known.files if not store.path_of(f).is_file()]
            still = f"; it still needs {', '.join(missing)} before it can run" if missing else ""
            return self.known, f"Installed {source.name} as {self.known.name}{still}"
        info = self.info
        assert info is not None
        if info["arch"] in DEPTH_ARCHS:
            metres, output = metric_range(self.depth_output, source.name)
            entry = add_custom(root, source, str(info["arch"]), self.name or None, metres)
            return entry, (f"Added the depth model '{entry.name}' ({info['name']}, {output}, {info['params']:,} "
                           "parameters): choose it as Depth Model in Import Photo")
        entry = add_custom(root, source, str(info["arch"]), self.name or None)
        return entry, f"Added '{entry.name}' ({info['name']}, {info['params']:,} parameters)"


def add_model_file(source: Path, services: Services, name: str = "",
                   depth_output: DepthOutput | str = DepthOutput.AUTO) -> tuple[ModelEntry, str]:
    """Blocking Add Model from File (command line, scripts)."""
    return run_to_end(AddModelJob(source, services, name, depth_output))


def remove_model(model_id: str, services: Services) -> str:
    """Delete a catalog model's files or a custom model; returns what was done, in one line."""
    root = services.model_root
    if model_id.startswith(PREFIX):
        name = next((i["name"] for i in read_list(root).items if i["id"] == model_id), model_id)
        remove_custom(root, model_id)
        return f"Removed your custom model '{name}'"
    entry = registry.describe(model_id).entry
    freed = services.store.remove(entry)
    if freed:
        return f"Removed {entry.name}: {megabytes(freed)} freed"
    return f"{entry.name} had no files on disk; what was recorded about it was forgotten"
