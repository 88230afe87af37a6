"""Model files to networks, safely.

Files are read with ``torch.load(weights_only=True)`` (a pickle that would run code or
build anything but tensors is refused without running) or as safetensors. State dicts
are canonicalised (wrapping dicts, ``module.`` prefixes, legacy norm buffers), then
matched against a registry of architecture specs by key names and tensor shapes, never
by file name. Each spec derives its hyperparameters from the shapes.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import UnknownStyleError, UnsafeModelFile, UnsupportedModel
from ..networks.adain import AdaIN
from ..networks.animegan2 import AnimeGAN2
from ..networks.base import StyleNet
from ..networks.cyclegan import CycleGANGenerator
from ..networks.depth_anything import DepthAnythingV2, config_from_state
from ..networks.transformer_net import TransformerNet
from ..options import ModelKind
from .catalog import ADAIN_HALVES
from .registry import architecture, import_network, is_depth_architecture
from .store import LEGACY_BUFFER, MAX_MODEL_BYTES, WRAPPER_KEYS, check_weights, key_mapper, read_contents

if TYPE_CHECKING:
    from .registry import LoadedModel, ModelDescriptor

StateDict = dict[str, torch.Tensor]


def read_state_dict(path: Path, keep_norm_buffers: bool = False) -> StateDict:
    """Tensors of a .pth/.pt/.ckpt or .safetensors file; raises UnsafeModelFile.

    Normalisation running statistics are dropped (legacy InstanceNorm buffers of old GAN
    files) unless ``keep_norm_buffers`` is set for networks with real BatchNorm layers."""
    path = Path(path)
    # Names, dtypes and declared sizes first, from the file's table alone: a small file that
    # expands to gigabytes, a truncated one, or integer weights are refused before torch reads it.
    contents = read_contents(path, MAX_MODEL_BYTES)
    check_weights(contents, path.name)
    if contents.format == "safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise UnsupportedModel("reading .safetensors files needs the safetensors package") from exc
        try:
            return canonical(dict(load_file(str(path))), path.name, keep_norm_buffers)
        except Exception as exc:  # noqa: BLE001 - untrusted bytes; safetensors raises its own error types
            raise UnsupportedModel(f"{path.name} is not a readable safetensors file ({exc})") from exc
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # the weights-only unpickler refused something
        if "GLOBAL" not in str(exc):  # not a reference to code: just bytes that are no model
            raise UnsupportedModel(f"{path.name} is not a readable PyTorch model file") from exc
        raise UnsafeModelFile(
            f"Refused {path.name}: it contains objects other than tensors, and loading it could run "
            "code. Only plain weight files are accepted"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - untrusted bytes can fail in any way; none of it ran code
        raise UnsupportedModel(f"{path.name} is not a readable PyTorch model file ({type(exc).__name__})") from exc
    return canonical(data, path.name, keep_norm_buffers)


def canonical(data: object, name: str = "file", keep_norm_buffers: bool = False) -> StateDict:
    """Unwrap, strip ``module.`` and wrapper prefixes (store.key_mapper) and drop legacy normalisation buffers."""
    for _ in range(3):  # wrappers can nest: {"state_dict": {"model": {...}}}
        if isinstance(data, dict) and not _all_tensors(data):
            inner = next((data[k] for k in WRAPPER_KEYS if k in data and isinstance(data[k], dict)), None)
            if inner is None:
                break
            data = inner
    if not isinstance(data, dict) or not data or not _all_tensors(data):
        raise UnsupportedModel(f"{name} does not hold a state dict of tensors")
    state: StateDict = {}
    rename = key_mapper([k[len("module."):] if k.startswith("module.") else k for k in data])
    for key, value in data.items():
        key = rename(key[len("module."):] if key.startswith("module.") else key)
        if keep_norm_buffers or not LEGACY_BUFFER.search(key):
            state[key] = value
    check_values(state, name)
    return state


def check_values(state: StateDict, name: str) -> None:
    """Refuse weights that load but cannot give a picture: not floating point, NaN or infinite."""
    for key, tensor in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        if not tensor.is_floating_point():
            raise UnsupportedModel(f"{name} holds the tensor '{key}' as {str(tensor.dtype).removeprefix('torch.')}; "
                                   "a model's weights are floating point. The file is damaged or was converted wrongly")
        if not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise UnsupportedModel(f"{name} is damaged: the tensor '{key}' holds {bad:,} NaN or infinite value(s), "
                                   "which would restyle to black or noise")


def _all_tensors(data: dict) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items())


@dataclass(frozen=True)
class ArchSpec:
    id: str
    name: str
    required: tuple[tuple[str, tuple[int, ...] | None], ...]  # key, expected shape (None: any)
    build: Callable[[StateDict], StyleNet | torch.nn.Module]

    def mismatch(self, state: StateDict) -> str | None:
        """Why the state dict is not this architecture, or None when it is."""
        for key, shape in self.required:
            if key not in state:
                return f"no '{key}'"
            if shape is not None and tuple(state[key].shape) != shape:
                return f"'{key}' has shape {tuple(state[key].shape)}, expected {shape}"
        return None


def _cyclegan(state: StateDict) -> CycleGANGenerator:
    blocks = len({k.split(".")[1] for k in state if ".conv_block." in k})
    return CycleGANGenerator(blocks)


def _spec(arch: str, build: Callable[[StateDict], StyleNet | torch.nn.Module]) -> ArchSpec:
    known = architecture(arch)  # one table (ml.models.registry), shared with the torch-free download check
    return ArchSpec(arch, known.name, known.signature, build)


def _depth_anything(state: StateDict) -> DepthAnythingV2:
    """The network for a Depth Anything V2 file of any size; the relative head (a metric head has the
    same weights and only its output differs, which the caller chooses)."""
    if "pretrained.mask_token" not in state and "pretrained.cls_token" in state:
        # Unused at inference; some converters drop it. Zeros keep the strict load strict elsewhere.
        state["pretrained.mask_token"] = torch.zeros(1, state["pretrained.cls_token"].shape[-1])
    try:
        return DepthAnythingV2(config_from_state(state))
    except (KeyError, ValueError) as exc:
        raise UnsupportedModel(f"it has Depth Anything V2's layout but not its structure: {exc}") from exc


ARCHITECTURES: tuple[ArchSpec, ...] = (
    _spec("animegan2", lambda s: AnimeGAN2()),
    _spec("cyclegan", _cyclegan),
    _spec("transformer_net", lambda s: TransformerNet()),
    _spec("adain_decoder", lambda s: AdaIN().decoder),
    _spec("adain_vgg", lambda s: AdaIN().vgg),
    _spec("depth_anything_v2_vits", _depth_anything),
    _spec("depth_anything_v2_vitb", _depth_anything),
    _spec("depth_anything_v2_vitl", _depth_anything),
)


def detect(state: StateDict, name: str = "file") -> ArchSpec:
    reasons = []
    for spec in ARCHITECTURES:
        why = spec.mismatch(state)
        if why is None:
            return spec
        reasons.append(f"{spec.name} ({why})")
    raise UnsupportedModel(f"{name} is not a supported style or depth model. Tried: " + "; ".join(reasons))


def build(state: StateDict, name: str = "file") -> tuple[ArchSpec, torch.nn.Module]:
    """The network for a state dict, with its weights loaded (strictly)."""
    spec = detect(state, name)
    model = spec.build(state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1:2] or [str(exc)]
        raise UnsupportedModel(f"{name} looks like {spec.name} but its weights do not fit: {first[0].strip()}") from exc
    return spec, model.eval()


def load_style_network(paths: dict[str, Path]) -> tuple[str, StyleNet]:
    """A ready style network from its file(s): one file, or AdaIN's decoder + vgg pair."""
    specs = {}
    for role, path in paths.items():
        specs[role] = build(read_state_dict(path), Path(path).name)
    kinds = {spec.id: model for spec, model in specs.values()}
    if set(kinds) == {"adain_decoder", "adain_vgg"}:
        net = AdaIN()
        net.decoder.load_state_dict(kinds["adain_decoder"].state_dict())
        net.vgg.load_state_dict(kinds["adain_vgg"].state_dict())
        return "adain", net.eval()
    if len(kinds) == 1:
        spec_id, model = next(iter(kinds.items()))
        if isinstance(model, StyleNet):
            return spec_id, model
        if is_depth_architecture(spec_id):
            raise UnsupportedModel(f"this file is a depth model ({architecture(spec_id).name}), not a style: "
                                   "pick it as the Depth Model of Import Photo")
        half, other = ADAIN_HALVES.get(spec_id, (spec_id, "its other half"))
        raise UnsupportedModel(f"this file is only the AdaIN {half}: AdaIN also needs {other}")
    raise UnsupportedModel(f"these files do not make one model: {', '.join(sorted(kinds))}")


def load_model(descriptor: ModelDescriptor, files: dict[str, Path]) -> LoadedModel:
    """The network a descriptor names, built (models built by name) or read from its files, with the
    facts the engine plans with. Depth files are Depth Anything V2 (ml.depth.anything); style files are detected
    by their keys."""
    from .registry import LoadedModel

    if descriptor.network and not files:
        network = import_network(descriptor.network)()
        arch = descriptor.network
    elif not files:
        raise UnknownStyleError(f"'{descriptor.name}' needs its model file(s): download or add it first")
    elif descriptor.kind == ModelKind.DEPTH:
        from ..depth.anything import load_depth_network

        network = load_depth_network(Path(files["model"]), descriptor.max_depth)
        arch = "depth_anything_v2"
    else:
        arch, network = load_style_network({role: Path(path) for role, path in files.items()})
    if descriptor.kind == ModelKind.STYLE and not isinstance(network, StyleNet):
        raise UnsupportedModel(f"'{descriptor.name}' does not build a style network")
    return LoadedModel(
        descriptor, network.eval(), arch,
        halo=int(getattr(network, "halo", 0)), align=int(getattr(network, "align", 1)),
        reduced_precision_ok=bool(getattr(network, "reduced_precision_ok", False)),
        channels_last=bool(getattr(network, "channels_last", False)),
    )
