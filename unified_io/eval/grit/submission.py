"""Writing a GRIT submission (task files, params.json, the zip) and reading one back.

The format is described in unified_io/eval/grit/tasks.py; values are checked and
converted here so that a file we write is one the leaderboard accepts.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from unified_io.common import coco_keypoints
from unified_io.eval.grit import definitions
from unified_io.eval.grit import samples


def finite(value, what: str) -> float:
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
  if array.size == 2 * coco_keypoints.NUM_KEYPOINTS:  # no visibilities: the metric ignores them
    array = np.concatenate([array.reshape(-1, 2), np.full((array.size // 2, 1), 2.0)], 1)
  if array.size != 3 * coco_keypoints.NUM_KEYPOINTS or not np.all(np.isfinite(array)):
    raise ValueError(
      f"{what}: a person needs {coco_keypoints.NUM_KEYPOINTS} finite "
      f"(x, y[, v]) keypoints, got shape {array.shape}"
    )
  return array.reshape(-1).tolist()


def _prediction_value(task: str, value, what: str, normals_dir: str, index: int):
  if task in ("categorization", "vqa"):
    if not isinstance(value, str):
      raise ValueError(f"{what}: words must be a string")
    return value
  if task in ("localization", "refexp"):
    boxes = []
    for b in value:
      box = [finite(v, f"{what} box") for v in np.asarray(b).reshape(-1)]
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
    raise ValueError(
      f"{what}: a normal map is a uint8 [H, W, 3] RGB image, got {array.dtype} {array.shape}"
    )
  name = f"{index}.png"
  os.makedirs(normals_dir, exist_ok=True)
  Image.fromarray(array).save(os.path.join(normals_dir, name))
  return name


def write_predictions(out_dir: str, task: str, predictions: Sequence[Mapping[str, Any]]) -> str:
  """Writes {out_dir}/{task}.json in GRIT's submission format; returns its path.

  out_dir is the split folder of the submission (…/ablation or …/test). Each prediction
  needs example_id, confidence in [0, 1] and the task's field (PREDICTION_FIELD). Numpy
  values are converted; masks may be binary arrays (encoded to RLE here); keypoints may be
  [17, 2] or [17, 3]; a normal may be a uint8 [H, W, 3] image (saved as normals/{i}.png)
  or the name of a file already in normals/. Other keys are dropped.
  """
  definitions.check_task(task)
  key = definitions.PREDICTION_FIELD[task]
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
    confidence = finite(pred["confidence"], f"{what} confidence")
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
  if split not in definitions.SPLITS:
    raise ValueError(
      f"the submission folder must be named one of {definitions.SPLITS}, got {split!r}"
    )
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
  definitions.check_task(task)
  file = os.path.join(path, f"{task}.json") if os.path.isdir(path) else path
  data = samples.read_json(file, f"GRIT {task} prediction file")
  if not isinstance(data, list):
    raise ValueError(f"GRIT prediction file {file} must hold a JSON list")
  return data
