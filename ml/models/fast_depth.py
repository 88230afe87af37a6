"""The built-in fast depth network: a compact encoder-decoder predicting relative inverse
depth, trained by the project on its own synthetic renders (tools/train_depth.py).

Its stem reduces the image 4x with two strided convolutions, so every later layer works on a
quarter of the resolution (the way a ViT works on patches). The encoder has four levels;
the decoder is a feature pyramid (upsample, add a 1x1 projection of the skip, one 3x3
convolution) down to 1/2 of the input, where the first stem layer's features sharpen depth
edges, and the prediction is upsampled bilinearly to the input size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STEM = (24, 48)
ENCODER = (48, 96, 160, 224)  # at 1/4, 1/8, 1/16 and 1/32 of the input
DECODER = (96, 64, 48, 24)  # at 1/16, 1/8, 1/4 and 1/2
MULTIPLE = 32  # input sides must be multiples of this


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class FastDepth(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv(3, STEM[0], 2), _conv(STEM[0], STEM[1], 2))
        self.encoders = nn.ModuleList()
        previous = STEM[1]
        for level, width in enumerate(ENCODER):
            self.encoders.append(nn.Sequential(_conv(previous, width, 1 if level == 0 else 2), _conv(width, width)))
            previous = width
        self.reduces = nn.ModuleList()  # 1x1, applied at the coarser level before upsampling
        self.laterals = nn.ModuleList()  # 1x1 projections of the encoder skips
        self.decoders = nn.ModuleList()
        for skip, width in zip(reversed((STEM[0],) + ENCODER[:-1]), DECODER, strict=True):
            self.reduces.append(nn.Conv2d(previous, width, 1, bias=False))
            self.laterals.append(nn.Conv2d(skip, width, 1))
            self.decoders.append(_conv(width, width))
            previous = width
        self.head = nn.Conv2d(DECODER[-1], 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) sRGB in [0, 1], H and W multiples of 32 -> (N, H, W) relative inverse depth."""
        size = x.shape[-2:]
        half = self.stem[0]((x - 0.45) / 0.25)
        x = self.stem[1](half)
        skips = [half]
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
        levels = zip(self.reduces, self.laterals, self.decoders, reversed(skips[:-1]), strict=True)
        for reduce, lateral, decoder, skip in levels:
            x = F.interpolate(reduce(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = decoder(x + lateral(skip))
        x = F.softplus(self.head(x))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)[:, 0]
