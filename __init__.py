"""Neural Restyle: restyle textures with neural style generators.

register() only registers classes: no torch, no disk, no network. Inference runs in
a separate worker process that starts on the first job.
"""

from __future__ import annotations

import bpy

from . import operators, panels, preferences, properties
from .ml.client import shutdown_shared_clients

_CLASSES: tuple[type, ...] = (
    *preferences.CLASSES,
    *properties.CLASSES,
    *operators.CLASSES,
    *panels.CLASSES,
)


def register() -> None:
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    properties.attach()
    for menu, entry in operators.MENUS:
        menu.append(entry)  # type: ignore[arg-type]  # menu functions take (self, context)


def unregister() -> None:
    shutdown_shared_clients()
    for menu, entry in operators.MENUS:
        menu.remove(entry)  # type: ignore[arg-type]
    properties.detach()
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
