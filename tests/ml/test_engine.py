from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from ml.errors import InvalidImageError, JobCancelled
from ml.models.catalog import style_ids
from ml.networks.animegan2 import AnimeGAN2
from ml.networks.base import StyleNet
from ml.networks.cyclegan import CycleGANGenerator
from ml.networks.fused import FusedSequential
from ml.networks.padding import ReflectionPad
from ml.networks.transformer_net import TransformerNet
from ml.restyle import memory_model, tiling
from ml.restyle.engine import RestyleOptions, RestyleReport, is_tileable, restyle
from ml.restyle.tiling import GlobalNorm, global_norms
from ml.runtime import devices
from ml.styles import build_style
from ml.styles.pixel import BLOCK
from tests.ml.checkpoints import seeded
from tests.ml.normnets import NormNet
from tests.ml.synthetic import photo_like, tileable

ONE_STEP = 1 / 255
WHOLE = dict(tile_size=8192)


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


@pytest.mark.parametrize("style", style_ids())
def test_builtin_style_tiled_equals_whole(style):
    image = photo_like(150, 230, seed=1)  # sizes that are not multiples of any tile or block
    model = build_style(style)
    whole = restyle(model, image, RestyleOptions(seamless="off", **WHOLE))
    report = RestyleReport()
    tiled = restyle(model, image, RestyleOptions(seamless="off", tile_size=64), report=report)
    assert report.tiles > 4
    assert max_diff(whole, tiled) <= ONE_STEP


@pytest.mark.parametrize("instance_norm", [False, True], ids=["groupnorm", "instancenorm"])
def test_whole_image_normalisation_tiled_equals_whole(instance_norm):
    image = photo_like(190, 170, seed=2)
    model = NormNet(instance_norm)
    whole = restyle(model, image, RestyleOptions(seamless="off", **WHOLE))
    report = RestyleReport()
    tiled = restyle(model, image, RestyleOptions(seamless="off", tile_size=64), report=report)
    assert report.tiles == 9 and report.passes >= 2
    assert max_diff(whole, tiled) <= ONE_STEP


def test_norm_statistics_are_what_make_tiles_agree():
    """Without the statistics passes, per-tile normalisation visibly differs from the whole."""
    image = photo_like(190, 170, seed=2)
    model = NormNet(instance_norm=False)
    whole = restyle(model, image, RestyleOptions(seamless="off", **WHOLE))
    naive = np.zeros_like(whole)
    for y in range(0, 190, 64):
        for x in range(0, 170, 64):
            crop = image[y : y + 64, x : x + 64]
            naive[y : y + 64, x : x + 64] = restyle(model, crop, RestyleOptions(seamless="off", **WHOLE))
    assert max_diff(whole, naive) > 10 * ONE_STEP


@pytest.mark.parametrize("model_name", ["groupnorm", "instancenorm", "toon", "oil"])
def test_seamless_result_tiles_like_its_input(model_name):
    texture = tileable(128, 96, seed=3)
    model = NormNet(model_name == "instancenorm") if model_name.endswith("norm") else build_style(model_name)
    options = RestyleOptions(seamless="on", tile_size=64)
    out = restyle(model, texture, options)
    shifted = restyle(model, np.roll(texture, (40, 24), (0, 1)), options)
    # Restyling a shifted copy gives the shifted result: there is no seam anywhere.
    assert max_diff(np.roll(out, (40, 24), (0, 1)), shifted) <= ONE_STEP
    whole = restyle(model, texture, RestyleOptions(seamless="on", **WHOLE))
    assert max_diff(out, whole) <= ONE_STEP


@pytest.mark.parametrize("model_name", ["groupnorm", "instancenorm", "animegan2", "cyclegan", "transformer_net"])
def test_seamless_texture_that_fits_one_tile_runs_in_one_exact_pass(model_name):
    """A seamless texture in one tile: each norm takes its statistics from the core of its
    input (the halo repeats the opposite edges), so one pass equals the multi-pass tiled result."""
    texture = tileable(136, 104, seed=5)
    nets = {"animegan2": AnimeGAN2, "cyclegan": CycleGANGenerator, "transformer_net": TransformerNet}
    model = NormNet(model_name == "instancenorm") if model_name.endswith("norm") else seeded(nets[model_name]())
    lone = RestyleReport()
    one_pass = restyle(model, texture, RestyleOptions(seamless="on", precision="full", **WHOLE), report=lone)
    assert (lone.tiles, lone.passes, lone.seamless) == (1, 1, True)
    tiled = RestyleReport()
    reference = restyle(model, texture, RestyleOptions(seamless="on", precision="full", tile_size=64), report=tiled)
    assert tiled.tiles > 1 and tiled.passes > 1
    assert max_diff(one_pass, reference) <= ONE_STEP / 10
    # The norms are plain norms again once the run is over (the model is cached and reused).
    assert all(not norm.core_statistics for norm in global_norms(model))


@pytest.mark.parametrize("style", ["watercolor", "pencil", "pixel"])
def test_seamless_result_of_position_keyed_styles_tiles(style):
    """Paper grain, hatching and pixel grids are anchored to texture coordinates, so a
    shifted input is not a shifted output; what matters is that the result tiles."""
    texture = tileable(128, 96, seed=3)
    out = restyle(build_style(style), texture, RestyleOptions(seamless="on", tile_size=64))
    step = BLOCK if style == "pixel" else 1  # compare block to block, not across block edges
    assert is_tileable(out[::step, ::step])
    whole = restyle(build_style(style), texture, RestyleOptions(seamless="on", **WHOLE))
    assert max_diff(out, whole) <= ONE_STEP


def test_seamless_off_leaves_a_seam_that_on_removes():
    texture = tileable(96, 96, seed=4)
    model = build_style("watercolor")
    off = restyle(model, texture, RestyleOptions(seamless="off"))
    on = restyle(model, texture, RestyleOptions(seamless="on"))
    seam = lambda img: np.abs(img[:, 0] - img[:, -1]).mean()
    assert seam(on) < seam(off)


def test_tileability_detection():
    assert is_tileable(tileable(64, 64, seed=5))
    assert not is_tileable(photo_like(64, 64, seed=5))
    report = RestyleReport()
    restyle(build_style("toon"), tileable(64, 64), RestyleOptions(seamless="auto"), report=report)
    assert report.seamless


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_channel_layouts_and_alpha_passthrough(channels):
    rng = np.random.default_rng(6)
    colour = photo_like(40, 50)[..., : 1 if channels <= 2 else 3]
    alpha = rng.random((40, 50, 1)).astype(np.float32)
    image = np.concatenate([colour, alpha], 2) if channels in (2, 4) else colour
    out = restyle(build_style("oil"), image, RestyleOptions())
    assert out.shape == image.shape and out.dtype == np.float32
    if channels in (2, 4):
        assert np.array_equal(out[..., -1], image[..., -1])


def test_two_dimensional_grey_image():
    image = photo_like(30, 40)[..., 0]
    assert restyle(build_style("pencil"), image).shape == (30, 40)


def test_strength_blends_with_original():
    image = photo_like(48, 48)
    model = build_style("toon")
    assert np.allclose(restyle(model, image, RestyleOptions(strength=0.0)), image, atol=1e-6)
    full = restyle(model, image, RestyleOptions(strength=1.0))
    half = restyle(model, image, RestyleOptions(strength=0.5))
    assert np.allclose(half, (full + image) / 2, atol=1e-5)


def test_preserve_colors_keeps_chroma_and_takes_styled_luma():
    image = photo_like(48, 48)
    model = build_style("pencil")
    styled = restyle(model, image, RestyleOptions())
    kept = restyle(model, image, RestyleOptions(preserve_colors=True))
    chroma = lambda img: img - img.mean(2, keepdims=True)
    assert np.abs(chroma(kept) - chroma(image)).mean() < np.abs(chroma(styled) - chroma(image)).mean() / 2
    luma = lambda img: img @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    unclipped = (kept > 0.001).all(2) & (kept < 0.999).all(2)
    assert np.abs(luma(kept) - luma(styled))[unclipped].max() < 1e-4


def test_progress_reaches_one_and_cancel_stops():
    image = photo_like(200, 200)
    seen = []
    restyle(build_style("pixel"), image, RestyleOptions(tile_size=64), progress=lambda f, t: seen.append(f))
    assert seen and seen[-1] == pytest.approx(1.0) and seen == sorted(seen)
    calls = []

    def cancel_after_two() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(JobCancelled):
        restyle(build_style("pixel"), image, RestyleOptions(tile_size=64), cancelled=cancel_after_two)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((0, 10, 3), np.float32), "empty"),
        (np.zeros((8, 8, 5), np.float32), "1 to 4 channels"),
        (np.full((8, 8, 3), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_images_get_specific_errors(bad, message):
    with pytest.raises(InvalidImageError, match=message):
        restyle(build_style("toon"), bad)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="strength"):
        restyle(build_style("toon"), photo_like(8, 8), RestyleOptions(strength=2.0))
    with pytest.raises(ValueError, match="device"):
        restyle(build_style("toon"), photo_like(8, 8), RestyleOptions(device="tpu"))


def test_missing_device_falls_back_to_cpu_with_warning():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the fallback is for machines without it")
    report = RestyleReport()
    restyle(build_style("toon"), photo_like(16, 16), RestyleOptions(device="cuda"), report=report)
    assert report.device == "cpu" and "CUDA is not available" in (report.warning or "")


def test_gpu_out_of_memory_retries_with_smaller_tiles():
    import torch

    from ml.networks.base import StyleNet

    class NeedsSmallTiles(StyleNet):
        """Behaves like a GPU that runs out of memory on tiles over 200 px."""

        def forward(self, x):
            if max(x.shape[-2:]) > 200:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return 1 - x

    report = RestyleReport()
    image = photo_like(300, 300)
    out = restyle(NeedsSmallTiles(), image, RestyleOptions(tile_size=512, seamless="off"), report=report)
    assert np.allclose(out, 1 - image, atol=1e-6)
    assert report.tiles == 9 and "used 128 px tiles" in report.warning  # 512 -> 256 -> 128


def test_large_images_get_no_full_size_working_copies(monkeypatch):
    """The engine writes tiles into the output array and does whole-image numpy work in
    blocks of rows: apart from the result itself, what it allocates on the numpy side stays
    far below the image's size (an 8K texture would otherwise need several extra gigabytes)."""
    import tracemalloc

    from ml.restyle import engine

    monkeypatch.setattr(engine, "CHUNK_ROWS", 32)  # blocks small against this test image

    image = np.concatenate([photo_like(768, 768, seed=8), np.ones((768, 768, 1), np.float32)], axis=2)
    model = build_style("pixel")
    tracemalloc.start()
    try:
        out = restyle(model, image, RestyleOptions(tile_size=256, seamless="off", strength=0.7, preserve_colors=True))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == image.shape and np.array_equal(out[..., 3], image[..., 3])
    extra = peak - out.nbytes
    assert extra < 0.3 * image.nbytes, f"{extra / image.nbytes:.2f}x the image in numpy working memory"


@pytest.mark.parametrize("native_bf16", [False, True], ids=["avx2", "avx512-bf16-or-amx"])
@pytest.mark.parametrize("precision", ["auto", "reduced"])
def test_cpu_precision_is_bf16_only_where_the_cpu_computes_bf16_natively(monkeypatch, native_bf16, precision):
    """On an AVX2 CPU bf16 is emulated (slower than fp32): Reduced and Auto stay at fp32 there."""
    monkeypatch.setattr(devices, "cpu_supports_bf16", lambda: native_bf16)
    chosen = devices.reduced_dtype(torch.device("cpu"), precision, model_allows=True)
    assert chosen == (torch.bfloat16 if native_bf16 else None)
    assert devices.reduced_dtype(torch.device("cpu"), "full", model_allows=True) is None


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse2 avx2 fma\n\n", encoding="utf-8")
    assert {"avx2", "fma"} <= devices.cpu_flags(info) and "avx512_bf16" not in devices.cpu_flags(info)
    assert devices.cpu_flags(tmp_path / "missing") == set()


def _adain_model():
    from ml.networks.adain import AdaIN

    model = seeded(AdaIN())
    model.set_style(torch.from_numpy(photo_like(64, 64, seed=9)).permute(2, 0, 1)[None])
    return model


class SequentialNormNet(StyleNet):
    """A small generator built from fused sequences, as the published GANs are: pad-conv-norm-
    activation units, a residual block holding a sequence, a transposed convolution."""

    align = 4
    halo = 28

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.head = FusedSequential(
            ReflectionPad(1), nn.Conv2d(3, 16, 3), GlobalNorm(1, 16), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), GlobalNorm(32, 32, affine=False), nn.ReLU(True),
            _Residual(32),
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), GlobalNorm(1, 16), nn.ReLU(True),
        )
        self.tail = FusedSequential(ReflectionPad(1), nn.Conv2d(16, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.tail(self.head(x)))


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = FusedSequential(ReflectionPad(1), nn.Conv2d(channels, channels, 3),
                                     GlobalNorm(channels, channels, affine=False), nn.ReLU(True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


REUSE_ARCHITECTURES = {
    "sequential": SequentialNormNet,
    "animegan2": lambda: seeded(AnimeGAN2()),
    "cyclegan": lambda: seeded(CycleGANGenerator(6)),
    "transformer": lambda: seeded(TransformerNet()),
    "adain": _adain_model,
    "groupnorm": lambda: NormNet(instance_norm=False),
}


@pytest.mark.parametrize("name", list(REUSE_ARCHITECTURES))
def test_stored_activations_keep_tiled_equal_to_whole(name):
    """The resume cache only skips work: tiled with it equals the whole image, and the
    model's own forwards are back in place afterwards."""
    model = REUSE_ARCHITECTURES[name]()
    image = photo_like(128, 100, seed=6)
    whole = restyle(model, image, RestyleOptions(seamless="off", precision="full", **WHOLE))
    report = RestyleReport()
    tiled = restyle(model, image, RestyleOptions(seamless="off", precision="full", tile_size=64), report=report)
    assert report.tiles == 4 and report.passes > 1
    assert max_diff(tiled, whole) <= ONE_STEP
    if name in ("sequential", "animegan2", "cyclegan", "transformer"):  # networks with norm-holding blocks
        assert report.stored_peak > 0
    assert all("forward" not in vars(m) for m in model.modules())
    assert all(getattr(n, "on_measured", None) is None for n in global_norms(model))


def test_the_old_schedule_stays_selectable_and_agrees():
    model = SequentialNormNet()
    image = photo_like(128, 100, seed=6)
    options = RestyleOptions(seamless="off", precision="full", tile_size=64)
    reused, rerun = RestyleReport(), RestyleReport()
    with_cache = restyle(model, image, options, report=reused)
    without = restyle(model, image, replace(options, reuse_activations=False), report=rerun)
    assert reused.passes == rerun.passes and rerun.stored_peak == 0 < reused.stored_peak
    assert max_diff(with_cache, without) <= 0.05 * ONE_STEP


def test_stored_activations_stay_within_their_budget_and_a_tiny_budget_is_still_exact(monkeypatch):
    model = SequentialNormNet()
    image = photo_like(128, 100, seed=7)
    whole = restyle(model, image, RestyleOptions(seamless="off", **WHOLE))
    roomy = RestyleReport()
    restyle(model, image, RestyleOptions(seamless="off", tile_size=64), report=roomy)
    assert roomy.stored_peak > 0
    monkeypatch.setattr(memory_model, "device_budget", lambda device: 0)  # no room beside the tile
    tight = RestyleReport()
    out = restyle(model, image, RestyleOptions(seamless="off", tile_size=64), report=tight)
    assert tight.stored_peak == 0 and max_diff(out, whole) <= ONE_STEP
    # Room for half of what it kept: it keeps less, never more than the room, and stays exact.
    tile_needs = memory_model.plan_tiles(model, 128, 100, torch.device("cpu"), False, budget=0, tile_size=64,
                                         result_bytes=image.nbytes).needed
    room = roomy.stored_peak // 2
    monkeypatch.setattr(memory_model, "device_budget", lambda device: tile_needs + room)
    half = RestyleReport()
    out = restyle(model, image, RestyleOptions(seamless="off", tile_size=64), report=half)
    assert 0 < half.stored_peak <= room and max_diff(out, whole) <= ONE_STEP


def test_a_cancelled_exact_run_puts_the_model_back():
    model = SequentialNormNet()
    calls = []

    def cancel_in_the_second_pass() -> bool:
        calls.append(1)
        return len(calls) > 6

    with pytest.raises(JobCancelled):
        restyle(model, photo_like(128, 100), RestyleOptions(seamless="off", tile_size=64),
                cancelled=cancel_in_the_second_pass)
    assert all("forward" not in vars(m) for m in model.modules())
    assert all(n.frozen is None and not n.collecting and n.on_measured is None for n in global_norms(model))


@pytest.mark.parametrize("groups", [1, 64], ids=["groupnorm", "instancenorm"])
def test_whole_image_norm_statistics_do_not_cancel_on_large_maps(groups, monkeypatch):
    """torch's CPU group_norm on a channels_last map sums x and x² in fp32 in one pass: a large map
    whose mean is far from zero against its spread loses its variance. A whole-image GlobalNorm
    computes such statistics the way the tiled passes do and stays on the float64 result."""
    # Every full-resolution map of a 1024² image (64 channels) is "large"; the test map is smaller.
    assert tiling.ACCURATE_STATISTICS_FROM <= 64 * 1024 * 1024
    monkeypatch.setattr(tiling, "ACCURATE_STATISTICS_FROM", 64 * 512 * 512)
    generator = torch.Generator().manual_seed(0)
    x = (torch.randn(1, 64, 512, 512, generator=generator) * 0.05 + 3.0).contiguous(memory_format=torch.channels_last)
    exact = torch.nn.functional.group_norm(x.double(), groups).float()
    with torch.inference_mode():
        assert (torch.nn.functional.group_norm(x, groups) - exact).abs().max() > 1e-4  # the kernel's own drift
        assert (GlobalNorm(groups, 64)(x) - exact).abs().max() < 1e-5
