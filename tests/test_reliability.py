"""No silent corruption, no clobbered runs: checkpoint integrity on restore, fallback by
config.checkpoint.restore_step, non-finite states never saved, config.json kept when a
resume is refused, and the workdir lease. The trainer runs in-process on the synthetic copy
task with a shrunk tiny config; the runs that refuse to start compile nothing."""

import glob
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny
from unified_io.common import checkpointing
from unified_io.common import workdir_lock
from unified_io.train import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(total_steps, **checkpoint):
  config = tiny.get_config()
  config.data.source = "synthetic"
  config.model.update(
    dict(
      emb_dim=32, num_heads=2, head_dim=16, num_encoder_layers=1, num_decoder_layers=1, mlp_dim=64
    )
  )
  config.train.update(
    dict(
      total_steps=total_steps, batch_size=2, log_every=1, tensorboard=False, geometric_init=False
    )
  )
  config.checkpoint.update(dict(every_steps=2, keep=3, async_save=False))
  for key, value in checkpoint.items():
    config.checkpoint[key] = value
  return config


def _snapshot(workdir):
  """{relative path: sha256} of every file under `workdir`."""
  out = {}
  for path in glob.glob(os.path.join(workdir, "**"), recursive=True):
    if os.path.isfile(path):
      with open(path, "rb") as f:
        out[os.path.relpath(path, workdir)] = hashlib.sha256(f.read()).hexdigest()
  return out


def _read(path, as_json=False):
  with open(path, encoding="utf-8") as f:
    return json.load(f) if as_json else f.read()


def _steps(workdir):
  return sorted(int(n) for n in os.listdir(os.path.join(workdir, "checkpoints")) if n.isdigit())


def _overwrite_4k(step_dir):
  """Overwrites 4 KiB (or the whole file if smaller) inside the largest array data file of
  `step_dir` in place, keeping its size: what a bad disk block or a stray writer does."""
  files = glob.glob(os.path.join(step_dir, "state", "ocdbt.process_0", "d", "*"))
  path = max(files, key=os.path.getsize)
  size = os.path.getsize(path)
  length = min(4096, size)
  with open(path, "r+b") as f:
    f.seek((size - length) // 2)
    f.write(np.random.default_rng(0).integers(0, 256, length, np.uint8).tobytes())
  assert os.path.getsize(path) == size
  return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A workdir trained to step 4 (checkpoints 2 and 4) and its logged losses."""
  workdir = str(tmp_path_factory.mktemp("trained") / "run")
  history = dict(trainer.train(_config(4), workdir))
  assert _steps(workdir) == [2, 4]
  return workdir, history


@pytest.fixture
def workdir(trained, tmp_path):
  copy = str(tmp_path / "run")
  shutil.copytree(trained[0], copy)
  return copy


# ------------------------------------------------------------------ corrupted checkpoints


def test_corrupted_checkpoint_stops_the_run_and_restore_step_falls_back(workdir, trained):
  step_dir = os.path.join(workdir, "checkpoints", "4")
  corrupted = _overwrite_4k(step_dir)
  before = _snapshot(workdir)
  with pytest.raises(checkpointing.CheckpointError) as info:
    trainer.train(_config(6), workdir)
  message = str(info.value)
  assert step_dir in message and "is corrupt" in message
  assert os.path.relpath(corrupted, step_dir) in message
  assert "--config.checkpoint.restore_step=2" in message
  assert _snapshot(workdir) == before  # no log line, no config, no checkpoint touched

  # Asked for explicitly: resume from step 2, the corrupt step 4 moved aside, not deleted.
  history = dict(trainer.train(_config(6, restore_step=2), workdir))
  assert sorted(history) == [3, 4, 5, 6]
  assert history[3] == trained[1][3] and history[4] == trained[1][4]  # exact resume
  assert _steps(workdir) == [2, 4, 6]
  set_aside = os.path.join(workdir, checkpointing.SET_ASIDE, "4")
  assert os.path.isdir(set_aside)
  assert "Falling back to step 2" in _read(os.path.join(workdir, "log.txt"))
  # The same command again would throw away the new steps 4 and 6: refused.
  with pytest.raises(checkpointing.CheckpointError, match="already applied"):
    trainer.train(_config(6, restore_step=2), workdir)
  assert _steps(workdir) == [2, 4, 6]


def test_corruption_is_caught_after_async_saves(tmp_path):
  ckpt = checkpointing.Checkpointer(str(tmp_path), keep=3, every_steps=1, async_save=True)
  state = lambda v: {"params": {"w": jnp.full((256, 64), v, jnp.float32)}, "step": jnp.int32(v)}
  for step in (1, 2):
    assert ckpt.save(step, state(step), {"position": step})
  ckpt.close()
  step_dir = os.path.join(ckpt.directory, "2")
  assert os.path.exists(os.path.join(step_dir, checkpointing.MANIFEST_PREFIX + "0.json"))
  _overwrite_4k(step_dir)
  abstract = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state(0)
  )
  with pytest.raises(checkpointing.CheckpointError, match=f"{step_dir} is corrupt.*sha256"):
    checkpointing.Checkpointer(str(tmp_path)).restore(abstract)
  restored, _ = checkpointing.Checkpointer(str(tmp_path)).restore(abstract, step=1)
  assert int(restored["step"]) == 1


def test_non_finite_state_is_never_saved_and_keeps_the_good_ones(tmp_path):
  ckpt = checkpointing.Checkpointer(str(tmp_path), keep=2, every_steps=1, async_save=False)
  state = lambda v: {"params": {"w": jnp.full((8, 8), v, jnp.float32)}, "step": jnp.int32(0)}
  assert ckpt.save(1, state(1.0), {}) and ckpt.save(2, state(2.0), {})
  for step in (3, 4, 5):  # a diverged run: every later state is NaN
    assert not ckpt.save(step, state(np.nan), {})
  assert not ckpt.save(6, state(np.inf), {}, force=True)
  assert list(ckpt.manager.all_steps()) == [1, 2]  # `keep` rotated nothing out
  ckpt.close()


def test_a_non_finite_checkpoint_is_refused_on_restore(tmp_path):
  # Written around the checks (as by older code): the value check still catches it.
  state = {"params": {"w": jnp.full((8, 8), jnp.nan)}, "step": jnp.int32(3)}
  ckpt = checkpointing.Checkpointer(str(tmp_path), every_steps=1, async_save=False)
  import orbax.checkpoint as ocp

  ckpt.manager.save(
    3, args=ocp.args.Composite(state=ocp.args.StandardSave(state), data=ocp.args.JsonSave({}))
  )
  ckpt.close()
  abstract = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state
  )
  with pytest.raises(checkpointing.CheckpointError, match="checkpoints/3 holds non-finite"):
    checkpointing.Checkpointer(str(tmp_path)).restore(abstract)


# ------------------------------------------------------------------------ resume config


def test_other_model_config_is_refused_before_touching_the_workdir(workdir):
  before = _snapshot(workdir)
  config = _config(6)
  config.model.mlp_dim = 128
  config.data.workers = 7  # harmless: not reported
  config.checkpoint.keep = 5  # may change on resume
  with pytest.raises(checkpointing.ConfigMismatchError) as info:
    trainer.train(config, workdir)
  message = str(info.value)
  assert "model.mlp_dim: 64 -> 128" in message and "workers" not in message
  assert os.path.join(workdir, "config.json") in message
  assert _snapshot(workdir) == before
  assert not os.path.exists(os.path.join(workdir, workdir_lock.LOCK_NAME))


def test_config_is_rewritten_only_after_a_successful_start(workdir):
  # Same model, but the checkpoint cannot be read: config.json keeps its old content.
  config = _config(6)
  config.train.total_steps = 77
  path = os.path.join(workdir, "config.json")
  saved = _read(path)
  for name in glob.glob(os.path.join(workdir, "checkpoints", "*", "state", "_METADATA")):
    os.remove(name)
  with pytest.raises(checkpointing.CheckpointError):
    trainer.train(config, workdir)
  assert _read(path) == saved


# ---------------------------------------------------------------------------------- lease


def test_second_trainer_is_refused_while_the_lease_is_held(workdir):
  with workdir_lock.Lease(workdir):
    holder = _read(os.path.join(workdir, workdir_lock.LOCK_NAME), as_json=True)
    before = _snapshot(workdir)
    with pytest.raises(workdir_lock.WorkdirLockedError) as info:
      trainer.train(_config(4), workdir)
    assert f"pid {os.getpid()}" in str(info.value) and socket.gethostname() in str(info.value)
    assert isinstance(info.value, checkpointing.CheckpointError)  # the CLI's clean exit
    assert _snapshot(workdir) == before  # log.txt not appended to, nothing else written
  assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
  assert not os.path.exists(os.path.join(workdir, workdir_lock.LOCK_NAME))


def _dead_pid():
  proc = subprocess.Popen([sys.executable, "-c", "pass"])
  proc.wait()
  return proc.pid


def test_stale_lease_of_a_dead_process_is_taken_over(workdir):
  lock = os.path.join(workdir, workdir_lock.LOCK_NAME)
  pid = _dead_pid()
  with open(lock, "w") as f:
    json.dump(
      {
        "host": socket.gethostname(),
        "pid": pid,
        "start_time": time.time(),
        "heartbeat_time": time.time(),
        "token": "x",
      },
      f,
    )
  trainer.train(_config(4), workdir)  # already at step 4: restores, trains nothing
  log = _read(os.path.join(workdir, "log.txt"))
  assert f"Took over the stale lease {lock}" in log and f"process {pid}" in log
  assert not os.path.exists(lock)


def test_lease_heartbeat_and_timeout(tmp_path):
  lock = str(tmp_path / workdir_lock.LOCK_NAME)
  with workdir_lock.Lease(str(tmp_path), heartbeat_seconds=0.05):
    first = _read(lock, as_json=True)["heartbeat_time"]
    time.sleep(0.5)
    assert _read(lock, as_json=True)["heartbeat_time"] > first
  # A holder on another machine whose heartbeat stopped 11 minutes ago.
  with open(lock, "w") as f:
    json.dump(
      {
        "host": "elsewhere",
        "pid": 1,
        "start_time": 0,
        "heartbeat_time": time.time() - 660,
        "token": "x",
      },
      f,
    )
  with workdir_lock.Lease(str(tmp_path)) as lease:
    assert "no heartbeat for 6" in lease.message
  # Another machine with a recent heartbeat: refused.
  with open(lock, "w") as f:
    json.dump(
      {
        "host": "elsewhere",
        "pid": 1,
        "start_time": 0,
        "heartbeat_time": time.time() - 60,
        "token": "x",
      },
      f,
    )
  with pytest.raises(workdir_lock.WorkdirLockedError, match="host elsewhere pid 1"):
    workdir_lock.Lease(str(tmp_path)).acquire()


@pytest.mark.slow
def test_second_trainer_process_exits_non_zero(tmp_path):
  workdir = str(tmp_path / "run")
  runner = [sys.executable, os.path.join(ROOT, "tests", "train_runner.py"), workdir, "4", "1"]
  with workdir_lock.Lease(workdir):
    out = subprocess.run(runner, capture_output=True, text=True, cwd=ROOT, timeout=300)
  assert out.returncode != 0
  assert "WorkdirLockedError" in out.stderr and f"pid {os.getpid()}" in out.stderr
  assert sorted(os.listdir(workdir)) == []  # the lease is gone, nothing else was written
