"""The learned styles the extension ships still meet their targets on content they never saw:
the held-out HDRIs (tools/style_data.py) through the engine, scored by tools/eval_style.py.
A change to the engine, the loader or the weights that degrades a style fails here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import eval_style  # noqa: E402
import style_data  # noqa: E402

WEIGHTS = ROOT / "ml" / "weights" / "styles"


@pytest.fixture(scope="module")
def heldout() -> list:
    return list(style_data.heldout_crops().values())


@pytest.mark.parametrize("style", ["halftone", "stained-glass", "woodcut"])
def test_shipped_style_meets_the_targets_on_held_out_content(style: str, heldout: list) -> None:
    exemplars = list(style_data.exemplars(style).values())
    figures, results = eval_style.evaluate(WEIGHTS / f"{style}.safetensors", exemplars, heldout, seed=0)
    assert len(results) == len(heldout) == 12
    assert figures["swd_drop_percent"] >= 50.0, figures
    assert figures["ssim_result"] >= 0.5, figures
    # The card's figures are the ones this evaluation gives (within float noise across CPUs).
    card = json.loads((WEIGHTS / f"{style}.json").read_text())["evaluation"]
    assert figures["swd_drop_percent"] == pytest.approx(card["swd_drop_percent"], abs=0.5)
    assert figures["ssim_result"] == pytest.approx(card["ssim_result"], abs=0.01)
