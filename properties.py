"""The scene settings of the Restyle panel, reached as ``scene.restyle``."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import preferences
from .ml.errors import RestyleError
from .ml.models.catalog import ALL_STYLES, FAMILY_TITLES, ModelEntry
from .ml.models.custom import INDEX, custom_styles
from .ml.options import (
    MIN_MANUAL_TILE,
    STRENGTH,
    STYLE_WEIGHT,
    TILE_SIZE,
    TILE_STEP,
    Device,
    ModelFamily,
    OutputMode,
    Precision,
    RestyleOptions,
    Seamless,
    description,
    enum_items,
    label,
)
from .ml.runtime.client import reported_devices
from .ml.runtime.hardware import guess_devices

log = logging.getLogger(__name__)

# Blender's Title Case for menu entries and headings: every word capitalised except short
# joining words; words with capitals of their own (GAN, AdaIN) are left as they are.
_SMALL_WORDS = frozenset("a an and as at but by for from in into of on or the to via with".split())
_FAMILY_ICONS = {ModelFamily.BUILTIN: "BRUSH_DATA", ModelFamily.GAN: "IMPORT", ModelFamily.ARBITRARY: "IMAGE_DATA"}
_device_items: list[tuple[str, str, str]] = []  # Blender keeps pointers into these strings
_style_items: list[tuple[str, str, str, str, int]] = []
_custom_cache: dict[str, object] = {"key": None, "entries": []}


def title_case(text: str) -> str:
    """``"Downloaded GAN styles"`` -> ``"Downloaded GAN Styles"``; idempotent."""
    words = text.split(" ")
    for index, word in enumerate(words):
        bracket = word[:1] if word[:1] in "([" else ""
        core = word[len(bracket):]
        if core[:1].islower() and (index == 0 or bracket or core.lower() not in _SMALL_WORDS):
            words[index] = bracket + core[0].upper() + core[1:]
    return " ".join(words)


def custom_enum_number(model_id: str) -> int:
    """The enum number of a model added from a file: from its id, so that it stays the same
    whatever else is added or removed (values are saved as numbers)."""
    return 100_000 + zlib.crc32(model_id.encode()) % 1_000_000


def _stable_number(entry: ModelEntry) -> int:
    """Enum values are saved as numbers: keep each style's number fixed as the list grows."""
    if entry.family == ModelFamily.CUSTOM:
        return custom_enum_number(entry.id)
    return next(i for i, e in enumerate(ALL_STYLES) if e.id == entry.id)


def installed_custom_styles(context: bpy.types.Context | None) -> list[ModelEntry]:
    """The user's custom styles, re-read only when custom.json changes."""
    if context is None:
        return []
    root = preferences.model_root(context, create=False)
    index = Path(root) / INDEX
    try:
        key = (str(index), index.stat().st_mtime_ns)
    except OSError:
        return []
    if _custom_cache["key"] != key:
        try:
            entries = custom_styles(root)
        except (RestyleError, OSError, ValueError) as exc:  # an enum callback that raises empties the menu
            log.warning("custom styles could not be read from %s: %s", index, exc)
            entries = []
        _custom_cache["key"], _custom_cache["entries"] = key, entries
    return list(_custom_cache["entries"])  # type: ignore[call-overload]


# The menus' fixed text, made once: Blender calls the item callbacks below on every redraw and on
# every read of the setting (a job reading scene.restyle.device runs device_items), so they only
# look up what can change (the custom styles, the devices the worker reported).
_HEADINGS: dict[str, tuple[str, str]] = {
    family: (title_case(FAMILY_TITLES.get(family, family)), description(family)) for family in ModelFamily
}
_DEVICE_TEXT: tuple[tuple[Device, str, str], ...] = tuple((d, label(d), description(d)) for d in Device)


def style_items(_self: object, context: bpy.types.Context | None) -> list[tuple[str, str, str, str, int]]:
    entries = list(ALL_STYLES) + installed_custom_styles(context)
    items: list[tuple[str, str, str, str, int]] = []
    family = None
    families = list(FAMILY_TITLES)
    for entry in entries:
        if entry.family != family:
            family = entry.family
            heading = 900_000 + (families.index(family) if family in families else len(families))
            title, tip = _HEADINGS[family]
            items.append(("", title, tip, "NONE", heading))  # a menu heading
        text = f"{entry.name} (Non-Commercial)" if entry.non_commercial else entry.name
        icon = _FAMILY_ICONS.get(entry.family, "FILE")
        tip = entry.description or f"The {entry.name} style"
        items.append((entry.id, title_case(text) if entry.family != ModelFamily.CUSTOM else text, tip, icon,
                      _stable_number(entry)))
    _style_items[:] = items
    return _style_items


def known_devices() -> dict[str, bool]:
    """The worker's answer once it has run, a torch-free guess before that (made once and kept:
    this runs on every redraw of the device menu and the panel)."""
    return reported_devices() or guess_devices()


def device_items(_self: object, _context: object) -> list[tuple[str, str, str]]:
    devices = known_devices()
    items = []
    for device, text, tip in _DEVICE_TEXT:
        if device != Device.AUTO and not devices.get(device.value):
            text += " (Unavailable)"
        items.append((device.name, text, tip))
    _device_items[:] = items
    return _device_items


def _snap_tile_size(settings: bpy.types.PropertyGroup, _context: bpy.types.Context) -> None:
    """Dragging down from 64 lands on Auto (0) rather than on a size the engine refuses."""
    size = int(getattr(settings, "tile_size", 0))
    if 0 < size < MIN_MANUAL_TILE:
        settings.tile_size = 0 if size < MIN_MANUAL_TILE // 2 else MIN_MANUAL_TILE  # type: ignore[attr-defined]


class RestyleSettings(bpy.types.PropertyGroup):
    style: EnumProperty(name="Style", description="How the textures are restyled", items=style_items)  # type: ignore[valid-type]
    style_image: PointerProperty(  # type: ignore[valid-type]
        name="Style Image", description="The image whose look the arbitrary style transfers", type=bpy.types.Image,
    )
    style_weight: FloatProperty(  # type: ignore[valid-type]
        name="Style Weight", description="How strongly the style image's look replaces the texture's",
        default=STYLE_WEIGHT.default, min=STYLE_WEIGHT.min, max=STYLE_WEIGHT.max, subtype="FACTOR",
    )
    strength: FloatProperty(  # type: ignore[valid-type]
        name="Strength", description="Blend between the original (0) and the fully restyled texture (1)",
        default=STRENGTH.default, min=STRENGTH.min, max=STRENGTH.max, subtype="FACTOR",
    )
    device: EnumProperty(name="Device", description="Where the style network runs", items=device_items)  # type: ignore[valid-type]
    precision: EnumProperty(  # type: ignore[valid-type]
        name="Precision",
        description="Number format of the style network's arithmetic: lower precision is faster and uses less "
                    "memory",
        items=enum_items(Precision),
    )
    tile_size: IntProperty(  # type: ignore[valid-type]
        name="Tile Size",
        description="Pixels per tile side. 0 is Auto: the whole image when it fits in the device's free memory, "
                    "otherwise the largest tiles that fit. A number overrides it: smaller tiles use less memory",
        default=int(TILE_SIZE.default), min=int(TILE_SIZE.min), max=int(TILE_SIZE.max), step=TILE_STEP,
        subtype="PIXEL", update=_snap_tile_size,
    )
    seamless: EnumProperty(  # type: ignore[valid-type]
        name="Seamless",
        description="Keep tileable textures tileable by giving their edges wrap-around context",
        items=enum_items(Seamless),
    )
    preserve_colors: BoolProperty(  # type: ignore[valid-type]
        name="Preserve Original Colors",
        description="Restyle brightness only and keep the texture's own colours",
        default=False,
    )
    output_folder: StringProperty(  # type: ignore[valid-type]
        name="Output Folder", description="Where restyled files are written (empty: //restyled/ beside the .blend)",
        subtype="DIR_PATH", default="",
    )
    output: EnumProperty(  # type: ignore[valid-type]
        name="Output",
        description="Where the restyled images are kept",
        items=enum_items(OutputMode),
    )


def settings_of(context: bpy.types.Context) -> RestyleSettings:
    """The scene's Restyle settings (``scene.restyle``), typed."""
    return context.scene.restyle  # type: ignore[attr-defined, no-any-return]


def restyle_options(settings: RestyleSettings) -> RestyleOptions:
    """The engine's typed options from the panel's settings, in one step.

    The options dataclass turns the enum identifiers Blender holds (``'FULL'``) into members itself,
    as it does the CLI's words (``"full"``), so the panel and the CLI give equal options and the same
    ValueError for a value that is not a choice. Ranges are checked where every caller's are:
    ``validated()``, when a job starts.
    """
    return RestyleOptions(
        strength=float(settings.strength),
        device=settings.device,
        precision=settings.precision,
        tile_size=int(settings.tile_size),
        seamless=settings.seamless,
        preserve_colors=bool(settings.preserve_colors),
    )


def attach() -> None:
    bpy.types.Scene.restyle = PointerProperty(type=RestyleSettings)  # type: ignore[attr-defined]


def detach() -> None:
    del bpy.types.Scene.restyle  # type: ignore[attr-defined]


CLASSES: tuple[type, ...] = (RestyleSettings,)
