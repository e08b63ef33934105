"""Drawings per output kind: structured fields (`parsing`) -> one picture, or None.

Every function is draw(image, out, size, max_depth=None): `image` the input image (uint8
or float in [0, 1], or None), `out` a prediction's or a ground truth's fields. Boxes,
joints and masks are drawn on the input upscaled to at least `size` pixels; depth (viridis,
0 to max_depth), normals and generated images are pictures of their own. The evaluation
report, `data.show` and `predict` all draw through these.
"""

from __future__ import annotations

import numpy as np

from unified_io.common import coco_keypoints
from unified_io.common import visualize


def _base(image, size):
  if image is None:
    return None, 1.0
  image = np.asarray(image)
  return visualize.upscale(image if image.dtype == np.uint8 else np.clip(image, 0, 1), size)


def nothing(image, out, size, max_depth=None):
  del image, out, size, max_depth
  return None


def boxes(image, out, size, max_depth=None):
  del max_depth
  big, scale = _base(image, size)
  if big is None or out.get("boxes") is None:
    return None
  labels = out.get("labels")
  labels = [str(l).strip() for l in labels] if labels else None
  return visualize.draw_boxes(
    big, np.asarray(out["boxes"]).reshape(-1, 4), labels=labels, scale=scale
  )


def text(image, out, size, max_depth=None):
  """Text draws nothing, unless it held boxes (then drawn on the input)."""
  return boxes(image, out, size, max_depth) if len(out.get("boxes", ())) else None


def keypoints(image, out, size, max_depth=None):
  del max_depth
  big, scale = _base(image, size)
  if big is None or out.get("keypoints") is None:
    return None
  joints = np.asarray(out["keypoints"]).reshape(-1, coco_keypoints.NUM_KEYPOINTS, 3)
  return visualize.draw_keypoints(big, joints, scale=scale)


def masks(image, out, size, max_depth=None):
  """Instance masks ("masks", [N, H, W]) or one mask ("mask") over the input."""
  del max_depth
  big, _ = _base(image, size)
  found = out.get("masks", out.get("mask"))
  if big is None or found is None:
    return None
  found = np.asarray(found, bool)
  found = found[None] if found.ndim == 2 else found
  if not len(found):
    return big
  labels = out.get("labels")
  return visualize.overlay_masks(big, found, labels=list(labels) if labels else None)


def depth(image, out, size, max_depth=None):
  del image, size
  return None if out.get("depth") is None else visualize.colorize_depth(out["depth"], max_depth)


def normals(image, out, size, max_depth=None):
  del image, size, max_depth
  return None if out.get("normals") is None else visualize.colorize_normals(out["normals"])


def image(image, out, size, max_depth=None):
  del image, size, max_depth
  return None if out.get("image") is None else np.clip(np.asarray(out["image"]), 0.0, 1.0)
