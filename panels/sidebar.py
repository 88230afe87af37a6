"""The N-panel tab "Restyle"."""

from __future__ import annotations

import math

import bpy

from .. import preferences
from ..jobs.models import megabytes
from ..ml.errors import RestyleError
from ..ml.models.catalog import StyleEntry
from ..ml.models.custom import find_style
from ..ml.options import Device, ModelFamily, OutputMode
from ..ml.runtime.client import last_tile_choice
from ..operators import state
from ..properties import known_devices


def draw_model_status(layout: bpy.types.UILayout, context: bpy.types.Context, entry: StyleEntry) -> bool:
    """Size, license and download state of a style's model; True when it is ready to run."""
    box = layout.box()
    col = box.column(align=True)
    col.label(text=f"License: {entry.license}", icon="INFO")
    if entry.non_commercial:
        col.label(text="Non-commercial use only", icon="ERROR")
    try:
        store = preferences.model_store(context)
        installed = store.is_installed(entry)
        pinned = installed and (entry.family == ModelFamily.CUSTOM or store.is_pinned(entry))
    except (RestyleError, OSError) as exc:  # an unreadable model folder must not blank the panel
        col.label(text=f"Model folder unreadable: {exc}", icon="ERROR")
        return False
    if installed:
        if not pinned:
            col.label(text="Unpinned: checked against its first download", icon="UNLOCKED")
        box.operator("restyle.remove_model", icon="TRASH").model_id = entry.id
        return True
    col.label(text=f"Not downloaded ({megabytes(entry.download_size)})", icon="IMPORT")
    row = box.row()
    row.enabled = bpy.app.online_access
    row.operator("restyle.download_model", icon="IMPORT").model_id = entry.id
    if not bpy.app.online_access:
        # The reason names what the user can change: --offline-mode locks the preference.
        box.label(text=preferences.offline_reason(), icon="INFO")
        box.label(text="Or add the model's file with Add Custom Style from File")
    return False


def chosen_style(context: bpy.types.Context, style_id: str) -> StyleEntry | None:
    """The chosen style, or None when the id is empty (an enum value whose item is gone:
    a removed custom style saved in an old .blend) or unknown."""
    if not style_id:
        return None
    try:
        return find_style(style_id, preferences.model_root(context, create=False))
    except (RestyleError, OSError):
        return None


def draw_actions(layout: bpy.types.UILayout) -> None:
    """The progress of a running job and the buttons, drawn whatever state the settings are in."""
    status = state.CURRENT
    if status.running:
        box = layout.box()
        fraction = float(status.fraction or 0.0)
        fraction = min(max(fraction, 0.0), 1.0) if math.isfinite(fraction) else 0.0
        box.progress(factor=fraction, text=f"{fraction:.0%} {status.text}")
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


class VIEW3D_PT_restyle(bpy.types.Panel):
    bl_label = "Neural Restyle"
    bl_idname = "VIEW3D_PT_restyle"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Restyle"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        if layout is None:
            return
        # Odd states must not raise in draw(): a draw error blanks the whole tab on every redraw.
        settings = getattr(context.scene, "restyle", None) if context.scene is not None else None
        if settings is None:
            layout.label(text="No scene settings: enable Neural Restyle for this file", icon="ERROR")
            return
        layout.use_property_split = True
        layout.use_property_decorate = False

        col = layout.column()
        col.prop(settings, "style")
        entry = chosen_style(context, str(settings.style))
        if entry is None:
            col.label(text="Choose a style: the one saved in this file is not installed any more", icon="ERROR")
            draw_actions(layout)
            return
        hint = col.row()
        hint.alignment = "RIGHT"
        hint.label(text=entry.description)
        if entry.files:
            draw_model_status(col, context, entry)
        if entry.family == ModelFamily.ARBITRARY:
            col.template_ID(settings, "style_image", open="image.open")
            col.prop(settings, "style_weight", slider=True)
        col.prop(settings, "strength", slider=True)
        col.prop(settings, "preserve_colors")

        col = layout.column(heading="Processing")
        col.prop(settings, "device")
        chosen = str(settings.device).lower()
        if chosen != Device.AUTO and not known_devices().get(chosen, False):
            col.label(text=f"{chosen.upper()} unavailable: the CPU will be used", icon="ERROR")
        col.prop(settings, "precision")
        col.prop(settings, "tile_size", text="Tile Size (0 = Auto)" if settings.tile_size else "Tile Size: Auto")
        last = last_tile_choice()
        if last is not None:
            hint = col.row()
            hint.alignment = "RIGHT"
            hint.label(text=f"Last image: {last}")
        col.prop(settings, "seamless")
        col.prop(settings, "output")
        if settings.output == OutputMode.FILES.name:
            col.prop(settings, "output_folder")

        layout.use_property_split = False
        learn = layout.box()  # Learn Style from Images: the result joins the Custom styles
        learn.label(text="Learn Style from Images", icon="IMAGE_DATA")
        learn.operator("restyle.learn_style_pick", text="Pick Style Images and Learn...", icon="FILEBROWSER")
        if "Learn Style Preview" in bpy.data.images:
            learn.label(text="Preview: the image 'Learn Style Preview'", icon="IMAGE")
        draw_actions(layout)
