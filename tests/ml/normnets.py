"""Small generators with whole-image normalisation, shaped like the published GANs:
GroupNorm(1, C) as in AnimeGANv2 and affine-free InstanceNorm as in CycleGAN, with
stride-2 downsampling and upsampling so tiles must align to the grid."""

import torch
import torch.nn.functional as F
from torch import nn

from ml.networks.base import StyleNet
from ml.restyle.tiling import GlobalNorm


class NormNet(StyleNet):
    align = 4
    halo = 28  # receptive field is about 12 input pixels; the rest is margin

    def __init__(self, instance_norm: bool, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)

        def norm(c: int) -> GlobalNorm:
            return GlobalNorm(c, c, affine=False) if instance_norm else GlobalNorm(1, c)

        self.c1, self.n1 = nn.Conv2d(3, 16, 3, padding=1, padding_mode="reflect"), norm(16)
        self.c2, self.n2 = nn.Conv2d(16, 32, 3, stride=2, padding=1), norm(32)
        self.c3, self.n3 = nn.Conv2d(32, 32, 3, stride=2, padding=1), norm(32)
        self.c4, self.n4 = nn.Conv2d(32, 16, 3, padding=1), norm(16)
        self.c5 = nn.Conv2d(16, 3, 3, padding=1, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.n1(self.c1(x)), 0.2)
        x = F.relu(self.n2(self.c2(x)))
        x = F.relu(self.n3(self.c3(x)))
        x = F.interpolate(x, scale_factor=4, mode="nearest")
        x = F.relu(self.n4(self.c4(x)))
        return torch.sigmoid(self.c5(x))
