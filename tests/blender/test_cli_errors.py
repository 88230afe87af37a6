"""One failure, one message: the command line and the panel's operator say the same thing about the
same error (both take it from jobs.base.error_message).

Each case makes one failure happen for real (or, for an OSError and a defect, raises it where
both routes pass), runs the panel's operator and the restyle command on the same scene, and
compares what the artist reads: the operator's report, and the command's item error (its JSON
report) or usage line."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import bpy
import pytest

from tests.blender.scenes import textured_cube
from tests.blender.support import ADDON_MODULE


def _module(name: str):
    return importlib.import_module(f"{ADDON_MODULE}.{name}")


@pytest.fixture
def cli(addon):
    return _module("cli")


@pytest.fixture
def cube(empty_scene, tmp_path):
    """A selected cube with one colour texture: what both routes restyle."""
    return textured_cube(tmp_path / "bark.png", 32, seed=4)


def list_custom_style(root: Path, style_id: str, name: str, data: bytes | None) -> None:
    """A custom style as Add Custom Style from File lists it; ``data`` None: its file is gone."""
    (root / "custom").mkdir(parents=True, exist_ok=True)
    if data is not None:
        (root / "custom" / f"{style_id}.pth").write_bytes(data)
    item = {"id": style_id, "name": name, "file": f"{style_id}.pth", "arch": "AnimeGAN v2", "source": "test.pth"}
    (root / "custom.json").write_text(json.dumps([item]), encoding="utf-8")


def operator_error(operator, **properties) -> str:
    """The ERROR report of an operator run in the background (Blender raises it as a RuntimeError)."""
    with pytest.raises(RuntimeError) as info:
        operator(**properties)
    return str(info.value).strip().removeprefix("Error: ").strip()


def item_error(cli, argv: list[str], report: Path) -> str:
    """The error the command line records for its one item (exit 1: the item failed)."""
    assert cli.main([*argv, "--report", str(report)]) == 1
    items = json.loads(report.read_text())["items"]
    assert len(items) == 1 and items[0]["status"] == "failed"
    return items[0]["error"]


def usage_error(cli, argv: list[str], capsys) -> str:
    """The one line a refused command line prints (exit 2)."""
    capsys.readouterr()
    assert cli.main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_a_style_not_downloaded_yet(cli, model_folder, cube, tmp_path):
    bpy.context.scene.restyle.style = "cyclegan-monet"
    reported = operator_error(bpy.ops.restyle.stylize_textures)
    printed = item_error(cli, ["stylize-textures", "--style", "cyclegan-monet"], tmp_path / "report.json")
    assert printed == reported
    assert printed.startswith("'Monet (CycleGAN)' is not downloaded yet: click Download")


def test_a_custom_style_whose_model_file_is_missing(cli, model_folder, cube, capsys):
    list_custom_style(model_folder, "custom-studio", "Studio", data=None)
    bpy.context.scene.restyle.style = "custom-studio"
    reported = operator_error(bpy.ops.restyle.stylize_textures)
    assert "The model file of your custom style 'Studio' is missing" in reported
    printed = usage_error(cli, ["stylize-textures", "--style", "custom-studio"], capsys)
    assert printed == f"restyle stylize-textures: argument --style: {reported}"


def test_an_unknown_model(cli, model_folder, capsys):
    bpy.context.preferences.system.use_online_access = True  # else Download is greyed out before it looks
    try:
        reported = operator_error(bpy.ops.restyle.download_model, model_id="gpt-5")
    finally:
        bpy.context.preferences.system.use_online_access = False
    assert reported.startswith("Unknown style 'gpt-5' (known styles: toon,")
    printed = usage_error(cli, ["models", "download", "gpt-5"], capsys)
    assert printed == f"restyle models download: argument model_id: {reported}"


class SpyClient:
    """The real worker client; each worker job it hands out records how it failed."""

    def __init__(self, real, failures: list[BaseException]) -> None:
        self.real, self.failures = real, failures

    def submit(self, *args, **kwargs):
        job, failures = self.real.submit(*args, **kwargs), self.failures

        class Spied:
            def __getattr__(self, name):
                return getattr(job, name)

            def wait(self):
                try:
                    return job.wait()
                except Exception as exc:
                    failures.append(exc)
                    raise

            def poll(self):
                try:
                    return job.poll()
                except Exception as exc:
                    failures.append(exc)
                    raise

        return Spied()

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_failure_in_the_worker(cli, model_folder, cube, tmp_path, monkeypatch):
    """A listed model file the worker cannot load: its error crosses the process boundary and reads the same."""
    base = _module("jobs.base")
    real_client = base.Services.client
    failures: list[BaseException] = []
    monkeypatch.setattr(base.Services, "client", lambda self: SpyClient(real_client(self), failures))
    list_custom_style(model_folder, "custom-broken", "Broken", data=b"PK\x03\x04 not really a checkpoint" * 40)
    bpy.context.scene.restyle.style = "custom-broken"
    reported = operator_error(bpy.ops.restyle.stylize_textures)
    printed = item_error(cli, ["stylize-textures", "--style", "custom-broken"], tmp_path / "report.json")
    assert printed == reported
    assert "custom-broken.pth is truncated or damaged" in reported
    # Both failed in the worker, which said so: the error was rebuilt on this side as a WorkerFailed.
    assert len(failures) == 2 and all(isinstance(f, _module("ml.errors").WorkerFailed) for f in failures)


@pytest.mark.parametrize("failure", ["os-error", "defect"])
def test_an_os_error_and_a_defect(cli, model_folder, cube, tmp_path, monkeypatch, failure):
    """Not domain errors: the operator puts its "nothing was changed" before the same text. An OSError
    reads as its reason and file (not Python's "[Errno 13] ..."), a defect says it is unexpected."""
    def collect(objects):
        if failure == "os-error":
            raise PermissionError(13, "Permission denied", str(tmp_path / "locked"))
        raise KeyError("slots")

    monkeypatch.setattr(_module("bridge.materials"), "collect", collect)
    bpy.context.scene.restyle.style = "toon"
    reported = operator_error(bpy.ops.restyle.stylize_textures)
    printed = item_error(cli, ["stylize-textures", "--style", "toon"], tmp_path / "report.json")
    assert reported == f"Restyle failed, nothing was changed: {printed}"
    expected = f"Permission denied ({tmp_path / 'locked'})" if failure == "os-error" else "unexpected KeyError: 'slots'"
    assert printed == expected


@pytest.mark.parametrize(("error", "text"), [
    (FileNotFoundError(2, "No such file or directory", "/shots/a.blend"), "No such file or directory (/shots/a.blend)"),
    (OSError(28, "No space left on device", b"/tmp/r\xc3\xa9"), "No space left on device (/tmp/r\u00e9)"),
    (OSError("the disk went away"), "the disk went away"),
    (OSError(), "OSError"),
    (TimeoutError(), "TimeoutError"),
    (ValueError("bad"), "unexpected ValueError: bad"),
])
def test_the_one_line_for_each_kind_of_failure(addon, error, text):
    base = _module("jobs.base")
    assert base.error_message(error) == text
    assert base.is_defect(error) == isinstance(error, ValueError)


def test_a_domain_error_speaks_for_itself(addon):
    errors, base = _module("ml.errors"), _module("jobs.base")
    assert base.error_message(errors.WorkerDied("the worker stopped (exit code -9)")) == \
        "the worker stopped (exit code -9)"
    assert base.error_message(errors.UnknownStyleError()) == "UnknownStyleError"  # never an empty line
    assert not base.is_defect(errors.JobCancelled())
