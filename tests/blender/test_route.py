"""The route one Stylize Textures run takes through the project's files (issue 14: a straight route).

Traced with tools/bench/bench_route.py, the tool that prints the figures: one cube with one
texture, style toon, the worker warm. The panel converts its settings once; the command line
never enters the panel's code; and a run crosses each layer once where it can: the bridge is
asked once for the textures' pixels, the preferences once for the job's services, the catalog
once per model lookup, and the output files are named and written in one call each. Before
this structure the route was panel 18 files / 126 returns, CLI 14 / 115 (and 106 / 95 before
the job runner came); the bounds below are the current figures with no slack to speak of.
Each route gained one file in stop 25: the job's temporary folder is made by
ml/runtime/scratch.py, which records its maker so that a killed session's folder is removed later.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.blender.support import ADDON_MODULE
from tools.bench.bench_route import Route, cli_run, panel_run, textured_cube, trace

OPTIONS = "ml/options.py"
PROPERTIES = "properties.py"
MATERIALS, IMAGES, OUTPUTS = "bridge/materials.py", "bridge/images.py", "bridge/outputs.py"
JOB, BASE, PREFERENCES = "jobs/textures.py", "jobs/base.py", "preferences.py"
REGISTRY, CATALOG = "ml/models/registry.py", "ml/models/catalog.py"


@pytest.fixture
def blend(empty_scene, tmp_path: Path) -> Path:
    return textured_cube(tmp_path / "route")


def _traced(addon, run_factory) -> Route:
    assert run_factory()() in ({"FINISHED"}, 0)  # untraced: starts the worker
    result, route = trace(run_factory(), Path(addon.__file__).parent)
    assert result in ({"FINISHED"}, 0)
    return route


def _why(route: Route, *names: str) -> str:
    return "; ".join(f"{count} x {left} -> {to}" for (left, to), count in route.functions.most_common()
                     if any(name in left or name in to for name in names))


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


def _check_layers(route: Route) -> None:
    # collect() names datablocks in its own file; the pixels come back from one images call.
    assert route.returns_between(MATERIALS, IMAGES) == 0, _why(route, MATERIALS, IMAGES)
    assert route.returns_between(JOB, IMAGES) <= 8, _why(route, JOB, IMAGES)  # read, decode, folder, create
    # The services: one question to the preferences and back (its store is built there).
    assert route.returns_between(BASE, PREFERENCES) <= 2, _why(route, BASE, PREFERENCES)
    # A descriptor is built from the entry's fields: one trip into the catalog per lookup (the command
    # line looks the style up twice: checking its arguments, then in the job); before, one per property.
    assert route.returns_into(CATALOG) <= 1 and route.returns_between(REGISTRY, CATALOG) <= 3, _why(route, CATALOG)
    # The job asks outputs for the file's name once (and makes the WrittenFiles record);
    # images then asks for the folder and a free path, then for the verified write.
    assert route.returns_between(JOB, OUTPUTS) <= 3, _why(route, JOB, OUTPUTS)
    assert route.returns_between(IMAGES, OUTPUTS) <= 4, _why(route, IMAGES, OUTPUTS)


def test_the_panel_route_crosses_each_layer_once(addon, blend):
    route = _traced(addon, lambda: panel_run(blend))
    _check_layers(route)
    assert len(route.files) <= 19 and route.total_returns < 106, route


def test_the_command_line_route_crosses_each_layer_once(addon, blend):
    cli = importlib.import_module(f"{ADDON_MODULE}.cli")
    route = _traced(addon, lambda: cli_run(cli, blend))
    _check_layers(route)
    assert len(route.files) <= 15 and route.total_returns < 95, route
