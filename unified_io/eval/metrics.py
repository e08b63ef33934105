"""Evaluation metrics for the Unified-IO tasks, as plain functions over numpy / Python data.

Where a reference implementation exists we call it rather than re-deriving it, so numbers
are comparable with published ones:

- COCO detection and keypoint AP: pycocotools' COCOeval on in-memory COCO objects.
- Captioning: pycocoevalcap's BLEU, ROUGE-L and CIDEr-D (its `Cider` class is CIDEr-D:
  Gaussian length penalty, clipped n-gram counts, x10). The coco-caption pipeline first runs
  the Stanford PTB tokenizer, which needs Java; we tokenize in Python instead
  (`tokenize_caption`: lowercase, PTB-style clitic splitting, punctuation dropped), which
  agrees with PTB on ordinary captions and keeps the metrics usable without Java.
  METEOR and SPICE only exist as Java programs; they are offered when `java` is on PATH
  (SPICE also needs the Stanford CoreNLP jar that pycocoevalcap downloads on first use).
- VQA: the official VQA v2 answer normalisation, re-implemented (the script is not a package).

Inputs are validated up front and errors are ValueErrors that name the argument.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from typing import Dict, Hashable, List, Optional, Sequence

import numpy as np
from scipy import optimize

# ----------------------------------------------------------------------------------------
# Classification
# ----------------------------------------------------------------------------------------


def _same_length(a, b, name_a: str, name_b: str):
  if len(a) != len(b):
    raise ValueError(f"{name_a} has {len(a)} entries but {name_b} has {len(b)}")


def accuracy(predictions: Sequence, targets: Sequence) -> float:
  """Fraction of predictions equal to their target (exact match)."""
  _same_length(predictions, targets, "predictions", "targets")
  if not len(targets):
    raise ValueError("targets is empty")
  return float(np.mean([p == t for p, t in zip(predictions, targets)]))


def _class_f1(predictions, targets, label) -> float:
  tp = sum(p == label and t == label for p, t in zip(predictions, targets))
  fp = sum(p == label and t != label for p, t in zip(predictions, targets))
  fn = sum(p != label and t == label for p, t in zip(predictions, targets))
  # F1 = 2tp / (2tp + fp + fn); 0 when the class never occurs on either side (as sklearn).
  return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def f1(predictions: Sequence, targets: Sequence, average: str = "binary",
       positive_label: Hashable = 1) -> float:
  """F1 score. "binary": of `positive_label`; "macro": unweighted mean over every label seen
  in targets or predictions (sklearn's convention)."""
  _same_length(predictions, targets, "predictions", "targets")
  if not len(targets):
    raise ValueError("targets is empty")
  predictions, targets = list(predictions), list(targets)
  if average == "binary":
    return float(_class_f1(predictions, targets, positive_label))
  if average == "macro":
    labels = set(targets) | set(predictions)
    return float(np.mean([_class_f1(predictions, targets, label) for label in labels]))
  raise ValueError(f"average must be 'binary' or 'macro', got {average!r}")


# ----------------------------------------------------------------------------------------
# VQA
# ----------------------------------------------------------------------------------------

# Verbatim from the official VQA evaluation script (vqaEval.py), quirks included: keys with a
# capital I never match after lowercasing, and "somebody'd" maps to "somebodyd".
_CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
    "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've",
    "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
    "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've",
    "whyll": "why'll", "whyre": "why're", "whys": "why's", "wont": "won't",
    "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll",
    "youre": "you're", "youve": "you've",
}
_NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                 "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = ("a", "an", "the")
_PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<",
                "@", "`", ",", "?", "!")
# The official regexes, including the malformed look-behind "(?!<=\d)": in effect a period
# is removed unless a digit follows it ("2.5" keeps its point, "yes." loses it).
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")


def _vqa_punctuation(text: str) -> str:
  out = text
  for p in _PUNCTUATION:
    # Punctuation next to a space (or any digit comma digit in the answer) is deleted,
    # otherwise it separates words: "black/white" -> "black white", "1,000" -> "1000".
    if (p + " " in text or " " + p in text) or _COMMA_STRIP.search(text) is not None:
      out = out.replace(p, "")
    else:
      out = out.replace(p, " ")
  return _PERIOD_STRIP.sub("", out)


def _vqa_digits_articles(text: str) -> str:
  words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
  words = [w for w in words if w not in _ARTICLES]
  return " ".join(_CONTRACTIONS.get(w, w) for w in words)


def normalize_vqa_answer(answer: str) -> str:
  """The official VQA answer normalisation (punctuation, number words, articles, contractions)."""
  answer = answer.replace("\n", " ").replace("\t", " ").strip()
  return _vqa_digits_articles(_vqa_punctuation(answer))


def vqa_scores(predictions: Sequence[str], answer_lists: Sequence[Sequence[str]],
               official_gt_processing: bool = False) -> List[float]:
  """Per-question VQA accuracy: min(#matching annotators / 3, 1) averaged over the
  leave-one-annotator-out subsets (10 choose 9 for VQA v2's 10 answers).

  The official script normalises the prediction fully but ground-truth answers only for
  punctuation, and only when annotators disagree; that is exact for VQA v2 whose released
  answers are already normalised, but would score "2" against a raw "two" as wrong. By
  default we apply the full normalisation to both sides; `official_gt_processing=True`
  reproduces the script exactly.

  With fewer than 4 answers, 3 matching others cannot exist, so the threshold becomes all
  other annotators (n - 1); a single answer is exact match. (Official mode keeps 3.)
  """
  _same_length(predictions, answer_lists, "predictions", "answer_lists")
  scores = []
  for i, (prediction, answers) in enumerate(zip(predictions, answer_lists)):
    if isinstance(answers, str) or not len(answers):
      raise ValueError(f"answer_lists[{i}] must be a non-empty list of strings, got {answers!r}")
    if not isinstance(prediction, str):
      raise ValueError(f"predictions[{i}] must be a string, got {type(prediction).__name__}")
    prediction = normalize_vqa_answer(prediction)
    answers = [a.replace("\n", " ").replace("\t", " ").strip() for a in answers]
    if not official_gt_processing:
      answers = [normalize_vqa_answer(a) for a in answers]
    elif len(set(answers)) > 1:
      answers = [_vqa_punctuation(a) for a in answers]
    matches = [a == prediction for a in answers]
    n = len(answers)
    if n == 1 and not official_gt_processing:
      scores.append(float(matches[0]))
      continue
    needed = 3 if official_gt_processing else min(3, n - 1)
    total = sum(matches)
    scores.append(float(np.mean([min(1.0, (total - m) / needed) for m in matches])))
  return scores


def vqa_accuracy(predictions: Sequence[str], answer_lists: Sequence[Sequence[str]],
                 official_gt_processing: bool = False) -> float:
  """Mean VQA accuracy in [0, 1] (see `vqa_scores`)."""
  if not len(predictions):
    raise ValueError("predictions is empty")
  return float(np.mean(vqa_scores(predictions, answer_lists, official_gt_processing)))


# ----------------------------------------------------------------------------------------
# Boxes, masks, dense maps
# ----------------------------------------------------------------------------------------


def _boxes(boxes, name: str) -> np.ndarray:
  array = np.asarray(boxes, np.float64)
  if array.ndim == 1 and array.size == 0:
    array = array.reshape(0, 4)
  if array.ndim == 1:
    array = array[None]
  if array.ndim != 2 or array.shape[-1] != 4:
    raise ValueError(f"{name} must be [N, 4] boxes (x1, y1, x2, y2), got shape {array.shape}")
  return array


def box_iou(a, b) -> np.ndarray:
  """Pairwise IoU [N, M] of boxes a [N, 4] and b [M, 4], (x1, y1, x2, y2) in pixels.

  Continuous coordinates (no +1 on widths, as COCO). Reversed corners count as zero area.
  """
  a, b = _boxes(a, "a"), _boxes(b, "b")
  area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
  area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
  width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
  height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
  inter = np.clip(width, 0, None) * np.clip(height, 0, None)
  union = area_a[:, None] + area_b[None, :] - inter
  return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def refexp_accuracy(pred_boxes: Sequence, gt_boxes, threshold: float = 0.5) -> float:
  """Fraction of expressions whose predicted box has IoU >= threshold with the gt box.

  pred_boxes[i] may be None (no parsable box), which counts as a miss.
  """
  gt = _boxes(gt_boxes, "gt_boxes")
  _same_length(pred_boxes, gt, "pred_boxes", "gt_boxes")
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
    hits.append(bool(box_iou(pred, gt[i])[0, 0] >= threshold))
  return float(np.mean(hits))


def depth_rmse(pred, gt, mask=None) -> float:
  """Root mean squared depth error over `mask` pixels (default: finite gt > 0).

  [H, W] gives that image's RMSE; [B, H, W] gives the mean of per-image RMSEs, the usual
  NYU Depth v2 protocol.
  """
  pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
  if pred.shape != gt.shape or pred.ndim not in (2, 3):
    raise ValueError(f"pred {pred.shape} and gt {gt.shape} must be the same [H, W] or "
                     f"[B, H, W] shape")
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
      gt_norm[valid] * np.where(pred_norm[valid] > 1e-12, pred_norm[valid], 1.0))
  angles = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
  return {"mean": float(angles.mean()), "median": float(np.median(angles)),
          "within_11.25": float(np.mean(angles < 11.25) * 100),
          "within_22.5": float(np.mean(angles < 22.5) * 100),
          "within_30": float(np.mean(angles < 30) * 100)}


def _masks(masks, name: str) -> np.ndarray:
  array = np.asarray(masks).astype(bool)
  if array.ndim not in (2, 3):
    raise ValueError(f"{name} must be [H, W] or [N, H, W] masks, got shape {array.shape}")
  return array


def mask_iou(a, b):
  """IoU of binary masks: a float for two [H, W] masks, [N, M] for [N, H, W] x [M, H, W].

  Two empty masks have IoU 0.
  """
  a, b = _masks(a, "a"), _masks(b, "b")
  single = a.ndim == 2 and b.ndim == 2
  a, b = a.reshape((-1,) + a.shape[-2:]), b.reshape((-1,) + b.shape[-2:])
  if a.shape[1:] != b.shape[1:]:
    raise ValueError(f"mask sizes differ: a {a.shape[1:]} vs b {b.shape[1:]}")
  a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
  inter = a @ b.T
  union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
  iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
  return float(iou[0, 0]) if single else iou


def segmentation_iou(pred_masks, gt_masks, stuff: bool = False) -> float:
  """GRIT-style segmentation score of one image: predicted and gt instance masks are matched
  one-to-one to maximise IoU (Hungarian), and the score is the sum of matched IoUs over
  (#predictions + #unmatched gt), so extra and missing instances both cost. With `stuff` the
  masks on each side are merged first. No masks on both sides scores 1.
  """
  pred = [np.asarray(m, bool) for m in pred_masks]
  gt = [np.asarray(m, bool) for m in gt_masks]
  if stuff:
    pred = [np.logical_or.reduce(pred)] if pred else []
    gt = [np.logical_or.reduce(gt)] if gt else []
  if not pred and not gt:
    return 1.0
  if not pred or not gt:
    return 0.0
  ious = np.atleast_2d(mask_iou(np.stack(pred), np.stack(gt)))
  rows, cols = optimize.linear_sum_assignment(-ious)
  matched = ious[rows, cols]
  matched = matched[matched > 0]
  return float(matched.sum() / (len(pred) + len(gt) - len(matched)))


# ----------------------------------------------------------------------------------------
# COCO detection and keypoints (pycocotools)
# ----------------------------------------------------------------------------------------

# COCO's per-keypoint OKS constants (COCOeval.Params.kpt_oks_sigmas), in COCO keypoint order.
COCO_KEYPOINT_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07,
                                 1.07, .87, .87, .89, .89]) / 10.0


def _xywh(box) -> List[float]:
  x1, y1, x2, y2 = (float(v) for v in box)
  return [x1, y1, x2 - x1, y2 - y1]


def _per_image(values, name: str, n_images: int, width: Optional[int] = None):
  if len(values) != n_images:
    raise ValueError(f"{name} has {len(values)} images, expected {n_images}")
  out = []
  for i, v in enumerate(values):
    v = np.asarray(v, np.float64) if width is not None else list(v)
    if width is not None:
      v = v.reshape((0, width)) if v.size == 0 else v
      if v.ndim != 2 or v.shape[1] != width:
        raise ValueError(f"{name}[{i}] must be [N, {width}], got shape {v.shape}")
    out.append(v)
  return out


def _run_cocoeval(gt_dataset: dict, detections: List[dict], iou_type: str, max_dets: int):
  from pycocotools import coco as coco_lib  # pylint: disable=g-import-not-at-top
  from pycocotools import cocoeval  # pylint: disable=g-import-not-at-top
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


def detection_map(pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels,
                  max_detections: int = 100) -> Dict[str, float]:
  """COCO box AP (IoU .50:.95), AP50 and AP75 over a set of images, via pycocotools.

  Each argument is a per-image list: boxes [N_i, 4] pixel (x1, y1, x2, y2), scores [N_i],
  labels [N_i] (strings or ints; predicted labels absent from the gt are false positives of
  categories COCO then leaves out of the mean). Uses box areas for gt, so only the "all"
  area range (reported here) matches official COCO numbers.
  """
  n = len(gt_boxes)
  gt_boxes = _per_image(gt_boxes, "gt_boxes", n, 4)
  gt_labels = _per_image(gt_labels, "gt_labels", n)
  pred_boxes = _per_image(pred_boxes, "pred_boxes", n, 4)
  pred_scores = _per_image(pred_scores, "pred_scores", n)
  pred_labels = _per_image(pred_labels, "pred_labels", n)
  for i in range(n):
    _same_length(gt_boxes[i], gt_labels[i], f"gt_boxes[{i}]", f"gt_labels[{i}]")
    _same_length(pred_boxes[i], pred_scores[i], f"pred_boxes[{i}]", f"pred_scores[{i}]")
    _same_length(pred_boxes[i], pred_labels[i], f"pred_boxes[{i}]", f"pred_labels[{i}]")
  if not sum(len(b) for b in gt_boxes):
    raise ValueError("gt_boxes holds no boxes; AP is undefined")
  names = sorted({l for ls in gt_labels + pred_labels for l in ls}, key=str)
  category = {name: k + 1 for k, name in enumerate(names)}
  images, annotations, detections = [], [], []
  for i in range(n):
    images.append({"id": i + 1})
    for box, label in zip(gt_boxes[i], gt_labels[i]):
      xywh = _xywh(box)
      annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "bbox": xywh,
                          "area": xywh[2] * xywh[3], "iscrowd": 0,
                          "category_id": category[label]})
    for box, score, label in zip(pred_boxes[i], pred_scores[i], pred_labels[i]):
      detections.append({"image_id": i + 1, "bbox": _xywh(box), "score": float(score),
                         "category_id": category[label]})
  if not detections:
    return {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
  dataset = {"images": images, "annotations": annotations,
             "categories": [{"id": k, "name": str(name)} for name, k in category.items()]}
  stats = _run_cocoeval(dataset, detections, "bbox", max_detections)
  return {"AP": float(stats[0]), "AP50": float(stats[1]), "AP75": float(stats[2])}


def _keypoints(values, name: str) -> np.ndarray:
  array = np.asarray(values, np.float64)
  if array.ndim == 2:
    array = array[None]
  if array.ndim != 3 or array.shape[1:] != (len(COCO_KEYPOINT_SIGMAS), 3):
    raise ValueError(f"{name} must be [N, 17, 3] (x, y, visibility), got shape {array.shape}")
  return array


def keypoint_oks(pred, gt, gt_areas, gt_boxes=None) -> np.ndarray:
  """Object keypoint similarity [N, M] of pred [N, 17, 3] against gt [M, 17, 3].

  COCOeval.computeOks exactly: only gt keypoints with visibility > 0 count, distances scale
  with the gt object area. A gt without labelled keypoints uses COCO's fallback (distance
  outside its box grown by the box size), which needs `gt_boxes` [M, 4] xyxy.
  """
  pred, gt = _keypoints(pred, "pred"), _keypoints(gt, "gt")
  areas = np.asarray(gt_areas, np.float64).reshape(-1)
  if len(areas) != len(gt):
    raise ValueError(f"gt_areas has {len(areas)} values for {len(gt)} gt poses")
  variances = (COCO_KEYPOINT_SIGMAS * 2) ** 2
  oks = np.zeros((len(pred), len(gt)))
  for j in range(len(gt)):
    labelled = gt[j, :, 2] > 0
    if labelled.any():
      dx = pred[:, :, 0] - gt[j, :, 0]
      dy = pred[:, :, 1] - gt[j, :, 1]
    else:
      if gt_boxes is None:
        raise ValueError(f"gt pose {j} has no labelled keypoints; pass gt_boxes for COCO's "
                         f"box-distance fallback")
      x, y, w, h = _xywh(_boxes(gt_boxes, "gt_boxes")[j])
      dx = np.maximum(0, x - w - pred[:, :, 0]) + np.maximum(0, pred[:, :, 0] - (x + 2 * w))
      dy = np.maximum(0, y - h - pred[:, :, 1]) + np.maximum(0, pred[:, :, 1] - (y + 2 * h))
      labelled = np.ones_like(labelled)
    e = (dx ** 2 + dy ** 2) / variances / (areas[j] + np.spacing(1)) / 2
    oks[:, j] = np.exp(-e[:, labelled]).mean(axis=1)
  return oks


def keypoint_ap(pred_keypoints, pred_scores, gt_keypoints, gt_boxes,
                gt_areas=None) -> Dict[str, float]:
  """COCO keypoint AP (OKS .50:.95), AP50, AP75, APm, APl via pycocotools (20 poses per
  image at most, COCO's fixed setting).

  Per-image lists: pred_keypoints [N_i, 17, 3], pred_scores [N_i], gt_keypoints [M_i, 17, 3],
  gt_boxes [M_i, 4] xyxy, gt_areas [M_i] (COCO uses the segment area; default: box area,
  which changes OKS scale and therefore numbers slightly). Gt poses without labelled
  keypoints are ignored, as in COCO.
  """
  n = len(gt_keypoints)
  gt_boxes = _per_image(gt_boxes, "gt_boxes", n, 4)
  pred_scores = _per_image(pred_scores, "pred_scores", n)
  if len(pred_keypoints) != n:
    raise ValueError(f"pred_keypoints has {len(pred_keypoints)} images, expected {n}")
  if gt_areas is not None and len(gt_areas) != n:
    raise ValueError(f"gt_areas has {len(gt_areas)} images, expected {n}")
  images, annotations, detections = [], [], []
  for i in range(n):
    images.append({"id": i + 1})
    gts = _keypoints(gt_keypoints[i], f"gt_keypoints[{i}]") if len(gt_keypoints[i]) else []
    _same_length(gts, gt_boxes[i], f"gt_keypoints[{i}]", f"gt_boxes[{i}]")
    for j, pose in enumerate(gts):
      xywh = _xywh(gt_boxes[i][j])
      area = xywh[2] * xywh[3] if gt_areas is None else float(gt_areas[i][j])
      annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": 1,
                          "keypoints": pose.reshape(-1).tolist(), "iscrowd": 0,
                          "num_keypoints": int((pose[:, 2] > 0).sum()), "bbox": xywh,
                          "area": area})
    preds = _keypoints(pred_keypoints[i], f"pred_keypoints[{i}]") if len(
        pred_keypoints[i]) else []
    _same_length(preds, pred_scores[i], f"pred_keypoints[{i}]", f"pred_scores[{i}]")
    for pose, score in zip(preds, pred_scores[i]):
      detections.append({"image_id": i + 1, "category_id": 1, "score": float(score),
                         "keypoints": pose.reshape(-1).tolist()})
  if not any(a["num_keypoints"] for a in annotations):
    raise ValueError("gt_keypoints holds no labelled keypoints; AP is undefined")
  keys = ("AP", "AP50", "AP75", "APm", "APl")
  if not detections:
    return {k: 0.0 for k in keys}
  dataset = {"images": images, "annotations": annotations,
             "categories": [{"id": 1, "name": "person"}]}
  stats = _run_cocoeval(dataset, detections, "keypoints", 20)
  return {k: float(s) for k, s in zip(keys, stats)}


# ----------------------------------------------------------------------------------------
# Captioning (pycocoevalcap)
# ----------------------------------------------------------------------------------------

# Tokens coco-caption's PTBTokenizer wrapper removes after tokenizing. It lists the bracket
# tokens in upper case ("-LRB-") but runs PTB with -lowerCase, so brackets survive as
# "-lrb-" etc.; we reproduce that rather than fix it, to match published scores.
_PTB_DROPPED = {"''", "'", "``", "`", ".", "?", "!", ",", ":", "-", "--", "...", ";", '"'}
_PTB_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "{": "-lcb-", "}": "-rcb-", "[": "-lsb-",
                 "]": "-rsb-"}
_CLITICS = re.compile(r"(n't|'s|'re|'ve|'ll|'m|'d)\b")
# A word keeps inner hyphens, slashes, apostrophes and periods, as PTB does ("black-and-white",
# "o'clock", "2.5"); other characters are single tokens.
_WORD = re.compile(r"[a-z0-9]+(?:[-/.'][a-z0-9]+)*|'[a-z]+|[^\sa-z0-9]")


def tokenize_caption(text: str) -> str:
  """coco-caption's tokenisation without Java: lowercase, PTB clitic splitting ("don't" ->
  "do n't", "man's" -> "man 's"), PTB bracket names, then the punctuation tokens coco-caption
  drops are dropped. Matches PTBTokenizer on ordinary captions, not on every corner case."""
  text = _CLITICS.sub(r" \1", text.lower().replace("\n", " "))
  tokens = (_PTB_BRACKETS.get(t, t) for t in _WORD.findall(text))
  return " ".join(t for t in tokens if t not in _PTB_DROPPED)


def _caption_inputs(predictions, references, tokenize: bool):
  _same_length(predictions, references, "predictions", "references")
  if not len(predictions):
    raise ValueError("predictions is empty")
  gts, res = {}, {}
  prep = tokenize_caption if tokenize else (lambda s: s)
  for i, (prediction, refs) in enumerate(zip(predictions, references)):
    if isinstance(refs, str) or not len(refs):
      raise ValueError(f"references[{i}] must be a non-empty list of strings, got {refs!r}")
    if not isinstance(prediction, str):
      raise ValueError(f"predictions[{i}] must be a string, got {type(prediction).__name__}")
    res[i] = [prep(prediction)]
    gts[i] = [prep(r) for r in refs]
  return gts, res


def _score(scorer, predictions, references, tokenize):
  gts, res = _caption_inputs(predictions, references, tokenize)
  with contextlib.redirect_stdout(io.StringIO()):  # Bleu prints its n-gram statistics
    score, _ = scorer.compute_score(gts, res)
  return score


def cider(predictions: Sequence[str], references: Sequence[Sequence[str]],
          tokenize: bool = True) -> float:
  """Corpus CIDEr-D (pycocoevalcap's Cider). IDF comes from the references passed, so call
  it once on the whole evaluation set, not per example."""
  from pycocoevalcap.cider import cider as cider_lib  # pylint: disable=g-import-not-at-top
  return float(_score(cider_lib.Cider(), predictions, references, tokenize))


def bleu(predictions: Sequence[str], references: Sequence[Sequence[str]],
         tokenize: bool = True) -> Dict[str, float]:
  """Corpus BLEU-1..4 as coco-caption reports them (closest reference length)."""
  from pycocoevalcap.bleu import bleu as bleu_lib  # pylint: disable=g-import-not-at-top
  scores = _score(bleu_lib.Bleu(4), predictions, references, tokenize)
  return {f"BLEU-{n + 1}": float(s) for n, s in enumerate(scores)}


def rouge_l(predictions: Sequence[str], references: Sequence[Sequence[str]],
            tokenize: bool = True) -> float:
  """Mean sentence-level ROUGE-L (F-measure, beta 1.2) as in coco-caption."""
  from pycocoevalcap.rouge import rouge as rouge_lib  # pylint: disable=g-import-not-at-top
  return float(_score(rouge_lib.Rouge(), predictions, references, tokenize))


def java_available() -> bool:
  return shutil.which("java") is not None


def spice_available() -> bool:
  """SPICE needs Java and the CoreNLP jar (otherwise pycocoevalcap tries to download it)."""
  if not java_available():
    return False
  from pycocoevalcap.spice import spice as spice_lib  # pylint: disable=g-import-not-at-top
  lib = os.path.join(os.path.dirname(spice_lib.__file__), "lib")
  return os.path.exists(os.path.join(lib, "stanford-corenlp-3.6.0-models.jar"))


def meteor(predictions: Sequence[str], references: Sequence[Sequence[str]],
           tokenize: bool = True) -> float:
  """METEOR 1.5 via pycocoevalcap's Java wrapper; raises if Java is missing."""
  if not java_available():
    raise RuntimeError("METEOR needs Java (`java` is not on PATH)")
  from pycocoevalcap.meteor import meteor as meteor_lib  # pylint: disable=g-import-not-at-top
  scorer = meteor_lib.Meteor()
  try:
    return float(_score(scorer, predictions, references, tokenize))
  finally:
    del scorer  # its __del__ stops the Java process


def spice(predictions: Sequence[str], references: Sequence[Sequence[str]],
          tokenize: bool = True) -> float:
  """SPICE via pycocoevalcap; raises unless `spice_available()`."""
  if not spice_available():
    raise RuntimeError("SPICE needs Java and pycocoevalcap's Stanford CoreNLP jar")
  from pycocoevalcap.spice import spice as spice_lib  # pylint: disable=g-import-not-at-top
  return float(_score(spice_lib.Spice(), predictions, references, tokenize))


def caption_metrics(predictions: Sequence[str], references: Sequence[Sequence[str]],
                    use_java: bool = True) -> Dict[str, object]:
  """BLEU-1..4, ROUGE-L and CIDEr; METEOR and SPICE when their Java parts are available.

  Metrics that could not run are listed under "omitted" with the reason, so a report never
  silently lacks a column.
  """
  out: Dict[str, object] = dict(bleu(predictions, references))
  out["ROUGE-L"] = rouge_l(predictions, references)
  out["CIDEr"] = cider(predictions, references)
  omitted = {}
  if use_java and java_available():
    out["METEOR"] = meteor(predictions, references)
  else:
    omitted["METEOR"] = "needs Java" if use_java else "use_java=False"
  if use_java and spice_available():
    out["SPICE"] = spice(predictions, references)
  else:
    omitted["SPICE"] = ("needs Java and the Stanford CoreNLP jar" if use_java else
                        "use_java=False")
  out["omitted"] = omitted
  return out
