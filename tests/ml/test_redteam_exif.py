"""Red team: photos whose EXIF was written by a broken camera, app or hand.

Each photo is a real JPEG saved by Pillow with an EXIF block built here byte by byte, so
every TIFF field type, count and value can be chosen (Pillow's own writer refuses most of
them). A careful user expects the import to go on with the default field of view or the
stored orientation, to be told which EXIF value was ignored, and never a traceback or a
camera built from NaN.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from PIL import Image

from ml.depth.exif import read_photo_info
from ml.depth.reconstruct import Intrinsics, depth_to_mesh

ORIENTATION, EXIF_POINTER, FOCAL, FOCAL_35 = 0x0112, 0x8769, 0x920A, 0xA405
PIXEL_WIDTH, PLANE_RES, PLANE_UNIT = 0xA002, 0xA20E, 0xA210
BYTE, ASCII, SHORT, LONG, RATIONAL, SSHORT, SRATIONAL, FLOAT, DOUBLE = 1, 2, 3, 4, 5, 8, 10, 11, 12
_CODES = {BYTE: "B", SHORT: "H", LONG: "I", RATIONAL: "II", SSHORT: "h", SRATIONAL: "ii", FLOAT: "f", DOUBLE: "d"}
DEFAULT_FOCAL_35MM = 35.0  # the import operator's option, used when EXIF gives nothing usable


def _field(kind: int, values: tuple, heap: bytearray, heap_start: int, count: int | None) -> tuple[int, bytes]:
    """(count, the 4-byte value-or-offset field); values too long for 4 bytes go to the heap."""
    if kind == ASCII:
        raw = values[0].encode() + b"\x00"
        number = len(raw)
    else:
        flat = [v for pair in values for v in pair] if kind in (RATIONAL, SRATIONAL) else list(values)
        raw = struct.pack("<" + _CODES[kind] * len(values), *flat)
        number = len(values)
    if len(raw) <= 4:
        return count if count is not None else number, raw.ljust(4, b"\x00")
    offset = heap_start + len(heap)
    heap += raw
    return count if count is not None else number, struct.pack("<I", offset)


def tiff_block(ifd0: list[tuple], exif: list[tuple] | None = None, exif_pointer: tuple | None = None) -> bytes:
    """A little-endian TIFF block: IFD0 at offset 8, then the EXIF IFD, then the values' heap.

    An entry is (tag, type, values) or (tag, type, values, count) to lie about the count."""
    exif = exif or []
    ifd0 = list(ifd0)
    ifd0_size = 2 + 12 * (len(ifd0) + (1 if exif or exif_pointer else 0)) + 4
    exif_at = 8 + ifd0_size
    exif_size = 2 + 12 * len(exif) + 4 if exif else 0
    heap_start = exif_at + exif_size
    heap = bytearray()
    if exif_pointer is not None:
        ifd0.append(exif_pointer)
    elif exif:
        ifd0.append((EXIF_POINTER, LONG, (exif_at,)))

    def ifd(entries: list[tuple]) -> bytes:
        out = struct.pack("<H", len(entries))
        for tag, kind, values, *lie in sorted(entries, key=lambda e: e[0]):
            count, field = _field(kind, values, heap, heap_start, lie[0] if lie else None)
            out += struct.pack("<HHI", tag, kind, count) + field
        return out + b"\x00\x00\x00\x00"

    body = ifd(ifd0) + (ifd(exif) if exif else b"")
    return b"II*\x00" + struct.pack("<I", 8) + body + bytes(heap)


def jpeg(path, tiff: bytes, size=(24, 16)):
    Image.new("RGB", size, (90, 120, 200)).save(path, exif=b"Exif\x00\x00" + tiff)
    return path


def assert_safe_camera(info) -> None:
    """The import would build a finite, non-degenerate mesh from this info, as the operator does."""
    assert 1 <= info.orientation <= 8
    focal = info.equivalent_35mm() or DEFAULT_FOCAL_35MM
    assert math.isfinite(focal) and 1.0 <= focal <= 5000.0
    grid = depth_to_mesh(np.full((6, 8), 3.0, np.float32), Intrinsics.from_lens(8, 6, focal, 36.0), 8)
    assert np.isfinite(grid.vertices).all()
    spread = grid.vertices.max(axis=0) - grid.vertices.min(axis=0)
    assert spread[0] > 1e-3 and spread[1] > 1e-3  # not collapsed to a line or a point


NAN, INF = float("nan"), float("inf")
HOSTILE = {
    # name: (IFD0 entries, EXIF entries, words the warning must contain)
    "orientation NaN (float)": ([(ORIENTATION, FLOAT, (NAN,))], [], "orientation"),
    "orientation infinite (double)": ([(ORIENTATION, DOUBLE, (INF,))], [], "orientation"),
    "orientation 9": ([(ORIENTATION, SHORT, (9,))], [], "outside 1..8"),
    "orientation 2.5 (rational)": ([(ORIENTATION, RATIONAL, ((5, 2),))], [], "orientation"),
    "orientation as text": ([(ORIENTATION, ASCII, ("6",))], [], "orientation is not valid (text)"),
    "orientation as a tuple": ([(ORIENTATION, SHORT, (6, 3))], [], "2 values where one belongs"),
    "35 mm focal NaN": ([], [(FOCAL_35, DOUBLE, (NAN,))], "35 mm focal length"),
    "35 mm focal infinite": ([], [(FOCAL_35, FLOAT, (INF,))], "35 mm focal length"),
    "35 mm focal negative": ([], [(FOCAL_35, SSHORT, (-28,))], "outside 1..5000"),
    "35 mm focal absurd": ([], [(FOCAL_35, SHORT, (65535,))], "outside 1..5000"),
    "focal length over zero": ([], [(FOCAL, RATIONAL, ((42, 0),))], "a fraction over zero"),
    "focal length negative": ([], [(FOCAL, SRATIONAL, ((-42, 10),)), (FOCAL_35, SHORT, (0,))], "focal length"),
    "focal plane resolution NaN": ([], [(FOCAL, RATIONAL, ((16, 1),)), (PIXEL_WIDTH, LONG, (6000,)),
                                        (PLANE_RES, FLOAT, (NAN,)), (PLANE_UNIT, SHORT, (3,))],
                                   "focal plane resolution"),
    "focal plane resolution infinite": ([], [(FOCAL, RATIONAL, ((16, 1),)), (PIXEL_WIDTH, LONG, (6000,)),
                                             (PLANE_RES, DOUBLE, (INF,))], "focal plane resolution"),
    "focal plane resolution negative": ([], [(FOCAL, RATIONAL, ((16, 1),)), (PIXEL_WIDTH, LONG, (6000,)),
                                             (PLANE_RES, SRATIONAL, ((-2500, 1),))], "focal plane resolution"),
    "focal plane resolution 0/0": ([], [(FOCAL, RATIONAL, ((16, 1),)), (PIXEL_WIDTH, LONG, (6000,)),
                                        (PLANE_RES, RATIONAL, ((0, 0),))], "a fraction over zero"),
    "focal plane unit NaN": ([], [(FOCAL, RATIONAL, ((16, 1),)), (PIXEL_WIDTH, LONG, (6000,)),
                                  (PLANE_RES, RATIONAL, ((2500, 1),)), (PLANE_UNIT, FLOAT, (NAN,))],
                             "focal plane unit"),
    "focal plane unit 7": ([], [(FOCAL, RATIONAL, ((16, 1),)), (PIXEL_WIDTH, LONG, (6000,)),
                                (PLANE_RES, RATIONAL, ((2500, 1),)), (PLANE_UNIT, SHORT, (7,))], "focal plane unit"),
    "sensor a kilometre wide": ([], [(FOCAL, RATIONAL, ((16, 1),)), (PIXEL_WIDTH, LONG, (400_000,)),
                                     (PLANE_RES, RATIONAL, ((1, 1000),)), (PLANE_UNIT, SHORT, (4,))],
                                "focal plane resolution"),
    "absurd derived 35 mm focal": ([], [(FOCAL, RATIONAL, ((4000, 1),)), (PIXEL_WIDTH, LONG, (100,)),
                                        (PLANE_RES, RATIONAL, ((100, 1),)), (PLANE_UNIT, SHORT, (4,))],
                                   "not a plausible lens"),
    "huge count on a rational": ([], [(FOCAL_35, RATIONAL, ((28, 1),), 0xFFFFFFFF)], "values where one belongs"),
    "rational pointing past the block": ([], [(FOCAL, RATIONAL, ((28, 1),), 3000)], "values where one belongs"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_exif_value_is_ignored_with_a_warning(tmp_path, case):
    ifd0, exif, expected = HOSTILE[case]
    info = read_photo_info(jpeg(tmp_path / "hostile.jpg", tiff_block(ifd0, exif)))
    assert any(expected in w for w in info.warnings), info.warnings
    assert_safe_camera(info)
    if "focal" in case or "sensor" in case:
        assert info.equivalent_35mm() is None  # the operator's default field of view is used
    if "orientation" in case:
        assert info.orientation == 1


@pytest.mark.parametrize("pointer", [(EXIF_POINTER, FLOAT, (NAN,)), (EXIF_POINTER, LONG, (0xFFFFFFF0,)),
                                     (EXIF_POINTER, SSHORT, (-8,)), (EXIF_POINTER, ASCII, ("26",))],
                         ids=["NaN", "past the end", "negative", "text"])
def test_broken_exif_pointer_keeps_the_orientation_and_warns(tmp_path, pointer):
    block = tiff_block([(ORIENTATION, SHORT, (6,))], [(FOCAL_35, SHORT, (28,))], exif_pointer=pointer)
    info = read_photo_info(jpeg(tmp_path / "pointer.jpg", block))
    assert info.orientation == 6
    assert info.equivalent_35mm() is None
    assert any("EXIF pointer" in w for w in info.warnings), info.warnings


def test_valid_exif_of_every_numeric_type_reads_without_warnings(tmp_path):
    block = tiff_block([(ORIENTATION, SHORT, (8,))],
                       [(FOCAL, RATIONAL, ((16, 1),)), (PIXEL_WIDTH, LONG, (6000,)),
                        (PLANE_RES, RATIONAL, ((2500, 1),)), (PLANE_UNIT, SHORT, (3,))])
    info = read_photo_info(jpeg(tmp_path / "good.jpg", block))
    assert info.warnings == ()
    assert info.orientation == 8
    assert info.equivalent_35mm() == pytest.approx(24.0)


def test_zero_35mm_focal_means_unknown_and_is_not_a_warning(tmp_path):
    """EXIF writes 0 for "not known": the derived value is used, nobody is warned."""
    block = tiff_block([], [(FOCAL_35, SHORT, (0,)), (FOCAL, RATIONAL, ((16, 1),)), (PIXEL_WIDTH, LONG, (6000,)),
                            (PLANE_RES, RATIONAL, ((2500, 1),)), (PLANE_UNIT, SHORT, (3,))])
    info = read_photo_info(jpeg(tmp_path / "zero.jpg", block))
    assert info.warnings == () and info.equivalent_35mm() == pytest.approx(24.0)


def test_a_photoinfo_built_with_bad_numbers_never_hands_out_a_bad_focal_length():
    from ml.depth.exif import PhotoInfo

    for info in (PhotoInfo(focal_35mm=NAN), PhotoInfo(focal_35mm=-5.0), PhotoInfo(focal_mm=INF, sensor_width_mm=36.0),
                 PhotoInfo(focal_mm=16.0, sensor_width_mm=1e-9)):
        assert info.equivalent_35mm() is None


def test_exif_segment_cut_short_inside_an_entry(tmp_path):
    block = tiff_block([(ORIENTATION, SHORT, (3,))], [(FOCAL_35, SHORT, (28,))])
    path = tmp_path / "cut.jpg"
    # A hand-made APP1 whose EXIF IFD entry is cut in the middle, then the rest of a real JPEG.
    Image.new("RGB", (8, 8)).save(path)
    data = path.read_bytes()
    segment = b"Exif\x00\x00" + block[: len(block) - 10]
    path.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment + data[2:])
    info = read_photo_info(path)
    assert info.orientation == 3
    assert_safe_camera(info)
