"""Mesh from Render Depth Pass: the reconstruction lies on the surfaces that were rendered."""

import importlib
import math

import bpy
import numpy as np
import pytest
from mathutils import Vector
from mathutils.bvhtree import BVHTree

from bridge.compat import snapshot_settings
from tests.blender.support import ADDON_MODULE


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


@pytest.mark.parametrize(("camera_type", "shift", "border", "fit"), [
    ("PERSP", (0.0, 0.0), False, "AUTO"),
    ("ORTHO", (0.0, 0.0), False, "AUTO"),
    ("PERSP", (0.2, 0.0), False, "AUTO"),  # lens shift: the mesh was up to 2 m off (the shift taken the wrong way)
    ("PERSP", (-0.1, 0.15), False, "AUTO"),
    ("ORTHO", (0.2, -0.1), False, "AUTO"),
    ("PERSP", (0.0, 0.0), True, "AUTO"),  # a render cropped to its region was taken for the whole frame
    ("PERSP", (0.2, 0.1), False, "VERTICAL"),  # shift is in units of the fitted side, not the larger one
    ("ORTHO", (0.1, 0.1), False, "VERTICAL"),  # and so is the orthographic scale
], ids=["persp", "ortho", "shift-x", "shift-xy", "ortho-shift", "crop-to-region", "vertical-fit-shift",
        "vertical-fit-ortho"])
def test_reconstruction_lies_on_the_rendered_surfaces(empty_scene, camera_type, shift, border, fit):
    sources = build_scene(camera_type)
    scene = bpy.context.scene
    scene.camera.data.shift_x, scene.camera.data.shift_y = shift
    scene.camera.data.sensor_fit = fit
    if fit == "VERTICAL":  # the same view as the horizontal fit's, so the scene stays in frame
        scene.camera.data.sensor_height = scene.camera.data.sensor_width * 80 / 120
        scene.camera.data.ortho_scale *= 80 / 120
    if border:
        render = scene.render
        render.use_border, render.use_crop_to_border = True, True
        render.border_min_x, render.border_max_x, render.border_min_y, render.border_max_y = 0.3, 0.95, 0.1, 0.8
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
    assert len(points) > (800 if border else 2000)
    assert np.mean(distances) < 0.005 * size, (np.mean(distances), size)
    assert np.max(distances) < 0.02 * size, (np.max(distances), size)  # no vertex far off any surface


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


def test_a_camera_that_sees_beyond_cycles_background_depth_makes_no_background_geometry(empty_scene):
    """Cycles writes 1e10 where a ray hits nothing; with the clip end beyond it, that became a wall of
    vertices 1e10 away."""
    build_scene("PERSP")
    scene = bpy.context.scene
    scene.camera.data.clip_end = 1e12
    scene.camera.rotation_euler.x = math.radians(80)  # sky above the plane's far edge
    assert bpy.ops.restyle.mesh_from_depth_pass(max_side=60) == {"FINISHED"}
    points = world_vertices(bpy.data.objects[f"{scene.camera.name} Depth Mesh"])
    assert np.abs(points).max() < 100


@pytest.mark.parametrize("change", ["pixel-aspect", "panoramic"])
def test_a_camera_that_cannot_be_measured_is_refused_before_rendering(empty_scene, change):
    build_scene("PERSP")
    scene = bpy.context.scene
    if change == "pixel-aspect":
        scene.render.pixel_aspect_x = 2.0
        expected = "pixel aspect is 2:1; only square pixels"
    else:
        scene.camera.data.type = "PANO"
        expected = "is a pano camera; only perspective and orthographic"
    renders = []
    handler = lambda *_args: renders.append(1)  # noqa: E731
    bpy.app.handlers.render_pre.append(handler)
    try:
        with pytest.raises(RuntimeError, match=expected):
            bpy.ops.restyle.mesh_from_depth_pass(max_side=60)
    finally:
        bpy.app.handlers.render_pre.remove(handler)
    assert renders == [] and not [o for o in scene.objects if o.name.endswith("Depth Mesh")]


def test_an_exr_of_another_shape_than_the_camera_frame_is_refused(empty_scene, tmp_path):
    """A render cropped to its region, read back with --exr, cannot be matched to the camera."""
    build_scene("PERSP")
    scene = bpy.context.scene
    render = scene.render
    render.use_border, render.use_crop_to_border = True, True
    render.border_min_x, render.border_max_x = 0.5, 1.0
    exr = tmp_path / "cropped.exr"
    bpy.context.view_layer.use_pass_z = True
    render.filepath, render.use_file_extension = str(exr), False
    _multilayer(render.image_settings)
    bpy.ops.render.render(write_still=True)
    render.use_border = False
    with pytest.raises(RuntimeError, match=r"cropped.exr is 60 x 80 pixels, a different shape from the camera's "
                                           r"frame \(120 x 80\)"):
        bpy.ops.restyle.mesh_from_depth_pass(filepath=str(exr), max_side=60)
    assert not [o for o in scene.objects if o.name.endswith("Depth Mesh")]


def _multilayer(settings) -> None:
    compat = importlib.import_module(f"{ADDON_MODULE}.bridge.compat")
    compat.set_multilayer_exr(settings)
