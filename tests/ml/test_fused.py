import pytest
import torch
from torch import nn

from ml.networks.fused import FusedSequential, conv_norm, reflect_padded_conv
from ml.networks.padding import ReflectionPad
from ml.restyle.tiling import GlobalNorm


@pytest.mark.parametrize("pad,groups,size", [(1, 1, (9, 13)), (3, 1, (7, 20)), (1, 8, (5, 6)), (4, 2, (9, 9))])
def test_reflect_padded_conv_equals_padding_then_convolving(pad, groups, size):
    torch.manual_seed(pad + groups)
    conv = nn.Conv2d(8, 6 if groups == 2 else 8, 2 * pad + 1, groups=groups)
    x = torch.randn(1, 8, *size).contiguous(memory_format=torch.channels_last)
    expected = conv(nn.ReflectionPad2d(pad)(x))
    out = reflect_padded_conv(x, conv.weight, conv.bias, pad, groups)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def _frozen(norm: GlobalNorm, y: torch.Tensor) -> None:
    """Give ``norm`` the statistics of ``y`` the way the engine does for tiles."""
    norm.start_collecting()
    norm._accumulate(y)
    norm.frozen = norm.finish_collecting()


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("groups,affine", [(1, True), (6, False), (6, True)])
def test_norm_with_frozen_statistics_folds_into_the_convolution(transposed, groups, affine):
    torch.manual_seed(groups)
    conv = (nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1) if transposed
            else nn.Conv2d(4, 6, 3, padding=1, bias=not affine))
    norm = GlobalNorm(groups, 6, affine=affine)
    if affine:
        norm.weight.data.normal_(), norm.bias.data.normal_()
    x = torch.randn(1, 4, 10, 12) * 3 + 2
    expected = nn.GroupNorm(groups, 6, affine=False)(conv(x))
    if affine:
        expected = expected * norm.weight.view(1, -1, 1, 1) + norm.bias.view(1, -1, 1, 1)
    _frozen(norm, conv(x))
    calls = []
    norm.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        out = conv_norm(conv, norm, x)
    assert calls == []  # folded: the norm made no pass of its own
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)


def test_fused_sequential_keeps_keys_and_matches_plain_sequential():
    torch.manual_seed(0)
    layers = [ReflectionPad(1), nn.Conv2d(3, 8, 3), GlobalNorm(1, 8), nn.LeakyReLU(0.2),
              ReflectionPad((0, 1, 0, 1)), nn.Conv2d(8, 8, 3, stride=2), GlobalNorm(8, 8, affine=False), nn.ReLU(),
              ReflectionPad(3), nn.Conv2d(8, 3, 7)]
    plain, fused = nn.Sequential(*layers), FusedSequential(*layers)
    assert list(fused.state_dict()) == list(plain.state_dict())
    x = torch.rand(1, 3, 16, 20)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), plain(x), atol=1e-5, rtol=1e-5)
        _frozen(layers[2], layers[1](layers[0](x)))  # the first norm now folds; the result stays
        torch.testing.assert_close(fused(x), plain(x), atol=1e-5, rtol=1e-5)


def test_plain_layers_run_each_layer_on_its_own():
    from ml.networks.fused import plain_layers

    pad, conv = ReflectionPad(1), nn.Conv2d(3, 4, 3)
    calls = []
    pad.register_forward_hook(lambda *_: calls.append("pad"))
    conv.register_forward_hook(lambda *_: calls.append("conv"))
    seq, x = FusedSequential(pad, conv), torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        fused = seq(x)
        assert calls == []  # padding and convolution ran as one, outside the modules
        with plain_layers():
            plain = seq(x)
    assert calls == ["pad", "conv"]
    torch.testing.assert_close(fused, plain, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("act", [nn.ReLU(), nn.LeakyReLU(0.2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_activation_runs_inside_the_convolution(act, dtype):
    """After a convolution (and a folded norm) the activation module itself never runs; the
    result equals convolving then activating, in bf16 within one bf16 rounding."""
    torch.manual_seed(1)
    seq = FusedSequential(ReflectionPad(1), nn.Conv2d(6, 8, 3), act, nn.Conv2d(8, 4, 1), act)
    x = torch.randn(1, 6, 12, 10).contiguous(memory_format=torch.channels_last)
    calls = []
    act.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        fused = seq(x)
        assert calls == []
        expected = act(seq[3](act(seq[1](seq[0](x)))))
    assert fused.dtype == expected.dtype == dtype
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(fused.float(), expected.float(), atol=tolerance, rtol=tolerance)
    assert (fused < 0).any() == isinstance(act, nn.LeakyReLU)


def test_bf16_activation_after_a_measured_norm_equals_torchs_own():
    from ml.networks.fused import activate

    y = torch.randn(1, 16, 9, 7).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        for act in (nn.ReLU(), nn.LeakyReLU(0.2)):
            expected = act(y.clone())
            out = activate(y.clone(), act)
            assert out.dtype == torch.bfloat16
            assert torch.equal(out, expected)


def test_with_gradients_the_layers_run_through_autograd():
    torch.manual_seed(2)
    seq = FusedSequential(ReflectionPad(1), nn.Conv2d(3, 4, 3), GlobalNorm(1, 4), nn.LeakyReLU(0.2))
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    seq(x).square().sum().backward()
    assert x.grad is not None and seq[1].weight.grad is not None and x.grad.abs().sum() > 0


def test_a_torch_build_whose_fused_op_fails_falls_back_to_separate_layers(monkeypatch):
    import ml.networks.fused as fused

    def broken(*args):
        raise RuntimeError("unknown attribute")

    monkeypatch.setattr(fused, "_pointwise_conv", broken)
    monkeypatch.setattr(fused, "_HAS_POINTWISE", True)
    torch.manual_seed(3)
    seq = FusedSequential(ReflectionPad(1), nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.2))
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        out = seq(x)
        assert fused._HAS_POINTWISE is False
        torch.testing.assert_close(out, seq[2](seq[1](seq[0](x))), atol=1e-5, rtol=1e-5)
