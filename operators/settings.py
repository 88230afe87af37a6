"""The panel's scene settings turned into typed job options (the only place operators read
them for a job), and the poll predicates several operators share."""

from __future__ import annotations

import bpy

from ..bridge import passes
from ..ml.options import StylizeTexturesOptions
from ..properties import restyle_options, settings_of


def texture_options_of(context: bpy.types.Context) -> tuple[StylizeTexturesOptions, str | None]:
    """Stylize Textures' options, and the name of the style image (arbitrary styles) if one is picked.
    The options turn Blender's enum identifiers ('FILES') into members themselves, as restyle_options does."""
    settings = settings_of(context)
    options = StylizeTexturesOptions(
        style=str(settings.style),
        restyle=restyle_options(settings),
        style_weight=float(settings.style_weight),
        output=settings.output,
        output_dir=str(settings.output_folder),
    )
    return options, settings.style_image.name if settings.style_image is not None else None


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
