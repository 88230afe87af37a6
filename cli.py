"""Headless commands: ``blender -b scene.blend -c restyle <subcommand> ...``.

:func:`main` takes the argument list and returns the exit code (0: everything done,
1: some items failed, 2: bad usage), so tests call it inside the bpy module. Progress
lines go to stderr; ``--report FILE.json`` records one entry per item.

Order matters: everything that can be checked without touching a .blend (arguments, the
style and its kind, frame ranges, that every output path can be written) is checked first,
so a wrong command line exits 2 before any file is opened, rendered or saved. After that
each item runs under a guard that turns any failure into a failed item, a ``--blend``
batch goes on past every bad file, and the report is written whatever happens.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import json
import logging
import os
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import bpy

from . import preferences
from .bridge.outputs import WrittenFiles
from .jobs.base import error_message, is_defect, services_of
from .jobs.depth_pass import mesh_from_depth_pass
from .jobs.learn import IMAGE_SUFFIXES, folder_images, learn_style
from .jobs.models import add_model_file, download_model, megabytes, not_added, remove_model
from .jobs.photo import PHOTO_EXTENSIONS, import_photos
from .jobs.render import stylize_render
from .jobs.textures import stylize_textures
from .ml.errors import RestyleError
from .ml.models import registry
from .ml.models.catalog import ALL_STYLES, DEPTH_MODELS
from .ml.models.custom import PREFIX as CUSTOM_PREFIX
from .ml.models.custom import check_name, custom_depth_models, custom_styles
from .ml.models.registry import ModelDescriptor
from .ml.options import (
    AUTO_TILE,
    DEPTH_FALLOFF,
    DEPTH_RANGE,
    FOCAL_35MM,
    FRAME,
    LEARN_IMAGES,
    LEARN_SEED,
    LEARN_STEPS,
    MESH_RESOLUTION,
    MIN_MANUAL_TILE,
    NEAR,
    OUTLINES,
    PHOTO_CUT,
    STRENGTH,
    STYLE_WEIGHT,
    TEMPORAL,
    TILE_SIZE,
    DepthOutput,
    DepthPassMeshOptions,
    DepthSource,
    Device,
    ImportPhotoOptions,
    LearnPreset,
    LearnStyleOptions,
    ModelFamily,
    ModelKind,
    Precision,
    Range,
    RestyleOptions,
    Seamless,
    StylizeRenderOptions,
    StylizeTexturesOptions,
)

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
REPORT_VERSION = 1
MAX_FRAME = int(FRAME.max)  # Blender's MAXFRAME: the scene's frame numbers stop there
# Style families each subcommand can run. Depth models are not styles; the arbitrary
# (style image) family needs an image that Stylize Render cannot take yet.
TEXTURE_FAMILIES = frozenset({ModelFamily.BUILTIN, ModelFamily.LEARNED, ModelFamily.GAN, ModelFamily.ARBITRARY,
                              ModelFamily.CUSTOM})
RENDER_FAMILIES = TEXTURE_FAMILIES - {ModelFamily.ARBITRARY}


class UsageError(Exception):
    pass


def _say(message: str, stream: TextIO | None = None) -> None:
    """One line for the user. Paths that are not UTF-8 are shown escaped, and a closed
    stream never turns a finished run into a traceback."""
    target = stream or sys.stderr
    text = message.encode("utf-8", "backslashreplace").decode("utf-8")
    try:
        target.write(text + "\n")
        target.flush()
    except (OSError, ValueError):
        pass


def _describe(exc: BaseException) -> str:
    """An exception as one line for an item's error: the text the panel's operator reports for the
    same failure (jobs.base.error_message); a usage error is the command line's own."""
    if isinstance(exc, UsageError):
        return str(exc)
    return error_message(exc)


@dataclass
class Item:
    input: str
    output: str | None = None
    status: str = "done"  # done | failed
    error: str | None = None
    seconds: float = 0.0
    # What a done item left out or noticed (a texture that could not be read, a photo left out):
    # the same lines as on stderr, so a pipeline finds partial results without parsing the log.
    warnings: list[str] = field(default_factory=list)


@dataclass
class ItemWork:
    """What one item's work hands back besides its output: the files only the saved .blend would
    refer to (restyled textures, removed when that file is not saved) and its warnings."""

    command: str
    written: list[WrittenFiles] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        _say(f"restyle {self.command}: {text}")


@dataclass
class Report:
    command: str
    items: list[Item] = field(default_factory=list)

    def add(self, item: Item) -> None:
        self.items.append(item)
        index = len(self.items)
        state = f"failed: {item.error}" if item.status == "failed" else f"done in {item.seconds:.1f} s"
        _say(f"restyle {self.command} [{index}] {item.input}: {state}")

    def write(self, path: str) -> None:
        """Written beside its final name and moved into place, so a failed write never
        leaves half a report (or destroys the previous one)."""
        data = {
            "version": REPORT_VERSION,
            "command": self.command,
            "items": [asdict(item) for item in self.items],
            "summary": {
                "done": sum(item.status == "done" for item in self.items),
                "failed": sum(item.status == "failed" for item in self.items),
            },
        }
        target = Path(path)
        # os.open with 0o666 lets the umask decide who can read it, as for any file the user
        # makes (mkstemp's 0o600 would hide it from a farm's dashboard running as another user).
        temporary = str(target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp")
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(json.dumps(data, indent=2))
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if any(item.status == "failed" for item in self.items) else EXIT_OK


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _ranged(kind: type, low: float, high: float) -> Callable[[str], float]:
    """An argparse type that refuses values Blender's properties would silently clamp."""
    what = "a whole number" if kind is int else "a number"
    low, high = kind(low), kind(high)  # an int option's limits read as whole numbers: 2..8192, not 2.0..8192.0

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {what}") from None
        if not low <= value <= high:  # also refuses NaN, which compares false
            raise argparse.ArgumentTypeError(f"{text} is outside {low}..{high}")
        return value

    return parse


def within(spec: Range, kind: type = float) -> Callable[[str], float]:
    """An argparse type for the number ``spec`` (ml/options.py) limits: the panel's limits, written once."""
    return _ranged(kind, spec.min, spec.max)


_MANUAL_TILE = _ranged(int, MIN_MANUAL_TILE, TILE_SIZE.max)


def tile_size(text: str) -> int:
    """0 (Auto: the largest tile the free memory allows, the whole image when it fits) or 64..8192."""
    if text.strip() == str(AUTO_TILE):
        return AUTO_TILE
    return int(_MANUAL_TILE(text))


_FRAMES = re.compile(r"([0-9]{1,7})(?:-([0-9]{1,7}))?")


def frame_range(text: str) -> tuple[int, int]:
    """``START`` or ``START-END``: whole frame numbers, END not before START."""
    match = _FRAMES.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"'{text}' is not a frame or range: write START or START-END, e.g. 1-48")
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) is not None else start
    if end > MAX_FRAME:
        raise argparse.ArgumentTypeError(f"'{text}' goes past frame {MAX_FRAME}, the last frame Blender has")
    if end < start:
        raise argparse.ArgumentTypeError(f"'{text}' ends before it starts")
    return start, end


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--blend", nargs="+", metavar="FILE",
                        help="process these .blend files (paths or globs) in turn, saving each; default: the open file")
    parser.add_argument("--save", action="store_true", help="save the open .blend when done")
    parser.add_argument("--save-as", metavar="PATH", help="save the open .blend under this path when done")
    parser.add_argument("--report", metavar="FILE.json", help="write a JSON report with one record per item")


def _engine_arguments(parser: argparse.ArgumentParser) -> None:
    """How each image is restyled (ml/options.py RestyleOptions): the same for every subcommand that restyles."""
    parser.add_argument("--strength", type=within(STRENGTH), default=STRENGTH.default)
    parser.add_argument("--device", choices=[d.value for d in Device], default=Device.AUTO.value)
    parser.add_argument("--precision", choices=[p.value for p in Precision], default=Precision.AUTO.value)
    parser.add_argument("--seamless", choices=[m.value for m in Seamless], default=Seamless.AUTO.value)
    parser.add_argument("--tile-size", type=tile_size, default=AUTO_TILE,
                        help=f"tile side in pixels, {MIN_MANUAL_TILE}..{TILE_SIZE.max:g}; {AUTO_TILE} (the default) = "
                             "Auto from the free memory")
    parser.add_argument("--preserve-colors", action="store_true",
                        help="keep the original colours, take only the style's texture and shading")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="restyle", description="Neural Restyle from the command line")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    textures = commands.add_parser("stylize-textures", help="restyle the colour textures of meshes")
    textures.add_argument("--objects", nargs="+", metavar="NAME", help="object names or globs (default: all meshes)")
    textures.add_argument("--collection", help="only meshes in this collection")
    textures.add_argument("--style", required=True, help="style id (see: models list)")
    _engine_arguments(textures)
    textures.add_argument("--style-image", metavar="IMAGE_OR_FILE",
                          help="arbitrary (style image) styles: an image of the .blend by name, or an image file")
    textures.add_argument("--style-weight", type=within(STYLE_WEIGHT), default=STYLE_WEIGHT.default,
                          help="arbitrary styles: how much of the style image's look, 0..1")
    textures.add_argument("--output-dir", help="folder for restyled images (default: //restyled/)")
    _common(textures)

    render = commands.add_parser("stylize-render", help="render the scene and restyle the render")
    render.add_argument("--style", required=True)
    render.add_argument("--frames", type=frame_range, metavar="START[-END]",
                        help="frame or range (default: the current frame)")
    render.add_argument("--output-dir", required=True, help="folder for the restyled frames")
    _engine_arguments(render)
    render.add_argument("--outlines", type=within(OUTLINES), default=OUTLINES.default,
                        help="ink outlines from the passes, 0..1")
    render.add_argument("--depth-falloff", type=within(DEPTH_FALLOFF), default=DEPTH_FALLOFF.default,
                        help="restyle less with distance, 0..1")
    render.add_argument("--temporal", type=within(TEMPORAL), default=TEMPORAL.default,
                        help=f"flicker reduction for frame ranges, 0..{TEMPORAL.max:g}")
    _common(render)

    photo = commands.add_parser("import-photo", help="reconstruct photos as textured meshes")
    photo.add_argument("photos", nargs="+", metavar="PHOTO")
    photo.add_argument("--depth-model", default=DepthSource.AUTO.value,
                       help="AUTO, FLAT or a depth model id (see: models list)")
    photo.add_argument("--near", type=within(NEAR), default=NEAR.default)
    photo.add_argument("--depth-range", type=within(DEPTH_RANGE), default=DEPTH_RANGE.default)
    photo.add_argument("--resolution", type=within(MESH_RESOLUTION, int), default=int(MESH_RESOLUTION.default))
    photo.add_argument("--cut-threshold", type=within(PHOTO_CUT), default=PHOTO_CUT.default,
                       help="no faces across relative depth jumps larger than this")
    photo.add_argument("--focal-length", type=within(FOCAL_35MM), default=FOCAL_35MM.default,
                       help="35 mm equivalent focal length for photos whose EXIF does not say (scans, PNGs)")
    photo.add_argument("--simplify", action="store_true", help="add a planar Decimate modifier to each mesh")
    photo.add_argument("--device", choices=[d.value for d in Device], default=Device.AUTO.value,
                       help="where the depth model runs")
    _common(photo)

    depth = commands.add_parser("depth-mesh", help="mesh from the render's depth pass")
    depth.add_argument("--resolution", type=within(MESH_RESOLUTION, int), default=int(MESH_RESOLUTION.default))
    depth.add_argument("--exr", help="use this multilayer EXR instead of rendering")
    _common(depth)

    learn = commands.add_parser("learn-style", help="learn a style from example images (added as a custom style)")
    learn.add_argument("--images", nargs="+", required=True, metavar="FILE_OR_DIR",
                       help=f"{LEARN_IMAGES.min:g} to {LEARN_IMAGES.max:g} style images")
    learn.add_argument("--name", required=True, help="the new style's name")
    learn.add_argument("--content", metavar="DIR",
                       help="images to learn on (default: the selected meshes' textures and Blender's HDRIs)")
    learn.add_argument("--preset", choices=[p.value for p in LearnPreset], default=LearnPreset.DEFAULT.value)
    # 0, the panel's "the preset's", is what leaving --steps out says here.
    learn.add_argument("--steps", type=_ranged(int, 1, LEARN_STEPS.max), help="training steps (default: the preset's)")
    learn.add_argument("--seed", type=within(LEARN_SEED, int), default=int(LEARN_SEED.default))
    learn.add_argument("--report", metavar="FILE.json", help="write a JSON report")

    models = commands.add_parser("models", help="list, download, install, verify or remove models")
    actions = models.add_subparsers(dest="action", required=True, parser_class=_Parser)
    actions.add_parser("list", help="every model and whether it is installed")
    download = actions.add_parser("download", help="download a model (needs online access: blender --online-mode)")
    download.add_argument("model_id")
    install = actions.add_parser("install", help="add a model file from disk")
    install.add_argument("file")
    install.add_argument("--name")
    install.add_argument("--depth-output", choices=[o.value for o in DepthOutput], default=DepthOutput.AUTO.value,
                         help="Depth Anything V2 files: what the head gives (auto: read from the file name; "
                              "relative and metric heads hold the same tensors)")
    actions.add_parser("verify", help="check installed files against their checksums")
    remove = actions.add_parser("remove", help="delete a model's files")
    remove.add_argument("model_id")
    for action in actions.choices.values():
        action.add_argument("--report", metavar="FILE.json")
    return parser


# -- checks made before any .blend is touched ------------------------------------------
def _style_for(command: str, style_id: str) -> ModelDescriptor:
    """The style a subcommand was asked for, known and of a kind that subcommand can run."""
    try:
        model = registry.describe(style_id, preferences.model_root(bpy.context, create=False))
    except RestyleError as exc:
        raise UsageError(f"restyle {command}: argument --style: {error_message(exc)}") from None
    families = RENDER_FAMILIES if command == "stylize-render" else TEXTURE_FAMILIES
    if model.family not in families:
        kind = "a depth model" if model.kind == ModelKind.DEPTH else f"a {model.family.value} style"
        styles = ", ".join(e.id for e in ALL_STYLES if e.family in families)
        raise UsageError(f"restyle {command}: argument --style: '{style_id}' is {kind}, which {command} cannot use "
                         f"(styles it can: {styles}, or an installed custom-... style)")
    return model


def _writable_file(option: str, text: str) -> str:
    """An absolute path a file can be written to, checked by creating (and removing) a probe beside it."""
    try:
        path = Path(text).expanduser().absolute()
        if path.is_dir():
            raise UsageError(f"restyle: argument {option}: '{text}' is a folder, not a file")
        if not path.parent.is_dir():
            raise UsageError(f"restyle: argument {option}: the folder '{path.parent}' does not exist")
        _probe(path.parent)
        if path.exists() and not os.access(path, os.W_OK):  # Blender's own test before it saves
            raise UsageError(f"restyle: argument {option}: '{text}' is read-only: Blender would refuse to save "
                             "it after all the work")
    except OSError as exc:
        raise UsageError(f"restyle: argument {option}: cannot write '{text}': {exc}") from None
    return str(path)


def _writable_folder(option: str, text: str) -> str:
    """A folder that exists and can be written, or that can be created: its nearest existing
    parent is checked, nothing is created here (a wrong command line leaves no trace)."""
    if text.startswith("//"):  # relative to each .blend: checked by the job when the file is open
        return text
    try:
        path = Path(text).expanduser().absolute()
        existing = path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise UsageError(f"restyle: argument {option}: '{existing}' is a file, so '{text}' cannot be a folder")
        _probe(existing)
    except OSError as exc:
        raise UsageError(f"restyle: argument {option}: cannot write in '{text}': {exc}") from None
    return str(path)


def _probe(folder: Path) -> None:
    """Raises OSError unless a file can be created in ``folder`` (permissions, read-only disks)."""
    handle, name = tempfile.mkstemp(dir=folder, prefix=".restyle-probe-")
    os.close(handle)
    os.unlink(name)


def _matches(pattern: str) -> list[str]:
    """A path as given (a missing one too, to fail as its own item), or a glob's matches in name
    order (none when it matches nothing)."""
    if os.path.lexists(pattern) or not any(c in pattern for c in "*?["):
        return [pattern]
    return sorted(glob.glob(pattern))


def _blend_files(patterns: list[str]) -> list[str]:
    """Every file the --blend patterns name, each once, in order. A glob matching nothing is a
    usage error (a typo); a named file that is missing stays, to fail as its own item."""
    files: list[str] = []
    seen: set[str] = set()
    for pattern in patterns:
        matches = _matches(pattern)
        if not matches:
            raise UsageError(f"restyle: argument --blend: no file matches '{pattern}'")
        for match in matches:
            key = os.path.realpath(match)
            if key in seen:
                _say(f"restyle: {match} is listed more than once: processed once")
                continue
            seen.add(key)
            files.append(match)
    return files


def _photo_files(items: list[str]) -> list[str]:
    """The photos named by paths, globs (quoted, or from a shell that does not expand them) and
    folders (their photos, by extension, in name order). A glob or folder that gives no
    photo is a usage error; a named file that is missing stays, for the job to name."""
    extensions = tuple(PHOTO_EXTENSIONS.split(";"))

    def in_folder(folder: str) -> list[str]:
        return sorted(str(p) for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in extensions)

    photos: list[str] = []
    for item in items:
        if os.path.isdir(item):
            found = in_folder(item)
            if not found:
                raise UsageError(f"restyle import-photo: the folder '{item}' has no photos ({', '.join(extensions)})")
            photos += found
        else:
            found = _matches(item)
            if not found:
                raise UsageError(f"restyle import-photo: no file matches '{item}'")
            # A folder a glob matches is taken as a folder, as when the shell expands the glob.
            photos += [photo for match in found for photo in (in_folder(match) if os.path.isdir(match) else [match])]
    return photos


def _refuse_overwriting_inputs(args: argparse.Namespace) -> None:
    """--report and --save-as must not name a file the command reads: a report written over
    a shot or a photo would destroy the artist's work. (--save-as onto the open file is --save.)"""
    photos = [*getattr(args, "photos", []), getattr(args, "exr", None) or ""]
    shots = list(args.blend or ([bpy.data.filepath] if bpy.data.filepath else []))
    shots.append(getattr(args, "save_as", None) or "")  # the report must not replace the saved .blend either
    for option, target, read in (("--report", args.report, photos + shots),
                                 ("--save-as", getattr(args, "save_as", None), photos)):
        if target and os.path.realpath(target) in {os.path.realpath(p) for p in read if p}:
            raise UsageError(f"restyle: argument {option}: '{target}' is one of the files this command reads")


def validate(args: argparse.Namespace) -> None:
    """Every cheap check of the command line, before any work; raises UsageError."""
    if args.report:
        args.report = _writable_file("--report", args.report)
    if args.command == "models":
        # A catalog id that does not exist is a typo (2); a custom style that is already gone
        # is a failed item (1), since the same command succeeded a moment ago.
        if args.action == "download" or (args.action == "remove" and not args.model_id.startswith(CUSTOM_PREFIX)):
            try:  # as the Download button looks it up (jobs/models.py), the user's own models included
                registry.describe(args.model_id, preferences.model_root(bpy.context, create=False))
            except RestyleError as exc:
                raise UsageError(f"restyle models {args.action}: argument model_id: {error_message(exc)}") from None
        if args.action == "install" and args.report and os.path.realpath(args.file) == os.path.realpath(args.report):
            raise UsageError(f"restyle: argument --report: '{args.report}' is the model file to install")
        return
    if args.command == "learn-style":
        suffixes = ", ".join(IMAGE_SUFFIXES)
        for option, item in [*(("--images", i) for i in args.images), *([("--content", args.content)]
                                                                        if args.content else [])]:
            if not os.path.exists(item):
                raise UsageError(f"restyle learn-style: argument {option}: '{item}' does not exist")
            if option == "--content" and not os.path.isdir(item):
                raise UsageError(f"restyle learn-style: argument --content: '{item}' is a file, not a folder: "
                                 "give the folder of content images")
            if os.path.isdir(item) and not folder_images(Path(item)):
                raise UsageError(f"restyle learn-style: argument {option}: the folder '{item}' holds no images "
                                 f"({suffixes})")
        if not args.name.strip():
            raise UsageError("restyle learn-style: argument --name: give the style a name")
        try:  # refused now, not after the training
            check_name(args.name)
        except RestyleError as exc:
            raise UsageError(f"restyle learn-style: argument --name: {error_message(exc)}") from None
        return
    if args.command in ("stylize-textures", "stylize-render"):
        model = _style_for(args.command, args.style)
        takes_image = model.family == ModelFamily.ARBITRARY
        if args.command == "stylize-textures" and takes_image and not args.style_image:
            raise UsageError(f"restyle stylize-textures: argument --style-image: '{args.style}' restyles after a "
                             "style image: give one (an image of the .blend by name, or an image file)")
        if args.command == "stylize-textures" and not takes_image and args.style_image:
            raise UsageError(f"restyle stylize-textures: argument --style-image: '{args.style}' does not take a "
                             "style image (only arbitrary styles such as adain do)")
    if args.command == "import-photo":
        args.photos = _photo_files(args.photos)
        root = preferences.model_root(bpy.context, create=False)
        sources = {source.value for source in DepthSource}  # AUTO, FLAT
        choices = {*sources, *(e.id for e in DEPTH_MODELS), *(e.id for e in custom_depth_models(root))}
        if args.depth_model.upper() in sources:
            args.depth_model = args.depth_model.upper()
        if args.depth_model not in choices:
            raise UsageError(f"restyle import-photo: argument --depth-model: unknown depth model "
                             f"'{args.depth_model}' (choose from {', '.join(sorted(choices))})")
    if getattr(args, "output_dir", None):
        if args.output_dir.startswith("//") and not args.blend and not bpy.data.filepath:
            # Without a saved file Blender resolves "//frames" against the working folder:
            # the frames would land wherever the command happened to be started.
            raise UsageError(f"restyle: argument --output-dir: '{args.output_dir}' is relative to the .blend, "
                             "but the open file was never saved: give a full path")
        args.output_dir = _writable_folder("--output-dir", args.output_dir)
    if args.blend:
        if args.save_as:
            raise UsageError("restyle: argument --save-as: not with --blend (each file of a batch is saved in place)")
        args.blend = _blend_files(args.blend)
    else:
        if args.save and args.save_as:
            raise UsageError("restyle: argument --save: give --save or --save-as, not both")
        if args.save_as:
            if Path(args.save_as).suffix.lower() != ".blend":
                raise UsageError(f"restyle: argument --save-as: '{args.save_as}' does not end in .blend")
            args.save_as = _writable_file("--save-as", args.save_as)
        if args.save:
            if not bpy.data.filepath:
                raise UsageError("restyle: argument --save: the open file was never saved: use --save-as PATH")
            _writable_file("--save", bpy.data.filepath)
    _refuse_overwriting_inputs(args)


# -- the work of each subcommand, on the open .blend --------------------------------------
# Each calls the job function the panel's operator drives (jobs/): options built from the
# arguments, never written into the scene's settings; errors arrive as exceptions.
def _objects(args: argparse.Namespace) -> list[bpy.types.Object]:
    """The meshes --objects/--collection name, in the view layer (an object in an excluded
    collection is not part of the scene being processed)."""
    view_layer = bpy.context.view_layer
    objects = [o for o in view_layer.objects if o.type == "MESH"]
    if args.collection:
        collection = bpy.data.collections.get(args.collection)
        if collection is None:
            raise RestyleError(f"no collection named '{args.collection}'")
        objects = [o for o in objects if o.name in collection.all_objects]
    if args.objects:
        objects = [o for o in objects if any(fnmatch.fnmatchcase(o.name, pattern) for pattern in args.objects)]
    if not objects:
        raise RestyleError("no mesh object matches --objects/--collection")
    return objects


def _restyle(args: argparse.Namespace) -> RestyleOptions:
    """The engine's options from the arguments :func:`_engine_arguments` added."""
    return RestyleOptions(strength=args.strength, device=args.device, precision=args.precision,
                          tile_size=args.tile_size, seamless=args.seamless, preserve_colors=args.preserve_colors)


@contextmanager
def _style_image(text: str | None) -> Iterator[str | None]:
    """The name of the --style-image: an image of the open file, or a file loaded for the job
    only (removed again, so the saved .blend does not gain it)."""
    if not text:
        yield None
        return
    if bpy.data.images.get(text) is not None:
        yield text
        return
    if not os.path.isfile(text):
        raise RestyleError(f"--style-image: '{text}' is neither an image of this file nor an image file")
    try:
        image = bpy.data.images.load(text, check_existing=False)
    except RuntimeError as exc:  # Blender's way of saying it cannot decode the file
        raise RestyleError(f"--style-image: '{text}' cannot be read as an image ({str(exc).strip()})") from exc
    try:
        yield image.name
    finally:
        bpy.data.images.remove(image)


def do_stylize_textures(args: argparse.Namespace, work: ItemWork) -> str:
    objects = _objects(args)
    names = [o.name for o in objects]  # names: the objects are looked up again after the job
    options = StylizeTexturesOptions(style=args.style, restyle=_restyle(args), output_dir=args.output_dir or "",
                                     style_weight=args.style_weight)
    with _style_image(args.style_image) as style_image:
        outcome = stylize_textures(objects, options, services_of(bpy.context), style_image)
    work.written.extend(outcome.written)
    for warning in outcome.warnings:
        work.warn(warning)
    for name, why in outcome.failed.items():
        work.warn(f"{name} was not restyled: {why}")
    _say(outcome.summary(args.style), sys.stdout)
    used: set[str] = set()
    for name in names:
        obj = bpy.data.objects.get(name)
        if obj is not None:
            used.update(slot.material.name for slot in obj.material_slots if slot.material)
    return ", ".join(sorted(used))


def _scene() -> bpy.types.Scene:
    scene = bpy.context.scene
    if scene is None:
        raise RestyleError("the file has no scene")
    return scene


def do_stylize_render(args: argparse.Namespace, work: ItemWork) -> str:
    scene = _scene()
    start, end = args.frames or (scene.frame_current, scene.frame_current)
    options = StylizeRenderOptions(style=args.style, frame_start=start, frame_end=end, output_dir=args.output_dir,
                                   restyle=_restyle(args), outlines=args.outlines, depth_falloff=args.depth_falloff,
                                   temporal=args.temporal)
    # The frames are the output, and the result image is packed into the file: a failed save keeps them.
    _say(stylize_render(scene, options, services_of(bpy.context)).summary(), sys.stdout)
    return str(args.output_dir)


def do_import_photo(args: argparse.Namespace, work: ItemWork) -> str:
    photos = [Path(p).resolve() for p in args.photos]
    unique = list(dict.fromkeys(photos))  # a photo named twice (or through a link) is imported once
    for twice in [p for p in unique if photos.count(p) > 1]:
        work.warn(f"{twice.name} is listed more than once (or through a link): imported once")
    options = ImportPhotoOptions(depth_model=args.depth_model, near=args.near, depth_range=args.depth_range,
                                 resolution=args.resolution, cut_threshold=args.cut_threshold,
                                 focal_35mm=args.focal_length, simplify=args.simplify, device=args.device)
    # One job for all of them, as the panel imports several photos: each rig beside the last. A photo that
    # is missing or cannot be read, estimated or built is left out and named in the summary.
    outcome = import_photos(_scene(), unique, options, services_of(bpy.context))
    for warning in outcome.warnings:
        work.warn(warning)
    for reason in outcome.failed:
        work.warn(f"left out: {reason}")
    _say(outcome.summary()[1], sys.stdout)
    return ", ".join(outcome.collections)


def do_depth_mesh(args: argparse.Namespace, work: ItemWork) -> str:
    outcome = mesh_from_depth_pass(_scene(), DepthPassMeshOptions(exr=args.exr or "",
                                                                           resolution=args.resolution))
    _say(outcome.summary(), sys.stdout)
    return outcome.object


# Each action records in its ItemWork the files that only the saved .blend would refer to (restyled
# textures: a failed save removes them) and its warnings.
ACTIONS: dict[str, Callable[[argparse.Namespace, ItemWork], str]] = {
    "stylize-textures": do_stylize_textures,
    "stylize-render": do_stylize_render,
    "import-photo": do_import_photo,
    "depth-mesh": do_depth_mesh,
}


def _open_blend(path: str) -> None:
    """Open one file of a batch, or fail that item with a message saying why."""
    if not os.path.lexists(path):
        raise RestyleError(f"cannot open {path}: no such file")
    if os.path.isdir(path):
        raise RestyleError(f"cannot open {path}: it is a folder, not a .blend file")
    try:
        bpy.ops.wm.open_mainfile(filepath=path)
    except RuntimeError as exc:
        raise RestyleError(f"cannot open {path}: {str(exc).removeprefix('Error: ').strip()}") from exc


def run_scene_command(args: argparse.Namespace, report: Report) -> None:
    action = ACTIONS[args.command]
    if not args.blend:
        item = Item(input=bpy.data.filepath or "(unsaved)")
        save = bool(args.save or args.save_as)
        try:
            _run_and_save(item, args.command, lambda work: action(args, work), save, args.save_as)
            if save and item.status == "done":
                item.output = bpy.data.filepath  # where the file went (--save-as): what a pipeline reads next
        finally:
            report.add(item)
        return
    pending = list(args.blend)
    try:
        while pending:
            path = pending[0]
            item = Item(input=path)

            def process(work: ItemWork, path: str = path) -> str:
                _open_blend(path)
                if not os.access(path, os.W_OK):  # found before the work, which could not be saved
                    raise RestyleError(f"{path} is read-only: it would not be saved, so nothing was done to it")
                return action(args, work)

            try:
                _run_and_save(item, args.command, process, True, None)
            finally:  # also when interrupted in this file: the report says what happened to it
                pending.pop(0)
                report.add(item)
    finally:
        # Stopped by something no item guard catches (Ctrl+C): the files not done yet are
        # in the report too, so nobody takes a short report for a finished batch.
        for path in pending:
            report.items.append(Item(input=path, status="failed", error="not processed: the batch was interrupted"))


def _save(path: str | None, saved: Callable[[], None]) -> None:
    """Save the file (to ``path`` when given) or fail with a one-line reason; ``saved`` is called the
    moment Blender has saved it."""
    try:
        if path:
            bpy.ops.wm.save_as_mainfile(filepath=path)
        elif bpy.data.filepath:
            bpy.ops.wm.save_mainfile()
        else:
            raise RestyleError("the open file was never saved: use --save-as PATH")
        saved()
    except RuntimeError as exc:
        reason = str(exc).removeprefix("Error: ").strip()
        raise RestyleError(f"could not save {path or bpy.data.filepath}: {reason}") from exc


def _discard(written: list[WrittenFiles]) -> str:
    """Remove the texture files an item's work wrote (no saved file will refer to them); what to add
    to its error: how many went, or which could not."""
    count = sum(len(files.paths) for files in written)
    # The last first: an earlier one made the shared output folder, removed once it is empty.
    left = [p for files in reversed(written) for p in files.remove_all()]
    written.clear()
    if not count:
        return ""
    if not left:
        return f"; the {count} image file(s) written for it were removed"
    return f"; {len(left)} of the {count} image file(s) written for it could not be removed: " + ", ".join(left)


def _run_and_save(item: Item, command: str, action: Callable[[ItemWork], str], save: bool,
                  save_as: str | None) -> None:
    """One item: its work, then the save when asked. When the file is to be saved and the work or
    the save fails or is interrupted, the texture files the work wrote are removed: the only file
    that would have referred to them is not saved. Frames of a render are never in ``written``."""
    work = ItemWork(command)
    item.warnings = work.warnings  # the same list: what was said before a failure is kept too
    written = work.written
    saved: list[bool] = []  # not empty once a saved file refers to them: then they stay, whatever follows

    def run() -> str:
        output = action(work)
        if save:
            _save(save_as, lambda: saved.append(True))
        return output

    try:
        _run_item(item, run)
    except BaseException:  # Ctrl+C: no item guard catches it
        if saved:
            item.status, item.error = "failed", "interrupted after the file was saved"
        else:
            item.status, item.error = "failed", "interrupted" + (_discard(written) if save else "")
        raise
    if item.status == "failed" and save and not saved:
        item.error = (item.error or "") + _discard(written)


def _single_item(report: Report, subject: str, work: Callable[[], str]) -> None:
    """The one item of a command that is not about the scene (models download/install/remove,
    learn-style): it is in the report whatever happens, also when Ctrl+C stops it ("interrupted"),
    as a batch lists the file it was interrupted in."""
    item = Item(input=subject)
    started = time.perf_counter()
    try:
        _run_item(item, work)
    except BaseException:  # Ctrl+C: no item guard catches it; _main says so and writes the report
        item.status, item.error = "failed", "interrupted"
        item.seconds = time.perf_counter() - started
        raise
    finally:
        report.add(item)


def _run_item(item: Item, work: Callable[[], str]) -> None:
    """Run one item's work; whatever it raises fails that item only, with a one-line message."""
    started = time.perf_counter()
    try:
        item.output = work()
    except Exception as exc:  # one broken item must not end the run or lose the report
        item.status, item.error = "failed", _describe(exc)
        if is_defect(exc):
            log.debug("restyle: %s failed", item.input, exc_info=True)
    item.seconds += time.perf_counter() - started


# -- models ---------------------------------------------------------------------------
def run_models(args: argparse.Namespace, report: Report) -> None:
    store = preferences.model_store(bpy.context)
    if args.action == "list":
        root = preferences.model_root(bpy.context, create=False)
        for entry in [*ALL_STYLES, *DEPTH_MODELS, *custom_styles(root), *custom_depth_models(root)]:
            state = "built-in" if not entry.files else ("installed" if store.is_installed(entry) else "not installed")
            flags = " [non-commercial]" if entry.non_commercial else ""
            _say(f"{entry.id:<40} {entry.family.value:<10} {state}{flags}", sys.stdout)
            report.items.append(Item(input=entry.id, output=state))
        return
    if args.action == "download":
        _single_item(report, args.model_id, lambda: _download(args.model_id))
        return
    if args.action == "install":
        _single_item(report, args.file, lambda: _install(args.file, args.name, args.depth_output))
        return
    if args.action == "remove":
        _single_item(report, args.model_id, lambda: _remove(args.model_id))
        return
    for entry in ALL_STYLES + DEPTH_MODELS:  # verify
        if entry.files and store.is_installed(entry):
            item = Item(input=entry.id)
            _run_item(item, lambda entry=entry: str(store.verify(entry)))
            report.add(item)


def _learn(args: argparse.Namespace) -> str:
    """Learn Style from Images, blocking; returns the new custom style's id."""
    options = LearnStyleOptions(name=args.name, images=tuple(str(Path(p).resolve()) for p in args.images),
                                content=str(Path(args.content).resolve()) if args.content else "",
                                preset=args.preset, steps=args.steps or 0, seed=args.seed)
    style_id, card = learn_style(bpy.context.selected_objects, options, services_of(bpy.context))
    root = preferences.model_root(bpy.context, create=False)  # the name it got: "Stripes 2" when taken
    name = next((e.name for e in custom_styles(root) if e.id == style_id), args.name.strip())
    _say(f"Learned '{name}' in {card.get('steps', '?')} steps: {style_id}", sys.stdout)
    return style_id


class _DownloadProgress:
    """Progress lines on stderr while a download runs: one per tenth, so a log stays short.
    Called on the download thread (jobs/models.py DownloadJob), which only writes to stderr."""

    STEPS = 10

    def __init__(self, model_id: str) -> None:
        self.model_id, self.shown = model_id, 0

    def __call__(self, done: int, total: int | None) -> None:
        if not total:
            return
        step = min(self.STEPS, done * self.STEPS // total)
        if step > self.shown:
            self.shown = step
            _say(f"restyle models download {self.model_id}: {step * 100 // self.STEPS}% "
                 f"({megabytes(done)} of {megabytes(total)})")


def _download(model_id: str) -> str:
    """The panel's Download (jobs/models.py): the same checks, checksum and online-access refusal."""
    outcome = download_model(model_id, services_of(bpy.context), _DownloadProgress(model_id))
    _say(outcome.summary(), sys.stdout)
    return ", ".join(str(path) for path in outcome.paths.values())


def _remove(model_id: str) -> str:
    _say(remove_model(model_id, services_of(bpy.context)), sys.stdout)  # the panel's Remove: catalog and custom
    return "removed"


def _install(path: str, name: str | None, depth_output: str = DepthOutput.AUTO.value) -> str:
    source = Path(path).resolve()
    try:
        entry, text = add_model_file(source, services_of(bpy.context), name or "", depth_output)
    except (RestyleError, OSError) as exc:
        raise RestyleError(not_added(source, exc)) from exc
    _say(text, sys.stdout)
    _say(f"id: {entry.id}", sys.stdout)  # what --style or --depth-model takes (the name may not map to it)
    if depth_output != DepthOutput.AUTO.value and entry.kind != ModelKind.DEPTH:
        _say(f"restyle models install: --depth-output {depth_output} was not used: {source.name} is a style "
             "model, not a Depth Anything V2 checkpoint")
    return entry.id


def main(argv: list[str]) -> int:
    """The ``restyle`` command handler: argument list in, exit code out. Never raises."""
    try:
        return _main(argv)
    except Exception as exc:  # the last guard: a command line tool answers with an exit code
        log.debug("restyle: unexpected error", exc_info=True)
        _say(f"restyle: {_describe(exc)}")
        return EXIT_FAILED


def _main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        for text in argv:  # no path or name holds one; every file function would raise ValueError on it
            if "\x00" in text:
                raise UsageError(f"restyle: the argument {text!r} contains a NUL character")
        args = parser.parse_args(argv)
        validate(args)
    except UsageError as exc:
        _say(str(exc))
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    report = Report(command=args.command if args.command != "models" else f"models {args.action}")
    code = EXIT_OK
    try:
        if args.command == "models":
            run_models(args, report)
        elif args.command == "learn-style":
            _single_item(report, args.name, lambda: _learn(args))
        else:
            run_scene_command(args, report)
    except Exception as exc:  # outside any item: still report what was done, then fail
        log.debug("restyle: unexpected error", exc_info=True)
        _say(f"restyle {report.command}: stopped: {_describe(exc)}")
        code = EXIT_FAILED
    except KeyboardInterrupt:
        _say(f"restyle {report.command}: interrupted")
        code = EXIT_FAILED
    finally:
        if args.report:
            try:
                report.write(args.report)
            except OSError as exc:
                _say(f"restyle: could not write the report {args.report}: {exc}")
                code = EXIT_FAILED
    return max(code, report.exit_code)


def command_handler(argv: list[str]) -> int:
    """What Blender calls for ``-c restyle``."""
    return main(list(argv))
