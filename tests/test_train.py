"""Trainer tests: exact resume after SIGKILL, sharded = unsharded, multi-host = single host,
restore onto another mesh, freezing, non-finite skips. Runs use the tiny config in fresh
processes (tests/train_runner.py) so fake CPU device counts apply."""
import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import tiny as tiny_config
from tests import tiny
from unified_io.train import optim
from unified_io.train import trainer as train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = [sys.executable, os.path.join(ROOT, "tests", "train_runner.py")]


def run(workdir, steps, mesh_model, devices=1, extra=()):
  out = subprocess.run(RUNNER + [str(workdir), str(steps), str(mesh_model), "--devices",
                                 str(devices), *extra],
                       capture_output=True, text=True, cwd=ROOT)
  if out.returncode:
    raise AssertionError(f"runner failed:\n{out.stderr[-3000:]}")
  return dict(json.loads(out.stdout.strip().splitlines()[-1])["losses"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """Uninterrupted 6-step run on one device."""
  return run(tmp_path_factory.mktemp("reference"), 6, 1)


def test_resume_after_sigkill_is_exact(tmp_path, reference):
  workdir = tmp_path / "killed"
  proc = subprocess.Popen(RUNNER + [str(workdir), "6", "1"], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 240
  ckpt = workdir / "checkpoints" / "2"
  while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
    time.sleep(0.05)
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  assert ckpt.exists(), "the run never wrote its step-2 checkpoint"
  resumed = run(workdir, 6, 1)
  assert min(resumed) > 1 and max(resumed) == 6  # it resumed, it did not restart
  for step, loss in resumed.items():
    assert loss == reference[step], (step, loss, reference[step])
  log = (workdir / "log.txt").read_text()
  assert "Resumed from" in log
  # Progress lines carry an estimated FLOP utilisation against a stated peak.
  assert re.search(r"GFLOP per device .*peak [0-9.e+-]+ TFLOP/s per device \(measured", log)
  assert re.search(r"step 6 loss [0-9.]+ .* flop_util [0-9.]+% ", log)


@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory):
  return run(tmp_path_factory.mktemp("dp8"), 6, 1, devices=8)


def test_sharded_losses_equal_unsharded(tmp_path, reference, eight_devices):
  two_by_four = run(tmp_path / "mp4", 6, 4, devices=8)
  for losses in (eight_devices, two_by_four):
    np.testing.assert_allclose([losses[s] for s in range(1, 7)],
                               [reference[s] for s in range(1, 7)], rtol=2e-5)


def test_restore_onto_another_mesh(tmp_path, eight_devices):
  workdir = tmp_path / "remesh"
  run(workdir, 2, 1, devices=8)  # saved on (data=8, model=1)
  resumed = run(workdir, 6, 4, devices=8)  # restored onto (data=2, model=4)
  assert sorted(resumed) == [3, 4, 5, 6]
  np.testing.assert_allclose([resumed[s] for s in range(3, 7)],
                             [eight_devices[s] for s in range(3, 7)], rtol=2e-5)


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_synthetic_hosts_split_the_global_batch():
  from unified_io.data import synthetic as synthetic_batches  # pylint: disable=g-import-not-at-top
  make = lambda i, n: next(synthetic_batches.SyntheticBatches(
      tiny.make_model().config, tiny_config.get_config().lengths, 8, process_index=i,
      process_count=n))
  whole, hosts = make(0, 1), [make(i, 2) for i in range(2)]
  for k, v in whole.items():
    np.testing.assert_array_equal(np.concatenate([h[k] for h in hosts]), v)


def test_two_processes_equal_one_process(tmp_path, eight_devices):
  port = _free_port()
  procs = [subprocess.Popen(RUNNER + [str(tmp_path / "mh"), "6", "1", "--devices", "4",
                                      "--process", f"{i}/2@{port}"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  try:
    outs = [p.communicate(timeout=400) for p in procs]
  finally:
    for p in procs:  # a hung trainer ignores SIGTERM (it only sets the stop flag): kill it
      if p.poll() is None:
        p.kill()
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  losses = dict(json.loads(outs[0][0].strip().splitlines()[-1])["losses"])
  np.testing.assert_allclose([losses[s] for s in range(1, 7)],
                             [eight_devices[s] for s in range(1, 7)], rtol=2e-5)


# ------------------------------------------------------------ in-process step behaviour


def _state_and_step(freeze=""):
  model = tiny.make_model()
  batch = tiny.make_batch()
  config = tiny_config.get_config()
  params = tiny.init(model, batch)
  optimizer, schedule = optim.build(config.optimizer, params, freeze)
  state = {"params": params, "opt_state": optimizer.init(params), "step": jnp.int32(0),
           "rng": jax.random.PRNGKey(0), "skipped": jnp.int32(0),
           "consecutive_skips": jnp.int32(0)}
  step = jax.jit(functools.partial(train.train_step, model=model, optimizer=optimizer,
                                   schedule=schedule, z_loss=0.0))
  return state, step, batch


def test_frozen_parameters_do_not_move_and_have_no_state():
  state, step, batch = _state_and_step(freeze="^encoder/")
  new_state, _ = step(state, batch)
  same = jax.tree.map(np.array_equal, state["params"]["encoder"], new_state["params"]["encoder"])
  assert all(jax.tree.leaves(same))
  assert not np.array_equal(state["params"]["decoder"]["decoder_norm"]["scale"],
                            new_state["params"]["decoder"]["decoder_norm"]["scale"])
  # Optimizer state exists only for trainable parameters: freezing the encoder removes at
  # least its momentum (one value per parameter) from the state.
  frozen = sum(x.size for x in jax.tree.leaves(state["opt_state"]))
  full = sum(x.size for x in jax.tree.leaves(_state_and_step()[0]["opt_state"]))
  encoder_momentum = sum(x.size for x in jax.tree.leaves(state["params"]["encoder"]))
  assert full - frozen >= encoder_momentum
  with pytest.raises(ValueError, match="matches no parameter"):
    optim.build(tiny_config.get_config().optimizer, state["params"], "^nothing_here/")


def test_non_finite_loss_skips_the_update():
  state, step, batch = _state_and_step()
  bad = dict(batch, loss_weight=jnp.array([jnp.nan, 1.0]))
  new_state, metrics = step(state, bad)
  assert int(metrics["skipped"]) == 1 and int(new_state["skipped"]) == 1
  assert int(new_state["consecutive_skips"]) == 1 and int(new_state["step"]) == 1
  same = jax.tree.map(np.array_equal, state["params"], new_state["params"])
  assert all(jax.tree.leaves(same))
  good_state, metrics = step(new_state, dict(batch, loss_weight=jnp.ones(2)))
  assert int(good_state["consecutive_skips"]) == 0 and int(metrics["skipped"]) == 0


def test_learning_rate_schedule_follows_the_paper():
  schedule = optim.learning_rate_schedule(_paper_optimizer())
  np.testing.assert_allclose(schedule(1), 1e-2)
  np.testing.assert_allclose(schedule(10_000), 1e-2)
  np.testing.assert_allclose(schedule(40_000), 1e-2 * 0.5, rtol=1e-6)  # 1/sqrt(k)


def _paper_optimizer():
  from configs import small  # pylint: disable=g-import-not-at-top
  return small.get_config().optimizer


def test_adafactor_second_moment_decay_is_paper_beta2():
  # optax's adafactor decay_rate 0.8 gives beta2 = 1 - k^-0.8 at step k.
  config = _paper_optimizer()
  assert config.decay_rate == 0.8 and config.beta1 == 0.9 and config.clip_norm == 1.0
  assert isinstance(optim.build(config, {"w": jnp.zeros((4, 4))})[0],
                    optax.GradientTransformation)
