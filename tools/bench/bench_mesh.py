"""Mesh building for 1 MP and 4 MP grids: foreach_set against mesh.from_pydata.

    .venv/bin/python tools/bench/bench_mesh.py
"""

from __future__ import annotations

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
import numpy as np  # noqa: E402

from ml.depth.reconstruct import Intrinsics, depth_to_mesh  # noqa: E402
from tools.build_extension import build  # noqa: E402


def main() -> None:
    importlib.invalidate_caches()
    bpy.ops.extensions.package_install_files(filepath=str(build(Path(tempfile.mkdtemp()))), repo="user_default",
                                             enable_on_install=True)
    meshes = importlib.import_module("bl_ext.user_default.neural_restyle.bridge.meshes")
    for side_w, side_h in ((1155, 866), (2310, 1732)):  # about 1 MP and 4 MP
        depth = np.full((side_h, side_w), 2.0, np.float32)
        grid = depth_to_mesh(depth, Intrinsics.from_lens(side_w, side_h, 35, 36), max_side=max(side_w, side_h))
        started = time.perf_counter()
        meshes.build_mesh("fast", grid)
        fast = time.perf_counter() - started
        started = time.perf_counter()
        mesh = bpy.data.meshes.new("pydata")
        mesh.from_pydata(grid.vertices.tolist(), [], grid.faces.tolist())
        uv = mesh.uv_layers.new()
        for index, loop_uv in enumerate(grid.loop_uvs.tolist()):
            uv.data[index].uv = loop_uv
        slow = time.perf_counter() - started
        print(f"{len(grid.vertices) / 1e6:.2f} M vertices, {len(grid.faces) / 1e6:.2f} M quads: "
              f"foreach_set {fast:.2f} s, from_pydata + UV loop {slow:.2f} s, ratio {slow / fast:.1f}x")


if __name__ == "__main__":
    main()
