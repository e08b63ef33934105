"""Train-step throughput and estimated FLOP utilisation on this machine.

  .venv/bin/python benchmarks/train_step.py --config=configs/small.py --batch=8 --steps=5
  .venv/bin/python benchmarks/train_step.py --config=configs/small.py --batch=8 --steps=3 \
      --compare_hf
  .venv/bin/python benchmarks/train_step.py --config=configs/small.py --batch=8 \
      --mixture=builtin_multitask --batches=4

Measures the machine's float32 matmul throughput in the same run (a large jitted matmul) and
reports the train step against it: step time, tokens/s, examples/s, the step's FLOPs from
XLA's cost analysis, achieved FLOP/s and the ratio to the measured matmul rate. Uses the
synthetic batch source at the config's sequence lengths, with images (the headline number).

--compare_hf adds a like-for-like comparison with Hugging Face `transformers` FlaxT5
(requirements-bench.txt): a text-only batch of --compare_input_len input and
--compare_target_len target tokens (no image inputs or targets) through our step and through
a FlaxT5ForConditionalGeneration with the config's dims (d_model, layers, heads, head_dim,
mlp_dim, our 49536-id vocabulary, gated GELU, tied embeddings), the same optimiser
(unified_io/train/optim.py) and the same token cross-entropy, both jitted with the state donated.
The two steps are timed alternately, one step at a time, so that load from other processes
hits both alike; the table gives the median step and the min-max spread.

--mixture=NAME (mixture mode) takes --batches batches of a real mixture at the config's
lengths (with --mock_datasets, of the mixture's tasks on mock-prepared datasets) and runs
each through the padded step (config.train.batch_shapes="padded") and the bucketed step
("buckets"), alternately, from the same initial state: --warmup untimed rounds over the
batches (every program's first run), then --steps timed rounds. It prints useful tokens/s,
examples/s and XLA's FLOPs per step for both, and the ratio. Compilation is not timed (each
bucketed part program is compiled once, before the clock starts, and its time printed).
"""

import functools
import os
import statistics
import sys
import time
import types

from absl import app
from absl import flags
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from unified_io.common import flops as flops_lib
from unified_io.model import losses
from unified_io.model import builder as model_lib
from unified_io.train import optim
from unified_io.common import mesh as mesh_lib
from unified_io.data import synthetic as synthetic_batches
from unified_io.train import trainer as train

_CONFIG = config_flags.DEFINE_config_file("config", "configs/small.py", "Model config.")
_BATCH = flags.DEFINE_integer("batch", 8, "Global batch size.")
_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps (after the warm-up steps).")
_WARMUP = flags.DEFINE_integer("warmup", 1, "Untimed steps after compilation.")
_HEADLINE = flags.DEFINE_bool(
  "headline", True, "Time our step on the config's image+text batch (the headline)."
)
_COMPARE_HF = flags.DEFINE_bool(
  "compare_hf",
  False,
  "Also time Hugging Face FlaxT5 at the same dims on a text-only "
  "batch, beside our step on the same batch, and print the ratio.",
)
_COMPARE_INPUT_LEN = flags.DEFINE_integer("compare_input_len", 512, "Input tokens (--compare_hf).")
_COMPARE_TARGET_LEN = flags.DEFINE_integer(
  "compare_target_len", 128, "Target tokens (--compare_hf)."
)
_MIXTURE = flags.DEFINE_string(
  "mixture",
  "",
  "Mixture mode: batches of this mixture (e.g. builtin_multitask) at the config's lengths "
  "through the padded step and the bucketed step, alternately; prints useful tokens/s, "
  "examples/s and the ratio.",
)
_BATCHES = flags.DEFINE_integer(
  "batches",
  4,
  "Mixture mode: distinct batches; --warmup untimed rounds over them, then --steps timed rounds.",
)
_WHOLE_BATCH = flags.DEFINE_bool(
  "whole_batch",
  False,
  "Mixture mode: also compile (not run) the padded step on each batch cut as a whole to its "
  "longest text, without image streams no example has, and print XLA's FLOPs.",
)
_MOCK_DATASETS = flags.DEFINE_list(
  "mock_datasets",
  [],
  "Mixture mode: TFDS datasets to prepare with mock records in a temporary data_dir; the "
  "mixture then samples its tasks on them (prepared_only), e.g. for paper_multitask: "
  "glue/sst2,imagenet2012,nyu_depth_v2.",
)


class Runner:
  """A compiled step with its state: `run()` does one step and waits for it."""

  def __init__(self, name, compiled, state, batch, tokens):
    self.name, self.compiled, self.state, self.batch = name, compiled, state, batch
    self.flops, self.bytes = flops_lib.cost(compiled)
    self.tokens, self.times, self.loss = tokens, [], float("nan")

  def run(self):
    start = time.perf_counter()
    self.state, metrics = self.compiled(self.state, self.batch)
    jax.block_until_ready(metrics)
    self.loss = float(metrics["loss"])
    return time.perf_counter() - start

  def warm_up(self, steps):
    for _ in range(steps):
      self.run()

  def time(self):
    self.times.append(self.run())

  @property
  def median(self):
    return statistics.median(self.times)

  def spread(self):
    return f"{min(self.times):.2f}-{max(self.times):.2f}"


# ---------------------------------------------------------------------------- our step


def ours(config, batch_size, batch, name):
  """Runner for unified_io.train.trainer.train_step on `batch` (a host batch dict)."""
  config.train.batch_size = batch_size
  mesh = mesh_lib.make_mesh(config.mesh)
  rules = mesh_lib.logical_rules(config.mesh)
  model = model_lib.build(config)
  init_state, _, shardings, optimizer, schedule = train.create_train_state(
    config, model, mesh, rules
  )
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    state = jax.jit(init_state, out_shardings=shardings)()
    step = jax.jit(
      functools.partial(
        train.train_step, model=model, optimizer=optimizer, schedule=schedule, z_loss=0.0
      ),
      donate_argnums=0,
    )
    device_batch = mesh_lib.global_batch(batch, mesh)
    compiled = step.lower(state, device_batch).compile()
  tokens = train._tokens_per_batch(batch)
  return Runner(name, compiled, state, device_batch, tokens)


def text_only_batch(config, batch_size, input_len, target_len):
  """The synthetic copy task with `input_len` input and `target_len` target tokens, no images."""
  lengths = config.lengths.copy_and_resolve_references()
  lengths.text_inputs, lengths.text_targets = input_len, target_len
  net_cfg = model_lib.network_config(config)
  return next(synthetic_batches.SyntheticBatches(net_cfg, lengths, batch_size, with_images=False))


def text_only_config(config, input_len, target_len):
  config = config.copy_and_resolve_references()
  config.model.encoder_max_text_length = max(config.model.encoder_max_text_length, input_len)
  config.model.decoder_max_text_length = max(config.model.decoder_max_text_length, target_len)
  config.lengths.text_inputs, config.lengths.text_targets = input_len, target_len
  return config


# ------------------------------------------------------------------------ the HF peer


class _ClipShim(types.ModuleType):
  """jax.numpy, except that `clip` also takes the a_min/a_max keywords current JAX removed.

  transformers 4.x FlaxT5 calls jnp.clip(x, a_max=...) in its relative-position buckets.
  Installed as that one module's `jnp`, so nothing else (our model included) sees it.
  """

  def __init__(self):
    super().__init__("jax.numpy")

  def __getattr__(self, name):
    return getattr(jnp, name)

  @staticmethod
  def clip(arr=None, min=None, max=None, *, a_min=None, a_max=None):
    return jnp.clip(arr, a_min if min is None else min, a_max if max is None else max)


def import_hf_t5():
  """(T5Config, FlaxT5ForConditionalGeneration) with the jnp.clip shim installed."""
  try:
    import transformers
    from transformers.models.t5 import modeling_flax_t5
  except ImportError as e:
    raise SystemExit(
      f"--compare_hf needs transformers 4.x with Flax models: "
      f".venv/bin/pip install --no-deps -r requirements-bench.txt ({e})"
    ) from e
  modeling_flax_t5.jnp = _ClipShim()
  return (
    transformers.__version__,
    modeling_flax_t5.T5Config,
    modeling_flax_t5.FlaxT5ForConditionalGeneration,
  )


def hf_inputs(batch):
  """FlaxT5's inputs for the text of one of our host batches, on the device."""
  labels = np.asarray(batch["text_targets"])
  inputs = np.asarray(batch["text_inputs"])
  return jax.device_put(
    {
      "input_ids": inputs,
      "attention_mask": (inputs > 0).astype(np.int32),
      "decoder_input_ids": np.pad(labels[:, :-1], ((0, 0), (1, 0))),  # start token = pad id 0
      "decoder_attention_mask": (labels > 0).astype(np.int32),
      "labels": labels,
    }
  )


def hf_t5(config, batch):
  """Runner for FlaxT5ForConditionalGeneration at the config's dims on the text-only `batch`."""
  version, t5_config_cls, t5_cls = import_hf_t5()
  m = config.model
  t5_config = t5_config_cls(
    vocab_size=model_lib.vocab_layout(config).total_size,
    d_model=m.emb_dim,
    d_kv=m.head_dim,
    d_ff=m.mlp_dim,
    num_layers=m.num_encoder_layers,
    num_decoder_layers=m.num_decoder_layers,
    num_heads=m.num_heads,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    dropout_rate=m.dropout_rate,
    feed_forward_proj="gated-gelu",  # gelu_new = tanh GELU, as ours
    tie_word_embeddings=True,  # ours shares one table for inputs and logits, scaled by d^-0.5
    pad_token_id=0,
    eos_token_id=1,
    decoder_start_token_id=0,
  )
  t5 = t5_cls(t5_config, dtype=jnp.float32, _do_init=False)
  params = jax.jit(t5.init_weights, static_argnums=1)(jax.random.PRNGKey(config.seed), (1, 1))
  optimizer, _ = optim.build(config.optimizer, params, "")

  def step(state, batch):
    def loss_fn(params):
      logits = t5.module.apply(
        {"params": params},
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        decoder_input_ids=batch["decoder_input_ids"],
        decoder_attention_mask=batch["decoder_attention_mask"],
        deterministic=True,
      ).logits
      mask = batch["decoder_attention_mask"]
      loss = losses.token_cross_entropy(logits, batch["labels"])
      return jnp.sum(loss * mask) / jnp.maximum(jnp.sum(mask), 1)

    loss, grads = jax.value_and_grad(loss_fn)(state["params"])
    updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
    return (
      {"params": optax.apply_updates(state["params"], updates), "opt_state": opt_state},
      {"loss": loss, "grad_norm": optax.tree.norm(grads)},
    )

  state = jax.jit(lambda p: {"params": p, "opt_state": optimizer.init(p)})(params)
  hf_batch = hf_inputs(batch)
  compiled = jax.jit(step, donate_argnums=0).lower(state, hf_batch).compile()
  tokens = train._tokens_per_batch(batch)
  return Runner(f"HF FlaxT5 (transformers {version})", compiled, state, hf_batch, tokens)


# ----------------------------------------------------------------------- mixture mode


BUILTIN_TOKENIZER = "tokenizers/uio_tiny_2k.model"


def mixture_inputs(config, mixture, batch_size, mock_datasets):
  """(host batches source, frozen VQ-GAN) of `mixture` at the config's lengths.

  What the config names but this machine lacks is replaced, with a note: the official
  SentencePiece model by the built-in one (text ids fit the config's vocabulary; the
  model keeps the config's vocabulary size), the official VQ-GAN by random weights of its
  preset (same resolution, grid and cost; the codes are arbitrary). Mock datasets are
  prepared in a temporary data_dir and the mixture sampled over its prepared tasks.
  """
  import tempfile

  import vqgan as vqgan_lib
  from unified_io.common import text_tokenizer
  from unified_io.common import vocab
  from unified_io.data import from_config
  from unified_io.data import pipeline

  config.data.mixture = mixture
  if mock_datasets:
    from tests import mock_tfds

    data_dir = tempfile.mkdtemp(prefix="uio-bench-tfds-")
    for name in mock_datasets:
      mock_tfds.prepare(name, data_dir, num_examples=16)
    config.data.update(dict(data_dir=data_dir, prepared_only=True))
  if os.path.exists(config.vocab.sentencepiece_model):
    tokenizer = from_config.tokenizer(config)
  else:
    print(f"note: {config.vocab.sentencepiece_model} missing; text from {BUILTIN_TOKENIZER}")
    tokenizer = text_tokenizer.TextTokenizer(
      BUILTIN_TOKENIZER, config.vocab.image_codes, num_location_bins=vocab.location_bins(config)
    )
  if os.path.isdir(config.vqgan.get("weights", "")):
    vq = from_config.image_tokenizer(config)
  else:
    print(f"note: {config.vqgan.weights} missing; random {config.vqgan.preset} VQ-GAN weights")
    vq = vqgan_lib.init(config.vqgan.preset, 0)
  spec = pipeline.ExampleSpec(
    tokenizer=tokenizer,
    text_inputs=config.lengths.text_inputs,
    text_targets=config.lengths.text_targets,
    input_image_size=config.model.image_size,
    patch_size=config.model.patch_size,
    target_image_size=vq.config.resolution,
    target_downsample=vq.config.downsample_factor,
  )
  names, rates = from_config.mixture_rates(config)
  stream = pipeline.MixtureStream(
    names,
    rates,
    spec,
    seed=config.seed,
    data_dir=config.data.data_dir or None,
    max_depth=config.data.max_depth,
    by_shape=config.data.schedule == "stratified",
  )
  return pipeline.Batches(stream, batch_size, workers=config.data.workers), vq


def _useful_positions(batch, config):
  """(useful, padded) encoder + decoder positions of a host batch (patches as the model keeps
  them: config.model.train_image_patches of each image)."""
  keep = config.model.train_image_patches or batch["image_input_mask"].shape[1]
  patches = np.minimum(batch["image_input_mask"].sum(1), keep).sum()
  useful = train._tokens_per_batch(batch) + patches
  rows = len(batch["text_inputs"])
  width = batch["text_inputs"].shape[1] + keep + batch["text_targets"].shape[1]
  return useful, rows * (width + batch["image_target_mask"].shape[1])


def whole_batch_cut(batch):
  """`batch` cut as one: text to the batch's longest (bucketed), image inputs or targets
  dropped only when no example has them (the alternative design to parts by shape)."""
  from unified_io.train import length_buckets

  kinds, text_inputs, text_targets = length_buckets.example_kinds(batch)
  cut = dict(batch)
  for key, longest, smallest in zip(
    ("text_inputs", "text_targets"), (text_inputs, text_targets), length_buckets.MIN_TEXT_LENGTHS
  ):
    width = batch[key].shape[1]
    cut[key] = batch[key][:, : length_buckets.text_bucket(int(longest.max()), width, smallest)]
  for keys, present in (
    (length_buckets.IMAGE_INPUT_KEYS, (kinds % 2 == 1).any()),
    (length_buckets.IMAGE_TARGET_KEYS, (kinds >= 2).any()),
  ):
    if not present:
      cut = {k: v for k, v in cut.items() if k not in keys}
  return cut


class Steps:
  """The trainer's padded and bucketed steps for `config` (num_tasks=0), one model and mesh."""

  def __init__(self, config, vq):
    self.mesh = mesh_lib.make_mesh(config.mesh)
    self.rules = mesh_lib.logical_rules(config.mesh)
    model = model_lib.build(config)
    self.init_state, _, self.shardings, self.optimizer, self.schedule = train.create_train_state(
      config, model, self.mesh, self.rules
    )
    self.common = dict(model=model, z_loss=config.loss.z_loss, vq_config=vq.config, num_tasks=0)
    replicated = mesh_lib.replicated(self.mesh)
    self.vq_params = jax.device_put(vq.params, replicated)
    self.padded_fn = jax.jit(
      functools.partial(
        train.train_step, optimizer=self.optimizer, schedule=self.schedule, **self.common
      ),
      in_shardings=(self.shardings, mesh_lib.batch_sharding(self.mesh), replicated),
      out_shardings=(self.shardings, replicated),
      donate_argnums=0,
    )

  def context(self):
    """The mesh and logical rules the steps run under (as trainer.train)."""
    import contextlib

    stack = contextlib.ExitStack()
    stack.enter_context(jax.set_mesh(self.mesh))
    stack.enter_context(nn.logical_axis_rules(self.rules))
    return stack

  def init(self):
    return jax.jit(self.init_state, out_shardings=self.shardings)()

  def bucketed(self, batch_size):
    from unified_io.train import step as step_lib

    return step_lib.BucketedStep(
      optimizer=self.optimizer,
      schedule=self.schedule,
      vq_params=self.vq_params,
      mesh=self.mesh,
      state_shardings=self.shardings,
      global_batch_size=batch_size,
      log=lambda line: print(line, flush=True),
      **self.common,
    )


class _Timed:
  """A step (PaddedStep or BucketedStep) with its own state; `run` does one step and waits."""

  def __init__(self, name, step, state):
    self.name, self.step, self.state = name, step, state
    self.times, self.flops, self.timed_flops, self.losses = [], [], [], []

  def run(self, batch):
    start = time.perf_counter()
    self.state, metrics = self.step(self.state, batch)
    jax.block_until_ready(metrics)
    self.losses.append(float(metrics["loss"]))
    self.flops.append(self.step.last_flops)
    return time.perf_counter() - start


def mixture_mode(
  config, mixture, batch_size, num_batches, mock_datasets, warmup, rounds, whole_batch=False
):
  """The padded step against the bucketed one on `num_batches` batches of `mixture`:
  `warmup` untimed rounds over the batches, then `rounds` timed ones."""
  from unified_io.train import step as step_lib

  config = config.copy_and_resolve_references()
  config.train.batch_size = batch_size
  batches, vq = mixture_inputs(config, mixture, batch_size, mock_datasets)
  start = time.perf_counter()
  local = [next(batches) for _ in range(num_batches)]
  print(
    f"{mixture}: {num_batches} batches of {batch_size} in {time.perf_counter() - start:.1f} s "
    f"({len(batches.task_names)} tasks, schedule {config.data.schedule})",
    flush=True,
  )
  useful, padded = map(sum, zip(*(_useful_positions(b, config) for b in local)))
  tokens = sum(train._tokens_per_batch(b) for b in local)
  print(
    f"useful positions (text, kept patches, targets) {useful} of {padded} padded "
    f"({100 * (1 - useful / padded):.0f}% padding); useful tokens (text in, text and image "
    f"targets, as the trainer counts them) {tokens}",
    flush=True,
  )
  steps = Steps(config, vq)
  with steps.context():
    vq_params, step_fn = steps.vq_params, steps.padded_fn
    start = time.perf_counter()
    state = steps.init()
    padded_step = step_lib.PaddedStep(step_fn, vq_params, steps.mesh, batch_size, state, local[0])
    print(
      f"padded step compiled in {time.perf_counter() - start:.0f} s: "
      f"{padded_step.flops / 1e9:.1f} GFLOP",
      flush=True,
    )
    if whole_batch:
      flops = []
      for batch in local:
        cut = whole_batch_cut(batch)
        lowered = step_fn.lower(state, mesh_lib.global_batch(cut, steps.mesh), vq_params)
        flops.append(flops_lib.cost(lowered.compile())[0])
        print(
          f"whole-batch cut: text {cut['text_inputs'].shape[1]}->{cut['text_targets'].shape[1]}"
          f", image inputs {'image_inputs' in cut}, image targets "
          f"{'image_target_pixels' in cut}: {flops[-1] / 1e9:.1f} GFLOP",
          flush=True,
        )
      print(
        f"whole-batch cut: {padded_step.flops / np.mean(flops):.2f}x fewer FLOPs per step "
        f"than padded (mean over the batches)",
        flush=True,
      )
    bucketed_step = steps.bucketed(batch_size)
    bucketed_state = steps.init()
    start = time.perf_counter()
    for batch in local:
      bucketed_step.compile_for(bucketed_state, batch)
    print(
      f"bucketed step: {len(bucketed_step.programs)} part programs for {num_batches} batches "
      f"compiled in {time.perf_counter() - start:.0f} s",
      flush=True,
    )
    runners = [
      _Timed("padded", padded_step, state),
      _Timed("bucketed", bucketed_step, bucketed_state),
    ]
    for _ in range(max(1, warmup)):  # untimed: the first run of every program
      for batch in local:
        for runner in runners:
          runner.run(batch)
    first_losses = [r.losses[0] for r in runners]
    for _ in range(rounds):
      for batch in local:
        for runner in runners:  # alternate, so that load from elsewhere hits both alike
          runner.times.append(runner.run(batch))
          runner.timed_flops.append(runner.flops[-1])
  print(
    f"\nfirst step's loss from the same state: padded {first_losses[0]:.6f}, bucketed "
    f"{first_losses[1]:.6f} (difference {abs(first_losses[0] - first_losses[1]):.2g})"
  )
  print(
    f"{'':<10s}{'total s':>9s}{'s/step':>8s}{'min-max s':>12s}{'useful tokens/s':>17s}"
    f"{'examples/s':>12s}{'GFLOP/step':>12s}"
  )
  for r in runners:
    seconds = sum(r.times)
    print(
      f"{r.name:<10s}{seconds:>9.1f}{seconds / len(r.times):>8.2f}"
      f"{f'{min(r.times):.2f}-{max(r.times):.2f}':>12s}{tokens * rounds / seconds:>17.1f}"
      f"{batch_size * len(r.times) / seconds:>12.2f}{np.mean(r.timed_flops) / 1e9:>12.1f}"
    )
  padded_r, bucketed_r = runners
  pairs = [p / b for p, b in zip(padded_r.times, bucketed_r.times)]
  print(
    f"bucketed over padded: {sum(padded_r.times) / sum(bucketed_r.times):.2f}x useful "
    f"tokens/s (same batches), {min(pairs):.2f}-{max(pairs):.2f}x over alternating pairs; "
    f"{np.mean(padded_r.timed_flops) / np.mean(bucketed_r.timed_flops):.2f}x fewer FLOPs per step",
    flush=True,
  )
  batches.close()


# ------------------------------------------------------------------------------- main


def count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def report(runner, peak):
  seconds = runner.median
  print(
    f"  {runner.name}: {seconds * 1e3:.0f} ms/step (median of {len(runner.times)}, "
    f"{runner.spread()} s), {runner.tokens / seconds:.0f} tokens/s, "
    f"{_BATCH.value / seconds:.1f} examples/s; step FLOPs (XLA cost analysis) "
    f"{runner.flops / 1e9:.1f} GFLOP and {runner.bytes / 1e9:.1f} GB accessed, "
    f"{runner.flops / seconds / 1e9:.1f} GFLOP/s = "
    f"{100 * runner.flops / seconds / peak:.0f}% of measured matmul rate; loss {runner.loss:.3f}",
    flush=True,
  )


def main(_):
  config = _CONFIG.value
  batch_size = _BATCH.value
  peak = flops_lib.matmul_flops_per_s()
  print(
    f"devices: {jax.device_count()} x {jax.devices()[0].device_kind}; "
    f"measured f32 matmul: {peak / 1e9:.1f} GFLOP/s; {_WARMUP.value} warm-up + "
    f"{_STEPS.value} timed steps",
    flush=True,
  )

  if _MIXTURE.value:
    mixture_mode(
      config,
      _MIXTURE.value,
      batch_size,
      _BATCHES.value,
      _MOCK_DATASETS.value,
      _WARMUP.value,
      _STEPS.value,
      _WHOLE_BATCH.value,
    )
    return

  if _HEADLINE.value:
    data = synthetic_batches.SyntheticBatches(
      model_lib.network_config(config), config.lengths, batch_size
    )
    runner = ours(config.copy_and_resolve_references(), batch_size, next(data), "ours")
    runner.warm_up(_WARMUP.value)
    for _ in range(_STEPS.value):
      runner.time()
    seconds = runner.median
    l = config.lengths
    print(
      f"config {flags.FLAGS['config'].config_filename} batch {batch_size} (text "
      f"{l.text_inputs}->{l.text_targets}, image targets {l.image_targets}, image inputs): "
      f"{seconds * 1e3:.0f} ms/step (median, {runner.spread()} s), {1 / seconds:.2f} steps/s, "
      f"{runner.tokens / seconds:.0f} tokens/s, {batch_size / seconds:.1f} examples/s"
    )
    print(
      f"step FLOPs (XLA cost analysis): {runner.flops / 1e9:.1f} GFLOP; achieved "
      f"{runner.flops / seconds / 1e9:.1f} GFLOP/s = "
      f"{100 * runner.flops / seconds / peak:.0f}% of measured matmul rate",
      flush=True,
    )
    del runner

  if not _COMPARE_HF.value:
    return
  input_len, target_len = _COMPARE_INPUT_LEN.value, _COMPARE_TARGET_LEN.value
  text_config = text_only_config(config, input_len, target_len)
  batch = text_only_batch(text_config, batch_size, input_len, target_len)
  runners = [ours(text_config, batch_size, batch, "ours (text-only)"), hf_t5(text_config, batch)]
  ours_params = count(runners[0].state["params"])
  hf_params = count(runners[1].state["params"])
  print(
    f"\ntext-only comparison: batch {batch_size}, {input_len} input + {target_len} target "
    f"tokens, no images; parameters: ours {ours_params / 1e6:.1f}M, HF {hf_params / 1e6:.1f}M",
    flush=True,
  )
  for runner in runners:
    runner.warm_up(_WARMUP.value)
  for _ in range(_STEPS.value):
    for runner in runners:  # alternate, so that load from elsewhere hits both alike
      runner.time()
  for runner in runners:
    report(runner, peak)
  ours_r, hf_r = runners
  ratio = hf_r.median / ours_r.median
  ratios = [h / o for o, h in zip(ours_r.times, hf_r.times)]
  print(
    f"\n{'':<34s}{'step s (median)':>16s}{'min-max s':>14s}{'tokens/s':>10s}{'GFLOP':>8s}"
    f"{'GB accessed':>12s}"
  )
  for runner in runners:
    print(
      f"{runner.name:<34s}{runner.median:>16.2f}{runner.spread():>14s}"
      f"{runner.tokens / runner.median:>10.0f}{runner.flops / 1e9:>8.1f}{runner.bytes / 1e9:>12.1f}"
    )
  print(
    f"speed-up of ours over HF (HF step / our step): {ratio:.2f}x of medians, "
    f"{min(hf_r.times) / min(ours_r.times):.2f}x of fastest steps, "
    f"{min(ratios):.2f}-{max(ratios):.2f}x over alternating pairs",
    flush=True,
  )


if __name__ == "__main__":
  app.run(main)
