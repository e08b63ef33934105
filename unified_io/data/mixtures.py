"""Task mixtures: sampling rates computed from the task registry.

  python -m unified_io.data.mixtures --mixture=builtin_multitask

prints the rates as a table like the paper's Table 1 (group, task, size, rate within the
group, overall rate).

- Multi-task (paper §3.4, A.3): each group gets GROUP_RATES[group] (1/8, image synthesis
  3/16, dense labelling 1/16); within a group, tasks are sampled proportionally to
  size ** (1 / T) with T = 2. Groups without a task in the mixture are dropped and the rest
  renormalised.
- Pre-training (§3.3, A.2): text span denoising and masked image denoising equally; the
  text half split between pure text and V&L text.
- Alternatives: "uniform" over tasks and "proportional" to size. Round-robin scheduling is
  `config.data.schedule = "round_robin"` (pipeline.Schedule), after 12-in-1.
"""

from __future__ import annotations

import argparse
from typing import Callable, Dict, List, Optional

from unified_io.data.tasks import registry as tasks_lib

TEMPERATURE = 2.0


def task_size(task: tasks_lib.Task, data_dir: Optional[str] = None) -> int:
  """Train examples of a task: Task.size, else read from the prepared TFDS dataset."""
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
  names: List[str], temperature: float = TEMPERATURE, sizes: Optional[Dict[str, int]] = None
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


def pretraining_rates(text: str, vl_text: str, image: str) -> Dict[str, float]:
  return {text: 0.25, vl_text: 0.25, image: 0.5}


def _builtin_multitask() -> List[str]:
  from unified_io.data.tasks import builtin_vision as vision_tasks

  return list(vision_tasks.BUILTIN_TASK_NAMES) + [
    "builtin_entailment",
    "builtin_sentiment",
    "builtin_question_answering",
    "builtin_summarization",
    "builtin_masked_lm",
  ]


def _paper_multitask() -> List[str]:
  return [
    n for n, t in tasks_lib.all_tasks().items() if not t.builder.startswith("uio_builtin_scenes")
  ]


MIXTURES: Dict[str, Callable[[], Dict[str, float]]] = {
  "builtin_multitask": lambda: multitask_rates(_builtin_multitask()),
  "builtin_uniform": lambda: uniform_rates(_builtin_multitask()),
  "builtin_proportional": lambda: proportional_rates(_builtin_multitask()),
  "builtin_pretraining": lambda: pretraining_rates(
    "builtin_masked_lm", "builtin_vl_text_denoising", "builtin_image_denoising"
  ),
  "paper_multitask": lambda: multitask_rates(_paper_multitask()),
}


def rates(name: str) -> Dict[str, float]:
  if name not in MIXTURES:
    raise KeyError(f"Unknown mixture {name!r}; mixtures: {', '.join(sorted(MIXTURES))}")
  result = MIXTURES[name]()
  total = sum(result.values())
  if abs(total - 1.0) > 1e-6:
    raise ValueError(f"mixture {name}: rates sum to {total}, not 1")
  return result


def table(name: str) -> str:
  mixture = rates(name)
  all_tasks = tasks_lib.all_tasks()
  lines = [
    f"Mixture {name}: {len(mixture)} tasks",
    f"{'group':<22}{'task':<34}{'size':>10}{'in group':>10}{'overall':>10}",
  ]
  for group in tasks_lib.GROUPS:
    members = [n for n in mixture if all_tasks[n].group == group]
    if not members:
      continue
    group_rate = sum(mixture[n] for n in members)
    for n in sorted(members):
      lines.append(
        f"{group:<22}{n:<34}{task_size(all_tasks[n]):>10,}"
        f"{mixture[n] / group_rate:>10.1%}{mixture[n]:>10.2%}"
      )
    lines.append(f"{'':<22}{'(group total)':<34}{'':>10}{'':>10}{group_rate:>10.2%}")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--mixture", default="builtin_multitask", choices=sorted(MIXTURES))
  print(table(parser.parse_args(argv).mixture))


if __name__ == "__main__":
  main()
