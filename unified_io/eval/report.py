"""The evaluation report: a markdown table of metrics beside baselines, one picture per group.

Pictures show, per task, a few examples as rows of input (with the prompt), ground truth
and prediction: boxes and keypoints drawn on the image, generated and dense outputs as
images, text as captions.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

import numpy as np

from unified_io.common import visualize
from unified_io.data.tasks import registry as tasks_lib
from unified_io.eval import concept_breakdown
from unified_io.eval import outputs
from unified_io.eval import results as results_lib

EXAMPLES_PER_TASK = 2
TILE = 192
MAX_DEPTH = 10.0  # metres of white in depth images, unless the caller says otherwise


def _input_image(raw):
  image = raw.get("image")
  if image is None:
    return None
  return visualize.as_pil(image if np.asarray(image).dtype == np.uint8 else np.clip(image, 0, 1))


def _cells(result: results_lib.TaskResult, i: int, spec, max_depth: float = MAX_DEPTH):
  """(input, ground truth, prediction) cells of example i of a task result.

  Ground truth and prediction are drawn alike by the task's output kind: boxes and joints
  on the input, maps and generated images as pictures of their own, text as captions.
  """
  examples, pred = result.examples, result.predictions[i]
  raw, task = examples.raws[i], examples.task
  kind = outputs.get(task.output)
  ctx = outputs.Context(spec.tokenizer.layout, spec.tokenizer.decode, max_depth)
  hw = raw["meta"].get("image_hw")
  # Text-only tasks get a text cell, not a black square standing in for "no image".
  image = _input_image(raw)
  inputs = (image, raw["prompt"])
  target_text = spec.tokenizer.decode(examples.features["text_targets"][i])
  target_image = (
    (examples.features["image_target_pixels"][i] + 1) / 2 if task.output.has_image else None
  )
  truth = kind.draw(image, kind.truth(raw, target_image), TILE, ctx.max_depth)
  drawn = kind.draw(image, kind.parse(pred, hw, ctx, raw["meta"].get("box")), TILE, ctx.max_depth)
  has_text = task.output.has_text
  return (
    inputs,
    (truth, target_text if has_text else ""),
    (drawn, pred["text"] if has_text else ""),
  )


def group_picture(
  results: Dict[str, results_lib.TaskResult], group: str, spec, max_depth: float = MAX_DEPTH
):
  rows, titles = [], []
  for name, result in results.items():
    if result.group != group:
      continue
    for i in range(min(EXAMPLES_PER_TASK, len(result.predictions))):
      cells = _cells(result, i, spec, max_depth)
      rows.append(
        [
          (
            None
            if image is None
            else visualize.as_pil(
              image
              if not isinstance(image, np.ndarray) or image.dtype == np.uint8
              else np.clip(image, 0, 1)
            ),
            caption,
          )
          for image, caption in cells
        ]
      )
      titles.append(
        f"{name.replace('builtin_', '')}\n{result.score.metric} {result.score.value:.3g}"
      )
  if not rows:
    return None
  return visualize.grid(
    rows,
    tile_size=(TILE, TILE),
    row_titles=titles,
    col_titles=["input", "ground truth", "prediction"],
    row_title_width=150,
  )


def table(results: Dict[str, results_lib.TaskResult]) -> List[str]:
  # Seen / held-out concept columns (GRIT's sameCpt / newCpt) when a task has them.
  parts = any(concept_breakdown.has_breakdown(r.score) for r in results.values())
  extra = " sameCpt (n) | newCpt (n) |" if parts else ""
  lines = [
    "| group | task | metric | model | baseline | baseline is | beats it | val loss |" + extra,
    "|---|---|---|---|---|---|---|---|" + ("---|---|" if parts else ""),
  ]
  for group in tasks_lib.GROUPS:
    for name, r in results.items():
      if r.group == group:
        s = r.score
        arrow = "↓" if s.lower_is_better else "↑"
        cells = "".join(f" {c} |" for c in concept_breakdown.cells(s)) if parts else ""
        lines.append(
          f"| {group} | {name} | {s.metric} {arrow} | {s.value:.3f} | "
          f"{s.baseline:.3f} | {s.baseline_is} | "
          f"{'yes' if s.beats_baseline else 'NO'} | {r.loss:.3f} |{cells}"
        )
  return lines


def write(
  results: Dict[str, results_lib.TaskResult],
  out_dir: str,
  step: Optional[int],
  spec,
  max_depth: float = MAX_DEPTH,
) -> str:
  """Writes report.md and <group>.png into out_dir; returns the report path."""
  lines = [
    f"# Evaluation report{'' if step is None else f' at step {step}'}",
    "",
    results_lib.headline(results) + ".",
    "",
  ]
  lines += table(results) + [""]
  for group in tasks_lib.GROUPS:
    picture = group_picture(results, group, spec, max_depth)
    if picture is not None:
      path = visualize.save(picture, os.path.join(out_dir, f"{group}.png"))
      lines += [f"## {group}", "", f"![{group}]({os.path.basename(path)})", ""]
  path = os.path.join(out_dir, "report.md")
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
  return path
