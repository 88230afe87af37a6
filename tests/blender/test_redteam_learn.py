"""Red-team cases of Learn Style from Images in real Blender: a long name keeps the finished
training, Ctrl+C still writes a report that lists the item, a failed run never removes an earlier
run's preview, a wide style image is accepted, a second style of the same name reads differently,
and each unusable input is named in its message (the command line refuses it before any work)."""

import importlib
import json
from pathlib import Path

import bpy
import numpy as np
import pytest

from tests.blender.scenes import stripes, write_image
from tests.blender.support import ADDON_MODULE
from tests.ml.synthetic import photo_like

PREVIEW = "Learn Style Preview"
TINY = {"preset": "draft", "steps": 1, "seed": 1}


@pytest.fixture
def inputs(tmp_path):
    styles, content = tmp_path / "styles", tmp_path / "content"
    styles.mkdir()
    content.mkdir()
    write_image(styles / "a.png", stripes(64, 64))
    write_image(content / "photo.png", photo_like(64, 72, seed=1))
    return styles, content


def module(name: str):
    return importlib.import_module(f"{ADDON_MODULE}.{name}")


def customs(root: Path):
    return module("ml.models.custom").custom_styles(root)


def learn(**kwargs):
    return bpy.ops.restyle.learn_style(**{"style_name": "Stripes", **TINY, **kwargs})


# -- L1: a long name ---------------------------------------------------------------------------


def test_a_300_letter_name_keeps_the_finished_training(addon, empty_scene, model_folder, inputs, capsys):
    styles, content = inputs
    cli = module("cli")
    name = "A" * 300
    code = cli.main(["learn-style", "--images", str(styles), "--content", str(content), "--steps", "1",
                     "--preset", "draft", "--name", name])
    assert code == 0, capsys.readouterr().err  # was: File name too long (...safetensors.copying)
    [entry] = customs(model_folder)
    assert entry.name == name and len(entry.id) <= len("custom-") + 64
    assert (model_folder / entry.files[0].filename).is_file()
    assert (model_folder / entry.files[0].filename).with_suffix(".json").is_file()  # its card too


def test_a_name_of_two_lines_is_refused_before_training(addon, empty_scene, model_folder, inputs, capsys):
    styles, content = inputs
    with pytest.raises(RuntimeError, match="line break or control character"):
        learn(image_paths=str(styles), content_folder=str(content), style_name="line1\nline2")
    code = module("cli").main(["learn-style", "--images", str(styles), "--name", "a\nb"])
    assert code == 2 and "argument --name" in capsys.readouterr().err
    assert customs(model_folder) == []


# -- L2: Ctrl+C on the command line ------------------------------------------------------------


@pytest.mark.parametrize("command", ["learn-style", "models remove", "models install", "models download"])
def test_ctrl_c_lists_the_one_item_as_interrupted_in_the_report(addon, empty_scene, model_folder, inputs, tmp_path,
                                                                 monkeypatch, command):
    cli = module("cli")
    styles, _content = inputs

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"x")
    arguments = {
        "learn-style": (["learn-style", "--images", str(styles), "--name", "Interrupted"], "learn_style",
                        "Interrupted"),
        "models remove": (["models", "remove", "custom-gone"], "remove_model", "custom-gone"),
        "models install": (["models", "install", str(weights)], "add_model_file", str(weights)),
        "models download": (["models", "download", "adain"], "download_model", "adain"),
    }
    argv, function, subject = arguments[command]
    monkeypatch.setattr(cli, function, interrupted)
    report = tmp_path / "r.json"
    assert cli.main([*argv, "--report", str(report)]) == 1
    data = json.loads(report.read_text())
    assert [(i["input"], i["status"], i["error"]) for i in data["items"]] == [(subject, "failed", "interrupted")]
    assert data["summary"] == {"done": 0, "failed": 1}


# -- L3: an earlier run's preview ---------------------------------------------------------------


def test_a_failed_run_keeps_an_earlier_runs_preview_that_a_material_uses(addon, empty_scene, model_folder, inputs,
                                                                         monkeypatch):
    styles, content = inputs
    assert learn(image_paths=str(styles), content_folder=str(content), style_name="A") == {"FINISHED"}
    earlier = bpy.data.images[PREVIEW]
    before = np.array(earlier.pixels[:])
    material = bpy.data.materials.new("UsesPreview")
    if material.node_tree is None:  # Blender 4.x makes the node tree on request only
        material.use_nodes = True
    node = material.node_tree.nodes.new("ShaderNodeTexImage")
    node.image = earlier
    jobs_learn = module("jobs.learn")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(jobs_learn, "add_custom", full_disk)  # fails after the training, at the very end
    with pytest.raises(RuntimeError, match="No space left"):
        learn(image_paths=str(styles), content_folder=str(content), style_name="B", seed=2)
    assert node.image is not None and node.image.name == PREVIEW  # was removed with the failed run
    assert np.array_equal(np.array(bpy.data.images[PREVIEW].pixels[:]), before)  # and not drawn over
    assert [i.name for i in bpy.data.images] == [PREVIEW]  # the failed run's own preview is gone


def test_successful_runs_keep_one_preview_unless_a_material_shows_an_earlier_one(addon, empty_scene, model_folder,
                                                                               inputs):
    """Each run made one more preview image (.001, .002 ...): an unused earlier one now goes, one a
    material shows stays, and the panel names the newest."""
    learn_job = importlib.import_module(f"{ADDON_MODULE}.jobs.learn")
    styles, content = inputs
    assert learn(image_paths=str(styles), content_folder=str(content), style_name="A") == {"FINISHED"}
    first = bytes(np.asarray(bpy.data.images[PREVIEW].pixels[:64], np.float32))
    assert learn(image_paths=str(styles), content_folder=str(content), style_name="B", seed=2) == {"FINISHED"}
    assert [i.name for i in bpy.data.images] == [PREVIEW] and learn_job.newest_preview().name == PREVIEW
    assert bytes(np.asarray(bpy.data.images[PREVIEW].pixels[:64], np.float32)) != first  # B's, not A's
    shown = bpy.data.materials.new("ShowsPreview")
    shown.use_fake_user = True
    if shown.node_tree is None:  # 4.2 and 4.5; 5.0 gives every material nodes
        shown.use_nodes = True
    shown.node_tree.nodes.new("ShaderNodeTexImage").image = bpy.data.images[PREVIEW]
    assert learn(image_paths=str(styles), content_folder=str(content), style_name="C", seed=3) == {"FINISHED"}
    assert sorted(i.name for i in bpy.data.images) == [PREVIEW, PREVIEW + ".001"]
    assert learn_job.newest_preview().name == PREVIEW + ".001"


# -- L4: a wide style image ---------------------------------------------------------------------


def test_a_wide_style_image_is_accepted(addon, empty_scene, model_folder, inputs, tmp_path):
    _styles, content = inputs
    wide = tmp_path / "wide"
    wide.mkdir()
    write_image(wide / "pano.png", stripes(64, 4096))  # reduced as a whole it would be 1024 x 16
    assert learn(image_paths=str(wide), content_folder=str(content)) == {"FINISHED"}
    assert [e.id for e in customs(model_folder)] == ["custom-stripes"]


def test_a_too_small_image_is_named_at_its_real_size(addon, empty_scene, model_folder, inputs, tmp_path):
    _styles, content = inputs
    narrow = tmp_path / "narrow"
    narrow.mkdir()
    write_image(narrow / "strip.png", stripes(16, 2048))
    with pytest.raises(RuntimeError, match=r"strip\.png is 2048x16 pixels: at least 32"):
        learn(image_paths=str(narrow), content_folder=str(content))
    assert customs(model_folder) == [] and len(bpy.data.images) == 0


def test_reducing_keeps_the_short_side_usable(addon):
    smaller = module("jobs.learn")._smaller
    assert smaller(np.zeros((64, 8192, 3), np.float32)).shape == (32, 4096, 3)
    assert smaller(np.zeros((2048, 2048, 4), np.float32)).shape == (1024, 1024, 3)
    assert smaller(np.zeros((40, 40, 3), np.float32)).shape == (40, 40, 3)


# -- L5: the same name twice ----------------------------------------------------------------------


def test_learning_the_same_name_twice_gives_two_names_and_says_how_it_was_learned(addon, empty_scene, model_folder,
                                                                                   inputs):
    styles, content = inputs
    assert learn(image_paths=str(styles), content_folder=str(content)) == {"FINISHED"}
    assert learn(image_paths=str(styles), content_folder=str(content), seed=2) == {"FINISHED"}
    entries = customs(model_folder)
    assert [(e.id, e.name) for e in entries] == [("custom-stripes", "Stripes"), ("custom-stripes-2", "Stripes 2")]
    assert all("learned from 1 image" in e.description and "style.safetensors" not in e.description
               for e in entries)


def test_the_command_line_says_the_name_a_repeated_style_got(addon, empty_scene, model_folder, inputs, capsys):
    styles, content = inputs
    cli = module("cli")
    argv = ["learn-style", "--images", str(styles), "--content", str(content), "--steps", "1", "--preset", "draft",
            "--name", "Stripes"]
    assert cli.main(argv) == 0 and cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "Learned 'Stripes 2' in 1 steps: custom-stripes-2" in out


# -- L6: messages that name what is wrong ----------------------------------------------------------


def test_each_unusable_input_is_named(addon, empty_scene, model_folder, inputs, tmp_path):
    styles, content = inputs
    empty = tmp_path / "empty"
    empty.mkdir()
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    write_image(tiny / "small.png", photo_like(16, 16, seed=2))
    with pytest.raises(RuntimeError, match=f"style image folder {empty} holds no images"):
        learn(image_paths=str(empty), content_folder=str(content))
    with pytest.raises(RuntimeError, match="photo.png is a file, not a folder"):
        learn(image_paths=str(styles), content_folder=str(content / "photo.png"))
    with pytest.raises(RuntimeError, match=f"content folder {empty} holds no images"):
        learn(image_paths=str(styles), content_folder=str(empty))
    with pytest.raises(RuntimeError, match=r"content image .*small\.png is 16x16 pixels"):
        learn(image_paths=str(styles), content_folder=str(tiny))
    assert customs(model_folder) == [] and len(bpy.data.images) == 0


@pytest.mark.parametrize(("which", "expected"), [
    ("images-empty", "argument --images: the folder '{empty}' holds no images"),
    ("content-file", "argument --content: '{photo}' is a file, not a folder"),
    ("content-empty", "argument --content: the folder '{empty}' holds no images"),
])
def test_the_command_line_refuses_an_unusable_folder_before_any_work(addon, empty_scene, model_folder, inputs,
                                                                     tmp_path, capsys, which, expected):
    styles, content = inputs
    empty = tmp_path / "empty"
    empty.mkdir()
    photo = content / "photo.png"
    arguments = {"images-empty": [str(empty), str(content)], "content-file": [str(styles), str(photo)],
                 "content-empty": [str(styles), str(empty)]}[which]
    code = module("cli").main(["learn-style", "--images", arguments[0], "--content", arguments[1], "--name", "X"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "restyle learn-style: " + expected.format(empty=empty, photo=photo) in err
    assert customs(model_folder) == []
