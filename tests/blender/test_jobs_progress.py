"""Progress a user sees: Import Photo counts the photos whose depth is back (the worker sends no
progress inside one estimate; the photos go to it one at a time), and the runner says what the
first step does before it runs."""

from __future__ import annotations

import importlib
import math
from types import SimpleNamespace

import bpy
import numpy as np
import pytest

from tests.blender.scenes import write_image
from tests.blender.support import ADDON_MODULE
from tests.ml.synthetic import photo_like


def _module(name: str):
    return importlib.import_module(f"{ADDON_MODULE}.{name}")


class SilentDepthJob:
    """A depth job of one photo that, like the real worker's, sends its result but never a progress
    fraction; it is done at its first poll."""

    def __init__(self, images) -> None:
        item = _module("ml.runtime.client").ItemResult
        self.fraction, self.text, self.warnings, self.finished = 0.0, "starting", [], False
        self.results = {key: item(key, array=np.ones(pixels.shape[:2], np.float32)) for key, pixels in images}

    def poll(self) -> bool:
        self.finished = True
        return True

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def status(empty_scene):
    state = _module("operators.state")
    state.end()
    yield state.CURRENT
    state.end()


def test_import_photo_progress_counts_the_photos_whose_depth_is_back(empty_scene, tmp_path, monkeypatch):
    photos = [write_image(tmp_path / f"p{i}.png", photo_like(24, 32, seed=i)) for i in range(4)]
    submitted = []

    def submit_depth(images, *args, **kwargs):
        submitted.append([key for key, _ in images])
        return SilentDepthJob(images)

    client = SimpleNamespace(submit_depth=submit_depth)
    monkeypatch.setattr(_module("jobs.base").Services, "client", lambda self: client)
    options = _module("ml.options").ImportPhotoOptions(depth_model="AUTO", resolution=16)
    job = _module("jobs.photo").PhotoJob(bpy.context.scene, photos, options,
                                         _module("jobs.base").services_of(bpy.context))
    try:
        seen = [job.fraction]
        while not job.poll():
            seen.append(job.fraction)
        seen.append(job.fraction)
    finally:
        job.close()
    # each photo back is a quarter of the estimate; 1 only once the last one is back
    assert seen == pytest.approx([0.0, 0.95 * 0.25, 0.95 * 0.5, 0.95 * 0.75, 1.0])
    assert submitted == [["0"], ["1"], ["2"], ["3"]]  # one photo at a time: one photo's pixels held at once


def test_the_runner_shows_what_the_first_step_does_as_the_job_begins(status):
    bpy.ops.mesh.primitive_cube_add()
    bpy.ops.object.camera_add(location=(0, -6, 3), rotation=(math.radians(65), 0, 0))
    bpy.context.scene.camera = bpy.context.active_object
    job = _module("jobs.depth_pass").DepthPassJob(bpy.context.scene,
                                                  _module("ml.options").DepthPassMeshOptions(resolution=16))

    class Runner(_module("operators.jobs").JobOperator):
        def report(self, kind, text):
            raise AssertionError(text)

        def start_job(self, context):
            return job

    runner = Runner()
    try:
        assert runner._begin(bpy.context)
        assert status.running and status.text == "rendering"  # not a bare "Starting" during the first render
    finally:
        runner._stop(bpy.context)
