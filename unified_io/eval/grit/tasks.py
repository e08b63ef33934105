"""GRIT (General Robust Image Task benchmark, Gupta et al. 2022): samples, prompts,
submission files and the official scoring.

Data layout, as allenai/grit_official's download scripts leave it:

    GRIT/
      images/                      image_id paths are relative to this folder
      output_options/{name}.json   label sets for categorization (e.g. coco_categories)
      samples/{ablation,test}/{task}.json

A sample file is a JSON list with one dict per sample: example_id, image_id, task_name,
task_query (category, question, expression or null), task_bbox ([x1, y1, x2, y2] for
categorization, else null) and output_options (label-set name or null). GRIT publishes no
ground truth for ablation or test: the leaderboard scores submissions. `evaluate` therefore
needs sample files that also carry it, in the layout the official evaluate.py reads:

    {"input": {"example_id", "image_id", "task_query", ...},
     "output": {"words", "bboxes", "masks", "points", "out_image_name"},
     "meta": {"is_new_source", "has_new_concept", "is_distorted", "data_source",
              "concepts": [{"lemma": ...}, ...]}}

`load_samples` reads either layout (and "gt" for "output", as in the repo's example file)
into one flat dict per sample.

A submission is a folder named after the split holding params.json ({"params_in_millions":
int}), one {task}.json per task (a list of {"example_id", "confidence" in [0, 1], and the
task's field: "words" (categorization, vqa), "bboxes" (localization, refexp), "masks" as
COCO RLE (segmentation), "points" with 17 x, y, v triples per person (keypoint), "normal", a
file name under normals/ (normal)}) and normals/ with RGB PNGs. It is uploaded as
{split}.zip holding the {split}/ folder.

Scores follow evaluate.py: each sample gets a score in [0, 1] (`grit_metrics`), and means
(in percent) are reported as "{measure}.{concept_group}.{partition}.{task_abbrev}.mean"
with ".cnt" for the sample count, where the partitions are sameSrc / newSrc (undistorted
samples from the task's primary training sources or not), agg (the mean of those two,
equal weight each: the per-task number the leaderboard's "overall" averages), sameCpt /
newCpt (undistorted samples whose concepts are all / not all in the primary training
data: the paper's "same" / "new"), dist (distorted copies), undist (the undistorted
originals of those) and deldist (undist minus dist, per pair).
"""
from __future__ import annotations

import json
import logging
import math
import os
import zipfile
from collections import Counter
from typing import Any, Collection, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from unified_io.eval.grit import scoring as grit_metrics
from unified_io.common import locations
from unified_io.common import vocab
from unified_io.data import prompts

log = logging.getLogger(__name__)

GRIT_TASKS = ("categorization", "localization", "vqa", "refexp", "segmentation", "keypoint",
              "normal")
TASK_ABBREVIATIONS = {"categorization": "cat", "localization": "loc", "vqa": "vqa",
                      "refexp": "ref", "segmentation": "seg", "keypoint": "kp",
                      "normal": "sn"}
SPLITS = ("ablation", "test")
# The field of a prediction that carries the answer, per task.
PREDICTION_FIELD = {"categorization": "words", "vqa": "words", "localization": "bboxes",
                    "refexp": "bboxes", "segmentation": "masks", "keypoint": "points",
                    "normal": "normal"}
GT_FIELDS = ("words", "bboxes", "masks", "points", "out_image_name")
MEASURES = grit_metrics.MEASURES
PARTITIONS = grit_metrics.PARTITIONS

# Unified-IO's prompt per GRIT task: the official template of the matching training task
# (unified_io/data/prompts.py, which cites appendix A.1 and allenai/unified-io-inference's
# runner.py); "{}" is filled by `prompt_for`. Categorization fills in the box's four
# location tokens; VQA is the lower-cased question itself (the model was trained on
# lower-cased questions); keypoint runs in two stages: localization of "person", then
# `keypoint_region_prompt` on each box found. Localization uses the appendix's plural
# "Which regions ..." (runner.py reuses the refexp prompt for it).
GRIT_PROMPTS = {
    "categorization": prompts.official("object_categorization"),
    "localization": prompts.official("localization"),
    "vqa": "{}",
    "refexp": prompts.official("refexp"),
    "segmentation": prompts.official("segmentation"),
    "keypoint": prompts.official("localization"),
    "normal": prompts.official("surface_normal"),
}
KEYPOINT_REGION_PROMPT = prompts.official("keypoint")
STUFF_MARKER = "(Stuff)"  # in a segmentation task_query: a class without instances

_NEED_QUERY = ("localization", "vqa", "refexp", "segmentation")


def _check_task(task: str):
  if task not in GRIT_TASKS:
    raise ValueError(f"unknown GRIT task {task!r}; tasks are {GRIT_TASKS}")


def samples_path(grit_dir: str, task: str, split: str) -> str:
  _check_task(task)
  if not split or os.sep in split or split.startswith("."):
    raise ValueError(f"bad split name {split!r}; GRIT's are {SPLITS}")
  return os.path.join(grit_dir, "samples", split, f"{task}.json")


def _read_json(path: str, what: str):
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{what} {path} does not exist")
  try:
    with open(path) as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f"{what} {path} is not valid JSON: {e}") from e


# ---------------------------------------------------------------------------------------
# Samples.


class _Invalid(Exception):
  """One sample that cannot be used; the message is the reason."""


def _is_box(value) -> bool:
  return (isinstance(value, (list, tuple)) and len(value) == 4
          and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
          and value[2] >= value[0] and value[3] >= value[1])


def _is_number_list(value, length: int) -> bool:
  return (isinstance(value, (list, tuple)) and len(value) == length
          and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value))


def _check_gt(task: str, gt: Dict[str, Any]):
  if task in ("categorization", "vqa"):
    words = gt.get("words")
    if not (isinstance(words, list) and words and all(isinstance(w, str) for w in words)):
      raise _Invalid("ground truth words must be a non-empty list of strings")
  elif task in ("localization", "refexp"):
    boxes = gt.get("bboxes")
    if not (isinstance(boxes, list) and all(_is_box(b) for b in boxes)):
      raise _Invalid("ground truth bboxes must be a list of [x1, y1, x2, y2]")
    if task == "refexp" and not boxes:
      raise _Invalid("refexp ground truth has no box")
  elif task == "segmentation":
    masks = gt.get("masks")
    if not (isinstance(masks, list) and masks and all(
        isinstance(m, dict) and "counts" in m and "size" in m for m in masks)):
      raise _Invalid("ground truth masks must be a non-empty list of RLE dicts")
  elif task == "keypoint":
    points = gt.get("points")
    if not (isinstance(points, list) and all(_is_number_list(p, 51) for p in points)):
      raise _Invalid("ground truth points must be a list of 51-number lists")
  elif not isinstance(gt.get("out_image_name"), str):
    raise _Invalid("normal ground truth needs out_image_name")


def _normalize_sample(raw, task: str) -> Dict[str, Any]:
  if not isinstance(raw, dict):
    raise _Invalid("sample is not a JSON object")
  inp = raw["input"] if isinstance(raw.get("input"), dict) else raw
  gt = raw.get("output", raw.get("gt"))
  gt = gt if isinstance(gt, dict) else {}

  def field(name):
    for source in (inp, raw, gt):
      if source.get(name) is not None:
        return source[name]
    return None

  example_id, image_id = field("example_id"), field("image_id")
  if not isinstance(example_id, str) or not example_id:
    raise _Invalid("missing example_id")
  if not isinstance(image_id, str) or not image_id:
    raise _Invalid("missing image_id")
  task_name = field("task_name")
  if task_name is not None and task_name != task:
    raise _Invalid(f"task_name {task_name!r} in the {task} file")
  query, bbox, options = field("task_query"), field("task_bbox"), field("output_options")
  if query is not None and not isinstance(query, str):
    raise _Invalid("task_query is not a string")
  if task in _NEED_QUERY and not query:
    raise _Invalid(f"{task} sample without task_query")
  if bbox is not None and not _is_box(bbox):
    raise _Invalid(f"bad task_bbox {bbox!r}")
  if task == "categorization" and (bbox is None or not isinstance(options, str)):
    raise _Invalid("categorization sample needs task_bbox and output_options")

  gt = {k: gt[k] for k in GT_FIELDS if gt.get(k) is not None}
  if gt:
    _check_gt(task, gt)
  meta_raw = raw.get("meta") if isinstance(raw.get("meta"), dict) else {}
  # Distorted copies are recognisable without metadata: grit_official's
  # generate_distortions.py selects them by "distorted" in image_id, and their example_id
  # is the original's plus "_dist".
  is_distorted = meta_raw.get("is_distorted")
  if is_distorted is None:
    is_distorted = "distorted" in image_id
  concepts = []
  for c in meta_raw.get("concepts") or []:
    lemma = c.get("lemma") if isinstance(c, dict) else c
    if isinstance(lemma, str):
      concepts.append(lemma)
  meta = {"data_source": meta_raw.get("data_source", raw.get("src")),
          "is_new_source": meta_raw.get("is_new_source"),
          "has_new_concept": meta_raw.get("has_new_concept"),
          "is_distorted": bool(is_distorted), "concepts": concepts}
  return {"example_id": example_id, "image_id": image_id, "task_name": task,
          "task_query": query, "task_bbox": None if bbox is None else list(bbox),
          "output_options": options, "gt": gt or None, "meta": meta}


def load_samples(grit_dir: str, task: str, split: str = "ablation", *, strict: bool = False,
                 stats: Optional[Dict[str, int]] = None) -> List[Dict[str, Any]]:
  """Reads GRIT/samples/{split}/{task}.json into flat dicts.

  Each dict has example_id, image_id, task_name, task_query, task_bbox, output_options,
  gt (a dict with the task's ground-truth fields, or None when the file has none) and
  meta (data_source, is_new_source, has_new_concept: None when absent; is_distorted;
  concepts: a list of lemmas).

  Invalid samples (missing ids, wrong task, bad box, malformed ground truth, repeated
  example_id) are skipped and counted: logged, and added to `stats` (reason -> count) when
  given. strict=True raises instead.
  """
  path = samples_path(grit_dir, task, split)
  data = _read_json(path, f"GRIT {split} {task} sample file")
  if isinstance(data, dict) and isinstance(data.get(task), list):
    data = data[task]  # grit_official's data/examples/samples.json: one list per task
  if not isinstance(data, list):
    raise ValueError(f"GRIT sample file {path} must hold a JSON list of samples, "
                     f"got {type(data).__name__}")
  samples, seen, skipped = [], set(), Counter()
  for index, raw in enumerate(data):
    try:
      sample = _normalize_sample(raw, task)
      if sample["example_id"] in seen:
        raise _Invalid("repeated example_id")
    except _Invalid as e:
      if strict:
        raise ValueError(f"{path}: sample {index}: {e}") from None
      skipped[str(e)] += 1
      continue
    seen.add(sample["example_id"])
    samples.append(sample)
  if skipped:
    log.warning("%s: skipped %d of %d samples: %s", path, sum(skipped.values()), len(data),
                dict(skipped))
  if stats is not None:
    for reason, count in skipped.items():
      stats[reason] = stats.get(reason, 0) + count
  return samples


def image_path(grit_dir: str, sample: Mapping[str, Any]) -> str:
  image_id = sample["image_id"]
  if os.path.isabs(image_id) or ".." in image_id.split("/"):
    raise ValueError(f"image_id {image_id!r} must be relative to GRIT/images")
  return os.path.join(grit_dir, "images", image_id)


def load_output_options(grit_dir: str, name: str) -> List[str]:
  """The label set a categorization sample names, from GRIT/output_options/{name}.json.

  Accepts a list of names, a list of {"name": ...} dicts (COCO style) or a dict whose
  values are names.
  """
  path = os.path.join(grit_dir, "output_options", f"{name}.json")
  data = _read_json(path, "GRIT output options file")
  items = list(data.values()) if isinstance(data, dict) else data
  names = [x["name"] if isinstance(x, dict) else x for x in items]
  if not all(isinstance(n, str) for n in names):
    raise ValueError(f"{path}: expected a list of label names")
  return names


# ---------------------------------------------------------------------------------------
# Prompts.


def prompt_for(sample: Mapping[str, Any], image_hw: Optional[Sequence[float]] = None,
               layout: Optional[vocab.VocabLayout] = None) -> str:
  """The Unified-IO prompt for one sample (stage one for keypoint).

  image_hw: the input image's (height, width), needed for categorization's box tokens.
  layout: the model's vocabulary layout (its location bins); the released models' by default.
  """
  task = sample["task_name"]
  _check_task(task)
  template = GRIT_PROMPTS[task]
  if task == "categorization":
    if image_hw is None:
      raise ValueError("categorization prompts need image_hw for the box's location tokens")
    return template.format(_box_text(sample["task_bbox"], image_hw, layout))
  if task == "vqa":
    return sample["task_query"].lower()
  if task == "keypoint":
    return template.format(sample.get("task_query") or "person")
  if task == "normal":
    return template
  query = sample["task_query"]
  if task == "segmentation":
    # The model was trained on plain class names; GRIT's stuff marker is for the metric.
    query = " ".join(query.replace(STUFF_MARKER, " ").split())
  return template.format(query)


def keypoint_region_prompt(box: Sequence[float], image_hw: Sequence[float],
                           layout: Optional[vocab.VocabLayout] = None) -> str:
  """Stage two of keypoint: find the joints of the person in `box` [x1, y1, x2, y2]."""
  return KEYPOINT_REGION_PROMPT.format(_box_text(box, image_hw, layout))


def _box_text(box, image_hw, layout) -> str:
  # Clip to the image first: a box from an annotation or a detection a pixel past the
  # border is common and should not abort a benchmark run.
  h, w = float(image_hw[0]), float(image_hw[1])
  x1, y1, x2, y2 = (float(v) for v in box)
  clipped = [min(max(x1, 0), w), min(max(y1, 0), h), min(max(x2, 0), w), min(max(y2, 0), h)]
  return locations.box_to_text(clipped, (h, w), layout)


# ---------------------------------------------------------------------------------------
# Submission files.


def _finite(value, what: str) -> float:
  try:
    out = float(value)
  except (TypeError, ValueError):
    raise ValueError(f"{what} must be a number, got {value!r}") from None
  if not math.isfinite(out):
    raise ValueError(f"{what} must be finite, got {out}")
  return out


def _encode_mask(mask, what: str) -> Dict[str, Any]:
  if isinstance(mask, dict):
    if "counts" not in mask or "size" not in mask:
      raise ValueError(f"{what}: an RLE mask needs 'counts' and 'size'")
    counts = mask["counts"]
    if isinstance(counts, bytes):
      counts = counts.decode("utf-8")
    elif isinstance(counts, list):  # uncompressed RLE -> compressed, as GRIT expects
      h, w = mask["size"]
      counts = mask_utils.frPyObjects(mask, h, w)["counts"].decode("utf-8")
    return {"size": [int(s) for s in mask["size"]], "counts": counts}
  array = np.asarray(mask)
  if array.ndim != 2:
    raise ValueError(f"{what}: a mask must be a 2-D binary array, got shape {array.shape}")
  rle = mask_utils.encode(np.asfortranarray(array.astype(bool).astype(np.uint8)))
  return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("utf-8")}


def _person_points(points, what: str) -> List[float]:
  array = np.asarray(points, np.float64)
  if array.size == 2 * grit_metrics.NUM_KEYPOINTS:  # no visibilities: the metric ignores them
    array = np.concatenate([array.reshape(-1, 2), np.full((array.size // 2, 1), 2.0)], 1)
  if array.size != 3 * grit_metrics.NUM_KEYPOINTS or not np.all(np.isfinite(array)):
    raise ValueError(f"{what}: a person needs 17 finite (x, y[, v]) keypoints, "
                     f"got shape {array.shape}")
  return array.reshape(-1).tolist()


def _prediction_value(task: str, value, what: str, normals_dir: str, index: int):
  if task in ("categorization", "vqa"):
    if not isinstance(value, str):
      raise ValueError(f"{what}: words must be a string")
    return value
  if task in ("localization", "refexp"):
    boxes = []
    for b in value:
      box = [_finite(v, f"{what} box") for v in np.asarray(b).reshape(-1)]
      if len(box) != 4:
        raise ValueError(f"{what}: a box is [x1, y1, x2, y2], got {b!r}")
      boxes.append(box)
    return boxes
  if task == "segmentation":
    return [_encode_mask(m, what) for m in value]
  if task == "keypoint":
    return [_person_points(p, what) for p in value]
  if isinstance(value, str):  # already saved under normals/
    if not os.path.isfile(os.path.join(normals_dir, value)):
      raise ValueError(f"{what}: normal image {value!r} is not in {normals_dir}")
    return value
  array = np.asarray(value)
  if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8:
    raise ValueError(f"{what}: a normal map is a uint8 [H, W, 3] RGB image, got "
                     f"{array.dtype} {array.shape}")
  name = f"{index}.png"
  os.makedirs(normals_dir, exist_ok=True)
  Image.fromarray(array).save(os.path.join(normals_dir, name))
  return name


def write_predictions(out_dir: str, task: str,
                      predictions: Sequence[Mapping[str, Any]]) -> str:
  """Writes {out_dir}/{task}.json in GRIT's submission format; returns its path.

  out_dir is the split folder of the submission (…/ablation or …/test). Each prediction
  needs example_id, confidence in [0, 1] and the task's field (PREDICTION_FIELD). Numpy
  values are converted; masks may be binary arrays (encoded to RLE here); keypoints may be
  [17, 2] or [17, 3]; a normal may be a uint8 [H, W, 3] image (saved as normals/{i}.png)
  or the name of a file already in normals/. Other keys are dropped.
  """
  _check_task(task)
  key = PREDICTION_FIELD[task]
  normals_dir = os.path.join(out_dir, "normals")
  rows, seen = [], set()
  for index, pred in enumerate(predictions):
    example_id = pred.get("example_id")
    what = f"{task} prediction {index} ({example_id!r})"
    if not isinstance(example_id, str) or not example_id:
      raise ValueError(f"{what}: example_id must be a non-empty string")
    if example_id in seen:
      raise ValueError(f"{what}: repeated example_id")
    seen.add(example_id)
    if "confidence" not in pred or key not in pred:
      raise ValueError(f"{what}: needs 'confidence' and {key!r}")
    confidence = _finite(pred["confidence"], f"{what} confidence")
    if not 0.0 <= confidence <= 1.0:
      raise ValueError(f"{what}: confidence {confidence} is outside [0, 1]")
    value = _prediction_value(task, pred[key], what, normals_dir, index)
    rows.append({"example_id": example_id, "confidence": confidence, key: value})
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, f"{task}.json")
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(rows, f)
  os.replace(tmp, path)  # a crash mid-write leaves the previous file, not half a file
  return path


def write_params(out_dir: str, params_in_millions: float) -> str:
  """params.json: the parameter count GRIT's rules ask every submission to report."""
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, "params.json")
  with open(path, "w") as f:
    json.dump({"params_in_millions": int(round(params_in_millions))}, f)
  return path


def zip_submission(split_dir: str) -> str:
  """Zips …/{split}/ into …/{split}.zip with the {split}/ folder inside, as GRIT requires."""
  split_dir = os.path.normpath(split_dir)
  split = os.path.basename(split_dir)
  if split not in SPLITS:
    raise ValueError(f"the submission folder must be named one of {SPLITS}, got {split!r}")
  if not os.path.isfile(os.path.join(split_dir, "params.json")):
    raise ValueError(f"{split_dir} has no params.json (see write_params)")
  zip_path = split_dir + ".zip"
  with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
    for root, _, files in os.walk(split_dir):
      for name in sorted(files):
        full = os.path.join(root, name)
        z.write(full, os.path.join(split, os.path.relpath(full, split_dir)))
  return zip_path


def load_predictions(path: str, task: str) -> List[Dict[str, Any]]:
  """Predictions from a submission folder ({path}/{task}.json) or a task JSON file."""
  _check_task(task)
  file = os.path.join(path, f"{task}.json") if os.path.isdir(path) else path
  data = _read_json(file, f"GRIT {task} prediction file")
  if not isinstance(data, list):
    raise ValueError(f"GRIT prediction file {file} must hold a JSON list")
  return data


# ---------------------------------------------------------------------------------------
# Scoring.


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
        rle = {"size": list(rle["size"]),
               "counts": counts.encode("utf-8") if isinstance(counts, str) else counts}
      masks.append(mask_utils.decode(rle))
    except Exception as e:  # pycocotools raises bare TypeErrors etc. on bad RLEs
      raise ValueError(f"{what}: cannot decode RLE mask: {e}") from e
  return masks


def _read_rgb(path: str, what: str) -> np.ndarray:
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{what} {path} does not exist")
  with Image.open(path) as im:
    return np.asarray(im.convert("RGB"))


def sample_score(task: str, pred: Mapping[str, Any], sample: Mapping[str, Any], *,
                 pred_normals_dir: Optional[str] = None,
                 gt_normals_dir: Optional[str] = None) -> float:
  """One sample's GRIT score in [0, 1] (see grit_metrics for the definitions)."""
  gt = sample["gt"]
  key = PREDICTION_FIELD[task]
  what = f"{task} prediction for {sample['example_id']!r}"
  if key not in pred:
    raise ValueError(f"{what} has no {key!r}")
  value = pred[key]
  if task == "categorization":
    return grit_metrics.categorization_score(value, gt["words"])
  if task == "vqa":
    return grit_metrics.vqa_score(value, gt["words"])
  if task == "localization":
    return grit_metrics.localization_score(value, gt["bboxes"])
  if task == "refexp":
    return grit_metrics.refexp_score(value, gt["bboxes"])
  if task == "segmentation":
    stuff = STUFF_MARKER in (sample["task_query"] or "")
    return grit_metrics.segmentation_score(
        _decode_masks(value, what), _decode_masks(gt["masks"], "ground truth"), stuff)
  if task == "keypoint":
    return grit_metrics.keypoint_score(value, gt["points"])
  if gt_normals_dir is None:
    raise ValueError("scoring normals needs gt_normals_dir")
  gt_rgb = _read_rgb(os.path.join(gt_normals_dir, gt["out_image_name"]),
                     "ground-truth normal image")
  if not isinstance(value, str):  # an in-memory uint8 RGB map
    pred_rgb = np.asarray(value)
  elif pred_normals_dir is None:
    raise ValueError(f"{what}: names a file but no pred_normals_dir was given")
  else:
    pred_rgb = _read_rgb(os.path.join(pred_normals_dir, value), f"{what}: image")
  return grit_metrics.normal_score(pred_rgb, gt_rgb)


def evaluate(grit_dir: str, predictions: Union[str, Sequence[Mapping[str, Any]]], task: str,
             split: str = "ablation", *, pred_normals_dir: Optional[str] = None,
             gt_normals_dir: Optional[str] = None,
             lemma2groups: Optional[Mapping[str, Sequence[str]]] = None,
             example_ids: Optional[Collection[str]] = None) -> Dict[str, Any]:
  """Scores one task's predictions against samples that carry ground truth.

  predictions: a list of prediction dicts, a submission folder or a {task}.json file.
  pred_normals_dir: where prediction "normal" names live (default: normals/ next to the
    prediction file); gt_normals_dir: the root of ground-truth out_image_name paths
    (default: GRIT/images, as in grit_official's example samples).
  lemma2groups: concept lemma -> concept groups (people, animals, ...); with it, per-group
    "acc.{group}.agg.{abbrev}.mean" are added for samples whose meta lists concepts.
  example_ids: score only these samples (a run over part of the file); default all.

  Returns the official measures for every partition the samples' metadata allows (see the
  module docstring), plus "acc.any.pooled.{abbrev}.mean" (all scored samples, distorted
  included; not a GRIT number but available without metadata), num_samples (scored),
  num_missing_predictions (scored 0 with confidence 0, where the leaderboard would reject
  the submission) and num_without_ground_truth (skipped).
  """
  samples = load_samples(grit_dir, task, split)
  scored = [s for s in samples if s["gt"] is not None]
  if not scored:
    raise ValueError(
        f"{samples_path(grit_dir, task, split)} has no ground truth: GRIT withholds it for "
        "ablation and test, and its leaderboard scores submissions (zip_submission). "
        "evaluate needs sample files that carry an 'output' (or 'gt') dict per sample.")
  without_gt = len(samples) - len(scored)
  if example_ids is not None:
    wanted = set(example_ids)
    scored = [s for s in scored if s["example_id"] in wanted]
    if not scored:
      raise ValueError(f"{task}: none of the {len(wanted)} example_ids has ground truth")
  if isinstance(predictions, str):
    pred_file_dir = predictions if os.path.isdir(predictions) else os.path.dirname(predictions)
    pred_normals_dir = pred_normals_dir or os.path.join(pred_file_dir, "normals")
    predictions = load_predictions(predictions, task)
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
      confidence = _finite(pred["confidence"], "confidence")
      score = sample_score(task, pred, sample, pred_normals_dir=pred_normals_dir,
                           gt_normals_dir=gt_normals_dir)
    meta = sample["meta"]
    groups = set()
    for lemma in meta["concepts"]:
      groups.update((lemma2groups or {}).get(lemma, ()))
    rows.append({"id": sample["example_id"], "m": grit_metrics.sample_measures(score, confidence),
                 "dist": meta["is_distorted"], "new_src": meta["is_new_source"],
                 "new_cpt": meta["has_new_concept"], "groups": groups})
  if missing:
    log.warning("%s %s: %d of %d samples have no prediction; scored 0", split, task, missing,
                len(scored))

  abbrev = TASK_ABBREVIATIONS[task]
  out: Dict[str, Any] = {"num_samples": len(scored), "num_missing_predictions": missing,
                         "num_without_ground_truth": without_gt}
  out[f"acc.any.pooled.{abbrev}.mean"] = float(np.mean([r["m"]["acc"] for r in rows]))
  out.update(grit_metrics.aggregate(rows, abbrev, "any", MEASURES, PARTITIONS))
  for group in sorted(set().union(*(r["groups"] for r in rows))):
    if group == "_ungrouped_":
      continue
    group_rows = [r for r in rows if group in r["groups"]]
    # The leaderboard reports only agg for concept groups.
    out.update({k: v for k, v in grit_metrics.aggregate(
        group_rows, abbrev, group, ("acc",), ("sameSrc", "newSrc", "agg")).items()
                if ".agg." in k})
  return out


def evaluate_submission(grit_dir: str, submission_dir: str, split: str = "ablation", *,
                        gt_normals_dir: Optional[str] = None,
                        lemma2groups: Optional[Mapping[str, Sequence[str]]] = None
                        ) -> Dict[str, Any]:
  """Scores every task of a submission folder and GRIT's across-task means.

  Adds "{measure}.any.{partition}.all.mean" for agg, sameSrc, newSrc, dist, undist and
  deldist, averaging over all seven tasks with 0 for a task the submission leaves out (as
  the leaderboard does), and "overall" = acc.any.agg.all.mean, the leaderboard's ranking
  number. An across-task mean is left out when a scored task lacks that partition.
  """
  out: Dict[str, Any] = {}
  present = []
  for task in GRIT_TASKS:
    if not os.path.isfile(os.path.join(submission_dir, f"{task}.json")):
      continue
    present.append(task)
    result = evaluate(grit_dir, submission_dir, task, split, gt_normals_dir=gt_normals_dir,
                      lemma2groups=lemma2groups)
    out.update({k if "." in k else f"{task}.{k}": v for k, v in result.items()})
  if not present:
    raise ValueError(f"{submission_dir} holds no GRIT task file ({GRIT_TASKS})")
  for m in MEASURES:
    for partition in ("agg", "sameSrc", "newSrc", "dist", "undist", "deldist"):
      if m == "rmse" and partition == "deldist":
        continue
      keys = [f"{m}.any.{partition}.{TASK_ABBREVIATIONS[t]}.mean" for t in present]
      if not all(k in out for k in keys):
        continue
      # rmse is averaged as mean squared error, like the per-task partitions.
      values = [out[k] ** 2 if m == "rmse" else out[k] for k in keys]
      mean = sum(values) / len(GRIT_TASKS)
      out[f"{m}.any.{partition}.all.mean"] = math.sqrt(mean) if m == "rmse" else mean
  if "acc.any.agg.all.mean" in out:
    out["overall"] = out["acc.any.agg.all.mean"]
  return out
