"""Clean multi-task splits: leave out training images that any task evaluates on.

    python -m unified_io.data.clean_split --mixture=paper_multitask --data_dir=D --out=FILE
    python -m unified_io.train ... --config.data.exclude_images=FILE

Many of the mixture's datasets share pictures (COCO's under a dozen tasks, Flickr30k's under
captioning and SNLI-VE), so a model trained on one task's annotations of an image can be
evaluated on that image by another task. 12-in-1 (§2.2, Table 7) removes every test image
from all training sets; this does the same for every validation and test split that a task
of the mixture names (Task.splits other than "train"), leaving those splits as they are.

Making the list reads every record of every split involved, with progress lines: first the
validation and test splits (each image's shared ids and perceptual hash,
`unified_io.data.image_keys`), then each training split, matching its images by shared id
(same namespace and id) or, where image_keys says so, by hash (dHash within
MAX_HASH_DISTANCE bits and thumbnails within MAX_THUMB_RMS). It prints per task, in the
manner of 12-in-1's Table 7, the training images before, removed and after, and writes the
exclusion list as JSON: per training split, the names (`image_keys.local_id` or
`hash_name`) of the images to leave out, with the counts and settings they came from.

Applying it (unified_io/data/exclusions.py): `exclusions.exclude(stream,
exclusions.load(FILE))` wraps each task of a training MixtureStream whose split the list
covers, so that a record of a listed image raises SkipExample(exclusions.REASON): the
pipeline counts it per task like every other skip (its summary says "skipped N task
(image in a validation or test split (clean_split))") and draws another record. An epoch
draws each listed record at least once ("records removed" in the table; a fallback draw can
land on one again), and every such draw is skipped and counted.
"""

from __future__ import annotations

import argparse
import array
import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from absl import logging
import numpy as np

from unified_io.data import exclusions
from unified_io.data import image_keys
from unified_io.data import pipeline
from unified_io.data.tasks import registry as tasks_lib

PROGRESS_SECONDS = 15.0
CHUNK = 256  # records read per thread-pool round
HASH_BATCH = 4096  # train fingerprints matched at once


# --------------------------------------------------------------------------- the plan


@dataclasses.dataclass
class Split:
  """One split of one TFDS dataset and the tasks that read it."""

  builder: str
  split: str
  tasks: List[str] = dataclasses.field(default_factory=list)
  has_images: bool = True

  @property
  def name(self) -> str:
    return f"{self.builder}[{self.split}]"


def plan(task_names: Sequence[str], data_dir: Optional[str] = None):
  """(train splits, evaluation splits) of the tasks, each read once however many tasks
  share it. A split that is one task's training split and another's evaluation split
  cannot be cleaned and is refused, naming both."""
  train: Dict[Tuple[str, str], Split] = {}
  evaluation: Dict[Tuple[str, str], Split] = {}
  for name in task_names:
    task = tasks_lib.get(name)
    if "train" in task.splits:  # an evaluation-only task still names evaluation splits
      key = (task.builder, task.splits["train"])
      train.setdefault(key, Split(*key)).tasks.append(name)
    for role, split in task.splits.items():
      if role != "train" and split != task.splits.get("train"):
        key = (task.builder, split)
        if name not in evaluation.setdefault(key, Split(*key)).tasks:
          evaluation[key].tasks.append(name)
  for key in train.keys() & evaluation.keys():
    raise ValueError(
      f"{Split(*key).name} is the training split of {', '.join(train[key].tasks)} and an "
      f"evaluation split of {', '.join(evaluation[key].tasks)}: it cannot be cleaned"
    )
  for split in list(train.values()) + list(evaluation.values()):
    split.has_images = _has_images(split.builder, data_dir)
  return list(train.values()), list(evaluation.values())


def _has_images(builder: str, data_dir: Optional[str]) -> bool:
  import tensorflow_datasets as tfds

  features = tfds.builder(builder, data_dir=data_dir).info.features
  return "image" in features and isinstance(features["image"], tfds.features.Image)


def unprepared(task_names: Sequence[str], data_dir: Optional[str]) -> Dict[str, str]:
  """Task -> what is missing, for image tasks whose dataset lacks a split they name (text
  tasks are not read: their builder's features say they have no images)."""
  from unified_io.data import availability

  by_builder: Dict[str, List[str]] = collections.defaultdict(list)
  for name in task_names:
    by_builder[tasks_lib.get(name).builder].append(name)
  problems = {}
  for builder, names in by_builder.items():
    if not _has_images(builder, data_dir):
      continue
    splits = sorted({s for n in names for s in tasks_lib.get(n).splits.values()})
    missing = availability.dataset_problem(builder, splits, data_dir, names)
    if missing is not None:
      problems.update({n: str(missing) for n in names})
  return problems


# --------------------------------------------------------------------------- reading


def _progress(what: str, total: int, out: Callable[[str], None]):
  """A line now and then every PROGRESS_SECONDS: call the result with the records done."""
  start = last = time.perf_counter()
  out(f"{what}: reading {total:,} records")

  def update(done: int):
    nonlocal last
    now = time.perf_counter()
    if done == total:
      out(f"{what}: {total:,} records in {now - start:,.1f} s")
    elif now - last >= PROGRESS_SECONDS:
      last, rate = now, done / max(now - start, 1e-9)
      out(f"{what}: {done:,}/{total:,} records, {rate:,.0f}/s, {(total - done) / rate:,.0f} s left")

  return update


class _Undecoded:
  """Records of an ArrayRecord split with top-level images left encoded: most passes need
  only ids, and decoding every picture would take most of their time. `image` decodes a
  record's picture as the pipeline's RecordSource does (the same TFDS feature)."""

  def __init__(self, builder_name: str, split: str, data_dir: Optional[str]):
    import tensorflow_datasets as tfds

    builder = tfds.builder(builder_name, data_dir=data_dir)
    features = builder.info.features
    skip = {
      k: tfds.decode.SkipDecoding()
      for k, f in features.items()
      if isinstance(f, tfds.features.Image)
    }
    self.name = f"{builder_name}[{split}]"
    self._image = features["image"] if "image" in skip else None
    self._source = builder.as_data_source(split=split, decoders=skip)

  def __len__(self):
    return len(self._source)

  def __getitem__(self, index: int):
    try:
      return self._source[int(index)]
    except Exception as e:  # as pipeline.RecordSource: a corrupt record is a counted skip
      logging.warning("%s: record %d cannot be decoded: %s: %s", self.name, index, type(e), e)
      raise tasks_lib.SkipExample(f"undecodable record ({type(e).__name__})") from e

  def image(self, record) -> Optional[np.ndarray]:
    if self._image is None or record.get("image") is None:
      return None
    try:
      return self._image.decode_example_np(record["image"])
    except Exception as e:  # corrupt image bytes, counted like an undecodable record
      logging.warning("%s: an image cannot be decoded: %s: %s", self.name, type(e), e)
      raise tasks_lib.SkipExample(f"undecodable image ({type(e).__name__})") from e


def _records(split: Split, data_dir: Optional[str]):
  """(records, image of a record): ArrayRecord splits undecoded, TFRecord ones as
  pipeline.RecordSource reads them (every record decoded and held in memory)."""
  import tensorflow_datasets as tfds

  pipeline._ensure_builtin_built(split.builder, data_dir)  # as RecordSource does
  info = tfds.builder(split.builder, data_dir=data_dir).info
  if getattr(info.file_format, "value", info.file_format) == "array_record":
    records = _Undecoded(split.builder, split.split, data_dir)
    return records, records.image
  return pipeline.RecordSource(split.builder, split.split, data_dir), image_keys.image_of


@dataclasses.dataclass
class _Seen:
  """What a pass keeps of one record."""

  name: Optional[str]  # image_keys.local_id, else hash_name, else None (a flat image)
  ids: Tuple[str, ...]  # image_keys.shared_ids
  print_: Optional[image_keys.Fingerprint]
  hashed: bool  # a fingerprint was asked for (it is None for a flat image)
  filters: Tuple[object, ...]  # the record's values of the tasks' record_filter fields


def _read(split: Split, data_dir, hash_when, filter_fields, workers, out):
  """Yields a _Seen, or None for an unreadable record, for every record in order;
  `hash_when(shared ids)` says whether to fingerprint a record's picture."""
  records, image_of = _records(split, data_dir)
  progress = _progress(split.name, len(records), out)
  by_hash = image_keys.source_keys(split.builder).image_id is None

  def see(index: int):
    try:
      record = records[index]
      ids = image_keys.shared_ids(split.builder, record)
      name = image_keys.local_id(split.builder, record)
      hashed = by_hash or hash_when(ids)
      print_ = image_keys.fingerprint(image_of(record)) if hashed else None
    except tasks_lib.SkipExample:
      return None
    if name is None and print_ is not None:
      name = image_keys.hash_name(print_)
    filters = tuple(record.get(f) for f in filter_fields)
    return _Seen(name, ids, print_, hashed, filters)

  with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
    for start in range(0, len(records), CHUNK):
      yield from pool.map(see, range(start, min(start + CHUNK, len(records))))
      progress(min(start + CHUNK, len(records)))
  if not len(records):
    progress(0)


def _digest(name: str) -> int:
  """A 64-bit digest of an image name (never 0, which stands for "unnamed")."""
  value = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")
  return value or 1


# --------------------------------------------------------------------------- matching


@dataclasses.dataclass
class Evaluation:
  """The validation and test images: shared ids, and fingerprints in a HashIndex."""

  splits: List[Split]
  ids: Dict[str, int]  # shared id -> index of the first split holding it
  index: image_keys.HashIndex
  owner: np.ndarray  # split index of each fingerprint of the index
  stats: Dict[str, Dict[str, int]]


def read_evaluation(splits: Sequence[Split], data_dir, workers, out) -> Evaluation:
  ids: Dict[str, int] = {}
  hashes, thumbs, owner, stats = [], [], [], {}
  for i, split in enumerate(splits):
    if not split.has_images:
      continue
    count = collections.Counter()
    names = set()
    for seen in _read(split, data_dir, lambda ids: True, (), workers, out):
      count["records"] += 1
      if seen is None:
        count["unreadable"] += 1
        continue
      for key in seen.ids:
        ids.setdefault(key, i)
      if seen.print_ is None:
        count["too_flat"] += 1
      else:
        hashes.append(seen.print_.hash)
        thumbs.append(seen.print_.thumb)
        owner.append(i)
      if seen.name is not None:
        names.add(seen.name)
    count["images"] = len(names)
    stats[split.name] = {k: int(count[k]) for k in ("records", "images", "too_flat", "unreadable")}
  size = image_keys.THUMB_SIZE
  thumbs = np.stack(thumbs) if thumbs else np.zeros((0, size, size, 3), np.uint8)
  index = image_keys.HashIndex(hashes, thumbs)
  out(f"validation and test: {len(ids):,} shared ids, {len(index):,} hashed images")
  return Evaluation(list(splits), ids, index, np.asarray(owner, np.int64), stats)


def _filter_fields(split: Split) -> List[str]:
  return sorted(
    {f[0] for f in (tasks_lib.get(t).record_filter for t in split.tasks) if f is not None}
  )


@dataclasses.dataclass
class TrainResult:
  """One training split's images and the ones to leave out."""

  split: Split
  names: np.ndarray  # uint64 _digest of each record's image name (0: unnamed or unreadable)
  unreadable: np.ndarray  # bool per record
  filter_fields: List[str]
  filters: List[Tuple[object, ...]]  # each record's values of filter_fields
  excluded: Dict[str, Tuple[int, str]]  # image name -> (evaluation split, "id" or "hash")
  stats: Dict[str, int]


def match_train(split: Split, evaluation: Evaluation, data_dir, hash_all, workers, out):
  """Reads a training split, matching each image against the evaluation images."""
  keys = image_keys.source_keys(split.builder)
  fields = _filter_fields(split)
  names = array.array("Q")  # compact: a web corpus has tens of millions of records
  unreadable = bytearray()
  filters: List[Tuple[object, ...]] = []
  excluded: Dict[str, Tuple[int, str]] = {}
  count = collections.Counter()
  pending: List[Tuple[str, image_keys.Fingerprint]] = []

  def flush():
    if pending:
      found = evaluation.index.match([p.hash for _, p in pending], [p.thumb for _, p in pending])
      for (name, _), where in zip(pending, found):
        if where >= 0 and name not in excluded:
          excluded[name] = (int(evaluation.owner[where]), "hash")
      pending.clear()

  def hash_when(ids):
    return hash_all or keys.hash_train or not ids

  for seen in _read(split, data_dir, hash_when, fields, workers, out):
    count["records"] += 1
    unreadable.append(seen is None)
    if seen is None:
      count["unreadable"] += 1
      names.append(0)
      filters.append(())
      continue
    names.append(0 if seen.name is None else _digest(seen.name))
    filters.append(seen.filters)
    count["too_flat"] += seen.hashed and seen.print_ is None
    if seen.name is None:
      continue
    hit = next((evaluation.ids[k] for k in seen.ids if k in evaluation.ids), None)
    if hit is not None:
      excluded.setdefault(seen.name, (hit, "id"))
    elif seen.print_ is not None and len(evaluation.index):
      pending.append((seen.name, seen.print_))
      if len(pending) >= HASH_BATCH:
        flush()
  flush()
  stats = {k: int(count[k]) for k in ("records", "too_flat", "unreadable")}
  names = np.frombuffer(names, np.uint64) if names else np.zeros(0, np.uint64)
  unreadable = np.frombuffer(bytes(unreadable), np.uint8).astype(bool)
  return TrainResult(split, names, unreadable, fields, filters, excluded, stats)


def task_counts(result: TrainResult, task: tasks_lib.Task) -> Dict[str, int]:
  """The task's training images (distinct names; an unnamed flat image counts once per
  record), those removed, and its records removed (what the pipeline skips per epoch)."""
  keep = np.ones(len(result.names), bool)
  if task.record_filter is not None:
    field, value = task.record_filter
    slot = result.filter_fields.index(field)
    wanted = value.encode() if isinstance(value, str) else value
    keep = np.array([bool(f) and f[slot] == wanted for f in result.filters], bool)
  names, unreadable = result.names[keep], result.unreadable[keep]
  gone = np.array([_digest(n) for n in result.excluded], np.uint64)
  named = names[names != 0]
  hit = np.isin(named, gone)
  return {
    "images": len(np.unique(named)) + int(np.sum((names == 0) & ~unreadable)),
    "removed": len(np.unique(named[hit])),
    "records_removed": int(hit.sum()),
  }


# ------------------------------------------------------------------------ the whole run


@dataclasses.dataclass
class Cleaning:
  """What `make` found: per task its counts, per split what was read."""

  task_names: List[str]
  evaluation: Evaluation
  results: List[TrainResult]
  text_only: List[str]  # tasks whose training split has no images
  hash_all: bool

  def rows(self) -> List[Dict[str, object]]:
    rows = []
    for result in self.results:
      for name in result.split.tasks:
        row = {"task": name, "split": result.split.name}
        row.update(task_counts(result, tasks_lib.get(name)))
        rows.append(row)
    order = {n: i for i, n in enumerate(self.task_names)}
    return sorted(rows, key=lambda r: order[r["task"]])


def make(
  task_names: Sequence[str],
  data_dir: Optional[str] = None,
  hash_all: bool = False,
  workers: int = 2,
  out: Callable[[str], None] = print,
) -> Cleaning:
  """Reads every split of the tasks and finds the training images to leave out."""
  train, evaluation_splits = plan(task_names, data_dir)
  evaluation = read_evaluation(evaluation_splits, data_dir, workers, out)
  results, text_only = [], []
  for split in train:
    if not split.has_images:
      text_only += split.tasks
      continue
    result = match_train(split, evaluation, data_dir, hash_all, workers, out)
    out(f"{split.name}: {len(result.excluded):,} images also in a validation or test split")
    results.append(result)
  return Cleaning(list(task_names), evaluation, results, text_only, hash_all)


def write(cleaning: Cleaning, path: str, made_by: str) -> None:
  """Writes the exclusion list (and what it came from) as JSON, atomically."""
  train = {}
  for result in cleaning.results:
    where = collections.Counter(
      cleaning.evaluation.splits[i].name for i, _ in result.excluded.values()
    )
    how = collections.Counter(how for _, how in result.excluded.values())
    train[result.split.name] = dict(
      result.stats,
      tasks=result.split.tasks,
      named_by=image_keys.source_keys(result.split.builder).image_id or "dhash",
      removed_by_split=dict(sorted(where.items())),
      removed_by={"id": how["id"], "hash": how["hash"]},
      excluded=sorted(result.excluded),
    )
  k = image_keys
  data = {
    "format": exclusions.FORMAT,
    "made_by": made_by,
    "match": dict(
      hash=f"dHash of grey {k.HASH_ROWS}x{k.HASH_COLS} cell means, margin {k.HASH_MARGIN}",
      max_hash_distance=k.MAX_HASH_DISTANCE,
      thumb_size=k.THUMB_SIZE,
      max_thumb_rms=k.MAX_THUMB_RMS,
      hash_all=cleaning.hash_all,
    ),
    "image_decoder": k.image_decoder(),
    "tasks": cleaning.rows(),
    "text_only_tasks": cleaning.text_only,
    "evaluation_splits": cleaning.evaluation.stats,
    "train_splits": train,
  }
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(f"{path}.partial", "w") as f:
    json.dump(data, f, indent=1)
  os.replace(f"{path}.partial", path)  # never a half-written list under the final name


def table(cleaning: Cleaning, title: str) -> str:
  """Per task: training images before, removed and after (12-in-1's Table 7 layout)."""
  rows = cleaning.rows()
  width = max([len(r["task"]) for r in rows] + [4]) + 2
  split_width = max([len(r["split"]) for r in rows] + [11]) + 2
  lines = [
    title,
    f"{'task':<{width}}{'train split':<{split_width}}{'images':>10}{'removed':>10}"
    f"{'after':>10}{'% removed':>11}{'records removed':>17}",
  ]
  for r in rows:
    share = 100.0 * r["removed"] / r["images"] if r["images"] else 0.0
    lines.append(
      f"{r['task']:<{width}}{r['split']:<{split_width}}{r['images']:>10,}{r['removed']:>10,}"
      f"{r['images'] - r['removed']:>10,}{share:>10.2f}%{r['records_removed']:>17,}"
    )
  if cleaning.text_only:
    lines.append(f"Text only (no images): {', '.join(cleaning.text_only)}")
  how = collections.Counter(h for res in cleaning.results for _, h in res.excluded.values())
  stats = list(cleaning.evaluation.stats.values()) + [r.stats for r in cleaning.results]
  read = ", ".join(f"{n} ({s['images']:,} images)" for n, s in cleaning.evaluation.stats.items())
  lines += [
    f"Removed images matched by shared id: {how['id']:,}, by hash: {how['hash']:,}",
    f"Validation and test splits read: {read or 'none with images'}",
    f"Too flat to hash (not matched by hash): {sum(s['too_flat'] for s in stats):,} images; "
    f"unreadable records (skipped): {sum(s['unreadable'] for s in stats):,}",
  ]
  return "\n".join(lines)


# ------------------------------------------------------------------------------ command


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--mixture", default="builtin_multitask", help="unified_io.data.mixtures")
  parser.add_argument("--tasks", default="", help="comma-separated tasks instead of a mixture")
  parser.add_argument("--data_dir", default=None, help="TFDS data_dir (default: TFDS's)")
  parser.add_argument("--out", required=True, help="the exclusion list to write (JSON)")
  parser.add_argument("--prepared_only", action="store_true", help="leave out unprepared tasks")
  parser.add_argument("--hash_all", action="store_true", help="hash training images with ids too")
  parser.add_argument("--workers", type=int, default=2, help="reading threads")
  args = parser.parse_args(argv)
  import unified_io.data.tasks  # noqa: F401  registers every task (and builder)
  from unified_io.data import mixtures

  if args.tasks:
    names = [n.strip() for n in args.tasks.split(",") if n.strip()]
    for name in names:
      tasks_lib.get(name)
    what = f"tasks {', '.join(names)}"
  else:
    if args.mixture not in mixtures.MIXTURES:
      parser.error(f"unknown mixture {args.mixture!r}; mixtures: {', '.join(mixtures.MIXTURES)}")
    names = list(mixtures.MIXTURES[args.mixture].candidates())
    what = f"mixture {args.mixture}"
  problems = unprepared(names, args.data_dir)
  if problems and not args.prepared_only:
    print("Not prepared (or run with --prepared_only to leave these tasks out):", file=sys.stderr)
    print("\n".join(sorted(set(problems.values()))), file=sys.stderr)
    return 2
  if problems:
    print(f"--prepared_only: leaving out {len(problems)} tasks: {', '.join(sorted(problems))}")
    names = [n for n in names if n not in problems]
  cleaning = make(names, args.data_dir, args.hash_all, args.workers)
  title = f"Training images also in a validation or test split ({what})"
  print(table(cleaning, title))
  write(cleaning, args.out, " ".join(["python -m unified_io.data.clean_split"] + list(argv or [])))
  print(f"Wrote {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
