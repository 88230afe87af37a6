"""Red team: hostile model files and downloads, the custom style list, and a hung or starved worker.

Each case asserts the message a careful user needs, that nothing escapes as a raw exception,
and that the files and records on disk are exactly what they should be afterwards."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import signal
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import ml.models.loading
from ml.errors import (
    DownloadError,
    NotAModelFile,
    RestyleError,
    TemporaryFolderFull,
    UnsupportedModel,
    WorkerFailed,
    WorkerHung,
)
from ml.models import registry
from ml.models.catalog import ALL_STYLES, DEPTH_MODELS, ModelEntry, ModelFile, get_style
from ml.models.custom import (
    BACKUP,
    DAMAGED,
    INDEX,
    CustomStyleMissing,
    add_custom,
    read_list,
    remove_custom,
)
from ml.models.loading import load_style_network, read_state_dict
from ml.models.store import HASHES_FILE, ModelStore
from ml.options import RestyleOptions
from ml.runtime.client import WorkerClient
from tests.ml import checkpoints
from tests.ml.http_server import FileServer
from tests.ml.synthetic import photo_like

ROOT = Path(__file__).resolve().parents[2]
PORTAL = b"<!DOCTYPE html><html><body>Please log in to the hotel Wi-Fi</body></html>\n" * 40


def saved_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def unpinned(name: str = "model.pth", size: int | None = None, arch: str = "animegan2") -> ModelEntry:
    """A catalog entry like AnimeGANv2 Face Paint v1: no published hash, an estimated size."""
    file = ModelFile("model", name, f"https://upstream.invalid/weights/{name}", size or 8_601_086, arch=arch)
    return ModelEntry("test-model", "Test", "a test model", "gan", "", "", "MIT", False, (file,))


@pytest.fixture
def server():
    with FileServer() as running:
        yield running


def make_store(tmp_path: Path, server: FileServer, **kwargs: object) -> ModelStore:
    options = {"online": True, "mirror": server.url, "timeout": 5, "retries": 2, "retry_wait": 0, **kwargs}
    return ModelStore(tmp_path / "models", **options)  # type: ignore[arg-type]


def records(tmp_path: Path) -> dict:
    path = tmp_path / "models" / HASHES_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def store_files(tmp_path: Path) -> list[str]:
    folder = tmp_path / "models"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# -- downloads that must not poison trust -------------------------------------------------------


def test_captive_portal_page_is_not_trusted_and_the_genuine_file_still_installs(tmp_path, server):
    server.files["/model.pth"] = PORTAL
    store = make_store(tmp_path, server)
    with pytest.raises(NotAModelFile, match="not a usable model file.*web page"):
        store.download(unpinned())
    assert store_files(tmp_path) == [] and records(tmp_path) == {}
    genuine = saved_bytes(checkpoints.animegan2_state())
    server.files["/model.pth"] = genuine
    paths = store.download(unpinned())
    assert paths["model"].read_bytes() == genuine
    assert records(tmp_path) == {"model.pth": hashlib.sha256(genuine).hexdigest()}


def test_wrong_architecture_download_is_not_trusted(tmp_path, server):
    server.files["/model.pth"] = saved_bytes(checkpoints.transformer_state())
    with pytest.raises(NotAModelFile, match="not the expected AnimeGANv2 model .it holds fast-neural-style"):
        make_store(tmp_path, server).download(unpinned())
    assert store_files(tmp_path) == [] and records(tmp_path) == {}


def deflate_bomb(path: Path) -> Path:
    """An archive of the upstream layout whose first model expands to 20 MB of zeros (a few kB packed)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("saved_models/candy.pth", bytes(20_000_000))
    return path


def test_deflate_bomb_archive_is_refused_before_it_expands_and_not_trusted(tmp_path, server):
    server.files["/saved_models.zip"] = deflate_bomb(tmp_path / "bomb.zip").read_bytes()
    store = make_store(tmp_path, server)
    with pytest.raises(NotAModelFile, match="expands past the 9.5 MB the model can be"):
        store.download(get_style("fast-style-candy"))
    assert store_files(tmp_path) == [] and records(tmp_path) == {}
    server.files["/saved_models.zip"] = checkpoints.fast_style_zip(tmp_path / "genuine.zip").read_bytes()
    assert load_style_network(store.download(get_style("fast-style-candy")))[0] == "transformer_net"
    assert "saved_models.zip" in records(tmp_path)


def test_file_that_changes_between_attempts_is_fetched_whole_not_spliced(tmp_path, server):
    old = saved_bytes(checkpoints.animegan2_state())
    new = saved_bytes(checkpoints.animegan2_state(seed=9))
    server.files["/model.pth"] = old
    server.cut_after["/model.pth"] = [len(old) // 2]
    store = make_store(tmp_path, server, retries=1)
    with pytest.raises(DownloadError, match="stopped early"):
        store.download(unpinned())
    server.files["/model.pth"] = new  # upstream replaced the file before the user retried
    assert store.download(unpinned())["model"].read_bytes() == new
    assert server.requests[-1][1] == f"bytes={len(old) // 2}-"  # it asked to resume; the server said no
    assert store_files(tmp_path) == [HASHES_FILE, "model.pth"]


def test_remove_forgets_the_recorded_hash(tmp_path, server):
    server.files["/model.pth"] = saved_bytes(checkpoints.animegan2_state())
    store = make_store(tmp_path, server)
    store.download(unpinned())
    assert "model.pth" in records(tmp_path)
    assert store.remove(unpinned()) > 0
    assert records(tmp_path) == {} and store_files(tmp_path) == [HASHES_FILE]
    server.files["/model.pth"] = saved_bytes(checkpoints.animegan2_state(seed=1))  # a new upstream release
    assert store.download(unpinned())["model"].exists()


def test_endless_body_is_stopped_near_the_catalog_size_and_the_partial_file_deleted(tmp_path, server):
    server.endless.add("/model.pth")
    with pytest.raises(DownloadError, match="sent more than 1,173,576 bytes.*partial file deleted"):
        make_store(tmp_path, server).download(unpinned(size=100_000))
    assert store_files(tmp_path) == []
    assert server.sent["/model.pth"] < 64 << 20  # the client hung up instead of filling the disk


def test_announced_size_far_past_the_catalog_size_is_refused_before_writing(tmp_path, server):
    server.files["/model.pth"] = saved_bytes(checkpoints.animegan2_state())
    server.announce["/model.pth"] = 50_000_000_000
    with pytest.raises(DownloadError, match="announces 50,000,000,000 bytes.*nothing was downloaded"):
        make_store(tmp_path, server).download(unpinned())
    assert store_files(tmp_path) == []


@pytest.mark.parametrize("mirror", ["ftp://mirror.studio.local/models", "file:///etc"])
def test_mirror_that_is_not_http_is_a_clear_error_and_nothing_is_fetched(tmp_path, server, mirror):
    store = make_store(tmp_path, server, mirror=mirror)
    with pytest.raises(DownloadError, match="not an http:// or https:// address.*Mirror URL"):
        store.download(unpinned())
    assert server.requests == [] and store_files(tmp_path) == []


def test_progress_never_passes_100_percent_when_the_size_is_an_estimate(tmp_path, server):
    data = saved_bytes(checkpoints.animegan2_state())
    server.files["/model.pth"] = data
    seen: list[tuple[int, int | None]] = []
    make_store(tmp_path, server).download(unpinned(size=len(data) - 300_000), lambda d, t: seen.append((d, t)))
    assert all(total is not None and done <= total for done, total in seen)
    assert seen[-1] == (len(data), len(data))


PARAMS = {"animegan2": 2_143_552, "cyclegan": 11_378_179, "transformer_net": 1_679_235, "adain_decoder": 3_505_219,
          "adain_vgg": 20_024_396, "depth_anything_v2_vits": 24_785_089, "depth_anything_v2_vitb": 97_470_000}


def test_catalog_sizes_are_never_below_the_real_size():
    files = [f for entry in ALL_STYLES + DEPTH_MODELS for f in entry.files]
    for file in files:
        assert file.size is not None and file.size >= 4 * PARAMS[file.arch], file.filename
    candy = get_style("fast-style-candy")
    assert candy.download_size is not None and candy.download_size >= 24_000_000 and candy.size_is_estimate
    assert not get_style("animegan2-face-paint-v2").size_is_estimate  # published byte count


def test_removing_a_builtin_style_is_refused(tmp_path, server):
    with pytest.raises(RestyleError, match="built into Neural Restyle.*cannot be removed"):
        make_store(tmp_path, server).remove(get_style("toon"))


def test_installing_an_empty_file_is_refused_and_nothing_is_stored(tmp_path, server):
    empty = tmp_path / "face_paint_512_v1.pt"
    empty.write_bytes(b"")
    with pytest.raises(UnsupportedModel, match="empty .0 bytes."):
        make_store(tmp_path, server).install_file(unpinned(), "model", empty)
    assert store_files(tmp_path) == [] and records(tmp_path) == {}


# -- model files ---------------------------------------------------------------------------------


def test_small_zip_that_expands_past_the_limit_is_refused_before_loading(tmp_path, monkeypatch):
    plain = io.BytesIO(saved_bytes({"weight": torch.zeros(1 << 20)}))  # 4 MB of tensor
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(ml.models.loading, "MAX_MODEL_BYTES", 1 << 20)

    def never(*args, **kwargs):
        raise AssertionError("torch.load ran on a file that should have been refused")

    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(UnsupportedModel, match="would take 4 MB once loaded.*not loaded"):
        read_state_dict(path)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool], ids=["int64", "bool"])
def test_integer_or_bool_weights_are_refused_naming_the_tensor(tmp_path, dtype):
    state = checkpoints.animegan2_state()
    state["block_a.0.1.weight"] = state["block_a.0.1.weight"].to(dtype)
    path = checkpoints.save(state, tmp_path / "quantised.pth")
    name = str(dtype).removeprefix("torch.")
    with pytest.raises(UnsupportedModel, match=f"'block_a.0.1.weight' as {name}"):
        load_style_network({"model": path})


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_nan_or_infinite_weights_are_refused_naming_the_tensor(tmp_path, bad):
    state = checkpoints.animegan2_state()
    state["out_layer.0.weight"][0, 0, 0, 0] = bad
    path = checkpoints.save(state, tmp_path / "diverged.pth")
    with pytest.raises(UnsupportedModel, match="'out_layer.0.weight' holds 1 NaN or infinite"):
        load_style_network({"model": path})


def test_upper_case_safetensors_extension_loads(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "ANIME.SAFETENSORS"
    save_file(checkpoints.animegan2_state(), str(path))
    assert load_style_network({"model": path})[0] == "animegan2"


@pytest.mark.parametrize("cut", [5, 200, -1000], ids=["size-field", "header", "data"])
def test_truncated_safetensors_is_a_clear_error(tmp_path, cut):
    from safetensors.torch import save_file

    whole = tmp_path / "whole.safetensors"
    save_file(checkpoints.animegan2_state(), str(whole))
    path = tmp_path / "cut.safetensors"
    path.write_bytes(whole.read_bytes()[:cut])
    with pytest.raises(UnsupportedModel, match="cut.safetensors is truncated"):
        read_state_dict(path)


def test_truncated_pytorch_zip_is_a_clear_error(tmp_path):
    data = saved_bytes(checkpoints.animegan2_state())
    path = tmp_path / "half.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnsupportedModel, match="half.pth is truncated or damaged"):
        read_state_dict(path)


def test_web_page_saved_as_pth_is_named_as_such(tmp_path):
    path = tmp_path / "face_paint_512_v1.pt"
    path.write_bytes(PORTAL)
    with pytest.raises(UnsupportedModel, match="not a PyTorch model file .it holds a web page or text."):
        read_state_dict(path)


def test_folder_given_as_model_file(tmp_path):
    folder = tmp_path / "weights.pth"
    folder.mkdir()
    with pytest.raises(UnsupportedModel, match="is a folder, not a model file"):
        read_state_dict(folder)


def test_broken_symlink_given_as_model_file_and_a_good_link_works(tmp_path):
    dangling = tmp_path / "gone.pth"
    dangling.symlink_to(tmp_path / "nowhere.pth")
    with pytest.raises(UnsupportedModel, match="does not exist .or is a broken link."):
        read_state_dict(dangling)
    real = checkpoints.save(checkpoints.animegan2_state(), tmp_path / "real.pth")
    link = tmp_path / "link.pth"
    link.symlink_to(real)
    assert load_style_network({"model": link})[0] == "animegan2"


# -- the custom style list ------------------------------------------------------------------------


def three_custom_styles(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    source = checkpoints.save(checkpoints.animegan2_state(), tmp_path / "anime.pth")
    for name in ("Studio A", "Studio B", "Studio C"):
        add_custom(root, source, "animegan2", name)
    return root


@pytest.mark.parametrize(("name", "twice", "expected"), [
    ("Mon modèle été", False, "custom-mon-modele-ete"),  # was custom-mon-mod-le-t: accented letters were dropped
    ("Straße Ølberg Łódź Ħal", False, "custom-strasse-olberg-lodz-hal"),
    ("Dépth Look", False, "custom-style-depth-look"),  # custom-depth-... is how a depth model is known
    ("Depth", False, "custom-style-depth"),
    ("Depthless", False, "custom-depthless"),
    ("Ｓｔｕｄｉｏ　２", False, "custom-studio-2"),  # full-width letters and space
    ("Стиль", False, "custom-model"),  # no Latin letter at all
    ("Стиль", True, "custom-model-2"),  # ... added again: the next free id
])
def test_custom_ids_keep_accented_letters_as_plain_ones(tmp_path, name, twice, expected):
    root = tmp_path / "models"
    source = checkpoints.save(checkpoints.animegan2_state(), tmp_path / "anime.pth")
    if twice:
        add_custom(root, source, "animegan2", name)
    assert add_custom(root, source, "animegan2", name).id == expected


def test_truncated_custom_json_keeps_every_style_and_says_so(tmp_path):
    root = three_custom_styles(tmp_path)
    text = (root / INDEX).read_text()
    (root / INDEX).write_text(text[: text.index("custom-studio-c") + 5])  # cut inside the third entry
    listed = read_list(root)
    assert [item["id"] for item in listed.items] == ["custom-studio-a", "custom-studio-b", "custom-studio-c"]
    assert listed.problem is not None and "is damaged" in listed.problem


def test_garbage_custom_json_recovers_from_the_backup_and_is_kept_aside(tmp_path):
    root = three_custom_styles(tmp_path)
    damaged = b"\x00\xff garbage written by a crash"
    (root / INDEX).write_bytes(damaged)
    assert {i["name"] for i in read_list(root).items} == {"Studio A", "Studio B", "Studio C"}
    source = checkpoints.save(checkpoints.animegan2_state(seed=3), tmp_path / "more.pth")
    add_custom(root, source, "animegan2", "Studio D")  # the next change repairs the list
    assert (root / DAMAGED).read_bytes() == damaged
    intact = json.loads((root / INDEX).read_text())
    assert [i["name"] for i in intact] == ["Studio A", "Studio B", "Studio C", "Studio D"]
    assert read_list(root).problem is None and (root / BACKUP).exists()


def test_hand_edited_entry_pointing_outside_the_custom_folder_is_ignored_and_never_deleted(tmp_path):
    root = three_custom_styles(tmp_path)
    precious = tmp_path / "precious.txt"
    precious.write_text("the artist's notes")
    items = json.loads((root / INDEX).read_text())
    items.append({"id": "custom-evil", "name": "Evil", "file": "../../precious.txt", "arch": "AnimeGANv2"})
    (root / INDEX).write_text(json.dumps(items))
    assert "custom-evil" not in {item["id"] for item in read_list(root).items}
    with pytest.raises(RestyleError, match="'custom-evil' is not one of your custom styles"):
        remove_custom(root, "custom-evil")
    assert precious.read_text() == "the artist's notes"


@pytest.mark.parametrize("half", ["adain_decoder", "adain_vgg"])
def test_half_of_adain_is_not_added_and_the_message_names_the_missing_half(tmp_path, half):
    root = three_custom_styles(tmp_path)
    before = (root / INDEX).read_text()
    parts = checkpoints.adain_states()
    role = "decoder" if half == "adain_decoder" else "vgg"
    source = checkpoints.save(parts[role], tmp_path / f"{role}.pth")
    missing = "vgg_normalised.pth" if role == "decoder" else "decoder.pth"
    with pytest.raises(UnsupportedModel, match=f"only the AdaIN .*needs {missing}"):
        add_custom(root, source, half)
    assert (root / INDEX).read_text() == before and len(list((root / "custom").iterdir())) == 3


def test_deleted_custom_file_names_where_it_was_and_re_adding_repairs_it(tmp_path):
    root = three_custom_styles(tmp_path)
    path = root / "custom" / "custom-studio-b.pth"
    path.unlink()
    with pytest.raises(CustomStyleMissing, match=f"missing: it was at {path}.*Add Custom Style from File"):
        registry.describe("custom-studio-b", root)
    source = checkpoints.save(checkpoints.animegan2_state(), tmp_path / "again.pth")
    assert add_custom(root, source, "animegan2", "Studio B").id == "custom-studio-b"
    assert registry.describe("custom-studio-b", root).name == "Studio B"
    assert len(read_list(root).items) == 3


# -- the worker --------------------------------------------------------------------------------


@pytest.fixture
def quick_client():
    client = WorkerClient(str(ROOT), threads=1, liveness_timeout=6.0)  # heartbeats come every second
    client.start()
    yield client
    if client.process is not None and client.process.poll() is None:
        os.kill(client.process.pid, signal.SIGCONT)
    client.shutdown()


def test_stopped_worker_fails_the_job_within_the_timeout_and_is_replaced(quick_client):
    job = quick_client.submit("oil", RestyleOptions(tile_size=64), [("a", photo_like(512, 512))])
    while job.fraction == 0.0:
        job.poll()
        time.sleep(0.02)
    process = quick_client.process
    os.kill(quick_client.pid, signal.SIGSTOP)
    started = time.monotonic()
    with pytest.raises(WorkerHung, match=r"stopped answering in the middle of the job .no message for \d+ s"):
        job.wait()
    assert time.monotonic() - started < 120  # detected (a hung worker used to block forever), not timed
    assert process.poll() is not None and not os.path.exists(job.folder) and not quick_client.busy
    assert quick_client.submit("pixel", RestyleOptions(), [("a", photo_like(8, 8))]).wait()["a"].array is not None


def test_stopped_idle_worker_is_detected_by_the_next_request(quick_client):
    os.kill(quick_client.pid, signal.SIGSTOP)
    with pytest.raises(WorkerHung, match="stopped answering during a ping"):
        quick_client.ping()
    assert quick_client.ping() >= 0.0  # a fresh worker answers


def test_full_temporary_folder_is_a_clear_error_and_leaves_nothing(quick_client, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    with pytest.raises(TemporaryFolderFull, match=f"temporary folder {tmp_path} failed .No space left on device"):
        quick_client.submit("toon", RestyleOptions(), [("a", photo_like(8, 8))])
    assert list(tmp_path.iterdir()) == [] and not quick_client.busy


def test_missing_temporary_folder_is_a_clear_error(quick_client, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "deleted-by-a-cleaner"))
    with pytest.raises(TemporaryFolderFull, match="No such file or directory"):
        quick_client.submit("toon", RestyleOptions(), [("a", photo_like(8, 8))])


def test_worker_refuses_nan_weights_and_stays_warm(quick_client, tmp_path):
    state = checkpoints.animegan2_state()
    state["block_b.0.1.weight"][0] = float("nan")
    path = checkpoints.save(state, tmp_path / "nan.pth")
    pid = quick_client.pid
    with pytest.raises(WorkerFailed, match="'block_b.0.1.weight' holds .* NaN or infinite"):
        quick_client.inspect(str(path))
    with pytest.raises(WorkerFailed, match="NaN or infinite"):
        quick_client.submit("custom-x", RestyleOptions(), [("a", photo_like(8, 8))], files={"model": str(path)}).wait()
    assert quick_client.pid == pid


def test_malformed_and_incomplete_requests_do_not_kill_the_worker(quick_client):
    pid = quick_client.pid
    assert quick_client.process is not None and quick_client.process.stdin is not None
    quick_client.process.stdin.write("this is not JSON\n")
    quick_client.process.stdin.flush()
    quick_client._send(op="run", job="99", style="toon")  # no items: the guarded handler answers
    error = quick_client._answer(lambda e: e.get("event") == "error" and e.get("job") == "99", "test", 10.0)
    assert "items" in error["message"]
    assert quick_client.ping() < 5.0 and quick_client.pid == pid
