"""Stylize Render across steps: the user keeps working between frames, but a change of the
output resolution would leave frames that cannot be smoothed, measured or kept together."""

from __future__ import annotations

import importlib
import math

import bpy
import pytest

from tests.blender.support import ADDON_MODULE


def _module(name: str):
    return importlib.import_module(f"{ADDON_MODULE}.{name}")


def test_a_resolution_change_between_frames_is_refused_and_leaves_nothing(empty_scene, tmp_path):
    bpy.ops.mesh.primitive_cube_add(size=1.5)
    bpy.ops.object.camera_add(location=(0, -6, 3), rotation=(math.radians(65), 0, 0))
    scene = bpy.context.scene
    scene.camera = bpy.context.active_object
    scene.render.engine, scene.cycles.samples = "CYCLES", 1
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 32, 24, 100
    images = sorted(i.name for i in bpy.data.images)
    options = _module("ml.options").StylizeRenderOptions(style="toon", frame_start=1, frame_end=3, temporal=0.5,
                                                         output_dir=str(tmp_path / "frames"))
    job = _module("jobs.render").RenderJob(scene, options, _module("jobs.base").services_of(bpy.context))
    try:
        while not job.paths:  # frame 1 rendered, restyled and written
            job.poll()
        scene.render.resolution_x = 40  # the user changes the output size meanwhile
        with pytest.raises(_module("ml.errors").RestyleError, match="render size changed from 32x24 to 40x24"):
            job.wait()
    finally:
        job.close()
    assert not (tmp_path / "frames").exists()
    assert sorted(i.name for i in bpy.data.images if i.name != "Render Result") == \
        [n for n in images if n != "Render Result"]


def test_mesh_from_depth_pass_keeps_to_the_camera_it_started_with(empty_scene):
    bpy.ops.mesh.primitive_cube_add(size=1.5)
    bpy.ops.object.camera_add(location=(0, -6, 3), rotation=(math.radians(65), 0, 0))
    first = bpy.context.active_object
    first.name = "First"
    bpy.ops.object.camera_add(location=(5, 5, 5))
    other = bpy.context.active_object
    other.name = "Other"
    scene = bpy.context.scene
    scene.camera = first
    scene.render.engine, scene.cycles.samples = "CYCLES", 1
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 32, 24, 100
    job = _module("jobs.depth_pass").DepthPassJob(scene, _module("ml.options").DepthPassMeshOptions(resolution=16))
    try:
        scene.camera = other  # the user looks through another camera before the render step
        assert job.poll() is False and scene.camera == other
        assert job.poll() is True and scene.camera == other
        outcome = job.finish()
    finally:
        job.close()
    mesh = bpy.data.objects[outcome.object]
    assert outcome.object == "First Depth Mesh"
    assert (mesh.matrix_world.translation - first.matrix_world.translation).length < 1e-5


def _frames(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_the_render_result_is_kept_when_the_file_is_saved(empty_scene, tmp_path):
    """The result image had no user: saving and reopening the .blend lost it."""
    from tests.blender.scenes import small_scene

    small_scene(32, 24)
    path = tmp_path / "r.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.context.scene.restyle.style = "pencil"
    assert bpy.ops.restyle.stylize_render() == {"FINISHED"}
    bpy.ops.wm.save_mainfile()
    bpy.ops.wm.open_mainfile(filepath=str(path))
    result = bpy.data.images.get("Scene.pencil")
    assert result is not None and tuple(result.size) == (32, 24) and result.packed_file is not None
    assert bpy.ops.restyle.stylize_render() == {"FINISHED"}  # run again: replaces it, no .001 beside it
    assert [i.name for i in bpy.data.images if i.name.startswith("Scene.pencil")] == ["Scene.pencil"]


def test_rendering_again_into_the_same_folder_replaces_its_own_frames(empty_scene, tmp_path):
    """A shorter range, a reopened file or a moved project made a second sequence (Scene.toon-2.*)
    beside the first: the record of the frames written was lost."""
    import shutil

    from tests.blender.scenes import small_scene

    small_scene(32, 24)
    project = tmp_path / "project"
    project.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(project / "r.blend"))
    bpy.context.scene.restyle.style = "toon"
    run = bpy.ops.restyle.stylize_render
    assert run(frame_start=1, frame_end=3, output_dir="//frames") == {"FINISHED"}
    assert run(frame_start=2, frame_end=2, output_dir="//frames") == {"FINISHED"}
    assert run(frame_start=1, frame_end=3, output_dir="//frames") == {"FINISHED"}
    expected = [f"Scene.toon.{n:04d}.png" for n in (1, 2, 3)]
    assert _frames(project / "frames") == expected
    bpy.ops.wm.save_mainfile()
    moved = tmp_path / "moved"
    shutil.copytree(project, moved)
    shutil.rmtree(project)
    bpy.ops.wm.open_mainfile(filepath=str(moved / "r.blend"))
    assert run(frame_start=1, frame_end=2, output_dir="//frames") == {"FINISHED"}
    assert _frames(moved / "frames") == expected


def test_after_save_as_elsewhere_frames_there_of_another_file_are_not_taken_for_its_own(empty_scene, tmp_path):
    """The record is relative to the .blend: after Save As into another folder it led to that
    folder's frames (another file's, same scene and style) and would have overwritten them."""
    from tests.blender.scenes import small_scene

    small_scene(32, 24)
    (tmp_path / "a").mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "a" / "r.blend"))
    bpy.context.scene.restyle.style = "toon"
    assert bpy.ops.restyle.stylize_render(frame_start=1, frame_end=1, output_dir="//frames") == {"FINISHED"}
    theirs = tmp_path / "b" / "frames" / "Scene.toon.0001.png"
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(b"another file's frame")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "b" / "r.blend"))
    assert bpy.ops.restyle.stylize_render(frame_start=1, frame_end=1, output_dir="//frames") == {"FINISHED"}
    assert theirs.read_bytes() == b"another file's frame"
    assert _frames(theirs.parent) == ["Scene.toon-2.0001.png", "Scene.toon.0001.png"]


def test_a_render_result_the_user_renamed_is_kept(empty_scene, tmp_path):
    from tests.blender.scenes import small_scene

    small_scene(32, 24)
    bpy.context.scene.restyle.style = "toon"
    assert bpy.ops.restyle.stylize_render() == {"FINISHED"}
    bpy.data.images["Scene.toon"].name = "Keeper"
    assert bpy.ops.restyle.stylize_render() == {"FINISHED"}
    assert {"Keeper", "Scene.toon"} <= set(bpy.data.images.keys())
    assert bpy.ops.restyle.stylize_render() == {"FINISHED"}  # the unrenamed one is replaced as before
    assert sorted(i.name for i in bpy.data.images if i.name.startswith(("Keeper", "Scene.toon"))) == [
        "Keeper", "Scene.toon"]
