"""The synthetic-data plan keeps whole scene families out of training; the trainer refuses
them; the evaluation reports every family and the held-out ones as their own group."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from ml.depth.metrics import depth_errors
from ml.networks.fast_depth import FastDepth, FastDepthShape
from tools.eval_depth import IN_DISTRIBUTION, OOD, evaluate, report
from tools.synth.plan import (
    FAMILIES,
    HELDOUT_FAMILIES,
    TRAIN_FAMILIES,
    HeldOutFamilyError,
    output_name,
    resolve_families,
    seed_plan,
    training_plan,
)
from tools.train_depth import INPUT_SHAPES, aligned_log_loss, augment, load_set, pack_set, save_weights, warm_start


def write_render(folder, family, seed, depth_scale=1.0):
    rng = np.random.default_rng(seed)
    rows = np.linspace(2.0, 20.0, 24, dtype=np.float32)[::-1, None] * depth_scale
    depth = np.repeat(rows, 32, axis=1) + rng.uniform(0, 0.5, (24, 32)).astype(np.float32)
    depth[:3] = np.inf  # sky
    folder.mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(30, 220, 32)[None, :, None] * np.array([1.0, 0.6, 0.3])
    rgb = np.clip(ramp + rng.uniform(-4, 4, (24, 32, 3)), 0, 255).astype(np.uint8)
    np.savez_compressed(folder / output_name(family, seed), rgb=rgb, depth=depth.astype(np.float16),
                        family=np.array(family))


def test_at_least_eight_families_and_three_whole_families_held_out():
    assert len(FAMILIES) >= 8 and len(HELDOUT_FAMILIES) >= 3
    assert set(HELDOUT_FAMILIES) <= set(FAMILIES) and not set(HELDOUT_FAMILIES) & set(TRAIN_FAMILIES)
    assert "primitives" in TRAIN_FAMILIES  # the original generator is still a training family


@pytest.mark.parametrize("seeds", [range(0, 1000), range(100000, 100040), range(7, 8)])
def test_training_plans_never_contain_a_held_out_family(seeds):
    plan = training_plan(seeds)
    assert [s for _, s in plan] == list(seeds)
    assert not {f for f, _ in plan} & set(HELDOUT_FAMILIES)
    assert plan == training_plan(seeds)  # deterministic per seed
    if len(seeds) >= len(TRAIN_FAMILIES):  # a run of seeds covers every training family evenly
        counts = [sum(f == name for f, _ in plan) for name in TRAIN_FAMILIES]
        assert max(counts) - min(counts) <= 1


def test_a_training_plan_naming_a_held_out_family_is_refused():
    with pytest.raises(HeldOutFamilyError, match="held out"):
        training_plan(range(10), families=("room", "corridor"))
    assert resolve_families("train") == TRAIN_FAMILIES
    assert set(resolve_families("heldout")) == set(HELDOUT_FAMILIES)
    with pytest.raises(ValueError, match="unknown scene families"):
        resolve_families("room,spaceship")


def test_the_original_family_keeps_its_file_names_and_seed_plan():
    assert output_name("primitives", 42) == "000042.npz"
    assert output_name("room", 42) == "room-000042.npz"
    assert seed_plan(range(3), ("primitives",)) == [("primitives", 0), ("primitives", 1), ("primitives", 2)]


def test_trainer_refuses_a_set_with_a_held_out_family(tmp_path):
    write_render(tmp_path / "train", "room", 1)
    write_render(tmp_path / "train", "terrain", 2)  # slipped in by mistake
    with pytest.raises(HeldOutFamilyError, match="terrain"):
        load_set(tmp_path / "train")


def test_a_packed_set_holds_the_same_images_and_is_checked_too(tmp_path):
    for seed, family in enumerate(("room", "street", "primitives")):
        write_render(tmp_path / "train", family, seed)
    rgb, disparity, families = load_set(tmp_path / "train")
    assert pack_set(tmp_path / "train", tmp_path / "pack" / "train.npz") == 3
    packed_rgb, packed_disparity, packed_families = load_set(tmp_path / "pack" / "train.npz")
    assert packed_families == families == ["primitives", "room", "street"]
    assert torch.allclose(packed_disparity, disparity, rtol=1e-3, atol=1e-4)
    assert (disparity[:, :3] == 0).all()  # sky: no inverse depth
    assert (packed_rgb.float() - rgb.float()).abs().mean() < 6  # JPEG: close, not exact
    write_render(tmp_path / "ood", "corridor", 9)
    pack_set(tmp_path / "ood", tmp_path / "pack" / "ood.npz")
    with pytest.raises(HeldOutFamilyError):
        load_set(tmp_path / "pack" / "ood.npz")


def test_augmented_batches_have_the_working_input_shapes_and_follow_the_crop():
    generator = torch.Generator().manual_seed(0)
    rgb = torch.zeros(4, 192, 256, 3, dtype=torch.uint8)
    disparity = torch.linspace(0, 1, 256).repeat(4, 192, 1)  # grows to the right
    rgb[..., 0] = (disparity * 255).to(torch.uint8)
    shapes = set()
    for _ in range(30):
        x, y = augment(rgb, disparity, generator)
        shapes.add(tuple(y.shape[-2:]))
        assert x.shape[0] == y.shape[0] == 4 and x.shape[-2:] == y.shape[-2:]
        assert 0 <= float(x.min()) and float(x.max()) <= 1
        # the red channel and the disparity come from the same crop and flip
        red_slope = x[:, 0, :, -8:].mean((1, 2)) - x[:, 0, :, :8].mean((1, 2))
        depth_slope = y[:, :, -8:].mean((1, 2)) - y[:, :, :8].mean((1, 2))
        assert torch.all(torch.sign(red_slope) == torch.sign(depth_slope))
    assert shapes <= set(INPUT_SHAPES) and len(shapes) >= 3


def test_evaluation_reports_each_family_and_the_held_out_group_first(tmp_path, capsys):
    torch.manual_seed(0)
    save_weights(FastDepth().eval(), tmp_path / "weights")
    write_render(tmp_path / "ood", "terrain", 1)
    write_render(tmp_path / "ood", "corridor", 2, depth_scale=2.0)
    write_render(tmp_path / "indist", "room", 3)
    write_render(tmp_path / "indist", "room", 11)
    scores = evaluate([tmp_path / "ood", tmp_path / "indist"], tmp_path / "weights" / "depth_fast.safetensors",
                      sheet=tmp_path / "sheet.png")
    assert {"terrain", "corridor", "room", OOD, IN_DISTRIBUTION} == set(scores)
    assert scores[OOD]["model"][2] == 2 and scores[IN_DISTRIBUTION]["model"][2] == 2
    for method in ("model", "constant", "ground plane"):
        per_family = [scores[f][method][0] for f in ("terrain", "corridor")]
        assert scores[OOD][method][0] == pytest.approx(np.mean(per_family))
    lines = report(scores)
    labels = [line.split("  ")[0] for line in lines[1:]]
    assert labels[:3] == ["corridor (held out)", "terrain (held out)", OOD]
    assert (tmp_path / "sheet.png").exists()


def test_a_warm_start_copies_exactly_the_tensors_a_new_layout_shares(tmp_path):
    torch.manual_seed(0)
    trained = FastDepth()
    save_weights(trained.eval(), tmp_path)
    wider = FastDepth(FastDepthShape(encoder=(48, 96, 224, 384), blocks=(2, 3, 6, 4), context=True))
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    copied = warm_start(wider, tmp_path / "depth_fast.safetensors")
    saved = trained.state_dict()
    shared = [k for k, v in before.items() if k in saved and saved[k].shape == v.shape and v.is_floating_point()]
    assert copied == len(shared) > 10
    after = wider.state_dict()
    assert all(torch.equal(after[k], saved[k].half().float()) for k in shared)  # saved as fp16
    assert "stem.0.0.weight" in shared and "encoders.1.2.0.weight" not in shared  # a block the old layout lacks
    untouched = [k for k in before if k not in shared]
    assert untouched and all(torch.equal(after[k], before[k]) for k in untouched)


def test_a_warm_start_from_weights_that_share_nothing_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"body.0.weight": torch.zeros(3, 3)}, str(tmp_path / "style.safetensors"))
    with pytest.raises(ValueError, match="shares no tensor"):
        warm_start(FastDepth(), tmp_path / "style.safetensors")


def _scene_disparity(seed):
    """(2, 24, 32) inverse depth of floors 1-40 m away, the top rows sky (0)."""
    rng = np.random.default_rng(seed)
    depth = np.geomspace(40.0, 1.0, 24)[:, None] * rng.uniform(0.8, 1.25, (2, 24, 32))
    disparity = 1.0 / depth
    disparity[:, :4] = 0.0
    return torch.from_numpy(disparity).float()


def test_the_aligned_log_loss_ignores_scale_shift_and_sky_and_is_the_metric_log_error():
    target = _scene_disparity(0)
    sky = target == 0
    exact = torch.where(sky, torch.rand(target.shape) * 50, 7.0 * target + 0.3)  # any scale, shift, sky
    assert float(aligned_log_loss(exact, target)) < 1e-4
    # on a wrong prediction it is the mean |log| depth ratio after the metric's own alignment
    prediction = target * torch.from_numpy(np.random.default_rng(1).uniform(0.7, 1.4, target.shape)).float() + 0.02
    for i in range(2):
        depth = np.where(sky[i].numpy(), np.inf, 1.0 / np.where(sky[i].numpy(), 1.0, target[i].numpy()))
        mask = np.isfinite(depth)
        p, d = prediction[i].numpy()[mask].astype(np.float64), 1.0 / depth[mask]
        scale, shift = np.linalg.lstsq(np.stack([p, np.ones_like(p)], 1), d, rcond=None)[0]
        expected = np.mean(np.abs(np.log((scale * p + shift) / d)))
        assert float(aligned_log_loss(prediction[i:i + 1], target[i:i + 1])) == pytest.approx(expected, rel=1e-3)
        assert expected == pytest.approx(depth_errors(prediction[i].numpy(), depth)[0], rel=0.5)  # tracks AbsRel


def test_the_aligned_log_loss_weighs_the_far_end_that_inverse_depth_hardly_sees():
    target = _scene_disparity(2)
    # the same inverse-depth error on as many pixels, at the near end or at the far end
    rows = torch.zeros_like(target, dtype=torch.bool)
    near, far = rows.clone(), rows.clone()
    near[:, -6:], far[:, 4:10] = True, True
    near_error = torch.where(near, target * 0.8, target)
    far_error = torch.where(far, target - (target - near_error).abs().sum() / far.sum(), target)
    assert float((near_error - target).abs().sum()) == pytest.approx(float((far_error - target).abs().sum()))
    assert float(aligned_log_loss(far_error, target)) > 3 * float(aligned_log_loss(near_error, target))
    # a far end fitted at zero or below: finite, and a gradient step lowers the loss
    prediction = far_error.clone().requires_grad_(True)
    loss = aligned_log_loss(prediction, target)
    loss.backward()
    assert torch.isfinite(loss.detach()) and torch.isfinite(prediction.grad).all()
    stepped = aligned_log_loss((prediction - 1e-3 * prediction.grad / prediction.grad.abs().max()).detach(), target)
    assert float(stepped) < float(loss.detach())
    # far behind the camera: still finite (softplus underflows to 0 there)
    behind = target.clone()
    behind[:, 5, 5] = -50.0  # one far pixel, the rest exact
    behind.requires_grad_(True)
    loss_behind = aligned_log_loss(behind, target)
    loss_behind.backward()
    assert torch.isfinite(loss_behind.detach()) and torch.isfinite(behind.grad).all()
    assert float(loss_behind.detach()) > 1  # the fit it drags down is far off everywhere


@pytest.mark.parametrize(("argv", "message"), [
    (["--depth-loss", "-1"], "--depth-loss is a loss weight"),
    (["--data", "no/such/renders"], "no training data at no/such/renders"),
])
def test_the_trainer_refuses_a_negative_loss_weight_and_missing_data(argv, message, monkeypatch, capsys, tmp_path):
    from tools import train_depth

    write_render(tmp_path / "train", "room", 1)
    args = ["train_depth.py", "--data", str(tmp_path / "train"), "--out", str(tmp_path / "out"), *argv]
    monkeypatch.setattr("sys.argv", args)
    with pytest.raises(SystemExit) as exited:
        train_depth.main()
    assert exited.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before anything was trained or written


def test_a_plain_network_is_fine_tuned_into_a_planar_one_that_photo_import_loads(monkeypatch, tmp_path):
    from ml.depth.builtin import load_fast_depth
    from tools import train_depth

    for seed in range(3):
        write_render(tmp_path / "train", "room", seed)
    torch.manual_seed(0)
    plain = FastDepth(FastDepthShape(encoder=(16, 16, 32, 32), decoder=(16, 16, 16, 8), stem=(8, 16)))
    save_weights(plain.eval(), tmp_path / "plain")
    args = ["train_depth.py", "--data", str(tmp_path / "train"), "--out", str(tmp_path / "out"), "--steps", "2",
            "--batch", "2", "--device", "cpu", "--init", str(tmp_path / "plain" / "depth_fast.safetensors"),
            "--planar"]
    monkeypatch.setattr("sys.argv", args)
    assert train_depth.main() == 0
    tuned = load_fast_depth(tmp_path / "out" / "depth_fast.safetensors")
    assert tuned.shape.planar and tuned.shape.encoder == (16, 16, 32, 32)
    # converted, not started afresh: the offset is the plain head, the slopes start at zero
    assert torch.allclose(tuned.head.weight[0], plain.head.weight[0], atol=5e-3)
    slopes = tuned.head.weight[1:]
    assert 0 < slopes.abs().max() < 5e-3  # trained for two small steps since
    record = json.loads((tmp_path / "out" / "depth_fast_training.json").read_text())
    assert record["shape"] == json.loads(json.dumps(dataclasses.asdict(tuned.shape)))  # the weights' own layout


def test_a_variance_beyond_fp16_is_saved_in_fp32_and_the_file_loads(tmp_path):
    """A run at learning rate 1e-3 ended with a BatchNorm variance of 88,000: saved in fp16 it
    was infinite, and the loader refused the whole file after 98 minutes of training."""
    from ml.depth.builtin import load_fast_depth
    from ml.models.loading import read_state_dict

    torch.manual_seed(0)
    model = FastDepth().eval()
    model.decoders[0][1].running_var[:5] = 88446.5
    assert save_weights(model, tmp_path) == ["decoders.0.1.running_var"]
    state = read_state_dict(tmp_path / "depth_fast.safetensors", keep_norm_buffers=True)
    assert state["decoders.0.1.running_var"].dtype == torch.float32
    assert float(state["decoders.0.1.running_var"][0]) == 88446.5
    assert all(v.dtype == torch.float16 for k, v in state.items() if k != "decoders.0.1.running_var")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.isfinite(load_fast_depth(tmp_path / "depth_fast.safetensors")(x)).all()
