"""Scorers: a task's predictions and ground truth -> `results.Score`, beside a baseline.

Every scorer takes (examples, preds, ctx): examples has `.raws` (the raw examples, whose
`meta` is the ground truth) and `.features` (batched model features: the image scorer reads
the target image there); preds are `outputs.decode`'s per-example dicts; ctx is a
`parsing.Context`. Baselines ignore the input: the most frequent answer, the mean box, the
mean depth or normal, the whole-image mask, or another example's ground truth for
generation tasks (does the output depend on the prompt at all?).
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Sequence

import numpy as np

from unified_io.common import coco_keypoints
from unified_io.eval import metrics
from unified_io.eval import results
from unified_io.eval.outputs import parsing

Score = results.Score
MAJORITY = "majority answer"


def _meta(raw, key, default=None):
  return raw["meta"].get(key, default)


def _majority(values: Sequence[str]) -> str:
  return collections.Counter(values).most_common(1)[0][0]


def _rotate(values: Sequence, by: int = 1) -> list:
  return list(values[by:]) + list(values[:by])


def _target_image01(features, i):
  """The example's target image at the VQ-GAN resolution, [0, 1]."""
  return (features["image_target_pixels"][i] + 1.0) / 2.0


# ------------------------------------------------------------------------------------ text


def accuracy(ex, preds, ctx) -> Score:
  del ctx
  targets = [r["target_text"] for r in ex.raws]
  model = metrics.accuracy([p["text"].strip() for p in preds], targets)
  baseline = metrics.accuracy([_majority(targets)] * len(targets), targets)
  return Score("accuracy", model, baseline, MAJORITY)


def _answers(ex):
  return [list(_meta(r, "answers", None) or [r["target_text"]]) for r in ex.raws]


def vqa_accuracy(ex, preds, ctx) -> Score:
  del ctx
  answers = _answers(ex)
  model = metrics.vqa_accuracy([p["text"] for p in preds], answers)
  majority = _majority([a[0] for a in answers])
  return Score(
    "vqa_accuracy", model, metrics.vqa_accuracy([majority] * len(answers), answers), MAJORITY
  )


def _references(ex):
  return [list(_meta(r, "captions", None) or [r["target_text"]]) for r in ex.raws]


def cider(ex, preds, ctx) -> Score:
  del ctx
  refs = _references(ex)
  model = metrics.cider([p["text"] for p in preds], refs)
  other = [r[0] for r in _rotate(refs)]
  return Score("CIDEr-D", model, metrics.cider(other, refs), "another image's caption")


def rouge_l(ex, preds, ctx) -> Score:
  del ctx
  refs = _references(ex)
  model = metrics.rouge_l([p["text"] for p in preds], refs)
  other = [r[0] for r in _rotate(refs)]
  return Score("ROUGE-L", model, metrics.rouge_l(other, refs), "another example's reference")


def _normalise(text: str) -> str:
  return " ".join(text.lower().strip().rstrip(".").split())


def exact_match(ex, preds, ctx) -> Score:
  del ctx
  answers = [[_normalise(a) for a in answers] for answers in _answers(ex)]
  hits = [_normalise(p["text"]) in a for p, a in zip(preds, answers)]
  majority = _majority([a[0] for a in answers])
  return Score(
    "exact match", float(np.mean(hits)), float(np.mean([majority in a for a in answers])), MAJORITY
  )


def grounded_vqa(ex, preds, ctx) -> Score:
  """The answer is the headline; the mask's IoU is logged beside it."""
  ious = []
  for p, r in zip(preds, ex.raws):
    mask = parsing.text_mask(p, _meta(r, "image_hw"), ctx).get("mask")
    if mask is not None:
      ious.append(metrics.mask_iou(mask, np.asarray(_meta(r, "mask"), bool)))
  answer = vqa_accuracy(ex, preds, ctx)
  return dataclasses.replace(
    answer, extra={"mask_iou": float(np.mean(ious)) if ious else float("nan")}
  )


# ----------------------------------------------------------------------- boxes and joints


def box_iou(ex, preds, ctx) -> Score:
  """Refexp: the first box at IoU >= 0.5 (no box: the empty box at the origin)."""
  gt = np.stack([np.asarray(_meta(r, "box"), np.float64).reshape(4) for r in ex.raws])
  first = []
  for p, r in zip(preds, ex.raws):
    found = parsing.boxes(p, _meta(r, "image_hw"), ctx)["boxes"]
    first.append(found[0] if len(found) else np.zeros(4))
  mean_box = np.broadcast_to(gt.mean(axis=0), gt.shape)
  return Score(
    "acc@IoU0.5",
    metrics.refexp_accuracy(np.stack(first), gt),
    metrics.refexp_accuracy(mean_box, gt),
    "mean box",
  )


def detection_map(ex, preds, ctx) -> Score:
  """AP50 over the examples with boxes; localization labels every box with the asked class.
  Earlier boxes come first: the sequence order stands in for a confidence."""
  gt_boxes = [np.asarray(_meta(r, "boxes"), np.float64).reshape(-1, 4) for r in ex.raws]
  gt_labels = [list(_meta(r, "labels")) for r in ex.raws]
  keep = [i for i, b in enumerate(gt_boxes) if len(b)]  # AP needs positives
  if not keep:
    return Score("AP50", float("nan"), float("nan"), "no positive examples")
  pred_boxes, pred_labels, pred_scores = [], [], []
  for p, r in zip(preds, ex.raws):
    parsed = parsing.boxes(p, _meta(r, "image_hw"), ctx)
    found, labels = parsed["boxes"], parsed["labels"]
    if _meta(r, "class_name") is not None:
      labels = [_meta(r, "class_name")] * len(found)
    pred_boxes.append(found)
    pred_labels.append([l.strip() for l in labels])
    pred_scores.append(np.linspace(1.0, 0.5, len(found)) if len(found) else np.zeros(0))
  pick = lambda values: [values[i] for i in keep]
  model = metrics.detection_map(
    pick(pred_boxes), pick(pred_scores), pick(pred_labels), pick(gt_boxes), pick(gt_labels)
  )["AP50"]
  all_gt = np.concatenate([gt_boxes[i] for i in keep])
  majority = _majority([l for i in keep for l in gt_labels[i]])
  base_labels = [[_meta(ex.raws[i], "class_name") or majority] for i in keep]
  baseline = metrics.detection_map(
    [all_gt.mean(0, keepdims=True)] * len(keep),
    [np.ones(1)] * len(keep),
    base_labels,
    pick(gt_boxes),
    pick(gt_labels),
  )["AP50"]
  return Score("AP50", model, baseline, "one mean box per image")


def keypoint_oks(ex, preds, ctx) -> Score:
  """Mean OKS against the one person of the prompt's box; the area is the person's visible
  pixels, as COCO's segment area. Visibility labels are not read (OKS ignores them)."""
  unlabelled = dataclasses.replace(ctx, decode=None)
  model, baseline = [], []
  for p, r in zip(preds, ex.raws):
    gt = parsing.truth_keypoints(r, None)["keypoints"].astype(np.float64)
    region = np.asarray(_meta(r, "box"), np.float64)
    area = float(_meta(r, "area"))
    pred = parsing.keypoints(p, _meta(r, "image_hw"), unlabelled, region)["keypoints"]
    model.append(metrics.keypoint_oks(pred, gt, [area], [region])[0, 0])
    centre = np.zeros((coco_keypoints.NUM_KEYPOINTS, 3))
    centre[:, 0], centre[:, 1], centre[:, 2] = (
      (region[0] + region[2]) / 2,
      (region[1] + region[3]) / 2,
      2,
    )
    baseline.append(metrics.keypoint_oks(centre, gt, [area], [region])[0, 0])
  return Score(
    "OKS", float(np.mean(model)), float(np.mean(baseline)), "all joints at the box centre"
  )


# ---------------------------------------------------------------------------------- images


def depth_rmse(ex, preds, ctx) -> Score:
  gts = [np.asarray(_meta(r, "depth"), np.float32) for r in ex.raws]
  pred = [parsing.depth(p, _meta(r, "image_hw"), ctx)["depth"] for p, r in zip(preds, ex.raws)]
  valid = [np.isfinite(g) & (g > 0) for g in gts]
  mean = float(np.mean([g[v].mean() for g, v in zip(gts, valid)]))
  model = float(np.mean([metrics.depth_rmse(p, g, v) for p, g, v in zip(pred, gts, valid)]))
  baseline = float(
    np.mean([metrics.depth_rmse(np.full_like(g, mean), g, v) for g, v in zip(gts, valid)])
  )
  return Score("RMSE (m)", model, baseline, "mean depth", lower_is_better=True)


def normal_angle(ex, preds, ctx) -> Score:
  gts = [np.asarray(_meta(r, "normals"), np.float32) for r in ex.raws]
  pred = [parsing.normals(p, _meta(r, "image_hw"), ctx)["normals"] for p, r in zip(preds, ex.raws)]
  mean = np.mean([g.reshape(-1, 3).mean(0) for g in gts], axis=0)
  mean = mean / max(np.linalg.norm(mean), 1e-6)
  errors = [metrics.normal_angle_error(p, g) for p, g in zip(pred, gts)]
  baseline = float(
    np.mean([metrics.normal_angle_error(np.broadcast_to(mean, g.shape), g)["mean"] for g in gts])
  )
  # FrameNet's and GRIT's other numbers, averaged over examples like the mean.
  extra = {k: float(np.mean([e[k] for e in errors])) for k in errors[0] if k != "mean"}
  return Score(
    "mean angle error (deg)",
    float(np.mean([e["mean"] for e in errors])),
    baseline,
    "mean normal",
    lower_is_better=True,
    extra=extra,
  )


def segmentation_iou(ex, preds, ctx) -> Score:
  model, baseline = [], []
  for p, r in zip(preds, ex.raws):
    gt = np.asarray(_meta(r, "masks"), bool)
    masks = parsing.segmentation(p, _meta(r, "image_hw"), ctx)["masks"]
    model.append(metrics.segmentation_iou(list(masks), list(gt)))
    baseline.append(metrics.segmentation_iou([np.ones(gt.shape[1:], bool)], list(gt)))
  return Score(
    "segmentation IoU", float(np.mean(model)), float(np.mean(baseline)), "whole-image mask"
  )


def psnr(a, b) -> float:
  """Peak signal-to-noise ratio in dB of images in [0, 1] (MSE floored at 1e-10: 100 dB)."""
  mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
  return float(10 * np.log10(1.0 / max(mse, 1e-10)))


def image_psnr(ex, preds, ctx) -> Score:
  del ctx
  targets = [_target_image01(ex.features, i) for i in range(len(preds))]
  model = float(np.mean([psnr(p["image"], t) for p, t in zip(preds, targets)]))
  baseline = float(np.mean([psnr(o, t) for o, t in zip(_rotate(targets), targets)]))
  return Score("PSNR (dB)", model, baseline, "another example's target image")
