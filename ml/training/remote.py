"""Blender's side of a Learn Style job: hand the images to the worker, follow its progress
and previews, stop it. Torch-free (it runs in Blender's process); see :mod:`.job` for the
worker's side of the request.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import JobCancelled, WorkerDied, WorkerFailed
from ..runtime import scratch
from ..runtime.client import _EOF, CANCEL_GRACE_S, Job, WorkerClient
from ..runtime.protocol import Event, rebuilt_failure

# The shortest side an image may have (training crops are cut from it). Here, torch-free, so that
# Blender's side checks each file at its real size before any work; the worker (data.py) checks again.
MIN_SIDE = 32


class LearnJob(Job):
    """One running Learn Style job; a RunningJob for operators/jobs.py. The worker client's
    Job drives it (events, liveness, cancel, clean-up); only the events differ."""

    cancel_grace_s = CANCEL_GRACE_S + 30  # a cancel saves the best result first: a little longer grace
    phase = "while learning the style"

    def __init__(self, client: WorkerClient, job_id: str, folder: str, output: str) -> None:
        super().__init__(client, job_id, folder, [])
        self.output = output
        self.text = "preparing the images"
        self.preview: np.ndarray | None = None
        self.preview_step = 0
        self.card: dict[str, Any] | None = None

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == _EOF:
            raise WorkerDied(self.client._death_message("while learning the style"))
        if event.get("job") not in (None, self.id):
            return
        if kind == Event.PROGRESS:
            self.fraction, self.text = float(event["fraction"]), str(event.get("text", ""))
        elif kind == Event.LEARN_PREVIEW:
            try:
                self.preview = np.load(str(event["path"]), allow_pickle=False)
                self.preview_step = int(event.get("step", 0))
            except (OSError, ValueError):
                pass  # the next preview replaces it; a missed one changes nothing
        elif kind == Event.LEARNED:
            self.card = dict(event.get("card") or {})
        elif kind == Event.CANCELLED:
            raise JobCancelled("Cancelled before the first training step: no style was made")
        elif kind == Event.ERROR:
            raise rebuilt_failure(event)  # the class the worker raised, as for every other job
        elif kind == Event.DONE:
            self.fraction, self.finished = 1.0, True
            self.client.busy = False

    def cancel(self) -> None:
        """Stop training; the worker still saves the best result so far (poll() then finishes)."""
        if not self.finished and self._cancel_requested_at is None:
            self.text = "stopping: saving the best result so far"
        super().cancel()


def submit_learn(
    client: WorkerClient,
    style_images: Sequence[tuple[str, np.ndarray]],
    content_images: Sequence[np.ndarray],
    content_files: Sequence[str],
    options: dict[str, Any],
    name: str,
    vgg: str = "",
    preview: np.ndarray | None = None,
    checkpoint: str = "",
    resume: bool = False,
) -> LearnJob:
    """Write the arrays into a private job folder and start learning; the style is saved in
    that folder as ``style.safetensors`` (+ ``style.json``) for the caller to keep."""
    if client.busy:
        raise WorkerFailed("Another restyle job is running: try again when it has finished")
    client.start()
    folder = scratch.make_folder("learn")
    try:
        def saved(name: str, array: np.ndarray) -> str:
            path = os.path.join(folder, name)
            np.save(path, np.ascontiguousarray(array), allow_pickle=False)
            return path

        style_paths = [saved(f"style{i}.npy", array) for i, (_, array) in enumerate(style_images)]
        content_paths = [saved(f"content{i}.npy", array) for i, array in enumerate(content_images)]
        output = os.path.join(folder, "style.safetensors")
        job = LearnJob(client, f"learn-{next(client._job_ids)}", folder, output)
        client._send(
            op="learn", job=job.id, style_images=style_paths, style_names=[n for n, _ in style_images],
            content_images=content_paths, content_files=list(content_files), options=options, output=output,
            name=name, vgg=vgg, checkpoint=checkpoint, resume=resume,
            preview=saved("preview_source.npy", preview) if preview is not None else "",
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    client.busy = True
    return job
