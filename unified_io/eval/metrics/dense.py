"""Dense metrics: depth RMSE, surface-normal angle error, and mask / segmentation IoU.

Segmentation is scored GRIT's way (one-to-one matched IoU, see base.matched_score). GRIT's
scorer also resizes predictions and pads the union; the keyword-only parameters that
reproduce it say so (unified_io/eval/grit/scoring.py passes them).
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np

from unified_io.eval.metrics import base


def depth_rmse(pred, gt, mask=None) -> float:
  """Root mean squared depth error over `mask` pixels (default: finite gt > 0).

  [H, W] gives that image's RMSE; [B, H, W] gives the mean of per-image RMSEs, the usual
  NYU Depth v2 protocol.
  """
  pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
  if pred.shape != gt.shape or pred.ndim not in (2, 3):
    raise ValueError(
      f"pred {pred.shape} and gt {gt.shape} must be the same [H, W] or [B, H, W] shape"
    )
  valid = np.isfinite(gt) & (gt > 0) if mask is None else np.asarray(mask, bool)
  if valid.shape != gt.shape:
    raise ValueError(f"mask shape {valid.shape} must match gt shape {gt.shape}")
  if pred.ndim == 2:
    pred, gt, valid = pred[None], gt[None], valid[None]
  rmses = []
  for i in range(len(gt)):
    if not valid[i].any():
      raise ValueError(f"mask selects no pixels in image {i}")
    rmses.append(np.sqrt(np.mean((pred[i][valid[i]] - gt[i][valid[i]]) ** 2)))
  return float(np.mean(rmses))


def normal_angle_error(pred, gt, mask=None) -> Dict[str, float]:
  """Angle between predicted and gt surface normals [(B,) H, W, 3], pooled over pixels.

  Returns mean and median in degrees and the percentage of pixels under 11.25, 22.5 and 30
  degrees. Pixels with a zero gt vector (no label) are skipped, as is anything outside
  `mask`; a zero predicted vector counts as 90 degrees off.
  """
  pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
  if pred.shape != gt.shape or pred.shape[-1:] != (3,) or pred.ndim not in (3, 4):
    raise ValueError(f"pred {pred.shape} and gt {gt.shape} must be the same [(B,) H, W, 3]")
  gt_norm = np.linalg.norm(gt, axis=-1)
  pred_norm = np.linalg.norm(pred, axis=-1)
  valid = gt_norm > 1e-6
  if mask is not None:
    mask = np.asarray(mask, bool)
    if mask.shape != gt.shape[:-1]:
      raise ValueError(f"mask shape {mask.shape} must be {gt.shape[:-1]}")
    valid &= mask
  if not valid.any():
    raise ValueError("no valid pixels (gt normals are all zero or mask is empty)")
  cos = np.sum(pred * gt, axis=-1)[valid] / (
    gt_norm[valid] * np.where(pred_norm[valid] > 1e-12, pred_norm[valid], 1.0)
  )
  angles = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
  return {
    "mean": float(angles.mean()),
    "median": float(np.median(angles)),
    "within_11.25": float(np.mean(angles < 11.25) * 100),
    "within_22.5": float(np.mean(angles < 22.5) * 100),
    "within_30": float(np.mean(angles < 30) * 100),
  }


def _masks(masks, name: str) -> np.ndarray:
  array = np.asarray(masks).astype(bool)
  if array.ndim not in (2, 3):
    raise ValueError(f"{name} must be [H, W] or [N, H, W] masks, got shape {array.shape}")
  return array


def resize_mask_bilinear(mask: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
  """Resizes a binary mask the way cv2.resize's default (bilinear) does, then rounds.

  GRIT's scorer resizes a prediction of another size to the ground truth's with
  cv2.resize(INTER_LINEAR) on the uint8 mask: half-pixel centres, edge replication, then
  rounding to the nearest integer. This matches it except where cv2's fixed-point weights
  round an interpolated value of exactly 0.5 differently.
  """

  def axis(n_out: int, n_in: int):
    x = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    x0 = np.floor(x).astype(np.int64)
    return x0, np.minimum(x0 + 1, n_in - 1), x - x0

  y0, y1, fy = axis(shape[0], mask.shape[0])
  x0, x1, fx = axis(shape[1], mask.shape[1])
  m = mask.astype(np.float64)
  top = m[y0][:, x0] * (1 - fx) + m[y0][:, x1] * fx
  bottom = m[y1][:, x0] * (1 - fx) + m[y1][:, x1] * fx
  value = top * (1 - fy)[:, None] + bottom * fy[:, None]
  return value >= 0.5


def _resized(masks: Sequence[np.ndarray], shape: Tuple[int, ...]) -> list:
  return [m if m.shape == tuple(shape) else resize_mask_bilinear(m, shape) for m in masks]


def mask_iou(a, b, *, union_epsilon: float = 0.0, resize_a: bool = False):
  """IoU of binary masks: a float for two [H, W] masks, [N, M] for [N, H, W] x [M, H, W].

  Two empty masks have IoU 0. GRIT's scorer differs in two ways, each a parameter:
  union_epsilon is added to every union (GRIT: 1e-6, so a perfect match scores just under
  1), and resize_a=True resizes masks of `a` of another size to b's (`resize_mask_bilinear`)
  where by default differing sizes are an error.
  """
  a, b = _masks(a, "a"), _masks(b, "b")
  single = a.ndim == 2 and b.ndim == 2
  a, b = a.reshape((-1,) + a.shape[-2:]), b.reshape((-1,) + b.shape[-2:])
  if resize_a and a.shape[1:] != b.shape[1:]:
    a = np.array(_resized(list(a), b.shape[1:]), bool).reshape((len(a),) + b.shape[1:])
  if a.shape[1:] != b.shape[1:]:
    raise ValueError(f"mask sizes differ: a {a.shape[1:]} vs b {b.shape[1:]}")
  a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
  inter = a @ b.T
  union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
  iou = base.safe_ratio(inter, union, union_epsilon)
  return float(iou[0, 0]) if single else iou


def segmentation_iou(
  pred_masks,
  gt_masks,
  stuff: bool = False,
  *,
  union_epsilon: float = 0.0,
  resize_pred: bool = False,
) -> float:
  """GRIT-style segmentation score of one image: predicted and gt instance masks are matched
  one-to-one to maximise IoU (Hungarian), and the score is the sum of matched IoUs over
  (#predictions + #unmatched gt), so extra and missing instances both cost. With `stuff` the
  masks on each side are merged first. No masks on both sides scores 1.

  union_epsilon: see `mask_iou`. resize_pred=True resizes each (merged, with `stuff`)
  prediction of another size to the ground truth's, as GRIT's scorer does.
  """
  pred = [np.asarray(m, bool) for m in pred_masks]
  gt = [np.asarray(m, bool) for m in gt_masks]
  if stuff:
    pred = [np.logical_or.reduce(pred)] if pred else []
    gt = [np.logical_or.reduce(gt)] if gt else []
  if not pred or not gt:
    return base.matched_score(np.zeros((len(pred), len(gt))))
  if resize_pred:
    pred = _resized(pred, gt[0].shape)
  ious = np.atleast_2d(mask_iou(np.stack(pred), np.stack(gt), union_epsilon=union_epsilon))
  return base.matched_score(ious)
