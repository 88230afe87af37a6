"""Evaluate the built-in depth model per scene family, against two baselines computed on the
same images: a constant and a ground-plane (vertical gradient) prior. Families held out of
training (tools/synth/plan.py HELDOUT_FAMILIES) are reported first and together: that is
the out-of-distribution figure, the one that counts.

    .venv/bin/python tools/eval_depth.py --data data/synth/ood data/synth/indist [--weights W]
        [--zoom 2] [--sheet eval_sheet.png]

AbsRel and delta1 after least-squares scale and shift alignment in inverse depth (sky,
where nothing was hit, excluded), averaged over images.
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

from ml.depth.builtin import estimate_fast_depth, load_fast_depth  # noqa: E402
from ml.depth.metrics import depth_errors, ground_plane_prior  # noqa: E402
from tools.synth.plan import HELDOUT_FAMILIES  # noqa: E402

METHODS = ("model", "constant", "ground plane")
OOD, IN_DISTRIBUTION = "out of distribution", "in distribution"
Scores = dict[str, dict[str, tuple[float, float, int]]]  # group -> method -> (AbsRel, delta1, images)


def evaluate(folders: list[Path], weights: Path, zoom: float = 1.0, mirrored: bool = True,
             sheet: Path | None = None) -> Scores:
    """Per family and per group (out of distribution, in distribution): mean AbsRel, delta1, count."""
    net = load_fast_depth(weights)
    rows: dict[str, dict[str, list[tuple[float, float]]]] = {}
    examples: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    seconds, count = 0.0, 0
    for path in sorted(p for folder in folders for p in glob.glob(str(folder / "*.npz"))):
        data = np.load(path)
        family = str(data["family"]) if "family" in data else "primitives"
        rgb, depth = data["rgb"].astype(np.float32) / 255, data["depth"].astype(np.float32)
        if zoom != 1.0:  # the same content at another pixel size, to measure scale generalisation
            size = (round(rgb.shape[0] * zoom), round(rgb.shape[1] * zoom))
            rgb = F.interpolate(torch.from_numpy(rgb).permute(2, 0, 1)[None], size=size, mode="bicubic",
                                align_corners=False, antialias=zoom < 1)[0].permute(1, 2, 0).clamp(0, 1).numpy()
        if not np.isfinite(depth).any():
            continue  # all sky: nothing to measure
        started = time.perf_counter()
        prediction = estimate_fast_depth(net, rgb, long_side=max(rgb.shape[:2]), mirrored=mirrored)
        seconds += time.perf_counter() - started
        count += 1
        if prediction.shape != depth.shape:
            reduced = F.interpolate(torch.from_numpy(prediction)[None, None], size=depth.shape, mode="area")
            prediction = reduced[0, 0].numpy()
        scores = {"model": depth_errors(prediction, depth),
                  "constant": depth_errors(np.ones_like(depth), depth),
                  "ground plane": depth_errors(ground_plane_prior(*depth.shape), depth)}
        group = OOD if family in HELDOUT_FAMILIES else IN_DISTRIBUTION
        for key in (family, group):
            for method, value in scores.items():
                rows.setdefault(key, {m: [] for m in METHODS})[method].append(value)
        if family in HELDOUT_FAMILIES and len(examples.setdefault(family, [])) < 4:
            examples[family].append((data["rgb"], depth, prediction))
    print(f"{count} images from {', '.join(map(str, folders))} at {zoom}x; "
          f"model {seconds / max(count, 1) * 1000:.1f} ms per image")
    if sheet is not None and examples:
        write_sheet(sheet, examples)
    return {key: {m: (float(np.mean([r[0] for r in v])), float(np.mean([r[1] for r in v])), len(v))
                  for m, v in methods.items()} for key, methods in rows.items()}


def _shade(disparity: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Inverse depth as grey levels (near is bright), robust to outliers."""
    values = disparity[mask] if mask.any() else disparity.ravel()
    low, high = np.percentile(values, (2, 98))
    grey = np.clip((disparity - low) / max(high - low, 1e-6), 0, 1)
    return (np.where(mask, grey, 0) * 255).astype(np.uint8)


def write_sheet(path: Path, examples: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]) -> None:
    """One row per example of the held-out families: photo | truth | prediction."""
    from PIL import Image

    rows = []
    for items in examples.values():
        for rgb, depth, prediction in items:
            mask = np.isfinite(depth) & (depth > 0)
            truth = _shade(np.where(mask, 1 / np.where(mask, depth, 1), 0), mask)
            predicted = _shade(prediction, np.ones_like(mask))
            rows.append(np.concatenate([rgb, *(np.repeat(g[..., None], 3, -1) for g in (truth, predicted))], 1))
    Image.fromarray(np.concatenate(rows, 0)).save(path)
    print(f"wrote {path}: photo | truth | prediction, {len(rows)} held-out-family images")


def report(scores: Scores) -> list[str]:
    """The table, out-of-distribution families first, then their group, then the rest."""
    held = sorted(k for k in scores if k in HELDOUT_FAMILIES)
    seen = sorted(k for k in scores if k not in HELDOUT_FAMILIES and k not in (OOD, IN_DISTRIBUTION))
    order = held + [k for k in (OOD,) if k in scores] + seen + [k for k in (IN_DISTRIBUTION,) if k in scores]
    lines = [f"{'':<22} {'n':>4} " + " ".join(f"{m + ' AbsRel':>19} {'delta1':>7}" for m in METHODS)
             + f" {'baseline/model':>15}"]
    for key in order:
        values = scores[key]
        ratio = min(values["constant"][0], values["ground plane"][0]) / max(values["model"][0], 1e-9)
        label = f"{key} (held out)" if key in HELDOUT_FAMILIES else key
        lines.append(f"{label:<22} {values['model'][2]:>4} "
                     + " ".join(f"{values[m][0]:>19.4f} {values[m][1]:>7.4f}" for m in METHODS)
                     + f" {ratio:>14.2f}x")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, nargs="+",
                        default=[ROOT / "data" / "synth" / "ood", ROOT / "data" / "synth" / "indist"])
    parser.add_argument("--weights", type=Path, default=ROOT / "ml" / "weights" / "depth_fast.safetensors")
    parser.add_argument("--zoom", type=float, default=1.0, help="resize the renders by this factor first")
    parser.add_argument("--single", action="store_true", help="no averaging with the mirrored image")
    parser.add_argument("--sheet", type=Path, help="write photo | truth | prediction of held-out families here")
    args = parser.parse_args()
    scores = evaluate(args.data, args.weights, args.zoom, not args.single, args.sheet)
    print("\n".join(report(scores)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
