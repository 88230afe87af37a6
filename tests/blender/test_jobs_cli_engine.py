"""The command line's engine settings reach the engine: what the worker is asked to do is
recorded by wrapping the real client (the jobs still run for real)."""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import replace
from pathlib import Path

import bpy
import pytest

from tests.blender.scenes import animated_scene, textured_cube, write_image
from tests.blender.support import ADDON_MODULE
from tests.ml import checkpoints
from tests.ml.http_server import FileServer
from tests.ml.synthetic import photo_like


def _module(name: str):
    return importlib.import_module(f"{ADDON_MODULE}.{name}")


@pytest.fixture
def cli(addon):
    return _module("cli")


class RecordingClient:
    """The real worker client, with every submit() call's arguments kept."""

    def __init__(self, real) -> None:
        self.real, self.calls = real, []

    def submit(self, style, options, images, **kwargs):
        self.calls.append({"style": style, "options": options, **kwargs})
        return self.real.submit(style, options, images, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture
def submitted(addon, monkeypatch):
    base = _module("jobs.base")
    real_client = base.Services.client
    recorder: list[dict] = []

    def client(self):
        wrapped = RecordingClient(real_client(self))
        wrapped.calls = recorder
        return wrapped

    monkeypatch.setattr(base.Services, "client", client)
    return recorder


def test_stylize_render_takes_the_engine_arguments_stylize_textures_takes(cli, empty_scene, tmp_path, submitted):
    animated_scene(frames=1, degrees=0, size=(96, 72), samples=1)
    code = cli.main(["stylize-render", "--style", "toon", "--frames", "1", "--output-dir", str(tmp_path / "f"),
                     "--device", "cpu", "--precision", "full", "--tile-size", "64", "--seamless", "off",
                     "--preserve-colors", "--strength", "0.5"])
    assert code == 0
    options = submitted[0]["options"]
    assert (options.device, options.precision, options.tile_size, options.seamless) == ("cpu", "full", 64, "off")
    assert options.preserve_colors and options.strength == 0.5
    assert "64 px" in (_module("ml.runtime.client").last_tile_choice() or "")  # the engine tiled as asked


def test_stylize_textures_engine_arguments_reach_the_engine(cli, empty_scene, tmp_path, submitted):
    textured_cube(tmp_path / "bark.png", 40, seed=3)
    assert cli.main(["stylize-textures", "--style", "pixel", "--device", "cpu", "--tile-size", "128",
                     "--preserve-colors", "--output-dir", str(tmp_path / "out")]) == 0
    options = submitted[0]["options"]
    assert options.device == "cpu" and options.tile_size == 128 and options.preserve_colors


def test_style_image_is_refused_where_it_does_not_belong(cli, empty_scene, capsys):
    assert cli.main(["stylize-textures", "--style", "adain"]) == 2
    assert "--style-image" in capsys.readouterr().err
    assert cli.main(["stylize-textures", "--style", "pixel", "--style-image", "x.png"]) == 2
    assert "does not take a style image" in capsys.readouterr().err


@pytest.fixture
def adain_mirror(addon, tmp_path, monkeypatch):
    """AdaIN's two files served from 127.0.0.1, pinned to this test's checkpoints."""
    parts = checkpoints.adain_states()
    files = {"decoder.pth": checkpoints.save(parts["decoder"], tmp_path / "decoder.pth"),
             "vgg_normalised.pth": checkpoints.save(parts["vgg"], tmp_path / "vgg_normalised.pth")}
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    bpy.context.preferences.system.use_online_access = True
    catalog = _module("ml.models.catalog")
    adain = catalog._BY_ID["adain"]
    pinned = tuple(replace(f, sha256=hashlib.sha256(Path(files[f.filename]).read_bytes()).hexdigest())
                   for f in adain.files)
    monkeypatch.setitem(catalog._BY_ID, "adain", replace(adain, files=pinned))
    try:
        with FileServer() as server:
            for name, path in files.items():
                server.files[f"/{name}"] = Path(path).read_bytes()
            prefs.mirror_url, prefs.model_folder = server.url, str(tmp_path / "models")
            yield server
    finally:
        prefs.mirror_url, prefs.model_folder = "", ""
        bpy.context.preferences.system.use_online_access = False


def test_adain_from_the_command_line_takes_a_style_image_file(cli, adain_mirror, empty_scene, tmp_path, submitted):
    assert cli.main(["models", "download", "adain"]) == 0
    cube = textured_cube(tmp_path / "bark.png", 40, seed=3)
    style = write_image(tmp_path / "style.png", photo_like(32, 32, seed=9))
    images_before = sorted(i.name for i in bpy.data.images)
    assert cli.main(["stylize-textures", "--style", "adain", "--style-image", str(style), "--style-weight", "0.5",
                     "--preserve-colors", "--output-dir", str(tmp_path / "out")]) == 0
    call = submitted[0]
    assert call["style_image"] is not None and call["style_image"].shape[:2] == (32, 32)
    assert call["style_weight"] == 0.5 and call["options"].preserve_colors
    assert cube.material_slots[0].material.name == "Bark.adain"
    # The style image file was read for the job only: the .blend gained the result, not the style image.
    assert sorted(i.name for i in bpy.data.images) == sorted([*images_before, "bark.png.adain"])


def test_import_photo_of_several_photos_is_one_job_with_a_rig_each(cli, empty_scene, tmp_path, capsys):
    photos = [write_image(tmp_path / f"{name}.png", photo_like(24, 32, seed=i)) for i, name in enumerate("ab")]
    assert cli.main(["import-photo", *map(str, photos), str(photos[0]), "--depth-model", "flat"]) == 0
    cameras = [bpy.data.objects[f"{name} Camera"] for name in "ab"]
    assert cameras[0].location.x != cameras[1].location.x  # side by side, not both at the origin
    assert bpy.context.scene.camera == cameras[0]  # the scene looks through the first photo's camera
    assert "more than once" in capsys.readouterr().err
    # A missing photo among others is left out and named; the others come in.
    before = sorted(o.name for o in bpy.data.objects)
    assert cli.main(["import-photo", str(photos[0]), str(tmp_path / "gone.png"), "--depth-model", "flat"]) == 0
    assert "left out: gone.png: no such file" in capsys.readouterr().err
    assert len(bpy.data.objects) == len(before) + 2  # one more rig: a camera and a mesh
    # With no photo left, nothing is made and the item fails.
    before = sorted(o.name for o in bpy.data.objects)
    code = cli.main(["import-photo", str(tmp_path / "gone.png"), "--depth-model", "flat"])
    assert code == 1 and sorted(o.name for o in bpy.data.objects) == before
    err = capsys.readouterr().err
    assert err.lower().count("no such photo") == 1 and "gone.png" in err
