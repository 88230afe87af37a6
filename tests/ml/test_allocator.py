import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

# Frees one 30 MB block (glibc then serves everything below 30 MB from its heap), then makes
# forty 8 MB blocks and frees every other one, as a tile frees feature maps between live
# ones, trims the heap when asked, and prints how much resident memory the freed blocks
# still hold (MB).
SCRIPT = """
import ctypes, sys
sys.path.insert(0, sys.argv[1])
from ml.restyle.allocator import trim_heap
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6
def touched(n):
    p = libc.malloc(n)
    ctypes.memset(p, 1, n)
    return p
libc.free(touched(30 << 20))
before = rss()
blocks = [touched(8 << 20) for _ in range(40)]
for p in blocks[::2]:
    libc.free(p)
if sys.argv[2] == "trim":
    assert trim_heap()
print(rss() - before - 20 * 8 * 1.048576)
"""


def leftover_mb(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT), mode], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="trimming is for glibc")
def test_freed_tensor_sized_blocks_go_back_to_the_system_when_trimmed():
    assert leftover_mb("keep") > 100  # glibc keeps them in its heap
    assert leftover_mb("trim") < 20  # trimmed, they are returned


def test_the_engine_trims_after_every_tile_of_every_pass(monkeypatch):
    import ml.restyle.engine as engine
    from ml.networks.animegan2 import AnimeGAN2
    from tests.ml.checkpoints import seeded

    calls = []
    monkeypatch.setattr(engine, "trim_heap", lambda: calls.append(1) or True)
    report = engine.RestyleReport()
    image = np.random.default_rng(0).random((40, 72, 3), dtype=np.float32)
    engine.restyle(seeded(AnimeGAN2()), image, engine.RestyleOptions(tile_size=64, seamless="off"), report=report)
    assert report.tiles == 2 and report.passes == 25
    assert len(calls) == report.tiles * report.passes


def test_trimming_can_be_turned_off():
    from ml.restyle.allocator import set_trimming, trim_heap

    set_trimming(False)
    try:
        assert trim_heap() is False
    finally:
        set_trimming(True)
