"""Red team: cases that sit between the job slices (a non-camera scene camera greys out the
render buttons with a reason; a 4.x material that keeps a node tree but does not use it is
listed, not restyled into a copy that renders the same flat colour)."""

from __future__ import annotations

import bpy
import pytest

from tests.blender.test_redteam_textures import cube, file_image, select, stylize, textured


@pytest.mark.parametrize("operator", ["stylize_render", "mesh_from_depth_pass"])
@pytest.mark.parametrize("kind", ["EMPTY", "LIGHT"])
def test_render_buttons_say_the_scene_camera_is_not_a_camera(empty_scene, operator, kind):
    scene = empty_scene
    if kind == "EMPTY":
        holder = bpy.data.objects.new("Rig", None)
    else:
        holder = bpy.data.objects.new("Rig", bpy.data.lights.new("Lamp", "POINT"))
    scene.collection.objects.link(holder)
    scene.camera = holder
    op = getattr(bpy.ops.restyle, operator)
    assert not op.poll()
    # The reason shown on the greyed-out button names the object and what is wrong with it.
    with pytest.raises(RuntimeError, match=f"'Rig' is an? {kind.title()}, not a camera"):
        op()


def test_material_with_nodes_turned_off_is_listed_on_4x_and_restyled_on_5(empty_scene, tmp_path):
    image = file_image(tmp_path, "bricks.png", seed=3)
    material = textured("Bricks", image)
    obj = cube("Wall", material)
    if bpy.app.version < (5, 0, 0):
        material.use_nodes = False  # the tree is kept but the material renders its flat colour
    select([obj])
    before = set(bpy.data.materials.keys())
    result, error = stylize("toon")
    if bpy.app.version < (5, 0, 0):
        assert result is None and "does not use nodes" in error, error
        assert set(bpy.data.materials.keys()) == before
        assert obj.material_slots[0].material == material
    else:
        assert result == {"FINISHED"}
        assert obj.material_slots[0].material.name == "Bricks.toon"


def test_photo_with_hostile_exif_imports_with_defaults_and_says_what_was_ignored(empty_scene, tmp_path, capfd):
    import math

    from tests.ml.test_redteam_exif import DOUBLE, FOCAL_35, jpeg, tiff_block

    photo = jpeg(tmp_path / "nan_lens.jpg", tiff_block([], [(FOCAL_35, DOUBLE, (math.nan,))]), size=(48, 32))
    capfd.readouterr()
    result = bpy.ops.restyle.import_photo_mesh(filepath=str(photo), depth_model="FLAT")
    assert result == {"FINISHED"}
    out = capfd.readouterr().out
    assert "nan_lens.jpg: " in out and "35 mm focal length" in out, out
    camera = bpy.context.scene.camera
    assert camera is not None and math.isfinite(camera.data.lens) and camera.data.lens > 0
    mesh = next(o for o in bpy.data.objects if o.type == "MESH")
    coords = [c for v in mesh.data.vertices for c in v.co]
    assert coords and all(math.isfinite(c) for c in coords)


def test_a_rerun_failing_on_a_full_disk_keeps_the_earlier_frame_file_intact(empty_scene, tmp_path, monkeypatch):
    import importlib
    import resource
    import signal

    from tests.blender.scenes import small_scene
    from tests.blender.support import ADDON_MODULE

    small_scene()
    scene = bpy.context.scene
    scene.restyle.style = "toon"
    folder = tmp_path / "frames"
    assert bpy.ops.restyle.stylize_render(frame_start=1, frame_end=1, output_dir=str(folder)) == {"FINISHED"}
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert len(files) == 1

    outputs = importlib.import_module(f"{ADDON_MODULE}.bridge.outputs")
    real_save = outputs.save_verified

    def save_on_a_full_disk(*args, **kwargs):
        # Only while the frame is written (the render's own temporary EXR still fits): files
        # may not grow past 64 bytes, so Blender writes a truncated PNG and raises nothing.
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard))
        try:
            return real_save(*args, **kwargs)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, handler)

    monkeypatch.setattr(outputs, "save_verified", save_on_a_full_disk)
    with pytest.raises(RuntimeError, match="could not write"):
        bpy.ops.restyle.stylize_render(frame_start=1, frame_end=1, output_dir=str(folder))
    # The earlier run's frame (which the re-run was allowed to replace) is byte for byte as it was.
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files


def test_a_foreign_file_at_one_frame_moves_the_whole_sequence_to_one_free_name(empty_scene, tmp_path):
    from tests.blender.scenes import small_scene

    small_scene()
    scene = bpy.context.scene
    scene.restyle.style = "toon"
    folder = tmp_path / "frames"
    folder.mkdir()
    theirs = folder / f"{scene.name}.toon.0002.png"
    theirs.write_bytes(b"someone else's frame 2")
    assert bpy.ops.restyle.stylize_render(frame_start=1, frame_end=3, output_dir=str(folder)) == {"FINISHED"}
    assert theirs.read_bytes() == b"someone else's frame 2"
    # One sequence a compositor can read, not 0001.png, 0002-2.png, 0003.png.
    assert sorted(p.name for p in folder.iterdir() if p != theirs) == [
        f"{scene.name}.toon-2.{frame:04d}.png" for frame in (1, 2, 3)]


def test_cli_tile_size_defaults_to_auto_and_refuses_sizes_below_the_manual_minimum(addon, capsys):
    import importlib

    from tests.blender.support import ADDON_MODULE

    cli = importlib.import_module(f"{ADDON_MODULE}.cli")
    parser = cli.build_parser()
    assert parser.parse_args(["stylize-textures", "--style", "toon"]).tile_size == 0  # Auto, as in the panel
    assert parser.parse_args(["stylize-textures", "--style", "toon", "--tile-size", "0"]).tile_size == 0
    assert parser.parse_args(["stylize-textures", "--style", "toon", "--tile-size", "512"]).tile_size == 512
    assert cli.main(["stylize-textures", "--style", "toon", "--tile-size", "32"]) == 2
    assert "--tile-size: 32 is outside 64..8192" in capsys.readouterr().err
