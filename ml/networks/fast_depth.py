"""The built-in fast depth network: a compact encoder-decoder predicting relative inverse
depth, trained by the project on its own synthetic renders (tools/train_depth.py).

Its stem reduces the image 4x with two strided convolutions, so every later layer works on a
quarter of the resolution (the way a ViT works on patches). The encoder has four levels;
the decoder is a feature pyramid (upsample, add a 1x1 projection of the skip, one 3x3
convolution) down to 1/2 of the input, where the first stem layer's features sharpen depth
edges, and the prediction is upsampled bilinearly to the input size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

STEM = (24, 48)
ENCODER = (48, 96, 160, 224)  # at 1/4, 1/8, 1/16 and 1/32 of the input
DECODER = (96, 64, 48, 24)  # at 1/16, 1/8, 1/4 and 1/2
MULTIPLE = 32  # input sides must be multiples of this


@dataclass(frozen=True)
class FastDepthShape:
    """Widths and depths of one FastDepth; read back from a state dict's key names and
    tensor shapes (``shape_from_state``), never from a file name."""

    stem: tuple[int, int] = STEM
    encoder: tuple[int, ...] = ENCODER
    decoder: tuple[int, ...] = DECODER
    blocks: tuple[int, ...] = (2, 2, 2, 2)  # 3x3 convolutions per encoder level
    context: bool = False  # a global-average context vector added at 1/32 (indoor/outdoor, layout)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class FastDepth(nn.Module):
    def __init__(self, shape: FastDepthShape | None = None) -> None:
        super().__init__()
        shape = shape or FastDepthShape()
        self.shape = shape
        stem = shape.stem
        self.stem = nn.Sequential(_conv(3, stem[0], 2), _conv(stem[0], stem[1], 2))
        self.encoders = nn.ModuleList()
        previous = stem[1]
        for level, (width, blocks) in enumerate(zip(shape.encoder, shape.blocks, strict=True)):
            layers = [_conv(previous, width, 1 if level == 0 else 2)]
            layers += [_conv(width, width) for _ in range(blocks - 1)]
            self.encoders.append(nn.Sequential(*layers))
            previous = width
        self.context = nn.Conv2d(previous, previous, 1) if shape.context else None
        self.reduces = nn.ModuleList()  # 1x1, applied at the coarser level before upsampling
        self.laterals = nn.ModuleList()  # 1x1 projections of the encoder skips
        self.decoders = nn.ModuleList()
        for skip, width in zip(reversed((stem[0],) + shape.encoder[:-1]), shape.decoder, strict=True):
            self.reduces.append(nn.Conv2d(previous, width, 1, bias=False))
            self.laterals.append(nn.Conv2d(skip, width, 1))
            self.decoders.append(_conv(width, width))
            previous = width
        self.head = nn.Conv2d(shape.decoder[-1], 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) sRGB in [0, 1], H and W multiples of 32 -> (N, H, W) relative inverse depth."""
        size = x.shape[-2:]
        half = self.stem[0]((x - 0.45) / 0.25)
        x = self.stem[1](half)
        skips = [half]
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
        if self.context is not None:
            x = x + self.context(x.mean(dim=(2, 3), keepdim=True))
        levels = zip(self.reduces, self.laterals, self.decoders, reversed(skips[:-1]), strict=True)
        for reduce, lateral, decoder, skip in levels:
            x = F.interpolate(reduce(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = decoder(x + lateral(skip))
        x = F.softplus(self.head(x))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)[:, 0]


def shape_from_state(state: Mapping[str, torch.Tensor]) -> FastDepthShape:
    """The FastDepthShape a state dict was saved from, by key names and tensor shapes.
    Raises KeyError when a key every FastDepth has is missing."""
    levels = sum(1 for k in state if k.startswith("encoders.") and k.endswith(".0.0.weight") and k.count(".") == 4)
    encoder = tuple(int(state[f"encoders.{i}.0.0.weight"].shape[0]) for i in range(levels))
    blocks = tuple(sum(1 for k in state if k.startswith(f"encoders.{i}.") and k.endswith(".0.weight")
                       and k.count(".") == 4) for i in range(levels))
    decoder = tuple(int(state[f"reduces.{i}.weight"].shape[0]) for i in range(levels))
    stem = (int(state["stem.0.0.weight"].shape[0]), int(state["stem.1.0.weight"].shape[0]))
    return FastDepthShape(stem, encoder, decoder, blocks, "context.weight" in state)
