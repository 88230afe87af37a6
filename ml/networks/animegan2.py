"""AnimeGANv2 generator (PyTorch port layout, 2,143,552 parameters).

Conv + GroupNorm(1, C) + LeakyReLU(0.2) units, inverted residual blocks at 1/4 scale,
and two align-corners bilinear upsamplings, which read global coordinates so that
tiles reproduce the whole-image result.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..restyle.tiling import GlobalNorm, resize_bilinear_global
from .base import StyleNet
from .fused import FusedSequential
from .padding import ReflectionPad


class ConvNormLReLU(FusedSequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        pad: nn.Module
        if stride == 2:
            pad = ReflectionPad((0, 1, 0, 1))  # right and bottom only
        else:
            pad = ReflectionPad(kernel // 2)
        super().__init__(
            pad,
            nn.Conv2d(cin, cout, kernel, stride=stride, groups=groups, bias=groups > 1),
            GlobalNorm(1, cout),
            nn.LeakyReLU(0.2, inplace=True),
        )


class InvertedResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, expansion: int = 2) -> None:
        super().__init__()
        hidden = round(cin * expansion)
        self.use_residual = cin == cout
        self.layers = FusedSequential(
            ConvNormLReLU(cin, hidden, kernel=1),
            ConvNormLReLU(hidden, hidden, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            GlobalNorm(1, cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(x)
        return x + out if self.use_residual else out


class AnimeGAN2(StyleNet):
    align = 4
    channels_last = True
    halo = 64  # receptive field radius is about 56 input pixels
    reduced_precision_ok = False  # bf16 is many 8-bit steps off fp32 (tools/bench/bench_models.py)

    def __init__(self) -> None:
        super().__init__()
        self.block_a = nn.Sequential(ConvNormLReLU(3, 32, 7), ConvNormLReLU(32, 64, stride=2), ConvNormLReLU(64, 64))
        self.block_b = nn.Sequential(ConvNormLReLU(64, 128, stride=2), ConvNormLReLU(128, 128))
        self.block_c = nn.Sequential(
            ConvNormLReLU(128, 128),
            InvertedResBlock(128, 256), InvertedResBlock(256, 256),
            InvertedResBlock(256, 256), InvertedResBlock(256, 256),
            ConvNormLReLU(256, 128),
        )
        self.block_d = nn.Sequential(ConvNormLReLU(128, 128), ConvNormLReLU(128, 128))
        self.block_e = nn.Sequential(ConvNormLReLU(128, 64), ConvNormLReLU(64, 64), ConvNormLReLU(64, 32, 7))
        self.out_layer = nn.Sequential(nn.Conv2d(32, 3, 1, bias=False), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * 2 - 1
        a = self.block_a(x)
        c = self.block_c(self.block_b(a))
        d = self.block_d(_upsample_to(c, a))
        e = self.block_e(_upsample_to(d, x))
        return self.out_layer(e).clamp(-1, 1) * 0.5 + 0.5


def _upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if like.shape[-2] == 2 * x.shape[-2] and like.shape[-1] == 2 * x.shape[-1]:
        return resize_bilinear_global(x, 2)
    # Sizes that are not exact doublings only happen outside the engine (which aligns to 4).
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=True)
