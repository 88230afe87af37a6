"""Red team: the restyle command line under wrong arguments and bad batches.

What a pipeline TD expects: a wrong command line exits 2 with one line naming the argument,
before any .blend is opened, rendered or saved; a --blend batch goes on past every bad file
and always writes its report; nothing ever escapes as a traceback.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from types import SimpleNamespace

import bpy
import pytest

from tests.blender.scenes import textured_cube
from tests.blender.support import ADDON_MODULE


@pytest.fixture
def cli(addon):
    return importlib.import_module(f"{ADDON_MODULE}.cli")


def textured_blend(path: Path, seed: int) -> Path:
    """A saved .blend with a cube whose material shows a small image, on every Blender line."""
    bpy.ops.wm.read_homefile(use_empty=True)
    textured_cube(path.with_suffix(".png"), 16, seed, material=f"Mat{seed}")
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    return path


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file and folder under ``folder``, files with their size, modification time and first bytes."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes()[:64])
            if p.is_file() else (0, 0, b"folder") for p in sorted(folder.rglob("*"))}


@pytest.fixture
def shot(cli, empty_scene, tmp_path):
    """The open file: a saved shot in its own folder; returns (folder, path)."""
    folder = tmp_path / "project"
    folder.mkdir()
    path = textured_blend(folder / "shot.blend", 1)
    return folder, path


def _run(cli, argv):
    """main() must answer with an exit code, whatever happens."""
    code = cli.main(argv)
    assert isinstance(code, int)
    return code


# -- usage errors: exit 2, one clear line, nothing touched ----------------------------------
USAGE = {
    "frames not a number": (["stylize-render", "--style", "toon", "--frames", "abc"], "--frames: 'abc' is not a frame"),
    "frames backwards": (["stylize-render", "--style", "toon", "--frames", "5-2"], "'5-2' ends before it starts"),
    "frames open end": (["stylize-render", "--style", "toon", "--frames", "1-"], "--frames: '1-' is not a frame"),
    "frames negative": (["stylize-render", "--style", "toon", "--frames=-3"], "--frames: '-3' is not a frame"),
    "frames with dots": (["stylize-render", "--style", "toon", "--frames", "1..4"], "'1..4' is not a frame"),
    "frames huge": (["stylize-render", "--style", "toon", "--frames", "1-9999999"], "the last frame Blender has"),
    "render with a depth model": (["stylize-render", "--style", "depth-anything-v2-small"], "is a depth model"),
    "render with a style-image style": (["stylize-render", "--style", "adain"], "stylize-render cannot use"),
    "render with an unknown style": (["stylize-render", "--style", "van-gogh-9000"], "Unknown style 'van-gogh-9000'"),
    "textures with a depth model": (["stylize-textures", "--style", "depth-builtin-fast"], "is a depth model"),
    "custom style not installed": (["stylize-textures", "--style", "custom-long-gone"], "not installed any more"),
    "negative tile size": (["stylize-textures", "--style", "toon", "--tile-size=-64"], "--tile-size: -64 is outside"),
    "tile size not whole": (["stylize-textures", "--style", "toon", "--tile-size", "1e3"], "'1e3' is not a whole"),
    "strength NaN": (["stylize-textures", "--style", "toon", "--strength", "nan"], "--strength: nan is outside"),
    "option of another subcommand": (["stylize-textures", "--style", "toon", "--frames", "1-4"], "unrecognized"),
    "unknown depth model": (["import-photo", "x.jpg", "--depth-model", "midas"], "unknown depth model 'midas'"),
    "download an unknown model": (["models", "download", "gpt-5"], "Unknown style 'gpt-5'"),
    "remove an unknown model": (["models", "remove", "gpt-5"], "models remove: argument model_id: Unknown style"),
    "save-as not a .blend": (["stylize-textures", "--style", "toon", "--save-as", "{tmp}/out.txt"], "end in .blend"),
    "save-as with --blend": (["stylize-textures", "--style", "toon", "--blend", "{shot}", "--save-as", "{tmp}/o.blend"],
                             "--save-as: not with --blend"),
    "save-as in a missing folder": (["stylize-textures", "--style", "toon", "--save-as", "{tmp}/no/such/o.blend"],
                                    "does not exist"),
    "save-as under a file": (["stylize-textures", "--style", "toon", "--save-as", "{shot}/o.blend"], "does not exist"),
    "report is a folder": (["stylize-textures", "--style", "toon", "--report", "{tmp}"], "is a folder, not a file"),
    "report in a missing folder": (["stylize-textures", "--style", "toon", "--report", "{tmp}/none/r.json"],
                                   "does not exist"),
    "report where nothing can be written": (["models", "list", "--report", "/proc/restyle-report.json"],
                                            "argument --report: cannot write"),
    "report with a NUL byte": (["stylize-textures", "--style", "toon", "--report", "{tmp}/r\x00.json"],
                               "contains a NUL character"),
    "batch file with a NUL byte": (["depth-mesh", "--blend", "{tmp}/a\x00.blend"], "contains a NUL character"),
    "report over the open .blend": (["stylize-textures", "--style", "toon", "--report", "{shot}"],
                                    "is one of the files this command reads"),
    "report over a batch file": (["depth-mesh", "--blend", "{tmp}/*.blend", "--report", "{shot}"],
                                 "is one of the files this command reads"),
    "report over the saved .blend": (["stylize-textures", "--style", "toon", "--save-as", "{tmp}/o.blend",
                                      "--report", "{tmp}/o.blend"], "is one of the files this command reads"),
    "output folder under a file": (["stylize-render", "--style", "toon", "--output-dir", "{shot}/frames"],
                                   "is a file, so"),
}


@pytest.mark.parametrize("case", list(USAGE))
def test_usage_error_exits_2_before_touching_anything(cli, shot, capsys, case):
    folder, path = shot
    argv, expected = USAGE[case]
    if case.startswith("render") or case.startswith("frames"):
        argv = [*argv, "--output-dir", str(folder / "frames")] if "--output-dir" not in argv else argv
    argv = [a.format(tmp=folder, shot=path) for a in argv]
    if "--report" not in argv and not argv[0] == "models":
        argv += ["--report", str(folder / "report.json")]
    before = snapshot(folder)
    objects = sorted(o.name for o in bpy.data.objects)
    style = bpy.context.scene.restyle.style
    assert _run(cli, argv) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert snapshot(folder) == before  # no report, no frames, no restyled/, the .blend as it was
    assert sorted(o.name for o in bpy.data.objects) == objects and bpy.context.scene.restyle.style == style


def test_blend_relative_output_of_a_never_saved_file_is_refused(cli, empty_scene, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bpy.ops.object.camera_add()
    bpy.context.scene.camera = bpy.context.active_object
    assert _run(cli, ["stylize-render", "--style", "toon", "--output-dir", "//frames"]) == 2
    assert "relative to the .blend, but the open file was never saved" in capsys.readouterr().err
    assert not (tmp_path / "frames").exists()  # "//frames" of an unsaved file is the working folder's


def test_save_on_a_never_saved_file_is_refused_before_the_work(cli, empty_scene, capsys):
    bpy.ops.mesh.primitive_cube_add()
    materials = len(bpy.data.materials)
    assert _run(cli, ["stylize-textures", "--style", "toon", "--save"]) == 2
    assert "never saved: use --save-as PATH" in capsys.readouterr().err
    assert len(bpy.data.materials) == materials  # nothing restyled first and lost after



def _read_only(monkeypatch, *paths: Path) -> None:
    """Make files read-only for the command. chmod alone does not stop root (CI may run as
    root), so os.access, which the command asks as Blender asks before saving, says no too."""
    for path in paths:
        path.chmod(0o444)  # the caller makes it writable again
    refused = {os.path.realpath(p) for p in paths}
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and os.path.realpath(path) in refused:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


def test_save_on_a_read_only_file_is_refused_before_the_work(cli, shot, capsys, monkeypatch):
    folder, path = shot
    _read_only(monkeypatch, path)
    try:
        before = snapshot(folder)
        materials = sorted(m.name for m in bpy.data.materials)
        assert _run(cli, ["stylize-textures", "--style", "pixel", "--save"]) == 2
        assert "--save" in (err := capsys.readouterr().err) and "is read-only" in err
        assert sorted(m.name for m in bpy.data.materials) == materials  # nothing restyled, then lost
        assert snapshot(folder) == before  # no restyled images left beside an unsaved shot
    finally:
        path.chmod(0o644)


def test_a_read_only_file_in_a_batch_fails_before_its_work_and_the_batch_goes_on(cli, empty_scene, tmp_path,
                                                                                 monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    locked = textured_blend(tmp_path / "a" / "locked.blend", 1)
    free = textured_blend(tmp_path / "b" / "free.blend", 2)
    _read_only(monkeypatch, locked)
    try:
        before = snapshot(locked.parent)
        report = tmp_path / "r.json"
        assert _run(cli, ["stylize-textures", "--style", "pixel", "--blend", str(locked), str(free),
                          "--report", str(report)]) == 1
        items = json.loads(report.read_text())["items"]
        assert items[0]["status"] == "failed" and "read-only" in items[0]["error"]
        assert items[1]["status"] == "done"
        assert snapshot(locked.parent) == before  # no orphan restyled images beside it
        assert (free.parent / "restyled").is_dir()
    finally:
        locked.chmod(0o644)


def test_the_report_is_readable_as_the_umask_allows(cli, shot, tmp_path):
    report = tmp_path / "report.json"
    old = os.umask(0o022)
    try:
        assert _run(cli, ["models", "list", "--report", str(report)]) == 0
    finally:
        os.umask(old)
    assert report.stat().st_mode & 0o777 == 0o644  # mkstemp made it 0600: unreadable by a farm dashboard
    assert json.loads(report.read_text())["command"] == "models list"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# -- batches: carry on past every bad file, always report -------------------------------
def test_batch_carries_on_past_every_kind_of_bad_file(cli, empty_scene, tmp_path, capsys):
    good = [textured_blend(tmp_path / f"good{i}.blend", i) for i in (1, 2)]
    corrupt = tmp_path / "corrupt.blend"
    corrupt.write_bytes(b"BLENDER-v500" + bytes(200))
    text = tmp_path / "notes.txt"
    text.write_text("not a blend file")
    folder = tmp_path / "folder.blend"
    folder.mkdir()
    unsaveable = textured_blend(tmp_path / "locked.blend", 3)
    (tmp_path / "locked.blend@").mkdir()  # Blender writes file@ first: a folder there makes saving fail
    report = tmp_path / "report.json"
    files = [good[0], tmp_path / "missing.blend", corrupt, text, folder, unsaveable, good[0], good[1]]
    code = _run(cli, ["stylize-textures", "--style", "pixel", "--blend", *map(str, files), "--report", str(report)])
    assert code == 1
    data = json.loads(report.read_text())
    by_input = {Path(i["input"]).name: i for i in data["items"]}
    assert len(data["items"]) == 7  # good0 listed twice, processed once
    assert "listed more than once" in capsys.readouterr().err
    assert by_input["good1.blend"]["status"] == by_input["good2.blend"]["status"] == "done"
    assert "no such file" in by_input["missing.blend"]["error"]
    assert "cannot open" in by_input["corrupt.blend"]["error"]
    assert "cannot open" in by_input["notes.txt"]["error"]
    assert "is a folder" in by_input["folder.blend"]["error"]
    assert "could not save" in by_input["locked.blend"]["error"]
    assert data["summary"] == {"done": 2, "failed": 5}
    assert text.read_text() == "not a blend file"


def test_a_file_that_cannot_be_saved_keeps_no_restyled_images(cli, empty_scene, tmp_path):
    """A save failing for a reason found only when saving (here Blender's temporary file@ is
    taken; a full disk, a lock) left the restyled textures on disk, referred to by no file."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    bpy.ops.wm.read_homefile(use_empty=True)
    cubes = [textured_cube(tmp_path / "a" / f"tex{i}.png", 16, i, material=f"Mat{i}") for i in (1, 2)]
    for cube in cubes:
        cube.select_set(True)
    unsaveable = tmp_path / "a" / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(unsaveable))
    (tmp_path / "a" / "shot.blend@").mkdir()
    free = textured_blend(tmp_path / "b" / "free.blend", 2)
    before = snapshot(unsaveable.parent)
    report = tmp_path / "r.json"
    assert _run(cli, ["stylize-textures", "--style", "pixel", "--blend", str(unsaveable), str(free),
                      "--report", str(report)]) == 1
    items = json.loads(report.read_text())["items"]
    assert items[0]["status"] == "failed" and "could not save" in items[0]["error"]
    assert "the 2 image file(s) written for it were removed" in items[0]["error"]
    assert snapshot(unsaveable.parent) == before  # both textures, and the folder made for them
    assert items[1]["status"] == "done" and len(list((free.parent / "restyled").iterdir())) == 1


def _writes_then(cli, monkeypatch, failure):
    """stylize-textures as it is, and then ``failure`` raised: a defect in the work after the
    textures were written (``failure`` None: the real action)."""
    real = cli.ACTIONS["stylize-textures"]

    def action(args, work):
        output = real(args, work)
        assert work.written and all(files.paths for files in work.written)
        if failure is not None:
            raise failure
        return output

    monkeypatch.setitem(cli.ACTIONS, "stylize-textures", action)


def test_a_batch_item_whose_work_fails_after_writing_keeps_no_restyled_images(cli, shot, monkeypatch):
    folder, path = shot
    _writes_then(cli, monkeypatch, KeyError("a bug after the textures were written"))
    before, saved = snapshot(folder), path.read_bytes()
    report = folder.parent / "r.json"
    assert _run(cli, ["stylize-textures", "--style", "pixel", "--blend", str(path), "--report", str(report)]) == 1
    item = json.loads(report.read_text())["items"][0]
    assert "unexpected KeyError" in item["error"]
    assert item["error"].endswith("; the 1 image file(s) written for it were removed")
    assert snapshot(folder) == before and path.read_bytes() == saved  # no texture, no restyled/ folder


def test_ctrl_c_during_the_save_keeps_no_restyled_images(cli, shot, monkeypatch):
    folder, _ = shot
    _writes_then(cli, monkeypatch, None)

    def interrupted_save(path, saved):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_save", interrupted_save)
    before = snapshot(folder)
    report = folder.parent / "r.json"
    assert _run(cli, ["stylize-textures", "--style", "pixel", "--save", "--report", str(report)]) == 1
    item = json.loads(report.read_text())["items"][0]
    assert item["status"] == "failed"
    assert item["error"] == "interrupted; the 1 image file(s) written for it were removed"
    assert snapshot(folder) == before


def test_ctrl_c_after_the_save_keeps_the_images_the_saved_file_uses(cli, shot, monkeypatch):
    folder, path = shot
    _writes_then(cli, monkeypatch, None)
    real_save = cli._save

    def save_then_interrupted(target, saved):
        real_save(target, saved)  # Ctrl+C the moment after Blender saved the file
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_save", save_then_interrupted)
    report = folder.parent / "r.json"
    assert _run(cli, ["stylize-textures", "--style", "pixel", "--save", "--report", str(report)]) == 1
    assert json.loads(report.read_text())["items"][0]["error"] == "interrupted after the file was saved"
    kept = list((folder / "restyled").iterdir())
    assert len(kept) == 1, kept  # the saved shot refers to it
    bpy.ops.wm.open_mainfile(filepath=str(path))
    assert any(bpy.path.abspath(i.filepath) == str(kept[0]) for i in bpy.data.images)


def test_ctrl_c_during_a_batch_save_is_in_the_report_with_the_textures_removed(cli, empty_scene, tmp_path,
                                                                               monkeypatch):
    shots = [textured_blend(tmp_path / f"s{i}.blend", i) for i in (1, 2, 3)]
    _writes_then(cli, monkeypatch, None)
    real_save = cli._save

    def save(target, saved):
        if bpy.data.filepath.endswith("s2.blend"):
            raise KeyboardInterrupt
        real_save(target, saved)

    monkeypatch.setattr(cli, "_save", save)
    report = tmp_path / "r.json"
    assert _run(cli, ["stylize-textures", "--style", "pixel", "--blend", str(tmp_path / "s*.blend"),
                      "--report", str(report)]) == 1
    items = json.loads(report.read_text())["items"]
    assert [Path(i["input"]).name for i in items] == ["s1.blend", "s2.blend", "s3.blend"]
    assert items[0]["status"] == "done"
    assert items[1]["error"] == "interrupted; the 1 image file(s) written for it were removed"
    assert items[2]["error"] == "not processed: the batch was interrupted"
    assert not (shots[1].parent / "restyled").exists() or not any(
        p.name.startswith("s2") for p in (shots[1].parent / "restyled").iterdir())


def test_single_file_report_names_the_saved_file(cli, shot, tmp_path):
    target, report = tmp_path / "elsewhere.blend", tmp_path / "r.json"
    assert _run(cli, ["stylize-textures", "--style", "pixel", "--save-as", str(target), "--report", str(report)]) == 0
    assert json.loads(report.read_text())["items"][0]["output"] == str(target)


def test_a_render_whose_file_cannot_be_saved_keeps_its_frames(cli, empty_scene, tmp_path):
    """The frames are the output (the result image is packed into the file): a failed save keeps them."""
    from tests.blender.scenes import small_scene

    small_scene()
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot.blend"))
    target = tmp_path / "out" / "saved.blend"
    target.parent.mkdir()
    (tmp_path / "out" / "saved.blend@").mkdir()
    frames = tmp_path / "frames"
    report = tmp_path / "r.json"
    assert _run(cli, ["stylize-render", "--style", "toon", "--frames", "1-2", "--output-dir", str(frames),
                      "--save-as", str(target), "--report", str(report)]) == 1
    item = json.loads(report.read_text())["items"][0]
    assert "could not save" in item["error"] and "removed" not in item["error"]
    assert len(list(frames.iterdir())) == 2


def test_a_job_that_raises_anything_fails_only_its_file(cli, empty_scene, tmp_path, monkeypatch):
    shots = [textured_blend(tmp_path / f"s{i}.blend", i) for i in (1, 2, 3)]
    real = cli.ACTIONS["stylize-textures"]

    def flaky(args, written):
        if bpy.data.filepath.endswith("s2.blend"):
            raise KeyError("a bug nobody foresaw")
        return real(args, written)

    monkeypatch.setitem(cli.ACTIONS, "stylize-textures", flaky)
    before = shots[1].read_bytes()
    report = tmp_path / "r.json"
    assert _run(cli, ["stylize-textures", "--style", "pixel", "--blend", str(tmp_path / "s*.blend"),
                      "--report", str(report)]) == 1
    items = json.loads(report.read_text())["items"]
    assert [i["status"] for i in items] == ["done", "failed", "done"]
    assert "unexpected KeyError" in items[1]["error"] and "a bug nobody foresaw" in items[1]["error"]
    assert shots[1].read_bytes() == before  # the failed file was not saved half-done


def test_an_interrupted_batch_still_writes_its_report(cli, empty_scene, tmp_path, monkeypatch, capsys):
    for i in (1, 2, 3):
        textured_blend(tmp_path / f"s{i}.blend", i)

    def interrupted(args, written):
        if bpy.data.filepath.endswith("s2.blend"):
            raise KeyboardInterrupt
        return "fine"

    monkeypatch.setitem(cli.ACTIONS, "stylize-textures", interrupted)
    report = tmp_path / "r.json"
    assert _run(cli, ["stylize-textures", "--style", "pixel", "--blend", str(tmp_path / "s*.blend"),
                      "--report", str(report)]) == 1
    assert "interrupted" in capsys.readouterr().err
    items = json.loads(report.read_text())["items"]
    assert [Path(i["input"]).name for i in items] == ["s1.blend", "s2.blend", "s3.blend"]
    assert items[0]["status"] == "done"
    assert all(i["status"] == "failed" and "interrupted" in i["error"] for i in items[1:])


def test_an_interrupted_single_file_run_reports_it_and_saves_nothing(cli, shot, monkeypatch, capsys):
    folder, path = shot

    def interrupted(args, written):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.ACTIONS, "stylize-textures", interrupted)
    before = snapshot(folder)
    report = folder / "r.json"
    assert _run(cli, ["stylize-textures", "--style", "toon", "--save", "--report", str(report)]) == 1
    assert "interrupted" in capsys.readouterr().err
    items = json.loads(report.read_text())["items"]
    assert items[0]["status"] == "failed" and items[0]["error"] == "interrupted"
    report.unlink()
    assert snapshot(folder) == before  # --save did not save a half-done file


def test_an_error_outside_any_item_exits_1_with_a_message_and_a_report(cli, shot, tmp_path, monkeypatch, capsys):
    def broken(args, report):
        raise AttributeError("'NoneType' object has no attribute 'restyle'")

    monkeypatch.setattr(cli, "run_scene_command", broken)
    report = tmp_path / "r.json"
    assert _run(cli, ["stylize-textures", "--style", "toon", "--report", str(report)]) == 1
    err = capsys.readouterr().err
    assert "stopped: unexpected AttributeError" in err and "Traceback" not in err
    assert json.loads(report.read_text())["summary"] == {"done": 0, "failed": 0}


def test_the_handler_itself_never_raises(cli, monkeypatch, capsys):
    def broken():
        raise MemoryError("no memory for a parser")

    monkeypatch.setattr(cli, "build_parser", broken)
    assert cli.command_handler(["models", "list"]) == 1
    assert "unexpected MemoryError" in capsys.readouterr().err


def test_a_path_that_is_not_utf8_is_reported_not_raised(cli, empty_scene, tmp_path, capsys):
    name = os.fsdecode(b"shot-\xff.blend")  # as Blender hands over a Latin-1 file name on Linux
    report = tmp_path / "r.json"
    code = _run(cli, ["stylize-textures", "--style", "pixel", "--blend", str(tmp_path / name),
                      "--report", str(report)])
    assert code == 1
    item = json.loads(report.read_text())["items"][0]
    assert item["status"] == "failed" and "no such file" in item["error"]
    assert "\\udcff" in capsys.readouterr().err  # shown escaped, not a UnicodeEncodeError


def test_an_excluded_collection_does_not_break_object_selection(cli, empty_scene, tmp_path):
    path = textured_blend(tmp_path / "layers.blend", 4)
    hidden = bpy.data.collections.new("Hidden")
    bpy.context.scene.collection.children.link(hidden)
    bpy.ops.mesh.primitive_plane_add()
    plane = bpy.context.active_object
    for collection in list(plane.users_collection):
        collection.objects.unlink(plane)
    hidden.objects.link(plane)
    bpy.context.view_layer.layer_collection.children["Hidden"].exclude = True
    bpy.ops.wm.save_mainfile()
    report = tmp_path / "r.json"
    assert _run(cli, ["stylize-textures", "--style", "pixel", "--blend", str(path), "--report", str(report)]) == 0
    assert json.loads(report.read_text())["items"][0]["status"] == "done"


# -- UI conventions and odd states (properties.py, panels/) ----------------------------
def test_device_menu_never_runs_ldconfig_on_redraw(addon, monkeypatch):
    properties = importlib.import_module(f"{ADDON_MODULE}.properties")
    hardware = importlib.import_module(f"{ADDON_MODULE}.ml.runtime.hardware")
    import ctypes.util

    calls = []
    real = ctypes.util.find_library
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: calls.append(name) or real(name))
    hardware.guess_devices.cache_clear()
    for _ in range(50):  # fifty redraws of the Device menu
        properties.device_items(None, bpy.context)
    assert len(calls) <= 1


class _Layout:
    """Stands in for Blender's UILayout (there is none in background mode): accepts every call."""

    def __init__(self, log):
        object.__setattr__(self, "log", log)

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.log.append((name, kwargs.get("text", "")))
            return _Layout(self.log)

        return call

    def __setattr__(self, name, value):
        pass


def _draw(context):
    panel_class = importlib.import_module(f"{ADDON_MODULE}.panels.sidebar").VIEW3D_PT_restyle
    log = []
    panel = type("Panel", (), {"layout": _Layout(log)})()
    panel_class.draw(panel, context)
    return log


@pytest.mark.parametrize("state", ["no scene", "no restyle settings", "style id gone", "custom style removed",
                                   "download offline"])
def test_panel_draws_odd_state_without_raising(addon, state):
    from types import SimpleNamespace

    settings = SimpleNamespace(style="toon", device="AUTO", output="FILES", tile_size=0)
    scene = SimpleNamespace(restyle=settings)
    if state == "no scene":
        scene = None
    elif state == "no restyle settings":
        scene = SimpleNamespace()
    elif state == "download offline":
        settings.style = "cyclegan-monet"
    elif state == "style id gone":
        settings.style = ""  # what Blender reads for a saved enum number whose item is gone
    else:
        settings.style = "custom-removed-last-week"
    context = SimpleNamespace(scene=scene, preferences=bpy.context.preferences)
    log = _draw(context)
    texts = " ".join(text for _, text in log)
    if state in ("no scene", "no restyle settings"):
        assert "No scene settings" in texts
    elif state == "download offline":
        assert not bpy.app.online_access
        assert "Online access is off" in texts or "started offline" in texts
        assert "Add Custom Style from File" in texts
    else:
        assert "not installed any more" in texts
        assert ("operator", "") in log  # the buttons are still there


def test_every_setting_and_menu_entry_has_a_title_case_label_and_a_tooltip(addon):
    properties = importlib.import_module(f"{ADDON_MODULE}.properties")
    small = {"a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with"}

    def title_cased(label):
        words = [w.lstrip("([") for w in label.split()]
        return all(not w or not w[0].islower() or (i and w in small) for i, w in enumerate(words))

    rna = properties.RestyleSettings.bl_rna
    for prop in rna.properties:
        if prop.identifier in ("rna_type", "name"):
            continue
        assert prop.description, f"{prop.identifier} has no tooltip"
        assert title_cased(prop.name), prop.name
        if prop.type == "ENUM" and not prop.is_enum_flag and len(prop.enum_items):
            for item in prop.enum_items:
                assert item.description and title_cased(item.name), (prop.identifier, item.identifier)
    for items in (properties.style_items(None, bpy.context), properties.device_items(None, bpy.context)):
        for identifier, label, description, *_ in items:
            assert description, (identifier, label)
            assert title_cased(label), label
    headings = [label for identifier, label, *_ in properties.style_items(None, bpy.context) if not identifier]
    assert "Downloaded GAN Styles" in headings


def test_a_photo_named_twice_is_imported_once(cli, empty_scene, tmp_path, capsys):
    from PIL import Image

    photo = tmp_path / "wall.png"
    Image.new("RGB", (24, 16), (120, 80, 40)).save(photo)
    report = tmp_path / "r.json"
    assert _run(cli, ["import-photo", str(photo), str(tmp_path / "." / "wall.png"), "--depth-model", "flat",
                      "--report", str(report)]) == 0
    assert "listed more than once" in capsys.readouterr().err
    assert [c.name for c in bpy.data.collections] == ["wall"]
    assert json.loads(report.read_text())["items"][0]["output"] == "wall"


def test_style_menu_survives_an_unreadable_custom_index(addon, tmp_path):
    properties = importlib.import_module(f"{ADDON_MODULE}.properties")
    custom = importlib.import_module(f"{ADDON_MODULE}.ml.models.custom")
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    (tmp_path / custom.INDEX).mkdir(parents=True)  # custom.json is a folder: reading it raises
    prefs.model_folder = str(tmp_path)
    try:
        items = properties.style_items(None, bpy.context)
    finally:
        prefs.model_folder = ""
    assert "toon" in [identifier for identifier, *_ in items]


def test_frame_zero_is_rendered_as_frame_zero_not_the_current_frame(cli, empty_scene, tmp_path, monkeypatch):
    scene = bpy.context.scene
    scene.frame_current = 7
    seen = {}

    def fake_render(scene, options, services):
        seen.update(start=options.frame_start, end=options.frame_end)
        return SimpleNamespace(summary=lambda: "rendered")

    monkeypatch.setattr(cli, "stylize_render", fake_render)
    assert _run(cli, ["stylize-render", "--style", "toon", "--frames", "0-2", "--output-dir", str(tmp_path)]) == 0
    # The operator reads frame_start 0 as "the current frame"; the command line's options say frame 0.
    assert seen == {"start": 0, "end": 2}  # (the user's frame is kept by the job itself: test_jobs_runner.py)


def test_import_photo_takes_folders_and_globs_a_shell_did_not_expand(cli, empty_scene, tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("p0.jpg", "p1.PNG", "p2.jpg"):
        Image.new("RGB", (24, 16), (90, 120, 200)).save(folder / name)
    (folder / "notes.txt").write_text("not a photo")
    report = tmp_path / "r.json"
    # A quoted glob, as Windows' cmd passes it, and a folder (its photos, not the text file).
    assert _run(cli, ["import-photo", str(folder / "p[01].*"), "--depth-model", "FLAT", "--report", str(report)]) == 0
    assert json.loads(report.read_text())["items"][0]["output"] == "p0, p1"
    assert _run(cli, ["import-photo", str(folder), "--depth-model", "FLAT", "--report", str(report)]) == 0
    assert json.loads(report.read_text())["items"][0]["output"] == "p0.001, p1.001, p2"
    empty = tmp_path / "empty"
    empty.mkdir()
    before = len(bpy.data.objects)
    assert _run(cli, ["import-photo", str(empty), "--depth-model", "FLAT"]) == 2
    assert "has no photos" in capsys.readouterr().err
    assert _run(cli, ["import-photo", str(folder / "q*.jpg"), "--depth-model", "FLAT"]) == 2
    assert "no file matches" in capsys.readouterr().err
    assert len(bpy.data.objects) == before
