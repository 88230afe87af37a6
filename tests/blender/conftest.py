"""Real Blender (the bpy module) with the extension built and installed as a user would.

The user folder must be isolated before the first ``import bpy``, so it is set here,
at collection time, before any test module imports bpy.
"""

import importlib
import os
import tempfile

import pytest

os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="restyle-blender-user-")

import bpy  # noqa: E402

from tests.blender.support import ADDON_MODULE  # noqa: E402
from tools.build_extension import build  # noqa: E402


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory):
    return build(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def addon(extension_zip):
    # The user repository folder was listed when bpy started, while it was empty; a stale
    # listing cached by the import system would hide the freshly unpacked package.
    importlib.invalidate_caches()
    result = bpy.ops.extensions.package_install_files(
        filepath=str(extension_zip), repo="user_default", enable_on_install=True
    )
    assert result == {"FINISHED"}
    assert ADDON_MODULE in bpy.context.preferences.addons
    yield importlib.import_module(ADDON_MODULE)
    bpy.ops.preferences.addon_disable(module=ADDON_MODULE)


@pytest.fixture
def empty_scene(addon):
    bpy.ops.wm.read_homefile(use_empty=True)
    yield bpy.context.scene
    bpy.ops.wm.read_homefile(use_empty=True)


@pytest.fixture
def model_folder(addon, tmp_path):
    """The Model Folder preference pointed at an empty folder of this test (put back after it)."""
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.model_folder = str(tmp_path / "models")
    yield tmp_path / "models"
    prefs.model_folder = ""
