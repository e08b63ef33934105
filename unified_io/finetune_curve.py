"""Learning-efficiency curves (GPV-1 §5.3): fine-tune on N examples of one task, for each N.

  python -m unified_io.finetune_curve --init_from=workdir/tiny --task=builtin_refexp \
      --examples=10,100,1000 --steps=300 --workdir=workdir/curve_refexp
  python -m unified_io.finetune_curve --init_from=converted/small --config=configs/small.py \
      --config.optimizer.lr=1e-3 --task=builtin_refexp --examples=10,100 --workdir=OUT

The config is --config (with any --config.KEY=VALUE overrides) or else INIT_FROM/config.json.
For each N, OUT/n<N>/ is a training workdir: the trainer starts from --init_from's
parameters (config.init_from: parameters only, a fresh optimiser), trains --steps steps on
the first N train records of --task and nothing else (unified_io/data/split_slice.py), then
evaluates --task and the other tasks (--other_tasks; default: the other tasks of the
config's mixture or data.tasks) on --split. The parameters before fine-tuning are
evaluated once, the same way, into OUT/before/. OUT gets curve.json, curve.md and
curve.png (unified_io/eval/learning_curve.py): the task's metric against N on a log axis
and the percent of each other task's metric retained (forgetting).

Rerunning skips every N whose OUT/n<N>/result.json exists and resumes an unfinished N from
its checkpoint; a result made with other settings (steps, task, evaluation) is refused,
naming them. Exit codes: 0 done, 1 refused (the message names the input), 128 + signal
when training was stopped by SIGTERM or SIGINT after saving (rerun to resume). One process.
"""

import json
import os
import sys
import time

from absl import app
from absl import flags
import jax
import ml_collections
from ml_collections import config_flags

from unified_io.common import checkpointing
from unified_io.common import run_log
from unified_io.data import from_config
from unified_io.data import pipeline
from unified_io.data import split_slice
from unified_io.data.tasks import registry as tasks_lib
from unified_io.eval import evaluators as evaluators_lib
from unified_io.eval import learning_curve
from unified_io.eval import predictor as predictor_lib
from unified_io.train import config_check
from unified_io.train import preflight
from unified_io.train import trainer

RESULT = "result.json"  # in OUT/before and OUT/n<N>: the evaluation, what made it
# The settings that decide the evaluation before fine-tuning (--steps does not).
BEFORE_KEYS = ("init_from", "task", "split", "eval_examples", "other_tasks")


class Refused(Exception):
  """A request that cannot run; the message names the flag or input."""


def parse_examples(text: str):
  """--examples "10,100,1000" -> [10, 100, 1000] (sorted, distinct); Refused otherwise."""
  try:
    ns = sorted({int(part) for part in text.split(",") if part.strip()})
  except ValueError:
    raise Refused(f"--examples={text!r}: want comma-separated integers, e.g. 10,100,1000") from None
  if not ns or ns[0] < 1:
    raise Refused(f"--examples={text!r}: want one or more integers >= 1")
  return ns


def other_tasks(config, task: str, flag: str):
  """--other_tasks: "" -> the config's mixture (or data.tasks) without `task`; "none" -> []."""
  if flag == "none":
    return []
  if flag:
    names = [n.strip() for n in flag.split(",") if n.strip()]
  else:
    names = from_config.mixture_rates(config)[0]
  for name in names:
    tasks_lib.get(name)  # KeyError naming the registered tasks
  return [n for n in names if n != task]


def eval_entry(settings: dict, batch_size: int) -> dict:
  tasks = ",".join([settings["task"], *settings["other_tasks"]])
  return dict(
    kind="tasks",
    every_steps=0,
    split=settings["split"],
    num_examples=settings["eval_examples"],
    batch_size=batch_size,
    report=True,
    tasks=tasks,
  )


def finetune_config(config, n: int, settings: dict, batch_size: int):
  """The trainer's config for N examples: init_from, the sliced task alone, --steps steps,
  one evaluation after the last step, only the last checkpoint kept."""
  out = ml_collections.ConfigDict(config.to_dict())
  out.init_from = settings["init_from"]
  out.data.tasks = split_slice.first_examples(settings["task"], n).name
  out.data.prepared_only = False
  out.train.total_steps = settings["steps"]
  out.checkpoint.keep = 1
  out.checkpoint.restore_step = 0
  out.evals = {"tasks": eval_entry(settings, batch_size)}
  return out


def _flat(tree, prefix=""):
  if not isinstance(tree, dict):
    return {prefix: tree}
  out = {}
  for key, value in tree.items():
    out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
  return out


def _made_by(settings: dict, config) -> dict:
  """What a result depends on: the curve's settings and the whole config it ran with."""
  return {"settings": settings, "config": json.loads(config.to_json_best_effort())}


def _done(directory: str, made_by: dict):
  """The metrics of a finished part of the curve, None if it has not run; Refused when it
  ran with other settings or another config (the differing keys named)."""
  path = os.path.join(directory, RESULT)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    saved = json.load(f)
  old, now = _flat(saved["made_by"]), _flat(json.loads(json.dumps(made_by)))
  differ = [
    f"{k} {old.get(k)!r}, now {now.get(k)!r}"
    for k in sorted(set(old) | set(now))
    if old.get(k) != now.get(k)
  ]
  if differ:
    raise Refused(
      f"{path} was made with other settings ({'; '.join(differ)}); use another --workdir "
      "or delete it"
    )
  return saved["tasks"]


def _save(directory: str, made_by: dict, metrics_json: str):
  with open(metrics_json) as f:
    tasks = json.load(f)["tasks"]
  with open(os.path.join(directory, RESULT), "w") as f:
    json.dump({"made_by": made_by, "tasks": tasks}, f, indent=1)
  return tasks


def evaluate_before(config, settings: dict, out: str, batch_size: int):
  """The metrics of --init_from's parameters (OUT/before/, the evaluator the trainer runs)."""
  directory = os.path.join(out, "before")
  before = ml_collections.ConfigDict(config.to_dict())
  before.evals = {"tasks": eval_entry(settings, batch_size)}
  made_by = _made_by({k: settings[k] for k in BEFORE_KEYS}, before)
  done = _done(directory, made_by)
  if done is not None:
    print(f"finetune_curve: before fine-tuning: already evaluated ({directory})", flush=True)
    return done
  try:
    params = predictor_lib.load_params(config, settings["init_from"])
  except (OSError, ValueError) as e:  # no checkpoint, a corrupt one, or another model's
    raise Refused(f"--init_from={settings['init_from']}: {e}") from e
  (evaluator,) = evaluators_lib.build(before, directory)
  log = run_log.Log(directory, tensorboard=False)
  print("finetune_curve: evaluating the parameters before fine-tuning", flush=True)
  evaluator.run(params, 0, log)
  log.close()
  return _save(directory, made_by, os.path.join(directory, "eval", "step_0", "metrics.json"))


def finetune(config, n: int, settings: dict, out: str, batch_size: int):
  """Fine-tunes on N examples in OUT/n<N>/ (resuming) and returns its evaluation."""
  directory = os.path.join(out, f"n{n}")
  ft_config = finetune_config(config, n, settings, batch_size)
  made_by = _made_by(settings, ft_config)
  done = _done(directory, made_by)
  if done is not None:
    print(f"finetune_curve: N={n}: already done ({directory}/{RESULT}), skipped", flush=True)
    return done
  start = time.time()
  print(
    f"finetune_curve: N={n}: {settings['steps']} steps on the first {n} {settings['task']} "
    f"train examples -> {directory}",
    flush=True,
  )
  history = trainer.train(ft_config, directory, evaluators_lib.build(ft_config, directory))
  if history.signal is not None:
    sys.stdout.flush()
    sys.exit(128 + history.signal)
  step = settings["steps"]
  metrics = os.path.join(directory, "eval", f"step_{step}", "metrics.json")
  tasks = _save(directory, made_by, metrics)
  t = tasks[settings["task"]]
  print(
    f"finetune_curve: N={n}: {t['metric']} {t['score']:.3f} (baseline {t['baseline']:.3f}) "
    f"in {time.time() - start:.0f} s",
    flush=True,
  )
  return tasks


def check(config, settings: dict, examples, batch_size: int):
  """Every refusal before anything is built: task, config, inputs, N against the split."""
  try:
    task = tasks_lib.get(settings["task"])
  except KeyError as e:
    raise Refused(f"--task={settings['task']}: {e.args[0]}") from None
  if "train" not in task.splits or settings["split"] not in task.splits:
    raise Refused(
      f"--task={task.name} has splits {sorted(task.splits)}; it needs train and {settings['split']}"
    )
  if not os.path.exists(settings["init_from"]) and "://" not in settings["init_from"]:
    raise Refused(f"--init_from={settings['init_from']} does not exist")
  whole = ml_collections.ConfigDict(config.to_dict())
  whole.data.tasks = ",".join([task.name, *settings["other_tasks"]])
  whole.data.prepared_only = False
  whole.evals = {"tasks": eval_entry(settings, batch_size)}
  try:
    config_check.validate(whole)
    preflight.run(whole)
    evaluators_lib.build(whole, "/nonexistent")  # checks the evaluator's settings only
    config_check.validate_devices(whole, jax.device_count(), jax.process_count())
  except (config_check.ConfigError, preflight.PreflightError, evaluators_lib.EvaluatorError) as e:
    raise Refused(str(e)) from None
  data_dir = config.data.get("data_dir") or None
  for n in examples:
    sliced = split_slice.first_examples(task.name, n)
    try:
      pipeline.source(sliced.builder, sliced.splits["train"], data_dir, sliced.record_filter)
    except ValueError as e:
      raise Refused(f"--examples: N={n} for {task.name}: {e}") from None


def run(config, settings: dict, examples, out: str, batch_size: int) -> dict:
  """The whole curve; writes OUT/curve.json, curve.md and curve.png and returns the JSON."""
  check(config, settings, examples, batch_size)
  os.makedirs(out, exist_ok=True)
  before = evaluate_before(config, settings, out, batch_size)
  after = {}
  for i, n in enumerate(examples):
    print(f"finetune_curve: N={n} ({i + 1}/{len(examples)})", flush=True)
    after[n] = finetune(config, n, settings, out, batch_size)
  result = learning_curve.curve(settings, examples, before, after)
  with open(os.path.join(out, "curve.json"), "w") as f:
    json.dump(result, f, indent=1)
  with open(os.path.join(out, "curve.md"), "w") as f:
    f.write(learning_curve.markdown(result))
  learning_curve.draw(result).save(os.path.join(out, result["picture"]["file"]))
  print(f"finetune_curve: wrote {out}/curve.json, curve.md and curve.png", flush=True)
  return result


def _stop(text: str):
  sys.stdout.flush()
  sys.stderr.write(f"unified_io.finetune_curve: {text}\n")
  sys.exit(1)


def main(argv):
  checkpointing.quiet_library_logs()
  if len(argv) > 1:
    _stop(f"unexpected arguments: {argv[1:]}")
  for name in ("init_from", "task", "examples", "workdir"):
    if not flags.FLAGS[name].value:
      _stop(f"--{name} is required")
  try:
    examples = parse_examples(_EXAMPLES.value)
    if _STEPS.value < 1 or _EVAL_EXAMPLES.value < 1 or _EVAL_BATCH.value < 1:
      raise Refused("--steps, --eval_examples and --eval_batch_size must be >= 1")
    try:
      config = config_check.command_config(_CONFIG.value, _INIT_FROM.value)
    except config_check.ConfigError as e:
      raise Refused(f"--init_from: {e} (or pass --config)") from None
    try:
      others = other_tasks(config, _TASK.value, _OTHER_TASKS.value)
    except KeyError as e:
      raise Refused(f"--other_tasks: {e.args[0]}") from None
    settings = dict(
      init_from=_INIT_FROM.value,
      task=_TASK.value,
      steps=_STEPS.value,
      split=_SPLIT.value,
      eval_examples=_EVAL_EXAMPLES.value,
      other_tasks=others,
    )
    run(config, settings, examples, _WORKDIR.value, _EVAL_BATCH.value)
  except Refused as e:
    _stop(str(e))


if __name__ == "__main__":
  _CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (default: INIT_FROM's).")
  _INIT_FROM = flags.DEFINE_string("init_from", None, "Trained workdir or converted checkpoint.")
  _TASK = flags.DEFINE_string("task", None, "The task to fine-tune on, e.g. builtin_refexp.")
  _EXAMPLES = flags.DEFINE_string("examples", None, "Comma-separated N, e.g. 10,100,1000.")
  _STEPS = flags.DEFINE_integer("steps", 300, "Fine-tuning steps for every N.")
  _OTHER_TASKS = flags.DEFINE_string(
    "other_tasks", "", "Tasks evaluated for forgetting (default: the mixture's; none: none)."
  )
  _SPLIT = flags.DEFINE_string("split", "validation", "Split every evaluation reads.")
  _EVAL_EXAMPLES = flags.DEFINE_integer("eval_examples", 128, "Evaluation examples per task.")
  _EVAL_BATCH = flags.DEFINE_integer("eval_batch_size", 16, "Evaluation batch size.")
  _WORKDIR = flags.DEFINE_string("workdir", None, "OUT: one sub-workdir per N, and the curve.")
  app.run(main)
