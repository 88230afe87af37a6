"""Blender's side of the worker: starts it, hands it jobs, drains its events.

Imports neither torch nor bpy. Arrays go through .npy files in a private temporary
folder per job; the pipes only carry small JSON messages.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import JobCancelled, TemporaryFolderFull, WorkerDied, WorkerFailed, WorkerHung
from ..options import STYLE_WEIGHT, Device, RestyleOptions, choice
from . import protocol, scratch
from .protocol import (
    CancelRequest,
    DepthRequest,
    Event,
    InspectRequest,
    Item,
    PingRequest,
    Request,
    RunRequest,
    ShutdownRequest,
)

log = logging.getLogger(__name__)

START_TIMEOUT_S = 180.0  # cold start imports torch, which can take a while on a slow disk
CANCEL_GRACE_S = 0.5  # a worker that does not stop within this is killed (and restarts next job)
# The worker sends a heartbeat every second (ml.runtime.worker.HEARTBEAT_S) from its own thread, busy or
# not. A worker silent for this long is stopped or deadlocked (SIGSTOP, a hung driver): it is
# killed and the job fails with a clear error instead of blocking a headless run forever.
LIVENESS_TIMEOUT_S = 60.0
TIMEOUT_ENV = "NEURAL_RESTYLE_WORKER_TIMEOUT"
_EOF = "_eof"
STYLE_IMAGE_FILE = "style.npy"  # the arbitrary style's image, in the job's folder


@dataclass
class ItemResult:
    id: str
    array: np.ndarray | None = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _liveness_default() -> float:
    try:
        value = float(os.environ.get(TIMEOUT_ENV, ""))
    except ValueError:
        return LIVENESS_TIMEOUT_S
    return value if value > 0 else LIVENESS_TIMEOUT_S


class WorkerClient:
    def __init__(self, package_root: str, python: str | None = None, threads: int = 0,
                 liveness_timeout: float | None = None) -> None:
        self.package_root = os.path.abspath(package_root)
        self.liveness_timeout = liveness_timeout or _liveness_default()
        self.last_message_at = time.monotonic()  # when the worker last said anything (heartbeats included)
        self.python = python or sys.executable
        self.threads = threads
        self.process: subprocess.Popen[str] | None = None
        self.events: queue.Queue[protocol.Message] = queue.Queue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self.devices: dict[str, bool] | None = None
        self.torch_version: str | None = None
        self.torch_path: str | None = None  # where the worker's torch was imported from
        self._job_ids = itertools.count(1)
        self._lock = threading.Lock()
        self.busy = False

    # -- process life ----------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.alive and self.process else None

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # The worker sees what Blender's Python sees (the extension's wheels included),
        # with the extension root first so that ``ml`` is a top-level package there.
        paths = [self.package_root] + [p for p in sys.path if p and os.path.isdir(p) and p != self.package_root]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # never write into the extension's own folder
        return env

    def start(self) -> None:
        with self._lock:
            if self.alive:
                return
            scratch.sweep_once()  # folders of a Blender that was killed in the middle of a job
            self.events = queue.Queue()
            self.process = subprocess.Popen(
                [self.python, "-m", "ml.runtime.worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, encoding="utf-8", bufsize=1, env=self._environment(), cwd=tempfile.gettempdir(),
            )
            # Each reader fills the queue of its own process: a killed worker's end-of-file, read
            # late, must not land in the queue of the worker started after it.
            threading.Thread(target=self._read_events, args=(self.process, self.events), daemon=True).start()
            threading.Thread(target=self._read_stderr, args=(self.process,), daemon=True).start()
        ready = self._next_event(START_TIMEOUT_S)
        if ready.get("event") != Event.READY:
            self.kill()
            raise WorkerDied(self._death_message("while starting"))
        self.devices = ready.get("devices")
        self.torch_version = ready.get("torch")
        self.torch_path = ready.get("torch_path")

    def _read_events(self, process: subprocess.Popen[str], events: queue.Queue[protocol.Message]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.last_message_at = time.monotonic()
            try:
                message = protocol.decode(line)
            except ValueError:
                self.stderr_tail.append(line.rstrip())
                continue
            if message.get("event") != Event.HEARTBEAT:  # liveness only: nothing to handle
                events.put(message)
        events.put({"event": _EOF})

    def _read_stderr(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.stderr_tail.append(line.rstrip())
            log.debug("%s", line.rstrip())

    def _next_event(self, timeout: float | None) -> protocol.Message:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return {"event": "timeout"}

    def silent_for(self, since: float) -> float:
        """Seconds without any message from the worker, counted from ``since`` at the earliest."""
        return time.monotonic() - max(self.last_message_at, since)

    def hung(self, since: float, doing: str) -> WorkerHung:
        """Kill a worker that stopped answering; the error to raise."""
        silent = self.silent_for(since)
        self.kill()
        return WorkerHung(
            f"The restyle worker stopped answering {doing} (no message for {silent:.0f} s, limit "
            f"{self.liveness_timeout:.0f} s): it was stopped and will restart with the next job. Blender and your "
            f"scene are unchanged (the limit is set by {TIMEOUT_ENV})"
        )

    def _answer(self, wanted: Callable[[protocol.Message], bool], doing: str, timeout: float) -> protocol.Message:
        """The next event ``wanted`` accepts, waiting while the worker stays alive."""
        since = time.monotonic()
        deadline = since + timeout
        while True:
            event = self._next_event(min(0.5, max(0.01, deadline - time.monotonic())))
            kind = event.get("event")
            if kind == _EOF:
                raise WorkerDied(self._death_message(doing))
            if kind != "timeout" and wanted(event):
                return event
            if self.silent_for(since) > self.liveness_timeout:
                raise self.hung(since, doing)
            if time.monotonic() > deadline:
                raise WorkerDied(self._death_message(doing))
    def send(self, request: Request) -> None:
        """Send one typed request (ml.runtime.protocol)."""
        self._write(protocol.encode(request))

    def _send(self, **message: object) -> None:
        """Transitional: an untyped request (ml/training/remote.py's "learn" still sends one)."""
        self._write(protocol.encode(dict(message)))

    def _write(self, line: str) -> None:
        if not self.alive or self.process is None or self.process.stdin is None:
            raise WorkerDied(self._death_message("before the request was sent"))
        try:
            self.process.stdin.write(line)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(self._death_message("while sending a request")) from exc

    def _death_message(self, when: str) -> str:
        if any("No module named 'torch'" in line for line in self.stderr_tail):
            return (
                f"PyTorch is not available to the Python at {self.python}: install the build of Neural "
                "Restyle for your platform, which bundles it. Blender and your scene are unchanged"
            )
        code = self.process.poll() if self.process else None
        how = f"exit code {code}" if code is not None and code >= 0 else f"signal {-code}" if code else "no answer"
        detail = next((line for line in reversed(self.stderr_tail) if line.strip()), "")
        tail = f": {detail}" if detail else ""
        return f"The restyle worker process stopped {when} ({how}){tail}. Blender and your scene are unchanged"

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def shutdown(self, timeout: float = 5.0) -> None:
        if self.alive and self.process is not None:
            try:
                self.send(ShutdownRequest())
                self.process.wait(timeout=timeout)
            except (WorkerDied, subprocess.TimeoutExpired):
                self.kill()
        self.process = None

    def ping(self) -> float:
        """Round trip of one request to the warm worker, in seconds (starts it if needed)."""
        self.start()
        sent = time.perf_counter()
        self.send(PingRequest(sent))
        self._answer(lambda event: event.get("event") == Event.PONG, "during a ping", 30.0)
        return time.perf_counter() - sent

    def submit_depth(self, images: Sequence[tuple[str, np.ndarray]], model_file: str, max_depth: float | None = None,
                     device: Device | str = Device.AUTO) -> Job:
        """Start estimating depth for ``images`` with a Depth Anything V2 checkpoint."""
        return self._submit(images, lambda job, items, _folder: DepthRequest(
            job, items, {"model": model_file}, max_depth, device=choice(Device, device), threads=self.threads))

    def inspect(self, path: str, timeout: float = 120.0) -> dict[str, Any]:
        """Ask the worker which architecture a model file holds (raises WorkerFailed if none)."""
        if self.busy:
            raise WorkerFailed("A restyle job is running: try again when it has finished")
        self.start()
        request = f"inspect-{next(self._job_ids)}"
        self.send(InspectRequest(request, path))
        event = self._answer(lambda e: e.get("event") in (Event.INSPECTED, Event.ERROR) and e.get("request") == request,
                             "while reading a model file", timeout)
        if event.get("event") == Event.ERROR:
            raise protocol.rebuilt_failure(event)
        return event

    # -- jobs ---------------------------------------------------------------------------
    def submit(
        self,
        style: str,
        options: RestyleOptions,
        images: Sequence[tuple[str, np.ndarray]],
        files: dict[str, str] | None = None,
        style_image: np.ndarray | None = None,
        style_weight: float = STYLE_WEIGHT.default,
    ) -> Job:
        """Start restyling ``images``; ``files`` are the model's weight files (none for built-ins)."""
        if not isinstance(options, RestyleOptions):
            raise TypeError(f"submit() takes RestyleOptions, not {type(options).__name__}")

        def request(job: str, items: tuple[Item, ...], folder: str) -> RunRequest:
            style_path = os.path.join(folder, STYLE_IMAGE_FILE) if style_image is not None else None
            return RunRequest(job, items, style, options, dict(files or {}), style_weight, style_path, self.threads)

        return self._submit(images, request, style_image)

    def _submit(self, images: Sequence[tuple[str, np.ndarray]],
                make: Callable[[str, tuple[Item, ...], str], Request], style_image: np.ndarray | None = None) -> Job:
        """Write the arrays into a private job folder and send the request."""
        if self.busy:
            raise WorkerFailed("A restyle job is already running")
        self.start()
        try:
            folder = scratch.make_folder("job")
        except OSError as exc:
            raise self._temporary_failure(exc) from exc
        items: list[Item] = []
        try:
            if style_image is not None:
                np.save(os.path.join(folder, STYLE_IMAGE_FILE), np.ascontiguousarray(style_image, dtype=np.float32),
                        allow_pickle=False)
            for number, (item_id, array) in enumerate(images):
                path = os.path.join(folder, f"in{number}.npy")
                np.save(path, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
                items.append(Item(item_id, path, os.path.join(folder, f"out{number}.npy")))
            job = Job(self, str(next(self._job_ids)), folder, items)
            self.send(make(job.id, tuple(items), folder))
        except OSError as exc:  # a full or read-only temporary folder
            shutil.rmtree(folder, ignore_errors=True)
            raise self._temporary_failure(exc) from exc
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.busy = True
        return job

    @staticmethod
    def _temporary_failure(exc: OSError) -> TemporaryFolderFull:
        where = tempfile.gettempdir()
        return TemporaryFolderFull(
            f"The images could not be handed to the restyle worker: writing to the temporary folder {where} failed "
            f"({exc.strerror or exc}). Free some space there (or point TMPDIR / Preferences > File Paths > "
            "Temporary Files elsewhere) and try again. Nothing was changed"
        )


class Job:
    """One submitted job. Drive it with :meth:`poll` (modal operator) or :meth:`wait`."""

    cancel_grace_s = CANCEL_GRACE_S  # how long a cancelled job may take to stop before the worker is killed
    phase = "in the middle of the job"  # how a hung or dead worker's message places the failure

    def __init__(self, client: WorkerClient, job_id: str, folder: str, items: Sequence[Item]) -> None:
        self.client, self.id, self.folder, self.items = client, job_id, folder, items
        self.fraction = 0.0
        self.text = "starting"
        self.results: dict[str, ItemResult] = {}
        self.finished = False
        self.warnings: list[str] = []
        self._cancel_requested_at: float | None = None
        self._started_at = time.monotonic()
        self._worker_ended = False  # the worker said it ended this job (done, cancelled, failed) or is gone

    def poll(self) -> bool:
        """Handle every event that has arrived; True once the job has finished.

        Raises JobCancelled, WorkerDied or WorkerFailed; the job's files are cleaned up then.
        """
        try:
            while not self.finished:
                asked = self._cancel_requested_at
                if asked is not None and time.monotonic() - asked > self.cancel_grace_s:
                    self._worker_ended = True
                    self.client.kill()  # did not stop at once: stop it the hard way
                    raise JobCancelled()
                try:
                    event = self.client.events.get_nowait()
                except queue.Empty:
                    if self.client.silent_for(self._started_at) > self.client.liveness_timeout:
                        self._worker_ended = True  # hung() kills it
                        raise self.client.hung(self._started_at, self.phase) from None
                    return False
                # Noted here rather than in _handle(), which subclasses replace.
                self._worker_ended = self._worker_ended or self._ends_job(event)
                self._handle(event)
            return True
        except BaseException:
            self.close()
            raise

    def _handle(self, event: protocol.Message) -> None:
        kind = event.get("event")
        if kind == _EOF:
            if self._cancel_requested_at is not None:
                raise JobCancelled()
            raise WorkerDied(self.client._death_message("in the middle of the job"))
        if event.get("job") not in (None, self.id):
            return  # a late message from an earlier, cancelled job
        if kind == Event.PROGRESS:
            self.fraction, self.text = float(event["fraction"]), str(event.get("text", ""))
        elif kind == Event.ITEM_DONE:
            item = next(i for i in self.items if i.id == event["item"])
            try:
                array = np.load(item.output, allow_pickle=False)
            except (OSError, ValueError) as exc:
                self.results[item.id] = ItemResult(item.id, error=f"its result could not be read back ({exc})")
                return
            self.results[item.id] = ItemResult(item.id, array=array, info=event)
            _note_tiles(event)
            if event.get("warning") and event["warning"] not in self.warnings:
                self.warnings.append(event["warning"])
        elif kind == Event.ITEM_FAILED:
            self.results[event["item"]] = ItemResult(event["item"], error=str(event.get("message")))
        elif kind == Event.CANCELLED:
            raise JobCancelled()
        elif kind == Event.ERROR:
            raise protocol.rebuilt_failure(event)
        elif kind == Event.DONE:
            self.fraction = 1.0
            self.finished = True
            self.close()

    def wait(self, on_progress: Callable[[Job], None] | None = None, interval: float = 0.02) -> dict[str, ItemResult]:
        while not self.poll():
            if on_progress is not None:
                on_progress(self)
            time.sleep(interval)
        return self.results

    def cancel(self) -> None:
        if self.finished or self._cancel_requested_at is not None:
            return
        self._cancel_requested_at = time.monotonic()
        try:
            self.client.send(CancelRequest(self.id))
        except WorkerDied:
            pass  # already gone: poll() reports the cancellation

    def _ends_job(self, event: protocol.Message) -> bool:
        """Whether ``event`` says the worker is done with this job: its last message for it, or its end."""
        kind = event.get("event")
        return kind == _EOF or (kind in (Event.DONE, Event.CANCELLED, Event.ERROR) and event.get("job") == self.id)

    def close(self) -> None:
        """Let go of the job. The client is marked free only once the worker is: an unfinished
        job is cancelled and its acknowledgement waited for, and a worker that does not give it
        within the cancel grace is killed (it restarts with the next job).

        Blender calls this through a modal operator's cancel() when the window closes or another
        file loads mid-job, with nobody left to poll(): marking the client free at once would put
        the next job behind a computation nobody reads, or behind one that never stops."""
        try:
            if not (self._worker_ended or self.finished):
                self._stop_worker()
        finally:
            self.client.busy = False
            shutil.rmtree(self.folder, ignore_errors=True)

    def _stop_worker(self) -> None:
        """Cancel, drain the events until the worker acknowledges, or kill it at the deadline."""
        self.cancel()
        asked = self._cancel_requested_at if self._cancel_requested_at is not None else time.monotonic()
        # Nobody will read this job's result (the folder goes next), so the wait is never longer than
        # the plain grace, even for a job whose grace lets the worker save something first (Learn Style).
        deadline = min(asked + self.cancel_grace_s, time.monotonic() + CANCEL_GRACE_S)
        while True:
            event = self.client._next_event(max(0.0, deadline - time.monotonic()))
            if self._ends_job(event):
                self._worker_ended = True
                return
            if event.get("event") == "timeout" and time.monotonic() >= deadline:
                break
        self._worker_ended = True
        self.client.kill()


_SHARED: dict[str, WorkerClient] = {}
_LAST_TILES: dict[str, Any] = {}  # how the last restyled image was tiled, for the panel


def _note_tiles(event: protocol.Message) -> None:
    if "tile_size" in event:
        _LAST_TILES.update(tile_size=int(event["tile_size"]), auto=bool(event.get("auto_tile")),
                           tiles=int(event.get("tiles", 0)), passes=int(event.get("passes", 0)))


def last_tile_choice() -> str | None:
    """What the last restyled image ran as ("Auto: whole image, 1 pass"), or None before any."""
    if not _LAST_TILES:
        return None
    chosen = "Auto" if _LAST_TILES["auto"] else "Manual"
    tiles, passes = _LAST_TILES["tiles"], _LAST_TILES["passes"]
    runs = f"{passes} pass{'es' if passes != 1 else ''}"
    if tiles <= 1:
        return f"{chosen}: whole image, {runs}"
    return f"{chosen}: {tiles} tiles of {_LAST_TILES['tile_size']} px, {runs}"


def reported_devices() -> dict[str, bool] | None:
    """The devices a started worker reported (its torch knows), or None before any start."""
    return next((client.devices for client in _SHARED.values() if client.devices), None)


def shared_client(package_root: str, threads: int = 0) -> WorkerClient:
    """The one warm worker per extension root, kept between jobs."""
    client = _SHARED.get(package_root)
    if client is None:
        client = _SHARED[package_root] = WorkerClient(package_root, threads=threads)
    client.threads = threads
    return client


def shutdown_shared_clients() -> None:
    for client in _SHARED.values():
        client.shutdown()
    _SHARED.clear()
