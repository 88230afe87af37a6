"""Red team: Stylize Render, Mesh from Depth Pass and Import Photo under bad input.

Each case asserts what a careful user expects: a clear message (no Python traceback), and
on failure the scene, its datablocks, its render settings and the files on disk exactly as
they were before. Runs on every Blender line (4.2, 4.5, 5.0).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import bpy
import numpy as np
import OpenEXR
import pytest

from bridge.compat import snapshot_settings
from tests.blender.scenes import pixels_of, small_scene, write_image
from tests.blender.support import ADDON_MODULE
from tests.ml.synthetic import photo_like

KINDS = ("objects", "meshes", "materials", "images", "cameras", "collections", "lights")


def settings_state() -> list[dict[str, object]]:
    scene = bpy.context.scene
    return [snapshot_settings(s) for s in (scene.render, scene.render.image_settings, bpy.context.view_layer)]


def data_state() -> dict[str, object]:
    """Every datablock by kind (Blender's own Render Result viewer aside), the scene's camera,
    frame and links: what a failed job must leave exactly as it was."""
    scene = bpy.context.scene
    state: dict[str, object] = {
        kind: sorted(b.name for b in getattr(bpy.data, kind) if b.name != "Render Result") for kind in KINDS
    }
    state["camera"] = scene.camera.name if scene.camera else None
    state["frame"] = scene.frame_current
    state["children"] = sorted(c.name for c in scene.collection.children)
    state["scene_objects"] = sorted(o.name for o in scene.objects)
    return state


def files_state(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(folder.rglob("*"))} if folder.exists() else {}


def cancelled(operator, **kwargs) -> str:
    """Runs a bpy operator that must fail with a report (Blender raises RuntimeError carrying
    the report for a cancelled operator); returns the message, which must not be a traceback."""
    with pytest.raises(RuntimeError) as caught:
        operator(**kwargs)
    message = str(caught.value)
    assert "Traceback" not in message and "Python:" not in message, message
    return message


def addon_module(name: str):
    return importlib.import_module(f"{ADDON_MODULE}.{name}")


def write_exr(path: Path, channels: dict[str, np.ndarray], parts: dict[str, list[str]] | None = None) -> Path:
    """A multilayer EXR as Blender 5 writes it (one part per pass) or 4.x (one part)."""
    shapes = [a.shape for a in channels.values()]
    full = max(shapes)

    def header(shape):
        return {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage,
                "displayWindow": ((0, 0), (full[1] - 1, full[0] - 1)),
                "dataWindow": ((0, 0), (shape[1] - 1, shape[0] - 1))}

    groups = parts or {"all": list(channels)}
    built = []
    for name, keys in groups.items():
        chans = {k: np.ascontiguousarray(channels[k], dtype=np.float32) for k in keys}
        built.append(OpenEXR.Part(header(next(iter(chans.values())).shape), chans, name=name))
    OpenEXR.File(built).write(str(path))
    return path


def pass_channels(h: int = 30, w: int = 40, depth_shape: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    channels = {f"ViewLayer.Combined.{c}": rng.random((h, w)).astype(np.float32) for c in "RGBA"}
    channels["ViewLayer.Depth.Z"] = np.full(depth_shape or (h, w), 5.0, np.float32)
    return channels


# ---------------------------------------------------------------------- the scene camera

@pytest.mark.parametrize("kind", ["EMPTY", "LIGHT"])
def test_depth_pass_with_a_non_camera_as_scene_camera_is_a_clear_error(empty_scene, kind):
    small_scene()
    scene = bpy.context.scene
    if kind == "EMPTY":
        bpy.ops.object.empty_add(location=(0, -6, 3))
    else:
        bpy.ops.object.light_add(type="POINT", location=(0, -6, 3))
    scene.camera = bpy.context.active_object
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.mesh_from_depth_pass)
    assert f"is a{'n' if kind == 'EMPTY' else ''} {kind.title()}, not a camera" in message
    assert data_state() == before and settings_state() == settings


def test_stylize_render_with_an_empty_as_scene_camera_is_a_clear_error(empty_scene, tmp_path):
    small_scene()
    bpy.ops.object.empty_add()
    bpy.context.scene.camera = bpy.context.active_object
    bpy.context.scene.restyle.style = "toon"
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.stylize_render, output_dir=str(tmp_path / "frames"))
    assert "not a camera" in message
    assert data_state() == before and settings_state() == settings
    assert not (tmp_path / "frames").exists()  # not even the folder was made


def test_panoramic_camera_is_refused_before_rendering_with_settings_unchanged(empty_scene):
    camera = small_scene()
    camera.data.type = "PANO"
    scene = bpy.context.scene
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_depth = "16"
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.mesh_from_depth_pass)
    assert "is a pano camera; only perspective and orthographic cameras are supported" in message
    assert data_state() == before and settings_state() == settings
    assert scene.render.image_settings.color_depth == "16"


# ---------------------------------------------------------------------- bad EXR files

def _exr_case(kind: str, tmp_path: Path) -> tuple[Path, str]:
    if kind == "depth-smaller":
        channels = pass_channels(depth_shape=(15, 20))
        groups = {"combined": [k for k in channels if "Combined" in k], "depth": ["ViewLayer.Depth.Z"]}
        return write_exr(tmp_path / "small_depth.exr", channels, groups), "differ in size"
    if kind == "green-smaller":
        channels = pass_channels()
        channels["ViewLayer.Combined.G"] = channels["ViewLayer.Combined.G"][:10, :10]
        groups = {"rgb": ["ViewLayer.Combined.R", "ViewLayer.Combined.B", "ViewLayer.Combined.A",
                          "ViewLayer.Depth.Z"], "g": ["ViewLayer.Combined.G"]}
        return write_exr(tmp_path / "small_green.exr", channels, groups), "differ in size"
    if kind == "no-depth":
        channels = pass_channels()
        del channels["ViewLayer.Depth.Z"]
        return write_exr(tmp_path / "no_depth.exr", channels), "no Combined and Depth passes"
    if kind == "nan-depth":
        channels = pass_channels()
        channels["ViewLayer.Depth.Z"][3, 4] = np.nan
        return write_exr(tmp_path / "nan_depth.exr", channels), "Depth pass holds NaN"
    if kind == "nan-combined":
        channels = pass_channels()
        channels["ViewLayer.Combined.R"][0, 0] = np.nan
        return write_exr(tmp_path / "nan_colour.exr", channels), "Combined pass holds NaN"
    if kind == "negative-depth":
        channels = pass_channels()
        channels["ViewLayer.Depth.Z"][:] = -2.0
        return write_exr(tmp_path / "negative.exr", channels), "negative distances"
    if kind == "one-pixel":
        return write_exr(tmp_path / "tiny.exr", pass_channels(1, 1)), "1x1 pixels, too small for a mesh"
    if kind == "text":
        path = tmp_path / "notes.exr"
        path.write_text("this is not an image")
        return path, "not a readable OpenEXR file"
    if kind == "png":
        return write_image(tmp_path / "photo.png", photo_like(30, 40, seed=1)), "not a readable OpenEXR file"
    if kind == "missing":
        return tmp_path / "gone.exr", "file not found"
    if kind == "folder":
        (tmp_path / "a_folder.exr").mkdir()
        return tmp_path / "a_folder.exr", "is not a file"
    raise AssertionError(kind)


EXR_CASES = ["depth-smaller", "green-smaller", "no-depth", "nan-depth", "nan-combined", "negative-depth", "one-pixel",
             "text", "png", "missing", "folder"]


@pytest.mark.parametrize("kind", EXR_CASES)
def test_unusable_pass_file_is_a_clear_error_and_changes_nothing(empty_scene, tmp_path, kind):
    small_scene()
    path, expected = _exr_case(kind, tmp_path)
    files = files_state(tmp_path)
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.mesh_from_depth_pass, filepath=str(path))
    assert "No mesh was made" in message and expected in message, message
    assert data_state() == before and settings_state() == settings and files_state(tmp_path) == files


@pytest.mark.parametrize("layout", ["one-part", "part-per-pass"])
def test_a_good_pass_file_of_either_layout_builds_a_mesh(empty_scene, tmp_path, layout):
    """The control for the cases above: the same writer, valid passes, in both layouts."""
    small_scene()
    channels = pass_channels()
    groups = None if layout == "one-part" else {
        "combined": [k for k in channels if "Combined" in k], "depth": ["ViewLayer.Depth.Z"]}
    path = write_exr(tmp_path / "good.exr", channels, groups)
    assert bpy.ops.restyle.mesh_from_depth_pass(filepath=str(path), max_side=20) == {"FINISHED"}
    assert bpy.data.objects.get(f"{bpy.context.scene.camera.name} Depth Mesh") is not None


# ---------------------------------------------------------------------- settings restored

FORMATS = {
    "png8": {"file_format": "PNG", "color_depth": "8", "color_mode": "RGBA"},  # Blender's default output
    "png16": {"file_format": "PNG", "color_depth": "16", "color_mode": "RGB", "compression": 90},
    "exr-half-dwaa": {"file_format": "OPEN_EXR", "color_depth": "16", "exr_codec": "DWAA"},
    "jpeg": {"file_format": "JPEG", "quality": 37, "color_mode": "BW"},
}


def _set_format(name: str) -> None:
    scene = bpy.context.scene
    for key, value in FORMATS[name].items():
        setattr(scene.render.image_settings, key, value)
    scene.render.filepath, scene.render.use_file_extension = "//renders/shot_", False
    bpy.context.view_layer.use_pass_z = False
    bpy.context.view_layer.use_pass_normal = False


@pytest.mark.parametrize("output", list(FORMATS))
def test_depth_pass_restores_every_render_setting(empty_scene, output):
    small_scene()
    _set_format(output)
    settings = settings_state()
    assert bpy.ops.restyle.mesh_from_depth_pass(max_side=20) == {"FINISHED"}
    assert settings_state() == settings
    for key, value in FORMATS[output].items():
        assert getattr(bpy.context.scene.render.image_settings, key) == value, key


def test_stylize_render_restores_every_render_setting_and_the_frame(empty_scene, tmp_path):
    small_scene()
    _set_format("png8")
    scene = bpy.context.scene
    scene.frame_set(7)
    scene.restyle.style = "toon"
    settings = settings_state()
    assert bpy.ops.restyle.stylize_render(frame_start=2, frame_end=3, outlines=0.5,
                                          output_dir=str(tmp_path / "out")) == {"FINISHED"}
    assert settings_state() == settings and scene.frame_current == 7
    assert scene.render.image_settings.color_depth == "8"  # not left at 16


# ---------------------------------------------------------------------- Stylize Render

def test_end_frame_before_start_frame_is_an_error_not_one_frame(empty_scene, tmp_path):
    small_scene()
    bpy.context.scene.restyle.style = "toon"
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.stylize_render, frame_start=10, frame_end=4,
                        output_dir=str(tmp_path / "frames"))
    assert "end frame 4 is before the start frame 10" in message
    assert data_state() == before and settings_state() == settings
    assert not (tmp_path / "frames").exists()


@pytest.mark.parametrize("where", ["under-a-file", "is-a-file"])
def test_unwritable_output_folder_is_a_clear_error_and_leaves_nothing(empty_scene, tmp_path, where):
    small_scene()
    bpy.context.scene.restyle.style = "toon"
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    target = blocker / "frames" if where == "under-a-file" else blocker
    files = files_state(tmp_path)
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.stylize_render, output_dir=str(target))
    assert "output folder" in message and str(blocker) in message, message
    assert data_state() == before and settings_state() == settings and files_state(tmp_path) == files


def test_a_write_failing_midway_removes_the_frames_and_folders_it_made(empty_scene, tmp_path, monkeypatch):
    small_scene()
    bpy.context.scene.restyle.style = "toon"
    outputs = addon_module("bridge.outputs")
    real, calls = outputs.save_verified, []

    def second_write_fails(image, path, file_format=None):
        calls.append(path)
        if len(calls) == 2:
            raise outputs.OutputWriteError(f"could not write {path}: the file is empty (is the disk full?)")
        real(image, path, file_format)

    monkeypatch.setattr(outputs, "save_verified", second_write_fails)
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.stylize_render, frame_start=1, frame_end=3,
                        output_dir=str(tmp_path / "new" / "frames"))
    assert "is the disk full" in message and len(calls) == 2
    assert data_state() == before and settings_state() == settings
    assert not (tmp_path / "new").exists()  # the first frame and both new folders are gone


def test_stylize_render_pushes_an_undo_step(addon):
    render = addon_module("operators.render").RESTYLE_OT_stylize_render
    assert "UNDO" in render.bl_options


def test_an_image_the_user_named_like_the_result_is_never_deleted(empty_scene):
    small_scene()
    scene = bpy.context.scene
    scene.restyle.style = "toon"
    mine = bpy.data.images.new(f"{scene.name}.toon", 8, 8)
    mine.pixels.foreach_set(np.full(8 * 8 * 4, 0.25, np.float32))
    pixels = pixels_of(mine).copy()
    assert bpy.ops.restyle.stylize_render() == {"FINISHED"}
    assert bpy.data.images.get(f"{scene.name}.toon") == mine and np.array_equal(pixels_of(mine), pixels)
    results = [i for i in bpy.data.images if i.get("restyle_render_of") == scene.name]
    assert len(results) == 1 and results[0] != mine and tuple(results[0].size) == (40, 30)
    # A second run replaces its own earlier result, and still leaves the user's image alone.
    assert bpy.ops.restyle.stylize_render() == {"FINISHED"}
    assert len([i for i in bpy.data.images if i.get("restyle_render_of") == scene.name]) == 1
    assert bpy.data.images.get(f"{scene.name}.toon") == mine


def test_a_file_already_at_the_frame_path_is_never_overwritten(empty_scene, tmp_path):
    small_scene()
    scene = bpy.context.scene
    scene.restyle.style = "toon"
    folder = tmp_path / "frames"
    folder.mkdir()
    theirs = folder / f"{scene.name}.toon.0001.png"
    theirs.write_bytes(b"someone else's frame")
    assert bpy.ops.restyle.stylize_render(frame_start=1, frame_end=1, output_dir=str(folder)) == {"FINISHED"}
    assert theirs.read_bytes() == b"someone else's frame"
    written = sorted(p.name for p in folder.iterdir() if p != theirs)
    assert written == [f"{scene.name}.toon-2.0001.png"]
    # Its own files of an earlier run are replaced in place, not multiplied.
    assert bpy.ops.restyle.stylize_render(frame_start=1, frame_end=1, output_dir=str(folder)) == {"FINISHED"}
    assert sorted(p.name for p in folder.iterdir() if p != theirs) == written


def test_an_unexpected_error_in_a_frame_is_reported_and_restores_everything(empty_scene, tmp_path, monkeypatch):
    small_scene()
    scene = bpy.context.scene
    scene.restyle.style = "toon"
    scene.frame_set(5)
    passes = addon_module("bridge.passes")

    def broken(*_args, **_kwargs):
        raise ValueError("simulated bug")

    monkeypatch.setattr(passes, "read_multilayer_exr", broken)
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.stylize_render, frame_start=1, frame_end=2, output_dir=str(tmp_path / "o"))
    assert "unexpected ValueError: simulated bug" in message
    assert data_state() == before and settings_state() == settings and not (tmp_path / "o").exists()


# ---------------------------------------------------------------------- failures while building

def test_depth_pass_build_error_leaves_no_mesh_material_image_or_collection(empty_scene, monkeypatch):
    small_scene()
    depth = addon_module("jobs.depth_pass")
    real = depth.add_reconstruction

    def builds_then_fails(*args, **kwargs):
        real(*args, **kwargs)  # the mesh and object exist now
        raise RuntimeError("simulated failure after the mesh was built")

    monkeypatch.setattr(depth, "add_reconstruction", builds_then_fails)
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.mesh_from_depth_pass, max_side=20)
    assert "simulated failure" in message
    assert data_state() == before and settings_state() == settings


@pytest.mark.parametrize("failing_call", [1, 2])
def test_photo_import_build_error_leaves_nothing_and_keeps_the_scene_camera(empty_scene, tmp_path, monkeypatch,
                                                                           failing_call):
    camera = small_scene()
    scene = bpy.context.scene
    # The user's own collection and camera already carry the photo's names.
    bpy.data.collections.new("a")
    bpy.data.objects.new("a Camera", bpy.data.cameras.new("a Camera"))
    for name, seed in (("a", 1), ("b", 2)):
        write_image(tmp_path / f"{name}.png", photo_like(24, 32, seed=seed))
    photo = addon_module("jobs.photo")
    real, calls = photo.add_reconstruction, []

    def fails_on_call(*args, **kwargs):
        calls.append(args[0])
        result = real(*args, **kwargs)
        if len(calls) == failing_call:
            raise RuntimeError("simulated failure while building")
        return result

    monkeypatch.setattr(photo, "add_reconstruction", fails_on_call)
    before, settings = data_state(), settings_state()
    files = files_state(tmp_path)
    message = cancelled(bpy.ops.restyle.import_photo_mesh, directory=str(tmp_path),
                        files=[{"name": "a.png"}, {"name": "b.png"}], depth_model="FLAT")
    assert "Nothing was imported" in message and "simulated failure" in message
    assert data_state() == before and settings_state() == settings and files_state(tmp_path) == files
    assert scene.camera == camera and (scene.render.resolution_x, scene.render.resolution_y) == (40, 30)


def _noise_png(path: Path) -> Path:
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))  # a PNG signature, then noise
    return path


def test_photo_import_of_a_file_blender_cannot_decode_leaves_nothing(empty_scene, tmp_path):
    small_scene()
    bad = _noise_png(tmp_path / "bad.png")
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.import_photo_mesh, filepath=str(bad), depth_model="FLAT")
    assert "Nothing was imported" in message and "bad.png cannot be read as an image" in message
    assert data_state() == before and settings_state() == settings


def test_photo_import_leaves_out_a_broken_photo_and_imports_the_others(empty_scene, tmp_path):
    """One broken photo among good ones made the whole import fail: now it is named, the others come in."""
    small_scene()
    good = [write_image(tmp_path / f"good{i}.png", photo_like(24, 32, seed=i)) for i in (1, 2)]
    bad = _noise_png(tmp_path / "bad.png")
    photo = addon_module("jobs.photo")
    options = addon_module("ml.options").ImportPhotoOptions(depth_model="FLAT")
    services = addon_module("jobs.base").services_of(bpy.context)
    before = set(bpy.data.collections.keys())
    outcome = photo.import_photos(bpy.context.scene, [good[0], bad, good[1]], options, services)
    assert sorted(set(bpy.data.collections.keys()) - before) == ["good1", "good2"] == sorted(outcome.collections)
    assert len(outcome.failed) == 1 and outcome.failed[0].startswith("bad.png cannot be read as an image")
    level, text = outcome.summary()
    assert level == "WARNING" and text.startswith("Placed 2 photo(s) on flat planes; 1 photo(s) could not be "
                                                  "imported: bad.png cannot be read")
    assert bpy.context.scene.camera.name == "good1 Camera"  # the first photo imported
    # Through the operator (the panel, a drop): it finishes, with the rigs.
    assert bpy.ops.restyle.import_photo_mesh(directory=str(tmp_path), files=[{"name": "bad.png"},
                                             {"name": "good1.png"}], depth_model="FLAT") == {"FINISHED"}
    assert "good1.001" in bpy.data.collections


def test_a_photo_whose_depth_gives_no_mesh_is_left_out_and_the_others_imported(empty_scene, tmp_path):
    """A 4000 x 4 strip (past the 4 px minimum, but no face at the mesh resolution) failed the whole import."""
    small_scene()
    paths = [write_image(tmp_path / "a.png", photo_like(40, 60, seed=1)),
             write_image(tmp_path / "strip.png", photo_like(4, 4000, seed=2)),
             write_image(tmp_path / "c.png", photo_like(40, 60, seed=3))]
    photo = addon_module("jobs.photo")
    options = addon_module("ml.options").ImportPhotoOptions(depth_model="AUTO", resolution=64)
    outcome = photo.import_photos(bpy.context.scene, paths, options, addon_module("jobs.base").services_of(bpy.context))
    assert outcome.collections == ["a", "c"] and "strip" not in bpy.data.collections
    assert len(outcome.failed) == 1 and outcome.failed[0].startswith("strip.png: its depth gives no surface")
    assert bpy.context.scene.camera.name == "a Camera"


def test_a_missing_photo_or_a_folder_among_photos_is_left_out_and_named(empty_scene, tmp_path):
    small_scene()
    good = write_image(tmp_path / "good.png", photo_like(24, 32, seed=1))
    (tmp_path / "day1").mkdir()
    photo = addon_module("jobs.photo")
    options = addon_module("ml.options").ImportPhotoOptions(depth_model="FLAT")
    services = addon_module("jobs.base").services_of(bpy.context)
    outcome = photo.import_photos(bpy.context.scene, [good, tmp_path / "gone.jpg", tmp_path / "day1"], options,
                                  services)
    assert outcome.collections == ["good"]
    assert outcome.failed == ["gone.jpg: no such file", "day1: a folder, not a photo"]
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.import_photo_mesh, directory=str(tmp_path), files=[{"name": "gone.jpg"}],
                        depth_model="FLAT")
    assert "Nothing was imported: No such photo: " in message and "gone.jpg" in message
    assert data_state() == before and settings_state() == settings


def test_photo_import_with_no_readable_photo_names_each_and_makes_nothing(empty_scene, tmp_path):
    small_scene()
    for name in ("a.png", "b.png"):
        _noise_png(tmp_path / name)
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.import_photo_mesh, directory=str(tmp_path),
                        files=[{"name": "a.png"}, {"name": "b.png"}], depth_model="FLAT")
    assert "none of the 2 photos could be imported: a.png cannot be read" in message and "; b.png cannot" in message
    assert data_state() == before and settings_state() == settings


def test_depth_model_option_explains_every_choice(addon):
    tip = bpy.ops.restyle.import_photo_mesh.get_rna_type().properties["depth_model"].description
    assert "Auto" in tip and "Flat" in tip and "built-in" in tip
    for entry in addon_module("ml.models.catalog").DEPTH_MODELS:
        assert entry.name in tip


def _failing_estimates(monkeypatch, results):
    """The worker's answer for a depth job: ``results`` by item id, as the client's Job holds them once done."""
    class FailingJob:
        finished, fraction = True, 1.0

        def __init__(self):
            self.results = results

        def poll(self):
            return True

        def wait(self):
            return self.results

        def cancel(self):
            pass

        def close(self):
            pass

    class FailingClient:
        def submit_depth(self, *_args, **_kwargs):
            return FailingJob()

    monkeypatch.setattr(addon_module("jobs.base").Services, "client", lambda _self: FailingClient())


def test_a_failed_depth_estimate_is_an_error_not_a_silent_flat_plane(empty_scene, tmp_path, monkeypatch):
    small_scene()
    photo = write_image(tmp_path / "yard.png", photo_like(24, 32, seed=3))
    result = addon_module("ml.runtime.client").ItemResult
    _failing_estimates(monkeypatch, {"0": result("0", None, "CUDA out of memory")})
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.import_photo_mesh, filepath=str(photo), depth_model="AUTO")
    assert "depth of yard.png could not be estimated: CUDA out of memory" in message
    assert data_state() == before and settings_state() == settings


def test_a_photo_whose_depth_failed_is_left_out_and_named(empty_scene, tmp_path, monkeypatch):
    """Of two photos, the second's estimate failed: the first is built with its depth, the second named."""
    small_scene()
    paths = [write_image(tmp_path / f"{name}.png", photo_like(24, 32, seed=i)) for i, name in enumerate(("a", "b"))]
    result = addon_module("ml.runtime.client").ItemResult
    depth = np.linspace(0.2, 1.0, 24 * 32, dtype=np.float32).reshape(24, 32)
    _failing_estimates(monkeypatch, {"0": result("0", depth), "1": result("1", None, "CUDA out of memory")})
    photo = addon_module("jobs.photo")
    options = addon_module("ml.options").ImportPhotoOptions(depth_model="AUTO")
    services = addon_module("jobs.base").services_of(bpy.context)
    outcome = photo.import_photos(bpy.context.scene, paths, options, services)
    assert outcome.collections == ["a"] and "b" not in bpy.data.collections
    assert outcome.failed == ["the depth of b.png could not be estimated: CUDA out of memory"]
    mesh = next(o for o in bpy.data.collections["a"].objects if o.type == "MESH")
    z = np.array([v.co.z for v in mesh.data.vertices])
    assert np.ptp(z) > 0  # relief from the depth that came back, not a flat plane
    assert outcome.summary()[0] == "WARNING" and "1 photo(s) could not be imported" in outcome.summary()[1]


def test_a_blend_relative_output_folder_in_an_unsaved_file_is_refused(empty_scene, tmp_path, monkeypatch):
    small_scene()
    bpy.context.scene.restyle.style = "toon"
    monkeypatch.chdir(tmp_path)  # where Blender would otherwise have put "//frames"
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.stylize_render, output_dir="//frames")
    assert "relative to the .blend file, which is not saved yet" in message
    assert data_state() == before and settings_state() == settings and files_state(tmp_path) == {}


def test_passes_of_two_view_layers_are_never_mixed(empty_scene, tmp_path):
    """Combined from one view layer and Depth from another are not one render."""
    small_scene()
    channels = pass_channels()
    mixed = {k.replace("ViewLayer.", "Foreground." if "Combined" in k else "Background."): v
             for k, v in channels.items()}
    path = write_exr(tmp_path / "two_layers.exr", mixed)
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.mesh_from_depth_pass, filepath=str(path))
    assert "no Combined and Depth passes of one view layer" in message
    assert data_state() == before and settings_state() == settings


def test_the_rendered_view_layer_is_read_when_the_scene_has_two(empty_scene):
    small_scene()
    scene = bpy.context.scene
    other = scene.view_layers.new("Other")
    other.use_pass_z = True  # a second layer with its own Depth pass in the same file
    settings = settings_state()
    assert bpy.ops.restyle.mesh_from_depth_pass(max_side=20) == {"FINISHED"}
    assert settings_state() == settings and not other.use_pass_normal
    assert bpy.data.objects.get(f"{scene.camera.name} Depth Mesh") is not None


def test_a_user_object_named_like_the_depth_mesh_is_left_alone(empty_scene):
    camera = small_scene()
    mine = bpy.data.objects.new(f"{camera.name} Depth Mesh", None)
    bpy.context.scene.collection.objects.link(mine)
    assert bpy.ops.restyle.mesh_from_depth_pass(max_side=20) == {"FINISHED"}
    assert bpy.data.objects[f"{camera.name} Depth Mesh"] == mine and mine.type == "EMPTY"
    built = [o for o in bpy.data.objects if o.type == "MESH" and o.name.startswith(f"{camera.name} Depth Mesh.")]
    assert len(built) == 1


def test_a_render_too_small_for_a_mesh_is_a_clear_error(empty_scene):
    small_scene(width=4, height=3)
    bpy.context.scene.render.resolution_percentage = 1  # Blender still renders one pixel
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.mesh_from_depth_pass)
    assert "too small" in message  # Blender's own refusal, passed on as the reason
    assert data_state() == before and settings_state() == settings


def test_stylize_render_with_a_style_not_downloaded_renders_and_writes_nothing(empty_scene, tmp_path):
    small_scene()
    bpy.context.scene.restyle.style = "cyclegan-monet"
    before, settings = data_state(), settings_state()
    message = cancelled(bpy.ops.restyle.stylize_render, output_dir=str(tmp_path / "frames"))
    assert "is not downloaded yet" in message
    assert data_state() == before and settings_state() == settings and not (tmp_path / "frames").exists()
