"""Task mixtures: sampling rates computed from the task registry and the dataset catalogue.

  python -m unified_io.data.mixtures --mixture=paper_multitask [--data_dir=D]

prints the rates as a table like the paper's Table 1. For paper_multitask it first prints
each of Table 1's tasks with its design rate (the paper's rule over the whole catalogue,
implemented or not: `catalog.paper_task_rates`) beside Table 1's rate column, then the rates
a run actually samples: over the implemented tasks, and over those that are also prepared
in D (what `--config.data.prepared_only=True` trains on).

- Multi-task (§3.3, A.3): each group gets GROUP_RATES[group] (1/8, image synthesis 3/16,
  dense labelling 1/16); within a group, tasks are sampled proportionally to
  size ** (1 / T) with T = 2. Groups without a task in the mixture are dropped and the rest
  renormalised (the trainer's preflight refuses that unless allow_missing_groups is set).
  Sizes of paper datasets are the catalogue's design sizes (`catalog.design_size`).
- Pre-training (§3.3, A.2): text span denoising and masked image denoising equally; the
  text half split between pure text and image+class/caption text; within each part,
  datasets in proportion to size.
- Alternatives: "uniform" over tasks and "proportional" to size. Round-robin scheduling is
  `config.data.schedule = "round_robin"` (schedule.Schedule), after 12-in-1; so is training
  some task groups first, then the whole mixture: `config.data.curriculum`
  (schedule.Curriculum, docs/training.md).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Callable, Dict, List, Optional

from unified_io.data import catalog
from unified_io.data import catalog_rows
from unified_io.data import concept_split
from unified_io.data.tasks import registry as tasks_lib

TEMPERATURE = catalog.TEMPERATURE
# A.2: text denoising and image denoising equally; text half pure text, half image+text.
PRETRAINING_SHARES = {
  catalog_rows.TEXT_DENOISING: 0.25,
  catalog_rows.VL_TEXT_DENOISING: 0.25,
  catalog_rows.IMAGE_DENOISING: 0.5,
}


def task_size(task: tasks_lib.Task, data_dir: Optional[str] = None) -> float:
  """Train examples of a task: the catalogue's design size, else Task.size, else TFDS's.
  A held-out-concept variant has its base task's (before filtering)."""
  task = concept_split.base_task(task)
  design = catalog.design_task_sizes(catalog_rows.SOURCES + catalog_rows.PRETRAINING)
  if task.name in design:
    return design[task.name]
  if task.size is not None:
    return int(task.size)
  if task.builder.startswith("uio_builtin_scenes"):
    from unified_io.data import builtin_dataset

    return builtin_dataset.BuiltinScenesConfig(name="default").split_sizes[0]  # train size
  import tensorflow_datasets as tfds

  try:
    builder = tfds.builder(task.builder, data_dir=data_dir)
    return int(builder.info.splits[task.splits["train"]].num_examples)
  except Exception as e:  # unknown or unprepared datasets raise several types
    raise ValueError(
      f"Task {task.name}: no size given and {task.builder} cannot report one "
      f"({type(e).__name__}; is it prepared in {data_dir}?); set Task.size"
    ) from e


def multitask_rates(
  names: List[str], temperature: float = TEMPERATURE, sizes: Optional[Dict[str, float]] = None
) -> Dict[str, float]:
  """Paper rates: group rate x size^(1/T) within the group, renormalised over groups."""
  all_tasks = tasks_lib.all_tasks()
  sizes = sizes or {n: task_size(all_tasks[n]) for n in names}
  groups: Dict[str, List[str]] = {}
  for name in names:
    groups.setdefault(all_tasks[name].group, []).append(name)
  total_group_rate = sum(tasks_lib.GROUP_RATES[g] for g in groups)
  rates = {}
  for group, members in groups.items():
    weights = {n: sizes[n] ** (1.0 / temperature) for n in members}
    norm = sum(weights.values())
    for n in members:
      rates[n] = tasks_lib.GROUP_RATES[group] / total_group_rate * weights[n] / norm
  return rates


def uniform_rates(names: List[str]) -> Dict[str, float]:
  return {n: 1.0 / len(names) for n in names}


def proportional_rates(names: List[str]) -> Dict[str, float]:
  all_tasks = tasks_lib.all_tasks()
  sizes = {n: task_size(all_tasks[n]) for n in names}
  total = sum(sizes.values())
  return {n: s / total for n, s in sizes.items()}


def builtin_pretraining_rates(names: List[str]) -> Dict[str, float]:
  shares = {
    "builtin_masked_lm": 0.25,
    "builtin_vl_text_denoising": 0.25,
    "builtin_image_denoising": 0.5,
  }
  norm = sum(shares[n] for n in names)
  return {n: shares[n] / norm for n in names}


def paper_pretraining_rates(names: List[str]) -> Dict[str, float]:
  """A.2's shares per objective, datasets in proportion to size within each; objectives
  without a task among `names` are dropped and the others renormalised."""
  all_tasks = tasks_lib.all_tasks()
  by_objective: Dict[str, List[str]] = {}
  for name in names:
    source = catalog.source_of(name, catalog_rows.PRETRAINING)
    by_objective.setdefault(source.paper_task, []).append(name)
  norm = sum(PRETRAINING_SHARES[o] for o in by_objective)
  rates = {}
  for objective, members in by_objective.items():
    sizes = {n: task_size(all_tasks[n]) for n in members}
    for n in members:
      rates[n] = PRETRAINING_SHARES[objective] / norm * sizes[n] / sum(sizes.values())
  return rates


def _builtin_multitask() -> List[str]:
  from unified_io.data.tasks import builtin_vision as vision_tasks

  return list(vision_tasks.BUILTIN_TASK_NAMES) + [
    "builtin_entailment",
    "builtin_sentiment",
    "builtin_question_answering",
    "builtin_summarization",
    "builtin_masked_lm",
  ]


@dataclasses.dataclass(frozen=True)
class Mixture:
  candidates: Callable[[], List[str]]  # the tasks it samples when all are there
  rates: Callable[[List[str]], Dict[str, float]]  # rates over any subset of them
  description: str


MIXTURES: Dict[str, Mixture] = {
  "builtin_multitask": Mixture(
    _builtin_multitask, multitask_rates, "every built-in task at the paper's rates"
  ),
  "builtin_uniform": Mixture(_builtin_multitask, uniform_rates, "built-in tasks, uniform"),
  "builtin_proportional": Mixture(
    _builtin_multitask, proportional_rates, "built-in tasks in proportion to size"
  ),
  "builtin_pretraining": Mixture(
    lambda: ["builtin_masked_lm", "builtin_vl_text_denoising", "builtin_image_denoising"],
    builtin_pretraining_rates,
    "the pre-training objectives on the built-in dataset",
  ),
  "builtin_sce": Mixture(
    lambda: concept_split.variants("builtin_sce"),
    multitask_rates,
    "COCO-SCE on the built-in scenes: triangle held out of VQA/captioning, square of "
    "categorization/localization (labels/builtin_sce.json)",
  ),
  "coco_sce": Mixture(
    lambda: concept_split.variants("coco_sce"),
    multitask_rates,
    "GPV-1's COCO-SCE: COCO VQA, captioning, categorization, localization and detection with "
    "held-out classes filtered from train/val (labels/coco_sce.json)",
  ),
  "paper_multitask": Mixture(
    catalog.implemented_tasks,
    multitask_rates,
    "Table 1's implemented datasets at the paper's rates (§3.3, A.3)",
  ),
  "paper_pretraining": Mixture(
    lambda: catalog.implemented_tasks(catalog_rows.PRETRAINING),
    paper_pretraining_rates,
    "the pre-training sources of A.2: text and image denoising",
  ),
}


def rates(name: str, keep: Optional[Callable[[str], bool]] = None) -> Dict[str, float]:
  """Mixture `name`'s rates, over the tasks `keep` accepts (default: all its tasks)."""
  if name not in MIXTURES:
    raise KeyError(f"Unknown mixture {name!r}; mixtures: {', '.join(sorted(MIXTURES))}")
  mixture = MIXTURES[name]
  names = [n for n in mixture.candidates() if keep is None or keep(n)]
  if not names:
    raise ValueError(f"mixture {name}: no task left to sample")
  result = mixture.rates(names)
  total = sum(result.values())
  if abs(total - 1.0) > 1e-6:
    raise ValueError(f"mixture {name}: rates sum to {total}, not 1")
  return result


def prepared_filter(data_dir: Optional[str]) -> Callable[[str], bool]:
  """A `keep` for `rates`: tasks whose dataset is prepared in data_dir (built-in always is)."""
  from unified_io.data import availability

  all_tasks = tasks_lib.all_tasks()
  cache: Dict[str, bool] = {}

  def keep(name: str) -> bool:
    task = all_tasks[name]
    if task.builder not in cache:
      problem = availability.dataset_problem(task.builder, [task.splits["train"]], data_dir, [name])
      cache[task.builder] = problem is None
    return cache[task.builder]

  return keep


def table(name: str, data_dir: Optional[str] = None, check_prepared: bool = False) -> str:
  mixture = rates(name)
  prepared = {}
  if check_prepared:
    try:
      prepared = rates(name, prepared_filter(data_dir))
    except ValueError:  # nothing prepared
      prepared = {}
  all_tasks = tasks_lib.all_tasks()
  lines = []
  if name == "paper_multitask":
    lines += _paper_task_lines() + [""]
  lines += [
    f"Mixture {name}: {len(mixture)} tasks ({MIXTURES[name].description})",
    f"{'group':<22}{'task':<36}{'size':>12}{'in group':>10}{'overall':>10}"
    + (f"{'prepared':>10}" if check_prepared else ""),
  ]
  for group in tasks_lib.GROUPS:
    members = [n for n in mixture if all_tasks[n].group == group]
    if not members:
      continue
    group_rate = sum(mixture[n] for n in members)
    for n in sorted(members):
      extra = ""
      if check_prepared:
        extra = f"{prepared[n]:>10.2%}" if n in prepared else f"{'-':>10}"
      lines.append(
        f"{group:<22}{n:<36}{task_size(all_tasks[n]):>12,.0f}"
        f"{mixture[n] / group_rate:>10.1%}{mixture[n]:>10.2%}{extra}"
      )
    extra = ""
    if check_prepared:
      extra = f"{sum(prepared.get(n, 0.0) for n in members):>10.2%}"
    lines.append(f"{'':<22}{'(group total)':<36}{'':>12}{'':>10}{group_rate:>10.2%}{extra}")
  empty = [g for g in tasks_lib.GROUPS if not any(all_tasks[n].group == g for n in mixture)]
  if empty and MIXTURES[name].rates is multitask_rates:
    lines.append(
      f"No task yet in {', '.join(empty)}: the other groups' rates are renormalised to fill "
      "theirs (training refuses this unless --config.data.allow_missing_groups=True)."
    )
  if check_prepared:
    where = data_dir or "the default TFDS data_dir"
    lines.append(
      f"prepared: the rates over the {len(prepared)} tasks whose datasets are prepared in "
      f"{where} (--config.data.prepared_only=True)"
    )
  return "\n".join(lines)


def _paper_task_lines() -> List[str]:
  design = catalog.paper_task_rates()
  lines = [
    "Table 1's tasks: design rate over the whole catalogue (implemented or not) vs Table 1",
    f"{'group':<22}{'paper task':<30}{'datasets':>9}{'implemented':>13}{'design':>9}{'Table 1':>9}",
  ]
  for name, paper in catalog_rows.PAPER_TASKS.items():
    rows = [s for s in catalog.table1_rows() if s.paper_task == name]
    implemented = sum(catalog.is_implemented(s) for s in rows)
    lines.append(
      f"{paper.group:<22}{name:<30}{paper.datasets:>9}{implemented:>13}"
      f"{100 * design[name]:>8.2f}%{paper.rate:>8.1f}%"
    )
  return lines


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--mixture", default="builtin_multitask", choices=sorted(MIXTURES))
  parser.add_argument(
    "--data_dir", default=None, help="also show the rates over the tasks prepared there"
  )
  args = parser.parse_args(argv)
  print(table(args.mixture, args.data_dir, check_prepared=args.mixture.startswith("paper_")))


if __name__ == "__main__":
  main()
