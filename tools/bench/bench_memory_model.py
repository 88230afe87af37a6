"""Bytes per pixel of the peak working set of each style network, whole image, per precision:
the figures of ``ml/restyle/memory_model.py``'s table, from which Auto picks the tile size.

    nice .venv/bin/python tools/bench/bench_memory_model.py [--sizes 256 512] [--device cpu]

Each (network, precision) runs in a fresh process: the image is made first, then the
process's peak resident memory is read before and after a whole-image run at each size in
ascending order (a peak can only grow). The growth between the two sizes per added pixel,
less the 12 bytes per pixel of the float32 RGB result, is the network's working set per
pixel; what is left at the smaller size is the fixed part (weights, kernels' scratch).
On CUDA the same is read from torch.cuda.max_memory_allocated.

The table's run (2-core AMD EPYC, torch 2.13 CPU, 2026-11-30, ``--sizes 512 1024``): the
fixed part was at most 215 MB (AnimeGANv2), under FIXED_BYTES; 256² and 512² gave 1.3-2x the
per-pixel figures, the size-dependent part of kernels' scratch.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

NETWORKS = ("AnimeGAN2", "CycleGANGenerator", "TransformerNet", "AdaIN", "toon", "oil", "watercolor", "pencil",
            "pixel")
RESULT_BYTES_PER_PIXEL = 12  # the engine's float32 RGB output array


def build(name: str):
    import torch

    from ml.networks.adain import AdaIN
    from ml.networks.animegan2 import AnimeGAN2
    from ml.networks.cyclegan import CycleGANGenerator
    from ml.networks.transformer_net import TransformerNet
    from ml.styles import build_style
    from tests.ml.checkpoints import seeded
    from tests.ml.synthetic import photo_like

    networks = {"AnimeGAN2": AnimeGAN2, "CycleGANGenerator": CycleGANGenerator, "TransformerNet": TransformerNet,
                "AdaIN": AdaIN}
    if name not in networks:
        return build_style(name)
    model = seeded(networks[name]())
    if isinstance(model, AdaIN):
        model.set_style(torch.from_numpy(photo_like(256, 256, seed=3)).permute(2, 0, 1)[None])
    return model


def peak_bytes(device: str) -> int:
    import torch

    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated())
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(name: str, precision: str, sizes: list[int], device: str) -> None:
    from ml.restyle.engine import RestyleOptions, restyle
    from tests.ml.synthetic import photo_like

    model = build(name)
    images = {size: photo_like(size, size, seed=size) for size in sizes}
    floor = peak_bytes(device)
    peaks = []
    for size in sorted(sizes):
        options = RestyleOptions(tile_size=size, precision=precision, seamless="off", device=device)
        result = restyle(model, images[size], options)
        del result
        peaks.append(peak_bytes(device))
    print(json.dumps({"floor": floor, "peaks": peaks}))


def measure(name: str, precision: str, sizes: list[int], device: str) -> tuple[float, float]:
    """(bytes per pixel, fixed bytes) of one network at one precision."""
    command = [sys.executable, __file__, "--child", name, "--precision", precision, "--device", device,
               "--sizes", *map(str, sizes)]
    output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    small, large = sorted(sizes)[0], sorted(sizes)[-1]
    grown = figures["peaks"][-1] - figures["peaks"][0]
    per_pixel = grown / (large * large - small * small) - RESULT_BYTES_PER_PIXEL
    fixed = figures["peaks"][0] - figures["floor"] - per_pixel * small * small
    return max(per_pixel, 0.0), max(fixed, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[256, 512])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--networks", nargs="*", default=list(NETWORKS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="full", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.precision, args.sizes, args.device)
        return
    from tools.bench.machine import describe

    print(describe(args.device))
    print(f"whole-image peak working set, {args.device}, sizes {args.sizes[0]}² and {args.sizes[1]}²")
    print(f"{'network':<18} {'fp32 B/px':>9} {'reduced B/px':>12} {'fixed MB':>8}")
    for name in args.networks:
        full, fixed = measure(name, "full", args.sizes, args.device)
        reduced, _ = measure(name, "reduced", args.sizes, args.device)
        print(f"{name:<18} {full:9.0f} {reduced:12.0f} {fixed / 1e6:8.0f}", flush=True)


if __name__ == "__main__":
    main()
