"""Learn Style from Images in real Blender: a few training steps headless, the result a custom
style the menu lists; clear errors that add nothing; the CLI subcommand; the learned built-ins."""

import importlib
import json
from pathlib import Path

import bpy
import numpy as np
import pytest

from tests.blender.scenes import build_studio, pixels_of, select, stripes, write_image
from tests.blender.support import ADDON_MODULE
from tests.ml.synthetic import photo_like

PREVIEW = "Learn Style Preview"


@pytest.fixture
def inputs(tmp_path):
    styles = tmp_path / "styles"
    styles.mkdir()
    (tmp_path / "content").mkdir()
    write_image(styles / "a.png", stripes(96, 96))
    write_image(styles / "b.png", stripes(80, 80))
    content = tmp_path / "content"
    write_image(content / "photo.png", photo_like(96, 112, seed=1))
    return styles, content


def custom(addon, root: Path):
    return importlib.import_module(f"{ADDON_MODULE}.ml.models.custom").custom_styles(root)


def test_a_few_steps_headless_add_a_custom_style(addon, empty_scene, model_folder, inputs):
    styles, content = inputs
    images_before = set(bpy.data.images.keys())
    result = bpy.ops.restyle.learn_style(image_paths=str(styles), style_name="Stripes", preset="draft", steps=3,
                                         seed=1, content_folder=str(content))
    assert result == {"FINISHED"}
    entries = custom(addon, model_folder)
    assert [e.id for e in entries] == ["custom-stripes"]
    model = model_folder / entries[0].files[0].filename
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["steps"] == 3 and card["seed"] == 1 and card["feature_source"] == "random"
    assert [item["name"] for item in card["style_images"]] == ["a.png", "b.png"]
    # The style images were read without leaving datablocks; the preview image shows the result.
    assert set(bpy.data.images.keys()) - images_before == {PREVIEW}
    assert tuple(bpy.data.images[PREVIEW].size) == (112, 96)
    assert empty_scene.restyle.style == "custom-stripes"  # picked, ready for Stylize Textures
    # Removable like any custom style, its card with it.
    assert bpy.ops.restyle.remove_model(model_id="custom-stripes") == {"FINISHED"}
    assert custom(addon, model_folder) == [] and not model.exists() and not model.with_suffix(".json").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_paths": "/nowhere/style.png"}, "Style image not found"),
        ({"style_name": "  "}, "Give the style a name"),
        ({"image_paths": ""}, "Pick 1 to 30 style images"),
        ({"content_folder": "/nowhere/content"}, "Content folder not found"),
        ({"image_paths": "", "image_names": "No Such Image"}, "There is no image 'No Such Image'"),
    ],
    ids=["missing-image", "no-name", "no-images", "missing-content", "missing-datablock"],
)
def test_unusable_inputs_are_clear_errors_that_add_nothing(addon, empty_scene, model_folder, inputs, kwargs,
                                                            message):
    styles, content = inputs
    arguments = {"image_paths": str(styles), "style_name": "Stripes", "steps": 2, "content_folder": str(content),
                 **kwargs}
    images_before = set(bpy.data.images.keys())
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.restyle.learn_style(**arguments)
    assert custom(addon, model_folder) == []
    assert set(bpy.data.images.keys()) == images_before


def test_the_command_line_learns_a_style(addon, empty_scene, model_folder, inputs, capsys):
    styles, content = inputs
    cli = importlib.import_module(f"{ADDON_MODULE}.cli")
    code = cli.main(["learn-style", "--images", str(styles / "a.png"), str(styles / "b.png"), "--name", "CLI Stripes",
                     "--content", str(content), "--steps", "2", "--seed", "3"])
    assert code == 0, capsys.readouterr()
    assert [e.id for e in custom(addon, model_folder)] == ["custom-cli-stripes"]
    assert cli.main(["learn-style", "--images", "/nowhere", "--name", "X"]) == 2


def test_learned_built_in_styles_are_in_the_style_menu(addon, empty_scene):
    catalog = importlib.import_module(f"{ADDON_MODULE}.ml.models.catalog")
    learned = [e for e in catalog.ALL_STYLES if e.family == "learned"]
    assert len(learned) >= 3 and not any(e.needs_download for e in learned)
    for entry in learned:
        empty_scene.restyle.style = entry.id  # a valid menu item
        assert empty_scene.restyle.style == entry.id


@pytest.mark.parametrize("style", ["learned-halftone", "learned-woodcut", "learned-stained-glass"])
def test_stylize_textures_with_a_learned_built_in_style(addon, empty_scene, tmp_path, style):
    info = build_studio(tmp_path / "textures")
    select(info["objects"])
    cube = bpy.data.objects["CubeA"]
    original = cube.material_slots[0].material
    empty_scene.restyle.style = style
    assert bpy.ops.restyle.stylize_textures() == {"FINISHED"}
    copy = cube.material_slots[0].material
    assert copy.name == f"{original.name}.{style}" and copy["restyle_original"] == original
    styled = next(n.image for n in copy.node_tree.nodes if getattr(n, "image", None) is not None
                  and n.image.name not in {m.image.name for m in original.node_tree.nodes if getattr(m, "image", None)})
    before = next(n.image for n in original.node_tree.nodes if getattr(n, "image", None) is not None)
    assert float(np.abs(pixels_of(styled)[..., :3] - pixels_of(before)[..., :3]).mean()) > 0.02


def test_a_learned_style_runs_again_as_a_custom_style_from_the_command_line(addon, empty_scene, model_folder, inputs,
                                                                           tmp_path):
    styles, content = inputs
    cli = importlib.import_module(f"{ADDON_MODULE}.cli")
    assert cli.main(["learn-style", "--images", str(styles), "--name", "Reuse", "--content", str(content),
                     "--steps", "1"]) == 0
    info = build_studio(tmp_path / "textures")
    select(info["objects"])
    empty_scene.restyle.style = "custom-reuse"
    assert bpy.ops.restyle.stylize_textures() == {"FINISHED"}
    assert bpy.data.objects["CubeA"].material_slots[0].material.name.endswith(".custom-reuse")


def test_style_images_can_be_image_datablocks_of_the_file(addon, empty_scene, model_folder, inputs):
    styles, content = inputs
    image = bpy.data.images.load(str(styles / "a.png"))
    image.name = "Concept Art"
    result = bpy.ops.restyle.learn_style(image_names="Concept Art", style_name="From Datablock", steps=1,
                                         content_folder=str(content))
    assert result == {"FINISHED"}
    model = model_folder / custom(addon, model_folder)[0].files[0].filename
    assert [i["name"] for i in json.loads(model.with_suffix(".json").read_text())["style_images"]] == ["Concept Art"]
    assert "Concept Art" in bpy.data.images  # the user's image is left as it was


def test_default_content_is_the_selected_textures_and_blenders_hdris(addon, empty_scene, model_folder, inputs,
                                                                      tmp_path):
    styles, _ = inputs
    info = build_studio(tmp_path / "textures")
    select(info["objects"])
    result = bpy.ops.restyle.learn_style(image_paths=str(styles), style_name="Default Content", steps=1)
    assert result == {"FINISHED"}
    model = model_folder / custom(addon, model_folder)[0].files[0].filename
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["content_images"] >= 8 + 1  # Blender's eight HDRIs and at least one texture of the meshes
