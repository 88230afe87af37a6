"""Thin operators: validate, hand off to bridge/ and the worker, report."""

from .stylize import RESTYLE_OT_revert_materials, RESTYLE_OT_stylize_textures

CLASSES: tuple[type, ...] = (RESTYLE_OT_stylize_textures, RESTYLE_OT_revert_materials)
