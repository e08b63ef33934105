"""Parameter sharding over the data axis as well (config.mesh.fsdp, axis_rules.with_fsdp)."""

import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import ml_collections
import numpy as np
import optax
import pytest

from configs import tiny as tiny_config
from unified_io.common import axis_rules as P
from unified_io.common import mesh as mesh_lib
from unified_io.model import builder as model_lib
from unified_io.train import config_check
from unified_io.train import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _mesh_config(**kw):
  return ml_collections.ConfigDict(dict(dict(model=1, data=-1, rules=(), fsdp=False), **kw))


def _specs(rules, *axes):
  return [tuple(nn.logical_to_mesh_axes(names, rules)) for names in axes]


def test_fsdp_splits_parameters_over_data_and_keeps_activations_on_batch():
  standard = mesh_lib.logical_rules(_mesh_config())
  fsdp = mesh_lib.logical_rules(_mesh_config(fsdp=True))
  params = (("embed", "mlp"), ("vocab", "embed"), ("embed",), ("relpos_buckets", "heads"))
  assert _specs(standard, *params) == [(None, "model"), ("model", None), (None,), (None, "model")]
  assert _specs(fsdp, *params) == [("data", "model"), ("model", "data"), ("data",), (None, "model")]
  activations = (("batch", "length", "embed"), ("batch", "length", "mlp"))
  # BATCH's rule comes first and takes the data axis; an activation's embed stays whole.
  for rules in (standard, fsdp):
    assert _specs(rules, *activations) == [("data", None, None), ("data", None, "model")]


def test_fsdp_refuses_rules_that_would_split_activations_embedding():
  rules = ((P.EMBED, None), (P.BATCH, P.DATA_AXIS), (P.MLP, P.MODEL_AXIS))
  with pytest.raises(ValueError, match="config.mesh.fsdp needs a \\('batch', 'data'\\) rule"):
    mesh_lib.logical_rules(_mesh_config(rules=rules, fsdp=True))


def test_fsdp_switch_is_checked_as_a_boolean():
  config = tiny_config.get_config()
  assert config.mesh.fsdp is False
  with pytest.raises(config_check.ConfigError, match="config.mesh.fsdp=1 must be True or False"):
    config_check.validate(ml_collections.ConfigDict(dict(config.to_dict(), mesh=dict(fsdp=1))))


def _split(names, shape, fsdp):
  """Devices a parameter is split over on a (data=2, model=2) mesh, by hand: vocab, mlp,
  heads, joined_kv to the model axis, and with FSDP embed to the data axis (when 2 divides
  the dimension)."""
  split = 1
  for name, size in zip(names, shape):
    if size % 2 == 0 and (
      name in ("vocab", "mlp", "heads", "joined_kv") or (fsdp and name == "embed")
    ):
      split *= 2
  return split


@pytest.mark.parametrize("fsdp", [False, True])
def test_state_per_device_on_a_2x2_mesh(fsdp):
  config = tiny_config.get_config()
  config.mesh.update(model=2, fsdp=fsdp)
  mesh = jax.sharding.AbstractMesh(
    (2, 2), ("data", "model"), axis_types=(jax.sharding.AxisType.Auto,) * 2
  )
  model = model_lib.build(config)
  _, abstract, _, _, _ = trainer.create_train_state(
    config, model, mesh, mesh_lib.logical_rules(config.mesh)
  )
  boxed = model_lib.abstract_params(model)
  names = jax.tree.leaves(nn.get_partition_spec(boxed), is_leaf=lambda x: isinstance(x, tuple))
  shapes = jax.tree.leaves(nn.unbox(boxed))
  expected = [int(np.prod(s.shape)) * 4 // _split(n, s.shape, fsdp) for n, s in zip(names, shapes)]
  shard = lambda x: int(np.prod(x.sharding.shard_shape(x.shape))) * x.dtype.itemsize
  got = [shard(x) for x in jax.tree.leaves(abstract["params"])]
  assert got == expected
  total = sum(int(np.prod(s.shape)) * 4 for s in shapes)
  # t5x's rules split most bytes 2 ways (model); FSDP splits nearly all of them 4 ways.
  assert (sum(got) / total) == pytest.approx(0.25 if fsdp else 0.5, abs=0.02)
  # Adafactor's momentum is shaped like the parameters and split like them.
  ema = lambda s: isinstance(s, optax.EmaState)
  [momentum] = [s for s in jax.tree.leaves(abstract["opt_state"], is_leaf=ema) if ema(s)]
  assert [shard(x) for x in jax.tree.leaves(momentum.ema)] == expected


def _losses(workdir, steps, mesh_model, devices, *settings):
  """tests/train_runner.py: the trainer on the synthetic task in a fresh process."""
  runner = [sys.executable, os.path.join(ROOT, "tests", "train_runner.py")]
  args = [str(workdir), str(steps), str(mesh_model), "--devices", str(devices)]
  args += ["--set", *settings] if settings else []
  out = subprocess.run(runner + args, capture_output=True, text=True, cwd=ROOT)
  assert out.returncode == 0, out.stderr[-3000:]
  return dict(json.loads(out.stdout.strip().splitlines()[-1])["losses"])


@pytest.mark.slow
def test_fsdp_training_gives_the_losses_of_one_device(tmp_path):
  """(data=4, model=2) of 8 CPU devices with every parameter split 8 ways or 4 ways."""
  one = _losses(tmp_path / "one", 3, 1, 1)
  fsdp = _losses(tmp_path / "fsdp", 3, 2, 8, "mesh.fsdp=True")
  np.testing.assert_allclose([fsdp[s] for s in (1, 2, 3)], [one[s] for s in (1, 2, 3)], rtol=2e-5)
