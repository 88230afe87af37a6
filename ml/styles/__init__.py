"""Style networks. Built-in styles are hand-designed torch modules that need no weights."""

from __future__ import annotations

from ..networks.base import StyleNet
from ..options import ModelKind


def build_style(style_id: str) -> StyleNet:
    """The torch module of a style built by name (a built-in or learned style); raises UnknownStyleError."""
    from ..models.registry import describe

    network = describe(style_id, kind=ModelKind.STYLE).build().network
    assert isinstance(network, StyleNet)  # a style's factory builds a StyleNet (registry.load_model checks it)
    return network
