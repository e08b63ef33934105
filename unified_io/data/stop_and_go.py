"""Dynamic stop-and-go task scheduling (12-in-1 §3, Algorithm 1): data.schedule="stop_and_go".

A task whose validation loss has stopped improving is trained only every `iter_gap`-th time
it would have been ("stop"), so that an easy or small task is not overtrained while the
others catch up, yet keeps enough updates not to be forgotten; a stopped task whose loss
drifts up again returns to full training ("go").

The rule (`Rule`, `Controller.update`), per task, at each measurement (Algorithm 1's "if
i mod n_t = 0"). The paper measures once per task epoch; our mixture is sampled at rates,
not cycled, so a "task epoch" would be a different number of steps for every task and
moves with its rate: we measure all tasks together every `every_steps` steps instead.
- go -> stop ("Converged"): over the last `patience` (2) measurements the best loss
  improved on the best loss before them by less than `min_improvement` (0.1%), relative.
  Only measurements since the task last entered go count, so a task that has just come
  back is not stopped again by the losses that sent it away.
- stop -> go ("Diverged"): the loss is more than `max_degradation` (0.5%) above the best
  loss the task reached since it last entered go (the plateau that stopped it, or better).
  The best of the whole run would be unreachable after the shared network drifted, and a
  task returned to go would then bounce back and forth at every measurement.
Losses that are not finite leave the task's mode and history as they were (counted).

The gated schedule (`GatedSchedule`), deterministic on top of `schedule.Schedule`: the base
schedule says, for stream element e, task t and its base ordinal n (how many of t's slots
precede e). If t is stopped at e, the slot is kept only when n % iter_gap == 0, so the task
gets exactly 1 / iter_gap of its base slots (Algorithm 1's "i mod Δ = 0", with the task's
own slot count as i). The slots freed from a block's start, or from a mode change, to the
block's end are handed to the go tasks in proportion to their base rates, by the same
largest-remainder rounding as the block layout, in an order shuffled from (seed, block,
start), and used up to the next change: exact over a block without changes, and an element
never depends on changes that come after it (the served prefix stays as it was). If every
task is stopped, nothing is freed: stopping them all changes no relative rate. A task's
draw number (which record it reads, `schedule.EpochPermutation`) counts its slots in the
gated stream, so every task still walks its epochs without replacement. Slot counts per
block need the block's layout only when a change falls inside it; otherwise they follow
from the base counts, so the count before element e costs O(blocks) arithmetic, done once
and then carried forward.

Exact resume: the schedule from element e on is a pure function of (seed, e, the recorded
mode changes), and the changes (with the rule's state) are part of the checkpoint's data
state (`Controller.state`). Batches are prefetched, so a change decided after step s must
not touch a batch some host has already prepared: it applies from batch position
s + prefetch, the first position that `pipeline.Batches` has not submitted (at step s it has
submitted up to s - 1 + prefetch). Every host computes the same losses (a replicated result
of one sharded computation), hence the same decisions at the same positions, so no
agreement round is needed. `GatedSchedule.add_change` refuses a change at an element it has
already scheduled, so a too-small margin fails loudly instead of splitting the hosts.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import threading
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from unified_io.common import rng_streams
from unified_io.data import schedule as schedule_lib

GO, STOP = "go", "stop"
MODES = (GO, STOP)
STATE_VERSION = 1

# config.data.stop_and_go (configs/common.py carries the same values; a test keeps them so).
# every_steps: steps between measurements; num_examples: validation examples per task (the
# same ones every time); split: the tasks' split they come from; the rest: `Rule`.
DEFAULTS = dict(
  every_steps=1000,
  num_examples=16,
  split="validation",
  min_improvement=0.001,
  patience=2,
  max_degradation=0.005,
  iter_gap=4,
)


# ------------------------------------------------------------------------------------ rule


@dataclasses.dataclass(frozen=True)
class Rule:
  """The paper's thresholds (12-in-1 §3): 0.1% over 2 measurements, 0.5%, Δ = 4."""

  min_improvement: float = 0.001
  patience: int = 2
  max_degradation: float = 0.005
  iter_gap: int = 4

  def __post_init__(self):
    if self.patience < 1 or self.iter_gap < 1:
      raise ValueError(f"stop_and_go: patience and iter_gap must be >= 1, got {self}")
    if self.min_improvement < 0 or self.max_degradation < 0:
      raise ValueError(f"stop_and_go: thresholds must be >= 0, got {self}")


def settings(config) -> Dict:
  """config.data.stop_and_go over DEFAULTS, checked (a ValueError names the bad key)."""
  given = dict(config.data.get("stop_and_go", None) or {})
  unknown = sorted(set(given) - set(DEFAULTS))
  if unknown:
    raise ValueError(
      f"config.data.stop_and_go: unknown keys {unknown}; it takes {sorted(DEFAULTS)}"
    )
  out = {**DEFAULTS, **given}
  for key in ("every_steps", "num_examples", "patience", "iter_gap"):
    if isinstance(out[key], bool) or not isinstance(out[key], int) or out[key] < 1:
      raise ValueError(f"config.data.stop_and_go.{key} must be an int >= 1, got {out[key]!r}")
  return out


def rule(values: Mapping) -> Rule:
  return Rule(
    min_improvement=float(values["min_improvement"]),
    patience=int(values["patience"]),
    max_degradation=float(values["max_degradation"]),
    iter_gap=int(values["iter_gap"]),
  )


def converged(window: Sequence[float], rule: Rule) -> bool:
  """Whether losses since entering go (oldest first) have stopped improving."""
  if len(window) <= rule.patience:
    return False
  before = min(window[: -rule.patience])
  recent = min(window[-rule.patience :])
  return before - recent < rule.min_improvement * abs(before)


def diverged(loss: float, best: float, rule: Rule) -> bool:
  return loss > best + rule.max_degradation * abs(best)


def _compress(window: List[float], patience: int) -> List[float]:
  """The same verdicts from at most patience + 1 values: the older ones only count by their
  minimum."""
  if len(window) <= patience + 1:
    return window
  return [min(window[:-patience])] + window[-patience:]


# ------------------------------------------------------------------------- gated schedule


def _multiples_below(n, gap):
  """How many of 0 .. n - 1 are multiples of gap (n >= 0)."""
  return -(-n // gap)


class GatedSchedule:
  """`schedule.Schedule` with stopped tasks thinned to every iter_gap-th slot (docstring).

  Same interface: `schedule(e)` -> (task index, draw number). Thread-safe (the pipeline's
  workers call it while the trainer adds changes).
  """

  def __init__(self, base: schedule_lib.Schedule, iter_gap: int = 4):
    if base.round_robin:
      raise ValueError("stop_and_go needs a rate schedule, not round_robin")
    self.base, self.iter_gap = base, int(iter_gap)
    self.task_names, self.seed, self.block = base.task_names, base.seed, base.block
    self.counts = base.counts
    self.round_robin = False
    self._lock = threading.Lock()
    self.set_changes([])

  # The changes: (element, task index, mode), in the order they were made.
  def set_changes(self, changes: Sequence[Tuple[int, int, str]]):
    with self._lock:
      self.changes = []
      self._starts = [0]  # elements from which self._modes[i] holds
      self._modes = [np.ones(len(self.task_names), bool)]  # True: go
      self._served = -1  # the highest element scheduled so far
      self._cum = {}  # block -> slots per task in the gated stream before it
      self._blocks = {}
      for change in changes:
        self._add(*change)

  def add_change(self, element: int, task: int, mode: str):
    with self._lock:
      if element <= self._served:
        raise RuntimeError(
          f"stop_and_go: a mode change for {self.task_names[task]} at stream element "
          f"{element}, but element {self._served} is already scheduled (prefetched): the "
          f"change must apply from a position no host has prepared yet"
        )
      self._add(element, task, mode)

  def _add(self, element, task, mode):
    if mode not in MODES:
      raise ValueError(f"stop_and_go: mode {mode!r} is not one of {MODES}")
    if not 0 <= task < len(self.task_names):
      raise ValueError(f"stop_and_go: task index {task} outside [0, {len(self.task_names)})")
    element = int(element)
    if element < self._starts[-1]:
      raise ValueError(
        f"stop_and_go: change at element {element} precedes the last one ({self._starts[-1]})"
      )
    modes = self._modes[-1].copy()
    modes[task] = mode == GO
    if element == self._starts[-1]:
      self._modes[-1] = modes
    else:
      self._starts.append(element)
      self._modes.append(modes)
    self.changes.append((element, int(task), mode))
    first_block = element // self.block
    self._cum = {b: c for b, c in self._cum.items() if b <= first_block}
    self._blocks = {b: v for b, v in self._blocks.items() if b < first_block}

  def go_at(self, element: int) -> np.ndarray:
    """Which tasks are in go at `element` (bool per task), before the all-stopped rule."""
    return self._modes[bisect.bisect_right(self._starts, int(element)) - 1]

  def _effective_go(self, element):
    go = self.go_at(element)
    return go if go.any() else np.ones_like(go)

  def _refill(self, go: np.ndarray, freed: int) -> np.ndarray:
    """Freed slots per task: the go tasks' share by their base counts."""
    weights = np.where(go, self.counts, 0).astype(np.float64)
    if freed == 0 or weights.sum() == 0:
      return np.zeros(len(go), np.int64)
    rates = dict(zip(range(len(go)), weights / weights.sum()))
    return schedule_lib.block_counts(rates, freed)

  def _kept(self, block_index: int) -> np.ndarray:
    """Per task, its base slots in the block whose ordinal is a multiple of iter_gap."""
    lo = block_index * self.counts
    return _multiples_below(lo + self.counts, self.iter_gap) - _multiples_below(lo, self.iter_gap)

  def _inner_changes(self, block_index):
    lo, hi = block_index * self.block, (block_index + 1) * self.block
    return [s for s in self._starts if lo < s < hi]

  def _block_counts(self, block_index: int) -> np.ndarray:
    """Slots per task of the gated block."""
    if self._inner_changes(block_index):
      return self._gated_block(block_index)[2]
    go = self._effective_go(block_index * self.block)
    kept = np.where(go, self.counts, self._kept(block_index))
    return kept + self._refill(go, int(np.sum(self.counts - kept)))

  def _gated_block(self, block_index: int):
    """(task per slot, ordinal per slot in the gated stream's block, slots per task)."""
    if block_index in self._blocks:
      return self._blocks[block_index]
    slots, ordinal = self.base.layout(block_index)
    tasks = slots.copy()
    start = block_index * self.block
    bounds = [start, *self._inner_changes(block_index), start + self.block]
    for s0, s1 in zip(bounds[:-1], bounds[1:]):
      go = self._effective_go(s0)
      lo, hi = s0 - start, s1 - start
      # Laid out to the block's end as if no later change came, then cut at the next
      # change: what an element gets never depends on changes after it.
      rest = slots[lo:]
      draws = block_index * self.counts[rest] + ordinal[lo:]
      freed = lo + np.flatnonzero(~go[rest] & (draws % self.iter_gap != 0))
      if len(freed):
        extra = self._refill(go, len(freed))
        rng = np.random.default_rng([self.seed, rng_streams.STOP_AND_GO, block_index, lo])
        refill = rng.permutation(np.repeat(np.arange(len(go)), extra))
        mine = freed < hi
        tasks[freed[mine]] = refill[mine]
    gated_ordinal = np.zeros(len(tasks), np.int64)
    counts = np.bincount(tasks, minlength=len(self.task_names)).astype(np.int64)
    for task in np.flatnonzero(counts):
      where = np.flatnonzero(tasks == task)
      gated_ordinal[where] = np.arange(len(where))
    if len(self._blocks) > 4:
      self._blocks.clear()
    self._blocks[block_index] = (tasks, gated_ordinal, counts)
    return self._blocks[block_index]

  def _cum_before(self, block_index: int) -> np.ndarray:
    """Slots per task in the gated stream before the block (carried forward from the
    nearest block already counted; before the first change, the base counts)."""
    if block_index in self._cum:
      return self._cum[block_index]
    first = self._starts[1] // self.block if len(self._starts) > 1 else block_index
    known = [b for b in self._cum if b <= block_index]
    if known:
      b = max(known)
      cum = self._cum[b].copy()
    else:
      b = min(first, block_index)
      cum = b * self.counts
    for k in range(b, block_index):
      cum = cum + self._block_counts(k)
    if len(self._cum) > 8:
      self._cum = {k: v for k, v in self._cum.items() if k == max(self._cum)}
    self._cum[block_index] = cum
    return cum

  def __call__(self, element: int) -> Tuple[int, int]:
    """(task index, draw number of that task) of stream element `element`."""
    element = int(element)
    block_index, offset = divmod(element, self.block)
    with self._lock:
      self._served = max(self._served, element)
      if len(self._starts) == 1 or self._starts[1] >= (block_index + 1) * self.block:
        pass_through = True  # no change yet by the end of this block
      else:
        pass_through = False
        tasks, ordinal, _ = self._gated_block(block_index)
        task = int(tasks[offset])
        draw = int(self._cum_before(block_index)[task] + ordinal[offset])
    return self.base(element) if pass_through else (task, draw)


# ------------------------------------------------------------------------------ controller


@dataclasses.dataclass
class Decision:
  task: str
  before: str
  after: str
  position: int  # the batch position from which it applies


class Controller:
  """The rule's state per task, the mode changes, and the measurements (for the picture).

  `update` feeds it one measurement; its changes go into `schedule` (element = batch
  position * global batch size). `state()` / `set_state()` are the checkpoint's part.
  """

  def __init__(
    self,
    task_names: Sequence[str],
    rule: Rule,
    schedule: Optional[GatedSchedule] = None,
    global_batch_size: int = 1,
  ):
    self.task_names, self.rule = list(task_names), rule
    self.schedule, self.global_batch_size = schedule, int(global_batch_size)
    n = len(self.task_names)
    self.modes = [GO] * n
    self.best = [math.inf] * n
    self.windows: List[List[float]] = [[] for _ in range(n)]
    self.changes: List[Tuple[int, str, str]] = []  # (position, task name, mode)
    self.measurements: List[Tuple[int, List[float], List[str]]] = []
    self.non_finite = 0

  def update(self, step: int, losses: Sequence[float], position: int) -> List[Decision]:
    """One measurement at `step`; mode changes apply from batch `position`."""
    if len(losses) != len(self.task_names):
      raise ValueError(f"stop_and_go: {len(losses)} losses for {len(self.task_names)} tasks")
    if self.changes and position < self.changes[-1][0]:
      raise ValueError(f"stop_and_go: position {position} precedes the last change")
    decisions = []
    for i, loss in enumerate(float(v) for v in losses):
      if not math.isfinite(loss):
        self.non_finite += 1
        continue
      self.best[i] = min(self.best[i], loss)
      before = self.modes[i]
      if before == GO:
        self.windows[i] = _compress(self.windows[i] + [loss], self.rule.patience)
        if converged(self.windows[i], self.rule):
          self.modes[i] = STOP
      elif diverged(loss, self.best[i], self.rule):
        self.modes[i] = GO
        self.windows[i], self.best[i] = [loss], loss
      if self.modes[i] != before:
        decisions.append(Decision(self.task_names[i], before, self.modes[i], int(position)))
        self.changes.append((int(position), self.task_names[i], self.modes[i]))
        if self.schedule is not None:
          element = int(position) * self.global_batch_size
          self.schedule.add_change(element, i, self.modes[i])
    self.measurements.append((int(step), [float(v) for v in losses], list(self.modes)))
    return decisions

  def state(self) -> Dict:
    """JSON-ready; restores the rule and the schedule exactly."""
    return {
      "version": STATE_VERSION,
      "tasks": list(self.task_names),
      "modes": list(self.modes),
      "best": [None if math.isinf(b) else b for b in self.best],
      "windows": [list(w) for w in self.windows],
      "changes": [list(c) for c in self.changes],
      "measurements": [[s, list(v), list(m)] for s, v, m in self.measurements],
      "non_finite": self.non_finite,
    }

  def set_state(self, state: Mapping):
    if state.get("version") != STATE_VERSION:
      raise ValueError(f"stop_and_go state version {state.get('version')}, expected 1")
    if list(state["tasks"]) != self.task_names:
      raise ValueError(
        f"stop_and_go state is for tasks {list(state['tasks'])}, this run has {self.task_names}"
      )
    self.modes = [str(m) for m in state["modes"]]
    self.best = [math.inf if b is None else float(b) for b in state["best"]]
    self.windows = [[float(v) for v in w] for w in state["windows"]]
    self.changes = [(int(p), str(t), str(m)) for p, t, m in state["changes"]]
    self.measurements = [(int(s), list(v), list(m)) for s, v, m in state["measurements"]]
    self.non_finite = int(state.get("non_finite", 0))
    if self.schedule is not None:
      index = {name: i for i, name in enumerate(self.task_names)}
      self.schedule.set_changes(
        [(p * self.global_batch_size, index[t], m) for p, t, m in self.changes]
      )


# -------------------------------------------------------------------------------- picture


def draw_modes(controller: Controller, width: int = 900):
  """Like the paper's Fig. 2 (left): a line per task over the steps, thick in go, thin in
  stop; a PIL image (pure PIL, so the picture needs no plotting dependency)."""
  import PIL.Image
  import PIL.ImageDraw

  names, rows = controller.task_names, controller.measurements
  row_h, left, right, top = 18, 8 + 7 * max(len(n) for n in names), 20, 10
  height = top + row_h * len(names) + 24
  image = PIL.Image.new("RGB", (left + width + right, height), "white")
  draw = PIL.ImageDraw.Draw(image)
  last = max([s for s, _, _ in rows] + [1])
  x = lambda step: left + int(width * step / last)
  for i, name in enumerate(names):
    y = top + row_h * i + row_h // 2
    draw.text((4, y - 6), name, fill="black")
    previous_step, previous_mode = 0, GO
    for step, _, modes in rows:
      thick = 6 if previous_mode == GO else 1
      draw.line([(x(previous_step), y), (x(step), y)], fill=(40, 90, 200), width=thick)
      previous_step, previous_mode = step, modes[i]
  draw.text((left, height - 16), f"step 0 .. {last} (thick: go, thin: stop)", fill="black")
  return image
