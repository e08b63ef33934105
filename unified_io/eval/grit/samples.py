"""Reading GRIT sample files and the files they point to (images, label sets).

The file layouts are described in unified_io/eval/grit/tasks.py. Samples are validated
here, once, so everything downstream can trust their fields.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from typing import Any, Dict, List, Mapping, Optional

from unified_io.common import coco_keypoints
from unified_io.eval.grit import definitions

log = logging.getLogger(__name__)

_NEED_QUERY = ("localization", "vqa", "refexp", "segmentation")


def samples_path(grit_dir: str, task: str, split: str) -> str:
  definitions.check_task(task)
  if not split or os.sep in split or split.startswith("."):
    raise ValueError(f"bad split name {split!r}; GRIT's are {definitions.SPLITS}")
  return os.path.join(grit_dir, "samples", split, f"{task}.json")


def read_json(path: str, what: str):
  """JSON from a GRIT file; a missing or malformed file is an error that names it."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{what} {path} does not exist")
  try:
    with open(path) as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f"{what} {path} is not valid JSON: {e}") from e


class _Invalid(Exception):
  """One sample that cannot be used; the message is the reason."""


def _is_box(value) -> bool:
  return (
    isinstance(value, (list, tuple))
    and len(value) == 4
    and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
    and value[2] >= value[0]
    and value[3] >= value[1]
  )


def _is_number_list(value, length: int) -> bool:
  return (
    isinstance(value, (list, tuple))
    and len(value) == length
    and all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
  )


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
    if not (
      isinstance(masks, list)
      and masks
      and all(isinstance(m, dict) and "counts" in m and "size" in m for m in masks)
    ):
      raise _Invalid("ground truth masks must be a non-empty list of RLE dicts")
  elif task == "keypoint":
    points = gt.get("points")
    length = 3 * coco_keypoints.NUM_KEYPOINTS  # x, y, v per joint, flattened
    if not (isinstance(points, list) and all(_is_number_list(p, length) for p in points)):
      raise _Invalid(f"ground truth points must be a list of {length}-number lists")
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

  gt = {k: gt[k] for k in definitions.GT_FIELDS if gt.get(k) is not None}
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
  meta = {
    "data_source": meta_raw.get("data_source", raw.get("src")),
    "is_new_source": meta_raw.get("is_new_source"),
    "has_new_concept": meta_raw.get("has_new_concept"),
    "is_distorted": bool(is_distorted),
    "concepts": concepts,
  }
  return {
    "example_id": example_id,
    "image_id": image_id,
    "task_name": task,
    "task_query": query,
    "task_bbox": None if bbox is None else list(bbox),
    "output_options": options,
    "gt": gt or None,
    "meta": meta,
  }


def load_samples(
  grit_dir: str,
  task: str,
  split: str = "ablation",
  *,
  strict: bool = False,
  stats: Optional[Dict[str, int]] = None,
) -> List[Dict[str, Any]]:
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
  data = read_json(path, f"GRIT {split} {task} sample file")
  if isinstance(data, dict) and isinstance(data.get(task), list):
    data = data[task]  # grit_official's data/examples/samples.json: one list per task
  if not isinstance(data, list):
    raise ValueError(
      f"GRIT sample file {path} must hold a JSON list of samples, got {type(data).__name__}"
    )
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
    log.warning(
      "%s: skipped %d of %d samples: %s", path, sum(skipped.values()), len(data), dict(skipped)
    )
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
  data = read_json(path, "GRIT output options file")
  items = list(data.values()) if isinstance(data, dict) else data
  names = [x["name"] if isinstance(x, dict) else x for x in items]
  if not all(isinstance(n, str) for n in names):
    raise ValueError(f"{path}: expected a list of label names")
  return names
