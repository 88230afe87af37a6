"""Convolution, reflection padding and a following norm run as one convolution where the
result is the same.

* **Norms with known statistics.** On tiles, every GlobalNorm has whole-image statistics
  (``frozen``) and is a per-channel affine map, so it is folded into the convolution's
  weights and bias instead of making its own pass over the feature map.
* **Activations.** A ReLU or LeakyReLU right after a convolution (and its folded norm)
  runs inside oneDNN's convolution as a post-op on the CPU, on the accumulator before it
  is stored: no pass of its own, and in bf16 one rounding instead of two. torch's bf16
  activations are slow on the CPU (a large share of AnimeGANv2's bf16 forward), so
  one that must run alone (after a norm measured on the fly) in bf16 runs as a 1x1
  depthwise identity convolution with the same post-op.
* **Reflection padding.** A padded copy of every feature map is a visible share of
  AnimeGANv2's time (``tools/bench/bench_models.py --profile``). For a stride-1 convolution with
  ``kernel // 2`` reflected pixels on each side, the convolution runs with its own zero
  padding (no copy) and only the ``pad`` rows and columns along each edge, the only ones
  that read padding, are recomputed from small reflected strips.

:class:`FusedSequential` applies all three to ``[ReflectionPad] Conv [GlobalNorm] [ReLU]`` runs
inside an ``nn.Sequential``; the layers, and so the state dict keys, stay as they are.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..restyle.tiling import GlobalNorm
from .padding import ReflectionPad

log = logging.getLogger(__name__)
Conv = nn.Conv2d | nn.ConvTranspose2d
Activation = nn.ReLU | nn.LeakyReLU
_PLAIN: contextvars.ContextVar[bool] = contextvars.ContextVar("restyle_plain_layers", default=False)


@contextlib.contextmanager
def plain_layers() -> Iterator[None]:
    """Run every layer on its own, the textbook way (pad, convolve, normalise): the naive
    baseline of ``tools/bench/bench_models.py``."""
    token = _PLAIN.set(True)
    try:
        yield
    finally:
        _PLAIN.reset(token)


def conv_params(conv: Conv, norm: GlobalNorm | None, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(weight, bias) of ``conv``, with ``norm`` folded in when its statistics are frozen."""
    if norm is None or not folds(norm, x):
        return conv.weight, conv.bias
    assert norm.frozen is not None
    scales, shifts = norm.affine(*(t.to(x.device) for t in norm.frozen))
    scale, shift = scales[0], shifts[0]
    bias = shift if conv.bias is None else shift + scale * conv.bias
    if isinstance(conv, nn.ConvTranspose2d):  # weight is (in, out / groups, kh, kw)
        if conv.groups != 1:
            raise ValueError("folding a norm into a grouped transposed convolution is not supported")
        return conv.weight * scale.view(1, -1, 1, 1), bias
    return conv.weight * scale.view(-1, 1, 1, 1), bias


def folds(norm: GlobalNorm, x: torch.Tensor) -> bool:
    """Whether ``norm`` is a fixed affine map for this input (frozen, not measuring, one image)."""
    return norm.frozen is not None and not norm.collecting and x.shape[0] == 1


def conv_norm(
    conv: Conv, norm: GlobalNorm | None, x: torch.Tensor, reflect: int = 0, act: Activation | None = None
) -> torch.Tensor:
    """``act(norm(conv(reflection_pad(x, reflect))))``, as one convolution where possible."""
    if _PLAIN.get():
        y = conv(ReflectionPad(reflect)(x) if reflect else x)
        y = norm(y) if norm is not None else y
        return act(y) if act is not None else y
    weight, bias = conv_params(conv, norm, x)
    measured = norm is not None and not folds(norm, x)  # the norm needs this output first
    post = None if measured else act
    if reflect and _reflect_fusable(conv, reflect, x):
        y = reflect_padded_conv(x, weight, bias, reflect, conv.groups, post)
    else:
        if reflect:
            x = ReflectionPad(reflect)(x)
        if isinstance(conv, nn.ConvTranspose2d):
            y = F.conv_transpose2d(x, weight, bias, conv.stride, conv.padding, conv.output_padding,  # type: ignore[arg-type]
                                   conv.groups, conv.dilation)  # type: ignore[arg-type]
            y = activate(y, post)
        elif conv.padding_mode == "zeros" and not isinstance(conv.padding, str):
            y = conv2d_act(x, weight, bias, post, conv.stride, conv.padding, conv.dilation, conv.groups)
        else:
            y = activate(conv._conv_forward(x, weight, bias), post)
    if measured:
        assert norm is not None
        y = activate(norm(y), act)
    return y


def _post_op(act: Activation | None) -> tuple[str, list[float]]:
    if act is None:
        return "none", []
    if isinstance(act, nn.LeakyReLU):
        return "leaky_relu", [float(act.negative_slope)]
    return "relu", []


_HAS_POINTWISE = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def _onednn_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The dtype oneDNN's fused convolution would run ``x`` in, or None where it cannot run
    (not the CPU, no oneDNN, gradients wanted, a dtype other than fp32 or bf16)."""
    if x.device.type != "cpu" or x.dim() != 4 or not _HAS_POINTWISE or torch.is_grad_enabled():
        return None
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    return dtype if dtype in (torch.float32, torch.bfloat16) else None


def _pointwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding, stride, dilation,
                    groups: int, act: Activation | None, dtype: torch.dtype) -> torch.Tensor:
    attr, scalars = _post_op(act)
    return torch.ops.mkldnn._convolution_pointwise(
        x.to(dtype), weight.to(dtype), None if bias is None else bias.to(dtype),
        list(padding), list(stride), list(dilation), groups, attr, scalars, "")


def _fused(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, act: Activation | None,
           dtype: torch.dtype, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups: int = 1) -> torch.Tensor | None:
    """oneDNN's convolution with ``act`` as post-op, or None when this torch build's op
    fails (it is private, so a build may differ): then layers run separately from now on."""
    global _HAS_POINTWISE
    try:
        return _pointwise_conv(x, weight, bias, padding, stride, dilation, groups, act, dtype)
    except (RuntimeError, TypeError) as error:
        if "memory" in str(error):  # the CPU allocator's out-of-memory is a plain RuntimeError
            raise
        log.warning("oneDNN fused convolution unavailable (%s); running layers separately", error)
        _HAS_POINTWISE = False
        return None


def conv2d_act(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, act: Activation | None,
               stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups: int = 1) -> torch.Tensor:
    """``act(conv2d(x, weight, bias, ...))`` (zero padding), the activation a post-op of
    oneDNN's convolution where that can run."""
    dtype = _onednn_dtype(x)
    if dtype is not None:
        y = _fused(x, weight, bias, act, dtype, stride, padding, dilation, groups)
        if y is not None:
            return y
    return activate(F.conv2d(x, weight, bias, stride, padding, dilation, groups), act)


def activate(y: torch.Tensor, act: Activation | None) -> torch.Tensor:
    """``act(y)`` in place on a feature map this module made; in bf16 on the CPU, as a
    1x1 depthwise identity convolution with the activation as post-op (faster than torch's
    own bf16 kernel)."""
    if act is None:
        return y
    if _onednn_dtype(y) == torch.bfloat16 and y.dtype == torch.bfloat16:
        channels = y.shape[1]
        identity = torch.ones(channels, 1, 1, 1, dtype=torch.bfloat16, device=y.device)
        out = _fused(y, identity, None, act, torch.bfloat16, groups=channels)
        if out is not None:
            return out
    if isinstance(act, nn.LeakyReLU):
        return F.leaky_relu_(y, act.negative_slope)
    return F.relu_(y)


def _reflect_fusable(conv: Conv, pad: int, x: torch.Tensor) -> bool:
    return (
        isinstance(conv, nn.Conv2d)
        and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.padding == (0, 0)
        and conv.kernel_size == (2 * pad + 1, 2 * pad + 1)
        and min(x.shape[-2:]) > 2 * pad  # the edge strips need 2 * pad real rows
    )


def reflect_padded_conv(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, pad: int, groups: int = 1,
    act: Activation | None = None,
) -> torch.Tensor:
    """``act(conv2d(reflection_pad(x, pad), weight, bias))`` for a (2 pad + 1)-wide kernel, stride 1.

    Only the outputs within ``pad`` of an edge read padding: each edge's band is recomputed
    from the 2 pad input rows (or columns) next to it, reflected the way the whole map is."""
    y = conv2d_act(x, weight, bias, act, padding=(pad, pad), groups=groups)
    strip = 2 * pad
    h, w = x.shape[-2:]
    edges = (
        ((pad, pad, pad, 0), x[..., :strip, :], (slice(None, pad), slice(None))),
        ((pad, pad, 0, pad), x[..., h - strip :, :], (slice(h - pad, None), slice(None))),
        ((pad, 0, pad, pad), x[..., :, :strip], (slice(None), slice(None, pad))),
        ((0, pad, pad, pad), x[..., :, w - strip :], (slice(None), slice(w - pad, None))),
    )
    for padding, band, (rows, cols) in edges:
        y[..., rows, cols] = conv2d_act(ReflectionPad(padding)(band), weight, bias, act, groups=groups)
    return y


class FusedSequential(nn.Sequential):
    """``nn.Sequential`` that runs each ``[ReflectionPad] Conv [GlobalNorm]`` through
    :func:`conv_norm` (same layers, same state dict keys)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _PLAIN.get():
            return super().forward(x)
        layers = list(self)
        i = 0
        while i < len(layers):
            layer, reflect = layers[i], 0
            if (isinstance(layer, ReflectionPad) and len(set(layer.padding)) == 1
                    and i + 1 < len(layers) and isinstance(layers[i + 1], nn.Conv2d)):
                reflect = layer.padding[0]
                i += 1
                layer = layers[i]
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                after = layers[i + 1] if i + 1 < len(layers) else None
                norm = after if isinstance(after, GlobalNorm) else None
                i += 2 if norm is not None else 1
                after = layers[i] if i < len(layers) else None
                act = after if isinstance(after, (nn.ReLU, nn.LeakyReLU)) else None
                i += 1 if act is not None else 0
                x = conv_norm(layer, norm, x, reflect, act)
            else:
                x = layer(x)
                i += 1
        return x
