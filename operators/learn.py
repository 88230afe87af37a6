"""Learn Style from Images: the operators; the job itself is jobs/learn.py.

``restyle.learn_style_pick`` opens the file browser (images or folders, name, quality preset,
steps, seed) and starts ``restyle.learn_style``, the job: non-blocking with progress, a
preview image that improves as it trains, and Esc, which stops and keeps the best result so
far. Scripts call ``restyle.learn_style`` directly with ``image_paths``; the command line
calls jobs.learn.learn_style.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, IntProperty, StringProperty

from ..jobs.base import RunningJob, services_of
from ..jobs.learn import LearnStyleJob
from ..ml.options import LEARN_SEED, LEARN_STEPS, Device, LearnPreset, LearnStyleOptions, description, label
from . import state
from .jobs import JobOperator, Result

log = logging.getLogger(__name__)

# Identifiers are the lower-case values scripts already pass (preset="draft"); texts and limits are ml/options.py's.
PRESET_ITEMS = [(preset.value, label(preset), description(preset)) for preset in LearnPreset]


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
    preset: EnumProperty(name="Quality", items=PRESET_ITEMS, default=LearnPreset.DEFAULT.value)  # type: ignore[valid-type]
    steps: IntProperty(name="Steps", default=int(LEARN_STEPS.default), min=int(LEARN_STEPS.min),  # type: ignore[valid-type]
                       max=int(LEARN_STEPS.max), description="Training steps (0: the quality preset's)")
    seed: IntProperty(name="Seed", default=int(LEARN_SEED.default), min=int(LEARN_SEED.min),  # type: ignore[valid-type]
                      max=int(LEARN_SEED.max))
    content_folder: StringProperty(  # type: ignore[valid-type]
        name="Content Folder", subtype="DIR_PATH",
        description="Images to learn the style on (empty: the selected meshes' textures and Blender's HDRIs)")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return not state.job_running(cls)

    def start_job(self, context: bpy.types.Context) -> RunningJob:
        names = [n for n in (part.strip() for part in self.image_names.split(";")) if n]
        options = LearnStyleOptions(name=self.style_name, images=tuple(self.image_paths.split(";")),
                                    content=self.content_folder, preset=self.preset, steps=self.steps, seed=self.seed)
        settings = getattr(context.scene, "restyle", None)
        device = str(settings.device) if settings is not None else Device.AUTO
        return LearnStyleJob(context.selected_objects, options, services_of(context), names, device)

    def finish_job(self, context: bpy.types.Context, job: RunningJob) -> Result:
        assert isinstance(job, LearnStyleJob)
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
    preset: EnumProperty(name="Quality", items=PRESET_ITEMS, default=LearnPreset.DEFAULT.value)  # type: ignore[valid-type]
    steps: IntProperty(name="Steps", default=int(LEARN_STEPS.default), min=int(LEARN_STEPS.min),  # type: ignore[valid-type]
                       max=int(LEARN_STEPS.max), description="Training steps (0: the quality preset's)")
    seed: IntProperty(name="Seed", default=int(LEARN_SEED.default), min=int(LEARN_SEED.min),  # type: ignore[valid-type]
                      max=int(LEARN_SEED.max))

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
