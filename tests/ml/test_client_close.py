"""Job.close() on an unfinished job: the client is marked free only once the worker is.

Blender calls close() through a modal operator's cancel() when the window closes or another file
loads mid-job; nobody polls the job after that. These run a real worker, as tests/ml/test_worker.py.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ml.errors import JobCancelled
from ml.options import RestyleOptions
from ml.runtime.client import Job, WorkerClient
from ml.runtime.protocol import Event
from tests.ml.synthetic import photo_like

ROOT = Path(__file__).resolve().parents[2]
SMALL = photo_like(24, 20, seed=3)


@pytest.fixture(scope="module")
def client() -> Iterator[WorkerClient]:
    worker = WorkerClient(str(ROOT), threads=1, liveness_timeout=6.0)
    worker.start()
    yield worker
    if worker.process is not None and worker.process.poll() is None:
        os.kill(worker.process.pid, signal.SIGCONT)  # a test that failed may leave it stopped
    worker.shutdown()


@pytest.fixture(scope="module")
def expected(client: WorkerClient) -> np.ndarray:
    """The small job's result from a worker that nothing was closed on."""
    array = client.submit("toon", RestyleOptions(), [("a", SMALL)]).wait()["a"].array
    assert array is not None
    return array


def running_job(client: WorkerClient) -> Job:
    """A job the worker is in the middle of (many 64 px tiles of a slow style)."""
    job = client.submit("oil", RestyleOptions(tile_size=64), [("a", photo_like(512, 512))])
    while job.fraction == 0.0:
        job.poll()
        time.sleep(0.01)
    return job


def pending_for(client: WorkerClient, job: Job) -> list[str]:
    """The kinds of the events about ``job`` that arrived and nobody has read."""
    return [str(event.get("event")) for event in list(client.events.queue) if event.get("job") == job.id]


def test_closing_a_running_job_waits_until_the_worker_stopped_and_the_next_job_runs(client, expected):
    pid = client.pid
    job = running_job(client)
    job.close()
    assert not client.busy and not os.path.exists(job.folder)
    assert client.pid == pid  # it acknowledged the cancel: stopped, not killed
    time.sleep(0.3)  # time for anything the worker still had to say about the closed job
    # Its acknowledgement came before close() returned: it is not computing the closed job any more.
    # (The old close() marked the client free at once; the worker's "cancelled" came afterwards.)
    assert pending_for(client, job) == []
    result = client.submit("toon", RestyleOptions(), [("a", SMALL)]).wait()
    np.testing.assert_array_equal(result["a"].array, expected)
    assert client.pid == pid


def test_a_worker_that_ignores_the_cancel_is_killed_and_the_next_job_gets_a_fresh_one(client, expected):
    job = running_job(client)
    stuck = client.process
    assert stuck is not None
    os.kill(stuck.pid, signal.SIGSTOP)  # it can neither read the cancel nor answer it
    job.close()
    # Killed within the grace, not left stopped with the client marked free.
    assert stuck.poll() is not None
    assert not client.busy and not os.path.exists(job.folder)
    result = client.submit("toon", RestyleOptions(), [("a", SMALL)]).wait()
    assert client.process is not stuck
    np.testing.assert_array_equal(result["a"].array, expected)


def test_closing_a_job_the_worker_has_finished_keeps_the_worker(client, expected):
    pid = client.pid
    job = client.submit("toon", RestyleOptions(), [("a", SMALL)])
    deadline = time.monotonic() + 60
    while Event.DONE not in pending_for(client, job):  # finished, but not polled yet
        assert time.monotonic() < deadline, "the small job never finished"
        time.sleep(0.02)
    job.close()
    assert client.pid == pid and not client.busy and not os.path.exists(job.folder)


def test_closing_after_the_cancel_was_acknowledged_keeps_the_worker(client):
    pid = client.pid
    job = running_job(client)
    job.cancel()
    with pytest.raises(JobCancelled):
        job.wait()  # poll() read the acknowledgement and closed the job
    job.close()  # the operator's own clean-up closes it once more
    assert client.pid == pid and not client.busy
