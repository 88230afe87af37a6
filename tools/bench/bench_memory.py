"""Peak resident memory of one AnimeGANv2 texture run through the engine, in a fresh process.

    .venv/bin/python tools/bench/bench_memory.py --size 8192 --tile 512 --verbose
    .venv/bin/python tools/bench/bench_memory.py --size 1024 --tile 512 --check
    .venv/bin/python tools/bench/bench_memory.py --size 8192 --tile 0 --budget 2.4   (Auto, 4 GB in all)

Prints the process's resident memory after importing torch and building the model (the
floor), its peak during the run, the size of the input image itself, and the run time.
``--check`` also runs the same image whole (one tile) and prints the largest difference
between the tiled and the whole-image result in 8-bit steps: use it at a size where the
whole image fits, with the tile size of the big run. ``--budget`` is what the engine may
plan with beside the input (the result array, the tile's working set and the activations
the exact passes store): the resident peak stays within the floor plus that budget.

What it measured for ml/restyle/allocator.py (2026-11-21, CPU): without trimming, an 8K
AnimeGANv2 run's heap held 0.67 GB that no tensor was using; a fixed low mmap threshold
instead of trimming cost 15-20% more time in page faults for 0.1 GiB less peak at 1024² in
512 px tiles (commit 01da3f8; ``--no-trim`` compares).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def child(size: int, tile: int, precision: str, check: bool, verbose: bool, no_trim: bool, budget: int) -> None:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    from ml.networks.animegan2 import AnimeGAN2
    from ml.restyle.allocator import set_trimming
    from ml.restyle.engine import RestyleOptions, RestyleReport, restyle
    from tests.ml.checkpoints import seeded
    from tests.ml.synthetic import photo_like

    set_trimming(not no_trim)
    model = seeded(AnimeGAN2())
    # RGBA float32, the way Blender hands pixels over, filled in bands so that building it
    # adds nothing to the peak beyond the image itself.
    image = np.empty((size, size, 4), np.float32)
    for r in range(0, size, 512):
        image[r : r + 512, :, :3] = photo_like(min(512, size - r), size, seed=r)
    image[..., 3] = 1.0
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    report = RestyleReport()
    started = time.perf_counter()
    shown = [-1.0]

    def progress(done: float, message: str) -> None:
        if done - shown[0] >= 0.01 or done >= 1.0:  # a line per percent, on stderr
            shown[0] = done
            print(f"{time.perf_counter() - started:7.0f} s {done:6.1%} {message}", file=sys.stderr, flush=True)

    options = RestyleOptions(tile_size=tile, precision=precision, seamless="off", memory_budget=budget)
    tiled = restyle(model, image, options, progress=progress if verbose else None, report=report)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {"floor": floor, "peak": peak, "image": image.nbytes, "seconds": seconds, "tiles": report.tiles,
              "passes": report.passes, "threads": torch.get_num_threads(), "tile": report.tile_size,
              "stored": report.stored_peak}
    if check:
        whole = restyle(model, image, RestyleOptions(tile_size=size, precision=precision, seamless="off"))
        result["max_diff_8bit"] = float(np.abs(tiled - whole).max() * 255)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--tile", type=int, default=1024, help="0: Auto")
    parser.add_argument("--budget", type=float, default=0.0,
                        help="GB the engine may plan with (result, tile, stored activations); 0: half the free memory")
    parser.add_argument("--precision", default="full", choices=("full", "reduced"))
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print progress (elapsed time, share done) on stderr")
    parser.add_argument("--no-trim", action="store_true",
                        help="keep freed memory in glibc's heap between tiles (the engine trims it after each tile)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.size, args.tile, args.precision, args.check, args.verbose, args.no_trim, int(args.budget * 1e9))
        return
    command = [sys.executable, __file__, "--child", "--size", str(args.size), "--tile", str(args.tile),
               "--precision", args.precision, "--budget", str(args.budget)]
    command += (["--check"] if args.check else []) + (["--verbose"] if args.verbose else [])
    command += ["--no-trim"] if args.no_trim else []
    output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    gib = 1024**3
    sys.path.insert(0, str(ROOT))
    from tools.bench.machine import describe  # torch is imported here only after the measured child ran

    print(describe())
    allocator = "heap not trimmed" if args.no_trim else "heap trimmed after each tile"
    print(f"AnimeGANv2, {args.size}x{args.size} RGBA float32 ({figures['image'] / gib:.2f} GiB), tile {args.tile}, "
          f"{allocator}, "
          f"{args.precision}, {figures['threads']} threads: {figures['tiles']} tiles of {figures['tile']} px, "
          f"{figures['passes']} passes, {figures['seconds']:.0f} s; budget "
          f"{f'{args.budget:.2f} GB' if args.budget else 'half the free memory'}, "
          f"stored activations at most {figures['stored'] / 1e9:.2f} GB")
    print(f"peak resident {figures['peak'] / gib:.2f} GiB = {figures['peak'] / 1e9:.2f} GB "
          f"(before the run {figures['floor'] / gib:.2f} GiB; "
          f"the run added {(figures['peak'] - figures['floor']) / gib:.2f} GiB = "
          f"{(figures['peak'] - figures['floor']) / figures['image']:.2f}x the input image)")
    if "max_diff_8bit" in figures:
        print(f"tiled vs whole image: max difference {figures['max_diff_8bit']:.4f} 8-bit steps")


if __name__ == "__main__":
    main()
