"""Checkpoints of the train state and the input position, via orbax's CheckpointManager.

Layout: WORKDIR/checkpoints/<step>/{state,data}. `state` holds params, optimizer state,
step, RNG and skip counters; `data` the input iterator's position (JSON). Saves are async;
restore places every array with the shardings of the *current* mesh, so a run can resume
on a different mesh shape.

Integrity. Orbax stores no checksums, so a data file overwritten in place (same size)
restores without complaint and turns into NaN losses. Each process therefore writes
<step>/integrity.process_<i>.json once the save is final (on async saves: at the first
save() call that finds it done, or at wait/close): the size and sha256 of every file it
wrote; files under `ocdbt.process_<i>` or `process_<i>` belong to process i, all others
(metadata, the merged ocdbt manifest, `data`) to process 0. Before a restore the manifests
are checked (process i checks those with index = i mod process count, so a run on another
number of hosts still checks them all) and after it every floating value must be finite.
A checkpoint without manifest (older code, or a run killed between finalising the save and
writing the manifest) gets the value check only, with a log line saying so. A state with
non-finite values is never saved, so it never counts toward `keep` and never rotates a good
checkpoint out.

Falling back: `restore(..., step=S, set_aside_newer=True)` restores an older step and moves
the checkpoints after it to WORKDIR/checkpoints_set_aside/ (never deleted), so the run can
save those steps again; the move is recorded there (fallbacks.json) and repeating the same
fallback once newer checkpoints exist again is refused rather than silently discarding
them.
"""

import hashlib
import itertools
import json
import os
import re
import time

from absl import flags
from absl import logging

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from unified_io.common import distributed

_MAX_CAUSE_CHARS = 400  # tensorstore errors print whole array specs; the head says enough
MANIFEST_PREFIX = "integrity.process_"
_VERIFY_CALLS = itertools.count()
# Files of one process: anything below an `ocdbt.process_<i>` or `process_<i>` component.
_OWNER = re.compile(r"(?:^|/)(?:ocdbt\.)?process_(\d+)(?:/|$)")
_HASH_CHUNK = 1 << 20
SET_ASIDE = "checkpoints_set_aside"
_FALLBACKS = "fallbacks.json"
# Config sections whose change makes the workdir's checkpoints mean something else (other
# shapes, tokens or data stream), compared on resume; the keys in RESUME_FREE_KEYS only say
# how or from where the same data is read.
RESUME_SECTIONS = ("model", "vocab", "vqgan", "lengths", "data", "seed")
RESUME_FREE_KEYS = ("data.workers", "data.workers_kind", "data.data_dir")


class CheckpointError(ValueError):
  """The workdir's checkpoints cannot be used as asked; the message names the path and how
  to go on. Subclasses: ConfigMismatchError, workdir_lock.WorkdirLockedError."""


class ConfigMismatchError(CheckpointError):
  """The config differs from WORKDIR/config.json in keys that change the model or data."""


def _gfile():
  import tensorflow as tf

  return tf.io.gfile


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


# ------------------------------------------------------------------------------ integrity


def _digest(path):
  """(size, sha256 hex) of a file, read in chunks (local or gs://)."""
  digest, size = hashlib.sha256(), 0
  with _gfile().GFile(path, "rb") as f:
    while True:
      chunk = f.read(_HASH_CHUNK)
      if not chunk:
        return size, digest.hexdigest()
      digest.update(chunk)
      size += len(chunk)


def _owned_files(step_dir, process_index):
  """Paths (relative, '/'-separated) of the files of `step_dir` that `process_index` wrote."""
  out = []
  for dirpath, _, names in _gfile().walk(step_dir):
    rel_dir = dirpath[len(step_dir) :].strip("/")
    for name in names:
      rel = f"{rel_dir}/{name}" if rel_dir else name
      if rel.startswith(MANIFEST_PREFIX):
        continue
      owner = _OWNER.search(rel)
      if (int(owner.group(1)) if owner else 0) == process_index:
        out.append(rel)
  return sorted(out)


def write_manifest(step_dir, step):
  """Writes this process's integrity manifest of a finalised step directory."""
  index = jax.process_index()
  files = {}
  for rel in _owned_files(step_dir, index):
    size, sha = _digest(f"{step_dir}/{rel}")
    files[rel] = {"size": size, "sha256": sha}
  manifest = {
    "format": 1,
    "step": step,
    "process_index": index,
    "process_count": jax.process_count(),
    "files": files,
  }
  path = f"{step_dir}/{MANIFEST_PREFIX}{index}.json"
  # Written under another name and renamed: a kill mid-write leaves no half manifest.
  with _gfile().GFile(path + ".tmp", "w") as f:
    f.write(json.dumps(manifest, indent=1))
  _gfile().rename(path + ".tmp", path, overwrite=True)


def _check_manifest(step_dir, path):
  """(problems, process count at save) of the files one manifest lists; None if unreadable."""
  try:
    with _gfile().GFile(path) as f:
      manifest = json.load(f)
    files, saved_count = manifest["files"], int(manifest["process_count"])
  except (ValueError, KeyError, TypeError):
    return None
  problems = []
  for rel, want in files.items():
    full = f"{step_dir}/{rel}"
    if not _gfile().exists(full):
      problems.append(f"{rel} is missing")
      continue
    size, sha = _digest(full)
    if size != want["size"]:
      problems.append(f"{rel} has {size} bytes, {want['size']} were written")
    elif sha != want["sha256"]:
      problems.append(f"{rel} differs from what was written (sha256)")
  return problems, saved_count


def verify(step_dir):
  """(problems, notes) of a step directory against its manifests, agreed by every process.

  Process i checks the manifests whose index is i mod the process count; the problems of
  all of them are gathered so that every process raises the same error.
  """
  gfile = _gfile()
  count, index = jax.process_count(), jax.process_index()
  manifests = sorted(gfile.glob(f"{step_dir}/{MANIFEST_PREFIX}*.json"))
  problems, unreadable, saved_count = [], [], 0
  for path in manifests:
    owner = int(path[len(f"{step_dir}/{MANIFEST_PREFIX}") : -len(".json")])
    if owner % count != index:
      continue
    found = _check_manifest(step_dir, path)
    if found is None:
      unreadable.append(os.path.basename(path))
    else:
      problems += found[0]
      saved_count = max(saved_count, found[1])
  if count > 1:
    key = f"uio_checkpoint_verify/{next(_VERIFY_CALLS)}"  # same sequence on every process
    gathered = distributed.all_gather_bytes(key, json.dumps(problems).encode())
    problems = [p for g in gathered for p in json.loads(g)]
  notes = []
  if not manifests:
    notes.append(
      "no integrity manifest (saved by older code, or the run stopped before "
      "writing it): checked for finite values only"
    )
  elif unreadable:
    notes.append(f"unreadable manifest(s) {', '.join(unreadable)}: those files unchecked")
  elif saved_count > len(manifests):
    notes.append(
      f"{len(manifests)} of {saved_count} processes' manifests present: the others' files unchecked"
    )
  return problems, notes


@jax.jit
def _finite(leaves):
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def all_finite(tree):
  """Whether every floating-point value of `tree` (jax arrays, any sharding) is finite."""
  leaves = [
    x for x in jax.tree.leaves(tree) if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact)
  ]
  return not leaves or bool(_finite(leaves))


# ---------------------------------------------------------------------------- checkpointer


class Checkpointer:
  """Saves every `every_steps`, keeps `keep`, verifies on restore (module docstring).

  `log`: where warnings go (e.g. the trainer's run_log.Log.line); absl's WARNING if None.
  """

  def __init__(self, workdir, keep=3, every_steps=1000, async_save=True, log=None):
    self.directory = (
      os.path.abspath(os.path.join(workdir, "checkpoints"))
      if "://" not in workdir
      else os.path.join(workdir, "checkpoints")
    )
    self.set_aside_dir = os.path.join(os.path.dirname(self.directory), SET_ASIDE)
    self.every_steps = every_steps
    self._log = log or logging.warning
    self._unmanifested = []  # saved steps whose manifest is not written yet
    options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, enable_async_checkpointing=async_save, create=True
    )
    self.manager = ocp.CheckpointManager(
      self.directory, options=options, item_names=("state", "data")
    )

  def step_dir(self, step):
    return os.path.join(self.directory, str(step))

  def latest_step(self):
    return self.manager.latest_step()

  def save(self, step, state, data_state, force=False):
    """Saves if `step` is on the save interval (or `force`); returns whether it saved.

    A state with a non-finite parameter or optimizer value is not saved (the step is
    logged), so the last good checkpoints stay the ones kept.
    """
    self._write_manifests(block=False)
    if not force and step % self.every_steps:
      return False
    if self.manager.latest_step() == step:
      return False
    if not all_finite(state):
      self._log(
        f"Not saving the checkpoint of step {step}: its state has non-finite values; "
        f"the latest saved one stays step {self.manager.latest_step()}"
      )
      return False
    self._write_manifests(block=True)  # orbax waits for the previous save here anyway
    saved = self.manager.save(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)
      ),
      force=True,
    )
    if saved:
      self._unmanifested.append(step)
      self._write_manifests(block=False)  # at once when the save was synchronous
    return saved

  def _write_manifests(self, block):
    """Manifests of the saved steps once orbax has finalised them (no collectives)."""
    if not self._unmanifested:
      return
    if block:
      self.manager.wait_until_finished()
    elif self.manager.is_saving_in_progress():
      return
    steps, self._unmanifested = self._unmanifested, []
    gfile = _gfile()
    for step in steps:
      step_dir = self.step_dir(step)
      if not gfile.exists(step_dir):  # the save failed, or `keep` rotated it out already
        continue
      try:
        write_manifest(step_dir, step)
      except Exception as e:
        # The checkpoint itself is fine; only its later verification is lost.
        self._log(f"Could not write the integrity manifest of {step_dir}: {_cause(e)}")

  def _hint(self, step):
    earlier = [s for s in self.manager.all_steps() if s < step]
    if earlier:
      return (
        f"pass --config.checkpoint.restore_step={max(earlier)} to resume from step "
        f"{max(earlier)} (later checkpoints are moved to {self.set_aside_dir}), or move "
        f"{self.step_dir(step)} away"
      )
    return "use another --workdir to start afresh"

  def restore(self, abstract_state, step=None, set_aside_newer=False):
    """(state, data_state) at `step` (default latest), arrays placed per `abstract_state`.

    The step is verified against its manifests and its values must be finite; any failure
    is a CheckpointError naming the step directory and the step to fall back to. With
    `set_aside_newer`, checkpoints after `step` are moved to `set_aside_dir` once it is
    restored, so that the run continues from it.
    """
    latest = self.manager.latest_step()
    step = latest if step is None else step
    if step is None:
      raise FileNotFoundError(f"No checkpoint in {self.directory}")
    step_dir = self.step_dir(step)
    if step not in self.manager.all_steps():
      raise CheckpointError(
        f"No checkpoint {step_dir} to restore; the saved steps are "
        f"{list(self.manager.all_steps())}."
      )
    newer = [s for s in self.manager.all_steps() if s > step]
    if set_aside_newer and newer:
      self._refuse_repeated_fallback(step, newer)
    problems, notes = verify(step_dir)
    if problems:
      more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
      raise CheckpointError(
        f"Checkpoint {step_dir} is corrupt: {'; '.join(problems[:3])}{more}. "
        f"To go on, {self._hint(step)}."
      )
    for note in notes:
      self._log(f"Checkpoint {step_dir}: {note}")
    try:
      restored = self.manager.restore(
        step,
        args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()
        ),
      )
    except Exception as e:  # orbax raises many types for unreadable or mismatched files
      raise CheckpointError(
        f"Could not restore checkpoint {step_dir} (unreadable or written "
        f"by another config): {_cause(e)}. To go on, "
        f"{self._hint(step)}."
      ) from e
    if not all_finite(restored.state):
      raise CheckpointError(
        f"Checkpoint {step_dir} holds non-finite values (NaN or Inf) in its "
        f"state, so it is corrupt. To go on, {self._hint(step)}."
      )
    if set_aside_newer and newer:
      self._set_aside(step, newer)
    return restored.state, restored.data

  def _fallbacks(self):
    path = os.path.join(self.set_aside_dir, _FALLBACKS)
    if not _gfile().exists(path):
      return []
    with _gfile().GFile(path) as f:
      return json.load(f)

  def _refuse_repeated_fallback(self, step, newer):
    # A rerun of the same command line (e.g. a requeued job still passing restore_step)
    # would otherwise move away every checkpoint written since the first fallback.
    for record in self._fallbacks():
      if record["step"] == step:
        raise CheckpointError(
          f"config.checkpoint.restore_step={step} was already applied at "
          f"{time.ctime(record['time'])} (checkpoints then moved to {self.set_aside_dir}); "
          f"steps {newer} were saved since. To resume from step {max(newer)}, drop "
          f"restore_step; to fall back to {step} again, delete "
          f"{os.path.join(self.set_aside_dir, _FALLBACKS)}."
        )

  def _set_aside(self, step, newer):
    """Moves the checkpoints after `step` out of orbax's directory (process 0), records it."""
    gfile = _gfile()
    moved = []
    if jax.process_index() == 0:
      gfile.makedirs(self.set_aside_dir)
      for s in newer:
        target, n = os.path.join(self.set_aside_dir, str(s)), 1
        while gfile.exists(target):
          target, n = os.path.join(self.set_aside_dir, f"{s}.{n}"), n + 1
        gfile.rename(self.step_dir(s), target)  # on gs:// this copies every object
        moved.append(target)
      records = self._fallbacks() + [{"step": step, "time": time.time(), "moved": moved}]
      with gfile.GFile(os.path.join(self.set_aside_dir, _FALLBACKS), "w") as f:
        f.write(json.dumps(records, indent=1))
      self._log(
        f"Falling back to step {step} (config.checkpoint.restore_step): moved the "
        f"later checkpoints to {', '.join(moved)}"
      )
    distributed.host_barrier(f"uio_checkpoint_set_aside_{step}")
    self.manager.reload()

  def wait(self):
    self.manager.wait_until_finished()
    self._write_manifests(block=True)

  def close(self):
    self.manager.wait_until_finished()
    self._write_manifests(block=True)
    self.manager.close()


# ------------------------------------------------------------------------- resume config


def _flat(tree, prefix=""):
  if not isinstance(tree, dict):
    return {prefix: tree}
  out = {}
  for k, v in tree.items():
    out.update(_flat(v, f"{prefix}.{k}" if prefix else k))
  return out


def check_resume_config(config, workdir):
  """Refuses (ConfigMismatchError) a config that would resume WORKDIR's checkpoints as
  another model or on other data; reads only, so a refused start changes nothing there.

  Compared: the keys under RESUME_SECTIONS but RESUME_FREE_KEYS, of the saved
  WORKDIR/config.json against `config`, only when the workdir has a checkpoint (a run that
  never saved resumes nothing). Keys present on one side only (added or removed by a newer
  version of the code) are not compared. Everything else (train.total_steps, eval and
  checkpoint settings, logging, mesh, optimizer) may change on resume.
  """
  gfile = _gfile()
  path = os.path.join(workdir, "config.json")
  ckpt_dir = os.path.join(workdir, "checkpoints")
  if not gfile.exists(path) or not gfile.isdir(ckpt_dir):
    return
  if not any(name.strip("/").isdigit() for name in gfile.listdir(ckpt_dir)):
    return
  with gfile.GFile(path) as f:
    saved = json.load(f)
  now = json.loads(config.to_json_best_effort())
  pick = lambda c: _flat({k: c[k] for k in RESUME_SECTIONS if k in c})
  saved, now = pick(saved), pick(now)
  changed = [
    k for k in sorted(set(saved) & set(now)) if saved[k] != now[k] and k not in RESUME_FREE_KEYS
  ]
  if changed:
    diff = "; ".join(f"{k}: {saved[k]!r} -> {now[k]!r}" for k in changed)
    raise ConfigMismatchError(
      f"{workdir} holds checkpoints of another model or data config ({path}); these "
      f"settings differ (saved -> now): {diff}. Nothing in {workdir} was changed. To go on, "
      f"resume with the saved settings, or use another --workdir to start afresh."
    )


def _is_step_dir(directory, isdir):
  """Whether `directory` is one step of a run (WORKDIR/checkpoints/<step>, or a step set
  aside under checkpoints_set_aside/): it holds the `state` item."""
  return isdir(os.path.join(directory, "state"))


def restore_params(directory, abstract_params, what="config.init_from"):
  """Parameters only, from a training run's workdir or a converted checkpoint directory.

  Accepts WORKDIR (latest step of WORKDIR/checkpoints), WORKDIR/checkpoints, a step
  directory (WORKDIR/checkpoints/<step>), or a directory with a `params` item written by
  `unified_io.convert`. A step is verified against its integrity manifests first (corrupt:
  CheckpointError naming it). `what` names the input in errors (a flag or config key).
  """
  remote = "://" in directory
  directory = directory.rstrip("/") if remote else os.path.abspath(directory)
  isdir = _gfile().isdir if remote else os.path.isdir
  if not remote and not os.path.exists(directory):
    raise FileNotFoundError(f"{what}={directory} does not exist")
  converted = os.path.join(directory, "params")
  if isdir(converted):
    return ocp.StandardCheckpointer().restore(converted, abstract_params)
  if _is_step_dir(directory, isdir):
    step_dir = directory
  else:
    run_dir = (
      os.path.join(directory, "checkpoints")
      if isdir(os.path.join(directory, "checkpoints"))
      else directory
    )
    manager = ocp.CheckpointManager(
      run_dir, item_names=("state", "data"), options=ocp.CheckpointManagerOptions(read_only=True)
    )
    step = manager.latest_step()
    if step is None:
      raise FileNotFoundError(
        f"{what}={directory}: no checkpoint or params found (expected a training workdir, "
        f"a step directory WORKDIR/checkpoints/<step> or a directory written by "
        f"`python -m unified_io.convert`)"
      )
    step_dir = os.path.join(run_dir, str(step))
  problems, notes = verify(step_dir)
  if problems:
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    raise CheckpointError(
      f"{what}: checkpoint {step_dir} is corrupt: {'; '.join(problems[:3])}{more}. "
      f"Use another step directory of the run."
    )
  for note in notes:
    logging.warning("Checkpoint %s: %s", step_dir, note)
  item = {"params": abstract_params}
  restored = ocp.PyTreeCheckpointer().restore(
    os.path.join(step_dir, "state"),
    args=ocp.args.PyTreeRestore(
      item=item,
      restore_args=jax.tree.map(lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding), item),
      partial_restore=True,
    ),
  )
  if not all_finite(restored["params"]):
    raise CheckpointError(
      f"{what}: checkpoint {step_dir} holds non-finite parameters (NaN or Inf), so it is "
      f"corrupt. Use another step directory of the run."
    )
  return restored["params"]


def quiet_library_logs():
  """Orbax and TFDS log every save and dataset open at INFO through absl, burying the
  trainer's own progress lines; CLIs show WARNING and up unless -v/--verbosity is given."""
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
