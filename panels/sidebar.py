"""The N-panel tab "Restyle"."""

from __future__ import annotations

import math
from typing import NamedTuple

import bpy

from .. import preferences
from ..jobs import learn as learn_job
from ..jobs.models import megabytes
from ..ml.errors import RestyleError, UnknownStyleError
from ..ml.models import registry
from ..ml.models.custom import CustomStyleMissing
from ..ml.options import Device, ModelFamily, OutputMode
from ..ml.runtime.client import last_tile_choice
from ..operators import state
from ..properties import known_devices


def draw_model_status(layout: bpy.types.UILayout, context: bpy.types.Context, model: registry.ModelDescriptor
                      ) -> bool:
    """Size, license and download state of a style's model; True when it is ready to run."""
    box = layout.box()
    col = box.column(align=True)
    col.label(text=f"License: {model.license}", icon="INFO")
    if model.non_commercial:
        col.label(text="Non-commercial use only", icon="ERROR")
    try:
        store = preferences.model_store(context)
        installed = store.is_installed(model.entry)
        pinned = installed and (model.family == ModelFamily.CUSTOM or store.is_pinned(model.entry))
    except (RestyleError, OSError) as exc:  # an unreadable model folder must not blank the panel
        col.label(text=f"Model folder unreadable: {exc}", icon="ERROR")
        return False
    if installed:
        if not pinned:
            col.label(text="Unpinned: checked against its first download", icon="UNLOCKED")
        box.operator("restyle.remove_model", icon="TRASH").model_id = model.id
        return True
    col.label(text=f"Not downloaded ({megabytes(model.entry.download_size)})", icon="IMPORT")
    row = box.row()
    row.enabled = bpy.app.online_access
    row.operator("restyle.download_model", icon="IMPORT").model_id = model.id
    if not bpy.app.online_access:
        # The reason names what the user can change: --offline-mode locks the preference.
        box.label(text=preferences.offline_reason(), icon="INFO")
        box.label(text="Or add the model's file with Add Custom Style from File")
    return False


GONE = "Choose a style: the one saved in this file is not installed any more"


class Chosen(NamedTuple):
    """The chosen style as the job will find it (ml.models.registry), or why there is none."""

    model: registry.ModelDescriptor | None
    problem: str = ""
    listed: bool = False  # a custom style still listed whose file is gone: it can be removed from the list


def chosen_style(context: bpy.types.Context, style_id: str) -> Chosen:
    """The chosen style; none when the id is empty (an enum value whose item is gone: a removed custom
    style saved in an old .blend) or unknown, a custom style's file is missing, or the folder is unreadable."""
    if not style_id:
        return Chosen(None, GONE)
    try:
        return Chosen(registry.style(style_id, preferences.model_root(context, create=False)))
    except UnknownStyleError:
        return Chosen(None, GONE)  # its own message lists every known id: too long for a panel line
    except CustomStyleMissing as exc:  # says where the file was and how to repair it
        return Chosen(None, str(exc), listed=True)
    except RestyleError as exc:
        return Chosen(None, str(exc))
    except OSError as exc:  # a custom id reads the user's list
        return Chosen(None, f"Model folder unreadable: {exc}")


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
    layout.operator("restyle.look_through_photo", icon="VIEW_CAMERA")
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
        model, problem, listed = chosen_style(context, str(settings.style))
        if model is None:
            # A label is one line: a long reason reads as one sentence a line.
            for number, sentence in enumerate(problem.split(". ")):
                col.label(text=sentence, icon="ERROR" if number == 0 else "BLANK1")
            if listed:
                col.operator("restyle.remove_model", icon="TRASH").model_id = str(settings.style)
            draw_actions(layout)
            return
        hint = col.row()
        hint.alignment = "RIGHT"
        hint.label(text=model.description)
        if model.needs_files:
            draw_model_status(col, context, model)
        if model.family == ModelFamily.ARBITRARY:
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
        preview = learn_job.newest_preview()
        if preview is not None:
            learn.label(text=f"Preview: the image '{preview.name}'", icon="IMAGE")
        draw_actions(layout)
