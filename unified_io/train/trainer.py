"""The trainer: train state, step and loop (`python -m unified_io.train`, __main__.py).

WORKDIR gets checkpoints/, tensorboard/, config.json and log.txt. Rerunning with the same
WORKDIR resumes from its latest checkpoint (same loss sequence as an uninterrupted run).
"""

import functools
import os
import signal
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from unified_io.common import checkpointing
from unified_io.common import distributed
from unified_io.common import run_log
from unified_io.common import workdir_lock
from unified_io.common import flops as flops_lib
from unified_io.model import builder as model_lib
from unified_io.train import encoder_cache
from unified_io.train import optim
from unified_io.train import step as step_lib
from unified_io.train import stop_and_go_run
from unified_io.common import mesh as mesh_lib
from unified_io.data import synthetic as synthetic_batches
from unified_io.data import from_config


# ----------------------------------------------------------------------------------- state


def _opt_state_shardings(optimizer, abstract_opt_state, params_shardings, abstract_params, mesh):
  """The sharding of each optimizer-state leaf, from optax's own map of where params sit.

  `optax.tree_map_params` finds the copies of the parameter tree inside the state (momentum,
  Adafactor's statistics; under `multi_transform` a frozen parameter's slot is a MaskedNode
  and stays one); every other leaf (step counts) is replicated. Within a copy, a leaf shaped
  like its parameter takes the parameter's sharding. Adafactor's factored second moments
  are not shaped like it: for a matrix with two dimensions >= 128, v_row is the mean of g^2
  over the largest axis and v_col over the second largest, so each has the parameter's shape
  with one axis removed (and v is a (1,) placeholder, as are v_row / v_col of an unfactored
  parameter). They get the parameter's PartitionSpec with that axis dropped: the layout
  that the sharded mean in the update produces (optax sizes them the same way, by a sum over
  the axis), so the update needs no resharding. When two dimensions are equal the removed
  axis cannot be told from the shape; if dropping either gives a different spec, the leaf
  is replicated (it is only rows + columns in size). (1,) placeholders are replicated.
  """
  replicated = mesh_lib.replicated(mesh)

  def choose(leaf, sharding, param):
    if isinstance(leaf, optax.MaskedNode):
      return leaf
    if leaf.shape == param.shape:
      return sharding
    spec = tuple(sharding.spec) + (None,) * (len(param.shape) - len(sharding.spec))
    specs = {
      spec[:axis] + spec[axis + 1 :]
      for axis in range(len(param.shape))
      if param.shape[:axis] + param.shape[axis + 1 :] == leaf.shape
    }
    if len(specs) == 1:
      return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*specs.pop()))
    return replicated

  return optax.tree_map_params(
    optimizer,
    choose,
    abstract_opt_state,
    params_shardings,
    abstract_params,
    transform_non_params=lambda _: replicated,
    is_leaf=lambda x: isinstance(x, optax.MaskedNode),
  )


def create_train_state(config, model, mesh, rules):
  """Returns (init_fn, abstract_state, state_shardings, optimizer, schedule)."""
  boxed = model_lib.abstract_params(model)
  params_shardings = mesh_lib.param_shardings(boxed, mesh, rules)
  abstract_params = nn.unbox(boxed)
  optimizer, schedule = optim.build(config.optimizer, abstract_params, config.freeze)
  abstract_opt = jax.eval_shape(optimizer.init, abstract_params)
  replicated = mesh_lib.replicated(mesh)
  state_shardings = {
    "params": params_shardings,
    "opt_state": _opt_state_shardings(
      optimizer, abstract_opt, params_shardings, abstract_params, mesh
    ),
    "step": replicated,
    "rng": replicated,
    "skipped": replicated,
    "consecutive_skips": replicated,
  }

  def init_state(params=None):
    if params is None:
      params = nn.unbox(model_lib.init_params(model, jax.random.PRNGKey(config.seed)))
      if config.train.get("geometric_init", False):
        params = model_lib.geometric_init(params, config)
    return {
      "params": params,
      "opt_state": optimizer.init(params),
      "step": jnp.int32(0),
      "rng": jax.random.PRNGKey(config.seed + 1),
      "skipped": jnp.int32(0),
      "consecutive_skips": jnp.int32(0),
    }

  abstract = jax.eval_shape(init_state)
  abstract = jax.tree.map(
    lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, state_shardings
  )
  return init_state, abstract, state_shardings, optimizer, schedule


# ------------------------------------------------------------------------------------ step

# The step's math lives in unified_io/train/step.py; these names are part of the trainer's API.
train_step = step_lib.train_step
BATCH_SHAPES = step_lib.BATCH_SHAPES


# ------------------------------------------------------------------------------ utilities


def _tokens_per_batch(batch):
  tokens = sum(
    int(np.sum(np.asarray(batch[k]) > 0))
    for k in ("text_inputs", "text_targets", "image_targets")
    if k in batch
  )
  if "image_target_pixels" in batch:
    tokens += int(np.sum(batch["image_target_mask"]))
  return tokens


class Inputs:
  """The batch source and, for image targets, the frozen VQ-GAN that tokenizes them."""

  # What config.data.source may be (config_check validates against this).
  SOURCES = ("mixture", "synthetic")

  def __init__(self, config, net_cfg):
    source = config.data.source
    self.vq = None
    self.task_names = []
    if source == "synthetic":
      # Said at the start of every run: a synthetic run's losses say nothing about any task.
      if jax.process_index() == 0:
        print(
          "Training on the SYNTHETIC copy task (config.data.source=synthetic), not on "
          "data: for tests and benchmarks only.",
          flush=True,
        )
      self.batches = synthetic_batches.SyntheticBatches(
        net_cfg,
        config.lengths,
        config.train.batch_size,
        seed=config.seed,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
      )
    elif source == "mixture":
      left_out = from_config.left_out(config)
      if left_out and jax.process_index() == 0:
        print(
          f"data.prepared_only: sampling {config.data.mixture} without {len(left_out)} tasks "
          f"whose datasets are not prepared: {', '.join(left_out)}",
          flush=True,
        )
      self.vq = from_config.image_tokenizer(config)
      spec = from_config.example_spec(config, self.vq)
      self.batches = from_config.train_batches(
        config, spec, jax.process_index(), jax.process_count()
      )
      self.task_names = self.batches.task_names
    else:
      raise ValueError(f"config.data.source={source!r}: choose one of {', '.join(self.SOURCES)}")

  def counters(self):
    stream = getattr(self.batches, "stream", None)
    return stream.counters.summary() if stream is not None else ""


# ----------------------------------------------------------------------------------- loop


class History(list):
  """The (step, loss) pairs that `train` logged, a list.

  `signal` is the number of the signal (SIGTERM, SIGINT) that stopped the run early, after
  it saved a checkpoint, or None when it ran to config.train.total_steps.
  """

  signal = None


def train(config, workdir, evaluators=()):
  """Runs (or resumes) training; returns the History (a list) of (step, loss) it logged.

  SIGTERM or SIGINT during the loop saves a checkpoint after the current step and returns
  early, with the signal in `History.signal` (a second SIGINT raises KeyboardInterrupt).

  `evaluators` (unified_io.eval.evaluators protocol): each runs every its `every_steps`
  steps (0: never in between) and all of them after the last step.

  Nothing is written to WORKDIR before its config is found compatible with the saved one
  (checkpointing.check_resume_config) and its lease is taken (common.workdir_lock);
  config.json is rewritten only once the state is restored or initialised.
  `config.checkpoint.restore_step` (0 or None: the latest) resumes from an earlier
  checkpoint, moving the later ones aside. `config.train.encoder_cache.examples` > 0 trains
  the decoder alone, from encoder outputs cached once (unified_io/train/encoder_cache.py).
  """
  restore_step = config.checkpoint.get("restore_step") or None
  checkpointing.check_resume_config(config, workdir)
  with workdir_lock.Lease(workdir) as lease:
    log = run_log.Log(workdir, tensorboard=config.train.tensorboard)
    if lease.message:
      log.line(lease.message)
    mesh = mesh_lib.make_mesh(config.mesh)
    rules = mesh_lib.logical_rules(config.mesh)
    model = model_lib.build(config)
    cache_examples = encoder_cache.check(config, model)  # 0: off
    init_state, abstract_state, state_shardings, optimizer, schedule = create_train_state(
      config, model, mesh, rules
    )
    inputs = Inputs(config, model.config)
    dsg = None  # dynamic stop-and-go: its state rides in the checkpoint's data state
    if config.data.source == "mixture" and config.data.get("schedule") == "stop_and_go":
      dsg = stop_and_go_run.StopAndGo(config, model, inputs, mesh, workdir)
    ckpt = checkpointing.Checkpointer(
      workdir,
      keep=config.checkpoint.keep,
      every_steps=config.checkpoint.every_steps,
      async_save=config.checkpoint.async_save,
      log=log.line,
    )
    # Closed on errors too: orbax's background threads otherwise outlive the exit and print
    # their own tracebacks after the trainer's message.
    try:
      with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        if ckpt.latest_step() is not None or restore_step:
          state, data_state = ckpt.restore(abstract_state, restore_step, set_aside_newer=True)
          inputs.batches.set_state(data_state)
          if dsg is not None:
            dsg.restore(data_state, log)
          log.line(f"Resumed from {ckpt.directory} at step {int(state['step'])}")
        elif config.init_from:
          params = checkpointing.restore_params(config.init_from, abstract_state["params"])
          state = jax.jit(init_state, out_shardings=state_shardings)(params)
          log.line(f"Initialised parameters from {config.init_from}")
        else:
          state = jax.jit(init_state, out_shardings=state_shardings)()
        run_log.write_config(config, workdir)  # only now: a failed start leaves the old one
        if jax.config.jax_compilation_cache_dir:  # set by the command line (compile_cache)
          log.line(f"Compiled programs are cached in {jax.config.jax_compilation_cache_dir}")
        vq_params = None
        if inputs.vq is not None:
          vq_params = jax.device_put(inputs.vq.params, mesh_lib.replicated(mesh))
        args = (config, model, optimizer, schedule, inputs, vq_params, mesh, state_shardings, log)
        if cache_examples:  # the decoder alone, on cached encoder outputs: a new batch source
          inputs.batches, make_step = encoder_cache.for_training(state, *args)
        else:
          make_step = _step_maker(*args)
        history = _loop(config, state, make_step, inputs, ckpt, log, mesh, evaluators, dsg)
    finally:
      ckpt.close()
  return history


def _step_maker(config, model, optimizer, schedule, inputs, vq_params, mesh, shardings, log):
  """make_step(state, first local batch) -> the step the loop runs: step(state, local)."""
  shapes = config.train.get("batch_shapes", "buckets")
  if shapes not in BATCH_SHAPES:
    raise ValueError(f"config.train.batch_shapes={shapes!r}: choose one of {BATCH_SHAPES}")
  common = dict(
    model=model,
    z_loss=config.loss.z_loss,
    normalization=config.loss.get("normalization", "tokens"),
    vq_config=None if inputs.vq is None else inputs.vq.config,
    num_tasks=len(inputs.task_names),
  )
  if shapes == "buckets":
    bucketed = step_lib.BucketedStep(
      optimizer=optimizer,
      schedule=schedule,
      vq_params=vq_params,
      mesh=mesh,
      state_shardings=shardings,
      global_batch_size=config.train.batch_size,
      log=log.line,
      **common,
    )

    def make_step(state, local):
      bucketed.compile_for(state, local)  # the first batch's programs, before the clock starts
      return bucketed

    return make_step
  replicated = mesh_lib.replicated(mesh)
  step_fn = jax.jit(
    functools.partial(train_step, optimizer=optimizer, schedule=schedule, **common),
    in_shardings=(shardings, mesh_lib.batch_sharding(mesh), replicated),
    out_shardings=(shardings, replicated),
    donate_argnums=0,
  )
  return functools.partial(step_lib.PaddedStep, step_fn, vq_params, mesh, config.train.batch_size)


class _ProgressBar:
  """One self-overwriting line between log lines, only when stdout is a terminal."""

  def __init__(self, enabled, width=30):
    self.enabled, self.width, self.start, self.first, self.shown = enabled, width, None, 0, False

  def update(self, step, total):
    if not self.enabled:
      return
    if self.start is None:
      self.start, self.first = time.time(), step
    done = int(self.width * step / max(total, 1))
    rate = (step - self.first) / max(time.time() - self.start, 1e-9)
    sys.stdout.write(
      f"\r[{'#' * done}{'.' * (self.width - done)}] {step}/{total} ({rate:.2f} it/s)"
    )
    sys.stdout.flush()
    self.shown = True

  def clear(self):
    if self.shown:
      sys.stdout.write("\r\033[K")
      self.shown = False


def _log_tasks(log, step, task_names, sums, tokens):
  """Per-task and per-group mean token loss over the logging window."""
  from unified_io.data.tasks import registry as tasks_lib

  values, group_sums, group_tokens = {}, {}, {}
  for name, total, count in zip(task_names, sums, tokens):
    if count > 0:
      values[f"task_loss/{name}"] = total / count
      group = tasks_lib.get(name).group
      group_sums[group] = group_sums.get(group, 0.0) + total
      group_tokens[group] = group_tokens.get(group, 0.0) + count
  for group, total in group_sums.items():
    values[f"group_loss/{group}"] = total / group_tokens[group]
  log.scalars(step, values)
  return values


def _loop(config, state, make_step, inputs, ckpt, log, mesh, evaluators, dsg=None):
  total = config.train.total_steps
  step = first_step = int(state["step"])
  data = inputs.batches
  data_state = data.get_state if dsg is None else dsg.data_state
  stop = {"signal": None}

  def on_signal(signum, _):
    if stop["signal"] == signal.SIGINT == signum:
      raise KeyboardInterrupt  # Ctrl-C twice: stop now, without saving
    if stop["signal"] is None:
      stop["signal"] = signum
      # os.write, not print: a print here can re-enter one that the signal interrupted.
      os.write(
        sys.stderr.fileno(),
        f"Received {signal.Signals(signum).name}: stopping after this step with a checkpoint"
        f"{' (Ctrl-C again: stop now, unsaved)' if signum == signal.SIGINT else ''}\n".encode(),
      )

  # SIGTERM (preemption) and SIGINT (Ctrl-C) save and stop; a SIGINT ignored when the
  # process started (a background job of a script) stays ignored.
  handled = [signal.SIGTERM]
  if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
    handled.append(signal.SIGINT)
  previous = {signum: signal.signal(signum, on_signal) for signum in handled}
  history = History()
  window_start, window_steps, window_tokens, window_examples = time.time(), 0, 0, 0
  window_flops = 0.0
  task_sums = task_tokens = 0.0
  log.line(
    f"Training steps {step}..{total} with global batch {config.train.batch_size} on "
    f"{jax.device_count()} devices, mesh {dict(mesh.shape)}"
  )
  if inputs.task_names:
    log.line(f"Tasks ({len(inputs.task_names)}): {', '.join(inputs.task_names)}")
  run_step = None
  last_counters = ""
  progress = _ProgressBar(enabled=log.main and sys.stdout.isatty())
  try:
    while step < total:
      local = next(data)
      if run_step is None:
        run_step = make_step(state, local)
        peak, peak_source = flops_lib.peak_flops_per_device(
          config.train.get("peak_flops_per_device", 0.0)
        )
        log.line(
          f"{run_step.describe()}; peak {peak / 1e12:.3g} TFLOP/s per device ({peak_source})"
        )
        distributed.host_barrier("uio_train_step_compiled")
        window_start = time.time()
      window_tokens += _tokens_per_batch(local) * jax.process_count()
      window_examples += config.train.batch_size
      state, metrics = run_step(state, local)
      step += 1
      window_steps += 1
      window_flops += run_step.last_flops
      progress.update(step, total)
      if inputs.task_names:
        task_sums = task_sums + np.asarray(jax.device_get(metrics["task_loss_sum"]))
        task_tokens = task_tokens + np.asarray(jax.device_get(metrics["task_tokens"]))
      if step % config.train.log_every == 0 or step == total:
        metrics = jax.device_get({k: v for k, v in metrics.items() if not k.startswith("task_")})
        loss = float(metrics["loss"])
        history.append((step, loss))
        elapsed = max(time.time() - window_start, 1e-9)
        steps_per_s = window_steps / elapsed
        eta = (total - step) / max(steps_per_s, 1e-9)
        # Per-step FLOPs vary with the batch's shapes: the window's mean.
        mfu = flops_lib.utilisation(window_flops / max(window_steps, 1), steps_per_s, peak)
        progress.clear()
        log.line(
          f"step {step} loss {loss:.4f} lr {float(metrics['learning_rate']):.3g} "
          f"grad_norm {float(metrics['grad_norm']):.3g} steps/s {steps_per_s:.2f} "
          f"tokens/s {window_tokens / elapsed:.0f} examples/s {window_examples / elapsed:.1f} "
          f"flop_util {'n/a' if mfu is None else f'{mfu:.1%}'} "
          f"skipped {int(state['skipped'])} eta {eta / 60:.1f}min"
        )
        scalars = {
          "loss": loss,
          "grad_norm": float(metrics["grad_norm"]),
          "learning_rate": float(metrics["learning_rate"]),
          "skipped_steps": int(state["skipped"]),
          "steps_per_s": steps_per_s,
          "tokens_per_s": window_tokens / elapsed,
          "examples_per_s": window_examples / elapsed,
        }
        if mfu is not None:
          scalars["flop_utilisation"] = mfu
        log.scalars(step, scalars)
        if inputs.task_names:
          _log_tasks(log, step, inputs.task_names, task_sums, task_tokens)
          task_sums = task_tokens = 0.0
        counters = inputs.counters()
        if counters and counters != last_counters:
          log.line(f"input: {counters}")
          last_counters = counters
        window_start, window_steps, window_tokens, window_examples = time.time(), 0, 0, 0
        window_flops = 0.0
      if int(state["consecutive_skips"]) >= config.train.max_consecutive_skips:
        ckpt.wait()
        raise RuntimeError(
          f"Stopping: {int(state['consecutive_skips'])} consecutive steps had "
          f"non-finite loss or gradients (last step {step}). Lower "
          f"config.optimizer.lr or check the data."
        )
      if dsg is not None:  # before the save: the checkpoint at `step` holds its decisions
        dsg.maybe_run(step, state["params"], log)
      ckpt.save(step, state, data_state())
      due = [e for e in evaluators if e.every_steps and step % e.every_steps == 0]
      if due and step != total:
        for evaluator in due:
          evaluator.run(state["params"], step, log)
        window_start = time.time()
      # Every host must stop at the same step; agreeing costs a collective, so hosts
      # compare their SIGTERM flags only on logging steps (every step with one host).
      agree_now = jax.process_count() == 1 or step % config.train.log_every == 0
      if agree_now and distributed.any_host(stop["signal"] is not None):
        # A host that got no signal itself stops for another host's (a preemption: SIGTERM).
        history.signal = int(stop["signal"] or signal.SIGTERM)
        break
    ckpt.save(step, state, data_state(), force=True)
    ckpt.wait()
    if history.signal is not None:
      log.line(
        f"Received signal {history.signal} ({signal.Signals(history.signal).name}): saved "
        f"checkpoint at step {step}, exiting"
      )
    else:
      for evaluator in evaluators:
        report = evaluator.has_report(step)
        if step == first_step and report:
          # A rerun of a finished run: nothing changed since that report was written.
          log.line(f"Already at step {step}; its evaluation report is {report}")
        else:
          evaluator.run(state["params"], step, log)
  finally:
    for signum, handler in previous.items():
      signal.signal(signum, handler)
  return history
