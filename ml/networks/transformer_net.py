"""fast-neural-style TransformerNet (Johnson et al. 2016 with instance norm).

Input and output in 0..255; InstanceNorm with affine parameters, as GlobalNorm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..restyle.tiling import GlobalNorm
from .base import StyleNet
from .fused import conv_norm
from .padding import ReflectionPad

_RELU = nn.ReLU()


class ConvLayer(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, upsample: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.pad = ReflectionPad(kernel // 2)
        self.conv2d = nn.Conv2d(cin, cout, kernel, stride)

    def forward(self, x: torch.Tensor, norm: GlobalNorm | None = None, relu: bool = False) -> torch.Tensor:
        """The convolution, followed by ``norm`` when given (folded into it when it can be)
        and by a ReLU when asked (run inside the convolution when it can be)."""
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return conv_norm(self.conv2d, norm, x, reflect=self.pad.padding[0], act=_RELU if relu else None)


def _norm(channels: int) -> GlobalNorm:
    return GlobalNorm(channels, channels, affine=True)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.in1 = ConvLayer(channels, channels, 3), _norm(channels)
        self.conv2, self.in2 = ConvLayer(channels, channels, 3), _norm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x, self.in1, relu=True), self.in2)


class TransformerNet(StyleNet):
    align = 4
    channels_last = True
    halo = 64  # receptive field radius is about 57 input pixels
    # bf16 stays within one 8-bit step of fp32 (tools/bench/bench_models.py).
    reduced_precision_ok = True

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.in1 = ConvLayer(3, 32, 9), _norm(32)
        self.conv2, self.in2 = ConvLayer(32, 64, 3, stride=2), _norm(64)
        self.conv3, self.in3 = ConvLayer(64, 128, 3, stride=2), _norm(128)
        self.res1, self.res2, self.res3 = ResidualBlock(128), ResidualBlock(128), ResidualBlock(128)
        self.res4, self.res5 = ResidualBlock(128), ResidualBlock(128)
        self.deconv1, self.in4 = ConvLayer(128, 64, 3, upsample=True), _norm(64)
        self.deconv2, self.in5 = ConvLayer(64, 32, 3, upsample=True), _norm(32)
        self.deconv3 = ConvLayer(32, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x * 255, self.in1, relu=True)
        y = self.conv2(y, self.in2, relu=True)
        y = self.conv3(y, self.in3, relu=True)
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = self.deconv1(y, self.in4, relu=True)
        y = self.deconv2(y, self.in5, relu=True)
        return self.deconv3(y).clamp(0, 255) / 255
