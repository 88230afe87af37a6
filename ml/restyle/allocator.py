"""Freed feature maps go back to the operating system after every tile (glibc only).

glibc serves allocations below a threshold from its heap and raises that threshold, up to
32 MB, whenever a large block is freed. A tiled run allocates and frees tensors of a few to
a few tens of MB for every tile, and the freed ones stay in the heap between live blocks,
held by the process though no tensor uses them. ``malloc_trim`` after each tile hands every
free page of the heap back. Within a tile the heap still reuses freed blocks, which a fixed
low mmap threshold (each tensor its own mapping) does not: that costs time in page faults
for little less peak. ``tools/bench/bench_memory.py`` measures both (``--no-trim``).
"""

from __future__ import annotations

import ctypes
import functools
import sys

_enabled = True


def set_trimming(enabled: bool) -> None:
    """Turn trimming off (``--no-trim`` of the benchmarks) or back on, for this process."""
    global _enabled
    _enabled = enabled


@functools.cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def trim_heap() -> bool:
    """Return the heap's free pages to the system; False where there is no glibc (or
    trimming is off, or nothing could be returned)."""
    trim = _malloc_trim() if _enabled else None
    return bool(trim(0)) if trim is not None else False
