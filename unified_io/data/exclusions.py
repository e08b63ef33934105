"""Applying an exclusion list of `python -m unified_io.data.clean_split` to training.

`exclude(stream, load(FILE))` (the trainer's --config.data.exclude_images=FILE) wraps each
task of a training MixtureStream whose split the list covers, so that a record of a listed
image raises SkipExample(REASON): the pipeline counts it per task like every other skip and
draws another record. Making the list (reading every split, matching images) is
clean_split.py's; this is the part the input pipeline needs.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Dict, List

from unified_io.data import image_keys
from unified_io.data import pipeline
from unified_io.data.tasks import registry as tasks_lib

FORMAT = "unified_io.clean_split/1"
REASON = "image in a validation or test split (clean_split)"


@dataclasses.dataclass(frozen=True)
class Exclusions:
  """A loaded exclusion list: per training split ("builder[split]"), the image names."""

  path: str
  splits: Dict[str, frozenset]
  records: Dict[str, int]  # the split's record count when the list was made


def load(path: str) -> Exclusions:
  """Reads an exclusion list `make` wrote; a clear error for anything else."""
  try:
    with open(path) as f:
      data = json.load(f)
  except FileNotFoundError:
    raise FileNotFoundError(
      f"exclusion list {path} does not exist: python -m unified_io.data.clean_split makes it"
    ) from None
  except json.JSONDecodeError as e:
    raise ValueError(f"exclusion list {path} is not JSON: {e}") from None
  if not isinstance(data, dict) or data.get("format") != FORMAT:
    found = data.get("format") if isinstance(data, dict) else type(data).__name__
    raise ValueError(f"exclusion list {path}: format {found!r}, expected {FORMAT!r}")
  entries = data["train_splits"]
  splits = {name: frozenset(entry["excluded"]) for name, entry in entries.items()}
  by_hash = [n for n, entry in entries.items() if entry["named_by"] == "dhash" and splits[n]]
  if by_hash and data["image_decoder"] != image_keys.image_decoder():
    raise ValueError(
      f"exclusion list {path} names images of {', '.join(by_hash)} by their hash as decoded "
      f"by {data['image_decoder']}, but TFDS decodes with {image_keys.image_decoder()} here: "
      "make the list in this environment"
    )
  return Exclusions(path, splits, {n: int(e["records"]) for n, e in entries.items()})


def skipping(task: tasks_lib.Task, names: frozenset) -> tasks_lib.Task:
  """`task` whose records of the named images raise SkipExample(REASON)."""
  inner = task.preprocess

  def preprocess(example, rng, ctx):
    if image_keys.identity(task.builder, example) in names:
      raise tasks_lib.SkipExample(REASON)
    return inner(example, rng, ctx)

  return dataclasses.replace(task, preprocess=preprocess)


def exclude(stream: pipeline.MixtureStream, exclusions: Exclusions) -> List[str]:
  """Makes a training stream skip (and count) the listed images; returns a line per task.

  Call it before batches are drawn. It refuses a stream that does not read training splits
  and a split whose record count differs from the one the list was made from."""
  lines = []
  for i, task in enumerate(stream.tasks):
    split = f"{task.builder}[{task.splits.get('train')}]"
    source = stream.sources[i]
    if not source.name.startswith(split):
      raise ValueError(
        f"{exclusions.path} applies to training splits; task {task.name} reads {source.name}"
      )
    if split not in exclusions.splits:
      lines.append(f"{task.name}: {split} is not in {exclusions.path} (not cleaned)")
      continue
    if task.record_filter is None and len(source) != exclusions.records[split]:
      raise ValueError(
        f"{exclusions.path} was made from {exclusions.records[split]:,} records of {split}, "
        f"which now has {len(source):,}: make the list again"
      )
    names = exclusions.splits[split]
    if names:
      stream.tasks[i] = skipping(task, names)
    lines.append(f"{task.name}: skips {len(names):,} training images listed in {exclusions.path}")
  return lines
