"""Test-session setup: a persistent XLA compilation cache shared with test subprocesses.

Many trainer tests start fresh processes that compile the same tiny train step; the cache
turns every compile after the first into a file read.

TFDS leaves an empty `<tmp>/tmp*tfds` directory behind every time it constructs a builder
whose data is not prepared (DatasetInfo.initialize_from_bucket makes one before it finds
that GCS is disabled): a few hundred per run of the suite. The session removes the empty
ones that appeared while it ran.
"""

import glob
import os
import tempfile

import pytest

os.environ.setdefault(
  "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"uio-jax-cache-{os.getuid()}")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


_TFDS_LEFTOVERS = os.path.join(tempfile.gettempdir(), "tmp*tfds")
_leftovers_before = set()


def pytest_sessionstart(session):
  del session
  _leftovers_before.update(glob.glob(_TFDS_LEFTOVERS))


def pytest_sessionfinish(session, exitstatus):
  del session, exitstatus
  for path in set(glob.glob(_TFDS_LEFTOVERS)) - _leftovers_before:
    try:
      os.rmdir(path)  # only if empty
    except OSError:
      pass


@pytest.fixture(scope="session")
def builtin_data_dir(tmp_path_factory):
  """A TFDS data_dir with 12 built-in scenes and 12 text examples per split, built once per
  session for the modules that only read it (each used to build its own copy)."""
  from unified_io.data import builtin_dataset

  path = str(tmp_path_factory.mktemp("builtin_tfds"))
  builtin_dataset.build(path, "scenes", num_examples=12)
  builtin_dataset.build(path, "text", num_examples=12)
  return path
