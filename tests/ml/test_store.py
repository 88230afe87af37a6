import hashlib
import io
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ml.errors import (
    ChecksumMismatch,
    DiskFull,
    DownloadCancelled,
    ModelNotFound,
    NetworkUnavailable,
    OnlineAccessDisabled,
    TruncatedDownload,
)
from ml.models.catalog import ModelEntry, ModelFile, get_style
from ml.models.loading import load_style_network
from ml.models.store import ModelStore
from tests.ml import checkpoints
from tests.ml.http_server import FileServer


def saved_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def entry_for(data: bytes, name: str = "model.pth", pinned: bool = True) -> ModelEntry:
    sha = hashlib.sha256(data).hexdigest() if pinned else None
    file = ModelFile("model", name, f"https://upstream.invalid/weights/{name}", len(data), sha)
    return ModelEntry("test-model", "Test", "a test model", "gan", "", "", "MIT", False, (file,))


@pytest.fixture
def server():
    with FileServer() as running:
        yield running


def store(tmp_path: Path, server: FileServer, online: bool = True) -> ModelStore:
    return ModelStore(tmp_path / "models", online=online, mirror=server.url, timeout=5, retries=3, retry_wait=0)


def test_download_through_the_mirror_verifies_and_loads(tmp_path, server):
    data = saved_bytes(checkpoints.animegan2_state())
    server.files["/model.pth"] = data
    seen = []
    paths = store(tmp_path, server).download(entry_for(data), progress=lambda done, total: seen.append((done, total)))
    assert paths["model"].read_bytes() == data
    assert seen[-1] == (len(data), len(data))
    assert load_style_network(paths)[0] == "animegan2"
    assert not list((tmp_path / "models").glob("*.part"))


def test_interrupted_download_resumes_with_a_range_request(tmp_path, server):
    data = saved_bytes(checkpoints.transformer_state())
    server.files["/model.pth"] = data
    server.cut_after["/model.pth"] = [len(data) // 3]
    store(tmp_path, server).download(entry_for(data))
    assert (tmp_path / "models" / "model.pth").read_bytes() == data
    assert server.requests[1] == ("/model.pth", f"bytes={len(data) // 3}-")


def test_cancelled_download_resumes_later(tmp_path, server):
    data = saved_bytes(checkpoints.transformer_state())
    server.files["/model.pth"] = data
    model_store = store(tmp_path, server)
    calls = []
    with pytest.raises(DownloadCancelled):
        model_store.download(entry_for(data), progress=lambda d, t: calls.append(d), cancelled=lambda: len(calls) > 3)
    part = tmp_path / "models" / "model.pth.part"
    assert 0 < part.stat().st_size < len(data)
    model_store.download(entry_for(data))
    assert server.requests[-1][1] is not None and (tmp_path / "models" / "model.pth").read_bytes() == data


def test_checksum_mismatch_is_refused_and_removed(tmp_path, server):
    data = saved_bytes(checkpoints.animegan2_state())
    server.files["/model.pth"] = data[:-10] + b"tampered!!"
    with pytest.raises(ChecksumMismatch, match="tampered"):
        store(tmp_path, server).download(entry_for(data))
    assert not list((tmp_path / "models").iterdir()) or not (tmp_path / "models" / "model.pth").exists()
    assert not (tmp_path / "models" / "model.pth.part").exists()


def test_unpinned_file_records_its_hash_and_refuses_a_later_different_file(tmp_path, server):
    data = saved_bytes(checkpoints.animegan2_state())
    server.files["/model.pth"] = data
    model_store = store(tmp_path, server)
    entry = entry_for(data, pinned=False)
    model_store.download(entry)
    assert not model_store.is_pinned(entry)
    model_store.path_of(entry.files[0]).unlink()  # lost, not removed: the record stays
    server.files["/model.pth"] = saved_bytes(checkpoints.animegan2_state(seed=1))
    with pytest.raises(ChecksumMismatch, match="first downloaded on this machine"):
        model_store.download(entry)
    assert not model_store.is_installed(entry)
    model_store.remove(entry)  # Remove forgets the record: the next download is checked afresh
    assert model_store.recorded_hash("model.pth") is None
    model_store.download(entry)
    assert model_store.is_installed(entry)


def test_truncated_file_after_every_retry_is_a_clear_error(tmp_path, server):
    data = saved_bytes(checkpoints.transformer_state())
    server.files["/model.pth"] = data
    server.cut_after["/model.pth"] = [1000, 1000, 1000]
    with pytest.raises(TruncatedDownload, match="run Download again to resume"):
        store(tmp_path, server).download(entry_for(data))


def test_not_found_and_no_network_and_offline(tmp_path, server):
    data = b"x" * 100
    with pytest.raises(ModelNotFound, match="404"):
        store(tmp_path, server).download(entry_for(data))
    dead = ModelStore(tmp_path / "m2", online=True, mirror="http://127.0.0.1:9", timeout=2, retries=2, retry_wait=0)
    with pytest.raises(NetworkUnavailable, match="after 2 attempts"):
        dead.download(entry_for(data))
    with pytest.raises(OnlineAccessDisabled, match="Add Custom Style from File"):
        store(tmp_path, server, online=False).download(entry_for(data))
    assert server.requests == [("/model.pth", None)]  # offline made no request


def test_fast_style_archive_installs_all_its_models(tmp_path, server):
    archive = checkpoints.fast_style_zip(tmp_path / "saved_models.zip")
    server.files["/saved_models.zip"] = archive.read_bytes()
    model_store = store(tmp_path, server)
    candy = get_style("fast-style-candy")
    paths = model_store.download(candy)
    assert load_style_network(paths)[0] == "transformer_net"
    assert model_store.is_installed(get_style("fast-style-udnie"))  # same archive, no second download
    assert len(server.requests) == 1


def test_install_from_file_checks_the_pinned_hash(tmp_path, server):
    data = saved_bytes(checkpoints.animegan2_state())
    good = tmp_path / "good.pth"
    good.write_bytes(data)
    model_store = store(tmp_path, server, online=False)
    entry = entry_for(data)
    assert model_store.install_file(entry, "model", good).read_bytes() == data
    model_store.remove(entry)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(data + b"!")
    with pytest.raises(ChecksumMismatch):
        model_store.install_file(replace(entry), "model", bad)


def test_catalog_entries_have_what_the_ui_shows():
    paprika = get_style("animegan2-paprika")
    assert paprika.non_commercial and "non-commercial" in paprika.license
    assert get_style("animegan2-face-paint-v2").files[0].sha256.startswith("06b88a20")
    assert [f.role for f in get_style("adain").files] == ["decoder", "vgg"]


def test_disk_full_is_a_clear_error_and_leaves_no_partial_file(tmp_path, server, monkeypatch):
    import errno

    import ml.models.store

    data = saved_bytes(checkpoints.transformer_state())
    server.files["/model.pth"] = data
    real_open = open

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, block):
            raise OSError(errno.ENOSPC, "No space left on device")

    def opener(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        return FullDisk(handle) if str(path).endswith(".part") and "b" in mode and "r" not in mode else handle

    monkeypatch.setattr(ml.models.store, "open", opener, raising=False)
    with pytest.raises(DiskFull, match="is full"):
        store(tmp_path, server).download(entry_for(data))
    assert not (tmp_path / "models" / "model.pth.part").exists()
