"""Each re-implemented generator has exactly the published checkpoint layout and tiles exactly."""

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.networks.adain import AdaIN
from ml.networks.animegan2 import AnimeGAN2
from ml.networks.cyclegan import CycleGANGenerator
from ml.networks.transformer_net import TransformerNet
from ml.restyle.engine import RestyleOptions, RestyleReport, restyle
from tests.ml.checkpoints import seeded as _seeded
from tests.ml.synthetic import photo_like

KEYS = Path(__file__).parent / "keys"


def published(name: str) -> dict[str, dict[str, tuple[int, ...]]]:
    """Key -> shape per file section (AdaIN's list holds two files)."""
    sections: dict[str, dict[str, tuple[int, ...]]] = {"": {}}
    current = ""
    for line in (KEYS / f"keys_{name}.txt").read_text().splitlines():
        if line.startswith("# "):
            current = line[2:].strip()
            sections[current] = {}
        elif line.strip():
            key, shape = line.split(" ", 1)
            sections[current][key] = tuple(int(v) for v in shape.strip("()").split(",") if v.strip())
    return {k: v for k, v in sections.items() if v}


def layout(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state.items()}


@pytest.mark.parametrize(
    "name, model, params",
    [
        ("animegan2", AnimeGAN2, 2_143_552),
        ("cyclegan_resnet9", lambda: CycleGANGenerator(9), 11_378_179),
        ("fast_neural_style", TransformerNet, 1_679_235),
    ],
)
def test_state_dict_matches_the_published_keys(name, model, params):
    net = model()
    assert layout(net.state_dict()) == published(name)[""]
    assert sum(p.numel() for p in net.parameters()) == params


def test_adain_files_match_the_published_keys():
    parts = AdaIN().state_dict_parts()
    expected = published("adain")
    assert layout(parts["decoder"]) == expected["decoder"]
    assert layout(parts["vgg"]) == expected["vgg_normalised"]


def _adain() -> AdaIN:
    model = _seeded(AdaIN())
    model.set_style(torch.from_numpy(photo_like(64, 64, seed=9)).permute(2, 0, 1)[None])
    return model


ARCHITECTURES = pytest.mark.parametrize(
    "model",
    [lambda: _seeded(AnimeGAN2()), lambda: _seeded(CycleGANGenerator(6)), lambda: _seeded(TransformerNet()), _adain],
    ids=["animegan2", "cyclegan6", "transformer_net", "adain"],
)


@ARCHITECTURES
def test_tiled_equals_whole_for_every_architecture(model):
    net = model()
    image = photo_like(200, 232, seed=3)
    whole = restyle(net, image, RestyleOptions(seamless="off", tile_size=8192, precision="full"))
    report = RestyleReport()
    tiled = restyle(net, image, RestyleOptions(seamless="off", tile_size=96, precision="full"), report=report)
    assert report.tiles >= 4
    assert float(np.abs(whole - tiled).max()) <= 1 / 255
    assert float(np.abs(whole - image).mean()) > 0.01  # the seeded network does change the image


@ARCHITECTURES
@pytest.mark.parametrize("seamless", ["off", "on"])
def test_tiny_and_thin_textures_come_back_at_their_size(model, seamless):
    # Aligned to the model's stride alone, a 3x2 texture reaches a 1x1 feature map, which
    # reflection padding and instance norm reject; the engine pads small sides further.
    net = model()
    for shape, tile in [((3, 2, 4), 512), ((1, 300, 3), 128)]:
        image = np.random.default_rng(0).random(shape, dtype=np.float32)
        out = restyle(net, image, RestyleOptions(seamless=seamless, tile_size=tile, precision="full"))
        assert out.shape == image.shape
        assert np.isfinite(out).all()
