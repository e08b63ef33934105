"""From TFDS records to batches of unified examples: mixing, per-host sharding, exact resume.

Design: every element of the input stream is a pure function of (seed, element index).
Global batch p holds elements p * B ... p * B + B - 1; host h computes only its own rows.
So the stream does not depend on the number of hosts, hosts never read the same element,
and the iterator state is one integer (the batch position) that restores the stream
exactly, in O(1), with no tf.data iterator checkpoints.

- Task of element e, and which of that task's records it reads (unified_io/data/schedule.py):
  the mixture's rates are laid out as blocks of slots shuffled per block from (seed, block),
  every rate met exactly over a block ("round_robin" cycles through the tasks instead); the
  task's n-th draw, n = how many slots of that task precede e, reads record perm_epoch[n mod
  N] of a per-epoch permutation of the task's split: every record once per epoch.
- Records are read by random access: `tfds.data_source` for datasets prepared as
  ArrayRecord, otherwise the split's serialized records are held in memory (fine for the
  built-in dataset; large TFRecord datasets should be prepared with
  `--file_format=array_record`).
- A preprocessor's `SkipExample` is counted per (task, reason) and the element falls back
  to other records of the same task, chosen deterministically.

Target images stay pixels here ("image_target_pixels" in [-1, 1] at the VQ-GAN's
resolution); the train step tokenizes them with the frozen VQ-GAN, so the tokenizer
never runs on the input hosts.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import glob
import os
import threading
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from absl import logging
import numpy as np

from unified_io.common import image_preprocessing
from unified_io.common import rng_streams
from unified_io.common import text_tokenizer
from unified_io.data import schedule as schedule_lib
from unified_io.data import split_slice
from unified_io.data.tasks import registry as tasks_lib

# Records tried after a skipped one before giving up on an element. Tasks that use only
# part of a dataset need many: builtin_keypoints can use 35% of the scenes (those with a
# person), so 17 skips in a row come once in about 1500 draws (a long run hit it), while
# 101 in a row come once in about 1e19.
MAX_FALLBACKS = 100
MAX_IN_MEMORY_BYTES = 4 << 30


# --------------------------------------------------------------------------- record access


def _as_numpy_like(value, info):
  """Matches `tfds.as_numpy`: sequences become stacked arrays, strings stay bytes."""
  if isinstance(value, dict):
    return {k: _as_numpy_like(v, info[k]) for k, v in value.items()}
  dtype = np.dtype(object) if info.np_dtype == np.dtype(object) else np.dtype(info.np_dtype)
  if isinstance(value, list):
    if not value:
      return np.zeros((0,) + tuple(d or 0 for d in info.shape[1:]), dtype)
    if dtype == np.dtype(object):
      return np.asarray(value, dtype=object)
    return np.stack([np.asarray(v, dtype) for v in value])
  if isinstance(value, (int, float, np.integer, np.floating)) and dtype != np.dtype(object):
    return np.asarray(value, dtype)
  return value


class RecordSource:
  """Random access to one split of a TFDS dataset; items look like `tfds.as_numpy` output."""

  def __init__(self, builder_name: str, split: str, data_dir: Optional[str] = None):
    import tensorflow_datasets as tfds

    self.name = f"{builder_name}[{split}]"
    _ensure_builtin_built(builder_name, data_dir)
    try:
      builder = tfds.builder(builder_name, data_dir=data_dir)
    except Exception as e:  # tfds raises several types for unknown names and configs
      raise ValueError(
        f"Cannot open TFDS dataset {builder_name!r} in data_dir={data_dir}: {e}"
      ) from e
    if not builder.is_prepared():
      raise FileNotFoundError(
        f"TFDS dataset {builder_name} is not prepared in {builder.data_dir}; prepare it with "
        f"`python -m unified_io.data.prepare {builder_name} --data_dir=...` (docs/data.md)"
      )
    if split not in builder.info.splits:
      raise ValueError(
        f"{builder_name} has no split {split!r}; it has {sorted(builder.info.splits)}"
      )
    self._features = builder.info.features
    self._info = self._features.get_tensor_info()
    # A FileFormat enum (str() of which is "FileFormat.ARRAY_RECORD"), or None for TFRecord.
    file_format = getattr(builder.info, "file_format", None)
    if getattr(file_format, "value", file_format) == "array_record":
      self._source = builder.as_data_source(split=split)
      self._records = None
      self._length = len(self._source)
    else:
      self._source = None
      self._records = _read_tfrecords(builder, split)
      self._length = len(self._records)

  def __len__(self):
    return self._length

  def __getitem__(self, index: int):
    if not 0 <= index < self._length:
      raise IndexError(f"{self.name}: record {index} outside [0, {self._length})")
    try:
      if self._source is not None:
        example = self._source[int(index)]
      else:
        example = self._features.deserialize_example_np(self._records[index])
    except Exception as e:  # corrupt image bytes, truncated records: skip and count, named
      logging.warning(
        "%s: record %d cannot be decoded: %s: %s", self.name, index, type(e).__name__, e
      )
      raise tasks_lib.SkipExample(f"undecodable record ({type(e).__name__})") from e
    return _as_numpy_like(example, self._info)


def _read_tfrecords(builder, split: str) -> List[bytes]:
  import tensorflow as tf

  pattern = os.path.join(builder.data_dir, f"{builder.name}-{split}.tfrecord-*")
  files = sorted(glob.glob(pattern))
  if not files:
    raise FileNotFoundError(f"No TFRecord files match {pattern}")
  total = sum(os.path.getsize(f) for f in files)
  if total > MAX_IN_MEMORY_BYTES:
    raise ValueError(
      f"{builder.name}[{split}] is {total / 2**30:.1f} GiB of TFRecords, too big "
      f"to hold in memory for random access; prepare it with "
      f"--file_format=array_record"
    )
  return [record.numpy() for record in tf.data.TFRecordDataset(files)]


_BUILTIN = "uio_builtin_scenes"
_SOURCES: Dict[tuple, object] = {}
_SOURCES_LOCK = threading.Lock()


def _ensure_builtin_built(builder_name: str, data_dir: Optional[str]):
  """The built-in dataset needs no download: build it (default sizes) on first use."""
  if builder_name.split("/")[0] != _BUILTIN:
    return
  from unified_io.data import builtin_dataset

  config = builder_name.split("/")[1].split(":")[0] if "/" in builder_name else "scenes"
  if not builtin_dataset.UioBuiltinScenes(config=config, data_dir=data_dir).is_prepared():
    builtin_dataset.build(data_dir, config)


class FilteredSource:
  """The records of `base` whose `field` equals `value` (indexed once, by one pass)."""

  def __init__(self, base: RecordSource, field: str, value: str):
    self.name = f"{base.name}{{{field}={value}}}"
    self._base = base
    wanted = value.encode() if isinstance(value, str) else value
    self._indices, unreadable = [], 0
    for i in range(len(base)):
      try:
        if base[i].get(field) == wanted:
          self._indices.append(i)
      except tasks_lib.SkipExample:  # RecordSource logged it; it cannot match any filter
        unreadable += 1
    if unreadable:
      logging.warning("%s: left out %d undecodable records", self.name, unreadable)
    if not self._indices:
      raise ValueError(f"{base.name}: no record has {field} == {value!r}")

  def __len__(self):
    return len(self._indices)

  def __getitem__(self, index: int):
    return self._base[self._indices[index]]


def source(
  builder_name: str,
  split: str,
  data_dir: Optional[str] = None,
  record_filter: Optional[Tuple[str, str]] = None,
):
  whole, first = split_slice.parse(split)
  if first is not None:  # "train[:N]": the first N records that the filter keeps
    return split_slice.First(source(builder_name, whole, data_dir, record_filter), first)
  key = (builder_name, split, data_dir, record_filter)
  with _SOURCES_LOCK:
    if key not in _SOURCES:
      base_key = (builder_name, split, data_dir, None)
      if base_key not in _SOURCES:
        _SOURCES[base_key] = RecordSource(builder_name, split, data_dir)
      if record_filter is not None:
        _SOURCES[key] = FilteredSource(_SOURCES[base_key], *record_filter)
    return _SOURCES[key]


# ------------------------------------------------------------------------ unified examples


@dataclasses.dataclass(frozen=True)
class ExampleSpec:
  """Fixed shapes of the unified example, from the model config."""

  tokenizer: text_tokenizer.TextTokenizer
  text_inputs: int
  text_targets: int
  input_image_size: int
  patch_size: int
  target_image_size: int  # the VQ-GAN resolution
  target_downsample: int  # VQ-GAN pixels per code

  @property
  def target_grid(self) -> int:
    return self.target_image_size // self.target_downsample

  def context(
    self,
    max_depth: float,
    paraphrase: bool = False,
    conditioning: str = "prompt",
    object_order: str = "random",
  ) -> tasks_lib.TaskContext:
    """conditioning: tasks_lib.CONDITIONINGS (config.data.conditioning); object_order:
    tasks_lib.OBJECT_ORDERS (config.data.object_order)."""
    return tasks_lib.TaskContext(
      layout=self.tokenizer.layout,
      input_image_size=self.input_image_size,
      target_image_size=self.target_image_size,
      max_depth=max_depth,
      paraphrase=paraphrase,
      conditioning=conditioning,
      object_order=object_order,
    )


def _pad(ids: np.ndarray, length: int) -> np.ndarray:
  out = np.zeros(length, np.int32)
  out[: len(ids)] = ids
  return out


def _target_pixels(image, spec: ExampleSpec, method: str, name: str):
  if image is None:
    return image_preprocessing.preprocess_target_image(
      None, image_size=spec.target_image_size, patch_size=spec.target_downsample
    )
  image = np.asarray(image)
  if method == "nearest":
    # Label maps: keep colours exact, then only pad (no resampling at the target size).
    height, width = image.shape[:2]
    new_hw = image_preprocessing.resized_size(height, width, spec.target_image_size)
    image = image_preprocessing.tf_nearest_resize(image, new_hw).numpy()
  elif method != "bilinear":
    raise ValueError(f"{name}: target_image_resize must be bilinear or nearest, got {method!r}")
  return image_preprocessing.preprocess_target_image(
    image, image_size=spec.target_image_size, patch_size=spec.target_downsample, name=name
  )


def hide_patches(visible: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
  """`visible` (bool [n]) with a random `rate` of its True patches hidden: the
  round((1 - rate) * n_visible) left True are drawn uniformly (masked image denoising)."""
  if not 0.0 <= rate <= 1.0:
    raise ValueError(f"mask rate must be in [0, 1], got {rate}")
  where = np.flatnonzero(visible)
  keep = np.zeros_like(visible, dtype=bool)
  keep[rng.permutation(where)[: int(round(len(where) * (1.0 - rate)))]] = True
  return keep


def finalize(
  raw: Mapping, spec: ExampleSpec, name: str = "example"
) -> Tuple[Dict[str, np.ndarray], Dict[str, bool]]:
  """Raw example (data/tasks/registry.py contract) -> (model features, truncation flags).

  Input patches can be hidden from the encoder in two ways: "image_input_patch_mask", a
  bool mask on the spec's patch grid ((input_image_size / patch_size) ** 2 patches), or
  "image_input_mask_rate" with "image_input_mask_seed": that fraction of the image's
  patches, on whatever grid the model uses, drawn from the seed (masked image denoising).
  """
  tokenizer = spec.tokenizer
  inputs, inputs_cut = text_tokenizer.truncate_or_raise(
    tokenizer.encode(raw["prompt"], add_eos=True), spec.text_inputs, name=f"{name} prompt"
  )
  targets, targets_cut = text_tokenizer.truncate_or_raise(
    tokenizer.encode(raw.get("target_text") or "", add_eos=True),
    spec.text_targets,
    name=f"{name} target_text",
  )
  image, patch_mask = image_preprocessing.preprocess_image(
    raw.get("image"),
    image_size=spec.input_image_size,
    patch_size=spec.patch_size,
    name=f"{name} image",
  )
  if raw.get("image_input_patch_mask") is not None:
    wanted = np.asarray(raw["image_input_patch_mask"], bool).reshape(-1)
    if wanted.shape != patch_mask.shape:
      grid = spec.input_image_size // spec.patch_size
      raise ValueError(
        f"{name}: image_input_patch_mask has {wanted.size} patches, the input's "
        f"{grid}x{grid} patch grid (image {spec.input_image_size}, patch "
        f"{spec.patch_size}) has {patch_mask.size}"
      )
    patch_mask = patch_mask & wanted
  if raw.get("image_input_mask_rate") is not None:
    seed = raw.get("image_input_mask_seed")
    if seed is None:
      raise ValueError(f"{name}: image_input_mask_rate needs an image_input_mask_seed")
    rng = np.random.default_rng(int(seed))  # the seed comes from the example's own stream
    patch_mask = hide_patches(patch_mask, float(raw["image_input_mask_rate"]), rng)
  pixels, target_mask = _target_pixels(
    raw.get("target_image"),
    spec,
    raw.get("target_image_resize", "bilinear"),
    f"{name} target_image",
  )
  features = {
    "text_inputs": _pad(inputs, spec.text_inputs),
    "image_inputs": image.astype(np.float32),
    "image_input_mask": patch_mask.astype(bool),
    "text_targets": _pad(targets, spec.text_targets),
    "image_target_pixels": pixels.astype(np.float32),
    "image_target_mask": target_mask.astype(bool),
  }
  return features, {"text_inputs": inputs_cut, "text_targets": targets_cut}


# --------------------------------------------------------------------------------- stream


@dataclasses.dataclass
class Counters:
  """Skips per (task, reason) and truncations per (task, field); thread-safe."""

  skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  truncated: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

  def skip(self, task: str, reason: str):
    with self.lock:
      self.skipped[(task, reason)] += 1

  def truncate(self, task: str, field: str):
    with self.lock:
      self.truncated[(task, field)] += 1

  def summary(self) -> str:
    with self.lock:
      parts = [
        f"skipped {n} {task} ({reason})" for (task, reason), n in sorted(self.skipped.items())
      ]
      parts += [
        f"truncated {n} {task} {field}" for (task, field), n in sorted(self.truncated.items())
      ]
    return "; ".join(parts)


def _example_id(record) -> str:
  """The record's id for messages; bytes that are not UTF-8 as backslash escapes."""
  value = record.get("id", b"?") if isinstance(record, Mapping) else b"?"
  return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)


def prepare(
  task: tasks_lib.Task,
  record,
  rng: np.random.Generator,
  spec: ExampleSpec,
  ctx: tasks_lib.TaskContext,
):
  """(features, raw example, truncation flags) of one record; SkipExample propagates."""
  name = f"{task.name} example {_example_id(record)}"
  if ctx.task != task.name:  # text preprocessors read their task's name (its marker) here
    ctx = dataclasses.replace(ctx, task=task.name)
  try:
    raw = task.preprocess(record, rng, ctx)
  except tasks_lib.SkipExample as e:
    if isinstance(e.__cause__, UnicodeDecodeError):  # a bad record: name it, then skip it
      logging.warning("%s: skipped: %s (%s)", name, e, e.__cause__)
    raise
  except Exception as e:
    raise RuntimeError(f"{name}: preprocessing failed: {type(e).__name__}: {e}") from e
  features, cut = finalize(raw, spec, name)
  return features, raw, cut


def shape_of(features: Mapping[str, np.ndarray]) -> int:
  """0..3: whether an example has an input image (1) and a target image (2), as
  unified_io/train/length_buckets.py splits batches."""
  has_image = bool(np.any(features["image_input_mask"]))
  return int(has_image) + 2 * int(bool(np.any(features["image_target_mask"])))


class MixtureStream:
  """Unified examples of a task mixture, element by element (see module docstring)."""

  def __init__(
    self,
    task_names: Sequence[str],
    rates: Optional[Sequence[float]],
    spec: ExampleSpec,
    *,
    seed: int,
    split: str = "train",
    data_dir: Optional[str] = None,
    max_depth: float = 10.0,
    paraphrase: bool = False,
    conditioning: str = "prompt",
    object_order: str = "random",
    round_robin: bool = False,
    by_shape: bool = False,
    counters: Optional[Counters] = None,
  ):
    """`by_shape`: spread the tasks over the stream by the shape of their examples
    (`shape_of`), so that every host's share of every batch holds each shape in proportion
    (`schedule_lib.Schedule` strata; the trainer then runs each shape at its own lengths)."""
    self.tasks = [tasks_lib.get(name) for name in task_names]
    self.spec = spec
    self.seed = seed
    self.ctx = spec.context(max_depth, paraphrase, conditioning, object_order)
    self.sources = [
      source(t.builder, t.splits[split], data_dir, t.record_filter) for t in self.tasks
    ]
    self.records = [
      schedule_lib.EpochPermutation(len(s), seed, i) for i, s in enumerate(self.sources)
    ]
    self.counters = counters or Counters()
    # Per-task factors on Task.loss_weight (config.loss.normalization="tasks" sets them
    # with from_config.set_length_weights; 1 otherwise).
    self.length_weights = [1.0] * len(self.tasks)
    strata = None
    if by_shape and not round_robin:
      strata = [shape_of(self._first_usable(i)) for i in range(len(self.tasks))]
    self.schedule = schedule_lib.Schedule(
      task_names, rates, seed, round_robin=round_robin, strata=strata
    )

  def _features(self, task_index: int, draw: int, seed_key: Sequence[int], where: str, count=True):
    """(features, truncation flags) of the task's `draw`-th record, or of the first of the
    fallbacks after it that the task can use; `where` names the element in the error."""
    task, src = self.tasks[task_index], self.sources[task_index]
    for attempt in range(MAX_FALLBACKS + 1):
      # Fallbacks walk a fixed stride through the epoch, so they are deterministic too.
      record_index = self.records[task_index](draw + attempt * 7919)
      rng = np.random.default_rng([*seed_key, attempt])
      try:
        record = src[record_index]
        features, _, cut = prepare(task, record, rng, self.spec, self.ctx)
      except tasks_lib.SkipExample as e:
        if count:
          self.counters.skip(task.name, str(e) or "unspecified")
        continue
      return features, cut
    raise RuntimeError(
      f"{task.name}: {MAX_FALLBACKS + 1} records in a row were skipped at {where} (does "
      f"the task fit {src.name}? a task that can use only a few records wants a "
      f"record_filter); skips so far: {self.counters.summary()}"
    )

  def _first_usable(self, task_index: int) -> Dict[str, np.ndarray]:
    """The features of the task's first usable record (uncounted: a probe, not training)."""
    key = (self.seed, rng_streams.TRAIN_EXAMPLE, 2**32 - 1 - task_index)
    return self._features(task_index, 0, key, "its first record (shape probe)", False)[0]

  def mean_target_tokens(self, task_index: int, examples: int) -> float:
    """Mean target tokens (text and image codes, as the loss counts them) of the task's
    first `examples` usable records in its epoch order (uncounted probes, seeded apart)."""
    counts = []
    for k in range(examples):
      key = (self.seed, rng_streams.LENGTH_PROBE, task_index, k)
      features = self._features(task_index, k, key, f"length probe {k}", False)[0]
      mask = features.get("image_target_mask")
      counts.append(int(np.sum(features["text_targets"] > 0)) + int(np.sum(mask)))
    return float(np.mean(counts))

  def element(self, index: int) -> Dict[str, np.ndarray]:
    task_index, draw = self.schedule(index)
    task = self.tasks[task_index]
    features, cut = self._features(
      task_index, draw, (self.seed, rng_streams.TRAIN_EXAMPLE, index), f"stream element {index}"
    )
    for field, was_cut in cut.items():
      if was_cut:
        self.counters.truncate(task.name, field)
    features["task_index"] = np.int32(task_index)
    features["loss_weight"] = np.float32(task.loss_weight * self.length_weights[task_index])
    return features


class Batches:
  """Host-local batches of a `MixtureStream`; state = {"position": next global batch}.

  A background thread pool prepares the next `prefetch` batches; their content depends
  only on their position, so prefetching never changes what the trainer sees.
  """

  def __init__(
    self,
    stream: MixtureStream,
    global_batch_size: int,
    process_index: int = 0,
    process_count: int = 1,
    workers: int = 2,
    prefetch: int = 2,
  ):
    if global_batch_size % process_count:
      raise ValueError(
        f"Global batch size {global_batch_size} is not divisible by the {process_count} processes"
      )
    self.stream = stream
    self.global_batch_size = global_batch_size
    self.local = global_batch_size // process_count
    self.offset = process_index * self.local
    self.position = 0
    self.prefetch = prefetch
    self._pool = concurrent.futures.ThreadPoolExecutor(max(1, workers))
    self._pending: Dict[int, concurrent.futures.Future] = {}

  @property
  def task_names(self) -> List[str]:
    return [t.name for t in self.stream.tasks]

  def get_state(self):
    return {"position": self.position}

  def set_state(self, state):
    self.position = int(state["position"])
    self._pending.clear()

  def _submit(self, position: int):
    if position not in self._pending:
      first = position * self.global_batch_size + self.offset
      self._pending[position] = [
        self._pool.submit(self.stream.element, first + j) for j in range(self.local)
      ]

  def batch_at(self, position: int) -> Dict[str, np.ndarray]:
    self._submit(position)
    elements = [future.result() for future in self._pending.pop(position)]
    return {k: np.stack([e[k] for e in elements]) for k in elements[0]}

  def __iter__(self) -> Iterator[Dict[str, np.ndarray]]:
    return self

  def __next__(self) -> Dict[str, np.ndarray]:
    for ahead in range(1, self.prefetch + 1):
      self._submit(self.position + ahead)
    batch = self.batch_at(self.position)
    self.position += 1
    return batch

  def close(self):
    self._pool.shutdown(wait=False, cancel_futures=True)
