"""Synthetic RGB + depth pairs rendered with Cycles, deterministic per seed.

    .venv/bin/python tools/synth/generate.py --seeds 0-1499 --out data/synth/train
    .venv/bin/python tools/synth/generate.py --seeds 100000-100199 --out data/synth/heldout

Each seed builds its own scene: a floor and sometimes walls, 3-9 objects (primitives, some
subdivided or displaced), random procedural materials, one of the CC0 HDRIs bundled with
the bpy module plus a random lamp, and a random camera (focal length, height, tilt). One
compressed .npz per seed holds rgb (uint8, H x W x 3) and depth (float16 metres, planar,
inf where nothing was hit).
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="restyle-synth-"))

import bpy  # noqa: E402
import numpy as np  # noqa: E402
import OpenEXR  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bridge.compat import new_node_material, new_node_world, set_multilayer_exr  # noqa: E402

WIDTH, HEIGHT = 128, 96
THREADS = 0  # 0: all cores; set per process when several generators run side by side
HDRIS = sorted(glob.glob(os.path.join(bpy.utils.system_resource("DATAFILES"), "studiolights", "world", "*.exr")))
PRIMITIVES = ("cube", "uv_sphere", "cylinder", "cone", "torus", "monkey", "ico_sphere")


def random_material(rng: random.Random, name: str) -> bpy.types.Material:
    material = new_node_material(name)
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = nodes["Principled BSDF"]
    kind = rng.choice(("noise", "voronoi", "checker", "wave", "plain"))
    colour = (rng.random(), rng.random(), rng.random(), 1.0)
    if kind == "plain":
        bsdf.inputs["Base Color"].default_value = colour
    else:
        texture = nodes.new({"noise": "ShaderNodeTexNoise", "voronoi": "ShaderNodeTexVoronoi",
                             "checker": "ShaderNodeTexChecker", "wave": "ShaderNodeTexWave"}[kind])
        texture.inputs["Scale"].default_value = rng.uniform(1.0, 12.0)
        ramp = nodes.new("ShaderNodeValToRGB")
        ramp.color_ramp.elements[0].color = colour
        ramp.color_ramp.elements[1].color = (rng.random(), rng.random(), rng.random(), 1.0)
        links.new(texture.outputs[1] if kind == "checker" else texture.outputs[0], ramp.inputs["Fac"])
        links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = rng.uniform(0.2, 1.0)
    bsdf.inputs["Metallic"].default_value = rng.choice((0.0, 0.0, 0.0, 0.8))
    return material


def add_object(rng: random.Random, index: int) -> None:
    kind = rng.choice(PRIMITIVES)
    size = rng.uniform(0.3, 1.6)
    location = (rng.uniform(-3, 3), rng.uniform(-1, 5), 0)
    rotation = (rng.uniform(0, 0.4), rng.uniform(0, 0.4), rng.uniform(0, math.tau))
    getattr(bpy.ops.mesh, f"primitive_{kind}_add")(location=location, rotation=rotation)
    obj = bpy.context.active_object
    obj.scale = (size * rng.uniform(0.6, 1.4), size * rng.uniform(0.6, 1.4), size * rng.uniform(0.6, 1.4))
    obj.location.z = size * rng.uniform(0.3, 1.0) + (rng.uniform(0, 1.5) if rng.random() < 0.2 else 0)
    roll = rng.random()
    if roll < 0.25:
        obj.modifiers.new("subdiv", "SUBSURF").levels = 2
        displace = obj.modifiers.new("displace", "DISPLACE")
        texture = bpy.data.textures.new(f"tex{index}", "CLOUDS")
        texture.noise_scale = rng.uniform(0.2, 1.0)
        displace.texture = texture
        displace.strength = rng.uniform(0.05, 0.4)
    elif roll < 0.45:
        obj.modifiers.new("bevel", "BEVEL").width = rng.uniform(0.02, 0.15)
    obj.data.materials.append(random_material(rng, f"mat{index}"))


def build_scene(seed: int) -> None:
    rng = random.Random(seed)
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    bpy.ops.mesh.primitive_plane_add(size=60)
    bpy.context.active_object.data.materials.append(random_material(rng, "floor"))
    if rng.random() < 0.6:  # a room: back wall and sometimes side walls
        for index, (location, rotation) in enumerate([((0, 7, 3), (math.pi / 2, 0, 0)),
                                                      ((-6, 2, 3), (math.pi / 2, 0, math.pi / 2)),
                                                      ((6, 2, 3), (math.pi / 2, 0, math.pi / 2))]):
            if index == 0 or rng.random() < 0.5:
                bpy.ops.mesh.primitive_plane_add(size=14, location=location, rotation=rotation)
                bpy.context.active_object.data.materials.append(random_material(rng, f"wall{index}"))
    for index in range(rng.randint(3, 9)):
        add_object(rng, index)
    world = new_node_world("world")
    scene.world = world
    nodes, links = world.node_tree.nodes, world.node_tree.links
    environment = nodes.new("ShaderNodeTexEnvironment")
    environment.image = bpy.data.images.load(rng.choice(HDRIS), check_existing=True)
    mapping, coords = nodes.new("ShaderNodeMapping"), nodes.new("ShaderNodeTexCoord")
    mapping.inputs["Rotation"].default_value[2] = rng.uniform(0, math.tau)
    links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
    links.new(mapping.outputs["Vector"], environment.inputs["Vector"])
    links.new(environment.outputs["Color"], nodes["Background"].inputs["Color"])
    nodes["Background"].inputs["Strength"].default_value = rng.uniform(0.5, 1.5)
    bpy.ops.object.light_add(type=rng.choice(("SUN", "POINT", "AREA")),
                             location=(rng.uniform(-4, 4), rng.uniform(-4, 2), rng.uniform(3, 7)))
    light = bpy.context.active_object
    light.data.energy = {"SUN": rng.uniform(1, 4), "POINT": rng.uniform(300, 1500), "AREA": rng.uniform(200, 800)}[
        light.data.type]
    height = rng.uniform(0.5, 3.0)
    bpy.ops.object.camera_add(location=(rng.uniform(-1.5, 1.5), rng.uniform(-7, -4), height),
                              rotation=(math.radians(rng.uniform(65, 95) - height * 5), 0,
                                        math.radians(rng.uniform(-15, 15))))
    camera = bpy.context.active_object
    camera.data.lens = rng.uniform(20, 60)
    camera.data.clip_end = 200
    scene.camera = camera
    scene.render.engine = "CYCLES"
    scene.cycles.samples, scene.cycles.seed, scene.cycles.use_denoising = 8, seed, False
    scene.cycles.device = "CPU"
    scene.render.threads_mode, scene.render.threads = ("FIXED", THREADS) if THREADS else ("AUTO", 1)
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = WIDTH, HEIGHT, 100
    scene.view_settings.view_transform = "Standard"
    bpy.context.view_layer.use_pass_z = True


def render(seed: int, folder: Path) -> Path:
    build_scene(seed)
    scene = bpy.context.scene
    exr = Path(tempfile.mkdtemp()) / "frame.exr"
    scene.render.filepath, scene.render.use_file_extension = str(exr), False
    set_multilayer_exr(scene.render.image_settings)
    bpy.ops.render.render(write_still=True)
    channels = {}
    with OpenEXR.File(str(exr), separate_channels=True) as f:
        for part in f.parts:
            channels.update({k: np.asarray(v.pixels) for k, v in part.channels.items()})
    exr.unlink()
    linear = np.stack([channels[next(k for k in channels if k.endswith(f"Combined.{c}"))] for c in "RGB"], -1)
    srgb = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * np.power(np.clip(linear, 0, None), 1 / 2.4) - 0.055)
    rgb = (np.clip(srgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    depth = channels[next(k for k in channels if k.endswith("Depth.Z"))].astype(np.float32)
    depth[depth >= scene.camera.data.clip_end] = np.inf
    target = folder / f"{seed:06d}.npz"
    np.savez_compressed(target, rgb=rgb, depth=depth.astype(np.float16))
    return target


def parse_seeds(text: str) -> list[int]:
    start, _, end = text.partition("-")
    return list(range(int(start), int(end or start) + 1))


def main() -> int:
    global THREADS, WIDTH, HEIGHT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", required=True, help="START-END (inclusive)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=0, help="render threads (0: all)")
    parser.add_argument("--size", default=f"{WIDTH}x{HEIGHT}", help="WIDTHxHEIGHT of each render")
    args = parser.parse_args()
    THREADS = args.threads
    WIDTH, HEIGHT = (int(v) for v in args.size.lower().split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = parse_seeds(args.seeds)
    started = time.perf_counter()
    for number, seed in enumerate(seeds, 1):
        if not (args.out / f"{seed:06d}.npz").exists():
            render(seed, args.out)
        if number % 50 == 0 or number == len(seeds):
            minutes = (time.perf_counter() - started) / 60
            print(f"{number}/{len(seeds)} images, {number / minutes:.0f} images/min", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
