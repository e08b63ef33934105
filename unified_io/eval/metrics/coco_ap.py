"""COCO keypoint AP and mask AP over whole images, by pycocotools' COCOeval.

Ground truth is per image and in the fields of the `uio_coco2017` builder's records
(unified_io/data/builders/coco_annotations.py), so a record's "persons" or "objects" can be
passed as they are:

- keypoints: box [M, 4] pixel x1, y1, x2, y2; area [M] (COCO's segment area, which OKS
  scales by); iscrowd [M]; keypoints [M, 17, 2] x, y; visibility [M, 17] (COCO's v: 0
  unlabelled, 1 labelled hidden, 2 visible); num_keypoints [M] (optional: the joints with
  v > 0). Crowd regions and persons without labelled joints are COCO's ignored ground truth:
  a prediction they match is neither a hit nor a false positive.
- masks: category [M] (names or ids); mask [M, H, W] (or [M, H, W, 1]) arrays, nonzero
  inside, or COCO segmentations (polygon lists, RLE dicts; then "image_hw" (H, W) is needed);
  iscrowd [M]; area [M] (optional: the mask's pixel count). Crowd regions are ignored the
  COCO way: a prediction covering one (intersection over the prediction's area) is dropped.

Predictions are per image too: keypoints [N, 17, 3] (x, y, visibility; COCO ignores the
visibility) + score [N]; or mask [N, H, W] + category [N] + score [N]. Scores only rank the
predictions (COCOeval sorts by them; ties keep the given order), so any real scale works.

Every image listed counts, annotated or not: predictions on an image without ground truth
are false positives. Results are COCOeval's `stats` under its summary's names; a value
COCOeval reports as -1 (no ground truth in that area range, or none at all) is NaN here.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Dict, List, Mapping, Sequence

import numpy as np

from unified_io.common import coco_keypoints

# COCOeval.summarize()'s stats, in its order (keypoints: 20 detections per image at most).
KEYPOINT_STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
MASK_STATS = (
  "AP",
  "AP50",
  "AP75",
  "APs",
  "APm",
  "APl",
  "AR1",
  "AR10",
  "AR100",
  "ARs",
  "ARm",
  "ARl",
)
K = coco_keypoints.NUM_KEYPOINTS
PERSON = 1  # the category id of every keypoint annotation


def _column(entry: Mapping, key: str, name: str, dtype=np.float64, default=None) -> np.ndarray:
  if key not in entry:
    if default is not None:
      return default
    raise ValueError(f"{name} has no {key!r}; it has {sorted(entry)}")
  return np.asarray(entry[key], dtype)


def _lengths(name: str, **columns):
  sizes = {key: len(value) for key, value in columns.items()}
  if len(set(sizes.values())) > 1:
    raise ValueError(f"{name}: fields of different lengths {sizes}")


def _xywh(box) -> List[float]:
  x1, y1, x2, y2 = (float(v) for v in box)
  return [x1, y1, x2 - x1, y2 - y1]


def _stats(evaluator, names) -> Dict[str, float]:
  return {k: float("nan") if s == -1 else float(s) for k, s in zip(names, evaluator.stats)}


def evaluate(dataset: dict, detections: List[dict], iou_type: str):
  """COCOeval (evaluated, accumulated, summarised) of in-memory ground truth and results.

  Unlike `COCO.loadRes`, an empty result list is fine: AP is then 0 where there is ground
  truth. pycocotools' progress lines are kept off stdout.
  """
  from pycocotools import coco as coco_lib
  from pycocotools import cocoeval

  with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
    warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
    gt = coco_lib.COCO()
    gt.dataset = dataset
    gt.createIndex()
    if detections:
      dt = gt.loadRes(detections)
    else:
      dt = coco_lib.COCO()
      dt.dataset = {k: dataset[k] for k in ("images", "categories")} | {"annotations": []}
      dt.createIndex()
    evaluator = cocoeval.COCOeval(gt, dt, iouType=iou_type)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
  return evaluator


# ------------------------------------------------------------------------------ keypoints


def keypoint_dataset(truth: Sequence[Mapping], predictions: Sequence[Mapping]):
  """(COCO ground-truth dataset, result list) of per-image keypoint truth and predictions;
  image i is COCO image id i + 1."""
  if len(predictions) != len(truth):
    raise ValueError(f"predictions has {len(predictions)} images, truth has {len(truth)}")
  images, annotations, detections = [], [], []
  for i, (gt, pred) in enumerate(zip(truth, predictions)):
    images.append({"id": i + 1})
    name = f"truth[{i}]"
    boxes = _column(gt, "box", name).reshape(-1, 4)
    points = _column(gt, "keypoints", name).reshape(-1, K, 2)
    visibility = _column(gt, "visibility", name, np.int64).reshape(-1, K)
    area = _column(gt, "area", name).reshape(-1)
    crowd = _column(gt, "iscrowd", name, bool).reshape(-1)
    labelled = (visibility > 0).sum(axis=1)
    counted = _column(gt, "num_keypoints", name, np.int64, labelled).reshape(-1)
    columns = dict(keypoints=points, visibility=visibility, area=area, iscrowd=crowd)
    _lengths(name, box=boxes, num_keypoints=counted, **columns)
    for j in range(len(boxes)):
      flat = np.concatenate([points[j], visibility[j][:, None]], axis=1)
      annotations.append(
        {
          "id": len(annotations) + 1,
          "image_id": i + 1,
          "category_id": PERSON,
          "bbox": _xywh(boxes[j]),
          "area": float(area[j]),
          "iscrowd": int(crowd[j]),
          "num_keypoints": int(counted[j]),
          "keypoints": flat.reshape(-1).tolist(),
        }
      )
    name = f"predictions[{i}]"
    poses = _column(pred, "keypoints", name)
    poses = poses.reshape(0, K, 3) if poses.size == 0 else poses
    if poses.ndim != 3 or poses.shape[1:] != (K, 3):
      raise ValueError(f"{name} keypoints must be [N, {K}, 3] (x, y, v), got {poses.shape}")
    scores = _column(pred, "score", name).reshape(-1)
    _lengths(name, keypoints=poses, score=scores)
    for pose, score in zip(poses, scores):
      # No "bbox": COCO.loadRes then takes the area (for APm/APl) from the joints' extent,
      # as for COCO's own keypoint results files.
      detections.append(
        {
          "image_id": i + 1,
          "category_id": PERSON,
          "keypoints": pose.reshape(-1).tolist(),
          "score": float(score),
        }
      )
  dataset = {
    "images": images,
    "annotations": annotations,
    "categories": [{"id": PERSON, "name": "person"}],
  }
  return dataset, detections


def keypoint_ap(truth: Sequence[Mapping], predictions: Sequence[Mapping]) -> Dict[str, float]:
  """COCO keypoint AP (OKS .50:.95), AP50, AP75, APm, APl and the ARs (KEYPOINT_STATS)."""
  return _stats(evaluate(*keypoint_dataset(truth, predictions), "keypoints"), KEYPOINT_STATS)


# ---------------------------------------------------------------------------------- masks


def encode_mask(mask) -> dict:
  """A mask [H, W] (nonzero inside) as COCO's compressed RLE, a few hundred bytes."""
  from pycocotools import mask as mask_utils

  return mask_utils.encode(np.asfortranarray((np.asarray(mask) > 0).astype(np.uint8)))


def _masks(entry: Mapping, name: str) -> list:
  masks = entry.get("mask")
  if masks is None:
    raise ValueError(f"{name} has no 'mask'; it has {sorted(entry)}")
  if isinstance(masks, np.ndarray):
    if masks.ndim == 4 and masks.shape[-1] == 1:
      masks = masks[..., 0]
    if masks.size == 0:
      return []
    if masks.ndim != 3:
      raise ValueError(f"{name} masks must be [N, H, W], got shape {masks.shape}")
  return list(masks)


def _label_names(entry: Mapping, key: str, name: str) -> list:
  values = entry.get(key)
  if values is None:
    raise ValueError(f"{name} has no {key!r}; it has {sorted(entry)}")
  return [v.decode() if isinstance(v, bytes) else v for v in np.asarray(values).reshape(-1)]


def mask_dataset(truth: Sequence[Mapping], predictions: Sequence[Mapping]):
  """(COCO ground-truth dataset, result list) of per-image mask truth and predictions.

  Categories are numbered 1.. in sorted order of the names (or ids) of both sides; a
  category without ground truth anywhere is left out of the means, as COCOeval does.
  """
  if len(predictions) != len(truth):
    raise ValueError(f"predictions has {len(predictions)} images, truth has {len(truth)}")
  truth_masks = [_masks(gt, f"truth[{i}]") for i, gt in enumerate(truth)]
  pred_masks = [_masks(p, f"predictions[{i}]") for i, p in enumerate(predictions)]
  truth_labels = [_label_names(gt, "category", f"truth[{i}]") for i, gt in enumerate(truth)]
  pred_labels = [
    _label_names(p, "category", f"predictions[{i}]") for i, p in enumerate(predictions)
  ]
  names = sorted({c for labels in truth_labels + pred_labels for c in labels}, key=str)
  category = {c: k + 1 for k, c in enumerate(names)}
  images, annotations, detections = [], [], []
  for i, (gt, pred) in enumerate(zip(truth, predictions)):
    name = f"truth[{i}]"
    arrays = [np.asarray(m) for m in truth_masks[i] if isinstance(m, np.ndarray)]
    arrays += [np.asarray(m) for m in pred_masks[i]]
    hw = gt.get("image_hw")
    if hw is None and arrays:
      hw = arrays[0].shape[:2]
    if hw is not None:
      hw = tuple(int(v) for v in hw)
      for m in arrays:
        if m.shape[:2] != hw:
          raise ValueError(f"image {i}: a mask of shape {m.shape} in an image of size {hw}")
    elif any(not isinstance(m, np.ndarray) for m in truth_masks[i]):
      raise ValueError(f"{name}: COCO segmentations (polygons, RLE) need 'image_hw'")
    images.append({"id": i + 1} | ({} if hw is None else {"height": hw[0], "width": hw[1]}))
    crowd = _column(gt, "iscrowd", name, bool, np.zeros(len(truth_masks[i]), bool)).reshape(-1)
    areas = gt.get("area")
    _lengths(name, category=truth_labels[i], mask=truth_masks[i], iscrowd=crowd)
    for j, (mask, label) in enumerate(zip(truth_masks[i], truth_labels[i])):
      segmentation = encode_mask(mask) if isinstance(mask, np.ndarray) else mask
      if areas is not None:
        area = float(np.asarray(areas).reshape(-1)[j])
      elif isinstance(mask, np.ndarray):
        area = float(np.count_nonzero(mask))
      else:
        raise ValueError(f"{name}: COCO segmentations need their 'area'")
      annotations.append(
        {
          "id": len(annotations) + 1,
          "image_id": i + 1,
          "category_id": category[label],
          "segmentation": segmentation,
          "area": area,
          "iscrowd": int(crowd[j]),
        }
      )
    name = f"predictions[{i}]"
    scores = _column(pred, "score", name).reshape(-1)
    _lengths(name, mask=pred_masks[i], category=pred_labels[i], score=scores)
    for mask, label, score in zip(pred_masks[i], pred_labels[i], scores):
      detections.append(
        {
          "image_id": i + 1,
          "category_id": category[label],
          "segmentation": encode_mask(mask),
          "score": float(score),
        }
      )
  dataset = {
    "images": images,
    "annotations": annotations,
    "categories": [{"id": k, "name": str(c)} for c, k in category.items()],
  }
  return dataset, detections


def mask_ap(truth: Sequence[Mapping], predictions: Sequence[Mapping]) -> Dict[str, float]:
  """COCO mask AP (IoU .50:.95), AP50, AP75, APs, APm, APl and the ARs (MASK_STATS)."""
  return _stats(evaluate(*mask_dataset(truth, predictions), "segm"), MASK_STATS)
