"""Depth Anything V2 Small on this machine: time per megapixel in fp32 and bf16, and the
bf16 error against fp32 (seeded weights of the published layout). With OpenCV importable (it is
no dependency of the extension: put opencv-python-headless on PYTHONPATH for this run only), it
also measures our cubic resize against cv2.resize(INTER_CUBIC), the reference preprocessing.

    .venv/bin/python tools/bench/bench_depth.py
    PYTHONPATH=/tmp/cv2 .venv/bin/python tools/bench/bench_depth.py   # after pip install --target /tmp/cv2
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from ml.depth.anything import estimate_depth, network_input, network_input_size, resize_cubic  # noqa: E402
from ml.depth.builtin import INPUT_LONG_SIDE, WEIGHTS, estimate_fast_depth, load_fast_depth  # noqa: E402
from ml.networks.depth_anything import CONFIGS, IMAGENET_MEAN, IMAGENET_STD, DepthAnythingV2  # noqa: E402
from tests.ml.checkpoints import seeded  # noqa: E402
from tests.ml.synthetic import photo_like  # noqa: E402
from tools.bench.timing import best_of  # noqa: E402


def main() -> None:
    net = seeded(DepthAnythingV2(CONFIGS["vits"]))
    print(f"Depth Anything V2 Small, {torch.get_num_threads()} threads (network input: short side 518, "
          "each side the nearest multiple of 14)")
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
    preprocessing_cost()
    compare_with_opencv(net)
    compare_with_builtin(net)


def preprocessing_cost() -> None:
    """The cubic resize runs in numpy in float64, as the reference does it: what it costs per photo."""
    for height, width in ((768, 1024), (3000, 4000)):
        photo = photo_like(height, width, seed=4)
        seconds = best_of(lambda photo=photo: network_input(photo), repeat=2)
        print(f"preprocessing a {width}x{height} photo (cubic resize + normalise, float64): {seconds * 1000:.0f} ms")


def compare_with_opencv(net: torch.nn.Module) -> None:
    """Our preprocessing against cv2.resize(INTER_CUBIC) on the reference's float64 image (uint8 / 255)."""
    try:
        import cv2  # type: ignore[import-not-found]
    except ImportError:
        print("OpenCV not importable: skipping the comparison with cv2.resize (see the docstring)")
        return
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    for height, width in ((480, 640), (200, 300), (300, 1200), (900, 700)):
        pixels = np.round(photo_like(height, width, seed=height) * 255).astype(np.uint8)
        rows, cols = network_input_size(height, width)
        image = pixels / 255.0
        reference = cv2.resize(image, (cols, rows), interpolation=cv2.INTER_CUBIC)
        resize_error = np.abs(resize_cubic(pixels.astype(np.float32) / np.float32(255), rows, cols) - reference).max()
        x = torch.from_numpy(np.ascontiguousarray(((reference - mean) / std).transpose(2, 0, 1), np.float32))[None]
        with torch.inference_mode():
            depth = net(x)[:, None]
        expected = F.interpolate(depth, size=(height, width), mode="bilinear", align_corners=True)[0, 0].numpy()
        ours = estimate_depth(net, pixels.astype(np.float32) / np.float32(255))
        error = np.abs(ours - expected).max() / float(np.ptp(expected))
        print(f"{width}x{height} -> {cols}x{rows}, OpenCV {cv2.__version__}: resize max error {resize_error:.1e} "
              f"(pixel values in [0, 1]); depth max error {error:.1e} of its range")


def compare_with_builtin(dav2: torch.nn.Module) -> None:
    """The built-in model against Depth Anything V2 Small at the same network input size."""
    fast = load_fast_depth(WEIGHTS) if WEIGHTS.exists() else None
    if fast is None:
        print("built-in depth weights not found: train them with tools/train_depth.py")
        return
    photo = photo_like(518, 686, seed=2)  # DAv2's own input size for a 4:3 photo
    dav2_s = best_of(lambda: estimate_depth(dav2, photo))
    fast_s = best_of(lambda: estimate_fast_depth(fast, photo, long_side=704))
    single_s = best_of(lambda: estimate_fast_depth(fast, photo, long_side=704, mirrored=False))
    print(f"same network input ~690x518 (fp32, best of 3): built-in {fast_s * 1000:.0f} ms as photo import runs "
          f"it (with the mirrored image in the same batch), {single_s * 1000:.0f} ms for one forward; "
          f"Depth Anything V2 Small {dav2_s * 1000:.0f} ms: ratio {dav2_s / fast_s:.1f}x ({dav2_s / single_s:.1f}x)")
    photo = photo_like(768, 1024, seed=3)  # the same photo in, each model at its own working resolution
    dav2_s = best_of(lambda: estimate_depth(dav2, photo))
    fast_s = best_of(lambda: estimate_fast_depth(fast, photo))
    print(f"same 1024x768 photo, each at its working size (518 px / {INPUT_LONG_SIDE} px): "
          f"built-in {fast_s * 1000:.0f} ms vs Depth Anything V2 Small {dav2_s * 1000:.0f} ms, "
          f"ratio {dav2_s / fast_s:.1f}x")


if __name__ == "__main__":
    main()
