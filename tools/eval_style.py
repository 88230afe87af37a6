"""Offline measures of a learned style: how much like the style, how much of the content kept.

    .venv/bin/python tools/eval_style.py --model ml/weights/styles/halftone.safetensors --style halftone \
        --sheet /tmp/halftone_sheet.png

* **Style distance**: the sliced Wasserstein distance (SWD) between the distributions of
  7x7 RGB patches of the results and of the style images, on each level of a Laplacian
  pyramid, as in the progressive-GAN paper (Karras et al. 2018): 128 patches per image and
  level, descriptors normalised per channel over each set, 4 x 128 random projections
  (seeded), x 1000, averaged over the levels. Levels are taken at the same pixel scale for
  both sets (1, 1/2, 1/4, 1/8), since a style's marks have a size in pixels.
  A second figure normalises both sets with the style set's statistics, so colour and
  contrast count too.
* **Content score**: SSIM of the blurred luminance (Gaussian, sigma 3 px, which removes the
  style's fine marks) between each result and its content image.

Both are printed for the results on held-out content (HDRIs never used in training; see
tools/style_data.py) and for the content images themselves, the baseline. A contact sheet
shows exemplars, content and results.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import numpy as np  # noqa: E402
import style_data  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ml.models.loading import load_style_network  # noqa: E402
from ml.restyle.engine import RestyleOptions, restyle  # noqa: E402

PATCH = 7
PATCHES_PER_LEVEL = 128
LEVELS = 4
PROJECTIONS, REPEATS = 128, 4
SSIM_BLUR_SIGMA = 3.0

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image[..., :3], dtype=np.float32)).permute(2, 0, 1)[None]


def _blur5(x: torch.Tensor) -> torch.Tensor:
    k = _BINOMIAL.to(x.dtype)
    x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="reflect"), k.view(1, 1, 1, 5).repeat(3, 1, 1, 1), groups=3)
    return F.conv2d(F.pad(x, (0, 0, 2, 2), mode="reflect"), k.view(1, 1, 5, 1).repeat(3, 1, 1, 1), groups=3)


def laplacian_pyramid(image: np.ndarray, levels: int = LEVELS) -> list[torch.Tensor]:
    """Band-pass levels at scales 1, 1/2, ... and the low-pass rest as the last level."""
    x = _to_tensor(image)
    out = []
    for _ in range(levels - 1):
        low = _blur5(x)[..., ::2, ::2]
        up = F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)
        out.append(x - up)
        x = low
    out.append(x)
    return out


def _descriptors(pyramids: list[list[torch.Tensor]], level: int, rng: np.random.Generator) -> torch.Tensor:
    """(N, 3 * 7 * 7) patches of one pyramid level, 128 at random places in each image."""
    rows = []
    for pyramid in pyramids:
        band = pyramid[level][0]
        h, w = band.shape[-2:]
        if h < PATCH or w < PATCH:
            continue
        ys = rng.integers(0, h - PATCH + 1, PATCHES_PER_LEVEL)
        xs = rng.integers(0, w - PATCH + 1, PATCHES_PER_LEVEL)
        patches = [band[:, y : y + PATCH, x : x + PATCH].reshape(-1) for y, x in zip(ys, xs, strict=True)]
        rows.append(torch.stack(patches))
    return torch.cat(rows)


def _normalise(desc: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    shaped = desc.view(desc.shape[0], 3, -1)
    return ((shaped - mean[None, :, None]) / std[None, :, None]).view(desc.shape[0], -1)


def _channel_stats(desc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shaped = desc.view(desc.shape[0], 3, -1)
    return shaped.mean(dim=(0, 2)), shaped.std(dim=(0, 2)).clamp_min(1e-6)


def _sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator) -> float:
    count = min(len(a), len(b))
    a = a[torch.randperm(len(a), generator=generator)[:count]]
    b = b[torch.randperm(len(b), generator=generator)[:count]]
    total = 0.0
    for _ in range(REPEATS):
        directions = torch.randn(a.shape[1], PROJECTIONS, generator=generator, dtype=torch.float64)
        directions /= directions.norm(dim=0, keepdim=True)
        pa, _ = torch.sort(a.double() @ directions, dim=0)
        pb, _ = torch.sort(b.double() @ directions, dim=0)
        total += float((pa - pb).abs().mean())
    return total / REPEATS


def swd(images: list[np.ndarray], style: list[np.ndarray], seed: int = 0, per_set: bool = True) -> float:
    """Multi-scale patch SWD x 1000 between two image sets (lower: more alike)."""
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    distances = []
    ours, theirs = [laplacian_pyramid(i) for i in images], [laplacian_pyramid(i) for i in style]
    for level in range(LEVELS):
        a, b = _descriptors(ours, level, rng), _descriptors(theirs, level, rng)
        if per_set:  # the paper: each set normalised by its own statistics
            a, b = _normalise(a, *_channel_stats(a)), _normalise(b, *_channel_stats(b))
        else:  # both by the style's: colour and contrast count as well
            stats = _channel_stats(b)
            a, b = _normalise(a, *stats), _normalise(b, *stats)
        distances.append(_sliced_wasserstein(a, b, generator) * 1000)
    return float(np.mean(distances))


def _gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k /= k.sum()
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))


def _luma(image: np.ndarray) -> torch.Tensor:
    rgb = np.clip(np.asarray(image[..., :3], dtype=np.float64), 0, 1)
    return torch.from_numpy(rgb @ np.array([0.299, 0.587, 0.114]))[None, None]


def ssim_blurred_luma(result: np.ndarray, content: np.ndarray, sigma: float = SSIM_BLUR_SIGMA) -> float:
    """Mean SSIM (Gaussian window 1.5 px, K1 0.01, K2 0.03, range 1) of the two images'
    luminance after a Gaussian blur of ``sigma`` px."""
    a, b = _gaussian(_luma(result), sigma), _gaussian(_luma(content), sigma)
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = _gaussian(a, 1.5), _gaussian(b, 1.5)
    var_a = _gaussian(a * a, 1.5) - mu_a**2
    var_b = _gaussian(b * b, 1.5) - mu_b**2
    cov = _gaussian(a * b, 1.5) - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim.mean())


def contact_sheet(rows: list[list[np.ndarray]], side: int = 192) -> np.ndarray:
    """Rows of images, each fitted into a side x side cell (centre crop to square, area resize)."""
    columns = max(len(r) for r in rows)
    sheet = np.ones((len(rows) * (side + 4) + 4, columns * (side + 4) + 4, 3), np.float32)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            h, w = image.shape[:2]
            s = min(h, w)
            square = _to_tensor(image[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s])
            cell = F.interpolate(square, size=(side, side), mode="area")[0].permute(1, 2, 0).numpy()
            y, x = 4 + r * (side + 4), 4 + c * (side + 4)
            sheet[y : y + side, x : x + side] = np.clip(cell, 0, 1)
    return sheet


def evaluate(model_path: Path, style: list[np.ndarray], content: list[np.ndarray], seed: int = 0,
             options: RestyleOptions | None = None) -> tuple[dict, list[np.ndarray]]:
    options = options or RestyleOptions(device="cpu")
    _, net = load_style_network({"model": model_path})
    results = [restyle(net, image, options) for image in content]
    figures = {
        "swd_content": swd(content, style, seed), "swd_result": swd(results, style, seed),
        "swd_content_style_norm": swd(content, style, seed, per_set=False),
        "swd_result_style_norm": swd(results, style, seed, per_set=False),
        "ssim_result": float(np.mean([ssim_blurred_luma(r, c) for r, c in zip(results, content, strict=True)])),
        "ssim_content": 1.0,
        "images": len(content),
    }
    figures["swd_drop_percent"] = 100 * (1 - figures["swd_result"] / figures["swd_content"])
    figures["swd_drop_percent_style_norm"] = 100 * (1 - figures["swd_result_style_norm"]
                                                    / figures["swd_content_style_norm"])
    return figures, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--style", choices=sorted(style_data.STYLES), help="the procedural style's exemplars")
    source.add_argument("--images", nargs="+", help="style image files or folders")
    parser.add_argument("--content", nargs="+", help="held-out content (default: crops of the held-out HDRIs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet", type=Path, help="write a contact sheet PNG here")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    if args.style:
        style = list(style_data.exemplars(args.style).values())
    else:
        style = [style_data.load_image(p) for p in style_data.image_paths(args.images)]
    if args.content:
        content = [style_data.load_image(p) for p in style_data.image_paths(args.content)]
    else:
        content = list(style_data.heldout_crops().values())
    figures, results = evaluate(args.model, style, content, args.seed)
    print(f"{'':28s}{'style SWD':>12s}{'SWD (style-normalised)':>26s}{'content SSIM':>15s}")
    print(f"{'content images (baseline)':28s}{figures['swd_content']:12.1f}{figures['swd_content_style_norm']:26.1f}"
          f"{1.0:15.3f}")
    print(f"{'results':28s}{figures['swd_result']:12.1f}{figures['swd_result_style_norm']:26.1f}"
          f"{figures['ssim_result']:15.3f}")
    print(f"style distance drop: {figures['swd_drop_percent']:.1f}% "
          f"({figures['swd_drop_percent_style_norm']:.1f}% style-normalised) on {len(content)} held-out images")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    if args.sheet:
        step = max(1, len(content) // 6)
        style_data.save_png(args.sheet, contact_sheet([style[:6], content[::step][:6], results[::step][:6]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
