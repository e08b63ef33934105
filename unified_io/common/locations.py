"""Boxes and points <-> location tokens.

Unified-IO feeds an image padded to a square at the bottom/right, so a coordinate is
normalised by the image's longer side S = max(W, H) and quantised to one of
B = 1000 bins (`VocabLayout.num_location_bins`):

    bin = floor(coord / S * (B - 1)), clipped to [0, B - 1]

which is the released models' rule, so checkpoints see the tokens they were trained on. One
bin spans S / (B - 1) = S / 999 pixels, and the last bin is only reached by a coordinate
equal to S. Decoding maps bin b to its centre,

    coord = (b + 0.5) / (B - 1) * S, clipped to [0, W] for x and [0, H] for y,

so a quantised coordinate comes back within half a bin (S / 1998 px) of where it was. (The
released decoder used b / B * S, which lands up to about a bin short of the coordinate.)

A box [x1, y1, x2, y2] in pixels becomes four tokens in the order y1 x1 y2 x2; a point
(x, y) becomes two tokens, y then x. All functions take one box [4] / point [2] or a batch
[..., 4] / [..., 2], with one image size (height, width) for the whole batch.

Input checks (ValueError naming the problem): non-finite coordinates, image size <= 0, wrong
last dimension, x2 < x1 or y2 < y1 (zero-size boxes are allowed), and coordinates outside
the image by more than `OUTSIDE_TOLERANCE_PX`. Within the tolerance coordinates are clipped
to the image: annotations often sit a rounding error past the border (e.g. x2 = W + 0.3 after
a float resize), while anything further out is a real mistake worth hearing about.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from unified_io.common import vocab

# Half a pixel: covers rounding of annotations, still catches boxes from another image size.
OUTSIDE_TOLERANCE_PX = 0.5


def _image_size(image_hw: Sequence[float]) -> tuple[float, float]:
  size = np.asarray(image_hw, np.float64)
  if size.shape != (2,):
    raise ValueError(f"image_hw must be (height, width), got shape {size.shape}")
  height, width = float(size[0]), float(size[1])
  if not (np.isfinite(height) and np.isfinite(width)) or height <= 0 or width <= 0:
    raise ValueError(f"image size (height, width) = ({height}, {width}) must be finite and > 0")
  return height, width


def _coordinates(values, last_dim: int, what: str) -> np.ndarray:
  array = np.asarray(values, np.float64)
  if array.ndim == 0 or array.shape[-1] != last_dim:
    raise ValueError(f"{what} must have shape [..., {last_dim}], got {array.shape}")
  if not np.all(np.isfinite(array)):
    raise ValueError(f"{what} has non-finite coordinates: {values!r}")
  return array


def _check_inside(coords: np.ndarray, limit: float, what: str, axis_name: str) -> np.ndarray:
  """Raises if any coordinate is outside [0, limit] by more than the tolerance; clips the rest."""
  outside = (coords < -OUTSIDE_TOLERANCE_PX) | (coords > limit + OUTSIDE_TOLERANCE_PX)
  if np.any(outside):
    first = float(coords[outside].flat[0])
    raise ValueError(
      f"{what} {axis_name} = {first} is outside the image ({axis_name} in "
      f"[0, {limit}], tolerance {OUTSIDE_TOLERANCE_PX} px)"
    )
  return np.clip(coords, 0.0, limit)


def _to_bins(coords: np.ndarray, longer_side: float, num_bins: int) -> np.ndarray:
  bins = np.floor(coords / longer_side * (num_bins - 1))
  return np.clip(bins, 0, num_bins - 1).astype(np.int64)


def _from_bins(bins: np.ndarray, longer_side: float, limit: float, num_bins: int) -> np.ndarray:
  return np.clip((bins + 0.5) / (num_bins - 1) * longer_side, 0.0, limit)


def _xy_to_bins(x: np.ndarray, y: np.ndarray, image_hw, num_bins: int, what: str):
  height, width = _image_size(image_hw)
  longer_side = max(height, width)
  x = _check_inside(x, width, what, "x")
  y = _check_inside(y, height, what, "y")
  return _to_bins(x, longer_side, num_bins), _to_bins(y, longer_side, num_bins)


def box_to_bins(box, image_hw, num_location_bins: int = vocab.NUM_LOCATION_BINS) -> np.ndarray:
  """int64[..., 4] bins (y1, x1, y2, x2) of pixel boxes [..., 4] = (x1, y1, x2, y2)."""
  box = _coordinates(box, 4, "box")
  x1, y1, x2, y2 = np.moveaxis(box, -1, 0)
  reversed_corners = (x2 < x1) | (y2 < y1)
  if np.any(reversed_corners):
    first = box[reversed_corners][0].tolist()
    raise ValueError(f"box {first} must have x1 <= x2 and y1 <= y2 (format [x1, y1, x2, y2])")
  xs, ys = _xy_to_bins(np.stack([x1, x2]), np.stack([y1, y2]), image_hw, num_location_bins, "box")
  return np.stack([ys[0], xs[0], ys[1], xs[1]], axis=-1)


def points_to_bins(
  points, image_hw, num_location_bins: int = vocab.NUM_LOCATION_BINS
) -> np.ndarray:
  """int64[..., 2] bins (y, x) of pixel points [..., 2] = (x, y)."""
  points = _coordinates(points, 2, "point")
  xs, ys = _xy_to_bins(points[..., 0], points[..., 1], image_hw, num_location_bins, "point")
  return np.stack([ys, xs], axis=-1)


def box_to_location_ids(box, image_hw, layout: vocab.VocabLayout) -> np.ndarray:
  """int32[..., 4] location ids (y1, x1, y2, x2) of pixel boxes [..., 4] = (x1, y1, x2, y2)."""
  return np.asarray(
    layout.location_id(box_to_bins(box, image_hw, layout.num_location_bins)), np.int32
  )


def points_to_location_ids(points, image_hw, layout: vocab.VocabLayout) -> np.ndarray:
  """int32[..., 2] location ids (y, x) of pixel points [..., 2] = (x, y)."""
  return np.asarray(
    layout.location_id(points_to_bins(points, image_hw, layout.num_location_bins)), np.int32
  )


def _location_bins(ids, last_dim: int, layout: vocab.VocabLayout, what: str) -> np.ndarray:
  ids = np.asarray(ids)
  if ids.ndim == 0 or ids.shape[-1] != last_dim:
    raise ValueError(f"{what} location ids must have shape [..., {last_dim}], got {ids.shape}")
  return np.asarray(layout.location_bin(ids))  # raises naming a non-location id


def location_ids_to_box(ids, image_hw, layout: vocab.VocabLayout) -> np.ndarray:
  """float64[..., 4] pixel boxes (x1, y1, x2, y2) from location ids [..., 4] = (y1, x1, y2, x2).

  The corners are returned as decoded, not reordered: a model output with y2 < y1 stays so.
  """
  bins = _location_bins(ids, 4, layout, "box")
  height, width = _image_size(image_hw)
  longer_side, num_bins = max(height, width), layout.num_location_bins
  y1, x1, y2, x2 = np.moveaxis(bins, -1, 0)
  ys = _from_bins(np.stack([y1, y2]), longer_side, height, num_bins)
  xs = _from_bins(np.stack([x1, x2]), longer_side, width, num_bins)
  return np.stack([xs[0], ys[0], xs[1], ys[1]], axis=-1)


def location_ids_to_points(ids, image_hw, layout: vocab.VocabLayout) -> np.ndarray:
  """float64[..., 2] pixel points (x, y) from location ids [..., 2] = (y, x)."""
  bins = _location_bins(ids, 2, layout, "point")
  height, width = _image_size(image_hw)
  longer_side, num_bins = max(height, width), layout.num_location_bins
  x = _from_bins(bins[..., 1], longer_side, width, num_bins)
  y = _from_bins(bins[..., 0], longer_side, height, num_bins)
  return np.stack([x, y], axis=-1)


def _bins_to_text(bins: np.ndarray, layout: vocab.VocabLayout) -> str:
  extra_indices = np.asarray(layout.location_extra_index(bins)).reshape(-1)
  # Space-separated: each "▁<extra_id_N>" piece needs the whitespace before it.
  return " ".join(vocab.extra_id_token(n) for n in extra_indices)


def box_to_text(box, image_hw, layout: vocab.VocabLayout | None = None) -> str:
  """One box as prompt text, "<extra_id_{100+y1}> <extra_id_{100+x1}> ..." (y1 x1 y2 x2).

  The extra-id names depend only on the sentinel and bin counts, so the layout defaults to
  the official one.
  """
  layout = layout or vocab.VocabLayout.official()
  bins = box_to_bins(box, image_hw, layout.num_location_bins)
  if bins.shape != (4,):
    raise ValueError(f"box_to_text takes one box [4], got shape {bins.shape}")
  return _bins_to_text(bins, layout)


def point_to_text(point, image_hw, layout: vocab.VocabLayout | None = None) -> str:
  """One point (x, y) as prompt text, "<extra_id_{100+y}> <extra_id_{100+x}>"."""
  layout = layout or vocab.VocabLayout.official()
  bins = points_to_bins(point, image_hw, layout.num_location_bins)
  if bins.shape != (2,):
    raise ValueError(f"point_to_text takes one point [2], got shape {bins.shape}")
  return _bins_to_text(bins, layout)
