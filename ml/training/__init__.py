"""Learning a style from example images (runs in the worker; torch, never bpy).

A feed-forward generator with the fast-neural-style TransformerNet layout (so the engine
runs it with exact tiling and the normal safe loader reads it) is trained against a
multi-scale PatchGAN discriminator on crops of the style images, with a style loss
(feature statistics) and a content loss. See :mod:`.learn`.
"""
