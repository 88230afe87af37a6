"""Tile Size: Auto. The chooser against fake free-memory figures, and the engine under Auto."""

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.models.catalog import style_ids
from ml.networks.adain import AdaIN
from ml.networks.animegan2 import AnimeGAN2
from ml.networks.cyclegan import CycleGANGenerator
from ml.networks.transformer_net import TransformerNet
from ml.restyle import memory_model
from ml.restyle.engine import RestyleOptions, RestyleReport, restyle
from ml.restyle.memory_model import MIN_AUTO_TILE, choose_tile, plan_tiles, tile_bytes
from ml.runtime import client
from ml.runtime.client import WorkerClient
from ml.styles import build_style
from tests.ml.normnets import NormNet
from tests.ml.synthetic import photo_like

ROOT = Path(__file__).resolve().parents[2]
GB = 10**9
CPU = torch.device("cpu")
MACHINE_24GB = 22 * GB  # MemAvailable of a 24 GB machine with a desktop running


@pytest.fixture
def free_memory(monkeypatch):
    """Set the free memory the chooser sees; None: fail the test if it is read."""
    def set_free(amount: int | None) -> None:
        def fake(device: torch.device) -> int:
            if amount is None:
                raise AssertionError("free memory was read although the tile size is manual")
            return amount
        monkeypatch.setattr(memory_model, "free_bytes", fake)
    return set_free


def test_a_2048_animegan_texture_runs_whole_with_24_gb(free_memory):
    free_memory(MACHINE_24GB)
    plan = plan_tiles(AnimeGAN2(), 2048, 2048, CPU, reduced=False)
    assert plan.whole and plan.tile_size >= 2048 and plan.needed <= plan.budget


@pytest.mark.parametrize("model", [AnimeGAN2, CycleGANGenerator, TransformerNet, AdaIN], ids=lambda m: m.__name__)
def test_every_architecture_has_measured_figures_and_a_whole_2k_plan(free_memory, model):
    assert model.__name__ in memory_model.BYTES_PER_PIXEL
    free_memory(MACHINE_24GB)
    for reduced in (False, True):
        assert plan_tiles(model(), 2048, 2048, CPU, reduced).whole


@pytest.mark.parametrize("style", style_ids())
def test_every_builtin_style_has_measured_figures(style):
    assert type(build_style(style)).__name__ in memory_model.BYTES_PER_PIXEL


@pytest.mark.parametrize("free_gb", [2, 4, 8, 16])
def test_when_the_whole_image_does_not_fit_the_tiles_fit_and_are_the_largest_that_do(free_gb):
    budget = int(free_gb * GB * 0.5)
    per_pixel = memory_model.BYTES_PER_PIXEL["AnimeGAN2"][0]
    plan = choose_tile(8192, 8192, halo=64, align=4, per_pixel=per_pixel, budget=budget)
    assert not plan.whole and plan.tile_size % 4 == 0 and plan.tile_size >= MIN_AUTO_TILE
    assert tile_bytes(plan.tile_size, 8192, 8192, 64, False, per_pixel) <= budget
    per_side = -(-8192 // plan.tile_size)
    bigger = -(-8192 // (per_side - 1))  # one tile fewer per side
    assert tile_bytes(bigger, 8192, 8192, 64, False, per_pixel) > budget


def test_tiles_are_balanced_not_one_big_and_one_thin():
    per_pixel = 1000
    fits_1500 = tile_bytes(1500, 2048, 2048, 64, False, per_pixel)
    plan = choose_tile(2048, 2048, halo=64, align=4, per_pixel=per_pixel, budget=fits_1500)
    assert plan.tile_size == 1024


def test_never_below_the_minimum_even_when_nothing_fits():
    plan = choose_tile(4096, 4096, halo=64, align=4, per_pixel=2000, budget=1000)
    assert plan.tile_size == MIN_AUTO_TILE and not plan.whole


def test_a_small_image_is_whole_even_when_memory_is_short():
    plan = choose_tile(100, 60, halo=64, align=4, per_pixel=2000, budget=1000)
    assert plan.whole and plan.tile_size >= 100


def test_seamless_whole_image_counts_its_wrap_around_halo():
    no_wrap = tile_bytes(1024, 1024, 1024, 64, False, 1000)
    wrap = tile_bytes(1024, 1024, 1024, 64, True, 1000)
    assert wrap > no_wrap


def test_engine_runs_a_2048_image_in_one_pass_under_auto_with_24_gb(free_memory):
    free_memory(MACHINE_24GB)
    report = RestyleReport()
    image = photo_like(2048, 2048, seed=4)
    restyle(build_style("pixel"), image, RestyleOptions(seamless="off"), report=report)
    assert report.auto_tile and report.tiles == 1 and report.passes == 1 and report.tile_size >= 2048


def test_engine_tiles_under_auto_when_memory_is_short_and_stays_exact(free_memory):
    image = photo_like(600, 560, seed=5)
    model = NormNet(instance_norm=False)
    whole = restyle(model, image, RestyleOptions(seamless="off", tile_size=8192))
    free_memory(None)  # an explicit budget: the free memory is not read
    report = RestyleReport()
    per_pixel = max(memory_model.BYTES_PER_PIXEL.values())[0]  # NormNet is not in the table
    budget = tile_bytes(300, 600, 560, model.halo, False, per_pixel) + image.nbytes  # the result beside it
    tiled = restyle(model, image, RestyleOptions(seamless="off", memory_budget=budget), report=report)
    assert report.auto_tile and report.tiles == 4 and report.passes > 1 and report.tile_size == 300
    assert float(np.abs(whole - tiled).max()) <= 1 / 255


def test_manual_tile_size_is_respected_even_when_memory_is_short(free_memory):
    free_memory(10**6)
    report = RestyleReport()
    restyle(build_style("toon"), photo_like(300, 200), RestyleOptions(tile_size=128, seamless="off"), report=report)
    assert not report.auto_tile and report.tile_size == 128 and report.tiles == 6


def test_gpu_out_of_memory_under_auto_retries_from_the_chosen_size(free_memory):
    from ml.networks.base import StyleNet

    class NeedsSmallTiles(StyleNet):
        def forward(self, x):
            if max(x.shape[-2:]) > 200:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return 1 - x

    free_memory(MACHINE_24GB)
    report = RestyleReport()
    image = photo_like(300, 300)
    out = restyle(NeedsSmallTiles(), image, RestyleOptions(seamless="off"), report=report)
    assert np.allclose(out, 1 - image, atol=1e-6)
    assert report.tile_size == 150 and "with 300 px tiles: used 150 px tiles" in report.warning


@pytest.mark.parametrize(("tile", "budget", "message"), [
    (32, 0, r"0 \(Auto\) or at least 64"), (0, -1, "memory budget"),
])
def test_bad_auto_options_are_named(tile, budget, message):
    with pytest.raises(ValueError, match=message):
        RestyleOptions(tile_size=tile, memory_budget=budget).validated()


def test_free_memory_is_read_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24684084 kB\nMemFree: 1000 kB\nMemAvailable:   22306672 kB\n")
    assert memory_model._meminfo_available(meminfo) == 22306672 * 1024
    assert memory_model._meminfo_available(tmp_path / "none") is None


def test_cuda_free_memory_counts_torch_cache_and_a_per_process_limit(monkeypatch):
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (30 * gib, 80 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 6 * gib)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 2 * gib)
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda device=None: 1.0)
    cuda = torch.device("cuda")
    assert memory_model.free_bytes(cuda) == 30 * gib + 4 * gib  # free on the device + torch's unused cache
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda device=None: 0.1)
    assert memory_model.free_bytes(cuda) == (8 * gib - 6 * gib) + 4 * gib  # 8 GiB allowed, 6 reserved


def test_auto_on_cuda_plans_with_most_of_the_free_memory(monkeypatch):
    """A 24 GiB card: 80% of it is the budget, at the GPU's peak per pixel (2.1x the CPU
    table): a 2048² AnimeGANv2 texture runs whole in bf16, a 4096² one in tiles."""
    monkeypatch.setattr(memory_model, "free_bytes", lambda device: 24 * 2**30)
    plan = plan_tiles(AnimeGAN2(), 2048, 2048, torch.device("cuda"), reduced=True)
    assert plan.budget == int(24 * 2**30 * memory_model.SAFE_SHARE["cuda"]) and plan.whole
    big = plan_tiles(AnimeGAN2(), 4096, 4096, torch.device("cuda"), reduced=True)
    assert not big.whole and big.tile_size >= 2048 and big.needed <= big.budget


def test_the_worker_reports_what_auto_chose_and_the_panel_line_follows():
    worker = WorkerClient(str(ROOT), threads=1)
    worker.start()
    try:
        auto = worker.submit("toon", RestyleOptions(), [("a", photo_like(96, 80))]).wait()["a"].info
        assert auto["auto_tile"] and auto["tiles"] == 1 and auto["tile_size"] >= 96
        assert client.last_tile_choice() == "Auto: whole image, 1 pass"
        manual = worker.submit("toon", RestyleOptions(tile_size=64), [("a", photo_like(96, 80))]).wait()["a"].info
        assert not manual["auto_tile"] and manual["tile_size"] == 64
        assert client.last_tile_choice() == "Manual: 4 tiles of 64 px, 1 pass"
    finally:
        worker.shutdown()
