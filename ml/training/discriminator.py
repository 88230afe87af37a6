"""A multi-scale PatchGAN discriminator (pix2pixHD style): the same small patch classifier
design at full and half resolution, so it judges both fine marks and larger shapes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _patch_classifier(width: int) -> nn.Sequential:
    """Three stride-2 4x4 convolutions and a 1x1 score: each output judges a 46x46 patch."""
    layers: list[nn.Module] = []
    cin = 3
    for cout in (width, width * 2, width * 4):
        # Spectral norm keeps the critic's gradients bounded, which is what lets a short
        # run with a high learning rate stay stable without a gradient penalty.
        layers += [spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2)]
        cin = cout
    layers.append(spectral_norm(nn.Conv2d(cin, 1, 3, 1, 1)))
    return nn.Sequential(*layers)


class PatchDiscriminator(nn.Module):
    def __init__(self, scales: int = 2, width: int = 32) -> None:
        super().__init__()
        self.heads = nn.ModuleList(_patch_classifier(width) for _ in range(scales))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Patch scores per scale, for (N, 3, H, W) images in [0, 1]."""
        scores = []
        x = x * 2 - 1
        for index, head in enumerate(self.heads):
            if index:
                x = F.avg_pool2d(x, 2)
            scores.append(head(x))
        return scores
