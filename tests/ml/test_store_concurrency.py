"""Downloads that meet each other or a server that stalls: two downloads of one file never spoil
its partial file (an operating-system lock that ends with its process), Esc is heard while a
server does not answer, and a partial file longer than the server's file is fetched again
instead of being taken for the model."""

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


HOLD = """
import fcntl, os, sys, time
handle = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(handle, fcntl.LOCK_EX)
os.ftruncate(handle, 0)
os.write(handle, (sys.argv[2] + "\\n").encode())
print("held", flush=True)
time.sleep(60)
"""


def hold_lock(lock: Path, record: str) -> subprocess.Popen:
    """Another process holding the download lock (another Blender, a farm node)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), record], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.skipif(os.name != "posix", reason="the holder takes the lock with flock")
def test_a_download_lock_held_by_another_process_is_respected_and_ends_with_it(tmp_path, server, data):
    server.files["/model.pth"] = data
    root = tmp_path / "models"
    root.mkdir()
    lock = root / "model.pth.part.lock"
    holder = hold_lock(lock, "0 unknown")
    try:
        lock.write_text(f"{holder.pid} {scratch.system_identity()}\n", encoding="utf-8")  # who it is, for the message
        with pytest.raises(DownloadError, match=rf"already being downloaded by process {holder.pid} on this machine"):
            make_store(root, server).download(entry_for(data))
        assert not (root / "model.pth").exists()
    finally:
        holder.kill()  # a crash: nothing of it runs any more, and its lock ends with it
        holder.wait()
    assert make_store(root, server).download(entry_for(data))["model"].read_bytes() == data
    assert not lock.exists()


@pytest.mark.skipif(os.name != "posix", reason="the holder takes the lock with flock")
def test_a_lock_taken_on_another_machine_says_so(tmp_path, server, data):
    server.files["/model.pth"] = data
    root = tmp_path / "models"
    root.mkdir()
    holder = hold_lock(root / "model.pth.part.lock", "4242 farm-node-7/boot/ns")
    try:
        with pytest.raises(DownloadError, match="on another machine or container sharing the model folder"):
            make_store(root, server).download(entry_for(data))
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("left", ["empty", "dead-process", "half-written"])
def test_a_lock_file_nobody_holds_never_blocks(tmp_path, server, data, left):
    """A session that crashed, even between making the lock file and writing who it is, left it:
    an empty record blocked that model's download for good."""
    server.files["/model.pth"] = data
    root = tmp_path / "models"
    root.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    text = {"empty": "", "dead-process": f"{dead.stdout.strip()} {scratch.system_identity()}\n",
            "half-written": "12"}[left]
    (root / "model.pth.part.lock").write_text(text, encoding="utf-8")
    assert make_store(root, server).download(entry_for(data))["model"].read_bytes() == data
    assert not (root / "model.pth.part.lock").exists()


def test_two_sessions_finding_a_left_lock_at_once_never_both_download(tmp_path, server, data):
    """Both took a crashed session's lock over: one removed the other's fresh lock, and both wrote."""
    server.files["/model.pth"] = data
    server.delay["/model.pth"] = 0.02
    root = tmp_path / "models"
    root.mkdir()
    (root / "model.pth.part.lock").write_text("999999 gone\n", encoding="utf-8")
    start = threading.Barrier(2)
    results: list[object] = []

    def run() -> None:
        start.wait()
        try:
            results.append(make_store(root, server).download(entry_for(data)))
        except DownloadError as exc:
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(type(r).__name__ for r in results) == ["DownloadError", "dict"], results
    assert (root / "model.pth").read_bytes() == data


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
