"""Stylize Render: render the scene, restyle the render, optionally guided by its passes."""

from __future__ import annotations

import logging
import os
from typing import Literal

import bpy
import numpy as np
from bpy.props import FloatProperty, IntProperty, StringProperty

from .. import preferences
from ..bridge import compat, outputs, passes
from ..bridge.reconstruction import describe_error, image_from_pixels
from ..ml import color, render_style
from ..ml.client import shared_client
from ..ml.custom import find_style
from ..ml.errors import RestyleError
from ..properties import settings_of
from .run import engine_options, package_root, scene_has_camera

log = logging.getLogger(__name__)
RENDER_RESULT_KEY = "restyle_render_of"  # on a Stylize Render result: the scene it was rendered from
RENDER_STYLE_KEY = "restyle_style"  # ... and the style it was restyled with
FILES_KEY = "restyle_files"  # on a Stylize Render result: the frame files that run wrote, one a line
Result = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]


class RESTYLE_OT_stylize_render(bpy.types.Operator):
    """Render the active camera and restyle the render with the chosen style (a new image;
    files too when an output folder is set)"""

    bl_idname = "restyle.stylize_render"
    bl_label = "Stylize Render"
    bl_options = {"REGISTER", "UNDO"}

    frame_start: IntProperty(name="Start Frame", default=0, description="0: the current frame")  # type: ignore[valid-type]
    frame_end: IntProperty(name="End Frame", default=0, description="0: the start frame; never before it")  # type: ignore[valid-type]
    output_dir: StringProperty(name="Output Folder", subtype="DIR_PATH", default="",  # type: ignore[valid-type]
                               options=compat.BLEND_RELATIVE_PATH)
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
        end = self.frame_end or start
        written = outputs.WrittenFiles()
        try:
            if end < start:
                raise RestyleError(f"the end frame {end} is before the start frame {start}")
            camera = passes.scene_camera(scene)
            entry = find_style(str(settings.style), preferences.model_root(context, create=False))
            store = preferences.model_store(context)
            if entry.files and not store.is_installed(entry):
                raise RestyleError(f"'{entry.name}' is not downloaded yet")
            if entry.family == "arbitrary":
                raise RestyleError("Stylize Render does not take arbitrary (style image) styles yet")
            files = {role: str(path) for role, path in store.paths(entry).items()}
            if self.output_dir.startswith("//") and not bpy.data.filepath:
                # Blender would resolve it against the current directory, wherever that is.
                raise RestyleError(f"the output folder '{self.output_dir}' is relative to the .blend file, which "
                                   "is not saved yet: save it first or choose an absolute folder")
            folder = bpy.path.abspath(self.output_dir) if self.output_dir else ""
            if folder:
                written.make_folder(folder)
            prefs = preferences.get(context)
            client = shared_client(package_root(), threads=prefs.worker_threads if prefs else 0)
            sources: list[np.ndarray] = []
            paths: list[str] = []
            results: list[np.ndarray] = []
            # This scene's earlier result lists the files it wrote: those may be written again.
            own_files = [path for image in _earlier_results(scene.name, entry.id)
                         for path in str(image.get(FILES_KEY, "")).splitlines()]
            frames = range(start, end + 1)
            frame_files = outputs.frame_paths(folder, f"{scene.name}.{entry.id}", ".png", frames,
                                              replaceable=own_files) if folder else {}
            saved_frame = scene.frame_current
            try:
                for frame in frames:
                    scene.frame_set(frame)
                    source, result = self._frame(scene, camera, client, settings, files, sources, results)
                    sources.append(source)
                    results.append(result)
                    if folder:
                        path = frame_files[frame]
                        self._write(path, result, written)
                        paths.append(path)
            finally:
                scene.frame_set(saved_frame)
            name = self._store_result(scene.name, entry.id, results[-1], paths)
        except Exception as exc:  # an operator never raises: every failure is a report, nothing is left
            for path in written.remove_all():
                log.warning("could not remove %s after a failed render", path)
            if not isinstance(exc, RestyleError | OSError):
                log.exception("Stylize Render failed unexpectedly")
            self.report({"ERROR"}, f"Stylize Render failed: {describe_error(exc)}")
            return {"CANCELLED"}
        before, after = render_style.flicker(sources), render_style.flicker(results)
        type(self).last_flicker = (before, after, after / before if before else 0.0)
        text = f"Restyled {end - start + 1} frame(s) into '{name}'"
        if end > start:
            text += f"; flicker (mean frame-to-frame change) source {before:.4f}, restyled {after:.4f}"
        self.report({"INFO"}, text)
        return {"FINISHED"}

    @staticmethod
    def _store_result(scene_name: str, style: str, rgb: np.ndarray, paths: list[str]) -> str:
        """The last frame as an image named ``<scene>.<style>``. Earlier results of this
        extension for the same scene and style that nothing uses are replaced; an image the
        user has under that name is never touched: the new one gets a free name instead."""
        name = f"{scene_name}.{style}"
        with compat.CreatedData() as created:
            rgba = np.concatenate([rgb, np.ones_like(rgb[..., :1])], -1)
            image = created.add(image_from_pixels(name, rgba, False))
            image[RENDER_RESULT_KEY], image[RENDER_STYLE_KEY] = scene_name, style
            image[FILES_KEY] = "\n".join(paths)
            unused = [old for old in _earlier_results(scene_name, style) if old != image and old.users == 0]
            if unused:
                bpy.data.batch_remove(unused)
            if bpy.data.images.get(name) is None:
                image.name = name
            created.commit()
        return image.name

    def _frame(self, scene, camera, client, settings, files, sources, results) -> tuple[np.ndarray, np.ndarray]:
        rendered = passes.render_passes(scene, normals=self.outlines > 0)
        source = color.linear_to_srgb(rendered.combined[..., :3])
        job = client.submit(str(settings.style), engine_options(settings), [("frame", source)], files=files)
        styled = job.wait()["frame"]
        if styled.array is None:
            raise RestyleError(styled.error or "the frame could not be restyled")
        valid = rendered.depth < camera.data.clip_end
        weight = render_style.depth_weights(rendered.depth, valid, self.depth_falloff)[..., None]
        result = source + weight * (styled.array - source)  # strength is applied by the engine already
        if self.outlines > 0:
            result = result * (1 - self.outlines * render_style.pass_outlines(rendered.depth, rendered.normal,
                                                                               valid))[..., None]
        if self.temporal > 0 and results:
            result = render_style.temporal_smooth(results[-1], result, sources[-1], source, self.temporal)
        return source, np.clip(result, 0, 1).astype(np.float32)

    def _write(self, path: str, rgb: np.ndarray, written: outputs.WrittenFiles) -> None:
        h, w = rgb.shape[:2]
        with compat.CreatedData() as created:  # the writer image never outlives the write
            image = created.add(bpy.data.images.new("restyle-frame-writer", w, h, alpha=True))
            rgba = np.concatenate([rgb, np.ones((h, w, 1), np.float32)], -1)[::-1]
            image.pixels.foreach_set(np.ascontiguousarray(rgba).ravel())  # type: ignore[arg-type]
            existed = os.path.lexists(path)
            try:
                outputs.save_verified(image, path, "PNG")
            finally:
                if not existed and os.path.lexists(path):
                    written.add(path)


def _earlier_results(scene_name: str, style: str) -> list[bpy.types.Image]:
    """Images this extension made for the scene and style (found by their marks, never by name)."""
    return [image for image in bpy.data.images
            if image.get(RENDER_RESULT_KEY) == scene_name and image.get(RENDER_STYLE_KEY) == style]
