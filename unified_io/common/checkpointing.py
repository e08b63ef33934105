"""Checkpoints of the train state and the input position, via orbax's CheckpointManager.

Layout: WORKDIR/checkpoints/<step>/{state,data}. `state` holds params, optimizer state,
step, RNG and skip counters; `data` the input iterator's position (JSON). Saves are async;
restore places every array with the shardings of the *current* mesh, so a run can resume
on a different mesh shape.
"""
import os

from absl import flags
from absl import logging

import jax
import orbax.checkpoint as ocp

_MAX_CAUSE_CHARS = 400  # tensorstore errors print whole array specs; the head says enough


class CheckpointError(ValueError):
  """A checkpoint that exists but cannot be restored; the message names the step directory."""


def _cause(e: BaseException) -> str:
  # The innermost exception says what is wrong (e.g. which array's bytes are short); the
  # outer ones wrap it in array specs.
  seen = set()
  while (e.__cause__ or e.__context__) is not None and id(e) not in seen:
    seen.add(id(e))
    e = e.__cause__ or e.__context__
  text = " ".join(str(e).split())
  if len(text) > _MAX_CAUSE_CHARS:
    text = text[:_MAX_CAUSE_CHARS] + " ..."
  return f"{type(e).__name__}: {text}"


class Checkpointer:
  def __init__(self, workdir, keep=3, every_steps=1000, async_save=True):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints")) if "://" not in workdir \
        else os.path.join(workdir, "checkpoints")
    self.every_steps = every_steps
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save,
                                           create=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options,
                                         item_names=("state", "data"))

  def latest_step(self):
    return self.manager.latest_step()

  def save(self, step, state, data_state, force=False):
    """Saves if `step` is on the save interval (or `force`); returns whether it saved."""
    if not force and step % self.every_steps:
      return False
    if self.manager.latest_step() == step:
      return False
    return self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)), force=True)

  def restore(self, abstract_state, step=None):
    """(state, data_state) at `step` (default latest), arrays placed per `abstract_state`."""
    step = self.manager.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"No checkpoint in {self.directory}")
    try:
      restored = self.manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    except Exception as e:  # orbax raises many types for unreadable or mismatched files
      step_dir = os.path.join(self.directory, str(step))
      earlier = [s for s in self.manager.all_steps() if s < step]
      hint = (f"move {step_dir} away to resume from step {max(earlier)}" if earlier else
              "use another --workdir to start afresh")
      raise CheckpointError(f"Could not restore checkpoint {step_dir} (unreadable or written "
                            f"by another config): {_cause(e)}. To go on, {hint}.") from e
    return restored.state, restored.data

  def wait(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()


def restore_params(directory, abstract_params):
  """Parameters only, from a training run's workdir or a converted checkpoint directory.

  Accepts WORKDIR (latest step of WORKDIR/checkpoints), a step directory, or a directory
  with a `params` item written by `unified_io.convert`.
  """
  directory = os.path.abspath(directory) if "://" not in directory else directory
  if not os.path.exists(directory) and "://" not in directory:
    raise FileNotFoundError(f"config.init_from={directory} does not exist")
  converted = os.path.join(directory, "params")
  if os.path.isdir(converted):
    return ocp.StandardCheckpointer().restore(converted, abstract_params)
  run_dir = os.path.join(directory, "checkpoints") if os.path.isdir(
      os.path.join(directory, "checkpoints")) else directory
  manager = ocp.CheckpointManager(run_dir, item_names=("state", "data"),
                                  options=ocp.CheckpointManagerOptions(read_only=True))
  step = manager.latest_step()
  if step is None:
    raise FileNotFoundError(f"config.init_from={directory}: no checkpoint or params found")
  restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
      item={"params": abstract_params},
      restore_args=jax.tree.map(lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding),
                                {"params": abstract_params}),
      partial_restore=True)))
  return restored.state["params"]


def quiet_library_logs():
  """Orbax and TFDS log every save and dataset open at INFO through absl, burying the
  trainer's own progress lines; CLIs show WARNING and up unless -v/--verbosity is given."""
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
