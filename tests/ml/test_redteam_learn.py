"""Red-team cases of the custom model list that Learn Style (and Add Custom Style from File) rely on:
ids that are always a valid file name, menu names that never read the same twice, a tooltip that
says where a style came from, a name refused before the work and not after it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.errors import RestyleError
from ml.models.custom import FOLDER, MAX_SLUG, add_custom, check_name, custom_styles, read_list


def model_file(tmp_path: Path, name: str = "style.safetensors") -> Path:
    path = tmp_path / name
    path.write_bytes(b"weights")  # add_custom copies the file; the worker checked it before
    return path


@pytest.mark.parametrize("name", ["A" * 300, "é" * 250, "Long " * 80 + "End"], ids=["300-letters", "250-accents",
                                                                                    "many-words"])
def test_a_very_long_name_is_added_under_a_short_id_and_keeps_its_name(tmp_path, name):
    root = tmp_path / "models"
    source = model_file(tmp_path)
    first = add_custom(root, source, "transformer_net", name)
    second = add_custom(root, source, "transformer_net", name)  # with a collision number too
    for entry in (first, second):
        slug = entry.id.removeprefix("custom-").removesuffix("-2")
        assert len(slug) <= MAX_SLUG and not slug.endswith("-")
        assert (root / entry.files[0].filename).is_file()
        assert len((root / entry.files[0].filename).name.encode()) < 255
    assert first.name == name.strip() and second.id == first.id + "-2"


def test_a_long_depth_model_name_is_capped_too(tmp_path):
    root = tmp_path / "models"
    entry = add_custom(root, model_file(tmp_path, "depth.pth"), "depth_anything_v2_vits", "D" * 400)
    assert entry.id.startswith("custom-depth-") and len(entry.id) <= len("custom-depth-") + MAX_SLUG
    assert (root / FOLDER / f"{entry.id}.pth").is_file()


@pytest.mark.parametrize(("name", "expected"), [
    ("Stripes", "Stripes 2"),
    ("stripes ", "stripes 2"),  # the same name for the user: another case, a trailing space
    ("Stripes!", "Stripes!"),  # another name that happens to slug alike keeps its own
])
def test_the_same_name_added_twice_gets_the_number_of_its_id(tmp_path, name, expected):
    root = tmp_path / "models"
    source = model_file(tmp_path)
    add_custom(root, source, "transformer_net", "Stripes")
    second = add_custom(root, source, "transformer_net", name)
    assert (second.id, second.name) == ("custom-stripes-2", expected)
    third = add_custom(root, source, "transformer_net", "Stripes")
    assert (third.id, third.name) == ("custom-stripes-3", "Stripes 3")
    assert len({entry.name for entry in custom_styles(root)}) == 3


def test_re_adding_a_style_whose_file_went_missing_repairs_it_under_its_own_name(tmp_path):
    root = tmp_path / "models"
    source = model_file(tmp_path)
    entry = add_custom(root, source, "transformer_net", "Stripes")
    (root / entry.files[0].filename).unlink()
    again = add_custom(root, source, "transformer_net", "Stripes")
    assert (again.id, again.name) == ("custom-stripes", "Stripes") and len(read_list(root).items) == 1


def test_a_learned_style_says_how_it_was_learned_not_the_temporary_file(tmp_path):
    root = tmp_path / "models"
    entry = add_custom(root, model_file(tmp_path), "transformer_net", "Stripes", origin="learned from 3 images")
    assert "learned from 3 images" in entry.description and "style.safetensors" not in entry.description
    assert "learned from 3 images" in custom_styles(root)[0].description  # read back from custom.json
    installed = add_custom(root, model_file(tmp_path, "ink.pth"), "transformer_net", "Ink")
    assert "added from ink.pth" in installed.description


@pytest.mark.parametrize("name", ["line1\nline2", "tab\there", "right\u202eto left override"])
def test_a_name_with_a_control_character_is_refused_before_any_work(name):
    with pytest.raises(RestyleError, match="line break or control character"):
        check_name(name)


@pytest.mark.parametrize(("name", "expected"), [("  Stripes ", "Stripes"), ("日本のスタイル", "日本のスタイル"),
                                                ("A" * 300, "A" * 300),
                                                ("می\u200cخواهم", "می\u200cخواهم"),  # Persian needs the ZWNJ
                                                ("\U0001f469\u200d\U0001f3a8", "\U0001f469\u200d\U0001f3a8")])
def test_check_name_accepts_what_add_custom_adds(name, expected):
    assert check_name(name) == expected
