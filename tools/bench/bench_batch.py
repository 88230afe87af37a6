"""Batch throughput of `restyle stylize-textures` over .blend files, and the flicker of a
restyled render sequence with and without temporal steadiness.

    .venv/bin/python tools/bench/bench_batch.py [--files 6]
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

from tests.blender.scenes import animated_scene, write_image  # noqa: E402
from tests.ml.synthetic import photo_like  # noqa: E402
from tools.build_extension import build  # noqa: E402


def make_blend(path: Path, seed: int) -> None:
    bpy.ops.wm.read_homefile(use_empty=True)
    for index in range(2):
        image = bpy.data.images.load(str(write_image(path.with_name(f"{path.stem}_{index}.png"),
                                                     photo_like(256, 256, seed=seed * 10 + index))))
        material = bpy.data.materials.new(f"M{index}")
        node = material.node_tree.nodes.new("ShaderNodeTexImage")
        node.image = image
        material.node_tree.links.new(node.outputs["Color"], material.node_tree.nodes["Principled BSDF"].inputs[0])
        bpy.ops.mesh.primitive_cube_add(location=(index * 3, 0, 0))
        bpy.context.active_object.data.materials.append(material)
    bpy.ops.wm.save_as_mainfile(filepath=str(path))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=6)
    args = parser.parse_args()
    importlib.invalidate_caches()
    bpy.ops.extensions.package_install_files(filepath=str(build(Path(tempfile.mkdtemp()))), repo="user_default",
                                             enable_on_install=True)
    cli = importlib.import_module("bl_ext.user_default.neural_restyle.cli")
    render_job = importlib.import_module("bl_ext.user_default.neural_restyle.jobs.render")
    services = importlib.import_module("bl_ext.user_default.neural_restyle.jobs.base").services_of(bpy.context)
    options = importlib.import_module("bl_ext.user_default.neural_restyle.ml.options")
    folder = Path(tempfile.mkdtemp(prefix="restyle-batch-"))
    for number in range(args.files):
        make_blend(folder / f"shot{number:02d}.blend", number)
    started = time.perf_counter()
    code = cli.main(["stylize-textures", "--style", "toon", "--blend", str(folder / "shot*.blend")])
    seconds = time.perf_counter() - started
    print(f"batch: {args.files} .blend files (2 textures of 256x256 each), exit code {code}, {seconds:.1f} s, "
          f"{args.files / seconds * 60:.1f} files/min")
    bpy.ops.wm.read_homefile(use_empty=True)
    animated_scene(frames=8, degrees=30, size=(160, 120), samples=8)
    for style in ("pixel", "watercolor", "oil"):
        figures = []
        for temporal in (0.0, 0.8):
            # The job function the CLI's stylize-render calls: its outcome carries the flicker.
            outcome = render_job.stylize_render(bpy.context.scene, options.StylizeRenderOptions(
                style=style, frame_start=1, frame_end=8, output_dir=str(folder / "frames"), temporal=temporal),
                services)
            figures.append(outcome.flicker)
        (source, raw, _), (_, steady, _) = figures
        print(f"flicker {style:<10}: source {source:.4f}, restyled {raw:.4f} ({raw / source:.2f}x the source), "
              f"with temporal 0.8 {steady:.4f} ({steady / source:.2f}x)")


if __name__ == "__main__":
    main()
