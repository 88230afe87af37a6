"""AdaIN arbitrary style transfer (Huang & Belongie 2017).

A normalised VGG-19 encodes content and style to relu4_1; the content features are
re-normalised to the style's per-channel mean and standard deviation and a mirrored
decoder paints the result. The content statistics span the whole image (GlobalNorm
with the unbiased variance); the style statistics come from the style image once.
"""

from __future__ import annotations

import torch
from torch import nn

from ..restyle.tiling import GlobalNorm
from .base import StyleNet
from .fused import FusedSequential
from .padding import ReflectionPad

ENCODER_LAYERS = 31  # normalised VGG-19 up to relu4_1
EPS = 1e-5


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [ReflectionPad(1), nn.Conv2d(cin, cout, 3), nn.ReLU()]


def vgg_normalised() -> FusedSequential:
    """The full published network (all its weights are in the file); AdaIN uses 31 layers."""
    pool = lambda: nn.MaxPool2d(2, 2, ceil_mode=True)  # noqa: E731
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    layers += _conv(3, 64) + _conv(64, 64) + [pool()]
    layers += _conv(64, 128) + _conv(128, 128) + [pool()]
    layers += _conv(128, 256) + _conv(256, 256) + _conv(256, 256) + _conv(256, 256) + [pool()]
    layers += _conv(256, 512) + _conv(512, 512) + _conv(512, 512) + _conv(512, 512) + [pool()]
    layers += _conv(512, 512) + _conv(512, 512) + _conv(512, 512) + _conv(512, 512)
    return FusedSequential(*layers)


def decoder() -> FusedSequential:
    up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
    layers: list[nn.Module] = _conv(512, 256) + [up()]
    layers += _conv(256, 256) + _conv(256, 256) + _conv(256, 256) + _conv(256, 128) + [up()]
    layers += _conv(128, 128) + _conv(128, 64) + [up()]
    layers += _conv(64, 64) + [ReflectionPad(1), nn.Conv2d(64, 3, 3)]
    return FusedSequential(*layers)


class AdaIN(StyleNet):
    align = 8
    channels_last = True
    halo = 104  # encoder and decoder receptive fields (three 2x pools deep)
    reduced_precision_ok = False  # bf16 is many 8-bit steps off fp32 (tools/bench/bench_models.py)

    def __init__(self) -> None:
        super().__init__()
        self.vgg = vgg_normalised()
        self.decoder = decoder()
        self.content_norm = GlobalNorm(512, 512, eps=EPS, affine=False, unbiased=True)
        self.alpha = 1.0
        self.style_stats: tuple[torch.Tensor, torch.Tensor] | None = None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.vgg[:ENCODER_LAYERS](x)

    @torch.no_grad()
    def set_style(self, style: torch.Tensor, alpha: float = 1.0) -> None:
        """Style image (1, 3, H, W) in [0, 1]; alpha blends content (0) to full style (1)."""
        features = self.encode(style).flatten(2)
        var, mean = torch.var_mean(features, dim=2, unbiased=True)
        self.style_stats = (mean[..., None, None], (var + EPS).sqrt()[..., None, None])
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.style_stats is None:
            raise RuntimeError("AdaIN needs a style image: call set_style() first")
        content = self.encode(x)
        mean, std = (t.to(content.device, content.dtype) for t in self.style_stats)
        stylised = self.content_norm(content) * std + mean
        features = self.alpha * stylised + (1 - self.alpha) * content
        return self.decoder(features).clamp(0, 1)

    def state_dict_parts(self) -> dict[str, dict[str, torch.Tensor]]:
        """The two published files: the decoder and the normalised VGG."""
        return {"decoder": self.decoder.state_dict(), "vgg": self.vgg.state_dict()}
