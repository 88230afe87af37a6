"""Feature extractors for the style and content losses.

Two sources, recorded in every result so the user knows which one a style was made with:

* ``vgg``: the normalised VGG-19 of the AdaIN download (relu1_1 .. relu4_1), the classic
  perceptual features, used when its file is installed.
* ``random``: a fixed, seeded network of random 3x3 convolutions with average pooling,
  which needs no download. Statistics of random ReLU features describe textures well
  (Ustyuzhaninov et al. 2017, "What does it take to generate natural textures?"); the
  weights come from a fixed seed, so the same features are used by every run and
  every machine, independently of the training seed.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..networks.adain import vgg_normalised

FEATURE_SEED = 20260101  # part of the definition of the "random" features: never change it
RANDOM_CHANNELS = (64, 96, 128, 128)
VGG_TAPS = (3, 10, 17, 30)  # relu1_1, relu2_1, relu3_1, relu4_1 in the normalised VGG-19


class FeatureNet(nn.Module):
    """Maps (N, 3, H, W) images in [0, 1] to a list of feature maps, shallow to deep.
    ``content_layer`` indexes the map the content loss compares."""

    source: str = ""
    content_layer: int = 1

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError


class RandomFeatures(FeatureNet):
    source = "random"
    # The deepest map (1/8 scale): random features are not invariant to texture, and a shallow
    # content layer fights the style loss mark by mark (measured: the style loss stayed flat).
    content_layer = 3

    def __init__(self, channels: tuple[int, ...] = RANDOM_CHANNELS) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(FEATURE_SEED)
        convs = []
        cin = 3
        for cout in channels:
            conv = nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect")
            with torch.no_grad():
                # He initialisation with zero-mean filters: each layer keeps the signal's
                # scale, and a flat region gives the same response whatever its brightness.
                weight = torch.randn(conv.weight.shape, generator=generator) * (2.0 / (cin * 9)) ** 0.5
                conv.weight.copy_(weight - weight.mean(dim=(1, 2, 3), keepdim=True) * (cin == 3))
                assert conv.bias is not None  # Conv2d's default: with a bias
                conv.bias.copy_(torch.randn(cout, generator=generator) * 0.1)
            convs.append(conv)
            cin = cout
        self.convs = nn.ModuleList(convs)
        self.requires_grad_(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        y = (x - 0.45) / 0.25
        out = []
        for index, conv in enumerate(self.convs):
            if index:
                y = F.avg_pool2d(y, 2)
            y = F.relu(conv(y))
            out.append(y)
        return out


class VGGFeatures(FeatureNet):
    source = "vgg"
    content_layer = 2  # relu3_1

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.layers = nn.Sequential(*list(vgg_normalised())[: VGG_TAPS[-1] + 1])
        self.layers.load_state_dict({k: v for k, v in state.items() if int(k.split(".")[0]) <= VGG_TAPS[-1]})
        self.requires_grad_(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for index, layer in enumerate(self.layers):
            x = layer(x)  # plain layer calls: the fused inference path is for no-grad runs
            if index in VGG_TAPS:
                out.append(x)
        return out


def load_features(vgg_path: Path | None) -> FeatureNet:
    """The VGG features when its file is given and exists, else the random features."""
    if vgg_path is not None and Path(vgg_path).is_file():
        from ..models.loading import read_state_dict  # the safe reader: weights only

        return VGGFeatures(read_state_dict(Path(vgg_path))).eval()
    return RandomFeatures().eval()


def gram(feature: torch.Tensor) -> torch.Tensor:
    """(N, C, C) Gram matrices of (N, C, H, W) features, per pixel, in fp32."""
    n, c, h, w = feature.shape
    flat = feature.float().reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)


def mean_covariance(feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C) channel means and (N, C, C) covariances of (N, C, H, W) features, in fp32."""
    n, c, h, w = feature.shape
    flat = feature.float().reshape(n, c, h * w)
    mean = flat.mean(2)
    centred = flat - mean[..., None]
    return mean, centred @ centred.transpose(1, 2) / (h * w)
