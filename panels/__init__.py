"""draw() only: the Restyle tab of the 3D Viewport sidebar."""

from .depth_models import VIEW3D_PT_restyle_depth_models
from .sidebar import VIEW3D_PT_restyle

# The parent panel is registered before its sub-panel.
CLASSES: tuple[type, ...] = (VIEW3D_PT_restyle, VIEW3D_PT_restyle_depth_models)
