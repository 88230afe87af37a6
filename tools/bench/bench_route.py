"""The route of one Stylize Textures run through the project's files, from the panel and from the CLI.

    .venv/bin/python tools/bench/bench_route.py [--detail]

Issue 14 asks that following one run through the code gives a straight route: each file entered
once where possible. This installs the extension as a user would (in a throwaway user folder),
builds one cube with one image texture, runs Stylize Textures once untraced on each route so the
worker is warm, then traces one more run of each with ``sys.setprofile``:

- the panel: ``bpy.ops.restyle.stylize_textures('INVOKE_DEFAULT')`` on the selected cube with the
  style set in ``scene.restyle``, as a click runs it (Blender's poll included);
- the CLI: ``cli.main(["stylize-textures", "--style", "toon", "--blend", FILE])`` of the installed
  add-on, as ``blender -b -c restyle ...`` calls it.

What is counted: only frames whose code lives in the installed add-on (the standard library,
Blender's modules, numpy and the worker process are not followed). At every call or return the
"current file" is the file of the innermost project frame. **Files** is the number of distinct
project files that become current. **Returns** is the number of times the current file changes to
a file that had been current before and was left since: a call from ``properties.py`` into
``ml/options.py`` and back again, with both seen before, is two returns. Only the calling thread
is traced. ``--detail`` also prints the files in order of entry and the returns per (from, to) pair.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ADDON_MODULE = "bl_ext.user_default.neural_restyle"
STYLE = "toon"


@dataclass
class Route:
    """What one traced call went through; file names are relative to the add-on's folder."""

    files: list[str] = field(default_factory=list)  # in the order they were first entered
    returns: Counter[tuple[str, str]] = field(default_factory=Counter)  # (left file, file returned to)
    # the same returns by function: ("file:function" left, "file:function" returned to)
    functions: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def total_returns(self) -> int:
        return sum(self.returns.values())

    def returns_into(self, name: str) -> int:
        """How many times the route came back to ``name`` (e.g. ``"ml/options.py"``)."""
        return sum(count for (_, to), count in self.returns.items() if to == name)

    def returns_between(self, one: str, other: str) -> int:
        """Returns from ``one`` to ``other`` and back, both directions."""
        return self.returns[(one, other)] + self.returns[(other, one)]

    def summary(self) -> str:
        return f"{len(self.files)} files, {self.total_returns} returns to a file already left"

    def __repr__(self) -> str:  # short in assertion messages
        return f"Route({self.summary()})"


class _Tracer:
    """A ``sys.setprofile`` function that follows the innermost project frame's file."""

    def __init__(self, package_dir: Path) -> None:
        self.prefix = str(package_dir.resolve()) + os.sep
        self.names: dict[str, str | None] = {}  # co_filename -> project-relative name, or None
        self.route = Route()
        self.seen: set[str] = set()
        self.current: str | None = None
        self.where = ""  # "file:function" of the innermost project frame

    def _name(self, code: CodeType) -> str | None:
        filename = code.co_filename
        try:
            return self.names[filename]
        except KeyError:
            path = os.path.realpath(filename) if os.path.isabs(filename) else filename
            name = Path(path[len(self.prefix):]).as_posix() if path.startswith(self.prefix) else None
            self.names[filename] = name
            return name

    def _innermost(self, frame: FrameType | None) -> FrameType | None:
        while frame is not None and self._name(frame.f_code) is None:
            frame = frame.f_back
        return frame

    def _move_to(self, frame: FrameType | None) -> None:
        if frame is None:
            return  # outside the project (Blender, the library): the last project file stays current
        name = self._name(frame.f_code)
        assert name is not None
        where = f"{name}:{frame.f_code.co_name}"
        if name != self.current:
            if name in self.seen:
                assert self.current is not None
                self.route.returns[(self.current, name)] += 1
                self.route.functions[(self.where, where)] += 1
            else:
                self.seen.add(name)
                self.route.files.append(name)
            self.current = name
        self.where = where

    def __call__(self, frame: FrameType, event: str, _arg: Any) -> None:
        # Only Python frames of the project move the current file; C calls and other code do not.
        if event == "call":
            if self._name(frame.f_code) is not None:
                self._move_to(frame)
        elif event == "return" and self._name(frame.f_code) is not None:
            self._move_to(self._innermost(frame.f_back))


@contextmanager
def tracing(package_dir: Path) -> Iterator[Route]:
    """Trace the project frames (files under ``package_dir``) run inside the ``with`` block."""
    tracer = _Tracer(package_dir)
    previous = sys.getprofile()
    sys.setprofile(tracer)
    try:
        yield tracer.route
    finally:
        sys.setprofile(previous)


def trace(call: Callable[[], object], package_dir: Path) -> tuple[object, Route]:
    with tracing(package_dir) as route:
        result = call()
    return result, route


# -- the scene and the two routes (need bpy and the installed add-on) --------------------------
def textured_cube(folder: Path) -> Path:
    """A saved .blend with one selected cube whose material has one 32x32 image texture."""
    import bpy
    import numpy as np

    bpy.ops.wm.read_homefile(use_empty=True)
    folder.mkdir(parents=True, exist_ok=True)
    image = bpy.data.images.new("wood", 32, 32)
    ramp = np.linspace(0.0, 1.0, 32, dtype=np.float32)
    pixels = np.ones((32, 32, 4), np.float32)
    pixels[..., 0], pixels[..., 1] = ramp[None, :], ramp[:, None]
    image.pixels.foreach_set(pixels.ravel())
    image.filepath_raw = str(folder / "wood.png")
    image.file_format = "PNG"
    image.save()
    material = bpy.data.materials.new("Wood")
    if material.node_tree is None:  # 4.2 and 4.5: no node tree until use_nodes is set
        material.use_nodes = True
    node = material.node_tree.nodes.new("ShaderNodeTexImage")
    node.image = image
    material.node_tree.links.new(node.outputs["Color"], material.node_tree.nodes["Principled BSDF"].inputs[0])
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    cube.data.materials.append(material)
    cube.select_set(True)
    blend = folder / "route.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    return blend


def panel_run(blend: Path, style: str = STYLE) -> Callable[[], object]:
    """Open ``blend``, select its cube and set the style; the returned call is the click."""
    import bpy

    def prepare() -> None:
        bpy.ops.wm.open_mainfile(filepath=str(blend))
        for obj in bpy.context.scene.objects:
            obj.select_set(obj.type == "MESH")
        bpy.context.view_layer.objects.active = bpy.data.objects["Cube"]
        bpy.context.scene.restyle.style = style

    prepare()
    return lambda: bpy.ops.restyle.stylize_textures("INVOKE_DEFAULT")


def cli_run(cli: Any, blend: Path, style: str = STYLE) -> Callable[[], object]:
    return lambda: cli.main(["stylize-textures", "--style", style, "--blend", str(blend)])


def _install(scratch: Path) -> Any:
    """Build the extension from this checkout and install it into a throwaway user folder under ``scratch``."""
    (scratch / "user").mkdir()
    os.environ["BLENDER_USER_RESOURCES"] = str(scratch / "user")  # before the first import of bpy
    import importlib

    import bpy

    sys.path.insert(0, str(ROOT))
    from tools.build_extension import build

    zip_path = build(scratch / "dist")
    importlib.invalidate_caches()
    result = bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default",
                                                      enable_on_install=True)
    if result != {"FINISHED"} or ADDON_MODULE not in bpy.context.preferences.addons:
        raise SystemExit(f"the extension did not install: {result}")
    return importlib.import_module(ADDON_MODULE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detail", action="store_true", help="list the files and the returns per pair of functions")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="restyle-route-"))
    try:
        routes = _trace_both(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"One Stylize Textures run (one cube, one 32x32 texture, style '{STYLE}', worker warm):")
    for label, route in routes.items():
        print(f"  {label:5s}: {route.summary()}")
        if args.detail:
            print("         files: " + ", ".join(route.files))
            for (left, to), count in route.functions.most_common():
                print(f"         {count:4d} x {left} -> {to}")
    return 0


def _trace_both(scratch: Path) -> dict[str, Route]:
    addon = _install(scratch)
    import importlib

    import bpy

    package_dir = Path(addon.__file__).parent
    cli = importlib.import_module(f"{ADDON_MODULE}.cli")
    blend = textured_cube(scratch / "scene")
    routes: dict[str, Route] = {}
    try:
        for label, make in (("panel", lambda: panel_run(blend)), ("cli", lambda: cli_run(cli, blend))):
            warm = make()
            if warm() not in ({"FINISHED"}, 0):  # the untraced run starts the worker
                raise SystemExit(f"the {label} route failed before tracing")
            result, routes[label] = trace(make(), package_dir)
            if result not in ({"FINISHED"}, 0):
                raise SystemExit(f"the traced {label} run failed: {result}")
    finally:
        bpy.ops.preferences.addon_disable(module=ADDON_MODULE)  # stops the worker
    return routes


if __name__ == "__main__":
    raise SystemExit(main())
