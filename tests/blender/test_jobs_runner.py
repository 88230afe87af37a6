"""The one job runner and the job functions behind it (jobs/, operators/jobs.py, cli.py).

What a user relies on: a long job started from the panel does one step per timer tick
(the UI stays responsive), shows its progress, stops on Esc and then leaves nothing behind;
the command line runs the same jobs without touching the scene's Restyle settings.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import SimpleNamespace

import bpy
import numpy as np
import pytest

from tests.blender.scenes import small_scene, textured_cube, write_image
from tests.blender.support import ADDON_MODULE
from tests.ml.synthetic import photo_like

KINDS = ("objects", "meshes", "materials", "images", "cameras", "collections", "lights", "node_groups")


def _module(name: str):
    return importlib.import_module(f"{ADDON_MODULE}.{name}")


def data_state() -> dict[str, object]:
    scene = bpy.context.scene
    state: dict[str, object] = {
        kind: sorted(b.name for b in getattr(bpy.data, kind) if b.name != "Render Result") for kind in KINDS
    }
    state.update(camera=scene.camera.name if scene.camera else None, frame=scene.frame_current,
                 children=sorted(c.name for c in scene.collection.children))
    return state


def restyle_settings() -> dict[str, object]:
    settings = bpy.context.scene.restyle
    return {prop.identifier: getattr(settings, prop.identifier) for prop in settings.bl_rna.properties
            if prop.identifier not in ("rna_type", "name")}


@pytest.fixture
def idle(empty_scene):
    status = _module("operators.state").CURRENT
    status.running = False
    yield empty_scene
    status.running = False


def services():
    return _module("jobs.base").services_of(bpy.context)


# -- the jobs step, and a cancelled job leaves nothing --------------------------------------------------------
def test_stylize_render_renders_one_frame_per_step_and_keeps_the_users_frame(idle, tmp_path):
    small_scene()
    scene = bpy.context.scene
    scene.frame_set(5)
    options = _module("ml.options").StylizeRenderOptions(style="toon", frame_start=1, frame_end=3,
                                                    output_dir=str(tmp_path / "frames"))
    job = _module("jobs.render").RenderJob(scene, options, services())
    try:
        assert job.sources == [] and job.fraction == 0.0  # starting renders nothing yet
        assert job.poll() is False  # the first step renders frame 1 and hands it to the worker
        assert len(job.sources) == 1 and scene.frame_current == 5  # the user's frame between steps
        assert "frame 1 (1 of 3)" in job.text
        while not job.poll():
            assert scene.frame_current == 5
        outcome = job.finish()
    finally:
        job.close()
    assert outcome.frames == 3 and len(outcome.paths) == 3
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [f"Scene.toon.{n:04d}.png" for n in (1, 2, 3)]
    assert outcome.image in bpy.data.images


def test_a_cancelled_stylize_render_removes_its_frames_and_folder(idle, tmp_path):
    small_scene()
    scene = bpy.context.scene
    before = data_state()
    options = _module("ml.options").StylizeRenderOptions(style="toon", frame_start=1, frame_end=3,
                                                    output_dir=str(tmp_path / "new" / "frames"))
    job = _module("jobs.render").RenderJob(scene, options, services())
    errors = _module("ml.errors")
    try:
        while len(job.paths) < 1:  # one frame written
            job.poll()
        assert job.poll() is False and job.worker_job is not None  # frame 2 rendered, in the worker
        assert (tmp_path / "new" / "frames").is_dir()
        job.cancel()
        with pytest.raises(errors.JobCancelled):
            job.wait()  # through the worker job: it says it stopped (or is killed)
    finally:
        job.close()
    assert not (tmp_path / "new").exists()  # the frame and both folders it made are gone
    assert data_state() == before


def test_mesh_from_depth_pass_steps_and_a_cancel_between_steps_builds_nothing(idle):
    small_scene()
    before = data_state()
    job = _module("jobs.depth_pass").DepthPassJob(bpy.context.scene,
                                                  _module("ml.options").DepthPassMeshOptions(resolution=16))
    try:
        assert job.text == "rendering" and job.poll() is False  # step 1: the render
        assert job.text == "building the mesh" and 0 < job.fraction < 1
        job.cancel()
        with pytest.raises(_module("ml.errors").JobCancelled):
            job.poll()
    finally:
        job.close()
    assert data_state() == before


def test_import_photo_puts_nothing_in_the_file_before_it_finishes(idle, tmp_path):
    small_scene()
    photo = write_image(tmp_path / "wall.png", photo_like(24, 32, seed=4))
    before = data_state()
    options = _module("ml.options").ImportPhotoOptions(depth_model="AUTO", resolution=16)
    job = _module("jobs.photo").PhotoJob(bpy.context.scene, [photo], options, services())
    try:
        assert data_state() == before  # the photo was read, but no image datablock stays while depth runs
        job.cancel()
        with pytest.raises(_module("ml.errors").JobCancelled):
            job.wait()
    finally:
        job.close()
    assert data_state() == before


def test_import_photo_is_below_one_until_the_worker_has_ended(idle, tmp_path):
    """The worker's results arrive before its end: a job between the two is not 100% done (and a
    photo counts only once its job has ended)."""
    small_scene()
    photo = write_image(tmp_path / "wall.png", photo_like(24, 32, seed=4))
    options = _module("ml.options").ImportPhotoOptions(depth_model="AUTO", resolution=16)
    job = _module("jobs.photo").PhotoJob(bpy.context.scene, [photo], options, services())
    real, job.worker_job = job.worker_job, SimpleNamespace(
        results={"0": SimpleNamespace(array=np.zeros((24, 32), np.float32), error=None)},
        poll=lambda: False, cancelled=False, error=None)
    try:
        assert not job.poll() and job.fraction == 0.0 and not job.done
    finally:
        job.worker_job = real
        job.close()


def test_import_photo_polled_to_the_end_builds_the_photo_with_relief(idle, tmp_path):
    small_scene()
    photo = write_image(tmp_path / "wall.png", photo_like(24, 32, seed=4))
    options = _module("ml.options").ImportPhotoOptions(depth_model="AUTO", resolution=16)
    job = _module("jobs.photo").PhotoJob(bpy.context.scene, [photo], options, services())
    try:
        fractions = []
        while not job.poll():
            fractions.append(job.fraction)
        assert job.fraction == 1.0 and all(0.0 <= f < 1.0 for f in fractions)
        outcome = job.finish()
    finally:
        job.close()
    assert outcome.collections == ["wall"] and outcome.model is not None
    coords = np.array([v.co[:] for v in bpy.data.objects["wall"].data.vertices])
    assert (coords.std(axis=0) > 1e-4).all()  # estimated depth: not a flat plane along any axis
    assert bpy.context.scene.camera.name == "wall Camera"


# -- the runner drives a real job from timer events ------------------------------------------------------------
def _runner(job):
    jobs = _module("operators.jobs")

    class Runner(jobs.JobOperator):
        job_label = "Test"
        reports: list[tuple[str, str]] = []

        def report(self, kind, text):
            self.reports.append((next(iter(kind)), text))

        def start_job(self, context):
            return job

        def finish_job(self, context, running):
            running.finish()
            return {"FINISHED"}

    return Runner()


def test_the_runner_steps_a_real_job_per_timer_tick_and_esc_leaves_nothing(idle):
    small_scene()
    state = _module("operators.state")
    before = data_state()
    job = _module("jobs.depth_pass").DepthPassJob(bpy.context.scene,
                                                  _module("ml.options").DepthPassMeshOptions(resolution=16))
    runner = _runner(job)
    assert runner._begin(bpy.context) and state.CURRENT.running
    assert not bpy.ops.restyle.mesh_from_depth_pass.poll()  # one job at a time: the buttons wait
    assert runner.modal(bpy.context, SimpleNamespace(type="TIMER")) == {"RUNNING_MODAL"}
    assert state.CURRENT.text == "building the mesh" and state.CURRENT.fraction == 0.5  # the panel's progress
    assert runner.modal(bpy.context, SimpleNamespace(type="MOUSEMOVE")) == {"PASS_THROUGH"}  # the UI keeps working
    assert runner.modal(bpy.context, SimpleNamespace(type="ESC")) == {"CANCELLED"}
    assert not state.CURRENT.running and runner.reports[-1][0] == "WARNING"
    assert data_state() == before
    assert bpy.ops.restyle.mesh_from_depth_pass.poll()


def test_the_runner_finishes_a_real_job_over_timer_ticks(idle):
    small_scene()
    job = _module("jobs.depth_pass").DepthPassJob(bpy.context.scene,
                                                  _module("ml.options").DepthPassMeshOptions(resolution=16))
    runner = _runner(job)
    assert runner._begin(bpy.context)
    results = [runner.modal(bpy.context, SimpleNamespace(type="TIMER")) for _ in range(2)]
    assert results == [{"RUNNING_MODAL"}, {"FINISHED"}]
    assert not _module("operators.state").CURRENT.running
    assert "Camera Depth Mesh" in bpy.data.objects


# -- the command line goes through the job functions, not the scene's settings ---------------------------------
@pytest.fixture
def cli(addon):
    return _module("cli")


def _textured_blend(path: Path) -> Path:
    textured_cube(path.with_suffix(".png"), 24, seed=3, material="Mat")
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    return path


def test_the_command_line_leaves_the_scenes_restyle_settings_alone(cli, idle, tmp_path):
    _textured_blend(tmp_path / "shot.blend")
    bpy.context.scene.restyle.style = "pixel"
    small_scene()
    settings = restyle_settings()
    report = tmp_path / "r.json"
    assert cli.main(["stylize-textures", "--style", "toon", "--strength", "0.5", "--device", "cpu",
                     "--precision", "full", "--seamless", "off", "--tile-size", "128",
                     "--output-dir", str(tmp_path / "out"), "--report", str(report)]) == 0
    assert json.loads(report.read_text())["items"][0]["output"] == "Mat.toon"
    assert _module("ml.runtime.client").last_tile_choice().startswith("Manual")  # --tile-size 128 reached the engine
    assert bpy.data.objects["Cube"].material_slots[0].material.name == "Mat.toon"
    assert restyle_settings() == settings  # style, strength, device, tile size, output: as the user left them
    assert cli.main(["stylize-render", "--style", "oil", "--strength", "0.3", "--tile-size", "0", "--output-dir",
                     str(tmp_path / "frames")]) == 0
    assert _module("ml.runtime.client").last_tile_choice().startswith("Auto")  # and stylize-render's own --tile-size
    photo = write_image(tmp_path / "wall.png", photo_like(24, 32, seed=5))
    assert cli.main(["import-photo", str(photo), "--depth-model", "flat"]) == 0
    assert restyle_settings() == settings


def test_a_job_error_reaches_the_command_line_as_its_message(cli, idle, tmp_path, capsys):
    small_scene()
    bpy.ops.object.empty_add()
    bpy.context.scene.camera = bpy.context.active_object
    report = tmp_path / "r.json"
    assert cli.main(["depth-mesh", "--report", str(report)]) == 1
    error = json.loads(report.read_text())["items"][0]["error"]
    assert error.startswith("the scene camera 'Empty' is an Empty, not a camera")  # no "Error: " to strip
    assert "Traceback" not in capsys.readouterr().err


def test_models_install_from_the_command_line_leaves_the_chosen_style_alone(cli, idle, model_folder, tmp_path):
    from tests.ml import checkpoints

    bpy.context.scene.restyle.style = "pixel"
    model = checkpoints.save(checkpoints.transformer_state(), tmp_path / "studio_style.pth")
    report = tmp_path / "install.json"
    assert cli.main(["models", "install", str(model), "--name", "Studio Look", "--report", str(report)]) == 0
    assert json.loads(report.read_text())["items"][0]["output"] == "custom-studio-look"
    assert bpy.context.scene.restyle.style == "pixel"  # the panel's Add picks it; the command line does not
    assert cli.main(["models", "remove", "custom-studio-look"]) == 0
