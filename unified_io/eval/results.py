"""Results of an evaluation: which tasks beat their baselines, per group, as JSON."""
from __future__ import annotations

from typing import Dict

import numpy as np

from unified_io.data.tasks import registry as tasks_lib


def summary(results: Dict[str, dict]) -> Dict[str, dict]:
  """JSON-able metrics: results without examples and predictions."""
  return {name: {k: v for k, v in r.items() if k not in ("examples", "predictions")}
          for name, r in results.items()}


def beats_baseline(result: dict) -> bool:
  if not np.isfinite(result["score"]):
    return False
  if result["lower_is_better"]:
    return result["score"] < result["baseline"]
  return result["score"] > result["baseline"]


def group_counts(results: Dict[str, dict]) -> Dict[str, tuple]:
  """group -> (tasks that beat their baseline, tasks), in the paper's group order."""
  counts = {}
  for group in tasks_lib.GROUPS:
    members = [r for r in results.values() if r["group"] == group]
    if members:
      counts[group] = (sum(beats_baseline(r) for r in members), len(members))
  return counts


def headline(results: Dict[str, dict]) -> str:
  """One line: tasks above their baseline, in all and per group."""
  beaten = sum(beats_baseline(r) for r in results.values())
  groups = ", ".join(f"{g} {k}/{n}" for g, (k, n) in group_counts(results).items())
  return f"{beaten}/{len(results)} tasks beat their baseline ({groups})"
