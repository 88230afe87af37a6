"""What the panel shows about a running job (module state: never saved in the .blend)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class JobStatus:
    running: bool = False
    fraction: float = 0.0
    text: str = ""


CURRENT = JobStatus()
