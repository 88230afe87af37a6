"""Depth evaluation after least-squares scale and shift alignment in inverse depth (numpy)."""

from __future__ import annotations

import numpy as np


def align(prediction: np.ndarray, target_disparity: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """s * prediction + t fitted to the target disparity over the mask (least squares)."""
    p, d = prediction[mask].astype(np.float64), target_disparity[mask].astype(np.float64)
    design = np.stack([p, np.ones_like(p)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(design, d, rcond=None)
    return (scale * prediction + shift).astype(np.float32)


def depth_errors(prediction: np.ndarray, depth: np.ndarray) -> tuple[float, float]:
    """AbsRel and delta1 of a relative inverse-depth prediction against metric depth (inf = sky)."""
    mask = np.isfinite(depth) & (depth > 0)
    disparity = np.where(mask, 1.0 / np.where(mask, depth, 1.0), 0.0)
    aligned = align(prediction, disparity, mask)
    predicted_depth = 1.0 / np.clip(aligned[mask], 1e-3, None)
    true_depth = depth[mask]
    abs_rel = float(np.mean(np.abs(predicted_depth - true_depth) / true_depth))
    ratio = np.maximum(predicted_depth / true_depth, true_depth / predicted_depth)
    return abs_rel, float(np.mean(ratio < 1.25))


def ground_plane_prior(height: int, width: int) -> np.ndarray:
    """The baseline that says lower rows are nearer: disparity grows linearly down the image."""
    return np.repeat(np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None], width, axis=1)
