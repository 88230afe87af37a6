"""The inference process: ``python -m ml.runtime.worker`` with the extension root on sys.path.

It keeps models loaded between jobs, reads requests on stdin in a thread (so a cancel
arrives while a job is running) and answers on a private copy of stdout; anything
else that prints, torch included, goes to stderr.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from ..depth.anything import estimate_depth
from ..depth.builtin import estimate_fast_depth
from ..errors import JobCancelled, RestyleError
from ..models import registry
from ..models.loading import build, read_state_dict
from ..models.registry import LoadedModel, ModelDescriptor
from ..networks.adain import AdaIN
from ..networks.base import StyleNet
from ..networks.depth_anything import DepthAnythingV2
from ..networks.fast_depth import FastDepth
from ..restyle.engine import RestyleReport, restyle
from . import protocol
from .devices import available_devices, reduced_dtype, resolve_device
from .protocol import DepthRequest, Event, InspectRequest, Item, LearnRequest, Op, PingRequest, RunRequest

log = logging.getLogger("neural_restyle.worker")

PROGRESS_INTERVAL_S = 0.05
HEARTBEAT_S = 1.0  # the client kills a worker silent for much longer (ml.runtime.client.LIVENESS_TIMEOUT_S)


def _use_threads(threads: int) -> None:
    """The CPU threads preference of the job (0: torch's own choice, left as it is)."""
    if threads > 0:
        torch.set_num_threads(threads)


class Worker:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.out_lock = threading.Lock()
        self.inbox: queue.Queue[protocol.Message] = queue.Queue()
        self.cancelled_jobs: set[str] = set()
        self.models: dict[tuple, LoadedModel] = {}
        # What each request does. Cancel is read by read_requests() (it must arrive while a job runs)
        # and shutdown by serve(); together they are every Op (tests/ml/test_protocol.py checks it).
        self.handlers: dict[Op, Callable[[Any], None]] = {
            Op.PING: self.pong,
            Op.RUN: self.run_job,
            Op.DEPTH: self.run_depth,
            Op.INSPECT: self.inspect,
            Op.LEARN: self.learn,
        }

    def send(self, **message: object) -> None:
        with self.out_lock:
            self.out.write(protocol.encode(message))
            self.out.flush()

    def heartbeat(self, interval: float = HEARTBEAT_S) -> None:
        """Say "alive" every ``interval`` seconds from a thread of its own, busy or idle: the client
        tells a long job from a stopped or deadlocked process by these."""
        while True:
            time.sleep(interval)
            try:
                self.send(event=Event.HEARTBEAT)
            except (OSError, ValueError):  # the client closed the pipe: nothing left to tell
                return

    def read_requests(self, stream: TextIO) -> None:
        for line in stream:
            if not line.strip():
                continue
            try:
                message = protocol.decode(line)
            except ValueError:
                log.warning("ignored a malformed request: %.80r", line)
                continue
            if message.get("op") == Op.CANCEL:
                self.cancelled_jobs.add(str(message.get("job")))
            else:
                self.inbox.put(message)
        self.inbox.put({"op": Op.SHUTDOWN.value})  # Blender went away: stop too

    def serve(self) -> None:
        self.send(event=Event.READY, pid=os.getpid(), devices=available_devices(), torch=torch.__version__,
                  torch_path=torch.__file__)
        while True:
            message = self.inbox.get()
            if message.get("op") == Op.SHUTDOWN:
                return
            self.handle(message)

    def handle(self, message: protocol.Message) -> None:
        """The one guarded handler and the one error policy: whatever fails in a request (a malformed
        request, a bad model or input, a bug) is answered as an ``error`` event naming its ml.errors
        class and message, for its job or request, and the warm worker carries on."""
        try:
            request = protocol.parse_request(message)
            handler = self.handlers.get(request.op)
            if handler is None:
                raise protocol.ProtocolError(f"the worker does not serve '{request.op}' requests here")
            handler(request)
        except Exception as exc:  # noqa: BLE001 - a bad model, input or request must not kill the worker
            if not isinstance(exc, (RestyleError, ValueError, TypeError, KeyError, OSError)):
                log.exception("request failed")  # a bug: its traceback goes to the log, its name to the user
            self.send(event=Event.ERROR, job=message.get("job"), request=message.get("request"),
                      **protocol.failure_fields(exc))

    def pong(self, request: PingRequest) -> None:
        self.send(event=Event.PONG, sent=request.sent)

    def learn(self, request: LearnRequest) -> None:
        """Learn Style from Images (ml/training/job.py reads the request's own fields)."""
        from ..training.job import run_learn

        run_learn(dict(request.fields), self.send, lambda: request.job in self.cancelled_jobs)

    def model(self, style_id: str, files: Mapping[str, str]) -> StyleNet:
        """A style's network (ml.models.registry describes it), cached while its files are unchanged."""
        loaded = self.loaded(registry.style_for_files(style_id, files), files)
        assert isinstance(loaded.network, StyleNet)  # registry.load_model checks a style builds a StyleNet
        return loaded.network

    def loaded(self, descriptor: ModelDescriptor, files: Mapping[str, str]) -> LoadedModel:
        """One network per model id, rebuilt when its files (or its metric range) change."""
        stamp = tuple(sorted((role, path, os.stat(path).st_mtime_ns) for role, path in files.items() if path))
        key = (descriptor.id, stamp, descriptor.max_depth)
        if key not in self.models:
            built = descriptor.build({role: Path(path) for role, path in files.items() if path})
            self.models = {k: v for k, v in self.models.items() if k[0] != descriptor.id}  # one version per model
            self.models[key] = built
        return self.models[key]

    def run_depth(self, request: DepthRequest) -> None:
        """Depth maps for the job's images with a Depth Anything V2 file, or the built-in depth model."""
        job = request.job
        loaded = self.loaded(registry.depth_for_files(request.files, request.max_depth), request.files)
        net = loaded.network
        _use_threads(request.threads)
        device, warning = resolve_device(request.device)
        # bf16 moves depth by a small fraction of its range (tools/bench/bench_depth.py): allowed.
        reduced = reduced_dtype(device, request.precision, model_allows=True)
        for item in request.items:
            if job in self.cancelled_jobs:
                self.send(event=Event.CANCELLED, job=job)
                return
            started = time.perf_counter()
            try:
                image = np.load(item.input, allow_pickle=False)
                if isinstance(net, FastDepth):
                    depth = estimate_fast_depth(net, image)
                else:
                    assert isinstance(net, DepthAnythingV2)
                    depth = estimate_depth(net, image, device, reduced)
                np.save(item.output, depth, allow_pickle=False)
            # This photo alone failed (unreadable, or too big for the memory left): the model is fine.
            except (RestyleError, ValueError, OSError, MemoryError, torch.OutOfMemoryError) as exc:
                self.send(event=Event.ITEM_FAILED, job=job, item=item.id, **protocol.failure_fields(exc))
                continue
            self.send(event=Event.ITEM_DONE, job=job, item=item.id, seconds=time.perf_counter() - started,
                      device=str(device), warning=warning)
        self.send(event=Event.DONE, job=job)

    def inspect(self, request: InspectRequest) -> None:
        """Which architecture a file holds, without keeping it."""
        spec, net = build(read_state_dict(Path(request.path)), Path(request.path).name)
        params = sum(p.numel() for p in net.parameters())
        self.send(event=Event.INSPECTED, request=request.request, arch=spec.id, name=spec.name, params=params)

    def run_job(self, request: RunRequest) -> None:
        job = request.job
        items = request.items
        options = request.options.validated()  # failures: handle()'s guard
        model = self.model(request.style, request.files)
        if isinstance(model, AdaIN):
            if not request.style_image:
                raise RestyleError("Pick a style image for the arbitrary style")
            model.set_style(_style_tensor(np.load(request.style_image, allow_pickle=False)), request.style_weight)
        _use_threads(request.threads)
        last = 0.0

        def is_cancelled() -> bool:
            return job in self.cancelled_jobs

        for index, item in enumerate(items):

            def progress(fraction: float, text: str, index: int = index, item: Item = item) -> None:
                nonlocal last
                now = time.monotonic()
                if now - last >= PROGRESS_INTERVAL_S or fraction >= 1.0:
                    last = now
                    overall = (index + fraction) / len(items)
                    self.send(event=Event.PROGRESS, job=job, fraction=overall, item=item.id, text=text)

            started = time.perf_counter()
            report = RestyleReport()
            try:
                image = np.load(item.input, allow_pickle=False)
                result = restyle(model, image, options, progress, is_cancelled, report)
                partial = item.output + ".partial.npy"
                np.save(partial, result, allow_pickle=False)
                os.replace(partial, item.output)
            except JobCancelled:
                self.send(event=Event.CANCELLED, job=job)
                return
            except (RestyleError, ValueError, OSError) as exc:  # this image alone failed: the others go on
                self.send(event=Event.ITEM_FAILED, job=job, item=item.id, **protocol.failure_fields(exc))
                continue
            self.send(
                event=Event.ITEM_DONE, job=job, item=item.id, seconds=time.perf_counter() - started,
                tiles=report.tiles, passes=report.passes, seamless=report.seamless,
                tile_size=report.tile_size, auto_tile=report.auto_tile,
                device=report.device, dtype=report.dtype, warning=report.warning,
            )
        self.send(event=Event.DONE, job=job)


STYLE_IMAGE_MAX_SIDE = 512  # AdaIN's style statistics need no more; bigger only costs time


def _style_tensor(style: np.ndarray) -> torch.Tensor:
    """A style image of any channel layout as (1, 3, H, W) in [0, 1], at most 512 px."""
    if style.ndim == 2:
        style = style[..., None]
    rgb = np.repeat(style[..., :1], 3, axis=2) if style.shape[2] <= 2 else style[..., :3]
    tensor = torch.from_numpy(np.clip(np.ascontiguousarray(rgb, dtype=np.float32), 0, 1)).permute(2, 0, 1)[None]
    longest = max(tensor.shape[-2:])
    if longest > STYLE_IMAGE_MAX_SIDE:
        scale = STYLE_IMAGE_MAX_SIDE / longest
        tensor = torch.nn.functional.interpolate(tensor, scale_factor=scale, mode="area")
    return tensor


def main() -> int:
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints cannot corrupt the protocol
    sys.stdout = sys.stderr
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="worker: %(message)s")
    worker = Worker(protocol_out)
    threading.Thread(target=worker.read_requests, args=(sys.stdin,), daemon=True).start()
    threading.Thread(target=worker.heartbeat, daemon=True).start()
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
