"""The few EXIF facts photo import needs, read from JPEG, TIFF, PNG and WebP files without any
image library: orientation, focal length and its 35 mm equivalent.

EXIF is written by every camera, phone app and editor there is, so every value is checked
where it is read: a value of the wrong type, count or range (NaN, infinite, negative, a
rational over zero, a string where a number belongs) is ignored, the default is used, and a
warning saying what was ignored travels with the result for the operator to report.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ORIENTATION, EXIF_POINTER, FOCAL_LENGTH, FOCAL_35MM = 0x0112, 0x8769, 0x920A, 0xA405
PIXEL_WIDTH, FOCAL_PLANE_X_RES, FOCAL_PLANE_UNIT = 0xA002, 0xA20E, 0xA210
UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0}  # inch, centimetre, millimetre
# Plausible ranges; anything outside comes from a broken writer, not a real camera. The
# 35 mm range matches the import operator's own focal length option.
FOCAL_MM_RANGE = (0.1, 5000.0)
FOCAL_35MM_RANGE = (1.0, 5000.0)
SENSOR_MM_RANGE = (0.5, 200.0)
PIXEL_WIDTH_RANGE = (1, 1_000_000)
# TIFF field types: struct format and size of one value. Rationals are two integers.
_FORMATS = {1: "B", 3: "H", 4: "I", 5: "II", 6: "b", 8: "h", 9: "i", 10: "ii", 11: "f", 12: "d"}
_NAMES = {
    ORIENTATION: "orientation", FOCAL_LENGTH: "focal length", FOCAL_35MM: "35 mm focal length",
    PIXEL_WIDTH: "pixel width", FOCAL_PLANE_X_RES: "focal plane resolution", FOCAL_PLANE_UNIT: "focal plane unit",
    EXIF_POINTER: "EXIF pointer",
}
# What the import does instead when a tag is ignored.
_FALLBACK = {
    ORIENTATION: "the photo is used as stored (upright)",
    FOCAL_LENGTH: "the default field of view was used", FOCAL_35MM: "the default field of view was used",
    EXIF_POINTER: "the camera settings block was skipped",
}


class _Invalid(Exception):
    """A tag whose value cannot be used; the message says why, for the warning."""


@dataclass(frozen=True)
class PhotoInfo:
    orientation: int = 1  # EXIF 1..8; 1 is upright
    focal_mm: float | None = None
    focal_35mm: float | None = None
    sensor_width_mm: float | None = None  # from the focal-plane resolution, when the camera records it
    warnings: tuple[str, ...] = ()  # EXIF values that were ignored, one sentence each

    def equivalent_35mm(self) -> float | None:
        """The 35 mm equivalent focal length, recorded or derived from focal length and sensor.

        None unless the value is finite and in :data:`FOCAL_35MM_RANGE`, so a caller never
        builds a camera from a value no lens has."""
        if self.focal_35mm is not None and _within(self.focal_35mm, FOCAL_35MM_RANGE):
            return self.focal_35mm
        if self.focal_mm is not None and self.sensor_width_mm:
            derived = self.focal_mm * 36.0 / self.sensor_width_mm
            return derived if _within(derived, FOCAL_35MM_RANGE) else None
        return None


    def lens(self, width: int, height: int, default_35mm: float) -> tuple[float, float]:
        """(focal length, sensor width along the image's longer side) in mm for a camera that
        sees what the photo shows (``width`` x ``height`` upright pixels).

        A recorded focal length and sensor width are used as they are: the real lens on the
        real sensor. A 35 mm equivalent (recorded, or ``default_35mm``) is defined on the
        diagonal, so the equivalent sensor is the 43.3 mm diagonal of a 36 x 24 mm frame
        fitted to this photo's shape: 36 mm across a 3:2 photo, 34.6 mm across a 4:3 one."""
        recorded = self.focal_35mm
        if recorded is not None and not _within(recorded, FOCAL_35MM_RANGE):
            recorded = None
        if recorded is None and self.equivalent_35mm() is not None:  # derived: only from a real lens and sensor
            assert self.focal_mm is not None and self.sensor_width_mm is not None
            return self.focal_mm, self.sensor_width_mm
        return recorded or default_35mm, DIAGONAL_35MM * max(width, height) / math.hypot(width, height)


DIAGONAL_35MM = math.hypot(36.0, 24.0)


def _within(value: float, bounds: tuple[float, float]) -> bool:
    return math.isfinite(value) and bounds[0] <= value <= bounds[1]


def read_photo_info(path: Path) -> PhotoInfo:
    """EXIF facts of a JPEG, TIFF, PNG or WebP photo (Blender applies none of them, so a phone
    photo saved as any of these would otherwise come in sideways); defaults for other
    formats or files without EXIF. Never raises."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return PhotoInfo()
    if data.startswith(b"\xff\xd8"):
        block = _jpeg_exif(data)
    elif data[:4] in (b"II*\x00", b"MM\x00*"):  # a TIFF file is itself the EXIF layout
        block = data
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        block = _chunk(data, 8, b"eXIf", png=True)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        block = _chunk(data, 12, b"EXIF", png=False)
    else:
        block = None
    if block is None:
        return PhotoInfo()
    if block.startswith(b"Exif\x00\x00"):  # some WebP writers keep the JPEG segment's prefix
        block = block[6:]
    try:
        return _parse_tiff(block)
    except (struct.error, ValueError, OverflowError, IndexError) as exc:  # a case the checks missed
        return PhotoInfo(warnings=(f"The photo's EXIF block could not be read ({exc}): it was ignored",))


def _jpeg_exif(data: bytes) -> bytes | None:
    """The TIFF data of a JPEG's APP1 Exif segment, or None."""
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        segment = data[position + 4 : position + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            return segment[6:]
        if marker == 0xDA:  # image data starts: no EXIF before it
            return None
        position += 2 + max(length, 2)  # a length below 2 is corrupt; still move on
    return None


def _chunk(data: bytes, position: int, name: bytes, png: bool) -> bytes | None:
    """The payload of the first chunk called ``name``, or None. PNG chunks are length, type,
    data and a CRC (big endian); RIFF (WebP) chunks are type, length and data padded to an
    even size (little endian)."""
    while position + 8 <= len(data):
        if png:
            length, kind = struct.unpack(">I", data[position : position + 4])[0], data[position + 4 : position + 8]
        else:
            kind, length = data[position : position + 4], struct.unpack("<I", data[position + 4 : position + 8])[0]
        start = position + 8
        if kind == name:
            return data[start : start + length] if start + length <= len(data) else None
        position = start + length + (4 if png else length & 1)
    return None


def _parse_tiff(tiff: bytes) -> PhotoInfo:
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return PhotoInfo(warnings=("The photo's EXIF block is not valid TIFF data: it was ignored",))
    order = "<" if tiff[:2] == b"II" else ">"
    warnings: list[str] = []
    tags = _read_ifd(tiff, order, struct.unpack(order + "I", tiff[4:8])[0])
    if EXIF_POINTER in tags:
        pointer = _number(tags, EXIF_POINTER, warnings, integer=True, bounds=(8, len(tiff) - 2))
        if pointer is not None:
            tags.update({k: v for k, v in _read_ifd(tiff, order, int(pointer)).items() if k not in tags})

    orientation = _number(tags, ORIENTATION, warnings, integer=True, bounds=(1, 8))
    focal = _number(tags, FOCAL_LENGTH, warnings, bounds=FOCAL_MM_RANGE, zero_is_unknown=True)
    focal_35 = _number(tags, FOCAL_35MM, warnings, bounds=FOCAL_35MM_RANGE, zero_is_unknown=True)
    sensor = _sensor_width(tags, warnings)
    info = PhotoInfo(
        orientation=int(orientation) if orientation is not None else 1,
        focal_mm=focal, focal_35mm=focal_35, sensor_width_mm=sensor,
    )
    if focal_35 is None and focal is not None and sensor is not None and info.equivalent_35mm() is None:
        warnings.append(f"EXIF focal length {focal:g} mm on a {sensor:g} mm wide sensor is not a plausible lens: "
                        "the default field of view was used")
    return PhotoInfo(info.orientation, info.focal_mm, info.focal_35mm, info.sensor_width_mm, tuple(warnings))


def _sensor_width(tags: dict[int, tuple[float, ...] | str], warnings: list[str]) -> float | None:
    """Sensor width in mm from the focal-plane resolution, or None when any part is missing or wrong."""
    if FOCAL_PLANE_X_RES not in tags:
        return None
    resolution = _number(tags, FOCAL_PLANE_X_RES, warnings, bounds=(1e-6, 1e9))
    width = _number(tags, PIXEL_WIDTH, warnings, integer=True, bounds=PIXEL_WIDTH_RANGE)
    unit = 2.0  # EXIF's default unit is the inch
    if FOCAL_PLANE_UNIT in tags:
        unit = _number(tags, FOCAL_PLANE_UNIT, warnings, integer=True, bounds=(2, 4)) or 0.0
    if resolution is None or width is None or not unit:
        return None
    sensor = width / resolution * UNIT_MM[int(unit)]
    if not _within(sensor, SENSOR_MM_RANGE):
        warnings.append(f"EXIF focal plane resolution gives a {sensor:g} mm wide sensor, which no camera has: "
                        "it was ignored")
        return None
    return sensor


def _number(tags: dict[int, tuple[float, ...] | str], tag: int, warnings: list[str], *,
            bounds: tuple[float, float], integer: bool = False, zero_is_unknown: bool = False) -> float | None:
    """One tag's single value, or None (with a warning) when it is absent, malformed or out of range."""
    if tag not in tags:
        return None
    name = _NAMES.get(tag, f"tag 0x{tag:04X}")
    raw = tags[tag]
    try:
        if isinstance(raw, str):
            raise _Invalid(raw)
        if len(raw) != 1:
            raise _Invalid(f"{len(raw)} values where one belongs")
        value = raw[0]
        if zero_is_unknown and value == 0:  # EXIF writes 0 for "not known"
            return None
        if not math.isfinite(value) or (integer and value != int(value)):
            raise _Invalid(f"{value!r}")
        if not bounds[0] <= value <= bounds[1]:
            raise _Invalid(f"{value:g}, outside {bounds[0]:g}..{bounds[1]:g}")
    except _Invalid as exc:
        fallback = _FALLBACK.get(tag, "the sensor size is not known, so the default field of view was used")
        warnings.append(f"EXIF {name} is not valid ({exc}): {fallback}")
        return None
    return float(value)


def _read_ifd(tiff: bytes, order: str, offset: int) -> dict[int, tuple[float, ...] | str]:
    """Every numeric tag of one IFD as a tuple of values (rationals divided out), or a string
    saying why a tag's value could not be read (wrong type, zero denominator, out of the file)."""
    values: dict[int, tuple[float, ...] | str] = {}
    if offset < 0 or offset + 2 > len(tiff):
        return values
    count = struct.unpack(order + "H", tiff[offset : offset + 2])[0]
    for index in range(count):
        entry = offset + 2 + 12 * index
        if entry + 12 > len(tiff):
            break
        tag, kind, number = struct.unpack(order + "HHI", tiff[entry : entry + 8])
        if tag in values:
            continue  # a repeated tag: the first one counts, as in every other reader
        values[tag] = _field_values(tiff, order, kind, number, tiff[entry + 8 : entry + 12])
    return values


def _field_values(tiff: bytes, order: str, kind: int, number: int, field: bytes) -> tuple[float, ...] | str:
    code = _FORMATS.get(kind)
    if code is None:
        return "text" if kind == 2 else f"TIFF type {kind}, not a number"
    if number == 0:
        return "no value"
    if number > 16:  # no tag read here has more than one value; do not unpack a huge array
        return f"{number} values where one belongs"
    size = struct.calcsize(order + code) * number
    if size <= 4:
        raw = field[:size]
    else:
        at = struct.unpack(order + "I", field)[0]
        if at + size > len(tiff):
            return "points outside the EXIF block"
        raw = tiff[at : at + size]
    flat = struct.unpack(order + code * number, raw)
    if kind not in (5, 10):
        return tuple(float(v) for v in flat)
    pairs = list(zip(flat[0::2], flat[1::2], strict=True))
    if any(denominator == 0 for _, denominator in pairs):
        return "a fraction over zero"
    return tuple(numerator / denominator for numerator, denominator in pairs)


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
