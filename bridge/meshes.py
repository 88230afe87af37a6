"""Meshes from numpy arrays with foreach_set (vertices, loops, polygons, UVs at once)."""

from __future__ import annotations

import bpy
import numpy as np

from ..ml.depth.reconstruct import GridMesh
from ..ml.errors import RestyleError


def build_mesh(name: str, grid: GridMesh, uv_name: str = "UVMap") -> bpy.types.Mesh:
    """A new mesh datablock holding ``grid``'s quads and per-corner UVs."""
    if len(grid.vertices) == 0 or len(grid.faces) == 0:
        raise RestyleError("the depth gives no surface to build a mesh from")
    if not np.isfinite(grid.vertices).all() or not np.isfinite(grid.loop_uvs).all():
        raise RestyleError("the depth gives vertices at infinite or undefined (NaN) positions")
    mesh = bpy.data.meshes.new(name)
    faces = np.ascontiguousarray(grid.faces, dtype=np.int32)
    corners = faces.shape[1]
    try:
        mesh.vertices.add(len(grid.vertices))
        mesh.vertices.foreach_set("co", np.ascontiguousarray(grid.vertices, dtype=np.float32).ravel())
        mesh.loops.add(faces.size)
        mesh.loops.foreach_set("vertex_index", faces.ravel())
        mesh.polygons.add(len(faces))
        mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, corners, dtype=np.int32))
        mesh.polygons.foreach_set("loop_total", np.full(len(faces), corners, dtype=np.int32))
        uv = mesh.uv_layers.new(name=uv_name)
        uv.data.foreach_set("uv", np.ascontiguousarray(grid.loop_uvs, dtype=np.float32).ravel())
        mesh.update(calc_edges=True)
    except BaseException:
        bpy.data.meshes.remove(mesh)
        raise
    return mesh
