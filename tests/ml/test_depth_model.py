import pytest
import torch

from ml.models.depth_anything import CONFIGS, DepthAnythingV2, config_from_state
from tests.ml.test_architectures import layout, published


def test_small_model_has_exactly_the_published_layout():
    net = DepthAnythingV2(CONFIGS["vits"])
    assert layout(net.state_dict()) == published("dav2_vits")[""]
    assert sum(p.numel() for p in net.parameters()) == 24_785_089


@pytest.mark.parametrize("size", ["vits", "vitb"])
def test_size_is_read_from_shapes(size):
    state = DepthAnythingV2(CONFIGS[size]).state_dict()
    assert config_from_state(state).dim == CONFIGS[size].dim


def test_output_is_a_non_negative_map_at_patch_resolution_times_14():
    torch.manual_seed(0)
    net = DepthAnythingV2(CONFIGS["vits"]).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 14 * 6, 14 * 8))
    assert out.shape == (1, 84, 112) and (out >= 0).all()


def test_metric_variant_is_bounded_by_max_depth():
    torch.manual_seed(0)
    config = config_from_state(DepthAnythingV2(CONFIGS["vits"]).state_dict(), max_depth=20.0)
    net = DepthAnythingV2(config).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 56, 56))
    assert (out >= 0).all() and (out <= 20.0).all()
