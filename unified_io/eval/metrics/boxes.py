"""Box metrics: IoU, referring-expression accuracy and COCO detection AP (pycocotools).

COCO AP runs pycocotools' COCOeval on in-memory COCO objects, so numbers are comparable
with published ones. GRIT's scorer differs from the COCO conventions in small ways that
change scores; the keyword-only parameters that reproduce it say so (unified_io/eval/grit/
scoring.py passes them).
"""

from __future__ import annotations

import contextlib
import io
from typing import Dict, List, Sequence

import numpy as np

from unified_io.eval.metrics import base


def as_boxes(boxes, name: str) -> np.ndarray:
  array = np.asarray(boxes, np.float64)
  if array.ndim == 1 and array.size == 0:
    array = array.reshape(0, 4)
  if array.ndim == 1:
    array = array[None]
  if array.ndim != 2 or array.shape[-1] != 4:
    raise ValueError(f"{name} must be [N, 4] boxes (x1, y1, x2, y2), got shape {array.shape}")
  return array


def box_iou(a, b, *, union_epsilon: float = 0.0) -> np.ndarray:
  """Pairwise IoU [N, M] of boxes a [N, 4] and b [M, 4], (x1, y1, x2, y2) in pixels.

  Continuous coordinates (no +1 on widths, as COCO). Reversed corners count as zero area.
  union_epsilon is added to every union, as GRIT's scorer does with 1e-6: a perfect match
  then scores 1 - 1e-6 / area, and an IoU of exactly 0.5 falls just below 0.5. Default 0:
  exact IoUs (0 where the union is empty).
  """
  a, b = as_boxes(a, "a"), as_boxes(b, "b")
  area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
  area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
  width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
  height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
  inter = np.clip(width, 0, None) * np.clip(height, 0, None)
  union = area_a[:, None] + area_b[None, :] - inter
  return base.safe_ratio(inter, union, union_epsilon)


def refexp_accuracy(
  pred_boxes: Sequence,
  gt_boxes,
  threshold: float = 0.5,
  *,
  strict: bool = False,
  union_epsilon: float = 0.0,
) -> float:
  """Fraction of expressions whose predicted box has IoU >= threshold with the gt box.

  pred_boxes[i] may be None (no parsable box), which counts as a miss. strict=True needs
  IoU > threshold, as GRIT's refexp score does; union_epsilon: see `box_iou`.
  """
  gt = as_boxes(gt_boxes, "gt_boxes")
  base.same_length(pred_boxes, gt, "pred_boxes", "gt_boxes")
  if not len(gt):
    raise ValueError("gt_boxes is empty")
  hits = []
  for i, pred in enumerate(pred_boxes):
    if pred is None or not np.size(pred):
      hits.append(False)
      continue
    pred = np.asarray(pred, np.float64)
    if pred.shape != (4,):
      raise ValueError(f"pred_boxes[{i}] must be one box [4], got shape {pred.shape}")
    iou = box_iou(pred, gt[i], union_epsilon=union_epsilon)[0, 0]
    hits.append(bool(iou > threshold if strict else iou >= threshold))
  return float(np.mean(hits))


def to_xywh(box) -> List[float]:
  x1, y1, x2, y2 = (float(v) for v in box)
  return [x1, y1, x2 - x1, y2 - y1]


def run_cocoeval(gt_dataset: dict, detections: List[dict], iou_type: str, max_dets: int):
  from pycocotools import coco as coco_lib
  from pycocotools import cocoeval

  # pycocotools reports progress on stdout; keep the caller's output clean.
  with contextlib.redirect_stdout(io.StringIO()):
    gt = coco_lib.COCO()
    gt.dataset = gt_dataset
    gt.createIndex()
    dt = gt.loadRes(detections)
    evaluator = cocoeval.COCOeval(gt, dt, iouType=iou_type)
    if iou_type == "bbox":  # summarize() reads AP at maxDets[2]; keypoints fix theirs at 20
      evaluator.params.maxDets = [1, 10, max_dets]
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
  return evaluator.stats


def detection_map(
  pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels, max_detections: int = 100
) -> Dict[str, float]:
  """COCO box AP (IoU .50:.95), AP50 and AP75 over a set of images, via pycocotools.

  Each argument is a per-image list: boxes [N_i, 4] pixel (x1, y1, x2, y2), scores [N_i],
  labels [N_i] (strings or ints; predicted labels absent from the gt are false positives of
  categories COCO then leaves out of the mean). Uses box areas for gt, so only the "all"
  area range (reported here) matches official COCO numbers.
  """
  n = len(gt_boxes)
  gt_boxes = base.per_image(gt_boxes, "gt_boxes", n, 4)
  gt_labels = base.per_image(gt_labels, "gt_labels", n)
  pred_boxes = base.per_image(pred_boxes, "pred_boxes", n, 4)
  pred_scores = base.per_image(pred_scores, "pred_scores", n)
  pred_labels = base.per_image(pred_labels, "pred_labels", n)
  for i in range(n):
    base.same_length(gt_boxes[i], gt_labels[i], f"gt_boxes[{i}]", f"gt_labels[{i}]")
    base.same_length(pred_boxes[i], pred_scores[i], f"pred_boxes[{i}]", f"pred_scores[{i}]")
    base.same_length(pred_boxes[i], pred_labels[i], f"pred_boxes[{i}]", f"pred_labels[{i}]")
  if not sum(len(b) for b in gt_boxes):
    raise ValueError("gt_boxes holds no boxes; AP is undefined")
  names = sorted({l for ls in gt_labels + pred_labels for l in ls}, key=str)
  category = {name: k + 1 for k, name in enumerate(names)}
  images, annotations, detections = [], [], []
  for i in range(n):
    images.append({"id": i + 1})
    for box, label in zip(gt_boxes[i], gt_labels[i]):
      xywh = to_xywh(box)
      annotations.append(
        {
          "id": len(annotations) + 1,
          "image_id": i + 1,
          "bbox": xywh,
          "area": xywh[2] * xywh[3],
          "iscrowd": 0,
          "category_id": category[label],
        }
      )
    for box, score, label in zip(pred_boxes[i], pred_scores[i], pred_labels[i]):
      detections.append(
        {
          "image_id": i + 1,
          "bbox": to_xywh(box),
          "score": float(score),
          "category_id": category[label],
        }
      )
  if not detections:
    return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
  dataset = {
    "images": images,
    "annotations": annotations,
    "categories": [{"id": k, "name": str(name)} for name, k in category.items()],
  }
  stats = run_cocoeval(dataset, detections, "bbox", max_detections)
  return {"AP": float(stats[0]), "AP50": float(stats[1]), "AP75": float(stats[2])}
