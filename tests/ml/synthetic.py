"""Seeded test images with photographic structure: smooth shading, hard edges, fine noise."""

import numpy as np


def photo_like(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    img += 0.35 + 0.25 * np.sin(xx / w * 5 + rng.random())[..., None] * np.array([1.0, 0.6, 0.2])
    img += 0.2 * np.cos(yy / h * 4)[..., None] * np.array([0.2, 0.5, 1.0])
    for _ in range(6):  # discs with hard edges
        cy, cx, r = rng.random() * h, rng.random() * w, (0.1 + 0.2 * rng.random()) * min(h, w)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        img[inside] = rng.random(3) * 0.8 + 0.1
    img += rng.normal(0, 0.02, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def tileable(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A texture whose opposite edges continue each other (sums of whole-period waves)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.full((h, w, 3), 0.5, np.float32)
    for _ in range(8):
        fy, fx = rng.integers(1, 6, 2)
        phase = rng.random() * 6.28
        wave = np.sin(2 * np.pi * (fy * yy / h + fx * xx / w) + phase)
        img += 0.08 * wave[..., None] * rng.uniform(-1, 1, 3)
    return np.clip(img, 0, 1).astype(np.float32)
