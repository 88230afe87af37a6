"""Scenes for the tests: textured meshes with every kind of image the operator meets."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import bpy
import numpy as np

from bridge.compat import new_node_material
from tests.ml.synthetic import photo_like


def _blender_image(name: str, pixels: np.ndarray, float_buffer: bool = False) -> bpy.types.Image:
    h, w = pixels.shape[:2]
    rgba = pixels if pixels.shape[2] == 4 else np.concatenate([pixels, np.ones((h, w, 1), np.float32)], 2)
    image = bpy.data.images.new(name, w, h, alpha=True, float_buffer=float_buffer)
    image.pixels.foreach_set(np.ascontiguousarray(rgba[::-1], dtype=np.float32).ravel())
    return image


def write_image(path: Path, pixels: np.ndarray, file_format: str = "PNG", float_buffer: bool = False) -> Path:
    """Write a file with Blender itself (PNG 8-bit, PNG 16-bit via a float buffer, or EXR)."""
    image = _blender_image(path.stem + "_writer", pixels, float_buffer)
    image.filepath_raw = str(path)
    image.file_format = file_format
    image.save()
    bpy.data.images.remove(image)
    return path


def _material(name: str) -> tuple[bpy.types.Material, bpy.types.Node]:
    material = new_node_material(name)
    return material, material.node_tree.nodes["Principled BSDF"]


def _texture(material: bpy.types.Material, image: bpy.types.Image, to: bpy.types.NodeSocket) -> bpy.types.Node:
    node = material.node_tree.nodes.new("ShaderNodeTexImage")
    node.image = image
    material.node_tree.links.new(node.outputs["Color"], to)
    return node


def _cube(name: str, material: bpy.types.Material, x: float) -> bpy.types.Object:
    bpy.ops.mesh.primitive_cube_add(location=(x, 0, 0))
    obj = bpy.context.active_object
    obj.name = name
    obj.data.materials.append(material)
    return obj


def textured_cube(image_path: Path, size: int, seed: int, material: str = "Bark") -> bpy.types.Object:
    """A selected cube named Cube whose material ``material`` has one image texture in its Base
    Color: a ``size``² photo written to ``image_path`` and loaded from there (named after it)."""
    image = bpy.data.images.load(str(write_image(image_path, photo_like(size, size, seed=seed))))
    cube_material, bsdf = _material(material)
    _texture(cube_material, image, bsdf.inputs["Base Color"])
    cube = _cube("Cube", cube_material, 0)
    select([cube])
    return cube


def build_studio(folder: Path, size: int = 48) -> dict[str, object]:
    """Meshes whose materials hold: a shared RGBA photo, roughness and normal maps, a packed
    image, a metallic mask, a grey texture, a float EXR, a 16-bit PNG, a missing file, a
    UDIM set of two tiles and a generated image. Returns handy names."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    photo = photo_like(size, size, seed=1)
    alpha = np.linspace(0.2, 1.0, size * size, dtype=np.float32).reshape(size, size, 1)
    photo_img = bpy.data.images.load(str(write_image(folder / "photo.png", np.concatenate([photo, alpha], 2))))
    rough_img = bpy.data.images.load(str(write_image(folder / "rough.png", rng.random((size, size, 3), np.float32))))
    normal_img = bpy.data.images.load(str(write_image(folder / "normal.png", photo_like(size, size, seed=2))))
    normal_img.colorspace_settings.name = "Non-Color"

    wood, bsdf = _material("Wood")
    _texture(wood, photo_img, bsdf.inputs["Base Color"])
    _texture(wood, rough_img, bsdf.inputs["Roughness"])
    normal_map = wood.node_tree.nodes.new("ShaderNodeNormalMap")
    _texture(wood, normal_img, normal_map.inputs["Color"])
    wood.node_tree.links.new(normal_map.outputs["Normal"], bsdf.inputs["Normal"])

    metal, bsdf = _material("Metal")
    packed = bpy.data.images.load(str(write_image(folder / "packed.png", photo_like(size, size, seed=3))))
    packed.pack()
    mask = bpy.data.images.load(str(write_image(folder / "mask.png", photo_like(size, size, seed=4))))
    mix = metal.node_tree.nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    _texture(metal, packed, mix.inputs[6])  # A colour input of the Mix node
    metal.node_tree.links.new(mix.outputs[2], bsdf.inputs["Base Color"])
    _texture(metal, mask, bsdf.inputs["Metallic"])

    grey, bsdf = _material("Grey")
    grey_img = bpy.data.images.load(str(write_image(folder / "grey.png", np.repeat(photo[..., :1], 3, 2))))
    _texture(grey, grey_img, bsdf.inputs["Base Color"])

    deep, bsdf = _material("Deep")
    hdr = photo_like(size, size, seed=5) * 3.0  # highlights above 1.0
    hdr_img = bpy.data.images.load(str(write_image(folder / "hdr.exr", hdr, "OPEN_EXR", float_buffer=True)))
    png16 = bpy.data.images.load(str(write_image(folder / "deep16.png", photo_like(size, size, seed=6),
                                                 float_buffer=True)))
    _texture(deep, hdr_img, bsdf.inputs["Base Color"])
    _texture(deep, png16, bsdf.inputs["Emission Color"])

    lost, bsdf = _material("Lost")
    missing = bpy.data.images.load(str(write_image(folder / "gone.png", photo)))
    (folder / "gone.png").unlink()
    missing.reload()
    _texture(lost, missing, bsdf.inputs["Base Color"])
    lost_ok = bpy.data.images.load(str(write_image(folder / "still_here.png", photo_like(size, size, seed=8))))
    _texture(lost, lost_ok, bsdf.inputs["Emission Color"])

    tiles, bsdf = _material("Tiles")
    for number, seed in ((1001, 9), (1002, 10)):
        write_image(folder / f"udim.{number}.png", photo_like(size, size, seed=seed))
    udim = bpy.data.images.load(str(folder / "udim.1001.png"))
    udim.source = "TILED"
    udim.filepath = str(folder / "udim.<UDIM>.png")
    udim.tiles.new(tile_number=1002)
    udim.reload()
    _texture(tiles, udim, bsdf.inputs["Base Color"])

    generated, bsdf = _material("Generated")
    grid = bpy.data.images.new("Grid", size, size)
    grid.generated_type = "COLOR_GRID"
    _texture(generated, grid, bsdf.inputs["Base Color"])

    objects = [
        _cube("CubeA", wood, 0), _cube("CubeB", wood, 3), _cube("Sphere", metal, 6), _cube("Statue", grey, 9),
        _cube("Lamp", deep, 12), _cube("Ghost", lost, 15), _cube("Tiled", tiles, 18), _cube("Grid", generated, 21),
    ]
    return {"objects": objects, "folder": folder}


def animated_scene(frames: int, degrees: float, size: tuple[int, int], samples: int) -> None:
    """A Suzanne turning on a floor in front of a camera, over ``frames`` frames."""
    import math

    scene = bpy.context.scene
    bpy.ops.mesh.primitive_plane_add(size=10)
    bpy.ops.mesh.primitive_monkey_add(location=(0, 0, 1))
    monkey = bpy.context.active_object
    monkey.keyframe_insert("rotation_euler", frame=1)
    monkey.rotation_euler.z = math.radians(degrees)
    monkey.keyframe_insert("rotation_euler", frame=frames)
    bpy.ops.object.camera_add(location=(0, -6, 3), rotation=(math.radians(65), 0, 0))
    scene.camera = bpy.context.active_object
    bpy.ops.object.light_add(type="SUN")
    scene.render.engine, scene.cycles.samples = "CYCLES", samples
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100


def select(objects: list[bpy.types.Object]) -> None:
    for obj in bpy.context.scene.objects:
        obj.select_set(obj in objects)
    bpy.context.view_layer.objects.active = objects[0] if objects else None


def pixels_of(image: bpy.types.Image) -> np.ndarray:
    flat = np.empty(len(image.pixels), np.float32)
    image.pixels.foreach_get(flat)
    return flat.reshape(image.size[1], image.size[0], image.channels)


def file_digest(path: str) -> str:
    return hashlib.sha256(Path(bpy.path.abspath(path)).read_bytes()).hexdigest()


def fingerprint() -> dict[str, object]:
    """Everything about the scene's originals a restyle must not change."""
    state: dict[str, object] = {
        "materials": sorted(m.name for m in bpy.data.materials),
        "images": sorted(i.name for i in bpy.data.images),
        "slots": {o.name: [s.material.name if s.material else None for s in o.material_slots]
                  for o in bpy.data.objects},
    }
    for material in bpy.data.materials:
        state[f"mat:{material.name}"] = sorted(
            (n.name, n.image.name if getattr(n, "image", None) else None) for n in material.node_tree.nodes
        )
    for image in bpy.data.images:
        if image.source in ("FILE", "GENERATED"):
            len(image.pixels)  # Blender loads pixels lazily: load them before looking
        if image.has_data and image.source in ("FILE", "GENERATED"):
            state[f"px:{image.name}"] = hashlib.sha256(pixels_of(image).tobytes()).hexdigest()
        if image.packed_file is not None:
            state[f"packed:{image.name}"] = hashlib.sha256(image.packed_file.data).hexdigest()
        elif image.source == "FILE" and Path(bpy.path.abspath(image.filepath)).exists():
            state[f"file:{image.name}"] = file_digest(image.filepath)
    return state


def small_scene(width: int = 40, height: int = 30) -> bpy.types.Object:
    """A cube on a floor, a camera and a sun, rendered by Cycles at one sample."""
    bpy.ops.mesh.primitive_plane_add(size=10)
    bpy.ops.mesh.primitive_cube_add(size=1.5, location=(0, 0, 0.75))
    bpy.ops.object.camera_add(location=(0, -6, 3), rotation=(math.radians(65), 0, 0))
    camera = bpy.context.active_object
    scene = bpy.context.scene
    scene.camera = camera
    bpy.ops.object.light_add(type="SUN")
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 1
    scene.cycles.use_denoising = False
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = width, height, 100
    return camera


def stripes(height: int, width: int) -> np.ndarray:
    """Diagonal ink stripes on paper, (height, width, 3) float: a style image with a clear look."""
    y, x = np.mgrid[0:height, 0:width]
    ink = ((x + y) // 4) % 2 == 0
    return np.where(ink[..., None], [0.1, 0.1, 0.15], [0.95, 0.85, 0.7]).astype(np.float32)
