"""Learn Style on this machine: seconds per training step for each quality preset (and the
whole run's time they imply), fp32 against bf16 autocast; and a learned style's inference
speed through the engine (megapixels/s, fp32 and bf16, tiled exactly).

    nice .venv/bin/python tools/bench/bench_learn.py [--steps 8] [--threads 1] [--size 1024]

Training steps are timed after two warm-up steps on the project's halftone exemplars and
the training HDRIs, with the random features (no download), as tools/train_style.py runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import style_data  # noqa: E402
import torch  # noqa: E402
from timing import best_of  # noqa: E402

from ml.restyle.engine import RestyleOptions, restyle  # noqa: E402
from ml.runtime.devices import cpu_features  # noqa: E402
from ml.training.builtin import LEARNED, WEIGHTS, load_learned  # noqa: E402
from ml.training.learn import PRESETS, LearnOptions, LearnProgress, learn_style  # noqa: E402
from tests.ml.synthetic import photo_like  # noqa: E402

# Not a preset: the setting that trained the shipped Woodcut and Stained Glass on a GPU (256 px
# crops, batch 4, about 1500 steps to meet the targets), to show what it would cost here.
ROWS = {**PRESETS, "gpu-256": {"steps": 1500, "crop": 256, "batch": 4}}


def seconds_per_step(preset: str, precision: str, steps: int, style: list, content: list) -> float:
    stamps: list[float] = []

    def progress(_: LearnProgress) -> None:
        stamps.append(time.perf_counter())

    options = LearnOptions(**{**ROWS[preset], "steps": steps + 2}, precision=precision, device="cpu",
                           preview_every=10_000, adversarial_start=0.0)
    learn_style(style, content, options, progress=progress)
    return (stamps[-1] - stamps[1]) / (len(stamps) - 2)  # the first two steps warm up


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, default=1024, help="inference image side")
    parser.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS), help="training rows to time")
    parser.add_argument("--skip-inference", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(cpu_features())
    style = list(style_data.exemplars("halftone", seeds=(1, 2)).values())
    content = list(style_data.hdri_images(style_data.TRAIN_HDRIS).values())
    print(f"\ntraining ({args.threads} thread(s), {args.steps} timed steps)")
    print(f"{'preset':10s}{'crop':>6s}{'batch':>7s}{'steps':>7s}{'fp32 s/step':>13s}{'bf16 s/step':>13s}"
          f"{'run (bf16)':>12s}")
    for preset in args.rows:
        fields = ROWS[preset]
        fp32 = seconds_per_step(preset, "full", args.steps, style, content)
        bf16 = seconds_per_step(preset, "reduced", args.steps, style, content)
        print(f"{preset:10s}{fields['crop']:6d}{fields['batch']:7d}{fields['steps']:7d}{fp32:13.3f}{bf16:13.3f}"
              f"{bf16 * fields['steps'] / 60:10.1f} min")
    if args.skip_inference:
        return 0
    # A photo-like image, not noise: noise reads as a seamless texture, which runs the exact
    # wrap-around scheme (one pass per norm) instead of one whole-image pass.
    image = photo_like(args.size, args.size, seed=0)
    print(f"\ninference through the engine, {args.size}x{args.size}")
    for name in LEARNED:
        if not (WEIGHTS / f"{name}.safetensors").is_file():
            print(f"{name:16s} not trained yet")
            continue
        net = load_learned(name)
        row = f"{name:16s}"
        for precision in ("full", "reduced"):
            seconds = best_of(lambda p=precision, n=net: restyle(n, image, RestyleOptions(device="cpu", precision=p)),
                              repeat=2)
            row += f"{precision:>9s} {args.size * args.size / seconds / 1e6:6.2f} MP/s"
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
