"""Frozen-encoder training from cached encoder outputs (`config.train.encoder_cache`).

With every parameter the encoder reads frozen (the LiT-decoder study), the encoder's
outputs for an example never change during training, and neither do the VQ-GAN codes of
its target image. With `config.train.encoder_cache.examples = N > 0` the trainer computes
both once for the first N examples of the training stream (N / batch_size global batches),
keeps them in host memory as numpy, grouped in those batches, and trains only the decoder
from them (`decoder_train_step`: `UnifiedIO.decode` from the cached outputs, the loss,
loss weights and normalisation of step.train_step).

Steps cycle over the cached batches in a fresh order every epoch (a permutation seeded
from config.seed and the epoch), so the batch of step s is a function of s alone and a
run resumes exactly from its step. Evaluation still runs the whole model.

What differs from the normal step (and is refused where it would change the numbers):
- The encoder reads the token embedding that it shares with the decoder
  (token_embedder/embedding), so config.freeze has to cover it as well as encoder/:
  e.g. "^(encoder|token_embedder)/". Decoder parameters may be frozen or not.
- The outputs are computed without dropout: config.model.dropout_rate (the encoder's and
  the decoder's) must be 0.
- The encoder runs its deterministic eval-time path: every valid input patch, not the
  `config.model.train_image_patches` random ones that the normal step draws anew each
  step. With train_image_patches = 0 (all patches) the cached step gives the normal step's
  parameters; with a subset, the decoder cross-attends to all patches instead.
- The logged grad_norm covers the gradients of the decoder's parameters (and of the
  frozen token embedding, through the decoder); the normal step's includes the frozen
  encoder's as well. The optimiser clips the trainable ones only, so updates agree.
- The cached step runs at the config's fixed lengths whatever config.train.batch_shapes
  says (the padded and bucketed steps give the same loss and gradients).
"""

import functools
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import PartitionSpec

from unified_io.common import axis_rules
from unified_io.common import mesh as mesh_lib
from unified_io.common import rng_streams
from unified_io.model import builder as model_lib
from unified_io.model import losses
from unified_io.model import network
from unified_io.train import optim
from unified_io.train import step as step_lib

KEY = "config.train.encoder_cache.examples"
# Fields of a host batch that the decoder-only step reads as they are; image_targets come
# from the cache program (the VQ-GAN codes of image_target_pixels).
HOST_KEYS = ("text_targets", "image_target_mask", "loss_weight", "task_index")
# What the freeze error suggests: the encoder and the token embedding it shares.
FREEZE_EXAMPLE = "^(encoder|token_embedder)/"


# ------------------------------------------------------------------------- config checks


def examples(config):
  """N of config.train.encoder_cache.examples (0: off); not an int >= 0 raises ValueError."""
  value = config.train.get("encoder_cache", {}).get("examples", 0)
  if not isinstance(value, int) or isinstance(value, bool) or value < 0:
    raise ValueError(f"{KEY}={value!r} must be an int >= 0 (0 turns the cache off)")
  return value


def encoder_param_paths(model):
  """Paths ("encoder/...", "token_embedder/embedding") of the parameters `encode` reads.

  Found by initialising the network through `encode` alone (shapes only, nothing
  allocated): flax creates exactly the parameters that the method uses.
  """
  batch = model_lib.dummy_batch(model.config, text_len=8, target_len=4, image_target_len=4)
  init = lambda rng: model.init({"params": rng}, batch, method=network.UnifiedIO.encode)
  shapes = nn.unbox(jax.eval_shape(init, jax.random.key(0))["params"])
  return [optim.path_name(path) for path, _ in jax.tree_util.tree_flatten_with_path(shapes)[0]]


def check(config, model):
  """N (0: the cache is off); raises ValueError naming the config key that rules it out."""
  n = examples(config)
  if not n:
    return 0
  batch_size = config.train.batch_size
  if n % batch_size:
    raise ValueError(
      f"{KEY}={n} is not a multiple of config.train.batch_size={batch_size}: the cache "
      f"holds whole global batches (e.g. {KEY}={max(1, n // batch_size) * batch_size})"
    )
  if config.data.get("schedule") == "stop_and_go":
    raise ValueError(
      f'{KEY}={n} cannot follow config.data.schedule="stop_and_go": it trains on a fixed '
      f"example set, so there is no stream whose task rates could change"
    )
  if config.data.get("workers_kind", "thread") == "process":
    raise ValueError(
      f'{KEY}={n} with config.data.workers_kind="process": the cache reads its examples '
      f'once, in this process; use config.data.workers_kind="thread"'
    )
  if model.config.dropout_rate > 0:
    raise ValueError(
      f"{KEY}={n} with config.model.dropout_rate={model.config.dropout_rate}: cached encoder "
      f"outputs are computed once, without dropout, so they are not what a training step "
      f"with encoder dropout would see; set config.model.dropout_rate=0"
    )
  trainable = optim.trainable_mask(nn.unbox(model_lib.abstract_params(model)), config.freeze)
  by_path = {
    optim.path_name(path): train
    for path, train in jax.tree_util.tree_flatten_with_path(trainable)[0]
  }
  left = [path for path in encoder_param_paths(model) if by_path[path]]
  if left:
    shown = ", ".join(left[:3]) + (f" and {len(left) - 3} more" if len(left) > 3 else "")
    raise ValueError(
      f"{KEY}={n} needs config.freeze to freeze every parameter the encoder reads; "
      f"config.freeze={config.freeze!r} leaves {len(left)} trainable: {shown}. The encoder "
      f"embeds its text with token_embedder/embedding, which it shares with the decoder, so "
      f"freeze that too: e.g. config.freeze={FREEZE_EXAMPLE!r}"
    )
  return n


# ------------------------------------------------------------------------------ the cache


def _encode(params, vq_params, batch, *, model, vq_config):
  """(cached rows: encoder outputs and image target codes, encoder position embeddings of
  the first row). Eval-time path: no dropout, every valid input patch."""
  batch = model_lib.tokenize_image_targets(
    batch, vq_config, vq_params, model.config.padded_text_size
  )
  encoded, encoder_pe, encoder_mask = model.apply(
    {"params": params}, batch, method=network.UnifiedIO.encode
  )
  rows = {"encoded": encoded, "encoder_mask": encoder_mask}
  if "image_targets" in batch:
    rows["image_targets"] = batch["image_targets"]
  # Without per-example patch positions the position embeddings are the same in every row
  # (a function of the positions and frozen parameters only): one row serves all batches.
  return rows, encoder_pe[:1]


class EncoderCache:
  """The cached batches (host-local rows, numpy) and the order steps take them in.

  Also the trainer's batch source in place of the stream: `next()` gives the batch of the
  current step; its state {"position": step} is the step itself.
  """

  def __init__(self, batches, encoder_pe, *, global_batch_size, seed, seconds, compile_seconds):
    self.batches, self.encoder_pe = batches, encoder_pe
    self.global_batch_size, self.seed = global_batch_size, seed
    self.seconds, self.compile_seconds = seconds, compile_seconds
    self.position = 0
    self._orders = {}

  @property
  def examples(self):
    return len(self.batches) * self.global_batch_size

  @property
  def nbytes(self):
    """Host bytes of this host's cached arrays."""
    arrays = [v for batch in self.batches for v in batch.values()] + [self.encoder_pe]
    return sum(a.nbytes for a in arrays)

  def batch_index(self, step):
    """Which cached batch step `step` (0-based) trains on: epoch e = step // batches takes
    them in the order of a permutation seeded by (config.seed, e)."""
    epoch, index = divmod(int(step), len(self.batches))
    if epoch not in self._orders:
      rng = np.random.default_rng([self.seed, rng_streams.ENCODER_CACHE_ORDER, epoch])
      self._orders = {epoch: rng.permutation(len(self.batches))}  # only the current epoch's
    return int(self._orders[epoch][index])

  def batch_for_step(self, step):
    return self.batches[self.batch_index(step)]

  def describe(self):
    rows = self.batches[0]["encoded"].shape[1]
    return (
      f"Encoder cache: {self.examples} examples ({len(self.batches)} batches of "
      f"{self.global_batch_size}, {rows} encoder positions each) in "
      f"{self.nbytes / 2**20:.1f} MiB of host memory, built in {self.seconds:.1f} s "
      f"({self.compile_seconds:.1f} s of it compiling); training the decoder only"
    )

  # The batch-source protocol of the trainer loop (as pipeline.Batches).
  def get_state(self):
    return {"position": self.position}

  def set_state(self, state):
    self.position = int(state["position"])

  def __iter__(self):
    return self

  def __next__(self):
    batch = self.batch_for_step(self.position)
    self.position += 1
    return batch


def build(
  model,
  params,
  batch_at,
  num_batches,
  *,
  mesh,
  global_batch_size,
  seed,
  vq_config=None,
  vq_params=None,
):
  """EncoderCache of host batches batch_at(0..num_batches-1), encoded with `params`."""
  program = jax.jit(
    functools.partial(_encode, model=model, vq_config=vq_config),
    out_shardings=(mesh_lib.batch_sharding(mesh), mesh_lib.replicated(mesh)),
  )
  start = time.perf_counter()
  compiled, compile_seconds, batches = None, 0.0, []
  for position in range(num_batches):
    local = batch_at(position)
    if "image_input_positions" in local:
      raise ValueError(
        f"{KEY}: batch {position} has per-example image_input_positions; the cache encodes "
        f"every input patch (the eval-time path) and supports no pre-selected patches"
      )
    device_batch = mesh_lib.global_batch(local, mesh, global_batch_size)
    if compiled is None:
      compile_start = time.perf_counter()
      compiled = program.lower(params, vq_params, device_batch).compile()
      compile_seconds = time.perf_counter() - compile_start
    rows, encoder_pe = compiled(params, vq_params, device_batch)
    rows = multihost_utils.global_array_to_host_local_array(
      rows, mesh, PartitionSpec(axis_rules.DATA_AXIS)
    )
    cached = {k: np.asarray(v) for k, v in rows.items()}
    cached.update({k: np.asarray(local[k]) for k in HOST_KEYS if k in local})
    batches.append(cached)
  return EncoderCache(
    batches,
    np.asarray(encoder_pe),
    global_batch_size=global_batch_size,
    seed=seed,
    seconds=time.perf_counter() - start,
    compile_seconds=compile_seconds,
  )


# -------------------------------------------------------------------------------- the step


def decoder_train_step(
  state,
  batch,
  encoder_pe,
  *,
  model,
  optimizer,
  schedule,
  z_loss,
  num_tasks=0,
  normalization="tokens",
):
  """step.train_step from cached encoder outputs: (new state, metrics).

  `batch`: a cached batch (encoded, encoder_mask, text_targets, image_targets, ...);
  `encoder_pe` [1, L, E]: the encoder position embeddings, the same for every row.
  """

  def loss_fn(params):
    text_logits, image_logits = model.apply(
      {"params": params},
      batch["encoded"],
      encoder_pe,
      batch["encoder_mask"],
      batch,
      method=network.UnifiedIO.decode,
    )
    total, count = losses.example_losses(text_logits, image_logits, batch, z_loss)
    loss = losses.batch_loss(total, count, batch.get("loss_weight"), normalization)
    return loss, (total, count)

  (loss, (example_loss, example_count)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
    state["params"]
  )
  new_state, metrics = step_lib.apply_gradients(
    state, loss, grads, optimizer=optimizer, schedule=schedule
  )
  if num_tasks:
    metrics["task_loss_sum"] = step_lib._per_task(example_loss, batch, num_tasks)
    metrics["task_tokens"] = step_lib._per_task(example_count.astype(jnp.float32), batch, num_tasks)
  return new_state, metrics


def step_maker(
  cache,
  *,
  model,
  optimizer,
  schedule,
  z_loss,
  num_tasks,
  mesh,
  state_shardings,
  normalization="tokens",
):
  """make_step(state, first cached batch) -> the compiled decoder-only step (a PaddedStep,
  whose replicated third argument is here the cached encoder position embeddings)."""
  replicated = mesh_lib.replicated(mesh)
  step_fn = jax.jit(
    functools.partial(
      decoder_train_step,
      model=model,
      optimizer=optimizer,
      schedule=schedule,
      z_loss=z_loss,
      num_tasks=num_tasks,
      normalization=normalization,
    ),
    in_shardings=(state_shardings, mesh_lib.batch_sharding(mesh), replicated),
    out_shardings=(state_shardings, replicated),
    donate_argnums=0,
  )
  encoder_pe = jax.device_put(cache.encoder_pe, replicated)
  return functools.partial(step_lib.PaddedStep, step_fn, encoder_pe, mesh, cache.global_batch_size)


def for_training(
  state, config, model, optimizer, schedule, inputs, vq_params, mesh, shardings, log
):
  """(EncoderCache at the step of `state`, make_step) for the trainer: the cache of the first
  config.train.encoder_cache.examples examples of `inputs`' stream, built once."""
  batch_size = config.train.batch_size
  cache = build(
    model,
    state["params"],
    inputs.batches.batch_at,
    examples(config) // batch_size,
    mesh=mesh,
    global_batch_size=batch_size,
    seed=config.seed,
    vq_config=None if inputs.vq is None else inputs.vq.config,
    vq_params=vq_params,
  )
  close = getattr(inputs.batches, "close", None)
  if close is not None:  # the stream's prefetch threads: no batch is read from it again
    close()
  cache.set_state({"position": int(state["step"])})
  patches = model.config.train_image_patches
  log.line(
    cache.describe()
    + (f" (every input patch, not train_image_patches={patches})" if patches else "")
  )
  make_step = step_maker(
    cache,
    model=model,
    optimizer=optimizer,
    schedule=schedule,
    z_loss=config.loss.z_loss,
    normalization=config.loss.get("normalization", "tokens"),
    num_tasks=len(inputs.task_names),
    mesh=mesh,
    state_shardings=shardings,
  )
  return cache, make_step
