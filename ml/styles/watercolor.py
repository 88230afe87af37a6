"""Watercolor: soft washes, darkened wet edges, pigment granulation and paper grain.

Colour is laid down as pigment whose local density varies; denser pigment darkens
and saturates a colour C as C - (C - C^2)(d - 1), the transmittance model used in
computer-generated watercolour work. Density rises at colour boundaries (wet edges)
and follows noise at two scales (granulation, paper). The noise is keyed on global
pixel coordinates, so it is identical tiled or whole and tiles with the texture.
"""

from __future__ import annotations

import torch

from ..networks.base import StyleNet
from . import ops

PAPER_SIGMA = 3.0


class WatercolorStyle(StyleNet):
    halo = max(3 + 3 + 1 + 3, ops.gaussian_radius(PAPER_SIGMA)) + 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wash = ops.bilateral(x, 3, 2.0, 0.15)
        wash = ops.gaussian_blur(wash, 1.0)
        pigment = 1 - 0.85 * (1 - ops.saturate(wash, 0.9))
        gx, gy = ops.sobel(ops.luma(wash))
        edges = ops.gaussian_blur(torch.sqrt(gx * gx + gy * gy), 1.0)
        grain = ops.gaussian_blur(ops.hash_noise(x, seed=11), 0.7)
        paper = ops.gaussian_blur(ops.hash_noise(x, seed=23), PAPER_SIGMA)
        density = 1 + 6.0 * edges + 1.2 * (grain - 0.5) + 3.0 * (paper - 0.5)
        painted = pigment - (pigment - pigment * pigment) * (density - 1)
        return painted.clamp(0, 1)
