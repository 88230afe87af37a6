import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Frees one 30 MB block (glibc then serves everything below 30 MB from its heap), then makes
# forty 8 MB blocks and frees every other one, as tiles free feature maps between live ones,
# and prints how much resident memory the freed blocks still hold (MB).
SCRIPT = """
import ctypes, sys
sys.path.insert(0, sys.argv[1])
from ml.allocator import return_freed_memory
if sys.argv[2] == "set":
    assert return_freed_memory()
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
print(rss() - before - 20 * 8 * 1.048576)
"""


def leftover_mb(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT), mode], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the setting is for glibc")
def test_freed_tensor_sized_blocks_go_back_to_the_system():
    assert leftover_mb("default") > 100  # glibc keeps them in its heap
    assert leftover_mb("set") < 20  # with the worker's setting they are returned
