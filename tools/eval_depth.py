"""Evaluate the built-in depth model on held-out synthetic renders, against two baselines
computed on the same images: a constant and a ground-plane (vertical gradient) prior.

    .venv/bin/python tools/eval_depth.py --data data/synth/heldout [--weights W] [--zoom 2]

AbsRel and delta1 after least-squares scale and shift alignment in inverse depth.
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ml.depth_metrics import depth_errors, ground_plane_prior  # noqa: E402
from ml.fast_depth import estimate_fast_depth, load_fast_depth  # noqa: E402


def evaluate(folder: Path, weights: Path, zoom: float = 1.0, mirrored: bool = True) -> dict[str, tuple[float, float]]:
    net = load_fast_depth(weights)
    results: dict[str, list[tuple[float, float]]] = {"model": [], "constant": [], "ground plane": []}
    seconds = 0.0
    for path in sorted(glob.glob(str(folder / "*.npz"))):
        data = np.load(path)
        rgb, depth = data["rgb"].astype(np.float32) / 255, data["depth"].astype(np.float32)
        if zoom != 1.0:  # the same content at another pixel size, to measure scale generalisation
            size = (round(rgb.shape[0] * zoom), round(rgb.shape[1] * zoom))
            rgb = F.interpolate(torch.from_numpy(rgb).permute(2, 0, 1)[None], size=size, mode="bicubic",
                                align_corners=False, antialias=zoom < 1)[0].permute(1, 2, 0).clamp(0, 1).numpy()
        started = time.perf_counter()
        prediction = estimate_fast_depth(net, rgb, long_side=max(rgb.shape[:2]), mirrored=mirrored)
        seconds += time.perf_counter() - started
        if prediction.shape != depth.shape:
            reduced = F.interpolate(torch.from_numpy(prediction)[None, None], size=depth.shape, mode="area")
            prediction = reduced[0, 0].numpy()
        results["model"].append(depth_errors(prediction, depth))
        results["constant"].append(depth_errors(np.ones_like(depth), depth))
        results["ground plane"].append(depth_errors(ground_plane_prior(*depth.shape), depth))
    count = len(results["model"])
    print(f"{count} held-out images from {folder} at {zoom}x; model {seconds / max(count, 1) * 1000:.1f} ms per image")
    return {name: (float(np.mean([r[0] for r in rows])), float(np.mean([r[1] for r in rows])))
            for name, rows in results.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "synth" / "heldout")
    parser.add_argument("--weights", type=Path, default=ROOT / "ml" / "weights" / "depth_fast.safetensors")
    parser.add_argument("--zoom", type=float, default=1.0, help="resize the renders by this factor first")
    parser.add_argument("--single", action="store_true", help="no averaging with the mirrored image")
    args = parser.parse_args()
    table = evaluate(args.data, args.weights, args.zoom, not args.single)
    print(f"{'':<14} {'AbsRel':>8} {'delta1':>8}")
    for name, (abs_rel, delta1) in table.items():
        print(f"{name:<14} {abs_rel:8.4f} {delta1:8.4f}")
    best_baseline = min(table["constant"][0], table["ground plane"][0])
    print(f"AbsRel of the better baseline / model: {best_baseline / table['model'][0]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
