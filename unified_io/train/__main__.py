"""Train Unified-IO (the command line; unified_io/train/trainer.py is the library).

  python -m unified_io.train                                   # tiny config, laptop CPU
  python -m unified_io.train --config=configs/xl.py --workdir=gs://bucket/run

Multi-host: TPU pods need nothing; GPU/CPU clusters pass --coordinator_address,
--num_processes and --process_id (see launch/).

Before anything is built the config is validated (unified_io/train/config_check.py: every
switch has an allowed value) and its inputs are checked (unified_io/train/preflight.py:
tokenizer, VQ-GAN, datasets, task groups); either lists all it found and exits 1.
"""

import os
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from unified_io.common import checkpointing
from unified_io.common import distributed
from unified_io.eval import evaluators as evaluators_lib
from unified_io.train import config_check
from unified_io.train import preflight
from unified_io.train import trainer


def _stop(text):
  """Leaves with `text` as the message and exit status 1: no traceback, nothing built."""
  sys.stdout.flush()
  sys.stderr.write(f"unified_io.train: {text}\n")
  sys.exit(1)


def _main(argv):
  checkpointing.quiet_library_logs()
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config, workdir = _CONFIG.value, _WORKDIR.value
  try:
    config_check.validate(config)
    preflight.run(config)
    # The synthetic copy task has nothing to evaluate on.
    evaluators = evaluators_lib.build(config, workdir) if config.data.source == "mixture" else []
  except (config_check.ConfigError, preflight.PreflightError, evaluators_lib.EvaluatorError) as e:
    _stop(str(e))
  distributed.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  try:
    trainer.train(config, workdir, evaluators)
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
  _CONFIG = config_flags.DEFINE_config_file("config", "configs/tiny.py", "Config file[:variant].")
  _WORKDIR = flags.DEFINE_string("workdir", "workdir/tiny", "Checkpoints, logs and config go here.")
  _COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "HOST:PORT of process 0 (multi-process GPU/CPU runs)."
  )
  _NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes.")
  _PROCESS_ID = flags.DEFINE_integer("process_id", None, "Index of this process.")
  app.run(_main)
