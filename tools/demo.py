"""Headless, offline demo: builds a scene of photo-textured meshes, restyles it with every
built-in style through the installed extension, saves a .blend and writes Cycles previews
and a contact sheet.

    .venv/bin/python tools/demo.py [--out demo_out] [--size 512] [--samples 16]

Photographic textures are cut from the CC0 HDRIs that ship inside the bpy module.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="restyle-demo-user-"))

import bpy  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from bridge.compat import new_node_material  # noqa: E402
from ml.models.catalog import style_ids  # noqa: E402
from ml.restyle.color import linear_to_srgb  # noqa: E402
from tools.build_extension import build  # noqa: E402

ADDON = "bl_ext.user_default.neural_restyle"
SWATCH = "forest"  # the texture shown close up on the contact sheet
HDRI_CROPS = (("courtyard", 0.55), ("forest", 0.30), ("city", 0.05), ("interior", 0.40))


def photo_texture(hdri: str, x_fraction: float, size: int, out_dir: Path) -> Path:
    """A size x size sRGB PNG cut from around the horizon of a bundled HDRI."""
    path = os.path.join(bpy.utils.system_resource("DATAFILES"), "studiolights", "world", f"{hdri}.exr")
    source = bpy.data.images.load(path)
    w, h = source.size
    px = np.empty(w * h * 4, np.float32)
    source.pixels.foreach_get(px)
    px = px.reshape(h, w, 4)[::-1, :, :3]
    side = h // 2
    x0 = int(x_fraction * (w - side))
    crop = px[h // 2 - side // 2 : h // 2 + side // 2, x0 : x0 + side]
    crop = crop / (np.median(crop) * 3.0 + 1e-6)  # expose for the mid-tones
    srgb = linear_to_srgb(crop / (1 + crop) * 1.3)
    bpy.data.images.remove(source)
    target = out_dir / f"{hdri}.png"
    Image.fromarray((srgb * 255 + 0.5).astype(np.uint8)).resize((size, size), Image.LANCZOS).save(target)
    return target


def textured_material(name: str, texture: Path) -> bpy.types.Material:
    material = new_node_material(name)
    nodes, links = material.node_tree.nodes, material.node_tree.links
    node = nodes.new("ShaderNodeTexImage")
    node.image = bpy.data.images.load(str(texture))
    links.new(node.outputs["Color"], nodes["Principled BSDF"].inputs["Base Color"])
    nodes["Principled BSDF"].inputs["Roughness"].default_value = 0.6
    return material


def build_scene(textures: list[Path]) -> None:
    scene = bpy.context.scene
    makers = (
        lambda: bpy.ops.mesh.primitive_cube_add(size=1.6, location=(-2.2, 0, 0.8), rotation=(0, 0, 0.6)),
        lambda: bpy.ops.mesh.primitive_uv_sphere_add(radius=0.95, location=(0, 0.3, 0.95), segments=48, ring_count=24),
        lambda: bpy.ops.mesh.primitive_monkey_add(size=1.5, location=(2.2, 0, 0.9), rotation=(0.3, 0, -0.5)),
        lambda: bpy.ops.mesh.primitive_plane_add(size=9, location=(0, 1, 0)),
    )
    for make, texture in zip(makers, textures, strict=True):
        make()
        obj = bpy.context.active_object
        if obj.type == "MESH" and not obj.data.uv_layers:
            bpy.ops.object.mode_set(mode="EDIT")
            bpy.ops.uv.smart_project()
            bpy.ops.object.mode_set(mode="OBJECT")
        if "Suzanne" in obj.name:
            obj.modifiers.new("smooth", "SUBSURF").levels = 1
            bpy.ops.object.shade_smooth()
        obj.data.materials.append(textured_material(texture.stem.title(), texture))
    bpy.ops.object.camera_add(location=(0, -7.5, 3.2), rotation=(np.radians(72), 0, 0))
    scene.camera = bpy.context.active_object
    bpy.ops.object.light_add(type="SUN", rotation=(np.radians(40), np.radians(20), np.radians(30)))
    bpy.context.active_object.data.energy = 1.6
    world = bpy.data.worlds.new("World")
    world.color = (0.12, 0.13, 0.15)
    scene.world = world


def render(path: Path, samples: int) -> Path:
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 480, 270, 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return path


def reconstruct_preview(out: Path, samples: int, originals: list[bpy.types.Object]) -> Path:
    """Rebuild the visible surfaces from the render's depth pass, then render the rebuilt mesh
    alone from a camera moved sideways, so its relief shows."""
    scene = bpy.context.scene
    result = bpy.ops.restyle.mesh_from_depth_pass(max_side=480)
    if result != {"FINISHED"}:
        raise SystemExit("mesh from depth pass failed")
    camera = scene.camera
    saved = camera.matrix_world.copy()
    for obj in originals:
        obj.hide_render = True
    camera.location.x += 2.5
    camera.rotation_euler.z += np.radians(14)
    try:
        return render(out / "preview_depth_mesh.png", samples)
    finally:
        camera.matrix_world = saved
        for obj in originals:
            obj.hide_render = False


def photo_preview(out: Path, samples: int, photo: Path) -> Path:
    """Import a photo offline (the built-in depth model) into a new file and render its mesh
    from a camera turned aside, so the relief shows."""
    bpy.ops.wm.read_homefile(use_empty=True)
    result = bpy.ops.restyle.import_photo_mesh(filepath=str(photo), near=2.0, depth_range=4.0)
    if result != {"FINISHED"}:
        raise SystemExit("photo import failed")
    scene = bpy.context.scene
    camera = scene.camera
    camera.location.x += 1.6
    camera.rotation_euler.z += np.radians(22)
    scene.render.engine = "CYCLES"
    bpy.ops.wm.save_as_mainfile(filepath=str(out / "photo_mesh.blend"))
    path = render(out / "preview_photo_mesh.png", samples)
    return path


def contact_sheet(panels: list[tuple[str, Path]], swatches: list[tuple[str, Path]], target: Path) -> Path:
    """Renders in a 3-column grid, then a row of texture close-ups (original and each style)."""
    columns, label_h = 3, 22
    tiles = [Image.open(path).convert("RGB") for _, path in panels]
    w, h = tiles[0].size
    rows = -(-len(tiles) // columns)
    swatch = columns * w // len(swatches)
    sheet = Image.new("RGB", (columns * w, rows * (h + label_h) + swatch + label_h), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for index, ((label, _), tile) in enumerate(zip(panels, tiles, strict=True)):
        x, y = (index % columns) * w, (index // columns) * (h + label_h)
        sheet.paste(tile, (x, y + label_h))
        draw.text((x + 6, y + 5), f"render: {label}", fill=(235, 235, 235))
    y = rows * (h + label_h)
    for index, (label, path) in enumerate(swatches):
        image = Image.open(path).convert("RGB")
        side = min(image.size) // 2  # a centre crop at twice the on-screen size
        box = ((image.width - side) // 2, (image.height - side) // 2)
        crop = image.crop((box[0], box[1], box[0] + side, box[1] + side)).resize((swatch, swatch), Image.LANCZOS)
        sheet.paste(crop, (index * swatch, y + label_h))
        draw.text((index * swatch + 6, y + 5), f"texture: {label}", fill=(235, 235, 235))
    sheet.save(target)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "demo_out")
    parser.add_argument("--size", type=int, default=512, help="texture size in pixels")
    parser.add_argument("--samples", type=int, default=16, help="Cycles samples per preview")
    args = parser.parse_args()
    out = args.out.resolve()
    (out / "textures").mkdir(parents=True, exist_ok=True)

    importlib.invalidate_caches()
    bpy.ops.extensions.package_install_files(filepath=str(build(out / "dist")), repo="user_default",
                                             enable_on_install=True)
    if ADDON not in bpy.context.preferences.addons:
        print("the extension did not enable", file=sys.stderr)
        return 1
    bpy.ops.wm.read_homefile(use_empty=True)
    textures = [photo_texture(name, x, args.size, out / "textures") for name, x in HDRI_CROPS]
    build_scene(textures)
    blend = out / "restyle_demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))  # saved first, so results go to //restyled/

    panels = [("original", render(out / "preview_original.png", args.samples))]
    swatches = [("original", out / "textures" / f"{SWATCH}.png")]
    meshes = [obj for obj in bpy.context.scene.objects if obj.type == "MESH"]
    for style in style_ids():
        for obj in bpy.context.scene.objects:
            obj.select_set(obj in meshes)
        bpy.context.scene.restyle.style = style
        started = time.perf_counter()
        result = bpy.ops.restyle.stylize_textures()
        print(f"{style}: {result} in {time.perf_counter() - started:.1f} s", flush=True)
        if result != {"FINISHED"}:
            return 1
        panels.append((style, render(out / f"preview_{style}.png", args.samples)))
        # The restyled image says where its file went (the output naming may add a tag to keep names apart).
        swatches.append((style, Path(bpy.path.abspath(bpy.data.images[f"{SWATCH}.png.{style}"].filepath))))
    panels.append(("depth-pass mesh", reconstruct_preview(out, args.samples, meshes)))
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    panels.append(("photo -> mesh (built-in depth)", photo_preview(out, args.samples, textures[0])))
    sheet = contact_sheet(panels, swatches, out / "contact_sheet.png")
    print(f"wrote {blend}\nwrote {sheet}")
    bpy.ops.preferences.addon_disable(module=ADDON)  # stops the worker
    return 0


if __name__ == "__main__":
    sys.exit(main())
