"""Test-session setup: a persistent XLA compilation cache shared with test subprocesses.

Many trainer tests start fresh processes that compile the same tiny train step; the cache
turns every compile after the first into a file read.
"""

import os
import tempfile

os.environ.setdefault(
  "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"uio-jax-cache-{os.getuid()}")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
