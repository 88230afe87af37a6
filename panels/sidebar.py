"""The N-panel tab "Restyle"."""

from __future__ import annotations

import bpy

from ..ml.catalog import get_style
from ..operators import state
from ..properties import known_devices, settings_of


class VIEW3D_PT_restyle(bpy.types.Panel):
    bl_label = "Neural Restyle"
    bl_idname = "VIEW3D_PT_restyle"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Restyle"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        assert layout is not None
        settings = settings_of(context)
        layout.use_property_split = True
        layout.use_property_decorate = False

        col = layout.column()
        col.prop(settings, "style")
        hint = col.row()
        hint.alignment = "RIGHT"
        hint.label(text=get_style(settings.style).description)
        col.prop(settings, "strength", slider=True)
        col.prop(settings, "preserve_colors")

        col = layout.column(heading="Processing")
        col.prop(settings, "device")
        chosen = str(settings.device).lower()
        if chosen != "auto" and not known_devices().get(chosen, False):
            col.label(text=f"{chosen.upper()} unavailable: the CPU will be used", icon="ERROR")
        col.prop(settings, "precision")
        col.prop(settings, "tile_size")
        col.prop(settings, "seamless")
        col.prop(settings, "output")

        layout.use_property_split = False
        status = state.CURRENT
        if status.running:
            box = layout.box()
            box.progress(factor=status.fraction, text=f"{status.fraction:.0%} {status.text}")
            box.label(text="Press Esc to cancel", icon="CANCEL")
        row = layout.row()
        row.scale_y = 1.4
        row.operator("restyle.stylize_textures", icon="BRUSH_DATA")
        layout.operator("restyle.revert_materials", icon="LOOP_BACK")
