"""ml/models/registry.py: one door for every model id (built-in, learned, downloaded, custom; style and depth),
answering with a typed descriptor, without private tables to monkeypatch."""

import json
from dataclasses import FrozenInstanceError

import pytest

from ml.errors import UnknownStyleError
from ml.models import catalog, registry
from ml.models.custom import CustomStyleMissing, add_custom
from ml.models.registry import ModelDescriptor, ModelSource
from ml.options import ModelFamily, ModelKind
from tests.ml import checkpoints

CATALOG_IDS = [entry.id for entry in registry.catalog_entries()]


@pytest.mark.parametrize("model_id", CATALOG_IDS)
def test_every_catalog_model_resolves_to_a_typed_descriptor(model_id):
    described = registry.describe(model_id)
    assert isinstance(described, ModelDescriptor) and described.id == model_id
    assert isinstance(described.kind, ModelKind) and isinstance(described.family, ModelFamily)
    assert isinstance(described.source, ModelSource)
    assert described.license and described.name
    # A model is either built by name (its network names a factory) or read from its files.
    assert bool(described.network) != bool(described.files), model_id
    if described.files:
        assert described.source is ModelSource.DOWNLOAD
        assert all(registry.architecture(arch).kind is described.kind for arch in described.architectures)
    with pytest.raises(FrozenInstanceError):
        described.name = "changed"  # type: ignore[misc]


def test_kinds_and_families_are_enums_not_strings_to_compare():
    assert {registry.describe(i).kind for i in ("toon", "learned-halftone", "adain", "cyclegan-monet")} == {
        ModelKind.STYLE}
    assert registry.describe("depth-builtin-fast").kind is ModelKind.DEPTH
    assert registry.describe("depth-builtin-fast").source is ModelSource.BUNDLED
    assert registry.describe("learned-woodcut").source is ModelSource.BUNDLED
    assert registry.describe("toon").source is ModelSource.PROCEDURAL
    assert all(isinstance(entry.family, ModelFamily) for entry in registry.catalog_entries())


@pytest.mark.parametrize(("model_id", "kind", "words"), [
    ("van-gogh-9000", None, "Unknown style 'van-gogh-9000' (known styles: toon"),
    ("van-gogh-9000", ModelKind.STYLE, "Unknown style 'van-gogh-9000'"),
    ("midas", ModelKind.DEPTH, "Unknown depth model 'midas' (known: depth-anything-v2-small"),
    ("depth-builtin-fast", ModelKind.STYLE, "'Built-in (fast)' is a depth model, not a style"),
    ("toon", ModelKind.DEPTH, "'Toon' is a style, not a depth model"),
    ("custom-long-gone", None, "The custom style 'custom-long-gone' is not installed any more"),
])
def test_an_unknown_or_wrong_kind_of_id_is_a_clear_error(model_id, kind, words, tmp_path):
    with pytest.raises(UnknownStyleError) as caught:
        registry.describe(model_id, tmp_path, kind)
    assert words in str(caught.value)


def test_an_unknown_architecture_names_the_known_ones():
    with pytest.raises(UnknownStyleError, match="Unknown architecture 'resnet9000' .known: animegan2"):
        registry.architecture("resnet9000")


def test_custom_styles_and_depth_models_resolve_through_the_same_door(tmp_path):
    style_file = checkpoints.save(checkpoints.animegan2_state(), tmp_path / "my_anime.pth")
    depth_file = tmp_path / "room.pth"
    depth_file.write_bytes(b"weights")  # add_custom copies; the worker checked the file before
    root = tmp_path / "store"
    style_entry = add_custom(root, style_file, "animegan2", "My Anime")
    depth_entry = add_custom(root, depth_file, "depth_anything_v2_vits", "Room", max_depth=20.0)

    style = registry.style(style_entry.id, root)
    assert (style.kind, style.family, style.source) == (ModelKind.STYLE, ModelFamily.CUSTOM, ModelSource.USER_FILE)
    depth = registry.depth_model(depth_entry.id, root)
    assert (depth.kind, depth.family, depth.max_depth) == (ModelKind.DEPTH, ModelFamily.DEPTH, 20.0)
    with pytest.raises(UnknownStyleError, match="is a depth model, not a style"):
        registry.style(depth_entry.id, root)
    # The unknown-id message lists the user's own models too.
    with pytest.raises(UnknownStyleError, match=depth_entry.id):
        registry.depth_model("midas", root)

    (root / depth_entry.files[0].filename).unlink()
    with pytest.raises(CustomStyleMissing, match="custom depth model 'Room' is missing"):
        registry.depth_model(depth_entry.id, root)


def test_a_built_in_style_is_built_with_its_engine_facts():
    loaded = registry.describe("pixel").build()
    assert loaded.descriptor.id == "pixel" and loaded.architecture == "styles.pixel:PixelStyle"
    assert loaded.align == loaded.network.align > 1  # pixel art tiles on its block grid
    assert loaded.halo == loaded.network.halo


def test_a_learned_style_is_built_from_its_bundled_weights():
    loaded = registry.describe("learned-halftone").build()
    assert loaded.reduced_precision_ok is loaded.network.reduced_precision_ok
    assert loaded.halo > 0 and loaded.align >= 1


def test_a_downloaded_style_is_built_from_its_files_and_detected_by_its_keys(tmp_path):
    path = checkpoints.save(checkpoints.animegan2_state(), tmp_path / "whatever_name.pth")
    loaded = registry.describe("animegan2-paprika").build({"model": path})
    assert loaded.architecture == "animegan2" and loaded.halo == 64 and loaded.channels_last


def test_a_model_that_needs_files_says_so_when_built_without_them():
    with pytest.raises(UnknownStyleError, match="needs its model file"):
        registry.describe("cyclegan-monet").build()


def test_the_built_in_depth_model_needs_no_file():
    loaded = registry.depth_for_files({}, None).build()
    assert loaded.descriptor.id == registry.BUILTIN_DEPTH and type(loaded.network).__name__ == "FastDepth"


def test_the_worker_side_treats_an_unlisted_id_with_files_as_a_custom_style(tmp_path):
    described = registry.style_for_files("custom-x", {"model": str(tmp_path / "x.pth")})
    assert (described.kind, described.family, described.source) == (
        ModelKind.STYLE, ModelFamily.CUSTOM, ModelSource.USER_FILE)
    with pytest.raises(UnknownStyleError, match="Unknown style 'nope'"):
        registry.style_for_files("nope", {})


def test_family_titles_and_menu_order_are_unchanged():
    # Saved .blend files store style numbers by catalog order; the menu groups by family in this order.
    assert list(catalog.FAMILY_TITLES) == ["builtin", "learned", "gan", "arbitrary", "custom"]
    assert json.dumps(catalog.FAMILY_TITLES["learned"]) == '"Built-in (Learned)"'
    assert CATALOG_IDS[:5] == ["toon", "oil", "watercolor", "pencil", "pixel"]


def test_the_registry_never_imports_torch():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    script = (f"import sys; sys.path.insert(0, {str(root)!r}); import ml.models.registry; "
              "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"
