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
from typing import TextIO

import numpy as np
import torch

from . import protocol
from .devices import available_devices
from .engine import RestyleOptions, RestyleReport, restyle
from .errors import JobCancelled, RestyleError
from .styles import build_style
from .styles.base import StyleNet

log = logging.getLogger("neural_restyle.worker")

PROGRESS_INTERVAL_S = 0.05


class Worker:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.out_lock = threading.Lock()
        self.inbox: queue.Queue[protocol.Message] = queue.Queue()
        self.cancelled_jobs: set[str] = set()
        self.models: dict[str, StyleNet] = {}

    def send(self, **message: object) -> None:
        with self.out_lock:
            self.out.write(protocol.encode(message))
            self.out.flush()

    def read_requests(self, stream: TextIO) -> None:
        for line in stream:
            if not line.strip():
                continue
            message = protocol.decode(line)
            if message.get("op") == "cancel":
                self.cancelled_jobs.add(str(message.get("job")))
            else:
                self.inbox.put(message)
        self.inbox.put({"op": "shutdown"})  # Blender went away: stop too

    def serve(self) -> None:
        self.send(event="ready", pid=os.getpid(), devices=available_devices(), torch=torch.__version__)
        while True:
            message = self.inbox.get()
            op = message.get("op")
            if op == "shutdown":
                return
            if op == "ping":
                self.send(event="pong", sent=message.get("sent"))
            elif op == "run":
                self.run_job(message)
            else:
                self.send(event="error", job=message.get("job"), message=f"unknown request '{op}'")

    def model(self, style_id: str) -> StyleNet:
        if style_id not in self.models:
            self.models[style_id] = build_style(style_id)
        return self.models[style_id]

    def run_job(self, message: protocol.Message) -> None:
        job = str(message["job"])
        items = message["items"]
        try:
            options = RestyleOptions(**message.get("options", {})).validated()
            model = self.model(str(message["style"]))
        except (RestyleError, ValueError, TypeError) as exc:
            self.send(event="error", job=job, message=str(exc))
            return
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
            except (RestyleError, ValueError, OSError) as exc:
                self.send(event="item_failed", job=job, item=item["id"], message=str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - a model failure must reach the user, not kill the worker
                log.exception("restyle failed")
                self.send(event="error", job=job, message=f"{type(exc).__name__}: {exc}")
                return
            self.send(
                event="item_done", job=job, item=item["id"], seconds=time.perf_counter() - started,
                tiles=report.tiles, passes=report.passes, seamless=report.seamless,
                device=report.device, dtype=report.dtype, warning=report.warning,
            )
        self.send(event="done", job=job)


def main() -> int:
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints cannot corrupt the protocol
    sys.stdout = sys.stderr
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="worker: %(message)s")
    worker = Worker(protocol_out)
    threading.Thread(target=worker.read_requests, args=(sys.stdin,), daemon=True).start()
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
