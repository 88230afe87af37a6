import io
import struct

import numpy as np
import pytest
from PIL import Image

from ml.depth.exif import orient, read_photo_info, stored_uv


def jpeg_with_exif(path, orientation=6, focal=4.2, focal35=26, size=(40, 30)):
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x8769] = {0x920A: focal, 0xA405: focal35}
    Image.new("RGB", size, (200, 100, 50)).save(path, exif=exif.tobytes())
    return path


def test_reads_orientation_and_focal_lengths(tmp_path):
    info = read_photo_info(jpeg_with_exif(tmp_path / "p.jpg"))
    assert info.orientation == 6 and info.focal_mm == pytest.approx(4.2) and info.focal_35mm == 26


def test_files_without_exif_get_defaults(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.jpg")
    (tmp_path / "x.png").write_bytes(b"\x89PNG....")
    assert read_photo_info(tmp_path / "plain.jpg").orientation == 1
    assert read_photo_info(tmp_path / "x.png").focal_mm is None
    assert read_photo_info(tmp_path / "missing.jpg").orientation == 1
    truncated = tmp_path / "t.jpg"
    truncated.write_bytes(b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00II*\x00" + struct.pack("<I", 9999))
    assert read_photo_info(truncated).orientation == 1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_and_uv_mapping_inverts_it(orientation):
    stored = np.random.default_rng(orientation).random((5, 7, 3)).astype(np.float32)
    pil = Image.fromarray((stored * 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", exif=exif.tobytes())
    from PIL import ImageOps

    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buffer.getvalue())))) / 255
    displayed = orient(stored, orientation)
    np.testing.assert_allclose(displayed, expected, atol=1 / 255 + 1e-6)
    # Every displayed pixel centre's UV maps to the stored pixel holding the same colour.
    h, w = displayed.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    su, sv = stored_uv(xs / w, 1 - ys / h, orientation)
    sx = np.floor(su * stored.shape[1]).astype(int)
    sy = np.floor((1 - sv) * stored.shape[0]).astype(int)
    np.testing.assert_array_equal(stored[sy, sx], displayed)


def test_sensor_width_from_the_focal_plane_resolution_gives_the_35mm_equivalent(tmp_path):
    exif = Image.Exif()
    # A 6000 px wide image on a 24 mm wide sensor: 250 px/mm = 2500 px/cm.
    exif[0x8769] = {0x920A: 16.0, 0xA002: 6000, 0xA20E: 2500.0, 0xA210: 3}
    Image.new("RGB", (60, 40)).save(tmp_path / "aps.jpg", exif=exif.tobytes())
    info = read_photo_info(tmp_path / "aps.jpg")
    assert info.sensor_width_mm == pytest.approx(24.0)
    assert info.equivalent_35mm() == pytest.approx(24.0)  # 16 mm on a 24 mm sensor


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif"])
def test_png_webp_and_tiff_photos_have_their_exif_read(tmp_path, suffix):
    """Blender applies no EXIF orientation to any format: a phone photo saved as PNG, WebP or
    TIFF must not come in sideways."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8769] = {0x920A: 4.2, 0xA405: 26}
    path = tmp_path / f"p{suffix}"
    Image.new("RGB", (40, 30), (200, 100, 50)).save(path, exif=exif.tobytes())
    with Image.open(path) as check:  # what Pillow wrote is what is read back
        assert check.getexif().get(0x0112) == 6
    info = read_photo_info(path)
    assert (info.orientation, info.focal_35mm) == (6, 26) and info.focal_mm == pytest.approx(4.2)
    assert not info.warnings


def test_broken_png_and_webp_containers_give_defaults(tmp_path):
    png = tmp_path / "p.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 10**6) + b"eXIf" + b"II*\x00")  # runs past the end
    webp = tmp_path / "p.webp"
    webp.write_bytes(b"RIFF\x00\x00\x00\x00WEBP" + b"VP8 " + struct.pack("<I", 3) + b"abc")  # no EXIF chunk
    tiff = tmp_path / "p.tif"
    tiff.write_bytes(b"II*\x00" + struct.pack("<I", 10**6))  # first IFD outside the file
    for path in (png, webp, tiff):
        assert read_photo_info(path).orientation == 1


def test_a_35mm_equivalent_is_taken_on_the_diagonal():
    """Cameras compute the 35 mm equivalent from the diagonal (crop factor): a 26 mm equivalent
    4:3 phone photo spans the field of view of 26 mm on a 34.6 mm wide frame, not 36 mm."""
    from ml.depth.exif import PhotoInfo

    focal, sensor = PhotoInfo(focal_35mm=26.0).lens(4000, 3000, 50.0)
    assert focal == 26.0 and sensor == pytest.approx(34.613, abs=1e-3)
    assert PhotoInfo(focal_35mm=26.0).lens(3000, 4000, 50.0)[1] == pytest.approx(34.613, abs=1e-3)  # portrait
    assert PhotoInfo().lens(6000, 4000, 50.0) == pytest.approx((50.0, 36.0))  # 3:2 is the 35 mm frame itself
    assert PhotoInfo().lens(1920, 1080, 35.0)[1] == pytest.approx(37.71, abs=1e-2)  # 16:9: wider than 36
    # From the real lens and sensor: used as they are, whatever the shape.
    assert PhotoInfo(focal_mm=16.0, sensor_width_mm=24.0).lens(4000, 3000, 50.0) == (16.0, 24.0)
    # A recorded equivalent out of range falls back to the default, on the diagonal too.
    assert PhotoInfo(focal_35mm=float("nan")).lens(4000, 3000, 50.0) == pytest.approx((50.0, 34.613), abs=1e-3)
