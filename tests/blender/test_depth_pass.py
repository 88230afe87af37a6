"""Mesh from Render Depth Pass: the reconstruction lies on the surfaces that were rendered."""

import math

import bpy
import numpy as np
import pytest
from mathutils import Vector
from mathutils.bvhtree import BVHTree

from bridge.compat import snapshot_settings


def build_scene(camera_type: str) -> list[bpy.types.Object]:
    bpy.ops.mesh.primitive_plane_add(size=12, location=(0, 0, 0))
    bpy.ops.mesh.primitive_cube_add(size=2, location=(-1.5, 0.5, 1), rotation=(0, 0, 0.5))
    bpy.ops.mesh.primitive_uv_sphere_add(radius=1.0, location=(1.6, -0.4, 1.0), segments=48, ring_count=24)
    sources = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    bpy.ops.object.camera_add(location=(0, -8, 4.5), rotation=(math.radians(63), 0, 0))
    camera = bpy.context.active_object
    camera.data.type = camera_type
    camera.data.ortho_scale = 9.0
    scene = bpy.context.scene
    scene.camera = camera
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 4
    scene.cycles.use_denoising = False
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 120, 80, 100
    bpy.ops.object.light_add(type="SUN")
    return sources


def world_vertices(obj: bpy.types.Object) -> np.ndarray:
    co = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    co = np.c_[co.reshape(-1, 3), np.ones(len(co) // 3)]
    return (co @ np.array(obj.matrix_world).T)[:, :3]


@pytest.mark.parametrize("camera_type", ["PERSP", "ORTHO"])
def test_reconstruction_lies_on_the_rendered_surfaces(empty_scene, camera_type):
    sources = build_scene(camera_type)
    scene = bpy.context.scene
    structs = (scene.render, scene.render.image_settings, bpy.context.view_layer)
    settings_before = [snapshot_settings(s) for s in structs]
    assert bpy.ops.restyle.mesh_from_depth_pass(max_side=120) == {"FINISHED"}
    assert settings_before == [snapshot_settings(s) for s in structs]  # format, depth, path, passes ...
    result = bpy.data.objects[f"{scene.camera.name} Depth Mesh"]
    assert not result.data.validate()  # nothing needed repairing
    assert len(result.data.uv_layers) == 1 and result.data.materials[0].node_tree.nodes.get("Image Texture")
    depsgraph = bpy.context.evaluated_depsgraph_get()
    # BVH trees are built in each object's own space (the sources have unit scale).
    trees = [(BVHTree.FromObject(obj, depsgraph), obj.matrix_world.inverted()) for obj in sources]
    points = world_vertices(result)
    distances = [min(tree.find_nearest(to_local @ Vector(p))[3] for tree, to_local in trees) for p in points]
    corners = np.array([obj.matrix_world @ Vector(c) for obj in sources for c in obj.bound_box])
    size = float(np.linalg.norm(corners.max(0) - corners.min(0)))
    assert len(points) > 2000
    assert np.mean(distances) < 0.005 * size, (np.mean(distances), size)


def test_background_makes_no_geometry_and_an_empty_view_is_an_error(empty_scene):
    bpy.ops.object.camera_add(location=(0, 0, 0))
    scene = bpy.context.scene
    scene.camera = bpy.context.active_object
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 1
    scene.render.resolution_x, scene.render.resolution_y = 32, 32
    with pytest.raises(RuntimeError, match="nothing but background"):
        bpy.ops.restyle.mesh_from_depth_pass()
    assert not [o for o in scene.objects if o.type == "MESH"]
