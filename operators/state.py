"""Whether a job runs, and what the panel shows about it (module state: never saved in the .blend).

The job runner (operators/jobs.py) is the only writer; operators ask job_running() in poll().
"""

from __future__ import annotations

from dataclasses import dataclass

import bpy


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


def job_running(operator: type[bpy.types.Operator]) -> bool:
    """poll() part for every operator that starts a job: one job at a time, and the greyed-out button says why."""
    if CURRENT.running:
        operator.poll_message_set("A restyle job is already running (press Esc to cancel it)")
        return True
    return False
