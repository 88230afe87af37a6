"""Stylize Render: render the scene frame by frame, restyle each frame in the worker,
optionally guided by its passes, and keep the last frame as an image (files too when an
output folder is given).

Each frame is two steps of :class:`RenderJob`: render it (main thread; the scene is put back
on the user's frame at once) and, once the worker has restyled it, composite and write it.
Frame files are removed again unless the job finishes; the scene is held by its name.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import bpy
import numpy as np

from ..bridge import compat, outputs, passes
from ..bridge.reconstruction import image_from_pixels
from ..ml.errors import RestyleError
from ..ml.models import registry
from ..ml.options import ModelFamily, StylizeRenderOptions
from ..ml.restyle import color, render_style
from ..ml.runtime.client import Job as WorkerJob
from .base import Services, checked, run_to_end, stopping, wait_by_polling

log = logging.getLogger(__name__)
RENDER_RESULT_KEY = "restyle_render_of"  # on a Stylize Render result: the scene it was rendered from
RENDER_STYLE_KEY = "restyle_style"  # ... and the style it was restyled with
FILES_KEY = "restyle_files"  # on a Stylize Render result: the frame files its runs wrote, one a line
OWN_FAKE_USER_KEY = "restyle_fake_user"  # on a Stylize Render result: its fake user was set by this extension



@dataclass
class RenderOutcome:
    image: str  # the result image's name
    frames: int
    paths: list[str]
    flicker: tuple[float, float, float]  # source, restyled, ratio

    def summary(self) -> str:
        text = f"Restyled {self.frames} frame(s) into '{self.image}'"
        if self.frames > 1:
            text += (f"; flicker (mean frame-to-frame change) source {self.flicker[0]:.4f}, "
                     f"restyled {self.flicker[1]:.4f}")
        return text


def earlier_results(scene_name: str, style: str) -> list[bpy.types.Image]:
    """Images this extension made for the scene and style (found by their marks, never by name)."""
    return [image for image in bpy.data.images
            if image.get(RENDER_RESULT_KEY) == scene_name and image.get(RENDER_STYLE_KEY) == style]


class RenderJob:
    """A steppable Stylize Render (see jobs.base.Job)."""

    def __init__(self, scene: bpy.types.Scene, options: StylizeRenderOptions, services: Services) -> None:
        """The frames are taken as given (frame 0 is frame 0): the operator turns its 0, "the current
        frame", into a frame number first."""
        self.options = options = checked(options)  # every limit of ml/options.py, as the other jobs check them
        start, end = options.frame_start, options.frame_end
        if end < start:
            raise RestyleError(f"the end frame {end} is before the start frame {start}")
        passes.scene_camera(scene)  # a clear error now, before anything is made
        model = registry.style(options.style, services.model_root)
        if model.needs_files and not services.store.is_installed(model.entry):
            raise RestyleError(f"'{model.name}' is not downloaded yet")
        if model.family == ModelFamily.ARBITRARY:
            raise RestyleError("Stylize Render does not take arbitrary (style image) styles yet")
        self.style = model.id
        self.files = {role: str(path) for role, path in services.store.paths(model.entry).items()}
        if options.output_dir.startswith("//") and not bpy.data.filepath:
            # Blender would resolve it against the current directory, wherever that is.
            raise RestyleError(f"the output folder '{options.output_dir}' is relative to the .blend file, which "
                               "is not saved yet: save it first or choose an absolute folder")
        self.scene_name = scene.name
        self.frames = list(range(start, end + 1))
        self.written = outputs.WrittenFiles()
        self.folder = bpy.path.abspath(options.output_dir) if options.output_dir else ""
        self.frame_files: dict[int, str] = {}
        if self.folder:
            # This scene's earlier result lists the files it wrote: those may be written again.
            own = recorded_files(earlier_results(scene.name, model.id))
            self.frame_files = outputs.frame_paths(self.folder, f"{scene.name}.{model.id}", ".png", self.frames,
                                                   replaceable=own)
        self.client = services.client()
        self.sources: list[np.ndarray] = []
        self.results: list[np.ndarray] = []
        self.paths: list[str] = []
        self.worker_job: WorkerJob | None = None
        self.rendered: passes.RenderPasses | None = None
        self.clip_end = 0.0
        self.frame_size: tuple[int, int] | None = None  # (width, height) of the first frame: all keep it
        self.cancelled = False
        self.kept = False
        if self.folder:  # last: nothing after it can fail and leave the folder behind
            self.written.make_folder(self.folder)

    # -- the steps ----------------------------------------------------------------------------
    def _scene(self) -> bpy.types.Scene:
        scene = bpy.data.scenes.get(self.scene_name)
        if scene is None:
            raise RestyleError(f"the scene '{self.scene_name}' was deleted while rendering")
        return scene

    def _render_next(self) -> None:
        scene = self._scene()
        frame = self.frames[len(self.results)]
        saved = scene.frame_current
        try:
            scene.frame_set(frame)
            self.clip_end = passes.clip_end(scene)
            self.rendered = passes.render_passes(scene, normals=self.options.outlines > 0)
        finally:
            scene.frame_set(saved)  # the user's frame between steps, whatever happened
        height, width = self.rendered.combined.shape[:2]
        size = (width, height)
        if self.frame_size is None:
            self.frame_size = size
        elif size != self.frame_size:  # the frames must line up: temporal smoothing, flicker, one result
            raise RestyleError(f"the render size changed from {self.frame_size[0]}x{self.frame_size[1]} to "
                               f"{size[0]}x{size[1]} px at frame {frame} while restyling: keep the output "
                               "resolution until the job ends, then run it again")
        source = color.linear_to_srgb(self.rendered.combined[..., :3])
        self.sources.append(source)
        self.worker_job = self.client.submit(self.style, self.options.restyle, [("frame", source)],
                                             files=self.files)

    def _composite(self, styled: np.ndarray) -> np.ndarray:
        rendered, options = self.rendered, self.options
        assert rendered is not None
        source = self.sources[-1]
        valid = rendered.depth < self.clip_end
        weight = render_style.depth_weights(rendered.depth, valid, options.depth_falloff)[..., None]
        result = source + weight * (styled - source)  # strength is applied by the engine already
        if options.outlines > 0:
            result = result * (1 - options.outlines * render_style.pass_outlines(rendered.depth, rendered.normal,
                                                                                  valid))[..., None]
        if options.temporal > 0 and self.results:
            result = render_style.temporal_smooth(self.results[-1], result, self.sources[-2], source, options.temporal)
        return np.clip(result, 0, 1).astype(np.float32)

    def _frame_done(self, worker_job: WorkerJob) -> None:
        styled = worker_job.results.get("frame")
        if styled is None or styled.array is None:
            raise RestyleError((styled.error if styled else None) or "the frame could not be restyled")
        result = self._composite(styled.array)
        frame = self.frames[len(self.results)]
        self.results.append(result)
        self.rendered, self.worker_job = None, None
        if self.folder:
            path = self.frame_files[frame]
            write_png(path, result, self.written)
            self.paths.append(path)

    # -- Job --------------------------------------------------------------------------------------
    @property
    def fraction(self) -> float:
        inner = self.worker_job.fraction if self.worker_job is not None else 0.0
        return (len(self.results) + inner) / len(self.frames)

    @property
    def text(self) -> str:
        done = len(self.results)
        if done >= len(self.frames):
            return "done"
        return f"frame {self.frames[done]} ({done + 1} of {len(self.frames)})"

    def poll(self) -> bool:
        if stopping(self.cancelled, self.worker_job):
            return False
        if len(self.results) == len(self.frames):
            return True
        if self.worker_job is None:
            self._render_next()
            return False
        if not self.worker_job.poll():
            return False
        self._frame_done(self.worker_job)
        return len(self.results) == len(self.frames)

    def wait(self) -> None:
        wait_by_polling(self)

    def cancel(self) -> None:
        self.cancelled = True
        if self.worker_job is not None:
            self.worker_job.cancel()

    def close(self) -> None:
        worker_job, self.worker_job = self.worker_job, None
        if worker_job is not None:
            worker_job.close()
        if not self.kept:
            for path in self.written.remove_all():
                log.warning("could not remove %s after a failed render", path)

    def finish(self) -> RenderOutcome:
        """The last frame as an image named ``<scene>.<style>``. Earlier results of this
        extension for the same scene and style that nothing uses are replaced; an image the
        user has under that name is never touched: the new one gets a free name instead."""
        name = f"{self.scene_name}.{self.style}"
        rgb = self.results[-1]
        # Measured first: a failure here leaves nothing behind.
        before, after = render_style.flicker(self.sources), render_style.flicker(self.results)
        flicker = (before, after, after / before if before else 0.0)
        with compat.CreatedData() as created:
            rgba = np.concatenate([rgb, np.ones_like(rgb[..., :1])], -1)
            image = created.add(image_from_pixels(name, rgba, False))
            image[RENDER_RESULT_KEY], image[RENDER_STYLE_KEY] = self.scene_name, self.style
            earlier = [old for old in earlier_results(self.scene_name, self.style) if old != image]
            # Every frame file of this scene and style, of this run and earlier ones (a shorter range
            # does not make the others foreign), each with where it is, where it is relative to the
            # .blend (a moved project) and its size and time (only the very file counts as ours).
            this_run = {os.path.normpath(p) for p in self.paths}
            files = [p for p in recorded_files(earlier) if p not in this_run]
            image[FILES_KEY] = "\n".join(_record_line(p) for p in [*files, *self.paths] if os.path.isfile(p))
            # Nothing shows it: without a fake user it would not be saved in the .blend. Marked, so
            # that a fake user the user set on a result (to keep it) is told apart from ours.
            image.use_fake_user, image[OWN_FAKE_USER_KEY] = True, True
            unused = [old for old in earlier if _replaceable(old, name)]
            if unused:
                bpy.data.batch_remove(unused)
            if bpy.data.images.get(name) is None:
                image.name = name
            created.commit()
        self.kept = True
        return RenderOutcome(image.name, len(self.frames), list(self.paths), flicker)


def _replaceable(result: bpy.types.Image, name: str) -> bool:
    """An earlier result the new one replaces: nothing uses it but our own fake user, and it still
    has the name it was given (``name``, or ``name.001`` ...): one the user renamed is kept."""
    ours = int(result.use_fake_user and bool(result.get(OWN_FAKE_USER_KEY)))
    named = result.name == name or (result.name.startswith(name + ".") and result.name[len(name) + 1:].isdigit())
    return result.users <= ours and named


def recorded_files(results: list[bpy.types.Image]) -> list[str]:
    """The frame files the given results recorded that are still the very files written (same size
    and modification time), as absolute paths: where they were, or, in a moved project, where the
    path relative to the .blend leads. A file another run or another .blend put there is not ours."""
    found: list[str] = []
    for image in results:
        for line in str(image.get(FILES_KEY, "")).splitlines():
            fields = line.split("\t")
            if len(fields) != 4:
                continue  # not a record this version writes: trusted no further
            absolute, relative, size, mtime = fields
            for candidate in (absolute, bpy.path.abspath(relative) if relative else ""):
                try:
                    stat = os.stat(candidate) if candidate else None
                except OSError:
                    continue
                if stat is not None and str(stat.st_size) == size and str(stat.st_mtime_ns) == mtime:
                    found.append(os.path.normpath(candidate))
                    break
    return list(dict.fromkeys(found))


def _record_line(path: str) -> str:
    """One frame file for the record: absolute path, ``//``-relative path (empty when the .blend is
    not saved or the file is on another drive), size, modification time in nanoseconds."""
    stat = os.stat(path)
    relative = ""
    if bpy.data.filepath:
        try:
            relative = bpy.path.relpath(path)
        except ValueError:  # another drive (Windows): no relative path exists
            pass
    return "\t".join((os.path.abspath(path), relative, str(stat.st_size), str(stat.st_mtime_ns)))


def write_png(path: str, rgb: np.ndarray, written: outputs.WrittenFiles) -> None:
    """Write top-down RGB as a PNG through Blender's writer (verified; recorded in ``written``)."""
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


def stylize_render(scene: bpy.types.Scene, options: StylizeRenderOptions, services: Services) -> RenderOutcome:
    """Blocking Stylize Render (command line, scripts): the same steps the panel's operator drives."""
    return run_to_end(RenderJob(scene, options, services))
