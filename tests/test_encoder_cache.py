"""Frozen-encoder training from cached encoder outputs (unified_io/train/encoder_cache.py).

The reference is the normal padded step (step.train_step) with the encoder frozen: the
cached decoder-only step must give its parameters on the same batches in the same order.
Tiny config, a few steps; the trainer runs in this process on the synthetic source.
"""

import functools
import types

import flax.linen as nn
import jax
import numpy as np
import pytest

from configs import tiny as tiny_config
from unified_io.common import checkpointing
from unified_io.common import mesh as mesh_lib
from unified_io.model import builder as model_lib
from unified_io.train import encoder_cache
from unified_io.train import optim
from unified_io.train import step as step_lib
from unified_io.train import trainer as train

FREEZE = encoder_cache.FREEZE_EXAMPLE  # the encoder and the token embedding it reads
BATCH = 8
EXAMPLES = 16  # two cached batches


def _config(source="mixture"):
  config = tiny_config.get_config()
  config.freeze = FREEZE
  # Every input patch in the normal step too: the cache's eval-time path is then exactly
  # what the training step encodes.
  config.model.train_image_patches = 0
  # Fewer layers than tiny's 3 + 3: compiling the steps is most of these tests' time.
  config.model.update(dict(num_encoder_layers=1, num_decoder_layers=2))
  config.train.batch_size = BATCH
  config.train.encoder_cache.examples = EXAMPLES
  config.data.source = source
  config.data.workers = 1
  return config


def _flat(tree):
  return {
    optim.path_name(p): np.asarray(v) for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]
  }


# --------------------------------------------------------- (a) cached step = normal step


def test_cached_decoder_step_gives_the_normal_steps_parameters():
  config = _config()  # the built-in mixture: image targets go through the VQ-GAN
  mesh, rules = mesh_lib.make_mesh(config.mesh), mesh_lib.logical_rules(config.mesh)
  model = model_lib.build(config)
  assert encoder_cache.check(config, model) == EXAMPLES
  init_state, _, shardings, optimizer, schedule = train.create_train_state(
    config, model, mesh, rules
  )
  inputs = train.Inputs(config, model.config)
  stream = [inputs.batches.batch_at(i) for i in range(EXAMPLES // BATCH)]  # before it closes
  lines = []
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    init = jax.jit(init_state, out_shardings=shardings)
    normal_state, cached_state = init(), init()
    before = _flat(jax.device_get(normal_state["params"]))
    vq_params = jax.device_put(inputs.vq.params, mesh_lib.replicated(mesh))
    log = types.SimpleNamespace(line=lines.append)
    cache, make_step = encoder_cache.for_training(
      cached_state, config, model, optimizer, schedule, inputs, vq_params, mesh, shardings, log
    )
    normal_fn = jax.jit(
      functools.partial(
        step_lib.train_step,
        model=model,
        optimizer=optimizer,
        schedule=schedule,
        z_loss=config.loss.z_loss,
        vq_config=inputs.vq.config,
        num_tasks=len(inputs.task_names),
      ),
      in_shardings=(shardings, mesh_lib.batch_sharding(mesh), mesh_lib.replicated(mesh)),
      out_shardings=(shardings, mesh_lib.replicated(mesh)),
      donate_argnums=0,
    )
    normal = step_lib.PaddedStep(normal_fn, vq_params, mesh, BATCH, normal_state, stream[0])
    cached = make_step(cached_state, cache.batch_for_step(0))
    used = []
    for _ in range(4):  # two epochs over the two cached batches
      local = next(cache)
      # Which stream batch this is, from its content (not from the cache's own order).
      [j] = [
        i for i, b in enumerate(stream) if np.array_equal(b["text_targets"], local["text_targets"])
      ]
      used.append(j)
      normal_state, normal_metrics = normal(normal_state, stream[j])
      cached_state, cached_metrics = cached(cached_state, local)
      np.testing.assert_allclose(cached_metrics["loss"], normal_metrics["loss"], rtol=1e-5)
      np.testing.assert_allclose(
        cached_metrics["task_loss_sum"], normal_metrics["task_loss_sum"], rtol=1e-5, atol=1e-5
      )
      np.testing.assert_array_equal(cached_metrics["task_tokens"], normal_metrics["task_tokens"])
  assert sorted(used[:2]) == sorted(used[2:]) == [0, 1]  # each epoch takes every batch once
  assert lines and lines[0].startswith(f"Encoder cache: {EXAMPLES} examples (2 batches of 8")
  normal_params = _flat(jax.device_get(normal_state["params"]))
  cached_params = _flat(jax.device_get(cached_state["params"]))
  moved = 0
  for path, value in before.items():
    if path.startswith(("encoder/", "token_embedder/")):  # frozen: bit-identical, unchanged
      np.testing.assert_array_equal(cached_params[path], value, err_msg=path)
      np.testing.assert_array_equal(normal_params[path], value, err_msg=path)
    else:
      # Two separately compiled programs may round differently (on this CPU they agree
      # bit for bit); the tolerance allows float32 rounding through four Adafactor steps.
      np.testing.assert_allclose(
        cached_params[path], normal_params[path], rtol=1e-5, atol=1e-7, err_msg=path
      )
      moved += not np.array_equal(cached_params[path], value)
  assert moved > 0.9 * sum(not p.startswith(("encoder/", "token_embedder/")) for p in before)


def test_encoder_reads_the_encoder_and_the_shared_token_embedding():
  model = model_lib.build(_config())
  shapes = nn.unbox(model_lib.abstract_params(model))
  every = [optim.path_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(shapes)[0]]
  expected = {p for p in every if p.startswith("encoder/")} | {"token_embedder/embedding"}
  assert set(encoder_cache.encoder_param_paths(model)) == expected


def test_each_epoch_is_a_fresh_permutation_and_a_function_of_the_step():
  batches = [{"encoded": np.full((2, 3, 4), i, np.float32)} for i in range(5)]
  make = lambda seed: encoder_cache.EncoderCache(
    batches, np.zeros((1, 3, 4)), global_batch_size=2, seed=seed, seconds=0, compile_seconds=0
  )
  cache = make(0)
  order = [int(next(cache)["encoded"][0, 0, 0]) for _ in range(15)]
  epochs = [order[i : i + 5] for i in range(0, 15, 5)]
  assert all(sorted(e) == list(range(5)) for e in epochs)
  assert len({tuple(e) for e in epochs}) > 1  # the order changes with the epoch
  other = make(1)
  assert [other.batch_index(s) for s in range(15)] != order  # and with config.seed
  fresh = make(0)
  fresh.set_state({"position": 7})  # resumed at step 7: the same batch as uninterrupted
  assert fresh.batch_index(7) == order[7] and next(fresh)["encoded"][0, 0, 0] == order[7]
  assert cache.get_state() == {"position": 15}
  assert cache.examples == 10 and cache.nbytes == 5 * 2 * 3 * 4 * 4 + 3 * 4 * 8


# ----------------------------------------------------------------- (b) exact resume


def _run(workdir, total_steps):
  config = _config(source="synthetic")
  config.train.update(dict(total_steps=total_steps, log_every=1, tensorboard=False))
  config.checkpoint.update(dict(every_steps=2, async_save=False))
  return config, dict(train.train(config, str(workdir)))


def _params(config, workdir):
  model = model_lib.build(config)
  mesh, rules = mesh_lib.make_mesh(config.mesh), mesh_lib.logical_rules(config.mesh)
  _, abstract, _, _, _ = train.create_train_state(config, model, mesh, rules)
  return _flat(checkpointing.restore_params(str(workdir), abstract["params"]))


@pytest.mark.slow
def test_resumed_cached_run_equals_an_uninterrupted_one(tmp_path):
  config, whole = _run(tmp_path / "whole", 6)  # 3 epochs of the 2 cached batches
  _, first = _run(tmp_path / "split", 3)
  _, second = _run(tmp_path / "split", 6)  # resumed at step 3, inside epoch 1
  assert sorted(whole) == [1, 2, 3, 4, 5, 6] and sorted(first) == [1, 2, 3]
  assert sorted(second) == [4, 5, 6]
  for step, loss in {**first, **second}.items():
    assert loss == whole[step], (step, loss, whole[step])
  log = (tmp_path / "split" / "log.txt").read_text()
  assert "Resumed from" in log and log.count(f"Encoder cache: {EXAMPLES} examples") == 2
  whole_params, split_params = (
    _params(config, tmp_path / "whole"),
    _params(config, tmp_path / "split"),
  )
  for path, value in whole_params.items():
    np.testing.assert_array_equal(split_params[path], value, err_msg=path)


# -------------------------------------------------------------------- (c) refusals


@pytest.mark.parametrize(
  "key, value, names",
  [
    ("freeze", "^encoder/", ["config.freeze='^encoder/'", "token_embedder/embedding"]),
    ("freeze", "^decoder/", ["config.freeze='^decoder/'", "encoder/"]),
    ("freeze", "", ["config.freeze=''"]),
    ("train.encoder_cache.examples", 12, ["examples=12", "config.train.batch_size=8"]),
    ("train.encoder_cache.examples", -8, ["config.train.encoder_cache.examples=-8"]),
    ("data.schedule", "stop_and_go", ['config.data.schedule="stop_and_go"']),
    ("data.workers_kind", "process", ['config.data.workers_kind="process"']),
    ("model.dropout_rate", 0.1, ["config.model.dropout_rate=0.1", "without dropout"]),
  ],
)
def test_refusals_name_the_config_key(key, value, names):
  config = _config()
  *parents, leaf = key.split(".")
  node = config
  for part in parents:
    node = node[part]
  node[leaf] = value
  with pytest.raises(ValueError) as error:
    encoder_cache.check(config, model_lib.build(config))
  for name in names:
    assert name in str(error.value), (name, str(error.value))


def test_what_is_accepted():
  config = _config()
  config.freeze = "^(encoder|token_embedder|decoder/layers_0)/"  # part of the decoder too
  assert encoder_cache.check(config, model_lib.build(config)) == EXAMPLES
  config.freeze, config.train.encoder_cache.examples = "", 0  # off: nothing is checked
  assert encoder_cache.check(config, model_lib.build(config)) == 0


def test_the_trainer_refuses_before_training(tmp_path):
  config = _config(source="synthetic")
  config.data.workers_kind = "process"
  with pytest.raises(ValueError, match='config.data.workers_kind="process"'):
    train.train(config, str(tmp_path))
  assert not (tmp_path / "checkpoints").exists()
