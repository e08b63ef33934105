"""Evaluators named in `config.evals`, which the trainer runs at their own `every_steps`.

  config.evals.tasks = dict(kind="tasks", every_steps=1500, split="validation",
                            num_examples=128, batch_size=16, report=True)
  config.evals.grit = dict(kind="grit", every_steps=0, grit_dir="/data/grit",
                           split="ablation", tasks="", num_examples=100, batch_size=16)

An evaluator is anything with this small protocol (plain duck typing):

  name: str                     its key in config.evals
  every_steps: int              run every that many steps (0: only after the last step)
  run(params, step, log) -> Dict[str, float]
                                evaluates the parameters at `step`, logs its lines and
                                TensorBoard scalars through `log` (common.run_log.Log) and
                                returns its named metrics; every host calls it
  has_report(step) -> str|None  the report a finished run already wrote for `step`, so that
                                rerunning a finished run does not redo it

`kind` picks the plug-in from EVALUATORS ("tasks": the registered tasks of the training
mixture or of `tasks`; "grit": GRIT sample files). Every setting is checked by `build`
before anything is compiled. Evaluation is split across hosts (eval/host_split.py).
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

import ml_collections

from unified_io.data import from_config
from unified_io.data.tasks import registry as tasks_lib
from unified_io.eval import host_split
from unified_io.eval import predictor as predictor_lib
from unified_io.eval import results as results_lib
from unified_io.eval import task_eval
from unified_io.eval.grit import runner as grit_runner

TASK_DEFAULTS = dict(
  kind="tasks",
  every_steps=0,
  split="validation",
  num_examples=32,
  batch_size=16,
  report=True,
  tasks="",
)
# batch_size: GRIT samples per model call on each host (1: one at a time; same submission).
GRIT_DEFAULTS = dict(
  kind="grit",
  every_steps=0,
  grit_dir="",
  split="ablation",
  tasks="",
  num_examples=0,
  batch_size=16,
)


class EvaluatorError(ValueError):
  """A config.evals entry that cannot run; the message names the key."""


def _settings(name: str, entry, defaults: dict) -> ml_collections.ConfigDict:
  values = dict(entry)
  unknown = sorted(set(values) - set(defaults))
  if unknown:
    raise EvaluatorError(
      f"config.evals.{name}: unknown keys {unknown}; "
      f"{defaults['kind']} evaluators take {sorted(defaults)}"
    )
  merged = ml_collections.ConfigDict({**defaults, **values})
  if not isinstance(merged.every_steps, int) or merged.every_steps < 0:
    raise EvaluatorError(
      f"config.evals.{name}.every_steps must be an int >= 0, got {merged.every_steps!r}"
    )
  return merged


class _Shared:
  """One predictor per trainer, whichever evaluators use it (it holds compiled decoders)."""

  def __init__(self, config):
    self.config, self.predictor = config, None

  def get(self, params):
    params = host_split.host_local_params(params)
    if self.predictor is None:
      self.predictor = predictor_lib.Predictor(self.config, params)
    self.predictor.params = params
    return self.predictor


class TaskEvaluator:
  """Registered tasks: metric beside a trivial baseline, loss, report with pictures."""

  def __init__(self, name: str, settings, config, workdir: str, shared: _Shared):
    self.name, self.settings, self.config, self.workdir = name, settings, config, workdir
    self.every_steps, self.shared = settings.every_steps, shared
    overrides = ml_collections.ConfigDict(config.to_dict())
    if settings.tasks:
      overrides.data.tasks = settings.tasks
    try:
      self.task_names, _ = from_config.mixture_rates(overrides)
    except KeyError as e:
      raise EvaluatorError(f"config.evals.{name}: {e.args[0]}") from None
    for task_name in self.task_names:
      task = tasks_lib.get(task_name)
      if settings.split not in task.splits:
        raise EvaluatorError(
          f"config.evals.{name}.split={settings.split!r}: task {task_name} "
          f"has splits {sorted(task.splits)}"
        )
    if settings.num_examples < 1 or settings.batch_size < 1:
      raise EvaluatorError(f"config.evals.{name}: num_examples and batch_size must be >= 1")

  def _report_dir(self, step):
    return os.path.join(
      self.workdir, "eval" if self.name == "tasks" else f"eval_{self.name}", f"step_{step}"
    )

  def run(self, params, step, log):
    s = self.settings
    predictor = self.shared.get(params)
    log.line(
      f"Evaluating {len(self.task_names)} tasks on {s.split} ({s.num_examples} "
      f"examples each) at step {step}"
    )
    results = task_eval.evaluate(
      predictor,
      self.task_names,
      split=s.split,
      num_examples=s.num_examples,
      batch_size=s.batch_size,
      seed=from_config.eval_seed(self.config),
      data_dir=self.config.data.get("data_dir") or None,
      max_depth=self.config.data.max_depth,
      progress=log.line,
      shard=host_split.shard(),
    )
    log.scalars(
      step,
      task_eval.scalars(results, prefix="eval/" if self.name == "tasks" else f"eval_{self.name}/"),
    )
    log.line(f"Evaluation at step {step}: {results_lib.headline(results)}")
    if s.report and log.main:
      path = task_eval.write(results, self._report_dir(step), step, predictor.spec)
      log.line(f"Report: {path}")
    return task_eval.scalars(results, prefix="")

  def has_report(self, step) -> Optional[str]:
    path = os.path.join(self._report_dir(step), "report.md")
    return path if self.settings.report and os.path.exists(path) else None


class GritEvaluator:
  """GRIT sample files: the leaderboard submission, scored where samples carry answers."""

  def __init__(self, name: str, settings, config, workdir: str, shared: _Shared):
    self.name, self.settings, self.config, self.workdir = name, settings, config, workdir
    self.every_steps, self.shared = settings.every_steps, shared
    try:
      self.tasks = grit_runner.parse_tasks(settings.tasks)
      grit_runner.check_split(settings.split)
    except ValueError as e:
      raise EvaluatorError(f"config.evals.{name}: {e}") from None
    if not settings.grit_dir or not os.path.isdir(os.path.join(settings.grit_dir, "samples")):
      raise EvaluatorError(
        f"config.evals.{name}.grit_dir={settings.grit_dir!r} must be a GRIT folder with samples/"
      )
    if not isinstance(settings.batch_size, int) or settings.batch_size < 1:
      raise EvaluatorError(
        f"config.evals.{name}.batch_size must be an int >= 1, got {settings.batch_size!r}"
      )

  def _out(self, step):
    return os.path.join(
      self.workdir, f"grit_{self.name}" if self.name != "grit" else "grit", f"step_{step}"
    )

  def run(self, params, step, log):
    predictor = self.shared.get(params)
    s = self.settings
    log.line(f"GRIT {s.split} ({', '.join(self.tasks)}) at step {step}")
    out = self._out(step)
    split_dir, metrics = grit_runner.predict_grit(
      predictor,
      s.grit_dir,
      s.split,
      self.tasks,
      out,
      s.num_examples or None,
      from_config.eval_seed(self.config),
      progress=log.line,
      shard=host_split.shard(),
      batch_size=s.batch_size,
    )
    log.scalars(step, {f"{self.name}/{k}": v for k, v in metrics.items()})
    log.line(f"GRIT submission: {split_dir}")
    return metrics

  def has_report(self, step) -> Optional[str]:
    path = os.path.join(self._out(step), self.settings.split)
    return path if os.path.isdir(path) else None


EVALUATORS: Dict[str, tuple] = {
  "tasks": (TASK_DEFAULTS, TaskEvaluator),
  "grit": (GRIT_DEFAULTS, GritEvaluator),
}


def build(config, workdir: str) -> List:
  """The evaluators of config.evals, every setting checked (EvaluatorError otherwise)."""
  evals = config.get("evals", None) or {}
  shared = _Shared(config)
  out = []
  for name in sorted(evals):
    entry = evals[name]
    kind = entry.get("kind", name)
    if kind not in EVALUATORS:
      raise EvaluatorError(
        f"config.evals.{name}.kind={kind!r}: evaluators are {', '.join(sorted(EVALUATORS))}"
      )
    defaults, make = EVALUATORS[kind]
    out.append(make(name, _settings(name, entry, defaults), config, workdir, shared))
  return out
