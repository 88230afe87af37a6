"""Add-on preferences: how the inference worker runs."""

from __future__ import annotations

import bpy
from bpy.props import IntProperty

ADDON_ID = __package__ or "neural_restyle"


class RestylePreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    worker_threads: IntProperty(  # type: ignore[valid-type]
        name="CPU Threads",
        description="Threads the inference worker may use on the CPU (0: all cores)",
        default=0,
        min=0,
        max=512,
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        assert layout is not None
        layout.prop(self, "worker_threads")


def get(context: bpy.types.Context) -> RestylePreferences | None:
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon is not None else None  # type: ignore[return-value]


CLASSES: tuple[type, ...] = (RestylePreferences,)
