"""The one door to model knowledge: for any model id (a built-in procedural or learned style, a
published download, a custom file, a depth model) a typed, frozen :class:`ModelDescriptor`, and for
any architecture id its :class:`Architecture`.

Torch-free: Blender's process asks it for menus, licences and downloads. The network itself is
built in the worker by :meth:`ModelDescriptor.build`, which imports torch then and returns a
:class:`LoadedModel` with the facts the tiling engine needs (halo, align, precision), as spandrel's
``ModelDescriptor`` does for a loaded state dict.

Where things go: a new architecture is a line in ``catalog.ARCH_SIGNATURES`` (its keys), one in
``ARCHITECTURE_KINDS``/``NETWORKS`` here and its builder in ``loading.ARCHITECTURES``; a new built-in
style is a catalog entry whose ``network`` names its factory.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UnknownStyleError
from ..options import KIND_OF_FAMILY, ModelFamily, ModelKind
from . import catalog, custom
from .catalog import ARCH_SIGNATURES, ModelEntry, ModelFile, Signature

if TYPE_CHECKING:
    from torch import nn

_ML = __name__.rsplit(".", 2)[0]  # "ml", or the extension's "bl_ext.<repo>.<id>.ml" inside Blender
BUILTIN_DEPTH = "depth-builtin-fast"  # the depth model shipped inside the extension


class ModelSource(StrEnum):
    """Where a model's weights come from."""

    PROCEDURAL = "procedural"  # computed by the add-on: no weights at all
    BUNDLED = "bundled"  # weights shipped inside the extension (ml/weights)
    DOWNLOAD = "download"  # published weights, downloaded on first use
    USER_FILE = "user_file"  # a file the user added (custom/ in the model store)


@dataclass(frozen=True)
class Architecture:
    """A network layout recognised in a state dict by its key names and shapes."""

    id: str
    name: str
    kind: ModelKind
    signature: Signature
    network: str  # "module:factory" under ml that builds it (ml.models.loading derives hyperparameters from shapes)


ARCHITECTURE_KINDS: dict[str, ModelKind] = {
    arch: ModelKind.DEPTH if arch.startswith("depth_anything_v2") else ModelKind.STYLE for arch in ARCH_SIGNATURES
}
NETWORKS: dict[str, str] = {
    "animegan2": "networks.animegan2:AnimeGAN2",
    "cyclegan": "networks.cyclegan:CycleGANGenerator",
    "transformer_net": "networks.transformer_net:TransformerNet",
    "adain_decoder": "networks.adain:AdaIN",
    "adain_vgg": "networks.adain:AdaIN",
    "depth_anything_v2_vits": "networks.depth_anything:DepthAnythingV2",
    "depth_anything_v2_vitb": "networks.depth_anything:DepthAnythingV2",
    "depth_anything_v2_vitl": "networks.depth_anything:DepthAnythingV2",
}
ARCHITECTURES: dict[str, Architecture] = {
    arch: Architecture(arch, name, ARCHITECTURE_KINDS[arch], signature, NETWORKS[arch])
    for arch, (name, signature) in ARCH_SIGNATURES.items()
}


def architecture(arch_id: str) -> Architecture:
    """The architecture ``arch_id`` (a key ml.models.loading detected); UnknownStyleError names the known ones."""
    try:
        return ARCHITECTURES[arch_id]
    except KeyError:
        raise UnknownStyleError(f"Unknown architecture '{arch_id}' (known: {', '.join(ARCHITECTURES)})") from None


def is_depth_architecture(arch_id: str | None) -> bool:
    return arch_id in ARCHITECTURES and ARCHITECTURES[arch_id].kind == ModelKind.DEPTH


@dataclass(frozen=True)
class ModelDescriptor:
    """Everything known about a model without loading it."""

    id: str
    name: str
    description: str
    kind: ModelKind
    family: ModelFamily
    source: ModelSource
    license: str
    non_commercial: bool
    # "module:factory" under ml for models built by name; "" when the files' keys decide (ml.models.loading)
    network: str
    architectures: tuple[str, ...]  # what the files must hold (catalog downloads); () when any supported one may
    files: tuple[ModelFile, ...]
    max_depth: float | None  # depth models: metric range in metres (None: relative)
    entry: ModelEntry  # the catalog or custom entry this describes (the store, menus and operators use it)

    @property
    def needs_files(self) -> bool:
        return bool(self.files)

    def build(self, files: Mapping[str, Path] | None = None) -> LoadedModel:
        """The network, ready to run (imports torch: the worker's side only). ``files`` are the model's
        weight files by role, for models that have them (the store's paths)."""
        from .loading import load_model

        return load_model(self, dict(files or {}))


@dataclass(frozen=True)
class LoadedModel:
    """A built network and the facts the engine plans with."""

    descriptor: ModelDescriptor
    network: nn.Module
    architecture: str  # the detected architecture id, or the factory for models built by name
    halo: int  # pixels of context a tile needs on each side
    align: int  # tile origins are multiples of this
    reduced_precision_ok: bool  # bf16/fp16 measured close enough to fp32
    channels_last: bool


def _source(entry: ModelEntry) -> ModelSource:
    if entry.family == ModelFamily.CUSTOM or entry.id.startswith(custom.PREFIX):
        return ModelSource.USER_FILE
    if entry.files:
        return ModelSource.DOWNLOAD
    # Learned styles and the built-in depth network ship their weights in ml/weights; the rest are computed.
    bundled = entry.family == ModelFamily.LEARNED or entry.id == BUILTIN_DEPTH
    return ModelSource.BUNDLED if bundled else ModelSource.PROCEDURAL


def descriptor_of(entry: ModelEntry) -> ModelDescriptor:
    """The descriptor of a catalog or custom entry, from the entry's own fields."""
    network = f"{entry.module}:{entry.factory}" if entry.module and entry.factory else ""
    return ModelDescriptor(
        id=entry.id, name=entry.name, description=entry.description, kind=KIND_OF_FAMILY[entry.family],
        family=entry.family,
        source=_source(entry), license=entry.license, non_commercial=entry.non_commercial, network=network,
        architectures=tuple(f.arch for f in entry.files if f.arch), files=entry.files, max_depth=entry.max_depth,
        entry=entry,
    )


def catalog_entries() -> tuple[ModelEntry, ...]:
    """Every model the extension itself offers: styles (in menu order), then depth models."""
    return catalog.ALL_STYLES + catalog.DEPTH_MODELS


def describe(model_id: str, root: Path | None = None, kind: ModelKind | None = None) -> ModelDescriptor:
    """The descriptor of ``model_id``: a catalog model, or (with the model store's ``root``) one the user
    added. ``kind`` insists on a style or a depth model. Raises UnknownStyleError naming the choices, or
    custom.CustomStyleMissing when a custom model's file is gone."""
    entry = catalog.entry_by_id(model_id)
    if entry is None and root is not None and model_id.startswith(custom.PREFIX):
        entry = custom.find_custom(model_id, root)
    if entry is None:
        raise _unknown(model_id, root, kind)
    descriptor = descriptor_of(entry)
    if kind is not None and descriptor.kind != kind:
        raise UnknownStyleError(f"'{entry.name}' is a {_WHAT[descriptor.kind]}, not a {_WHAT[kind]}")
    return descriptor


_WHAT = {ModelKind.STYLE: "style", ModelKind.DEPTH: "depth model"}


def _unknown(model_id: str, root: Path | None, kind: ModelKind | None) -> UnknownStyleError:
    # Without a kind the user asked for a style (the style menu, --style, models download): say so.
    what = _WHAT[kind or (ModelKind.DEPTH if model_id.startswith(custom.DEPTH_PREFIX) else ModelKind.STYLE)]
    if model_id.startswith(custom.PREFIX):
        return UnknownStyleError(f"The custom {what} '{model_id}' is not installed any more")
    known = [e.id for e in catalog_entries() if kind is None or e.kind == kind]
    mine = [e.id for e in custom.all_custom(root) if kind is None or e.kind == kind] if root is not None else []
    return UnknownStyleError(f"Unknown {what} '{model_id}' (known{' styles' if what == 'style' else ''}: "
                             f"{', '.join(known + mine)})")


def style(model_id: str, root: Path | None = None) -> ModelDescriptor:
    return describe(model_id, root, ModelKind.STYLE)


def depth_model(model_id: str, root: Path | None = None) -> ModelDescriptor:
    return describe(model_id, root, ModelKind.DEPTH)


def depth_file(path: Path, max_depth: float | None) -> ModelDescriptor:
    """A descriptor for a depth checkpoint known only by its file (the worker's depth request)."""
    entry = ModelEntry(f"{custom.DEPTH_PREFIX}{path.stem}", path.stem, f"Depth model from {path.name}",
                       ModelFamily.DEPTH, license="as its author licensed it",
                       files=(ModelFile("model", str(path), url=""),), max_depth=max_depth)
    return descriptor_of(entry)


def style_for_files(model_id: str, files: Mapping[str, str]) -> ModelDescriptor:
    """The worker's view of a style request: a catalog style by id, or a file the user added (the worker
    does not read the user's list: the files' keys decide what it is)."""
    entry = catalog.entry_by_id(model_id)
    if entry is not None or not any(files.values()):
        return describe(model_id, kind=ModelKind.STYLE)
    return descriptor_of(ModelEntry(model_id, model_id, "A model from a file", ModelFamily.CUSTOM,
                                    license="as its author licensed it",
                                    files=tuple(ModelFile(role, path, url="") for role, path in files.items())))


def depth_for_files(files: Mapping[str, str], max_depth: float | None) -> ModelDescriptor:
    """The worker's view of a depth request: the file given, or the built-in depth model when none is."""
    path = files.get("model") or ""
    return depth_file(Path(path), max_depth) if path else describe(BUILTIN_DEPTH, kind=ModelKind.DEPTH)


def import_network(reference: str) -> Any:
    """The factory a ``module:attribute`` reference under ml names (imports it: the worker's side)."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(f"{_ML}.{module}"), attribute)
