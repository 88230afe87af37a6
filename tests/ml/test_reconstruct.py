import numpy as np
import pytest

from ml.depth.reconstruct import Intrinsics, depth_from_disparity, depth_to_mesh, grid_size


def camera(w=64, h=48, focal_mm=50.0, sensor_mm=36.0):
    return Intrinsics.from_lens(w, h, focal_mm, sensor_mm)


def test_plane_at_known_distance_is_planar_at_that_distance():
    mesh = depth_to_mesh(np.full((48, 64), 3.0, np.float32), camera())
    assert np.allclose(mesh.vertices[:, 2], -3.0)
    assert len(mesh.faces) == 63 * 47


def test_field_of_view_and_aspect_follow_the_lens():
    cam = camera(w=64, h=48, focal_mm=36.0, sensor_mm=36.0)  # 90 degree horizontal field of view
    mesh = depth_to_mesh(np.full((48, 64), 1.0, np.float32), cam, max_side=64)
    x, y = mesh.vertices[:, 0], mesh.vertices[:, 1]
    # The outermost pixel centres are half a pixel inside the frame edges at +-0.5 (width) ...
    assert x.max() == pytest.approx(0.5 - 0.5 / 64, abs=1e-6)
    assert y.max() == pytest.approx((24 - 0.5) / 64, abs=1e-6)  # ... and the frame is 48/64 as tall


def test_step_edge_is_cut():
    depth = np.full((40, 40), 2.0, np.float32)
    depth[:, 20:] = 6.0
    mesh = depth_to_mesh(depth, camera(40, 40), cut_threshold=0.1)
    quad_z = mesh.vertices[mesh.faces][..., 2]
    assert np.ptp(quad_z, axis=1).max() < 1e-6  # no quad spans the step
    assert len(mesh.faces) == 39 * 39 - 39


def test_uvs_hit_their_pixels():
    h, w = 30, 50
    image = np.random.default_rng(0).random((h, w))
    mesh = depth_to_mesh(np.full((h, w), 1.0, np.float32), camera(w, h), max_side=512)
    cam = camera(w, h)
    # Project each vertex through the camera and compare with its UV, in pixels.
    x, y, z = mesh.vertices.T
    px = x / -z * cam.focal_px + w / 2
    py = h / 2 - y / -z * cam.focal_px
    np.testing.assert_allclose(px, mesh.uvs[:, 0] * w, atol=1e-3)
    np.testing.assert_allclose(py, (1 - mesh.uvs[:, 1]) * h, atol=1e-3)
    assert image.shape == (h, w)


def test_resolution_is_capped():
    assert grid_size(4000, 3000, 512) == (512, 384)
    mesh = depth_to_mesh(np.ones((3000, 4000), np.float32), camera(4000, 3000), max_side=256)
    assert len(mesh.vertices) == 256 * 192


def test_background_pixels_make_no_geometry():
    depth = np.full((20, 20), 5.0, np.float32)
    valid = np.zeros((20, 20), bool)
    valid[5:15, 5:15] = True
    mesh = depth_to_mesh(depth, camera(20, 20), valid=valid)
    assert len(mesh.vertices) == 100 and len(mesh.faces) == 81


def test_orthographic_camera():
    cam = Intrinsics(40, 20, ortho_width=8.0)
    mesh = depth_to_mesh(np.full((20, 40), 2.0, np.float32), cam, max_side=40)
    assert mesh.vertices[:, 0].max() == pytest.approx(4.0 - 0.1)  # half width minus half a pixel
    assert np.allclose(mesh.vertices[:, 2], -2.0)


def test_radial_distance_is_turned_into_planar_depth():
    cam = camera(32, 32, focal_mm=18.0)
    planar = depth_to_mesh(np.full((32, 32), 2.0, np.float32), cam)
    rx, ry = planar.vertices[:, 0] / 2.0, planar.vertices[:, 1] / 2.0
    radial_map = np.full((32, 32), 2.0, np.float32)
    gy, gx = np.mgrid[0:32, 0:32] + 0.5
    rxx, ryy = cam.rays(gx, gy)
    radial_map = (2.0 * np.sqrt(rxx**2 + ryy**2 + 1)).astype(np.float32)
    radial = depth_to_mesh(radial_map, cam, planar_depth=False)
    np.testing.assert_allclose(radial.vertices[:, 2], -2.0, atol=1e-5)
    assert rx.shape == ry.shape


def test_disparity_maps_to_the_chosen_range():
    disparity = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    depth = depth_from_disparity(disparity, near=1.0, depth_range=9.0)
    assert depth.min() == pytest.approx(1.0, rel=1e-3) and depth.max() == pytest.approx(10.0, rel=1e-3)
    assert depth[0, 0] > depth[-1, -1]  # larger disparity is nearer
    with pytest.raises(ValueError):
        depth_from_disparity(disparity, near=0.0, depth_range=1.0)


def test_non_finite_disparities_become_holes_not_a_lost_map():
    """One NaN or inf from a model must not make every depth NaN (the whole mesh lost)."""
    disparity = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    clean = depth_from_disparity(disparity, near=1.0, depth_range=9.0)
    broken = disparity.copy()
    broken[3, 4], broken[7, 7] = np.nan, np.inf
    depth = depth_from_disparity(broken, near=1.0, depth_range=9.0)
    bad = ~np.isfinite(broken)
    assert np.isnan(depth[bad]).all()
    assert np.isfinite(depth[~bad]).all()
    np.testing.assert_allclose(depth[~bad], clean[~bad], rtol=2e-2)
    cam = Intrinsics.from_lens(10, 10, 35.0, 36.0)
    mesh = depth_to_mesh(depth, cam, cut_threshold=10.0)
    assert 0 < len(mesh.faces) < 81  # the quads touching the two bad pixels are holes
    assert np.isnan(depth_from_disparity(np.full((4, 4), np.nan, np.float32), 1.0, 9.0)).all()
