"""Evaluate a checkpoint: predictions, metrics beside baselines, and a visual report.

  python -m unified_io.evaluate --workdir=workdir/tiny
  python -m unified_io.evaluate --workdir=workdir/tiny --split=test --num_examples=200 \
      --tasks=builtin_vqa,builtin_depth --out=workdir/tiny/eval_test
  python -m unified_io.evaluate --config=configs/tiny.py --checkpoint=PATH --out=DIR
  python -m unified_io.evaluate --benchmark=grit --workdir=workdir/tiny --grit_dir=GRIT \
      --split=ablation --tasks=vqa,refexp --num_examples=100 --out=workdir/tiny/grit

--workdir reads WORKDIR/config.json and the latest checkpoint; --config and --checkpoint
override either. Writes OUT/metrics.json, OUT/predictions.jsonl, OUT/report.md and one
PNG per task group (default OUT: WORKDIR/eval_<split>). --benchmark=grit runs GRIT's
sample files instead (unified_io/eval/grit/runner.py): --split is ablation (default) or test,
--tasks GRIT task names (default all seven), --num_examples a limit per task (default
none), --batch_size samples per model call (1: one at a time, the reference; the same
submission either way); writes the submission OUT/<split>/ + OUT/<split>.zip, and
OUT/metrics.json when the samples carry ground truth (default OUT: WORKDIR/grit).
--benchmark=paper runs the paper's Table 6 benchmarks that are prepared in the config's
data_dir (unified_io/eval/paper_benchmarks.py): whole splits unless --num_examples says
otherwise, --tasks picks benchmarks by name; prints the table beside the paper's numbers for
the model's size and lists the missing ones with their prepare commands (default OUT:
WORKDIR/paper_benchmarks).

  python -m unified_io.evaluate --benchmark=paper --workdir=W
  python -m unified_io.evaluate --benchmark=paper --config=configs/xl.py \
      --checkpoint=converted/xl --config.data.data_dir=DATA_DIR
"""

import json
import os

from absl import app
from absl import flags
import numpy as np
from ml_collections import config_flags

from unified_io.common import checkpointing
from unified_io.common import compile_cache
from unified_io.train import config_check
from unified_io.eval import results as results_lib
from unified_io.eval import paper_benchmarks
from unified_io.eval import task_eval as evaluation
from unified_io.eval.grit import runner as grit_eval
from unified_io.eval import predictor as predictor_lib
from unified_io.data import from_config
from unified_io.data.tasks import registry as tasks_lib


def _jsonable(value):
  if isinstance(value, np.ndarray):
    return value.tolist()
  if isinstance(value, (np.integer, np.floating)):
    return value.item()
  if isinstance(value, dict):
    return {k: _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  return value


def write_predictions(results, path):
  with open(path, "w") as f:
    for name, r in results.items():
      for raw, pred in zip(r.examples.raws, r.predictions):
        f.write(
          json.dumps(
            {
              "task": name,
              "example_id": raw["meta"].get("example_id"),
              "prompt": raw["prompt"],
              "target": raw["target_text"],
              "prediction": pred["text"],
            }
          )
          + "\n"
        )


def check_request(task_names, split: str, num_examples: int, batch_size: int):
  """ValueError naming the flag when --num_examples, --batch_size or --split cannot be run:
  checked before any model is built."""
  if num_examples < 1:
    raise ValueError(f"--num_examples must be >= 1, got {num_examples}")
  if batch_size < 1:
    raise ValueError(f"--batch_size must be >= 1, got {batch_size}")
  for name in task_names:
    splits = tasks_lib.get(name).splits
    if split not in splits:
      raise ValueError(
        f"--split={split!r} is not a split of task {name}; its splits are {', '.join(splits)}"
      )


def _message(e: Exception) -> str:
  # str(KeyError) is the repr of its message; the message itself reads better.
  return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)


def load(config, checkpoint: str) -> predictor_lib.Predictor:
  """The predictor of `checkpoint` (workdir, step dir or converted params) for `config`;
  app.UsageError naming the input when there is none, it is corrupt or does not fit."""
  try:
    params = predictor_lib.load_params(config, checkpoint)
  except (OSError, ValueError) as e:  # CheckpointError is a ValueError
    raise app.UsageError(str(e)) from e
  return predictor_lib.Predictor(config, params)


def main(argv):
  checkpointing.quiet_library_logs()
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    compile_cache.enable(_COMPILATION_CACHE.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  if not _WORKDIR.value and not (_CONFIG.value and _CHECKPOINT.value):
    raise app.UsageError("Pass --workdir, or both --config and --checkpoint")
  try:  # a missing or bad config: one clear error, before anything is built
    config = config_check.command_config(_CONFIG.value, _WORKDIR.value)
  except config_check.ConfigError as e:
    raise app.UsageError(str(e)) from None
  checkpoint = _CHECKPOINT.value or _WORKDIR.value
  if not os.path.exists(checkpoint) and "://" not in checkpoint:
    raise app.UsageError(f"--checkpoint/--workdir {checkpoint} does not exist")
  if _BENCHMARK.value == "grit":
    return _grit(config, checkpoint)
  if _BENCHMARK.value == "paper":
    return _paper(config, checkpoint)
  out = _OUT.value or os.path.join(_WORKDIR.value or ".", f"eval_{_SPLIT.value}")
  if _TASKS.value:
    config.data.tasks = _TASKS.value
  try:
    task_names, _ = from_config.mixture_rates(config)
    check_request(task_names, _SPLIT.value, _NUM.value, _BATCH.value)
  except (KeyError, ValueError) as e:
    raise app.UsageError(_message(e)) from e
  predictor = load(config, checkpoint)
  print(f"Evaluating {len(task_names)} tasks from {checkpoint} on {_SPLIT.value}", flush=True)
  results = evaluation.evaluate(
    predictor,
    task_names,
    split=_SPLIT.value,
    num_examples=_NUM.value,
    batch_size=_BATCH.value,
    seed=from_config.eval_seed(config),
    data_dir=config.data.get("data_dir") or None,
    max_depth=config.data.max_depth,
    progress=lambda line: print(line, flush=True),
  )
  report = evaluation.write(results, out, spec=predictor.spec, max_depth=config.data.max_depth)
  write_predictions(results, os.path.join(out, "predictions.jsonl"))
  print(results_lib.headline(results), flush=True)
  print(f"Wrote {out}/metrics.json, predictions.jsonl and {report}")


def _grit(config, checkpoint):
  # Builtin defaults do not carry over: GRIT has no "validation" split, and a run is meant to
  # cover every sample unless --num_examples says otherwise.
  split = _SPLIT.value if flags.FLAGS["split"].present else "ablation"
  try:
    tasks, split = grit_eval.parse_tasks(_TASKS.value), grit_eval.check_split(split)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  if not _GRIT_DIR.value or not os.path.isdir(os.path.join(_GRIT_DIR.value, "samples")):
    raise app.UsageError(f"--grit_dir={_GRIT_DIR.value} must be a GRIT folder with samples/")
  limit = _NUM.value if flags.FLAGS["num_examples"].present else None
  if limit is not None and limit < 1:
    raise app.UsageError(f"--num_examples must be >= 1, got {limit}")
  if _BATCH.value < 1:
    raise app.UsageError(f"--batch_size must be >= 1, got {_BATCH.value}")
  predictor = load(config, checkpoint)
  grit_eval.run(
    predictor,
    _GRIT_DIR.value,
    split,
    tasks,
    _OUT.value or os.path.join(_WORKDIR.value or ".", "grit"),
    limit,
    from_config.eval_seed(config),
    batch_size=_BATCH.value,
  )


def _paper(config, checkpoint):
  # Whole splits unless --num_examples says otherwise; --tasks picks Table 6 columns by name.
  limit = _NUM.value if flags.FLAGS["num_examples"].present else None
  if limit is not None and limit < 1:
    raise app.UsageError(f"--num_examples must be >= 1, got {limit}")
  names = [n.strip() for n in _TASKS.value.split(",") if n.strip()]
  try:
    paper_benchmarks.select(names)  # a misspelt name fails before the checkpoint loads
    paper_benchmarks.suite(
      load(config, checkpoint),
      data_dir=config.data.get("data_dir") or None,
      out=_OUT.value or os.path.join(_WORKDIR.value or ".", "paper_benchmarks"),
      num_examples=limit,
      batch_size=_BATCH.value,
      seed=from_config.eval_seed(config),
      max_depth=config.data.max_depth,
      benchmarks=names,
      progress=lambda line: print(line, flush=True),
    )
  except ValueError as e:
    raise app.UsageError(str(e)) from e


if __name__ == "__main__":
  # Flags only when run as a program: the functions above are a library too.
  _CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (default: WORKDIR's).")
  _WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir (config + checkpoints).")
  _CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Workdir, step dir or converted params.")
  _TASKS = flags.DEFINE_string("tasks", "", "Comma-separated task names (default: the mixture's).")
  _SPLIT = flags.DEFINE_string("split", "validation", "Split to evaluate.")
  _NUM = flags.DEFINE_integer("num_examples", 64, "Examples per task.")
  _BATCH = flags.DEFINE_integer("batch_size", 16, "Examples per forward pass.")
  _OUT = flags.DEFINE_string("out", None, "Output directory.")
  _BENCHMARK = flags.DEFINE_enum(
    "benchmark",
    "builtin",
    ["builtin", "grit", "paper"],
    "builtin: registered tasks; grit: GRIT sample files; paper: Table 6's benchmarks.",
  )
  _GRIT_DIR = flags.DEFINE_string("grit_dir", None, "GRIT folder (images/, samples/...).")
  _COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache_dir", compile_cache.DEFAULT_DIR, compile_cache.FLAG_HELP
  )
  app.run(main)
