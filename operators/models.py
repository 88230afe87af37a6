"""Download, remove and add style models."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Literal

import bpy
from bpy.props import StringProperty

from .. import preferences
from ..ml.catalog import ALL_STYLES, get_style
from ..ml.client import shared_client
from ..ml.custom import PREFIX, add_custom, remove_custom
from ..ml.errors import DownloadCancelled, RestyleError
from ..ml.store import sha256_of
from . import state
from .run import package_root

Result = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]


def megabytes(size: int | None) -> str:
    return "unknown size" if not size else f"{size / 1e6:.1f} MB"


class RESTYLE_OT_download_model(bpy.types.Operator):
    """Download this style's model file(s), checked against their published checksum"""

    bl_idname = "restyle.download_model"
    bl_label = "Download"
    bl_options = {"REGISTER", "INTERNAL"}

    model_id: StringProperty(name="Model")  # type: ignore[valid-type]

    _thread: threading.Thread | None = None
    _timer: bpy.types.Timer | None = None
    _cancel = False
    _error: Exception | None = None
    _progress: tuple[int, int | None] = (0, None)

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if state.CURRENT.running:
            cls.poll_message_set("Another job is running")
            return False
        return True

    def _work(self, context: bpy.types.Context) -> None:
        entry = get_style(self.model_id)
        store = preferences.model_store(context)

        def progress(done: int, total: int | None) -> None:
            self._progress = (done, total)

        try:
            store.download(entry, progress=progress, cancelled=lambda: self._cancel)
        except (RestyleError, OSError) as exc:
            self._error = exc

    def _status_text(self) -> str:
        done, total = self._progress
        percent = f" ({done / total:.0%})" if total else ""
        return f"Downloading {get_style(self.model_id).name}: {megabytes(done)} of {megabytes(total)}{percent}"

    def _finish(self) -> Result:
        if isinstance(self._error, DownloadCancelled):
            self.report({"WARNING"}, str(self._error))
            return {"CANCELLED"}
        if self._error is not None:
            self.report({"ERROR"}, str(self._error))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Downloaded {get_style(self.model_id).name}")
        return {"FINISHED"}

    def execute(self, context: bpy.types.Context) -> Result:
        try:
            get_style(self.model_id)
        except RestyleError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self._work(context)  # blocking: background mode and scripts
        return self._finish()

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        if bpy.app.background or context.window is None:
            return self.execute(context)
        self._thread = threading.Thread(target=self._work, args=(context,), daemon=True)
        state.CURRENT.running, state.CURRENT.fraction, state.CURRENT.text = True, 0.0, "Starting download"
        self._thread.start()
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        if event.type == "ESC":
            self._cancel = True
        if event.type not in ("TIMER", "ESC"):
            return {"PASS_THROUGH"}
        done, total = self._progress
        state.CURRENT.fraction = done / total if total else 0.0
        state.CURRENT.text = self._status_text()
        if context.workspace is not None:
            context.workspace.status_text_set(state.CURRENT.text + " - Esc to cancel")
        for area in context.screen.areas if context.screen else ():
            area.tag_redraw()
        assert self._thread is not None
        if self._thread.is_alive():
            return {"RUNNING_MODAL"}
        state.CURRENT.running = False
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        return self._finish()


class RESTYLE_OT_remove_model(bpy.types.Operator):
    """Delete this style's model file(s) to free disk space"""

    bl_idname = "restyle.remove_model"
    bl_label = "Remove"
    bl_options = {"REGISTER", "INTERNAL"}

    model_id: StringProperty(name="Model")  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> Result:
        root = preferences.model_root(context)
        try:
            if self.model_id.startswith(PREFIX):
                remove_custom(root, self.model_id)
                self.report({"INFO"}, f"Removed the custom style {self.model_id}")
                return {"FINISHED"}
            freed = preferences.model_store(context).remove(get_style(self.model_id))
        except RestyleError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Removed {get_style(self.model_id).name}: {megabytes(freed)} freed")
        return {"FINISHED"}


class RESTYLE_OT_install_model_file(bpy.types.Operator):
    """Add a style model from a file on disk (PyTorch .pth/.pt or .safetensors). A file that is
    one of the published checkpoints installs as that style; anything else becomes a custom style"""

    bl_idname = "restyle.install_model_file"
    bl_label = "Add Custom Style from File"
    bl_options = {"REGISTER"}

    filepath: StringProperty(subtype="FILE_PATH")  # type: ignore[valid-type]
    filter_glob: StringProperty(default="*.pth;*.pt;*.ckpt;*.safetensors", options={"HIDDEN"})  # type: ignore[valid-type]
    name: StringProperty(name="Name", description="Name of the new style (default: from the file name)")  # type: ignore[valid-type]

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> Result:
        source = Path(bpy.path.abspath(self.filepath))
        if not source.is_file():
            self.report({"ERROR"}, f"No such file: {source}")
            return {"CANCELLED"}
        store = preferences.model_store(context)
        digest = sha256_of(source)
        for entry in ALL_STYLES:  # a published file we know by its checksum
            for file in entry.files:
                if file.sha256 == digest:
                    store.install_file(entry, file.role, source)
                    self.report({"INFO"}, f"Installed {source.name} as {entry.name}")
                    context.scene.restyle.style = entry.id  # type: ignore[attr-defined]
                    return {"FINISHED"}
        prefs = preferences.get(context)
        try:
            info = shared_client(package_root(), threads=prefs.worker_threads if prefs else 0).inspect(str(source))
            entry = add_custom(preferences.model_root(context), source, info["name"], self.name or None)
        except (RestyleError, OSError) as exc:
            self.report({"ERROR"}, f"{source.name} was not added: {exc}")
            return {"CANCELLED"}
        context.scene.restyle.style = entry.id  # type: ignore[attr-defined]
        self.report({"INFO"}, f"Added '{entry.name}' ({info['name']}, {info['params']:,} parameters)")
        return {"FINISHED"}
