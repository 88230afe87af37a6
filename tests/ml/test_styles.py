import itertools

import numpy as np
import pytest

from ml.errors import UnknownStyleError
from ml.models.catalog import BUILTIN_STYLES, get_style, style_ids
from ml.restyle.engine import RestyleOptions, restyle
from ml.styles import build_style
from ml.styles.pixel import BLOCK, PALETTE
from tests.ml.synthetic import photo_like

IMAGE = photo_like(128, 128, seed=7)


@pytest.fixture(scope="module")
def outputs():
    return {style: restyle(build_style(style), IMAGE, RestyleOptions(seamless="off")) for style in style_ids()}


def test_catalog_has_the_five_builtin_styles_with_descriptions():
    assert style_ids() == ["toon", "oil", "watercolor", "pencil", "pixel"]
    assert all(entry.description and not entry.needs_download for entry in BUILTIN_STYLES)
    with pytest.raises(UnknownStyleError, match="known styles: toon"):
        get_style("van-gogh")


@pytest.mark.parametrize("style", style_ids())
def test_style_is_deterministic_and_changes_the_image(style, outputs):
    again = restyle(build_style(style), IMAGE, RestyleOptions(seamless="off"))
    assert np.array_equal(again, outputs[style])
    assert 0.0 <= outputs[style].min() and outputs[style].max() <= 1.0
    assert np.abs(outputs[style] - IMAGE).mean() > 0.01


def test_styles_look_different_from_each_other(outputs):
    for a, b in itertools.combinations(style_ids(), 2):
        assert np.abs(outputs[a] - outputs[b]).mean() > 0.02, (a, b)


def test_pixel_art_is_blocks_of_palette_colours(outputs):
    out = outputs["pixel"]
    blocks = out.reshape(128 // BLOCK, BLOCK, 128 // BLOCK, BLOCK, 3)
    assert np.array_equal(blocks, np.broadcast_to(blocks[:, :1, :, :1], blocks.shape))
    colours = {tuple(np.round(c, 4)) for c in out.reshape(-1, 3)}
    assert colours <= {tuple(np.round(np.float32(c), 4)) for c in PALETTE}


def test_pencil_is_nearly_grey(outputs):
    out = outputs["pencil"]
    assert (out.max(2) - out.min(2)).mean() < 0.06
    assert (IMAGE.max(2) - IMAGE.min(2)).mean() > 0.1


def test_toon_has_ink_lines_and_flat_regions(outputs):
    out = outputs["toon"]
    luma = out @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    assert (luma < 0.12).mean() > 0.005  # dark outlines exist
    # Flat colour: small neighbour-to-neighbour differences are rarer than in the photo.
    flat = lambda img: (np.abs(np.diff(img, axis=1)).max(2) < 0.004).mean()
    assert flat(out) > flat(IMAGE) + 0.2


def test_oil_smooths_texture_but_keeps_edges(outputs):
    out = outputs["oil"]
    fine = lambda img: np.abs(np.diff(img, axis=1)).mean()
    assert fine(out) < 0.7 * fine(IMAGE)
    strong = np.abs(np.diff(IMAGE, axis=1)).max(2) > 0.3  # disc boundaries
    assert np.abs(np.diff(out, axis=1)).max(2)[strong].mean() > 0.15
