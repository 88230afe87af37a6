"""The restyle command through its handler function, as `blender -b ... -c restyle` calls it."""

import importlib
import json
from pathlib import Path

import bpy
import numpy as np
import pytest

from tests.blender.scenes import animated_scene, textured_cube, write_image
from tests.blender.support import ADDON_MODULE
from tests.ml.synthetic import photo_like


@pytest.fixture
def cli(addon):
    return importlib.import_module(f"{ADDON_MODULE}.cli")


def textured_blend(path: Path, seed: int) -> Path:
    bpy.ops.wm.read_homefile(use_empty=True)
    textured_cube(path.with_suffix(".png"), 40, seed, material=f"Mat{seed}")
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    return path


def test_the_command_is_registered_with_blender(addon, cli):
    assert cli.command_handler is not None
    assert importlib.import_module(ADDON_MODULE)._cli_handle is not None


def test_batch_over_three_files_with_one_corrupt(cli, empty_scene, tmp_path):
    good = [textured_blend(tmp_path / f"shot{i}.blend", i) for i in (1, 2)]
    corrupt = tmp_path / "shot3.blend"
    corrupt.write_bytes(b"BLENDER-v500 but not really a blend file")
    report = tmp_path / "report.json"
    code = cli.main(["stylize-textures", "--style", "pixel", "--blend", str(tmp_path / "shot*.blend"),
                     "--report", str(report)])
    assert code == 1
    data = json.loads(report.read_text())
    assert data["version"] == 1 and data["command"] == "stylize-textures"
    assert data["summary"] == {"done": 2, "failed": 1}
    for item in data["items"]:
        assert set(item) == {"input", "output", "status", "error", "seconds", "warnings"}
        assert isinstance(item["seconds"], float) and item["warnings"] == []
    failed = next(i for i in data["items"] if i["status"] == "failed")
    assert failed["input"].endswith("shot3.blend") and "cannot open" in failed["error"]
    for path in good:  # saved with the restyled material in use
        bpy.ops.wm.open_mainfile(filepath=str(path))
        assert bpy.data.objects["Cube"].material_slots[0].material.name.endswith(".pixel")
        assert (path.parent / "restyled").is_dir()


def test_a_texture_that_cannot_be_read_is_a_warning_in_the_report(cli, empty_scene, tmp_path, capsys):
    """A done item that left something out says so in the report, not only in the log."""
    path = textured_blend(tmp_path / "shot.blend", 1)
    textured_cube(tmp_path / "gone.png", 16, 2, material="Gone")
    (tmp_path / "gone.png").unlink()
    bpy.data.images["gone.png"].reload()
    for obj in bpy.data.objects:
        obj.select_set(True)
    bpy.ops.wm.save_mainfile()
    report = tmp_path / "r.json"
    assert cli.main(["stylize-textures", "--style", "pixel", "--blend", str(path), "--report", str(report)]) == 0
    item = json.loads(report.read_text())["items"][0]
    assert item["status"] == "done" and len(item["warnings"]) == 1
    assert item["warnings"][0].startswith("gone.png was not restyled: ")
    assert f"restyle stylize-textures: {item['warnings'][0]}" in capsys.readouterr().err


def test_bad_arguments_exit_2_and_name_the_argument(cli, capsys):
    assert cli.main(["stylize-textures"]) == 2
    assert "--style" in capsys.readouterr().err
    assert cli.main(["stylize-textures", "--style", "toon", "--strength", "lots"]) == 2
    assert "--strength" in capsys.readouterr().err
    assert cli.main(["stylize-textures", "--style", "toon", "--strength", "5"]) == 2  # not silently clamped
    assert "argument --strength: 5 is outside 0.0..1.0" in capsys.readouterr().err
    assert cli.main(["stylize-textures", "--style", "toon", "--tile-size", "10"]) == 2
    assert "--tile-size" in capsys.readouterr().err
    assert cli.main(["no-such-command"]) == 2
    assert cli.main(["stylize-textures", "--style", "toon", "--blend", "/nowhere/*.blend"]) == 2
    assert "--blend" in capsys.readouterr().err


def test_every_subcommand_has_help(cli, capsys):
    for command in (["stylize-textures"], ["stylize-render"], ["import-photo"], ["depth-mesh"], ["models"],
                    ["models", "download"]):
        assert cli.main([*command, "--help"]) == 0
        assert "usage: restyle" in capsys.readouterr().out


def test_unknown_style_and_missing_model_offline_are_clear_failures(cli, empty_scene, tmp_path, capsys):
    textured_blend(tmp_path / "a.blend", 1)
    assert cli.main(["stylize-textures", "--style", "van-gogh-9000"]) == 2  # a usage error, as README says
    assert "Unknown style 'van-gogh-9000'" in capsys.readouterr().err
    assert cli.main(["stylize-textures", "--style", "cyclegan-monet"]) == 1
    assert "not downloaded yet" in capsys.readouterr().err
    assert cli.main(["models", "download", "cyclegan-monet"]) == 1
    assert "Online access is off" in capsys.readouterr().err


def test_models_list_and_verify(cli, capsys, tmp_path):
    report = tmp_path / "models.json"
    assert cli.main(["models", "list", "--report", str(report)]) == 0
    listing = capsys.readouterr().out
    assert "animegan2-paprika" in listing and "[non-commercial]" in listing and "toon" in listing
    assert json.loads(report.read_text())["summary"]["done"] > 15
    assert cli.main(["models", "verify"]) == 0


def test_import_photo_and_depth_mesh_then_save_as(cli, empty_scene, tmp_path):
    photo = write_image(tmp_path / "wall.png", photo_like(32, 48, seed=2))
    out = tmp_path / "out.blend"
    assert cli.main(["import-photo", str(photo), "--save-as", str(out)]) == 0
    assert out.exists() and "wall" in bpy.data.collections
    assert cli.main(["import-photo", str(tmp_path / "nope.jpg")]) == 1
    scene = bpy.context.scene
    scene.render.engine, scene.cycles.samples = "CYCLES", 1
    assert cli.main(["depth-mesh", "--resolution", "32"]) == 0
    assert any(o.name.endswith("Depth Mesh") for o in bpy.data.objects)


def test_import_photo_leaves_out_a_broken_photo_and_says_so(cli, empty_scene, tmp_path, capsys):
    good = write_image(tmp_path / "wall.png", photo_like(32, 48, seed=2))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 then nothing a JPEG decoder can use")
    out, report = tmp_path / "out.blend", tmp_path / "r.json"
    assert cli.main(["import-photo", str(broken), str(good), "--depth-model", "flat", "--save-as", str(out),
                     "--report", str(report)]) == 0
    captured = capsys.readouterr()
    assert "restyle import-photo: left out: broken.jpg cannot be read as an image" in captured.err
    assert "Placed 1 photo(s) on flat planes; 1 photo(s) could not be imported: broken.jpg" in captured.out
    item = json.loads(report.read_text())["items"][0]
    assert item["output"] == str(out) and item["status"] == "done"  # the saved file, as before
    assert len(item["warnings"]) == 1 and item["warnings"][0].startswith("left out: broken.jpg cannot be read")
    assert out.exists() and "wall" in bpy.data.collections and "broken" not in bpy.data.collections


def test_import_photo_quoted_glob_takes_a_matched_folder_as_the_shell_form_does(cli, empty_scene, tmp_path):
    shoot = tmp_path / "shoot"
    (shoot / "day1").mkdir(parents=True)
    for i in range(2):
        write_image(shoot / f"p{i}.png", photo_like(24, 32, seed=i))
    write_image(shoot / "day1" / "q.png", photo_like(24, 32, seed=5))
    report = tmp_path / "r.json"
    assert cli.main(["import-photo", str(shoot / "*"), str(shoot / "p0.png"), "--depth-model", "flat",
                     "--report", str(report)]) == 0
    assert {"p0", "p1", "q"} <= set(bpy.data.collections.keys())
    item = json.loads(report.read_text())["items"][0]
    assert item["warnings"] == ["p0.png is listed more than once (or through a link): imported once"]


def test_stylize_render_with_passes_over_a_frame_range_measures_flicker(cli, empty_scene, tmp_path):
    animated_scene(frames=4, degrees=20, size=(64, 48), samples=2)
    folder = tmp_path / "frames"
    assert cli.main(["stylize-render", "--style", "watercolor", "--frames", "1-4", "--output-dir", str(folder),
                     "--outlines", "1", "--depth-falloff", "0.5"]) == 0
    frames = sorted(folder.glob("*.png"))
    assert [f.name for f in frames] == [f"Scene.watercolor.{n:04d}.png" for n in range(1, 5)]
    result = bpy.data.images["Scene.watercolor"]
    assert tuple(result.size) == (64, 48)
    # The flicker figures come with the outcome of the job function the CLI calls.
    render_job = importlib.import_module(f"{ADDON_MODULE}.jobs.render")
    options = importlib.import_module(f"{ADDON_MODULE}.ml.options")
    services = importlib.import_module(f"{ADDON_MODULE}.jobs.base").services_of(bpy.context)

    def flicker(temporal: float) -> tuple[float, float, float]:
        return render_job.stylize_render(bpy.context.scene, options.StylizeRenderOptions(
            style="watercolor", frame_start=1, frame_end=4, output_dir=str(folder), temporal=temporal),
            services).flicker

    before, after, _ = flicker(0.0)
    assert before > 0 and after > 0
    assert cli.main(["stylize-render", "--style", "watercolor", "--frames", "1-4", "--output-dir", str(folder),
                     "--temporal", "0.9"]) == 0
    steady = flicker(0.9)[1]
    assert steady < after  # the temporal option lowers flicker
    pixels = np.empty(64 * 48 * 4, np.float32)
    bpy.data.images["Scene.watercolor"].pixels.foreach_get(pixels)  # the re-run replaced the image
    assert pixels.reshape(48, 64, 4)[..., :3].std() > 0.02


def test_models_install_and_remove(cli, model_folder, tmp_path):
    from tests.ml import checkpoints

    model = checkpoints.save(checkpoints.transformer_state(), tmp_path / "studio_style.pth")
    report = tmp_path / "install.json"
    assert cli.main(["models", "install", str(model), "--name", "Studio Look", "--report", str(report)]) == 0
    assert json.loads(report.read_text())["items"][0]["output"] == "custom-studio-look"
    assert cli.main(["models", "remove", "custom-studio-look"]) == 0
    assert not list((model_folder / "custom").glob("*.pth"))
    assert cli.main(["models", "remove", "custom-studio-look"]) == 1  # already gone: a clear failure


def test_depth_output_on_a_style_model_says_it_was_not_used(cli, model_folder, tmp_path, capsys):
    from tests.ml import checkpoints

    model = checkpoints.save(checkpoints.animegan2_state(), tmp_path / "mine.pth")
    assert cli.main(["models", "install", str(model), "--depth-output", "metric_outdoor", "--name", "Styled"]) == 0
    assert ("--depth-output metric_outdoor was not used: mine.pth is a style model, not a Depth Anything V2 "
            "checkpoint") in capsys.readouterr().err


def test_import_photo_takes_the_panels_mesh_and_lens_options(cli, empty_scene, tmp_path):
    """A PNG scan has no EXIF: --focal-length is its lens; --simplify and --cut-threshold as in the panel."""
    photo = write_image(tmp_path / "scan.png", photo_like(30, 40, seed=4))
    assert cli.main(["import-photo", str(photo), "--depth-model", "FLAT", "--focal-length", "85",
                     "--simplify", "--cut-threshold", "0.5", "--device", "cpu"]) == 0
    rig = bpy.data.collections["scan"]
    camera = next(o for o in rig.objects if o.type == "CAMERA")
    mesh = next(o for o in rig.objects if o.type == "MESH")
    assert camera.data.lens == 85 and [m.type for m in mesh.modifiers] == ["DECIMATE"]
    assert cli.main(["import-photo", str(photo), "--focal-length", "0"]) == 2  # outside 1..5000 mm
