"""Learn Style from Images: train a custom style from a few example images, in the worker.

``restyle.learn_style_pick`` opens the file browser (images or folders, name, quality preset,
steps, seed) and starts ``restyle.learn_style``, the job: non-blocking with progress, a
preview image that improves as it trains, and Esc, which stops and keeps the best result so
far. Scripts and the command line call ``restyle.learn_style`` directly with ``image_paths``.
The result becomes a custom style (safetensors + its JSON card), removable like any other.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import time
from pathlib import Path

import bpy
import numpy as np
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, IntProperty, StringProperty

from .. import preferences
from ..bridge import images, materials
from ..jobs.base import package_root
from ..ml.catalog import get_style
from ..ml.custom import add_custom
from ..ml.errors import RestyleError
from ..ml.training.remote import LearnJob, submit_learn
from . import state
from .jobs import JobOperator, Result, RunningJob

log = logging.getLogger(__name__)

PREVIEW_IMAGE = "Learn Style Preview"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".exr", ".tga")
MAX_STYLE_IMAGES = 30
MAX_SIDE = 1024  # style and content images are cut into small crops: larger adds only time
PRESET_ITEMS = [
    ("draft", "Draft", "400 steps on 128 px crops: a first look in a few minutes"),
    ("default", "Default", "1200 steps on 128 px crops"),
    ("high", "High", "2400 steps on 192 px crops: finer, several times longer"),
]


class LearnInputError(RestyleError):
    pass


def style_image_paths(spec: str) -> list[Path]:
    """Files and the images inside folders, from a ';'-separated list (a folder's images in name order)."""
    found: list[Path] = []
    for item in (part.strip() for part in spec.split(";")):
        if not item:
            continue
        path = Path(bpy.path.abspath(item))
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise LearnInputError(f"Style image not found: {path}")
    return found


def read_image_file(path: Path) -> np.ndarray:
    """An image file's pixels, sRGB-encoded, through Blender's own readers (no datablock is left)."""
    try:
        image = bpy.data.images.load(str(path), check_existing=False)
    except RuntimeError as exc:
        raise LearnInputError(f"{path.name} cannot be read as an image ({exc})") from None
    try:
        pixels = images.read_sources(image)[0].pixels
    except images.ImageReadError as exc:
        raise LearnInputError(f"{path.name}: {exc}") from None
    finally:
        bpy.data.images.remove(image)
    return _smaller(pixels)


def read_datablock(name: str) -> np.ndarray:
    """The pixels of an image datablock of this file (a style image picked in Blender)."""
    image = bpy.data.images.get(name)
    if image is None:
        raise LearnInputError(f"There is no image '{name}' in this file")
    try:
        return _smaller(images.read_sources(image)[0].pixels)
    except images.ImageReadError as exc:
        raise LearnInputError(f"The image '{name}' cannot be read: {exc}") from None


def _smaller(pixels: np.ndarray) -> np.ndarray:
    """At most MAX_SIDE px on the longer side (nearest-neighbour strides: training crops resample anyway)."""
    step = max(1, -(-max(pixels.shape[:2]) // MAX_SIDE))
    return np.ascontiguousarray(pixels[::step, ::step, :3] if pixels.shape[2] >= 3 else pixels[::step, ::step])


def bundled_hdris() -> list[str]:
    """Blender's CC0 studio-light HDRIs: photographic content any installation has."""
    datafiles = bpy.utils.system_resource("DATAFILES")  # type: ignore[attr-defined]  # missing from fake-bpy-module
    folder = Path(datafiles) / "studiolights" / "world"
    return sorted(glob.glob(str(folder / "*.exr")))


def selected_textures(context: bpy.types.Context) -> list[np.ndarray]:
    """The colour textures of the selected meshes (the scene the style is for)."""
    plan = materials.collect(context.selected_objects)
    arrays = []
    for _key, image in plan.images():
        try:
            arrays += [_smaller(source.pixels) for source in images.read_sources(image)]
        except images.ImageReadError:
            continue  # a missing texture is no reason to refuse: the HDRIs remain
    return [a for a in arrays if min(a.shape[:2]) >= 32]


def adain_vgg(context: bpy.types.Context) -> str:
    """The AdaIN download's VGG file when it is installed (the classic perceptual features)."""
    store = preferences.model_store(context, create=False)
    path = store.paths(get_style("adain")).get("vgg")
    return str(path) if path is not None and path.is_file() else ""


class LearnRun:
    """A RunningJob (see jobs.py) for Learn Style from Images."""

    def __init__(self, context: bpy.types.Context, paths: list[Path], name: str, preset: str, steps: int,
                 seed: int, content_folder: str, image_names: list[str] | None = None,
                 device: str | None = None) -> None:
        name = name.strip()
        image_names = image_names or []
        if not name:
            raise LearnInputError("Give the style a name")
        if not paths and not image_names:
            raise LearnInputError("Pick 1 to 30 style images (files, a folder of images, or images in this file)")
        if len(paths) + len(image_names) > MAX_STYLE_IMAGES:
            raise LearnInputError(f"{len(paths) + len(image_names)} style images: pick at most {MAX_STYLE_IMAGES}")
        self.name = name
        self.root = preferences.model_root(context)
        style = [(p.name, read_image_file(p)) for p in paths] + [(n, read_datablock(n)) for n in image_names]
        content: list[np.ndarray] = []
        content_files: list[str] = []
        if content_folder:
            folder = Path(bpy.path.abspath(content_folder))
            if not folder.is_dir():
                raise LearnInputError(f"Content folder not found: {folder}")
            content = [read_image_file(p) for p in style_image_paths(str(folder))]
            if not content:
                raise LearnInputError(f"The content folder {folder} holds no images")
        else:
            content = selected_textures(context)
            content_files = bundled_hdris()
            if not content and not content_files:
                raise LearnInputError("No content images: select meshes with textures, or pick a content folder")
        prefs = preferences.get(context)
        from ..ml.client import shared_client  # the worker's client: only when a job starts

        client = shared_client(package_root(), threads=prefs.worker_threads if prefs else 0)
        if device is None:  # the panel's device; the command line passes its own
            settings = getattr(context.scene, "restyle", None)
            device = str(settings.device).lower() if settings is not None else "auto"
        options = {"preset": preset, "steps": int(steps), "seed": int(seed), "device": device,
                   "threads": int(prefs.worker_threads) if prefs is not None else 0}
        self.job: LearnJob = submit_learn(client, style, content, content_files, options, name, vgg=adain_vgg(context),
                                          preview=content[0] if content else None)
        self.preview_step = 0
        self.succeeded = False
        self.started = time.monotonic()

    # -- RunningJob -------------------------------------------------------------------------
    @property
    def fraction(self) -> float:
        return self.job.fraction

    @property
    def text(self) -> str:
        return self.job.text

    def poll(self) -> bool:
        done = self.job.poll()
        if self.job.preview is not None and self.job.preview_step != self.preview_step:
            self.preview_step = self.job.preview_step
            show_preview(self.job.preview)
        return done

    def wait(self) -> None:
        while not self.poll():
            time.sleep(0.05)

    def cancel(self) -> None:
        self.job.cancel()

    def close(self) -> None:
        self.job.close()
        if not self.succeeded:
            remove_preview()

    def finish(self) -> tuple[str, dict]:
        """Add the learned style to the user's custom styles; returns its id and card."""
        card = self.job.card or {}
        entry = add_custom(self.root, Path(self.job.output), "transformer_net", self.name)
        model = self.root / entry.files[0].filename
        card_path = model.with_suffix(".json")
        shutil.copyfile(Path(self.job.output).with_suffix(".json"), card_path)  # the card travels with it
        self.succeeded = True
        return entry.id, card


def show_preview(pixels: np.ndarray) -> None:
    """The preview in an image datablock of its own (recreated when its size changes)."""
    h, w = pixels.shape[:2]
    image = bpy.data.images.get(PREVIEW_IMAGE)
    if image is not None and tuple(image.size) != (w, h):
        bpy.data.images.remove(image)
        image = None
    if image is None:
        image = bpy.data.images.new(PREVIEW_IMAGE, w, h, alpha=False)
    rgba = np.concatenate([pixels[..., :3], np.ones((h, w, 1), np.float32)], axis=2)[::-1]
    image.pixels.foreach_set(np.ascontiguousarray(rgba, dtype=np.float32).ravel())  # type: ignore[arg-type]
    image.update()


def remove_preview() -> None:
    image = bpy.data.images.get(PREVIEW_IMAGE)
    if image is not None:
        bpy.data.images.remove(image)


class RESTYLE_OT_learn_style(JobOperator, bpy.types.Operator):
    """Train a new style from example images (it becomes one of your custom styles)"""

    bl_idname = "restyle.learn_style"
    bl_label = "Learn Style from Images"
    bl_options = {"REGISTER"}

    job_label = "Learn Style"
    failure_prefix = "Learn Style failed, no style was added"

    image_paths: StringProperty(  # type: ignore[valid-type]
        name="Style Images", description="Style image files or folders of images, separated by ';'")
    image_names: StringProperty(  # type: ignore[valid-type]
        name="Style Image Datablocks", description="Names of images in this file to learn from, separated by ';'")
    style_name: StringProperty(name="Name", default="My Style")  # type: ignore[valid-type]
    preset: EnumProperty(name="Quality", items=PRESET_ITEMS, default="default")  # type: ignore[valid-type]
    steps: IntProperty(name="Steps", default=0, min=0, max=100_000,  # type: ignore[valid-type]
                       description="Training steps (0: the quality preset's)")
    seed: IntProperty(name="Seed", default=0, min=0)  # type: ignore[valid-type]
    content_folder: StringProperty(  # type: ignore[valid-type]
        name="Content Folder", subtype="DIR_PATH",
        description="Images to learn the style on (empty: the selected meshes' textures and Blender's HDRIs)")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not state.job_running(cls)

    def start_job(self, context: bpy.types.Context) -> RunningJob:
        names = [n for n in (part.strip() for part in self.image_names.split(";")) if n]
        return LearnRun(context, style_image_paths(self.image_paths), self.style_name, self.preset, self.steps,
                        self.seed, self.content_folder, names)

    def finish_job(self, context: bpy.types.Context, job: RunningJob) -> Result:
        assert isinstance(job, LearnRun)
        style_id, card = job.finish()
        stopped = " (stopped early: the best result so far was kept)" if card.get("cancelled") else ""
        self.report({"INFO"}, f"Learned '{job.name}' in {card.get('steps', '?')} steps with "
                              f"{card.get('feature_source', '?')} features{stopped}: it is in the style menu under "
                              f"Custom ({style_id})")
        settings = getattr(context.scene, "restyle", None)
        if settings is not None:
            try:
                settings.style = style_id
            except TypeError:
                log.info("the style menu does not list %s yet", style_id)
        return {"FINISHED"}


class RESTYLE_OT_learn_style_pick(bpy.types.Operator):
    """Pick style images (or a folder of them) and learn a style from them"""

    bl_idname = "restyle.learn_style_pick"
    bl_label = "Learn Style from Images"
    bl_options = {"REGISTER"}

    directory: StringProperty(subtype="DIR_PATH")  # type: ignore[valid-type]
    files: CollectionProperty(type=bpy.types.OperatorFileListElement)  # type: ignore[valid-type]
    filter_image: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})  # type: ignore[valid-type]
    filter_folder: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})  # type: ignore[valid-type]
    style_name: StringProperty(name="Name", default="My Style")  # type: ignore[valid-type]
    preset: EnumProperty(name="Quality", items=PRESET_ITEMS, default="default")  # type: ignore[valid-type]
    steps: IntProperty(name="Steps", default=0, min=0, max=100_000,  # type: ignore[valid-type]
                       description="Training steps (0: the quality preset's)")
    seed: IntProperty(name="Seed", default=0, min=0)  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return RESTYLE_OT_learn_style.poll(context)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> Result:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> Result:
        picked = [os.path.join(self.directory, f.name) for f in self.files if f.name]
        spec = ";".join(picked) if picked else self.directory  # no file picked: the folder's images
        return bpy.ops.restyle.learn_style(  # type: ignore[attr-defined, no-any-return]
            "INVOKE_DEFAULT", image_paths=spec, style_name=self.style_name, preset=self.preset, steps=self.steps,
            seed=self.seed)


def card_summary(card_path: Path) -> str:
    """One line about a learned style, from its card (for the panel and `models list`)."""
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return (f"learned from {len(card.get('style_images', []))} image(s), {card.get('steps', '?')} steps, "
            f"{card.get('feature_source', '?')} features, seed {card.get('seed', '?')}")


CLASSES = (RESTYLE_OT_learn_style, RESTYLE_OT_learn_style_pick)
