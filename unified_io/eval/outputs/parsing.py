"""Post-processing per output kind: one example's raw prediction -> structured fields.

A raw prediction is the dict `outputs.decode` makes per example: "text", "tokens" (the
text output's ids), "image" ([H, W, 3] in [0, 1] or None) and, by kind, "log_likelihood"
or "choice". The parsers turn it into what a caller reads (`inference.predict` returns it),
a scorer scores and a drawing draws: "boxes" + "labels", "keypoints" [17, 3], "depth",
"normals", "masks" + "labels", "mask", "image". `truth_*` give the same fields for an
example's ground truth (its raw example's meta), so one drawing serves both.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

import numpy as np

from unified_io.common import coco_keypoints
from unified_io.common import vocab
from unified_io.eval import postprocess


@dataclasses.dataclass(frozen=True)
class Context:
  """What post-processing needs besides the prediction: the vocabulary, the text decoder
  (labels after boxes, keypoint visibility; None reads no labels) and the depth scale."""

  layout: vocab.VocabLayout
  decode: Optional[Callable[[np.ndarray], str]] = None
  max_depth: float = 10.0


def _tokens(pred) -> np.ndarray:
  tokens = pred.get("tokens")
  return np.zeros(0, np.int32) if tokens is None else np.asarray(tokens)


def boxes(pred, image_hw: Sequence[float], ctx: Context, region=None) -> dict:
  del region
  found, labels, malformed = postprocess.parse_boxes(
    _tokens(pred), ctx.layout, image_hw, ctx.decode
  )
  return {"boxes": found, "labels": labels, "malformed": malformed}


def text(pred, image_hw, ctx: Context, region=None) -> dict:
  """Free text has no fields, unless it holds location tokens about an image (of size
  image_hw; None: a text-only input): then they are its boxes."""
  tokens = _tokens(pred)
  if image_hw is not None and len(tokens) and np.asarray(ctx.layout.is_location(tokens)).any():
    return boxes(pred, image_hw, ctx, region)
  return {}


def nothing(pred, image_hw, ctx: Context, region=None) -> dict:
  del pred, image_hw, ctx, region
  return {}


def keypoints(pred, image_hw, ctx: Context, region=None) -> dict:
  """region: the person box of the prompt; joints left unlocated go to its centre."""
  found, malformed = postprocess.parse_keypoints(
    _tokens(pred), ctx.layout, image_hw, ctx.decode, region=region
  )
  return {"keypoints": found, "malformed": malformed}


def depth(pred, image_hw, ctx: Context, region=None) -> dict:
  del region
  if pred.get("image") is None:
    return {}
  return {"depth": postprocess.image_to_depth(pred["image"], image_hw, ctx.max_depth)}


def normals(pred, image_hw, ctx: Context, region=None) -> dict:
  del region
  if pred.get("image") is None:
    return {}
  return {"normals": postprocess.image_to_normals(pred["image"], image_hw)}


def segmentation(pred, image_hw, ctx: Context, region=None) -> dict:
  del ctx, region
  if pred.get("image") is None:
    return {}
  masks, colors, labels = postprocess.segmentation_masks(pred["image"], image_hw)
  return {"masks": masks, "colors": colors, "labels": labels}


def image(pred, image_hw, ctx: Context, region=None) -> dict:
  del image_hw, ctx, region
  return {} if pred.get("image") is None else {"image": pred["image"]}


def text_mask(pred, image_hw, ctx: Context, region=None) -> dict:
  """The mask is white on black: its grey level (depth decoding with max 1) above 0.5."""
  del region
  if pred.get("image") is None:
    return {}
  return {"mask": postprocess.image_to_depth(pred["image"], image_hw, 1.0) > 0.5}


# ---------------------------------------------------------------------------- ground truth


def truth_nothing(raw, target_image) -> dict:
  del raw, target_image
  return {}


def truth_boxes(raw, target_image) -> dict:
  del target_image
  meta = raw["meta"]
  found = meta["boxes"] if "boxes" in meta else meta.get("box", np.zeros((0, 4)))
  labels = [str(l) for l in meta.get("labels", [])] or None
  return {"boxes": np.asarray(found, np.float64).reshape(-1, 4), "labels": labels}


def truth_keypoints(raw, target_image) -> dict:
  del target_image
  meta, k = raw["meta"], coco_keypoints.NUM_KEYPOINTS
  return {
    "keypoints": np.concatenate(
      [np.asarray(meta["keypoints"]).reshape(k, 2), np.asarray(meta["visibility"]).reshape(k, 1)],
      axis=1,
    )
  }


def truth_field(name: str, meta_key: str):
  """Ground truth that is one meta entry, e.g. "depth" (metres) or "normals"."""
  return lambda raw, target_image: {name: np.asarray(raw["meta"][meta_key])}


def truth_image(raw, target_image) -> dict:
  del raw
  return {} if target_image is None else {"image": target_image}
