"""Checkpoints of the exact published layouts, from seeded random tensors, saved the way
upstream saved them (plain pickled state dicts via torch.save, legacy keys included)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import torch

from ml.networks.adain import AdaIN
from ml.networks.animegan2 import AnimeGAN2
from ml.networks.cyclegan import CycleGANGenerator
from ml.networks.transformer_net import TransformerNet


def seeded(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights that give a well-behaved image: norm scales near 1, small convs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            if p.dim() > 1:  # fan-in scaling keeps activations in range through deep stacks
                p.copy_(noise * (2.0 / p[0].numel()) ** 0.5)
            elif name.endswith("weight"):  # norm scales
                p.copy_(1 + 0.1 * noise)
            else:
                p.copy_(0.01 * noise)
    return model.eval()


def animegan2_state(seed: int = 0) -> dict[str, torch.Tensor]:
    return seeded(AnimeGAN2(), seed).state_dict()


def cyclegan_state(blocks: int = 9, seed: int = 0, legacy: bool = True) -> dict[str, torch.Tensor]:
    """Old CycleGAN files carry InstanceNorm running stats under the norm indices."""
    model = seeded(CycleGANGenerator(blocks), seed)
    state = dict(model.state_dict())
    if legacy:
        for name, module in model.named_modules():
            if type(module).__name__ == "GlobalNorm":
                c = module.num_channels
                state[f"{name}.running_mean"] = torch.zeros(c)
                state[f"{name}.running_var"] = torch.ones(c)
                state[f"{name}.num_batches_tracked"] = torch.tensor(0)
    return state


def transformer_state(seed: int = 0, legacy: bool = True) -> dict[str, torch.Tensor]:
    """fast-neural-style's saved models hold running_mean/var for in1..in5 (and in res blocks)."""
    model = seeded(TransformerNet(), seed)
    state = dict(model.state_dict())
    if legacy:
        for key in list(state):
            if key.endswith(".weight") and ".in" in f".{key}" and state[key].dim() == 1:
                base = key[: -len(".weight")]
                state[f"{base}.running_mean"] = torch.zeros_like(state[key])
                state[f"{base}.running_var"] = torch.ones_like(state[key])
    return state


def adain_states(seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    return seeded(AdaIN(), seed).state_dict_parts()


def save(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save(state, path)
    return path


def fast_style_zip(path: Path, names: tuple[str, ...] = ("candy", "mosaic", "rain_princess", "udnie")) -> Path:
    """The upstream archive layout: saved_models/<name>.pth."""
    with zipfile.ZipFile(path, "w") as archive:
        for number, name in enumerate(names):
            buffer = io.BytesIO()
            torch.save(transformer_state(seed=number), buffer)
            archive.writestr(f"saved_models/{name}.pth", buffer.getvalue())
    return path


def depth_anything_state(size: str = "vits", seed: int = 0, blocks: int | None = None,
                         meta: bool = False) -> dict[str, torch.Tensor]:
    """A Depth Anything V2 state dict of the published layout (keys_dav2_vits.txt for Small).

    ``blocks`` keeps only that many encoder blocks (shapes unchanged: enough for detection by shapes);
    ``meta`` gives shape-only tensors, so Base and Large cost no memory."""
    from dataclasses import replace

    from ml.networks.depth_anything import CONFIGS, DepthAnythingV2

    config = CONFIGS[size]
    if blocks is not None:
        a, b, c, d = (min(i, blocks - 1) for i in config.layers)
        config = replace(config, depth=blocks, layers=(a, b, c, d))
    if meta:
        with torch.device("meta"):
            return dict(DepthAnythingV2(config).state_dict())
    return dict(seeded(DepthAnythingV2(config), seed).state_dict())
