"""Per-sample GRIT metrics, each a score in [0, 1] for one sample.

These follow the definitions of the official evaluator (allenai/grit_official,
metrics/*.py, the code the leaderboard runs), re-implemented here:

- categorization: exact string match of the predicted label with the ground-truth label.
- localization, segmentation, keypoint: one "matched IoU" score per sample. Predictions and
  ground-truth instances are paired by a Hungarian assignment maximising the total
  similarity (box IoU, mask IoU, keypoint OKS); pairs with similarity 0 do not count. The
  score is sum(matched similarity) / (num_pred + num_gt_missed), so false positives and
  misses both lower it. No predictions and no ground truth scores 1; exactly one of them
  empty scores 0.
- refexp: 1 if the first predicted box has IoU > 0.5 (strictly) with the first ground-truth
  box, else 0.
- vqa: min(#ground-truth answers equal to the prediction / 3, 1) after the standard VQA
  answer normalisation (punctuation, number words, articles, contractions).
- normal: fraction of valid ground-truth pixels whose angle to the prediction is below
  11.25 degrees, after rotating the prediction by the best rotation RANSAC finds (the
  metric forgives a global rotation of the camera frame).

The primitives (IoUs, OKS, matching, VQA normalisation) are the shared ones of
unified_io/eval/metrics; where the official code has quirks that change scores they are
kept, listed below and passed to those functions as parameters, so numbers are comparable
with the leaderboard's. Normals (RANSAC) and the aggregation are GRIT's own: `aggregate`
turns per-sample scores and confidences into evaluate.py's partition means (see
unified_io/eval/grit/tasks.py).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Dict, List, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from unified_io.common import coco_keypoints
from unified_io.eval import metrics

# The official scorer's quirks, kept so numbers are comparable with the leaderboard's; each
# is a parameter of the shared metric in unified_io/eval/metrics, whose default is the usual
# convention:
# - Every box and mask union gets +1e-6: a perfect match scores 1 - 1e-6 / area, and an
#   IoU of exactly 0.5 falls just short of refexp's strict > 0.5.
UNION_EPSILON = 1e-6
# - VQA normalisation: the official period pattern carries a broken look-behind,
#   "(?!<=\d)", that is always true at a period (harmless), and it passes re.UNICODE (= 32)
#   where `count` goes, so at most 32 periods are removed.
MAX_PERIODS = 32
# - VQA accuracy is min(#ground-truth answers equal to the prediction / 3, 1) over all
#   answers, not the VQA challenge's average over leave-one-annotator-out subsets.
# - Refexp passes on IoU > 0.5 (strictly) of the first predicted box.
# - A mask prediction of another size is resized to the ground truth's first (cv2-style
#   bilinear, `metrics.resize_mask_bilinear`).
# - OKS scales by the area of the box around the labelled ground-truth keypoints, not a
#   segment area; a person without labelled keypoints (the official code crashes) scores 0.

NUM_KEYPOINTS = coco_keypoints.NUM_KEYPOINTS
matched_score = metrics.matched_score  # GRIT's matched-instance score (see the docstring)


def categorization_score(pred_words: str, gt_words: Sequence[str]) -> float:
  # The official metric compares raw strings: no lower-casing or stripping. Predictions
  # are meant to be picked from the sample's output_options list, so they match exactly.
  return metrics.accuracy([pred_words], [gt_words[0]])


def box_iou(box1: Sequence[float], box2: Sequence[float]) -> float:
  """IoU of two [x1, y1, x2, y2] boxes in continuous pixel coordinates (no +1)."""
  return float(metrics.box_iou(box1, box2, union_epsilon=UNION_EPSILON)[0, 0])


def localization_score(
  pred_boxes: Sequence[Sequence[float]], gt_boxes: Sequence[Sequence[float]]
) -> float:
  return matched_score(metrics.box_iou(pred_boxes, gt_boxes, union_epsilon=UNION_EPSILON))


def refexp_score(
  pred_boxes: Sequence[Sequence[float]], gt_boxes: Sequence[Sequence[float]]
) -> float:
  # Only the first predicted box counts: order predictions by confidence before writing.
  first = pred_boxes[0] if len(pred_boxes) else None
  return metrics.refexp_accuracy(
    [first], [gt_boxes[0]], 0.5, strict=True, union_epsilon=UNION_EPSILON
  )


def normalize_vqa_answer(answer: str) -> str:
  return metrics.normalize_vqa_answer(answer, max_periods=MAX_PERIODS)


def vqa_score(pred_answer: str, gt_answers: Sequence[str]) -> float:
  return metrics.vqa_scores(
    [pred_answer], [list(gt_answers)], leave_one_out=False, max_periods=MAX_PERIODS
  )[0]


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
  return metrics.mask_iou(pred, gt, union_epsilon=UNION_EPSILON, resize_a=True)


def segmentation_score(
  pred_masks: Sequence[np.ndarray], gt_masks: Sequence[np.ndarray], stuff: bool
) -> float:
  """`stuff`: the query names a "stuff" class (GRIT marks it "(Stuff)" in task_query).

  Stuff has no instances, so both sides are merged into one mask before matching.
  """
  return metrics.segmentation_iou(
    pred_masks, gt_masks, stuff, union_epsilon=UNION_EPSILON, resize_pred=True
  )


def _poses(points) -> np.ndarray:
  # GRIT flattens each person: [x1, y1, v1, ..., x17, y17, v17].
  return np.asarray(points, np.float64).reshape(-1, NUM_KEYPOINTS, 3)


def keypoint_oks(pred_points: Sequence[float], gt_points: Sequence[float]) -> float:
  """Object keypoint similarity of one predicted person with one ground-truth person.

  As in COCO, but the object scale is the area of the box around the labelled (v > 0)
  ground-truth keypoints, not a segment area. Only labelled keypoints count; predicted
  visibilities are ignored.
  """
  return float(
    metrics.keypoint_oks(_poses(pred_points), _poses(gt_points), None, keypoint_box_area=True)[0, 0]
  )


def keypoint_score(
  pred_points: Sequence[Sequence[float]], gt_points: Sequence[Sequence[float]]
) -> float:
  return matched_score(
    metrics.keypoint_oks(_poses(pred_points), _poses(gt_points), None, keypoint_box_area=True)
  )


# ---------------------------------------------------------------------------------------
# Surface normals, as RGB images: channel c = (n_c + 1) / 2 * 255.

NORMAL_INLIER_DEGREES = 11.25
_RANSAC_ITERATIONS = 500
_RANSAC_CONSENSUS_SIZE = 500


def rgb_to_normals(rgb: np.ndarray) -> np.ndarray:
  # GRIT's decoding centres at 122.5 (not 127.5) and renormalises; 122.5 is never an
  # integer pixel value, so no vector has zero length.
  n = (np.asarray(rgb, np.float64)[..., :3] - 122.5) / 122.5
  return n / np.linalg.norm(n, axis=-1, keepdims=True)


def _sharp_edges(gt_rgb: np.ndarray, degrees: float = 40.0) -> np.ndarray:
  """Pixels next to a neighbour whose ground-truth normal differs by more than `degrees`.

  Normal maps rendered from depth are unreliable across creases and occlusion boundaries.
  """
  n = rgb_to_normals(gt_rgb)
  # Only clipped above, as in the official code: a dot product a rounding error below -1
  # gives NaN, which compares False (not an edge).
  with np.errstate(invalid="ignore"):
    lr = np.degrees(np.arccos(np.minimum(1, (n[:, 1:] * n[:, :-1]).sum(-1)))) > degrees
    ud = np.degrees(np.arccos(np.minimum(1, (n[1:] * n[:-1]).sum(-1)))) > degrees
  edges = np.zeros(n.shape[:2], bool)
  edges[:, 1:] |= lr
  edges[:, :-1] |= lr
  edges[1:] |= ud
  edges[:-1] |= ud
  return edges


def normal_valid_mask(gt_rgb: np.ndarray) -> np.ndarray:
  """Ground-truth pixels that are scored: not a fill colour and not on a sharp edge.

  Pixels (0,0,0), (128,128,128) and (201,201,201) mark "no ground truth" in GRIT's
  sources.
  """
  rgb = np.asarray(gt_rgb)[..., :3]
  valid = ~_sharp_edges(rgb)
  for fill in (0, 128, 201):
    valid &= (rgb != fill).any(axis=-1)
  return valid


def _count_inliers(a: np.ndarray, b: np.ndarray) -> int:
  angles = np.degrees(np.arccos(np.clip((a * b).sum(axis=1), -1.0, 1.0)))
  return int((angles < NORMAL_INLIER_DEGREES).sum())


def normal_score(
  pred_rgb: np.ndarray, gt_rgb: np.ndarray, valid_mask: np.ndarray | None = None
) -> float:
  """Fraction of valid pixels within 11.25 degrees after a RANSAC-fitted rotation.

  Reproduces the official "R-RANSAC" with its seeds, so scores match the leaderboard's:
  iteration 0 tries the identity, every later one fits a rotation to two random
  correspondences (legacy RandomState(0)) and counts inliers on a random subset of 500
  valid pixels (default_rng(0)); the rotation with most subset inliers is scored on all
  valid pixels. Two quirks are kept: the two correspondences are drawn among the first H
  valid pixels (H = image height), and ties keep the earlier rotation.
  """
  pred_rgb = np.asarray(pred_rgb)[..., :3]
  gt_rgb = np.asarray(gt_rgb)[..., :3]
  if pred_rgb.shape != gt_rgb.shape:
    raise ValueError(
      f"predicted normals {pred_rgb.shape} and ground truth {gt_rgb.shape} "
      "differ in size; resize predictions to the input image size"
    )
  if valid_mask is None:
    valid_mask = normal_valid_mask(gt_rgb)
  index = np.flatnonzero(valid_mask.reshape(-1))
  if index.size == 0:
    return 1.0  # nothing to score (the official code means to return 1 here)
  pred = rgb_to_normals(pred_rgb).reshape(-1, 3)[index]
  gt = rgb_to_normals(gt_rgb).reshape(-1, 3)[index]
  pick_pairs = np.random.RandomState(0)
  pick_subset = np.random.default_rng(0)
  # The official code would fail with fewer valid pixels than these; we shrink instead.
  pair_range = min(gt_rgb.shape[0], index.size)
  subset_size = min(_RANSAC_CONSENSUS_SIZE, index.size)
  rotation = best = Rotation.identity()
  best_inliers = 0
  for i in range(_RANSAC_ITERATIONS):
    if i > 0:
      pair = pick_pairs.choice(pair_range, size=2, replace=False)
      with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate pairs warn; the fit is still usable
        rotation, _ = Rotation.align_vectors(gt[pair], pred[pair])
    subset = pick_subset.choice(index.size, size=subset_size, replace=False)
    inliers = _count_inliers(rotation.apply(pred[subset]), gt[subset])
    if inliers > best_inliers:
      best_inliers, best = inliers, rotation
  return _count_inliers(best.apply(pred), gt) / index.size


# ---------------------------------------------------------------------------------------
# Aggregation over samples, as the official evaluate.py does it.

MEASURES = ("acc", "inf", "misinf", "conf", "sa", "rmse")
PARTITIONS = ("sameSrc", "newSrc", "agg", "sameCpt", "newCpt", "dist", "undist", "deldist")


def sample_measures(score: float, confidence: float) -> Dict[str, float]:
  s, c = score, confidence
  # evaluate.py's measures: accuracy, informativeness (confidence-weighted accuracy),
  # misinformation, mean confidence, self-awareness and confidence RMSE (kept squared
  # here, rooted after averaging).
  return {
    "acc": 100 * s,
    "inf": 100 * c * s,
    "misinf": 100 * c * (1 - s),
    "conf": 100 * c,
    "sa": 100 * (c * s + (1 - c) * (1 - s)),
    "rmse": (100 * (c - s)) ** 2,
  }


def _partition(rows: List[Dict[str, Any]], partition: str) -> List[Dict[str, float]]:
  """The per-sample measure dicts in one partition (deldist: per-pair differences)."""
  undist = [r for r in rows if not r["dist"]]
  if partition in ("sameSrc", "newSrc"):
    want = partition == "newSrc"
    return [r["m"] for r in undist if r["new_src"] is not None and r["new_src"] == want]
  if partition in ("sameCpt", "newCpt"):
    want = partition == "newCpt"
    return [r["m"] for r in undist if r["new_cpt"] is not None and r["new_cpt"] == want]
  if partition == "dist":
    return [r["m"] for r in rows if r["dist"]]
  # A distorted copy's example_id is its original's plus "_dist" (5 characters).
  dist = {r["id"][:-5]: r["m"] for r in rows if r["dist"]}
  if partition == "undist":
    return [r["m"] for r in undist if r["id"] in dist]
  return [{k: r["m"][k] - dist[r["id"]][k] for k in r["m"]} for r in undist if r["id"] in dist]


def aggregate(
  rows: List[Dict[str, Any]],
  abbrev: str,
  cgroup: str,
  measures: Sequence[str],
  partitions: Sequence[str],
) -> Dict[str, float]:
  """Partition means in percent, keyed "{measure}.{cgroup}.{partition}.{abbrev}.mean".

  rows: one dict per sample: "id" (example_id), "m" (`sample_measures`), "dist" (is
  distorted), "new_src" / "new_cpt" (bool, or None when the metadata lacks it). Also adds
  ".cnt" sample counts. A partition with no sample is left out (the official code also
  drops partitions of one sample, which only matters for tiny sets), and agg needs both
  sameSrc and newSrc.
  """
  means, out = {}, {}
  for partition in partitions:
    if partition == "agg":
      continue
    part = _partition(rows, partition)
    if not part:
      continue
    for m in measures:
      if m == "rmse" and partition == "deldist":
        continue  # undefined for differences (the official code skips it too)
      means[(m, partition)] = float(np.mean([x[m] for x in part]))
      out[f"{m}.{cgroup}.{partition}.{abbrev}.cnt"] = len(part)
  if "agg" in partitions:
    for m in measures:
      if (m, "sameSrc") in means and (m, "newSrc") in means:
        # Equal weight to both source groups, whatever their sizes.
        means[(m, "agg")] = (means[(m, "sameSrc")] + means[(m, "newSrc")]) / 2
  for (m, partition), value in means.items():
    if m == "rmse":
      value = math.sqrt(value)
    out[f"{m}.{cgroup}.{partition}.{abbrev}.mean"] = value
  return out
