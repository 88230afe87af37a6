"""Each built-in style on a photographic image, whole vs tiled: time ratio and max difference.

    .venv/bin/python tools/bench/bench_tiling.py [--size 1024] [--tile 256]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ml.models.catalog import style_ids  # noqa: E402
from ml.restyle.engine import RestyleOptions, RestyleReport, restyle  # noqa: E402
from ml.styles import build_style  # noqa: E402
from tests.ml.synthetic import photo_like  # noqa: E402
from tools.bench.machine import describe  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--tile", type=int, default=256)
    args = parser.parse_args()
    image = photo_like(args.size, args.size, seed=0)
    mp = args.size * args.size / 1e6
    print(describe("cpu"))
    print(f"{args.size}x{args.size} ({mp:.2f} MP), tile {args.tile}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'style':<11} {'whole s':>8} {'tiled s':>8} {'tiled/whole':>11} {'tiles':>5} {'MP/s':>6} "
          f"{'max diff (8-bit steps)':>22}")
    for style in style_ids():
        model = build_style(style)
        started = time.perf_counter()
        whole = restyle(model, image, RestyleOptions(seamless="off", tile_size=8192))
        whole_s = time.perf_counter() - started
        report = RestyleReport()
        started = time.perf_counter()
        tiled = restyle(model, image, RestyleOptions(seamless="off", tile_size=args.tile), report=report)
        tiled_s = time.perf_counter() - started
        diff = float(np.abs(whole - tiled).max()) * 255
        print(f"{style:<11} {whole_s:8.2f} {tiled_s:8.2f} {tiled_s / whole_s:11.2f} {report.tiles:5d} "
              f"{mp / tiled_s:6.2f} {diff:22.4f}")


if __name__ == "__main__":
    main()
