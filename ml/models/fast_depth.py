"""The built-in fast depth network: a compact U-Net predicting relative inverse depth,
trained by the project on its own synthetic renders (tools/train_depth.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CHANNELS = (24, 48, 96, 144, 192)
MULTIPLE = 16  # four 2x downsamplings


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class FastDepth(nn.Module):
    def __init__(self, channels: tuple[int, ...] = CHANNELS) -> None:
        super().__init__()
        self.encoders = nn.ModuleList()
        previous = 3
        for width in channels:
            self.encoders.append(_block(previous, width))
            previous = width
        self.decoders = nn.ModuleList()
        for skip, width in zip(reversed(channels[:-1]), reversed(channels[1:]), strict=True):
            self.decoders.append(_block(width + skip, skip))
        self.head = nn.Conv2d(channels[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) sRGB in [0, 1], H and W multiples of 16 -> (N, H, W) relative inverse depth."""
        x = (x - 0.45) / 0.25
        skips = []
        for index, encoder in enumerate(self.encoders):
            x = encoder(x if index == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for decoder, skip in zip(self.decoders, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = decoder(torch.cat([x, skip], dim=1))
        return F.softplus(self.head(x))[:, 0]
