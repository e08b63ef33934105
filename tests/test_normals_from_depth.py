"""normals_from_depth: normals recovered from analytic depth (a tilted plane, a sphere) with
known intrinsics match the truth; invalid pixels are where the docstring says; the 8-bit
encoding round-trips; the angle-error statistics match values worked out by hand."""

import numpy as np
import pytest

from unified_io.common import normals_from_depth as nfd
from unified_io.eval import metrics

H, W = 96, 128
# Unequal focal lengths and an off-centre principal point, so a mix-up of axes shows.
K = np.array([[150.0, 0.0, 60.3], [0.0, 140.0, 50.7], [0.0, 0.0, 1.0]])


def rays(k=K, hw=(H, W)):
  """Per pixel (column c, row r) the ray K^-1 (c, r, 1): its z is 1, so depth = its length t."""
  rows, cols = np.meshgrid(np.arange(hw[0]), np.arange(hw[1]), indexing="ij")
  return np.stack([cols, rows, np.ones_like(cols)], axis=-1) @ np.linalg.inv(k).T


def angles(a, b):
  return np.degrees(np.arccos(np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)))


def plane(normal, offset):
  """Depth of the plane {X : normal . X = offset} (normal unit, facing the camera)."""
  return offset / (rays() @ normal)


def sphere(centre, radius):
  """(depth, 0 off the sphere; true outward normals; points)."""
  d = rays()
  b = d @ centre
  disc = b**2 - np.sum(d * d, axis=-1) * (centre @ centre - radius**2)
  t = np.where(disc >= 0, (b - np.sqrt(np.maximum(disc, 0.0))) / np.sum(d * d, axis=-1), 0.0)
  points = d * t[..., None]
  return t, (points - centre) / radius, points


def test_tilted_plane_is_exact():
  n = np.array([0.3, -0.5, -0.8])
  n /= np.linalg.norm(n)  # faces the camera: n . ray < 0 for rays with z = 1
  depth = plane(n, -4.0)
  assert depth.min() > 0
  normals, valid = nfd.normals_from_depth(depth, K)
  assert normals.shape == (H, W, 3) and normals.dtype == np.float32
  # Every pixel but the border: central differences lie in the plane.
  interior = np.zeros((H, W), bool)
  interior[1:-1, 1:-1] = True
  np.testing.assert_array_equal(valid, interior)
  assert angles(normals[valid], n).max() < 1e-3
  np.testing.assert_array_equal(normals[~valid], 0.0)


def test_sphere_within_one_degree_away_from_its_rim():
  centre = np.array([0.3, -0.2, 5.0])
  depth, truth, points = sphere(centre, 1.5)
  normals, valid = nfd.normals_from_depth(depth, K)
  to_camera = -points / np.maximum(np.linalg.norm(points, axis=-1, keepdims=True), 1e-12)
  incidence = angles(truth, to_camera)
  away_from_rim = valid & (incidence < 70)
  assert away_from_rim.sum() > 4000
  assert angles(normals[away_from_rim], truth[away_from_rim]).max() < 1.0
  # Facing the camera everywhere (the unflipped cross product would face away).
  assert np.all(np.sum(normals[valid] * points[valid], axis=-1) < 0)
  # Off the sphere (depth 0) and on its one-pixel rim nothing is valid.
  assert not valid[depth == 0].any()


def test_camera_facing_wall_and_floor_follow_the_projects_frame():
  # x right, y down, z forward: a wall facing the camera is (0, 0, -1); a floor below the
  # camera (y = +1.5) has its normal pointing up, (0, -1, 0).
  wall, _ = nfd.normals_from_depth(np.full((5, 7), 3.0), K)
  np.testing.assert_allclose(wall[2, 3], [0.0, 0.0, -1.0], atol=1e-6)
  floor_depth = plane(np.array([0.0, -1.0, 0.0]), -1.5)
  floor_depth = np.where(floor_depth > 0, floor_depth, 0.0)  # rows above the horizon: none
  floor, valid = nfd.normals_from_depth(floor_depth, K)
  np.testing.assert_allclose(
    floor[valid], np.broadcast_to([0.0, -1.0, 0.0], floor[valid].shape), atol=1e-6
  )


def test_missing_depth_invalidates_the_pixel_and_its_neighbours():
  depth = np.full((9, 9), 2.0)
  depth[4, 4] = 0.0
  depth[1, 6] = np.nan
  depth[6, 2] = -1.0
  _, valid = nfd.normals_from_depth(depth, K, max_incidence_degrees=None)
  expected = np.zeros((9, 9), bool)
  expected[1:-1, 1:-1] = True
  for r, c in ((4, 4), (1, 6), (6, 2)):
    for dr, dc in ((0, 0), (0, 1), (0, -1), (1, 0), (-1, 0)):
      if 0 <= r + dr < 9 and 0 <= c + dc < 9:
        expected[r + dr, c + dc] = False
  np.testing.assert_array_equal(valid, expected)
  assert not nfd.normals_from_depth(np.ones((2, 5)), K)[1].any()  # too small for neighbours


def test_occlusion_boundaries_are_dropped():
  depth = np.full((8, 12), 2.0)
  depth[:, 6:] = 6.0  # a near wall and a far wall, side by side
  normals, valid = nfd.normals_from_depth(depth, K)
  # Columns 5 and 6 difference across the jump: a fake surface nearly along the rays.
  assert not valid[:, 5:7].any()
  assert valid[1:-1, 1:5].all() and valid[1:-1, 7:-1].all()
  np.testing.assert_allclose(normals[3, 2], [0, 0, -1], atol=1e-6)
  _, kept = nfd.normals_from_depth(depth, K, max_incidence_degrees=None)
  assert kept[1:-1, 5:7].all()


def test_backproject_uses_integer_pixel_centres():
  points = nfd.backproject(np.full((3, 4), 2.0), [[2.0, 0, 1.0], [0, 4.0, 1.0], [0, 0, 1]])
  np.testing.assert_allclose(points[1, 1], [0.0, 0.0, 2.0])  # the principal point (1, 1)
  np.testing.assert_allclose(points[2, 3], [(3 - 1) / 2 * 2, (2 - 1) / 4 * 2, 2.0])
  with pytest.raises(ValueError, match="intrinsics"):
    nfd.backproject(np.ones((3, 3)), np.eye(2))


def test_rgb8_encoding_by_hand_and_round_trip():
  normals = np.array([[[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 0.0]]])
  rgb = nfd.normals_to_rgb8(normals)
  # round((n + 1) / 2 * 255): -1 -> 0, 0 -> 128 (127.5 rounds to even), 1 -> 255.
  assert rgb.tolist() == [[[128, 128, 0], [255, 128, 128], [128, 0, 128], [0, 0, 0]]]
  decoded, valid = nfd.rgb8_to_normals(rgb)
  assert valid.tolist() == [[True, True, True, False]]
  assert angles(decoded[valid], normals[0, :3]).max() < 0.5
  np.testing.assert_array_equal(decoded[0, 3], 0.0)
  # Mid-grey (dense_labels' zero vector) is no normal either; explicit validity wins.
  assert not nfd.rgb8_to_normals(np.full((1, 1, 3), 128, np.uint8))[1].any()
  assert nfd.normals_to_rgb8(normals, valid=np.zeros((1, 4), bool)).max() == 0
  rng = np.random.default_rng(0)
  random = rng.normal(size=(16, 16, 3))
  random /= np.linalg.norm(random, axis=-1, keepdims=True)
  back, ok = nfd.rgb8_to_normals(nfd.normals_to_rgb8(random))
  assert ok.all() and angles(back, random).max() < 0.5


def test_angle_error_statistics_by_hand():
  """metrics.normal_angle_error (the evaluation layer's) on five pixels worked out by hand.

  Ground truth (0, 0, -1) everywhere but one unlabelled (zero) pixel; predictions 0, 10, 20
  and 40 degrees off: mean 17.5, median 15, under 11.25: 2 of 4, under 22.5 and 30: 3 of 4.
  """
  gt = np.zeros((1, 5, 3))
  gt[0, :4] = [0.0, 0.0, -1.0]
  pred = np.zeros((1, 5, 3))
  for i, degrees in enumerate((0.0, 10.0, 20.0, 40.0)):
    a = np.radians(degrees)
    pred[0, i] = [np.sin(a), 0.0, -np.cos(a)]
  pred[0, 4] = [1.0, 0.0, 0.0]  # at the unlabelled pixel: not scored
  stats = metrics.normal_angle_error(pred, gt)
  assert stats["mean"] == pytest.approx(17.5)
  assert stats["median"] == pytest.approx(15.0)
  assert stats["within_11.25"] == pytest.approx(50.0)
  assert stats["within_22.5"] == pytest.approx(75.0)
  assert stats["within_30"] == pytest.approx(75.0)
