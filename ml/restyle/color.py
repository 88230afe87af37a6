"""Colour conversions on numpy arrays (no torch): sRGB transfer functions and luma."""

from __future__ import annotations

import numpy as np

# Rec.709 luma weights: the textures we restyle are sRGB, which shares Rec.709 primaries.
LUMA_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Encode scene-linear values with the sRGB curve; values are clipped to [0, 1]."""
    x = np.clip(linear, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def srgb_to_linear(encoded: np.ndarray) -> np.ndarray:
    x = np.clip(encoded, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, np.power((x + 0.055) / 1.055, 2.4)).astype(np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Luma of an (..., 3) array, shape (..., 1)."""
    return (rgb @ LUMA_WEIGHTS)[..., None]
