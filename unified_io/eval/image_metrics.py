"""Image metrics of registered tasks: what the model finds in whole images, scored by COCOeval.

A task's per-example metric scores one prompt's answer (coco_keypoints: the joints of one
person given its ground-truth box). Its image metrics (`Task.image_metrics`, registry
IMAGE_METRICS) score every instance of an image at once, as COCO's benchmarks do: they read
the first `num_images` records of the task's split as the builder stores them (annotated or
not: predictions on an image without ground truth are false positives; crowd regions are
COCO's ignored ground truth), run their own inference on each image and score all of them
with unified_io/eval/metrics/coco_ap.py.

- COCO_KEYPOINT_AP (records with "persons", e.g. `uio_coco2017/keypoints`): the paper's
  two-stage inference (two_stage_keypoints.find_people: localize "person", then the joints
  of each box, at most COCO's 20 per image); a person's score is the log-probability of
  its two outputs (`People.scores`).
- COCO_MASK_AP (records with "objects", e.g. `uio_coco2017/instances`): per image, the
  segmentation prompt for each class with a non-crowd instance there (class-conditioned,
  as the task is trained: classes absent from an image are not asked, so their false
  positives are not measured). Every mask of an answer scores 1.0: a sampled image has no
  sequence probability, so masks are ranked by image, then class, then the parser's order
  (COCOeval keeps the order of equal scores).

Results go into the task's Score.extra as "<label> <stat>" (e.g. "COCO keypoint AP",
"COCO mask AP50") plus "<label> images". With several processes each predicts a
contiguous part of the images and the predictions are gathered before scoring.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from unified_io.data import pipeline
from unified_io.data.tasks import registry as tasks_lib
from unified_io.eval import host_split
from unified_io.eval import inference
from unified_io.eval import two_stage_keypoints
from unified_io.eval.metrics import coco_ap

M = tasks_lib.Metric
MAX_PEOPLE = 20  # COCOeval's keypoint maxDets: more people per image are never read
MAX_NOTICES = 3  # truncated prompts named per metric; the count covers the rest


def _field(record: dict, field: str, builder: str) -> dict:
  if field not in record:
    raise ValueError(
      f"{builder} records have no {field!r} field (they have {sorted(record)}): this image "
      "metric reads uio_coco2017-style records"
    )
  return record[field]


def record_name(record: dict, index: int) -> str:
  value = record.get("id", record.get("image/id", index))
  return value.decode() if isinstance(value, bytes) else str(value)


# ------------------------------------------------------------------------------ keypoints


def keypoint_truth(record: dict, builder: str = "records") -> dict:
  """The record's persons (every one: crowds and those without joints are COCO's ignored)."""
  persons = _field(record, "persons", builder)
  keys = ("box", "area", "iscrowd", "keypoints", "visibility", "num_keypoints")
  return {k: np.asarray(persons[k]) for k in keys if k in persons}


def predict_keypoints(predictor, image, truth: dict, seed: int, name: str) -> dict:
  """Two-stage inference on the image; `truth` is not read (nothing is given away)."""
  del truth
  people = two_stage_keypoints.find_people(
    predictor, image, seed=seed, name=name, max_people=MAX_PEOPLE
  )
  return {
    "keypoints": people.keypoints,
    "score": people.scores(),
    "box": people.boxes,
    "truncations": list(people.truncations),
  }


# ---------------------------------------------------------------------------------- masks


def mask_truth(record: dict, builder: str = "records") -> dict:
  """The record's objects: category names, masks as COCO RLE (compact: every image's are
  held until scoring), iscrowd, area (COCO's), image_hw."""
  objects = _field(record, "objects", builder)
  masks = np.asarray(objects["mask"])
  if masks.ndim == 4 and masks.shape[-1] == 1:
    masks = masks[..., 0]
  names = [tasks_lib.as_text(c, "category") for c in np.asarray(objects["category"]).reshape(-1)]
  hw = np.asarray(record["image"]).shape[:2]
  return {
    "category": names,
    "mask": [coco_ap.encode_mask(m) for m in masks.reshape(len(names), *hw)],
    "iscrowd": np.asarray(objects["iscrowd"], bool).reshape(-1),
    "area": np.asarray(objects["area"], np.float64).reshape(-1),
    "image_hw": hw,
  }


def classes_to_ask(truth: dict) -> List[str]:
  """The classes with a non-crowd instance in the image, sorted."""
  return sorted({c for c, crowd in zip(truth["category"], truth["iscrowd"]) if not crowd})


def predict_masks(
  predictor, image, truth: dict, seed: int, name: str, classes: Optional[Sequence[str]] = None
) -> dict:
  """Per class (default `classes_to_ask(truth)`), the segmentation prompt's masks, 1.0 each."""
  hw = np.asarray(image).shape[:2]
  masks, labels, cut = [], [], []
  for k, class_name in enumerate(classes_to_ask(truth) if classes is None else classes):
    prompt = inference.make_prompt("segmentation", hw, class_name)
    out = inference.predict(
      predictor, image, prompt, "segmentation", seed=seed + k, name=f"{name} {class_name}"
    )
    found = out.get("masks")
    found = np.zeros((0, *hw), bool) if found is None else np.asarray(found, bool)
    masks += list(found)
    labels += [class_name] * len(found)
    if out.get("prompt_truncated"):
      cut.append(out["prompt_truncated"])
  return {
    "mask": masks,
    "category": labels,
    "score": np.ones(len(masks)),
    "truncations": cut,
  }


# ------------------------------------------------------------------------------- metrics


@dataclasses.dataclass(frozen=True)
class ImageMetric:
  """label: prefix of its Score.extra keys; truth(record, builder) -> coco_ap ground
  truth; predict(predictor, image, truth, seed, name) -> coco_ap predictions (plus
  "truncations"); score(truths, predictions) -> COCOeval's stats by name."""

  label: str
  truth: Callable[..., dict]
  predict: Callable[..., dict]
  score: Callable[..., Dict[str, float]]


METRICS: Dict[M, ImageMetric] = {
  M.COCO_KEYPOINT_AP: ImageMetric(
    "COCO keypoint", keypoint_truth, predict_keypoints, coco_ap.keypoint_ap
  ),
  M.COCO_MASK_AP: ImageMetric("COCO mask", mask_truth, predict_masks, coco_ap.mask_ap),
}


def read(
  task: tasks_lib.Task,
  split: str,
  num_images: int,
  data_dir: Optional[str],
  truth: Callable[..., dict],
  shard: Tuple[int, int] = (0, 1),
):
  """(ground truth of the split's first `num_images` records, this process's rows of them,
  [(name, image)] of those rows), reading one record at a time."""
  if num_images < 1:
    raise ValueError(f"num_images must be >= 1, got {num_images}")
  src = pipeline.source(task.builder, task.splits[split], data_dir, task.record_filter)
  count = min(num_images, len(src))
  rows = host_split.host_rows(count, *shard)
  truths, images = [], []
  for index in range(count):
    record = src[index]
    truths.append(truth(record, task.builder))
    if index in rows:
      images.append((record_name(record, index), record["image"]))
  return truths, rows, images


def predict(
  predictor, metric: ImageMetric, images, truths, seed: int, prefix: str, first_index: int = 0
) -> List[dict]:
  """metric.predict per (name, image) and its truth; image i (counted from first_index) is
  seeded seed + 1000 i."""
  out = []
  for k, ((name, image), truth) in enumerate(zip(images, truths)):
    index = first_index + k
    out.append(
      metric.predict(predictor, image, truth, seed + 1000 * index, f"{prefix} image {name}")
    )
  return out


def evaluate(
  predictor,
  task: tasks_lib.Task,
  metric,
  *,
  split: str,
  num_images: int,
  seed: int,
  data_dir: Optional[str],
  progress: Callable[[str], None] = print,
  shard: Tuple[int, int] = (0, 1),
) -> Dict[str, float]:
  """The image metric `metric` of `task` over the first `num_images` images of its split:
  {"<label> <stat>": value, ..., "<label> images": n}. shard: (this process, processes);
  every process returns the same numbers."""
  metric = tasks_lib.Metric(metric)
  if metric not in METRICS:
    raise ValueError(
      f"{metric.value} is not an image metric; they are {[m.value for m in METRICS]}"
    )
  spec = METRICS[metric]
  start = time.time()
  truths, rows, images = read(task, split, num_images, data_dir, spec.truth, shard)
  mine = predict(
    predictor, spec, images, truths[rows.start : rows.stop], seed, task.name, rows.start
  )
  parts = host_split.gather(mine, f"{task.name}_{metric.value}") if shard[1] > 1 else [mine]
  preds = host_split.concatenate(parts)
  cut = [t for p in preds for t in p.pop("truncations", [])]
  for t in cut[:MAX_NOTICES]:
    progress(f"  {t.notice()}")
  if len(cut) > MAX_NOTICES:
    progress(f"  {task.name}: {len(cut)} prompts truncated to the model's text input in all")
  stats = spec.score(truths, preds)
  found = sum(len(p["score"]) for p in preds)
  progress(
    f"  {task.name}: {spec.label} AP {stats['AP']:.4g} (AP50 {stats['AP50']:.4g}) over "
    f"{len(truths)} images, {found} instances found, {time.time() - start:.1f} s"
  )
  out = {f"{spec.label} {k}": v for k, v in stats.items()}
  out[f"{spec.label} images"] = float(len(truths))
  return out
