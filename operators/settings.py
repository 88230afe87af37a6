"""The panel's scene settings turned into typed job options (the only place operators read
them for a job), and the poll predicates several operators share."""

from __future__ import annotations

import bpy

from ..bridge import passes
from ..jobs.options import EngineOptions, TextureOptions
from ..properties import RestyleSettings, settings_of


def engine_options_of(settings: RestyleSettings) -> EngineOptions:
    return EngineOptions(
        strength=float(settings.strength),
        device=str(settings.device).lower(),
        precision=str(settings.precision).lower(),
        tile_size=int(settings.tile_size),
        seamless=str(settings.seamless).lower(),
        preserve_colors=bool(settings.preserve_colors),
    )


def texture_options_of(context: bpy.types.Context) -> TextureOptions:
    settings = settings_of(context)
    return TextureOptions(
        style=str(settings.style),
        engine=engine_options_of(settings),
        style_image=settings.style_image.name if settings.style_image is not None else None,
        style_weight=float(settings.style_weight),
        pack=settings.output == "PACK",
        output_folder=str(settings.output_folder),
    )


def scene_has_camera(operator: type[bpy.types.Operator], context: bpy.types.Context) -> bool:
    """poll() for operators that render: says why the button is greyed out."""
    if context.scene is None or context.scene.camera is None:
        operator.poll_message_set("The scene needs an active camera")
        return False
    try:
        passes.scene_camera(context.scene)  # Blender lets an Empty or a light be the scene camera
    except passes.PassError as exc:
        text = str(exc)
        operator.poll_message_set(text[:1].upper() + text[1:])
        return False
    return True
