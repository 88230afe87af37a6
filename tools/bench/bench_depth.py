"""Depth Anything V2 Small on this machine: time per megapixel in fp32 and bf16, and the
bf16 error against fp32 (seeded weights of the published layout).

    .venv/bin/python tools/bench/bench_depth.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ml.depth import estimate_depth, network_input_size  # noqa: E402
from ml.models.depth_anything import CONFIGS, DepthAnythingV2  # noqa: E402
from tests.ml.checkpoints import seeded  # noqa: E402
from tests.ml.synthetic import photo_like  # noqa: E402


def main() -> None:
    net = seeded(DepthAnythingV2(CONFIGS["vits"]))
    print(f"Depth Anything V2 Small, {torch.get_num_threads()} threads (network input: short side 518)")
    for height, width in ((480, 640), (768, 1024)):
        photo = photo_like(height, width, seed=1)
        estimate_depth(net, photo[:64, :64])
        timings = {}
        outputs = {}
        for label, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            estimate_depth(net, photo, reduced=dtype)  # warm-up
            started = time.perf_counter()
            outputs[label] = estimate_depth(net, photo, reduced=dtype)
            timings[label] = time.perf_counter() - started
        mp = height * width / 1e6
        span = float(np.ptp(outputs["fp32"])) or 1.0
        error = np.abs(outputs["bf16"] - outputs["fp32"]) / span
        rows, cols = network_input_size(height, width)
        print(f"{width}x{height} photo -> {cols}x{rows} network input: fp32 {timings['fp32']:.2f} s "
              f"({timings['fp32'] / mp:.2f} s/MP), bf16 {timings['bf16']:.2f} s ({timings['bf16'] / mp:.2f} s/MP), "
              f"speed-up {timings['fp32'] / timings['bf16']:.2f}x; bf16 error relative to the depth range: "
              f"mean {error.mean():.4f}, max {error.max():.4f}")


if __name__ == "__main__":
    main()
