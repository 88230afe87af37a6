"""The extension as a package: Blender's validator, install/enable/disable/uninstall."""

import json
import subprocess
import sys
import textwrap

from tests.blender.support import ADDON_MODULE
from tools.build_extension import blender_ext_tool

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_blenders_validator_accepts_the_source():
    result = subprocess.run([sys.executable, str(blender_ext_tool()), "validate", str(ROOT)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zip_excludes_development_files(extension_zip):
    import zipfile

    names = zipfile.ZipFile(extension_zip).namelist()
    assert "blender_manifest.toml" in names and "ml/restyle/engine.py" in names
    assert not [n for n in names if n.startswith(("tests/", "tools/", ".ci/", ".venv", "wheels/", "build/"))
                or "__pycache__" in n]
    # Nothing large slips in (a virtual environment of an LTS line is about 2 GB): the code, the
    # built-in depth model (16 MB) and the three built-in styles (10 MB) are about 26 MB.
    assert extension_zip.stat().st_size < 40_000_000, extension_zip.stat().st_size


def test_lifecycle_in_a_clean_blender_without_importing_torch(extension_zip, tmp_path):
    """Install, enable, disable and uninstall in a fresh process, as Blender does it."""
    script = textwrap.dedent(f"""
        import json, os, sys, time
        os.environ["BLENDER_USER_RESOURCES"] = {str(tmp_path)!r}
        import bpy
        out = {{}}
        t = time.perf_counter()
        bpy.ops.extensions.package_install_files(filepath={str(extension_zip)!r}, repo="user_default",
                                                 enable_on_install=True)
        out["install_s"] = time.perf_counter() - t
        out["enabled"] = {ADDON_MODULE!r} in bpy.context.preferences.addons
        out["torch_imported"] = "torch" in sys.modules
        out["panel"] = hasattr(bpy.types, "VIEW3D_PT_restyle")
        out["scene_prop"] = hasattr(bpy.context.scene, "restyle")
        bpy.ops.preferences.addon_disable(module={ADDON_MODULE!r})
        out["disabled"] = {ADDON_MODULE!r} not in bpy.context.preferences.addons
        out["panel_after_disable"] = hasattr(bpy.types, "VIEW3D_PT_restyle")
        repos = bpy.context.preferences.extensions.repos
        index = next(i for i, r in enumerate(repos) if r.module == "user_default")
        bpy.ops.extensions.package_uninstall(repo_index=index, pkg_id="neural_restyle")
        folder = os.path.join(repos[index].directory, "neural_restyle")
        out["files_removed"] = not os.path.exists(folder)
        print("RESULT" + json.dumps(out))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, result.stdout + result.stderr
    out = json.loads(line[len("RESULT"):])
    assert out["enabled"] and out["panel"] and out["scene_prop"]
    assert not out["torch_imported"]
    assert out["disabled"] and not out["panel_after_disable"]
    assert out["files_removed"]


def test_panel_draws_in_a_sidebar_tab(addon):
    panel = __import__("bpy").types.VIEW3D_PT_restyle
    assert panel.bl_category == "Restyle" and panel.bl_region_type == "UI"
