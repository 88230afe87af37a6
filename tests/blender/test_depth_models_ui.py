"""Depth models in real Blender: the Depth Models sub-panel, Add Custom Style from File with a Depth
Anything V2 checkpoint of any hash, its place in Import Photo's Depth Model menu, a photo imported
with it, and its removal."""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import replace

import bpy
import numpy as np
import pytest
import torch
from PIL import Image

from tests.blender.support import ADDON_MODULE
from tests.ml import checkpoints
from tests.ml.synthetic import photo_like


class _Recorder:
    """A stand-in for UILayout that records labels and operator buttons (with their model_id)."""

    def __init__(self, log: list) -> None:
        self.log, self.enabled, self.scale_y = log, True, 1.0

    def box(self) -> _Recorder:
        return self

    def column(self, align: bool = False) -> _Recorder:
        return self

    def row(self, align: bool = False) -> _Recorder:
        return self

    def label(self, text: str = "", icon: str = "NONE") -> None:
        self.log.append(("label", text))

    def separator(self) -> None:
        pass

    def operator(self, idname: str, text: str = "", icon: str = "NONE") -> object:
        button = type("Button", (), {})()
        self.log.append(("operator", idname, button))
        return button


def _panel_log(context) -> list:
    module = importlib.import_module(f"{ADDON_MODULE}.panels.depth_models")
    log: list = []
    module.draw_depth_models(_Recorder(log), context)
    return log


def _buttons(log: list, idname: str) -> list[str]:
    return [getattr(entry[2], "model_id", "") for entry in log if entry[0] == "operator" and entry[1] == idname]


def _texts(log: list) -> str:
    return " | ".join(entry[1] for entry in log if entry[0] == "label")


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """A Small of the published layout under DistributedDataParallel's prefix: no published hash."""
    path = tmp_path_factory.mktemp("dav2") / "depth_anything_v2_vits_finetuned.pth"
    state = checkpoints.depth_anything_state("vits", seed=11)
    torch.save({"model": {"module." + k: v for k, v in state.items()}, "epoch": torch.tensor(9.0)}, path)
    return path


def _photo(path, size=(56, 42)):
    Image.fromarray((photo_like(size[1], size[0], seed=5) * 255).astype(np.uint8)).save(path)
    return path


def _menu_ids() -> list[str]:
    photo = importlib.import_module(f"{ADDON_MODULE}.operators.photo")
    return [item[0] for item in photo.depth_model_items(None, bpy.context)]


def test_the_sub_panel_is_registered_under_the_restyle_panel(addon):
    panel = getattr(bpy.types, "VIEW3D_PT_restyle_depth_models", None)
    assert panel is not None and panel.bl_parent_id == "VIEW3D_PT_restyle"


def test_the_panel_lists_every_depth_model_with_size_license_and_state(model_folder):
    bpy.context.preferences.system.use_online_access = True
    try:
        log = _panel_log(bpy.context)
    finally:
        bpy.context.preferences.system.use_online_access = False
    texts = _texts(log)
    for name in ("Depth Anything V2 Small", "Depth Anything V2 Base", "Built-in (fast)"):
        assert name in texts
    assert "99.2 MB" in texts and "Apache-2.0" in texts and "CC-BY-NC-4.0" in texts
    assert "Non-commercial use only" in texts and "Metric, up to 80 m" in texts
    assert set(_buttons(log, "restyle.download_model")) == {
        "depth-anything-v2-small", "depth-anything-v2-metric-vkitti-small", "depth-anything-v2-base"}
    assert _buttons(log, "restyle.remove_model") == []
    assert any(entry[0] == "operator" and entry[1] == "restyle.install_model_file" for entry in log)


def test_a_finetuned_file_is_added_chosen_used_and_removed(model_folder, finetuned, empty_scene, tmp_path, capfd):
    result = bpy.ops.restyle.install_model_file(filepath=str(finetuned), name="Room Finetune",
                                                depth_output="RELATIVE")
    assert result == {"FINISHED"}
    assert "Added the depth model 'Room Finetune' (Depth Anything V2 Small, relative depth" in capfd.readouterr().out
    model_id = "custom-depth-room-finetune"
    assert model_id in _menu_ids()
    assert bpy.context.scene.restyle.style == "toon"  # not made the current style
    style_ids = [item[0] for item in importlib.import_module(f"{ADDON_MODULE}.properties").style_items(
        None, bpy.context)]
    assert model_id not in style_ids

    log = _panel_log(bpy.context)
    assert "Room Finetune" in _texts(log) and model_id in _buttons(log, "restyle.remove_model")

    photo = _photo(tmp_path / "room.png")
    assert bpy.ops.restyle.import_photo_mesh(filepath=str(photo), depth_model=model_id, near=1.0, depth_range=4.0,
                                             cut_threshold=10.0) == {"FINISHED"}
    assert "with Room Finetune" in capfd.readouterr().out
    mesh = next(o for o in bpy.data.collections["room"].objects if o.type == "MESH")
    local_z = np.array([v.co.z for v in mesh.data.vertices])
    assert np.ptp(local_z) > 0.5  # relief, not a plane

    stored = model_folder / "custom" / f"{model_id}.pth"
    assert stored.is_file() and finetuned.is_file()
    assert bpy.ops.restyle.remove_model(model_id=model_id) == {"FINISHED"}
    assert not stored.exists() and finetuned.is_file()  # the user's own file is untouched
    assert model_id not in _menu_ids()


def test_a_metric_file_named_as_upstream_names_it_is_metric(model_folder, finetuned, tmp_path, capfd):
    source = tmp_path / "depth_anything_v2_metric_hypersim_vits.pth"
    source.write_bytes(finetuned.read_bytes())
    assert bpy.ops.restyle.install_model_file(filepath=str(source)) == {"FINISHED"}
    assert "metric, up to 20 m" in capfd.readouterr().out
    entry = importlib.import_module(f"{ADDON_MODULE}.ml.models.custom").custom_depth_models(model_folder)[0]
    assert entry.max_depth == 20.0


def test_a_file_with_a_published_hash_installs_as_its_catalog_entry(model_folder, finetuned, monkeypatch):
    catalog = importlib.import_module(f"{ADDON_MODULE}.ml.models.catalog")
    models = importlib.import_module(f"{ADDON_MODULE}.jobs.models")
    source = finetuned
    entry = catalog._BY_ID["depth-anything-v2-small"]
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    pinned = replace(entry, files=(replace(entry.files[0], sha256=digest),))
    monkeypatch.setattr(models, "DEPTH_MODELS", tuple(pinned if e.id == entry.id else e for e in catalog.DEPTH_MODELS))
    assert bpy.ops.restyle.install_model_file(filepath=str(source)) == {"FINISHED"}
    assert (model_folder / "depth_anything_v2_vits.pth").is_file()
    assert not (model_folder / "custom").exists()


def test_without_any_depth_model_the_warning_names_what_exists(model_folder, empty_scene, tmp_path, capfd,
                                                               monkeypatch):
    photo = importlib.import_module(f"{ADDON_MODULE}.jobs.photo")
    monkeypatch.setattr(photo, "builtin_depth_available", lambda: False)  # an installation that lost it
    assert bpy.ops.restyle.import_photo_mesh(filepath=str(_photo(tmp_path / "plain.png"))) == {"FINISHED"}
    out = capfd.readouterr().out
    assert "placed on flat planes" in out and "under Depth Models in the Restyle panel" in out
    assert "Add Custom Style from File" in out  # the button's real label


def test_a_custom_depth_model_whose_file_is_gone_imports_nothing_and_says_where_it_was(
        model_folder, finetuned, empty_scene, tmp_path):
    assert bpy.ops.restyle.install_model_file(filepath=str(finetuned), name="Gone") == {"FINISHED"}
    stored = model_folder / "custom" / "custom-depth-gone.pth"
    stored.unlink()
    before = (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.images), len(bpy.data.collections))
    with pytest.raises(RuntimeError, match=f"depth model 'Gone' is missing: it was at {stored}"):
        bpy.ops.restyle.import_photo_mesh(filepath=str(_photo(tmp_path / "x.png")), depth_model="custom-depth-gone")
    assert before == (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.images), len(bpy.data.collections))
    assert bpy.ops.restyle.remove_model(model_id="custom-depth-gone") == {"FINISHED"}


def test_the_cli_lists_and_uses_a_custom_depth_model(model_folder, finetuned, empty_scene, tmp_path, capfd):
    cli = importlib.import_module(f"{ADDON_MODULE}.cli")
    assert cli.main(["models", "install", str(finetuned), "--name", "Street Finetune"]) == 0
    model_id = "custom-depth-street-finetune"
    capfd.readouterr()
    assert cli.main(["models", "list"]) == 0
    assert model_id in capfd.readouterr().out
    photo = _photo(tmp_path / "street.png")
    saved = tmp_path / "street.blend"
    assert cli.main(["import-photo", str(photo), "--depth-model", model_id, "--save-as", str(saved)]) == 0
    assert "with Street Finetune" in capfd.readouterr().out and saved.is_file()
    assert cli.main(["models", "remove", model_id]) == 0


def _depth_menu(self, context):
    return importlib.import_module(f"{ADDON_MODULE}.operators.photo").depth_model_items(self, context)


class _Remembered(bpy.types.PropertyGroup):
    """Holds a Depth Model choice the way Blender stores remembered operator settings: as the number."""


# Set here, not as an annotation: this module's string annotations are not evaluated in its namespace.
_Remembered.__annotations__ = {"depth_model": bpy.props.EnumProperty(items=_depth_menu)}


def test_a_remembered_depth_model_stays_the_same_when_models_are_added_or_removed(model_folder, finetuned):
    bpy.utils.register_class(_Remembered)
    bpy.types.WindowManager.restyle_test_depth = bpy.props.PointerProperty(type=_Remembered)
    try:
        remembered = bpy.context.window_manager.restyle_test_depth
        remembered.depth_model = "FLAT"
        assert bpy.ops.restyle.install_model_file(filepath=str(finetuned), name="Added Later") == {"FINISHED"}
        assert "custom-depth-added-later" in _menu_ids()
        assert remembered.depth_model == "FLAT"  # numbered by position, it read 'custom-depth-added-later'
        remembered.depth_model = "custom-depth-added-later"
        source = finetuned.with_name("second.pth")
        source.write_bytes(finetuned.read_bytes())
        assert bpy.ops.restyle.install_model_file(filepath=str(source), name="Aaa First") == {"FINISHED"}
        assert remembered.depth_model == "custom-depth-added-later"
        assert bpy.ops.restyle.remove_model(model_id="custom-depth-aaa-first") == {"FINISHED"}
        assert bpy.ops.restyle.remove_model(model_id="custom-depth-added-later") == {"FINISHED"}
        numbers = [item[4] for item in importlib.import_module(
            f"{ADDON_MODULE}.operators.photo").depth_model_items(None, bpy.context)]
        assert len(numbers) == len(set(numbers))
    finally:
        del bpy.types.WindowManager.restyle_test_depth
        bpy.utils.unregister_class(_Remembered)


def test_the_cli_installs_a_metric_file_as_metric_and_prints_the_id_to_use(model_folder, finetuned, tmp_path, capfd):
    cli = importlib.import_module(f"{ADDON_MODULE}.cli")
    source = tmp_path / "my_outdoor_finetune.pth"  # nothing in the name says metric
    source.write_bytes(finetuned.read_bytes())
    capfd.readouterr()
    assert cli.main(["models", "install", str(source), "--name", "Mon modèle été",
                     "--depth-output", "metric_outdoor"]) == 0
    out = capfd.readouterr().out
    entry = importlib.import_module(f"{ADDON_MODULE}.ml.models.custom").custom_depth_models(model_folder)[0]
    assert entry.max_depth == 80.0 and "metric, up to 80 m" in out
    assert f"id: {entry.id}" in out.splitlines()
    assert cli.main(["models", "install", str(source), "--depth-output", "sideways"]) == 2
    assert cli.main(["models", "remove", entry.id]) == 0


def test_an_explicit_depth_model_not_downloaded_names_the_command_line_way(model_folder, empty_scene, tmp_path,
                                                                            capfd):
    cli = importlib.import_module(f"{ADDON_MODULE}.cli")
    capfd.readouterr()
    photo = _photo(tmp_path / "p.png")
    assert cli.main(["import-photo", str(photo), "--depth-model", "depth-anything-v2-small"]) == 1
    err = capfd.readouterr().err
    assert "restyle models download depth-anything-v2-small" in err and "restyle models install FILE" in err
    assert not [c for c in bpy.data.collections if c.name.startswith("p")]
