"""Everything the trainer and evaluators build from `config.data`, `config.vocab`, `config.vqgan`.

config.data keys:
  source: "synthetic" (the in-code copy task, for trainer tests) or "mixture".
  mixture: a name from `unified_io.data.mixtures` (e.g. "builtin_multitask").
  tasks: optional comma-separated task names; overrides the mixture (uniform rates).
  schedule: "rates" (shuffled blocks that meet the mixture's rates), "stratified" (the same
    rates, each example shape spread evenly over the stream, so that every host's share of
    every batch holds each shape in proportion: schedule.Schedule strata), "round_robin", or
    "stop_and_go" (the "rates" schedule with converged tasks thinned to every iter_gap-th
    slot by their validation loss: data/stop_and_go.py; settings in data.stop_and_go).
  stop_and_go: every_steps, num_examples, split, min_improvement, patience, max_degradation,
    iter_gap of schedule="stop_and_go" (stop_and_go.DEFAULTS: the paper's thresholds).
  curriculum: first_groups (comma-separated task groups), steps: the first `steps` training
    steps sample only the tasks of those groups, at their rates renormalised, then the whole
    mixture (schedule.Curriculum; with schedule "rates" or "stratified"; docs/training.md).
    first_groups="" or steps=0: off.
  workers, workers_kind: preprocessing workers per host, "thread" or "process"
    (data/process_workers.py: the same batches; benchmarks/README.md compares them).
  data_dir: TFDS data_dir ("" = TFDS default, ~/tensorflow_datasets).
  exclude_images: a `python -m unified_io.data.clean_split` exclusion list (JSON): training
    images that are also in a task's validation or test split are skipped and counted.
  prepared_only: sample only the mixture's tasks whose datasets are prepared in data_dir,
    at the mixture's rates recomputed over them (the trainer lists what it left out).
  max_depth: metres mapped to white in depth target images.
  paraphrase: sample prompt paraphrases instead of the official templates.
  conditioning: "prompt" (the templates' wording, as the released models) or "task_token"
    (the task's marker and the template's arguments only: tasks.registry.task_token); the
    evaluators read it from the run's config, so a model is asked the way it was trained.
  object_order: "random" (the paper: box lists and segmentation colours in a fresh random
    order per example) or "raster" (objects sorted by their boxes' top-left corners, so a
    target is one function of the image; vision_logic.raster_order).
  workers: preprocessing threads per host.
"""

from __future__ import annotations

import functools
import os
from typing import List, Optional, Tuple

import vqgan as vqgan_lib
from unified_io.common import vocab
from unified_io.common import text_tokenizer
from unified_io.data import exclusions
from unified_io.data import pipeline
from unified_io.data import schedule as schedule_lib
from unified_io.data import stop_and_go
from unified_io.data.tasks import registry as tasks_lib

# What config.data.schedule may be (config_check validates against this).
SCHEDULES = ("rates", "stratified", "round_robin", "stop_and_go")
# What config.data.workers_kind may be: preprocessing threads or processes.
WORKER_KINDS = ("thread", "process")
# config.data.curriculum's keys (configs/common.py), and the schedules it builds on: the rate
# schedules, which restart at the switch (round_robin has no rates to renormalise, and
# stop_and_go's gating would have to span the switch).
CURRICULUM_KEYS = ("first_groups", "steps")
CURRICULUM_SCHEDULES = ("rates", "stratified")


def tokenizer(config) -> text_tokenizer.TextTokenizer:
  path = config.vocab.sentencepiece_model
  if not os.path.exists(path) and "://" not in path:
    raise FileNotFoundError(
      f"config.vocab.sentencepiece_model={path} does not exist (see tokenizers/README.md)"
    )
  return text_tokenizer.TextTokenizer(
    path,
    config.vocab.image_codes,
    expected_text_size=config.vocab.text_pieces,
    num_location_bins=vocab.location_bins(config),
  )


def image_tokenizer(config) -> vqgan_lib.VQGAN:
  """The frozen VQ-GAN: trained weights from config.vqgan.weights."""
  weights = config.vqgan.get("weights", "")
  if not weights:
    raise ValueError(
      "config.vqgan.weights is empty: training on image targets needs a trained "
      "VQ-GAN directory (vqgan.save / python -m vqgan.convert)"
    )
  vq = vqgan_lib.load(weights)
  if vq.n_codes != config.vocab.image_codes:
    raise ValueError(
      f"VQ-GAN {weights} has {vq.n_codes} codes but config.vocab.image_codes is "
      f"{config.vocab.image_codes}"
    )
  if vq.grid_size**2 != config.lengths.image_targets:
    raise ValueError(
      f"VQ-GAN {weights} makes {vq.grid_size}x{vq.grid_size} codes but "
      f"config.lengths.image_targets is {config.lengths.image_targets}"
    )
  return vq


def task_context(config, spec: pipeline.ExampleSpec) -> tasks_lib.TaskContext:
  """How a run of `config` makes examples (its max_depth, conditioning and object order;
  configs saved before a key existed get its default): for evaluation and measurements of
  a trained run, so that they see the examples it trained on."""
  data = config.data
  return spec.context(
    data.get("max_depth", 10.0),
    conditioning=data.get("conditioning", "prompt"),
    object_order=data.get("object_order", "random"),
  )


def eval_seed(config) -> int:
  """The seed of a run's evaluation examples and sampled decoding: config.eval_seed, not
  the training seed, so that two training seeds are scored on the same examples. Configs
  saved before the key existed get 0 (their evaluation used config.seed)."""
  return int(config.get("eval_seed", 0))


def example_spec(config, vq: vqgan_lib.VQGAN) -> pipeline.ExampleSpec:
  return pipeline.ExampleSpec(
    tokenizer=tokenizer(config),
    text_inputs=config.lengths.text_inputs,
    text_targets=config.lengths.text_targets,
    input_image_size=config.model.image_size,
    patch_size=config.model.patch_size,
    target_image_size=vq.config.resolution,
    target_downsample=vq.config.downsample_factor,
  )


def mixture_rates(config) -> Tuple[List[str], List[float]]:
  names = [n.strip() for n in config.data.get("tasks", "").split(",") if n.strip()]
  if names:
    for name in names:
      tasks_lib.get(name)  # a clear KeyError for unknown names
    return names, [1.0 / len(names)] * len(names)
  from unified_io.data import mixtures

  keep = None
  if config.data.get("prepared_only", False):
    keep = mixtures.prepared_filter(_data_dir(config))
  rates = mixtures.rates(config.data.mixture, keep)
  names = sorted(rates)
  return names, [rates[n] for n in names]


def left_out(config) -> List[str]:
  """The mixture's tasks that `prepared_only` leaves out (empty when it is off)."""
  if config.data.get("tasks", "") or not config.data.get("prepared_only", False):
    return []
  from unified_io.data import mixtures

  kept = set(mixture_rates(config)[0])
  return [n for n in mixtures.MIXTURES[config.data.mixture].candidates() if n not in kept]


def _data_dir(config) -> Optional[str]:
  return config.data.get("data_dir", "") or None


# ------------------------------------------------------------------------------ curriculum


def _split_names(text: str) -> List[str]:
  """Comma-separated names, stripped, empty ones and repeats dropped, in order."""
  return list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))


def curriculum(config) -> Tuple[List[str], int]:
  """config.data.curriculum's (first groups, steps), unchecked (`curriculum_problems`);
  ([], 0) when it is absent (a config saved before the key existed)."""
  given = dict(config.get("data", {}).get("curriculum", None) or {})
  groups = given.get("first_groups", "")
  return (_split_names(groups) if isinstance(groups, str) else []), given.get("steps", 0)


def _tasks_label(config) -> str:
  """Where the run's tasks come from, for messages."""
  data = config.get("data", {})
  if _split_names(data.get("tasks", "")):
    return "config.data.tasks"
  return f"mixture {data.get('mixture', '')}" + (
    " with prepared_only" if data.get("prepared_only", False) else ""
  )


def _static_task_names(config) -> Optional[List[str]]:
  """The run's task names as far as known without reading data_dir (None: unknown)."""
  data = config.get("data", {})
  names = _split_names(data.get("tasks", ""))
  if names:
    return names
  from unified_io.data import mixtures

  mixture = data.get("mixture", "")
  return mixtures.MIXTURES[mixture].candidates() if mixture in mixtures.MIXTURES else None


def curriculum_problems(config, names: Optional[List[str]] = None, what: str = "") -> List[str]:
  """What is wrong with config.data.curriculum, one line each (empty: fine, or off).

  `names`: the run's tasks (`what` says what they are), whose groups the first groups must
  be; by default config.data.tasks or the mixture's candidates (config_check's static
  check: `stream` checks again over the tasks the run samples, after prepared_only)."""
  data = config.get("data", {})
  given = dict(data.get("curriculum", None) or {})
  found = []
  unknown = sorted(set(given) - set(CURRICULUM_KEYS))
  if unknown:
    found.append(
      f"config.data.curriculum: unknown keys {unknown}; it takes {list(CURRICULUM_KEYS)}"
    )
  groups, steps = curriculum(config)
  named = given.get("first_groups", "")
  if not isinstance(named, str):
    found.append(
      f"config.data.curriculum.first_groups={named!r} must be a string of comma-separated "
      f"task groups"
    )
  if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
    found.append(f"config.data.curriculum.steps={steps!r} must be an int >= 0 (0: off)")
    steps = 0
  if groups:
    if names is None:
      names, what = _static_task_names(config), _tasks_label(config)
    registered = tasks_lib.all_tasks()
    present = {registered[n].group for n in names or () if n in registered}
    mine = [g for g in tasks_lib.GROUPS if g in present]
    for group in groups:
      if group in present:
        continue
      if names is None:  # an unknown mixture (config_check names it): the groups only
        if group not in tasks_lib.GROUPS:
          found.append(
            f"config.data.curriculum.first_groups names {group!r}, which is not a task "
            f"group; groups: {', '.join(tasks_lib.GROUPS)}"
          )
        continue
      why = "not a task group" if group not in tasks_lib.GROUPS else "none of them is of it"
      found.append(
        f"config.data.curriculum.first_groups names {group!r} ({why}); the groups of "
        f"{what}: {', '.join(mine)}"
      )
  if steps > 0 and not groups and isinstance(named, str):
    found.append(
      f"config.data.curriculum.steps={steps} but config.data.curriculum.first_groups is "
      "empty: the first phase would have no task (name its groups, or set steps=0)"
    )
  if steps > 0 and groups:
    schedule = data.get("schedule", "rates")
    if schedule in SCHEDULES and schedule not in CURRICULUM_SCHEDULES:
      found.append(
        f"config.data.curriculum (steps={steps}) cannot be combined with "
        f"config.data.schedule={schedule!r}: a curriculum needs schedule "
        f"{' or '.join(map(repr, CURRICULUM_SCHEDULES))} (or config.data.curriculum.steps=0)"
      )
    if data.get("source", "mixture") != "mixture":
      found.append(
        f"config.data.curriculum (steps={steps}) needs config.data.source='mixture', not "
        f"{data.get('source')!r}: the synthetic copy task has no task groups"
      )
  return found


def _curriculum_plan(config, names: List[str]) -> Tuple[List[int], int]:
  """(indices of the first phase's tasks among `names`, the stream element of the switch)
  of config.data.curriculum, checked (ValueError), or ([], 0) when it is off."""
  groups, steps = curriculum(config)
  what = f"this run's {len(names)} tasks ({_tasks_label(config)})"
  found = curriculum_problems(config, names, what)
  if found:
    raise ValueError("; ".join(found))
  if not groups or not steps:
    return [], 0
  registered = tasks_lib.all_tasks()
  first = [i for i, n in enumerate(names) if registered[n].group in groups]
  return first, steps * config.train.batch_size


def curriculum_line(config, stream_: pipeline.MixtureStream) -> Optional[str]:
  """The plan of the stream's curriculum in one line (None without one)."""
  plan = stream_.schedule
  if not isinstance(plan, schedule_lib.Curriculum):
    return None
  groups, steps = curriculum(config)
  first = [plan.task_names[i] for i in plan.first]
  return (
    f"Curriculum: steps 1..{steps} (batch positions 0..{steps - 1}, stream elements "
    f"0..{plan.switch - 1}) on groups [{', '.join(groups)}] ({len(first)} tasks: "
    f"{', '.join(first)}), then all {len(plan.task_names)} tasks (config.data.curriculum)"
  )


def stream(
  config, spec: pipeline.ExampleSpec, split: str = "train", task_names: Optional[List[str]] = None
) -> pipeline.MixtureStream:
  names, rates = mixture_rates(config)
  schedule = config.data.get("schedule", "rates")
  if schedule not in SCHEDULES:
    raise ValueError(f"config.data.schedule={schedule!r}: choose one of {', '.join(SCHEDULES)}")
  first, switch = [], 0
  if task_names is not None:  # evaluation: the given tasks in turn
    names, rates, schedule = list(task_names), None, "round_robin"
  else:  # checked before the stream probes its sources
    first, switch = _curriculum_plan(config, names)
  out = pipeline.MixtureStream(
    names,
    rates,
    spec,
    seed=config.seed,
    split=split,
    data_dir=_data_dir(config),
    max_depth=config.data.get("max_depth", 10.0),
    paraphrase=config.data.get("paraphrase", False),
    conditioning=config.data.get("conditioning", "prompt"),
    object_order=config.data.get("object_order", "random"),
    round_robin=schedule == "round_robin",
    by_shape=schedule == "stratified",
  )
  if schedule == "stop_and_go":  # the trainer's stop_and_go.Controller adds the mode changes
    gap = stop_and_go.settings(config)["iter_gap"]
    out.schedule = stop_and_go.GatedSchedule(out.schedule, iter_gap=gap)
  if switch:  # config.data.curriculum: the first groups' tasks up to stream element `switch`
    out.schedule = schedule_lib.Curriculum(out.schedule, rates, first, switch)
  return out


LENGTH_PROBE_EXAMPLES = 32


def set_length_weights(
  stream_: pipeline.MixtureStream, rates: List[float], examples: int = LENGTH_PROBE_EXAMPLES
) -> str:
  """config.loss.normalization="tasks": weights every token of task t by L / l_t, where l_t
  is the task's mean target length (its first `examples` records) and L the rate-weighted
  mean of the l_t. Under the per-token loss a task's share of the gradient is then its rate,
  and all tokens of one task keep one weight, so no within-task choice between a short and
  a long target is tilted (as per-example normalization tilts it). Returns a log line."""
  lengths = [stream_.mean_target_tokens(i, examples) for i in range(len(stream_.tasks))]
  mean = sum(r * l for r, l in zip(rates, lengths)) / sum(rates)
  stream_.length_weights = [mean / max(length, 1e-9) for length in lengths]
  parts = [
    f"{t.name} {w:.3g}"
    for t, w in sorted(zip(stream_.tasks, stream_.length_weights), key=lambda tw: -tw[1])
  ]
  return (
    f"Loss weights by task length (config.loss.normalization=tasks, {examples} records each, "
    f"mean {mean:.1f} target tokens): " + ", ".join(parts)
  )


def _train_stream(config, spec, report=False, length_weights=None) -> pipeline.MixtureStream:
  """The training stream, with config.data.exclude_images applied (module level: a process
  worker builds its own copy from it). `length_weights`: the weights the parent's stream
  measured (config.loss.normalization="tasks"), so that workers do not probe again."""
  train = stream(config, spec)
  plan = curriculum_line(config, train)
  if plan and report:
    print(plan, flush=True)
  if config.get("loss", {}).get("normalization", "tokens") == "tasks":
    if length_weights is not None:
      train.length_weights = list(length_weights)
    else:
      line = set_length_weights(train, mixture_rates(config)[1])
      if report:
        print(line, flush=True)
  if config.data.get("exclude_images", ""):
    lines = exclusions.exclude(train, exclusions.load(config.data.exclude_images))
    if report:
      print("\n".join([f"data.exclude_images={config.data.exclude_images}:", *lines]), flush=True)
  return train


def train_batches(config, spec, process_index: int, process_count: int):
  """pipeline.Batches (config.data.workers_kind="thread") or process_workers.ProcessBatches
  ("process": the same batches from worker processes, no GIL)."""
  kind = config.data.get("workers_kind", "thread")
  if kind not in WORKER_KINDS:
    raise ValueError(f"config.data.workers_kind={kind!r}: choose one of {WORKER_KINDS}")
  train = _train_stream(config, spec, report=process_index == 0)
  if kind == "process":
    if config.data.get("schedule") == "stop_and_go":
      # The trainer changes the schedule of this process's stream; workers hold copies.
      raise ValueError(
        'config.data.workers_kind="process" cannot follow schedule="stop_and_go" '
        '(its mode changes reach only this process\'s stream): use workers_kind="thread"'
      )
    from unified_io.data import process_workers

    return process_workers.ProcessBatches(
      functools.partial(_train_stream, config, spec, length_weights=train.length_weights),
      config.train.batch_size,
      process_index,
      process_count,
      workers=config.data.get("workers", 2),
      stream=train,
    )
  return pipeline.Batches(
    train,
    config.train.batch_size,
    process_index,
    process_count,
    workers=config.data.get("workers", 2),
  )
