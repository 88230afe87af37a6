"""Convolution, reflection padding and a following norm run as one convolution where the
result is the same.

* **Norms with known statistics.** On tiles, every GlobalNorm has whole-image statistics
  (``frozen``) and is a per-channel affine map, so it is folded into the convolution's
  weights and bias instead of making its own pass over the feature map.
* **Reflection padding.** A padded copy of every feature map cost 7-10% of AnimeGANv2's
  time (``tools/bench/bench_models.py --profile``). For a stride-1 convolution with
  ``kernel // 2`` reflected pixels on each side, the convolution runs with its own zero
  padding (no copy) and only the ``pad`` rows and columns along each edge, the only ones
  that read padding, are recomputed from small reflected strips.

:class:`FusedSequential` applies both to ``[ReflectionPad] Conv [GlobalNorm]`` runs inside an
``nn.Sequential``; the layers, and so the state dict keys, stay as they are.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..tiling import GlobalNorm
from .padding import ReflectionPad

Conv = nn.Conv2d | nn.ConvTranspose2d
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


def conv_norm(conv: Conv, norm: GlobalNorm | None, x: torch.Tensor, reflect: int = 0) -> torch.Tensor:
    """``norm(conv(reflection_pad(x, reflect)))``, as one convolution where possible."""
    if _PLAIN.get():
        y = conv(ReflectionPad(reflect)(x) if reflect else x)
        return norm(y) if norm is not None else y
    weight, bias = conv_params(conv, norm, x)
    if reflect and _reflect_fusable(conv, reflect, x):
        y = reflect_padded_conv(x, weight, bias, reflect, conv.groups)
    else:
        if reflect:
            x = ReflectionPad(reflect)(x)
        if isinstance(conv, nn.ConvTranspose2d):
            y = F.conv_transpose2d(x, weight, bias, conv.stride, conv.padding, conv.output_padding,  # type: ignore[arg-type]
                                   conv.groups, conv.dilation)  # type: ignore[arg-type]
        else:
            y = conv._conv_forward(x, weight, bias)
    if norm is not None and not folds(norm, x):
        y = norm(y)
    return y


def _reflect_fusable(conv: Conv, pad: int, x: torch.Tensor) -> bool:
    return (
        isinstance(conv, nn.Conv2d)
        and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.padding == (0, 0)
        and conv.kernel_size == (2 * pad + 1, 2 * pad + 1)
        and min(x.shape[-2:]) > 2 * pad  # the edge strips need 2 * pad real rows
    )


def reflect_padded_conv(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, pad: int, groups: int = 1
) -> torch.Tensor:
    """``conv2d(reflection_pad(x, pad), weight, bias)`` for a (2 pad + 1)-wide kernel, stride 1.

    Only the outputs within ``pad`` of an edge read padding: each edge's band is recomputed
    from the 2 pad input rows (or columns) next to it, reflected the way the whole map is."""
    y = F.conv2d(x, weight, bias, padding=pad, groups=groups)
    strip = 2 * pad
    h, w = x.shape[-2:]
    edges = (
        ((pad, pad, pad, 0), x[..., :strip, :], (slice(None, pad), slice(None))),
        ((pad, pad, 0, pad), x[..., h - strip :, :], (slice(h - pad, None), slice(None))),
        ((pad, 0, pad, pad), x[..., :, :strip], (slice(None), slice(None, pad))),
        ((0, pad, pad, pad), x[..., :, w - strip :], (slice(None), slice(w - pad, None))),
    )
    for padding, band, (rows, cols) in edges:
        y[..., rows, cols] = F.conv2d(ReflectionPad(padding)(band), weight, bias, groups=groups)
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
                x = conv_norm(layer, norm, x, reflect)
                i += 2 if norm is not None else 1
            else:
                x = layer(x)
                i += 1
        return x
