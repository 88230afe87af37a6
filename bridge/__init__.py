"""The one place bpy meets numpy: image pixels, materials and (later) meshes and passes."""
