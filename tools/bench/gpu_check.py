"""The engine on a GPU: exactness checks and the GPU benchmark table, in a few minutes.

    .venv/bin/python tools/bench/gpu_check.py --device cuda        (tools/bench/gpu_check.sh runs this)
    .venv/bin/python tools/bench/gpu_check.py --device cpu --dry-run   (tiny sizes: the script itself works)

Checks (exit status 1 when one fails):
* tiled equals whole within one 8-bit step, every architecture (the four published GAN
  layouts with seeded weights, the five built-in styles), at fp32 and at reduced precision
  (fp16/bf16 on CUDA), an image of 4 tiles;
* out of memory: with the process limited to a small share of the GPU
  (``torch.cuda.set_per_process_memory_fraction``), a manual tile that cannot fit is retried
  smaller and the result still equals the whole-image result; Auto under the same limit
  plans tiles that fit at once.
Then the table: MP/s per architecture at fp32 and reduced precision, whole and in 4 tiles,
the peak bytes per pixel the GPU allocated for the whole image (against ml/restyle/memory_model.py's
table), and the tile size Auto picks for 2K, 4K and 8K textures on this GPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ml.models.catalog import style_ids  # noqa: E402
from ml.networks.adain import AdaIN  # noqa: E402
from ml.networks.animegan2 import AnimeGAN2  # noqa: E402
from ml.networks.cyclegan import CycleGANGenerator  # noqa: E402
from ml.networks.transformer_net import TransformerNet  # noqa: E402
from ml.restyle import memory_model  # noqa: E402
from ml.restyle.engine import RestyleOptions, RestyleReport, restyle  # noqa: E402
from ml.runtime.devices import reduced_dtype  # noqa: E402
from ml.styles import build_style  # noqa: E402
from tests.ml.checkpoints import seeded  # noqa: E402
from tests.ml.synthetic import photo_like  # noqa: E402
from tools.bench.machine import describe  # noqa: E402

ONE_STEP = 1 / 255


def networks() -> dict[str, Callable[[], torch.nn.Module]]:
    def adain() -> torch.nn.Module:
        model = seeded(AdaIN())
        model.set_style(torch.from_numpy(photo_like(256, 256, seed=3)).permute(2, 0, 1)[None])
        return model

    built: dict[str, Callable[[], torch.nn.Module]] = {
        "AnimeGANv2": lambda: seeded(AnimeGAN2()),
        "CycleGAN-9": lambda: seeded(CycleGANGenerator(9)),
        "TransformerNet": lambda: seeded(TransformerNet()),
        "AdaIN": adain,
    }
    for style in style_ids():
        built[style] = lambda style=style: build_style(style)
    return built


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(model, image, device: str, precision: str, tile: int, report: RestyleReport | None = None,
        budget: int = 0) -> tuple[np.ndarray, float]:
    options = RestyleOptions(device=device, precision=precision, tile_size=tile, seamless="off",
                             memory_budget=budget)
    sync(device)
    started = time.perf_counter()
    out = restyle(model, image, options, report=report)
    sync(device)
    return out, time.perf_counter() - started


def check_tiled_equals_whole(models, device: str, size: int) -> list[str]:
    """fp32: tiled within one 8-bit step of whole. Reduced precision rounds differently on
    tiles (norms folded into the convolutions) and whole, each about as far from fp32 as the
    precision costs (AnimeGANv2 and CycleGAN: 10 steps and more in bf16): there tiling must
    add no error of its own, tiled no further from fp32 than 1.5x the whole image's error
    plus one step."""
    failures = []
    image = photo_like(size, size, seed=1)
    print(f"\n== tiled ({size // 2} px tiles, 4 tiles) vs whole, {size}x{size}, max difference in 8-bit steps"
          " (reduced: tiled vs whole, and each against fp32 whole)")
    for name, make in models.items():
        model = make()
        line = f"{name:<15}"
        reference, _ = run(model, image, device, "full", tile=size)
        for precision in ("full", "reduced"):
            whole, _ = run(model, image, device, precision, tile=size)
            report = RestyleReport()
            tiled, _ = run(model, image, device, precision, tile=size // 2, report=report)
            diff = float(np.abs(whole - tiled).max())
            if precision == "full":
                ok = diff <= ONE_STEP
                line += f"  fp32 {diff * 255:7.4f} {'ok' if ok and report.tiles == 4 else 'FAIL'}"
            else:
                whole_error = float(np.abs(whole - reference).max())
                tiled_error = float(np.abs(tiled - reference).max())
                ok = tiled_error <= 1.5 * whole_error + ONE_STEP
                line += (f"  {report.dtype} {diff * 255:7.4f} (vs fp32: whole {whole_error * 255:.2f}, tiled "
                         f"{tiled_error * 255:.2f}) {'ok' if ok and report.tiles == 4 else 'FAIL'}")
            if not ok or report.tiles != 4:
                failures.append(f"{name} {precision}: tiled differs from whole by {diff * 255:.4f} steps "
                                f"({report.tiles} tiles)")
        print(line, flush=True)
    return failures


def check_out_of_memory_retry(device: str, size: int) -> list[str]:
    print(f"\n== out of memory: a {size}x{size} AnimeGANv2 image under a small memory limit")
    if not device.startswith("cuda"):
        print("skipped: only CUDA reports out of memory (the CPU's allocator has no such limit)")
        return []
    model = seeded(AnimeGAN2())
    image = photo_like(size, size, seed=2)
    reference, _ = run(model, image, device, "full", tile=size // 4)
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(torch.device(device)).total_memory
    whole_needs = memory_model.BYTES_PER_PIXEL["AnimeGAN2"][0] * size * size
    limit = whole_needs / 4  # the whole image cannot fit; a quarter-size tile can
    index = torch.device(device).index or 0  # torch's fraction API wants an explicit index
    torch.cuda.set_per_process_memory_fraction(min(limit / total, 1.0), index)
    failures = []
    try:
        report = RestyleReport()
        out, seconds = run(model, image, device, "full", tile=size, report=report)
        diff = float(np.abs(out - reference).max())
        retried = "ran out of memory" in (report.warning or "") and report.tile_size < size
        print(f"manual {size} px tile under {limit / 2**30:.2f} GiB: {report.warning}; {report.tiles} tiles, "
              f"{seconds:.1f} s, max difference to {size // 4} px tiles {diff * 255:.4f} steps "
              f"{'ok' if retried and diff <= ONE_STEP else 'FAIL'}")
        if not retried or diff > ONE_STEP:
            failures.append(f"out-of-memory retry: warning {report.warning!r}, difference {diff * 255:.4f} steps")
        torch.cuda.empty_cache()
        auto = RestyleReport()
        out, seconds = run(model, image, device, "full", tile=0, report=auto, budget=int(limit * 0.8))
        diff = float(np.abs(out - reference).max())
        print(f"Auto under the same limit: {auto.tile_size} px tiles ({auto.tiles}), warning {auto.warning}, "
              f"{seconds:.1f} s, difference {diff * 255:.4f} steps {'ok' if diff <= ONE_STEP else 'FAIL'}")
        if diff > ONE_STEP or auto.tiles < 2:
            failures.append(f"Auto under a memory limit: {auto.tiles} tiles, difference {diff * 255:.4f} steps")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, index)
        torch.cuda.empty_cache()
    return failures


def peak_per_pixel(model, image, device: str, precision: str) -> float:
    if not device.startswith("cuda"):
        return float("nan")
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    run(model, image, device, precision, tile=image.shape[0])
    return (torch.cuda.max_memory_allocated() - before) / (image.shape[0] * image.shape[1])


def table(models, device: str, size: int) -> None:
    image = photo_like(size, size, seed=0)
    mp = size * size / 1e6
    reduced = reduced_dtype(torch.device(device), "reduced", True)
    low = str(reduced or torch.float32).replace("torch.", "")
    print(f"\n== throughput, {size}x{size} ({mp:.2f} MP); reduced precision = {low}; tiled = 4 tiles of {size // 2} px")
    print(f"{'network':<15} {'fp32 whole':>10} {'fp32 tiled':>10} {f'{low} whole':>14} {f'{low} tiled':>14} "
          f"{'tiled/whole':>11} {'B/px fp32':>9} {'model B/px':>10}   MP/s")
    for name, make in models.items():
        model = make()
        figures = []
        for precision in ("full", "reduced"):
            run(model, image, device, precision, tile=size)  # warm-up: kernels chosen, memory cached
            _, whole_s = run(model, image, device, precision, tile=size)
            _, tiled_s = run(model, image, device, precision, tile=size // 2)
            figures += [mp / whole_s, mp / tiled_s]
        measured = peak_per_pixel(model, image, device, "full")
        modelled = memory_model.bytes_per_pixel(model, reduced=False)
        print(f"{name:<15} {figures[0]:10.3g} {figures[1]:10.3g} {figures[2]:14.3g} {figures[3]:14.3g} "
              f"{figures[0] / figures[1]:11.2f} {measured:9.0f} {modelled:10d}", flush=True)


def auto_sizes(device: str) -> None:
    dev = torch.device(device)
    free = memory_model.free_bytes(dev)
    print(f"\n== Auto tile size on this {device} ({free / 2**30:.1f} GiB free, "
          f"planning with {memory_model.SAFE_SHARE.get(dev.type, 0.5):.0%})")
    for name, model in (("AnimeGANv2", AnimeGAN2()), ("CycleGAN-9", CycleGANGenerator(9))):
        for side in (2048, 4096, 8192):
            for reduced in (False, True):
                plan = memory_model.plan_tiles(model, side, side, dev, reduced)
                print(f"{name:<11} {side}x{side} {'reduced' if reduced else 'fp32':<7}: "
                      f"{'whole image' if plan.whole else f'{plan.tile_size} px tiles'} "
                      f"({plan.needed / 2**30:.1f} of {plan.budget / 2**30:.1f} GiB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes: checks that the script runs (CPU)")
    parser.add_argument("--skip-table", action="store_true")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available to this torch "
              f"({torch.__version__}); nothing was checked. Run it on a machine with an NVIDIA GPU.")
        return 2
    print(describe(args.device))
    check_size, table_size, oom_size = (128, 128, 256) if args.dry_run else (512, 2048, 2048)
    models = networks()
    started = time.perf_counter()
    failures = check_tiled_equals_whole(models, args.device, check_size)
    failures += check_out_of_memory_retry(args.device, oom_size)
    if not args.skip_table:
        table(models, args.device, table_size)
    auto_sizes(args.device)
    print(f"\n{time.perf_counter() - started:.0f} s; " + ("all checks passed" if not failures else
                                                          "FAILED:\n  " + "\n  ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
