"""The route one Stylize Textures run takes through the project's files (issue 14: a straight route).

Traced with tools/bench/bench_route.py, the tool that prints the figures: one cube with one
texture, style toon, the worker warm.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.blender.support import ADDON_MODULE
from tools.bench.bench_route import Route, cli_run, panel_run, textured_cube, trace

OPTIONS = "ml/options.py"
PROPERTIES = "properties.py"


@pytest.fixture
def blend(empty_scene, tmp_path: Path) -> Path:
    return textured_cube(tmp_path / "route")


def _traced(addon, run_factory) -> Route:
    assert run_factory()() in ({"FINISHED"}, 0)  # untraced: starts the worker
    result, route = trace(run_factory(), Path(addon.__file__).parent)
    assert result in ({"FINISHED"}, 0)
    return route


def _why(route: Route, name: str) -> str:
    return "; ".join(f"{count} x {left} -> {to}" for (left, to), count in route.functions.most_common()
                     if name in left or name in to)


def test_the_panel_converts_its_settings_to_options_once(addon, blend):
    route = _traced(addon, lambda: panel_run(blend))
    assert PROPERTIES in route.files and OPTIONS in route.files
    # One conversion is one trip properties -> ml/options -> properties; before, every field and every
    # menu item (the device and style menus' labels, read whenever their value is) was a trip of its own.
    assert route.returns_between(PROPERTIES, OPTIONS) <= 2, _why(route, PROPERTIES)
    # The whole click: building the options, checking them and putting them on the wire, not one per field.
    assert route.returns_into(OPTIONS) <= 6, _why(route, OPTIONS)


def test_the_command_line_does_not_enter_the_panel_code(addon, blend):
    cli = importlib.import_module(f"{ADDON_MODULE}.cli")
    route = _traced(addon, lambda: cli_run(cli, blend))
    assert route.files[0] == "cli.py"
    assert not [name for name in route.files if name.startswith(("operators/", "panels/")) or name == PROPERTIES]
    assert route.returns_into(OPTIONS) <= 6, _why(route, OPTIONS)
