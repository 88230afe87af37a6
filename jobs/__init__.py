"""One function per long job (Stylize Textures, Stylize Render, Import Photo, Mesh from Depth
Pass): typed options in, an outcome out, no operator and no scene settings in between.

Each job is also a steppable object (``...Job``: poll, wait, cancel, close, finish), so that
the modal operator (operators/jobs.py) can drive it without blocking the UI, while the
command line (cli.py) and scripts call the blocking function of the same module:

    stylize_textures(objects, StylizeTexturesOptions(style="toon"), services_of(bpy.context))

Options are the typed dataclasses of ml/options.py; every range and choice is checked there.

A new long job goes here as one module: its options, its Job class, its blocking function.
"""
