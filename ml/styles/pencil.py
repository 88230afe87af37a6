"""Pencil sketch: outlines by colour-dodging the luminance with its blurred negative,
cross-hatching laid in global coordinates over the darker tones, and paper grain."""

from __future__ import annotations

import math

import torch

from ..networks.base import StyleNet
from ..restyle.tiling import global_coords
from . import ops

DODGE_SIGMA = 3.0
PAPER_TINT = (1.0, 0.985, 0.95)


def _stripes(rows: torch.Tensor, cols: torch.Tensor, period: float, direction: int) -> torch.Tensor:
    phase = 2 * math.pi * (cols + direction * rows).float() / period
    return ((torch.sin(phase) - 0.55) * 4).clamp(0, 1)


class PencilStyle(StyleNet):
    halo = ops.gaussian_radius(DODGE_SIGMA) + 2
    tint: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("tint", torch.tensor(PAPER_TINT).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gray = ops.luma(x)
        blurred_negative = ops.gaussian_blur(1 - gray, DODGE_SIGMA)
        sketch = (gray / (1 - blurred_negative + 1e-3)).clamp(0, 1) ** 2
        darkness = 1 - ops.gaussian_blur(gray, 2.0)
        rows, cols = global_coords(x)
        hatch = 1 - 0.45 * ((darkness - 0.35) * 3).clamp(0, 1) * _stripes(rows, cols, 6.0, 1)
        hatch = hatch - 0.45 * ((darkness - 0.6) * 4).clamp(0, 1) * _stripes(rows, cols, 8.0, -1)
        grain = ops.gaussian_blur(ops.hash_noise(x, seed=5), 0.8)
        tone = sketch * hatch.clamp(0, 1) * (0.93 + 0.1 * grain)
        return (tone * self.tint).clamp(0, 1)
