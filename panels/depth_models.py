"""The "Depth Models" sub-panel of the Restyle tab: the depth models Import Photo can use, with
their size, license and state, Download and Remove, and Add from File for any Depth Anything V2
checkpoint. draw() only: it reads the catalog and the model folder, never torch or the network."""

from __future__ import annotations

import bpy

from .. import preferences
from ..ml.errors import RestyleError
from ..ml.models.catalog import DEPTH_MODELS, ModelEntry
from ..ml.models.custom import custom_depth_models
from ..operators.models import megabytes
from ..operators.photo import builtin_depth_available


def _depth_entries(context: bpy.types.Context) -> tuple[list[ModelEntry], str | None]:
    """The catalog's depth models and the user's own, with a note when the folder cannot be read."""
    try:
        return list(DEPTH_MODELS) + custom_depth_models(preferences.model_root(context, create=False)), None
    except (RestyleError, OSError, ValueError) as exc:  # an unreadable folder must not blank the panel
        return list(DEPTH_MODELS), f"Your own depth models cannot be read: {exc}"


def _size_text(entry: ModelEntry, on_disk: int) -> str:
    if not entry.files:
        return "Built in"
    if on_disk:
        return megabytes(on_disk)
    return megabytes(entry.download_size, entry.size_is_estimate)


def draw_depth_model(layout: bpy.types.UILayout, context: bpy.types.Context, entry: ModelEntry) -> None:
    """One depth model: name, output, size, license, state and its button."""
    box = layout.box()
    col = box.column(align=True)
    col.label(text=entry.name, icon="MOD_DISPLACE")
    output = f"Metric, up to {entry.max_depth:g} m" if entry.max_depth else "Relative depth"
    try:
        store = preferences.model_store(context)
        installed = store.is_installed(entry)
        on_disk = sum(p.stat().st_size for p in store.paths(entry).values() if p.is_file())
    except (RestyleError, OSError) as exc:
        col.label(text=f"Model folder unreadable: {exc}", icon="ERROR")
        return
    col.label(text=f"{output}, {_size_text(entry, on_disk)}")
    col.label(text=f"License: {entry.license}", icon="INFO")
    if entry.non_commercial:
        col.label(text="Non-commercial use only", icon="ERROR")
    if not entry.files:
        available = builtin_depth_available()
        col.label(text="Ready (shipped with the extension)" if available else "Missing from this installation",
                  icon="CHECKMARK" if available else "ERROR")
        return
    if installed:
        pinned = not entry.files[0].url or store.is_pinned(entry)  # an added file has no published hash
        col.label(text="Installed" if pinned else "Installed (unpinned: checked against its first download)",
                  icon="CHECKMARK")
        box.operator("restyle.remove_model", icon="TRASH").model_id = entry.id
        return
    if not entry.files[0].url:  # an added file that is gone: only Remove (or adding it again) helps
        col.label(text="Its file is missing from the model folder", icon="ERROR")
        box.operator("restyle.remove_model", icon="TRASH").model_id = entry.id
        return
    col.label(text="Not downloaded", icon="IMPORT")
    row = box.row()
    row.enabled = bpy.app.online_access
    row.operator("restyle.download_model", icon="IMPORT").model_id = entry.id
    if not bpy.app.online_access:
        box.label(text=preferences.offline_reason(), icon="INFO")


def draw_depth_models(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    """Every depth model, then the button that adds a checkpoint from a file."""
    entries, problem = _depth_entries(context)
    if problem:
        layout.label(text=problem, icon="ERROR")
    for entry in entries:
        draw_depth_model(layout, context, entry)
    layout.operator("restyle.install_model_file", icon="FILEBROWSER")
    layout.label(text="Any Depth Anything V2 .pth or .safetensors file", icon="INFO")


class VIEW3D_PT_restyle_depth_models(bpy.types.Panel):
    """Depth models for Import Photo: download, remove, add from a file."""

    bl_label = "Depth Models"
    bl_idname = "VIEW3D_PT_restyle_depth_models"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Restyle"
    bl_parent_id = "VIEW3D_PT_restyle"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        if self.layout is not None:
            draw_depth_models(self.layout, context)
