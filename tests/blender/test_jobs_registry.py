"""The jobs, the operators and the command line on the same doors: models looked up in the registry
(typed descriptors), every number's limits from ml/options.py, and Download as a job of jobs/models.py
that the panel's button and ``restyle models download`` both run.

Checkpoints are served from 127.0.0.1 through the mirror preference, as in test_models.py."""

from __future__ import annotations

import importlib
import json
import re
import threading
from pathlib import Path

import bpy
import pytest

from tests.blender.scenes import textured_cube
from tests.blender.support import ADDON_MODULE
from tests.ml import checkpoints
from tests.ml.http_server import FileServer

MODEL = "animegan2-face-paint-v1"  # unpinned upstream: the store records the hash of the first download
PINNED = "animegan2-face-paint-v2"  # pinned to the published hash: the test's file does not match it


def _module(name: str):
    return importlib.import_module(f"{ADDON_MODULE}.{name}")


@pytest.fixture
def cli(addon):
    return _module("cli")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return checkpoints.save(checkpoints.animegan2_state(), tmp_path_factory.mktemp("upstream") / "face_paint.pt")


@pytest.fixture
def mirror(addon, checkpoint, tmp_path):
    """A local mirror with the two AnimeGAN portrait files, an empty model folder, online access on."""
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    bpy.context.preferences.system.use_online_access = True
    try:
        with FileServer() as server:
            for name in ("face_paint_512_v1.pt", "face_paint_512_v2.pt"):
                server.files[f"/{name}"] = Path(checkpoint).read_bytes()
            prefs.mirror_url, prefs.model_folder = server.url, str(tmp_path / "models")
            yield server
    finally:
        prefs.mirror_url, prefs.model_folder = "", ""
        bpy.context.preferences.system.use_online_access = False


@pytest.fixture
def download_threads(addon, monkeypatch):
    """The name of the thread each ModelStore.download ran on."""
    store = _module("ml.models.store").ModelStore
    real = store.download
    names: list[str] = []

    def recording(self, *args, **kwargs):
        names.append(threading.current_thread().name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(store, "download", recording)
    return names


def model_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


# -- Download: one job for the button and the command line ---------------------------------------
def test_models_download_runs_the_download_job_with_progress_and_records_the_hash(
        cli, mirror, tmp_path, capsys, download_threads):
    report = tmp_path / "report.json"
    assert cli.main(["models", "download", MODEL, "--report", str(report)]) == 0
    out, err = capsys.readouterr()
    assert "Downloaded Anime (Face Paint v1)" in out
    # Progress while it downloads, from the job's own progress (one line per tenth at most).
    progress = re.findall(rf"restyle models download {MODEL}: (\d+)% \(", err)
    assert progress and len(progress) <= 10 and progress == sorted(progress, key=int)
    # The job's thread did the work, as it does for the panel's button.
    assert download_threads == ["neural-restyle-download"]
    root = tmp_path / "models"
    assert model_files(root) == ["face_paint_512_v1.pt", "hashes.json"]
    assert "face_paint_512_v1.pt" in json.loads((root / "hashes.json").read_text())
    item = json.loads(report.read_text())["items"][0]
    assert item["status"] == "done" and item["output"] == str(root / "face_paint_512_v1.pt")
    # The button runs the same job: the same thread, the same result.
    assert bpy.ops.restyle.remove_model(model_id=MODEL) == {"FINISHED"}
    assert bpy.ops.restyle.download_model(model_id=MODEL) == {"FINISHED"}
    assert download_threads == ["neural-restyle-download"] * 2
    assert model_files(root) == ["face_paint_512_v1.pt", "hashes.json"]


def test_a_download_that_fails_its_checksum_is_refused_alike_and_leaves_nothing(cli, mirror, tmp_path):
    report = tmp_path / "report.json"
    assert cli.main(["models", "download", PINNED, "--report", str(report)]) == 1
    printed = json.loads(report.read_text())["items"][0]["error"]
    assert "does not match the published checksum" in printed
    assert not list((tmp_path / "models").glob("face_paint_512_v2*"))
    with pytest.raises(RuntimeError) as info:
        bpy.ops.restyle.download_model(model_id=PINNED)
    assert str(info.value).strip().removeprefix("Error: ").strip() == printed
    assert not list((tmp_path / "models").glob("face_paint_512_v2*"))


@pytest.mark.parametrize("offline", ["preference off", "started offline"])
def test_offline_the_command_line_refuses_with_the_specific_reason_and_asks_nothing(
        cli, mirror, tmp_path, monkeypatch, offline):
    bpy.context.preferences.system.use_online_access = False
    if offline == "started offline":
        monkeypatch.setattr(_module("preferences"), "started_offline", lambda: True)
    report = tmp_path / "report.json"
    assert cli.main(["models", "download", MODEL, "--report", str(report)]) == 1
    printed = json.loads(report.read_text())["items"][0]["error"]
    expected = "Blender was started offline" if offline == "started offline" else "Online access is off (Preferences"
    assert printed.startswith(expected)
    assert "so 'Anime (Face Paint v1)' cannot be downloaded" in printed
    assert printed.endswith("yourself and install it with Add Custom Style from File")
    assert mirror.requests == [] and model_files(tmp_path / "models") == []


def test_downloading_a_built_in_style_says_there_is_nothing_to_download(cli, mirror, capsys, download_threads):
    assert cli.main(["models", "download", "toon"]) == 0  # a script making sure of its styles may list it
    assert "'Toon' is built into Neural Restyle: there is nothing to download" in capsys.readouterr().out
    assert download_threads == [] and mirror.requests == []


def test_downloading_a_model_added_from_a_file_is_a_clear_failure(cli, mirror, checkpoint, tmp_path, capsys):
    root = tmp_path / "models"
    (root / "custom").mkdir(parents=True)
    (root / "custom" / "custom-studio.pth").write_bytes(Path(checkpoint).read_bytes())
    (root / "custom.json").write_text(json.dumps([{"id": "custom-studio", "name": "Studio", "arch": "AnimeGAN v2",
                                                   "file": "custom-studio.pth"}]))
    assert cli.main(["models", "download", "custom-studio"]) == 1
    assert "'Studio' was added from a file: there is nothing to download" in capsys.readouterr().err
    assert mirror.requests == []


# -- the registry's descriptors in the jobs ------------------------------------------------------
class CountingClient:
    """The real worker client; counts the jobs handed to the worker."""

    def __init__(self, real, submitted: list[str]) -> None:
        self.real, self.submitted = real, submitted

    def submit(self, style, *args, **kwargs):
        self.submitted.append(style)
        return self.real.submit(style, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture
def submitted(addon, monkeypatch):
    base = _module("jobs.base")
    real = base.Services.client
    calls: list[str] = []
    monkeypatch.setattr(base.Services, "client", lambda self: CountingClient(real(self), calls))
    return calls


@pytest.mark.parametrize("job", ["stylize_textures", "stylize_render"])
@pytest.mark.parametrize("model", ["depth-builtin-fast", "depth-anything-v2-small"])
def test_a_depth_model_given_as_a_style_is_refused_before_the_worker(addon, empty_scene, tmp_path, submitted,
                                                                     job, model):
    bpy.ops.object.camera_add()
    bpy.context.scene.camera = bpy.context.active_object
    cube = textured_cube(tmp_path / "bark.png", 24, seed=1)
    options = _module("ml.options")
    services = _module("jobs.base").services_of(bpy.context)
    before = (len(bpy.data.images), len(bpy.data.materials))
    with pytest.raises(_module("ml.errors").UnknownStyleError, match=r"is a depth model, not a style"):
        if job == "stylize_textures":
            _module("jobs.textures").stylize_textures([cube], options.StylizeTexturesOptions(style=model), services)
        else:
            _module("jobs.render").stylize_render(bpy.context.scene, options.StylizeRenderOptions(
                style=model, output_dir="", frame_start=1, frame_end=1), services)
    assert submitted == []  # no worker job: the registry said what the id is
    assert (len(bpy.data.images), len(bpy.data.materials)) == before


# -- every number's limits from ml/options.py ----------------------------------------------------
OPERATOR_LIMITS = [
    ("import_photo_mesh", "near", "NEAR"),
    ("import_photo_mesh", "depth_range", "DEPTH_RANGE"),
    ("import_photo_mesh", "max_side", "MESH_RESOLUTION"),
    ("import_photo_mesh", "cut_threshold", "PHOTO_CUT"),
    ("import_photo_mesh", "focal_35mm", "FOCAL_35MM"),
    ("mesh_from_depth_pass", "max_side", "MESH_RESOLUTION"),
    ("mesh_from_depth_pass", "cut_threshold", "PASS_CUT"),
    ("stylize_render", "outlines", "OUTLINES"),
    ("stylize_render", "depth_falloff", "DEPTH_FALLOFF"),
    ("stylize_render", "temporal", "TEMPORAL"),
    ("learn_style", "steps", "LEARN_STEPS"),
    ("learn_style", "seed", "LEARN_SEED"),
    ("learn_style_pick", "steps", "LEARN_STEPS"),
    ("learn_style_pick", "seed", "LEARN_SEED"),
]


@pytest.mark.parametrize(("operator", "prop", "range_name"), OPERATOR_LIMITS)
def test_operator_settings_take_their_limits_from_the_options(addon, operator, prop, range_name):
    spec = getattr(_module("ml.options"), range_name)
    rna = getattr(bpy.ops.restyle, operator).get_rna_type().properties[prop]
    assert rna.default == pytest.approx(spec.default, rel=1e-6)
    assert rna.hard_min == pytest.approx(spec.min, rel=1e-6)
    assert rna.hard_max == pytest.approx(spec.max, rel=1e-6)
    if spec.soft_max is not None:
        assert rna.soft_max == pytest.approx(spec.soft_max, rel=1e-6)


CLI_LIMITS = [
    (["stylize-textures", "--style", "toon"], "--strength", "STRENGTH", float),
    (["stylize-textures", "--style", "toon"], "--style-weight", "STYLE_WEIGHT", float),
    (["stylize-render", "--style", "toon", "--output-dir", "/tmp/f"], "--outlines", "OUTLINES", float),
    (["stylize-render", "--style", "toon", "--output-dir", "/tmp/f"], "--depth-falloff", "DEPTH_FALLOFF", float),
    (["stylize-render", "--style", "toon", "--output-dir", "/tmp/f"], "--temporal", "TEMPORAL", float),
    (["import-photo", "a.jpg"], "--near", "NEAR", float),
    (["import-photo", "a.jpg"], "--depth-range", "DEPTH_RANGE", float),
    (["import-photo", "a.jpg"], "--resolution", "MESH_RESOLUTION", int),
    (["depth-mesh"], "--resolution", "MESH_RESOLUTION", int),
    (["learn-style", "--images", "a.png", "--name", "A"], "--seed", "LEARN_SEED", int),
]


@pytest.mark.parametrize(("argv", "option", "range_name", "kind"), CLI_LIMITS)
def test_command_line_numbers_take_their_limits_and_defaults_from_the_options(cli, argv, option, range_name, kind):
    spec = getattr(_module("ml.options"), range_name)
    dest = option.removeprefix("--").replace("-", "_")
    parser = cli.build_parser()
    assert getattr(parser.parse_args(argv), dest) == spec.default
    for limit in (spec.min, spec.max):
        assert getattr(parser.parse_args([*argv, f"{option}={kind(limit)}"]), dest) == limit
    step = 1 if kind is int else max(abs(spec.max) * 1e-3, 1e-3)
    for outside in (spec.min - step, spec.max + step):
        with pytest.raises(cli.UsageError, match=f"argument {option}: .* is outside"):
            parser.parse_args([*argv, f"{option}={kind(outside)}"])


def test_command_line_tile_size_and_frames_follow_the_options(cli):
    options = _module("ml.options")
    parser = cli.build_parser()
    base = ["stylize-textures", "--style", "toon"]
    assert parser.parse_args(base).tile_size == options.AUTO_TILE
    assert parser.parse_args([*base, "--tile-size", str(int(options.TILE_SIZE.max))]).tile_size == options.TILE_SIZE.max
    for refused in (options.MIN_MANUAL_TILE - 1, int(options.TILE_SIZE.max) + 1):
        with pytest.raises(cli.UsageError, match="--tile-size"):
            parser.parse_args([*base, "--tile-size", str(refused)])
    render = ["stylize-render", "--style", "toon", "--output-dir", "/tmp/f"]
    last = int(options.FRAME.max)
    assert parser.parse_args([*render, "--frames", f"1-{last}"]).frames == (1, last)
    with pytest.raises(cli.UsageError, match="the last frame Blender has"):
        parser.parse_args([*render, "--frames", f"1-{last + 1}"])
    assert parser.parse_args(["learn-style", "--images", "a.png", "--name", "A"]).preset == options.LearnPreset.DEFAULT
