"""Typed switches: every enumerable string of a config is checked when a command loads it.

A typo in a switch (`--config.optimizer.name=adam`, `--config.data.source=mixtures`) would
otherwise surface minutes later, deep in model building or the input pipeline, or not at
all. `validate(config)` runs first thing in the train, evaluate and predict commands and
raises one ConfigError naming every bad key with the values it allows. The allowed values
are read from the code that implements them, so adding an optimiser or a mixture there is
all it takes.
"""

from typing import Callable, List, Sequence, Tuple

from unified_io.data import mixtures
from unified_io.data.tasks import registry as tasks_lib
from unified_io.model import network
from unified_io.train import optim
from unified_io.train import trainer
from vqgan import configs as vqgan_configs

# config.data.schedule: what unified_io/data/from_config.py `stream` implements ("rates":
# shuffled blocks that meet the mixture's rates, "round_robin": the tasks in turn).
SCHEDULES = ("rates", "round_robin")


class ConfigError(ValueError):
  """A config value outside its allowed set; the message names the key and the set."""


# (config key, allowed values). Lazily: the registry is only complete once imported.
SWITCHES: Tuple[Tuple[str, Callable[[], Sequence[str]]], ...] = (
  ("data.source", lambda: trainer.Inputs.SOURCES),
  ("data.schedule", lambda: SCHEDULES),
  ("optimizer.name", lambda: optim.OPTIMIZERS),
  ("model.remat_policy", lambda: network.REMAT_POLICIES),
  ("model.dtype", lambda: network.ACTIVATION_DTYPES),
  ("vqgan.preset", lambda: tuple(sorted(vqgan_configs.PRESETS))),
)


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


def problems(config) -> List[str]:
  """One line per bad switch value (empty if the config is fine)."""
  found = []
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
  return found


def validate(config):
  """Raises ConfigError listing every switch whose value is not an allowed one."""
  found = problems(config)
  if found:
    raise ConfigError("Invalid config:\n  " + "\n  ".join(found))
  return config
