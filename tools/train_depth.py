"""Train the built-in fast depth network on the synthetic renders (reproducible from a seed).

    .venv/bin/python tools/train_depth.py --data data/synth/train --steps 1200 --out ml/weights

Losses are those of MiDaS: a scale-and-shift-invariant error on inverse depth (each map
is shifted by its median and scaled by its mean absolute deviation), plus gradient
matching of the residual at four scales. bf16 autocast on CPUs that support it.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ml.devices import cpu_supports_bf16  # noqa: E402
from ml.models.fast_depth import MULTIPLE, FastDepth  # noqa: E402


def load_set(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB (N, H, W, 3) uint8 and inverse depth (N, H, W), 0 where nothing was hit."""
    rgbs, disparities = [], []
    for path in sorted(glob.glob(str(folder / "*.npz"))):
        data = np.load(path)
        depth = data["depth"].astype(np.float32)
        disparities.append(np.where(np.isfinite(depth), 1.0 / np.maximum(depth, 1e-3), 0.0))
        rgbs.append(data["rgb"])
    return torch.from_numpy(np.stack(rgbs)), torch.from_numpy(np.stack(disparities)).float()


def augment(rgb: torch.Tensor, disparity: torch.Tensor, generator: torch.Generator,
            zoom_range: tuple[float, float] = (1.0, 1.0)) -> tuple[torch.Tensor, ...]:
    """One batch: a random zoom within ``zoom_range`` (then a crop with sides that are
    multiples of 32), horizontal flips, brightness gain and saturation."""
    n, h, w = disparity.shape
    x = rgb.permute(0, 3, 1, 2).float() / 255
    y = disparity[:, None]
    low, high = zoom_range
    zoom = math.exp(math.log(low) + torch.rand((), generator=generator).item() * math.log(high / low))
    if abs(zoom - 1) > 0.05:
        size = (math.ceil(h * zoom), math.ceil(w * zoom))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=zoom < 1)
        y = F.interpolate(y, size=size, mode="bilinear", align_corners=False, antialias=zoom < 1)
    ch = min(h, x.shape[-2] // MULTIPLE * MULTIPLE)
    cw = min(w, x.shape[-1] // MULTIPLE * MULTIPLE)
    top = int(torch.randint(x.shape[-2] - ch + 1, (), generator=generator))
    left = int(torch.randint(x.shape[-1] - cw + 1, (), generator=generator))
    x, y = x[..., top:top + ch, left:left + cw], y[..., top:top + ch, left:left + cw]
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    y = torch.where(flip[:, None, None, None], y.flip(-1), y)
    grey = x.mean(dim=1, keepdim=True)
    saturation = 0.7 + 0.6 * torch.rand(n, 1, 1, 1, generator=generator)
    gain = 0.8 + 0.4 * torch.rand(n, 1, 1, 1, generator=generator)
    x = ((grey + (x - grey) * saturation) * gain).clamp(0, 1)
    return x.contiguous(), y[:, 0].contiguous()


def normalise(d: torch.Tensor) -> torch.Tensor:
    flat = d.flatten(1)
    median = flat.median(dim=1).values[:, None]
    scale = (flat - median).abs().mean(dim=1).clamp_min(1e-6)[:, None]
    return ((flat - median) / scale).view_as(d)


def ssi_loss(prediction: torch.Tensor, target: torch.Tensor, scales: int = 4) -> torch.Tensor:
    residual = normalise(prediction) - normalise(target)
    loss = residual.abs().mean()
    gradient = residual[:, None]
    for _ in range(scales):
        gx = (gradient[..., :, 1:] - gradient[..., :, :-1]).abs().mean()
        gy = (gradient[..., 1:, :] - gradient[..., :-1, :]).abs().mean()
        loss = loss + 0.5 * (gx + gy) / scales
        gradient = F.avg_pool2d(gradient, 2)
    return loss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "synth" / "train")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--zoom", type=float, nargs=2, default=[1.0, 1.0], metavar=("MIN", "MAX"),
                        help="random rescaling range (0.75 1.5 was tried: it did not generalise, see the model card)")
    parser.add_argument("--out", type=Path, default=ROOT / "ml" / "weights")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    rgb, disparity = load_set(args.data)
    print(f"{len(rgb)} training images of {tuple(rgb.shape[1:3])}", flush=True)
    model = FastDepth()
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    use_bf16 = cpu_supports_bf16()
    started = time.perf_counter()
    model.train()
    for step in range(1, args.steps + 1):
        index = torch.randint(len(rgb), (args.batch,), generator=generator)
        x, y = augment(rgb[index], disparity[index], generator, tuple(args.zoom))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            prediction = model(x)
        loss = ssi_loss(prediction.float(), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 50 == 0 or step == args.steps:
            elapsed = time.perf_counter() - started
            print(f"step {step}/{args.steps} loss {loss.item():.4f} ({elapsed:.0f} s)", flush=True)
    minutes = (time.perf_counter() - started) / 60
    args.out.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    state = {k: v.half().contiguous() for k, v in model.eval().state_dict().items() if v.is_floating_point()}
    save_file(state, str(args.out / "depth_fast.safetensors"))
    (args.out / "depth_fast_training.json").write_text(json.dumps({
        "data": args.data.name, "size": list(rgb.shape[1:3]), "zoom": args.zoom,
        "images": len(rgb), "steps": args.steps, "batch": args.batch, "lr": args.lr, "seed": args.seed,
        "minutes": round(minutes, 1), "bf16": use_bf16, "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()), "final_loss": round(loss.item(), 4),
        "not_finite": not math.isfinite(loss.item()),
    }, indent=1))
    print(f"trained in {minutes:.1f} min; wrote {args.out / 'depth_fast.safetensors'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
