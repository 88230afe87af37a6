"""Downloads that meet each other or a server that stalls: two downloads of one file never spoil
its partial file, Esc is heard while a server does not answer, and a partial file longer than
the server's file is fetched again instead of being taken for the model."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ml.errors import DownloadCancelled, DownloadError
from ml.models.store import ModelStore
from ml.runtime import scratch
from tests.ml import checkpoints
from tests.ml.http_server import FileServer
from tests.ml.test_store import entry_for, saved_bytes


@pytest.fixture
def server():
    with FileServer() as running:
        yield running


@pytest.fixture(scope="module")
def data() -> bytes:
    return saved_bytes(checkpoints.animegan2_state())


def make_store(root: Path, server: FileServer, timeout: float = 10, retries: int = 2,
               retry_wait: float = 0) -> ModelStore:
    return ModelStore(root, online=True, mirror=server.url, timeout=timeout, retries=retries, retry_wait=retry_wait)


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "unpinned"])
def test_a_second_download_of_the_same_file_is_refused_while_the_first_runs(tmp_path, server, data, pinned):
    """Both appended to one .part: a false 'tampered with' (pinned), a broken zip (unpinned) or a raw
    FileNotFoundError, and nothing installed."""
    server.files["/model.pth"] = data
    server.delay["/model.pth"] = 0.02  # 0.02 s a block of 64 KiB: about 3 s in all
    root = tmp_path / "models"
    entry = entry_for(data, pinned=pinned)
    outcome: dict[str, object] = {}

    def first() -> None:
        try:
            outcome["first"] = make_store(root, server).download(entry)
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome["first"] = exc

    thread = threading.Thread(target=first)
    thread.start()
    while not (root / "model.pth.part").exists():
        time.sleep(0.01)
    with pytest.raises(DownloadError, match=r"Test is already being downloaded in this Blender"):
        make_store(root, server).download(entry)
    thread.join(60)
    assert isinstance(outcome["first"], dict), outcome["first"]
    assert (root / "model.pth").read_bytes() == data
    assert sorted(p.name for p in root.iterdir() if p.name != "hashes.json") == ["model.pth"]  # no lock, no .part


def test_a_download_lock_of_another_running_process_is_respected(tmp_path, server, data):
    server.files["/model.pth"] = data
    root = tmp_path / "models"
    root.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (root / "model.pth.part.lock").write_text(f"{other.pid} {scratch.system_identity()}\n", encoding="utf-8")
        with pytest.raises(DownloadError, match=rf"already being downloaded by process {other.pid} on this machine"):
            make_store(root, server).download(entry_for(data))
        assert not (root / "model.pth").exists()
    finally:
        other.kill()
        other.wait()
    # Its process is gone (a crashed Blender): the lock is taken over and the download runs.
    assert make_store(root, server).download(entry_for(data))["model"].read_bytes() == data
    assert not (root / "model.pth.part.lock").exists()


def test_a_lock_of_another_machine_is_respected_until_nothing_was_written_for_long(tmp_path, server, data):
    server.files["/model.pth"] = data
    root = tmp_path / "models"
    root.mkdir()
    lock = root / "model.pth.part.lock"
    lock.write_text("4242 farm-node-7/boot/ns\n", encoding="utf-8")
    with pytest.raises(DownloadError, match="on another machine or container sharing the model folder"):
        make_store(root, server).download(entry_for(data))
    old = time.time() - 3600
    os.utime(lock, (old, old))  # that machine crashed an hour ago
    assert make_store(root, server).download(entry_for(data))["model"].read_bytes() == data


def test_cancel_is_heard_while_the_server_does_not_answer(tmp_path, server, data):
    """A server that accepts and never answers kept a cancelled download for every retry's timeout
    (about 93 s in the panel), and then said 'Could not reach', not 'cancelled'."""
    server.files["/model.pth"] = data
    server.stalled.add("/model.pth")
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(DownloadCancelled):
        make_store(tmp_path / "models", server, timeout=2, retries=3, retry_wait=1).download(
            entry_for(data), cancelled=cancel.is_set)
    assert time.monotonic() - started < 2 + 1.0  # one blocked attempt at most: no retry after the cancel
    server.release.set()


def test_a_partial_file_longer_than_the_servers_file_is_fetched_again(tmp_path, server, data):
    """A 416 was taken as 'complete': an over-long .part (the server's file plus junk) was installed and
    its wrong hash recorded, so every genuine download after it was refused."""
    server.files["/model.pth"] = data
    root = tmp_path / "models"
    root.mkdir()
    (root / "model.pth.part").write_bytes(data + b"junk" * 100)
    store = make_store(root, server)
    assert store.download(entry_for(data, pinned=False))["model"].read_bytes() == data
