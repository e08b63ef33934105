"""Which task, and which record of it, each element of the input stream is.

Every element of a `pipeline.MixtureStream` is a pure function of (seed, element index), so
these are too: a schedule maps element e to (task index, draw number of that task), and a
task's `EpochPermutation` maps its draw number to a record.

- `Schedule`: the mixture's rates laid out as blocks of `BLOCK` slots (largest-remainder
  rounding, `block_counts`, so every rate is met exactly over a block), shuffled per block
  from (seed, block), optionally spread by strata (the example shapes of
  schedule="stratified"); or the tasks in turn (round_robin).
- `EpochPermutation`: draw n reads record perm_epoch[n mod N] of a fresh permutation of the
  task's N records per epoch: every record once per epoch, no replacement.
- `Curriculum`: a `Schedule` whose first elements draw only from some of its tasks
  (config.data.curriculum, docs/training.md); `stop_and_go.GatedSchedule` is the other
  schedule built on a `Schedule`.
"""

from __future__ import annotations

import threading
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from unified_io.common import rng_streams

BLOCK = 10_000  # schedule slots per shuffled block


def block_counts(rates: Mapping[str, float], block: int = BLOCK) -> np.ndarray:
  """Slots per task in one block: largest-remainder rounding of rate * block."""
  values = np.asarray(list(rates.values()), np.float64)
  if np.any(values < 0) or not np.isclose(values.sum(), 1.0, atol=1e-6):
    raise ValueError(f"mixture rates must be >= 0 and sum to 1, got {dict(rates)}")
  exact = values * block
  counts = np.floor(exact).astype(np.int64)
  order = np.argsort(-(exact - counts), kind="stable")
  counts[order[: block - counts.sum()]] += 1
  return counts


class Schedule:
  """Which task, and which of that task's draws, element e of the stream is.

  With `strata` (a label per task, e.g. the shape of its examples), each block's slots are
  spread so that every stretch of the stream holds each stratum in proportion, while every
  task keeps its exact count per block: a stratum of n slots in the block takes positions
  (j + phase) / n, j = 0..n-1, with a random phase, and its tasks fill them in a random
  order. Its count in any stretch of the block's positions is then within 1 of n times the
  stretch, so a window of w consecutive slots (within a block) holds w * q +- (1 + S * q)
  slots of a stratum with share q, for S strata: e.g. every 16-example batch of builtin's
  four shapes holds 4 or 5 text-only examples, where independent draws give 0 to 10.
  """

  def __init__(
    self,
    task_names: Sequence[str],
    rates: Optional[Sequence[float]],
    seed: int,
    round_robin: bool = False,
    block: int = BLOCK,
    strata: Optional[Sequence[int]] = None,
  ):
    self.task_names = tuple(task_names)
    self.seed = seed
    self.round_robin = round_robin
    if strata is not None and len(strata) != len(self.task_names):
      raise ValueError(f"{len(strata)} strata for {len(self.task_names)} tasks")
    self.strata = None if strata is None else np.asarray(strata)
    if round_robin:
      self.block = len(self.task_names)
      self.counts = np.ones(self.block, np.int64)
    else:
      self.block = block
      self.counts = block_counts(dict(zip(self.task_names, rates)), block)
    self._cache: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
    self._lock = threading.Lock()

  def _spread(self, rng: np.random.Generator) -> np.ndarray:
    """One block's task slots, each stratum at evenly spaced positions (class docstring)."""
    keys, slots = [], []
    for stratum in np.unique(self.strata):
      tasks = np.flatnonzero(self.strata == stratum)
      mine = rng.permutation(np.repeat(tasks, self.counts[tasks]))
      if len(mine):
        keys.append((np.arange(len(mine)) + rng.random()) / len(mine))
        slots.append(mine)
    return np.concatenate(slots)[np.argsort(np.concatenate(keys), kind="stable")]

  def layout(self, block_index: int) -> Tuple[np.ndarray, np.ndarray]:
    """(task per slot, that task's ordinal within the block per slot) of one block."""
    with self._lock:
      if block_index not in self._cache:
        slots = np.repeat(np.arange(len(self.task_names)), self.counts)
        if not self.round_robin:
          rng = np.random.default_rng([self.seed, rng_streams.BLOCK_ORDER, block_index])
          slots = rng.permutation(slots) if self.strata is None else self._spread(rng)
        ordinal = np.zeros(len(slots), np.int64)
        for task in range(len(self.task_names)):
          where = np.flatnonzero(slots == task)
          ordinal[where] = np.arange(len(where))
        if len(self._cache) > 4:
          self._cache.clear()
        self._cache[block_index] = (slots, ordinal)
      return self._cache[block_index]

  def __call__(self, element: int) -> Tuple[int, int]:
    """(task index, draw number of that task) of stream element `element`."""
    block_index, offset = divmod(int(element), self.block)
    slots, ordinal = self.layout(block_index)
    task = int(slots[offset])
    return task, int(block_index * self.counts[task] + ordinal[offset])


class EpochPermutation:
  """Draw n of a task -> record index: a fresh permutation of the records every epoch."""

  def __init__(self, num_records: int, seed: int, task_index: int):
    if num_records <= 0:
      raise ValueError("cannot sample from an empty split")
    self.num_records, self.seed, self.task_index = num_records, seed, task_index
    self._epoch, self._perm = None, None
    self._lock = threading.Lock()

  def __call__(self, draw: int) -> int:
    epoch, offset = divmod(int(draw), self.num_records)
    with self._lock:
      if epoch != self._epoch:
        rng = np.random.default_rng([self.seed, rng_streams.EPOCH_ORDER, self.task_index, epoch])
        self._perm = rng.permutation(self.num_records)
        self._epoch = epoch
      return int(self._perm[offset])


class Curriculum:
  """`base` with its first `switch` elements drawn only from the tasks `first` (indices).

  Phase 1, elements 0 .. switch - 1: a `Schedule` of the `first` tasks alone, at their
  `rates` renormalised over them, in blocks of base.block slots (exact over every block;
  with base's strata restricted to them), its task indices mapped back to base's.
  Phase 2, elements switch on: `base` restarted at the switch, element e being base's
  element e - switch, so every block of phase 2 meets the mixture's rates exactly.
  A task's draw numbers run on across the switch: in phase 2 they are the task's draws in
  phase 1 (closed form: whole phase-1 blocks x its count per block, plus its slots in the
  first switch mod block slots of the next block's layout) plus its draw number in base,
  so it walks on through its epoch (`EpochPermutation`) and repeats no record before the
  epoch ends. Same interface as `Schedule`: `schedule(e)` -> (task index, draw number), a
  pure function of e, so the stream resumes exactly from the batch position alone. The
  phase-1 `Schedule` has base's seed: its block layouts are shuffled from the same
  (seed, block) keys as base's, over other slot counts.
  """

  def __init__(self, base: Schedule, rates: Sequence[float], first: Sequence[int], switch: int):
    if not isinstance(base, Schedule):  # e.g. stop_and_go's: its gating spans no switch
      raise TypeError(f"a curriculum builds on a Schedule, not a {type(base).__name__}")
    if base.round_robin:
      raise ValueError("a curriculum needs a rate schedule, not round_robin")
    n = len(base.task_names)
    if len(rates) != n:
      raise ValueError(f"{len(rates)} rates for {n} tasks")
    self.first = tuple(sorted({int(i) for i in first}))
    if not self.first:
      raise ValueError("a curriculum's first phase needs at least one task")
    if not all(0 <= i < n for i in self.first):
      raise ValueError(f"curriculum task indices {list(self.first)} outside [0, {n})")
    if int(switch) < 0:
      raise ValueError(f"a curriculum's switch element must be >= 0, got {switch}")
    sub = np.asarray([rates[i] for i in self.first], np.float64)
    if not sub.sum() > 0:
      names = [base.task_names[i] for i in self.first]
      raise ValueError(f"a curriculum's first phase has no task with a rate > 0: {names}")
    self.base, self.switch = base, int(switch)
    self.task_names, self.seed, self.block = base.task_names, base.seed, base.block
    self.strata = base.strata
    self.round_robin = False
    self.phase1 = Schedule(
      [base.task_names[i] for i in self.first],
      sub / sub.sum(),
      base.seed,
      block=base.block,
      strata=None if base.strata is None else base.strata[list(self.first)],
    )
    whole, part = divmod(self.switch, self.phase1.block)
    done = whole * self.phase1.counts
    if part:
      slots, _ = self.phase1.layout(whole)
      done = done + np.bincount(slots[:part], minlength=len(self.first))
    self.phase1_draws = np.zeros(n, np.int64)  # draws per task before the switch
    self.phase1_draws[list(self.first)] = done

  def __call__(self, element: int) -> Tuple[int, int]:
    """(task index, draw number of that task) of stream element `element`."""
    element = int(element)
    if element < self.switch:
      task, draw = self.phase1(element)
      return self.first[task], draw
    task, draw = self.base(element - self.switch)
    return task, int(self.phase1_draws[task] + draw)
