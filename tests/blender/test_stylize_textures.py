"""Stylize Textures in real Blender on scenes the tests build."""

import os
import signal
import threading
import time
from pathlib import Path

import bpy
import numpy as np
import pytest

from tests.blender.scenes import build_studio, fingerprint, pixels_of, select
from tests.blender.support import ADDON_MODULE

STYLES = ["toon", "oil", "watercolor", "pencil", "pixel"]


@pytest.fixture
def studio(empty_scene, tmp_path):
    info = build_studio(tmp_path / "textures")
    select(info["objects"])
    return info


def run(style: str, **settings) -> set[str]:
    scene = bpy.context.scene
    scene.restyle.style = style
    for key, value in settings.items():
        setattr(scene.restyle, key, value)
    return bpy.ops.restyle.stylize_textures()


def slot(name: str) -> bpy.types.Material:
    return bpy.data.objects[name].material_slots[0].material


@pytest.mark.parametrize("style", STYLES)
def test_every_builtin_style_makes_new_materials_and_keeps_originals(studio, style, capfd):
    before = fingerprint()
    assert run(style) == {"FINISHED"}
    printed = capfd.readouterr().out
    after = fingerprint()
    # Originals: same pixels, same files, same packed bytes, same node trees.
    for key, value in before.items():
        if key.startswith(("px:", "file:", "packed:", "mat:")):
            assert after[key] == value, key
    for obj in ("CubeA", "CubeB", "Sphere", "Statue", "Lamp", "Tiled", "Grid"):
        copy = slot(obj)
        assert copy.name == f"{copy['restyle_original'].name}.{style}"
        assert copy.name not in before["materials"]
    assert slot("CubeA") is slot("CubeB")  # a shared material gets one shared copy
    # Data maps keep pointing at the originals inside the copy.
    nodes = {n.image.name for n in slot("CubeA").node_tree.nodes if getattr(n, "image", None)}
    assert {"rough.png", "normal.png", f"photo.png.{style}"} <= nodes
    assert "mask.png" in {n.image.name for n in slot("Sphere").node_tree.nodes if getattr(n, "image", None)}
    for skipped in ("rough.png", "normal.png", "mask.png"):
        assert skipped in printed and f"{skipped}.{style}" not in bpy.data.images
    # The missing file is reported; its material still got the readable texture restyled.
    assert "gone.png (file not found" in printed
    assert slot("Ghost").name == f"Lost.{style}"
    # New pixels differ from the source; alpha is carried over exactly.
    new, old = pixels_of(bpy.data.images[f"photo.png.{style}"]), pixels_of(bpy.data.images["photo.png"])
    assert np.abs(new[..., :3] - old[..., :3]).mean() > 0.01
    np.testing.assert_allclose(new[..., 3], old[..., 3], atol=1 / 255)


def test_running_the_same_style_again_replaces_it(studio):
    run("toon")
    materials, images = len(bpy.data.materials), len(bpy.data.images)
    assert run("toon") == {"FINISHED"}
    assert (len(bpy.data.materials), len(bpy.data.images)) == (materials, images)
    assert slot("CubeA").name == "Wood.toon"
    assert not any(".toon." in m.name or m.name.endswith(".001") for m in bpy.data.materials)


def test_another_style_starts_from_the_original(studio):
    run("toon")
    run("pixel")
    assert slot("CubeA").name == "Wood.pixel"
    assert slot("CubeA")["restyle_original"] == bpy.data.materials["Wood"]


def test_revert_puts_originals_back(studio):
    before = fingerprint()
    run("oil")
    assert bpy.ops.restyle.revert_materials() == {"FINISHED"}
    assert fingerprint() == before


def test_undo_restores_the_scene(studio):
    bpy.ops.ed.undo_push(message="before restyle")
    before = fingerprint()
    bpy.context.scene.restyle.style = "watercolor"
    # The second argument asks for the undo step a click in the panel makes.
    assert bpy.ops.restyle.stylize_textures("EXEC_DEFAULT", True) == {"FINISHED"}
    assert slot("CubeA").name == "Wood.watercolor"
    bpy.ops.ed.undo()
    assert fingerprint() == before


def test_saved_blend_writes_files_next_to_it(studio, tmp_path):
    blend = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    run("pencil", output="FILES")
    photo, hdr = bpy.data.images["photo.png.pencil"], bpy.data.images["hdr.exr.pencil"]
    assert photo.filepath.startswith("//restyled") and photo.packed_file is None
    # Each file carries the .blend's stem, the image name, the style and a tag of the full name.
    assert Path(bpy.path.abspath(photo.filepath)).exists()
    assert Path(bpy.path.abspath(photo.filepath)).name.startswith("shot-photo.png.pencil-")
    assert Path(bpy.path.abspath(hdr.filepath)).name.startswith("shot-hdr.exr.pencil-")
    assert Path(bpy.path.abspath(hdr.filepath)).suffix == ".exr"
    assert hdr.is_float and (pixels_of(hdr)[..., :3] > 1.0).any()  # highlights survive
    tiled = bpy.data.images["udim.1001.png.pencil"] if "udim.1001.png.pencil" in bpy.data.images else None
    assert tiled is not None and tiled.source == "TILED"
    assert sorted(t.number for t in tiled.tiles) == [1001, 1002]
    tiles = sorted(p.name for p in (tmp_path / "restyled").glob("shot-udim*"))
    assert [name[-9:] for name in tiles] == [".1001.png", ".1002.png"]
    assert tiled.filepath.endswith(".<UDIM>.png")


def test_unsaved_blend_packs_results(studio):
    assert not bpy.data.filepath
    run("toon", output="FILES")
    for name in ("photo.png.toon", "grey.png.toon", "hdr.exr.toon", "Grid.toon", "packed.png.toon"):
        assert bpy.data.images[name].packed_file is not None, name


def test_udim_tiles_are_each_restyled(studio, tmp_path):
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "udim.blend"))
    run("oil")
    pattern = bpy.path.abspath(bpy.data.images["udim.1001.png.oil"].filepath)
    for number, source in ((1001, "udim.1001.png"), (1002, "udim.1002.png")):
        out = bpy.data.images.load(pattern.replace("<UDIM>", str(number)))
        original = bpy.data.images.load(str(Path(studio["folder"]) / source))
        assert np.abs(pixels_of(out) - pixels_of(original)).mean() > 0.005


def test_poll_says_why_it_is_greyed_out(studio):
    select([])
    assert not bpy.ops.restyle.stylize_textures.poll()
    assert not bpy.ops.restyle.revert_materials.poll()


def _job_client():
    client_module = __import__(f"{ADDON_MODULE}.ml.runtime.client", fromlist=["_SHARED"])
    return next(iter(client_module._SHARED.values()))


def test_cancel_leaves_nothing_behind(studio):
    stylize_module = __import__(f"{ADDON_MODULE}.operators.stylize", fromlist=["textures_job"])
    errors = __import__(f"{ADDON_MODULE}.ml.errors", fromlist=["JobCancelled"])
    bpy.context.scene.restyle.tile_size = 64
    big = bpy.data.images["photo.png"]
    big.scale(512, 512)  # a bigger texture so the job is still running when we cancel
    before = fingerprint()
    job_run = stylize_module.textures_job(bpy.context)
    job_run.cancel()
    with pytest.raises(errors.JobCancelled):
        while not job_run.poll():
            time.sleep(0.01)
    assert fingerprint() == before


def test_killed_worker_is_reported_and_scene_unchanged(studio):
    bpy.context.scene.restyle.style = "oil"
    bpy.context.scene.restyle.tile_size = 64
    bpy.data.images["photo.png"].scale(640, 640)
    run("pixel")  # make sure the worker is up, then restyle again and kill it mid-job
    before = fingerprint()
    client = _job_client()
    pid = client.pid

    def kill_when_busy() -> None:
        while not client.busy:
            time.sleep(0.01)
        time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    # In background mode an operator's error report reaches Python as a RuntimeError.
    with pytest.raises(RuntimeError, match="worker process stopped in the middle of the job"):
        run("oil")
    killer.join()
    assert fingerprint() == before
    assert run("toon") == {"FINISHED"}  # a fresh worker takes the next job
    assert client.pid != pid


def test_worker_writes_nothing_into_the_extension_folder(studio, addon, monkeypatch):
    # The bpy module exports PYTHONDONTWRITEBYTECODE itself; without it, the worker must
    # still not write bytecode next to the extension's sources.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    __import__(f"{ADDON_MODULE}.ml.runtime.client", fromlist=["x"]).shutdown_shared_clients()
    run("oil")
    folder = Path(addon.__file__).parent
    # Blender's own process never imports the engine or the styles; only the worker does.
    assert not list((folder / "ml").rglob("engine*.pyc"))
    assert not (folder / "ml" / "styles" / "__pycache__").exists()
