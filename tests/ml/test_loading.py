import os
import pickle
from pathlib import Path

import pytest
import torch

from ml.errors import UnsafeModelFile, UnsupportedModel
from ml.models.loading import build, canonical, detect, load_style_network, read_state_dict
from ml.networks.cyclegan import CycleGANGenerator
from tests.ml import checkpoints


def test_legacy_instance_norm_buffers_are_dropped_and_cyclegan_loads(tmp_path):
    state = checkpoints.cyclegan_state(blocks=9, legacy=True)
    assert any(k.endswith("running_mean") for k in state)
    path = checkpoints.save(state, tmp_path / "style_monet.pth")
    spec_id, net = load_style_network({"model": path})
    assert spec_id == "cyclegan" and isinstance(net, CycleGANGenerator) and net.blocks == 9


def test_six_block_cyclegan_is_detected_from_keys(tmp_path):
    path = checkpoints.save(checkpoints.cyclegan_state(blocks=6), tmp_path / "x.pth")
    _, net = load_style_network({"model": path})
    assert net.blocks == 6


def test_transformer_net_with_running_stats_loads(tmp_path):
    state = checkpoints.transformer_state(legacy=True)
    assert "in1.running_mean" in state
    assert load_style_network({"model": checkpoints.save(state, tmp_path / "candy.pth")})[0] == "transformer_net"


def test_detection_ignores_the_file_name(tmp_path):
    path = checkpoints.save(checkpoints.animegan2_state(), tmp_path / "cyclegan_monet.pth")
    assert load_style_network({"model": path})[0] == "animegan2"


def test_wrapped_and_data_parallel_dicts_are_unwrapped():
    state = checkpoints.animegan2_state()
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}
    assert canonical(wrapped).keys() == state.keys()


def test_adain_needs_both_files(tmp_path):
    parts = checkpoints.adain_states()
    decoder = checkpoints.save(parts["decoder"], tmp_path / "decoder.pth")
    vgg = checkpoints.save(parts["vgg"], tmp_path / "vgg_normalised.pth")
    assert load_style_network({"decoder": decoder, "vgg": vgg})[0] == "adain"
    with pytest.raises(UnsupportedModel, match="only the AdaIN decoder: AdaIN also needs vgg_normalised.pth"):
        load_style_network({"decoder": decoder})


def test_unknown_architecture_names_everything_tried(tmp_path):
    path = checkpoints.save({"encoder.weight": torch.zeros(4, 4)}, tmp_path / "mystery.pth")
    with pytest.raises(UnsupportedModel) as info:
        load_style_network({"model": path})
    for name in ("AnimeGANv2", "CycleGAN", "TransformerNet", "AdaIN decoder", "VGG"):
        assert name in str(info.value)


def test_wrong_shapes_are_a_clear_error():
    state = checkpoints.animegan2_state()
    state["block_c.1.layers.0.1.weight"] = torch.zeros(8, 128, 1, 1)
    with pytest.raises(UnsupportedModel, match="looks like AnimeGANv2 but its weights do not fit"):
        build(state)


class _RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {Path(os.environ['MARKER'])}",))


def test_a_pickle_that_would_run_code_is_refused_without_running(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("MARKER", str(marker))
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(1), "payload": _RunsCode()}, path)
    with pytest.raises(UnsafeModelFile, match="could run code"):
        read_state_dict(path)
    assert not marker.exists()
    legacy = tmp_path / "evil_legacy.pth"
    legacy.write_bytes(pickle.dumps(_RunsCode()))
    with pytest.raises((UnsafeModelFile, UnsupportedModel)):
        read_state_dict(legacy)
    assert not marker.exists()


def test_garbage_is_not_a_model(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("hello")
    with pytest.raises((UnsupportedModel, UnsafeModelFile)):
        read_state_dict(path)


def test_detect_is_by_shapes():
    assert detect(checkpoints.transformer_state(legacy=False)).id == "transformer_net"


def test_safetensors_files_load_and_are_detected(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "candy.safetensors"
    save_file({k: v.contiguous() for k, v in checkpoints.transformer_state(legacy=False).items()}, str(path))
    assert load_style_network({"model": path})[0] == "transformer_net"
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 16)
    with pytest.raises(UnsupportedModel):
        read_state_dict(broken)


def test_legacy_format_checkpoint_passes_the_torch_free_check_and_loads(tmp_path):
    """Upstream's 2017 CycleGAN files use torch's pre-1.6 format: the download check reads it too."""
    from ml.models.store import check_model_file

    path = tmp_path / "style_monet.pth"
    torch.save(checkpoints.cyclegan_state(blocks=9, legacy=True), path, _use_new_zipfile_serialization=False)
    contents = check_model_file(path, "cyclegan")
    assert contents.format == "pytorch-legacy" and contents.loaded_bytes > 45_000_000
    assert load_style_network({"model": path})[0] == "cyclegan"
