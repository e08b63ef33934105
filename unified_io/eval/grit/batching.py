"""Fixed-size batches on this host's devices, for batched GRIT prediction.

`Placement(predictor, batch_size)` decides where a batch runs: the data axis of this
host's devices, with the parameters where they already are when they lie on a mesh of
exactly those devices with a data axis (the trainer's, one process), else replicated onto
a 1-D mesh of them (a restored checkpoint, or `host_split.host_local_params` with several
processes). Calling it on features pads them to `rows` (batch_size rounded up to a
multiple of the data axis) by repeating the first row, and shards the model inputs over
the data axis. Every call then has one shape, so each model function compiles once;
repeating a real row (rather than zeros) keeps the padded rows' decoding no longer than
the real ones', and the network has no cross-row computation, so they cannot change a
real row's output.

`Buckets` gathers items under a key (e.g. the label set they are scored against) and hands
each key's items on `size` at a time, so one batch never mixes shapes.
"""

from __future__ import annotations

import copy
import weakref
from typing import Any, Callable, Dict, Hashable, List

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from unified_io.common import axis_rules
from unified_io.eval import inference

DATA = axis_rules.DATA_AXIS


def _params_mesh(params):
  """The mesh every parameter lies on, when it is one mesh of this host's devices with a
  data axis; else None."""
  meshes = set()
  for leaf in jax.tree.leaves(params):
    sharding = getattr(leaf, "sharding", None)
    if not isinstance(sharding, NamedSharding):
      return None
    meshes.add(sharding.mesh)
  if len(meshes) != 1:
    return None
  (mesh,) = meshes
  local = set(jax.local_devices())
  if DATA not in mesh.axis_names or set(mesh.devices.flat) != local:
    return None
  return mesh


def local_data_mesh():
  """This host's devices on one data axis."""
  devices = jax.local_devices()
  return jax.make_mesh((len(devices),), (DATA,), axis_types=(AxisType.Auto,), devices=devices)


# Predictor -> (the params it was placed for, its placed view, the mesh): the view keeps
# its compiled functions from one call to the next (the trainer's evaluator reuses its
# predictor with new parameters).
_VIEWS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _placed_view(predictor):
  params = predictor.params
  cached = _VIEWS.get(predictor)
  if cached is not None and cached[0] is params:
    return cached[1], cached[2]
  if cached is not None:
    view = cached[1]
  else:
    view = copy.copy(predictor)  # shares the predictor's compiled functions so far
    view.vq = copy.copy(predictor.vq)
  mesh = _params_mesh(params)
  if mesh is None:
    mesh = local_data_mesh()
    view.params = jax.device_put(params, NamedSharding(mesh, PartitionSpec()))
  else:
    view.params = params
  view.vq.params = jax.device_put(predictor.vq.params, NamedSharding(mesh, PartitionSpec()))
  _VIEWS[predictor] = (params, view, mesh)
  return view, mesh


class Placement:
  """Pads features to `rows` and shards them over the data axis; `predictor` is a view of
  the given one whose parameters live on that axis's mesh (see the module docstring)."""

  def __init__(self, predictor, batch_size: int):
    if not isinstance(batch_size, int) or batch_size < 1:
      raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    self.predictor, self.mesh = _placed_view(predictor)
    ways = self.mesh.shape[DATA]
    self.rows = -(-batch_size // ways) * ways
    self._sharding = NamedSharding(self.mesh, PartitionSpec(DATA))

  def __call__(self, features: Dict[str, np.ndarray]) -> Dict[str, Any]:
    n = len(features["text_inputs"])
    if not 0 < n <= self.rows:
      raise ValueError(f"a batch has {n} rows; it must have 1 to {self.rows}")
    out = {}
    for key, value in features.items():
      value = np.asarray(value)
      if n < self.rows:
        value = np.concatenate([value, np.repeat(value[:1], self.rows - n, axis=0)])
      if key in inference.MODEL_INPUTS:
        value = jax.device_put(value, self._sharding)
      out[key] = value
    return out


class Buckets:
  """Items grouped by key, handed to `run(key, items)` in sample order, `size` at a time;
  `flush()` hands on the rest (partial batches)."""

  def __init__(self, size: int, run: Callable[[Hashable, List], None]):
    self.size, self.run = size, run
    self._pending: Dict[Hashable, List] = {}

  def add(self, key: Hashable, item) -> None:
    items = self._pending.setdefault(key, [])
    items.append(item)
    if len(items) == self.size:
      del self._pending[key]
      self.run(key, items)

  def flush(self) -> None:
    pending, self._pending = self._pending, {}
    for key, items in pending.items():
      self.run(key, items)
