import numpy as np
import pytest
import torch

from ml.networks.depth_anything import CONFIGS, DepthAnythingV2, config_from_state
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

    from ml.depth.builtin import estimate_fast_depth, fold_batch_norms
    from ml.networks.fast_depth import FastDepth

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


@pytest.mark.parametrize("blocks,context,encoder", [
    ((2, 2, 2, 2), False, (48, 96, 160, 224)),  # the shipped layout
    ((2, 2, 3, 3), True, (48, 96, 160, 224)),
    ((1, 3, 3, 4), False, (32, 64, 128, 256)),
])
def test_builtin_network_layout_is_read_from_keys_and_shapes(tmp_path, blocks, context, encoder):
    from safetensors.torch import save_file

    from ml.depth.builtin import estimate_fast_depth, load_fast_depth
    from ml.networks.fast_depth import FastDepth, FastDepthShape, shape_from_state

    shape = FastDepthShape(encoder=encoder, blocks=blocks, context=context)
    torch.manual_seed(1)
    net = FastDepth(shape).eval()
    assert shape_from_state(net.state_dict()) == shape
    path = tmp_path / "any name.safetensors"  # never read from the file name
    save_file({k: v.half() for k, v in net.state_dict().items() if v.is_floating_point()}, str(path))
    loaded = load_fast_depth(path)
    assert loaded.shape == shape
    photo = np.random.default_rng(0).random((60, 80, 3), dtype=np.float32)
    assert estimate_fast_depth(loaded, photo).shape == (60, 80)


def test_a_state_dict_of_another_network_is_refused_with_a_message(tmp_path):
    from safetensors.torch import save_file

    from ml.depth.builtin import load_fast_depth
    from ml.errors import UnsupportedModel

    path = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(8, 3, 3, 3), "head.weight": torch.zeros(1, 8, 1, 1)}, str(path))
    with pytest.raises(UnsupportedModel, match="not a built-in depth network"):
        load_fast_depth(path)
