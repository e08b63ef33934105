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

Where the official code has quirks that change scores they are kept (and commented), so
numbers are comparable with the leaderboard's. `aggregate` turns per-sample scores and
confidences into evaluate.py's partition means (see unified_io/eval/grit/tasks.py).
"""
from __future__ import annotations

import math
import re
import warnings
from typing import Any, Dict, List, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.transform import Rotation

# ---------------------------------------------------------------------------------------
# Categorization.


def categorization_score(pred_words: str, gt_words: Sequence[str]) -> float:
  # The official metric compares raw strings: no lower-casing or stripping. Predictions
  # are meant to be picked from the sample's output_options list, so they match exactly.
  return float(pred_words == gt_words[0])


# ---------------------------------------------------------------------------------------
# Boxes.


def _box_area(x1, y1, x2, y2) -> float:
  # Degenerate boxes (x2 <= x1 or y2 <= y1) have area 0: they can never match.
  return float((x2 - x1) * (y2 - y1)) if (x2 > x1 and y2 > y1) else 0.0


def box_iou(box1: Sequence[float], box2: Sequence[float]) -> float:
  """IoU of two [x1, y1, x2, y2] boxes in continuous pixel coordinates (no +1)."""
  ax1, ay1, ax2, ay2 = (float(v) for v in box1)
  bx1, by1, bx2, by2 = (float(v) for v in box2)
  inter = _box_area(max(ax1, bx1), max(ay1, by1), min(ax2, bx2), min(ay2, by2))
  union = _box_area(ax1, ay1, ax2, ay2) + _box_area(bx1, by1, bx2, by2) - inter
  # The official +1e-6 makes a perfect match score 1 - 1e-6 / area, and an IoU of exactly
  # 0.5 fall just short of refexp's strict > 0.5; kept for comparable numbers.
  return inter / (union + 1e-6)


def matched_score(similarity: np.ndarray) -> float:
  """GRIT's matched-instance score from a [num_pred, num_gt] similarity matrix."""
  similarity = np.asarray(similarity, np.float64)
  num_pred, num_gt = similarity.shape
  if num_pred == 0 and num_gt == 0:
    return 1.0
  if num_pred == 0 or num_gt == 0:
    return 0.0
  rows, cols = linear_sum_assignment(-similarity)
  matched = similarity[rows, cols]
  matched = matched[matched > 0]
  num_missed = num_gt - len(matched)
  return float(matched.sum() / (num_pred + num_missed))


def _pairwise(preds, gts, fn) -> np.ndarray:
  out = np.zeros((len(preds), len(gts)))
  for i, p in enumerate(preds):
    for j, g in enumerate(gts):
      out[i, j] = fn(p, g)
  return out


def localization_score(pred_boxes: Sequence[Sequence[float]],
                       gt_boxes: Sequence[Sequence[float]]) -> float:
  return matched_score(_pairwise(pred_boxes, gt_boxes, box_iou))


def refexp_score(pred_boxes: Sequence[Sequence[float]],
                 gt_boxes: Sequence[Sequence[float]]) -> float:
  # Only the first predicted box counts: order predictions by confidence before writing.
  if len(pred_boxes) == 0:
    return 0.0
  return float(box_iou(pred_boxes[0], gt_boxes[0]) > 0.5)


# ---------------------------------------------------------------------------------------
# VQA answer normalisation (the VQA challenge's rules, as GRIT applies them).

_PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">",
                "<", "@", "`", ",", "?", "!")
_DIGIT_COMMA_DIGIT = re.compile(r"(\d)(,)(\d)")
# A period not followed by a digit ("3.5" keeps its period). The official pattern also
# carries a broken look-behind, "(?!<=\d)", that is always true at a period; and it passes
# re.UNICODE (= 32) where `count` goes, so at most 32 periods are removed.
_PERIOD = re.compile(r"\.(?!\d)")
_MAX_PERIODS = 32
_NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                 "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
                 "ten": "10"}
_ARTICLES = frozenset(("a", "an", "the"))
# Apostrophe-less spellings -> canonical contraction (the VQA evaluation's table; its
# capitalised keys are left out: they never match lower-cased text).
_CONTRACTIONS = dict(pair.split(">") for pair in """
aint>ain't arent>aren't cant>can't couldve>could've couldnt>couldn't couldn'tve>couldn't've
couldnt've>couldn't've didnt>didn't doesnt>doesn't dont>don't hadnt>hadn't hadnt've>hadn't've
hadn'tve>hadn't've hasnt>hasn't havent>haven't hed>he'd hed've>he'd've he'dve>he'd've hes>he's
howd>how'd howll>how'll hows>how's isnt>isn't itd>it'd itd've>it'd've it'dve>it'd've
itll>it'll maam>ma'am mightnt>mightn't mightnt've>mightn't've mightn'tve>mightn't've
mightve>might've mustnt>mustn't mustve>must've neednt>needn't notve>not've oclock>o'clock
oughtnt>oughtn't ow's'at>'ow's'at 'ows'at>'ow's'at 'ow'sat>'ow's'at shant>shan't
shed've>she'd've she'dve>she'd've shouldve>should've shouldnt>shouldn't
shouldnt've>shouldn't've shouldn'tve>shouldn't've somebody'd>somebodyd
somebodyd've>somebody'd've somebody'dve>somebody'd've somebodyll>somebody'll
somebodys>somebody's someoned>someone'd someoned've>someone'd've someone'dve>someone'd've
someonell>someone'll someones>someone's somethingd>something'd somethingd've>something'd've
something'dve>something'd've somethingll>something'll thats>that's thered>there'd
thered've>there'd've there'dve>there'd've therere>there're theres>there's theyd>they'd
theyd've>they'd've they'dve>they'd've theyll>they'll theyre>they're theyve>they've twas>'twas
wasnt>wasn't wed've>we'd've we'dve>we'd've weve>we've werent>weren't whatll>what'll
whatre>what're whats>what's whatve>what've whens>when's whered>where'd wheres>where's
whereve>where've whod>who'd whod've>who'd've who'dve>who'd've wholl>who'll whos>who's
whove>who've whyll>why'll whyre>why're whys>why's wont>won't wouldve>would've wouldnt>wouldn't
wouldnt've>wouldn't've wouldn'tve>wouldn't've yall>y'all yall'll>y'all'll y'allll>y'all'll
yall'd've>y'all'd've y'alld've>y'all'd've y'all'dve>y'all'd've youd>you'd youd've>you'd've
you'dve>you'd've youll>you'll youre>you're youve>you've
""".split())


def _strip_punctuation(text: str) -> str:
  out = text
  # The decision looks at the *original* text for every mark, as the official code does:
  # a mark touching a space is dropped, one inside a word becomes a space, and any
  # "digit,digit" in the answer makes every mark be dropped.
  digit_comma = _DIGIT_COMMA_DIGIT.search(text) is not None
  for mark in _PUNCTUATION:
    if digit_comma or (mark + " " in text or " " + mark in text):
      out = out.replace(mark, "")
    else:
      out = out.replace(mark, " ")
  return _PERIOD.sub("", out, count=_MAX_PERIODS)


def normalize_vqa_answer(answer: str) -> str:
  text = answer.replace("\n", " ").replace("\t", " ").lower().strip()
  text = _strip_punctuation(text)
  words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
  words = [_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES]
  return " ".join(words)


def vqa_score(pred_answer: str, gt_answers: Sequence[str]) -> float:
  # GRIT's VQA accuracy: min(matches / 3, 1) over all ground-truth answers, not the VQA
  # challenge's average over leave-one-annotator-out subsets.
  pred = normalize_vqa_answer(pred_answer)
  matches = sum(normalize_vqa_answer(a) == pred for a in gt_answers)
  return min(matches / 3.0, 1.0)


# ---------------------------------------------------------------------------------------
# Segmentation.


def _resize_mask_bilinear(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
  """Resizes a binary mask the way cv2.resize's default (bilinear) does, then rounds.

  The official metric resizes a prediction of another size to the ground truth's with
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
  return (value >= 0.5).astype(np.uint8)


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
  pred = np.asarray(pred)
  gt = np.asarray(gt)
  if pred.shape != gt.shape:
    pred = _resize_mask_bilinear(pred, gt.shape)
  inter = np.logical_and(pred, gt).sum()
  union = np.logical_or(pred, gt).sum()
  return float(inter / (union + 1e-6))


def segmentation_score(pred_masks: Sequence[np.ndarray], gt_masks: Sequence[np.ndarray],
                       stuff: bool) -> float:
  """`stuff`: the query names a "stuff" class (GRIT marks it "(Stuff)" in task_query).

  Stuff has no instances, so both sides are merged into one mask before matching.
  """
  if stuff:
    pred_masks = [np.logical_or.reduce(list(pred_masks))] if len(pred_masks) else []
    gt_masks = [np.logical_or.reduce(list(gt_masks))] if len(gt_masks) else []
  return matched_score(_pairwise(pred_masks, gt_masks, mask_iou))


# ---------------------------------------------------------------------------------------
# Keypoints: 17 COCO keypoints per person, flattened [x1, y1, v1, ..., x17, y17, v17].

NUM_KEYPOINTS = 17
# COCO's per-keypoint falloffs (nose, eyes, ears, shoulders, elbows, wrists, hips, knees,
# ankles).
KEYPOINT_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07,
                            .87, .87, .89, .89]) / 10.0


def keypoint_oks(pred_points: Sequence[float], gt_points: Sequence[float]) -> float:
  """Object keypoint similarity of one predicted person with one ground-truth person.

  As in COCO, but the object scale is the area of the box around the labelled (v > 0)
  ground-truth keypoints, not a segment area. Only labelled keypoints count; predicted
  visibilities are ignored.
  """
  gt = np.asarray(gt_points, np.float64).reshape(NUM_KEYPOINTS, 3)
  pred = np.asarray(pred_points, np.float64).reshape(NUM_KEYPOINTS, 3)
  labelled = gt[:, 2] > 0
  if not labelled.any():
    # The official code crashes here; such a person cannot be matched.
    return 0.0
  xy = gt[labelled, :2]
  area = (xy[:, 0].max() - xy[:, 0].min()) * (xy[:, 1].max() - xy[:, 1].min())
  variances = (2 * KEYPOINT_SIGMAS) ** 2
  d2 = ((pred[:, :2] - gt[:, :2]) ** 2).sum(axis=1)
  e = d2 / variances / (area + np.spacing(1)) / 2
  return float(np.exp(-e[labelled]).mean())


def keypoint_score(pred_points: Sequence[Sequence[float]],
                   gt_points: Sequence[Sequence[float]]) -> float:
  return matched_score(_pairwise(pred_points, gt_points, keypoint_oks))


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


def normal_score(pred_rgb: np.ndarray, gt_rgb: np.ndarray,
                 valid_mask: np.ndarray | None = None) -> float:
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
    raise ValueError(f"predicted normals {pred_rgb.shape} and ground truth {gt_rgb.shape} "
                     "differ in size; resize predictions to the input image size")
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
  return {"acc": 100 * s, "inf": 100 * c * s, "misinf": 100 * c * (1 - s), "conf": 100 * c,
          "sa": 100 * (c * s + (1 - c) * (1 - s)), "rmse": (100 * (c - s)) ** 2}


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


def aggregate(rows: List[Dict[str, Any]], abbrev: str, cgroup: str,
              measures: Sequence[str], partitions: Sequence[str]) -> Dict[str, float]:
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
