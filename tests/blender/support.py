"""Names shared by the Blender tests."""

ADDON_MODULE = "bl_ext.user_default.neural_restyle"
