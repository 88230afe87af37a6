"""Timing shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(run: Callable[[], object], repeat: int = 3, warm_up: bool = True) -> float:
    """The fastest of ``repeat`` timed calls in seconds (after one untimed call if ``warm_up``)."""
    if warm_up:
        run()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best
