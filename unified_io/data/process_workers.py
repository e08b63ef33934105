"""`pipeline.Batches` with worker processes instead of threads: preprocessing without the GIL.

Every element of a `pipeline.MixtureStream` is a pure function of (seed, element index), so
which process computes it does not matter: `ProcessBatches` gives the same batches as
`pipeline.Batches` (tests/test_process_workers.py checks it), with the same state
({"position": next global batch}) and the same exact, O(1) resume.

Each worker process builds its own stream once, from `stream_factory` (a picklable
callable, e.g. `functools.partial(pipeline.MixtureStream, names, rates, spec, seed=...)`),
then computes `stream.element(e)` for the indices it is sent. Workers are started with
"spawn" by default: a forked child of a process that has started TensorFlow's or JAX's
thread pools can deadlock in them, and the preprocessing runs TensorFlow ops.

An example is about 2.6 MB at Small's sizes (the float32 input image and target pixels);
pickled through a pipe it costs about 10 CPU ms (worker and collector together), a third of
making it. With `transfer="shm"` (the default) the worker writes it into a shared-memory
slot that this process owns (created once the first example shows the size, then reused;
unlinked by `close()` or when the object is collected) and sends back only its layout; the
first batch, and examples that do not fit, go through the pipe. Each worker's skip and
truncation counts come back with its examples and are added to `self.stream.counters`, so
`stream.counters.summary()` reads as with threads (counted when an example is collected).
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
from multiprocessing import shared_memory
import weakref
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from unified_io.data import pipeline

_STREAM: Optional[pipeline.MixtureStream] = None  # the worker process's own stream
_ATTACHED: Dict[str, shared_memory.SharedMemory] = {}  # the worker's mappings of the slots
_ALIGN = 64  # bytes; each array of an example starts on a multiple of it in its slot
_SLOT_SLACK = 4096  # bytes of room in a slot beyond the first example's size


def _start_worker(stream_factory: Callable[[], pipeline.MixtureStream]):
  global _STREAM
  _STREAM = stream_factory()


def _layout(features) -> Tuple[list, int]:
  """[(key, dtype, shape, byte offset)] of `features` packed into one buffer; its size."""
  layout, offset = [], 0
  for key, value in features.items():
    value = np.asarray(value)
    layout.append((key, value.dtype.str, value.shape, offset))
    offset += -(-value.nbytes // _ALIGN) * _ALIGN
  return layout, offset


def _views(buffer, layout) -> Dict[str, np.ndarray]:
  return {k: np.ndarray(shape, dtype, buffer=buffer, offset=o) for k, dtype, shape, o in layout}


def _element(index: int, slot: Optional[Tuple[str, int]] = None):
  """(features, skips, truncations) of element `index`; the counts are this element's.

  With `slot` (shared-memory name, size) the features are written there, if they fit, and
  their layout (a list) is returned in their place."""
  counters = _STREAM.counters
  features = _STREAM.element(index)
  with counters.lock:  # a worker computes one element at a time, so these are its counts
    skipped, truncated = counters.skipped, counters.truncated
    counters.skipped, counters.truncated = collections.Counter(), collections.Counter()
  if slot is not None:
    name, size = slot
    layout, nbytes = _layout(features)
    if nbytes <= size:
      if name not in _ATTACHED:
        _ATTACHED[name] = shared_memory.SharedMemory(name=name)
      for key, view in _views(_ATTACHED[name].buf, layout).items():
        view[...] = features[key]
      return layout, skipped, truncated
  return features, skipped, truncated


def _release(slots: Dict[str, shared_memory.SharedMemory]):
  for shm in slots.values():
    shm.close()
    shm.unlink()
  slots.clear()


class ProcessBatches:
  """Host-local batches of a `MixtureStream` from `workers` processes; as `pipeline.Batches`.

  `stream`: this process's copy of the stream (task names, counters); built from
  `stream_factory` if not given. It must be the stream the factory builds: the batches come
  from the workers' copies. `transfer`: "shm" or "pipe" (module docstring).
  """

  def __init__(
    self,
    stream_factory: Callable[[], pipeline.MixtureStream],
    global_batch_size: int,
    process_index: int = 0,
    process_count: int = 1,
    workers: int = 2,
    prefetch: int = 2,
    stream: Optional[pipeline.MixtureStream] = None,
    start_method: str = "spawn",
    transfer: str = "shm",
  ):
    if global_batch_size % process_count:
      raise ValueError(
        f"Global batch size {global_batch_size} is not divisible by the {process_count} processes"
      )
    if transfer not in ("shm", "pipe"):
      raise ValueError(f"transfer must be 'shm' or 'pipe', got {transfer!r}")
    self.stream = stream if stream is not None else stream_factory()
    self.global_batch_size = global_batch_size
    self.local = global_batch_size // process_count
    self.offset = process_index * self.local
    self.position = 0
    self.prefetch = prefetch
    self._pool = concurrent.futures.ProcessPoolExecutor(
      max(1, workers),
      mp_context=multiprocessing.get_context(start_method),
      initializer=_start_worker,
      initargs=(stream_factory,),
    )
    self._pending: Dict[int, List[Tuple[concurrent.futures.Future, Optional[str]]]] = {}
    self._shm = transfer == "shm"
    self._slot_size = 0  # set by the first example collected
    self._slots: Dict[str, shared_memory.SharedMemory] = {}
    self._free: List[str] = []
    self._finalizer = weakref.finalize(self, _release, self._slots)

  def worker_pids(self) -> List[int]:
    """Process ids of the workers started so far (for CPU accounting)."""
    return list(self._pool._processes or ())

  @property
  def task_names(self) -> List[str]:
    return [t.name for t in self.stream.tasks]

  def get_state(self):
    return {"position": self.position}

  def set_state(self, state):
    self.position = int(state["position"])
    running = []
    for pending in self._pending.values():
      for future, slot in pending:
        if not future.cancel():
          running.append(future)
        if slot is not None:
          self._free.append(slot)
    concurrent.futures.wait(running)  # no worker still writes into a freed slot
    self._pending.clear()

  def _slot(self) -> Optional[str]:
    if not (self._shm and self._slot_size):
      return None
    if not self._free:
      shm = shared_memory.SharedMemory(create=True, size=self._slot_size)
      self._slots[shm.name] = shm
      self._free.append(shm.name)
    return self._free.pop()

  def _submit(self, position: int):
    if position not in self._pending:
      first = position * self.global_batch_size + self.offset
      pending = []
      for j in range(self.local):
        slot = self._slot()
        arg = None if slot is None else (slot, self._slot_size)
        pending.append((self._pool.submit(_element, first + j, arg), slot))
      self._pending[position] = pending

  def batch_at(self, position: int) -> Dict[str, np.ndarray]:
    self._submit(position)
    pending = self._pending.pop(position)
    counters = self.stream.counters
    try:
      elements = []
      for future, slot in pending:
        features, skipped, truncated = future.result()
        with counters.lock:
          counters.skipped.update(skipped)
          counters.truncated.update(truncated)
        if isinstance(features, list):  # its layout in the slot
          features = _views(self._slots[slot].buf, features)
        elif self._shm and not self._slot_size:
          self._slot_size = _layout(features)[1] + _SLOT_SLACK
        elements.append(features)
      batch = {k: np.stack([e[k] for e in elements]) for k in elements[0]}
      del elements, features  # drop the views before the slots are reused
    finally:
      concurrent.futures.wait([future for future, _ in pending])
      self._free.extend(slot for _, slot in pending if slot is not None)
    return batch

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
    self._pending.clear()
    self._finalizer()  # unlink the slots (a worker still writing keeps its own mapping)
