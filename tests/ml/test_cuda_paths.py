"""The CUDA-only branches, on a machine without CUDA: torch's CUDA calls are replaced by fakes
that behave as the real ones did on an H200 (tools/bench/gpu_check.sh found both defects)."""

from __future__ import annotations

import pytest
import torch

from ml.restyle import memory_model
from ml.restyle.engine import exact_fp32


class FakeCuda:
    """torch.cuda as the memory planner sees it: 80 GiB card, 60 GiB free, nothing reserved."""

    total, free = 80 * 2**30, 60 * 2**30

    def __init__(self) -> None:
        self.fraction_devices: list[object] = []

    def mem_get_info(self, device: object = None) -> tuple[int, int]:
        return self.free, self.total

    def memory_reserved(self, device: object = None) -> int:
        return 0

    def memory_allocated(self, device: object = None) -> int:
        return 0

    def current_device(self) -> int:
        return 0

    def get_per_process_memory_fraction(self, device: object) -> float:
        # torch 2.11 on CUDA: "Expected a torch.device with a specified index or an integer"
        if isinstance(device, torch.device) and device.index is None:
            raise ValueError(f"Expected a torch.device with a specified index or an integer, but got:{device}")
        self.fraction_devices.append(device)
        return 0.25


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> FakeCuda:
    fake = FakeCuda()
    for name in ("mem_get_info", "memory_reserved", "memory_allocated", "current_device",
                 "get_per_process_memory_fraction"):
        monkeypatch.setattr(torch.cuda, name, getattr(fake, name))
    return fake


def test_free_memory_of_a_cuda_device_named_without_an_index(fake_cuda: FakeCuda) -> None:
    """Options say device "cuda" (no index): Auto tile size must plan, not crash in torch."""
    free = memory_model.free_bytes(torch.device("cuda"))
    assert free == int(0.25 * FakeCuda.total)  # the per-process limit caps what is free
    assert fake_cuda.fraction_devices == [torch.device("cuda", 0)]


def test_free_memory_of_an_indexed_cuda_device(fake_cuda: FakeCuda) -> None:
    assert memory_model.free_bytes(torch.device("cuda", 0)) == int(0.25 * FakeCuda.total)


@pytest.mark.parametrize("matmul", [True, False])
def test_full_precision_on_cuda_turns_tf32_off_and_restores_it(matmul: bool) -> None:
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = True, matmul
        with pytest.raises(RuntimeError, match="inside"):
            with exact_fp32(torch.device("cuda"), full=True):
                assert torch.backends.cudnn.allow_tf32 is False
                assert torch.backends.cuda.matmul.allow_tf32 is False
                raise RuntimeError("a failure inside the run")
        assert torch.backends.cudnn.allow_tf32 is True
        assert torch.backends.cuda.matmul.allow_tf32 is matmul
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize(("device", "full"), [("cuda", False), ("cpu", True)])
def test_reduced_precision_and_the_cpu_leave_tf32_alone(device: str, full: bool) -> None:
    saved = torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = True
        with exact_fp32(torch.device(device), full=full):
            assert torch.backends.cudnn.allow_tf32 is True
    finally:
        torch.backends.cudnn.allow_tf32 = saved
