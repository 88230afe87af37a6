"""Neural Restyle's machine-learning half: models, catalog, engine and the worker.

This package never imports Blender. It is importable as the top-level package
``ml`` (tests, the worker process) and as the extension's subpackage inside
Blender, so it only ever imports itself relatively. Importing it does not import
torch: only the modules that run inference do, and those load in the worker.
"""
