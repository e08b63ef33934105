"""Cloud TPU generations and slices: names, shapes, HBM and peak FLOP/s, for compiling ahead.

A slice is named as Cloud TPU names it, by accelerator type (`v4-1024`, `v5litepod-256`,
`v5p-128`, `v6e-64`), or by generation and chip grid (`v4:4x8x16`, `v5e:16x16`). An
accelerator type counts TensorCores on v4 and v5p (two per chip) and chips on v5e and v6e
(one TensorCore each); it stands for the slice shape that Cloud TPU's documentation lists for
that size. JAX runs v4 and v5p chips as one "megacore" device, so one device here is always
one chip.

`topology_devices` describes a slice through libtpu (`pip install -r requirements-aot.txt`)
without any TPU attached: its devices can build a mesh, and `jit(...).lower(...).compile()`
over that mesh runs the TPU compiler itself (memory and cost analyses included).
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Dict, Tuple

GiB = 2**30


class LibtpuMissing(RuntimeError):
  """The TPU compiler (libtpu) is not installed."""


@dataclasses.dataclass(frozen=True)
class Generation:
  """One TPU generation as the AOT report needs it (figures per chip = per JAX device)."""

  name: str  # the generation as libtpu's topology names spell it: "v4", "v5e", "v5p", "v6e"
  accelerator_prefix: str  # Cloud TPU accelerator types: "v4-8", "v5litepod-16", ...
  cores_per_chip: int  # what one unit of an accelerator type counts: 2 on v4/v5p, 1 on v5e/v6e
  chip_config: str  # libtpu chip config: "megacore" (2 TensorCores as one device) or "default"
  hbm_gib: float
  program_hbm_gib: float  # what the TPU compiler lets one program use
  peak_bf16_flops: float
  device_kind: str  # jax's Device.device_kind for these chips
  shapes: Dict[int, str]  # chips -> the documented slice shape of that size

  @property
  def hbm_bytes(self) -> int:
    return int(self.hbm_gib * GiB)

  @property
  def program_hbm_bytes(self) -> int:
    return int(self.program_hbm_gib * GiB)


# Slice shapes by chip count as the Cloud TPU documentation lists them (the accelerator
# types' shapes; other grids are given as `v4:AxBxC`).
_CUBE_SHAPES = {
  4: "2x2x1",
  8: "2x2x2",
  16: "2x2x4",
  32: "2x4x4",
  64: "4x4x4",
  128: "4x4x8",
  256: "4x8x8",
  512: "8x8x8",
  768: "8x8x12",
  1024: "8x8x16",
  2048: "8x16x16",
  4096: "16x16x16",
}
_PLANE_SHAPES = {4: "2x2", 8: "2x4", 16: "4x4", 32: "4x8", 64: "8x8", 128: "8x16", 256: "16x16"}

# HBM capacity and peak dense bf16 FLOP/s per chip from the Cloud TPU system-architecture
# pages (cloud.google.com/tpu/docs/v4, /v5e, /v5p, /v6e): v4 32 GiB and 275 TFLOP/s, v5e
# "16 GB" and 197, v5p "95 GB" and 459, v6e "32 GB" and 918 (GB read as GiB). What one
# program may use is the TPU compiler's limit, and the verdict is against it: libtpu
# 0.0.42.1 refuses programs above 30.75 GiB on v4, 15.75 on v5e, 95.74 on v5p and 31.25 on
# v6e (its message "exceeds available HBM (30.75G)" for a program of too many temporaries).
_V5P_SHAPES = {**_CUBE_SHAPES, 6144: "16x16x24"}
GENERATIONS: Dict[str, Generation] = {
  g.name: g
  for g in (
    Generation("v4", "v4", 2, "megacore", 32, 30.75, 275e12, "TPU v4", _CUBE_SHAPES),
    Generation("v5e", "v5litepod", 1, "default", 16, 15.75, 197e12, "TPU v5 lite", _PLANE_SHAPES),
    Generation("v5p", "v5p", 2, "megacore", 95, 95.74, 459e12, "TPU v5", _V5P_SHAPES),
    Generation("v6e", "v6e", 1, "default", 32, 31.25, 918e12, "TPU v6 lite", _PLANE_SHAPES),
  )
}
# Other spellings of a generation in slice names.
_ALIASES = {"v5litepod": "v5e", "v5lite": "v5e"}


@dataclasses.dataclass(frozen=True)
class Slice:
  generation: Generation
  shape: Tuple[int, ...]  # chips along each axis of the grid

  @property
  def chips(self) -> int:
    n = 1
    for d in self.shape:
      n *= d
    return n

  @property
  def topology_name(self) -> str:
    """What libtpu's get_topology_desc takes: "v4:8x8x8"."""
    return f"{self.generation.name}:{'x'.join(map(str, self.shape))}"

  @property
  def accelerator_type(self) -> str:
    """The Cloud TPU accelerator type of this many chips: "v4-1024"."""
    g = self.generation
    return f"{g.accelerator_prefix}-{self.chips * g.cores_per_chip}"

  def describe(self) -> str:
    return f"{self.accelerator_type} ({self.topology_name}, {self.chips} chips)"


def _generation(name: str, spec: str) -> Generation:
  key = _ALIASES.get(name.lower(), name.lower())
  if key not in GENERATIONS:
    raise ValueError(
      f"--topology={spec}: unknown TPU generation {name!r}; known: "
      f"{', '.join(sorted(GENERATIONS))} (v5e also as v5litepod)"
    )
  return GENERATIONS[key]


def parse_slice(spec: str) -> Slice:
  """`v4-1024` (accelerator type) or `v4:8x8x8` (generation:grid) -> Slice.

  ValueError names the spec and what would be accepted.
  """
  spec = spec.strip()
  grid = re.fullmatch(r"([a-z0-9]+):(\d+(?:x\d+)+)", spec, re.IGNORECASE)
  if grid:
    generation = _generation(grid.group(1), spec)
    shape = tuple(int(d) for d in grid.group(2).split("x"))
    dims = len(next(iter(generation.shapes.values())).split("x"))
    if len(shape) != dims or min(shape) < 1:
      raise ValueError(
        f"--topology={spec}: a {generation.name} grid has {dims} positive dimensions, e.g. "
        f"{generation.name}:{generation.shapes[16]}"
      )
    return Slice(generation, shape)
  typed = re.fullmatch(r"([a-z0-9]+)-(\d+)", spec, re.IGNORECASE)
  if not typed:
    raise ValueError(
      f"--topology={spec}: write an accelerator type (v4-1024, v5litepod-256, v5p-128, "
      "v6e-64) or a generation and chip grid (v4:4x8x16, v5e:16x16)"
    )
  generation = _generation(typed.group(1), spec)
  count = int(typed.group(2))
  chips, rest = divmod(count, generation.cores_per_chip)
  if rest or chips not in generation.shapes:
    sizes = ", ".join(
      f"{generation.accelerator_prefix}-{n * generation.cores_per_chip}"
      for n in sorted(generation.shapes)
    )
    raise ValueError(
      f"--topology={spec}: not a {generation.name} accelerator type with a documented "
      f"shape; those are {sizes} (other grids: {generation.name}:AxB...)"
    )
  shape = tuple(int(d) for d in generation.shapes[chips].split("x"))
  return Slice(generation, shape)


def _quiet_libtpu(tpu_slice: Slice):
  """Environment for libtpu on a machine without TPUs, before libtpu first loads.

  Without TPU_ACCELERATOR_TYPE and TPU_WORKER_HOSTNAMES libtpu looks them up in the Cloud
  TPU VM metadata, finds none and prints a warning for each; with them it stays quiet
  (they describe this host, not the slice compiled for). libtpu also takes a lock file
  (/tmp/libtpu_lockfile) that one process at a time may hold, and any JAX process that
  initialised its TPU backend holds it for good; ALLOW_MULTIPLE_LIBTPU_LOAD lets the
  compiler load beside it (nothing here touches a TPU). Values already set are kept.
  """
  os.environ.setdefault("TPU_ACCELERATOR_TYPE", tpu_slice.accelerator_type)
  os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")


def topology_devices(tpu_slice: Slice):
  """The JAX devices of `tpu_slice` (one per chip), described by libtpu; no TPU needed.

  LibtpuMissing with the install command when libtpu is not installed; ValueError naming
  the slice when libtpu refuses it.
  """
  try:
    import libtpu  # noqa: F401  (only to tell a missing package from a refused topology)
  except ImportError as e:
    raise LibtpuMissing(
      "libtpu is not installed: compiling for a TPU slice needs the TPU compiler "
      "(pip install -r requirements-aot.txt)"
    ) from e
  _quiet_libtpu(tpu_slice)
  from jax.experimental import topologies

  try:
    description = topologies.get_topology_desc(
      platform="tpu",
      topology_name=tpu_slice.topology_name,
      chip_config_name=tpu_slice.generation.chip_config,
    )
  except Exception as e:  # pylint: disable=broad-except  # libtpu's own status errors
    raise ValueError(f"libtpu cannot describe {tpu_slice.describe()}: {e}") from e
  devices = list(description.devices)
  if len(devices) != tpu_slice.chips:
    raise ValueError(
      f"libtpu describes {tpu_slice.describe()} with {len(devices)} devices, expected one "
      f"per chip ({tpu_slice.chips})"
    )
  return devices
