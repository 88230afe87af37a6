"""Cancel stops the worker: a job whose worker job is in flight goes through that worker job's
acknowledge-or-kill path (ml/runtime/client.py Job.poll) before it reports the cancellation, so the
worker is never left computing for nobody while the next job queues behind it."""

from __future__ import annotations

import importlib
import math

import bpy
import numpy as np
import pytest

from tests.blender.scenes import write_image
from tests.blender.support import ADDON_MODULE
from tests.ml.synthetic import photo_like


def _module(name: str):
    return importlib.import_module(f"{ADDON_MODULE}.{name}")


class SlowToStopWorkerJob:
    """A worker job that needs three more polls after cancel() before the worker says it stopped."""

    def __init__(self) -> None:
        self.fraction, self.text, self.results, self.warnings = 0.0, "working", {}, []
        self.finished = False
        self.cancel_asked = False
        self.acknowledged = False
        self.polls_after_cancel = 0
        self.closed = False

    def poll(self) -> bool:
        if self.cancel_asked:
            self.polls_after_cancel += 1
            if self.polls_after_cancel >= 3:
                self.acknowledged = True
                self.closed = True
                raise _module("ml.errors").JobCancelled()
        return False

    def wait(self):
        raise AssertionError("jobs wait by polling")

    def cancel(self) -> None:
        self.cancel_asked = True

    def close(self) -> None:
        self.closed = True


class FakeClient:
    def __init__(self) -> None:
        self.jobs: list[SlowToStopWorkerJob] = []

    def _new(self, *args, **kwargs) -> SlowToStopWorkerJob:
        self.jobs.append(SlowToStopWorkerJob())
        return self.jobs[-1]

    submit = submit_depth = _new


@pytest.fixture
def fake_client(empty_scene, monkeypatch):
    client = FakeClient()
    monkeypatch.setattr(_module("jobs.base").Services, "client", lambda self: client)
    return client


def services():
    return _module("jobs.base").services_of(bpy.context)


def _small_scene() -> None:
    bpy.ops.mesh.primitive_cube_add(size=1.5)
    bpy.ops.object.camera_add(location=(0, -6, 3), rotation=(math.radians(65), 0, 0))
    scene = bpy.context.scene
    scene.camera = bpy.context.active_object
    scene.render.engine, scene.cycles.samples = "CYCLES", 1
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 32, 24, 100


def test_a_cancelled_import_photo_waits_for_the_worker_to_stop(fake_client, tmp_path):
    photo = write_image(tmp_path / "wall.png", photo_like(24, 32, seed=4))
    options = _module("ml.options").ImportPhotoOptions(depth_model="AUTO", resolution=16)
    job = _module("jobs.photo").PhotoJob(bpy.context.scene, [photo], options, services())
    try:
        assert fake_client.jobs, "the built-in depth model runs in the worker"
        worker_job = fake_client.jobs[0]
        job.cancel()
        assert job.poll() is False  # still stopping: the worker has not said so yet
        with pytest.raises(_module("ml.errors").JobCancelled):
            job.wait()
    finally:
        job.close()
    assert worker_job.acknowledged  # the cancellation went through the worker job


def test_a_cancelled_stylize_render_waits_for_the_worker_to_stop(fake_client, tmp_path):
    _small_scene()
    options = _module("ml.options").StylizeRenderOptions(style="toon", frame_start=1, frame_end=2,
                                                         output_dir=str(tmp_path / "frames"))
    job = _module("jobs.render").RenderJob(bpy.context.scene, options, services())
    try:
        assert job.poll() is False and fake_client.jobs  # frame 1 rendered and handed to the worker
        job.cancel()
        with pytest.raises(_module("ml.errors").JobCancelled):
            job.wait()
    finally:
        job.close()
    assert fake_client.jobs[0].acknowledged
    assert not (tmp_path / "frames").exists()


def test_a_job_with_no_worker_job_in_flight_stops_at_once(empty_scene):
    _small_scene()
    job = _module("jobs.depth_pass").DepthPassJob(bpy.context.scene,
                                                  _module("ml.options").DepthPassMeshOptions(resolution=16))
    job.cancel()
    with pytest.raises(_module("ml.errors").JobCancelled):
        job.poll()
    job.close()


def test_after_cancelling_a_depth_estimate_the_next_import_runs_on_an_idle_worker(empty_scene, tmp_path):
    """The real worker: Esc during a depth estimate, then the next import finishes and the client is idle."""
    big = write_image(tmp_path / "big.png", photo_like(480, 640, seed=1))
    small = write_image(tmp_path / "small.png", photo_like(24, 32, seed=2))
    options = _module("ml.options").ImportPhotoOptions(depth_model="AUTO", resolution=16)
    photo = _module("jobs.photo")
    job = photo.PhotoJob(bpy.context.scene, [big, big, big], options, services())
    client = job.worker_job.client
    try:
        job.cancel()
        with pytest.raises(_module("ml.errors").JobCancelled):
            job.wait()
    finally:
        job.close()
    outcome = photo.import_photos(bpy.context.scene, [small], options, services())
    assert outcome.collections == ["small"] and not client.busy
    mesh = bpy.data.objects["small"]
    assert len(mesh.data.vertices) > 4 and np.isfinite([v.co.y for v in mesh.data.vertices]).all()
