"""Test-session setup: a persistent XLA compilation cache shared with test subprocesses.

Many trainer tests start fresh processes that compile the same tiny train step; the cache
turns every compile after the first into a file read.
"""

import os
import tempfile

import pytest

os.environ.setdefault(
  "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"uio-jax-cache-{os.getuid()}")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


@pytest.fixture(scope="session")
def builtin_data_dir(tmp_path_factory):
  """A TFDS data_dir with 12 built-in scenes and 12 text examples per split, built once per
  session for the modules that only read it (each used to build its own copy)."""
  from unified_io.data import builtin_dataset

  path = str(tmp_path_factory.mktemp("builtin_tfds"))
  builtin_dataset.build(path, "scenes", num_examples=12)
  builtin_dataset.build(path, "text", num_examples=12)
  return path
