"""Job folders a killed Blender left in the temporary directory are removed by the next
session; nothing of a running process, another machine or without the maker's record is."""

import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from ml.options import RestyleOptions
from ml.runtime import scratch
from ml.runtime.client import WorkerClient

pytestmark = pytest.mark.skipif(os.name != "posix",
                                reason="the sweep runs on POSIX only (elsewhere it removes nothing)")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def folder(root, name: str, owner: str | None) -> str:
    path = os.path.join(root, name)
    os.makedirs(path)
    with open(os.path.join(path, "in0.npy"), "wb") as f:
        f.write(b"x" * 100)
    if owner is not None:
        with open(os.path.join(path, scratch.OWNER_FILE), "w") as f:
            f.write(owner)
    return path


def test_only_folders_whose_maker_is_gone_are_removed(tmp_path):
    host = scratch.system_identity()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        gone = folder(tmp_path, "neural-restyle-job-a", f"{dead_pid()} {host}\n")
        gone_learn = folder(tmp_path, "neural-restyle-learn-b", f"{dead_pid()} {host}")
        kept = [
            folder(tmp_path, "neural-restyle-job-mine", f"{os.getpid()} {host}"),  # this session's
            folder(tmp_path, "neural-restyle-job-running", f"{alive.pid} {host}"),  # another running Blender's
            folder(tmp_path, "neural-restyle-job-elsewhere", f"{dead_pid()} another-machine"),  # a shared /tmp
            # Another container with the same host name: its process ids are not ours to look up.
            folder(tmp_path, "neural-restyle-job-container", f"{dead_pid()} {host}9"),
            folder(tmp_path, "neural-restyle-job-huge-pid", f"{2**40} {host}"),
            folder(tmp_path, "neural-restyle-job-old", None),  # no record: not ours to judge
            folder(tmp_path, "neural-restyle-job-garbled", "twelve"),
            folder(tmp_path, "someone-else", f"{dead_pid()} {host}"),
        ]
        assert sorted(scratch.remove_abandoned(str(tmp_path))) == sorted([gone, gone_learn])
        assert not os.path.exists(gone) and not os.path.exists(gone_learn)
        assert all(os.path.exists(os.path.join(path, "in0.npy")) for path in kept)
        assert scratch.remove_abandoned(str(tmp_path)) == []
    finally:
        alive.kill()
        alive.wait()


def test_make_folder_records_this_process_and_survives_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = scratch.make_folder("job")
    assert os.path.basename(path).startswith("neural-restyle-job-")
    with open(os.path.join(path, scratch.OWNER_FILE)) as f:
        assert f.read().split() == [str(os.getpid()), scratch.system_identity()]
    assert scratch.remove_abandoned() == [] and os.path.isdir(path)


def test_a_killed_session_s_folder_goes_when_the_next_session_starts_its_worker(tmp_path, monkeypatch):
    """End to end: a process submits a job and is killed before it ends; the next client removes its folder."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    script = (
        "import numpy as np, os, time, sys\n"
        f"sys.path.insert(0, {ROOT!r})\n"
        "from ml.runtime.client import WorkerClient\n"
        "from ml.options import RestyleOptions\n"
        f"client = WorkerClient({ROOT!r})\n"
        "job = client.submit('pixel', RestyleOptions(), [('a', np.zeros((8, 8, 3), np.float32))])\n"
        "print(job.folder, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    left = run.stdout.strip()
    assert left.startswith(str(tmp_path)) and os.path.isdir(left), run.stderr
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(scratch, "_swept", False)
    client = WorkerClient(ROOT)
    try:
        client.submit("pixel", RestyleOptions(), [("a", np.zeros((8, 8, 3), np.float32))]).wait()
    finally:
        client.shutdown()
    assert not os.path.exists(left)
