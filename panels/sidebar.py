"""The N-panel tab "Restyle"."""

from __future__ import annotations

import bpy

from .. import preferences
from ..ml.catalog import StyleEntry
from ..ml.custom import find_style
from ..ml.errors import RestyleError
from ..operators import state
from ..operators.models import megabytes
from ..properties import known_devices, settings_of


def draw_model_status(layout: bpy.types.UILayout, context: bpy.types.Context, entry: StyleEntry) -> bool:
    """Size, license and download state of a style's model; True when it is ready to run."""
    box = layout.box()
    col = box.column(align=True)
    col.label(text=f"License: {entry.license}", icon="INFO")
    if entry.non_commercial:
        col.label(text="Non-commercial use only", icon="ERROR")
    store = preferences.model_store(context)
    if store.is_installed(entry):
        if entry.family != "custom" and not store.is_pinned(entry):
            col.label(text="Unpinned: checked against its first download", icon="UNLOCKED")
        box.operator("restyle.remove_model", icon="TRASH").model_id = entry.id
        return True
    col.label(text=f"Not downloaded ({megabytes(entry.download_size)})", icon="IMPORT")
    row = box.row()
    row.enabled = bpy.app.online_access
    row.operator("restyle.download_model", icon="IMPORT").model_id = entry.id
    if not bpy.app.online_access:
        box.label(text="Online access is off: use Add Custom Style from File", icon="INFO")
    return False


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
        try:
            entry = find_style(settings.style, preferences.model_root(context, create=False))
        except RestyleError as exc:
            col.label(text=str(exc), icon="ERROR")
            return
        hint = col.row()
        hint.alignment = "RIGHT"
        hint.label(text=entry.description)
        if entry.files:
            draw_model_status(col, context, entry)
        if entry.family == "arbitrary":
            col.template_ID(settings, "style_image", open="image.open")
            col.prop(settings, "style_weight", slider=True)
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
        if settings.output == "FILES":
            col.prop(settings, "output_folder")

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
        layout.operator("restyle.stylize_render", icon="RENDER_STILL")
        layout.operator("restyle.install_model_file", icon="FILEBROWSER")
        layout.separator()
        layout.label(text="Geometry from Depth")
        layout.operator("restyle.import_photo_mesh", icon="IMAGE_DATA")
        layout.operator("restyle.mesh_from_depth_pass", icon="MOD_REMESH")
