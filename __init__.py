"""Neural Restyle: restyle textures with neural style generators.

register() only registers classes: no torch, no disk, no network. Inference runs in
a separate worker process that starts on the first job.
"""

from __future__ import annotations

import bpy

from . import cli, operators, panels, preferences, properties
from .ml.runtime.client import shutdown_shared_clients

_CLASSES: tuple[type, ...] = (
    *preferences.CLASSES,
    *properties.CLASSES,
    *operators.CLASSES,
    *panels.CLASSES,
)


_cli_handle: object = None


def register() -> None:
    global _cli_handle
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    properties.attach()
    for menu, entry in operators.MENUS:
        menu.append(entry)  # type: ignore[arg-type]  # menu functions take (self, context)
    _cli_handle = bpy.utils.register_cli_command("restyle", cli.command_handler)


def unregister() -> None:
    global _cli_handle
    if _cli_handle is not None:
        bpy.utils.unregister_cli_command(_cli_handle)
        _cli_handle = None
    shutdown_shared_clients()
    for menu, entry in operators.MENUS:
        menu.remove(entry)  # type: ignore[arg-type]
    properties.detach()
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
