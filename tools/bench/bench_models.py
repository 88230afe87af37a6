"""Published style generators on this machine: naive baseline vs the engine, fp32 and bf16.

    .venv/bin/python tools/bench/bench_models.py [--size 1024] [--device cpu] [--profile]

Per architecture (seeded random weights of the published layout): megapixels/s of a naive
eager fp32 whole-image forward, of the engine in fp32 and in bf16, the engine/baseline
ratio, the bf16 error against fp32 after 8-bit quantisation, and the fraction of this
machine's measured matmul FLOP/s each run reaches.

The bf16 error it measured decides each network's ``reduced_precision_ok`` (CPU, 2026-11-21/22,
largest 8-bit steps off fp32): CycleGAN 32, AnimeGANv2 14, AdaIN 11, TransformerNet 1 (mean
0.02). ``--profile`` showed what ml/networks/fused.py removes (AnimeGANv2, 2026-11-21): a
bf16 LeakyReLU run alone took 25% of the bf16 forward; reflection-padding copies 7-10% of the time.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from ml.networks.adain import AdaIN  # noqa: E402
from ml.networks.animegan2 import AnimeGAN2  # noqa: E402
from ml.networks.cyclegan import CycleGANGenerator  # noqa: E402
from ml.networks.fused import plain_layers  # noqa: E402
from ml.networks.transformer_net import TransformerNet  # noqa: E402
from ml.restyle.engine import RestyleOptions, restyle  # noqa: E402
from ml.training.builtin import load_learned  # noqa: E402
from tests.ml.checkpoints import seeded  # noqa: E402
from tests.ml.synthetic import photo_like  # noqa: E402
from tools.bench.machine import describe  # noqa: E402


def matmul_flops(dtype: torch.dtype, device: str, n: int = 2048, repeat: int = 5) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        torch.mm(a, b)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


def flops_per_megapixel(model: torch.nn.Module, side: int = 256) -> float:
    x = torch.rand(1, 3, side, side)
    # Counted on the plain layers: the fused path's recomputed edge bands are extra work,
    # not part of the network's FLOPs.
    with FlopCounterMode(display=False) as counter, torch.no_grad(), plain_layers():
        model(x)
    return counter.get_total_flops() / (side * side / 1e6)


def models() -> dict[str, torch.nn.Module]:
    adain = seeded(AdaIN())
    adain.set_style(torch.from_numpy(photo_like(256, 256, seed=3)).permute(2, 0, 1)[None])
    return {
        "AnimeGANv2": seeded(AnimeGAN2()),
        "CycleGAN-9": seeded(CycleGANGenerator(9)),
        "TransformerNet": seeded(TransformerNet()),
        "AdaIN": adain,
        # A style this project learned (ml/training, ml/weights/styles): trained weights, not seeded ones.
        "Learned (halftone)": load_learned("halftone"),
    }


def profile(name: str, model: torch.nn.Module, device: str, side: int = 512) -> None:
    """The operators taking the most time in one fp32 engine-style forward (channels_last)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    layout = torch.channels_last if getattr(model, "channels_last", False) else torch.contiguous_format
    model = model.eval().to(memory_format=layout)  # type: ignore[call-overload]
    x = torch.rand(1, 3, side, side, device=device).contiguous(memory_format=layout)
    with torch.inference_mode():
        model(x)
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            model(x)
    print(f"== {name}, {side}x{side}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


def timed(fn) -> tuple[float, object]:
    fn()  # warm-up (first-call allocations, oneDNN primitive creation)
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--profile", action="store_true", help="print where each forward's time goes, then stop")
    args = parser.parse_args()
    device = args.device
    if args.profile:
        for name, model in models().items():
            profile(name, model.to(device), device)
        return
    fp32_peak = matmul_flops(torch.float32, device)
    bf16_peak = matmul_flops(torch.bfloat16, device)
    image = photo_like(args.size, args.size, seed=0)
    mp = args.size * args.size / 1e6
    rows = [measure(name, model.to(device), image, device, args.tile) for name, model in models().items()]
    # The peak is measured again after the models and the higher figure kept, so a slow
    # moment of a shared machine cannot inflate the fractions.
    fp32_peak = max(fp32_peak, matmul_flops(torch.float32, device))
    bf16_peak = max(bf16_peak, matmul_flops(torch.bfloat16, device))
    print(describe(device))
    print(f"{device}, {torch.get_num_threads()} threads, {args.size}x{args.size} ({mp:.2f} MP), tile {args.tile}; "
          f"measured matmul (best before/after): fp32 {fp32_peak / 1e9:.0f} GFLOP/s, "
          f"bf16 {bf16_peak / 1e9:.0f} GFLOP/s")
    header = (f"{'model':<15} {'GFLOP/MP':>8} {'naive MP/s':>10} {'fp32 MP/s':>9} {'bf16 MP/s':>9} {'fp32/naive':>10} "
              f"{'fp32 %peak':>10} {'bf16 %peak':>10} {'bf16 err mean/max (8-bit)':>26}")
    print(header)
    for row in rows:
        print(row.format(fp32_peak=fp32_peak, bf16_peak=bf16_peak))


def measure(name: str, model: torch.nn.Module, image: np.ndarray, device: str, tile: int) -> Row:
    per_mp = flops_per_megapixel(model.cpu()) if device != "cpu" else flops_per_megapixel(model)
    model = model.to(device)
    mp = image.shape[0] * image.shape[1] / 1e6
    x = torch.from_numpy(image).permute(2, 0, 1)[None].to(device)

    def naive() -> object:  # every layer on its own, contiguous fp32, no tiles
        with torch.inference_mode(), plain_layers():
            return model(x)

    def engine(precision: str) -> np.ndarray:
        return restyle(model, image, RestyleOptions(device=device, precision=precision, tile_size=tile,
                                                    seamless="off"))

    naive_s, _ = timed(naive)
    fp32_s, fp32 = timed(lambda: engine("full"))
    bf16_s, bf16 = timed(lambda: engine("reduced"))
    error = np.abs(np.round(np.asarray(bf16) * 255) - np.round(np.asarray(fp32) * 255))
    flops = per_mp * mp
    return Row(name, per_mp, mp / naive_s, mp / fp32_s, mp / bf16_s, flops / fp32_s, flops / bf16_s,
               float(error.mean()), float(error.max()))


@dataclass
class Row:
    name: str
    per_mp: float
    naive: float
    fp32: float
    bf16: float
    fp32_flops: float
    bf16_flops: float
    error_mean: float
    error_max: float

    def format(self, fp32_peak: float, bf16_peak: float) -> str:
        return (f"{self.name:<15} {self.per_mp / 1e9:8.1f} {self.naive:10.3f} {self.fp32:9.3f} {self.bf16:9.3f} "
                f"{self.fp32 / self.naive:10.2f} {self.fp32_flops / fp32_peak:10.1%} "
                f"{self.bf16_flops / bf16_peak:10.1%} "
                f"{self.error_mean:12.2f} / {self.error_max:3.0f}")


if __name__ == "__main__":
    main()
