"""Which image textures of a set of objects carry colour, and the restyled material copies.

A texture node is a colour use when what its Color output reaches (through reroutes,
colour-adjustment nodes and node groups) is a colour socket of a shader. Anything
reaching a number or vector input (roughness, metallic, alpha, normal, displacement),
a Normal Map or Bump node, or marked Non-Color is data and is left alone.

Everything the plan holds is a name and library pair (IdKey, defined here with the lookups
that resolve it) or a path of node names: the user may edit, delete or undo while the worker
runs, and a stale RNA reference would crash Blender. The results are built from names
resolved afresh.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import bpy

from .compat import uses_nodes

ORIGINAL_KEY = "restyle_original"  # on a restyled material or node group copy: what it was made from
STYLE_KEY = "restyle_style"
SOURCE_KEY = "restyle_source"  # on a restyled image: the image it was made from
OBJECT_SLOTS_KEY = "restyle_object_slots"  # on an object: slots switched from DATA to OBJECT to hold a copy

# Nodes a colour passes through and stays the same colour (a tint or a mix still is).
PASS_THROUGH = {"REROUTE", "MIX", "MIX_RGB", "HUE_SAT", "BRIGHTCONTRAST", "GAMMA", "INVERT", "CURVE_RGB"}
DATA_NODES = {"NORMAL_MAP", "BUMP", "DISPLACEMENT", "VECTOR_DISPLACEMENT", "VALTORGB", "SEPARATE_COLOR"}
MAX_GROUP_DEPTH = 16  # Blender forbids recursive groups; this only bounds a damaged file

# The longest ID name: 63 bytes up to 4.5, 255 from 5.0.
MAX_NAME_BYTES = 255 if bpy.app.version >= (5, 0, 0) else 63

NodePath = tuple[str, ...]  # group node names from the material's tree down to the image node

# A datablock named the way Blender itself tells them apart: its name and the file path
# of the library it is linked from ("" for local data). Held across modal steps instead
# of an RNA reference, which the user can invalidate (delete, undo) at any moment.
IdKey = tuple[str, str]


def id_key(datablock: bpy.types.ID) -> IdKey:
    library = datablock.library
    return (datablock.name, library.filepath if library is not None else "")


def id_label(key: IdKey) -> str:
    """How a datablock is named to the user: linked data says where it comes from."""
    name, library = key
    return f"{name} (linked from {os.path.basename(library) or library})" if library else name


def find_image(key: IdKey) -> bpy.types.Image | None:
    return bpy.data.images.get((key[0], key[1] or None))


@dataclass
class TextureUse:
    material: IdKey
    node_path: NodePath


@dataclass
class Plan:
    objects: list[IdKey]
    materials: list[IdKey] = field(default_factory=list)  # originals, in order
    textures: dict[IdKey, list[TextureUse]] = field(default_factory=dict)  # image -> colour uses
    skipped: dict[str, str] = field(default_factory=dict)  # what the user sees -> why

    def images(self) -> list[tuple[IdKey, bpy.types.Image]]:
        found = [(key, find_image(key)) for key in self.textures]
        return [(key, image) for key, image in found if image is not None]


def find_object(key: IdKey) -> bpy.types.Object | None:
    return bpy.data.objects.get((key[0], key[1] or None))


def find_material(key: IdKey) -> bpy.types.Material | None:
    return bpy.data.materials.get((key[0], key[1] or None))


def original_of(material: bpy.types.Material) -> bpy.types.Material:
    original = material.get(ORIGINAL_KEY)
    return original if isinstance(original, bpy.types.Material) else material


def is_restyled(material: bpy.types.Material | None) -> bool:
    return material is not None and isinstance(material.get(ORIGINAL_KEY), bpy.types.Material)


def _is_restyled_group(tree: bpy.types.NodeTree | None) -> bool:
    return tree is not None and isinstance(tree.get(ORIGINAL_KEY), bpy.types.NodeTree)


def _matching(sockets: Iterable[bpy.types.NodeSocket], identifier: str) -> bpy.types.NodeSocket | None:
    return next((s for s in sockets if s.identifier == identifier), None)


def _follow(output: bpy.types.NodeSocket, stack: tuple[bpy.types.Node, ...], seen: set[tuple[int, ...]]) -> str | None:
    """Why what ``output`` feeds is data, or None when it only reaches colour inputs.

    ``stack`` holds the group nodes entered so far, so that a Group Output leads back out
    to the right group node."""
    mark = (output.as_pointer(), *(node.as_pointer() for node in stack))
    if mark in seen or len(stack) > MAX_GROUP_DEPTH:
        return None
    seen.add(mark)
    for link in output.links:
        target, socket = link.to_node, link.to_socket
        if target is None or socket is None or link.is_muted:
            continue
        reason: str | None = None
        if target.type in PASS_THROUGH:
            reason = next((r for o in target.outputs if (r := _follow(o, stack, seen))), None)
        elif target.type == "GROUP":
            tree = getattr(target, "node_tree", None)
            inner = [] if tree is None else [n for n in tree.nodes if n.type == "GROUP_INPUT"]
            for node in inner:
                out = _matching(node.outputs, socket.identifier)
                if out is not None and (reason := _follow(out, (*stack, target), seen)):
                    break
        elif target.type == "GROUP_OUTPUT":
            parent_out = _matching(stack[-1].outputs, socket.identifier) if stack else None
            if parent_out is not None:
                reason = _follow(parent_out, stack[:-1], seen)
        elif target.type in DATA_NODES:
            reason = f"feeds {target.name}"
        elif socket.type != "RGBA":
            reason = f"feeds {socket.name} of {target.name}"
        if reason:
            return reason
    return None


def _image_nodes(
    tree: bpy.types.NodeTree, stack: tuple[bpy.types.Node, ...] = (), trail: frozenset[int] = frozenset()
) -> Iterator[tuple[tuple[bpy.types.Node, ...], bpy.types.ShaderNodeTexImage]]:
    """Every image texture node of a tree and of the groups inside it, with the group nodes above it."""
    for node in tree.nodes:
        if isinstance(node, bpy.types.ShaderNodeTexImage):
            yield stack, node
        elif node.type == "GROUP":
            group = getattr(node, "node_tree", None)
            if group is not None and group.as_pointer() not in trail and len(stack) < MAX_GROUP_DEPTH:
                yield from _image_nodes(group, (*stack, node), trail | {group.as_pointer()})


def _color_reason(node: bpy.types.ShaderNodeTexImage, stack: tuple[bpy.types.Node, ...]) -> str | None:
    """Why an image node is not restyled, or None when it feeds colour."""
    image = node.image
    if image is not None and image.colorspace_settings.is_data:
        return "Non-Color data"
    outputs = [o for o in node.outputs if o.name != "Alpha"]  # alpha passes through untouched
    if not any(link for o in outputs for link in o.links if not link.is_muted):
        return "not connected to a shader"
    seen: set[tuple[int, ...]] = set()
    return next((r for o in outputs if (r := _follow(o, stack, seen))), None)


def collect(objects: Iterable[bpy.types.Object]) -> Plan:
    """The colour textures of the objects' materials (restyled copies count as their originals)."""
    meshes = [obj for obj in objects if obj.type == "MESH"]
    plan = Plan(objects=[])
    originals: list[bpy.types.Material] = []
    for obj in meshes:
        if not obj.is_editable:
            plan.skipped[id_label(id_key(obj))] = (
                "linked object: its material slots cannot change (make it local or a library override)")
            continue
        plan.objects.append(id_key(obj))
        for slot in obj.material_slots:
            if slot.material is None:
                continue
            material = original_of(slot.material)
            if material not in originals:
                originals.append(material)
    plan.materials = [id_key(m) for m in originals]
    for material in originals:
        tree = material.node_tree
        if tree is None:
            continue
        if not uses_nodes(material):  # 4.x: a tree that does not render; restyling it changes nothing
            plan.skipped.setdefault(id_label(id_key(material)), "material does not use nodes (turn Use Nodes on)")
            continue
        for stack, node in _image_nodes(tree):
            if node.image is None:
                continue
            key = id_key(node.image)
            reason = _color_reason(node, stack)
            label = id_label(key)
            if reason is None:
                path = (*(n.name for n in stack), node.name)
                plan.textures.setdefault(key, []).append(TextureUse(id_key(material), path))
                plan.skipped.pop(label, None)
            elif key not in plan.textures:
                plan.skipped.setdefault(label, reason)
    return plan


def _truncate_bytes(text: str, limit: int) -> str:
    return text.encode("utf-8")[: max(limit, 0)].decode("utf-8", errors="ignore")


def restyled_name(name: str, style: str) -> str:
    """``<name>.<style>``, shortening the name (never the style) to fit Blender's name limit,
    so that a long name does not lose its style suffix and collide with its original."""
    suffix = f".{style}"
    return _truncate_bytes(name, MAX_NAME_BYTES - len(suffix.encode("utf-8"))) + suffix


@dataclass
class Copies:
    """What make_copies created: which copy stands for which original (assign() and the
    renaming read it; a failed job removes its blocks with compat.CreatedData)."""

    materials: dict[IdKey, bpy.types.Material] = field(default_factory=dict)  # original -> copy
    groups: list[tuple[bpy.types.NodeTree, bpy.types.NodeTree]] = field(default_factory=list)  # original, copy

    def blocks(self) -> list[bpy.types.ID]:
        return [*self.materials.values(), *(group for _, group in self.groups)]


def _swap(
    tree: bpy.types.NodeTree,
    swaps: dict[NodePath, bpy.types.Image],
    style: str,
    copies: Copies,
    cache: dict[tuple[int, frozenset[tuple[NodePath, int]]], bpy.types.NodeTree],
) -> None:
    """Point the image nodes at ``swaps`` (paths relative to ``tree``), copying every node group
    on the way: a group is shared data, and changing it would change the originals too."""
    inner: dict[str, dict[NodePath, bpy.types.Image]] = {}
    for path, image in swaps.items():
        if len(path) == 1:
            node = tree.nodes.get(path[0])
            if isinstance(node, bpy.types.ShaderNodeTexImage):
                node.image = image
        else:
            inner.setdefault(path[0], {})[path[1:]] = image
    for group_node_name, sub in inner.items():
        node = tree.nodes.get(group_node_name)
        group = getattr(node, "node_tree", None)
        if node is None or group is None:
            continue
        mark = (group.as_pointer(), frozenset((p, i.as_pointer()) for p, i in sub.items()))
        copy = cache.get(mark)
        if copy is None:
            copy = group.copy()
            copy[ORIGINAL_KEY] = group
            copy[STYLE_KEY] = style
            copies.groups.append((group, copy))
            cache[mark] = copy
            _swap(copy, sub, style, copies, cache)
        node.node_tree = copy  # type: ignore[attr-defined]


def make_copies(plan: Plan, new_images: dict[IdKey, bpy.types.Image], style: str, copies: Copies) -> None:
    """Copy each material that uses a restyled image and swap the images in; originals untouched.

    Fills ``copies`` as it goes, so the caller can remove a half-made result."""
    cache: dict[tuple[int, frozenset[tuple[NodePath, int]]], bpy.types.NodeTree] = {}
    for material_key in plan.materials:
        material = find_material(material_key)
        if material is None or material.node_tree is None:
            continue
        swaps = {
            use.node_path: new_images[image]
            for image, image_uses in plan.textures.items() if image in new_images
            for use in image_uses if use.material == material_key
        }
        if not swaps:
            continue
        copy = material.copy()
        assert copy is not None
        copies.materials[material_key] = copy
        copy[ORIGINAL_KEY] = material
        copy[STYLE_KEY] = style
        if copy.node_tree is not None:
            _swap(copy.node_tree, swaps, style, copies, cache)


@dataclass
class SlotChange:
    obj: bpy.types.Object
    index: int
    material: bpy.types.Material | None
    switched: bool  # the slot went from DATA to OBJECT to hold the copy


def _needs_object_link(obj: bpy.types.Object, slot: bpy.types.MaterialSlot) -> bool:
    # A mesh linked from a library: its slots are read-only, but the object can hold
    # a material of its own in the slot; revert() switches it back.
    return slot.link == "DATA" and obj.data is not None and not obj.data.is_editable


def _set_slot(obj: bpy.types.Object, index: int, material: bpy.types.Material, switch: bool) -> None:
    slot = obj.material_slots[index]
    if switch:
        slot.link = "OBJECT"
        indices = list(obj.get(OBJECT_SLOTS_KEY, []))
        if index not in indices:
            obj[OBJECT_SLOTS_KEY] = [*indices, index]
    slot.material = material


def _undo_slot(change: SlotChange) -> None:
    slot = change.obj.material_slots[change.index]
    if not change.switched:
        slot.material = change.material
        return
    slot.material = None
    slot.link = "DATA"
    indices = [i for i in change.obj.get(OBJECT_SLOTS_KEY, []) if i != change.index]
    if indices:
        change.obj[OBJECT_SLOTS_KEY] = indices
    elif change.obj.get(OBJECT_SLOTS_KEY) is not None:
        del change.obj[OBJECT_SLOTS_KEY]


def undo_slots(changes: list[SlotChange]) -> None:
    """Put back what assign() changed, newest first."""
    for change in reversed(changes):
        _undo_slot(change)
    changes.clear()


def assign(
    plan: Plan, copies: dict[IdKey, bpy.types.Material], style: str, changes: list[SlotChange]
) -> tuple[list[bpy.types.Material], list[str]]:
    """Put the copies in the objects' slots, recording each change in ``changes`` so that
    the caller can undo them all (undo_slots) if a later step fails.

    Returns the earlier results this replaced and the objects that disappeared meanwhile."""
    replaced: list[bpy.types.Material] = []
    gone: list[str] = []
    for object_key in plan.objects:
        obj = find_object(object_key)
        if obj is None or not obj.is_editable:
            gone.append(id_label(object_key))
            continue
        for index, slot in enumerate(obj.material_slots):
            current = slot.material
            if current is None:
                continue
            copy = copies.get(id_key(original_of(current)))
            if copy is None or current == copy:
                continue
            switch = _needs_object_link(obj, slot)
            changes.append(SlotChange(obj, index, current, switch))
            _set_slot(obj, index, copy, switch)
            if is_restyled(current) and current not in replaced:
                replaced.append(current)
    by_original = {id_key(original_of(copy)): copy for copy in copies.values()}
    new = {id_key(copy) for copy in by_original.values()}
    moves: dict[IdKey, bpy.types.Material] = {}  # an earlier copy of this style -> the new copy
    for other in bpy.data.materials:
        if id_key(other) in new or not is_restyled(other) or other.get(STYLE_KEY) != style:
            continue
        copy = by_original.get(id_key(original_of(other)))
        if copy is not None:
            moves[id_key(other)] = copy
            if other not in replaced:
                replaced.append(other)
    # The same style of the same material is one result: objects restyled in an earlier run
    # (selected then, not now) move to the new copy too, so no second copy, image and file is
    # made beside the first. Objects that cannot change (linked) keep theirs.
    if moves:
        _move_slots(moves, changes)
    return replaced, gone


def _move_slots(moves: dict[IdKey, bpy.types.Material], changes: list[SlotChange]) -> None:
    for obj in bpy.data.objects:
        if not obj.is_editable:
            continue
        for index, slot in enumerate(obj.material_slots):
            copy = moves.get(id_key(slot.material)) if slot.material is not None else None
            if copy is None:
                continue
            switch = _needs_object_link(obj, slot)
            changes.append(SlotChange(obj, index, slot.material, switch))
            _set_slot(obj, index, copy, switch)


def _groups_in(tree: bpy.types.NodeTree | None, found: list[bpy.types.NodeTree]) -> None:
    if tree is None:
        return
    for node in tree.nodes:
        group = getattr(node, "node_tree", None) if node.type == "GROUP" else None
        if group is not None and _is_restyled_group(group) and group not in found:
            found.append(group)
            _groups_in(group, found)


def _images_in(trees: Iterable[bpy.types.NodeTree | None]) -> list[bpy.types.Image]:
    return [n.image for tree in trees if tree is not None for n in tree.nodes
            if isinstance(n, bpy.types.ShaderNodeTexImage) and n.image is not None]


def remove_unused(materials: Iterable[bpy.types.Material]) -> None:
    """Delete restyled copies (their restyled node groups and images) nothing uses any more.

    Their files stay on disk: an undo brings the datablocks back, and they must still
    find their files then."""
    names = list(dict.fromkeys(id_key(material) for material in materials))  # each once
    for key in names:
        material = find_material(key)
        if material is None or not is_restyled(material) or material.users > 0:
            continue
        groups: list[bpy.types.NodeTree] = []
        _groups_in(material.node_tree, groups)
        images = _images_in([material.node_tree, *groups])
        bpy.data.materials.remove(material)
        for group in groups:  # outer groups first: each removal frees the next one down
            if group.users == 0:
                images += _images_in([group])
                bpy.data.node_groups.remove(group)
        for image in dict.fromkeys(images):
            if SOURCE_KEY in image.keys() and image.users == 0:  # the source may be gone: the key stays
                bpy.data.images.remove(image)


def rename_results(copies: Copies, images: dict[IdKey, bpy.types.Image], style: str) -> None:
    """Give new materials, node groups and images their final names once earlier results are gone."""
    for copy in copies.materials.values():
        copy.name = restyled_name(original_of(copy).name, style)
    for original, group in copies.groups:
        group.name = restyled_name(original.name, style)
    for key, image in images.items():
        image.name = restyled_name(key[0], style)


def revert(objects: Iterable[bpy.types.Object]) -> int:
    """Put the original materials back in the objects' slots; returns how many slots changed."""
    changed: list[bpy.types.Material] = []
    count = 0
    for obj in objects:
        if not obj.is_editable:
            continue
        switched = list(obj.get(OBJECT_SLOTS_KEY, []))
        for index, slot in enumerate(getattr(obj, "material_slots", ())):
            if not is_restyled(slot.material):
                continue
            if slot.material not in changed:
                changed.append(slot.material)
            original = original_of(slot.material)
            if index in switched and slot.link == "OBJECT":
                slot.material = None  # the object held the copy in place of its linked mesh's material
                slot.link = "DATA"
                switched.remove(index)
            else:
                slot.material = original
            count += 1
        if obj.get(OBJECT_SLOTS_KEY) is not None:
            if switched:
                obj[OBJECT_SLOTS_KEY] = switched
            else:
                del obj[OBJECT_SLOTS_KEY]
    remove_unused(changed)
    return count
