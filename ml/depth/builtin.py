"""The built-in fast depth model: weights shipped inside the extension (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..errors import UnsupportedModel
from ..models.loading import read_state_dict
from ..networks.fast_depth import MULTIPLE, FastDepth, shape_from_state

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "depth_fast.safetensors"
MIRRORED = True
INPUT_LONG_SIDE = 256  # the size it was trained at; photos are resized to it (model card: accuracy vs size)


def load_fast_depth(path: Path = WEIGHTS) -> FastDepth:
    state = read_state_dict(path, keep_norm_buffers=True)  # real BatchNorm statistics
    try:  # widths and depths from key names and shapes: any FastDepthShape loads
        net = FastDepth(shape_from_state(state))
    except (KeyError, IndexError, ValueError) as exc:
        raise UnsupportedModel(f"{Path(path).name} is not a built-in depth network (no {exc})") from exc
    try:
        net.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    except RuntimeError as exc:
        raise UnsupportedModel(f"{Path(path).name} does not fit the built-in depth network: {exc}") from exc
    missing = [k for k in net.state_dict() if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise UnsupportedModel(f"{Path(path).name} lacks {len(missing)} tensors of the built-in depth network")
    return fold_batch_norms(net.eval()).to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def fold_batch_norms(net: FastDepth) -> FastDepth:
    """Fold each eval-mode BatchNorm into the convolution before it (same output, fewer passes
    over memory)."""
    for block in net.modules():
        if not isinstance(block, torch.nn.Sequential) or len(block) != 3:
            continue
        conv, norm = block[0], block[1]
        if isinstance(conv, torch.nn.Conv2d) and isinstance(norm, torch.nn.BatchNorm2d):
            block[0] = fuse_conv_bn_eval(conv, norm)
            block[1] = torch.nn.Identity()
    return net


@torch.inference_mode()
def estimate_fast_depth(net: FastDepth, rgb: np.ndarray, long_side: int = INPUT_LONG_SIDE,
                        mirrored: bool = MIRRORED) -> np.ndarray:
    """(H, W, 3) sRGB in [0, 1] -> (H, W) relative inverse depth."""
    h, w = rgb.shape[:2]
    scale = long_side / max(h, w)  # up or down: the network is tuned to one scale
    nh = max(MULTIPLE, round(h * scale / MULTIPLE) * MULTIPLE)
    nw = max(MULTIPLE, round(w * scale / MULTIPLE) * MULTIPLE)
    x = torch.from_numpy(np.ascontiguousarray(rgb[..., :3], dtype=np.float32)).permute(2, 0, 1)[None]
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    x = x.contiguous(memory_format=torch.channels_last)
    if mirrored:  # the average with the mirrored prediction cancels some left/right bias
        both = net(torch.cat([x, x.flip(-1)]))  # one batch of two runs faster than two calls
        out = (both[:1] + both[1:].flip(-1)) / 2
    else:
        out = net(x)
    out = out[:, None]
    return F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy().astype(np.float32)
