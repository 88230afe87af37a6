"""The self-contained platform zip: installed into a Blender whose Python has no torch, its
worker runs on the torch from the extension's own wheels, and Stylize Textures works."""

import json
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import importlib, importlib.util, json, os, sys
os.environ["BLENDER_USER_RESOURCES"] = {user!r}
out = {{"torch_before": importlib.util.find_spec("torch") is not None}}
import bpy, numpy as np
importlib.invalidate_caches()
bpy.ops.extensions.package_install_files(filepath={zip!r}, repo="user_default", enable_on_install=True)
name = "bl_ext.user_default.neural_restyle"
out["enabled"] = name in bpy.context.preferences.addons
bpy.ops.wm.read_homefile(use_empty=True)
image = bpy.data.images.new("Photo", 64, 64)
image.pixels.foreach_set(np.random.default_rng(0).random(64 * 64 * 4).astype(np.float32))
material = bpy.data.materials.new("Mat")
if material.node_tree is None:  # Blender 4.x: no nodes until asked for (bridge/compat.py)
    material.use_nodes = True
node = material.node_tree.nodes.new("ShaderNodeTexImage")
node.image = image
material.node_tree.links.new(node.outputs["Color"], material.node_tree.nodes["Principled BSDF"].inputs[0])
bpy.ops.mesh.primitive_cube_add()
bpy.context.active_object.data.materials.append(material)
bpy.context.scene.restyle.style = "toon"
out["result"] = sorted(bpy.ops.restyle.stylize_textures())
out["material"] = bpy.context.active_object.material_slots[0].material.name
client = next(iter(importlib.import_module(name + ".ml.runtime.client")._SHARED.values()))
out["torch_path"] = client.torch_path
out["user"] = os.environ["BLENDER_USER_RESOURCES"]
print("RESULT" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def bpy_without_torch(tmp_path_factory):
    """A fresh virtual environment holding bpy (and its numpy) but no torch: the same Blender
    line as the one running the tests (4.2, 4.5 or 5.0)."""
    import bpy

    version = ".".join(map(str, bpy.app.version))
    folder = tmp_path_factory.mktemp("bpy-only")
    venv.create(folder, with_pip=True)
    python = folder / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"bpy=={version}"], check=True, timeout=900)
    return python


def test_platform_zip_brings_its_own_torch(bpy_without_torch, tmp_path):
    sys.path.insert(0, str(ROOT))
    from tools.build_platform import build

    zip_path = build("linux-x64", output=tmp_path / "dist")
    assert zip_path.name.endswith("-linux_x64.zip")
    script = textwrap.dedent(SCRIPT.format(user=str(tmp_path / "user"), zip=str(zip_path)))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # nothing of the test's own environment
    result = subprocess.run([str(bpy_without_torch), "-c", script], capture_output=True, text=True, timeout=900,
                            env=env, cwd=tmp_path)
    line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, result.stdout[-3000:] + result.stderr[-3000:]
    out = json.loads(line[len("RESULT"):])
    assert out["torch_before"] is False  # this Python has no torch of its own
    assert out["enabled"] and out["result"] == ["FINISHED"] and out["material"] == "Mat.toon"
    assert out["torch_path"].startswith(out["user"])  # torch came from the extension's wheels
