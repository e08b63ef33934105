"""Frozen-encoder training: the normal padded step against the cached decoder-only step.

  .venv/bin/python benchmarks/encoder_cache.py --config=configs/tiny.py --batch=16 \
      --batches=4 --steps=3
  .venv/bin/python benchmarks/encoder_cache.py --config=configs/small.py --batch=8 \
      --batches=2 --steps=2

The first --batches batches of --mixture (default builtin_multitask) at the config's
lengths, the encoder and the token embedding frozen (encoder_cache.FREEZE_EXAMPLE), run
alternately through (a) the trainer's padded step (step.train_step: VQ-GAN, encoder and
decoder, forward and backward) and (b) the cached decoder-only step
(encoder_cache.decoder_train_step) on the cache of the same batches, from the same
initial state: --warmup untimed rounds over the batches, then --steps timed rounds, one
step at a time. It prints steps/s and examples/s of each and their ratio, what building
the cache costs (reading the examples, then encoding them, per example; compilation
apart) and after how many epochs over the cached examples the encoding is paid back.

Flags are benchmarks/train_step.py's (imported from there, with its mixture-mode helpers).
The cache encodes every input patch (the eval-time path); the normal step keeps
config.model.train_image_patches random ones, so with a subset the two steps' losses
differ (set --config.model.train_image_patches=0 to compare like with like).
"""

import os
import sys
import time

from absl import app
import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_step as train_step_bench  # noqa: E402  (defines the flags used here)
from unified_io.train import encoder_cache  # noqa: E402
from unified_io.train import step as step_lib  # noqa: E402

DEFAULT_MIXTURE = "builtin_multitask"


def _row(name, runner, batch_size):
  seconds = sum(runner.times)
  steps = len(runner.times)
  return (
    f"{name:<26s}{steps / seconds:>9.3f}{batch_size * steps / seconds:>12.2f}"
    f"{seconds / steps:>9.3f}{f'{min(runner.times):.3f}-{max(runner.times):.3f}':>14s}"
    f"{runner.step.flops / 1e9:>12.2f}"
  )


def main(_):
  config = train_step_bench._CONFIG.value.copy_and_resolve_references()
  batch_size, num_batches = train_step_bench._BATCH.value, train_step_bench._BATCHES.value
  warmup, rounds = max(1, train_step_bench._WARMUP.value), train_step_bench._STEPS.value
  mixture = train_step_bench._MIXTURE.value or DEFAULT_MIXTURE
  examples = batch_size * num_batches
  config.freeze = encoder_cache.FREEZE_EXAMPLE
  config.train.batch_size = batch_size
  config.train.encoder_cache.examples = examples
  print(
    f"devices: {jax.device_count()} x {jax.devices()[0].device_kind}; config "
    f"{train_step_bench.flags.FLAGS['config'].config_filename} (emb {config.model.emb_dim}, "
    f"layers {config.model.num_encoder_layers}+{config.model.num_decoder_layers}, "
    f"train_image_patches {config.model.train_image_patches}), freeze {config.freeze!r}",
    flush=True,
  )
  batches, vq = train_step_bench.mixture_inputs(
    config, mixture, batch_size, train_step_bench._MOCK_DATASETS.value
  )
  start = time.perf_counter()
  local = [batches.batch_at(i) for i in range(num_batches)]  # the stream's first examples
  read_seconds = time.perf_counter() - start
  batches.close()
  print(f"{mixture}: {examples} examples ({num_batches} batches) read in {read_seconds:.1f} s")
  steps = train_step_bench.Steps(config, vq)
  model = steps.common["model"]
  encoder_cache.check(config, model)
  with steps.context():
    start = time.perf_counter()
    normal_state = steps.init()
    normal = step_lib.PaddedStep(
      steps.padded_fn, steps.vq_params, steps.mesh, batch_size, normal_state, local[0]
    )
    print(f"normal step compiled in {time.perf_counter() - start:.1f} s", flush=True)
    cached_state = steps.init()
    cache = encoder_cache.build(
      model,
      cached_state["params"],
      local.__getitem__,
      num_batches,
      mesh=steps.mesh,
      global_batch_size=batch_size,
      seed=config.seed,
      vq_config=vq.config,
      vq_params=steps.vq_params,
    )
    print(cache.describe(), flush=True)
    start = time.perf_counter()
    make_step = encoder_cache.step_maker(
      cache,
      model=model,
      optimizer=steps.optimizer,
      schedule=steps.schedule,
      z_loss=config.loss.z_loss,
      num_tasks=0,
      mesh=steps.mesh,
      state_shardings=steps.shardings,
    )
    cached = make_step(cached_state, cache.batches[0])
    print(f"cached step compiled in {time.perf_counter() - start:.1f} s", flush=True)
    normal_r = train_step_bench._Timed("normal", normal, normal_state)
    cached_r = train_step_bench._Timed("cached", cached, cached_state)
    pairs = ((normal_r, local), (cached_r, cache.batches))
    for _ in range(warmup):  # untimed: every program's first run
      for i in range(num_batches):
        for runner, source in pairs:
          runner.run(source[i])
    first_losses = [normal_r.losses[0], cached_r.losses[0]]
    for _ in range(rounds):
      for i in range(num_batches):
        for runner, source in pairs:  # alternate, so that load from elsewhere hits both alike
          runner.times.append(runner.run(source[i]))
  print(
    f"\nfirst step's loss from the same state: normal {first_losses[0]:.6f}, cached "
    f"{first_losses[1]:.6f} (difference {abs(first_losses[0] - first_losses[1]):.2g})"
  )
  print(
    f"{'':<26s}{'steps/s':>9s}{'examples/s':>12s}{'s/step':>9s}{'min-max s':>14s}"
    f"{'GFLOP/step':>12s}"
  )
  print(_row("normal (frozen encoder)", normal_r, batch_size))
  print(_row("cached (decoder only)", cached_r, batch_size))
  normal_s, cached_s = np.mean(normal_r.times), np.mean(cached_r.times)
  ratios = [n / c for n, c in zip(normal_r.times, cached_r.times)]
  print(
    f"cached over normal: {normal_s / cached_s:.2f}x steps/s (same batches), "
    f"{min(ratios):.2f}-{max(ratios):.2f}x over alternating pairs; "
    f"{normal.flops / cached.flops:.2f}x fewer FLOPs per step"
  )
  encode_seconds = cache.seconds - cache.compile_seconds
  saved_per_epoch = num_batches * (normal_s - cached_s)
  print(
    f"one-off cost of the cache: {1e3 * encode_seconds / examples:.1f} ms per example "
    f"encoding it (VQ-GAN codes and encoder outputs, to host memory; compiling that "
    f"program {cache.compile_seconds:.1f} s once), {cache.nbytes / examples / 2**20:.2f} MiB "
    f"of host memory per example. Reading an example took {1e3 * read_seconds / examples:.1f}"
    f" ms: the cached run reads each once, the normal run every epoch (in background "
    f"threads). A cached epoch saves {1e3 * saved_per_epoch / examples:.1f} ms per example"
  )
  if saved_per_epoch > 0:
    print(
      f"break-even: {encode_seconds / saved_per_epoch:.2f} epochs over the cached examples "
      f"({(encode_seconds + cache.compile_seconds) / saved_per_epoch:.2f} with the "
      f"compilation)",
      flush=True,
    )
  else:
    print("break-even: never (the cached step was not faster here)", flush=True)


if __name__ == "__main__":
  app.run(main)
