"""The contract between a style network and the tiling engine."""

from __future__ import annotations

from torch import nn


class StyleNet(nn.Module):
    """A module mapping sRGB images (N, 3, H, W) in [0, 1] to restyled images of the same size.

    ``halo``: input pixels of context on each side a tile needs for its core to come
    out exactly as in a whole-image run (the receptive-field radius, or for learned
    generators a radius beyond which context no longer changes 8-bit output).
    ``align``: tile origins must be multiples of this (the product of the strides,
    or the size of a pixel-art block), so each tile sees the same grid as the whole.
    ``reduced_precision_ok``: the error of bf16/fp16 against fp32 was measured small.
    ``channels_last``: run in NHWC memory layout (oneDNN and cuDNN prefer it for convs).
    """

    halo: int = 0
    align: int = 1
    reduced_precision_ok: bool = False
    channels_last: bool = False  # convolution-heavy networks run faster in NHWC on CPU and GPU
