"""Headless commands: ``blender -b scene.blend -c restyle <subcommand> ...``.

:func:`main` takes the argument list and returns the exit code (0: everything done,
1: some items failed, 2: bad usage), so tests call it inside the bpy module. Progress
lines go to stderr; ``--report FILE.json`` records one entry per item.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import bpy

from . import preferences
from .ml.catalog import ALL_STYLES, DEPTH_MODELS, get_style
from .ml.errors import RestyleError
from .properties import settings_of

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
REPORT_VERSION = 1


class UsageError(Exception):
    pass


@dataclass
class Item:
    input: str
    output: str | None = None
    status: str = "done"  # done | failed
    error: str | None = None
    seconds: float = 0.0


@dataclass
class Report:
    command: str
    items: list[Item] = field(default_factory=list)

    def add(self, item: Item) -> None:
        self.items.append(item)
        index = len(self.items)
        state = f"failed: {item.error}" if item.status == "failed" else f"done in {item.seconds:.1f} s"
        print(f"restyle {self.command} [{index}] {item.input}: {state}", file=sys.stderr, flush=True)

    def write(self, path: str) -> None:
        data = {
            "version": REPORT_VERSION,
            "command": self.command,
            "items": [asdict(item) for item in self.items],
            "summary": {
                "done": sum(item.status == "done" for item in self.items),
                "failed": sum(item.status == "failed" for item in self.items),
            },
        }
        Path(path).write_text(json.dumps(data, indent=2), encoding="utf-8")

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if any(item.status == "failed" for item in self.items) else EXIT_OK


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _ranged(kind: type, low: float, high: float) -> Callable[[str], float]:
    """An argparse type that refuses values Blender's properties would silently clamp."""

    def parse(text: str) -> float:
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside {kind(low)}..{kind(high)}")
        return value

    return parse


FRACTION = _ranged(float, 0.0, 1.0)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--blend", nargs="+", metavar="FILE",
                        help="process these .blend files (paths or globs) in turn, saving each; default: the open file")
    parser.add_argument("--save", action="store_true", help="save the open .blend when done")
    parser.add_argument("--save-as", metavar="PATH", help="save the open .blend under this path when done")
    parser.add_argument("--report", metavar="FILE.json", help="write a JSON report with one record per item")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="restyle", description="Neural Restyle from the command line")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    textures = commands.add_parser("stylize-textures", help="restyle the colour textures of meshes")
    textures.add_argument("--objects", nargs="+", metavar="NAME", help="object names or globs (default: all meshes)")
    textures.add_argument("--collection", help="only meshes in this collection")
    textures.add_argument("--style", required=True, help="style id (see: models list)")
    textures.add_argument("--strength", type=FRACTION, default=1.0)
    textures.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    textures.add_argument("--precision", choices=["auto", "full", "reduced"], default="auto")
    textures.add_argument("--seamless", choices=["auto", "on", "off"], default="auto")
    textures.add_argument("--tile-size", type=_ranged(int, 64, 8192), default=1024)
    textures.add_argument("--output-dir", help="folder for restyled images (default: //restyled/)")
    _common(textures)

    render = commands.add_parser("stylize-render", help="render the scene and restyle the render")
    render.add_argument("--style", required=True)
    render.add_argument("--frames", metavar="START[-END]", help="frame or range (default: the current frame)")
    render.add_argument("--output-dir", required=True, help="folder for the restyled frames")
    render.add_argument("--strength", type=FRACTION, default=1.0)
    render.add_argument("--outlines", type=FRACTION, default=0.0, help="ink outlines from the passes, 0..1")
    render.add_argument("--depth-falloff", type=FRACTION, default=0.0, help="restyle less with distance, 0..1")
    render.add_argument("--temporal", type=_ranged(float, 0.0, 0.95), default=0.0,
                        help="flicker reduction for frame ranges, 0..0.95")
    _common(render)

    photo = commands.add_parser("import-photo", help="reconstruct photos as textured meshes")
    photo.add_argument("photos", nargs="+", metavar="PHOTO")
    photo.add_argument("--depth-model", default="AUTO")
    photo.add_argument("--near", type=_ranged(float, 0.01, 1e6), default=2.0)
    photo.add_argument("--depth-range", type=_ranged(float, 0.01, 1e6), default=6.0)
    photo.add_argument("--resolution", type=_ranged(int, 2, 8192), default=512)
    _common(photo)

    depth = commands.add_parser("depth-mesh", help="mesh from the render's depth pass")
    depth.add_argument("--resolution", type=_ranged(int, 2, 8192), default=512)
    depth.add_argument("--exr", help="use this multilayer EXR instead of rendering")
    _common(depth)

    models = commands.add_parser("models", help="list, download, install, verify or remove models")
    actions = models.add_subparsers(dest="action", required=True, parser_class=_Parser)
    actions.add_parser("list", help="every model and whether it is installed")
    download = actions.add_parser("download", help="download a model (needs online access: blender --online-mode)")
    download.add_argument("model_id")
    install = actions.add_parser("install", help="add a model file from disk")
    install.add_argument("file")
    install.add_argument("--name")
    actions.add_parser("verify", help="check installed files against their checksums")
    remove = actions.add_parser("remove", help="delete a model's files")
    remove.add_argument("model_id")
    for action in actions.choices.values():
        action.add_argument("--report", metavar="FILE.json")
    return parser


# -- the work of each subcommand, on the open .blend --------------------------------------
def _select(args: argparse.Namespace) -> list[bpy.types.Object]:
    objects = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    if args.collection:
        collection = bpy.data.collections.get(args.collection)
        if collection is None:
            raise RestyleError(f"no collection named '{args.collection}'")
        objects = [o for o in objects if o.name in collection.all_objects]
    if args.objects:
        objects = [o for o in objects if any(fnmatch.fnmatchcase(o.name, pattern) for pattern in args.objects)]
    if not objects:
        raise RestyleError("no mesh object matches --objects/--collection")
    for obj in bpy.context.scene.objects:
        obj.select_set(obj in objects)
    bpy.context.view_layer.objects.active = objects[0]
    return objects


def _operator(name: str) -> Callable[..., set[str]]:
    return getattr(bpy.ops.restyle, name)  # type: ignore[attr-defined, no-any-return]  # registered at run time


def _call(operator: Callable[..., set[str]], **kwargs: object) -> None:
    """Run an operator; its error report (a RuntimeError in background mode) is the item's error."""
    try:
        result = operator(**kwargs)
    except RuntimeError as exc:
        raise RestyleError(str(exc).removeprefix("Error: ").strip()) from exc
    if result != {"FINISHED"}:
        raise RestyleError(f"{operator.idname()} did not finish ({', '.join(sorted(result))})")  # type: ignore[attr-defined]


def do_stylize_textures(args: argparse.Namespace) -> str:
    if not args.style.startswith("custom-"):
        get_style(args.style)  # an unknown id is a clear error before anything runs
    settings = settings_of(bpy.context)
    settings.style = args.style
    settings.strength, settings.tile_size = args.strength, args.tile_size
    settings.device, settings.precision, settings.seamless = (args.device.upper(), args.precision.upper(),
                                                              args.seamless.upper())
    settings.output, settings.output_folder = "FILES", args.output_dir or ""
    objects = _select(args)
    _call(_operator("stylize_textures"))
    return ", ".join(sorted({slot.material.name for o in objects for slot in o.material_slots if slot.material}))


def do_stylize_render(args: argparse.Namespace) -> str:
    start, _, end = (args.frames or str(bpy.context.scene.frame_current)).partition("-")
    settings = settings_of(bpy.context)
    settings.style = args.style
    settings.strength = args.strength
    _call(_operator("stylize_render"), frame_start=int(start), frame_end=int(end or start),
          output_dir=args.output_dir, outlines=args.outlines, depth_falloff=args.depth_falloff,
          temporal=args.temporal)
    return args.output_dir


def do_import_photo(args: argparse.Namespace) -> str:
    photos = [Path(p).resolve() for p in args.photos]
    missing = [str(p) for p in photos if not p.is_file()]
    if missing:
        raise RestyleError(f"no such photo: {', '.join(missing)}")
    for photo in photos:  # one operator call per folder keeps each photo's own path
        _call(_operator("import_photo_mesh"), directory=str(photo.parent), files=[{"name": photo.name}],
              depth_model=args.depth_model, near=args.near, depth_range=args.depth_range, max_side=args.resolution)
    return ", ".join(p.stem for p in photos)


def do_depth_mesh(args: argparse.Namespace) -> str:
    _call(_operator("mesh_from_depth_pass"), filepath=args.exr or "", max_side=args.resolution)
    return f"{bpy.context.scene.camera.name} Depth Mesh"


ACTIONS: dict[str, Callable[[argparse.Namespace], str]] = {
    "stylize-textures": do_stylize_textures,
    "stylize-render": do_stylize_render,
    "import-photo": do_import_photo,
    "depth-mesh": do_depth_mesh,
}


def _blend_files(patterns: list[str]) -> list[str]:
    files: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        if not matches:
            raise UsageError(f"--blend: no file matches '{pattern}'")
        files += matches
    return files


def run_scene_command(args: argparse.Namespace, report: Report) -> None:
    action = ACTIONS[args.command]
    if not args.blend:
        item = Item(input=bpy.data.filepath or "(unsaved)")
        _run_item(item, lambda: action(args))
        if item.status == "done" and (args.save or args.save_as):
            _run_item(item, lambda: _save(args.save_as))
        report.add(item)
        return
    for path in _blend_files(args.blend):
        item = Item(input=path)

        def process(path: str = path) -> str:
            try:
                bpy.ops.wm.open_mainfile(filepath=path)
            except RuntimeError as exc:
                raise RestyleError(f"cannot open {path}: {str(exc).strip()}") from exc
            output = action(args)
            bpy.ops.wm.save_mainfile()
            return output

        _run_item(item, process)
        report.add(item)


def _save(path: str | None) -> str:
    if path:
        bpy.ops.wm.save_as_mainfile(filepath=str(Path(path).resolve()))
    elif bpy.data.filepath:
        bpy.ops.wm.save_mainfile()
    else:
        raise RestyleError("the open file was never saved: use --save-as PATH")
    return bpy.data.filepath


def _run_item(item: Item, work: Callable[[], str]) -> None:
    started = time.perf_counter()
    try:
        item.output = work()
    except (RestyleError, OSError) as exc:
        item.status, item.error = "failed", str(exc)
    item.seconds += time.perf_counter() - started


# -- models ---------------------------------------------------------------------------
def run_models(args: argparse.Namespace, report: Report) -> None:
    store = preferences.model_store(bpy.context)
    if args.action == "list":
        for entry in ALL_STYLES + DEPTH_MODELS:
            state = "built-in" if not entry.files else ("installed" if store.is_installed(entry) else "not installed")
            flags = " [non-commercial]" if entry.non_commercial else ""
            print(f"{entry.id:<40} {entry.family:<10} {state}{flags}")
            report.items.append(Item(input=entry.id, output=state))
        return
    if args.action == "download":
        item = Item(input=args.model_id)
        _run_item(item, lambda: ", ".join(str(p) for p in store.download(get_style(args.model_id)).values()))
        report.add(item)
        return
    if args.action == "install":
        item = Item(input=args.file)
        _run_item(item, lambda: _install(args.file, args.name))
        report.add(item)
        return
    if args.action == "remove":
        item = Item(input=args.model_id)
        _run_item(item, lambda: _remove(args.model_id))
        report.add(item)
        return
    for entry in ALL_STYLES + DEPTH_MODELS:  # verify
        if entry.files and store.is_installed(entry):
            item = Item(input=entry.id)
            _run_item(item, lambda entry=entry: store.verify(entry))
            report.add(item)


def _remove(model_id: str) -> str:
    _call(_operator("remove_model"), model_id=model_id)  # the panel's Remove: catalog and custom styles
    return "removed"


def _install(path: str, name: str | None) -> str:
    _call(_operator("install_model_file"), filepath=str(Path(path).resolve()), name=name or "")
    return str(settings_of(bpy.context).style)


def main(argv: list[str]) -> int:
    """The ``restyle`` command handler: argument list in, exit code out."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    report = Report(command=args.command if args.command != "models" else f"models {args.action}")
    try:
        if args.command == "models":
            run_models(args, report)
        else:
            run_scene_command(args, report)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    if args.report:
        report.write(args.report)
    return report.exit_code


def command_handler(argv: list[str]) -> int:
    """What Blender calls for ``-c restyle``."""
    return main(list(argv))
