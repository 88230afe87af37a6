"""The panel's settings become the same typed options as the command line's (properties.restyle_options).

What a user relies on: a style run from the panel with some settings restyles exactly as the
command line does with the same settings, and a value that is not allowed is refused with the
same message whichever way it came in.
"""

from __future__ import annotations

import importlib
import re
from types import SimpleNamespace

import pytest

from tests.blender.support import ADDON_MODULE

# (panel settings as Blender holds them, the same settings as command line arguments); the numbers
# are exact in the float32 a FloatProperty stores, so both ways give the same float.
CASES = [
    ({"strength": 0.5, "device": "CPU", "precision": "FULL", "tile_size": 256, "seamless": "OFF",
      "preserve_colors": True},
     ["--strength", "0.5", "--device", "cpu", "--precision", "full", "--tile-size", "256", "--seamless", "off",
      "--preserve-colors"]),
    ({"strength": 0.25, "device": "AUTO", "precision": "REDUCED", "tile_size": 0, "seamless": "ON",
      "preserve_colors": False},
     ["--strength", "0.25", "--precision", "reduced", "--tile-size", "0", "--seamless", "on"]),
    ({"strength": 0.75, "device": "CUDA", "precision": "AUTO", "tile_size": 8192, "seamless": "AUTO",
      "preserve_colors": True},
     ["--strength", "0.75", "--device", "cuda", "--tile-size", "8192", "--preserve-colors"]),
    ({"strength": 0.0, "device": "MPS", "precision": "FULL", "tile_size": 64, "seamless": "AUTO",
      "preserve_colors": False},
     ["--strength", "0", "--device", "mps", "--precision", "full", "--tile-size", "64"]),
]


def _module(name: str):
    return importlib.import_module(f"{ADDON_MODULE}.{name}")


def _from_command_line(arguments: list[str]):
    """RestyleOptions the way the CLI builds them: its parser's values, the CLI's spellings, into ml/options."""
    args = _module("cli").build_parser().parse_args(["stylize-textures", "--style", "toon", *arguments])
    return _module("ml.options").RestyleOptions(
        strength=args.strength, device=args.device, precision=args.precision, tile_size=args.tile_size,
        seamless=args.seamless, preserve_colors=args.preserve_colors)


@pytest.mark.parametrize(("panel", "arguments"), CASES)
def test_panel_settings_give_the_options_the_command_line_gives(empty_scene, panel, arguments):
    properties, options = _module("properties"), _module("ml.options")
    settings = empty_scene.restyle
    for key, value in panel.items():
        setattr(settings, key, value)
    from_panel = properties.restyle_options(settings)
    from_cli = _from_command_line(arguments)
    assert from_panel == from_cli
    assert from_panel.to_wire() == from_cli.to_wire()  # what the worker is sent
    assert isinstance(from_panel.device, options.Device) and isinstance(from_panel.seamless, options.Seamless)
    assert from_panel.validated() is from_panel


def test_default_panel_settings_give_the_default_options(empty_scene):
    properties, options = _module("properties"), _module("ml.options")
    assert properties.restyle_options(empty_scene.restyle) == options.RestyleOptions()


def _settings(**changes):
    """Panel values Blender itself would never hold (its menus and limits refuse them), standing in
    for a PropertyGroup: the conversion must still refuse them as the command line's options do."""
    values = {"strength": 1.0, "device": "AUTO", "precision": "AUTO", "tile_size": 0, "seamless": "AUTO",
              "preserve_colors": False}
    return SimpleNamespace(**{**values, **changes})


@pytest.mark.parametrize(("field", "value", "message"), [
    ("device", "TPU", "device must be one of auto, cpu, cuda, mps, got 'TPU'"),
    ("precision", "HALF", "precision must be one of auto, full, reduced, got 'HALF'"),
    ("seamless", "", "seamless must be one of auto, on, off, got ''"),
])
def test_a_value_that_is_not_a_choice_is_refused_by_name(addon, field, value, message):
    properties, options = _module("properties"), _module("ml.options")
    with pytest.raises(ValueError) as from_panel:
        properties.restyle_options(_settings(**{field: value}))
    assert str(from_panel.value) == message
    with pytest.raises(ValueError) as from_options:
        options.RestyleOptions(**{field: value})
    assert str(from_options.value) == message


@pytest.mark.parametrize(("field", "value", "message"), [
    ("strength", 1.5, "strength must be within 0..1, got 1.5"),
    ("strength", -0.25, "strength must be within 0..1, got -0.25"),
    ("tile_size", 10, "tile size must be 0 (Auto) or at least 64 pixels (at most 8192), got 10"),
    ("tile_size", 9000, "tile size must be 0 (Auto) or at least 64 pixels (at most 8192), got 9000"),
])
def test_an_out_of_range_number_is_refused_when_the_job_checks_its_options(addon, field, value, message):
    properties, options = _module("properties"), _module("ml.options")
    built = properties.restyle_options(_settings(**{field: value}))
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        built.validated()
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        options.RestyleOptions(**{field: value}).validated()


def test_the_panel_itself_keeps_numbers_in_range(empty_scene):
    properties = _module("properties")
    settings = empty_scene.restyle
    settings.strength = 5.0  # Blender clamps to the FloatProperty's max, taken from ml/options STRENGTH
    settings.tile_size = 10  # the slider lands on Auto below 32, on 64 above it
    built = properties.restyle_options(settings)
    assert (built.strength, built.tile_size) == (1.0, 0)
    assert built.validated() is built


def test_the_menus_text_comes_from_the_options(empty_scene):
    """The device and style menus, whose text is now made once, still read it from ml/options."""
    properties, options = _module("properties"), _module("ml.options")
    catalog = _module("ml.models.catalog")
    devices = properties.device_items(None, None)
    assert [item[0] for item in devices] == [d.name for d in options.Device]
    for (_, text, tip), device in zip(devices, options.Device, strict=True):
        assert text.removesuffix(" (Unavailable)") == options.label(device)
        assert tip == options.description(device)
    headings = [item for item in properties.style_items(None, None) if item[0] == ""]
    assert headings
    for _, title, tip, _icon, _number in headings:
        family = next(f for f in options.ModelFamily if properties.title_case(options.label(f)) == title)
        assert family.value in catalog.FAMILY_TITLES
        assert tip == options.description(family)
