"""Oil paint: an anisotropic Kuwahara filter.

Each pixel looks at an ellipse aligned with the local edge direction (from the
smoothed structure tensor), splits it into eight overlapping sectors, and takes a
mix of the sector means that favours the sectors with the least colour variance.
Strokes therefore follow the image's structure instead of forming square blocks.
"""

from __future__ import annotations

import math

import torch

from ..networks.base import StyleNet
from . import ops

RADIUS = 3  # ellipse radius for an isotropic region; up to 2x along edges
TENSOR_SIGMA = 2.0
SECTORS = 8


class OilStyle(StyleNet):
    halo = 1 + ops.gaussian_radius(TENSOR_SIGMA) + 2 * RADIUS + 1
    cos_k: torch.Tensor
    sin_k: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        angles = torch.arange(SECTORS, dtype=torch.float32) * (2 * math.pi / SECTORS)
        self.register_buffer("cos_k", angles.cos().view(1, SECTORS, 1, 1), persistent=False)
        self.register_buffer("sin_k", angles.sin().view(1, SECTORS, 1, 1), persistent=False)

    def _orientation(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        gx, gy = ops.sobel(ops.luma(x))
        tensor = ops.gaussian_blur(torch.cat([gx * gx, gx * gy, gy * gy], 1), TENSOR_SIGMA)
        e, f, g = tensor[:, 0:1], tensor[:, 1:2], tensor[:, 2:3]
        root = torch.sqrt((e - g) ** 2 + 4 * f * f)
        major, minor = (e + g + root) / 2, (e + g - root) / 2
        tx, ty = major - e, -f  # direction along the edge
        length = torch.sqrt(tx * tx + ty * ty)
        flat = length < 1e-12
        cos_phi = torch.where(flat, torch.ones_like(tx), tx / length.clamp_min(1e-12))
        sin_phi = torch.where(flat, torch.zeros_like(ty), ty / length.clamp_min(1e-12))
        anisotropy = ((major - minor) / (major + minor + 1e-12)).clamp(0, 1)
        a = RADIUS * (1 + anisotropy)
        b = RADIUS / (1 + anisotropy)
        return cos_phi, sin_phi, a, b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cos_phi, sin_phi, a, b = self._orientation(x)
        n, _, h, w = x.shape
        weight = x.new_zeros(n, SECTORS, h, w)
        mean = x.new_zeros(n, SECTORS, 3, h, w)
        square = x.new_zeros(n, SECTORS, h, w)
        energy = (x * x).sum(1, keepdim=True)
        reach = 2 * RADIUS  # the longest an ellipse gets: offsets beyond it never weigh
        views = ops.shifted_views(torch.cat([x, energy], 1), reach)
        for dy, dx, view in views:
            if dx * dx + dy * dy > reach * reach:
                continue
            u = (cos_phi * dx + sin_phi * dy) / a
            v = (cos_phi * dy - sin_phi * dx) / b
            radial = (1 - (u * u + v * v)).clamp_min(0) ** 2
            along = u * self.cos_k + v * self.sin_k
            across = v * self.cos_k - u * self.sin_k
            wk = ((along + 0.15) - 2.5 * across * across).clamp_min(0).square_().mul_(radial)  # (n, SECTORS, h, w)
            weight += wk
            for channel in range(3):  # in place, without an (n, SECTORS, 3, h, w) temporary
                mean[:, :, channel].addcmul_(wk, view[:, channel : channel + 1])
            square.addcmul_(wk, view[:, 3:4])
        weight = weight.clamp_min(1e-8)
        mean = mean / weight[:, :, None]
        variance = (square / weight - (mean * mean).sum(2)).clamp_min(0) + 1e-6
        # Sharpness 8 on the standard deviation, written on variances relative to the
        # smallest so the powers stay in range.
        alpha = (variance.amin(1, keepdim=True) / variance) ** 4
        alpha = alpha / alpha.sum(1, keepdim=True)
        return (alpha[:, :, None] * mean).sum(1).clamp(0, 1)
