"""One Stylize Textures run crosses each layer once where it can (issue 14): the bridge is asked
once for the textures' pixels, the preferences once for the job's services, the catalog once per
model lookup, and the output files are named and written in one call each.

Traced with tools/bench/bench_route.py (one cube, one texture, style toon, the worker warm). Before
this structure the route was panel 18 files / 126 returns, CLI 14 / 115 (and 106 / 95 before the
job runner came); the bounds below are the figures of the current structure with no slack to speak of.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.blender.support import ADDON_MODULE
from tools.bench.bench_route import Route, cli_run, panel_run, textured_cube, trace

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
    assert len(route.files) <= 18 and route.total_returns < 106, route


def test_the_command_line_route_crosses_each_layer_once(addon, blend):
    cli = importlib.import_module(f"{ADDON_MODULE}.cli")
    route = _traced(addon, lambda: cli_run(cli, blend))
    _check_layers(route)
    assert len(route.files) <= 14 and route.total_returns < 95, route
