"""Depth maps to meshes, in numpy (no torch, no bpy).

Coordinates are the camera's own, as Blender defines them: the camera looks down -Z
with +Y up and +X right. A vertex sits where its pixel's ray meets the depth; its UV is
that pixel's centre in the image, so the photo lands exactly where it was seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole (or orthographic) camera for an image of width x height pixels."""

    width: int
    height: int
    focal_px: float = 0.0  # perspective: focal length in pixels
    ortho_width: float = 0.0  # orthographic: the view's extent along the fitted side, in scene units
    shift_x: float = 0.0  # Blender's lens shift, in fractions of the fitted side
    shift_y: float = 0.0
    sensor_fit: str = "AUTO"  # the side the sensor (and shift, and ortho scale) spans: AUTO is the larger

    @staticmethod
    def fitted_side(width: int, height: int, sensor_fit: str) -> int:
        """Blender's sensor fit: the image side the sensor width (or ortho scale, or a unit of shift) spans."""
        fit = sensor_fit if sensor_fit != "AUTO" else ("HORIZONTAL" if width >= height else "VERTICAL")
        return width if fit == "HORIZONTAL" else height

    @staticmethod
    def from_lens(width: int, height: int, focal_mm: float, sensor_mm: float, sensor_fit: str = "AUTO",
                  shift_x: float = 0.0, shift_y: float = 0.0) -> Intrinsics:
        """Blender's camera model: the sensor spans the larger side (AUTO) or the named one."""
        span = Intrinsics.fitted_side(width, height, sensor_fit)
        return Intrinsics(width, height, focal_px=focal_mm / sensor_mm * span, shift_x=shift_x, shift_y=shift_y,
                          sensor_fit=sensor_fit)

    @property
    def orthographic(self) -> bool:
        return self.focal_px <= 0.0

    def rays(self, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Camera-space x and y per unit depth (perspective) or absolute (orthographic),
        for pixel positions measured from the top-left corner."""
        side = self.fitted_side(self.width, self.height, self.sensor_fit)
        # A positive shift moves the frame right (up): the optical axis lands left of (below) its middle.
        cx = self.width / 2 - self.shift_x * side
        cy = self.height / 2 + self.shift_y * side
        if self.orthographic:
            scale = self.ortho_width / side
            return (px - cx) * scale, (cy - py) * scale
        return (px - cx) / self.focal_px, (cy - py) / self.focal_px


def depth_from_disparity(disparity: np.ndarray, near: float, depth_range: float) -> np.ndarray:
    """Relative inverse depth (larger = nearer, unknown scale and shift) to distances between
    ``near`` and ``near + depth_range``, linear in inverse depth as the estimate is."""
    if near <= 0 or depth_range <= 0:
        raise ValueError("near distance and depth range must be positive")
    # A few non-finite values (a model's overflow) become holes in the mesh; left in, they
    # would make the percentiles NaN and with them every depth.
    finite = np.isfinite(disparity)
    if not finite.any():
        return np.full(disparity.shape, np.nan, dtype=np.float32)
    low, high = np.percentile(disparity[finite], [0.5, 99.5])
    t = np.clip((np.where(finite, disparity, np.nan) - low) / max(high - low, 1e-8), 0.0, 1.0)
    far = near + depth_range
    return (1.0 / (1.0 / far + t * (1.0 / near - 1.0 / far))).astype(np.float32)


@dataclass
class GridMesh:
    vertices: np.ndarray  # (V, 3) float32, camera space
    faces: np.ndarray  # (F, 4) int32 quads, counter-clockwise seen from the camera
    uvs: np.ndarray  # (V, 2) float32, one per vertex

    @property
    def loop_uvs(self) -> np.ndarray:
        return self.uvs[self.faces.ravel()]


def grid_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Grid columns and rows: the image's pixels, capped so the longer side has max_side."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, round(width * scale)), max(2, round(height * scale))


def depth_to_mesh(
    depth: np.ndarray,
    camera: Intrinsics,
    max_side: int = 512,
    cut_threshold: float = 0.1,
    valid: np.ndarray | None = None,
    planar_depth: bool = True,
) -> GridMesh:
    """A quad grid over the image at most ``max_side`` vertices across.

    ``depth``: (H, W) distances (along the view axis when ``planar_depth``, along each ray
    otherwise). Quads whose corners differ in depth by more than ``cut_threshold`` (relative)
    are not built, so foreground and background do not stretch into walls; pixels where
    ``valid`` is False (background) produce nothing.
    """
    h, w = depth.shape
    if (w, h) != (camera.width, camera.height):
        raise ValueError(f"depth map is {w}x{h} but the camera is {camera.width}x{camera.height}")
    cols, rows = grid_size(w, h, max_side)
    # Sample positions: pixel centres of the grid, in image pixels.
    px = (np.arange(cols, dtype=np.float64) + 0.5) * (w / cols)
    py = (np.arange(rows, dtype=np.float64) + 0.5) * (h / rows)
    ix = np.minimum(px.astype(np.int64), w - 1)
    iy = np.minimum(py.astype(np.int64), h - 1)
    z = depth[np.ix_(iy, ix)].astype(np.float64)
    ok = np.isfinite(z) & (z > 0)
    if valid is not None:
        ok &= valid[np.ix_(iy, ix)]
    gx, gy = np.meshgrid(px, py)
    rx, ry = camera.rays(gx, gy)
    if camera.orthographic:
        x, y, forward = rx, ry, z
    elif planar_depth:
        x, y, forward = rx * z, ry * z, z
    else:  # distance along the ray
        norm = np.sqrt(rx * rx + ry * ry + 1.0)
        forward = z / norm
        x, y = rx * forward, ry * forward
    vertices = np.stack([x, y, -forward], axis=-1).reshape(-1, 3)
    uvs = np.stack([gx / w, 1.0 - gy / h], axis=-1).reshape(-1, 2)

    index = np.arange(rows * cols).reshape(rows, cols)
    # Quads listed counter-clockwise as seen from the camera: top-left, bottom-left,
    # bottom-right, top-right (image rows grow downwards).
    quads = np.stack([index[:-1, :-1], index[1:, :-1], index[1:, 1:], index[:-1, 1:]], axis=-1).reshape(-1, 4)
    corner_z = np.where(ok, z, np.nan).ravel()[quads]
    keep = np.isfinite(corner_z).all(axis=1)
    complete = corner_z[keep]
    keep[keep] = complete.max(axis=1) / complete.min(axis=1) - 1.0 <= cut_threshold
    quads = quads[keep]
    used = np.zeros(rows * cols, dtype=bool)
    used[quads.ravel()] = True
    remap = np.cumsum(used) - 1
    return GridMesh(
        vertices=vertices[used].astype(np.float32),
        faces=remap[quads].astype(np.int32),
        uvs=uvs[used].astype(np.float32),
    )
