"""CycleGAN ResnetGenerator (pix2pix/CycleGAN layout) with 9 or 6 residual blocks.

InstanceNorm without affine parameters, so every convolution carries a bias; the norm
is GlobalNorm(C, C, affine=False), which tiles exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from ..restyle.tiling import GlobalNorm
from .base import StyleNet
from .fused import FusedSequential
from .padding import ReflectionPad


def _instance_norm(channels: int) -> GlobalNorm:
    return GlobalNorm(channels, channels, affine=False)


class ResnetBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_block = FusedSequential(
            ReflectionPad(1), nn.Conv2d(channels, channels, 3), _instance_norm(channels), nn.ReLU(True),
            ReflectionPad(1), nn.Conv2d(channels, channels, 3), _instance_norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class CycleGANGenerator(StyleNet):
    align = 4
    reduced_precision_ok = False  # bf16 is many 8-bit steps off fp32 (tools/bench/bench_models.py)
    channels_last = True

    def __init__(self, blocks: int = 9) -> None:
        super().__init__()
        self.blocks = blocks
        self.halo = 8 * blocks + 24  # two 3x3 convs per block at 1/4 scale, plus the ends
        self.halo += -self.halo % self.align
        layers: list[nn.Module] = [
            ReflectionPad(3), nn.Conv2d(3, 64, 7), _instance_norm(64), nn.ReLU(True),
            nn.Conv2d(64, 128, 3, stride=2, padding=1), _instance_norm(128), nn.ReLU(True),
            nn.Conv2d(128, 256, 3, stride=2, padding=1), _instance_norm(256), nn.ReLU(True),
        ]
        layers += [ResnetBlock(256) for _ in range(blocks)]
        layers += [
            nn.ConvTranspose2d(256, 128, 3, stride=2, padding=1, output_padding=1), _instance_norm(128), nn.ReLU(True),
            nn.ConvTranspose2d(128, 64, 3, stride=2, padding=1, output_padding=1), _instance_norm(64), nn.ReLU(True),
            ReflectionPad(3), nn.Conv2d(64, 3, 7), nn.Tanh(),
        ]
        self.model = FusedSequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.model(x * 2 - 1) + 1) / 2
