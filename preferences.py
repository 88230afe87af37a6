"""Add-on preferences: where model files live, an internal mirror, and the worker."""

from __future__ import annotations

import os
from pathlib import Path

import bpy
from bpy.props import IntProperty, StringProperty

from .ml.models.store import MIRROR_ENV, OFFLINE_HINT, ModelStore

ADDON_ID = __package__ or "neural_restyle"


class RestylePreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    model_folder: StringProperty(  # type: ignore[valid-type]
        name="Model Folder",
        description="Where downloaded and added model files are kept (empty: the extension's user folder)",
        subtype="DIR_PATH",
        default="",
    )
    mirror_url: StringProperty(  # type: ignore[valid-type]
        name="Mirror URL",
        description=f"Download model files from this server instead of their upstream addresses "
        f"(a studio's internal server; the {MIRROR_ENV} environment variable does the same)",
        default="",
    )
    worker_threads: IntProperty(  # type: ignore[valid-type]
        name="CPU Threads",
        description="Threads the inference worker may use on the CPU (0: all cores)",
        default=0,
        min=0,
        max=512,
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        assert layout is not None
        layout.prop(self, "model_folder")
        if self.model_folder and custom_folder(self.model_folder) is None:
            layout.label(text="Not an absolute folder (a preference holds for every .blend file): the extension's "
                              "own folder is used", icon="ERROR")
        layout.prop(self, "mirror_url")
        layout.prop(self, "worker_threads")
        if not bpy.app.online_access:
            layout.label(text=f"{offline_reason()}: models can only be added from files", icon="INFO")


def get(context: bpy.types.Context) -> RestylePreferences | None:
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon is not None else None  # type: ignore[return-value]


def custom_folder(text: str) -> Path | None:
    """The Model Folder preference as a folder, or None when it is not absolute: a preference holds
    for every .blend, so "//models" (or "models") would mean another folder with each file opened,
    or the folder Blender happened to start in."""
    folder = os.path.expanduser(text)
    if text.startswith("//") or not os.path.isabs(folder):
        return None
    return Path(folder)


def model_root(context: bpy.types.Context, create: bool = True) -> Path:
    prefs = get(context)
    folder = custom_folder(prefs.model_folder) if prefs is not None and prefs.model_folder else None
    if folder is not None:
        return folder
    return Path(bpy.utils.extension_path_user(ADDON_ID, path="models", create=create))


def started_offline() -> bool:
    """Blender was started with --offline-mode (or --online-mode): the preference is locked then.
    The flag is ``bpy.app.online_access_override`` in 4.2 to 5.0."""
    return bool(getattr(bpy.app, "online_access_override", False) or getattr(bpy.app, "online_access_overriden", False))


def offline_reason() -> str:
    """Why downloads are off, pointing at what the user can actually change."""
    if started_offline():
        return "Blender was started offline (e.g. with --offline-mode): restart it without that option to download"
    return f"Online access is off ({OFFLINE_HINT})"


def model_store(context: bpy.types.Context, create: bool = True) -> ModelStore:
    """The store, allowed online only when Blender's online access is on. Built on the main thread:
    the store itself is plain Python that a download thread may use. ``create=False`` for
    callers that only look (a panel's draw() must not make folders)."""
    prefs = get(context)
    mirror = (prefs.mirror_url if prefs is not None else "") or os.environ.get(MIRROR_ENV)
    return ModelStore(model_root(context, create=create), online=bpy.app.online_access, mirror=mirror or None,
                      offline_reason=None if bpy.app.online_access else offline_reason())


def job_settings(context: bpy.types.Context) -> tuple[ModelStore, int]:
    """What a job needs from the preferences, read in one go on the main thread: the model store
    (its root is where models live, the folder made if missing) and the worker's CPU threads (0: all)."""
    prefs = get(context)
    return model_store(context), int(prefs.worker_threads) if prefs is not None else 0


CLASSES: tuple[type, ...] = (RestylePreferences,)
