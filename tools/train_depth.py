"""Train the built-in fast depth network on the synthetic renders (reproducible from a seed).

    .venv/bin/python tools/train_depth.py --data data/synth/train --steps 1200 --out ml/weights
    .venv/bin/python tools/train_depth.py --data data/synth/train --pack data/pack/train.npz

The training data must not contain any held-out scene family (tools/synth/plan.py): those
are the out-of-distribution check, and a set with one of them is refused. ``--data`` takes
folders of renders or packed sets (``--pack`` writes one: JPEG colour and float16 inverse
depth, about a third of the size, to carry a set to a training machine).

Losses are those of MiDaS: a scale-and-shift-invariant error on inverse depth (each map
is shifted by its median and scaled by its mean absolute deviation), plus gradient
matching of the residual at four scales; ``--depth-loss W`` adds, with weight W, the
evaluation's own error made smooth (``aligned_log_loss``: least-squares fit in inverse
depth, then the log ratio of depths), which the shipped model was fine-tuned with.
Each batch is a random crop (zoom 1-2x, any aspect from portrait to 16:9) resized to one of
the network inputs photo import uses (a 256 px long side rounded to multiples of 32), so the
network learns the working size at many fields of view. bf16 autocast on CUDA and on CPUs that support it.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import io
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

from ml.models.loading import read_state_dict  # noqa: E402
from ml.networks.fast_depth import (  # noqa: E402
    DECODER,
    ENCODER,
    FastDepth,
    FastDepthShape,
    planar_from_plain,
    shape_from_state,
)
from ml.runtime.devices import cpu_supports_bf16  # noqa: E402
from tools.synth.plan import check_training_families  # noqa: E402

# (height, width) inputs of photo import's built-in model (ml/depth/builtin.py: the long side
# resized to 256, both sides rounded to multiples of 32): 4:3, 3:2, 16:9, square, portrait.
INPUT_SHAPES = ((192, 256), (160, 256), (128, 256), (224, 224), (256, 192), (256, 160))


def _disparity(depth: np.ndarray) -> np.ndarray:
    depth = depth.astype(np.float32)
    return np.where(np.isfinite(depth), 1.0 / np.maximum(depth, 1e-3), 0.0).astype(np.float32)


def read_renders(folder: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """A folder of generator outputs: colour, inverse depth and family of each."""
    rgbs, disparities, families = [], [], []
    for path in sorted(glob.glob(str(folder / "*.npz"))):
        data = np.load(path)
        rgbs.append(data["rgb"])
        disparities.append(_disparity(data["depth"]))
        families.append(str(data["family"]) if "family" in data else "primitives")
    return rgbs, disparities, families


def read_pack(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """A packed set written by ``pack_set``."""
    data = np.load(path)
    return _decode_pack(data), list(data["disparity"].astype(np.float32)), [str(f) for f in data["family"]]


def _decode_pack(data: np.lib.npyio.NpzFile) -> list[np.ndarray]:
    from PIL import Image

    blob, offsets = data["jpeg"], data["offsets"]
    return [np.asarray(Image.open(io.BytesIO(blob[a:b].tobytes())).convert("RGB"))
            for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def load_set(*sources: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """RGB (N, H, W, 3) uint8, inverse depth (N, H, W) (0 where nothing was hit) and the
    family of each image, from folders of renders or packed sets. Refuses held-out families."""
    rgbs: list[np.ndarray] = []
    disparities: list[np.ndarray] = []
    families: list[str] = []
    for source in sources:
        parts = read_renders(source) if source.is_dir() else read_pack(source)
        rgbs += parts[0]
        disparities += parts[1]
        families += parts[2]
    check_training_families(families)
    if not rgbs:
        raise ValueError(f"no renders in {', '.join(map(str, sources))}")
    return torch.from_numpy(np.stack(rgbs)), torch.from_numpy(np.stack(disparities)).float(), families


def pack_set(folder: Path, target: Path, quality: int = 92) -> int:
    """Write ``folder``'s renders as one packed set (JPEG colour, float16 inverse depth)."""
    from PIL import Image

    rgbs, disparities, families = read_renders(folder)
    blobs = []
    for rgb in rgbs:
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
        blobs.append(np.frombuffer(buffer.getvalue(), np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(target, jpeg=np.concatenate(blobs), offsets=offsets,
                        disparity=np.stack(disparities).astype(np.float16), family=np.array(families))
    return len(rgbs)


def augment(rgb: torch.Tensor, disparity: torch.Tensor, generator: torch.Generator,
            zoom_range: tuple[float, float] = (1.0, 2.0),
            shapes: tuple[tuple[int, int], ...] = INPUT_SHAPES) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch at a working input size: per image a random crop (``zoom_range`` times
    narrower than the render, log-uniform, with the aspect of the batch's input shape),
    resized to that shape; horizontal flips, brightness, contrast, saturation, blur and noise.
    ``rgb`` (N, H, W, 3) uint8 and ``disparity`` (N, H, W) on any device."""
    n, h, w = disparity.shape
    device = rgb.device
    out_h, out_w = shapes[int(torch.randint(len(shapes), (), generator=generator))]
    aspect = out_w / out_h
    low, high = zoom_range
    u = torch.rand(n, 3, generator=generator)
    zoom = torch.exp(math.log(low) + u[:, 0] * math.log(high / low))
    # the largest window of the wanted aspect that fits, shrunk by the zoom
    base_w = torch.full((n,), float(min(w, h * aspect)))
    crop_w = base_w / zoom
    crop_h = crop_w / aspect
    cx = (crop_w / 2 + u[:, 1] * (w - crop_w)) / w * 2 - 1  # centre in [-1, 1] coordinates
    cy = (crop_h / 2 + u[:, 2] * (h - crop_h)) / h * 2 - 1
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = crop_w / w * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = crop_h / h, cy
    grid = F.affine_grid(theta.to(device), [n, 1, out_h, out_w], align_corners=False)
    x = F.grid_sample(rgb.permute(0, 3, 1, 2).float() / 255, grid, mode="bilinear", align_corners=False)
    # the disparity and where it hit something: a pixel mixing sky with a surface is sky
    valid = (disparity > 0).to(disparity.dtype)
    sampled = F.grid_sample(torch.stack([disparity, valid], 1), grid, mode="bilinear", align_corners=False)
    y = torch.where(sampled[:, 1] > 0.999, sampled[:, 0], torch.zeros_like(sampled[:, 0]))
    jitter = torch.rand(n, 5, generator=generator).to(device)
    grey = x.mean(dim=1, keepdim=True)
    saturation = (0.5 + 0.9 * jitter[:, 0]).view(n, 1, 1, 1)
    gain = (0.7 + 0.6 * jitter[:, 1]).view(n, 1, 1, 1)
    contrast = (0.7 + 0.6 * jitter[:, 2]).view(n, 1, 1, 1)
    x = grey + (x - grey) * saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean) * gain
    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    soften = (jitter[:, 3] < 0.25).view(n, 1, 1, 1)
    x = torch.where(soften, blurred, x)
    noise = torch.randn(x.shape, device=device) * (0.03 * jitter[:, 4]).view(n, 1, 1, 1)  # global RNG: seeded
    return (x + noise).clamp(0, 1).contiguous(), y.contiguous()


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


def aligned_log_loss(prediction: torch.Tensor, target: torch.Tensor, floor: float = 0.02) -> torch.Tensor:
    """The evaluation's error made smooth: per image the prediction is fitted to the target
    inverse depth by least squares (scale and shift over the pixels that hit something, as
    ml/depth/metrics.py fits it), then the mean absolute log ratio of aligned to true inverse
    depth, which is the log ratio of the depths. The inverse-depth losses above hardly see
    the far part of a scene (its inverse depth is near zero whatever it is); this one weighs
    a far wall as much as a near one. A soft floor (``floor`` times the truth) keeps the log
    finite, and its gradient pointing up, where the fitted value is zero or negative."""
    mask = (target > 0).to(prediction.dtype)
    count = mask.sum(dim=(1, 2)).clamp_min(1)
    mean_p = ((prediction * mask).sum(dim=(1, 2)) / count)[:, None, None]
    mean_t = ((target * mask).sum(dim=(1, 2)) / count)[:, None, None]
    centred = (prediction - mean_p) * mask
    scale = (centred * (target - mean_t)).sum(dim=(1, 2)) / (centred * centred).sum(dim=(1, 2)).clamp_min(1e-12)
    aligned = scale[:, None, None] * (prediction - mean_p) + mean_t
    truth = target.clamp_min(1e-6)
    aligned = torch.where(mask > 0, aligned, truth)  # sky: no error, and no log of an underflow
    x = aligned / (floor * truth)
    # log(softplus(x)), with its asymptote x far below zero, where softplus underflows to 0
    log_soft = torch.where(x > -15, torch.log(F.softplus(x.clamp_min(-15))), x)
    error = (math.log(floor) + log_soft).abs() * mask  # log(floor * truth * softplus(x) / truth)
    return (error.sum(dim=(1, 2)) / count).mean()


FP16_MAX = float(torch.finfo(torch.float16).max)


def save_weights(model: FastDepth, folder: Path) -> list[str]:
    """fp16, except a tensor with a value beyond fp16's range (a BatchNorm variance above 65504
    after a high learning rate), which stays fp32: in fp16 it would be infinite and the loader
    would refuse the whole file. Returns the names of those kept in fp32."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu() for k, v in model.state_dict().items() if v.is_floating_point()}
    wide = [k for k, v in state.items() if v.numel() and float(v.abs().max()) > FP16_MAX]
    save_file({k: (v if k in wide else v.half()).contiguous() for k, v in state.items()},
              str(folder / "depth_fast.safetensors"))
    return wide


def train_step(model: FastDepth, optimiser: torch.optim.Optimizer, rgb: torch.Tensor, disparity: torch.Tensor,
               generator: torch.Generator, args: argparse.Namespace, use_bf16: bool) -> torch.Tensor:
    index = torch.randint(len(rgb), (args.batch,), generator=generator).to(rgb.device)
    x, y = augment(rgb[index], disparity[index], generator, tuple(args.zoom))
    with torch.autocast(rgb.device.type, dtype=torch.bfloat16, enabled=use_bf16):
        prediction = model(x.contiguous(memory_format=torch.channels_last))
    loss = ssi_loss(prediction.float(), y)
    if args.depth_loss:
        loss = loss + args.depth_loss * aligned_log_loss(prediction.float(), y)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return loss.detach()


def warm_start(model: FastDepth, weights: Path) -> int:
    """Copy into ``model`` every tensor of ``weights`` with the same name and shape (a new
    layout keeps what it shares with trained weights: the stem, the early levels); the number copied."""
    own = model.state_dict()
    matching = {k: v.float() for k, v in read_state_dict(weights, keep_norm_buffers=True).items()
                if k in own and own[k].shape == v.shape}
    if not matching:
        raise ValueError(f"{weights.name} shares no tensor (name and shape) with the built-in depth network")
    model.load_state_dict(matching, strict=False)
    return len(matching)


def cli_shape(args: argparse.Namespace) -> FastDepthShape:
    return FastDepthShape(encoder=tuple(args.encoder), decoder=tuple(args.decoder), blocks=tuple(args.blocks),
                          context=args.context, planar=args.planar)


def calibrate_steps(rgb: torch.Tensor, disparity: torch.Tensor, args: argparse.Namespace, use_bf16: bool) -> int:
    """How many steps fit in ``args.minutes``, timed on a throw-away model."""
    model = FastDepth(cli_shape(args)).to(rgb.device).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed + 1)
    for _ in range(10):  # warm-up: kernel selection
        train_step(model, optimiser, rgb, disparity, generator, args, use_bf16).item()
    started = time.perf_counter()
    for _ in range(30):
        loss = train_step(model, optimiser, rgb, disparity, generator, args, use_bf16)
    loss.item()
    per_step = (time.perf_counter() - started) / 30
    return max(100, int(args.minutes * 60 / per_step))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, nargs="+", default=[ROOT / "data" / "synth" / "train"])
    parser.add_argument("--pack", type=Path, help="only write the --data folder as a packed set here")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--zoom", type=float, nargs=2, default=[1.0, 2.0], metavar=("MIN", "MAX"),
                        help="crop zoom range (1 = the whole render)")
    parser.add_argument("--blocks", type=int, nargs=4, default=[2, 2, 2, 2], help="3x3 convolutions per encoder level")
    parser.add_argument("--encoder", type=int, nargs=4, default=list(ENCODER), help="encoder widths")
    parser.add_argument("--decoder", type=int, nargs=4, default=list(DECODER), help="decoder widths")
    parser.add_argument("--context", action="store_true", help="add the global context vector at 1/32")
    parser.add_argument("--planar", action="store_true", help="a planar head (a plane in inverse depth per pixel); "
                        "with --init, a plain network's head becomes a planar one predicting nearly the same")
    parser.add_argument("--init", type=Path, help="fine-tune these weights instead of starting from random ones")
    parser.add_argument("--warm", type=Path, help="start the architecture given by --encoder, --blocks and --decoder "
                        "from the tensors of these weights whose names and shapes match (the rest random)")
    parser.add_argument("--depth-loss", type=float, default=0.0,
                        help="weight of the aligned log-depth loss (the evaluation's own error, made smooth)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--minutes", type=float, default=0.0, help="train for about this long (sets --steps)")
    parser.add_argument("--save-every", type=int, default=0, help="also save the weights every N steps")
    parser.add_argument("--out", type=Path, default=ROOT / "ml" / "weights")
    args = parser.parse_args()
    if args.depth_loss < 0:
        parser.error(f"--depth-loss is a loss weight: 0 or more, not {args.depth_loss}")
    missing = [str(p) for p in args.data if not p.exists()]
    if missing:
        parser.error(f"no training data at {', '.join(missing)} (a folder of renders or a packed set)")
    if args.init and args.warm:
        parser.error("--init fine-tunes saved weights in their own layout; --warm starts a new layout: choose one")
    if args.pack:
        count = pack_set(args.data[0], args.pack)
        print(f"packed {count} renders into {args.pack} ({args.pack.stat().st_size / 1e6:.1f} MB)")
        return 0
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    rgb, disparity, families = load_set(*args.data)
    device = torch.device(args.device)
    counts = {f: families.count(f) for f in sorted(set(families))}
    print(f"{len(rgb)} training images of {tuple(rgb.shape[1:3])} on {device}: {counts}", flush=True)
    rgb, disparity = rgb.to(device), disparity.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    use_bf16 = device.type == "cuda" or cpu_supports_bf16()
    if args.minutes:  # a time budget: measure a few steps, then fix the step count (recorded)
        args.steps = calibrate_steps(rgb, disparity, args, use_bf16)
        print(f"{args.steps} steps fit in {args.minutes} min", flush=True)
    torch.manual_seed(args.seed)
    shape = cli_shape(args)
    model = FastDepth(shape)
    warmed = 0
    if args.warm:
        warmed = warm_start(model, args.warm)
        print(f"warm start: {warmed} of {len(model.state_dict())} tensors from {args.warm.name}", flush=True)
    if args.init:  # fine-tune: start from saved weights (their own layout, read from shapes)
        state = read_state_dict(args.init, keep_norm_buffers=True)
        if args.planar and not shape_from_state(state).planar:
            state = planar_from_plain(state)
        shape = shape_from_state(state)
        model = FastDepth(shape)
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    model = model.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    started = time.perf_counter()
    model.train()
    loss = torch.zeros(())
    for step in range(1, args.steps + 1):
        loss = train_step(model, optimiser, rgb, disparity, generator, args, use_bf16)
        schedule.step()
        if step % 200 == 0 or step == args.steps:
            elapsed = time.perf_counter() - started
            print(f"step {step}/{args.steps} loss {loss.item():.4f} ({elapsed:.0f} s)", flush=True)
        if args.save_every and step % args.save_every == 0:
            save_weights(model.eval(), args.out)
            model.train()
    minutes = (time.perf_counter() - started) / 60
    wide = save_weights(model.eval(), args.out)
    if wide:
        print(f"kept in fp32 (beyond fp16's range): {', '.join(wide)}", flush=True)
    (args.out / "depth_fast_training.json").write_text(json.dumps({
        "data": [p.name for p in args.data], "init": args.init.name if args.init else None,
        "warm": f"{args.warm.name} ({warmed} tensors)" if args.warm else None,
        "families": counts, "size": list(rgb.shape[1:3]),
        "input_shapes": [list(s) for s in INPUT_SHAPES], "zoom": args.zoom,
        "images": len(rgb), "steps": args.steps, "minutes_budget": args.minutes, "batch": args.batch,
        "lr": args.lr, "seed": args.seed, "depth_loss": args.depth_loss,
        "minutes": round(minutes, 1), "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "bf16": use_bf16, "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()), "shape": dataclasses.asdict(shape),
        "final_loss": round(loss.item(), 4),
        "not_finite": not math.isfinite(loss.item()),
    }, indent=1))
    print(f"trained in {minutes:.1f} min; wrote {args.out / 'depth_fast.safetensors'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
