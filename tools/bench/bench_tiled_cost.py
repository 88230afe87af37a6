"""The price of exact tiling: an image of 4 tiles against the whole image, old and new schedule.

    nice .venv/bin/python tools/bench/bench_tiled_cost.py [--size 768] [--tile 384] [--precision full]

For AnimeGANv2 and CycleGAN (seeded weights of the published layouts), in one run: the
whole-image time, the 4-tile time with the old schedule (every statistics pass re-runs the
network from the input: ``reuse_activations=False``) and with the new one (passes resume
from stored activations, ``ml.restyle.tiling.ResumeCache``), the ratios to the whole image, the
largest difference to the whole-image result in 8-bit steps, and the activations stored.
Each time is the best of ``--repeat`` runs after a warm-up run of the whole image.

``--reference`` also runs the network once in float64 on the whole image (plain PyTorch, no
engine) and prints how far the fp32 whole-image and the fp32 tiled results each are from it
(max and mean, 8-bit steps): where fp32 itself is not reproducible to one step (networks of
random weights amplify rounding), this says whether tiling adds error beyond fp32's own.
PyTorch runs float64 convolutions on the CPU by unfolding their input (im2col: about 25 kB
per pixel for CycleGAN's 7x7 output layer), so the reference runs each convolution on bands
of output rows (a convolution is local: the same sums, in pieces of at most 1 GB).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ml.networks.animegan2 import AnimeGAN2  # noqa: E402
from ml.networks.cyclegan import CycleGANGenerator  # noqa: E402
from ml.restyle.engine import RestyleOptions, RestyleReport, restyle  # noqa: E402
from tests.ml.checkpoints import seeded  # noqa: E402
from tests.ml.synthetic import photo_like  # noqa: E402
from tools.bench.machine import describe  # noqa: E402


def timed(model, image, options: RestyleOptions, repeat: int) -> tuple[float, np.ndarray, RestyleReport]:
    best, out, report = float("inf"), None, RestyleReport()
    for _ in range(repeat):
        report = RestyleReport()
        started = time.perf_counter()
        out = restyle(model, image, options, report=report)
        best = min(best, time.perf_counter() - started)
    assert out is not None
    return best, out, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--tile", type=int, default=384)
    parser.add_argument("--precision", default="full", choices=("full", "reduced"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip-old", action="store_true", help="only the whole image and the new schedule")
    parser.add_argument("--models", nargs="*", default=["AnimeGANv2", "CycleGAN-9"])
    parser.add_argument("--reference", action="store_true", help="compare both with a float64 whole-image run")
    args = parser.parse_args()
    print(describe(args.device))
    image = photo_like(args.size, args.size, seed=0)
    print(f"{args.size}x{args.size} in {args.tile} px tiles, precision {args.precision}, {args.device}, "
          f"{torch.get_num_threads()} threads, best of {args.repeat}")
    print(f"{'model':<11} {'tiles':>5} {'passes':>6} {'whole s':>8} {'old s':>8} {'new s':>8} {'old/whole':>9} "
          f"{'new/whole':>9} {'old/new':>7} {'max diff old':>12} {'max diff new':>12} {'stored MB':>9}")
    builders = {"AnimeGANv2": lambda: seeded(AnimeGAN2()), "CycleGAN-9": lambda: seeded(CycleGANGenerator(9))}
    for name in args.models:
        model = builders[name]()
        base = RestyleOptions(seamless="off", precision=args.precision, device=args.device)
        whole_options = RestyleOptions(**{**base.__dict__, "tile_size": 8192})
        restyle(model, image, whole_options)  # warm-up: kernels, weights reordered, memory mapped
        whole_s, whole, _ = timed(model, image, whole_options, args.repeat)
        tiled = RestyleOptions(**{**base.__dict__, "tile_size": args.tile})
        new_s, new, report = timed(model, image, tiled, args.repeat)
        old_s, old = float("nan"), None
        if not args.skip_old:
            old_options = RestyleOptions(**{**tiled.__dict__, "reuse_activations": False})
            old_s, old, _ = timed(model, image, old_options, args.repeat)
        old_diff = float(np.abs(old - whole).max() * 255) if old is not None else float("nan")
        new_diff = float(np.abs(new - whole).max() * 255)
        print(f"{name:<11} {report.tiles:5d} {report.passes:6d} {whole_s:8.2f} {old_s:8.2f} {new_s:8.2f} "
              f"{old_s / whole_s:9.2f} {new_s / whole_s:9.2f} {old_s / new_s:7.2f} {old_diff:12.4f} {new_diff:12.4f} "
              f"{report.stored_peak / 1e6:9.0f}", flush=True)
        if args.reference:
            exact = float64_reference(model, image)
            for label, result in (("whole fp32", whole), ("tiled fp32", new)):
                error = np.abs(result - exact) * 255
                print(f"{'':<11} {label} vs float64: max {error.max():.4f}, mean {error.mean():.5f} 8-bit steps, "
                      f"pixels off by > 1 step: {int((error > 1).any(axis=-1).sum())}", flush=True)
            gap = np.abs(new - whole) * 255
            print(f"{'':<11} tiled vs whole (fp32): max {gap.max():.4f}, mean {gap.mean():.5f} 8-bit steps", flush=True)


def float64_reference(model: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """The network in float64 on the whole image, clipped to [0, 1] like the engine's result."""
    exact_model = copy.deepcopy(model).double().eval()
    x = torch.from_numpy(np.ascontiguousarray(image[..., :3].transpose(2, 0, 1))).double()[None]
    with torch.inference_mode(), banded_float64_convolutions():
        y = exact_model(x)[0].clamp(0, 1)
    return y.permute(1, 2, 0).numpy()


@contextlib.contextmanager
def banded_float64_convolutions(band_bytes: int = 1 << 30) -> Iterator[None]:
    """``F.conv2d`` on float64 input runs on bands of output rows, each unfolding at most ``band_bytes``."""
    plain = F.conv2d

    def banded(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # type: ignore[no-untyped-def]
        if x.dtype != torch.float64 or isinstance(padding, str):
            return plain(x, weight, bias, stride, padding, dilation, groups)
        (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
        x = F.pad(x, (pw, pw, ph, ph))
        kh, kw = weight.shape[-2:]
        reach = dh * (kh - 1) + 1  # input rows one output row reads
        rows_out = (x.shape[-2] - reach) // sh + 1
        cols_out = (x.shape[-1] - dw * (kw - 1) - 1) // sw + 1
        rows = max(1, band_bytes // (x.shape[1] * kh * kw * cols_out * 8))
        bands = [plain(x[:, :, a * sh : (min(a + rows, rows_out) - 1) * sh + reach], weight, bias, (sh, sw), 0,
                       (dh, dw), groups) for a in range(0, rows_out, rows)]
        return torch.cat(bands, dim=2)

    F.conv2d = banded
    try:
        yield
    finally:
        F.conv2d = plain


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


if __name__ == "__main__":
    main()
