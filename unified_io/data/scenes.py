"""Synthetic scenes of coloured shapes and stick figures, rendered with exact ground truth.

Pure numpy; `sample_scene(rng)` draws a scene and `render(scene)` returns the image and every
dense and sparse label the Unified-IO tasks need. Generation takes well under a millisecond
per 64x64 scene.

Conventions (every label uses them):

- Camera: a pinhole at the origin looking along +z, with x pointing right and y pointing down
  (OpenCV's camera frame, so image rows grow with y). Focal length f = image_size pixels and
  the principal point is the image centre (a 53 degree field of view).
- Pixel (row r, column c) covers x in [c, c+1) and y in [r, r+1) and is sampled at its
  centre (c + 0.5, r + 0.5). Boxes are [x1, y1, x2, y2] in these continuous coordinates:
  a mask over columns c0..c1 and rows r0..r1 has the box [c0, r0, c1 + 1, r1 + 1], and the
  whole image is [0, 0, S, S]. Keypoints are (x, y) in the same coordinates.
- Depth is the camera-frame z in metres (distance along the optical axis, as in NYU Depth
  v2), not the Euclidean length of the ray.
- Normals are unit vectors in the camera frame pointing out of the surface, toward the
  camera (n_z < 0): a camera-facing flat face is (0, 0, -1). The background is a floor
  tilted away from the camera by `ground_tilt` t, with normal (0, -sin t, -cos t).
- Occlusion uses a z-buffer: at each pixel the nearest surface wins. For objects that do not
  intersect this is the painter's algorithm (back to front); it also stays exact where a
  sphere pokes through a flat shape.

Objects (`SceneObject.size` is in pixels, `depth` in metres to the object's nearest point):

- circle: a sphere drawn as a disc of radius `size`. Its metric radius is R = size * depth / f
  (weak perspective); at normalised offset (u, v) = (x - cx, y - cy) / size from the centre
  its depth is depth + R * (1 - w) and its normal (u, v, -w), with w = sqrt(1 - u^2 - v^2).
- square: flat, camera-facing, axis-aligned; `size` is half the side.
- triangle: flat, camera-facing, equilateral, pointing up; `size` is the circumradius.
- person: a flat, camera-facing stick figure facing the camera (its left is the image's
  right); `size` is its height from the top of the head to the ankles. It has COCO's 17
  keypoints in COCO order; visibility is 2 where the keypoint's pixel shows the figure or
  anything behind it, 1 where a nearer surface covers it, 0 outside the image (COCO then
  stores (0, 0), and so do we).

`render` drops objects with fewer than `MIN_VISIBLE_PIXELS` visible pixels (and re-renders,
so the image shows exactly the annotated objects); masks and boxes are of visible pixels.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence, Tuple

import numpy as np

from unified_io.common import coco_keypoints

SHAPES = ("circle", "square", "triangle", "person")
# Saturated, well separated hues so colour names are unambiguous even under shading.
COLOR_RGB = {
  "red": (220, 40, 40),
  "green": (40, 175, 60),
  "blue": (45, 85, 225),
  "yellow": (235, 210, 40),
  "purple": (145, 60, 190),
  "orange": (245, 135, 30),
  "white": (240, 240, 240),
  "cyan": (40, 200, 210),
}
COLORS = tuple(COLOR_RGB)
KEYPOINT_NAMES = coco_keypoints.KEYPOINT_NAMES
NUM_KEYPOINTS = coco_keypoints.NUM_KEYPOINTS
MIN_VISIBLE_PIXELS = 8
MAX_OBJECTS = 5

# Light from the upper left, behind the camera; the ambient term keeps shaded colours
# recognisable (the darkest sphere rim keeps 55% of its albedo).
LIGHT_DIRECTION = np.array([-0.35, -0.55, -0.75]) / np.linalg.norm([-0.35, -0.55, -0.75])
AMBIENT = 0.55
DIFFUSE = 0.45
FLOOR_GRAYS = (70, 85, 100, 115)
FLOOR_CHECKER_CONTRAST = 8  # +- intensity of 1 m floor tiles: a texture cue for depth
# Object depths stay nearer than the nearest floor point (>= 0.74 * 11 m), so the floor
# never cuts through an object.
OBJECT_DEPTH_RANGE = (3.0, 7.0)
PERSON_DEPTH_RANGE = (2.5, 4.5)
GROUND_DEPTH_RANGE = (11.0, 13.0)  # floor depth at the image centre
GROUND_TILT_RANGE = (np.radians(15.0), np.radians(35.0))
# Metric sizes (metres): radius, half side, circumradius, body height.
METRIC_SIZE_RANGE = {
  "circle": (0.3, 0.7),
  "square": (0.3, 0.7),
  "triangle": (0.45, 0.9),
  "person": (1.5, 1.9),
}

# Stick-figure skeleton in units of body height, origin at the figure's centre, y down.
HEAD_RADIUS = 0.09
HEAD_CENTER_Y = -0.5 + HEAD_RADIUS
SHOULDER = (0.11, -0.29)  # left shoulder; the right one mirrors x
HIP = (0.065, 0.02)
UPPER_ARM, FOREARM, THIGH, SHIN = 0.16, 0.15, 0.24, 0.24
# Face points relative to the head centre, in head radii (left = +x).
NOSE = (0.0, 0.25)
EYE = (0.35, -0.15)
EAR = (0.8, 0.0)
# Pose angles (radians) from straight down, positive = away from the body.
POSE_RANGES = (
  (0.15, 2.6),
  (-0.6, 1.2),  # left upper arm, left elbow bend
  (0.15, 2.6),
  (-0.6, 1.2),  # right upper arm, right elbow bend
  (0.0, 0.35),
  (-0.25, 0.1),  # left thigh, left knee bend
  (0.0, 0.35),
  (-0.25, 0.1),  # right thigh, right knee bend
)
# Limbs drawn as thick segments, by keypoint index; 17 = neck (between the shoulders),
# 18 = hip centre, 19 = bottom of the head.
LIMBS = (
  (5, 6),
  (11, 12),
  (17, 18),
  (19, 17),
  (5, 7),
  (7, 9),
  (6, 8),
  (8, 10),
  (11, 13),
  (13, 15),
  (12, 14),
  (14, 16),
)


@dataclasses.dataclass(frozen=True)
class SceneObject:
  shape: str
  color: str
  center: Tuple[float, float]  # (x, y) in pixels
  size: float  # pixels; meaning depends on the shape (module docstring)
  depth: float  # metres to the object's nearest point
  pose: Tuple[float, ...] = ()  # person only: the eight angles of POSE_RANGES


@dataclasses.dataclass(frozen=True)
class Scene:
  image_size: int
  objects: Tuple[SceneObject, ...]
  ground_depth: float = 12.0  # floor depth at the image centre, metres
  ground_tilt: float = 0.0  # radians; 0 = a wall facing the camera
  ground_gray: int = 90


def focal_length(image_size: int) -> float:
  return float(image_size)


def _pixel_centers(x0: int, x1: int, y0: int, y1: int) -> Tuple[np.ndarray, np.ndarray]:
  """x and y of the pixel centres of columns x0..x1-1 and rows y0..y1-1, each [h, w]."""
  xs = np.empty((y1 - y0, x1 - x0))
  ys = np.empty((y1 - y0, x1 - x0))
  xs[:] = np.arange(x0, x1) + 0.5
  ys[:] = np.arange(y0, y1)[:, None] + 0.5
  return xs, ys


# ----------------------------------------------------------------------------- floor


def ground_geometry(scene: Scene) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Depth [S,S], normals [S,S,3] and the world (X, Z) floor coordinates of the background.

  The floor plane passes through (0, 0, Z0) with normal n = (0, -sin t, -cos t). The ray
  through a pixel is z * (u, v, 1) with u, v = (pixel centre - S/2) / f, and n . P = n . (0,0,Z0)
  gives z = Z0 cos t / (cos t + v sin t): farther toward the top of the image.
  """
  size = scene.image_size
  f = focal_length(size)
  xs, ys = _pixel_centers(0, size, 0, size)
  u = (xs - size / 2) / f
  v = (ys - size / 2) / f
  cos_t, sin_t = np.cos(scene.ground_tilt), np.sin(scene.ground_tilt)
  depth = scene.ground_depth * cos_t / (cos_t + v * sin_t)
  normals = np.broadcast_to(np.array([0.0, -sin_t, -cos_t]), (size, size, 3)).copy()
  return depth, normals, np.stack([depth * u, depth], axis=-1)


# ----------------------------------------------------------------------------- objects


def person_keypoints(obj: SceneObject) -> np.ndarray:
  """The 17 COCO keypoints [17, 2] (x, y) in pixels, including any outside the image."""
  height = obj.size
  cx, cy = obj.center
  a_ls, b_ls, a_rs, b_rs, a_lh, b_lh, a_rh, b_rh = obj.pose

  def point(x, y):
    return np.array([cx + x * height, cy + y * height])

  def limb(start, angle, length, side):
    # side = +1 for the figure's left (image right): "away from the body" is +x.
    return start + length * height * np.array([side * np.sin(angle), np.cos(angle)])

  head = point(0.0, HEAD_CENTER_Y)
  head_radius = HEAD_RADIUS * height
  face = [
    head + head_radius * np.array(offset)
    for offset in (NOSE, EYE, (-EYE[0], EYE[1]), EAR, (-EAR[0], EAR[1]))
  ]
  left_shoulder, right_shoulder = point(*SHOULDER), point(-SHOULDER[0], SHOULDER[1])
  left_hip, right_hip = point(*HIP), point(-HIP[0], HIP[1])
  left_elbow = limb(left_shoulder, a_ls, UPPER_ARM, 1)
  right_elbow = limb(right_shoulder, a_rs, UPPER_ARM, -1)
  left_wrist = limb(left_elbow, a_ls + b_ls, FOREARM, 1)
  right_wrist = limb(right_elbow, a_rs + b_rs, FOREARM, -1)
  left_knee = limb(left_hip, a_lh, THIGH, 1)
  right_knee = limb(right_hip, a_rh, THIGH, -1)
  left_ankle = limb(left_knee, a_lh + b_lh, SHIN, 1)
  right_ankle = limb(right_knee, a_rh + b_rh, SHIN, -1)
  return np.stack(
    face
    + [
      left_shoulder,
      right_shoulder,
      left_elbow,
      right_elbow,
      left_wrist,
      right_wrist,
      left_hip,
      right_hip,
      left_knee,
      right_knee,
      left_ankle,
      right_ankle,
    ]
  )


def _person_line_half_width(height: float) -> float:
  # At least a pixel, so that small, far figures still draw unbroken limbs.
  return max(1.0, 0.03 * height)


def _extent(obj: SceneObject) -> Tuple[float, float, float, float]:
  """A box [x0, y0, x1, y1] that contains everything the object may draw."""
  cx, cy = obj.center
  if obj.shape == "person":
    points = person_keypoints(obj)
    pad = _person_line_half_width(obj.size) + HEAD_RADIUS * obj.size
    (x0, y0), (x1, y1) = points.min(0) - pad, points.max(0) + pad
    return x0, y0, x1, y1
  return cx - obj.size, cy - obj.size, cx + obj.size, cy + obj.size


def _near_segments(xs, ys, starts: np.ndarray, ends: np.ndarray, radius: float) -> np.ndarray:
  """Whether each pixel centre lies within `radius` of any segment starts[k]..ends[k]."""
  near = np.zeros(xs.shape, dtype=bool)
  for (ax, ay), (bx, by) in zip(starts, ends):
    dx, dy = bx - ax, by - ay
    t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / max(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
    near |= (xs - ax - t * dx) ** 2 + (ys - ay - t * dy) ** 2 <= radius**2
  return near


def _coverage(obj: SceneObject, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
  cx, cy = obj.center
  if obj.shape == "circle":
    return (xs - cx) ** 2 + (ys - cy) ** 2 <= obj.size**2
  if obj.shape == "square":
    return (np.abs(xs - cx) < obj.size) & (np.abs(ys - cy) < obj.size)
  if obj.shape == "triangle":
    angles = np.radians([-90.0, 30.0, 150.0])  # apex up (y grows downward)
    vx, vy = cx + obj.size * np.cos(angles), cy + obj.size * np.sin(angles)
    inside = np.ones(xs.shape, dtype=bool)
    for k in range(3):
      ax, ay, bx, by = vx[k], vy[k], vx[(k + 1) % 3], vy[(k + 1) % 3]
      # Vertices run clockwise on screen, so the interior is where every cross product >= 0.
      inside &= (bx - ax) * (ys - ay) - (by - ay) * (xs - ax) >= 0
    return inside
  if obj.shape == "person":
    points = person_keypoints(obj)
    head_bottom = np.array([cx, cy + (HEAD_CENTER_Y + HEAD_RADIUS) * obj.size])
    joints = np.concatenate(
      [points, [(points[5] + points[6]) / 2, (points[11] + points[12]) / 2, head_bottom]]
    )
    starts = np.stack([joints[a] for a, _ in LIMBS])
    ends = np.stack([joints[b] for _, b in LIMBS])
    on_limb = _near_segments(xs, ys, starts, ends, _person_line_half_width(obj.size))
    head_x, head_y = cx, cy + HEAD_CENTER_Y * obj.size
    on_head = (xs - head_x) ** 2 + (ys - head_y) ** 2 <= (HEAD_RADIUS * obj.size) ** 2
    return on_limb | on_head
  raise ValueError(f"unknown shape {obj.shape!r}; expected one of {SHAPES}")


def _surface(obj: SceneObject, xs, ys, cover, focal: float):
  """Depth and normals of the object's surface where `cover` is set: [n] and [n, 3] arrays
  for spheres, a scalar and a [3] vector for the flat, camera-facing shapes."""
  if obj.shape != "circle":
    return obj.depth, np.array([0.0, 0.0, -1.0])
  u = (xs[cover] - obj.center[0]) / obj.size
  v = (ys[cover] - obj.center[1]) / obj.size
  w = np.sqrt(np.clip(1.0 - u**2 - v**2, 0.0, 1.0))
  depth = obj.depth + obj.size * obj.depth / focal * (1.0 - w)
  # Renormalise: rim pixels clipped to w = 0 would otherwise be off unit length.
  normals = np.stack([u, v, -w], axis=-1)
  normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
  return depth, normals


# ----------------------------------------------------------------------------- rendering


def _compose(scene: Scene, objects: Sequence[SceneObject]):
  size = scene.image_size
  depth, normals, floor_xz = ground_geometry(scene)
  tiles = (np.floor(floor_xz[..., 0]) + np.floor(floor_xz[..., 1])) % 2
  gray = scene.ground_gray + FLOOR_CHECKER_CONTRAST * (2 * tiles - 1)
  albedo = np.repeat(gray[..., None], 3, axis=-1)
  ids = np.zeros((size, size), dtype=np.uint8)
  focal = focal_length(size)
  for index, obj in enumerate(objects):
    x0, y0, x1, y1 = _extent(obj)
    c0, r0 = max(int(np.floor(x0)) - 1, 0), max(int(np.floor(y0)) - 1, 0)
    c1, r1 = min(int(np.ceil(x1)) + 1, size), min(int(np.ceil(y1)) + 1, size)
    if c0 >= c1 or r0 >= r1:
      continue
    xs, ys = _pixel_centers(c0, c1, r0, r1)
    cover = _coverage(obj, xs, ys)
    obj_depth, obj_normals = _surface(obj, xs, ys, cover, focal)
    window = (slice(r0, r1), slice(c0, c1))
    # Views into the full maps: assigning through them updates the maps.
    window_depth, window_normals = depth[window], normals[window]
    window_albedo, window_ids = albedo[window], ids[window]
    covered_depth = window_depth[cover]
    nearer = obj_depth < covered_depth  # the z-buffer test, over covered pixels
    if np.ndim(obj_depth):
      obj_depth, obj_normals = obj_depth[nearer], obj_normals[nearer]
    covered_depth[nearer] = obj_depth
    window_depth[cover] = covered_depth
    visible = np.zeros(cover.shape, dtype=bool)
    visible[cover] = nearer
    window_normals[visible] = obj_normals
    window_albedo[visible] = COLOR_RGB[obj.color]
    window_ids[visible] = index + 1
  return depth, normals, albedo, ids


def _shade(albedo: np.ndarray, normals: np.ndarray) -> np.ndarray:
  lambert = np.clip(normals @ LIGHT_DIRECTION, 0.0, 1.0)
  return np.clip(np.round(albedo * (AMBIENT + DIFFUSE * lambert[..., None])), 0, 255).astype(
    np.uint8
  )


def _tight_box(mask: np.ndarray) -> List[float]:
  rows = np.flatnonzero(mask.any(axis=1))
  cols = np.flatnonzero(mask.any(axis=0))
  return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


def _keypoint_visibility(points: np.ndarray, person_depth: float, depth: np.ndarray):
  size = depth.shape[0]
  visibility = np.zeros(len(points), dtype=np.int32)
  for k, (x, y) in enumerate(points):
    if 0 <= x < size and 0 <= y < size:
      # Anything nearer than the (flat) figure at this pixel hides the keypoint.
      hidden = depth[int(y), int(x)] < person_depth - 1e-6
      visibility[k] = 1 if hidden else 2
  return visibility


def render(scene: Scene) -> Dict[str, object]:
  """Renders `scene`; returns numpy arrays and lists for the visible objects, in scene order.

  Keys: image uint8 [S,S,3]; depth float32 [S,S] (m); normals float32 [S,S,3];
  instance_ids uint8 [S,S] (0 = background, i + 1 = object i); shapes, colors: lists of
  names; boxes float32 [N,4] (x1,y1,x2,y2 pixels); object_depths float32 [N] (m, nearest
  point); areas int32 [N] (visible pixels); keypoints float32 [P,17,2] (x,y pixels);
  visibility int32 [P,17]; person_object_index int32 [P] (index into the objects).
  """
  objects = list(scene.objects)
  while True:
    depth, normals, albedo, ids = _compose(scene, objects)
    areas = np.bincount(ids.ravel(), minlength=len(objects) + 1)[1:]
    # Removing an object only uncovers others, so one more pass always suffices.
    if (areas >= MIN_VISIBLE_PIXELS).all():
      break
    objects = [obj for obj, area in zip(objects, areas) if area >= MIN_VISIBLE_PIXELS]

  person_indices = [i for i, obj in enumerate(objects) if obj.shape == "person"]
  keypoints = np.zeros((len(person_indices), NUM_KEYPOINTS, 2), dtype=np.float32)
  visibility = np.zeros((len(person_indices), NUM_KEYPOINTS), dtype=np.int32)
  for p, index in enumerate(person_indices):
    points = person_keypoints(objects[index])
    visibility[p] = _keypoint_visibility(points, objects[index].depth, depth)
    keypoints[p] = np.where(visibility[p][:, None] > 0, points, 0.0)

  return {
    "image": _shade(albedo, normals),
    "depth": depth.astype(np.float32),
    "normals": normals.astype(np.float32),
    "instance_ids": ids,
    "shapes": [obj.shape for obj in objects],
    "colors": [obj.color for obj in objects],
    "boxes": np.array(
      [_tight_box(ids == i + 1) for i in range(len(objects))], dtype=np.float32
    ).reshape(-1, 4),
    "object_depths": np.array([obj.depth for obj in objects], dtype=np.float32),
    "areas": areas.astype(np.int32),
    "keypoints": keypoints,
    "visibility": visibility,
    "person_object_index": np.array(person_indices, dtype=np.int32),
  }


# ----------------------------------------------------------------------------- sampling


def _sample_object(rng: np.random.Generator, shape: str, image_size: int) -> SceneObject:
  f = focal_length(image_size)
  depth_range = PERSON_DEPTH_RANGE if shape == "person" else OBJECT_DEPTH_RANGE
  depth = float(rng.uniform(*depth_range))
  # Perspective: nearer objects look bigger, a cue for depth estimation.
  size = float(rng.uniform(*METRIC_SIZE_RANGE[shape]) * f / depth)
  color = COLORS[rng.integers(len(COLORS))]
  if shape == "person":
    pose = tuple(float(rng.uniform(lo, hi)) for lo, hi in POSE_RANGES)
    # Figures may stand partly outside the frame, which gives keypoints with visibility 0.
    center = (
      float(rng.uniform(0.1, 0.9) * image_size),
      float(rng.uniform(0.35, 0.75) * image_size),
    )
    return SceneObject(shape, color, center, size, depth, pose)
  center = tuple(float(rng.uniform(size, image_size - size)) for _ in range(2))
  return SceneObject(shape, color, center, size, depth)


def _footprint_radius(obj: SceneObject) -> float:
  return obj.size * 0.25 if obj.shape == "person" else obj.size


def _crowds(candidate: SceneObject, placed: Sequence[SceneObject]) -> bool:
  # Partial overlaps (occlusion) are welcome; near-complete ones would hide objects.
  for other in placed:
    distance = np.hypot(
      candidate.center[0] - other.center[0], candidate.center[1] - other.center[1]
    )
    if distance < 0.6 * (_footprint_radius(candidate) + _footprint_radius(other)):
      return True
  return False


def sample_scene(rng: np.random.Generator, image_size: int = 64) -> Scene:
  """Draws 1..MAX_OBJECTS objects (a third of scenes have a person) on a tilted floor."""
  num_objects = int(rng.integers(1, MAX_OBJECTS + 1))
  num_persons = int(rng.choice([0, 1, 2], p=[0.65, 0.28, 0.07]))
  shapes = ["person"] * min(num_persons, num_objects)
  shapes += [SHAPES[i] for i in rng.integers(0, 3, size=num_objects - len(shapes))]
  placed: List[SceneObject] = []
  for shape in shapes:
    for _ in range(20):
      candidate = _sample_object(rng, shape, image_size)
      if not _crowds(candidate, placed):
        placed.append(candidate)
        break
  order = rng.permutation(len(placed))
  return Scene(
    image_size=image_size,
    objects=tuple(placed[i] for i in order),
    ground_depth=float(rng.uniform(*GROUND_DEPTH_RANGE)),
    ground_tilt=float(rng.uniform(*GROUND_TILT_RANGE)),
    ground_gray=int(FLOOR_GRAYS[rng.integers(len(FLOOR_GRAYS))]),
  )
