"""Import Photo as Reconstructed Mesh in real Blender."""

import hashlib
import importlib
import json
from dataclasses import replace
from pathlib import Path

import bpy
import numpy as np
import pytest
import torch
from bpy_extras.object_utils import world_to_camera_view
from PIL import Image

from tests.blender.support import ADDON_MODULE
from tests.ml.checkpoints import seeded
from tests.ml.http_server import FileServer
from tests.ml.synthetic import photo_like


def rotated_jpeg(path: Path, orientation: int = 6, size=(48, 32)) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x8769] = {0xA405: 28}
    pixels = (photo_like(size[1], size[0], seed=3) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=95, exif=exif.tobytes())
    return path


def assert_vertices_land_on_their_uv_pixels(collection: bpy.types.Collection, orientation: int) -> None:
    from ml.depth.exif import stored_uv

    scene = bpy.context.scene
    mesh_obj = next(o for o in collection.objects if o.type == "MESH")
    camera = next(o for o in collection.objects if o.type == "CAMERA")
    uv_layer = mesh_obj.data.uv_layers[0]
    loops = mesh_obj.data.loops
    uv_of_vertex = {}
    for loop in loops:
        uv_of_vertex[loop.vertex_index] = tuple(uv_layer.data[loop.index].uv)
    worst = 0.0
    for index, vertex in enumerate(mesh_obj.data.vertices):
        ndc = world_to_camera_view(scene, camera, mesh_obj.matrix_world @ vertex.co)
        # Where the camera sees the vertex, as UV of the stored (unrotated) image:
        su, sv = stored_uv(np.array(ndc.x), np.array(ndc.y), orientation)
        u, v = uv_of_vertex[index]
        image = mesh_obj.data.materials[0].node_tree.nodes["Image Texture"].image
        sw, sh = image.size
        worst = max(worst, abs(float(su) - u) * sw, abs(float(sv) - v) * sh)
    assert worst < 0.5, worst


def test_flat_photo_plane_with_exif_rotation(empty_scene, tmp_path, capfd):
    path = rotated_jpeg(tmp_path / "portrait.jpg")
    assert bpy.ops.restyle.import_photo_mesh(filepath=str(path), depth_model="FLAT") == {"FINISHED"}
    assert "flat planes" in capfd.readouterr().out
    collection = bpy.data.collections["portrait"]
    camera = next(o for o in collection.objects if o.type == "CAMERA")
    scene = bpy.context.scene
    assert (scene.render.resolution_x, scene.render.resolution_y) == (32, 48)  # EXIF 6: turned upright
    assert camera.data.lens == 28 and camera.data.sensor_width == 36 and scene.camera == camera
    assert_vertices_land_on_their_uv_pixels(collection, orientation=6)



@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif"])
def test_exif_rotation_of_png_webp_and_tiff_photos(empty_scene, tmp_path, suffix):
    """Blender loads these as stored, like JPEGs: the import turns them upright itself."""
    path = rotated_jpeg(tmp_path / f"portrait{suffix}")
    assert bpy.ops.restyle.import_photo_mesh(filepath=str(path), depth_model="FLAT") == {"FINISHED"}
    scene = bpy.context.scene
    assert (scene.render.resolution_x, scene.render.resolution_y) == (32, 48)
    assert_vertices_land_on_their_uv_pixels(bpy.data.collections["portrait"], orientation=6)


def test_photos_of_different_shapes_each_get_their_resolution_back(empty_scene, tmp_path, capfd):
    """One scene has one resolution: the import warns, and Look Through Photo Camera gives each
    photo camera its own, so that its vertices land on their pixels again."""
    rotated_jpeg(tmp_path / "wide.jpg", orientation=1, size=(60, 30))
    rotated_jpeg(tmp_path / "tall.jpg", orientation=1, size=(30, 50))
    files = [{"name": "wide.jpg"}, {"name": "tall.jpg"}]
    assert bpy.ops.restyle.import_photo_mesh(directory=str(tmp_path), files=files, depth_model="FLAT") == {"FINISHED"}
    assert "The photos differ in shape; the scene's resolution fits wide.jpg" in capfd.readouterr().out
    scene = bpy.context.scene
    assert (scene.render.resolution_x, scene.render.resolution_y) == (60, 30)
    # EXIF says 28 mm equivalent, which is defined on the diagonal: a 2:1 frame is 38.7 mm wide, not 36.
    wide_lens = bpy.data.objects["wide Camera"].data
    assert wide_lens.lens == 28 and wide_lens.sensor_width == pytest.approx(43.2666 * 60 / 67.0820, abs=1e-3)
    tall_rig = bpy.data.collections["tall"]
    tall_mesh = next(o for o in tall_rig.objects if o.type == "MESH")
    bpy.context.view_layer.objects.active = tall_mesh  # the mesh is enough: its camera is found
    assert bpy.ops.restyle.look_through_photo() == {"FINISHED"}
    assert (scene.render.resolution_x, scene.render.resolution_y) == (30, 50)
    assert scene.camera.name == "tall Camera"
    assert_vertices_land_on_their_uv_pixels(tall_rig, orientation=1)
    bpy.context.view_layer.objects.active = None
    assert not bpy.ops.restyle.look_through_photo.poll()
    camera = bpy.data.objects["wide Camera"]
    camera["restyle_photo_size"] = [0, 30]  # edited by hand: refused with a message, nothing changed
    bpy.context.view_layer.objects.active = camera
    with pytest.raises(RuntimeError, match="has no valid photo size"):
        bpy.ops.restyle.look_through_photo()
    assert (scene.render.resolution_x, scene.render.resolution_y) == (30, 50) and scene.camera.name == "tall Camera"


def test_a_second_import_is_placed_beside_the_first_and_reports_its_real_names(empty_scene, tmp_path, capfd):
    path = rotated_jpeg(tmp_path / "shot.jpg", orientation=1)
    assert bpy.ops.restyle.import_photo_mesh(filepath=str(path), depth_model="FLAT") == {"FINISHED"}
    cli = importlib.import_module(f"{ADDON_MODULE}.cli")
    report = tmp_path / "r.json"
    assert cli.main(["import-photo", str(path), "--depth-model", "FLAT", "--report", str(report)]) == 0
    assert json.loads(report.read_text())["items"][0]["output"] == "shot.001"  # not "shot": that is the first
    first = bpy.data.collections["shot"].objects["shot Camera"]
    second = next(o for o in bpy.data.collections["shot.001"].objects if o.type == "CAMERA")
    # Not on top of the first rig: one rig spacing (near + depth range) further along x.
    assert second.matrix_world.translation.x > first.matrix_world.translation.x + 1.0


def test_several_photos_give_one_collection_each_and_bad_paths_change_nothing(empty_scene, tmp_path):
    a = rotated_jpeg(tmp_path / "a.jpg", orientation=1)
    b = rotated_jpeg(tmp_path / "b.jpg", orientation=3)
    result = bpy.ops.restyle.import_photo_mesh(directory=str(tmp_path), files=[{"name": "a.jpg"}, {"name": "b.jpg"}])
    assert result == {"FINISHED"} and {"a", "b"} <= set(bpy.data.collections.keys())
    assert a.exists() and b.exists()
    before = (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.images), len(bpy.data.collections))
    with pytest.raises(RuntimeError, match="No such photo"):
        bpy.ops.restyle.import_photo_mesh(filepath=str(tmp_path / "missing.jpg"))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(RuntimeError, match="Nothing was imported"):
        bpy.ops.restyle.import_photo_mesh(filepath=str(broken))
    assert before == (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.images), len(bpy.data.collections))


@pytest.fixture
def depth_mirror(addon, tmp_path, monkeypatch):
    from ml.networks.depth_anything import CONFIGS, DepthAnythingV2

    checkpoint = tmp_path / "depth_anything_v2_vits.pth"
    torch.save(seeded(DepthAnythingV2(CONFIGS["vits"])).state_dict(), checkpoint)
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    bpy.context.preferences.system.use_online_access = True
    catalog = importlib.import_module(f"{ADDON_MODULE}.ml.models.catalog")
    entry = catalog._BY_ID["depth-anything-v2-small"]
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    monkeypatch.setitem(catalog._BY_ID, entry.id, replace(entry, files=(replace(entry.files[0], sha256=digest),)))
    photo_module = importlib.import_module(f"{ADDON_MODULE}.jobs.photo")
    patched = tuple(catalog._BY_ID[e.id] for e in catalog.DEPTH_MODELS)
    monkeypatch.setattr(photo_module, "DEPTH_MODELS", patched)
    with FileServer() as server:
        server.files["/depth_anything_v2_vits.pth"] = checkpoint.read_bytes()
        prefs.mirror_url, prefs.model_folder = server.url, str(tmp_path / "models")
        yield
        prefs.mirror_url, prefs.model_folder = "", ""
    bpy.context.preferences.system.use_online_access = False


def test_with_a_downloaded_depth_model_the_mesh_has_relief(depth_mirror, empty_scene, tmp_path):
    assert bpy.ops.restyle.download_model(model_id="depth-anything-v2-small") == {"FINISHED"}
    path = rotated_jpeg(tmp_path / "street.jpg", orientation=8, size=(56, 42))
    assert bpy.ops.restyle.import_photo_mesh(filepath=str(path), near=1.0, depth_range=4.0, cut_threshold=10.0) == {
        "FINISHED"}
    collection = bpy.data.collections["street"]
    mesh_obj = next(o for o in collection.objects if o.type == "MESH")
    local_z = np.array([v.co.z for v in mesh_obj.data.vertices])
    assert -5.0 - 1e-3 <= local_z.min() and local_z.max() <= -1.0 + 1e-3
    assert np.ptp(local_z) > 0.5  # relief, not a plane
    assert_vertices_land_on_their_uv_pixels(collection, orientation=8)


def test_flat_needs_no_pixels_and_a_depth_job_keeps_no_copy_of_them(empty_scene, tmp_path, monkeypatch):
    """A 48 MP photo cost 1.6 GB of Blender's memory even on Flat, and every photo's float copy
    stayed in Blender for the whole import; the worker has its own."""
    photo_job = importlib.import_module(f"{ADDON_MODULE}.jobs.photo")
    base = importlib.import_module(f"{ADDON_MODULE}.jobs.base")
    path = rotated_jpeg(tmp_path / "big.jpg", orientation=6, size=(64, 40))

    def unread(*_args, **_kwargs):
        raise AssertionError("Flat read the photo's pixels")

    with monkeypatch.context() as patched:
        patched.setattr(photo_job.images, "read_sources", unread)
        assert bpy.ops.restyle.import_photo_mesh(filepath=str(path), depth_model="FLAT") == {"FINISHED"}
    scene = bpy.context.scene
    assert (scene.render.resolution_x, scene.render.resolution_y) == (40, 64)  # size and EXIF 6, no pixels
    options = importlib.import_module(f"{ADDON_MODULE}.ml.options").ImportPhotoOptions(depth_model="depth-builtin-fast")
    job = photo_job.PhotoJob(scene, [path], options, base.services_of(bpy.context))
    try:
        assert job.current is not None and job.current[1].displayed is None and job.current[1].size == (64, 40)
        job.wait()
        assert job.finish().collections == ["big.001"]
    finally:
        job.close()


def test_a_photo_under_four_pixels_a_side_is_refused_and_nothing_is_made(empty_scene, tmp_path):
    """Blender's camera frame is at least 4 px a side: a 3 px high strip would get a frame of
    the wrong shape, so its camera would miss the photo."""
    strip = tmp_path / "strip.png"
    Image.fromarray(np.full((3, 40, 3), 128, np.uint8)).save(strip)
    before = (len(bpy.data.objects), len(bpy.data.images), len(bpy.data.collections))
    with pytest.raises(RuntimeError, match=r"strip.png is 40 x 3 px: too small to import"):
        bpy.ops.restyle.import_photo_mesh(filepath=str(strip), depth_model="FLAT")
    assert before == (len(bpy.data.objects), len(bpy.data.images), len(bpy.data.collections))
    ok = tmp_path / "ok.png"
    Image.fromarray(np.full((4, 40, 3), 128, np.uint8)).save(ok)
    assert bpy.ops.restyle.import_photo_mesh(filepath=str(ok), depth_model="FLAT") == {"FINISHED"}


@pytest.mark.parametrize(("model_id", "choice", "near", "expected"), [
    ("depth-anything-v2-base", "AUTO", 2.0, ["Auto used Depth Anything V2 Base, whose license is CC-BY-NC-4.0"]),
    ("depth-anything-v2-base", "depth-anything-v2-base", 2.0, []),  # picked by name: the user chose it
    ("depth-anything-v2-small", "AUTO", 2.0, []),
    ("depth-anything-v2-metric-vkitti-small", "AUTO", 2.0, []),
    ("depth-anything-v2-metric-vkitti-small", "AUTO", 5.0, ["gives depth in metres, so Near and Depth Range"]),
    ("depth-builtin-fast", "AUTO", 5.0, []),
])
def test_photo_import_says_what_the_depth_model_does_that_the_user_may_not_expect(model_id, choice, near, expected):
    """Auto choosing a non-commercial model, and Near/Depth Range a metric model ignores, were silent."""
    from types import SimpleNamespace

    photo_job = importlib.import_module(f"{ADDON_MODULE}.jobs.photo")
    registry = importlib.import_module(f"{ADDON_MODULE}.ml.models.registry")
    catalog = importlib.import_module(f"{ADDON_MODULE}.ml.models.catalog")
    options = importlib.import_module(f"{ADDON_MODULE}.ml.options").ImportPhotoOptions(depth_model=choice, near=near)
    model = registry.descriptor_of(catalog._BY_ID[model_id])
    job = SimpleNamespace(model=model, options=options)
    notices = photo_job.PhotoJob._model_notices(job)
    assert len(notices) == len(expected) and all(e in n for e, n in zip(expected, notices, strict=True))
    spacing = photo_job.PhotoJob._spacing.fget(job)  # rigs side by side clear the deepest mesh
    assert spacing == (model.max_depth if model.max_depth is not None else near + options.depth_range)
