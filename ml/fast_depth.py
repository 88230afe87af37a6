"""The built-in fast depth model: weights shipped inside the extension (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import UnsupportedModel
from .loading import read_state_dict
from .models.fast_depth import MULTIPLE, FastDepth

WEIGHTS = Path(__file__).resolve().parent / "weights" / "depth_fast.safetensors"
INPUT_LONG_SIDE = 128  # the resolution it was trained at: it does not generalise across scale (model card)


def load_fast_depth(path: Path = WEIGHTS) -> FastDepth:
    state = read_state_dict(path, keep_norm_buffers=True)  # real BatchNorm statistics
    net = FastDepth()
    try:
        net.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    except RuntimeError as exc:
        raise UnsupportedModel(f"{Path(path).name} does not fit the built-in depth network: {exc}") from exc
    missing = [k for k in net.state_dict() if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise UnsupportedModel(f"{Path(path).name} lacks {len(missing)} tensors of the built-in depth network")
    return net.eval()


@torch.inference_mode()
def estimate_fast_depth(net: FastDepth, rgb: np.ndarray, long_side: int = INPUT_LONG_SIDE) -> np.ndarray:
    """(H, W, 3) sRGB in [0, 1] -> (H, W) relative inverse depth."""
    h, w = rgb.shape[:2]
    scale = min(1.0, long_side / max(h, w)) if max(h, w) > long_side else 1.0
    nh = max(MULTIPLE, round(h * scale / MULTIPLE) * MULTIPLE)
    nw = max(MULTIPLE, round(w * scale / MULTIPLE) * MULTIPLE)
    x = torch.from_numpy(np.ascontiguousarray(rgb[..., :3], dtype=np.float32)).permute(2, 0, 1)[None]
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    # The average with the mirrored prediction cancels some of the network's left/right bias.
    out = ((net(x) + net(x.flip(-1)).flip(-1)) / 2)[:, None]
    return F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy().astype(np.float32)
