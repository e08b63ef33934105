"""Train Unified-IO (the command line; unified_io/train/trainer.py is the library).

  python -m unified_io.train                                   # tiny config, laptop CPU
  python -m unified_io.train --config=configs/xl.py --workdir=gs://bucket/run

Multi-host: TPU pods need nothing; GPU/CPU clusters pass --coordinator_address,
--num_processes and --process_id (see launch/).

Before anything is built the command line is checked (the --config file exists and loads,
every --config.KEY override names a key of it, else the closest key paths are named), the
config is validated (unified_io/train/config_check.py: every switch has an allowed value,
numeric settings are in range, and once the devices are known the batch and the mesh fit
them) and its inputs are checked (unified_io/train/preflight.py: tokenizer, VQ-GAN,
datasets, task groups); each lists all it found and exits 1, in seconds, with no traceback.

Compiled programs go to JAX's persistent compilation cache (--compilation_cache_dir, default
~/.cache/unified_io/jax; empty turns it off), so a rerun or a resumed run reads them back
instead of compiling again (unified_io/common/compile_cache.py).

SIGTERM (preemption) or SIGINT (Ctrl-C) during training saves a checkpoint after the
current step and exits; rerunning the same command resumes from it. A second Ctrl-C stops at
once without saving. Exit codes:

  0    finished: trained to config.train.total_steps (and ran the final evaluations)
  1    refused: a bad command line, config or input (nothing was built), or a checkpoint
       that cannot be restored (the message names it)
  130  stopped by SIGINT (128 + 2): saved at the step it reached, unless interrupted twice
       or before the training loop started (then nothing new was saved)
  143  stopped by SIGTERM (128 + 15): saved at the step it reached; rerun to resume

A scheduler requeues on 143 and treats 0 as done. Other failures are Python tracebacks
(exit 1).
"""

import os
import sys

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from unified_io.common import checkpointing
from unified_io.common import compile_cache
from unified_io.common import distributed
from unified_io.eval import evaluators as evaluators_lib
from unified_io.train import config_check
from unified_io.train import preflight
from unified_io.train import trainer

DEFAULT_CONFIG = "configs/tiny.py"
EXIT_SIGINT = 130  # 128 + SIGINT
EXIT_SIGTERM = 143  # 128 + SIGTERM


def _stop(text, code=1):
  """Leaves with `text` as the message and exit status `code`: no traceback."""
  sys.stdout.flush()
  sys.stderr.write(f"unified_io.train: {text}\n")
  sys.exit(code)


def _stop_for(found):
  if found:
    _stop(found[0] if len(found) == 1 else "bad command line:\n  " + "\n  ".join(found))


def _parse_flags(argv):
  """app.run's flags parser: absl's, with its errors as one line instead of a traceback."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:  # an unknown flag, a value of the wrong type
    _stop(f"{e} (--helpfull lists the flags)")
  except Exception as e:  # pylint: disable=broad-except
    _stop(config_check.last_line(e))


def _main(argv):
  checkpointing.quiet_library_logs()
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:  # the trainer's log names the directory
    compile_cache.enable(_COMPILATION_CACHE.value)
  except ValueError as e:
    _stop(str(e))
  try:
    history = _train(_CONFIG.value, _WORKDIR.value)
  except KeyboardInterrupt:
    _stop("interrupted by SIGINT; nothing new was saved", EXIT_SIGINT)
  if history.signal is not None:
    sys.stdout.flush()
    sys.exit(128 + history.signal)  # EXIT_SIGTERM or EXIT_SIGINT


def _train(config, workdir):
  try:
    config_check.validate(config)
    preflight.run(config)
    # The synthetic copy task has nothing to evaluate on.
    evaluators = evaluators_lib.build(config, workdir) if config.data.source == "mixture" else []
  except (config_check.ConfigError, preflight.PreflightError, evaluators_lib.EvaluatorError) as e:
    _stop(str(e))
  distributed.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  try:
    # The device count is known only now; still before anything is built.
    config_check.validate_devices(config, jax.device_count(), jax.process_count())
  except config_check.ConfigError as e:
    _stop(str(e))
  try:
    return trainer.train(config, workdir, evaluators)
  except (checkpointing.CheckpointError, FileNotFoundError) as e:
    # The message names the path; orbax's and tensorstore's traceback would bury it. A failed
    # restore leaves tensorstore reads in flight whose threads print "Event loop is closed"
    # tracebacks until the process ends: silence stderr at once and leave with the message
    # as the last line (the checkpointer is already closed).
    sys.stdout.flush()
    stderr = os.dup(sys.stderr.fileno())
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())
    os.write(stderr, f"unified_io.train: {e}\n".encode())
    os._exit(1)


if __name__ == "__main__":
  _stop_for(config_check.command_line_problems(sys.argv, DEFAULT_CONFIG))
  try:
    _CONFIG = config_flags.DEFINE_config_file("config", DEFAULT_CONFIG, "Config file[:variant].")
  except Exception as e:  # pylint: disable=broad-except  # what the check above missed
    _stop(config_check.last_line(e))
  _WORKDIR = flags.DEFINE_string("workdir", "workdir/tiny", "Checkpoints, logs and config go here.")
  _COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "HOST:PORT of process 0 (multi-process GPU/CPU runs)."
  )
  _NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes.")
  _PROCESS_ID = flags.DEFINE_integer("process_id", None, "Index of this process.")
  _COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache_dir", compile_cache.DEFAULT_DIR, compile_cache.FLAG_HELP
  )
  app.run(_main, flags_parser=_parse_flags)
