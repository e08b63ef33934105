"""The command lines' persistent compilation cache (unified_io/common/compile_cache.py)."""

import os
import subprocess
import sys

import pytest

from unified_io.common import compile_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A fresh process compiles one program with the cache in argv[1] and prints how many cache
# hits JAX's monitoring reported. The minimum compile time is lowered so that this small
# program is cached at all (JAX's default skips programs that compile in under 1 s).
PROGRAM = """
import sys
import jax
import jax.numpy as jnp
from jax import monitoring
from unified_io.common import compile_cache

hits = []
monitoring.register_event_listener(
  lambda event, **kw: hits.append(event) if event.endswith("cache_hits") else None
)
print("dir", compile_cache.enable(sys.argv[1]))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.jit(lambda x: jnp.tanh(x @ x.T).sum()).lower(jnp.ones((32, 32))).compile()
print("hits", len(hits))
"""


def _compile_in_fresh_process(directory):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  out = subprocess.run(
    [sys.executable, "-c", PROGRAM, directory], capture_output=True, text=True, env=env
  )
  assert out.returncode == 0, out.stderr
  lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
  return lines["dir"], int(lines["hits"])


def test_a_second_process_reads_what_the_first_compiled(tmp_path):
  directory = str(tmp_path / "cache" / "nested")  # created on the way
  path, hits = _compile_in_fresh_process(directory)
  assert path == os.path.abspath(directory) and hits == 0
  assert os.listdir(directory), "the first process wrote no compiled program"
  assert _compile_in_fresh_process(directory)[1] >= 1


def test_empty_turns_it_off_and_bad_directories_are_named(tmp_path):
  assert compile_cache.enable("") is None
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  with pytest.raises(ValueError, match="compilation_cache_dir=.*a_file/sub: cannot create"):
    compile_cache.enable(str(blocker / "sub"))
