"""Checkpoint restore errors: short, naming the step directory, saying how to go on."""

import glob
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from unified_io.common import checkpointing


def _state(value):
  return {"params": {"w": jnp.full((64, 32), value, jnp.float32)}, "step": jnp.int32(value)}


def _abstract(state):
  sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state)


def _save(workdir, steps):
  ckpt = checkpointing.Checkpointer(str(workdir), keep=5, every_steps=1, async_save=False)
  for step in steps:
    assert ckpt.save(step, _state(step), {"position": step})
  ckpt.close()


def _corrupt(workdir, step):
  files = glob.glob(
    os.path.join(workdir, "checkpoints", str(step), "state", "**", "d", "*"), recursive=True
  )
  assert files, "no array data files found to corrupt"
  for path in files:
    with open(path, "wb") as f:
      f.write(b"\0" * 10)


def test_round_trip(tmp_path):
  _save(tmp_path, [1, 2])
  state, data = checkpointing.Checkpointer(str(tmp_path)).restore(_abstract(_state(0)))
  assert int(state["step"]) == 2 and data == {"position": 2}
  np.testing.assert_array_equal(state["params"]["w"], np.full((64, 32), 2.0))


def test_corrupt_latest_names_it_and_the_earlier_step(tmp_path):
  _save(tmp_path, [1, 2])
  _corrupt(tmp_path, 2)
  step_dir = os.path.join(os.path.abspath(tmp_path), "checkpoints", "2")
  with pytest.raises(checkpointing.CheckpointError) as info:
    checkpointing.Checkpointer(str(tmp_path)).restore(_abstract(_state(0)))
  message = str(info.value)
  assert step_dir in message and "resume from step 1" in message
  assert len(message) < 1000  # not tensorstore's whole array spec


def test_corrupt_only_checkpoint_suggests_a_new_workdir(tmp_path):
  _save(tmp_path, [3])
  _corrupt(tmp_path, 3)
  with pytest.raises(checkpointing.CheckpointError, match="another --workdir"):
    checkpointing.Checkpointer(str(tmp_path)).restore(_abstract(_state(0)))


def test_other_shapes_are_an_error_naming_the_step(tmp_path):
  _save(tmp_path, [1])
  other = {"params": {"w": jnp.zeros((8, 8), jnp.float32)}, "step": jnp.int32(0)}
  with pytest.raises(checkpointing.CheckpointError, match="checkpoints/1"):
    checkpointing.Checkpointer(str(tmp_path)).restore(_abstract(other))
