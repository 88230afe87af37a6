"""Every choice, range and default of a job, written once.

Torch-free and bpy-free: the scene properties, the CLI, the worker client, the worker and
the engine all read their menus, limits and defaults from here, so a choice never changes
spelling between them. A choice is a ``StrEnum`` whose *value* is the lower-case word the
CLI and the wire use and whose *name* is the identifier Blender's EnumProperty saves
(``Precision.FULL`` is ``"full"`` on the command line and ``'FULL'`` in a .blend).
Requests are frozen dataclasses that check themselves (``validated()``) and cross the
process boundary as plain JSON (``to_wire()`` / ``from_wire()``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

E = TypeVar("E", bound=StrEnum)
OptionsT = TypeVar("OptionsT")  # an options dataclass


# -- choices ------------------------------------------------------------------------------
class Device(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
    MPS = "mps"


class Precision(StrEnum):
    AUTO = "auto"
    FULL = "full"
    REDUCED = "reduced"


class Seamless(StrEnum):
    AUTO = "auto"
    ON = "on"
    OFF = "off"


class TileMode(StrEnum):
    """How the tile size was chosen: a tile size of 0 (``AUTO_TILE``) means Auto."""

    AUTO = "auto"
    MANUAL = "manual"


class OutputMode(StrEnum):
    FILES = "files"
    PACK = "pack"


class ModelKind(StrEnum):
    STYLE = "style"
    DEPTH = "depth"


class ModelFamily(StrEnum):
    """Where a model comes from; the style menu groups by it, in this order."""

    BUILTIN = "builtin"  # procedural styles computed by the add-on
    LEARNED = "learned"  # styles this project trained, shipped as weights
    GAN = "gan"  # published generators, downloaded on first use
    ARBITRARY = "arbitrary"  # takes the look of a style image (AdaIN)
    CUSTOM = "custom"  # a file the user added
    DEPTH = "depth"  # depth estimators (published, built-in or the user's)


# What a model of each family does: the one rule, read by the catalog's entries and the registry.
KIND_OF_FAMILY: dict[ModelFamily, ModelKind] = {
    family: ModelKind.DEPTH if family is ModelFamily.DEPTH else ModelKind.STYLE for family in ModelFamily
}


class DepthOutput(StrEnum):
    """What a Depth Anything V2 file's head gives: relative and metric heads hold the same tensors."""

    AUTO = "auto"
    RELATIVE = "relative"
    METRIC_INDOOR = "metric_indoor"
    METRIC_OUTDOOR = "metric_outdoor"


class DepthSource(StrEnum):
    """The two depth choices of Import Photo that are not a model id (written as the UI saves them)."""

    AUTO = "AUTO"
    FLAT = "FLAT"


class LearnPreset(StrEnum):
    DRAFT = "draft"
    DEFAULT = "default"
    HIGH = "high"


# The menu text of each choice: (label, description), per enum (members of different enums with the
# same value are equal strings, so one flat dict would mix them up). Blender's EnumProperty items and
# the CLI's help are built from these.
CHOICE_TEXT: dict[type[StrEnum], dict[StrEnum, tuple[str, str]]] = {
    Device: {
        Device.AUTO: ("Auto", "The fastest device this machine has (CUDA, then Apple MPS, then CPU)"),
        Device.CPU: ("CPU", "Run on the processor (always available)"),
        Device.CUDA: ("CUDA", "Run on an NVIDIA GPU"),
        Device.MPS: ("Apple MPS", "Run on an Apple Silicon GPU"),
    },
    Precision: {
        Precision.AUTO: ("Auto", "Reduced precision (bf16/fp16) where the model's measured error allows it"),
        Precision.FULL: ("Full", "Always compute in 32-bit floating point"),
        Precision.REDUCED: ("Reduced", "bf16/fp16 wherever the device supports it: fastest, small colour differences"),
    },
    Seamless: {
        Seamless.AUTO: ("Auto", "Detect whether each texture tiles and keep it tiling if it does"),
        Seamless.ON: ("On", "Treat every texture as tileable"),
        Seamless.OFF: ("Off", "Treat every texture as a single image"),
    },
    OutputMode: {
        OutputMode.FILES: ("Files", "Save restyled images under //restyled/ beside the .blend (packed while unsaved)"),
        OutputMode.PACK: ("Pack", "Pack restyled images into the .blend"),
    },
    DepthOutput: {
        DepthOutput.AUTO: ("Auto", "Depth Anything V2 files: metric when the file name says 'metric' (Hypersim or "
                           "'indoor': 20 m, VKITTI, KITTI or 'outdoor': 80 m), else relative"),
        DepthOutput.RELATIVE: ("Relative", "The network gives relative inverse depth (the published non-metric "
                               "checkpoints)"),
        DepthOutput.METRIC_INDOOR: ("Metric, Indoor (20 m)",
                                    "A metric head trained for rooms: depth in metres up to 20"),
        DepthOutput.METRIC_OUTDOOR: ("Metric, Outdoor (80 m)",
                                     "A metric head trained for streets: depth in metres up to 80"),
    },
    DepthSource: {
        DepthSource.AUTO: ("Auto", "A downloaded depth model if one is installed, else the built-in fast one"),
        DepthSource.FLAT: ("Flat", "No depth: the photo on a plane"),
    },
    LearnPreset: {
        LearnPreset.DRAFT: ("Draft", "400 steps on 128 px crops: a first look in a few minutes"),
        LearnPreset.DEFAULT: ("Default", "1200 steps on 128 px crops"),
        LearnPreset.HIGH: ("High", "2400 steps on 192 px crops: finer, several times longer"),
    },
    ModelFamily: {
        ModelFamily.BUILTIN: ("Built-in", "Styles computed by the add-on itself: no download needed"),
        ModelFamily.LEARNED: ("Built-in (Learned)", "Styles trained by the add-on's authors, shipped with it"),
        ModelFamily.GAN: ("Downloaded GAN Styles", "Published style networks, downloaded on first use"),
        ModelFamily.ARBITRARY: ("Arbitrary (Style Image)", "Styles that take the look of any image you choose"),
        ModelFamily.CUSTOM: ("Custom", "Style models you added from files"),
        ModelFamily.DEPTH: ("Depth", "Networks that estimate depth from one photo"),
    },
}
# Metric heads: the range the published metric checkpoints were trained for, in metres.
METRIC_RANGES: dict[DepthOutput, float] = {DepthOutput.METRIC_INDOOR: 20.0, DepthOutput.METRIC_OUTDOOR: 80.0}


def label(member: StrEnum) -> str:
    return CHOICE_TEXT[type(member)][member][0]


def description(member: StrEnum) -> str:
    return CHOICE_TEXT[type(member)][member][1]


def enum_items(kind: type[StrEnum]) -> list[tuple[str, str, str]]:
    """Blender EnumProperty items ``(IDENTIFIER, label, description)`` for every member of ``kind``."""
    return [(member.name, *CHOICE_TEXT[kind][member]) for member in kind]


def choice(kind: type[E], value: object) -> E:
    """``value`` as a member of ``kind``: the member itself, its value (``"full"``, the CLI's and the
    wire's spelling) or its name (``"FULL"``, what Blender's EnumProperty holds)."""
    if isinstance(value, kind):
        return value
    text = str(value)
    for member in kind:
        if text in (member.value, member.name) or text.lower() == member.value.lower():
            return member
    allowed = ", ".join(member.value for member in kind)
    raise ValueError(f"{_words(kind.__name__)} must be one of {allowed}, got '{text}'")


def _words(name: str) -> str:
    """``"DepthOutput"`` -> ``"depth output"``."""
    return "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()


# -- ranges -------------------------------------------------------------------------------
N = TypeVar("N", int, float)


@dataclass(frozen=True)
class Range:
    """A number's default and limits; ``soft_max`` is where a UI slider stops (typing may go further)."""

    what: str
    default: float
    min: float
    max: float
    soft_max: float | None = None

    def check(self, value: N) -> N:
        # ``not lo <= v <= hi`` also refuses NaN, which compares false.
        if isinstance(value, bool) or not (isinstance(value, (int, float)) and self.min <= value <= self.max):
            raise ValueError(f"{self.what} must be within {_num(self.min)}..{_num(self.max)}, got {value!r}")
        return value


def _num(value: float) -> str:
    return f"{value:g}" if not float(value).is_integer() or abs(value) < 1e6 else str(int(value))


AUTO_TILE = 0  # tile size 0: the largest tile the free memory allows (the whole image when it fits)
MIN_MANUAL_TILE = 64  # the engine's smallest tile
TILE_SIZE = Range("tile size", AUTO_TILE, AUTO_TILE, 8192)
TILE_STEP = 64  # the tile size slider's step
FEATHER = 8  # pixels over which neighbouring tiles cross-fade
STRENGTH = Range("strength", 1.0, 0.0, 1.0)
STYLE_WEIGHT = Range("style weight", 1.0, 0.0, 1.0)
OUTLINES = Range("outlines", 0.0, 0.0, 1.0)
DEPTH_FALLOFF = Range("depth falloff", 0.0, 0.0, 1.0)
TEMPORAL = Range("temporal steadiness", 0.0, 0.0, 0.95)
NEAR = Range("near distance", 2.0, 0.01, 1e6, soft_max=100.0)
DEPTH_RANGE = Range("depth range", 6.0, 0.01, 1e6, soft_max=1000.0)
MESH_RESOLUTION = Range("resolution", 512, 2, 8192)
PHOTO_CUT = Range("cut at depth jump", 0.08, 0.0, 10.0)
PASS_CUT = Range("cut at depth jump", 0.05, 0.0, 10.0)
FOCAL_35MM = Range("focal length (35 mm)", 35.0, 1.0, 5000.0)
LEARN_STEPS = Range("steps", 0, 0, 100_000)  # 0: the preset's
LEARN_SEED = Range("seed", 0, 0, 2**31 - 1)
LEARN_IMAGES = Range("number of style images", 1, 1, 30)
FRAME = Range("frame", 0, 0, 1_048_574)  # Blender's MAXFRAME: a scene's frame numbers stop there


def check_tile_size(size: int) -> int:
    """0 (Auto) or a manual size of at least ``MIN_MANUAL_TILE`` within ``TILE_SIZE``."""
    if isinstance(size, bool) or not isinstance(size, int) or (
            size != AUTO_TILE and not MIN_MANUAL_TILE <= size <= TILE_SIZE.max):
        raise ValueError(f"tile size must be 0 (Auto) or at least {MIN_MANUAL_TILE} pixels (at most "
                         f"{int(TILE_SIZE.max)}), got {size!r}")
    return size


# -- requests -----------------------------------------------------------------------------
def _coerce_choices(options: object) -> None:
    """Turn the enum fields of a frozen dataclass that were given as text into members
    (the engine's, CLI's and Blender's spellings are all accepted)."""
    for spec in dataclasses.fields(options):  # type: ignore[arg-type]
        kind = _ENUM_FIELDS.get(spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", ""))
        if kind is not None:
            object.__setattr__(options, spec.name, choice(kind, getattr(options, spec.name)))


@dataclass(frozen=True)
class RestyleOptions:
    """How one image is restyled (the engine's options)."""

    strength: float = STRENGTH.default
    device: Device = Device.AUTO
    precision: Precision = Precision.AUTO
    tile_size: int = AUTO_TILE  # pixels per tile side; AUTO_TILE (0): the largest that fits in free memory
    seamless: Seamless = Seamless.AUTO
    preserve_colors: bool = False
    feather: int = FEATHER
    memory_budget: int = 0  # bytes Auto may plan with; 0: a safe share of the device's free memory
    reuse_activations: bool = True  # exact passes resume from stored activations (False: the old schedule)

    def __post_init__(self) -> None:
        _coerce_choices(self)

    @property
    def tile_mode(self) -> TileMode:
        return TileMode.AUTO if self.tile_size == AUTO_TILE else TileMode.MANUAL

    def validated(self) -> RestyleOptions:
        STRENGTH.check(float(self.strength))
        check_tile_size(self.tile_size)
        if self.memory_budget < 0:
            raise ValueError(f"memory budget must be 0 (Auto) or a number of bytes, got {self.memory_budget}")
        if self.feather < 0:
            raise ValueError(f"feather must be 0 or more pixels, got {self.feather}")
        return self

    def to_wire(self) -> dict[str, Any]:
        return to_wire(self)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> RestyleOptions:
        return from_wire(cls, data)


@dataclass(frozen=True)
class StylizeTexturesOptions:
    """Stylize Textures: which style, how each image is restyled, and where the results go."""

    style: str
    restyle: RestyleOptions = field(default_factory=RestyleOptions)
    style_weight: float = STYLE_WEIGHT.default  # the arbitrary style: how much of the style image's look
    output: OutputMode = OutputMode.FILES
    output_dir: str = ""  # empty: //restyled/ beside the .blend

    def __post_init__(self) -> None:
        _coerce_choices(self)

    def validated(self) -> StylizeTexturesOptions:
        if not self.style:
            raise ValueError("pick a style")
        self.restyle.validated()
        STYLE_WEIGHT.check(float(self.style_weight))
        return self


@dataclass(frozen=True)
class StylizeRenderOptions:
    """Stylize Render: a style over rendered frames, with outlines and depth from the passes."""

    style: str
    output_dir: str
    frame_start: int = 0  # 0: the scene's current frame
    frame_end: int = 0  # 0: the start frame
    restyle: RestyleOptions = field(default_factory=RestyleOptions)
    outlines: float = OUTLINES.default
    depth_falloff: float = DEPTH_FALLOFF.default
    temporal: float = TEMPORAL.default

    def validated(self) -> StylizeRenderOptions:
        if not self.style:
            raise ValueError("pick a style")
        self.restyle.validated()
        OUTLINES.check(float(self.outlines))
        DEPTH_FALLOFF.check(float(self.depth_falloff))
        TEMPORAL.check(float(self.temporal))
        if self.frame_start < 0 or self.frame_end < 0:
            raise ValueError("frame numbers must not be negative")
        FRAME.check(self.frame_start)
        FRAME.check(self.frame_end)
        return self


@dataclass(frozen=True)
class ImportPhotoOptions:
    """Import Photo: a depth model (an id, ``DepthSource.AUTO`` or ``DepthSource.FLAT``) and the mesh."""

    depth_model: str = DepthSource.AUTO
    near: float = NEAR.default
    depth_range: float = DEPTH_RANGE.default
    resolution: int = int(MESH_RESOLUTION.default)  # vertices along the photo's longer side
    cut_threshold: float = PHOTO_CUT.default
    focal_35mm: float = FOCAL_35MM.default  # when the photo's EXIF does not say
    simplify: bool = False
    device: Device = Device.AUTO

    def __post_init__(self) -> None:
        _coerce_choices(self)

    def validated(self) -> ImportPhotoOptions:
        NEAR.check(float(self.near))
        DEPTH_RANGE.check(float(self.depth_range))
        MESH_RESOLUTION.check(self.resolution)
        PHOTO_CUT.check(float(self.cut_threshold))
        FOCAL_35MM.check(float(self.focal_35mm))
        return self


@dataclass(frozen=True)
class DepthPassMeshOptions:
    """Mesh from Depth Pass: exact geometry from a render's depth pass (rendered now, or read from ``exr``)."""

    exr: str = ""
    resolution: int = int(MESH_RESOLUTION.default)
    cut_threshold: float = PASS_CUT.default

    def validated(self) -> DepthPassMeshOptions:
        MESH_RESOLUTION.check(self.resolution)
        PASS_CUT.check(float(self.cut_threshold))
        return self


@dataclass(frozen=True)
class LearnStyleOptions:
    """Learn Style from Images: the user's choices (the trainer's own knobs live in ml.training)."""

    name: str
    images: tuple[str, ...] = ()  # files or folders of style images
    content: str = ""  # a folder of content images; empty: the scene's textures and Blender's HDRIs
    preset: LearnPreset = LearnPreset.DEFAULT
    steps: int = int(LEARN_STEPS.default)  # 0: the preset's
    seed: int = int(LEARN_SEED.default)

    def __post_init__(self) -> None:
        _coerce_choices(self)

    def validated(self) -> LearnStyleOptions:
        if not self.name.strip():
            raise ValueError("the new style needs a name")
        LEARN_STEPS.check(self.steps)
        LEARN_SEED.check(self.seed)
        return self


_ENUM_FIELDS: dict[str, type[StrEnum]] = {
    kind.__name__: kind
    for kind in (Device, Precision, Seamless, TileMode, OutputMode, ModelKind, ModelFamily, DepthOutput,
                 DepthSource, LearnPreset)
}
_NESTED: dict[str, type] = {"RestyleOptions": RestyleOptions}


# -- the wire -----------------------------------------------------------------------------
def to_wire(options: object) -> dict[str, Any]:
    """Plain JSON of an options dataclass: enums as their values, tuples as lists, nested options as objects."""
    out: dict[str, Any] = {}
    for spec in dataclasses.fields(options):  # type: ignore[arg-type]
        value = getattr(options, spec.name)
        if dataclasses.is_dataclass(value):
            value = to_wire(value)
        elif isinstance(value, StrEnum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        out[spec.name] = value
    return out


def from_wire(kind: type[OptionsT], data: Mapping[str, Any]) -> OptionsT:
    """The options dataclass ``kind`` from its JSON; an unknown field or a wrong type is a ValueError
    naming it (a client and a worker of different versions must not silently disagree)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{kind.__name__} must be an object, got {type(data).__name__}")
    specs = {spec.name: spec for spec in dataclasses.fields(kind)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(specs))
    if unknown:
        raise ValueError(f"unknown {kind.__name__} field(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, raw in data.items():
        type_name = str(specs[name].type)
        if type_name in _NESTED:
            values[name] = from_wire(_NESTED[type_name], raw)
        elif type_name.startswith("tuple"):
            values[name] = tuple(raw)
        else:
            values[name] = _typed(kind.__name__, name, type_name, raw)
    return kind(**values)


def _typed(owner: str, name: str, type_name: str, raw: Any) -> Any:
    """Numbers and flags checked by kind: JSON has one number type, so an int field refuses 1.5."""
    wrong = ValueError(f"{owner}.{name} must be {type_name}, got {raw!r}")
    if type_name == "bool":
        if not isinstance(raw, bool):
            raise wrong
    elif type_name == "int":
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise wrong
    elif type_name == "float":
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            raise wrong
        return float(raw)
    elif type_name == "str":
        if not isinstance(raw, str):
            raise wrong
    return raw
