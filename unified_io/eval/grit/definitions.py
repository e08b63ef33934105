"""GRIT's tasks, splits and file fields, and Unified-IO's prompt for each task.

The constants every other GRIT module keys on (unified_io/eval/grit/tasks.py describes
the benchmark and its files); prompts are here because they are per-task definitions too.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from unified_io.common import locations
from unified_io.common import vocab
from unified_io.data import prompts
from unified_io.eval.grit import scoring

GRIT_TASKS = (
  "categorization",
  "localization",
  "vqa",
  "refexp",
  "segmentation",
  "keypoint",
  "normal",
)
TASK_ABBREVIATIONS = {
  "categorization": "cat",
  "localization": "loc",
  "vqa": "vqa",
  "refexp": "ref",
  "segmentation": "seg",
  "keypoint": "kp",
  "normal": "sn",
}
SPLITS = ("ablation", "test")
# The field of a prediction that carries the answer, per task.
PREDICTION_FIELD = {
  "categorization": "words",
  "vqa": "words",
  "localization": "bboxes",
  "refexp": "bboxes",
  "segmentation": "masks",
  "keypoint": "points",
  "normal": "normal",
}
GT_FIELDS = ("words", "bboxes", "masks", "points", "out_image_name")
MEASURES = scoring.MEASURES
PARTITIONS = scoring.PARTITIONS

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


def check_task(task: str):
  if task not in GRIT_TASKS:
    raise ValueError(f"unknown GRIT task {task!r}; tasks are {GRIT_TASKS}")


def prompt_for(
  sample: Mapping[str, Any],
  image_hw: Optional[Sequence[float]] = None,
  layout: Optional[vocab.VocabLayout] = None,
) -> str:
  """The Unified-IO prompt for one sample (stage one for keypoint).

  image_hw: the input image's (height, width), needed for categorization's box tokens.
  layout: the model's vocabulary layout (its location bins); the released models' by default.
  """
  task = sample["task_name"]
  check_task(task)
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


def keypoint_region_prompt(
  box: Sequence[float], image_hw: Sequence[float], layout: Optional[vocab.VocabLayout] = None
) -> str:
  """Stage two of keypoint: find the joints of the person in `box` [x1, y1, x2, y2]."""
  return KEYPOINT_REGION_PROMPT.format(_box_text(box, image_hw, layout))


def _box_text(box, image_hw, layout) -> str:
  # Clip to the image first: a box from an annotation or a detection a pixel past the
  # border is common and should not abort a benchmark run.
  h, w = float(image_hw[0]), float(image_hw[1])
  x1, y1, x2, y2 = (float(v) for v in box)
  clipped = [min(max(x1, 0), w), min(max(y1, 0), h), min(max(x2, 0), w), min(max(y2, 0), h)]
  return locations.box_to_text(clipped, (h, w), layout)
