"""The trainer's preflight: every input the config names is there, or one list of what is not.

Without it a paper config fails one input at a time: the tokenizer after the imports, the
VQ-GAN after the model is built, each TFDS dataset when the pipeline first opens it (or
when the first evaluation runs, hours in). `check(config)` looks at all of them in seconds,
without importing the model, compiling or downloading anything, and returns one Missing
per absent input with what makes it. `run(config)` raises PreflightError with the whole
list; `python -m unified_io.train` prints it and exits 1.

Checked for data.source="mixture" (the synthetic copy task reads nothing):
- config.vocab.sentencepiece_model, config.vqgan.weights (config.json + params.msgpack),
  config.data.data_dir, config.init_from;
- for each task of the mixture (or of data.tasks), its TFDS builder exists and is prepared
  in data_dir with the task's train split and the splits of config.evals' task evaluators.
  The built-in dataset is built on first use (unified_io/data/builtin_dataset.py), so it
  counts as prepared;
- groups: a mixture sampled at the paper's group rates (mixtures.multitask_rates) that has
  no task for some of the paper's eight groups renormalises the others' rates. That is
  refused unless config.data.allow_missing_groups=True says it is intended.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

from unified_io.data import from_config
from unified_io.data.availability import BUILTIN_PREFIX, Missing, dataset_problem, exists
from unified_io.data.tasks import registry as tasks_lib
from vqgan import api as vqgan_api

TOKENIZER_HOWTO = (
  "copy T5's cc_all.32000 SentencePiece model there (tokenizers/README.md):\n"
  "mkdir -p {dir} && gsutil cp gs://t5-data/vocabs/cc_all.32000/sentencepiece.model {path}"
)
VQGAN_HOWTO = (
  "convert the official VQ-GAN (README \"VQ-GAN image tokenizer\"):\n"
  "python -m vqgan.convert --taming vqgan_imagenet_f16_16384/checkpoints/last.ckpt "
  "--out {path}   (taming-transformers' checkpoint; needs requirements-torch.txt)\n"
  "or, from a released checkpoint converted by `python -m unified_io.convert --out=CONV`:\n"
  "python -m vqgan.convert --unified-io CONV/vqgan.msgpack --out {path}"
)


class PreflightError(Exception):
  """Inputs are missing; the message lists all of them."""


def group_problem(groups_and_rates: Dict[str, float], mixture: str) -> Optional[Missing]:
  """The paper groups a group-rate mixture leaves empty, if any (else None).

  `groups_and_rates`: each group's total sampling rate in the mixture. The mixture samples
  at the paper's group rates when each present group's total is GROUP_RATES[group] over the
  sum of GROUP_RATES of the present groups (what mixtures.multitask_rates computes); other
  mixtures (uniform, proportional, pre-training) do not use the groups, so nothing is
  renormalised and None is returned.
  """
  present = [g for g, rate in groups_and_rates.items() if rate > 0]
  norm = sum(tasks_lib.GROUP_RATES[g] for g in present)
  if not present or any(
    abs(groups_and_rates[g] - tasks_lib.GROUP_RATES[g] / norm) > 1e-6 for g in present
  ):
    return None
  empty = [g for g in tasks_lib.GROUPS if g not in present]
  if not empty:
    return None
  rates = ", ".join(f"{g} {tasks_lib.GROUP_RATES[g]:g}" for g in empty)
  return Missing(
    f"mixture {mixture} has no task in {len(empty)} of the paper's {len(tasks_lib.GROUPS)} "
    f"task groups ({rates}); the other groups' rates would be renormalised to fill theirs",
    "if that is intended, pass --config.data.allow_missing_groups=True",
  )


def check(config) -> List[Missing]:
  """Every missing input of `config` (empty: all there). Fast: no model, no compile."""
  missing = []
  init_from = config.get("init_from", "")
  if init_from and not exists(init_from):
    missing.append(
      Missing(
        f"config.init_from={init_from} does not exist",
        "point it at a workdir or a `python -m unified_io.convert` output",
      )
    )
  if config.data.source != "mixture":
    return missing
  spm = config.vocab.sentencepiece_model
  if not exists(spm):
    missing.append(
      Missing(
        f"text tokenizer config.vocab.sentencepiece_model={spm}",
        TOKENIZER_HOWTO.format(dir=os.path.dirname(spm) or ".", path=spm),
      )
    )
  weights = config.vqgan.get("weights", "")
  vq_files = [os.path.join(weights, f) for f in (vqgan_api.CONFIG_FILE, vqgan_api.PARAMS_FILE)]
  absent = [f for f in vq_files if not exists(f)] if weights else ["(config.vqgan.weights)"]
  if absent:
    missing.append(
      Missing(
        f"VQ-GAN weights config.vqgan.weights={weights or '(empty)'}: no "
        f"{', '.join(os.path.basename(f) for f in absent)}",
        VQGAN_HOWTO.format(path=weights or "DIR"),
      )
    )
  data_dir = config.data.get("data_dir", "") or None
  try:
    names, rates = from_config.mixture_rates(config)
  except ValueError as e:  # a task without Task.size whose dataset cannot report one
    if config.data.get("prepared_only", False):  # nothing prepared: list every dataset
      from unified_io.data import mixtures

      names = mixtures.MIXTURES[config.data.mixture].candidates()
      missing += _dataset_problems(config, [tasks_lib.get(n) for n in names], data_dir)
      return missing
    return missing + [
      Missing(
        f"the rates of mixture {config.data.mixture}: {e}",
        "prepare that task's dataset, or set its Task.size",
      )
    ]
  tasks = [tasks_lib.get(n) for n in names]
  if (
    data_dir
    and not exists(data_dir)
    and any(not t.builder.startswith(BUILTIN_PREFIX) for t in tasks)
  ):
    missing.append(
      Missing(
        f"config.data.data_dir={data_dir} does not exist",
        f"mkdir -p {data_dir}, then build the datasets below into it",
      )
    )
  missing += _dataset_problems(config, tasks, data_dir)
  if not config.data.get("tasks", "") and not config.data.get("allow_missing_groups", False):
    totals: Dict[str, float] = {}
    for task, rate in zip(tasks, rates):
      totals[task.group] = totals.get(task.group, 0.0) + rate
    problem = group_problem(totals, config.data.mixture)
    if problem:
      missing.append(problem)
  return missing


def _with_extras(problem: Missing, builder_name: str) -> Missing:
  """`problem` plus what building the dataset needs beyond requirements.txt (catalogue)."""
  from unified_io.data import catalog

  extras = sorted({e for s in catalog.all_sources() if s.builder == builder_name for e in s.extras})
  if not extras:
    return problem
  names = ", ".join(catalog.EXTRAS[e] for e in extras)
  return Missing(
    problem.what,
    f"{problem.how}\n(building it needs {names}: run that with .venv-data/bin/python after "
    "`make data-setup`, docs/data.md)",
  )


def _dataset_problems(config, tasks, data_dir) -> List[Missing]:
  """What is missing of the datasets of `tasks`, one Missing per TFDS builder."""
  by_builder: Dict[str, List[tasks_lib.Task]] = {}
  for task in tasks:
    by_builder.setdefault(task.builder, []).append(task)
  eval_splits = {
    entry.get("split", "validation")
    for entry in config.get("evals", {}).values()
    if entry.get("kind", "tasks") == "tasks"
  }
  problems = []
  for builder_name, users in by_builder.items():
    splits = sorted({t.splits[k] for t in users for k in ("train", *eval_splits) if k in t.splits})
    problem = dataset_problem(builder_name, splits, data_dir, [t.name for t in users])
    if problem:
      problems.append(_with_extras(problem, builder_name))
  return problems


def message(missing: Sequence[Missing]) -> str:
  return (
    f"{len(missing)} input{'s' if len(missing) > 1 else ''} of this config "
    f"{'are' if len(missing) > 1 else 'is'} missing; nothing was built:\n"
    + "\n".join(str(m) for m in missing)
  )


def run(config):
  """Raises PreflightError listing every missing input of `config`."""
  missing = check(config)
  if missing:
    raise PreflightError(message(missing))
