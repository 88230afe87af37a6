"""Data for learning styles: the project's own procedural style exemplars, and content
images cut from the CC0 HDRIs bundled with Blender.

    .venv/bin/python tools/style_data.py exemplars --style halftone --out data/styles/halftone
    .venv/bin/python tools/style_data.py content --split heldout --out data/content/heldout

Exemplars are made here, by this file's own numpy code, so they are safe to ship: a
procedural scene (soft colour fields, shaded discs and bars, a horizon) is drawn in one of
the styles below. Content comes from Blender's studio-light HDRIs (Poly Haven, CC0):
five of the eight are for training and three are held out for evaluation, so a style is
never measured on content it was trained on.
"""

from __future__ import annotations

import argparse
import glob
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ml.training.data import read_exr_rgb, tone_map  # noqa: E402

TRAIN_HDRIS = ("city", "forest", "interior", "night", "sunrise")
HELDOUT_HDRIS = ("courtyard", "studio", "sunset")
EXEMPLAR_SIZE = 512
EXEMPLAR_SEEDS = (1, 2, 3, 4, 5, 6)


# -- content ------------------------------------------------------------------------------
def hdri_folder() -> Path:
    """Blender's bundled studio-light HDRIs (the bpy module's datafiles)."""
    try:
        import bpy  # the tools run on the .venv that has the bpy module

        return Path(bpy.utils.system_resource("DATAFILES")) / "studiolights" / "world"
    except ImportError:
        found = glob.glob(str(ROOT / ".venv/lib/python3*/site-packages/bpy/*/datafiles/studiolights/world"))
        if not found:
            raise SystemExit("no bpy module found: pass --content DIR instead") from None
        return Path(found[0])


def hdri_images(names: tuple[str, ...], folder: Path | None = None) -> dict[str, np.ndarray]:
    folder = folder or hdri_folder()
    return {name: tone_map(read_exr_rgb(folder / f"{name}.exr")) for name in names}


def heldout_crops(size: int = 256, per_image: int = 4, folder: Path | None = None) -> dict[str, np.ndarray]:
    """Fixed crops of the held-out HDRIs, spread along the horizon band (the poles of an
    equirectangular image are stretched sky and ground)."""
    crops = {}
    for name, image in hdri_images(HELDOUT_HDRIS, folder).items():
        h, w = image.shape[:2]
        top = (h - size) // 2
        for index in range(per_image):
            left = int((index + 0.5) * w / per_image - size / 2)
            crops[f"{name}_{index}"] = image[top : top + size, left : left + size]
    return crops


# -- procedural scenes ----------------------------------------------------------------------
def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Value noise: a coarse random grid, bicubically smoothed up to ``size``."""
    grid = rng.random((cells + 3, cells + 3)).astype(np.float32)
    t = np.linspace(1, cells + 1, size, endpoint=False, dtype=np.float32)
    i = t.astype(int)
    f = t - i
    weights = np.stack([(-f**3 + 2 * f**2 - f) / 2, (3 * f**3 - 5 * f**2 + 2) / 2,
                        (-3 * f**3 + 4 * f**2 + f) / 2, (f**3 - f**2) / 2])  # Catmull-Rom
    rows = sum(weights[k][:, None] * grid[i + k - 1] for k in range(4))
    return sum(weights[k][None, :] * rows[:, i + k - 1] for k in range(4))


def procedural_scene(seed: int, size: int = EXEMPLAR_SIZE) -> np.ndarray:
    """A made-up picture with the things photographs have: a sky gradient above a horizon,
    textured ground, shaded round objects and bars that cast soft shadows."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    horizon = 0.35 + 0.3 * rng.random()
    sky_top, sky_low = rng.random(3) * [0.4, 0.5, 0.4] + [0.2, 0.35, 0.55], rng.random(3) * 0.3 + 0.65
    ground = rng.random(3) * 0.5 + [0.15, 0.2, 0.05]
    image = np.where((y < horizon)[..., None],
                     sky_top + (sky_low - sky_top) * (y / horizon)[..., None],
                     ground * (0.6 + 0.8 * smooth_noise(rng, size, 12))[..., None])
    image = image * (0.8 + 0.4 * smooth_noise(rng, size, 5))[..., None]
    light = np.array([rng.uniform(-0.8, 0.8), -0.6, 0.6])
    light /= np.linalg.norm(light)
    for _ in range(rng.integers(3, 7)):
        cx, cy, r = rng.random(), horizon + rng.uniform(-0.15, 0.5), rng.uniform(0.05, 0.2)
        colour = rng.random(3) * 0.8 + 0.2
        if rng.random() < 0.6:  # a shaded sphere with a soft shadow
            d2 = ((x - cx) ** 2 + (y - cy) ** 2) / r**2
            shadow = np.exp(-(((x - cx - 0.3 * r) / (1.4 * r)) ** 2 + ((y - cy - 0.9 * r) / (0.4 * r)) ** 2))
            image *= (1 - 0.5 * shadow)[..., None]
            nz = np.sqrt(np.clip(1 - d2, 0, 1))
            shade = np.clip(((x - cx) / r * light[0] + (y - cy) / r * light[1] + nz * light[2]), 0, 1)
            inside = (d2 < 1)[..., None]
            image = np.where(inside, colour * (0.25 + 0.85 * shade)[..., None], image)
        else:  # an upright bar, lit from one side
            w, h = rng.uniform(0.04, 0.15), rng.uniform(0.1, 0.5)
            inside = (np.abs(x - cx) < w) & (y > cy - h) & (y < cy)
            shade = 0.55 + 0.45 * np.clip((x - cx) / w * np.sign(light[0]), -1, 1)
            image = np.where(inside[..., None], colour * shade[..., None], image)
    return np.clip(image, 0, 1).astype(np.float32)


def _luma(image: np.ndarray) -> np.ndarray:
    return image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _box_blur(a: np.ndarray, radius: int) -> np.ndarray:
    """Separable box blur with edge padding (summed-area along each axis)."""
    for axis in (0, 1):
        pad = [(0, 0)] * a.ndim
        pad[axis] = (radius + 1, radius)
        c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis, dtype=np.float64)
        n = a.shape[axis]
        a = ((np.take(c, range(2 * radius + 1, 2 * radius + 1 + n), axis) - np.take(c, range(n), axis))
             / (2 * radius + 1)).astype(np.float32)
    return a


# -- styles ---------------------------------------------------------------------------------
def stained_glass(base: np.ndarray, seed: int) -> np.ndarray:
    """Voronoi panes of saturated glass, each the mean colour of the scene under it pushed
    towards jewel tones, with dark lead came between them and a mottled glass texture."""
    rng = np.random.default_rng(seed + 1000)
    size = base.shape[0]
    count = int((size / 22) ** 2)
    points = rng.random((count, 2)) * size
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    best = np.full((size, size), np.inf, np.float32)
    second = np.full((size, size), np.inf, np.float32)
    label = np.zeros((size, size), np.int32)
    for index, (py, px) in enumerate(points):
        d = np.hypot(y - py, x - px)
        closer = d < best
        second = np.where(closer, best, np.minimum(second, d))
        label = np.where(closer, index, label)
        best = np.where(closer, d, best)
    sums = np.zeros((count, 3))
    np.add.at(sums, label.ravel(), base.reshape(-1, 3))
    counts = np.bincount(label.ravel(), minlength=count)[:, None]
    colour = sums / np.maximum(counts, 1)
    grey = colour.mean(1, keepdims=True)
    jewel = np.clip(grey + 1.8 * (colour - grey), 0, 1) ** 0.9
    glass = jewel[label].astype(np.float32)
    glass *= (0.85 + 0.3 * smooth_noise(rng, size, size // 6))[..., None]
    lead = np.clip((second - best - 1.5) / 1.5, 0, 1)[..., None]  # the came: 3 px dark lines
    return np.clip(glass * lead + (1 - lead) * np.array([0.07, 0.06, 0.06]), 0, 1).astype(np.float32)


def halftone(base: np.ndarray, seed: int) -> np.ndarray:
    """Four-colour print: cyan, magenta, yellow and black dot screens at the classic angles
    (15, 75, 0, 45 degrees), each dot's area the ink's coverage, on off-white paper."""
    rng = np.random.default_rng(seed + 2000)
    size = base.shape[0]
    period = 7.0
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    smooth = _box_blur(base, 2)
    k = 1 - smooth.max(-1)
    cmy = (1 - smooth - k[..., None]) / np.maximum(1 - k[..., None], 1e-3)
    inks = {"c": (cmy[..., 0], 15, [0.0, 0.63, 0.89]), "m": (cmy[..., 1], 75, [0.89, 0.0, 0.5]),
            "y": (cmy[..., 2], 0, [1.0, 0.93, 0.0]), "k": (k * 0.9, 45, [0.1, 0.1, 0.12])}
    paper = np.array([0.97, 0.95, 0.9], np.float32) * (0.97 + 0.06 * smooth_noise(rng, size, 40))[..., None]
    image = paper.copy()
    for coverage, angle, ink in inks.values():
        a = math.radians(angle + rng.uniform(-1, 1))
        u = (x * math.cos(a) + y * math.sin(a)) / period
        v = (-x * math.sin(a) + y * math.cos(a)) / period
        du, dv = u - np.round(u), v - np.round(v)
        radius = np.sqrt(np.clip(coverage, 0, 1) / math.pi)  # dot area = coverage of the cell
        dot = np.clip((radius - np.hypot(du, dv)) * period + 0.5, 0, 1)  # 1 px anti-aliased edge
        image = image * (1 - dot[..., None] * (1 - np.array(ink, np.float32)))  # inks multiply
    return np.clip(image, 0, 1).astype(np.float32)


def woodcut(base: np.ndarray, seed: int) -> np.ndarray:
    """A woodcut print: black ink on warm paper, tones cut as parallel gouge lines that
    swell in the shadows and wobble like hand-cut ones, with strong outlines."""
    rng = np.random.default_rng(seed + 3000)
    size = base.shape[0]
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    lum = _box_blur(_luma(base), 2)
    angle = rng.uniform(0, math.pi)  # one cutting direction; a slowly varying one makes moire
    wobble = 1.2 * smooth_noise(rng, size, 6) + 0.25 * smooth_noise(rng, size, 24)  # in line widths
    phase = (x * math.cos(angle) + y * math.sin(angle)) / 8.0 + wobble
    wave = 0.5 + 0.5 * np.cos(2 * math.pi * phase)
    tone = np.clip((lum - 0.08) / 0.84, 0, 1) ** 1.2
    ink = np.clip((tone - wave) * 6 + 0.5, 0, 1)  # 1: paper shows; lines thicken as tone darkens
    gy, gx = np.gradient(_box_blur(lum, 1))
    edges = np.clip((np.hypot(gx, gy) - 0.02) * 60, 0, 1)
    ink = ink * (1 - edges)
    paper = np.array([0.92, 0.86, 0.74], np.float32) * (0.96 + 0.08 * smooth_noise(rng, size, 60))[..., None]
    black = np.array([0.08, 0.07, 0.07], np.float32)
    return (black + ink[..., None] * (paper - black)).astype(np.float32)


STYLES: dict[str, tuple[str, Callable[[np.ndarray, int], np.ndarray]]] = {
    "stained-glass": ("Stained Glass", stained_glass),
    "halftone": ("Halftone Print", halftone),
    "woodcut": ("Woodcut", woodcut),
}


def exemplars(style: str, seeds: tuple[int, ...] = EXEMPLAR_SEEDS, size: int = EXEMPLAR_SIZE) -> dict[str, np.ndarray]:
    make = STYLES[style][1]
    return {f"{style}_{seed}": make(procedural_scene(seed, size), seed) for seed in seeds}


# -- files ----------------------------------------------------------------------------------
def save_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def load_image(path: Path) -> np.ndarray:
    """An image file as H x W x 3 float32 sRGB in [0, 1] (.exr is tone-mapped)."""
    if path.suffix.lower() == ".exr":
        return tone_map(read_exr_rgb(path))
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".exr")


def image_paths(items: list[str]) -> list[Path]:
    """Files named, and the images inside folders named, in a stable order."""
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            paths += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            paths.append(path)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("exemplars", help="write a style's procedural exemplars as PNG")
    ex.add_argument("--style", choices=sorted(STYLES), required=True)
    ex.add_argument("--out", type=Path, required=True)
    co = sub.add_parser("content", help="write tone-mapped HDRI content images as PNG")
    co.add_argument("--split", choices=("train", "heldout"), required=True)
    co.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "exemplars":
        for name, image in exemplars(args.style).items():
            save_png(args.out / f"{name}.png", image)
    elif args.split == "train":
        for name, image in hdri_images(TRAIN_HDRIS).items():
            save_png(args.out / f"{name}.png", image)
    else:
        for name, image in heldout_crops().items():
            save_png(args.out / f"{name}.png", image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
