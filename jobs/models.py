"""Add a model from a file, remove a model: shared by the operators and the command line.

Adding reads the file in the worker (it loads for real: weights fit the network, no NaN),
which can take a while for a large file, so it is a job the runner can drive: the worker's
answer is awaited on a thread that touches no bpy, and Esc stops the worker.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from ..ml.models.catalog import (
    ADAIN_HALVES,
    ALL_STYLES,
    DEPTH_ARCHS,
    DEPTH_MODELS,
    METRIC_RANGES,
    StyleEntry,
    get_style,
)
from ..ml.models.custom import PREFIX, add_custom, read_list, remove_custom
from ..ml.models.store import check_model_file, matching_arch, regular_file, sha256_of
from .base import Services, run_to_end, stopping, wait_by_polling

log = logging.getLogger(__name__)


def megabytes(size: int | None, estimate: bool = False) -> str:
    if not size:
        return "unknown size"
    return f"{'about ' if estimate else ''}{size / 1e6:.1f} MB"


def metric_range(choice: str, file_name: str) -> tuple[float | None, str]:
    """The metric range (None: relative) for a Depth Anything V2 file, and how it was decided.

    Relative and metric heads hold the same tensors, so only the user or the file's name can say."""
    if choice == "RELATIVE":
        return None, "relative depth"
    if choice in ("METRIC_INDOOR", "METRIC_OUTDOOR"):
        metres = METRIC_RANGES["indoor" if choice == "METRIC_INDOOR" else "outdoor"]
        return metres, f"metric, up to {metres:g} m"
    lower = file_name.lower()
    if "metric" not in lower:
        return None, "relative depth (set Depth Output if the file is a metric model)"
    outdoor = any(word in lower for word in ("vkitti", "kitti", "outdoor"))
    metres = METRIC_RANGES["outdoor" if outdoor else "indoor"]
    guessed = "" if outdoor or any(w in lower for w in ("hypersim", "indoor")) else ", assumed indoor"
    return metres, f"metric, up to {metres:g} m{guessed}"


class AddModelJob:
    """A steppable Add Model from File (see jobs.base.Job); finish() returns the entry and a summary."""

    def __init__(self, source: Path, services: Services, name: str = "", depth_output: str = "AUTO") -> None:
        self.source, self.services, self.name, self.depth_output = source, services, name, depth_output
        # The cheap, torch-free checks first (folder, empty, extension, truncated, too big, code in
        # the pickle, integer weights): a clear message without starting the worker.
        self.target = regular_file(source)
        contents = check_model_file(self.target, name=source.name)
        self.known: StyleEntry | None = None
        self.role = ""
        digest = sha256_of(self.target)
        for entry in ALL_STYLES + DEPTH_MODELS:  # a published file we know by its checksum
            for file in entry.files:
                if file.sha256 == digest:
                    self.known, self.role = entry, file.role
        self.info: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.cancelled = False
        self.thread: threading.Thread | None = None
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

    def finish(self) -> tuple[StyleEntry, str]:
        root, source = self.services.model_root, self.source
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


def add_model_file(source: Path, services: Services, name: str = "", depth_output: str = "AUTO") -> tuple[StyleEntry,
                                                                                                          str]:
    """Blocking Add Model from File (command line, scripts)."""
    return run_to_end(AddModelJob(source, services, name, depth_output))


def remove_model(model_id: str, services: Services) -> str:
    """Delete a catalog model's files or a custom model; returns what was done, in one line."""
    root = services.model_root
    if model_id.startswith(PREFIX):
        name = next((i["name"] for i in read_list(root).items if i["id"] == model_id), model_id)
        remove_custom(root, model_id)
        return f"Removed your custom model '{name}'"
    entry = get_style(model_id)
    freed = services.store.remove(entry)
    if freed:
        return f"Removed {entry.name}: {megabytes(freed)} freed"
    return f"{entry.name} had no files on disk; what was recorded about it was forgotten"
