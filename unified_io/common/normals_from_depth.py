"""Surface normals from a depth map and camera intrinsics, and their 8-bit RGB files.

Pure numpy. BlendedMVS ships depth maps but no normals, so its builder derives them here;
FrameNet's ScanNet normals arrive as 8-bit RGB PNGs, which `rgb8_to_normals` reads.

Frame and encoding (the project's, as dense_labels.py, the built-in scenes and GRIT's
normal images use them): camera frame x right, y down, z forward (OpenCV's, so image rows
grow with y), unit normals pointing out of the surface toward the camera (a camera-facing
wall is (0, 0, -1), a floor seen from above has n_y < 0). In 8-bit files channel c =
round((n_c + 1) / 2 * 255) for x, y, z -> r, g, b, and pixels without a normal are black
(0, 0, 0): no unit vector encodes to it.

Method (`normals_from_depth`):
1. Back-projection. Pixel (row r, column c) lies at image coordinates (c, r): pixel centres
   at integer coordinates, as in OpenCV and MVSNet/BlendedMVS cameras. With depth z (the
   camera-frame z, distance along the optical axis) its point is P = z K^-1 (c, r, 1)^T.
2. Tangents by central differences of neighbouring points: P_c = (P[r, c+1] - P[r, c-1]) / 2
   and P_r = (P[r+1, c] - P[r-1, c]) / 2. Central differences are exact on planes and
   second-order accurate on smooth surfaces.
3. n = P_c x P_r, normalised, then flipped where n . P > 0 so that it faces the camera (P is
   the ray from the camera to the surface, so a visible surface has n . P < 0). With x
   right and y down, P_c x P_r points away from the camera, so in practice it is flipped.
4. Invalid (no normal) where the pixel's depth or any of its four neighbours' is missing
   (zero, negative or non-finite), which includes the image border, where the cross product
   vanishes, and where the normal is within `90 - max_incidence_degrees` of grazing: the
   angle between n and the direction to the camera exceeds `max_incidence_degrees`. Central
   differences across an occlusion boundary join a near and a far surface into a fake one
   almost parallel to the ray, so this drops silhouettes (a jump of 1 m at 10 m depth with
   f = 600 px looks like a surface at 88 degrees); real surfaces that grazing are rare and
   their depth is unreliable anyway. None keeps every normal.

Angle errors (mean, median and the percentage under 11.25, 22.5 and 30 degrees) are
`unified_io.eval.metrics.normal_angle_error`; this module stays below the evaluation layer.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

DEFAULT_MAX_INCIDENCE_DEGREES = 85.0
# A decoded 8-bit vector is a normal when its length is this close to 1: rounding moves it by
# under 0.01, while black (length sqrt(3)) and mid-grey (length ~0) are far off.
UNIT_TOLERANCE = 0.1


def backproject(depth, intrinsics) -> np.ndarray:
  """Depth [H, W] and K [3, 3] -> camera-frame points [H, W, 3] (float64), P = z K^-1 (c, r, 1)."""
  depth = np.asarray(depth, np.float64)
  if depth.ndim != 2:
    raise ValueError(f"depth must be [H, W], got shape {depth.shape}")
  k = np.asarray(intrinsics, np.float64)
  if k.shape != (3, 3) or not np.all(np.isfinite(k)):
    raise ValueError(f"intrinsics must be a finite [3, 3] matrix, got {k.shape}")
  rows, cols = np.meshgrid(np.arange(depth.shape[0]), np.arange(depth.shape[1]), indexing="ij")
  pixels = np.stack([cols, rows, np.ones_like(cols)], axis=-1).astype(np.float64)
  rays = pixels @ np.linalg.inv(k).T  # each ray's z is 1 for a pinhole K (last row 0 0 1)
  return rays * depth[..., None]


def normals_from_depth(
  depth,
  intrinsics,
  max_incidence_degrees: Optional[float] = DEFAULT_MAX_INCIDENCE_DEGREES,
) -> Tuple[np.ndarray, np.ndarray]:
  """(unit normals float32 [H, W, 3], zero where invalid; valid bool [H, W]). See the module
  docstring for the frame and the method."""
  depth = np.asarray(depth, np.float64)
  points = backproject(depth, intrinsics)
  height, width = depth.shape
  normals = np.zeros((height, width, 3), np.float64)
  valid = np.zeros((height, width), bool)
  if height < 3 or width < 3:
    return normals.astype(np.float32), valid
  with np.errstate(invalid="ignore"):
    has_depth = np.isfinite(depth) & (depth > 0)
  inner = (
    has_depth[1:-1, 1:-1]
    & has_depth[1:-1, 2:]
    & has_depth[1:-1, :-2]
    & has_depth[2:, 1:-1]
    & has_depth[:-2, 1:-1]
  )
  along_cols = (points[1:-1, 2:] - points[1:-1, :-2]) / 2.0
  along_rows = (points[2:, 1:-1] - points[:-2, 1:-1]) / 2.0
  with np.errstate(invalid="ignore"):
    cross = np.cross(along_cols, along_rows)
  centre = points[1:-1, 1:-1]
  cross = np.where(inner[..., None], cross, 0.0)
  # Face the camera: a visible surface's normal points against the ray P.
  cross = np.where((np.sum(cross * centre, axis=-1) > 0)[..., None], -cross, cross)
  length = np.linalg.norm(cross, axis=-1)
  ok = inner & np.isfinite(length) & (length > 0)
  unit = np.where(ok[..., None], cross / np.where(ok, length, 1.0)[..., None], 0.0)
  if max_incidence_degrees is not None:
    to_camera = -centre / np.maximum(np.linalg.norm(centre, axis=-1, keepdims=True), 1e-300)
    cos_incidence = np.sum(unit * to_camera, axis=-1)
    ok &= cos_incidence >= np.cos(np.radians(max_incidence_degrees))
    unit = np.where(ok[..., None], unit, 0.0)
  normals[1:-1, 1:-1] = unit
  valid[1:-1, 1:-1] = ok
  return normals.astype(np.float32), valid


def normals_to_rgb8(normals, valid=None) -> np.ndarray:
  """Unit normals [H, W, 3] -> uint8 RGB, round((n + 1) / 2 * 255); invalid pixels black.

  `valid` defaults to pixels whose vector is finite and non-zero.
  """
  normals = np.asarray(normals, np.float64)
  if normals.ndim != 3 or normals.shape[-1] != 3:
    raise ValueError(f"normals must be [H, W, 3], got shape {normals.shape}")
  finite = np.all(np.isfinite(normals), axis=-1)
  if valid is None:
    valid = finite & (np.linalg.norm(np.where(finite[..., None], normals, 0.0), axis=-1) > 0)
  valid = np.asarray(valid, bool) & finite
  if valid.shape != normals.shape[:2]:
    raise ValueError(f"valid {valid.shape} must be the normals' {normals.shape[:2]}")
  rgb = np.clip(np.round((np.where(valid[..., None], normals, 0.0) + 1.0) / 2.0 * 255.0), 0, 255)
  return np.where(valid[..., None], rgb, 0).astype(np.uint8)


def rgb8_to_normals(rgb) -> Tuple[np.ndarray, np.ndarray]:
  """uint8 RGB [H, W, 3] -> (unit normals float32, zero where invalid; valid bool [H, W]).

  A pixel is a normal when its decoded vector rgb / 255 * 2 - 1 has length within
  UNIT_TOLERANCE of 1, so black (this project's and FrameNet's "no normal") and mid-grey
  (128, 128, 128: dense_labels' encoding of a zero vector) are invalid.
  """
  rgb = np.asarray(rgb)
  if rgb.ndim != 3 or rgb.shape[-1] != 3:
    raise ValueError(f"a normal image must be [H, W, 3], got shape {rgb.shape}")
  vectors = rgb.astype(np.float64) / 255.0 * 2.0 - 1.0
  length = np.linalg.norm(vectors, axis=-1)
  valid = np.abs(length - 1.0) <= UNIT_TOLERANCE
  unit = np.where(valid[..., None], vectors / np.where(valid, length, 1.0)[..., None], 0.0)
  return unit.astype(np.float32), valid
