"""Scoring GRIT predictions against sample files that carry ground truth, as the official
evaluate.py does (the measures and partitions are described in
unified_io/eval/grit/tasks.py; the per-sample metrics are unified_io/eval/grit/scoring.py).
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any, Collection, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from unified_io.eval.grit import definitions
from unified_io.eval.grit import samples as grit_samples
from unified_io.eval.grit import scoring
from unified_io.eval.grit import submission

log = logging.getLogger(__name__)


def _decode_masks(rles, what: str) -> List[np.ndarray]:
  masks = []
  for rle in rles:
    if not isinstance(rle, dict):  # in-memory predictions may hold binary arrays
      masks.append(np.asarray(rle).astype(np.uint8))
      continue
    try:
      if isinstance(rle.get("counts"), list):
        rle = mask_utils.frPyObjects(rle, *rle["size"])
      else:
        counts = rle["counts"]
        rle = {
          "size": list(rle["size"]),
          "counts": counts.encode("utf-8") if isinstance(counts, str) else counts,
        }
      masks.append(mask_utils.decode(rle))
    except Exception as e:  # pycocotools raises bare TypeErrors etc. on bad RLEs
      raise ValueError(f"{what}: cannot decode RLE mask: {e}") from e
  return masks


def _read_rgb(path: str, what: str) -> np.ndarray:
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{what} {path} does not exist")
  with Image.open(path) as im:
    return np.asarray(im.convert("RGB"))


def sample_score(
  task: str,
  pred: Mapping[str, Any],
  sample: Mapping[str, Any],
  *,
  pred_normals_dir: Optional[str] = None,
  gt_normals_dir: Optional[str] = None,
) -> float:
  """One sample's GRIT score in [0, 1] (see scoring for the definitions)."""
  gt = sample["gt"]
  key = definitions.PREDICTION_FIELD[task]
  what = f"{task} prediction for {sample['example_id']!r}"
  if key not in pred:
    raise ValueError(f"{what} has no {key!r}")
  value = pred[key]
  if task == "categorization":
    return scoring.categorization_score(value, gt["words"])
  if task == "vqa":
    return scoring.vqa_score(value, gt["words"])
  if task == "localization":
    return scoring.localization_score(value, gt["bboxes"])
  if task == "refexp":
    return scoring.refexp_score(value, gt["bboxes"])
  if task == "segmentation":
    stuff = definitions.STUFF_MARKER in (sample["task_query"] or "")
    return scoring.segmentation_score(
      _decode_masks(value, what), _decode_masks(gt["masks"], "ground truth"), stuff
    )
  if task == "keypoint":
    return scoring.keypoint_score(value, gt["points"])
  if gt_normals_dir is None:
    raise ValueError("scoring normals needs gt_normals_dir")
  gt_rgb = _read_rgb(
    os.path.join(gt_normals_dir, gt["out_image_name"]), "ground-truth normal image"
  )
  if not isinstance(value, str):  # an in-memory uint8 RGB map
    pred_rgb = np.asarray(value)
  elif pred_normals_dir is None:
    raise ValueError(f"{what}: names a file but no pred_normals_dir was given")
  else:
    pred_rgb = _read_rgb(os.path.join(pred_normals_dir, value), f"{what}: image")
  return scoring.normal_score(pred_rgb, gt_rgb)


def evaluate(
  grit_dir: str,
  predictions: Union[str, Sequence[Mapping[str, Any]]],
  task: str,
  split: str = "ablation",
  *,
  pred_normals_dir: Optional[str] = None,
  gt_normals_dir: Optional[str] = None,
  lemma2groups: Optional[Mapping[str, Sequence[str]]] = None,
  example_ids: Optional[Collection[str]] = None,
) -> Dict[str, Any]:
  """Scores one task's predictions against samples that carry ground truth.

  predictions: a list of prediction dicts, a submission folder or a {task}.json file.
  pred_normals_dir: where prediction "normal" names live (default: normals/ next to the
    prediction file); gt_normals_dir: the root of ground-truth out_image_name paths
    (default: GRIT/images, as in grit_official's example samples).
  lemma2groups: concept lemma -> concept groups (people, animals, ...); with it, per-group
    "acc.{group}.agg.{abbrev}.mean" are added for samples whose meta lists concepts.
  example_ids: score only these samples (a run over part of the file); default all.

  Returns the official measures for every partition the samples' metadata allows (see the
  docstring of tasks.py), plus "acc.any.pooled.{abbrev}.mean" (all scored samples, distorted
  included; not a GRIT number but available without metadata), num_samples (scored),
  num_missing_predictions (scored 0 with confidence 0, where the leaderboard would reject
  the submission) and num_without_ground_truth (skipped).
  """
  samples = grit_samples.load_samples(grit_dir, task, split)
  scored = [s for s in samples if s["gt"] is not None]
  if not scored:
    raise ValueError(
      f"{grit_samples.samples_path(grit_dir, task, split)} has no ground truth: GRIT "
      "withholds it for ablation and test, and its leaderboard scores submissions "
      "(zip_submission). evaluate needs sample files that carry an 'output' (or 'gt') dict "
      "per sample."
    )
  without_gt = len(samples) - len(scored)
  if example_ids is not None:
    wanted = set(example_ids)
    scored = [s for s in scored if s["example_id"] in wanted]
    if not scored:
      raise ValueError(f"{task}: none of the {len(wanted)} example_ids has ground truth")
  if isinstance(predictions, str):
    pred_file_dir = predictions if os.path.isdir(predictions) else os.path.dirname(predictions)
    pred_normals_dir = pred_normals_dir or os.path.join(pred_file_dir, "normals")
    predictions = submission.load_predictions(predictions, task)
  gt_normals_dir = gt_normals_dir or os.path.join(grit_dir, "images")
  by_id = {}
  for pred in predictions:
    example_id = pred.get("example_id")
    if example_id in by_id:
      raise ValueError(f"{task} predictions repeat example_id {example_id!r}")
    by_id[example_id] = pred

  rows, missing = [], 0
  for sample in scored:
    pred = by_id.get(sample["example_id"])
    if pred is None:
      missing += 1
      score, confidence = 0.0, 0.0
    else:
      if "confidence" not in pred:
        raise ValueError(f"{task} prediction for {sample['example_id']!r} has no confidence")
      confidence = submission.finite(pred["confidence"], "confidence")
      score = sample_score(
        task, pred, sample, pred_normals_dir=pred_normals_dir, gt_normals_dir=gt_normals_dir
      )
    meta = sample["meta"]
    groups = set()
    for lemma in meta["concepts"]:
      groups.update((lemma2groups or {}).get(lemma, ()))
    rows.append(
      {
        "id": sample["example_id"],
        "m": scoring.sample_measures(score, confidence),
        "dist": meta["is_distorted"],
        "new_src": meta["is_new_source"],
        "new_cpt": meta["has_new_concept"],
        "groups": groups,
      }
    )
  if missing:
    log.warning(
      "%s %s: %d of %d samples have no prediction; scored 0", split, task, missing, len(scored)
    )

  abbrev = definitions.TASK_ABBREVIATIONS[task]
  out: Dict[str, Any] = {
    "num_samples": len(scored),
    "num_missing_predictions": missing,
    "num_without_ground_truth": without_gt,
  }
  out[f"acc.any.pooled.{abbrev}.mean"] = float(np.mean([r["m"]["acc"] for r in rows]))
  out.update(scoring.aggregate(rows, abbrev, "any", definitions.MEASURES, definitions.PARTITIONS))
  for group in sorted(set().union(*(r["groups"] for r in rows))):
    if group == "_ungrouped_":
      continue
    group_rows = [r for r in rows if group in r["groups"]]
    # The leaderboard reports only agg for concept groups.
    out.update(
      {
        k: v
        for k, v in scoring.aggregate(
          group_rows, abbrev, group, ("acc",), ("sameSrc", "newSrc", "agg")
        ).items()
        if ".agg." in k
      }
    )
  return out


def evaluate_submission(
  grit_dir: str,
  submission_dir: str,
  split: str = "ablation",
  *,
  gt_normals_dir: Optional[str] = None,
  lemma2groups: Optional[Mapping[str, Sequence[str]]] = None,
) -> Dict[str, Any]:
  """Scores every task of a submission folder and GRIT's across-task means.

  Adds "{measure}.any.{partition}.all.mean" for agg, sameSrc, newSrc, dist, undist and
  deldist, averaging over all seven tasks with 0 for a task the submission leaves out (as
  the leaderboard does), and "overall" = acc.any.agg.all.mean, the leaderboard's ranking
  number. An across-task mean is left out when a scored task lacks that partition.
  """
  out: Dict[str, Any] = {}
  present = []
  for task in definitions.GRIT_TASKS:
    if not os.path.isfile(os.path.join(submission_dir, f"{task}.json")):
      continue
    present.append(task)
    result = evaluate(
      grit_dir,
      submission_dir,
      task,
      split,
      gt_normals_dir=gt_normals_dir,
      lemma2groups=lemma2groups,
    )
    out.update({k if "." in k else f"{task}.{k}": v for k, v in result.items()})
  if not present:
    raise ValueError(f"{submission_dir} holds no GRIT task file ({definitions.GRIT_TASKS})")
  for m in definitions.MEASURES:
    for partition in ("agg", "sameSrc", "newSrc", "dist", "undist", "deldist"):
      if m == "rmse" and partition == "deldist":
        continue
      keys = [f"{m}.any.{partition}.{definitions.TASK_ABBREVIATIONS[t]}.mean" for t in present]
      if not all(k in out for k in keys):
        continue
      # rmse is averaged as mean squared error, like the per-task partitions.
      values = [out[k] ** 2 if m == "rmse" else out[k] for k in keys]
      mean = sum(values) / len(definitions.GRIT_TASKS)
      out[f"{m}.any.{partition}.all.mean"] = math.sqrt(mean) if m == "rmse" else mean
  if "acc.any.agg.all.mean" in out:
    out["overall"] = out["acc.any.agg.all.mean"]
  return out
