"""ml/options.py: every choice, range and default once, torch-free, the same in the panel,
the CLI's spelling and on the wire."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ml import options
from ml.options import (
    AUTO_TILE,
    MIN_MANUAL_TILE,
    STRENGTH,
    STYLE_WEIGHT,
    TILE_SIZE,
    DepthOutput,
    Device,
    ImportPhotoOptions,
    LearnStyleOptions,
    OutputMode,
    Precision,
    RestyleOptions,
    Seamless,
    StylizeRenderOptions,
    StylizeTexturesOptions,
    TileMode,
    choice,
    enum_items,
    from_wire,
    to_wire,
)

ROOT = Path(__file__).resolve().parents[2]


def _fresh_modules(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after ``statement`` (run with the repository on sys.path)."""
    script = f"import sys, json; sys.path.insert(0, {str(ROOT)!r}); {statement}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", ["ml.options", "ml.runtime.protocol", "ml.runtime.client"])
def test_the_shared_option_and_protocol_modules_never_import_torch_or_bpy(module):
    # Blender's process imports these on every redraw of the panel; torch there would freeze it for seconds.
    loaded = _fresh_modules(f"import {module}")
    assert module in loaded
    assert not {"torch", "bpy"} & loaded, sorted({"torch", "bpy"} & loaded)


def test_every_spelling_of_a_choice_is_the_same_member():
    # The panel saves "CUDA", the CLI says "cuda", an old request may say "Cuda": one member.
    for text in ("CUDA", "cuda", "Cuda", Device.CUDA):
        assert choice(Device, text) is Device.CUDA
    assert choice(DepthOutput, "METRIC_INDOOR") is DepthOutput.METRIC_INDOOR
    assert RestyleOptions(device="CPU", precision="FULL", seamless="OFF") == RestyleOptions(
        device=Device.CPU, precision=Precision.FULL, seamless=Seamless.OFF)


def test_an_unknown_choice_names_the_choices():
    with pytest.raises(ValueError, match="seamless must be one of auto, on, off, got 'sometimes'"):
        RestyleOptions(seamless="sometimes")
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda, mps"):
        RestyleOptions(device="tpu")


def test_enum_items_keep_the_identifiers_saved_blend_files_hold():
    # Changing an identifier would silently reset every saved scene's choice.
    assert [item[0] for item in enum_items(Precision)] == ["AUTO", "FULL", "REDUCED"]
    assert [item[0] for item in enum_items(Seamless)] == ["AUTO", "ON", "OFF"]
    assert [item[0] for item in enum_items(OutputMode)] == ["FILES", "PACK"]
    assert [item[0] for item in enum_items(DepthOutput)] == ["AUTO", "RELATIVE", "METRIC_INDOOR", "METRIC_OUTDOOR"]
    for kind in (Device, Precision, Seamless, OutputMode, DepthOutput):
        assert all(label and tip for _, label, tip in enum_items(kind))
    # Members of different enums with the same value ("auto") must keep their own text.
    assert dict((i, t) for i, _, t in enum_items(Precision))["AUTO"] != dict(
        (i, t) for i, _, t in enum_items(Seamless))["AUTO"]


@pytest.mark.parametrize("size", [AUTO_TILE, MIN_MANUAL_TILE, 512, int(TILE_SIZE.max)])
def test_tile_sizes_the_panel_allows_are_accepted(size):
    options_ = RestyleOptions(tile_size=size).validated()
    assert options_.tile_mode is (TileMode.AUTO if size == AUTO_TILE else TileMode.MANUAL)


@pytest.mark.parametrize("size", [1, MIN_MANUAL_TILE - 1, int(TILE_SIZE.max) + 1, -64])
def test_tile_sizes_outside_the_range_are_refused_with_the_range(size):
    expected = f"0 (Auto) or at least {MIN_MANUAL_TILE} pixels (at most {int(TILE_SIZE.max)})"
    with pytest.raises(ValueError, match=re.escape(expected)):
        RestyleOptions(tile_size=size).validated()


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan")])
def test_strength_outside_0_1_is_refused(strength):
    with pytest.raises(ValueError, match="strength must be within 0..1"):
        RestyleOptions(strength=strength).validated()


def test_job_options_check_their_ranges():
    with pytest.raises(ValueError, match="temporal steadiness must be within 0..0.95"):
        StylizeRenderOptions("toon", "/tmp/out", temporal=0.99).validated()
    with pytest.raises(ValueError, match="resolution must be within 2..8192"):
        ImportPhotoOptions(resolution=1).validated()
    with pytest.raises(ValueError, match="style weight"):
        StylizeTexturesOptions("adain", style_weight=2.0).validated()
    with pytest.raises(ValueError, match="needs a name"):
        LearnStyleOptions(" ").validated()


ROUND_TRIPS = [
    RestyleOptions(),
    RestyleOptions(strength=0.25, device="cpu", precision="full", tile_size=128, seamless="off", preserve_colors=True,
                   memory_budget=1 << 20, reuse_activations=False),
    StylizeTexturesOptions("oil", RestyleOptions(tile_size=64), style_weight=0.5, output="PACK", output_dir="/tmp/x"),
    StylizeRenderOptions("toon", "/tmp/frames", 1, 48, RestyleOptions(device="CUDA"), 0.3, 0.2, 0.5),
    ImportPhotoOptions("depth-builtin-fast", near=1.5, resolution=256, simplify=True, device="cpu"),
    LearnStyleOptions("Mine", ("a.png", "dir"), content="/c", preset="high", steps=10, seed=3),
]


@pytest.mark.parametrize("original", ROUND_TRIPS, ids=lambda o: type(o).__name__)
def test_options_cross_the_wire_as_json_and_come_back_equal(original):
    text = json.dumps(to_wire(original))  # what the pipe carries: plain JSON, no pickles
    again = from_wire(type(original), json.loads(text))
    assert again == original
    assert type(again.__dict__.get("restyle", again)) in (RestyleOptions, type(original))


def test_the_wire_refuses_fields_it_does_not_know_and_numbers_of_the_wrong_kind():
    with pytest.raises(ValueError, match="unknown RestyleOptions field\\(s\\): tilesize"):
        RestyleOptions.from_wire({"tilesize": 64})
    with pytest.raises(ValueError, match="tile_size must be int"):
        RestyleOptions.from_wire({"tile_size": 64.5})
    with pytest.raises(ValueError, match="preserve_colors must be bool"):
        RestyleOptions.from_wire({"preserve_colors": "yes"})


def test_the_engine_and_the_worker_protocol_use_the_same_options_class():
    engine = pytest.importorskip("ml.restyle.engine")
    from ml.runtime.protocol import RunRequest

    assert engine.RestyleOptions is RestyleOptions
    assert type(RunRequest("1", (), "toon").options) is RestyleOptions


def test_options_reach_the_worker_typed_and_come_back_as_the_worker_used_them(tmp_path):
    """A typed request crosses the real process boundary: Precision.FULL arrives as fp32, a manual tile as it was."""
    from ml.runtime.client import WorkerClient
    from tests.ml.synthetic import photo_like

    client = WorkerClient(str(ROOT), threads=1)
    try:
        typed = RestyleOptions(device=Device.CPU, precision=Precision.FULL, tile_size=64, seamless=Seamless.OFF)
        info = client.submit("toon", typed, [("a", photo_like(96, 80))]).wait()["a"].info
        assert (info["tile_size"], info["auto_tile"], info["dtype"], info["seamless"]) == (64, False, "float32", False)
    finally:
        client.shutdown()


_PROPERTY_DUMP = textwrap.dedent("""
    import importlib, json, os, sys, tempfile, types
    os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="restyle-options-test-")
    import bpy
    root = sys.argv[1]
    package = types.ModuleType("neural_restyle")  # the add-on as a package, without register() or operators
    package.__path__ = [root]
    sys.modules["neural_restyle"] = package
    properties = importlib.import_module("neural_restyle.properties")
    out = {}
    for name, annotation in properties.RestyleSettings.__annotations__.items():
        # properties.py postpones annotations (strings); Blender evaluates them at register time, so do the same.
        deferred = eval(annotation, vars(properties)) if isinstance(annotation, str) else annotation
        keywords = dict(deferred.keywords)
        items = keywords.get("items")
        if callable(items):
            items = items(None, None)
        out[name] = {key: keywords.get(key) for key in ("default", "min", "max")}
        out[name]["items"] = [list(item[:3]) for item in items] if items else None
    print(json.dumps(out))
""")


def test_the_panel_settings_take_their_ranges_defaults_and_menus_from_the_options():
    pytest.importorskip("bpy")  # only where the bpy module is installed (the project's .venv)
    done = subprocess.run([sys.executable, "-c", _PROPERTY_DUMP, str(ROOT)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    props = json.loads(done.stdout.strip().splitlines()[-1])
    assert props["tile_size"] == {"default": TILE_SIZE.default, "min": TILE_SIZE.min, "max": TILE_SIZE.max,
                                  "items": None}
    for name, spec in (("strength", STRENGTH), ("style_weight", STYLE_WEIGHT)):
        assert (props[name]["default"], props[name]["min"], props[name]["max"]) == (spec.default, spec.min, spec.max)
    for name, kind in (("precision", Precision), ("seamless", Seamless), ("output", OutputMode)):
        assert props[name]["items"] == [list(item) for item in enum_items(kind)]
    # The device menu names every device; an unavailable one is marked, never missing.
    assert [item[0] for item in props["device"]["items"]] == [member.name for member in Device]
    # And every identifier the panel can hold becomes an engine option.
    for identifier, *_ in props["seamless"]["items"]:
        assert RestyleOptions(seamless=identifier).seamless.name == identifier


def test_module_lists_every_range_once():
    # The CLI and the properties read these; a second copy elsewhere in ml/ would drift.
    ranges = [value for value in vars(options).values() if isinstance(value, options.Range)]
    assert len({id(r) for r in ranges}) == len(ranges) >= 10
