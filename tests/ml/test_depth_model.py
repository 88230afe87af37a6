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


@pytest.mark.parametrize("blocks,context,encoder,planar", [
    ((2, 2, 2, 2), False, (48, 96, 160, 224), False),
    ((2, 2, 3, 3), True, (48, 96, 160, 224), False),
    ((1, 3, 3, 4), False, (32, 64, 128, 256), False),
    ((2, 3, 6, 4), True, (48, 96, 224, 384), True),
])
def test_builtin_network_layout_is_read_from_keys_and_shapes(tmp_path, blocks, context, encoder, planar):
    from safetensors.torch import save_file

    from ml.depth.builtin import estimate_fast_depth, load_fast_depth
    from ml.networks.fast_depth import FastDepth, FastDepthShape, shape_from_state

    shape = FastDepthShape(encoder=encoder, blocks=blocks, context=context, planar=planar)
    torch.manual_seed(1)
    net = FastDepth(shape).eval()
    assert shape_from_state(net.state_dict()) == shape
    path = tmp_path / "any name.safetensors"  # never read from the file name
    save_file({k: v.half() for k, v in net.state_dict().items() if v.is_floating_point()}, str(path))
    loaded = load_fast_depth(path)
    assert loaded.shape == shape
    photo = np.random.default_rng(0).random((60, 80, 3), dtype=np.float32)
    assert estimate_fast_depth(loaded, photo).shape == (60, 80)


def test_a_planar_head_draws_one_plane_in_inverse_depth_from_constant_parameters():
    """Offset 0.5, slopes 0.25 (x) and 1 (y) everywhere: before the softplus, the map is
    0.5 + 0.25 x + y at every pixel centre, x and y from -1 (left, top) to 1 (right, bottom)."""
    from ml.networks.fast_depth import FastDepth, FastDepthShape

    net = FastDepth(FastDepthShape(planar=True)).eval()
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.copy_(torch.tensor([0.5, 0.25, 1.0]))
        out = net(torch.rand(1, 3, 64, 96))[0]
    x = (torch.arange(96) + 0.5) / 48 - 1
    y = (torch.arange(64) + 0.5) / 32 - 1
    expected = torch.nn.functional.softplus(0.5 + 0.25 * x[None, :] + y[:, None])
    assert torch.allclose(out, expected, atol=1e-5)
    assert out[-1, 0] > out[0, 0] and out[0, -1] > out[0, 0]  # nearer towards the bottom and the right


def test_a_plain_network_becomes_a_planar_one_with_nearly_the_same_output():
    """Exactly the same map before the softplus; the planar head upsamples before the
    softplus, the plain one after it, which moves the output by well under 1%."""
    from ml.networks.fast_depth import FastDepth, FastDepthShape, planar_from_plain, shape_from_state

    torch.manual_seed(2)
    plain = FastDepth(FastDepthShape(context=True)).eval()
    state = planar_from_plain(plain.state_dict())
    assert shape_from_state(state).planar
    planar = FastDepth(shape_from_state(state)).eval()
    planar.load_state_dict(state)
    x = torch.rand(2, 3, 96, 128)
    with torch.inference_mode():
        a, b = plain(x), planar(x)
    assert torch.allclose(a, b, rtol=5e-3, atol=0)
    with pytest.raises(ValueError, match="3 outputs"):
        planar_from_plain(state)


def test_a_state_dict_of_another_network_is_refused_with_a_message(tmp_path):
    from safetensors.torch import save_file

    from ml.depth.builtin import load_fast_depth
    from ml.errors import UnsupportedModel

    path = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(8, 3, 3, 3), "head.weight": torch.zeros(1, 8, 1, 1)}, str(path))
    with pytest.raises(UnsupportedModel, match="not a built-in depth network"):
        load_fast_depth(path)
