import numpy as np
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


def test_builtin_network_folds_its_batch_norms_without_changing_the_output():
    import copy

    from ml.fast_depth import estimate_fast_depth, fold_batch_norms
    from ml.models.fast_depth import FastDepth

    torch.manual_seed(3)
    net = FastDepth()
    for module in net.modules():  # non-trivial statistics, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    net.eval()
    folded = fold_batch_norms(copy.deepcopy(net))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(1, 3, 96, 128)
    with torch.inference_mode():
        assert torch.allclose(net(x), folded(x), rtol=1e-4, atol=1e-5)
    photo = np.random.default_rng(0).random((75, 101, 3), dtype=np.float32)  # any size in, same size out
    assert estimate_fast_depth(folded, photo).shape == (75, 101)
    assert estimate_fast_depth(folded, photo, mirrored=False).shape == (75, 101)
