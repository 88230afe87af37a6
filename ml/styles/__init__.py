"""Style networks. Built-in styles are hand-designed torch modules that need no weights."""

from __future__ import annotations

import importlib

from ..catalog import get_style
from .base import StyleNet


def build_style(style_id: str) -> StyleNet:
    """Instantiate the torch module for a catalog style (raises UnknownStyleError)."""
    entry = get_style(style_id)
    module = importlib.import_module(f".{entry.module}", __name__)
    net: StyleNet = getattr(module, entry.factory)()
    return net.eval()
