"""Device mesh, logical-axis rules and the shardings of parameters, state and batches.

The mesh is 2-D: (data, model). `config.mesh.model` devices hold one model replica's shards;
the data axis takes the rest. Parameters are placed by the logical names they are annotated
with (unified_io/model/layers.py, network.py) through `config.mesh.rules` (t5x's standard
rules by default); `config.mesh.fsdp` also splits them over the data axis
(axis_rules.with_fsdp). Axis types are Auto: XLA propagates shardings from the annotations.
"""

import flax.linen as nn
import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from unified_io.common import axis_rules as P


def make_mesh(mesh_config, devices=None):
  devices = list(jax.devices() if devices is None else devices)
  model = int(mesh_config.model)
  if model < 1 or len(devices) % model:
    raise ValueError(
      f"config.mesh.model={model} must be >= 1 and divide the {len(devices)} devices"
    )
  data = len(devices) // model
  if mesh_config.get("data", -1) not in (-1, data):
    raise ValueError(
      f"config.mesh.data={mesh_config.data} but {len(devices)} devices with "
      f"model={model} leave {data} for data (use -1 for 'the rest')"
    )
  names, types = (P.DATA_AXIS, P.MODEL_AXIS), (AxisType.Auto, AxisType.Auto)
  try:
    return jax.make_mesh((data, model), names, axis_types=types, devices=devices)
  except NotImplementedError:
    # A TPU slice whose physical axes are no product of the mesh's sizes (model=4 on v4's
    # 8x8x8 cube): jax.make_mesh refuses to split a physical axis; splitting one still
    # keeps each model group on neighbouring chips.
    grid = mesh_utils.create_device_mesh((data, model), devices, allow_split_physical_axes=True)
    return jax.sharding.Mesh(grid, names, axis_types=types)


def logical_rules(mesh_config):
  rules = mesh_config.get("rules")
  rules = tuple((name, axis) for name, axis in rules) if rules else P.STANDARD_RULES
  if mesh_config.get("fsdp", False):
    rules = P.with_fsdp(rules)
  return rules


def _divisible(shape, spec, mesh):
  """`spec` with every mesh axis dropped that does not divide its dimension.

  E.g. the 2 heads of a tiny model's relative-bias table on a 4-way model axis stay
  replicated instead of failing; real sizes divide and are unaffected.
  """
  fixed = []
  for dim, axes in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
    names = (axes,) if isinstance(axes, str) else tuple(axes or ())
    size = 1
    for name in names:
      size *= mesh.shape[name]
    fixed.append(axes if dim % size == 0 else None)
  return PartitionSpec(*fixed)


def param_shardings(boxed_abstract_params, mesh, rules):
  """NamedShardings for a boxed (LogicallyPartitioned) parameter tree."""
  specs = nn.logical_to_mesh(nn.get_partition_spec(boxed_abstract_params), rules)
  shapes = nn.unbox(boxed_abstract_params)
  return jax.tree.map(
    lambda x, spec: NamedSharding(mesh, _divisible(x.shape, spec, mesh)),
    shapes,
    specs,
    is_leaf=lambda x: isinstance(x, PartitionSpec),
  )


def replicated(mesh):
  return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh):
  """Leading (batch) axis split over the data axis; everything else replicated."""
  return NamedSharding(mesh, PartitionSpec(P.DATA_AXIS))


def global_batch(local_batch, mesh, global_batch_size=None):
  """Per-host numpy batch -> one global jax.Array per key, sharded over the data axis.

  With `global_batch_size`, a host whose row count is not its share fails here, instead
  of compiling a step for another batch shape than the other hosts (which hangs them).
  """
  sharding = batch_sharding(mesh)
  out = {}
  for k, v in local_batch.items():
    v = np.asarray(v)
    global_shape = None
    if global_batch_size is not None:
      share = global_batch_size // jax.process_count()
      if v.shape[0] != share:
        raise ValueError(
          f"Host {jax.process_index()} has {v.shape[0]} rows of {k!r}, its share "
          f"of the global batch {global_batch_size} is {share}"
        )
      global_shape = (global_batch_size,) + v.shape[1:]
    out[k] = jax.make_array_from_process_local_data(sharding, v, global_shape)
  return out
