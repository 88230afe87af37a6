"""Depth Anything V2 from any file: detection by keys and shapes (Small, Base, Large; prefixes
of fine-tuned and converted files), installation as a named custom depth model, the size limit
that admits Large, and no DAv2 file ever refused as "not a supported style model"."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.depth.anything import estimate_depth, load_depth_network
from ml.errors import UnknownStyleError, UnsupportedModel
from ml.models import registry
from ml.models.catalog import ARCH_SIGNATURES, DEPTH_ARCHS, METRIC_RANGES
from ml.models.custom import (
    DEPTH_PREFIX,
    add_custom,
    custom_depth_models,
    custom_styles,
    read_list,
    remove_custom,
)
from ml.models.loading import build, detect, load_style_network, read_state_dict
from ml.models.store import MAX_MODEL_BYTES, check_model_file, read_contents
from ml.networks.depth_anything import CONFIGS, DepthAnythingV2
from tests.ml import checkpoints

ARCH_OF_SIZE = {"vits": "depth_anything_v2_vits", "vitb": "depth_anything_v2_vitb", "vitl": "depth_anything_v2_vitl"}
PUBLISHED_PARAMS = {"vits": 24_785_089, "vitb": 97_470_785, "vitl": 335_315_649}


@pytest.fixture(scope="module")
def small_file(tmp_path_factory) -> Path:
    """A Small of the exact published layout, random weights: a hash no catalog entry has."""
    path = tmp_path_factory.mktemp("dav2") / "my_finetuned_vits.pth"
    return checkpoints.save(checkpoints.depth_anything_state("vits", seed=7), path)


@pytest.mark.parametrize("size", ["vits", "vitb", "vitl"])
def test_each_size_is_told_apart_by_its_shapes(size):
    state = checkpoints.depth_anything_state(size, meta=True)
    assert sum(t.numel() for t in state.values()) == PUBLISHED_PARAMS[size]  # the published layouts
    assert detect(state, "x.pth").id == ARCH_OF_SIZE[size]


@pytest.mark.parametrize("size", ["vits", "vitb", "vitl"])
def test_each_size_is_recognised_from_the_file_without_torch(tmp_path, size):
    """The torch-free check Blender's process runs on a file reads the same signature (fewer blocks:
    the shapes that tell the sizes apart are all there)."""
    path = checkpoints.save(checkpoints.depth_anything_state(size, blocks=1), tmp_path / f"{size}.pth")
    contents = check_model_file(path, ARCH_OF_SIZE[size])
    assert contents.tensors["pretrained.patch_embed.proj.weight"].shape == (CONFIGS[size].dim, 3, 14, 14)


def _prefixed(state: dict[str, torch.Tensor], variant: str) -> object:
    if variant == "module.":  # DistributedDataParallel
        return {"module." + k: v for k, v in state.items()}
    if variant == "model.":  # a training wrapper's attribute
        return {"model." + k: v for k, v in state.items()}
    if variant == "module.depth_anything.":
        return {"module.depth_anything." + k: v for k, v in state.items()}
    if variant == "wrapped":  # {'model': state_dict, 'optimizer': ..., 'epoch': ...} as fine-tuning saves
        return {"model": {"module." + k: v for k, v in state.items()}, "epoch": torch.tensor(3.0)}
    if variant == "bare encoder":  # converted: the DINOv2 keys without 'pretrained.'
        return {k.removeprefix("pretrained."): v for k, v in state.items()}
    raise AssertionError(variant)


@pytest.mark.parametrize("variant", ["module.", "model.", "module.depth_anything.", "wrapped", "bare encoder"])
def test_prefixed_and_wrapped_files_read_as_the_published_layout(tmp_path, variant):
    state = checkpoints.depth_anything_state("vits", blocks=2)
    path = tmp_path / "converted.pth"
    torch.save(_prefixed(state, variant), path)
    assert check_model_file(path, "depth_anything_v2_vits")  # the check a file passes before install
    loaded = read_state_dict(path)
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_a_prefixed_small_builds_and_estimates_depth(tmp_path, small_file):
    state = torch.load(small_file, weights_only=True)
    path = tmp_path / "ddp.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, path)
    spec, net = build(read_state_dict(path), path.name)
    assert spec.id == "depth_anything_v2_vits"
    assert sum(p.numel() for p in net.parameters()) == PUBLISHED_PARAMS["vits"]


def test_relative_and_metric_heads_hold_the_same_tensors():
    """Why Add from File asks (or reads the name): a metric head only swaps a weightless ReLU for a sigmoid."""
    with torch.device("meta"):
        relative = DepthAnythingV2(CONFIGS["vits"]).state_dict()
        metric = DepthAnythingV2(CONFIGS["vits"].__class__(**{**CONFIGS["vits"].__dict__, "max_depth": 20.0})
                                 ).state_dict()
    assert {k: tuple(v.shape) for k, v in relative.items()} == {k: tuple(v.shape) for k, v in metric.items()}
    assert METRIC_RANGES == {"indoor": 20.0, "outdoor": 80.0}


def test_a_file_of_any_hash_installs_as_a_named_custom_depth_model(tmp_path, small_file):
    root = tmp_path / "models"
    entry = add_custom(root, small_file, "depth_anything_v2_vits", "Room Finetune")
    assert entry.id == DEPTH_PREFIX + "room-finetune" and entry.family == "depth" and entry.max_depth is None
    assert [e.id for e in custom_depth_models(root)] == [entry.id]
    assert custom_styles(root) == []  # never offered as a style
    found = registry.depth_model(entry.id, root)
    assert found.entry == entry and found.kind == "depth" and "Depth Anything V2 Small" in found.description
    # The worker's path: the stored copy loads and gives relief, not a constant.
    net = load_depth_network(root / entry.files[0].filename, entry.max_depth)
    rgb = np.random.default_rng(0).random((42, 56, 3)).astype(np.float32)
    depth = estimate_depth(net, rgb)
    assert depth.shape == (42, 56) and np.isfinite(depth).all() and np.ptp(depth) > 0


def test_a_metric_custom_depth_model_keeps_its_range(tmp_path, small_file):
    root = tmp_path / "models"
    entry = add_custom(root, small_file, "depth_anything_v2_vits", "Street Metric", METRIC_RANGES["outdoor"])
    again = registry.depth_model(entry.id, root)
    assert again.max_depth == 80.0 and "metric, up to 80 m" in again.description
    net = load_depth_network(root / again.files[0].filename, again.max_depth)
    depth = estimate_depth(net, np.full((28, 28, 3), 0.5, np.float32))
    assert depth.min() >= 0 and depth.max() <= 80.0 + 1e-3  # a sigmoid scaled by the range (float rounding)


def test_removing_a_custom_depth_model_deletes_its_file_only(tmp_path, small_file):
    root = tmp_path / "models"
    style = add_custom(root, checkpoints.save(checkpoints.animegan2_state(), tmp_path / "anime.pth"), "animegan2")
    depth = add_custom(root, small_file, "depth_anything_v2_vits", "Mine")
    remove_custom(root, depth.id)
    assert custom_depth_models(root) == [] and [e.id for e in custom_styles(root)] == [style.id]
    assert sorted(p.name for p in (root / "custom").iterdir()) == [f"{style.id}.pth"]
    with pytest.raises(UnknownStyleError, match="not installed any more"):
        registry.depth_model(depth.id, root)


def test_a_style_id_is_not_a_depth_model_and_unknown_ids_name_the_choices(tmp_path):
    root = tmp_path / "models"
    style = add_custom(root, checkpoints.save(checkpoints.animegan2_state(), tmp_path / "anime.pth"), "animegan2")
    with pytest.raises(UnknownStyleError, match="is a style, not a depth model"):
        registry.depth_model(style.id, root)
    with pytest.raises(UnknownStyleError, match="depth-anything-v2-small"):
        registry.depth_model("depth-anything-v9", root)


def test_a_depth_file_recovered_without_its_list_entry_is_still_a_depth_model(tmp_path, small_file):
    root = tmp_path / "models"
    entry = add_custom(root, small_file, "depth_anything_v2_vits", "Lost")
    (root / "custom.json").unlink()
    (root / "custom.json.bak").unlink(missing_ok=True)
    assert [e.id for e in custom_depth_models(root)] == [entry.id]
    assert read_list(root).items[0]["kind"] == "depth"


def test_a_depth_file_given_as_a_style_says_it_is_a_depth_model(small_file):
    with pytest.raises(UnsupportedModel, match="is a depth model .*Depth Anything V2 Small.*Import Photo"):
        load_style_network({"model": small_file})


def test_an_unknown_file_is_not_called_a_style_model_only():
    with pytest.raises(UnsupportedModel, match="not a supported style or depth model") as caught:
        detect({"a.weight": torch.zeros(3)}, "x.pth")
    assert "Depth Anything V2 Large" in str(caught.value)


def _sparse_safetensors(path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    """A safetensors file declaring these fp32 tensors; its data is a hole (no disk space used)."""
    header, offset = {}, 0
    for key, shape in shapes.items():
        size = 4 * int(np.prod(shape))
        header[key] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + offset)
    return path


def test_large_is_admitted_although_it_passes_the_style_limit(tmp_path):
    state = checkpoints.depth_anything_state("vitl", meta=True)
    path = _sparse_safetensors(tmp_path / "depth_anything_v2_vitl.safetensors",
                               {k: tuple(v.shape) for k, v in state.items()})
    contents = read_contents(path)
    assert contents.loaded_bytes == 4 * PUBLISHED_PARAMS["vitl"] > MAX_MODEL_BYTES
    assert check_model_file(path, "depth_anything_v2_vitl")


def test_a_style_file_as_big_as_large_is_still_refused(tmp_path):
    shapes = {key: shape for key, shape in ARCH_SIGNATURES["animegan2"][1] if shape is not None}
    shapes["padding.weight"] = (PUBLISHED_PARAMS["vitl"],)
    path = _sparse_safetensors(tmp_path / "huge_style.safetensors", shapes)
    with pytest.raises(UnsupportedModel, match="more than the 1,074 MB"):
        read_contents(path)


def test_every_depth_arch_has_a_signature():
    assert DEPTH_ARCHS <= set(ARCH_SIGNATURES)
