"""Freed feature maps go back to the operating system at once (glibc only).

glibc serves allocations below a threshold from its heap and raises that threshold, up to
32 MB, whenever a large block is freed. A tiled run allocates and frees tensors of a few to
a few tens of MB for every tile, and those then pile up in the heap: in an 8K AnimeGANv2
run the heap held 0.67 GB that no tensor was using (``tools/bench/bench_memory.py``).
A fixed threshold gives each tensor of at least 1 MB its own mapping, returned on free.
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3  # mallopt parameter number in glibc's malloc.h
THRESHOLD_BYTES = 1 << 20


def return_freed_memory(threshold: int = THRESHOLD_BYTES) -> bool:
    """Set glibc's mmap threshold for this process; False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
