"""Import Photo over a folder of photos with the built-in depth model: the largest amount of
photo data handed to the worker at any moment (its temporary job folders), as a multiple of one
photo's float copy, and the time per photo.

Photos go to the worker one at a time, so the peak should stay near 1x one photo whatever the
number of photos (handing them all over at once made it N x).

    .venv/bin/python tools/bench/bench_photo_import.py [--photos 6] [--size 1600x1200]
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="restyle-bench-"))

import bpy  # noqa: E402

from tests.blender.scenes import write_image  # noqa: E402
from tests.ml.synthetic import photo_like  # noqa: E402
from tools.bench.machine import describe  # noqa: E402
from tools.build_extension import build  # noqa: E402


def job_folder_bytes() -> int:
    """Bytes in the extension's job folders under the temporary folder right now."""
    total = 0
    for folder in Path(tempfile.gettempdir()).glob("neural-restyle-job-*"):
        for path in folder.glob("*"):
            try:
                total += path.stat().st_size
            except OSError:  # removed while we looked
                pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=6)
    parser.add_argument("--size", default="1600x1200")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    print(describe())
    importlib.invalidate_caches()
    bpy.ops.extensions.package_install_files(filepath=str(build(Path(tempfile.mkdtemp()))), repo="user_default",
                                             enable_on_install=True)
    package = "bl_ext.user_default.neural_restyle"
    photo_job = importlib.import_module(f"{package}.jobs.photo")
    base = importlib.import_module(f"{package}.jobs.base")
    options = importlib.import_module(f"{package}.ml.options").ImportPhotoOptions(depth_model="depth-builtin-fast")
    folder = Path(tempfile.mkdtemp(prefix="restyle-bench-photos-"))
    paths = [write_image(folder / f"p{i}.png", photo_like(height, width, seed=i)) for i in range(args.photos)]
    one_photo = height * width * 3 * 4  # the float32 RGB copy the worker reads

    bpy.ops.wm.read_homefile(use_empty=True)
    # Warm the worker and the model first, so the timing is of the photos.
    photo_job.import_photos(bpy.context.scene, paths[:1], options, base.services_of(bpy.context))
    bpy.ops.wm.read_homefile(use_empty=True)
    job = photo_job.PhotoJob(bpy.context.scene, paths, options, base.services_of(bpy.context))
    peak = job_folder_bytes()
    started = time.perf_counter()
    try:
        while not job.poll():
            peak = max(peak, job_folder_bytes())
            time.sleep(0.005)
        outcome = job.finish()
    finally:
        job.close()
    seconds = time.perf_counter() - started
    print(f"{args.photos} photos of {width}x{height}: {len(outcome.collections)} imported in {seconds:.2f} s "
          f"({seconds / args.photos:.2f} s per photo, meshes included)")
    print(f"peak photo data in the worker's job folders: {peak / 1e6:.1f} MB = {peak / one_photo:.2f}x one photo's "
          f"float copy ({one_photo / 1e6:.1f} MB); all {args.photos} at once would be {args.photos}x")


if __name__ == "__main__":
    main()
