"""Typed switches: every enumerable string of a config is checked when a command loads it.

A typo in a switch (`--config.optimizer.name=adam`, `--config.data.source=mixtures`) would
otherwise surface minutes later, deep in model building or the input pipeline, or not at
all. `validate(config)` runs first thing in the train, evaluate and predict commands and
raises one ConfigError naming every bad key with the values it allows. The allowed values
are read from the code that implements them, so adding an optimiser or a mixture there is
all it takes.

Numbers are checked too: `INT_SETTINGS` are ints with a lower bound (a batch size, a
logging or checkpoint interval of 0 would fail only after the first step, with a
ZeroDivisionError), and `BOOL_SETTINGS` are booleans. What depends on the machine (the
batch over the devices, the mesh) is `device_problems`, which the trainer runs once the
device count is known, before it builds anything. `command_line_problems(sys.argv,
default)` runs before absl parses the flags: a missing --config file, or a --config.KEY
that the config does not have (`override_problem` names the closest key paths), instead of
a traceback from inside ml_collections.
"""

import difflib
import importlib.machinery
import importlib.util
import os
import re
from typing import Callable, List, Optional, Sequence, Tuple

from absl import flags
from ml_collections import config_dict

from unified_io.data import from_config
from unified_io.data import mixtures
from unified_io.data.tasks import registry as tasks_lib
from unified_io.eval import predictor as predictor_lib
from unified_io.model import losses
from unified_io.model import network
from unified_io.train import optim
from unified_io.train import trainer
from vqgan import configs as vqgan_configs

# config.data.schedule: what unified_io/data/from_config.py `stream` implements ("rates":
# shuffled blocks that meet the mixture's rates, "stratified": the same with each example
# shape spread evenly, "round_robin": the tasks in turn).
SCHEDULES = from_config.SCHEDULES


class ConfigError(ValueError):
  """A config value outside its allowed set; the message names the key and the set."""


# (config key, allowed values). Lazily: the registry is only complete once imported.
SWITCHES: Tuple[Tuple[str, Callable[[], Sequence[str]]], ...] = (
  ("data.source", lambda: trainer.Inputs.SOURCES),
  ("data.schedule", lambda: SCHEDULES),
  ("data.workers_kind", lambda: from_config.WORKER_KINDS),
  ("data.conditioning", lambda: tasks_lib.CONDITIONINGS),
  ("data.object_order", lambda: tasks_lib.OBJECT_ORDERS),
  ("loss.normalization", lambda: losses.NORMALIZATIONS),
  ("optimizer.name", lambda: optim.OPTIMIZERS),
  ("train.batch_shapes", lambda: trainer.BATCH_SHAPES),
  ("model.remat_policy", lambda: network.REMAT_POLICIES),
  ("model.dtype", lambda: network.ACTIVATION_DTYPES),
  ("vqgan.preset", lambda: tuple(sorted(vqgan_configs.PRESETS))),
)


# (config key, smallest value): settings that must be ints (not bools) of at least that value.
# An absent key or None (restore_step's "the latest") is not checked.
INT_SETTINGS: Tuple[Tuple[str, int], ...] = (
  ("train.batch_size", 1),
  ("train.total_steps", 0),
  ("train.log_every", 1),
  ("train.max_consecutive_skips", 1),
  ("train.encoder_cache.examples", 0),
  ("checkpoint.every_steps", 1),
  ("checkpoint.keep", 1),
  ("checkpoint.restore_step", 0),
  ("mesh.model", 1),
  ("optimizer.constant_steps", 0),
  ("optimizer.warmup_steps", 0),
  ("lengths.text_inputs", 1),
  ("lengths.text_targets", 1),
  ("lengths.image_targets", 1),
)


# Settings that must be booleans (an int or a string would be truthy without meaning it).
BOOL_SETTINGS: Tuple[str, ...] = ("mesh.fsdp",)


def _lookup(config, key):
  node = config
  for part in key.split("."):
    if part not in node:
      return None
    node = node[part]
  return node


def _check(key: str, value, allowed: Sequence[str]) -> List[str]:
  if isinstance(value, str) and value in allowed:
    return []
  return [f"config.{key}={value!r} is not one of: {', '.join(allowed)}"]


def _int_problems(config) -> List[str]:
  found = []
  for key, least in INT_SETTINGS:
    value = _lookup(config, key)
    if value is None:
      continue
    if not _is_int(value) or value < least:
      found.append(f"config.{key}={value!r} must be an int >= {least}")
  data = _lookup(config, "mesh.data")
  if data is not None and (not _is_int(data) or (data != -1 and data < 1)):
    found.append(f"config.mesh.data={data!r} must be -1 (the remaining devices) or an int >= 1")
  batch = _lookup(config, "train.batch_size")
  if _is_int(data) and data > 0 and _is_int(batch) and batch > 0 and batch % data:
    found.append(
      f"config.train.batch_size={batch} is not divisible by config.mesh.data={data} "
      "(the batch is split over the mesh's data axis)"
    )
  return found


def _bool_problems(config) -> List[str]:
  values = ((key, _lookup(config, key)) for key in BOOL_SETTINGS)
  return [
    f"config.{key}={value!r} must be True or False"
    for key, value in values
    if value is not None and not isinstance(value, bool)
  ]


def _is_int(value):
  return isinstance(value, int) and not isinstance(value, bool)


def problems(config) -> List[str]:
  """One line per bad switch value or numeric setting (empty if the config is fine)."""
  found = _int_problems(config) + _bool_problems(config)
  for key, allowed in SWITCHES:
    value = _lookup(config, key)
    if value is not None:
      found += _check(key, value, allowed())
  data = config.get("data", {})
  tasks = [n.strip() for n in data.get("tasks", "").split(",") if n.strip()]
  known_tasks = sorted(tasks_lib.all_tasks())
  for name in tasks:
    if name not in known_tasks:
      found.append(
        f"config.data.tasks names {name!r}, which is not a registered task; tasks: "
        f"{', '.join(known_tasks)}"
      )
  mixture = data.get("mixture", "")
  # An empty mixture is fine where none is read: synthetic source, or an explicit task list.
  if mixture or (data.get("source") == "mixture" and not tasks):
    found += _check("data.mixture", mixture, sorted(mixtures.MIXTURES))
  # data.curriculum: its keys, steps >= 0, first groups that are groups of the mixture's
  # tasks, and a schedule it builds on (from_config checks the groups again over the
  # tasks the run samples, after prepared_only).
  found += from_config.curriculum_problems(config)
  return found


def _raise(found, header="Invalid config"):
  if found:
    raise ConfigError(f"{header}:\n  " + "\n  ".join(found))


def validate(config):
  """Raises ConfigError listing every bad switch value and numeric setting."""
  _raise(problems(config))
  return config


def command_config(config, workdir: Optional[str]):
  """The config a command runs with, validated: `config` (--config) if given, else the one
  saved in `workdir`. ConfigError names a missing or damaged config.json as well."""
  if config is None:
    try:
      config = predictor_lib.load_config(workdir)
    except (OSError, ValueError) as e:
      raise ConfigError(str(e)) from e
  return validate(config)


def device_problems(config, num_devices: int, num_processes: int = 1) -> List[str]:
  """What keeps `config` from running on `num_devices` devices of `num_processes` hosts.

  The (data, model) mesh takes config.mesh.model devices per model replica and the rest
  for data (unified_io/common/mesh.py); each step's global batch is split over the data
  axis and each host feeds an equal share of it.
  """
  found = []
  model, data = _lookup(config, "mesh.model"), _lookup(config, "mesh.data")
  batch = _lookup(config, "train.batch_size")
  if not _is_int(model) or model < 1 or num_devices % model:
    found.append(f"config.mesh.model={model!r} does not divide the {num_devices} devices")
    return found
  data_axis = num_devices // model
  if _is_int(data) and data not in (-1, data_axis):
    found.append(
      f"config.mesh.data={data} but the {num_devices} devices with config.mesh.model={model} "
      f"leave {data_axis} for data (-1: the remaining devices)"
    )
  if _is_int(batch) and batch > 0:
    if batch % data_axis:
      where = (
        ""
        if model == 1
        else f" of the mesh's data axis ({num_devices} devices / config.mesh.model={model})"
      )
      found.append(
        f"config.train.batch_size={batch} is not divisible by the {data_axis} devices{where}"
      )
    if batch % num_processes:
      found.append(
        f"config.train.batch_size={batch} is not divisible by the {num_processes} processes "
        "(each host feeds an equal share)"
      )
  return found


def validate_devices(config, num_devices: int, num_processes: int = 1):
  """Raises ConfigError listing `device_problems`."""
  _raise(
    device_problems(config, num_devices, num_processes),
    f"Invalid config for {num_devices} device{'s' if num_devices != 1 else ''}",
  )
  return config


# ------------------------------------------------------------------ --config.KEY overrides


def key_paths(config, prefix: str = "") -> List[str]:
  """Every dotted key path of `config`, sections included ("train", "train.batch_size")."""
  paths = []
  for key in config.keys():
    path = f"{prefix}{key}"
    paths.append(path)
    value = config[key]
    if isinstance(value, config_dict.ConfigDict):
      paths += key_paths(value, path + ".")
  return paths


def override_problem(config, key: str) -> Optional[str]:
  """None if `key` (as in --config.KEY=VALUE) names an entry of `config`, else why not.

  The message names the key and the closest key paths of the config (difflib), or the keys
  of the deepest section it does name when none is close.
  """
  node, parts = config, key.split(".")
  for i, part in enumerate(parts):
    if "[" in part:  # an indexed element (config_path syntax): absl checks the index
      return None
    if not isinstance(node, config_dict.ConfigDict):
      parent = ".".join(parts[:i])
      return f"--config.{key}: config.{parent} is a value ({type(node).__name__}), not a section"
    if part not in node:
      break
    node = node[part]
  else:
    return None
  # The sections the key does name are no match for it ("train" for "train.zzz").
  paths = [p for p in key_paths(config) if not key.startswith(p + ".")]
  close = difflib.get_close_matches(key, paths, n=3, cutoff=0.6)
  if close:
    hint = "did you mean " + " or ".join(f"--config.{c}" for c in close) + "?"
  else:
    section = "".join(f".{p}" for p in parts[:i])
    hint = f"config{section} has: {', '.join(sorted(node.keys()))}"
  return f"--config.{key}: the config has no key {key}; {hint}"


def override_problems(config, keys: Sequence[str]) -> List[str]:
  """`override_problem` of each key, in order, without the Nones."""
  return [p for p in (override_problem(config, k) for k in keys) if p]


def last_line(error):
  """The last line of an error's text (ml_collections puts a whole traceback in some)."""
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  return lines[-1] if lines else type(error).__name__


def _load_config(spec):
  """get_config(ARG) of FILE for --config=FILE[:ARG], as config_flags calls it."""
  path, *arg = spec.split(":", 1)
  # Another module name than the flag's own ("config_config"): nothing is shared with it.
  loader = importlib.machinery.SourceFileLoader("uio_command_line_config", path)
  module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
  loader.exec_module(module)
  return module.get_config(*arg)


def command_line_problems(argv, default_config: str) -> List[str]:
  """What is wrong with --config and its --config.KEY overrides in `argv` (empty: nothing).

  For a command with a `config_flags.DEFINE_config_file("config", default_config)` flag.
  absl's config_flags loads the file and applies the overrides while it parses the flags
  (the default's even while the flag is defined), so a missing file or an unknown key is a
  long traceback from inside it; a command calls this first, with sys.argv.
  """
  args = list(argv[1:])
  if "--" in args:  # what follows is not flags
    args = args[: args.index("--")]
  try:
    args = flags.FLAGS.read_flags_from_files(args, force_gnu=False)  # --flagfile=...
  except Exception as e:  # pylint: disable=broad-except
    return [last_line(e)]
  spec, keys = default_config, []
  for i, arg in enumerate(args):
    given = re.match(r"^--?config(=(.*))?$", arg)
    if given:
      spec = given.group(2) if given.group(1) else (args[i + 1] if i + 1 < len(args) else "")
      continue
    override = re.match(r"^--?(no)?config\.([^=]+)", arg)
    if override:
      keys.append(override.group(2))
  path = spec.split(":", 1)[0]
  if not path:
    return ["--config is empty: pass --config=configs/NAME.py[:VARIANT]"]
  if not os.path.isfile(path):
    where = "" if os.path.isabs(path) else f" (relative to {os.getcwd()})"
    return [f"--config={path}: no such config file{where}"]
  try:
    config = _load_config(spec)
    config.keys()
  except Exception as e:  # pylint: disable=broad-except
    return [f"--config={spec}: {last_line(e)}"]
  return override_problems(config, keys)
