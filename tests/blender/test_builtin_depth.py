"""The built-in depth model: data generator, shipped weights and offline photo import."""

import re
from pathlib import Path

import bpy
import numpy as np

from ml.depth.builtin import WEIGHTS, estimate_fast_depth, load_fast_depth
from ml.depth.metrics import depth_errors
from ml.models.loading import read_state_dict
from tests.blender.scenes import write_image
from tests.ml.synthetic import photo_like
from tools.synth.plan import HELDOUT_FAMILIES

ROOT = Path(__file__).resolve().parents[2]
HELDOUT = sorted((ROOT / "tests" / "data").glob("heldout_*.npz"))  # "primitives", seeds never trained on
OUT_OF_FAMILY = sorted((ROOT / "tests" / "data").glob("ood_*.npz"))  # one render per held-out family
CARD = ROOT / "ml" / "weights" / "MODEL_CARD.md"


def test_generator_is_deterministic_for_a_seed(tmp_path):
    from tools.synth import generate

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    first = np.load(generate.render(123, tmp_path / "a"))
    second = np.load(generate.render(123, tmp_path / "b"))
    other = np.load(generate.render(124, tmp_path / "a"))
    assert np.array_equal(first["depth"], second["depth"]) and np.array_equal(first["rgb"], second["rgb"])
    assert not np.array_equal(first["depth"], other["depth"])
    assert first["rgb"].shape == (96, 128, 3) and np.isfinite(first["depth"].astype(np.float32)).any()


def _mean_abs_rel(net, renders: list[Path]) -> float:
    errors = []
    for path in renders:
        data = np.load(path)
        prediction = estimate_fast_depth(net, data["rgb"].astype(np.float32) / 255)
        errors.append(depth_errors(prediction, data["depth"].astype(np.float32))[0])
    return float(np.mean(errors))


def _card_bound(what: str) -> float:
    return float(re.search(rf"{what}: AbsRel at most (\d+\.\d+)", CARD.read_text()).group(1))


def test_shipped_weights_load_safely_and_keep_their_card_figures():
    assert WEIGHTS.stat().st_size < 2 * 10_000_000 + 100_000  # fp16: at most 10 M parameters and their names
    state = read_state_dict(WEIGHTS, keep_norm_buffers=True)  # the normal safe loader (safetensors)
    assert all(v.dtype.is_floating_point and v.element_size() == 2 for v in state.values())  # fp16
    net = load_fast_depth(WEIGHTS)
    assert sum(p.numel() for p in net.parameters()) <= 10_000_000  # the size limit the model was designed to
    assert len(HELDOUT) == 3
    assert sorted(p.name.split("-")[0] for p in OUT_OF_FAMILY) == [f"ood_{f}" for f in sorted(HELDOUT_FAMILIES)]
    in_family = _mean_abs_rel(net, HELDOUT)
    assert in_family <= _card_bound("committed test renders"), in_family
    # one render of each family training never saw: the figure that counts, kept from regressing
    out_of_family = _mean_abs_rel(net, OUT_OF_FAMILY)
    assert out_of_family <= _card_bound("committed out-of-family renders"), out_of_family


def test_offline_photo_import_uses_the_builtin_model(empty_scene, tmp_path, capfd):
    assert not bpy.app.online_access
    photo = write_image(tmp_path / "yard.png", photo_like(72, 96, seed=4))
    assert bpy.ops.restyle.import_photo_mesh(filepath=str(photo)) == {"FINISHED"}
    assert "with Built-in (fast)" in capfd.readouterr().out
    mesh = next(o for o in bpy.data.collections["yard"].objects if o.type == "MESH")
    z = np.array([v.co.z for v in mesh.data.vertices])
    assert np.ptp(z) > 0.5  # relief, not the flat fallback


def test_flat_fallback_is_still_available(empty_scene, tmp_path):
    photo = write_image(tmp_path / "poster.png", photo_like(40, 60, seed=5))
    assert bpy.ops.restyle.import_photo_mesh(filepath=str(photo), depth_model="FLAT") == {"FINISHED"}
    mesh = next(o for o in bpy.data.collections["poster"].objects if o.type == "MESH")
    assert np.ptp([v.co.z for v in mesh.data.vertices]) < 1e-6
