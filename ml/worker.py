"""The inference process: ``python -m ml.worker`` with the extension root on sys.path.

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
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from . import protocol
from .depth import estimate_depth, load_depth_network
from .devices import available_devices, reduced_dtype, resolve_device
from .engine import RestyleReport, restyle
from .errors import JobCancelled, RestyleError
from .fast_depth import WEIGHTS as FAST_DEPTH_WEIGHTS
from .fast_depth import estimate_fast_depth, load_fast_depth
from .loading import build, load_style_network, read_state_dict
from .models.adain import AdaIN
from .models.depth_anything import DepthAnythingV2
from .models.fast_depth import FastDepth
from .options import RestyleOptions
from .styles import build_style
from .styles.base import StyleNet

log = logging.getLogger("neural_restyle.worker")

PROGRESS_INTERVAL_S = 0.05
HEARTBEAT_S = 1.0  # the client kills a worker silent for much longer (ml.client.LIVENESS_TIMEOUT_S)


class Worker:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.out_lock = threading.Lock()
        self.inbox: queue.Queue[protocol.Message] = queue.Queue()
        self.cancelled_jobs: set[str] = set()
        self.models: dict[tuple, torch.nn.Module] = {}

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
                self.send(event="heartbeat")
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
            if message.get("op") == "cancel":
                self.cancelled_jobs.add(str(message.get("job")))
            else:
                self.inbox.put(message)
        self.inbox.put({"op": "shutdown"})  # Blender went away: stop too

    def serve(self) -> None:
        self.send(event="ready", pid=os.getpid(), devices=available_devices(), torch=torch.__version__,
                  torch_path=torch.__file__)
        while True:
            message = self.inbox.get()
            if message.get("op") == "shutdown":
                return
            self.handle(message)

    def handle(self, message: protocol.Message) -> None:
        """The one guarded handler: whatever fails in a request becomes an error message for its
        job, and the warm worker carries on."""
        op = message.get("op")
        try:
            if op == "ping":
                self.send(event="pong", sent=message.get("sent"))
            elif op == "run":
                self.run_job(message)
            elif op == "inspect":
                self.inspect(message)
            elif op == "depth":
                self.run_depth(message)
            elif op == "learn":  # Learn Style from Images (ml/training/job.py)
                from .training.job import run_learn

                job = str(message.get("job"))
                run_learn(message, self.send, lambda: job in self.cancelled_jobs)
            else:
                raise RestyleError(f"unknown request '{op}'")
        except Exception as exc:  # noqa: BLE001 - a bad model, input or request must not kill the worker
            text = _failure_message(exc)
            if op == "inspect":
                self.send(event="inspected", request=message.get("request"), error=text)
            else:
                self.send(event="error", job=message.get("job"), message=text)

    def model(self, style_id: str, files: dict[str, str]) -> StyleNet:
        """A built-in style, or a network from model files (cached while the files are unchanged)."""
        stamp = tuple(sorted((role, path, os.stat(path).st_mtime_ns) for role, path in files.items()))
        key = (style_id, stamp)
        if key not in self.models:
            if files:
                _, net = load_style_network({role: Path(path) for role, path in files.items()})
            else:
                net = build_style(style_id)
            self.models = {k: v for k, v in self.models.items() if k[0] != style_id}  # one version per style
            self.models[key] = net
        cached = self.models[key]
        assert isinstance(cached, StyleNet)  # style ids never share a key with depth models
        return cached

    def run_depth(self, message: protocol.Message) -> None:
        """Depth maps for the job's images with a Depth Anything V2 checkpoint."""
        job = str(message["job"])
        model_file = message["files"].get("model") or ""
        path = Path(model_file) if model_file else FAST_DEPTH_WEIGHTS  # none given: the built-in model
        key = ("depth", ((str(path), os.stat(path).st_mtime_ns, message.get("max_depth")),))
        if key not in self.models:
            self.models[key] = (load_depth_network(path, message.get("max_depth")) if model_file
                                else load_fast_depth(path))
        net = self.models[key]
        device, warning = resolve_device(str(message.get("device", "auto")))
        # bf16 moves depth by 0.24% of its range on average (tools/bench/bench_depth.py): allowed.
        reduced = reduced_dtype(device, str(message.get("precision", "auto")), model_allows=True)
        for item in message["items"]:
            if job in self.cancelled_jobs:
                self.send(event="cancelled", job=job)
                return
            started = time.perf_counter()
            image = np.load(item["input"], allow_pickle=False)
            if isinstance(net, FastDepth):
                depth = estimate_fast_depth(net, image)
            else:
                assert isinstance(net, DepthAnythingV2)
                depth = estimate_depth(net, image, device, reduced)
            np.save(item["output"], depth, allow_pickle=False)
            self.send(event="item_done", job=job, item=item["id"], seconds=time.perf_counter() - started,
                      device=str(device), warning=warning)
        self.send(event="done", job=job)

    def inspect(self, message: protocol.Message) -> None:
        """Which architecture a file holds, without keeping it."""
        spec, net = build(read_state_dict(Path(message["path"])), Path(message["path"]).name)
        params = sum(p.numel() for p in net.parameters())
        self.send(event="inspected", request=message.get("request"), arch=spec.id, name=spec.name, params=params)

    def run_job(self, message: protocol.Message) -> None:
        job = str(message["job"])
        items = message["items"]
        options = RestyleOptions.from_wire(message.get("options", {})).validated()  # failures: handle()'s guard
        model = self.model(str(message["style"]), dict(message.get("files", {})))
        if isinstance(model, AdaIN):
            style_path = message.get("style_image")
            if not style_path:
                raise RestyleError("Pick a style image for the arbitrary style")
            model.set_style(_style_tensor(np.load(style_path, allow_pickle=False)),
                            float(message.get("style_weight", 1.0)))
        threads = int(message.get("threads", 0))
        if threads > 0:
            torch.set_num_threads(threads)
        last = 0.0

        def is_cancelled() -> bool:
            return job in self.cancelled_jobs

        for index, item in enumerate(items):

            def progress(fraction: float, text: str, index: int = index, item: dict = item) -> None:
                nonlocal last
                now = time.monotonic()
                if now - last >= PROGRESS_INTERVAL_S or fraction >= 1.0:
                    last = now
                    overall = (index + fraction) / len(items)
                    self.send(event="progress", job=job, fraction=overall, item=item["id"], text=text)

            started = time.perf_counter()
            report = RestyleReport()
            try:
                image = np.load(item["input"], allow_pickle=False)
                result = restyle(model, image, options, progress, is_cancelled, report)
                partial = item["output"] + ".partial.npy"
                np.save(partial, result, allow_pickle=False)
                os.replace(partial, item["output"])
            except JobCancelled:
                self.send(event="cancelled", job=job)
                return
            except (RestyleError, ValueError, OSError) as exc:  # this image alone failed
                self.send(event="item_failed", job=job, item=item["id"], message=str(exc))
                continue
            self.send(
                event="item_done", job=job, item=item["id"], seconds=time.perf_counter() - started,
                tiles=report.tiles, passes=report.passes, seamless=report.seamless,
                tile_size=report.tile_size, auto_tile=report.auto_tile,
                device=report.device, dtype=report.dtype, warning=report.warning,
            )
        self.send(event="done", job=job)


def _failure_message(exc: Exception) -> str:
    """The user's message for a failed job: our own errors as they are, anything else logged
    with its traceback and named by type."""
    if isinstance(exc, (RestyleError, ValueError, TypeError, KeyError, OSError)):
        return str(exc)
    log.exception("job failed")
    return f"{type(exc).__name__}: {exc}"


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
