"""Synthetic RGB + depth pairs rendered with Cycles, deterministic per (family, seed).

    .venv/bin/python tools/synth/generate.py --seeds 0-1499 --out data/synth/train
    .venv/bin/python tools/synth/generate.py --families train --seeds 0-999 --out data/synth/mixed
    .venv/bin/python tools/synth/generate.py --families heldout --seeds 200000-200119 --out data/synth/ood

Scene families (tools/synth/plan.py): "primitives", the original one and the default (a floor
and sometimes walls, 3-9 primitives, some subdivided or displaced, random procedural
materials), and the layouts of tools/synth/families.py (rooms, streets, clutter, thin
structures, people, forests, aerial views, warehouses, scatters, shelves, stairs, facades,
and the held-out corridors, terrain and table-tops). With several families, each seed
renders families[seed % len(families)].
Every scene is lit by one of the CC0 HDRIs bundled with the bpy module plus lamps and seen
by a random camera. One compressed .npz per (family, seed) holds rgb (uint8, H x W x 3),
depth (float16 metres, planar, inf where nothing was hit) and family (its name).
"""

from __future__ import annotations

import argparse
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
from bridge.compat import new_node_material, set_multilayer_exr  # noqa: E402
from tools.synth import families  # noqa: E402
from tools.synth.plan import FAMILIES, output_name, resolve_families, seed_plan  # noqa: E402

WIDTH, HEIGHT = 128, 96
THREADS = 0  # 0: all cores; set per process when several generators run side by side
DENOISE = True  # for the new families
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
    families.world(rng)  # the same draws in the same order as the other families' worlds
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


def build_family_scene(family: str, seed: int) -> None:
    """The scene of (family, seed); "primitives" is the original generator, unchanged."""
    if family == "primitives":
        build_scene(seed)
        return
    families.build(family, seed)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    # Denoised (OpenImageDenoise): 8 samples of photographic textures are grainy, photos are not.
    scene.cycles.samples, scene.cycles.seed, scene.cycles.use_denoising = 8, seed, DENOISE
    scene.cycles.denoiser = "OPENIMAGEDENOISE"
    scene.cycles.device = "CPU"
    # Fewer bounces than the defaults: most of the look, much less time per image on the CPU.
    scene.cycles.max_bounces, scene.cycles.diffuse_bounces, scene.cycles.glossy_bounces = 4, 2, 2
    scene.cycles.transmission_bounces, scene.cycles.volume_bounces = 2, 0
    scene.cycles.sample_clamp_indirect = 10.0  # no fireflies from the HDR textures
    # A coarse importance map of the HDRI: the default one at the panorama's full size took
    # a third of each frame's time on one thread, for no visible difference once denoised.
    scene.world.cycles.sampling_method, scene.world.cycles.sample_map_resolution = "MANUAL", 128
    scene.render.threads_mode, scene.render.threads = ("FIXED", THREADS) if THREADS else ("AUTO", 1)
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = WIDTH, HEIGHT, 100
    scene.view_settings.view_transform = "Standard"
    bpy.context.view_layer.use_pass_z = True


def render(seed: int, folder: Path, family: str = "primitives") -> Path:
    build_family_scene(family, seed)
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
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / output_name(family, seed)
    np.savez_compressed(target, rgb=rgb, depth=depth.astype(np.float16), family=np.array(family))
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
    parser.add_argument("--family", "--families", dest="families", default="primitives",
                        help=f"a family, a comma-separated list or train/heldout/all ({', '.join(FAMILIES)})")
    args = parser.parse_args()
    THREADS = args.threads
    WIDTH, HEIGHT = (int(v) for v in args.size.lower().split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    plan = seed_plan(parse_seeds(args.seeds), resolve_families(args.families))
    seeds = [seed for _, seed in plan]
    started = time.perf_counter()
    for number, (family, seed) in enumerate(plan, 1):
        if not (args.out / output_name(family, seed)).exists():
            render(seed, args.out, family)
        if number % 50 == 0 or number == len(seeds):
            minutes = (time.perf_counter() - started) / 60
            print(f"{number}/{len(seeds)} images, {number / minutes:.0f} images/min", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
