"""Toon: flat colour regions with ink outlines."""

from __future__ import annotations

import torch

from ..networks.base import StyleNet
from . import ops

LEVELS = 5  # tone bands
STEP_SHARPNESS = 6.0  # slope of the soft steps between bands (a hard step would let rounding flip a band)
SMOOTH_RADIUS = 3
LINE_SIGMA = 1.0


def soft_quantise(y: torch.Tensor, levels: int, sharpness: float) -> torch.Tensor:
    """A continuous staircase: flat bands joined by short ramps."""
    t = y * levels
    base = torch.floor(t)
    ramp = ((t - base - 0.5) * sharpness + 0.5).clamp(0, 1)
    return ((base + ramp) / levels).clamp(0, 1)


class ToonStyle(StyleNet):
    halo = 2 * SMOOTH_RADIUS + ops.gaussian_radius(1.6 * LINE_SIGMA) + 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = ops.bilateral(x, SMOOTH_RADIUS, 2.0, 0.12)
        flat = ops.bilateral(flat, SMOOTH_RADIUS, 2.0, 0.12)
        y, chroma = ops.rgb_to_ycc(flat)
        banded = soft_quantise(y, LEVELS, STEP_SHARPNESS) + 1.35 * chroma
        # Lines from the smoothed image: outlines of regions, not of every leaf.
        lines = ops.xdog(y, LINE_SIGMA, p=25.0, eps=0.02, phi=10.0)
        return (banded * (0.15 + 0.85 * lines)).clamp(0, 1)

