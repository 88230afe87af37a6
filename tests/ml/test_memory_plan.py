"""Auto's plan for small images and on CUDA (defects found on an H200 with gpu_check.sh)."""

from __future__ import annotations

import logging

import pytest
import torch

from ml.networks.animegan2 import AnimeGAN2
from ml.restyle import memory_model


@pytest.mark.parametrize("side", [32, 64, 200, 255])
def test_an_image_smaller_than_the_smallest_auto_tile_runs_whole_without_a_warning(
        side: int, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ml.restyle.memory_model"):
        plan = memory_model.plan_tiles(AnimeGAN2(), side, side, torch.device("cpu"), False, budget=8 * 2**30)
    assert plan.whole and plan.tile_size >= side
    assert not [r for r in caplog.records if "trying anyway" in r.getMessage()]


def test_the_warning_stays_for_a_budget_that_really_is_too_small(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ml.restyle.memory_model"):
        plan = memory_model.plan_tiles(AnimeGAN2(), 4096, 4096, torch.device("cpu"), False, budget=2**20)
    assert not plan.whole and plan.tile_size == memory_model.MIN_AUTO_TILE
    assert any("trying anyway" in r.getMessage() for r in caplog.records)


def test_cuda_plans_with_the_gpus_higher_peak_per_pixel() -> None:
    """2048² AnimeGANv2 at fp32: the CPU table says ~5.4 GiB; the H200 peaked near 2296 B/px
    (9 GiB). With a 7 GiB budget the CPU runs it whole, CUDA must tile."""
    model, budget = AnimeGAN2(), 7 * 2**30
    cpu = memory_model.plan_tiles(model, 2048, 2048, torch.device("cpu"), False, budget=budget)
    cuda = memory_model.plan_tiles(model, 2048, 2048, torch.device("cuda"), False, budget=budget)
    assert cpu.whole
    assert not cuda.whole and cuda.needed <= budget
    assert cuda.needed >= 2 * 1024 * 1024 * 2296 / 4  # a quarter of the image at the GPU's measured peak
