"""Every difference between the Blender lines the manifest claims (4.2 LTS, 4.5 LTS, 5.0),
in one place, so the rest of the extension, its tests and its demo use one API.

- A new material (or world) has no node tree in 4.x until ``use_nodes`` is set; in 5.0 it
  always has one and ``use_nodes`` is deprecated.
- A multilayer EXR render is ``media_type = "MULTI_LAYER_IMAGE"`` in 5.0 (written as one
  part per pass) and ``file_format = "OPEN_EXR_MULTILAYER"`` in 4.x (one part); the
  channel names are the same.

It also holds the one tracker of datablocks a job creates, so that a failed job removes
exactly what it made (and nothing the user had) on every line.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TypeVar

import bpy

log = logging.getLogger(__name__)
IdT = TypeVar("IdT", bound=bpy.types.ID)

HAS_MEDIA_TYPE = "media_type" in bpy.types.ImageFormatSettings.bl_rna.properties

# Path properties that accept Blender's "//" (relative to the .blend) prefix say so from 4.5 on;
# 5.0 warns about a "//" path in a property without the option, 4.2 refuses the option.
BLEND_RELATIVE_PATH: set[str] = {"PATH_SUPPORTS_BLEND_RELATIVE"} if bpy.app.version >= (4, 5, 0) else set()

# Restored first, in this order: each resets the properties that depend on it (the colour
# depth and codec choices of a format), so the rest must be set after them.
_FORMAT_KEYS = ("media_type", "file_format")
_PLAIN_TYPES = {"BOOLEAN", "INT", "FLOAT", "STRING", "ENUM"}


def new_node_material(name: str) -> bpy.types.Material:
    """A new material with its default node tree (Principled BSDF into Material Output)."""
    material = bpy.data.materials.new(name)
    if material.node_tree is None:  # 4.x: nodes only once asked for (5.0 always has them)
        material.use_nodes = True
    return material


def uses_nodes(material: bpy.types.Material) -> bool:
    """Whether the material renders through its node tree. In 4.x a material can keep a node
    tree while Use Nodes is off and then renders its flat colour; in 5.0 materials always use
    their nodes (the property is deprecated)."""
    if material.node_tree is None:
        return False
    return bpy.app.version >= (5, 0, 0) or bool(material.use_nodes)


def new_node_world(name: str) -> bpy.types.World:
    """A new world with its default node tree (Background into World Output), as in 5.0."""
    world = bpy.data.worlds.new(name)
    if world.node_tree is None:  # 4.x, as for materials
        world.use_nodes = True
    return world


def _plain_properties(struct: bpy.types.bpy_struct) -> list[str]:
    """Names of the settable single-value properties of an RNA struct."""
    names = []
    for prop in struct.bl_rna.properties:
        if prop.identifier == "rna_type" or prop.is_readonly or prop.type not in _PLAIN_TYPES:
            continue
        if getattr(prop, "is_array", False) or (prop.type == "ENUM" and prop.is_enum_flag):
            continue
        names.append(prop.identifier)
    return names


def snapshot_settings(struct: bpy.types.bpy_struct) -> dict[str, object]:
    """The struct's settable values, format keys first (the order they must be restored in)."""
    names = _plain_properties(struct)
    ordered = [n for n in _FORMAT_KEYS if n in names] + [n for n in names if n not in _FORMAT_KEYS]
    return {name: getattr(struct, name) for name in ordered}


def restore_settings(struct: bpy.types.bpy_struct, saved: dict[str, object]) -> list[str]:
    """Puts every saved value back; returns the names that could not be restored."""
    for name, value in saved.items():
        if getattr(struct, name) != value:
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                setattr(struct, name, value)
    # A value can be refused while another it depends on is still different: a second pass
    # sets those once everything else is back.
    for name, value in saved.items():
        if getattr(struct, name) != value:
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                setattr(struct, name, value)
    failed = [name for name, value in saved.items() if getattr(struct, name) != value]
    if failed:
        log.warning("could not restore %s of %s", ", ".join(failed), struct)
    return failed


@contextlib.contextmanager
def preserved(*structs: bpy.types.bpy_struct) -> Iterator[None]:
    """Every plain setting of each struct is exactly as before when the block ends, however."""
    saved = [(struct, snapshot_settings(struct)) for struct in structs]
    try:
        yield
    finally:
        for struct, values in reversed(saved):
            restore_settings(struct, values)


def set_multilayer_exr(settings: bpy.types.ImageFormatSettings, color_depth: str = "32") -> None:
    """Make ``settings`` write a multilayer (every pass) OpenEXR on this Blender line."""
    if HAS_MEDIA_TYPE:
        settings.media_type = "MULTI_LAYER_IMAGE"  # type: ignore[attr-defined]
    else:
        settings.file_format = "OPEN_EXR_MULTILAYER"  # type: ignore[assignment]
    settings.color_depth = color_depth  # type: ignore[assignment]


@contextlib.contextmanager
def multilayer_exr_settings(settings: bpy.types.ImageFormatSettings, color_depth: str = "32") -> Iterator[None]:
    """Render output set to a full-float multilayer EXR for the block; every setting of
    ``settings`` (format, depth, codec, colour mode ...) restored exactly afterwards."""
    with preserved(settings):
        set_multilayer_exr(settings, color_depth)
        yield


def _alive(block: bpy.types.ID) -> bool:
    """False for an ID that was removed meanwhile (its Python wrapper outlives it)."""
    try:
        block.name  # noqa: B018 - touching it is the test
    except ReferenceError:
        return False
    return True


class CreatedData:
    """The datablocks one job creates, removed together unless the job commits them.

        with CreatedData() as created:
            image = created.add(bpy.data.images.new(...))
            ...
            created.commit()  # keep them; without this (an error, an early return) all go

    Only what was added is removed, so a user's datablock of the same name is never touched.
    """

    def __init__(self) -> None:
        self.blocks: list[bpy.types.ID] = []
        self.committed = False

    def add(self, block: IdT) -> IdT:
        self.blocks.append(block)
        return block

    def commit(self) -> None:
        self.committed = True

    def discard(self) -> None:
        """Remove everything added so far (in one batch: links between them do not matter)."""
        alive = [block for block in self.blocks if _alive(block)]
        self.blocks.clear()
        if alive:
            bpy.data.batch_remove(alive)

    def __enter__(self) -> CreatedData:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.discard()
