"""The few EXIF facts photo import needs, read from JPEG files without any image library:
orientation, focal length and its 35 mm equivalent."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ORIENTATION, EXIF_POINTER, FOCAL_LENGTH, FOCAL_35MM = 0x0112, 0x8769, 0x920A, 0xA405
PIXEL_WIDTH, FOCAL_PLANE_X_RES, FOCAL_PLANE_UNIT = 0xA002, 0xA20E, 0xA210
UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0}  # inch, centimetre, millimetre


@dataclass(frozen=True)
class PhotoInfo:
    orientation: int = 1  # EXIF 1..8; 1 is upright
    focal_mm: float | None = None
    focal_35mm: float | None = None
    sensor_width_mm: float | None = None  # from the focal-plane resolution, when the camera records it

    def equivalent_35mm(self) -> float | None:
        """The 35 mm equivalent focal length, recorded or derived from focal length and sensor."""
        if self.focal_35mm:
            return self.focal_35mm
        if self.focal_mm and self.sensor_width_mm:
            return self.focal_mm * 36.0 / self.sensor_width_mm
        return None


def read_photo_info(path: Path) -> PhotoInfo:
    """EXIF facts of a JPEG; defaults for other formats or files without EXIF."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return PhotoInfo()
    if not data.startswith(b"\xff\xd8"):
        return PhotoInfo()
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        segment = data[position + 4 : position + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            return _parse_tiff(segment[6:])
        if marker == 0xDA:  # image data starts: no EXIF before it
            break
        position += 2 + length
    return PhotoInfo()


def _parse_tiff(tiff: bytes) -> PhotoInfo:
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return PhotoInfo()
    order = "<" if tiff[:2] == b"II" else ">"
    tags = _read_ifd(tiff, order, struct.unpack(order + "I", tiff[4:8])[0])
    if EXIF_POINTER in tags:
        tags.update(_read_ifd(tiff, order, int(tags[EXIF_POINTER])))
    orientation = int(tags.get(ORIENTATION, 1))
    sensor = None
    resolution, width = tags.get(FOCAL_PLANE_X_RES), tags.get(PIXEL_WIDTH)
    if resolution and width:
        sensor = float(width) / float(resolution) * UNIT_MM.get(int(tags.get(FOCAL_PLANE_UNIT, 2)), 25.4)
    return PhotoInfo(
        orientation=orientation if 1 <= orientation <= 8 else 1,
        focal_mm=float(tags[FOCAL_LENGTH]) if tags.get(FOCAL_LENGTH) else None,
        focal_35mm=float(tags[FOCAL_35MM]) if tags.get(FOCAL_35MM) else None,
        sensor_width_mm=sensor,
    )


def _read_ifd(tiff: bytes, order: str, offset: int) -> dict[int, float]:
    values: dict[int, float] = {}
    if offset + 2 > len(tiff):
        return values
    count = struct.unpack(order + "H", tiff[offset : offset + 2])[0]
    for index in range(count):
        entry = offset + 2 + 12 * index
        if entry + 12 > len(tiff):
            break
        tag, kind, _ = struct.unpack(order + "HHI", tiff[entry : entry + 8])
        field = tiff[entry + 8 : entry + 12]
        if kind == 3:  # SHORT
            values[tag] = struct.unpack(order + "H", field[:2])[0]
        elif kind == 4:  # LONG
            values[tag] = struct.unpack(order + "I", field)[0]
        elif kind in (5, 10):  # (signed) RATIONAL, stored at an offset
            at = struct.unpack(order + "I", field)[0]
            if at + 8 <= len(tiff):
                numerator, denominator = struct.unpack(order + ("II" if kind == 5 else "ii"), tiff[at : at + 8])
                values[tag] = numerator / denominator if denominator else 0.0
        elif kind == 11:  # FLOAT
            values[tag] = struct.unpack(order + "f", field)[0]
        elif kind == 12:  # DOUBLE, stored at an offset
            at = struct.unpack(order + "I", field)[0]
            if at + 8 <= len(tiff):
                values[tag] = struct.unpack(order + "d", tiff[at : at + 8])[0]
    return values


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """The image as it should be displayed (top-down arrays), for EXIF orientations 1..8."""
    steps = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(steps.get(orientation, steps[1])(pixels))


def stored_uv(u: np.ndarray, v: np.ndarray, orientation: int) -> tuple[np.ndarray, np.ndarray]:
    """Map UVs of the displayed (oriented) image to UVs of the stored image.

    UVs have v pointing up; the mapping is the inverse of :func:`orient`."""
    # Work in top-down normalised coordinates (s right, t down) of the displayed image.
    s, t = u, 1.0 - v
    if orientation == 2:
        s = 1 - s
    elif orientation == 3:
        s, t = 1 - s, 1 - t
    elif orientation == 4:
        t = 1 - t
    elif orientation == 5:
        s, t = t, s
    elif orientation == 6:
        s, t = t, 1 - s
    elif orientation == 7:
        s, t = 1 - t, 1 - s
    elif orientation == 8:
        s, t = 1 - t, s
    return s, 1.0 - t
