"""Depth Anything V2: a DINOv2 ViT encoder and a DPT decoder predicting relative inverse
depth (disparity: larger is nearer), or metres for the metric variants.

Written from the paper and the published checkpoint layout. The size (ViT-S/B/L) is read
from the checkpoint's tensor shapes, never from its file name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

PATCH = 14
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
POS_OFFSET = 0.1  # DINOv2's offset on the patch counts when it scales the positional grid


@dataclass(frozen=True)
class DepthConfig:
    dim: int
    depth: int
    heads: int
    features: int
    out_channels: tuple[int, int, int, int]
    layers: tuple[int, int, int, int]
    pos_tokens: int = 1370  # 37 x 37 patches + the class token
    max_depth: float | None = None  # metric variants: sigmoid x max_depth, in metres


CONFIGS = {
    "vits": DepthConfig(384, 12, 6, 64, (48, 96, 192, 384), (2, 5, 8, 11)),
    "vitb": DepthConfig(768, 12, 12, 128, (96, 192, 384, 768), (2, 5, 8, 11)),
    "vitl": DepthConfig(1024, 24, 16, 256, (256, 512, 1024, 1024), (4, 11, 17, 23)),
}


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class LayerScale(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.attn, self.ls1 = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads), LayerScale(dim)
        self.norm2, self.mlp, self.ls2 = nn.LayerNorm(dim, eps=1e-6), Mlp(dim, 4 * dim), LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, PATCH, PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoViT(nn.Module):
    def __init__(self, config: DepthConfig) -> None:
        super().__init__()
        dim = config.dim
        self.patch_embed = PatchEmbed(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.pos_tokens, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # part of the checkpoint, unused here
        self.blocks = nn.ModuleList(Block(dim, config.heads) for _ in range(config.depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def positions(self, height: int, width: int, dtype: torch.dtype) -> torch.Tensor:
        """The positional embedding for an input of ``height`` x ``width`` pixels, as DINOv2 makes it.

        The 37 x 37 grid is resized by a SCALE FACTOR, (patches + 0.1) / 37 per axis, not to a target
        size: bicubic then samples at (i + 0.5) / factor - 0.5, which the published weights were
        trained with (the 0.1 keeps floor(37 x factor) from falling one short in floating point).
        Only a square input of exactly the stored grid keeps the table unchanged. The resize runs in
        float32 whatever the tokens' dtype, and the result is cast to it."""
        rows, cols = height // PATCH, width // PATCH
        stored = self.pos_embed.shape[1] - 1
        if rows * cols == stored and height == width:
            return self.pos_embed
        table = self.pos_embed.float()
        side = math.sqrt(stored)
        grid = table[:, 1:].reshape(1, int(side), int(side), -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((rows + POS_OFFSET) / side, (cols + POS_OFFSET) / side),
                             mode="bicubic", align_corners=False, antialias=False)
        if grid.shape[-2:] != (rows, cols):  # cannot happen with the offset; fail loudly rather than misalign
            raise ValueError(f"positional grid resized to {tuple(grid.shape[-2:])}, expected {(rows, cols)}")
        return torch.cat([table[:, :1], grid.flatten(2).transpose(1, 2)], dim=1).to(dtype)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) image -> (N, 1 + patches, dim) tokens: class token first, positions added."""
        tokens = self.patch_embed(x)
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return tokens + self.positions(x.shape[-2], x.shape[-1], tokens.dtype)

    def intermediate(self, x: torch.Tensor, layers: tuple[int, ...]) -> list[torch.Tensor]:
        """Normalised patch tokens (class token dropped) after each of ``layers``."""
        tokens = self.embed(x)
        outputs = []
        for index, block in enumerate(self.blocks):
            tokens = block(tokens)
            if index in layers:
                outputs.append(self.norm(tokens)[:, 1:])
        return outputs


class ResidualConvUnit(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FusionBlock(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.resConfUnit1 = ResidualConvUnit(features)  # noqa: N815 - checkpoint key name
        self.resConfUnit2 = ResidualConvUnit(features)  # noqa: N815
        self.out_conv = nn.Conv2d(features, features, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None, size: tuple[int, int] | None = None):
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class Scratch(nn.Module):
    def __init__(self, config: DepthConfig) -> None:
        super().__init__()
        f = config.features
        c1, c2, c3, c4 = config.out_channels
        self.layer1_rn = nn.Conv2d(c1, f, 3, padding=1, bias=False)
        self.layer2_rn = nn.Conv2d(c2, f, 3, padding=1, bias=False)
        self.layer3_rn = nn.Conv2d(c3, f, 3, padding=1, bias=False)
        self.layer4_rn = nn.Conv2d(c4, f, 3, padding=1, bias=False)
        self.refinenet1, self.refinenet2 = FusionBlock(f), FusionBlock(f)
        self.refinenet3, self.refinenet4 = FusionBlock(f), FusionBlock(f)
        self.output_conv1 = nn.Conv2d(f, f // 2, 3, padding=1)
        self.output_conv2 = nn.Sequential(nn.Conv2d(f // 2, 32, 3, padding=1), nn.ReLU(True), nn.Conv2d(32, 1, 1),
                                          nn.ReLU(True))


class DPTHead(nn.Module):
    def __init__(self, config: DepthConfig) -> None:
        super().__init__()
        dim, out = config.dim, config.out_channels
        self.projects = nn.ModuleList(nn.Conv2d(dim, c, 1) for c in out)
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(out[0], out[0], 4, stride=4),
            nn.ConvTranspose2d(out[1], out[1], 2, stride=2),
            nn.Identity(),
            nn.Conv2d(out[3], out[3], 3, stride=2, padding=1),
        ])
        self.scratch = Scratch(config)

    def forward(self, features: list[torch.Tensor], rows: int, cols: int) -> torch.Tensor:
        maps = []
        for index, tokens in enumerate(features):
            x = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, rows, cols)
            maps.append(self.resize_layers[index](self.projects[index](x)))
        s = self.scratch
        l1, l2, l3, l4 = s.layer1_rn(maps[0]), s.layer2_rn(maps[1]), s.layer3_rn(maps[2]), s.layer4_rn(maps[3])
        path = s.refinenet4(l4, size=l3.shape[-2:])
        path = s.refinenet3(path, l3, size=l2.shape[-2:])
        path = s.refinenet2(path, l2, size=l1.shape[-2:])
        path = s.refinenet1(path, l1)
        out = s.output_conv1(path)
        out = F.interpolate(out, size=(rows * PATCH, cols * PATCH), mode="bilinear", align_corners=True)
        return s.output_conv2(out)


class DepthAnythingV2(nn.Module):
    def __init__(self, config: DepthConfig) -> None:
        super().__init__()
        self.config = config
        self.pretrained = DinoViT(config)
        self.depth_head = DPTHead(config)
        if config.max_depth is not None:  # metric variant: bounded output in metres
            self.depth_head.scratch.output_conv2[3] = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised, H and W multiples of 14 -> (N, H, W) depth output."""
        rows, cols = x.shape[-2] // PATCH, x.shape[-1] // PATCH
        features = self.pretrained.intermediate(x, self.config.layers)
        depth = self.depth_head(features, rows, cols)[:, 0]
        return depth * self.config.max_depth if self.config.max_depth is not None else depth


def config_from_state(state: dict[str, torch.Tensor], max_depth: float | None = None) -> DepthConfig:
    """The ViT size from the checkpoint's shapes."""
    dim = state["pretrained.cls_token"].shape[-1]
    by_dim = {c.dim: name for name, c in CONFIGS.items()}
    if dim not in by_dim:
        raise ValueError(f"no Depth Anything V2 size has a {dim}-wide encoder")
    base = CONFIGS[by_dim[dim]]
    blocks = len({k.split(".")[2] for k in state if k.startswith("pretrained.blocks.")})
    if blocks != base.depth:
        raise ValueError(f"a {dim}-wide Depth Anything V2 encoder has {base.depth} blocks, the file has {blocks}")
    tokens = state["pretrained.pos_embed"].shape[1]
    return DepthConfig(base.dim, base.depth, base.heads, base.features, base.out_channels, base.layers, tokens,
                       max_depth)
