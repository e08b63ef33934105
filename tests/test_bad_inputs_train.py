"""Bad trainer inputs fail in seconds with one clear message, before anything is built.

Table-driven, in-process: numeric settings (config_check.problems), the batch and mesh
against the device count (config_check.device_problems), and the command line
(config_check.command_line_problems, which unified_io/train/__main__.py runs before absl
parses the flags: the --config file, unknown --config.KEY overrides with the closest key
paths). Three subprocess cases (slow): an unknown override through absl's real flag
parsing, and SIGINT / SIGTERM, which save a checkpoint and exit 130 / 143.
"""

import os
import re
import signal
import subprocess
import sys
import time

import ml_collections
import pytest

from configs import small
from configs import tiny
from unified_io.train import __main__ as train_main
from unified_io.train import config_check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = train_main.DEFAULT_CONFIG


def _config(overrides, base=tiny):
  config = base.get_config()
  for key, value in overrides.items():
    section, leaf = key.split(".")
    config[section][leaf] = value
  return config


# ------------------------------------------------------------------ numeric settings


@pytest.mark.parametrize(
  "overrides,fragment",
  [
    ({"train.batch_size": 0}, "config.train.batch_size=0 must be an int >= 1"),
    ({"train.batch_size": -4}, "config.train.batch_size=-4 must be an int >= 1"),
    ({"train.log_every": 0}, "config.train.log_every=0 must be an int >= 1"),
    ({"train.total_steps": -1}, "config.train.total_steps=-1 must be an int >= 0"),
    ({"train.max_consecutive_skips": 0}, "config.train.max_consecutive_skips=0 must be"),
    ({"checkpoint.every_steps": 0}, "config.checkpoint.every_steps=0 must be an int >= 1"),
    ({"checkpoint.keep": 0}, "config.checkpoint.keep=0 must be an int >= 1"),
    ({"checkpoint.restore_step": -2}, "config.checkpoint.restore_step=-2 must be an int >= 0"),
    ({"mesh.model": 0}, "config.mesh.model=0 must be an int >= 1"),
    ({"mesh.data": 0}, "config.mesh.data=0 must be -1 (the remaining devices) or an int >= 1"),
    ({"optimizer.warmup_steps": -10}, "config.optimizer.warmup_steps=-10 must be an int >= 0"),
    ({"lengths.text_targets": 0}, "config.lengths.text_targets=0 must be an int >= 1"),
    (
      {"train.batch_size": 6, "mesh.data": 4},
      "config.train.batch_size=6 is not divisible by config.mesh.data=4",
    ),
  ],
)
def test_bad_numeric_setting_is_named(overrides, fragment):
  config = _config(overrides)
  assert any(fragment in line for line in config_check.problems(config)), config_check.problems(
    config
  )
  with pytest.raises(config_check.ConfigError, match=re.escape(fragment)):
    config_check.validate(config)


def test_every_bad_numeric_setting_is_listed_at_once():
  config = _config(
    {"checkpoint.every_steps": 0, "train.log_every": 0, "train.batch_size": 0, "mesh.model": -1}
  )
  found = config_check.problems(config)
  assert [line.split("=")[0] for line in found] == [
    "config.train.batch_size",
    "config.train.log_every",
    "config.checkpoint.every_steps",
    "config.mesh.model",
  ]


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_shipped_configs_have_no_numeric_problem(name):
  config = (tiny if name == "tiny" else small).get_config()
  assert config_check.problems(config) == []
  assert config.checkpoint.restore_step == 0
  config.checkpoint.restore_step = None  # None: the latest checkpoint, like 0
  assert config_check.problems(config) == []


# --------------------------------------------------------- batch and mesh vs the devices


@pytest.mark.parametrize(
  "overrides,devices,processes,fragment",
  [
    ({"train.batch_size": 3}, 2, 1, "config.train.batch_size=3 is not divisible by the 2 devices"),
    (
      {"train.batch_size": 6, "mesh.model": 2},
      8,
      1,
      "config.train.batch_size=6 is not divisible by the 4 devices of the mesh's data axis "
      "(8 devices / config.mesh.model=2)",
    ),
    ({"mesh.model": 3}, 8, 1, "config.mesh.model=3 does not divide the 8 devices"),
    ({"mesh.data": 2}, 8, 1, "config.mesh.data=2 but the 8 devices with config.mesh.model=1"),
    (
      {"train.batch_size": 2, "mesh.model": 4},
      8,
      4,
      "config.train.batch_size=2 is not divisible by the 4 processes",
    ),
  ],
)
def test_batch_and_mesh_must_fit_the_devices(overrides, devices, processes, fragment):
  config = _config(overrides)
  with pytest.raises(config_check.ConfigError, match=re.escape(fragment)) as error:
    config_check.validate_devices(config, devices, processes)
  assert str(error.value).startswith(f"Invalid config for {devices} devices:")


@pytest.mark.parametrize(
  "overrides,devices,processes",
  [
    ({"train.batch_size": 8}, 8, 1),
    ({"train.batch_size": 2, "mesh.model": 4}, 8, 1),  # the data axis is 2
    ({"train.batch_size": 8, "mesh.model": 4, "mesh.data": 2}, 8, 2),
    ({"train.batch_size": 16}, 1, 1),
  ],
)
def test_batch_and_mesh_that_fit(overrides, devices, processes):
  assert config_check.device_problems(_config(overrides), devices, processes) == []


# ------------------------------------------------------------------- --config.KEY overrides


def test_close_match_helper():
  config = ml_collections.ConfigDict(
    dict(train=dict(batch_size=1, log_every=2), mesh=dict(model=1), seed=0)
  )
  assert config_check.key_paths(config) == [
    "mesh",
    "mesh.model",
    "seed",
    "train",
    "train.batch_size",
    "train.log_every",
  ]
  for good in ("train", "train.batch_size", "seed", "mesh.model"):
    assert config_check.override_problem(config, good) is None
  assert config_check.override_problem(config, "train.batchsize") == (
    "--config.train.batchsize: the config has no key train.batchsize; "
    "did you mean --config.train.batch_size?"
  )
  assert "did you mean --config.train.batch_size?" in config_check.override_problem(
    config, "trian.batch_size"
  )
  # Nothing close: the keys of the deepest section it names (never the section itself).
  assert config_check.override_problem(config, "train.zzz") == (
    "--config.train.zzz: the config has no key train.zzz; config.train has: batch_size, log_every"
  )
  assert config_check.override_problem(config, "qqq").endswith("config has: mesh, seed, train")
  assert config_check.override_problem(config, "seed.x") == (
    "--config.seed.x: config.seed is a value (int), not a section"
  )
  assert config_check.override_problems(config, ["seed", "train.batchsize", "mesh.model"]) == [
    config_check.override_problem(config, "train.batchsize")
  ]


@pytest.mark.parametrize(
  "args,fragment",
  [
    (
      ["--config.train.batchsize=4"],
      "--config.train.batchsize: the config has no key train.batchsize; "
      "did you mean --config.train.batch_size or --config.train.batch_shapes?",
    ),
    (
      ["--config=configs/small.py:runlocal", "--config.evals.tasks.every_step=1"],
      "did you mean --config.evals.tasks.every_steps",
    ),
    (["--noconfig.train.tensorbord"], "did you mean --config.train.tensorboard?"),
    (["--config.train.batch_size", "4", "--config.optimiser.lr=1"], "--config.optimizer.lr"),
    (["--config=configs/nope.py"], "--config=configs/nope.py: no such config file"),
    (["--config", "configs/nope.py", "--config.train.batch_size=2"], "no such config file"),
    (["--config="], "--config is empty"),
    (["--config=configs/small.py:runfast"], "Unknown config variant 'runfast'"),
  ],
)
def test_bad_command_line_is_named(args, fragment, monkeypatch):
  monkeypatch.chdir(ROOT)
  found = config_check.command_line_problems(["unified_io.train", *args], DEFAULT)
  assert len(found) == 1 and fragment in found[0], found
  with pytest.raises(SystemExit) as exit_info:
    train_main._stop_for(found)
  assert exit_info.value.code == 1


@pytest.mark.parametrize(
  "args",
  [
    [],
    ["--config=configs/small.py:runlocal", "--config.train.batch_size=4"],
    ["--config", "configs/tiny.py", "--noconfig.train.tensorboard", "--workdir=w"],
    ["--config.mesh.rules=()", "--config.evals.tasks.every_steps=3"],
    ["--", "--config.not.a.flag"],  # after "--": arguments, not flags
  ],
)
def test_good_command_line_passes(args, monkeypatch):
  monkeypatch.chdir(ROOT)
  assert config_check.command_line_problems(["unified_io.train", *args], DEFAULT) == []


def test_exit_codes_are_128_plus_the_signal():
  assert train_main.EXIT_SIGINT == 128 + signal.SIGINT == 130
  assert train_main.EXIT_SIGTERM == 128 + signal.SIGTERM == 143
  for code in ("130", "143"):
    assert code in train_main.__doc__


# ------------------------------------------------------------------------- subprocesses

# The tiny config shrunk further: compiles in seconds; the synthetic source reads no file.
SMALL_RUN = {
  "data.source": "synthetic",
  "model.emb_dim": 32,
  "model.num_heads": 2,
  "model.head_dim": 16,
  "model.num_encoder_layers": 1,
  "model.num_decoder_layers": 1,
  "model.mlp_dim": 32,
  "model.patch_size": 16,
  "model.train_image_patches": 16,
  "model.encoder_max_text_length": 16,
  "model.decoder_max_text_length": 8,
  "model.decoder_max_image_length": 16,
  "model.decoder_image_grid_width": 4,
  "lengths.text_inputs": 16,
  "lengths.text_targets": 8,
  "lengths.image_targets": 16,
  "train.batch_size": 2,
  "train.total_steps": 100000,
  "train.log_every": 1,
  "train.tensorboard": False,
  "checkpoint.every_steps": 100000,  # only the signal's checkpoint is written
  "checkpoint.async_save": False,
}


def _command(workdir, overrides):
  return [
    sys.executable,
    "-m",
    "unified_io.train",
    f"--workdir={workdir}",
    *[f"--config.{k}={v}" for k, v in overrides.items()],
  ]


def _env():
  return dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")


@pytest.mark.slow
def test_unknown_override_through_absl_exits_1_without_traceback(tmp_path):
  out = subprocess.run(
    _command(tmp_path / "w", {"train.batchsize": 4, "train.log_every": 1}),
    cwd=ROOT,
    env=_env(),
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert out.returncode == 1, out.stderr[-3000:]
  assert "Traceback" not in out.stderr
  assert out.stderr.strip().splitlines()[-1] == (
    "unified_io.train: --config.train.batchsize: the config has no key train.batchsize; "
    "did you mean --config.train.batch_size or --config.train.batch_shapes?"
  )
  assert not (tmp_path / "w").exists()


def _restore_sigint():
  # A test run started in the background of a script inherits SIGINT ignored, which the
  # trainer leaves ignored: start this child as a terminal would.
  signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_a_checkpoint_and_exits_with_its_code(tmp_path, signum, code):
  workdir = tmp_path / "w"
  with open(tmp_path / "stdout", "w") as stdout, open(tmp_path / "stderr", "w") as stderr:
    proc = subprocess.Popen(
      _command(workdir, SMALL_RUN),
      cwd=ROOT,
      env=_env(),
      stdout=stdout,
      stderr=stderr,
      preexec_fn=_restore_sigint,
    )
    try:
      log, deadline = workdir / "log.txt", time.time() + 300
      while time.time() < deadline and proc.poll() is None:
        if log.exists() and re.search(r"^step 1 loss", log.read_text(), re.M):
          break
        time.sleep(0.1)
      assert proc.poll() is None, (tmp_path / "stderr").read_text()[-3000:]
      os.kill(proc.pid, signum)
      returncode = proc.wait(timeout=120)
    finally:
      if proc.poll() is None:
        proc.kill()
  err = (tmp_path / "stderr").read_text()
  assert returncode == code, err[-3000:]
  assert "Traceback" not in err
  assert f"Received {signal.Signals(signum).name}: stopping after this step" in err
  saved = re.search(r"saved checkpoint at step (\d+), exiting", log.read_text())
  assert saved, log.read_text()[-2000:]
  steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  assert steps == [int(saved.group(1))] and steps[0] >= 1
