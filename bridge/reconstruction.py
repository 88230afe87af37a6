"""Reconstructed meshes as scene objects: the mesh, a material showing its image, placement."""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix

from ..ml.depth.reconstruct import GridMesh
from .compat import CreatedData, new_node_material
from .meshes import build_mesh


def image_from_pixels(name: str, rgba: np.ndarray, is_float: bool) -> bpy.types.Image:
    """A packed image holding top-down RGBA pixels."""
    h, w = rgba.shape[:2]
    image = bpy.data.images.new(name, w, h, alpha=True, float_buffer=is_float)
    try:
        image.pixels.foreach_set(np.ascontiguousarray(rgba[::-1], dtype=np.float32).ravel())  # type: ignore[arg-type]
        image.file_format = "OPEN_EXR" if is_float else "PNG"  # type: ignore[assignment]
        image.pack()
    except BaseException:
        bpy.data.images.remove(image)
        raise
    return image


def emission_material(name: str, image: bpy.types.Image) -> bpy.types.Material:
    """Shows the image as it was seen, unaffected by the scene's lights."""
    material = new_node_material(name)
    try:
        nodes, links = material.node_tree.nodes, material.node_tree.links
        nodes.clear()
        texture = nodes.new("ShaderNodeTexImage")
        texture.image = image
        texture.interpolation = "Closest" if max(image.size[0], image.size[1]) <= 128 else "Linear"
        emission = nodes.new("ShaderNodeEmission")
        output = nodes.new("ShaderNodeOutputMaterial")
        links.new(texture.outputs["Color"], emission.inputs["Color"])
        links.new(emission.outputs["Emission"], output.inputs["Surface"])
    except BaseException:
        bpy.data.materials.remove(material)
        raise
    return material


def add_reconstruction(name: str, grid: GridMesh, placement: Matrix, material: bpy.types.Material,
                       collection: bpy.types.Collection, created: CreatedData) -> bpy.types.Object:
    """An object whose mesh is in camera space, placed with the camera's matrix (both
    recorded in ``created``, so a failed job removes them)."""
    mesh = created.add(build_mesh(name, grid))
    mesh.materials.append(material)
    obj = created.add(bpy.data.objects.new(name, mesh))
    obj.matrix_world = placement
    collection.objects.link(obj)
    return obj
