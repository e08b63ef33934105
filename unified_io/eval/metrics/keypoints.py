"""Keypoint metrics: object keypoint similarity (OKS) and COCO keypoint AP (pycocotools).

OKS follows COCOeval.computeOks; GRIT's scorer uses another object scale, reproduced by a
keyword-only parameter of `keypoint_oks` (unified_io/eval/grit/scoring.py passes it).
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from unified_io.common import coco_keypoints
from unified_io.eval.metrics import base
from unified_io.eval.metrics import boxes


def _keypoints(values, name: str) -> np.ndarray:
  k = coco_keypoints.NUM_KEYPOINTS
  array = np.asarray(values, np.float64)
  if array.size == 0:
    array = array.reshape(0, k, 3)
  if array.ndim == 2:
    array = array[None]
  if array.ndim != 3 or array.shape[1:] != (k, 3):
    raise ValueError(f"{name} must be [N, {k}, 3] (x, y, visibility), got shape {array.shape}")
  return array


def keypoint_oks(
  pred, gt, gt_areas, gt_boxes=None, *, keypoint_box_area: bool = False
) -> np.ndarray:
  """Object keypoint similarity [N, M] of pred [N, 17, 3] against gt [M, 17, 3].

  COCOeval.computeOks exactly: only gt keypoints with visibility > 0 count, distances scale
  with the gt object area. A gt without labelled keypoints uses COCO's fallback (distance
  outside its box grown by the box size), which needs `gt_boxes` [M, 4] xyxy.

  keypoint_box_area=True scales each gt by the area of the box around its labelled
  keypoints instead, as GRIT's scorer does (which has no segment areas; gt_areas is then
  unused and may be None); a gt without labelled keypoints has no such box and scores 0.
  """
  pred, gt = _keypoints(pred, "pred"), _keypoints(gt, "gt")
  if keypoint_box_area:
    areas = np.array([_labelled_box_area(pose) for pose in gt], np.float64)
  else:
    areas = np.asarray(gt_areas, np.float64).reshape(-1)
  if len(areas) != len(gt):
    raise ValueError(f"gt_areas has {len(areas)} values for {len(gt)} gt poses")
  variances = (coco_keypoints.OKS_SIGMAS * 2) ** 2
  oks = np.zeros((len(pred), len(gt)))
  for j in range(len(gt)):
    labelled = gt[j, :, 2] > 0
    if keypoint_box_area and not labelled.any():
      continue  # GRIT's scorer crashes here; such a person cannot be matched
    if labelled.any():
      dx = pred[:, :, 0] - gt[j, :, 0]
      dy = pred[:, :, 1] - gt[j, :, 1]
    else:
      if gt_boxes is None:
        raise ValueError(
          f"gt pose {j} has no labelled keypoints; pass gt_boxes for COCO's box-distance fallback"
        )
      x, y, w, h = boxes.to_xywh(boxes.as_boxes(gt_boxes, "gt_boxes")[j])
      dx = np.maximum(0, x - w - pred[:, :, 0]) + np.maximum(0, pred[:, :, 0] - (x + 2 * w))
      dy = np.maximum(0, y - h - pred[:, :, 1]) + np.maximum(0, pred[:, :, 1] - (y + 2 * h))
      labelled = np.ones_like(labelled)
    e = (dx**2 + dy**2) / variances / (areas[j] + np.spacing(1)) / 2
    # One pose at a time, as COCOeval does: numpy's vectorised exp can differ in the last
    # bit with the array's length, and OKS should not depend on how many poses there are.
    oks[:, j] = [np.exp(-row[labelled]).mean() for row in e]
  return oks


def _labelled_box_area(pose: np.ndarray) -> float:
  xy = pose[pose[:, 2] > 0, :2]
  if not len(xy):
    return 0.0
  return float((xy[:, 0].max() - xy[:, 0].min()) * (xy[:, 1].max() - xy[:, 1].min()))


def keypoint_ap(
  pred_keypoints, pred_scores, gt_keypoints, gt_boxes, gt_areas=None
) -> Dict[str, float]:
  """COCO keypoint AP (OKS .50:.95), AP50, AP75, APm, APl via pycocotools (20 poses per
  image at most, COCO's fixed setting).

  Per-image lists: pred_keypoints [N_i, 17, 3], pred_scores [N_i], gt_keypoints [M_i, 17, 3],
  gt_boxes [M_i, 4] xyxy, gt_areas [M_i] (COCO uses the segment area; default: box area,
  which changes OKS scale and therefore numbers slightly). Gt poses without labelled
  keypoints are ignored, as in COCO.
  """
  n = len(gt_keypoints)
  gt_boxes = base.per_image(gt_boxes, "gt_boxes", n, 4)
  pred_scores = base.per_image(pred_scores, "pred_scores", n)
  if len(pred_keypoints) != n:
    raise ValueError(f"pred_keypoints has {len(pred_keypoints)} images, expected {n}")
  if gt_areas is not None and len(gt_areas) != n:
    raise ValueError(f"gt_areas has {len(gt_areas)} images, expected {n}")
  images, annotations, detections = [], [], []
  for i in range(n):
    images.append({"id": i + 1})
    gts = _keypoints(gt_keypoints[i], f"gt_keypoints[{i}]") if len(gt_keypoints[i]) else []
    base.same_length(gts, gt_boxes[i], f"gt_keypoints[{i}]", f"gt_boxes[{i}]")
    for j, pose in enumerate(gts):
      xywh = boxes.to_xywh(gt_boxes[i][j])
      area = xywh[2] * xywh[3] if gt_areas is None else float(gt_areas[i][j])
      annotations.append(
        {
          "id": len(annotations) + 1,
          "image_id": i + 1,
          "category_id": 1,
          "keypoints": pose.reshape(-1).tolist(),
          "iscrowd": 0,
          "num_keypoints": int((pose[:, 2] > 0).sum()),
          "bbox": xywh,
          "area": area,
        }
      )
    preds = _keypoints(pred_keypoints[i], f"pred_keypoints[{i}]") if len(pred_keypoints[i]) else []
    base.same_length(preds, pred_scores[i], f"pred_keypoints[{i}]", f"pred_scores[{i}]")
    for pose, score in zip(preds, pred_scores[i]):
      detections.append(
        {
          "image_id": i + 1,
          "category_id": 1,
          "score": float(score),
          "keypoints": pose.reshape(-1).tolist(),
        }
      )
  if not any(a["num_keypoints"] for a in annotations):
    raise ValueError("gt_keypoints holds no labelled keypoints; AP is undefined")
  keys = ("AP", "AP50", "AP75", "APm", "APl")
  if not detections:
    return {k: 0.0 for k in keys}
  dataset = {
    "images": images,
    "annotations": annotations,
    "categories": [{"id": 1, "name": "person"}],
  }
  stats = boxes.run_cocoeval(dataset, detections, "keypoints", 20)
  return {k: float(s) for k, s in zip(keys, stats)}
