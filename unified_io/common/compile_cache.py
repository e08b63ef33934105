"""JAX's persistent compilation cache for the command lines (train, evaluate).

The padding-free train step compiles one program per batch-part shape (19 over `make
train`'s 3000 steps, 12-50 s each on a 2-core CPU) and the evaluators one per task and batch
shape; a rerun, a resumed run or a second run of the same config would compile them all
again. With the cache a program whose compilation took at least
`jax_persistent_cache_min_compile_time_secs` (JAX's default, 1 s) is written to DIR and read
back by any later process that compiles the same program on the same kind of machine.

The directory must be trusted: JAX runs what it finds there (JAX's own warning), so the
default is under the user's home, never a shared path. It is a process-wide setting, so only
the command lines turn it on and the library leaves it alone (the test suite sets its own
through JAX_COMPILATION_CACHE_DIR in tests/conftest.py, which the default below follows).
"""

import os
from typing import Optional

import jax

# --compilation_cache_dir's default: JAX's own variable if it is set, else a per-user dir.
DEFAULT_DIR = os.environ.get("JAX_COMPILATION_CACHE_DIR") or "~/.cache/unified_io/jax"
FLAG_HELP = (
  "Directory of JAX's persistent compilation cache: programs compiled by an earlier run are "
  "read from it instead of being compiled again. Empty: off. Must be a directory only you "
  "can write to."
)


def enable(directory: Optional[str]) -> Optional[str]:
  """Turns the cache on in `directory` (created if missing); returns the absolute path, or
  None when `directory` is empty. Must run before the process compiles its first program.

  Raises ValueError naming the directory when it cannot be created or written."""
  if not directory:
    return None
  path = os.path.abspath(os.path.expanduser(directory))
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise ValueError(f"--compilation_cache_dir={directory}: cannot create {path} ({e})") from e
  if not os.access(path, os.W_OK):
    raise ValueError(f"--compilation_cache_dir={directory}: {path} is not writable")
  jax.config.update("jax_compilation_cache_dir", path)
  return path
