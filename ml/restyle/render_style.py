"""Guiding a restyled render with its passes, and keeping sequences steady (numpy only)."""

from __future__ import annotations

import numpy as np


def _neighbour_max(values: np.ndarray, reduce: str = "max") -> np.ndarray:
    """Largest value over each pixel's 3x3 neighbourhood (edges replicated)."""
    padded = np.pad(values, 1, mode="edge")
    h, w = values.shape
    stack = [padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)]
    return np.max(stack, axis=0) if reduce == "max" else np.min(stack, axis=0)


def pass_outlines(depth: np.ndarray, normal: np.ndarray | None, valid: np.ndarray,
                  depth_jump: float = 0.03, normal_angle_deg: float = 35.0) -> np.ndarray:
    """Ink strength in [0, 1] where depth jumps (silhouettes) or normals turn sharply (creases)."""
    z = np.where(valid, depth, np.nan)
    finite = np.where(valid, depth, 0.0)
    far = np.nanmax(z) if valid.any() else 1.0
    filled = np.where(valid, finite, far * 10)
    relative = (_neighbour_max(filled) - _neighbour_max(filled, "min")) / np.maximum(filled, 1e-6)
    edges = np.clip((relative - depth_jump) / depth_jump, 0.0, 1.0)
    if normal is not None:
        unit = normal / np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-6)
        cos_limit = np.cos(np.radians(normal_angle_deg))
        padded = np.pad(unit, ((1, 1), (1, 1), (0, 0)), mode="edge")
        h, w = depth.shape
        lowest = np.ones((h, w), np.float32)
        for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
            lowest = np.minimum(lowest, (unit * padded[dy : dy + h, dx : dx + w]).sum(-1))
        crease = np.clip((cos_limit - lowest) / (1 - cos_limit), 0.0, 1.0) * valid
        edges = np.maximum(edges, crease)
    return edges.astype(np.float32)


def depth_weights(depth: np.ndarray, valid: np.ndarray, falloff: float) -> np.ndarray:
    """Restyle strength per pixel: 1 at the nearest surface, 1 - falloff at the farthest and
    for the background."""
    if falloff <= 0 or not valid.any():
        return np.ones(depth.shape, np.float32)
    near, far = np.percentile(depth[valid], [1, 99])
    t = np.clip((depth - near) / max(far - near, 1e-6), 0.0, 1.0)
    return np.where(valid, 1.0 - falloff * t, 1.0 - falloff).astype(np.float32)


def temporal_smooth(previous_out: np.ndarray, out: np.ndarray, previous_source: np.ndarray, source: np.ndarray,
                    amount: float, sensitivity: float = 0.04) -> np.ndarray:
    """Carry the previous restyled frame where the source did not change: flicker from the
    style is held steady, while moving content updates at once."""
    change = np.abs(source - previous_source).max(axis=-1, keepdims=True)
    keep = amount * np.exp(-change / sensitivity)
    return (out + keep * (previous_out - out)).astype(np.float32)


def flicker(frames: list[np.ndarray]) -> float:
    """Mean absolute frame-to-frame difference of a sequence."""
    if len(frames) < 2:
        return 0.0
    return float(np.mean([np.abs(b - a).mean() for a, b in zip(frames, frames[1:], strict=False)]))
