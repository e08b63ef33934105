"""Leading slices of a split, TFDS style: "train[:N]" is the split's first N records.

A task whose `splits["train"]` is "train[:N]" trains on those N records only (of the ones
its `record_filter` keeps), every epoch the same N: `first_examples` registers such a copy
of a task, and `pipeline.source` serves the slice. Learning-efficiency curves
(`python -m unified_io.finetune_curve`) fine-tune on them.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Optional, Tuple

from unified_io.data.tasks import registry as tasks_lib

_SLICE = re.compile(r"^(?P<split>[^\[\]:]+)\[:(?P<n>\d+)\]$")


def parse(split: str) -> Tuple[str, Optional[int]]:
  """("train", 10) for "train[:10]", ("train", None) for "train"; ValueError otherwise."""
  if "[" not in split and "]" not in split:
    return split, None
  match = _SLICE.match(split)
  if match is None or int(match["n"]) < 1:
    raise ValueError(f"split {split!r}: only leading slices NAME[:N] with N >= 1 are supported")
  return match["split"], int(match["n"])


class First:
  """The first `n` records of `base` (a record source); ValueError when it has fewer."""

  def __init__(self, base, n: int):
    if n > len(base):
      raise ValueError(
        f"{base.name} has {len(base)} records, fewer than the {n} asked for ([:{n}])"
      )
    self.name = f"{base.name}[:{n}]"
    self._base, self._n = base, n

  def __len__(self):
    return self._n

  def __getitem__(self, index: int):
    if not 0 <= index < self._n:
      raise IndexError(f"{self.name}: record {index} outside [0, {self._n})")
    return self._base[index]


def first_examples_name(task_name: str, n: int) -> str:
  return f"{task_name}_first{n}"


def first_examples(task_name: str, n: int) -> tasks_lib.Task:
  """Registers (once) and returns task `task_name` restricted to its first `n` train records.

  Its name is `first_examples_name(task_name, n)`; everything but the train split is the
  task's own (validation and test stay whole). KeyError for an unknown task.
  """
  if n < 1:
    raise ValueError(f"{task_name}: the number of train examples must be >= 1, got {n}")
  task = tasks_lib.get(task_name)
  whole, already = parse(task.splits["train"])
  if already is not None:
    raise ValueError(f"{task_name}: its train split is already a slice, {task.splits['train']}")
  return tasks_lib.register(
    dataclasses.replace(
      task,
      name=first_examples_name(task_name, n),
      splits={**task.splits, "train": f"{whole}[:{n}]"},
    )
  )
