"""Learn Style's training loop (ml.training), at tiny sizes: losses fall, cancel keeps the best,
resume continues exactly, runs repeat from a seed, and the saved file is an ordinary style
model (safe loader, exact tiling through the engine)."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from ml.errors import InvalidImageError, RestyleError
from ml.models.loading import load_style_network
from ml.models.store import check_model_file
from ml.networks.adain import vgg_normalised
from ml.restyle.engine import RestyleOptions, RestyleReport, restyle
from ml.training.learn import LearnOptions, learn_style, save_style
from tests.ml.synthetic import photo_like

TINY = LearnOptions(steps=6, crop=64, batch=1, seed=3, style_target_crops=2, preview_every=2, checkpoint_every=2,
                    device="cpu", adversarial_start=0.0, threads=1)


@pytest.fixture(autouse=True)
def one_thread():
    """Bit-identical repeats need the same thread count; put torch's back afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def stripes(size: int = 96) -> np.ndarray:
    """A style that is easy to recognise: dark diagonal stripes on warm paper."""
    y, x = np.mgrid[0:size, 0:size]
    ink = ((x + y) // 4) % 2 == 0
    return np.where(ink[..., None], [0.1, 0.1, 0.15], [0.95, 0.85, 0.7]).astype(np.float32)


STYLE = [stripes(96), stripes(80)]
CONTENT = [photo_like(100, 120, seed=1), photo_like(90, 90, seed=2)]


def run(options=TINY, **kwargs):
    return learn_style(STYLE, CONTENT, options, **kwargs)


def test_a_few_steps_reduce_the_losses():
    options = LearnOptions(steps=60, crop=64, batch=2, seed=1, style_target_crops=4, preview_every=20,
                           adversarial_start=1.0, device="cpu", threads=1)
    history = run(options).history

    def weighted(h):
        return h["style"] + options.content_weight * h["content"] + options.luminance_weight * h["luminance"]

    first, last = history[:5], history[-10:]
    assert np.mean([weighted(h) for h in last]) < 0.9 * np.mean([weighted(h) for h in first])
    assert np.mean([h["luminance"] for h in last]) < 0.7 * np.mean([h["luminance"] for h in first])
    assert len(history) == 60


def test_a_few_steps_on_the_style_loss_alone_reduce_it():
    options = LearnOptions(steps=40, crop=64, batch=2, seed=1, style_target_crops=4, preview_every=20,
                           adversarial_start=1.0, device="cpu", threads=1, content_weight=0.0, luminance_weight=0.0)
    history = run(options).history
    assert np.mean([h["style"] for h in history[-10:]]) < 0.97 * np.mean([h["style"] for h in history[:5]])


def test_progress_reports_steps_eta_and_previews():
    seen = []
    run(progress=seen.append, preview_image=photo_like(70, 50, seed=5))
    assert [p.step for p in seen] == [1, 2, 3, 4, 5, 6]
    previews = [p for p in seen if p.preview is not None]
    assert [p.step for p in previews] == [2, 4, 6]
    assert previews[0].preview.shape == (70, 50, 3) and previews[0].preview.dtype == np.float32
    assert all(p.eta >= 0 for p in seen) and seen[-1].eta == 0
    assert {"style", "content", "luminance", "adversarial", "discriminator"} <= seen[0].losses.keys()


def test_cancel_keeps_the_best_so_far(tmp_path):
    steps_before_cancel = 5
    seen = []

    def cancelled():
        return len(seen) >= steps_before_cancel

    result = run(progress=seen.append, cancelled=cancelled, checkpoint=tmp_path / "ck.pt")
    assert result.cancelled and result.card["cancelled"]
    assert result.card["steps"] == steps_before_cancel
    saved = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert saved["step"] == steps_before_cancel
    # The returned weights are the best checked state, the one the checkpoint keeps as best.
    assert result.card["best_step"] == saved["best_step"]
    assert all(torch.equal(result.state[k], saved["best"][k]) for k in result.state)
    assert result.card["best_score"] == min(saved["best_score"], result.card["best_score"])


def test_cancel_before_the_first_step_returns_the_untrained_start():
    result = run(cancelled=lambda: True)
    assert result.cancelled and result.card["steps"] == 0 and result.history == []
    result.network()  # still a complete network


def test_resume_continues_as_the_uninterrupted_run(tmp_path):
    whole = run(checkpoint=tmp_path / "whole.pt")
    seen = []
    first = run(checkpoint=tmp_path / "split.pt", progress=seen.append, cancelled=lambda: len(seen) >= 3)
    assert first.card["steps"] == 3
    second = run(checkpoint=tmp_path / "split.pt", resume=True)
    assert second.card["steps"] == 6
    assert [h["step"] for h in second.history] == [1, 2, 3, 4, 5, 6]
    assert [h["total"] for h in second.history] == [h["total"] for h in whole.history]
    a = torch.load(tmp_path / "whole.pt", weights_only=True)["generator"]
    b = torch.load(tmp_path / "split.pt", weights_only=True)["generator"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_checkpoint_of_other_style_images(tmp_path):
    run(checkpoint=tmp_path / "ck.pt", cancelled=lambda: False)
    with pytest.raises(RestyleError, match="other style images"):
        learn_style([stripes(96)], CONTENT, TINY, checkpoint=tmp_path / "ck.pt", resume=True)


def test_deterministic_from_a_seed():
    a, b = run(), run()
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
    assert [h["total"] for h in a.history] == [h["total"] for h in b.history]
    c = run(LearnOptions(**{**TINY.to_json(), "seed": 4}))
    assert any(not torch.equal(a.state[k], c.state[k]) for k in a.state)


def test_saved_style_loads_through_the_safe_loader_and_tiles_exactly(tmp_path):
    result = run()
    path = tmp_path / "learned.safetensors"
    card_path = save_style(result, path, "Stripes")
    assert check_model_file(path, "transformer_net").format == "safetensors"  # the download/install check
    with safe_open(str(path), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
        assert json.loads(f.metadata()["neural_restyle_card"])["name"] == "Stripes"
    arch, net = load_style_network({"model": path})
    assert arch == "transformer_net"
    image = photo_like(150, 130, seed=7)
    whole = restyle(net, image, RestyleOptions(seamless="off", tile_size=8192, device="cpu"))
    report = RestyleReport()
    tiled = restyle(net, image, RestyleOptions(seamless="off", tile_size=64, device="cpu"), report=report)
    assert report.tiles > 4
    assert float(np.abs(whole - tiled).max()) <= 1 / 255
    assert float(np.abs(whole - image).max()) > 0.05  # it did restyle
    card = json.loads(card_path.read_text())
    assert card["name"] == "Stripes" and card["seed"] == 3 and card["steps"] == 6
    assert card["feature_source"] == "random" and card["generator"] == "transformer_net"
    assert len(card["style_images"]) == 2 and all(len(item["sha256"]) == 64 for item in card["style_images"])
    assert card["seconds"] > 0 and {"style", "content"} <= card["losses"].keys()


def test_vgg_features_are_used_when_the_adain_file_is_given(tmp_path):
    torch.manual_seed(0)
    vgg = tmp_path / "vgg_normalised.pth"
    torch.save(vgg_normalised().state_dict(), vgg)
    result = run(LearnOptions(**{**TINY.to_json(), "steps": 2}), vgg_path=vgg)
    assert result.card["feature_source"] == "vgg"
    auto_without = run(LearnOptions(**{**TINY.to_json(), "steps": 1}), vgg_path=tmp_path / "missing.pth")
    assert auto_without.card["feature_source"] == "random"


def test_vgg_features_asked_for_without_the_file_say_what_to_download():
    with pytest.raises(RestyleError, match="AdaIN"):
        run(LearnOptions(**{**TINY.to_json(), "feature_source": "vgg"}))


@pytest.mark.parametrize(
    ("style", "content", "message"),
    [
        ([], CONTENT, "1 to 30 style images"),
        ([stripes(96)] * 31, CONTENT, "1 to 30 style images"),
        (STYLE, [], "at least one content image"),
        ([stripes(16)], CONTENT, "at least 32"),
        ([np.full((64, 64, 3), np.nan, np.float32)], CONTENT, "NaN"),
    ],
    ids=["no-style", "too-many", "no-content", "tiny-style", "nan-style"],
)
def test_unusable_inputs_are_clear_errors(style, content, message):
    with pytest.raises(InvalidImageError, match=message):
        learn_style(style, content, TINY)


def test_uint8_grey_and_rgba_images_are_accepted():
    grey = (np.random.default_rng(0).random((70, 70)) * 255).astype(np.uint8)
    rgba = np.concatenate([stripes(72), np.ones((72, 72, 1), np.float32)], -1)
    result = learn_style([grey, rgba], CONTENT, LearnOptions(**{**TINY.to_json(), "steps": 1}))
    assert result.card["steps"] == 1


def test_worker_request_trains_saves_and_reports(tmp_path):
    from ml.training.job import run_learn

    paths = []
    for i, image in enumerate(STYLE + CONTENT):
        paths.append(str(tmp_path / f"{i}.npy"))
        np.save(paths[-1], image)
    events = []
    message = {"job": "7", "style_images": paths[:2], "style_names": ["a.png", "b.png"], "content_images": paths[2:],
               "options": {"preset": "draft", "steps": 4, "crop": 64, "batch": 1, "preview_every": 2,
                           "style_target_crops": 2, "device": "cpu"},
               "output": str(tmp_path / "out" / "style.safetensors"), "name": "Stripes"}
    run_learn(message, lambda **event: events.append(event), lambda: False)
    kinds = [e["event"] for e in events]
    assert kinds[-2:] == ["learned", "done"] and kinds.count("learn_preview") == 2
    assert all(e["job"] == "7" for e in events)
    assert "step 4/4" in [e for e in events if e["event"] == "progress"][-1]["text"]
    assert np.load(next(e for e in events if e["event"] == "learn_preview")["path"]).shape == (100, 120, 3)
    learned = events[-2]
    assert learned["card"]["steps"] == 4 and learned["card"]["style_images"][0]["name"] == "a.png"
    assert load_style_network({"model": tmp_path / "out" / "style.safetensors"})[0] == "transformer_net"


def test_worker_request_cancelled_before_training_makes_nothing(tmp_path):
    from ml.training.job import run_learn

    np.save(tmp_path / "s.npy", STYLE[0])
    np.save(tmp_path / "c.npy", CONTENT[0])
    events = []
    message = {"job": "8", "style_images": [str(tmp_path / "s.npy")], "content_images": [str(tmp_path / "c.npy")],
               "options": {"steps": 3, "crop": 64, "batch": 1, "device": "cpu", "style_target_crops": 2},
               "output": str(tmp_path / "style.safetensors")}
    run_learn(message, lambda **event: events.append(event), lambda: True)
    assert [e["event"] for e in events] == ["cancelled"]
    assert not (tmp_path / "style.safetensors").exists()


def test_unknown_preset_is_a_clear_error():
    from ml.training.job import options_from

    with pytest.raises(RestyleError, match="unknown quality preset 'ultra'"):
        options_from({"preset": "ultra"})
    assert options_from({"preset": "draft", "steps": 0}).steps == 400  # 0: the preset's


@pytest.mark.parametrize("style", ["halftone", "stained-glass", "woodcut"])
def test_shipped_learned_styles_load_safely_tile_exactly_and_carry_their_card(style):
    from ml.training.builtin import WEIGHTS, load_learned

    path = WEIGHTS / f"{style}.safetensors"
    assert path.stat().st_size < 10_000_000
    assert check_model_file(path, "transformer_net").format == "safetensors"
    net = load_learned(style)
    image = photo_like(150, 130, seed=8)
    whole = restyle(net, image, RestyleOptions(seamless="off", tile_size=8192, device="cpu", precision="full"))
    tiled = restyle(net, image, RestyleOptions(seamless="off", tile_size=64, device="cpu", precision="full"))
    assert float(np.abs(whole - tiled).max()) <= 1 / 255
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["feature_source"] == "random" and len(card["style_images"]) == 6 and card["seconds"] < 1200
    assert {"swd_drop_percent", "ssim_result"} <= card["evaluation"].keys()


@pytest.mark.parametrize(("error", "expected"), [("InvalidImageError", "InvalidImageError"),
                                                 ("KeyError", "WorkerFailed")])
def test_a_learn_failure_in_the_worker_arrives_as_the_class_it_was_raised_as(tmp_path, error, expected):
    """Learn Style failures cross the worker boundary as every other job's do: a domain error
    keeps its class (and is still a WorkerFailed), a bug is a WorkerFailed."""
    from ml import errors
    from ml.training.remote import LearnJob

    job = LearnJob(object(), "9", str(tmp_path), str(tmp_path / "style.safetensors"))  # type: ignore[arg-type]
    with pytest.raises(errors.WorkerFailed, match="the third image is blank") as caught:
        job._handle({"event": "error", "job": "9", "error": error, "message": "the third image is blank"})
    assert type(caught.value).__name__ == expected or expected in {c.__name__ for c in type(caught.value).__mro__}
    assert isinstance(caught.value, errors.RestyleError)
