"""Red team: Stylize Textures on real projects (name collisions, full disks, linked libraries,
node groups, UDIM tokens, data deleted mid-job, stuck state).

Every case asserts what a careful artist expects: a clear message, no traceback out of
the operator, and on failure the scene, the original datablocks and the files on disk
exactly as before. Scenes are built here with ``use_nodes = True`` so that they work on
Blender 4.2, 4.5 and 5.0 alike.
"""

from __future__ import annotations

import errno
import hashlib
import resource
import signal
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace

import bpy
import numpy as np
import pytest

from tests.blender.scenes import select, write_image
from tests.blender.support import ADDON_MODULE
from tests.ml.synthetic import photo_like


def _module(name: str):
    return __import__(f"{ADDON_MODULE}.{name}", fromlist=["_"])


# -- builders -------------------------------------------------------------------------------
def node_material(name: str) -> bpy.types.Material:
    material = bpy.data.materials.new(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 5.0: always true, still needed on 4.x
        material.use_nodes = True
    return material


def bsdf_of(material: bpy.types.Material) -> bpy.types.Node:
    return next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")


def texture(tree: bpy.types.NodeTree, image: bpy.types.Image, to: bpy.types.NodeSocket) -> bpy.types.Node:
    node = tree.nodes.new("ShaderNodeTexImage")
    node.image = image
    tree.links.new(node.outputs["Color"], to)
    return node


def file_image(folder: Path, file_name: str, seed: int, size: int = 32, name: str | None = None) -> bpy.types.Image:
    folder.mkdir(parents=True, exist_ok=True)
    image = bpy.data.images.load(str(write_image(folder / file_name, photo_like(size, size, seed=seed))))
    if name is not None:
        image.name = name
    return image


def textured(name: str, image: bpy.types.Image, socket: str = "Base Color") -> bpy.types.Material:
    material = node_material(name)
    texture(material.node_tree, image, bsdf_of(material).inputs[socket])
    return material


def cube(name: str, material: bpy.types.Material | None, x: float = 0.0) -> bpy.types.Object:
    mesh = bpy.data.meshes.new(name + "Mesh")
    mesh.from_pydata([(x, 0, 0), (x + 1, 0, 0), (x, 1, 0)], [], [(0, 1, 2)])
    mesh.uv_layers.new()
    if material is not None:
        mesh.materials.append(material)
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def color_group(name: str, image: bpy.types.Image) -> bpy.types.NodeTree:
    """A node group whose output colour is an image texture inside it."""
    group = bpy.data.node_groups.new(name, "ShaderNodeTree")
    group.interface.new_socket("Color", in_out="OUTPUT", socket_type="NodeSocketColor")
    out = group.nodes.new("NodeGroupOutput")
    node = group.nodes.new("ShaderNodeTexImage")
    node.image = image
    group.links.new(node.outputs["Color"], out.inputs[0])
    return group


def group_material(name: str, group: bpy.types.NodeTree, socket: str = "Base Color") -> bpy.types.Material:
    material = node_material(name)
    node = material.node_tree.nodes.new("ShaderNodeGroup")
    node.node_tree = group
    material.node_tree.links.new(node.outputs[0], bsdf_of(material).inputs[socket])
    return material


def save_blend(path: Path) -> None:
    bpy.ops.wm.save_as_mainfile(filepath=str(path))


def make_library(path: Path, folder: Path) -> None:
    """A library .blend holding a mesh (with a textured material "Wood" using image "Wood")
    and an object "LibCube" using that mesh; nothing of it stays in the current file."""
    image = file_image(folder, "lib_wood.png", seed=21, name="Wood")
    material = textured("Wood", image)
    obj = cube("LibCube", material)
    bpy.data.libraries.write(str(path), {obj, obj.data, material, image})
    mesh = obj.data
    bpy.data.objects.remove(obj)
    bpy.data.meshes.remove(mesh)
    bpy.data.materials.remove(material)
    bpy.data.images.remove(image)


def link_from(path: Path, **kinds: list[str]) -> None:
    with bpy.data.libraries.load(str(path), link=True) as (_, into):
        for kind, names in kinds.items():
            setattr(into, kind, names)


# -- what must not change ---------------------------------------------------------------------
def _key(block: bpy.types.ID | None) -> tuple[str, str] | None:
    if block is None:
        return None
    return (block.name, block.library.filepath if block.library else "")


def _tree(tree: bpy.types.NodeTree | None) -> object:
    if tree is None:
        return None
    nodes = sorted((n.name, n.bl_idname, _key(getattr(n, "image", None)), _key(getattr(n, "node_tree", None)))
                   for n in tree.nodes)
    links = sorted((lk.from_node.name, lk.from_socket.identifier, lk.to_node.name, lk.to_socket.identifier)
                   for lk in tree.links)
    return nodes, links


def _pixels_digest(image: bpy.types.Image) -> str | None:
    if image.source not in ("FILE", "GENERATED"):
        return None
    count = len(image.pixels)  # Blender loads pixels lazily
    if not image.has_data or count == 0:
        return None
    flat = np.empty(count, np.float32)
    image.pixels.foreach_get(flat)
    return hashlib.sha256(flat.tobytes()).hexdigest()


def files_in(*folders: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<dir>"
    return found


def snapshot(*folders: Path) -> dict[str, object]:
    """Datablocks, node trees, slots, pixels and files: everything a failed job must leave alone."""
    return {
        "materials": {_key(m): _tree(m.node_tree) for m in bpy.data.materials},
        "groups": {_key(g): _tree(g) for g in bpy.data.node_groups},
        "images": {_key(i): (i.filepath, _pixels_digest(i)) for i in bpy.data.images},
        "objects": {_key(o): [(s.link, _key(s.material)) for s in o.material_slots] for o in bpy.data.objects},
        "meshes": {_key(m): [_key(x) for x in m.materials] for m in bpy.data.meshes},
        "files": files_in(*folders),
    }


def stylize(style: str = "toon", **settings: object) -> tuple[set[str] | None, str]:
    """Run the operator as a click would; returns (result, error text) without raising.

    In background mode an ERROR report reaches Python as a RuntimeError; an exception
    escaping the operator does too, with 'Traceback' in its text."""
    scene = bpy.context.scene
    scene.restyle.style = style
    for key, value in settings.items():
        setattr(scene.restyle, key, value)
    try:
        return bpy.ops.restyle.stylize_textures(), ""
    except RuntimeError as exc:
        text = str(exc)
        assert "Traceback" not in text, text
        return None, text


def slot_image(obj: bpy.types.Object, index: int = 0) -> bpy.types.Image:
    """The (first, possibly group-nested) image the slot's material shows."""
    def images_of(tree: bpy.types.NodeTree) -> list[bpy.types.Image]:
        found = []
        for node in tree.nodes:
            if node.type == "TEX_IMAGE" and node.image is not None:
                found.append(node.image)
            elif node.type == "GROUP" and node.node_tree is not None:
                found += images_of(node.node_tree)
        return found
    return images_of(obj.material_slots[index].material.node_tree)[0]


def digest_of_file(path: str) -> str:
    image = bpy.data.images.load(bpy.path.abspath(path), check_existing=False)
    try:
        return _pixels_digest(image) or ""
    finally:
        bpy.data.images.remove(image)


@pytest.fixture
def lab(empty_scene, tmp_path):
    status = _module("operators.state").CURRENT
    status.running = False
    yield tmp_path
    status.running = False  # one failing case must not grey out the next one's button


# -- 1-4: outputs that overwrite each other or the artist's files ---------------------------------
def test_names_that_sanitise_alike_get_their_own_files(lab):
    a = file_image(lab / "tex", "a.png", seed=1, name="Brick Wall")
    b = file_image(lab / "tex", "b.png", seed=2, name="Brick_Wall")
    one, two = cube("One", textured("M1", a)), cube("Two", textured("M2", b), 3)
    select([one, two])
    save_blend(lab / "shot.blend")
    assert stylize("toon")[0] == {"FINISHED"}
    shown = {name: _pixels_digest(slot_image(bpy.data.objects[name])) for name in ("One", "Two")}
    paths = {bpy.path.abspath(slot_image(bpy.data.objects[n]).filepath) for n in ("One", "Two")}
    assert len(paths) == 2 and all(Path(p).exists() for p in paths)
    bpy.ops.wm.save_mainfile()
    bpy.ops.wm.open_mainfile(filepath=str(lab / "shot.blend"))
    for name in ("One", "Two"):  # after reopening each object shows its own result
        assert _pixels_digest(slot_image(bpy.data.objects[name])) == shown[name]


def test_two_blend_files_in_one_folder_keep_their_own_results(lab):
    results = {}
    for shot, seed in (("shotA", 3), ("shotB", 4)):
        bpy.ops.wm.read_homefile(use_empty=True)
        image = file_image(lab / "tex", f"{shot}.png", seed=seed, name="Wood")
        obj = cube("Prop", textured("Wood", image))
        select([obj])
        save_blend(lab / f"{shot}.blend")
        assert stylize("oil")[0] == {"FINISHED"}
        results[shot] = _pixels_digest(slot_image(obj))
        bpy.ops.wm.save_mainfile()
    bpy.ops.wm.open_mainfile(filepath=str(lab / "shotA.blend"))
    assert digest_of_file(slot_image(bpy.data.objects["Prop"]).filepath) == results["shotA"]


@pytest.mark.parametrize("which", ["old-scheme name", "own earlier name, reverted"])
def test_a_file_already_at_the_output_path_is_never_overwritten(lab, which):
    image = file_image(lab / "tex", "photo.png", seed=5)
    obj = cube("Prop", textured("Wood", image))
    select([obj])
    save_blend(lab / "shot.blend")
    restyled = lab / "restyled"
    if which == "old-scheme name":
        restyled.mkdir()
        foreign = restyled / "photo.png.toon.png"
    else:  # a result the user reverted: the file is no longer ours to replace
        assert stylize("toon")[0] == {"FINISHED"}
        foreign = Path(bpy.path.abspath(slot_image(obj).filepath))
        assert bpy.ops.restyle.revert_materials() == {"FINISHED"}
    foreign.write_bytes(b"the artist's own file")
    assert stylize("toon")[0] == {"FINISHED"}
    assert foreign.read_bytes() == b"the artist's own file"
    written = Path(bpy.path.abspath(slot_image(obj).filepath))
    assert written != foreign and written.exists()


def test_running_again_never_rewrites_the_file_an_earlier_result_uses(lab):
    image = file_image(lab / "tex", "photo.png", seed=6)
    keep, redo = cube("Keep", textured("Wood", image)), cube("Redo", None, 3)
    redo.data.materials.append(bpy.data.materials["Wood"])
    select([keep, redo])
    save_blend(lab / "shot.blend")
    assert stylize("toon")[0] == {"FINISHED"}
    first = bpy.path.abspath(slot_image(keep).filepath)
    before = Path(first).read_bytes()
    select([redo])  # Keep still shows the first result; Redo is restyled again, stronger
    assert stylize("toon", strength=0.3)[0] == {"FINISHED"}
    assert Path(first).read_bytes() == before
    assert bpy.path.abspath(slot_image(redo).filepath) != first


# -- 5-8: failed writes are failures, and take back what they wrote ----------------------------------
def _with_file_size_limit(monkeypatch, limit: int) -> None:
    """While the results are written, files may not grow past ``limit`` bytes: a full disk.
    Blender then writes a truncated (or empty) PNG and raises nothing."""
    run_class = _module("jobs.textures").TexturesJob
    original = run_class.finish

    def limited(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            return original(self)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, handler)

    monkeypatch.setattr(run_class, "finish", limited)


def _two_textures(lab: Path) -> bpy.types.Object:
    """A tiny texture first (its file fits in 2000 bytes), a big one second (it does not)."""
    material = textured("Wood", file_image(lab / "tex", "a.png", seed=7, size=4))
    big = file_image(lab / "tex", "b.png", seed=8, size=128)
    texture(material.node_tree, big, bsdf_of(material).inputs["Emission Color"])
    obj = cube("Prop", material)
    select([obj])
    return obj


@pytest.mark.parametrize("room", [0, 2000], ids=["first-save-fails", "second-save-fails"])
def test_full_disk_is_an_error_and_leaves_no_file(lab, monkeypatch, room):
    _two_textures(lab)
    save_blend(lab / "shot.blend")
    before = snapshot(lab)
    _with_file_size_limit(monkeypatch, room)
    result, message = stylize("toon")
    assert result is None
    assert "could not write" in message and "disk full" in message and "nothing was changed" in message
    assert snapshot(lab) == before  # the first file of a failed run is gone too, and //restyled/ with it


def test_full_disk_while_writing_udim_tiles(lab, monkeypatch):
    folder = lab / "tex"
    for number, seed in ((1001, 9), (1002, 10)):
        write_image(folder / f"t.{number}.png", photo_like(32, 32, seed=seed))
    udim = bpy.data.images.load(str(folder / "t.1001.png"))
    udim.source = "TILED"
    udim.filepath = str(folder / "t.<UDIM>.png")
    udim.tiles.new(tile_number=1002)
    udim.reload()
    select([cube("Prop", textured("Tiles", udim))])
    save_blend(lab / "shot.blend")
    before = snapshot(lab)
    _with_file_size_limit(monkeypatch, 0)
    result, message = stylize("pixel")
    assert result is None and "could not write" in message
    assert snapshot(lab) == before


def test_full_temporary_folder_is_a_clear_error(lab, monkeypatch):
    select([cube("Prop", textured("Wood", file_image(lab / "tex", "a.png", seed=11)))])
    before = snapshot(lab)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "mkdtemp", no_space)
    result, message = stylize("toon")
    assert result is None
    assert "temporary folder" in message and "No space left on device" in message
    assert snapshot(lab) == before


def test_output_folder_that_cannot_be_created_is_a_clear_error(lab):
    select([cube("Prop", textured("Wood", file_image(lab / "tex", "a.png", seed=12)))])
    blocker = lab / "not_a_folder.txt"
    blocker.write_text("a file where the output folder should be")
    save_blend(lab / "shot.blend")
    before = snapshot(lab)
    result, message = stylize("toon", output="FILES", output_folder=str(blocker / "out"))
    assert result is None and "cannot create the output folder" in message
    assert snapshot(lab) == before


@pytest.mark.filterwarnings("ignore:RestyleSettings.output_folder:RuntimeWarning")  # 4.5+: typed by hand
def test_blend_relative_output_folder_in_an_unsaved_file_packs(lab, monkeypatch):
    """'//out' means beside the .blend; an unsaved file has no such place (not the working directory)."""
    monkeypatch.chdir(lab)
    obj = cube("Prop", textured("Wood", file_image(lab / "tex", "a.png", seed=36)))
    select([obj])
    before = files_in(lab)
    assert stylize("toon", output="FILES", output_folder="//out")[0] == {"FINISHED"}
    assert files_in(lab) == before
    assert slot_image(obj).packed_file is not None


# -- 9-13: linked library data -----------------------------------------------------------------------
def test_local_and_linked_mesh_objects_are_both_restyled(lab):
    make_library(lab / "lib.blend", lab / "tex")
    link_from(lab / "lib.blend", meshes=["LibCubeMesh"])
    linked_mesh = bpy.data.meshes[("LibCubeMesh", str(lab / "lib.blend"))]
    prop = bpy.data.objects.new("Prop", linked_mesh)
    bpy.context.scene.collection.objects.link(prop)
    local = cube("Local", textured("Local", file_image(lab / "tex", "local.png", seed=13)), 3)
    select([prop, local])
    library_before = (lab / "lib.blend").read_bytes()
    assert stylize("toon")[0] == {"FINISHED"}
    assert local.material_slots[0].material.name == "Local.toon"
    assert prop.material_slots[0].link == "OBJECT"  # the linked mesh keeps its own material
    assert prop.material_slots[0].material["restyle_original"] == linked_mesh.materials[0]
    assert linked_mesh.materials[0].name == "Wood" and (lab / "lib.blend").read_bytes() == library_before
    assert bpy.ops.restyle.revert_materials() == {"FINISHED"}
    assert prop.material_slots[0].link == "DATA" and prop.material_slots[0].material == linked_mesh.materials[0]
    assert local.material_slots[0].material.name == "Local"


def test_a_linked_object_is_skipped_with_its_reason_and_the_local_one_done(lab, capfd):
    make_library(lab / "lib.blend", lab / "tex")
    link_from(lab / "lib.blend", objects=["LibCube"])
    linked = bpy.data.objects[("LibCube", str(lab / "lib.blend"))]
    bpy.context.scene.collection.objects.link(linked)
    local = cube("Local", textured("Local", file_image(lab / "tex", "local.png", seed=14)), 3)
    select([linked, local])
    assert stylize("toon")[0] == {"FINISHED"}
    assert "LibCube (linked from lib.blend)" in capfd.readouterr().out
    assert local.material_slots[0].material.name == "Local.toon"
    assert linked.material_slots[0].material.name == "Wood" and linked.material_slots[0].material.library


def test_only_a_linked_object_selected_says_why(lab):
    make_library(lab / "lib.blend", lab / "tex")
    link_from(lab / "lib.blend", objects=["LibCube"])
    linked = bpy.data.objects[("LibCube", str(lab / "lib.blend"))]
    bpy.context.scene.collection.objects.link(linked)
    select([linked])
    before = snapshot(lab)
    result, message = stylize("toon")
    assert result is None and "linked object" in message
    assert snapshot(lab) == before


def test_same_named_local_and_linked_images_are_not_confused(lab):
    make_library(lab / "lib.blend", lab / "tex")
    link_from(lab / "lib.blend", meshes=["LibCubeMesh"])
    linked_mesh = bpy.data.meshes[("LibCubeMesh", str(lab / "lib.blend"))]
    prop = bpy.data.objects.new("Prop", linked_mesh)
    bpy.context.scene.collection.objects.link(prop)
    local_image = file_image(lab / "tex", "local_wood.png", seed=15, name="Wood")  # same name as the linked one
    local = cube("Local", textured("Wood", local_image), 3)  # and a local material "Wood" too
    select([prop, local])
    assert stylize("watercolor")[0] == {"FINISHED"}
    local_result, linked_result = slot_image(local), slot_image(prop)
    assert local_result != linked_result
    assert local_result["restyle_source"] == local_image
    assert linked_result["restyle_source"].library is not None
    assert local.material_slots[0].material["restyle_original"] == bpy.data.materials[("Wood", None)]
    assert prop.material_slots[0].material["restyle_original"].library is not None


def test_material_of_a_linked_object_shared_with_a_local_one(lab):
    make_library(lab / "lib.blend", lab / "tex")
    link_from(lab / "lib.blend", objects=["LibCube"])
    linked = bpy.data.objects[("LibCube", str(lab / "lib.blend"))]
    bpy.context.scene.collection.objects.link(linked)
    shared = linked.material_slots[0].material
    local = cube("Local", shared, 3)
    select([linked, local])
    assert stylize("toon")[0] == {"FINISHED"}
    assert local.material_slots[0].material["restyle_original"] == shared
    assert linked.material_slots[0].material == shared  # the linked object is untouched


# -- 14-18: node groups -------------------------------------------------------------------------------
def test_texture_inside_a_node_group_is_restyled_in_a_group_copy(lab):
    image = file_image(lab / "tex", "g.png", seed=16)
    group = color_group("Paint", image)
    other = cube("Other", group_material("Other", group), 3)  # not selected: must keep the original
    obj = cube("Prop", group_material("Wood", group))
    select([obj])
    before_group = _tree(group)
    assert stylize("toon")[0] == {"FINISHED"}
    node = next(n for n in obj.material_slots[0].material.node_tree.nodes if n.type == "GROUP")
    assert node.node_tree != group and node.node_tree["restyle_original"] == group
    assert slot_image(obj)["restyle_source"] == image
    assert _tree(group) == before_group and slot_image(other) == image
    assert bpy.ops.restyle.revert_materials() == {"FINISHED"}
    assert set(bpy.data.node_groups) == {group}  # the copy goes with the restyled material


def test_grouped_texture_beside_a_plain_one_is_not_silently_skipped(lab):
    plain = file_image(lab / "tex", "plain.png", seed=17)
    grouped = file_image(lab / "tex", "grouped.png", seed=18)
    material = group_material("Wood", color_group("Paint", grouped), socket="Emission Color")
    texture(material.node_tree, plain, bsdf_of(material).inputs["Base Color"])
    select([cube("Prop", material)])
    assert stylize("oil")[0] == {"FINISHED"}
    assert f"{plain.name}.oil" in bpy.data.images and f"{grouped.name}.oil" in bpy.data.images


def test_grouped_texture_feeding_roughness_is_listed_as_skipped(lab, capfd):
    rough = file_image(lab / "tex", "rough.png", seed=19)
    colour = file_image(lab / "tex", "colour.png", seed=20)
    material = group_material("Wood", color_group("RoughGroup", rough), socket="Roughness")
    texture(material.node_tree, colour, bsdf_of(material).inputs["Base Color"])
    select([cube("Prop", material)])
    assert stylize("toon")[0] == {"FINISHED"}
    assert "rough.png (feeds Roughness of Principled BSDF)" in capfd.readouterr().out
    assert "rough.png.toon" not in bpy.data.images and "colour.png.toon" in bpy.data.images


def test_texture_in_a_nested_group_is_found(lab):
    image = file_image(lab / "tex", "deep.png", seed=22)
    inner = color_group("Inner", image)
    outer = bpy.data.node_groups.new("Outer", "ShaderNodeTree")
    outer.interface.new_socket("Color", in_out="OUTPUT", socket_type="NodeSocketColor")
    holder = outer.nodes.new("ShaderNodeGroup")
    holder.node_tree = inner
    outer.links.new(holder.outputs[0], outer.nodes.new("NodeGroupOutput").inputs[0])
    obj = cube("Prop", group_material("Wood", outer))
    select([obj])
    assert stylize("pencil")[0] == {"FINISHED"}
    assert slot_image(obj)["restyle_source"] == image
    originals = sorted(g.name for g in bpy.data.node_groups if g.get("restyle_original") is None)
    copies = sorted(g["restyle_original"].name for g in bpy.data.node_groups if g.get("restyle_original"))
    assert originals == copies == ["Inner", "Outer"]  # both levels copied; the originals untouched
    assert holder.node_tree == inner and inner.nodes["Image Texture"].image == image


def test_group_input_colour_is_followed_into_the_group(lab, capfd):
    """An image outside a group, fed into a group input that ends in a normal map: data, skipped."""
    image = file_image(lab / "tex", "normal.png", seed=23)
    group = bpy.data.node_groups.new("Bumpy", "ShaderNodeTree")
    group.interface.new_socket("In", in_out="INPUT", socket_type="NodeSocketColor")
    group.interface.new_socket("Normal", in_out="OUTPUT", socket_type="NodeSocketVector")
    inputs, outputs = group.nodes.new("NodeGroupInput"), group.nodes.new("NodeGroupOutput")
    normal_map = group.nodes.new("ShaderNodeNormalMap")
    group.links.new(inputs.outputs[0], normal_map.inputs["Color"])
    group.links.new(normal_map.outputs[0], outputs.inputs[0])
    material = textured("Wood", file_image(lab / "tex", "colour.png", seed=24))
    node = material.node_tree.nodes.new("ShaderNodeGroup")
    node.node_tree = group
    texture(material.node_tree, image, node.inputs[0])
    material.node_tree.links.new(node.outputs[0], bsdf_of(material).inputs["Normal"])
    select([cube("Prop", material)])
    assert stylize("toon")[0] == {"FINISHED"}
    assert "normal.png (feeds Normal Map)" in capfd.readouterr().out


# -- 19: UDIM <UVTILE> ---------------------------------------------------------------------------------
def test_uvtile_paths_are_resolved(lab):
    folder = lab / "tex"
    for tile, seed in (("u1_v1", 25), ("u2_v1", 26)):
        write_image(folder / f"paint.{tile}.png", photo_like(32, 32, seed=seed))
    image = bpy.data.images.load(str(folder / "paint.u1_v1.png"))
    image.source = "TILED"
    image.filepath = str(folder / "paint.<UVTILE>.png")
    image.tiles.new(tile_number=1002)
    image.reload()
    select([cube("Prop", textured("Paint", image))])
    save_blend(lab / "shot.blend")
    assert stylize("oil")[0] == {"FINISHED"}
    result = bpy.data.images["paint.u1_v1.png.oil"]
    assert result.source == "TILED" and sorted(t.number for t in result.tiles) == [1001, 1002]
    pattern = bpy.path.abspath(result.filepath)
    assert all(Path(pattern.replace("<UDIM>", str(n))).exists() for n in (1001, 1002))


# -- 20-23: data deleted while the job runs (names are held, never references) -------------------------
def _start_run(objects: list[bpy.types.Object]):
    select(objects)
    bpy.context.scene.restyle.style = "toon"
    return _module("operators.stylize").textures_job(bpy.context)


@pytest.mark.parametrize("deleted", ["object", "material", "image"])
def test_data_deleted_while_restyling_is_reported_not_a_crash(lab, deleted):
    keep = cube("Keep", textured("KeepMat", file_image(lab / "tex", "keep.png", seed=27)))
    gone = cube("Gone", textured("GoneMat", file_image(lab / "tex", "gone.png", seed=28)), 3)
    job = _start_run([keep, gone])
    if deleted == "object":
        bpy.data.objects.remove(gone)
    elif deleted == "material":
        bpy.data.materials.remove(bpy.data.materials["GoneMat"])
    else:
        bpy.data.images.remove(bpy.data.images["gone.png"])
    try:
        job.worker_job.wait()
        outcome = job.finish()
    finally:
        job.worker_job.close()
    assert bpy.data.objects["Keep"].material_slots[0].material.name == "KeepMat.toon"
    reported = {**outcome.skipped, **outcome.failed}
    assert any("deleted while restyling" in why for why in reported.values()), reported
    assert "GoneMat.toon" not in bpy.data.materials and "gone.png.toon" not in bpy.data.images


def test_everything_deleted_while_restyling_changes_nothing(lab):
    obj = cube("Gone", textured("GoneMat", file_image(lab / "tex", "gone.png", seed=29)))
    save_blend(lab / "shot.blend")
    job = _start_run([obj])
    bpy.data.objects.remove(obj)
    before = snapshot(lab)
    try:
        job.worker_job.wait()
        with pytest.raises(_module("ml.errors").RestyleError, match="deleted while restyling"):
            job.finish()
    finally:
        job.worker_job.close()
    assert snapshot(lab) == before


def test_undo_while_restyling_does_not_crash_and_uses_the_restored_data(lab):
    """An undo replaces every datablock in memory: a held RNA reference would point at freed data."""
    obj = cube("Prop", textured("Wood", file_image(lab / "tex", "a.png", seed=35)))
    select([obj])
    bpy.ops.ed.undo_push(message="before the job")
    job = _start_run([obj])
    bpy.data.objects["Prop"].location.x = 5.0
    bpy.ops.ed.undo_push(message="the user moves the object while the job runs")
    bpy.ops.ed.undo()
    try:
        job.worker_job.wait()
        outcome = job.finish()
    finally:
        job.worker_job.close()
    assert outcome.textures == 1
    assert bpy.data.objects["Prop"].material_slots[0].material.name == "Wood.toon"


# -- 24-26: the job runner always cleans up ---------------------------------------------------------------
class _FakeJob:
    def __init__(self, done: bool = True) -> None:
        self.fraction, self.text, self.done = 0.5, "working", done
        self.cancelled = self.closed = False

    def poll(self) -> bool:
        if self.cancelled:
            raise _module("ml.errors").JobCancelled()
        return self.done

    def wait(self) -> None:
        pass

    def cancel(self) -> None:
        self.cancelled = True

    def close(self) -> None:
        self.closed = True


def _runner(job: _FakeJob, finish_error: BaseException | None = None):
    jobs = _module("operators.jobs")

    class Runner(jobs.JobOperator):
        reports: list[tuple[str, str]] = []

        def report(self, kind, text):
            self.reports.append((next(iter(kind)), text))

        def start_job(self, context):
            return job

        def finish_job(self, context, running):
            if finish_error is not None:
                raise finish_error
            return {"FINISHED"}

    return Runner()


def test_unexpected_error_in_the_last_modal_step_still_clears_the_running_flag(lab):
    state = _module("operators.state")
    job = _FakeJob(done=True)
    runner = _runner(job, finish_error=KeyError("boom"))
    assert runner._begin(bpy.context) and state.CURRENT.running
    assert runner.modal(bpy.context, SimpleNamespace(type="TIMER")) == {"CANCELLED"}
    assert not state.CURRENT.running and job.closed
    assert runner.reports[-1][0] == "ERROR" and "unexpected KeyError" in runner.reports[-1][1]


def test_window_closing_mid_job_cancels_it_and_clears_the_flag(lab):
    state = _module("operators.state")
    job = _FakeJob(done=False)
    runner = _runner(job)
    assert runner._begin(bpy.context)
    assert runner.modal(bpy.context, SimpleNamespace(type="TIMER")) == {"RUNNING_MODAL"}
    assert state.CURRENT.running
    runner.cancel(bpy.context)  # what Blender calls when the window closes or a file loads
    assert job.cancelled and job.closed and not state.CURRENT.running
    assert runner.modal(bpy.context, SimpleNamespace(type="TIMER")) == {"CANCELLED"}


def test_escape_mid_job_cancels_reports_and_clears_the_flag(lab):
    state = _module("operators.state")
    job = _FakeJob(done=False)
    runner = _runner(job)
    assert runner._begin(bpy.context)
    assert runner.modal(bpy.context, SimpleNamespace(type="MOUSEMOVE")) == {"PASS_THROUGH"}
    assert runner.modal(bpy.context, SimpleNamespace(type="ESC")) == {"CANCELLED"}
    assert job.cancelled and job.closed and not state.CURRENT.running
    assert runner.reports[-1] == ("WARNING", "Cancelled: nothing was changed")


def test_unexpected_error_in_the_real_operator_changes_nothing_and_unlocks(lab, monkeypatch):
    select([cube("Prop", textured("Wood", file_image(lab / "tex", "a.png", seed=30)))])
    save_blend(lab / "shot.blend")
    before = snapshot(lab)
    materials = _module("bridge.materials")
    real_assign = materials.assign

    def broken_assign(*args, **kwargs):
        real_assign(*args, **kwargs)
        raise ValueError("a defect after the slots were set")

    monkeypatch.setattr(materials, "assign", broken_assign)
    result, message = stylize("toon")
    assert result is None and "unexpected ValueError" in message and "nothing was changed" in message
    assert not _module("operators.state").CURRENT.running
    assert bpy.ops.restyle.stylize_textures.poll()
    assert snapshot(lab) == before  # the slots assign() had set are put back too


# -- 27-30: more kinds of data loss -------------------------------------------------------------------------
def test_names_at_the_length_limit_keep_their_style_and_do_not_collide(lab):
    limit = 255 if bpy.app.version >= (5, 0, 0) else 63  # Blender's longest ID name, in bytes
    long_name = "M" * limit
    obj = cube("Prop", textured(long_name, file_image(lab / "tex", "a.png", seed=31, name="I" * limit)))
    select([obj])
    assert stylize("toon")[0] == {"FINISHED"}
    copy_name = obj.material_slots[0].material.name
    assert copy_name.endswith(".toon") and copy_name != long_name and long_name in bpy.data.materials
    assert stylize("toon")[0] == {"FINISHED"}  # again: replaces, no .001 pile-up, original kept
    assert sorted(m.name for m in bpy.data.materials if m.name.startswith("M")) == sorted([long_name, copy_name])


def test_object_linked_slot_on_a_local_mesh(lab):
    mesh_material = textured("MeshMat", file_image(lab / "tex", "mesh.png", seed=32))
    object_material = textured("ObjectMat", file_image(lab / "tex", "object.png", seed=33))
    obj = cube("Prop", mesh_material)
    obj.material_slots[0].link = "OBJECT"
    obj.material_slots[0].material = object_material
    select([obj])
    assert stylize("toon")[0] == {"FINISHED"}
    assert obj.material_slots[0].link == "OBJECT" and obj.material_slots[0].material.name == "ObjectMat.toon"
    assert obj.data.materials[0] == mesh_material
    assert bpy.ops.restyle.revert_materials() == {"FINISHED"}
    assert obj.material_slots[0].link == "OBJECT" and obj.material_slots[0].material == object_material


def test_an_empty_image_file_fails_alone(lab, capfd):
    good = file_image(lab / "tex", "good.png", seed=34)
    (lab / "tex" / "empty.png").write_bytes(b"")
    empty = bpy.data.images.load(str(lab / "tex" / "empty.png"))
    material = textured("Wood", good)
    texture(material.node_tree, empty, bsdf_of(material).inputs["Emission Color"])
    obj = cube("Prop", material)
    select([obj])
    assert stylize("toon")[0] == {"FINISHED"}
    assert "empty.png (could not be read" in capfd.readouterr().out
    assert obj.material_slots[0].material.name == "Wood.toon" and "good.png.toon" in bpy.data.images


def test_only_empty_images_change_nothing(lab):
    (lab / "tex").mkdir()
    (lab / "tex" / "empty.png").write_bytes(b"")
    select([cube("Prop", textured("Wood", bpy.data.images.load(str(lab / "tex" / "empty.png"))))])
    before = snapshot(lab)
    result, message = stylize("toon")
    assert result is None and "No texture could be read" in message and "empty.png" in message
    assert snapshot(lab) == before


def test_objects_sharing_a_material_restyled_one_at_a_time_share_one_result(empty_scene, tmp_path):
    """RockA, then RockB (one material) with the same style made Rock.toon and Rock.toon.001, two
    images and two files: the same style of the same material is one result."""
    image = file_image(tmp_path, "rock.png", seed=1)
    rock = textured("Rock", image)
    rocks = [cube(name, rock, x) for name, x in (("RockA", 0.0), ("RockB", 3.0), ("RockC", 6.0))]
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "s.blend"))
    bpy.context.scene.restyle.style = "toon"
    for obj in rocks[:2]:
        select([obj])
        assert bpy.ops.restyle.stylize_textures() == {"FINISHED"}
    assert sorted(m.name for m in bpy.data.materials) == ["Rock", "Rock.toon"]
    assert sorted(i.name for i in bpy.data.images) == ["rock.png", "rock.png.toon"]
    assert [o.material_slots[0].material.name for o in rocks] == ["Rock.toon", "Rock.toon", "Rock"]
    select([rocks[0]])
    assert bpy.ops.restyle.revert_materials() == {"FINISHED"}
    assert rocks[0].material_slots[0].material == rock and rocks[1].material_slots[0].material.name == "Rock.toon"
