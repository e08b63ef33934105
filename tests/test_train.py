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
  out = subprocess.run(
    RUNNER + [str(workdir), str(steps), str(mesh_model), "--devices", str(devices), *extra],
    capture_output=True,
    text=True,
    cwd=ROOT,
  )
  if out.returncode:
    raise AssertionError(f"runner failed:\n{out.stderr[-3000:]}")
  return dict(json.loads(out.stdout.strip().splitlines()[-1])["losses"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """Uninterrupted 6-step run on one device."""
  return run(tmp_path_factory.mktemp("reference"), 6, 1)


@pytest.mark.slow
def test_resume_after_sigkill_is_exact(tmp_path, reference):
  workdir = tmp_path / "killed"
  proc = subprocess.Popen(
    RUNNER + [str(workdir), "6", "1"],
    cwd=ROOT,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
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


@pytest.mark.slow
def test_sharded_losses_equal_unsharded(tmp_path, reference, eight_devices):
  two_by_four = run(tmp_path / "mp4", 6, 4, devices=8)
  for losses in (eight_devices, two_by_four):
    np.testing.assert_allclose(
      [losses[s] for s in range(1, 7)], [reference[s] for s in range(1, 7)], rtol=2e-5
    )


@pytest.mark.slow
def test_restore_onto_another_mesh(tmp_path, eight_devices):
  workdir = tmp_path / "remesh"
  run(workdir, 2, 1, devices=8)  # saved on (data=8, model=1)
  resumed = run(workdir, 6, 4, devices=8)  # restored onto (data=2, model=4)
  assert sorted(resumed) == [3, 4, 5, 6]
  np.testing.assert_allclose(
    [resumed[s] for s in range(3, 7)], [eight_devices[s] for s in range(3, 7)], rtol=2e-5
  )


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_synthetic_hosts_split_the_global_batch():
  from unified_io.data import synthetic as synthetic_batches

  make = lambda i, n: next(
    synthetic_batches.SyntheticBatches(
      tiny.make_model().config,
      tiny_config.get_config().lengths,
      8,
      process_index=i,
      process_count=n,
    )
  )
  whole, hosts = make(0, 1), [make(i, 2) for i in range(2)]
  for k, v in whole.items():
    np.testing.assert_array_equal(np.concatenate([h[k] for h in hosts]), v)


@pytest.mark.slow
def test_two_processes_equal_one_process(tmp_path, eight_devices):
  port = _free_port()
  procs = [
    subprocess.Popen(
      RUNNER + [str(tmp_path / "mh"), "6", "1", "--devices", "4", "--process", f"{i}/2@{port}"],
      cwd=ROOT,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]
  try:
    outs = [p.communicate(timeout=400) for p in procs]
  finally:
    for p in procs:  # a hung trainer ignores SIGTERM (it only sets the stop flag): kill it
      if p.poll() is None:
        p.kill()
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  losses = dict(json.loads(outs[0][0].strip().splitlines()[-1])["losses"])
  np.testing.assert_allclose(
    [losses[s] for s in range(1, 7)], [eight_devices[s] for s in range(1, 7)], rtol=2e-5
  )


# ------------------------------------------------------------ in-process step behaviour


def _state_and_step(freeze=""):
  model = tiny.make_model()
  batch = tiny.make_batch()
  config = tiny_config.get_config()
  params = tiny.init(model, batch)
  optimizer, schedule = optim.build(config.optimizer, params, freeze)
  state = {
    "params": params,
    "opt_state": optimizer.init(params),
    "step": jnp.int32(0),
    "rng": jax.random.PRNGKey(0),
    "skipped": jnp.int32(0),
    "consecutive_skips": jnp.int32(0),
  }
  step = jax.jit(
    functools.partial(
      train.train_step, model=model, optimizer=optimizer, schedule=schedule, z_loss=0.0
    )
  )
  return state, step, batch


def test_frozen_parameters_do_not_move_and_have_no_state():
  state, step, batch = _state_and_step(freeze="^encoder/")
  new_state, _ = step(state, batch)
  same = jax.tree.map(np.array_equal, state["params"]["encoder"], new_state["params"]["encoder"])
  assert all(jax.tree.leaves(same))
  assert not np.array_equal(
    state["params"]["decoder"]["decoder_norm"]["scale"],
    new_state["params"]["decoder"]["decoder_norm"]["scale"],
  )
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
  from configs import small

  return small.get_config().optimizer


def test_adafactor_second_moment_decay_is_paper_beta2():
  # Five real steps of the paper's optimiser against the hand recursion
  # v_k = beta2_k v_{k-1} + (1 - beta2_k) (g_k^2 + eps), beta2_k = 1 - k^-0.8 (k = 1, 2, ...;
  # beta2_1 = 0, so v_1 = g_1^2), eps = 1e-30 as optax adds it. "w" (3x4) keeps a full v;
  # "m" (128x256, both dims >= 128) keeps factored v_row (mean of g^2 + eps over the largest
  # axis, 1) and v_col (over axis 0). Gradients are small enough (global norm ~0.2) that the
  # clipping at 1.0 leaves them as they are.
  config = _paper_optimizer()
  assert config.decay_rate == 0.8 and config.beta1 == 0.9 and config.clip_norm == 1.0
  params = {"w": jnp.zeros((3, 4)), "m": jnp.zeros((128, 256))}
  optimizer, _ = optim.build(config, params)
  state = optimizer.init(params)
  rs = np.random.RandomState(0)
  v, v_row, v_col = np.zeros((3, 4)), np.zeros(128), np.zeros(256)
  for k in range(1, 6):
    grads = {"w": rs.uniform(-0.1, 0.1, (3, 4)), "m": rs.uniform(-1e-3, 1e-3, (128, 256))}
    _, state = optimizer.update(
      jax.tree.map(lambda g: jnp.asarray(g, jnp.float32), grads), state, params
    )
    beta2 = 1 - k**-0.8
    w_sq, m_sq = grads["w"] ** 2 + 1e-30, grads["m"] ** 2 + 1e-30
    v = beta2 * v + (1 - beta2) * w_sq
    v_row = beta2 * v_row + (1 - beta2) * m_sq.mean(axis=1)
    v_col = beta2 * v_col + (1 - beta2) * m_sq.mean(axis=0)
    factored = lambda s: isinstance(s, optax.FactoredState)
    [stats] = [s for s in jax.tree.leaves(state, is_leaf=factored) if factored(s)]
    assert int(stats.count) == k
    np.testing.assert_allclose(stats.v["w"], v, rtol=1e-5)
    np.testing.assert_allclose(stats.v_row["m"], v_row, rtol=1e-5)
    np.testing.assert_allclose(stats.v_col["m"], v_col, rtol=1e-5)


def _opt_state_shardings_on_2x4(freeze=""):
  """(params, opt_state) shardings of the tiny config on a (data=2, model=4) mesh.

  An abstract mesh: shardings are derived without 8 devices in this process.
  """
  from unified_io.common import mesh as mesh_lib
  from unified_io.model import builder as model_lib

  config = tiny_config.get_config()
  config.freeze = freeze
  mesh = jax.sharding.AbstractMesh(
    (2, 4), ("data", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 2
  )
  _, abstract, shardings, _, _ = train.create_train_state(
    config, model_lib.build(config), mesh, mesh_lib.logical_rules(config.mesh)
  )

  def of_type(tree, cls):
    return [
      s for s in jax.tree.leaves(tree, is_leaf=lambda s: isinstance(s, cls)) if isinstance(s, cls)
    ]

  [stats] = of_type(shardings["opt_state"], optax.FactoredState)
  [momentum] = of_type(shardings["opt_state"], optax.EmaState)
  [stat_shapes] = of_type(abstract["opt_state"], optax.FactoredState)
  return shardings["params"], stats, momentum, stat_shapes


def _spec(sharding):
  spec = tuple(sharding.spec)
  while spec and spec[-1] is None:  # P(None, None) and P() both mean replicated
    spec = spec[:-1]
  return spec


def test_opt_state_shardings_follow_the_parameters():
  params, stats, momentum, shapes = _opt_state_shardings_on_2x4()
  # By hand from the t5x rules (mlp and vocab -> model, embed -> replicated): wi_0 is
  # (embed 128, mlp 256) -> P(None, model); the embedding (vocab 3712, embed 128) ->
  # P(model, None). Momentum is shaped like the parameter and shares its spec.
  wi = ("encoder", "layers_0", "mlp", "wi_0", "kernel")
  emb = ("token_embedder", "embedding")
  get = lambda tree, path: functools.reduce(lambda t, k: t[k], path, tree)
  assert _spec(get(params, wi)) == (None, "model") == _spec(get(momentum.ema, wi))
  assert _spec(get(params, emb)) == ("model",) == _spec(get(momentum.ema, emb))
  # Factored second moments: v_row drops the largest axis, v_col the second largest; each
  # keeps the spec of the axes left. wi_0: v_row (128,) replicated, v_col (256,) on model.
  assert get(shapes.v_row, wi).shape == (128,) and get(shapes.v_col, wi).shape == (256,)
  assert _spec(get(stats.v_row, wi)) == () and _spec(get(stats.v_col, wi)) == ("model",)
  # Embedding: v_row (128,) replicated, v_col (3712,) on model; v is a (1,) placeholder.
  assert get(shapes.v_col, emb).shape == (3712,)
  assert _spec(get(stats.v_row, emb)) == () and _spec(get(stats.v_col, emb)) == ("model",)
  assert _spec(get(stats.v, emb)) == () and _spec(stats.count) == ()
  # A square (128, 128) kernel: which axis each statistic dropped is not in its shape, and
  # the two choices differ (model or nothing), so both are replicated.
  query = ("encoder", "layers_0", "attention", "query", "kernel")
  assert _spec(get(params, query)) == (None, "model")
  assert _spec(get(stats.v_row, query)) == () == _spec(get(stats.v_col, query))
  # Frozen parameters have no state: their slots stay empty (MaskedNode) in the shardings.
  _, stats, momentum, _ = _opt_state_shardings_on_2x4(freeze="^encoder/")
  assert isinstance(get(momentum.ema, wi), optax.MaskedNode)
  assert isinstance(get(stats.v_col, wi), optax.MaskedNode)
  assert _spec(get(stats.v_col, emb)) == ("model",)
