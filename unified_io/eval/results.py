"""Results of an evaluation: a metric beside its baseline per task, which beat it, as JSON."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Mapping

import numpy as np

from unified_io.data.tasks import registry as tasks_lib


@dataclasses.dataclass(frozen=True)
class Score:
  """A scorer's answer: the model's value of a metric beside an input-free baseline's.

  metric is the display name ("AP50", "RMSE (m)"...); extra holds further numbers logged
  beside it (e.g. grounded VQA's mask IoU).
  """

  metric: str
  value: float
  baseline: float
  baseline_is: str
  lower_is_better: bool = False
  extra: Mapping[str, float] = dataclasses.field(default_factory=dict)

  @property
  def beats_baseline(self) -> bool:
    """NaN (nothing to score) never beats; a tie does not either."""
    if not np.isfinite(self.value):
      return False
    if self.lower_is_better:
      return self.value < self.baseline
    return self.value > self.baseline


@dataclasses.dataclass
class TaskResult:
  """One task's evaluation: its score, validation loss, and what it was computed from.

  examples (task_eval.TaskExamples) and predictions (one dict per example) feed the report's
  pictures and predictions.jsonl; they are left out of `summary`.
  """

  group: str
  score: Score
  loss: float
  num_examples: int
  skipped: Dict[str, int] = dataclasses.field(default_factory=dict)
  examples: Any = None
  predictions: List[dict] = dataclasses.field(default_factory=list)

  def as_json(self) -> dict:
    """metrics.json's entry: the keys it always had."""
    s = self.score
    return dict(
      group=self.group,
      metric=s.metric,
      score=float(s.value),
      baseline=float(s.baseline),
      baseline_is=s.baseline_is,
      lower_is_better=s.lower_is_better,
      loss=float(self.loss),
      num_examples=self.num_examples,
      **{k: float(v) for k, v in s.extra.items()},
      skipped=dict(self.skipped),
    )


def summary(results: Dict[str, TaskResult]) -> Dict[str, dict]:
  """JSON-able metrics: results without examples and predictions."""
  return {name: r.as_json() for name, r in results.items()}


def beats_baseline(result: TaskResult) -> bool:
  return result.score.beats_baseline


def group_counts(results: Dict[str, TaskResult]) -> Dict[str, tuple]:
  """group -> (tasks that beat their baseline, tasks), in the paper's group order."""
  counts = {}
  for group in tasks_lib.GROUPS:
    members = [r for r in results.values() if r.group == group]
    if members:
      counts[group] = (sum(beats_baseline(r) for r in members), len(members))
  return counts


def headline(results: Dict[str, TaskResult]) -> str:
  """One line: tasks above their baseline, in all and per group."""
  beaten = sum(beats_baseline(r) for r in results.values())
  groups = ", ".join(f"{g} {k}/{n}" for g, (k, n) in group_counts(results).items())
  return f"{beaten}/{len(results)} tasks beat their baseline ({groups})"
