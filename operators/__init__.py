"""Thin operators: validate, hand off to bridge/ and the worker, report."""

import bpy

from .depth import RESTYLE_OT_mesh_from_depth_pass
from .learn import RESTYLE_OT_learn_style, RESTYLE_OT_learn_style_pick
from .models import RESTYLE_OT_download_model, RESTYLE_OT_install_model_file, RESTYLE_OT_remove_model
from .photo import RESTYLE_FH_photo_mesh, RESTYLE_OT_import_photo_mesh, RESTYLE_OT_look_through_photo, menu_import
from .render import RESTYLE_OT_stylize_render
from .stylize import RESTYLE_OT_revert_materials, RESTYLE_OT_stylize_textures

CLASSES: tuple[type, ...] = (
    RESTYLE_OT_stylize_textures,
    RESTYLE_OT_revert_materials,
    RESTYLE_OT_download_model,
    RESTYLE_OT_remove_model,
    RESTYLE_OT_install_model_file,
    RESTYLE_OT_mesh_from_depth_pass,
    RESTYLE_OT_import_photo_mesh,
    RESTYLE_OT_look_through_photo,
    RESTYLE_FH_photo_mesh,
    RESTYLE_OT_stylize_render,
    RESTYLE_OT_learn_style,
    RESTYLE_OT_learn_style_pick,
)

MENUS = ((bpy.types.TOPBAR_MT_file_import, menu_import),)
