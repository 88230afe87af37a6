"""Render passes to arrays: render the scene to a multilayer EXR and read it back.

Python cannot read the Render Result's pixels, so the render is written to a temporary
multilayer EXR (Blender 5 writes one part per pass, 4.x one part holding every pass) and
read with the OpenEXR package. Every render setting changed for this is put back
afterwards, exactly, whether the render worked or not.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import bpy
import numpy as np

from ..ml.depth.reconstruct import Intrinsics
from ..ml.errors import RestyleError
from ..ml.runtime.scratch import make_folder
from . import compat


class PassError(RestyleError):
    """A render or a render file whose passes cannot be used (the message says why)."""


@dataclass
class RenderPasses:
    combined: np.ndarray  # (H, W, 4) scene-linear, top-down
    depth: np.ndarray  # (H, W) distance from the camera, huge where nothing was hit
    normal: np.ndarray | None = None  # (H, W, 3) world-space normals when the Normal pass was rendered


def scene_camera(scene: bpy.types.Scene) -> bpy.types.Object:
    """The scene's active camera object; any other kind of object (an Empty, a light ...)
    can be made the scene camera in Blender but has no lens to render or measure with."""
    camera = scene.camera
    if camera is None:
        raise PassError("the scene has no active camera")
    if camera.type != "CAMERA" or not isinstance(camera.data, bpy.types.Camera):
        raise PassError(f"the scene camera '{camera.name}' is {'an' if camera.type[0] in 'AEIOU' else 'a'} "
                        f"{camera.type.title()}, not a camera: make a camera object the active camera")
    return camera


# Cycles writes 1e10 where a ray hits nothing (1e11 outside a render region): never a surface,
# even for a camera that sees farther.
NO_HIT_DEPTH = 0.999e10


def clip_end(scene: bpy.types.Scene) -> float:
    """How far the scene camera sees: depth at or beyond it (or Cycles' no-hit depth) is background."""
    data = scene_camera(scene).data
    assert isinstance(data, bpy.types.Camera)  # scene_camera() refused every other kind
    return min(float(data.clip_end), NO_HIT_DEPTH)


def measurable_camera(scene: bpy.types.Scene) -> bpy.types.Camera:
    """The scene camera's data, if geometry can be measured through it: square pixels, and a
    perspective or orthographic lens. Checked before anything is rendered."""
    camera = scene_camera(scene).data
    assert isinstance(camera, bpy.types.Camera)
    aspect_x, aspect_y = scene.render.pixel_aspect_x, scene.render.pixel_aspect_y
    if abs(aspect_x - aspect_y) > 1e-6:
        raise PassError(f"the scene's pixel aspect is {aspect_x:g}:{aspect_y:g}; only square pixels are supported "
                        "(Output Properties > Format > Aspect X and Y equal)")
    if camera.type not in ("PERSP", "ORTHO"):
        raise PassError(f"the camera '{scene_camera(scene).name}' is a {camera.type.lower()} camera; only "
                        "perspective and orthographic cameras are supported")
    return camera


def check_frame(scene: bpy.types.Scene, width: int, height: int, source: str) -> None:
    """Refuse passes whose shape is not the camera frame's (a render cropped to its region, or
    made at another resolution): the camera could not be matched to them."""
    render = scene.render
    frame_w, frame_h = render.resolution_x, render.resolution_y
    # Each side of a scaled render is rounded to whole pixels: allow that much, however small the render.
    if abs(height * frame_w - width * frame_h) > frame_w + frame_h:
        raise PassError(f"{source} is {width} x {height} pixels, a different shape from the camera's frame "
                        f"({frame_w} x {frame_h}); render it at the scene's resolution, without Crop to Render "
                        "Region")


def _layers(channels: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Channels grouped by view layer: 'ViewLayer.Depth.Z' -> {'ViewLayer': {'Depth.Z': ...}}."""
    layers: dict[str, dict[str, np.ndarray]] = {}
    for name, pixels in channels.items():
        parts = name.rsplit(".", 2)
        if len(parts) == 3:
            layer, rest = parts[0], f"{parts[1]}.{parts[2]}"
        else:
            layer, rest = "", name
        layers.setdefault(layer, {})[rest] = pixels
    return layers


def _read_channels(path: str) -> dict[str, np.ndarray]:
    try:
        import OpenEXR
    except ImportError as exc:
        raise PassError("reading render passes needs the OpenEXR package") from exc
    name = os.path.basename(path) or path
    if not os.path.isfile(path):
        raise PassError(f"{path} is not a file" if os.path.exists(path) else f"file not found: {path}")
    channels: dict[str, np.ndarray] = {}
    try:
        with OpenEXR.File(path, separate_channels=True) as exr:
            for part in exr.parts:
                for channel_name, channel in part.channels.items():
                    channels[channel_name] = np.asarray(channel.pixels)
    # OpenEXR reports an unreadable or truncated file as RuntimeError (or ValueError for a
    # header it cannot map to arrays); both mean the same to the user.
    except (RuntimeError, ValueError, OSError) as exc:
        raise PassError(f"{name} is not a readable OpenEXR file ({exc})") from exc
    return channels


def read_multilayer_exr(path: str, layer: str | None = None) -> RenderPasses:
    """The Combined, Depth (and Normal, when present) passes of a multilayer EXR, checked:
    every pass present, the same size, and free of NaN. Raises PassError."""
    name = os.path.basename(path) or path
    layers = _layers(_read_channels(path))
    usable = [key for key, chans in layers.items()
              if "Depth.Z" in chans and all(f"Combined.{c}" in chans for c in "RGB")]
    if layer is not None and layer in usable:
        usable = [layer]
    if not usable:
        found = ", ".join(f"{k}.{c}" if k else c for k, chans in layers.items() for c in chans) or "no channels"
        raise PassError(f"{name} has no Combined and Depth passes of one view layer (found: {found}); render "
                        "it as a multilayer EXR with the Z pass on")
    chans = layers[usable[0]]
    shapes = {key: np.shape(value) for key, value in chans.items()
              if key.startswith(("Combined.", "Depth.", "Normal."))}
    if len(set(shapes.values())) != 1:
        sizes = ", ".join(f"{key} {s[1] if len(s) > 1 else '?'}x{s[0]}" for key, s in sorted(shapes.items()))
        raise PassError(f"{name}: its passes differ in size ({sizes})")
    shape = next(iter(shapes.values()))
    if len(shape) != 2 or min(shape) < 2:
        raise PassError(f"{name}: its passes are {'x'.join(map(str, shape[::-1]))} pixels, too small for a mesh")
    depth = np.asarray(chans["Depth.Z"], dtype=np.float32)
    alpha = chans.get("Combined.A")
    combined = np.stack([chans[f"Combined.{c}"] for c in "RGB"]
                        + [alpha if alpha is not None else np.ones_like(depth)], axis=-1).astype(np.float32)
    normal = None
    if all(f"Normal.{c}" in chans for c in "XYZ"):
        normal = np.stack([chans[f"Normal.{c}"] for c in "XYZ"], axis=-1).astype(np.float32)
    for label, array in (("Depth", depth), ("Combined", combined), ("Normal", normal)):
        if array is not None and np.isnan(array).any():
            raise PassError(f"{name}: the {label} pass holds NaN (not-a-number) pixels")
    if (depth < 0).any():
        raise PassError(f"{name}: the Depth pass holds negative distances, so it is not a Z pass")
    return RenderPasses(combined=combined, depth=depth, normal=normal)


def render_passes(scene: bpy.types.Scene, normals: bool = False, full_frame: bool = False) -> RenderPasses:
    """Render the active camera with the Depth (and optionally Normal) pass; ``full_frame``: the
    whole camera frame even when the render is cropped to its region (outside it is background).

    Every setting changed for this (output path, file extension, file format, colour depth,
    codec, media type where it exists, the view layer's passes) is restored exactly."""
    scene_camera(scene)
    view_layer = bpy.context.view_layer if bpy.context.scene == scene else None
    view_layer = view_layer or scene.view_layers[0]
    try:
        folder = make_folder("passes")
    except OSError as exc:
        raise PassError(f"no temporary folder for the render passes ({exc.strerror or exc})") from exc
    path = os.path.join(folder, "passes.exr")
    try:
        with compat.preserved(view_layer, scene.render, scene.render.image_settings):
            view_layer.use_pass_z = True
            view_layer.use_pass_normal = normals or view_layer.use_pass_normal
            scene.render.filepath, scene.render.use_file_extension = path, False
            compat.set_multilayer_exr(scene.render.image_settings)
            if full_frame:
                scene.render.use_crop_to_border = False
            try:
                bpy.ops.render.render(write_still=True, scene=scene.name)
            except RuntimeError as exc:
                raise PassError(f"the render failed: {exc}") from exc
        if not os.path.exists(path):
            raise PassError("the render did not write its passes (is the render engine able to write a Z pass?)")
        return read_multilayer_exr(path, layer=view_layer.name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def camera_intrinsics(scene: bpy.types.Scene, width: int, height: int) -> Intrinsics:
    camera = measurable_camera(scene)
    if camera.type == "ORTHO":
        # The orthographic scale spans the side the sensor fit names (AUTO: the larger), as Intrinsics expects.
        return Intrinsics(width, height, ortho_width=camera.ortho_scale, shift_x=camera.shift_x,
                          shift_y=camera.shift_y, sensor_fit=camera.sensor_fit)
    sensor = camera.sensor_height if camera.sensor_fit == "VERTICAL" else camera.sensor_width
    return Intrinsics.from_lens(width, height, camera.lens, sensor, camera.sensor_fit,
                                shift_x=camera.shift_x, shift_y=camera.shift_y)
