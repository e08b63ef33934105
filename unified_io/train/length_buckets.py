"""Batch shapes without padding: each host batch split by what its examples hold, and each
part cut to bucketed lengths (`config.train.batch_shapes="buckets"`, unified_io/train/step.py).

An example is one of four kinds: with or without an input image, with or without a target
image. A part holds the examples of one kind, so a part without input images runs the
encoder on its text alone and a part without target images runs the decoder on text alone.
Each part's text inputs and text targets are cut to the longest of the part, rounded up to
a bucket length; its row count is rounded up to a bucket too (padding rows are all zero: no
tokens, no loss). Lengths round up to a power of two (at least 32 text inputs, 16 text
targets) or the batch's own length, rows to 1, 2, 4, 6, 8, 12, 16, 24, ...: a bounded set of
shapes for XLA to compile (about 20 over `make train`'s 3000 steps; benchmarks/README.md).

Cutting is exact: a position after an example's last token is a masked key everywhere (the
encoder's self-attention, the decoder's cross-attention through the encoder mask, the
decoder's self-attention through its key mask), and the position embeddings and relative
biases of the positions that stay do not depend on the sequence length. Target images are
never cut: their codes sit on the 2-D grid that the decoder's image positions and biases
describe, so a part has all of them or none.

All hosts must build the same shapes (one compiled program, one collective schedule), so the
plan comes from every host's numbers: `host_stats` on each host, gathered (`gather`, a tiny
all-gather), then `plan`. Rows keep their global row index ("row"), from which the step draws
per-example randomness, and their loss scale ("loss_scale": loss weight / target tokens of
the global batch), so an example's part, host or padding never changes its loss or gradient.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence, Tuple

import numpy as np

from unified_io.model import losses

# (has an input image, has a target image), in the order parts are built and run.
KINDS = ((False, False), (True, False), (False, True), (True, True))
IMAGE_INPUT_KEYS = ("image_inputs", "image_input_mask", "image_input_positions")
IMAGE_TARGET_KEYS = ("image_targets", "image_target_pixels", "image_target_mask")
# Shortest buckets of the text lengths (inputs, targets): shorter ones would add compiled
# shapes for little gain (a prompt is rarely under 16 tokens, an answer often is).
MIN_TEXT_LENGTHS = (32, 16)
_KIND_FIELDS = 3  # rows, longest text input, longest text target


@dataclasses.dataclass(frozen=True)
class PartShape:
  """One part of a batch: which inputs it has, rows per host, and its text lengths."""

  image_inputs: bool
  image_targets: bool
  rows: int
  text_inputs: int
  text_targets: int

  @property
  def kind(self) -> int:
    return KINDS.index((self.image_inputs, self.image_targets))

  def describe(self) -> str:
    inputs = "image+text" if self.image_inputs else "text"
    targets = "text+image" if self.image_targets else "text"
    return (
      f"{inputs} -> {targets}, {self.rows} rows per host, "
      f"text {self.text_inputs}->{self.text_targets}"
    )


def ladder_ceil(n: int, smallest: int = 1) -> int:
  """The smallest of smallest * (1, 2, 4, 6, 8, 12, 16, 24, ...) that is >= n: powers of
  two, and from 4 on also 1.5 times a power of two."""
  power = 1
  while True:
    for value in (power, power * 3 // 2) if power >= 4 else (power,):
      if value * smallest >= n:
        return value * smallest
    power *= 2


def text_bucket(length: int, limit: int, smallest: int) -> int:
  """Bucketed length for a part whose longest text is `length` tokens: the next power of
  two (at least `smallest`), or the batch's `limit` positions if that is smaller."""
  if length > limit:
    raise ValueError(f"text length {length} exceeds the batch's {limit} positions")
  return min(limit, max(smallest, 1 << max(length - 1, 0).bit_length()))


def row_bucket(rows: int, local_rows: int, granularity: int) -> int:
  """Rows per host for a part of `rows` examples: the ladder's next value rounded up to a
  multiple of `granularity` (so the part splits over the host's data devices), at most the
  host's `local_rows` (itself such a multiple)."""
  if not 0 < rows <= local_rows:
    raise ValueError(f"a part of {rows} rows does not fit a host batch of {local_rows}")
  return min(local_rows, -(-ladder_ceil(rows) // granularity) * granularity)


def _used_length(mask: np.ndarray) -> np.ndarray:
  """Per row, one past the last True (0 for a row with none)."""
  mask = np.asarray(mask, bool)
  last = mask.shape[1] - np.argmax(mask[:, ::-1], axis=1)
  return np.where(mask.any(axis=1), last, 0)


def _image_target_mask(batch) -> np.ndarray:
  rows = len(batch["text_inputs"])
  if "image_target_mask" in batch:
    return np.asarray(batch["image_target_mask"], bool).reshape(rows, -1)
  if "image_targets" in batch or "image_target_pixels" in batch:
    return np.ones((rows, 1), bool)  # present and, without a mask, valid
  return np.zeros((rows, 1), bool)


def example_kinds(batch) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(kind index into KINDS, text input length, text target length) of every row."""
  rows = len(batch["text_inputs"])
  has_image = np.zeros(rows, bool)
  if batch.get("image_inputs") is not None:
    has_image = np.asarray(batch["image_input_mask"], bool).reshape(rows, -1).any(axis=1)
  has_target = _image_target_mask(batch).any(axis=1)
  text_mask = batch.get("text_input_mask")
  text_mask = np.asarray(batch["text_inputs"]) > 0 if text_mask is None else text_mask
  kinds = has_image.astype(np.int32) + 2 * has_target.astype(np.int32)
  return kinds, _used_length(text_mask), _used_length(np.asarray(batch["text_targets"]) > 0)


def row_target_tokens(batch) -> np.ndarray:
  """int64 [rows]: each row's target tokens (text and image), counted as losses.py does."""
  rows = len(batch["text_targets"])
  count = np.sum(np.asarray(batch["text_targets"]) > 0, axis=1).astype(np.int64)
  if "image_target_mask" in batch:
    count += np.sum(np.asarray(batch["image_target_mask"]).reshape(rows, -1), axis=1)
  elif "image_targets" in batch:  # no mask: every code is a target
    count += int(np.prod(np.shape(batch["image_targets"])[1:]))
  return count


def target_tokens(batch) -> int:
  """Target tokens (text and image) that the loss averages over, counted as losses.py does."""
  return int(np.sum(row_target_tokens(batch)))


def loss_denominator(batch, normalization: str = "tokens") -> int:
  """What the host's rows add to the loss's denominator (losses.batch_loss): its target
  tokens ("tokens", "tasks"), or with "examples" its rows that have target tokens."""
  if losses.check_normalization(normalization) != "examples":
    return target_tokens(batch)
  return int(np.sum(row_target_tokens(batch) > 0))


def host_stats(batch, normalization: str = "tokens") -> np.ndarray:
  """int32 [len(KINDS) * 3 + 1]: per kind (rows, longest text input, longest text target),
  then the host's `loss_denominator`."""
  kinds, text_inputs, text_targets = example_kinds(batch)
  stats = np.zeros((len(KINDS), _KIND_FIELDS), np.int64)
  for kind in range(len(KINDS)):
    rows = kinds == kind
    if rows.any():
      stats[kind] = rows.sum(), text_inputs[rows].max(), text_targets[rows].max()
  denominator = loss_denominator(batch, normalization)
  return np.concatenate([stats.reshape(-1), [denominator]]).astype(np.int32)


def gather(stats: np.ndarray) -> np.ndarray:
  """Every host's `host_stats`, [hosts, n], in process order (a tiny all-gather)."""
  import jax

  if jax.process_count() == 1:
    return np.asarray(stats)[None]
  from jax.experimental import multihost_utils

  return np.asarray(multihost_utils.process_allgather(np.asarray(stats, np.int32)))


def plan(
  all_stats: np.ndarray, text_limits: Tuple[int, int], local_rows: int, granularity: int = 1
) -> Tuple[Tuple[PartShape, ...], int]:
  """(the parts' shapes, the global batch's loss denominator) from every host's stats.

  `text_limits`: the batch's (text input, text target) positions; `granularity`: rows per
  host must be a multiple of it (the host's share of the mesh's data axis).
  """
  all_stats = np.asarray(all_stats).reshape(len(all_stats), -1)
  per_kind = all_stats[:, : len(KINDS) * _KIND_FIELDS].reshape(-1, len(KINDS), _KIND_FIELDS)
  most = per_kind.max(axis=0)
  shapes = []
  for kind, (image_inputs, image_targets) in enumerate(KINDS):
    rows, text_inputs, text_targets = (int(v) for v in most[kind])
    if rows:
      shapes.append(
        PartShape(
          image_inputs,
          image_targets,
          rows=row_bucket(rows, local_rows, granularity),
          text_inputs=text_bucket(text_inputs, text_limits[0], MIN_TEXT_LENGTHS[0]),
          text_targets=text_bucket(text_targets, text_limits[1], MIN_TEXT_LENGTHS[1]),
        )
      )
  return tuple(shapes), int(all_stats[:, -1].sum())


def _pad_rows(value: np.ndarray, rows: int, fill=0) -> np.ndarray:
  if len(value) == rows:
    return value
  out = np.full((rows,) + value.shape[1:], fill, value.dtype)
  out[: len(value)] = value
  return out


def split(
  batch: Dict[str, np.ndarray],
  shapes: Sequence[PartShape],
  row_offset: int,
  global_denominator: int,
  normalization: str = "tokens",
) -> List[Dict[str, np.ndarray]]:
  """This host's rows of each part in `shapes`, cut and padded to the part's shape.

  Each part keeps the batch's keys, less the image inputs or targets that its kind lacks,
  plus "row" (global row index, -1 for padding) and "loss_scale" (the row's loss weight
  over `global_denominator`, with "examples" also over the row's target tokens; 0 for
  padding), and without "loss_weight" (folded into the scale).
  """
  kinds = example_kinds(batch)[0]
  weights = np.asarray(batch.get("loss_weight", np.ones(len(kinds))), np.float32)
  if losses.check_normalization(normalization) == "examples":
    tokens = row_target_tokens(batch)
    weights = np.where(tokens > 0, weights / np.maximum(tokens, 1), 0.0).astype(np.float32)
  scale = weights / np.float32(max(global_denominator, 1))
  parts, used = [], 0
  for shape in shapes:
    index = np.flatnonzero(kinds == shape.kind)
    if len(index) > shape.rows:
      raise ValueError(f"{len(index)} rows of kind {KINDS[shape.kind]} exceed {shape}")
    used += len(index)
    part = {}
    for key, value in batch.items():
      if key == "loss_weight":
        continue
      if (key in IMAGE_INPUT_KEYS and not shape.image_inputs) or (
        key in IMAGE_TARGET_KEYS and not shape.image_targets
      ):
        continue
      value = np.asarray(value)[index]
      if key in ("text_inputs", "text_input_mask"):
        value = value[:, : shape.text_inputs]
      elif key == "text_targets":
        value = value[:, : shape.text_targets]
      part[key] = _pad_rows(value, shape.rows)
    part["row"] = _pad_rows((row_offset + index).astype(np.int32), shape.rows, fill=-1)
    part["loss_scale"] = _pad_rows(scale[index], shape.rows)
    parts.append(part)
  if used != len(kinds):
    raise ValueError(f"the shapes {shapes} hold {used} of the batch's {len(kinds)} rows")
  return parts
