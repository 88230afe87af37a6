"""Blender image <-> numpy for a 4K image: foreach_get/foreach_set against the list path.

    .venv/bin/python tools/bench/bench_pixels.py [--size 4096]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="restyle-bench-"))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from tools.bench.timing import best_of  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=4096)
    size = parser.parse_args().size
    image = bpy.data.images.new("bench", size, size, alpha=True)
    values = np.random.default_rng(0).random(size * size * 4, dtype=np.float32)
    buffer = np.empty_like(values)

    read_fast = best_of(lambda: image.pixels.foreach_get(buffer), warm_up=False)
    read_slow = best_of(lambda: np.array(list(image.pixels), dtype=np.float32), repeat=1, warm_up=False)
    write_fast = best_of(lambda: image.pixels.foreach_set(values), warm_up=False)
    write_slow = best_of(lambda: image.pixels.__setitem__(slice(None), values.tolist()), repeat=1, warm_up=False)
    mp = size * size / 1e6
    print(f"image {size}x{size} RGBA ({mp:.1f} MP)")
    print(f"read : foreach_get {read_fast:7.3f} s   list(image.pixels) {read_slow:7.3f} s   "
          f"ratio {read_slow / read_fast:6.1f}x")
    print(f"write: foreach_set {write_fast:7.3f} s   pixels[:] = list   {write_slow:7.3f} s   "
          f"ratio {write_slow / write_fast:6.1f}x")


if __name__ == "__main__":
    main()
