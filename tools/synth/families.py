"""Scene families for the synthetic depth data (bpy): rooms, streets, corridors, terrain,
table-tops, clutter, thin structures, people-sized shapes, forests, aerial views, warehouses,
randomised scatters of things, shelves, stairs and building facades.

Each builder takes its own ``random.Random`` (seeded from family and seed by the caller) and
builds one scene in an empty file: geometry, materials (procedural or photographic crops of
the CC0 HDRIs bundled with bpy), lights and a camera (18-85 mm, various heights and tilts).
Nothing here depends on the clock or on dict order, so a (family, seed) is one image.
"""

from __future__ import annotations

import glob
import math
import os
import random
from collections.abc import Callable

import bpy
from mathutils import Matrix, Vector

from bridge.compat import new_node_material, new_node_world

HDRIS = sorted(glob.glob(os.path.join(bpy.utils.system_resource("DATAFILES"), "studiolights", "world", "*.exr")))
Vec3 = tuple[float, float, float]


# --- materials -------------------------------------------------------------------------------

def procedural_material(rng: random.Random, name: str) -> bpy.types.Material:
    material = new_node_material(name)
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = nodes["Principled BSDF"]
    kind = rng.choice(("noise", "voronoi", "checker", "wave", "brick", "magic", "plain"))
    colour = (rng.random(), rng.random(), rng.random(), 1.0)
    if kind == "plain":
        bsdf.inputs["Base Color"].default_value = colour
    else:
        texture = nodes.new({"noise": "ShaderNodeTexNoise", "voronoi": "ShaderNodeTexVoronoi",
                             "checker": "ShaderNodeTexChecker", "wave": "ShaderNodeTexWave",
                             "brick": "ShaderNodeTexBrick", "magic": "ShaderNodeTexMagic"}[kind])
        texture.inputs["Scale"].default_value = rng.uniform(0.5, 6.0) if kind != "brick" else rng.uniform(1, 4)
        coords = nodes.new("ShaderNodeTexCoord")  # object space: same texel size on any side
        links.new(coords.outputs["Object"], texture.inputs["Vector"])
        ramp = nodes.new("ShaderNodeValToRGB")
        ramp.color_ramp.elements[0].color = colour
        ramp.color_ramp.elements[1].color = (rng.random(), rng.random(), rng.random(), 1.0)
        source = texture.outputs["Fac"] if "Fac" in texture.outputs else texture.outputs[0]
        links.new(source, ramp.inputs["Fac"])
        links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = rng.uniform(0.3, 1.0)
    bsdf.inputs["Metallic"].default_value = rng.choice((0.0, 0.0, 0.0, 0.0, 0.7))
    return material


def photo_material(rng: random.Random, name: str) -> bpy.types.Material:
    """A crop of one of the CC0 photographic HDRIs as a box-projected image texture: real
    photographic texture statistics (foliage, brick, sky, ground) on synthetic geometry."""
    material = new_node_material(name)
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = nodes["Principled BSDF"]
    image = nodes.new("ShaderNodeTexImage")
    image.image = bpy.data.images.load(rng.choice(HDRIS), check_existing=True)
    image.projection, image.projection_blend = "BOX", 0.3
    coords, mapping = nodes.new("ShaderNodeTexCoord"), nodes.new("ShaderNodeMapping")
    scale = rng.uniform(0.03, 0.4)  # 2.5-33 m per whole panorama: a crop of it shows on an object
    mapping.inputs["Scale"].default_value = (scale, scale, scale)
    mapping.inputs["Location"].default_value = (rng.random(), rng.uniform(0.25, 0.6), rng.random())
    links.new(coords.outputs["Object"], mapping.inputs["Vector"])
    links.new(mapping.outputs["Vector"], image.inputs["Vector"])
    exposure, clamp = nodes.new("ShaderNodeVectorMath"), nodes.new("ShaderNodeVectorMath")
    exposure.operation, clamp.operation = "SCALE", "MINIMUM"  # HDR values -> an albedo in [0, 1]
    exposure.inputs["Scale"].default_value = rng.uniform(0.4, 1.6)
    clamp.inputs[1].default_value = (0.95, 0.95, 0.95)
    links.new(image.outputs["Color"], exposure.inputs[0])
    links.new(exposure.outputs["Vector"], clamp.inputs[0])
    links.new(clamp.outputs["Vector"], bsdf.inputs["Base Color"])
    bsdf.inputs["Roughness"].default_value = rng.uniform(0.4, 1.0)
    return material


def material(rng: random.Random, name: str, photo: float = 0.45) -> bpy.types.Material:
    return photo_material(rng, name) if rng.random() < photo else procedural_material(rng, name)


# --- geometry --------------------------------------------------------------------------------

def _bake_scale(obj: bpy.types.Object) -> bpy.types.Object:
    """Put the object's scale into its mesh so object-space textures keep their size."""
    obj.data.transform(Matrix.Diagonal((*obj.scale, 1.0)))
    obj.scale = (1.0, 1.0, 1.0)
    return obj


def _finish(obj: bpy.types.Object, mat: bpy.types.Material | None) -> bpy.types.Object:
    if mat is not None:
        obj.data.materials.append(mat)
    return obj


def box(centre: Vec3, size: Vec3, mat: bpy.types.Material | None, yaw: float = 0.0) -> bpy.types.Object:
    bpy.ops.mesh.primitive_cube_add(size=1.0, location=centre, rotation=(0.0, 0.0, yaw))
    obj = bpy.context.active_object
    obj.scale = size
    return _finish(_bake_scale(obj), mat)


def cylinder(centre: Vec3, radius: float, height: float, mat: bpy.types.Material | None,
             rotation: Vec3 = (0.0, 0.0, 0.0), vertices: int = 16) -> bpy.types.Object:
    bpy.ops.mesh.primitive_cylinder_add(vertices=vertices, radius=radius, depth=height, location=centre,
                                        rotation=rotation)
    return _finish(bpy.context.active_object, mat)


def sphere(centre: Vec3, radius: float, mat: bpy.types.Material | None, squash: Vec3 = (1.0, 1.0, 1.0),
           subdivisions: int = 2) -> bpy.types.Object:
    bpy.ops.mesh.primitive_ico_sphere_add(subdivisions=subdivisions, radius=radius, location=centre)
    obj = bpy.context.active_object
    obj.scale = squash
    return _finish(_bake_scale(obj), mat)


def primitive(rng: random.Random, centre: Vec3, size: float, mat: bpy.types.Material | None) -> bpy.types.Object:
    kind = rng.choice(("cube", "uv_sphere", "cylinder", "cone", "torus", "monkey", "ico_sphere"))
    getattr(bpy.ops.mesh, f"primitive_{kind}_add")(location=centre, rotation=(0.0, 0.0, rng.uniform(0, math.tau)))
    obj = bpy.context.active_object
    obj.scale = (size * rng.uniform(0.6, 1.4), size * rng.uniform(0.6, 1.4), size * rng.uniform(0.6, 1.4))
    obj.location.z = centre[2] + obj.scale.z * (0.4 if kind in ("monkey", "torus") else 1.0)
    if kind == "torus":
        obj.location.z = centre[2] + 0.25 * obj.scale.z
    return _finish(_bake_scale(obj), mat)


def rock(rng: random.Random, centre: Vec3, size: float, mat: bpy.types.Material, index: int) -> bpy.types.Object:
    obj = sphere(centre, size, mat, (rng.uniform(0.7, 1.5), rng.uniform(0.7, 1.5), rng.uniform(0.4, 0.9)), 3)
    displace = obj.modifiers.new("displace", "DISPLACE")
    texture = bpy.data.textures.new(f"rock{index}", "CLOUDS")
    texture.noise_scale = rng.uniform(0.3, 0.8) * size
    displace.texture, displace.strength = texture, size * rng.uniform(0.2, 0.5)
    return obj


def ground(rng: random.Random, mat: bpy.types.Material, size: float = 200.0, hills: float = 0.0,
           detail: int = 0) -> bpy.types.Object:
    """A floor plane, or with ``hills`` a displaced grid (terrain)."""
    if hills <= 0:
        bpy.ops.mesh.primitive_plane_add(size=size)
        return _finish(bpy.context.active_object, mat)
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=detail, y_subdivisions=detail, size=size)
    obj = bpy.context.active_object
    displace = obj.modifiers.new("hills", "DISPLACE")
    texture = bpy.data.textures.new("hills", "CLOUDS")
    texture.noise_depth = 2
    displace.texture, displace.strength, displace.mid_level = texture, hills, 0.5
    displace.texture_coords = "GLOBAL"  # so the noise scale is in metres, not grid fractions
    texture.noise_scale = rng.uniform(6.0, 20.0)
    return _finish(obj, mat)


def terrain_height(obj: bpy.types.Object, x: float, y: float) -> float:
    """Height of the evaluated (displaced) terrain under (x, y), by a downward ray."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    hit, location, *_ = bpy.context.scene.ray_cast(depsgraph, Vector((x, y, 500.0)), Vector((0.0, 0.0, -1.0)))
    return float(location.z) if hit else 0.0


# --- lights, world, camera -------------------------------------------------------------------

def world(rng: random.Random, strength: tuple[float, float] = (0.5, 1.5)) -> None:
    scene = bpy.context.scene
    scene.world = new_node_world("world")
    nodes, links = scene.world.node_tree.nodes, scene.world.node_tree.links
    environment = nodes.new("ShaderNodeTexEnvironment")
    environment.image = bpy.data.images.load(rng.choice(HDRIS), check_existing=True)
    mapping, coords = nodes.new("ShaderNodeMapping"), nodes.new("ShaderNodeTexCoord")
    mapping.inputs["Rotation"].default_value[2] = rng.uniform(0, math.tau)
    links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
    links.new(mapping.outputs["Vector"], environment.inputs["Vector"])
    links.new(environment.outputs["Color"], nodes["Background"].inputs["Color"])
    nodes["Background"].inputs["Strength"].default_value = rng.uniform(*strength)


def lamp(rng: random.Random, location: Vec3, kind: str | None = None, power: float = 1.0) -> None:
    kind = kind or rng.choice(("SUN", "POINT", "AREA"))
    bpy.ops.object.light_add(type=kind, location=location,
                             rotation=(rng.uniform(0, 0.8), rng.uniform(-0.5, 0.5), rng.uniform(0, math.tau)))
    light = bpy.context.active_object.data
    light.energy = power * {"SUN": rng.uniform(1, 4), "POINT": rng.uniform(300, 1500),
                            "AREA": rng.uniform(200, 800), "SPOT": rng.uniform(500, 2000)}[kind]


def camera(rng: random.Random, location: Vec3, target: Vec3, lens: tuple[float, float] = (18.0, 85.0),
           roll: float = 4.0) -> bpy.types.Object:
    """A camera at ``location`` looking at ``target``; the lens is log-uniform in ``lens`` mm."""
    bpy.ops.object.camera_add(location=location)
    cam = bpy.context.active_object
    direction = Vector(target) - Vector(location)
    cam.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    cam.rotation_euler.rotate_axis("Z", math.radians(rng.uniform(-roll, roll)))
    cam.data.lens = math.exp(rng.uniform(math.log(lens[0]), math.log(lens[1])))
    cam.data.clip_start, cam.data.clip_end = 0.05, 200.0
    bpy.context.scene.camera = cam
    return cam


# --- families --------------------------------------------------------------------------------

def room(rng: random.Random) -> None:
    """Indoor room with furniture-like boxes: tables, cabinets, sofas, beds; often a ceiling."""
    width, depth, height = rng.uniform(4, 10), rng.uniform(4, 10), rng.uniform(2.4, 3.6)
    ground(rng, material(rng, "floor"), size=60)
    wall_mat = material(rng, "walls")
    for centre, size in (((0, depth / 2, height / 2), (width, 0.1, height)),
                         ((0, -depth / 2, height / 2), (width, 0.1, height)),
                         ((-width / 2, 0, height / 2), (0.1, depth, height)),
                         ((width / 2, 0, height / 2), (0.1, depth, height))):
        box(centre, size, wall_mat if rng.random() < 0.7 else material(rng, "wall"))
    ceiling = rng.random() < 0.6
    if ceiling:
        box((0, 0, height + 0.05), (width, depth, 0.1), material(rng, "ceiling", 0.2))
    for index in range(rng.randint(3, 9)):
        mat = material(rng, f"furniture{index}")
        x, y = rng.uniform(-width / 2 + 0.5, width / 2 - 0.5), rng.uniform(-depth / 2 + 1.5, depth / 2 - 0.4)
        yaw = rng.choice((0.0, math.pi / 2, rng.uniform(0, math.tau)))
        kind = rng.choice(("table", "cabinet", "sofa", "bed", "chair", "box"))
        if kind == "table":
            w, d, h = rng.uniform(0.8, 2.0), rng.uniform(0.6, 1.2), rng.uniform(0.7, 0.8)
            box((x, y, h - 0.025), (w, d, 0.05), mat, yaw)
            for sx in (-1, 1):
                for sy in (-1, 1):
                    lx = x + sx * (w / 2 - 0.05) * math.cos(yaw) - sy * (d / 2 - 0.05) * math.sin(yaw)
                    ly = y + sx * (w / 2 - 0.05) * math.sin(yaw) + sy * (d / 2 - 0.05) * math.cos(yaw)
                    box((lx, ly, h / 2), (0.05, 0.05, h), mat, yaw)
        elif kind == "chair":
            s = rng.uniform(0.4, 0.5)
            box((x, y, 0.45), (s, s, 0.05), mat, yaw)
            box((x, y, 0.225), (s * 0.8, s * 0.8, 0.45), mat, yaw)
            box((x - s / 2 * math.sin(yaw), y + s / 2 * math.cos(yaw), 0.7), (s, 0.05, 0.5), mat, yaw)
        else:
            w, d, h = {"cabinet": (rng.uniform(0.6, 2), rng.uniform(0.4, 0.6), rng.uniform(1.2, 2.2)),
                       "sofa": (rng.uniform(1.6, 2.4), rng.uniform(0.8, 1.0), rng.uniform(0.4, 0.5)),
                       "bed": (rng.uniform(1.4, 2.0), rng.uniform(2.0, 2.2), rng.uniform(0.4, 0.6)),
                       "box": (rng.uniform(0.3, 1.0), rng.uniform(0.3, 1.0), rng.uniform(0.3, 1.2))}[kind]
            box((x, y, h / 2), (w, d, h), mat, yaw)
            if kind == "sofa":
                box((x - d / 2 * math.sin(yaw), y + d / 2 * math.cos(yaw), h + 0.2), (w, 0.2, 0.4), mat, yaw)
    world(rng)
    lamp(rng, (rng.uniform(-1, 1), rng.uniform(-1, 1), height - 0.3), rng.choice(("POINT", "AREA")), 0.6)
    if not ceiling:
        lamp(rng, (0, 0, 10), "SUN")
    eye = (rng.uniform(-width / 3, width / 3), -depth / 2 + rng.uniform(0.3, 1.2), rng.uniform(0.9, 1.9))
    target = (rng.uniform(-width / 3, width / 3), depth / 2, rng.uniform(0.0, 1.6))
    camera(rng, eye, target, (18.0, 50.0))


def street(rng: random.Random) -> None:
    """A street between rows of building blocks with facades, some cars and poles; sky."""
    ground(rng, material(rng, "road"))
    half = rng.uniform(4, 10)  # half the width between the facades
    length = 120.0
    for side in (-1, 1):
        y = -10.0
        index = 0
        while y < length:
            w = rng.uniform(5, 16)
            h = rng.uniform(4, 30)
            setback = rng.uniform(0, 3) if rng.random() < 0.4 else 0.0
            d = rng.uniform(6, 14)
            box((side * (half + setback + d / 2), y + w / 2, h / 2), (d, w, h),
                material(rng, f"facade{side}{index}", 0.6))
            if rng.random() < 0.3:  # a balcony or shop sign sticking out of the facade
                box((side * (half + setback - 0.4), y + w / 2, rng.uniform(2.5, min(h, 8))),
                    (0.8, w * 0.6, 0.15), material(rng, "ledge", 0.2))
            y += w + (rng.uniform(1, 6) if rng.random() < 0.3 else 0.0)
            index += 1
        box((side * (half - 1.5), length / 2, 0.075), (3.0, length + 20, 0.15), material(rng, "pavement", 0.3))
    for index in range(rng.randint(0, 8)):
        lane = rng.uniform(-half + 3, half - 3)
        box((lane, rng.uniform(3, 80), 0.75), (1.8, 4.4, 1.4), material(rng, f"car{index}", 0.1),
            rng.uniform(-0.1, 0.1))
    for _ in range(rng.randint(0, 10)):
        cylinder((rng.choice((-1, 1)) * (half - 0.5), rng.uniform(2, 100), 3.0), 0.08, 6.0, material(rng, "pole", 0.1))
    world(rng, (0.6, 1.8))
    lamp(rng, (0, 0, 50), "SUN")
    x, y = rng.uniform(-half + 1, half - 1), rng.uniform(-8, 0)
    eye = (x, y, rng.choice((rng.uniform(1.2, 2.0), rng.uniform(2, 12))))  # eye level or a first floor
    target = (rng.uniform(-half, half) * 1.5, rng.uniform(20, 60), rng.uniform(0, 8))
    camera(rng, eye, target)


def clutter(rng: random.Random) -> None:
    """Many small objects strewn over a floor, seen from above at a slant."""
    ground(rng, material(rng, "floor"), size=40)
    if rng.random() < 0.5:
        box((0, rng.uniform(3, 6), 2), (20, 0.1, 4), material(rng, "wall"))
    for index in range(rng.randint(12, 35)):
        primitive(rng, (rng.uniform(-2.5, 2.5), rng.uniform(-0.5, 4.0), 0.0), rng.uniform(0.05, 0.35),
                  material(rng, f"thing{index}", 0.35))
    world(rng)
    lamp(rng, (rng.uniform(-3, 3), rng.uniform(-3, 1), rng.uniform(2, 5)))
    eye = (rng.uniform(-1, 1), rng.uniform(-2.5, -1.2), rng.uniform(0.5, 1.8))
    camera(rng, eye, (rng.uniform(-0.5, 0.5), rng.uniform(0.5, 2.5), 0.0), (18.0, 60.0))


def thin(rng: random.Random) -> None:
    """Thin structures: poles, railings, fences of pickets, wires, in front of a wall or the sky."""
    ground(rng, material(rng, "ground"))
    backdrop = rng.random() < 0.5
    if backdrop:
        box((0, rng.uniform(8, 25), 5), (60, 0.3, 10), material(rng, "backdrop", 0.6))
    for index in range(rng.randint(2, 5)):
        mat = material(rng, f"metal{index}", 0.15)
        kind = rng.choice(("fence", "railing", "poles", "wires"))
        y, x0 = rng.uniform(1.5, 12), rng.uniform(-8, -2)
        yaw = rng.uniform(-0.6, 0.6)
        length = rng.uniform(4, 16)
        ux, uy = math.cos(yaw), math.sin(yaw)
        if kind == "fence":
            h, gap, w = rng.uniform(0.8, 2.0), rng.uniform(0.12, 0.4), rng.uniform(0.03, 0.1)
            for k in range(int(length / gap)):
                box((x0 + ux * k * gap, y + uy * k * gap, h / 2), (w, w, h), mat, yaw)
            for rail in (0.25, 0.8):
                box((x0 + ux * length / 2, y + uy * length / 2, h * rail), (length, 0.04, 0.06), mat, yaw)
        elif kind == "railing":
            h = rng.uniform(0.9, 1.2)
            for k in range(int(length / 1.5) + 1):
                cylinder((x0 + ux * k * 1.5, y + uy * k * 1.5, h / 2), 0.025, h, mat)
            for rail in (0.5, 1.0):
                cylinder((x0 + ux * length / 2, y + uy * length / 2, h * rail), 0.025, length, mat,
                         (0.0, math.pi / 2, yaw))
        elif kind == "poles":
            for _ in range(rng.randint(3, 10)):
                h = rng.uniform(2, 8)
                cylinder((rng.uniform(-6, 6), rng.uniform(1, 20), h / 2), rng.uniform(0.03, 0.15), h, mat)
        else:
            h = rng.uniform(3, 7)
            for end in (0.0, length):
                cylinder((x0 + ux * end, y + uy * end, h / 2), 0.1, h, mat)
            for k in range(rng.randint(1, 4)):
                cylinder((x0 + ux * length / 2, y + uy * length / 2, h - 0.3 - 0.3 * k), 0.012, length, mat,
                         (0.0, math.pi / 2, yaw))
    world(rng)
    lamp(rng, (0, 0, 30), "SUN")
    eye = (rng.uniform(-2, 2), rng.uniform(-3, 0), rng.uniform(0.8, 2.2))
    camera(rng, eye, (rng.uniform(-3, 3), rng.uniform(5, 12), rng.uniform(0.3, 1.5)))


def person(rng: random.Random, x: float, y: float, z: float, scale: float, mat: bpy.types.Material) -> None:
    """A people-sized shape: capsule-like body and legs and a head, or a plain box figure."""
    if rng.random() < 0.3:
        box((x, y, z + 0.85 * scale), (0.45 * scale, 0.3 * scale, 1.7 * scale), mat, rng.uniform(0, math.tau))
        return
    yaw = rng.uniform(0, math.tau)
    for side in (-1, 1):  # legs
        cylinder((x + side * 0.1 * scale * math.cos(yaw), y + side * 0.1 * scale * math.sin(yaw), z + 0.42 * scale),
                 0.07 * scale, 0.85 * scale, mat, vertices=8)
    sphere((x, y, z + 1.18 * scale), 0.2 * scale, mat, (1.0, 0.7, 1.8), 1)  # torso, squashed sphere
    sphere((x, y, z + 1.62 * scale), 0.11 * scale, mat, (1.0, 1.0, 1.15), 2)  # head


def people(rng: random.Random) -> None:
    """People-sized figures at 2-25 m, on a plaza, sometimes in front of buildings."""
    ground(rng, material(rng, "plaza"))
    if rng.random() < 0.6:
        for index in range(rng.randint(2, 6)):
            h = rng.uniform(4, 20)
            box((rng.uniform(-30, 30), rng.uniform(25, 45), h / 2), (rng.uniform(6, 15), rng.uniform(6, 12), h),
                material(rng, f"building{index}", 0.6))
    for index in range(rng.randint(3, 14)):
        person(rng, rng.uniform(-8, 8), rng.uniform(2, 25), 0.0, rng.uniform(0.85, 1.1),
               material(rng, f"clothes{index}", 0.4))
    world(rng)
    lamp(rng, (0, 0, 30), "SUN")
    eye = (rng.uniform(-2, 2), rng.uniform(-3, 0), rng.uniform(1.0, 2.5))
    camera(rng, eye, (rng.uniform(-3, 3), rng.uniform(5, 15), rng.uniform(0.5, 1.5)))


def forest(rng: random.Random) -> None:
    """Trees (trunks and cone or ball crowns) on gently rolling ground; sky."""
    land = ground(rng, material(rng, "ground", 0.6), size=160, hills=rng.uniform(0.5, 2.5), detail=60)
    bark, leaves = material(rng, "bark", 0.4), material(rng, "leaves", 0.6)
    for _ in range(rng.randint(10, 35)):
        x, y = rng.uniform(-25, 25), rng.uniform(3, 60)
        z = terrain_height(land, x, y)
        h, r = rng.uniform(3, 12), rng.uniform(0.1, 0.4)
        cylinder((x, y, z + h / 2), r, h, bark, vertices=10)
        if rng.random() < 0.6:
            bpy.ops.mesh.primitive_cone_add(vertices=12, radius1=rng.uniform(1, 3), depth=h * 0.7,
                                            location=(x, y, z + h * 0.65))
            _finish(bpy.context.active_object, leaves)
        else:
            sphere((x, y, z + h), rng.uniform(1, 3), leaves, (1.0, 1.0, rng.uniform(0.7, 1.3)), 2)
    world(rng, (0.7, 1.8))
    lamp(rng, (0, 0, 30), "SUN")
    x, y = rng.uniform(-3, 3), rng.uniform(-5, 0)
    eye = (x, y, terrain_height(land, x, y) + rng.uniform(1.2, 4.0))
    camera(rng, eye, (rng.uniform(-8, 8), rng.uniform(15, 40), eye[2] - rng.uniform(0, 3)))


def aerial(rng: random.Random) -> None:
    """A grid of blocks of many heights seen from 10-60 m, looking down steeply."""
    ground(rng, material(rng, "ground"))
    pitch = rng.uniform(8, 20)
    for i in range(-5, 6):
        for j in range(-5, 6):
            if rng.random() < 0.25:
                continue
            w, d, h = rng.uniform(3, pitch - 3), rng.uniform(3, pitch - 3), rng.uniform(2, 35) ** rng.uniform(0.8, 1.0)
            box((i * pitch, j * pitch, h / 2), (w, d, h), material(rng, f"block{i}{j}", 0.5), rng.uniform(-0.1, 0.1))
    world(rng)
    lamp(rng, (0, 0, 60), "SUN")
    eye = (rng.uniform(-10, 10), rng.uniform(-40, -10), rng.uniform(25, 70))
    camera(rng, eye, (rng.uniform(-10, 10), rng.uniform(-10, 20), 0.0))


def warehouse(rng: random.Random) -> None:
    """A large hall: rows of shelving racks with crates, pallets on the floor, a roof and
    hanging lamps; seen from eye level along an aisle or across the hall. Deep closed interiors
    (15-60 m) that the small rooms lack."""
    length, width, height = rng.uniform(15, 60), rng.uniform(12, 30), rng.uniform(5, 11)
    ground(rng, material(rng, "floor", 0.3), size=160)
    walls = material(rng, "walls")
    for centre, size in (((0, length, height / 2), (width, 0.2, height)),
                         ((0, -2, height / 2), (width, 0.2, height)),
                         ((-width / 2, length / 2 - 1, height / 2), (0.2, length + 2, height)),
                         ((width / 2, length / 2 - 1, height / 2), (0.2, length + 2, height))):
        box(centre, size, walls if rng.random() < 0.75 else material(rng, "wall"))
    box((0, length / 2 - 1, height + 0.1), (width, length + 2, 0.2), material(rng, "roof", 0.2))
    rack, crate = material(rng, "rack", 0.2), material(rng, "crate", 0.5)
    rack_height, rack_depth = rng.uniform(2.5, min(7.0, height - 0.5)), rng.uniform(0.8, 1.4)
    aisle = rng.uniform(2.5, 5.0)
    x = -width / 2 + 0.8
    while x < width / 2 - 0.8:  # rows of racks along the hall, with gaps across
        y = rng.uniform(1.0, 4.0)
        while y < length - 2:
            run = rng.uniform(6, 20)
            end = min(y + run, length - 1)
            levels = rng.randint(3, 6)
            for level in range(levels + 1):
                z = level * rack_height / levels
                box((x, (y + end) / 2, z + 0.04), (rack_depth, end - y, 0.08), rack)
            for post in range(int((end - y) / 2.5) + 1):
                box((x, y + post * 2.5, rack_height / 2), (rack_depth, 0.1, rack_height), rack)
            for _ in range(rng.randint(3, 12)):  # goods on the shelves
                level = rng.randint(0, levels - 1)
                size = rng.uniform(0.3, min(1.0, rack_height / levels - 0.1))
                box((x + rng.uniform(-0.1, 0.1), rng.uniform(y + 0.5, end - 0.5),
                     level * rack_height / levels + 0.08 + size / 2), (rack_depth * 0.8, size * 1.3, size),
                    crate if rng.random() < 0.6 else material(rng, "goods", 0.4))
            y = end + rng.uniform(2.0, 5.0)
        x += rack_depth + aisle
    for index in range(rng.randint(0, 8)):  # pallets and crates left in the aisles
        size = rng.uniform(0.4, 1.4)
        box((rng.uniform(-width / 2 + 1, width / 2 - 1), rng.uniform(2, length - 3), size / 2), (size, size, size),
            crate if rng.random() < 0.5 else material(rng, f"pallet{index}", 0.4), rng.uniform(0, math.tau))
    world(rng, (0.2, 0.8))
    for k in range(rng.randint(3, 6)):
        lamp(rng, (rng.uniform(-width / 3, width / 3), length * (k + 0.5) / 6, height - 0.5), "POINT", 0.8)
    if rng.random() < 0.5:  # skylights: the sun through the roof
        lamp(rng, (0, 0, 40), "SUN")
    eye = (rng.uniform(-width / 2 + 1, width / 2 - 1), rng.uniform(-1.5, 1.0), rng.uniform(1.2, 2.2))
    target = (eye[0] + rng.uniform(-width / 3, width / 3), length, rng.uniform(0.3, height * 0.6))
    camera(rng, eye, target, (18.0, 50.0))


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def scatter(rng: random.Random) -> None:
    """Domain randomisation: boxes, slabs, primitives and rocks of 0.1-8 m at 0.5-60 m, some
    floating and tilted, on a floor or not, often inside an enclosure of random proportions
    (2-30 m wide, 3-50 m deep, with or without a ceiling). No layout to learn, only the
    cues that hold in any scene: occlusion, perspective, texture gradients, shading."""
    floor = rng.random() < 0.85
    if floor:
        ground(rng, material(rng, "floor"), size=200)
    enclosed = floor and rng.random() < 0.45
    width, depth, height = rng.uniform(2, 30), _log_uniform(rng, 3, 50), rng.uniform(2.2, 12)
    if enclosed:
        walls = material(rng, "walls")
        for centre, size in (((0, depth, height / 2), (width, 0.2, height)),
                             ((0, -3, height / 2), (width, 0.2, height)),
                             ((-width / 2, depth / 2 - 1.5, height / 2), (0.2, depth + 3, height)),
                             ((width / 2, depth / 2 - 1.5, height / 2), (0.2, depth + 3, height))):
            box(centre, size, walls if rng.random() < 0.6 else material(rng, "wall"))
        if rng.random() < 0.7:
            box((0, depth / 2 - 1.5, height + 0.1), (width, depth + 3, 0.2), material(rng, "ceiling", 0.2))
    reach = depth if enclosed else 60.0
    spread = width / 2 if enclosed else 25.0
    heading = rng.uniform(-0.3, 0.3)  # the camera looks roughly this way; most things are in view
    for index in range(rng.randint(15, 50)):
        distance = _log_uniform(rng, 0.6, max(1.0, reach - 0.5))
        size = min(_log_uniform(rng, 0.1, 8.0), distance * 0.8)
        x = max(-spread, min(spread, distance * (heading + rng.uniform(-0.6, 0.6))))
        z = 0.0 if rng.random() < 0.7 or not floor else rng.uniform(0.2, 4.0) * size
        if enclosed:  # below the lamps under the ceiling: a lamp inside a box lights nothing
            size = min(size, (height - 0.5) / 2)
            z = max(0.0, min(z, height - 0.5 - 2 * size))
        mat = material(rng, f"thing{index}", 0.4)
        kind = rng.choice(("box", "slab", "primitive", "rock", "cylinder"))
        if kind == "box":
            box((x, distance, z + size / 2), (size * rng.uniform(0.3, 2), size * rng.uniform(0.3, 2), size), mat,
                rng.uniform(0, math.tau))
        elif kind == "slab":  # a board, panel or low wall, sometimes leaning
            obj = box((x, distance, z + size / 2), (size * rng.uniform(0.8, 3), size * 0.06, size), mat,
                      rng.uniform(-1.2, 1.2))
            obj.rotation_euler.x = rng.choice((0.0, rng.uniform(-0.6, 0.6)))
        elif kind == "primitive":
            primitive(rng, (x, distance, z), size / 2, mat)
        elif kind == "rock":
            rock(rng, (x, distance, z + size * 0.2), size / 2, mat, index)
        else:
            cylinder((x, distance, z + size), size * rng.uniform(0.05, 0.4), size * 2, mat,
                     (rng.choice((0.0, rng.uniform(-0.5, 0.5))), 0.0, 0.0))
    world(rng, (0.3, 1.6) if enclosed else (0.6, 1.8))
    if enclosed:  # lamps inside the enclosure: the sky lights little of a closed box
        for k in range(1 + int(depth / 12)):
            lamp(rng, (rng.uniform(-width / 3, width / 3), depth * (k + 0.5) / (1 + int(depth / 12)), height - 0.2),
                 rng.choice(("POINT", "AREA")), 0.8)
    else:
        lamp(rng, (rng.uniform(-3, 3), rng.uniform(-2, 4), 30.0))
    if not enclosed or rng.random() < 0.3:
        lamp(rng, (0, 0, 40), "SUN")
    eye_z = _log_uniform(rng, 0.3, min(height - 0.3, 20.0) if enclosed else 20.0)
    eye = (rng.uniform(-spread / 3, spread / 3), rng.uniform(-2, 0), eye_z)
    ahead = _log_uniform(rng, 2, reach)
    target = (eye[0] + ahead * (heading + rng.uniform(-0.15, 0.15)), ahead, rng.uniform(0, min(eye_z, 4)))
    camera(rng, eye, target, roll=8.0)


def shelves(rng: random.Random) -> None:
    """Close-ups of a wall of shelving, bookcases and a kitchen counter with cabinets, seen
    from 0.5-4 m: rows of books, jars and boxes at many small depths, a floor, a side wall."""
    ground(rng, material(rng, "floor"), size=40)
    box((0, 0.1, 1.6), (14, 0.2, 3.2), material(rng, "wall"))
    if rng.random() < 0.5:
        box((rng.choice((-1, 1)) * rng.uniform(1.5, 4), -3, 1.6), (0.2, 6.2, 3.2), material(rng, "side wall"))
    x = rng.uniform(-4, -2.5)
    unit = 0
    while x < 4:
        w, d = rng.uniform(0.6, 2.0), rng.uniform(0.25, 0.6)
        frame, cx = material(rng, f"unit{unit}", 0.3), x + w / 2
        if rng.random() < 0.35:  # a counter: cabinets below, a worktop, things on it
            h = rng.uniform(0.85, 0.95)
            box((cx, -d / 2, h / 2 - 0.02), (w, d, h - 0.04), frame)
            box((cx, -d / 2 - 0.02, h - 0.02), (w + 0.02, d + 0.05, 0.04), material(rng, "worktop", 0.5))
            for k in range(rng.randint(0, 5)):
                size = rng.uniform(0.05, 0.3)
                primitive(rng, (rng.uniform(x + 0.1, x + w - 0.1), -rng.uniform(0.1, d - 0.05), h), size / 2,
                          material(rng, f"item{unit}{k}", 0.3))
            if rng.random() < 0.6:  # wall cupboards
                box((cx, -0.18, rng.uniform(1.5, 1.7) + 0.35), (w, 0.35, 0.7), frame)
        else:  # a bookcase: planks, sides, books
            h = rng.uniform(1.0, 2.4)
            levels = rng.randint(2, 6)
            for side in (x, x + w):
                box((side, -d / 2, h / 2), (0.03, d, h), frame)
            for level in range(levels + 1):
                box((cx, -d / 2, level * h / levels + 0.015), (w, d, 0.03), frame)
            for level in range(levels):
                base, room_h = level * h / levels + 0.03, h / levels - 0.06
                bx = x + 0.03
                while bx < x + w - 0.05:
                    thick = rng.uniform(0.015, 0.07)
                    if rng.random() < 0.15:  # a gap or a jar
                        if rng.random() < 0.5:
                            r = min(rng.uniform(0.03, 0.08), room_h / 2)
                            cylinder((bx + r, -d / 2, base + room_h * 0.35), r, room_h * 0.7,
                                     material(rng, "jar", 0.2))
                            bx += 2 * r + 0.02
                        else:
                            bx += rng.uniform(0.05, 0.3)
                        continue
                    bh = room_h * rng.uniform(0.55, 0.97)
                    depth = d * rng.uniform(0.6, 0.95)
                    box((bx + thick / 2, -depth / 2 - rng.uniform(0, d - depth), base + bh / 2), (thick, depth, bh),
                        material(rng, "book", 0.3) if rng.random() < 0.25 else frame if rng.random() < 0.1
                        else procedural_material(rng, "book"))
                    bx += thick + 0.002
        x += w + rng.uniform(0.0, 0.8)
        unit += 1
    world(rng, (0.3, 1.0))
    lamp(rng, (rng.uniform(-2, 2), -rng.uniform(1, 3), rng.uniform(2.2, 3)), rng.choice(("POINT", "AREA")), 0.4)
    distance = _log_uniform(rng, 0.5, 4.0)
    yaw = math.radians(rng.uniform(-50, 50))
    target = (rng.uniform(-1.5, 1.5), -0.2, rng.uniform(0.3, 1.8))
    eye = (target[0] + distance * math.sin(yaw), -distance * math.cos(yaw) - 0.2,
           max(0.3, target[2] + rng.uniform(-0.6, 0.8)))
    camera(rng, eye, target, (18.0, 60.0))


def stairs(rng: random.Random) -> None:
    """Flights of steps with landings, side walls or railings and a facade or retaining wall
    behind; seen from below looking up or from above looking down, outdoors or in."""
    ground(rng, material(rng, "ground"), size=120)
    step_h, step_d = rng.uniform(0.12, 0.2), rng.uniform(0.25, 0.45)
    width = rng.uniform(1.2, 8)
    steps_mat, wall_mat = material(rng, "steps", 0.4), material(rng, "walls", 0.5)
    y, z, flights = 0.0, 0.0, rng.randint(1, 3)
    for _ in range(flights):
        count = rng.randint(5, 18)
        for k in range(count):  # each step a block from the ground up: no gaps underneath
            top = z + (k + 1) * step_h
            box((0, y + (k + 0.5) * step_d, top / 2), (width, step_d, top), steps_mat)
        y, z = y + count * step_d, z + count * step_h
        landing = rng.uniform(1.0, 4.0)
        box((0, y + landing / 2, z / 2), (width, landing, z), steps_mat)
        y += landing
    sides = rng.choice(("walls", "railings", "open"))
    if sides == "walls":
        for side in (-1, 1):
            h = z + rng.uniform(1, 4)
            box((side * (width / 2 + 0.15), y / 2, h / 2), (0.3, y, h), wall_mat)
    elif sides == "railings":
        rail = material(rng, "rail", 0.1)
        for side in (-1, 1):
            for k in range(int(y / 1.2) + 1):
                top = min(z, z * (k * 1.2) / max(y, 1e-3) * 1.3)
                cylinder((side * (width / 2 - 0.05), k * 1.2, top + 0.45), 0.02, 0.9, rail, vertices=8)
    h = z + rng.uniform(3, 20)
    box((0, y + 0.5, h / 2), (max(20.0, width * 3), 1.0, h), material(rng, "facade", 0.6))
    for index in range(rng.randint(0, 6)):
        size = rng.uniform(0.3, 1.2)
        primitive(rng, (rng.uniform(-width, width), rng.uniform(-6, -0.5), 0.0), size / 2,
                  material(rng, f"thing{index}", 0.4))
    world(rng, (0.6, 1.8))
    lamp(rng, (0, 0, 40), "SUN")
    if rng.random() < 0.5:  # from the foot of the stairs, looking up
        eye = (rng.uniform(-width / 3, width / 3), -rng.uniform(1, 8), rng.uniform(1.2, 1.9))
        target = (rng.uniform(-width / 2, width / 2), rng.uniform(y * 0.3, y), rng.uniform(z * 0.5, z + 2))
    else:  # from the top, looking down
        eye = (rng.uniform(-width / 3, width / 3), y - rng.uniform(0.3, 1.5), z + rng.uniform(1.3, 1.9))
        target = (rng.uniform(-width, width), rng.uniform(-8, y * 0.5), 0.0)
    camera(rng, eye, target, (18.0, 60.0))


def facade(rng: random.Random) -> None:
    """A building front close up: recessed windows and doors in rows, pilasters, a plinth,
    balconies; a neighbouring block at an angle; seen from 2-30 m, often obliquely."""
    ground(rng, material(rng, "pavement", 0.4), size=200)
    width, height = rng.uniform(10, 40), rng.uniform(6, 30)
    wall, trim = material(rng, "wall", 0.6), material(rng, "trim", 0.3)
    glass = material(rng, "glass", 0.1)
    recess = rng.uniform(0.1, 0.5)
    box((0, recess + 1.0, height / 2), (width, 2.0, height), glass)  # behind every window opening
    floors, bays = max(1, int(height / rng.uniform(2.8, 4.0))), max(2, int(width / rng.uniform(2.0, 4.5)))
    storey, bay = height / floors, width / bays
    win_w, win_h = bay * rng.uniform(0.35, 0.7), storey * rng.uniform(0.4, 0.7)
    for f in range(floors):  # the wall as solid strips between and around the openings
        z0 = f * storey
        sill = z0 + (storey - win_h) * 0.55
        box((0, recess / 2, (z0 + sill) / 2), (width, recess, sill - z0), wall)
        box((0, recess / 2, (sill + win_h + z0 + storey) / 2), (width, recess, z0 + storey - sill - win_h), wall)
        for b in range(bays + 1):
            x = -width / 2 + b * bay
            box((x, recess / 2, sill + win_h / 2), (bay - win_w, recess, win_h), wall)
        if f > 0 and rng.random() < 0.3:
            for b in range(bays):
                if rng.random() < 0.5:
                    x = -width / 2 + (b + 0.5) * bay
                    box((x, -0.5, z0 + 0.1), (win_w * 1.4, 1.0, 0.2), trim)
    box((0, -0.05, 0.4), (width + 0.2, 0.3, 0.8), trim)  # plinth
    if rng.random() < 0.6:  # a neighbour at an angle
        side = rng.choice((-1, 1))
        h = rng.uniform(5, 30)
        box((side * (width / 2 + 6), -8, h / 2), (12, 14, h), material(rng, "neighbour", 0.6),
            side * rng.uniform(0, 0.5))
    for index in range(rng.randint(0, 5)):  # bins, bollards, a car
        size = rng.uniform(0.4, 1.5)
        box((rng.uniform(-width / 2, width / 2), -rng.uniform(1, 8), size / 2), (size, size * 0.8, size),
            material(rng, f"thing{index}", 0.3), rng.uniform(0, math.tau))
    world(rng, (0.6, 1.8))
    lamp(rng, (0, -20, 40), "SUN")
    distance = _log_uniform(rng, 2.0, 30.0)
    yaw = math.radians(rng.uniform(-60, 60))
    target = (rng.uniform(-width / 3, width / 3), 0.0, rng.uniform(1, height * 0.7))
    eye = (target[0] - distance * math.sin(yaw), -distance * math.cos(yaw), rng.uniform(1.2, 1.9))
    camera(rng, eye, target)


def corridor(rng: random.Random) -> None:
    """(Held out) A long corridor with pillars along the walls, a ceiling and lamps."""
    width, height, length = rng.uniform(2, 5), rng.uniform(2.5, 4.5), rng.uniform(20, 45)
    ground(rng, material(rng, "floor"), size=120)
    walls = material(rng, "walls")
    for side in (-1, 1):
        box((side * width / 2, length / 2, height / 2), (0.2, length, height), walls)
    box((0, length / 2, height + 0.1), (width + 0.4, length, 0.2), material(rng, "ceiling", 0.2))
    box((0, length + 0.1, height / 2), (width, 0.2, height), material(rng, "end"))
    gap = rng.uniform(2, 5)
    pillar = material(rng, "pillars", 0.3)
    for k in range(int(length / gap)):
        for side in (-1, 1):
            if rng.random() < 0.85:
                box((side * (width / 2 - 0.25), 1 + k * gap, height / 2), (0.4, 0.4, height), pillar)
    for k in range(rng.randint(0, 5)):
        primitive(rng, (rng.uniform(-width / 3, width / 3), rng.uniform(3, length - 2), 0.0), rng.uniform(0.2, 0.5),
                  material(rng, f"thing{k}", 0.3))
    world(rng)
    for k in range(4):
        lamp(rng, (0, 2 + k * length / 4, height - 0.3), "POINT", 0.4)
    eye = (rng.uniform(-width / 4, width / 4), rng.uniform(-1, 0.5), rng.uniform(1.2, min(2.0, height - 0.3)))
    camera(rng, eye, (rng.uniform(-width / 2, width / 2), length, rng.uniform(0.5, height - 0.5)), (18.0, 50.0))


def terrain(rng: random.Random) -> None:
    """(Held out) Rocks of many sizes on hilly displaced terrain; sky."""
    land = ground(rng, material(rng, "ground", 0.6), size=200, hills=rng.uniform(2, 10), detail=80)
    stone = material(rng, "stone", 0.5)
    for index in range(rng.randint(5, 25)):
        x, y = rng.uniform(-15, 15), rng.uniform(2, 40)
        size = rng.uniform(0.2, 2.5)
        rock(rng, (x, y, terrain_height(land, x, y) + size * 0.2), size,
             stone if rng.random() < 0.6 else material(rng, f"stone{index}", 0.5), index)
    world(rng, (0.7, 1.8))
    lamp(rng, (0, 0, 30), "SUN")
    x, y = rng.uniform(-3, 3), rng.uniform(-5, 0)
    eye = (x, y, terrain_height(land, x, y) + rng.uniform(1.2, 15.0))
    camera(rng, eye, (rng.uniform(-6, 6), rng.uniform(10, 40), terrain_height(land, 0, 20)))


def tabletop(rng: random.Random) -> None:
    """(Held out) A still life on a table, seen close up, in a room behind."""
    ground(rng, material(rng, "floor"), size=40)
    box((0, rng.uniform(2, 4), 1.5), (12, 0.1, 3), material(rng, "wall"))
    tw, td, th = rng.uniform(1.0, 2.0), rng.uniform(0.7, 1.2), rng.uniform(0.7, 0.8)
    top = material(rng, "table")
    box((0, 0, th - 0.02), (tw, td, 0.04), top)
    for sx in (-1, 1):
        for sy in (-1, 1):
            box((sx * (tw / 2 - 0.05), sy * (td / 2 - 0.05), th / 2), (0.05, 0.05, th), top)
    for index in range(rng.randint(3, 9)):
        mat = material(rng, f"item{index}", 0.35)
        x, y = rng.uniform(-tw / 2 + 0.1, tw / 2 - 0.1), rng.uniform(-td / 2 + 0.1, td / 2 - 0.1)
        if rng.random() < 0.3:  # a cup or bottle
            h = rng.uniform(0.08, 0.3)
            cylinder((x, y, th + h / 2), rng.uniform(0.03, 0.06), h, mat)
        else:
            primitive(rng, (x, y, th), rng.uniform(0.03, 0.12), mat)
    # Dimmer than the other families: the table is about a metre from the lamp and fills the frame.
    world(rng, (0.3, 0.8))
    lamp(rng, (rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(1.5, 2.5)), rng.choice(("POINT", "AREA")), 0.1)
    distance = rng.uniform(0.4, 1.4)
    angle = math.radians(rng.uniform(15, 55))
    eye = (rng.uniform(-0.3, 0.3), -distance * math.cos(angle), th + distance * math.sin(angle))
    camera(rng, eye, (rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), th), (28.0, 85.0))


BUILDERS: dict[str, Callable[[random.Random], None]] = {
    "room": room, "street": street, "clutter": clutter, "thin": thin, "people": people, "forest": forest,
    "aerial": aerial, "warehouse": warehouse, "scatter": scatter, "shelves": shelves, "stairs": stairs,
    "facade": facade, "corridor": corridor, "terrain": terrain, "tabletop": tabletop,
}


def build(family: str, seed: int) -> None:
    """Build (family, seed)'s scene in a fresh empty file; render settings are the caller's."""
    rng = random.Random(f"{family}-{seed}")  # str seeds hash with SHA-512: stable across runs
    bpy.ops.wm.read_homefile(use_empty=True)
    BUILDERS[family](rng)
