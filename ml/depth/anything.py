"""Monocular depth with Depth Anything V2: the published preprocessing and postprocessing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UnsupportedModel
from ..models.loading import read_state_dict
from ..networks.depth_anything import IMAGENET_MEAN, IMAGENET_STD, PATCH, DepthAnythingV2, config_from_state

SHORT_SIDE = 518
CUBIC_A = np.float32(-0.75)  # OpenCV's INTER_CUBIC kernel parameter (Keys with a = -0.75)


def _nearest_multiple(value: float, minimum: int) -> int:
    """The multiple of 14 nearest ``value`` (ties to even, as numpy rounds), or the next one up if
    that falls below ``minimum``. This is the published lower-bound resize; rounding UP instead
    gives a different network input (686 vs 700 columns for a 4:3 photo) and a different output."""
    size = round(value / PATCH) * PATCH
    return size if size >= minimum else math.ceil(value / PATCH) * PATCH


def network_input_size(height: int, width: int, short_side: int = SHORT_SIDE) -> tuple[int, int]:
    """(rows, cols) of the network input: the photo scaled so its short side is ``short_side``,
    then each side taken to the nearest multiple of 14, never below ``short_side``."""
    scale = max(short_side / height, short_side / width)  # the same float products as the reference
    return _nearest_multiple(scale * height, short_side), _nearest_multiple(scale * width, short_side)


def _cubic_taps(source: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights, (target, 4) each, of OpenCV's INTER_CUBIC along one axis.

    Pixel centres map as src = (dst + 0.5) * source / target - 0.5, rounded to float32; the
    weights are the a = -0.75 cubic evaluated in float32 (the last one makes them sum to 1);
    taps outside the image repeat the edge pixel. No antialiasing when shrinking, as there."""
    position = ((np.arange(target, dtype=np.float64) + 0.5) * (1.0 / (target / source)) - 0.5).astype(np.float32)
    first = np.floor(position)
    t = position - first
    a, one = CUBIC_A, np.float32(1)
    w0 = ((a * (t + one) - 5 * a) * (t + one) + 8 * a) * (t + one) - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + one
    w2 = ((a + 2) * (one - t) - (a + 3)) * (one - t) * (one - t) + one
    w3 = one - w0 - w1 - w2
    index = np.clip(first.astype(np.int64)[:, None] + np.arange(-1, 3), 0, source - 1)
    return index, np.stack([w0, w1, w2, w3], axis=1)


def _cubic_along(image: np.ndarray, axis: int, size: int) -> np.ndarray:
    """One pass of the separable resize: four taps along ``axis``, summed in float64 in tap order."""
    index, weight = _cubic_taps(image.shape[axis], size)
    shape = [1] * image.ndim
    shape[axis] = size
    out = np.zeros(image.shape[:axis] + (size,) + image.shape[axis + 1:], dtype=np.float64)
    weight = weight.astype(np.float64)
    for k in range(4):
        out += np.take(image, index[:, k], axis=axis).astype(np.float64) * weight[:, k].reshape(shape)
    return out


def resize_cubic(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(H, W, C) -> (rows, cols, C) float64, the way cv2.resize(INTER_CUBIC) resizes a float64 image
    (the reference preprocessing): columns first, then rows, in float64. Written here so the
    extension needs no OpenCV; tools/bench/bench_depth.py measures it against cv2 when installed."""
    return _cubic_along(_cubic_along(image, 1, cols), 0, rows)


def network_input(rgb: np.ndarray, short_side: int = SHORT_SIDE) -> torch.Tensor:
    """(H, W, 3) RGB in [0, 1] -> (1, 3, rows, cols) float32, normalised as the reference does it:
    cubic resize and ImageNet normalisation in float64 (no clamping of the cubic overshoot), then
    float32."""
    rows, cols = network_input_size(rgb.shape[0], rgb.shape[1], short_side)
    resized = resize_cubic(np.asarray(rgb)[..., :3], rows, cols)
    normalised = (resized - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1), dtype=np.float32))[None]


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
    x = network_input(rgb)
    net = net.to(device)
    device_type = torch.device(device).type
    with torch.autocast(device_type, dtype=reduced or torch.float32, enabled=reduced is not None):
        out = net(x.to(device))[:, None]
    out = F.interpolate(out.float().cpu(), size=(h, w), mode="bilinear", align_corners=True)
    return out[0, 0].numpy().astype(np.float32)
