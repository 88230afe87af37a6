"""What the panel shows about a running job (module state: never saved in the .blend)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class JobStatus:
    running: bool = False
    fraction: float = 0.0
    text: str = ""


CURRENT = JobStatus()


def begin(text: str) -> None:
    CURRENT.running, CURRENT.fraction, CURRENT.text = True, 0.0, text


def update(fraction: float, text: str) -> None:
    CURRENT.fraction, CURRENT.text = fraction, text


def end() -> None:
    """Always reached (the job runner calls it in ``finally``): a flag left set greys out every button."""
    CURRENT.running, CURRENT.fraction, CURRENT.text = False, 0.0, ""
