"""Ahead-of-time compilation for TPU slices (unified_io/aot/, common/tpu_chips.py).

The compile tests need libtpu (requirements-aot.txt; `make test` installs it) and no TPU:
libtpu describes the slice and its compiler does the layout. Expected values come from
Cloud TPU's documented slice shapes and from the t5x rules applied by hand.
"""

import json
import os
import re
import subprocess
import sys

import flax.linen as nn
import jax
import ml_collections
import numpy as np
import pytest

from configs import tiny as tiny_config
from unified_io.aot import report
from unified_io.aot import steps
from unified_io.common import mesh as mesh_lib
from unified_io.common import tpu_chips
from unified_io.model import builder as model_lib
from unified_io.train import config_check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MiB = 2**20


# ----------------------------------------------------------------------- slice names


@pytest.mark.parametrize(
  "spec, topology, chips, accelerator_type",
  [
    # Cloud TPU's tables: v4 and v5p types count TensorCores (2 per chip), v5e/v6e chips.
    ("v4-8", "v4:2x2x1", 4, "v4-8"),
    ("v4-1024", "v4:8x8x8", 512, "v4-1024"),
    ("v4:4x8x16", "v4:4x8x16", 512, "v4-1024"),
    ("v5p-128", "v5p:4x4x4", 64, "v5p-128"),
    ("v5p-12288", "v5p:16x16x24", 6144, "v5p-12288"),
    ("v5litepod-256", "v5e:16x16", 256, "v5litepod-256"),
    ("v5e-32", "v5e:4x8", 32, "v5litepod-32"),
    ("v6e-64", "v6e:8x8", 64, "v6e-64"),
  ],
)
def test_slice_names(spec, topology, chips, accelerator_type):
  s = tpu_chips.parse_slice(spec)
  assert (s.topology_name, s.chips, s.accelerator_type) == (topology, chips, accelerator_type)


@pytest.mark.parametrize(
  "spec, says",
  [
    ("v4-7", "not a v4 accelerator type"),  # odd TensorCore count
    ("v4-24", "not a v4 accelerator type"),  # 12 chips: no documented shape
    ("v7-8", "unknown TPU generation 'v7'"),
    ("v4:2x2", "a v4 grid has 3 positive dimensions"),
    ("v6e:4x4x4", "a v6e grid has 2 positive dimensions"),
    ("tpu", "write an accelerator type"),
  ],
)
def test_bad_slice_names_say_what_is_wrong(spec, says):
  with pytest.raises(ValueError, match=f"--topology={spec}: .*{says}"):
    tpu_chips.parse_slice(spec)


@pytest.mark.parametrize(
  "spec, kind",
  [
    ("v4:2x2x1", "TPU v4"),
    ("v5e:2x2", "TPU v5 lite"),
    ("v5p:2x2x1", "TPU v5"),
    ("v6e:2x2", "TPU v6 lite"),
  ],
)
def test_libtpu_describes_each_generation(spec, kind):
  """One device per chip (megacore on v4/v5p), of the kind our table names."""
  pytest.importorskip("libtpu")
  s = tpu_chips.parse_slice(spec)
  devices = tpu_chips.topology_devices(s)
  assert len(devices) == 4
  assert {d.device_kind for d in devices} == {kind} == {s.generation.device_kind}


def test_mesh_splits_a_physical_axis_when_it_must():
  """model=4 on v4-1024's 8x8x8 chips: no physical axis is 4 long, so jax.make_mesh refuses
  (a trainer started on that slice would stop there); make_mesh then splits an axis."""
  pytest.importorskip("libtpu")
  devices = tpu_chips.topology_devices(tpu_chips.parse_slice("v4-1024"))
  with pytest.raises(NotImplementedError):
    jax.make_mesh((128, 4), ("data", "model"), devices=devices)
  mesh = mesh_lib.make_mesh(ml_collections.ConfigDict(dict(model=4, data=-1)), devices=devices)
  assert dict(mesh.shape) == {"data": 128, "model": 4}
  assert len({d.id for d in mesh.devices.flat}) == 512
  for group in mesh.devices:  # the 4 chips of a model group lie in a line of neighbours
    coords = np.array([d.coords for d in group])
    assert (coords != coords[0]).any(axis=0).sum() == 1
    assert np.ptp(coords, axis=0).max() == 3


# ------------------------------------------------------------------------------ advice


def _analysis(parameters, optimiser_state, temporaries, **model):
  config = tiny_config.get_config()
  config.model.update(model)
  config.train.batch_size = 64
  hbm = tpu_chips.GENERATIONS["v4"].program_hbm_bytes
  parts = {"parameters": parameters, "optimiser_state": optimiser_state, "batch": 0}
  memory = {"arguments": parameters + optimiser_state, "outputs": 0, "aliased": 0}
  memory.update(temporaries=temporaries, generated_code=0)
  memory["total"] = memory["arguments"] + temporaries
  train = steps.StepReport("train step", parts, memory, 1e12, 64, 64 * 400)
  assert memory["total"] > hbm
  return steps.Analysis(
    config, tpu_chips.parse_slice("v4-16"), {"data": 4, "model": 2}, train, None
  )


def test_advice_puts_what_shrinks_the_biggest_part_first():
  gib = tpu_chips.GiB
  state_bound = report.advice(_analysis(20 * gib, 10 * gib, 5 * gib))
  assert state_bound[0].startswith("--config.mesh.fsdp=True")
  assert state_bound[1].startswith("--config.mesh.model=4")
  activation_bound = report.advice(_analysis(2 * gib, 2 * gib, 40 * gib))
  assert activation_bound[0].startswith("--config.model.remat_policy=minimal")
  assert [line.split(":")[0] for line in activation_bound[1:4]] == [
    "--config.model.scan_layers=True",
    "--config.model.dtype=bfloat16",
    "a smaller batch per data replica (now 16)",
  ]
  # What is already set is not offered again.
  done = report.advice(
    _analysis(2 * gib, 2 * gib, 40 * gib, remat_policy="full", scan_layers=True, dtype="bfloat16")
  )
  assert done[0].startswith("a smaller batch per data replica")


def test_a_refused_step_is_measured_by_the_compilers_message():
  message = (
    "RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory required for HLO "
    "temporaries (241.67G) exceeds available HBM (15.75G)."
  )  # libtpu 0.0.42.1's words
  parts = {"parameters": 3 * MiB, "optimiser_state": 3 * MiB, "batch": 1 * MiB}
  memory = steps.memory_refused(message, parts)
  assert memory["temporaries"] == int(241.67 * 2**30)
  assert memory["total"] == memory["temporaries"] + 7 * MiB


# --------------------------------------------------------------- compiling for a v4 slice


def _model_split(names, shape):
  """Devices a parameter is split over on a (data=2, model=2) mesh, by the t5x rules by
  hand: vocab, mlp, heads and joined_kv go to the model axis (when 2 divides them), the
  rest is replicated."""
  for name, size in zip(names, shape):
    if name in ("vocab", "mlp", "heads", "joined_kv") and size % 2 == 0:
      return 2
  return 1


@pytest.fixture(scope="module")
def tiny_on_v4():
  """The tiny config's train step and image decoding, compiled for a v4-8 slice with
  model=2: 4 chips as (data=2, model=2). Scanned layers: the TPU compiler takes about half
  as long over one looped layer as over six."""
  pytest.importorskip("libtpu")
  config = tiny_config.get_config()
  config.mesh.model = 2
  config.model.scan_layers = True
  return steps.analyse(config, tpu_chips.parse_slice("v4-8"))


@pytest.mark.slow
def test_parameters_are_sharded_over_the_model_axis(tiny_on_v4):
  boxed = model_lib.abstract_params(model_lib.build(tiny_on_v4.config))
  names = jax.tree.leaves(nn.get_partition_spec(boxed), is_leaf=lambda x: isinstance(x, tuple))
  shapes = jax.tree.leaves(nn.unbox(boxed))
  splits = [_model_split(n, s.shape) for n, s in zip(names, shapes)]
  nbytes = [int(np.prod(s.shape)) * 4 for s in shapes]
  assert sum(s == 2 for s in splits) > len(splits) // 2  # most leaves, the big ones
  expected = sum(b // s for b, s in zip(nbytes, splits))
  assert tiny_on_v4.train.parts["parameters"] == expected
  # What the compiled programs really take: the shard shape of every parameter input.
  for step in tiny_on_v4.steps:
    (args, _) = step.compiled.input_shardings
    compiled = jax.tree.leaves(args[0] if step is tiny_on_v4.decode else args[0]["params"])
    shards = [int(np.prod(c.shard_shape(s.shape))) * 4 for c, s in zip(compiled, shapes)]
    sharded = [(shard, b) for shard, b, s in zip(shards, nbytes, splits) if s == 2]
    assert sum(shard for shard, _ in sharded) * 2 == sum(b for _, b in sharded)
    assert sum(shards) == expected
    assert {d.device_kind for d in compiled[0].device_set} == {"TPU v4"}


@pytest.mark.slow
def test_memory_report_from_the_tpu_compiler(tiny_on_v4):
  for step in tiny_on_v4.steps:
    m, logical = step.memory, sum(step.parts.values())
    # The TPU pads layouts to tiles (of 8 x 128 elements), so the compiler's arguments are
    # the logical bytes or more, never fewer; much more only for tiny's narrow tensors (the
    # built-in VQ-GAN's convolutions have 32 to 64 channels).
    assert logical <= m["arguments"] <= 2 * logical, (step.name, m, step.parts)
    assert m["temporaries"] > 0 and m["generated_code"] > 0
    total = m["arguments"] + m["outputs"] - m["aliased"] + m["temporaries"] + m["generated_code"]
    assert m["total"] == total < tiny_on_v4.hbm
    assert step.flops > 0
  train = tiny_on_v4.train
  # The state is donated: its outputs are written over its inputs.
  assert train.memory["aliased"] >= train.parts["parameters"] + train.parts["optimiser_state"]
  # One text input, one text target and one image target sequence per example.
  assert train.tokens == 16 * (144 + 72 + 64)
  text = report.format_report(tiny_on_v4, 0.5)
  assert f"{train.parts['parameters'] / MiB:.2f}" in text.split("  parameters")[1].split("\n")[0]
  assert "of the program limit" in text and "per device, MiB" in text
  assert re.match(
    r"train step fits \(0\.\d\d GiB, 0\.\d% of 30\.75 GiB\); decoding fits .*; decoding "
    r"during training fits",
    report.verdict(tiny_on_v4),
  )
  assert tiny_on_v4.fits()
  assert json.loads(json.dumps(report.to_json(tiny_on_v4, 0.5)))["mesh"] == {"data": 2, "model": 2}


# ------------------------------------------------------------------------- command line


def _command(*args):
  return subprocess.run(
    [sys.executable, "-m", "unified_io.aot", *args],
    capture_output=True,
    text=True,
    cwd=ROOT,
    env=dict(os.environ, PYTHONPATH=ROOT),
  )


@pytest.mark.slow
def test_command_refuses_a_bad_slice_in_one_line():
  out = _command("--topology=v4-12")
  assert out.returncode == 1, out.stderr[-2000:]
  last = out.stderr.strip().splitlines()[-1]
  assert last.startswith("unified_io.aot: --topology=v4-12: not a v4 accelerator type")
  assert "Traceback" not in out.stderr


def test_a_mesh_the_slice_cannot_hold_is_refused_before_compiling():
  pytest.importorskip("libtpu")
  config = tiny_config.get_config()
  config.mesh.model = 3
  with pytest.raises(config_check.ConfigError, match="config.mesh.model=3 does not divide the 4"):
    steps.analyse(config, tpu_chips.parse_slice("v4-8"))


@pytest.mark.slow
def test_command_exits_2_and_names_the_knobs_when_a_step_does_not_fit(tmp_path):
  """A text-only tiny step (synthetic source, scanned layers: a quicker compile) with a
  batch whose activations exceed a v5e chip's 16 GiB."""
  pytest.importorskip("libtpu")
  out = _command(
    "--topology=v5e:2x2",
    "--config.data.source=synthetic",
    "--config.model.scan_layers=True",
    "--config.train.batch_size=65536",
    "--decode=False",
    f"--json={tmp_path / 'report.json'}",
  )
  assert out.returncode == 2, out.stderr[-3000:]  # does not fit
  assert "train step does NOT fit" in out.stdout
  assert "train step: refused by the TPU compiler: RESOURCE_EXHAUSTED" in out.stdout
  assert "--config.model.remat_policy=minimal" in out.stdout.split("what would help")[1]
  assert out.stderr.strip().splitlines()[-1] == "unified_io.aot: does not fit; see above"
  numbers = json.loads((tmp_path / "report.json").read_text())
  assert numbers["fits"] is False and numbers["accelerator_type"] == "v5litepod-4"
  step = numbers["steps"]["train step"]
  assert step["memory"]["total"] > 16 * tpu_chips.GiB
  assert step["memory"]["temporaries"] > 10 * step["memory"]["arguments"]
