"""Red team in Blender: the model manager's operators under hostile downloads and bad files.

Each case asserts the message the artist sees, that the operator cancels instead of raising a
traceback, and that the model folder, the custom style list and the scene are as before."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import threading
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import bpy
import pytest
import torch

from tests.blender import scenes
from tests.blender.scenes import pixels_of
from tests.blender.support import ADDON_MODULE
from tests.ml import checkpoints
from tests.ml.http_server import FileServer

PORTAL = b"<html><body>Sign in to continue to the guest network</body></html>\n" * 50


def addon_module(name: str):
    return importlib.import_module(f"{ADDON_MODULE}.{name}")


def saved_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


@pytest.fixture
def models(addon, tmp_path):
    """An empty model folder and a local mirror, online access on."""
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    bpy.context.preferences.system.use_online_access = True
    with FileServer() as server:
        prefs.mirror_url, prefs.model_folder = server.url, str(tmp_path / "models")
        yield SimpleNamespace(server=server, root=tmp_path / "models")
        prefs.mirror_url, prefs.model_folder = "", ""
    bpy.context.preferences.system.use_online_access = False


def folder_state(root: Path) -> dict[str, str]:
    """Every file under the model folder with its digest."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# -- download, remove ---------------------------------------------------------------------------


def test_offline_download_is_greyed_out_with_a_reason(models):
    bpy.context.preferences.system.use_online_access = False
    with pytest.raises(RuntimeError, match=r"Online access is off \(Preferences > System > Network"):
        bpy.ops.restyle.download_model(model_id="animegan2-face-paint-v1")
    assert models.server.requests == [] and folder_state(models.root) == {}


def test_started_offline_names_the_command_line_not_preferences(models, monkeypatch):
    bpy.context.preferences.system.use_online_access = False
    monkeypatch.setattr(addon_module("preferences"), "started_offline", lambda: True)
    with pytest.raises(RuntimeError, match=r"started offline \(e.g. with --offline-mode\)") as info:
        bpy.ops.restyle.download_model(model_id="animegan2-face-paint-v1")
    assert "Preferences" not in str(info.value)
    store = addon_module("preferences").model_store(bpy.context)
    with pytest.raises(addon_module("ml.errors").OnlineAccessDisabled, match="started offline"):
        store.download(addon_module("ml.models.catalog").get_style("animegan2-face-paint-v1"))


def test_captive_portal_download_cancels_records_nothing_and_the_real_file_installs_later(models):
    models.server.files["/face_paint_512_v1.pt"] = PORTAL
    with pytest.raises(RuntimeError, match="face_paint_512_v1.pt from .* is not a usable model file"):
        bpy.ops.restyle.download_model(model_id="animegan2-face-paint-v1")
    assert folder_state(models.root) == {}
    models.server.files["/face_paint_512_v1.pt"] = saved_bytes(checkpoints.animegan2_state())
    assert bpy.ops.restyle.download_model(model_id="animegan2-face-paint-v1") == {"FINISHED"}
    assert set(folder_state(models.root)) == {"face_paint_512_v1.pt", "hashes.json"}


def test_endless_download_is_stopped_and_leaves_no_partial_file(models):
    models.server.endless.add("/face_paint_512_v1.pt")
    with pytest.raises(RuntimeError, match="sent more than .* bytes.*partial file deleted"):
        bpy.ops.restyle.download_model(model_id="animegan2-face-paint-v1")
    assert folder_state(models.root) == {}


def test_remove_forgets_the_first_download_so_a_new_release_installs(models):
    models.server.files["/face_paint_512_v1.pt"] = saved_bytes(checkpoints.animegan2_state())
    assert bpy.ops.restyle.download_model(model_id="animegan2-face-paint-v1") == {"FINISHED"}
    assert bpy.ops.restyle.remove_model(model_id="animegan2-face-paint-v1") == {"FINISHED"}
    assert json.loads((models.root / "hashes.json").read_text()) == {}
    models.server.files["/face_paint_512_v1.pt"] = saved_bytes(checkpoints.animegan2_state(seed=5))
    assert bpy.ops.restyle.download_model(model_id="animegan2-face-paint-v1") == {"FINISHED"}


@pytest.mark.parametrize("style", ["toon", "depth-builtin-fast"])
def test_removing_a_builtin_style_is_an_error(models, style):
    with pytest.raises(RuntimeError, match="built into Neural Restyle: it has no file and cannot be removed"):
        bpy.ops.restyle.remove_model(model_id=style)
    assert folder_state(models.root) == {}


def test_remove_asks_before_deleting(models):
    """In the UI, Remove opens a confirmation naming the size; nothing is deleted before the click."""
    models.server.files["/face_paint_512_v1.pt"] = saved_bytes(checkpoints.animegan2_state())
    assert bpy.ops.restyle.download_model(model_id="animegan2-face-paint-v1") == {"FINISHED"}
    before = folder_state(models.root)
    asked = {}

    def invoke_confirm(operator, event, **kwargs):
        asked.update(kwargs)
        return {"CANCELLED"}  # the artist moved the mouse away

    operator_class = addon_module("operators.models").RESTYLE_OT_remove_model
    fake = SimpleNamespace(model_id="animegan2-face-paint-v1", report=lambda *a: None)
    fake._describe = lambda context: operator_class._describe(fake, context)
    context = SimpleNamespace(preferences=bpy.context.preferences,
                              window_manager=SimpleNamespace(invoke_confirm=invoke_confirm))
    assert operator_class.invoke(fake, context, None) == {"CANCELLED"}
    assert folder_state(models.root) == before
    assert "Anime (Face Paint v1)" in asked["title"] and "8.6 MB" in asked["message"]


def test_download_thread_gets_plain_python_only(models, monkeypatch):
    """Everything from bpy is read on the main thread; the thread's task holds no bpy object."""
    models_module = addon_module("jobs.models")
    preferences = addon_module("preferences")
    threads = []
    real = preferences.model_store

    def recording(context):
        threads.append(threading.current_thread() is threading.main_thread())
        return real(context)

    monkeypatch.setattr(preferences, "model_store", recording)
    models.server.files["/face_paint_512_v1.pt"] = saved_bytes(checkpoints.animegan2_state())
    assert bpy.ops.restyle.download_model(model_id="animegan2-face-paint-v1") == {"FINISHED"}
    assert threads == [True]
    task = models_module.DownloadJob(real(bpy.context), addon_module("ml.models.catalog").get_style("cyclegan-monet"))
    assert not any(type(value).__module__.startswith("bpy") for value in vars(task).values())
    assert not any(type(value).__module__.startswith("bpy") for value in vars(task.store).values())


def test_esc_ends_a_download_within_a_second_while_the_server_does_not_answer(models):
    """The job waited for the blocked thread: about 93 s of "Esc to cancel" doing nothing."""
    import time

    jobs_models, base = addon_module("jobs.models"), addon_module("jobs.base")
    models.server.files["/face_paint_512_v1.pt"] = saved_bytes(checkpoints.animegan2_state())
    models.server.stalled.add("/face_paint_512_v1.pt")
    job = jobs_models.start_download("animegan2-face-paint-v1", base.services_of(bpy.context))
    try:
        time.sleep(0.2)
        job.cancel()
        cancelled_at = time.monotonic()
        with pytest.raises(addon_module("ml.errors").JobCancelled, match="Download cancelled"):
            while not job.poll():
                time.sleep(0.05)
        assert time.monotonic() - cancelled_at < jobs_models.CANCEL_WAIT_S + 0.5
    finally:
        job.close()
        models.server.release.set()
        job.thread.join(30)
    assert not (models.root / "face_paint_512_v1.pt").exists()
    assert not (models.root / "face_paint_512_v1.pt.part.lock").exists()  # the thread let go of it


def test_download_progress_before_the_first_byte_says_zero_not_unknown(models):
    jobs_models, base = addon_module("jobs.models"), addon_module("jobs.base")
    entry = addon_module("ml.models.catalog").get_style("animegan2-face-paint-v1")
    job = jobs_models.DownloadJob(base.services_of(bpy.context).store, entry)  # not started
    assert job.text == "Downloading Anime (Face Paint v1): 0 MB of 8.6 MB (0%)"


def test_add_from_file_into_a_model_folder_that_is_a_file_says_what_to_change(models, tmp_path):
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    prefs.model_folder = str(blocker)
    source = checkpoints.save(checkpoints.animegan2_state(), tmp_path / "mine.pth")
    with pytest.raises(RuntimeError, match=r"cannot be created \(.*\): choose another one in Preferences"):
        bpy.ops.restyle.install_model_file(filepath=str(source))
    assert blocker.read_text() == "not a folder"


def test_offline_the_published_fast_style_archive_installs_its_four_styles(models, tmp_path):
    """Offline, Add from File refused saved_models.zip ('accepted are .pth ...'): the four styles
    could only be added as custom styles, one file at a time."""
    bpy.context.preferences.system.use_online_access = False
    (tmp_path / "downloads").mkdir()
    archive = checkpoints.fast_style_zip(tmp_path / "downloads" / "saved_models.zip")
    assert bpy.ops.restyle.install_model_file(filepath=str(archive)) == {"FINISHED"}
    catalog = addon_module("ml.models.catalog")
    store = addon_module("jobs.base").services_of(bpy.context).store
    for style in ("fast-style-candy", "fast-style-mosaic", "fast-style-rain-princess", "fast-style-udnie"):
        assert store.is_installed(catalog.get_style(style)), style
    assert sorted(p.name for p in models.root.iterdir() if p.suffix == ".pth") == [
        "candy.pth", "mosaic.pth", "rain_princess.pth", "udnie.pth"]
    assert not [p for p in models.root.iterdir() if p.name.endswith((".part", ".lock", ".extracting"))]
    cli = addon_module("cli")
    other = tmp_path / "other.zip"
    import zipfile
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "no models here")
    assert cli.main(["models", "install", str(other)]) == 1


def test_esc_after_the_last_byte_lets_the_install_finish_instead_of_saying_cancelled(models, monkeypatch):
    """Esc while the file was being checked said "Download cancelled", and then the model was installed."""
    import time

    jobs_models, base = addon_module("jobs.models"), addon_module("jobs.base")
    store_module = addon_module("ml.models.store")
    real = store_module.ModelStore._accept

    def slow_accept(self, *args, **kwargs):
        time.sleep(jobs_models.CANCEL_WAIT_S + 1.0)  # a big file's checksum
        return real(self, *args, **kwargs)

    monkeypatch.setattr(store_module.ModelStore, "_accept", slow_accept)
    models.server.files["/face_paint_512_v1.pt"] = saved_bytes(checkpoints.animegan2_state())
    job = jobs_models.start_download("animegan2-face-paint-v1", base.services_of(bpy.context))
    try:
        while not job.fetched:
            time.sleep(0.02)
        job.cancel()
        while not job.poll():
            time.sleep(0.05)
    finally:
        job.close()
        job.thread.join(30)
    assert (models.root / "face_paint_512_v1.pt").is_file()


@pytest.mark.parametrize("folder", ["//models", "models"])
def test_a_model_folder_that_is_not_absolute_is_not_used(addon, folder, tmp_path, monkeypatch):
    """'//models' became 'models' in the folder Blender started in (Blender warns that a preference
    does not take '//'): models went wherever that was."""
    monkeypatch.chdir(tmp_path)
    preferences = addon_module("preferences")
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.model_folder = folder
    try:
        root = preferences.model_root(bpy.context)
        assert root.is_absolute() and tmp_path not in root.parents
        assert root == preferences.model_root(bpy.context) and not (tmp_path / "models").exists()
    finally:
        prefs.model_folder = ""
    assert preferences.model_root(bpy.context) == root  # the extension's own folder, as with none set


# -- add custom style from file -----------------------------------------------------------------


def bad_file(kind: str, folder: Path) -> tuple[Path, str]:
    """A file (or folder) a user might pick, and the part of the message it must produce."""
    if kind == "folder":
        path = folder / "weights.pth"
        path.mkdir()
        return path, "is a folder, not a model file"
    if kind == "empty":
        path = folder / "empty.pth"
        path.write_bytes(b"")
        return path, r"empty \(0 bytes\)"
    if kind == "web-page":
        path = folder / "face_paint_512_v1.pt"
        path.write_bytes(PORTAL)
        return path, r"not a PyTorch model file \(it holds a web page or text\)"
    if kind == "int-weights":
        state = checkpoints.animegan2_state()
        state["block_c.0.1.weight"] = state["block_c.0.1.weight"].to(torch.int32)
        return checkpoints.save(state, folder / "int.pth"), "'block_c.0.1.weight' as int32"
    if kind == "nan-weights":
        state = checkpoints.animegan2_state()
        state["block_e.0.1.weight"][0] = float("nan")
        return checkpoints.save(state, folder / "nan.pth"), "'block_e.0.1.weight' holds .* NaN or infinite"
    if kind == "adain-decoder-only":
        path = checkpoints.save(checkpoints.adain_states()["decoder"], folder / "my_decoder.pth")
        return path, "only the AdaIN decoder: a style needs vgg_normalised.pth"
    if kind == "adain-vgg-only":
        path = checkpoints.save(checkpoints.adain_states()["vgg"], folder / "my_vgg.pth")
        return path, "only the AdaIN VGG encoder: a style needs decoder.pth"
    if kind == "truncated-safetensors":
        from safetensors.torch import save_file

        whole = folder / "whole.safetensors"
        save_file(checkpoints.animegan2_state(), str(whole))
        path = folder / "cut.safetensors"
        path.write_bytes(whole.read_bytes()[:4000])
        return path, "cut.safetensors is truncated"
    if kind == "onnx":
        path = folder / "model.onnx"
        path.write_bytes(b"\x08\x07" * 100)
        return path, "model.onnx is not a model file: accepted are .pth"
    if kind == "broken-link":
        path = folder / "linked.pth"
        path.symlink_to(folder / "moved-away.pth")
        return path, r"does not exist \(or is a broken link\)"
    if kind == "bomb":
        plain = io.BytesIO(saved_bytes({"weight": torch.zeros(1 << 20)}))
        path = folder / "bomb.pth"
        import zipfile

        with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                dst.writestr(info.filename, src.read(info))
        return path, "would take 4 MB once loaded"
    raise AssertionError(kind)


BAD_KINDS = ["folder", "empty", "web-page", "int-weights", "nan-weights", "adain-decoder-only", "adain-vgg-only",
             "truncated-safetensors", "onnx", "broken-link", "bomb"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_add_custom_style_refuses_bad_files_clearly(models, empty_scene, tmp_path, monkeypatch, kind):
    if kind == "bomb":  # a 4 MB tensor against a 1 MB limit stands for 4 GB against the real one
        store = addon_module("ml.models.store")
        monkeypatch.setattr(addon_module("jobs.models"), "check_model_file",
                            lambda path, name=None: store.check_model_file(path, "", 1 << 20, name))
    path, message = bad_file(kind, tmp_path)
    style_before = bpy.context.scene.restyle.style
    before = folder_state(models.root)
    with pytest.raises(RuntimeError, match=f"was not added: .*{message}"):
        bpy.ops.restyle.install_model_file(filepath=str(path))
    assert folder_state(models.root) == before
    assert bpy.context.scene.restyle.style == style_before


def test_upper_case_safetensors_is_added(models, empty_scene, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "STUDIO_LOOK.SAFETENSORS"
    save_file(checkpoints.animegan2_state(), str(path))
    assert bpy.ops.restyle.install_model_file(filepath=str(path), name="Studio Look") == {"FINISHED"}
    assert bpy.context.scene.restyle.style == "custom-studio-look"
    assert (models.root / "custom" / "custom-studio-look.safetensors").is_file()


@pytest.fixture
def textured_cube(empty_scene, tmp_path):
    return scenes.textured_cube(tmp_path / "bark.png", 32, seed=5)


def test_deleted_custom_style_file_says_where_it_was_not_click_download(models, textured_cube, tmp_path):
    source = checkpoints.save(checkpoints.animegan2_state(), tmp_path / "mine.pth")
    assert bpy.ops.restyle.install_model_file(filepath=str(source), name="Mine") == {"FINISHED"}
    model_file = models.root / "custom" / "custom-mine.pth"
    model_file.unlink()
    original = pixels_of(bpy.data.images["bark.png"]).copy()
    with pytest.raises(RuntimeError, match=f"missing: it was at {model_file}") as info:
        bpy.ops.restyle.stylize_textures()
    assert "click Download" not in str(info.value)
    assert textured_cube.material_slots[0].material.name == "Bark"
    assert (pixels_of(bpy.data.images["bark.png"]) == original).all()
    assert sorted(i.name for i in bpy.data.images) == ["bark.png"]


def test_corrupted_custom_list_keeps_earlier_styles_in_the_menu(models, empty_scene, tmp_path):
    for name, seed in (("First Look", 0), ("Second Look", 1)):
        source = checkpoints.save(checkpoints.animegan2_state(seed=seed), tmp_path / f"{seed}.pth")
        assert bpy.ops.restyle.install_model_file(filepath=str(source), name=name) == {"FINISHED"}
    (models.root / "custom.json").write_text('[{"id": "custom-first-look", "na')  # a crash mid-write
    properties = addon_module("properties")
    ids = {ident for ident, *_ in properties.style_items(None, bpy.context)}
    assert {"custom-first-look", "custom-second-look"} <= ids


def test_published_file_with_a_pinned_hash_installs_as_its_style(models, empty_scene, tmp_path, monkeypatch):
    catalog = addon_module("ml.models.catalog")
    data = saved_bytes(checkpoints.animegan2_state())
    entry = catalog._BY_ID["animegan2-face-paint-v2"]
    pinned = (replace(entry.files[0], sha256=hashlib.sha256(data).hexdigest()),)
    monkeypatch.setitem(catalog._BY_ID, entry.id, replace(entry, files=pinned))
    monkeypatch.setattr(addon_module("jobs.models"), "ALL_STYLES", (replace(entry, files=pinned),))
    path = tmp_path / "FACE_PAINT_512_V2.PT"
    path.write_bytes(data)
    assert bpy.ops.restyle.install_model_file(filepath=str(path)) == {"FINISHED"}
    assert (models.root / "face_paint_512_v2.pt").read_bytes() == data
