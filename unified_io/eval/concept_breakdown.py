"""A task's metric split into seen and held-out concepts (GPV-1 §4's "seen" / "unseen").

Examples of a held-out-concept variant carry meta["concept_split"], "sameCpt" or "newCpt"
(unified_io/data/concept_split.py); GRIT's scorer names the same partitions so
(eval/grit/scoring.py). Each part is scored by the task's own scorer on its examples alone
(CIDEr's document frequencies, a detection AP's ranking and the baseline all come from the
part), and lands in Score.extra as "sameCpt" / "newCpt" with "sameCpt.cnt" / "newCpt.cnt"
example counts; a part without examples has a count of 0 and no value.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Sequence

from unified_io.data import concept_split
from unified_io.eval import results as results_lib

PARTS = (concept_split.SAME, concept_split.NEW)


def select(examples, rows: Sequence[int]):
  """The examples (task_eval.TaskExamples) of `rows`, in that order."""
  return dataclasses.replace(
    examples,
    raws=[examples.raws[i] for i in rows],
    features={k: v[list(rows)] for k, v in examples.features.items()},
  )


def breakdown(
  examples, preds: Sequence[dict], score_fn: Callable[..., results_lib.Score]
) -> Dict[str, float]:
  """{part: metric, part.cnt: examples} over the tagged examples; {} if none is tagged."""
  tags = [raw["meta"].get("concept_split") for raw in examples.raws]
  if all(t is None for t in tags):
    return {}
  unknown = sorted({str(t) for t in tags} - set(PARTS))
  if unknown:
    raise ValueError(f"{examples.task.name}: concept_split tags {unknown}, not {PARTS}")
  out = {}
  for part in PARTS:
    rows = [i for i, t in enumerate(tags) if t == part]
    out[f"{part}.cnt"] = float(len(rows))
    if rows:
      out[part] = float(score_fn(select(examples, rows), [preds[i] for i in rows]).value)
  return out


def with_breakdown(score: results_lib.Score, examples, preds, score_fn) -> results_lib.Score:
  """`score` with the seen / held-out parts added to its extra."""
  parts = breakdown(examples, preds, score_fn)
  return dataclasses.replace(score, extra={**score.extra, **parts}) if parts else score


def has_breakdown(score: results_lib.Score) -> bool:
  return f"{concept_split.SAME}.cnt" in score.extra


def cells(score: results_lib.Score) -> Sequence[str]:
  """The report's sameCpt and newCpt cells: "value (n)", or "- (0)" for an empty part."""
  if not has_breakdown(score):
    return ("", "")
  return tuple(
    f"{score.extra[part]:.3f} ({score.extra[f'{part}.cnt']:.0f})"
    if part in score.extra
    else f"- ({score.extra[f'{part}.cnt']:.0f})"
    for part in PARTS
  )
