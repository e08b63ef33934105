"""Task-conditioning x decoding ablation of trained runs: one table, as the LiT-decoder study's.

  python -m unified_io.eval.ablation --workdir=workdir/prompt --workdir=workdir/task_token \
      --decodings=greedy,sample,beam4 [--tasks=builtin_vqa,builtin_depth] [--num_examples=64] \
      [--batch_size=16] [--split=validation] [--out=DIR]

Each --workdir is a training run: its saved config (WORKDIR/config.json, whose
data.conditioning says how its prompts name the task) and its latest checkpoint. Every run
is evaluated on its mixture's tasks that have a metric (or --tasks, which must all be in every
run's mixture) once per decoding strategy, on the same examples for every strategy: the
first --num_examples usable records of the split, as `python -m unified_io.evaluate` takes
them. The table has a row per task (its metric, its input-free baseline and the number of
examples) and a column per setting (run's conditioning / strategy), plus each setting's wall
time (prediction and scoring, compilation included). Written to OUT/ablation.md and
OUT/ablation.json (default OUT: the first WORKDIR/ablation) and printed.

Strategies (`parse_decodings`; what each output kind did with each is listed under the table):
  default  each output kind's own decoding, what the evaluators use (`unified_io.eval.outputs`):
           greedy text, option scoring for choices, top-p 0.9 image samples (the mean of
           REGRESSION_SAMPLES for depth and normals).
  greedy   the most likely token at every step: text, and image codes (argmax codes).
  sample   text drawn at temperature 1 from the whole distribution (top-k and top-p off);
           image codes as the kind's default (top-p 0.9 sampling, temperature 1).
  beamN    beam search over text with N beams (length penalty alpha BEAM_ALPHA). There is no
           beam search over image codes: image outputs are decoded greedily (argmax codes)
           and the table marks every such cell.
Under greedy, sample and beamN a choice task (classification) writes free text, scored
against its label, instead of picking the most likely of its options: the study's comparison
of decoding strategies with scoring (the default's option scoring).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from typing import Callable, Dict, List, Optional, Sequence

from absl import app
from absl import flags

from unified_io.common import checkpointing
from unified_io.data import concept_split
from unified_io.data import from_config
from unified_io.data.tasks import registry as tasks_lib
from unified_io.eval import outputs
from unified_io.eval import predictor as predictor_lib
from unified_io.eval import task_eval

# T5's length-penalty exponent (generation.generate_text's default): beamN is what
# `Predictor.text(method="beam")` decodes.
BEAM_ALPHA = 0.6
# Argmax image codes: temperature 0 takes the most likely code at every step (top-p 1.0
# keeps every code; the argmax is the same either way); one draw, as every draw is the same.
GREEDY_CODES = dict(temperature=0.0, top_p=1.0, num_samples=1)
STRATEGY_HELP = "default, greedy, sample, beamN (N >= 1 beams, e.g. beam4)"
_BEAM = re.compile(r"beam(\d+)")


@dataclasses.dataclass(frozen=True)
class Strategy:
  """One decoding strategy: overrides of the kinds' own decoding (None: the kind's own).

  text: `Predictor.text_with_scores` keyword arguments; image: `Predictor.image`'s.
  image_substitute: why image codes are decoded otherwise than `name` says ("" if they are not).
  """

  name: str
  text: Optional[Dict] = None
  image: Optional[Dict] = None
  image_substitute: str = ""


def parse_strategy(name: str) -> Strategy:
  """The strategy a --decodings entry names; ValueError naming it when there is none."""
  if name == "default":
    return Strategy(name)
  if name == "greedy":
    return Strategy(name, dict(method="greedy"), GREEDY_CODES)
  if name == "sample":
    return Strategy(name, dict(method="sample", temperature=1.0, top_k=0, top_p=1.0))
  beam = _BEAM.fullmatch(name)
  if beam and int(beam.group(1)) >= 1:
    text = dict(method="beam", num_beams=int(beam.group(1)), alpha=BEAM_ALPHA)
    return Strategy(name, text, GREEDY_CODES, "no beam search over image codes")
  raise ValueError(f"--decodings: unknown strategy {name!r}; strategies: {STRATEGY_HELP}")


def parse_decodings(text: str) -> List[Strategy]:
  """--decodings "greedy,sample,beam4" -> strategies, in order; ValueError naming a bad one."""
  names = [n.strip() for n in text.split(",") if n.strip()]
  if not names:
    raise ValueError(f"--decodings is empty; give one or more of: {STRATEGY_HELP}")
  repeated = sorted({n for n in names if names.count(n) > 1})
  if repeated:
    raise ValueError(f"--decodings names {', '.join(repeated)} more than once")
  return [parse_strategy(n) for n in names]


# ------------------------------------------------------------------- what a kind decodes


@dataclasses.dataclass(frozen=True)
class Plan:
  """How one output kind is decoded under one strategy, and how the table says so."""

  text_decoding: Optional[Dict]  # task_eval.predict's overrides (None: the kind's own)
  image_decoding: Optional[Dict]
  used: str  # what was decoded, e.g. "text: beam 4; image: argmax codes"
  substitute: str  # why the image part is not `strategy.name` ("" when it is)


def _own_text(kind: outputs.Kind) -> str:
  return {
    outputs.OPTIONS: "option scoring",
    outputs.GREEDY: "greedy",
    outputs.KEYPOINT_GREEDY: "greedy, not-visible masked",
    outputs.BOX_LIST_GREEDY: "greedy, EOS against all boxes",
  }[kind.text_decoding]


def _text_words(settings: Dict) -> str:
  if settings["method"] == "beam":
    return f"beam {settings['num_beams']} (alpha {settings['alpha']:g})"
  if settings["method"] == "sample":
    return (
      f"sampling (T {settings['temperature']:g}, top-k {settings['top_k'] or 'off'}, "
      f"top-p {'off' if settings['top_p'] >= 1.0 else settings['top_p']})"
    )
  return "greedy"


def _image_words(settings: Dict) -> str:
  if settings["temperature"] == 0:
    return "argmax codes"
  draws = settings["num_samples"]
  sampled = f"top-p {settings['top_p']:g} sample"
  return sampled if draws == 1 else f"mean of {draws} {sampled}s"


def plan(kind: outputs.Kind, strategy: Strategy) -> Plan:
  """What `strategy` decodes for an output kind; image-only kinds have no text to decode."""
  parts = []
  text = None
  if kind.text_decoding is not None:
    text = strategy.text
    if text is None:
      parts.append(f"text: {_own_text(kind)}")
    else:
      free = "free text, " if kind.text_decoding == outputs.OPTIONS else ""
      masked = {
        outputs.KEYPOINT_GREEDY: ", not-visible masked",
        outputs.BOX_LIST_GREEDY: ", EOS against all boxes",
      }.get(kind.text_decoding, "")
      parts.append(f"text: {free}{_text_words(text)}{masked}")
  image, substitute = None, ""
  if kind.image_decoding is not None:
    image = strategy.image
    substitute = strategy.image_substitute
    parts.append(f"image: {_image_words(image or dict(kind.image_decoding))}")
  return Plan(text, image, "; ".join(parts), substitute)


# --------------------------------------------------------------------------------- runs


@dataclasses.dataclass(frozen=True)
class Run:
  """A training workdir to evaluate: its saved config and the tasks to evaluate it on."""

  workdir: str
  config: object  # ml_collections.ConfigDict, WORKDIR/config.json
  conditioning: str
  task_names: tuple


def has_checkpoint(workdir: str) -> bool:
  """Whether WORKDIR/checkpoints holds a finished step (orbax writes a step into a
  temporary name and renames it to the bare step number when it is complete)."""
  folder = os.path.join(workdir, "checkpoints")
  return os.path.isdir(folder) and any(name.isdigit() for name in os.listdir(folder))


def load_run(workdir: str, tasks: Sequence[str] = ()) -> Run:
  """The run of `workdir`; ValueError naming the workdir when it has no config or
  checkpoint, its conditioning is unknown, or a task of `tasks` is not in its mixture."""
  if not os.path.isdir(workdir):
    raise ValueError(f"--workdir={workdir} does not exist")
  try:
    config = predictor_lib.load_config(workdir)  # names a missing or damaged config.json
  except (OSError, ValueError) as e:
    raise ValueError(f"--workdir={workdir}: {e}") from None
  conditioning = config.data.get("conditioning", "prompt")
  if conditioning not in tasks_lib.CONDITIONINGS:
    raise ValueError(
      f"--workdir={workdir}: its config.data.conditioning={conditioning!r} is not one of: "
      f"{', '.join(tasks_lib.CONDITIONINGS)}"
    )
  if not has_checkpoint(workdir):
    raise ValueError(
      f"--workdir={workdir} has no checkpoint (no step directory in "
      f"{os.path.join(workdir, 'checkpoints')}): train it first"
    )
  mixture, _ = from_config.mixture_rates(config)
  scored = [n for n in mixture if tasks_lib.get(n).metric is not None]
  for name in tasks:
    if name not in mixture:
      raise ValueError(
        f"--tasks: {name} is not in the mixture of --workdir={workdir} "
        f"(its tasks: {', '.join(mixture)})"
      )
    if name not in scored:
      raise ValueError(f"--tasks: {name} has no metric (a training-only task)")
  return Run(workdir, config, conditioning, tuple(tasks or scored))


def setting_labels(runs: Sequence[Run], strategies: Sequence[Strategy]) -> List[List[str]]:
  """Per run, per strategy: its column label, "conditioning / strategy"; runs that share a
  conditioning are told apart by their workdir."""
  shared = {
    r.conditioning for r in runs if [q.conditioning for q in runs].count(r.conditioning) > 1
  }
  labels = []
  for r in runs:
    who = f"{r.conditioning} ({r.workdir})" if r.conditioning in shared else r.conditioning
    labels.append([f"{who} / {s.name}" for s in strategies])
  return labels


def conditioning_note(run: Run, examples: task_eval.TaskExamples) -> str:
  """Why a task's prompts are not what the run's conditioning asks for ("" when they are).
  A guard: every registered task writes its prompts with Task.prompt or text.prompt, which
  put the marker first under task tokens; a preprocessor that writes a prompt some other way
  (keeping the template's words) is marked in the table instead of passing unnoticed."""
  if run.conditioning != "task_token":
    return ""
  # A held-out-concept variant makes its base's examples, so they carry the base's marker.
  token = tasks_lib.task_token(concept_split.base_task(examples.task).name)
  if all(raw["prompt"].startswith(token) for raw in examples.raws):
    return ""
  return (
    f"{examples.task.name}: its prompts do not start with its task token (they are written "
    "outside Task.prompt and text.prompt and keep the template's words)"
  )


def evaluate_run(
  run: Run,
  strategies: Sequence[Strategy],
  labels: Sequence[str],
  *,
  split: str,
  num_examples: int,
  batch_size: int,
  progress: Callable[[str], None] = print,
) -> List[dict]:
  """One cell per (strategy, task) of `run`: its score beside the baseline, the examples,
  the seconds and what was decoded. The examples are collected once for every strategy."""
  config = run.config
  predictor = predictor_lib.Predictor.from_workdir(run.workdir, config=config)
  max_depth, seed = config.data.max_depth, from_config.eval_seed(config)
  data_dir = config.data.get("data_dir") or None
  ctx = task_eval.task_context(predictor, split, max_depth)
  collected = {
    name: task_eval.collect(
      tasks_lib.get(name), predictor.spec, ctx, split, num_examples, seed, data_dir
    )
    for name in run.task_names
  }
  cells = []
  for k, (strategy, label) in enumerate(zip(strategies, labels)):
    progress(f"[{k + 1}/{len(strategies)}] {label} ({run.workdir}) ...")
    setting_start = time.time()
    for name, examples in collected.items():
      start = time.time()
      todo = plan(outputs.get(examples.task.output), strategy)
      preds = task_eval.predict(
        predictor,
        examples,
        batch_size,
        seed,
        image_decoding=todo.image_decoding,
        text_decoding=todo.text_decoding,
      )
      score = task_eval.score(examples, preds, predictor.spec, max_depth)
      cells.append(
        dict(
          setting=label,
          workdir=run.workdir,
          conditioning=run.conditioning,
          decoding=strategy.name,
          task=name,
          metric=score.metric,
          value=float(score.value),
          baseline=float(score.baseline),
          baseline_is=score.baseline_is,
          lower_is_better=score.lower_is_better,
          num_examples=len(examples.raws),
          seconds=time.time() - start,
          used=todo.used,
          substitute=todo.substitute,
          conditioning_note=conditioning_note(run, examples),
        )
      )
      progress(
        f"  {name}: {score.metric} {score.value:.4g} (baseline {score.baseline:.4g}), "
        f"{todo.used}, {len(examples.raws)} examples, {time.time() - start:.1f} s"
      )
    progress(f"  {label}: {len(collected)} tasks in {time.time() - setting_start:.1f} s")
  return cells


# -------------------------------------------------------------------------------- table


def _number(value: float) -> str:
  return f"{value:.4g}"


def _agreed(values: Sequence[str]) -> str:
  """One value when every run agrees, else each run's, in run order."""
  distinct = list(dict.fromkeys(values))
  return distinct[0] if len(distinct) == 1 else " / ".join(values)


def markdown(cells: Sequence[dict], settings: Sequence[str], title: str = "") -> str:
  """The table: a row per task (metric, baseline, examples), a column per setting, its
  seconds in the last row; footnotes say where a cell's decoding is not its column's
  strategy (image codes under beam search) or its prompts lack the task token."""
  by_task: Dict[str, Dict[str, dict]] = {}
  for cell in cells:
    by_task.setdefault(cell["task"], {})[cell["setting"]] = cell
  notes: Dict[str, int] = {}

  def mark(cell: dict) -> str:
    marks = []
    if cell["substitute"]:
      text = f"asked {cell['decoding']}, decoded {cell['used']}: {cell['substitute']}"
      marks.append(notes.setdefault(text, len(notes) + 1))
    if cell["conditioning_note"]:
      marks.append(notes.setdefault(cell["conditioning_note"], len(notes) + 1))
    return "".join(f" [{m}]" for m in marks)

  header = ["task", "metric", "baseline", "examples", *settings]
  lines = [title] if title else []
  lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for task, row in by_task.items():
    present = [row[s] for s in settings if s in row]
    first = present[0]
    per_run = list({c["workdir"]: c for c in present}.values())  # one cell per run
    metric = first["metric"] + (" (lower is better)" if first["lower_is_better"] else "")
    baseline = _agreed([_number(c["baseline"]) for c in per_run])
    count = _agreed([str(c["num_examples"]) for c in per_run])
    values = [_number(row[s]["value"]) + mark(row[s]) if s in row else "-" for s in settings]
    lines.append("| " + " | ".join([task, metric, baseline, count, *values]) + " |")
  seconds = [sum(c["seconds"] for c in cells if c["setting"] == s) for s in settings]
  lines.append("| seconds | | | | " + " | ".join(f"{t:.1f}" for t in seconds) + " |")
  if notes:
    lines += [""] + [f"[{n}] {text}" for text, n in notes.items()]
  used = {}
  for cell in cells:
    used.setdefault((cell["task"], cell["decoding"]), cell["used"])
  lines += ["", "Decoded per task and strategy:", ""]
  for (task, decoding), words in used.items():
    lines.append(f"- {task}, {decoding}: {words}")
  return "\n".join(lines) + "\n"


def write(cells: Sequence[dict], settings: Sequence[str], out_dir: str, meta: dict) -> str:
  """OUT/ablation.json (every cell, the settings and `meta`) and OUT/ablation.md; returns
  the markdown."""
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "ablation.json"), "w") as f:
    json.dump(dict(meta, settings=list(settings), cells=list(cells)), f, indent=1)
  title = (
    f"Ablation on {meta['split']}, up to {meta['num_examples']} examples per task "
    "(metric per task and setting: conditioning / decoding)\n"
  )
  text = markdown(cells, settings, title)
  with open(os.path.join(out_dir, "ablation.md"), "w") as f:
    f.write(text)
  return text


def run(
  workdirs: Sequence[str],
  decodings: str,
  *,
  tasks: Sequence[str] = (),
  split: str = "validation",
  num_examples: int = 64,
  batch_size: int = 16,
  out: Optional[str] = None,
  progress: Callable[[str], None] = print,
) -> str:
  """Every check first (strategies, workdirs, tasks, split and sizes), then each run under
  each strategy; writes the table into `out` (default: the first WORKDIR/ablation) and
  returns its markdown. ValueError naming the input that is wrong."""
  if not workdirs:
    raise ValueError("Pass one or more --workdir")
  repeated = sorted({w for w in workdirs if list(workdirs).count(w) > 1})
  if repeated:
    raise ValueError(f"--workdir {', '.join(repeated)} is given more than once")
  if num_examples < 1:
    raise ValueError(f"--num_examples must be >= 1, got {num_examples}")
  if batch_size < 1:
    raise ValueError(f"--batch_size must be >= 1, got {batch_size}")
  strategies = parse_decodings(decodings)
  runs = [load_run(w, tasks) for w in workdirs]
  for r in runs:
    for name in r.task_names:
      if split not in tasks_lib.get(name).splits:
        raise ValueError(f"--split={split!r} is not a split of task {name}")
  labels = setting_labels(runs, strategies)
  cells = []
  for r, run_labels in zip(runs, labels):
    cells += evaluate_run(
      r,
      strategies,
      run_labels,
      split=split,
      num_examples=num_examples,
      batch_size=batch_size,
      progress=progress,
    )
  out = out or os.path.join(workdirs[0], "ablation")
  meta = dict(split=split, num_examples=num_examples, workdirs=list(workdirs), decodings=decodings)
  text = write(cells, [s for row in labels for s in row], out, meta)
  progress(text)
  progress(f"Wrote {out}/ablation.md and {out}/ablation.json")
  return text


def main(argv):
  checkpointing.quiet_library_logs()
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    run(
      _WORKDIRS.value or [],
      _DECODINGS.value,
      tasks=[n.strip() for n in _TASKS.value.split(",") if n.strip()],
      split=_SPLIT.value,
      num_examples=_NUM.value,
      batch_size=_BATCH.value,
      out=_OUT.value,
      progress=lambda line: print(line, flush=True),
    )
  except ValueError as e:
    raise app.UsageError(str(e)) from None


if __name__ == "__main__":
  # Flags only when run as a program: the functions above are a library too.
  _WORKDIRS = flags.DEFINE_multi_string("workdir", None, "Training workdir (repeat for more).")
  _DECODINGS = flags.DEFINE_string("decodings", "greedy,sample,beam4", STRATEGY_HELP)
  _TASKS = flags.DEFINE_string("tasks", "", "Comma-separated tasks (default: the mixture's).")
  _SPLIT = flags.DEFINE_string("split", "validation", "Split to evaluate.")
  _NUM = flags.DEFINE_integer("num_examples", 64, "Examples per task.")
  _BATCH = flags.DEFINE_integer("batch_size", 16, "Examples per forward pass.")
  _OUT = flags.DEFINE_string("out", None, "Output directory (default: WORKDIR/ablation).")
  app.run(main)
