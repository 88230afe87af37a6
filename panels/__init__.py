"""draw() only: the Restyle tab of the 3D Viewport sidebar."""

from .sidebar import VIEW3D_PT_restyle

CLASSES: tuple[type, ...] = (VIEW3D_PT_restyle,)
