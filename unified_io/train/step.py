"""The train step: gradients of the batch loss and the optimizer update.

`train_step` runs a batch at the config's fixed lengths (`config.train.batch_shapes="padded"`).
With "buckets" the trainer splits each batch into parts of different shapes
(unified_io/train/length_buckets.py) and runs `part_gradients` on each part, adding its
gradients into an accumulator, then `apply_accumulated`. Both give the same loss (the mean
over the batch's target tokens, or with config.loss.normalization="examples" over its
examples) and the same gradients: every row carries its share of the loss ("loss_scale":
loss weight / target tokens of the global batch, or loss weight / the row's target tokens /
the global batch's examples with targets), so the parts' sums add up to the padded batch's
loss. `PaddedStep` and `BucketedStep` are their compiled forms.

An example's input patches (`config.model.train_image_patches` of them, valid ones first)
are drawn from the step's key and the example's global row, not from one draw over the
whole batch, so that which part or padding it shares a program with never changes them.
Dropout masks (off in every shipped config) are drawn per program, so with dropout the
padded and bucketed steps draw different, equally distributed masks.
"""

import functools
import time

import jax
import jax.numpy as jnp
import optax

from unified_io.common import axis_rules
from unified_io.common import distributed
from unified_io.common import flops as flops_lib
from unified_io.common import mesh as mesh_lib
from unified_io.model import builder as model_lib
from unified_io.model import losses
from unified_io.train import length_buckets

# What config.train.batch_shapes may be (config_check validates against this).
BATCH_SHAPES = ("buckets", "padded")


def select_patches(rng, patch_mask, num_keep, rows):
  """[B, num_keep] patch indices per row, valid patches first in random order.

  Row b's order depends only on (rng, rows[b]): the same example gets the same patches in
  any batch it is part of. (The network's own `subsample_image_patches` draws one noise
  array over the batch, which depends on where the example sits in it.)
  """
  shape = patch_mask.shape[1:]
  noise = jax.vmap(lambda row: jax.random.uniform(jax.random.fold_in(rng, row), shape))(rows)
  order = jnp.argsort(jnp.where(patch_mask, noise, noise + 2.0), axis=1)[:, :num_keep]
  return order.astype(jnp.int32)


def prepare(batch, state, model, vq_config=None, vq_params=None):
  """(batch with image targets tokenized and input patches chosen, model rngs) for the step
  of `state` (its "rng" and "step")."""
  batch = model_lib.tokenize_image_targets(
    batch, vq_config, vq_params, model.config.padded_text_size
  )
  step_rng = jax.random.fold_in(state["rng"], state["step"])
  dropout_rng, patch_rng = jax.random.split(step_rng)
  cfg = model.config
  images = batch.get("image_inputs")
  keep = cfg.train_image_patches
  if images is not None and "image_input_positions" not in batch:
    if 0 < keep < cfg.encoder_max_image_length:
      rows = batch.get("row")
      rows = jnp.arange(images.shape[0], dtype=jnp.int32) if rows is None else rows
      positions = select_patches(patch_rng, batch["image_input_mask"], keep, rows)
      batch = dict(batch, image_input_positions=positions)
  return batch, {"dropout": dropout_rng, "patches": patch_rng}


def example_losses(params, batch, rngs, *, model, z_loss=0.0):
  """(summed loss [B], target tokens [B]) of a `prepare`d batch, in training mode."""
  text_logits, image_logits = model.apply({"params": params}, batch, train=True, rngs=rngs)
  return losses.example_losses(text_logits, image_logits, batch, z_loss)


def _per_task(values, batch, num_tasks):
  return jax.ops.segment_sum(values, batch["task_index"], num_segments=num_tasks)


def apply_gradients(state, loss, grads, *, optimizer, schedule):
  """(new state, metrics): the optimizer update, or none when loss or gradients are not
  finite (the step is then counted as skipped)."""
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
  params = jax.tree.map(lambda p, u: p + u.astype(p.dtype), state["params"], updates)
  keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
  skipped = (~finite).astype(jnp.int32)
  new_state = {
    "params": keep(params, state["params"]),
    "opt_state": keep(opt_state, state["opt_state"]),
    "step": state["step"] + 1,
    "rng": state["rng"],
    "skipped": state["skipped"] + skipped,
    "consecutive_skips": jnp.where(finite, 0, state["consecutive_skips"] + 1),
  }
  metrics = {
    "loss": loss,
    "grad_norm": grad_norm,
    "learning_rate": schedule(state["step"]),
    "skipped": skipped,
  }
  return new_state, metrics


def train_step(
  state,
  batch,
  vq_params=None,
  *,
  model,
  optimizer,
  schedule,
  z_loss,
  vq_config=None,
  num_tasks=0,
  normalization="tokens",
):
  """One step on a batch at fixed lengths: (new state, metrics). `normalization`:
  losses.NORMALIZATIONS (config.loss.normalization)."""
  batch, rngs = prepare(batch, state, model, vq_config, vq_params)

  def loss_fn(params):
    total, count = example_losses(params, batch, rngs, model=model, z_loss=z_loss)
    loss = losses.batch_loss(total, count, batch.get("loss_weight"), normalization)
    return loss, (total, count)

  (loss, (example_loss, example_count)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
    state["params"]
  )
  new_state, metrics = apply_gradients(state, loss, grads, optimizer=optimizer, schedule=schedule)
  if num_tasks:
    # Sums, not means: the host adds them over the logging window and divides once.
    metrics["task_loss_sum"] = _per_task(example_loss, batch, num_tasks)
    metrics["task_tokens"] = _per_task(example_count.astype(jnp.float32), batch, num_tasks)
  return new_state, metrics


# ------------------------------------------------------------------------- in parts


def zero_accumulator(params, num_tasks):
  return {
    "grads": jax.tree.map(jnp.zeros_like, params),
    "loss": jnp.float32(0),
    "task_loss_sum": jnp.zeros((num_tasks,), jnp.float32),
    "task_tokens": jnp.zeros((num_tasks,), jnp.float32),
  }


def part_gradients(
  params, acc, part, rng, step, vq_params=None, *, kind, model, z_loss, vq_config, num_tasks
):
  """`acc` plus one part's loss, gradients and per-task sums (length_buckets.split's keys).

  `kind` (static) salts the dropout key, so that parts of one step draw different masks.
  """
  part, rngs = prepare(part, {"rng": rng, "step": step}, model, vq_config, vq_params)
  rngs["dropout"] = jax.random.fold_in(rngs["dropout"], kind)

  def loss_fn(p):
    total, count = example_losses(p, part, rngs, model=model, z_loss=z_loss)
    return jnp.sum(total * part["loss_scale"]), (total, count)

  (loss, (total, count)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  out = {"grads": jax.tree.map(jnp.add, acc["grads"], grads), "loss": acc["loss"] + loss}
  if num_tasks:
    out["task_loss_sum"] = acc["task_loss_sum"] + _per_task(total, part, num_tasks)
    out["task_tokens"] = acc["task_tokens"] + _per_task(count.astype(jnp.float32), part, num_tasks)
  else:
    out["task_loss_sum"], out["task_tokens"] = acc["task_loss_sum"], acc["task_tokens"]
  return out


def apply_accumulated(state, acc, *, optimizer, schedule, num_tasks):
  new_state, metrics = apply_gradients(
    state, acc["loss"], acc["grads"], optimizer=optimizer, schedule=schedule
  )
  if num_tasks:
    metrics["task_loss_sum"], metrics["task_tokens"] = acc["task_loss_sum"], acc["task_tokens"]
  return new_state, metrics


# --------------------------------------------------------------------- compiled forms


class PaddedStep:
  """`train_step` compiled ahead of time on the first batch: one shape for the whole run."""

  def __init__(self, step_fn, vq_params, mesh, global_batch_size, state, local):
    self.vq_params, self.mesh, self.global_batch_size = vq_params, mesh, global_batch_size
    batch = mesh_lib.global_batch(local, mesh, global_batch_size)
    self.compiled = step_fn.lower(state, batch, vq_params).compile()
    self.flops, _ = flops_lib.cost(self.compiled)  # per device
    self.last_flops = self.flops

  def describe(self):
    return f"Step: {self.flops / 1e9:.3g} GFLOP per device (XLA cost analysis)"

  def __call__(self, state, local):
    batch = mesh_lib.global_batch(local, self.mesh, self.global_batch_size)
    return self.compiled(state, batch, self.vq_params)


class BucketedStep:
  """Each host batch split into parts by shape (length_buckets), a program per part shape.

  A part shape's program is compiled the first time a batch needs it, with a log line (its
  FLOPs and compile time); the update program is compiled once. Hosts agree on the shapes
  through a tiny all-gather of each host's lengths, then wait for each other after every
  compile (a slow compile must not trip the next collective's timeout).
  """

  def __init__(
    self,
    *,
    model,
    optimizer,
    schedule,
    z_loss,
    vq_config,
    vq_params,
    num_tasks,
    mesh,
    state_shardings,
    global_batch_size,
    log,
    normalization="tokens",
  ):
    self.mesh, self.vq_params, self.log = mesh, vq_params, log
    self.normalization = losses.check_normalization(normalization)
    self.local_rows = global_batch_size // jax.process_count()
    # Rows per host of a part must split evenly over the host's devices on the data axis.
    self.granularity = max(1, mesh.shape[axis_rules.DATA_AXIS] // jax.process_count())
    replicated = mesh_lib.replicated(mesh)
    params_shardings = state_shardings["params"]
    acc_shardings = {
      "grads": params_shardings,
      "loss": replicated,
      "task_loss_sum": replicated,
      "task_tokens": replicated,
    }
    self._zeros = jax.jit(
      functools.partial(zero_accumulator, num_tasks=num_tasks), out_shardings=acc_shardings
    )
    self._part_fn = lambda kind: jax.jit(
      functools.partial(
        part_gradients,
        kind=kind,
        model=model,
        z_loss=z_loss,
        vq_config=vq_config,
        num_tasks=num_tasks,
      ),
      in_shardings=(
        params_shardings,
        acc_shardings,
        mesh_lib.batch_sharding(mesh),
        replicated,
        replicated,
        replicated,
      ),
      out_shardings=acc_shardings,
      donate_argnums=1,
    )
    self._finish_fn = jax.jit(
      functools.partial(
        apply_accumulated, optimizer=optimizer, schedule=schedule, num_tasks=num_tasks
      ),
      in_shardings=(state_shardings, acc_shardings),
      out_shardings=(state_shardings, replicated),
      donate_argnums=0,  # the accumulator has nothing of its shape to become
    )
    self._finish = None
    self.programs = {}  # PartShape -> (compiled, FLOPs per device)
    self.compile_seconds = 0.0
    self.last_flops = 0.0

  def describe(self):
    return (
      f"Step: {self.last_flops / 1e9:.3g} GFLOP per device on the first batch (XLA cost "
      f"analysis; batch_shapes=buckets: {len(self.programs)} parts, FLOPs vary with the batch)"
    )

  def plan(self, local):
    stats = length_buckets.gather(length_buckets.host_stats(local, self.normalization))
    limits = (local["text_inputs"].shape[1], local["text_targets"].shape[1])
    return length_buckets.plan(stats, limits, self.local_rows, self.granularity)

  def _program(self, shape, state, acc, part):
    if shape not in self.programs:
      start = time.perf_counter()
      args = (state["params"], acc, part, state["rng"], state["step"], self.vq_params)
      compiled = self._part_fn(shape.kind).lower(*args).compile()
      seconds = time.perf_counter() - start
      self.compile_seconds += seconds
      flops, _ = flops_lib.cost(compiled)
      self.programs[shape] = (compiled, flops)
      self.log(
        f"Compiled step part {len(self.programs)} ({shape.describe()}): "
        f"{flops / 1e9:.3g} GFLOP per device, {seconds:.1f} s"
      )
      distributed.host_barrier(f"uio_train_part_compiled_{len(self.programs)}")
    return self.programs[shape]

  def _parts(self, local):
    shapes, tokens = self.plan(local)
    row_offset = jax.process_index() * self.local_rows
    parts = length_buckets.split(local, shapes, row_offset, tokens, self.normalization)
    for shape, part in zip(shapes, parts):
      yield shape, mesh_lib.global_batch(part, self.mesh, shape.rows * jax.process_count())

  def compile_for(self, state, local):
    """Compiles, without running, the programs that the batch `local` needs."""
    acc = self._zeros(state["params"])
    flops = sum(self._program(shape, state, acc, part)[1] for shape, part in self._parts(local))
    self._finish_program(state, acc)
    self.last_flops = flops + self.finish_flops

  def _finish_program(self, state, acc):
    if self._finish is None:
      self._finish = self._finish_fn.lower(state, acc).compile()
      self.finish_flops, _ = flops_lib.cost(self._finish)
    return self._finish

  def __call__(self, state, local):
    acc = self._zeros(state["params"])
    flops = 0.0
    for shape, part in self._parts(local):
      compiled, part_flops = self._program(shape, state, acc, part)
      acc = compiled(state["params"], acc, part, state["rng"], state["step"], self.vq_params)
      flops += part_flops
    finish = self._finish_program(state, acc)
    self.last_flops = flops + self.finish_flops
    return finish(state, acc)
