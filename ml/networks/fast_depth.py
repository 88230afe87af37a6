"""The built-in fast depth network: a compact encoder-decoder predicting relative inverse
depth, trained by the project on its own synthetic renders (tools/train_depth.py).

Its stem reduces the image 4x with two strided convolutions, so every later layer works on a
quarter of the resolution (the way a ViT works on patches). The encoder has four levels;
the decoder is a feature pyramid (upsample, add a 1x1 projection of the skip, one 3x3
convolution) down to 1/2 of the input, where the first stem layer's features sharpen depth
edges, and the prediction is upsampled bilinearly to the input size.

With a planar head (``FastDepthShape.planar``) the head predicts, per pixel, a plane in
inverse depth rather than a value: an offset and two slopes, combined with the pixel's image
coordinates (offset + slope_x * x + slope_y * y, x and y from -1 to 1). The inverse depth of a
flat surface seen through a pinhole is exactly such an affine function of the image
coordinates, so a wall, a floor or a slope is one constant plane over its whole area, where
a plain head has to draw the ramp pixel by pixel.
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
    planar: bool = False  # the head predicts a plane per pixel (offset, x and y slopes), not a value


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
        self.head = nn.Conv2d(shape.decoder[-1], 3 if shape.planar else 1, 3, padding=1)

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
        x = self.head(x)
        if not self.shape.planar:
            return F.interpolate(F.softplus(x), size=size, mode="bilinear", align_corners=False)[:, 0]
        # the planes at every pixel, in fp32 (under bf16 autocast the sum would lose the slopes)
        x = F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False)
        return F.softplus(x[:, 0] + (x[:, 1:] * _image_coordinates(x)).sum(dim=1))


def _image_coordinates(x: torch.Tensor) -> torch.Tensor:
    """(1, 2, H, W): each pixel centre's x and y, from -1 (left, top) to 1 (right, bottom)."""
    h, w = x.shape[-2:]
    ys = (torch.arange(h, device=x.device, dtype=x.dtype) + 0.5) * (2 / h) - 1
    xs = (torch.arange(w, device=x.device, dtype=x.dtype) + 0.5) * (2 / w) - 1
    return torch.stack([xs.expand(h, w), ys[:, None].expand(h, w)])[None]


def planar_from_plain(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A plain head's weights as a planar head with zero slopes, to be trained: the way to
    fine-tune a trained plain network into a planar one. It predicts nearly the same (the
    same map before the softplus, which comes before upsampling in a plain head and after
    it in a planar one)."""
    out = dict(state)
    weight, bias = state["head.weight"], state["head.bias"]
    if weight.shape[0] != 1:
        raise ValueError(f"the head has {weight.shape[0]} outputs; a plain head has 1")
    out["head.weight"] = torch.cat([weight, torch.zeros_like(weight).repeat(2, 1, 1, 1)])
    out["head.bias"] = torch.cat([bias, torch.zeros_like(bias).repeat(2)])
    return out


def shape_from_state(state: Mapping[str, torch.Tensor]) -> FastDepthShape:
    """The FastDepthShape a state dict was saved from, by key names and tensor shapes.
    Raises KeyError when a key every FastDepth has is missing."""
    levels = sum(1 for k in state if k.startswith("encoders.") and k.endswith(".0.0.weight") and k.count(".") == 4)
    encoder = tuple(int(state[f"encoders.{i}.0.0.weight"].shape[0]) for i in range(levels))
    blocks = tuple(sum(1 for k in state if k.startswith(f"encoders.{i}.") and k.endswith(".0.weight")
                       and k.count(".") == 4) for i in range(levels))
    decoder = tuple(int(state[f"reduces.{i}.weight"].shape[0]) for i in range(levels))
    stem = (int(state["stem.0.0.weight"].shape[0]), int(state["stem.1.0.weight"].shape[0]))
    planar = int(state["head.weight"].shape[0]) == 3
    return FastDepthShape(stem, encoder, decoder, blocks, "context.weight" in state, planar)
