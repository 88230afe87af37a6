"""Which image textures of a set of objects carry colour, and the restyled material copies.

A texture node is a colour use when what its Color output reaches (through reroutes
and colour-adjustment nodes) is a colour socket of a shader. Anything reaching a
number or vector input (roughness, metallic, alpha, normal, displacement), a Normal
Map or Bump node, or marked Non-Color is data and is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import bpy

ORIGINAL_KEY = "restyle_original"  # on a restyled material copy: the material it was made from
STYLE_KEY = "restyle_style"
SOURCE_KEY = "restyle_source"  # on a restyled image: the name of the image it was made from

# Nodes a colour passes through and stays the same colour (a tint or a mix still is).
PASS_THROUGH = {"REROUTE", "MIX", "MIX_RGB", "HUE_SAT", "BRIGHTCONTRAST", "GAMMA", "INVERT", "CURVE_RGB"}
DATA_NODES = {"NORMAL_MAP", "BUMP", "DISPLACEMENT", "VECTOR_DISPLACEMENT", "VALTORGB", "SEPARATE_COLOR"}


@dataclass
class TextureUse:
    material: bpy.types.Material
    node_name: str


@dataclass
class Plan:
    objects: list[bpy.types.Object]
    materials: list[bpy.types.Material] = field(default_factory=list)  # originals, in order
    textures: dict[str, list[TextureUse]] = field(default_factory=dict)  # image name -> colour uses
    skipped: dict[str, str] = field(default_factory=dict)  # image name -> why

    def images(self) -> list[bpy.types.Image]:
        return [bpy.data.images[name] for name in self.textures]


def original_of(material: bpy.types.Material) -> bpy.types.Material:
    original = material.get(ORIGINAL_KEY)
    return original if isinstance(original, bpy.types.Material) else material


def is_restyled(material: bpy.types.Material | None) -> bool:
    return material is not None and isinstance(material.get(ORIGINAL_KEY), bpy.types.Material)


def _data_reason(node: bpy.types.Node, seen: set[int] | None = None) -> str | None:
    """Why an image node's colour output is data, or None when it only feeds colour."""
    seen = set() if seen is None else seen
    if node.as_pointer() in seen:
        return None
    seen.add(node.as_pointer())
    for output in node.outputs:
        if output.name == "Alpha":
            continue  # alpha passes through untouched, so using it is fine
        for link in output.links:
            target, socket = link.to_node, link.to_socket
            if target is None or socket is None:
                continue
            if target.type in PASS_THROUGH:
                reason = _data_reason(target, seen)
            elif target.type in DATA_NODES:
                reason = f"feeds {target.name}"
            elif socket.type != "RGBA":
                reason = f"feeds {socket.name} of {target.name}"
            else:
                reason = None
            if reason:
                return reason
    return None


def _has_color_link(node: bpy.types.Node) -> bool:
    return any(output.links for output in node.outputs if output.name != "Alpha")


def collect(objects: Iterable[bpy.types.Object]) -> Plan:
    """The colour textures of the objects' materials (restyled copies count as their originals)."""
    meshes = [obj for obj in objects if obj.type == "MESH"]
    plan = Plan(objects=meshes)
    for obj in meshes:
        for slot in obj.material_slots:
            if slot.material is None:
                continue
            material = original_of(slot.material)
            if material not in plan.materials:
                plan.materials.append(material)
    for material in plan.materials:
        if material.node_tree is None:
            continue
        for node in material.node_tree.nodes:
            if not isinstance(node, bpy.types.ShaderNodeTexImage) or node.image is None:
                continue
            image = node.image
            reason = None
            if image.colorspace_settings.is_data:
                reason = "Non-Color data"
            elif not _has_color_link(node):
                reason = "not connected to a shader"
            else:
                reason = _data_reason(node)
            if reason is None:
                plan.textures.setdefault(image.name, []).append(TextureUse(material, node.name))
                plan.skipped.pop(image.name, None)
            elif image.name not in plan.textures:
                plan.skipped.setdefault(image.name, reason)
    return plan


def restyled_name(name: str, style: str) -> str:
    return f"{name}.{style}"


def make_copies(plan: Plan, new_images: dict[str, bpy.types.Image], style: str) -> dict[str, bpy.types.Material]:
    """Copy each material that uses a restyled image and swap the images in; originals untouched."""
    copies: dict[str, bpy.types.Material] = {}
    for material in plan.materials:
        uses = [
            (use.node_name, new_images[image])
            for image, image_uses in plan.textures.items() if image in new_images
            for use in image_uses if use.material == material
        ]
        if not uses:
            continue
        copy = material.copy()
        assert copy is not None
        copy[ORIGINAL_KEY] = material
        copy[STYLE_KEY] = style
        for node_name, image in uses:
            node = copy.node_tree.nodes[node_name]
            assert isinstance(node, bpy.types.ShaderNodeTexImage)
            node.image = image
        copies[material.name] = copy
    return copies


def assign(plan: Plan, copies: dict[str, bpy.types.Material], style: str) -> list[bpy.types.Material]:
    """Put the copies in the objects' slots; returns the earlier results this replaced."""
    replaced = []
    for obj in plan.objects:
        for slot in obj.material_slots:
            current = slot.material
            if current is None:
                continue
            copy = copies.get(original_of(current).name)
            if copy is None:
                continue
            if is_restyled(current) and current not in replaced:
                replaced.append(current)
            slot.material = copy
    for copy in copies.values():
        target = restyled_name(original_of(copy).name, style)
        stale = bpy.data.materials.get(target)
        if stale is not None and stale != copy and is_restyled(stale) and stale not in replaced:
            replaced.append(stale)
    return replaced


def remove_unused(materials: Iterable[bpy.types.Material]) -> None:
    """Delete restyled copies (and their restyled images) nothing uses any more."""
    names = list(dict.fromkeys(material.name for material in materials))  # each once
    for name in names:
        material = bpy.data.materials.get(name)
        if material is None or not is_restyled(material) or material.users > 0:
            continue
        images = [n.image for n in material.node_tree.nodes if n.type == "TEX_IMAGE" and n.image is not None]
        bpy.data.materials.remove(material)
        for image in images:
            if image.get(SOURCE_KEY) is not None and image.users == 0:
                bpy.data.images.remove(image)


def rename_results(copies: dict[str, bpy.types.Material], images: dict[str, bpy.types.Image], style: str) -> None:
    """Give new materials and images their final names once earlier results are gone."""
    for name, copy in copies.items():
        copy.name = restyled_name(name, style)
    for name, image in images.items():
        image.name = restyled_name(name, style)


def revert(objects: Iterable[bpy.types.Object]) -> int:
    """Put the original materials back in the objects' slots; returns how many slots changed."""
    changed = []
    count = 0
    for obj in objects:
        for slot in getattr(obj, "material_slots", ()):
            if is_restyled(slot.material):
                if slot.material not in changed:
                    changed.append(slot.material)
                slot.material = original_of(slot.material)
                count += 1
    remove_unused(changed)
    return count
