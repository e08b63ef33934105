"""The trainer's side of config.data.schedule="stop_and_go" (rule and schedule:
unified_io/data/stop_and_go.py): measure each task's validation loss every
`data.stop_and_go.every_steps` steps, feed the rule, log it, keep its state.

The measurement is cheaper than the `tasks` evaluator (no decoding, no host-local copy of
the parameters): the teacher-forced mean token loss of a fixed set of each task's first
`num_examples` validation examples, with the current parameters, in one sharded program
over the training mesh (batches of the training batch size, each host preparing its rows).
Its per-task sums come back replicated, so every host reads the same floats and the rule
decides the same on all of them.
"""

import io
import os

import jax
import jax.numpy as jnp
import numpy as np

from unified_io.common import mesh as mesh_lib
from unified_io.data import from_config
from unified_io.data import stop_and_go
from unified_io.data.tasks import registry as tasks_lib
from unified_io.model import builder as model_lib
from unified_io.model import losses

MODEL_KEYS = (
  "text_inputs",
  "image_inputs",
  "image_input_mask",
  "text_targets",
  "image_target_pixels",
  "image_target_mask",
)
PICTURE = "stop_and_go.png"


class TaskLosses:
  """Per task, the mean token loss of its fixed validation examples (module docstring)."""

  def __init__(self, config, model, vq, spec, task_names, mesh, num_examples, split):
    for name in task_names:
      if split not in tasks_lib.get(name).splits:
        raise ValueError(
          f"config.data.stop_and_go.split={split!r}: task {name} has splits "
          f"{sorted(tasks_lib.get(name).splits)}"
        )
    self.num_tasks, self.mesh = len(task_names), mesh
    self.batch_size = config.train.batch_size
    # Round robin over the tasks: element j is task j % T's (j // T)-th validation example.
    val = from_config.stream(config, spec, split=split, task_names=task_names)
    total = num_examples * self.num_tasks
    padded = -(-total // self.batch_size) * self.batch_size
    local = self.batch_size // jax.process_count()
    self.parts = []
    for start in range(0, padded, self.batch_size):
      first = start + jax.process_index() * local
      rows = [val.element(j % total) for j in range(first, first + local)]
      part = {k: np.stack([r[k] for r in rows]) for k in MODEL_KEYS if k in rows[0]}
      part["task_index"] = np.stack([r["task_index"] for r in rows])
      part["valid"] = (np.arange(first, first + local) < total).astype(np.float32)
      self.parts.append(part)
    vq_config = None if vq is None else vq.config
    self.vq_params = None if vq is None else jax.device_put(vq.params, mesh_lib.replicated(mesh))
    padded_text = model.config.padded_text_size

    def sums(params, vq_params, batch):
      inputs = {k: batch[k] for k in MODEL_KEYS if k in batch}
      inputs = model_lib.tokenize_image_targets(inputs, vq_config, vq_params, padded_text)
      text_logits, image_logits = model.apply({"params": params}, inputs)
      total, count = losses.example_losses(text_logits, image_logits, inputs)
      seg = lambda v: jax.ops.segment_sum(
        v * batch["valid"], batch["task_index"], num_segments=self.num_tasks
      )
      return seg(total), seg(count.astype(jnp.float32))

    replicated = mesh_lib.replicated(mesh)
    self._sums = jax.jit(sums, out_shardings=(replicated, replicated))

  def __call__(self, params) -> np.ndarray:
    total = np.zeros(self.num_tasks)
    count = np.zeros(self.num_tasks)
    for part in self.parts:
      batch = mesh_lib.global_batch(part, self.mesh, self.batch_size)
      t, c = jax.device_get(self._sums(params, self.vq_params, batch))
      total, count = total + np.asarray(t, np.float64), count + np.asarray(c, np.float64)
    # A task whose examples have no target token has no loss (nan: the rule skips it).
    return np.where(count > 0, total / np.maximum(count, 1.0), np.nan)


class StopAndGo:
  """Measurement + rule + log for the trainer's loop; its state rides in the data state."""

  STATE_KEY = "stop_and_go"

  def __init__(self, config, model, inputs, mesh, workdir):
    values = stop_and_go.settings(config)
    self.every_steps, self.workdir = values["every_steps"], workdir
    self.batches = inputs.batches
    schedule = self.batches.stream.schedule
    self.controller = stop_and_go.Controller(
      inputs.task_names, stop_and_go.rule(values), schedule, config.train.batch_size
    )
    self.losses = TaskLosses(
      config,
      model,
      inputs.vq,
      self.batches.stream.spec,
      inputs.task_names,
      mesh,
      values["num_examples"],
      values["split"],
    )

  def data_state(self):
    return {**self.batches.get_state(), self.STATE_KEY: self.controller.state()}

  def restore(self, data_state, log):
    saved = data_state.get(self.STATE_KEY)
    if saved is None:  # a checkpoint of a run without stop_and_go: start the rule afresh
      log.line("stop_and_go: the checkpoint has no stop_and_go state; every task starts in go")
      return
    self.controller.set_state(saved)

  def maybe_run(self, step, params, log):
    """At every `every_steps`-th step: measure, apply the rule, log (all hosts call it)."""
    if step % self.every_steps:
      return None
    losses = self.losses(params)
    # The first batch position that no host has submitted (pipeline.Batches prefetch).
    position = self.batches.position + self.batches.prefetch
    decisions = self.controller.update(step, losses, position)
    modes = self.controller.modes
    names = self.controller.task_names
    log.line(
      f"stop_and_go step {step}: "
      + ", ".join(f"{n} {v:.4f} {m}" for n, v, m in zip(names, losses, modes))
    )
    for d in decisions:
      log.line(f"stop_and_go: {d.task} {d.before} -> {d.after} from batch {d.position}")
    scalars = {}
    for n, v, m in zip(names, losses, modes):
      scalars[f"stop_and_go/{n}/go"] = float(m == stop_and_go.GO)
      if np.isfinite(v):
        scalars[f"stop_and_go/{n}/val_loss"] = float(v)
    log.scalars(step, scalars)
    if log.main:  # through gfile: the workdir may be gs://
      import tensorflow as tf

      buffer = io.BytesIO()
      stop_and_go.draw_modes(self.controller).save(buffer, "PNG")
      with tf.io.gfile.GFile(os.path.join(self.workdir, PICTURE), "wb") as f:
        f.write(buffer.getvalue())
    return decisions
