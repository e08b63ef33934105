"""Parameter-tree helpers shared by the converters: flat names, shape checks, msgpack files."""

import os

import flax
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
