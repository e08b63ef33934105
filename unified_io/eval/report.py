"""The evaluation report: a markdown table of metrics beside baselines, one picture per group.

Pictures show, per task, a few examples as rows of input (with the prompt), ground truth
and prediction: boxes and keypoints drawn on the image, generated and dense outputs as
images, text as captions.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

import numpy as np

from unified_io.eval import postprocess
from unified_io.common import visualize
from unified_io.data.tasks import registry as tasks_lib
from unified_io.eval import results as results_lib

EXAMPLES_PER_TASK = 2


def _input_image(raw):
  image = raw.get("image")
  if image is None:
    return np.zeros((64, 64, 3), np.uint8)
  return visualize.as_pil(image if np.asarray(image).dtype == np.uint8 else
                          np.clip(image, 0, 1))


def _boxes_picture(raw, boxes, labels):
  image, scale = visualize.upscale(_input_image(raw), 192)
  return visualize.draw_boxes(image, np.asarray(boxes).reshape(-1, 4), labels=labels or None,
                              scale=scale)


def _keypoints_picture(raw, keypoints):
  image, scale = visualize.upscale(_input_image(raw), 192)
  return visualize.draw_keypoints(image, np.asarray(keypoints).reshape(-1, 17, 3), scale=scale)


def _cells(result, i, spec):
  """(input, ground truth, prediction) cells of example i of a task result."""
  examples, pred = result["examples"], result["predictions"][i]
  raw, meta, task = examples.raws[i], examples.raws[i]["meta"], examples.task
  layout = spec.tokenizer.layout
  hw = meta.get("image_hw")
  # Text-only tasks get a text cell, not a black square standing in for "no image".
  inputs = (_input_image(raw) if raw.get("image") is not None else None, raw["prompt"])
  target_text = spec.tokenizer.decode(examples.features["text_targets"][i])
  if task.metric in ("detection_map", "box_iou"):
    boxes, labels, _ = postprocess.parse_boxes(pred["tokens"], layout, hw, spec.tokenizer.decode)
    gt_labels = [str(l) for l in meta.get("labels", [])] or None
    gt_boxes = meta["boxes"] if "boxes" in meta else meta.get("box", np.zeros((0, 4)))
    return (inputs, (_boxes_picture(raw, gt_boxes, gt_labels),
                     target_text),
            (_boxes_picture(raw, boxes, [l.strip() for l in labels]), pred["text"]))
  if task.metric == "keypoint_oks":
    keypoints, _ = postprocess.parse_keypoints(pred["tokens"], layout, hw,
                                               region=meta.get("box"))
    truth = np.concatenate([np.asarray(meta["keypoints"]).reshape(17, 2),
                            np.asarray(meta["visibility"]).reshape(17, 1)], axis=1)
    return (inputs, (_keypoints_picture(raw, truth), ""),
            (_keypoints_picture(raw, keypoints), pred["text"]))
  truth = (examples.features["image_target_pixels"][i] + 1) / 2 if task.output != "text" else None
  gt_cell = (truth, target_text if task.output != "image" else "")
  pred_cell = (pred["image"], pred["text"] if task.output != "image" else "")
  return inputs, gt_cell, pred_cell


def group_picture(results: Dict[str, dict], group: str, spec):
  rows, titles = [], []
  for name, result in results.items():
    if result["group"] != group:
      continue
    for i in range(min(EXAMPLES_PER_TASK, len(result["predictions"]))):
      cells = _cells(result, i, spec)
      rows.append([(None if image is None else visualize.as_pil(
          image if not isinstance(image, np.ndarray) or image.dtype == np.uint8 else
          np.clip(image, 0, 1)), caption) for image, caption in cells])
      titles.append(f"{name.replace('builtin_', '')}\n{result['metric']} "
                    f"{result['score']:.3g}")
  if not rows:
    return None
  return visualize.grid(rows, tile_size=(192, 192), row_titles=titles,
                        col_titles=["input", "ground truth", "prediction"], row_title_width=150)


def table(results: Dict[str, dict]) -> List[str]:
  lines = ["| group | task | metric | model | baseline | baseline is | beats it | val loss |",
           "|---|---|---|---|---|---|---|---|"]
  for group in tasks_lib.GROUPS:
    for name, r in results.items():
      if r["group"] == group:
        arrow = "↓" if r["lower_is_better"] else "↑"
        lines.append(f"| {group} | {name} | {r['metric']} {arrow} | {r['score']:.3f} | "
                     f"{r['baseline']:.3f} | {r['baseline_is']} | "
                     f"{'yes' if results_lib.beats_baseline(r) else 'NO'} | {r['loss']:.3f} |")
  return lines


def write(results: Dict[str, dict], out_dir: str, step: Optional[int], spec) -> str:
  """Writes report.md and <group>.png into out_dir; returns the report path."""
  lines = [f"# Evaluation report{'' if step is None else f' at step {step}'}", "",
           results_lib.headline(results) + ".", ""]
  lines += table(results) + [""]
  for group in tasks_lib.GROUPS:
    picture = group_picture(results, group, spec)
    if picture is not None:
      path = visualize.save(picture, os.path.join(out_dir, f"{group}.png"))
      lines += [f"## {group}", "", f"![{group}]({os.path.basename(path)})", ""]
  path = os.path.join(out_dir, "report.md")
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
  return path
