"""Everything the trainer and evaluators build from `config.data`, `config.vocab`, `config.vqgan`.

config.data keys:
  source: "synthetic" (the in-code copy task, for trainer tests) or "mixture".
  mixture: a name from `unified_io.data.mixtures` (e.g. "builtin_multitask").
  tasks: optional comma-separated task names; overrides the mixture (uniform rates).
  schedule: "rates" (shuffled blocks that meet the mixture's rates), "stratified" (the same
    rates, each example shape spread evenly over the stream, so that every host's share of
    every batch holds each shape in proportion: pipeline.Schedule strata), "round_robin", or
    "stop_and_go" (the "rates" schedule with converged tasks thinned to every iter_gap-th
    slot by their validation loss: data/stop_and_go.py; settings in data.stop_and_go).
  stop_and_go: every_steps, num_examples, split, min_improvement, patience, max_degradation,
    iter_gap of schedule="stop_and_go" (stop_and_go.DEFAULTS: the paper's thresholds).
  workers, workers_kind: preprocessing workers per host, "thread" or "process"
    (data/process_workers.py: the same batches; benchmarks/README.md compares them).
  data_dir: TFDS data_dir ("" = TFDS default, ~/tensorflow_datasets).
  exclude_images: a `python -m unified_io.data.clean_split` exclusion list (JSON): training
    images that are also in a task's validation or test split are skipped and counted.
  prepared_only: sample only the mixture's tasks whose datasets are prepared in data_dir,
    at the mixture's rates recomputed over them (the trainer lists what it left out).
  max_depth: metres mapped to white in depth target images.
  paraphrase: sample prompt paraphrases instead of the official templates.
  workers: preprocessing threads per host.
"""

from __future__ import annotations

import functools
import os
from typing import List, Optional, Tuple

import vqgan as vqgan_lib
from unified_io.common import vocab
from unified_io.common import text_tokenizer
from unified_io.data import clean_split
from unified_io.data import pipeline
from unified_io.data import stop_and_go
from unified_io.data.tasks import registry as tasks_lib

# What config.data.schedule may be (config_check validates against this).
SCHEDULES = ("rates", "stratified", "round_robin", "stop_and_go")
# What config.data.workers_kind may be: preprocessing threads or processes.
WORKER_KINDS = ("thread", "process")


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


def stream(
  config, spec: pipeline.ExampleSpec, split: str = "train", task_names: Optional[List[str]] = None
) -> pipeline.MixtureStream:
  names, rates = mixture_rates(config)
  schedule = config.data.get("schedule", "rates")
  if schedule not in SCHEDULES:
    raise ValueError(f"config.data.schedule={schedule!r}: choose one of {', '.join(SCHEDULES)}")
  if task_names is not None:  # evaluation: the given tasks in turn
    names, rates, schedule = list(task_names), None, "round_robin"
  out = pipeline.MixtureStream(
    names,
    rates,
    spec,
    seed=config.seed,
    split=split,
    data_dir=_data_dir(config),
    max_depth=config.data.get("max_depth", 10.0),
    paraphrase=config.data.get("paraphrase", False),
    round_robin=schedule == "round_robin",
    by_shape=schedule == "stratified",
  )
  if schedule == "stop_and_go":  # the trainer's stop_and_go.Controller adds the mode changes
    gap = stop_and_go.settings(config)["iter_gap"]
    out.schedule = stop_and_go.GatedSchedule(out.schedule, iter_gap=gap)
  return out


def _train_stream(config, spec, report=False) -> pipeline.MixtureStream:
  """The training stream, with config.data.exclude_images applied (module level: a process
  worker builds its own copy from it)."""
  train = stream(config, spec)
  if config.data.get("exclude_images", ""):
    lines = clean_split.exclude(train, clean_split.load(config.data.exclude_images))
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
      functools.partial(_train_stream, config, spec),
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
