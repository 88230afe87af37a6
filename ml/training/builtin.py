"""The learned built-in styles: generators this project trained with ml.training on its own
procedural exemplars (tools/style_data.py, tools/train_style.py), shipped as fp16
safetensors in ml/weights/styles/ (see the MODEL_CARD.md there). The catalog names them
with this module and one factory per style, as it names the hand-written built-ins.
"""

from __future__ import annotations

from pathlib import Path

from ..networks.base import StyleNet

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "styles"
LEARNED = ("stained-glass", "halftone", "woodcut")


def load_learned(style: str) -> StyleNet:
    """A shipped learned style, read with the normal safe loader."""
    from ..models.loading import load_style_network

    _, net = load_style_network({"model": WEIGHTS / f"{style}.safetensors"})
    return net


def stained_glass() -> StyleNet:
    return load_learned("stained-glass")


def halftone() -> StyleNet:
    return load_learned("halftone")


def woodcut() -> StyleNet:
    return load_learned("woodcut")
