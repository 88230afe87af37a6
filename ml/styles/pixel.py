"""Pixel art: square blocks on a fixed grid, snapped to a 16-colour palette with
ordered dithering. The grid and the dither pattern are anchored to global block
coordinates, so tiles line up with the whole image."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..networks.base import StyleNet
from ..restyle.tiling import global_coords
from . import ops

BLOCK = 8
# The project's own 16-colour palette: greys, warm and cool ramps, foliage and skin tones.
PALETTE = (
    (0.08, 0.07, 0.10), (0.33, 0.31, 0.36), (0.62, 0.60, 0.63), (0.95, 0.94, 0.90),
    (0.45, 0.16, 0.15), (0.82, 0.27, 0.21), (0.95, 0.58, 0.23), (0.98, 0.86, 0.38),
    (0.20, 0.35, 0.19), (0.42, 0.65, 0.27), (0.16, 0.22, 0.42), (0.29, 0.47, 0.80),
    (0.55, 0.78, 0.93), (0.40, 0.27, 0.18), (0.78, 0.58, 0.44), (0.58, 0.35, 0.60),
)
# Perceptual weights for the colour distance (green differences are most visible).
CHANNEL_WEIGHTS = (0.30, 0.59, 0.11)
BAYER_2X2 = ((0.0, 2.0), (3.0, 1.0))
DITHER_SPREAD = 0.06


class PixelStyle(StyleNet):
    halo = 0
    align = BLOCK
    palette: torch.Tensor
    weights: torch.Tensor
    bayer: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("palette", torch.tensor(PALETTE).view(1, -1, 3, 1, 1), persistent=False)
        self.register_buffer("weights", torch.tensor(CHANNEL_WEIGHTS).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("bayer", (torch.tensor(BAYER_2X2) + 0.5) / 4 - 0.5, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = F.avg_pool2d(x, BLOCK)
        blocks = ops.saturate(blocks, 1.25)
        rows, cols = global_coords(blocks, scale=BLOCK)
        dither = self.bayer[rows % 2, cols % 2]
        target = (blocks + DITHER_SPREAD * dither).clamp(0, 1)
        distance = ((target[:, None] - self.palette) ** 2 * self.weights).sum(2)
        nearest = distance.argmin(1)  # (n, h, w)
        chosen = self.palette[0, :, :, 0, 0][nearest].permute(0, 3, 1, 2)
        return chosen.repeat_interleave(BLOCK, 2).repeat_interleave(BLOCK, 3)
