"""Published-layout checkpoints served from 127.0.0.1 through the mirror preference,
downloaded by the extension, verified, loaded by the worker, and used by Stylize Textures."""

import hashlib
import importlib
from dataclasses import replace
from pathlib import Path

import bpy
import numpy as np
import pytest

from tests.blender import scenes
from tests.blender.scenes import pixels_of, write_image
from tests.blender.support import ADDON_MODULE
from tests.ml import checkpoints
from tests.ml.http_server import FileServer
from tests.ml.synthetic import photo_like


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("upstream")
    parts = checkpoints.adain_states()
    return {
        "face_paint_512_v1.pt": checkpoints.save(checkpoints.animegan2_state(), folder / "face_paint_512_v1.pt"),
        "face_paint_512_v2.pt": checkpoints.save(checkpoints.animegan2_state(seed=2), folder / "face_paint_512_v2.pt"),
        "style_monet.pth": checkpoints.save(checkpoints.cyclegan_state(blocks=9, legacy=True), folder / "monet.pth"),
        "saved_models.zip": checkpoints.fast_style_zip(folder / "saved_models.zip"),
        "decoder.pth": checkpoints.save(parts["decoder"], folder / "decoder.pth"),
        "vgg_normalised.pth": checkpoints.save(parts["vgg"], folder / "vgg_normalised.pth"),
    }


@pytest.fixture
def mirror(addon, model_files, tmp_path, monkeypatch):
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    bpy.context.preferences.system.use_online_access = True
    with FileServer() as server:
        for name, path in model_files.items():
            server.files[f"/{name}"] = Path(path).read_bytes()
        prefs.mirror_url, prefs.model_folder = server.url, str(tmp_path / "models")
        # AdaIN's published files are pinned; pin them to the test's files instead.
        catalog = importlib.import_module(f"{ADDON_MODULE}.ml.models.catalog")
        adain = catalog._BY_ID["adain"]
        pinned = tuple(replace(f, sha256=hashlib.sha256(Path(model_files[f.filename]).read_bytes()).hexdigest())
                       for f in adain.files)
        monkeypatch.setitem(catalog._BY_ID, "adain", replace(adain, files=pinned))
        yield server
        prefs.mirror_url, prefs.model_folder = "", ""
    bpy.context.preferences.system.use_online_access = False


@pytest.fixture
def textured_cube(empty_scene, tmp_path):
    return scenes.textured_cube(tmp_path / "bark.png", 64, seed=5)


def stylize(style: str) -> np.ndarray:
    bpy.context.scene.restyle.style = style
    assert bpy.ops.restyle.stylize_textures() == {"FINISHED"}
    return pixels_of(bpy.data.images[f"bark.png.{style}"])


@pytest.mark.parametrize("style", ["animegan2-face-paint-v1", "cyclegan-monet", "fast-style-candy", "adain"])
def test_download_then_stylize_for_every_architecture(mirror, textured_cube, style):
    if style == "adain":
        style_image = bpy.data.images.load(str(write_image(Path(bpy.app.tempdir or "/tmp") / "style_rgba.png",
                                                           photo_like(40, 40, seed=8))))
        bpy.context.scene.restyle.style_image = style_image
    with pytest.raises(RuntimeError, match="not downloaded yet: click Download"):
        stylize(style)
    assert bpy.ops.restyle.download_model(model_id=style) == {"FINISHED"}
    restyled = stylize(style)
    original = pixels_of(bpy.data.images["bark.png"])
    assert np.abs(restyled[..., :3] - original[..., :3]).mean() > 0.01
    assert textured_cube.material_slots[0].material.name == f"Bark.{style}"


def test_offline_install_from_file_gives_the_same_result(mirror, textured_cube, model_files):
    assert bpy.ops.restyle.download_model(model_id="cyclegan-monet") == {"FINISHED"}
    downloaded = stylize("cyclegan-monet")
    bpy.context.preferences.system.use_online_access = False
    with pytest.raises(RuntimeError, match="Online access is off"):
        bpy.ops.restyle.download_model(model_id="animegan2-face-paint-v1")
    assert bpy.ops.restyle.install_model_file(filepath=str(model_files["style_monet.pth"]), name="My Monet") == {
        "FINISHED"}
    assert bpy.context.scene.restyle.style == "custom-my-monet"
    installed = stylize("custom-my-monet")
    np.testing.assert_allclose(installed, downloaded, atol=1e-6)


def test_tampered_download_is_refused_and_removed(mirror, textured_cube, tmp_path):
    with pytest.raises(RuntimeError, match="does not match the published checksum"):
        bpy.ops.restyle.download_model(model_id="animegan2-face-paint-v2")
    assert not list((tmp_path / "models").glob("face_paint_512_v2*"))


def test_remove_frees_the_files(mirror, tmp_path):
    bpy.ops.restyle.download_model(model_id="animegan2-face-paint-v1")
    assert (tmp_path / "models" / "face_paint_512_v1.pt").exists()
    assert bpy.ops.restyle.remove_model(model_id="animegan2-face-paint-v1") == {"FINISHED"}
    assert not (tmp_path / "models" / "face_paint_512_v1.pt").exists()


def test_bad_files_are_not_added(mirror, empty_scene, tmp_path):
    unknown = checkpoints.save({"encoder.weight": __import__("torch").zeros(3, 3)}, tmp_path / "mystery.pth")
    with pytest.raises(RuntimeError, match="Tried: AnimeGANv2"):
        bpy.ops.restyle.install_model_file(filepath=str(unknown))
    evil = tmp_path / "evil.pth"
    evil.write_bytes((Path(__file__).parent / "data_evil_pickle.bin").read_bytes())
    with pytest.raises(RuntimeError, match="could run code"):
        bpy.ops.restyle.install_model_file(filepath=str(evil))
    assert not (tmp_path / "models" / "custom").exists() or not any((tmp_path / "models" / "custom").iterdir())


def test_style_menu_groups_styles_and_marks_non_commercial(addon):
    properties = importlib.import_module(f"{ADDON_MODULE}.properties")
    items = properties.style_items(None, bpy.context)
    headings = [name for ident, name, *_ in items if ident == ""]
    assert headings[:3] == ["Built-in", "Downloaded GAN Styles", "Arbitrary (Style Image)"]
    labels = {ident: name for ident, name, *_ in items}
    assert "non-commercial" in labels["animegan2-paprika"].lower()
    assert "non-commercial" not in labels["cyclegan-monet"].lower()
    assert len({number for ident, *_, number in items}) == len(items)  # stable, unique enum numbers
