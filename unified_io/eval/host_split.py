"""Evaluation split across hosts: which examples a host predicts, and gathering the results.

Training keeps one global mesh, but decoding is a host-side loop over batches: with one
process per host, every host running the whole evaluation would do the same work N times.
Instead host h predicts a contiguous part of each task's examples (`host_rows`) with a copy
of the parameters on its own devices (`host_local_params`), and the per-example
predictions and loss sums are exchanged (`gather`) so that every host scores the complete
set: the metrics are those of one process evaluating everything, to the last digit.
"""

from __future__ import annotations

import itertools
import pickle
from typing import Any, List, Tuple

import jax
import numpy as np

from unified_io.common import distributed

_CALLS = itertools.count()


def host_rows(num_examples: int, process_index: int, process_count: int) -> range:
  """The examples [start, stop) host `process_index` predicts: contiguous, balanced (sizes
  differ by at most one), covering 0..num_examples-1 exactly once over the hosts."""
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} not in [0, {process_count})")
  start = num_examples * process_index // process_count
  stop = num_examples * (process_index + 1) // process_count
  return range(start, stop)


def _local_copy(x):
  """A global array as one array on this host's first device, from its local shards."""
  if not isinstance(x, jax.Array) or x.is_fully_addressable:
    return x
  if x.is_fully_replicated:
    return x.addressable_data(0)
  out = np.zeros(x.shape, x.dtype)
  covered = np.zeros(x.shape, bool)
  for shard in x.addressable_shards:
    out[shard.index] = np.asarray(shard.data)
    covered[shard.index] = True
  if not covered.all():
    raise ValueError(
      f"A parameter of shape {x.shape} is split across hosts (sharding {x.sharding}); "
      f"evaluation on separate hosts needs every host to hold all parameters: use a "
      f"config.mesh.model no larger than the devices of one host"
    )
  return jax.device_put(out, jax.local_devices()[0])


def host_local_params(params):
  """`params` with every leaf on this host's devices only (no cross-host computation)."""
  if jax.process_count() == 1:
    return params
  return jax.tree.map(_local_copy, params)


def gather(value: Any, name: str) -> List[Any]:
  """Every host's `value` (any picklable object), in process order.

  All hosts must call this the same number of times in the same order (the key counts
  calls); `name` only makes a stuck call recognisable in the coordination service.
  """
  if jax.process_count() == 1:
    return [value]
  key = f"uio_eval/{next(_CALLS)}/{name}"
  return [pickle.loads(b) for b in distributed.all_gather_bytes(key, pickle.dumps(value))]


def concatenate(parts: List[list]) -> list:
  return [item for part in parts for item in part]


def shard() -> Tuple[int, int]:
  return jax.process_index(), jax.process_count()
