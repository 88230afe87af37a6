"""Monocular depth with Depth Anything V2: the published preprocessing and postprocessing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import UnsupportedModel
from .loading import read_state_dict
from .models.depth_anything import IMAGENET_MEAN, IMAGENET_STD, PATCH, DepthAnythingV2, config_from_state

SHORT_SIDE = 518


def network_input_size(height: int, width: int, short_side: int = SHORT_SIDE) -> tuple[int, int]:
    """Keep the aspect, make the short side at least ``short_side``, both sides multiples of 14."""
    scale = short_side / min(height, width)
    return (max(PATCH, math.ceil(height * scale / PATCH) * PATCH), max(PATCH, math.ceil(width * scale / PATCH) * PATCH))


def load_depth_network(path: Path, max_depth: float | None = None) -> DepthAnythingV2:
    state = read_state_dict(path)
    if "pretrained.cls_token" not in state:
        raise UnsupportedModel(f"{Path(path).name} is not a Depth Anything V2 checkpoint (no ViT encoder)")
    try:
        net = DepthAnythingV2(config_from_state(state, max_depth))
        net.load_state_dict(state, strict=True)
    except (ValueError, RuntimeError) as exc:
        raise UnsupportedModel(f"{Path(path).name} does not fit Depth Anything V2: {str(exc)[:200]}") from exc
    return net.eval()


@torch.inference_mode()
def estimate_depth(net: DepthAnythingV2, rgb: np.ndarray, device: str | torch.device = "cpu",
                   reduced: torch.dtype | None = None) -> np.ndarray:
    """(H, W, 3) sRGB in [0, 1] -> (H, W) float32: relative inverse depth, or metres (metric).
    ``reduced``: an autocast dtype (bf16/fp16), or None for fp32."""
    h, w = rgb.shape[:2]
    x = torch.from_numpy(np.ascontiguousarray(rgb[..., :3], dtype=np.float32)).permute(2, 0, 1)[None]
    x = F.interpolate(x, size=network_input_size(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    net = net.to(device)
    device_type = torch.device(device).type
    with torch.autocast(device_type, dtype=reduced or torch.float32, enabled=reduced is not None):
        out = net(((x - mean) / std).to(device))[:, None]
    out = F.interpolate(out.float().cpu(), size=(h, w), mode="bilinear", align_corners=True)
    return out[0, 0].numpy().astype(np.float32)
