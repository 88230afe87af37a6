"""The worker's "learn" request: train a style from the arrays and files a job names.

Request fields: ``style_images`` (.npy paths) and ``style_names``; ``content_images`` (.npy
paths) and ``content_files`` (image files the worker reads itself: the bundled HDRIs as
.exr); ``options`` (LearnOptions fields, after the preset); ``output`` (.safetensors path);
``name``; ``vgg`` (the AdaIN VGG file or ""); ``checkpoint`` and ``resume``; ``preview``
(.npy path of the image the previews show, optional).

Events: ``progress`` (fraction, text with step, losses and ETA), ``learn_preview`` (path of
a .npy the client reads, step), ``learned`` (output, card path, card), then ``done``. A
cancel stops training and still saves the best result so far (``learned`` with
``card.cancelled``); a cancel before the first step answers ``cancelled``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RestyleError
from .data import read_exr_rgb, tone_map
from .learn import PRESETS, LearnOptions, LearnProgress, learn_style, save_style

PROGRESS_INTERVAL_S = 0.25
Send = Callable[..., None]


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def options_from(fields: dict[str, Any]) -> LearnOptions:
    """LearnOptions from a request: the preset's fields, then the ones given explicitly."""
    fields = dict(fields)
    preset = str(fields.pop("preset", "default"))
    if preset not in PRESETS:
        raise RestyleError(f"unknown quality preset '{preset}' (choose {', '.join(PRESETS)})")
    merged: dict[str, Any] = {**PRESETS[preset], **{k: v for k, v in fields.items() if v not in (None, 0, "")}}
    for key in ("style_scales", "content_scales"):
        if key in merged:
            merged[key] = tuple(merged[key])
    return LearnOptions(**merged).validated()


def read_content_file(path: Path) -> np.ndarray:
    """A content image the worker reads itself: an OpenEXR (tone-mapped) or a .npy array."""
    if path.suffix.lower() == ".exr":
        return tone_map(read_exr_rgb(path))
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False)
    raise RestyleError(f"{path.name}: the worker reads .exr and .npy content files only")


def run_learn(message: dict[str, Any], send: Send, is_cancelled: Callable[[], bool]) -> None:
    job = str(message["job"])
    style = [np.load(p, allow_pickle=False) for p in message["style_images"]]
    content = [np.load(p, allow_pickle=False) for p in message.get("content_images", [])]
    content += [read_content_file(Path(p)) for p in message.get("content_files", [])]
    options = options_from(dict(message.get("options", {})))
    preview_path = message.get("preview") or ""
    preview = np.load(preview_path, allow_pickle=False) if preview_path else None
    folder = Path(message["output"]).parent
    folder.mkdir(parents=True, exist_ok=True)
    last = 0.0

    def progress(p: LearnProgress) -> None:
        nonlocal last
        if p.preview is not None:
            target = folder / "preview.npy"
            partial = folder / "preview.partial.npy"
            np.save(partial, np.ascontiguousarray(p.preview, dtype=np.float32), allow_pickle=False)
            os.replace(partial, target)
            send(event="learn_preview", job=job, path=str(target), step=p.step)
        now = time.monotonic()
        if now - last >= PROGRESS_INTERVAL_S or p.step == p.steps or p.preview is not None:
            last = now
            losses = ", ".join(f"{k} {v:.3f}" for k, v in p.losses.items() if k in ("style", "content"))
            send(event="progress", job=job, fraction=p.step / p.steps,
                 text=f"step {p.step}/{p.steps}, {losses}, about {_duration(p.eta)} left")

    checkpoint = message.get("checkpoint") or None
    result = learn_style(
        style, content, options, style_names=list(message.get("style_names") or []) or None,
        vgg_path=Path(message["vgg"]) if message.get("vgg") else None,
        checkpoint=Path(checkpoint) if checkpoint else None, resume=bool(message.get("resume")),
        preview_image=preview, progress=progress, cancelled=is_cancelled,
    )
    if result.card["steps"] == 0:
        send(event="cancelled", job=job)
        return
    output = Path(message["output"])
    card_path = save_style(result, output, str(message.get("name") or output.stem))
    send(event="learned", job=job, output=str(output), card_path=str(card_path), card=result.card)
    send(event="done", job=job)
