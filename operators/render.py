"""Stylize Render: render the scene, restyle the render, optionally guided by its passes."""

from __future__ import annotations

import os
from typing import Literal

import bpy
import numpy as np
from bpy.props import FloatProperty, IntProperty, StringProperty

from .. import preferences
from ..bridge import passes
from ..bridge.reconstruction import image_from_pixels
from ..ml import color, render_style
from ..ml.client import shared_client
from ..ml.custom import find_style
from ..ml.errors import RestyleError
from ..properties import settings_of
from .run import engine_options, package_root, scene_has_camera

Result = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]


class RESTYLE_OT_stylize_render(bpy.types.Operator):
    """Render the active camera and restyle the render with the chosen style (a new image;
    files too when an output folder is set)"""

    bl_idname = "restyle.stylize_render"
    bl_label = "Stylize Render"
    bl_options = {"REGISTER"}

    frame_start: IntProperty(name="Start Frame", default=0, description="0: the current frame")  # type: ignore[valid-type]
    frame_end: IntProperty(name="End Frame", default=0, description="0: the start frame")  # type: ignore[valid-type]
    output_dir: StringProperty(name="Output Folder", subtype="DIR_PATH", default="")  # type: ignore[valid-type]
    outlines: FloatProperty(name="Outlines", default=0.0, min=0.0, max=1.0, subtype="FACTOR",  # type: ignore[valid-type]
                            description="Ink lines where depth jumps or normals turn sharply")
    depth_falloff: FloatProperty(name="Depth Falloff", default=0.0, min=0.0, max=1.0, subtype="FACTOR",  # type: ignore[valid-type]
                                 description="Restyle distant surfaces less")
    temporal: FloatProperty(name="Temporal Steadiness", default=0.0, min=0.0, max=0.95, subtype="FACTOR",  # type: ignore[valid-type]
                            description="Hold the previous frame's style where the render did not change")

    last_flicker: tuple[float, float, float] | None = None  # source, restyled, (kept for tests and the CLI)

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return scene_has_camera(cls, context)

    def execute(self, context: bpy.types.Context) -> Result:
        scene = context.scene
        assert scene is not None
        settings = settings_of(context)
        start = self.frame_start or scene.frame_current
        end = max(self.frame_end or start, start)
        try:
            entry = find_style(str(settings.style), preferences.model_root(context, create=False))
            store = preferences.model_store(context)
            if entry.files and not store.is_installed(entry):
                raise RestyleError(f"'{entry.name}' is not downloaded yet")
            if entry.family == "arbitrary":
                raise RestyleError("Stylize Render does not take arbitrary (style image) styles yet")
            files = {role: str(path) for role, path in store.paths(entry).items()}
            prefs = preferences.get(context)
            client = shared_client(package_root(), threads=prefs.worker_threads if prefs else 0)
            folder = bpy.path.abspath(self.output_dir) if self.output_dir else ""
            if folder:
                os.makedirs(folder, exist_ok=True)
            sources: list[np.ndarray] = []
            results: list[np.ndarray] = []
            saved_frame = scene.frame_current
            try:
                for frame in range(start, end + 1):
                    scene.frame_set(frame)
                    source, result = self._frame(scene, client, settings, files, sources, results)
                    sources.append(source)
                    results.append(result)
                    if folder:
                        self._write(os.path.join(folder, f"{scene.name}.{entry.id}.{frame:04d}.png"), result)
            finally:
                scene.frame_set(saved_frame)
        except (RestyleError, passes.PassError, OSError) as exc:
            self.report({"ERROR"}, f"Stylize Render failed: {exc}")
            return {"CANCELLED"}
        name = f"{scene.name}.{entry.id}"
        old = bpy.data.images.get(name)
        if old is not None:
            bpy.data.images.remove(old)
        image = image_from_pixels(name, np.concatenate([results[-1], np.ones_like(results[-1][..., :1])], -1), False)
        image.name = name
        before, after = render_style.flicker(sources), render_style.flicker(results)
        type(self).last_flicker = (before, after, after / before if before else 0.0)
        text = f"Restyled {end - start + 1} frame(s) into '{name}'"
        if end > start:
            text += f"; flicker (mean frame-to-frame change) source {before:.4f}, restyled {after:.4f}"
        self.report({"INFO"}, text)
        return {"FINISHED"}

    def _frame(self, scene, client, settings, files, sources, results) -> tuple[np.ndarray, np.ndarray]:
        rendered = passes.render_passes(scene, normals=self.outlines > 0)
        source = color.linear_to_srgb(rendered.combined[..., :3])
        job = client.submit(str(settings.style), engine_options(settings), [("frame", source)], files=files)
        styled = job.wait()["frame"]
        if styled.array is None:
            raise RestyleError(styled.error or "the frame could not be restyled")
        valid = rendered.depth < scene.camera.data.clip_end
        weight = render_style.depth_weights(rendered.depth, valid, self.depth_falloff)[..., None]
        result = source + weight * (styled.array - source)  # strength is applied by the engine already
        if self.outlines > 0:
            result = result * (1 - self.outlines * render_style.pass_outlines(rendered.depth, rendered.normal,
                                                                               valid))[..., None]
        if self.temporal > 0 and results:
            result = render_style.temporal_smooth(results[-1], result, sources[-1], source, self.temporal)
        return source, np.clip(result, 0, 1).astype(np.float32)

    def _write(self, path: str, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        image = bpy.data.images.new("restyle-frame-writer", w, h, alpha=True)
        try:
            rgba = np.concatenate([rgb, np.ones((h, w, 1), np.float32)], -1)[::-1]
            image.pixels.foreach_set(np.ascontiguousarray(rgba).ravel())  # type: ignore[arg-type]
            image.filepath_raw, image.file_format = path, "PNG"
            image.save()
        finally:
            bpy.data.images.remove(image)
