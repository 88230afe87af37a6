"""Render passes to arrays: render the scene to a multilayer EXR and read it back.

Python cannot read the Render Result's pixels, so the render is written to a temporary
multilayer EXR (Blender 5 writes one part per pass) and read with the OpenEXR package.
Every render setting changed for this is put back afterwards.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import bpy
import numpy as np

from ..ml.reconstruct import Intrinsics


class PassError(Exception):
    pass


@dataclass
class RenderPasses:
    combined: np.ndarray  # (H, W, 4) scene-linear, top-down
    depth: np.ndarray  # (H, W) distance from the camera, huge where nothing was hit
    normal: np.ndarray | None = None  # (H, W, 3) world-space normals when the Normal pass was rendered


@contextlib.contextmanager
def _temporarily(obj: object, **values: object) -> Iterator[None]:
    saved = {name: getattr(obj, name) for name in values}
    try:
        for name, value in values.items():
            setattr(obj, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(obj, name, value)


def read_multilayer_exr(path: str) -> RenderPasses:
    try:
        import OpenEXR
    except ImportError as exc:
        raise PassError("reading render passes needs the OpenEXR package") from exc
    channels: dict[str, np.ndarray] = {}
    with OpenEXR.File(path, separate_channels=True) as exr:
        for part in exr.parts:
            for name, channel in part.channels.items():
                channels[name] = np.asarray(channel.pixels)
    rgba = [next((v for k, v in channels.items() if k.endswith(f"Combined.{c}")), None) for c in "RGBA"]
    depth = next((v for k, v in channels.items() if k.endswith("Depth.Z")), None)
    red, green, blue, alpha = rgba
    if depth is None or red is None or green is None or blue is None:
        raise PassError(f"{os.path.basename(path)} has no Combined and Depth passes (found: {', '.join(channels)})")
    combined = np.stack([red, green, blue, alpha if alpha is not None else np.ones_like(depth)], axis=-1)
    xyz = [v for c in "XYZ" for k, v in channels.items() if k.endswith(f"Normal.{c}")]
    normal = np.stack(xyz, axis=-1).astype(np.float32) if len(xyz) == 3 else None
    return RenderPasses(combined=combined.astype(np.float32), depth=np.asarray(depth, dtype=np.float32),
                        normal=normal)


def render_passes(scene: bpy.types.Scene, normals: bool = False) -> RenderPasses:
    """Render the active camera with the Depth (and optionally Normal) pass."""
    if scene.camera is None:
        raise PassError("The scene has no active camera")
    view_layer = bpy.context.view_layer
    settings = scene.render.image_settings
    folder = tempfile.mkdtemp(prefix="neural-restyle-passes-")
    path = os.path.join(folder, "passes.exr")
    try:
        with _temporarily(view_layer, use_pass_z=True, use_pass_normal=normals or view_layer.use_pass_normal), \
                _temporarily(scene.render, filepath=path, use_file_extension=False), \
                _temporarily(settings, media_type="MULTI_LAYER_IMAGE"), \
                _temporarily(settings, color_depth="32"):
            bpy.ops.render.render(write_still=True, scene=scene.name)
        if not os.path.exists(path):
            raise PassError("the render did not write its passes")
        return read_multilayer_exr(path)
    finally:
        with contextlib.suppress(OSError):
            for name in os.listdir(folder):
                os.remove(os.path.join(folder, name))
            os.rmdir(folder)


def camera_intrinsics(scene: bpy.types.Scene, width: int, height: int) -> Intrinsics:
    camera = scene.camera.data
    aspect_x, aspect_y = scene.render.pixel_aspect_x, scene.render.pixel_aspect_y
    if abs(aspect_x - aspect_y) > 1e-6:
        raise PassError("non-square pixel aspect is not supported")
    if camera.type == "ORTHO":
        # The orthographic scale spans the larger side of the frame, as Intrinsics expects.
        return Intrinsics(width, height, ortho_width=camera.ortho_scale, shift_x=camera.shift_x,
                          shift_y=camera.shift_y)
    if camera.type != "PERSP":
        raise PassError(f"{camera.type.lower()} cameras are not supported")
    sensor = camera.sensor_height if camera.sensor_fit == "VERTICAL" else camera.sensor_width
    return Intrinsics.from_lens(width, height, camera.lens, sensor, camera.sensor_fit,
                                shift_x=camera.shift_x, shift_y=camera.shift_y)
