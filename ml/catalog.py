"""The list of styles the extension offers. Plain data: importing it never imports torch.

Each entry names the module and class that build the style's torch module, so the
catalog can feed Blender's UI while the heavy code stays in the worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UnknownStyleError


@dataclass(frozen=True)
class StyleEntry:
    id: str
    name: str
    description: str
    family: str  # "builtin" today; "gan", "arbitrary", "custom" come with downloaded models
    module: str  # module inside ml.styles
    factory: str  # class name in that module
    license: str = "GPL-3.0-or-later (part of Neural Restyle)"
    non_commercial: bool = False
    needs_download: bool = False


BUILTIN_STYLES: tuple[StyleEntry, ...] = (
    StyleEntry(
        "toon", "Toon",
        "Flat colour regions with ink outlines (edge-preserving smoothing, quantised tones, XDoG lines)",
        "builtin", "toon", "ToonStyle",
    ),
    StyleEntry(
        "oil", "Oil Paint",
        "Brush strokes that follow the image's structure (anisotropic Kuwahara filter)",
        "builtin", "oil", "OilStyle",
    ),
    StyleEntry(
        "watercolor", "Watercolor",
        "Soft washes with darkened wet edges, pigment granulation and paper grain",
        "builtin", "watercolor", "WatercolorStyle",
    ),
    StyleEntry(
        "pencil", "Pencil Sketch",
        "Graphite sketch: dodge-blended outlines with hatching in the shadows",
        "builtin", "pencil", "PencilStyle",
    ),
    StyleEntry(
        "pixel", "Pixel Art",
        "Large square pixels snapped to a limited 16-colour palette",
        "builtin", "pixel", "PixelStyle",
    ),
)

_BY_ID = {entry.id: entry for entry in BUILTIN_STYLES}


def style_ids() -> list[str]:
    return [entry.id for entry in BUILTIN_STYLES]


def get_style(style_id: str) -> StyleEntry:
    try:
        return _BY_ID[style_id]
    except KeyError:
        known = ", ".join(style_ids())
        raise UnknownStyleError(f"Unknown style '{style_id}' (known styles: {known})") from None
