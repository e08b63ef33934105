"""Parameter-tree helpers shared by the converters: flat names, shape checks, msgpack files."""

import os
import re

import flax
import jax
import jax.numpy as jnp
import numpy as np


def flat_shapes(tree):
  """{"a/b/kernel": shape tuple} for a nested dict of arrays (or ShapeDtypeStructs)."""
  return {"/".join(k): tuple(np.shape(v)) for k, v in flax.traverse_util.flatten_dict(tree).items()}


def check_shapes(got, want, what, limit=50):
  """Raises ValueError listing missing, unexpected and wrongly shaped names.

  `got` and `want` map flat names to shape tuples (see `flat_shapes`).
  """
  missing = sorted(set(want) - set(got))
  unexpected = sorted(set(got) - set(want))
  wrong = sorted(
    f"{k}: {got[k]} != expected {want[k]}"
    for k in set(got) & set(want)
    if tuple(got[k]) != tuple(want[k])
  )
  if missing or unexpected or wrong:
    lines = [f"{what} does not match:"]
    for title, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
      if names:
        lines.append(
          f"  {title} ({len(names)}): "
          + ", ".join(names[:limit])
          + (" ..." if len(names) > limit else "")
        )
    raise ValueError("\n".join(lines))


def read_msgpack(path, what="checkpoint"):
  """Nested dict from a flax msgpack file; clear errors naming the file."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{what} {path} does not exist")
  with open(path, "rb") as f:
    try:
      return flax.serialization.msgpack_restore(f.read())
    except Exception as e:  # msgpack raises several unrelated types on corrupt input
      raise ValueError(f"{path} is not a flax msgpack {what}: {e}") from e


_LAYER = re.compile(r"^layers_(\d+)$")


def stack_layers(params):
  """layers_0..layers_{n-1} -> one `layers` subtree with a leading layer axis (the layout
  of `NetworkConfig.scan_layers`)."""
  out = {}
  for name, sub in params.items():
    if not isinstance(sub, dict):
      out[name] = sub
      continue
    indices = sorted(int(m.group(1)) for k in sub if (m := _LAYER.match(k)))
    rest = {k: v for k, v in sub.items() if not _LAYER.match(k)}
    if indices:
      if indices != list(range(len(indices))):
        raise ValueError(f"{name}: layer indices {indices} are not 0..{len(indices) - 1}")
      layers = [sub[f"layers_{i}"] for i in indices]
      rest["layers"] = jax.tree.map(lambda *xs: jnp.stack(xs), *layers)
      out[name] = rest
    else:
      out[name] = stack_layers(sub) if name in ("encoder", "decoder") else sub
  return out


def unstack_layers(params):
  """Inverse of `stack_layers`."""
  out = {}
  for name, sub in params.items():
    if isinstance(sub, dict) and "layers" in sub and name in ("encoder", "decoder"):
      stacked = sub["layers"]
      n = jax.tree.leaves(stacked)[0].shape[0]
      rest = {k: v for k, v in sub.items() if k != "layers"}
      for i in range(n):
        rest[f"layers_{i}"] = jax.tree.map(lambda x: x[i], stacked)
      out[name] = rest
    else:
      out[name] = sub
  return out
