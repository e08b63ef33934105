"""Train-step throughput and estimated FLOP utilisation on this machine.

  .venv/bin/python benchmarks/train_step.py --config=configs/small.py --batch=8 --steps=5

Measures the machine's float32 matmul throughput in the same run (a large jitted matmul) and
reports the train step against it: step time, tokens/s, examples/s, the step's FLOPs from
XLA's cost analysis, achieved FLOP/s and the ratio to the measured matmul rate. Uses the
synthetic batch source at the config's sequence lengths.
"""
import functools
import os
import sys
import time

from absl import app
from absl import flags
import flax.linen as nn
import jax
import jax.numpy as jnp
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from unified_io import model as model_lib  # pylint: disable=g-import-not-at-top
from unified_io import sharding
from unified_io import synthetic_batches
from unified_io import train

_CONFIG = config_flags.DEFINE_config_file("config", "configs/small.py", "Model config.")
_BATCH = flags.DEFINE_integer("batch", 8, "Global batch size.")
_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps (after one warm-up step).")


def matmul_flops_per_s(n=2048, repeats=5):
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  start = time.perf_counter()
  for _ in range(repeats):
    out = f(a)
  out.block_until_ready()
  return 2 * n ** 3 * repeats / (time.perf_counter() - start)


def main(_):
  config = _CONFIG.value
  config.train.batch_size = _BATCH.value
  peak = matmul_flops_per_s()
  print(f"devices: {jax.device_count()} x {jax.devices()[0].device_kind}; "
        f"measured f32 matmul: {peak / 1e9:.1f} GFLOP/s", flush=True)
  mesh = sharding.make_mesh(config.mesh)
  rules = sharding.logical_rules(config.mesh)
  model = model_lib.build(config)
  init_state, _, shardings, optimizer, schedule = train.create_train_state(config, model, mesh, rules)
  data = synthetic_batches.SyntheticBatches(model.config, config.lengths, _BATCH.value)
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    state = jax.jit(init_state, out_shardings=shardings)()
    step = jax.jit(functools.partial(train.train_step, model=model, optimizer=optimizer,
                                     schedule=schedule, z_loss=0.0), donate_argnums=0)
    batch = sharding.global_batch(next(data), mesh)
    compiled = step.lower(state, batch).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", 0.0))
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    tokens = train._tokens_per_batch(batch)  # pylint: disable=protected-access
    start = time.perf_counter()
    for _ in range(_STEPS.value):
      state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    seconds = (time.perf_counter() - start) / _STEPS.value
  print(f"config {flags.FLAGS['config'].config_filename} batch {_BATCH.value}: "
        f"{seconds * 1e3:.0f} ms/step, {1 / seconds:.2f} steps/s, {tokens / seconds:.0f} tokens/s, "
        f"{_BATCH.value / seconds:.1f} examples/s")
  print(f"step FLOPs (XLA cost analysis): {flops / 1e9:.1f} GFLOP; achieved "
        f"{flops / seconds / 1e9:.1f} GFLOP/s = {100 * flops / seconds / peak:.0f}% of measured matmul rate")


if __name__ == "__main__":
  app.run(main)
