"""The trainer's train step and the evaluators' image decoding, compiled for a TPU slice.

Inputs are abstract (ShapeDtypeStructs at the config's shapes, sharded as the trainer shards
them); the TPU compiler lays the programs out over a mesh of the slice's chips, described by
libtpu (unified_io/common/tpu_chips.py), and its memory and cost analyses are the numbers.
"""

import dataclasses
import functools
import re
import time
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from unified_io.common import flops as flops_lib
from unified_io.common import mesh as mesh_lib
from unified_io.common import tpu_chips
from unified_io.common import vocab
from unified_io.model import builder as model_lib
from unified_io.model import generation
from unified_io.train import config_check
from unified_io.train import trainer


# ------------------------------------------------------------------------ abstract inputs


def _vq_config(config):
  from vqgan import configs as vq_configs

  vq = vq_configs.get_config(config.vqgan.preset)
  if vq.n_codes != config.vocab.image_codes:
    raise config_check.ConfigError(
      f"config.vqgan.preset={config.vqgan.preset!r} has {vq.n_codes} codes but "
      f"config.vocab.image_codes={config.vocab.image_codes}"
    )
  if vq.grid_size**2 != config.lengths.image_targets:
    raise config_check.ConfigError(
      f"config.vqgan.preset={config.vqgan.preset!r} makes {vq.grid_size}x{vq.grid_size} "
      f"codes but config.lengths.image_targets={config.lengths.image_targets}"
    )
  return vq


def abstract_vq_params(vq_config, sharding):
  from vqgan import model as vq_model

  return jax.tree.map(
    lambda shape: jax.ShapeDtypeStruct(shape, jnp.float32, sharding=sharding),
    vq_model.param_shapes(vq_config),
    is_leaf=lambda x: isinstance(x, tuple),
  )


def abstract_batch(config, net, vq_config, batch_size, sharding, train=True):
  """The batch a step gets, as ShapeDtypeStructs: what the input pipeline makes.

  unified_io/data/pipeline.py `finalize` and MixtureStream (train=True: plus the image
  target pixels, their mask, task index and loss weight); the synthetic source has text only.
  """
  spec = lambda shape, dtype: jax.ShapeDtypeStruct((batch_size,) + shape, dtype, sharding=sharding)
  lengths = config.lengths
  batch = {
    "text_inputs": spec((lengths.text_inputs,), jnp.int32),
    "image_inputs": spec((net.image_size, net.image_size, 3), jnp.float32),
    "image_input_mask": spec((net.encoder_max_image_length,), jnp.bool_),
  }
  if not train:
    return batch
  if config.data.source == "synthetic":
    return {
      "text_inputs": batch["text_inputs"],
      "text_targets": spec((lengths.text_targets,), jnp.int32),
    }
  side = vq_config.resolution
  batch.update(
    text_targets=spec((lengths.text_targets,), jnp.int32),
    image_target_pixels=spec((side, side, 3), jnp.float32),
    image_target_mask=spec((vq_config.grid_size**2,), jnp.bool_),
    task_index=spec((), jnp.int32),
    loss_weight=spec((), jnp.float32),
  )
  return batch


def _num_tasks(config):
  """How many tasks the train step's per-task loss sums count (trainer.Inputs.task_names)."""
  if config.data.source != "mixture":
    return 0
  names = [n for n in config.data.get("tasks", "").split(",") if n.strip()]
  if names:
    return len(names)
  from unified_io.data import mixtures

  return len(mixtures.MIXTURES[config.data.mixture].candidates())


def per_device_bytes(tree) -> int:
  """Bytes one device holds of a tree of sharded ShapeDtypeStructs (its largest shard)."""
  total = 0
  for leaf in jax.tree.leaves(tree):
    shard = leaf.sharding.shard_shape(leaf.shape) if leaf.sharding is not None else leaf.shape
    total += int(np.prod(shard, dtype=np.int64)) * jnp.dtype(leaf.dtype).itemsize
  return total


# -------------------------------------------------------------------------------- reports


def memory_of(compiled) -> dict:
  """Bytes per device of a compiled program, from the compiler's memory analysis.

  `total` is what the program needs at once: its arguments, its outputs less those written
  over donated arguments, its temporaries (activations, gradients, workspace) and its code.
  """
  m = compiled.memory_analysis()
  memory = {
    "arguments": int(m.argument_size_in_bytes),
    "outputs": int(m.output_size_in_bytes),
    "aliased": int(m.alias_size_in_bytes),
    "temporaries": int(m.temp_size_in_bytes),
    "generated_code": int(m.generated_code_size_in_bytes),
  }
  memory["total"] = (
    memory["arguments"]
    + memory["outputs"]
    - memory["aliased"]
    + memory["temporaries"]
    + memory["generated_code"]
  )
  return memory


# The TPU compiler's refusal of a program that does not fit, e.g. "RESOURCE_EXHAUSTED: Ran
# out of memory on HBM, the total memory required for HLO temporaries (241.67G) exceeds
# available HBM (15.75G)." (XLA's sizes: binary units).
_OUT_OF_HBM = re.compile(
  r"required for (?P<what>[^()]+?) \((?P<need>[\d.]+)(?P<unit>[KMGT])\) exceeds available HBM"
)
_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def memory_refused(message, parts) -> dict:
  """memory_of for a program the compiler refused: its inputs (logical bytes) and the
  temporaries the compiler says it needed, a lower bound of what it would take."""
  found = _OUT_OF_HBM.search(message)
  need = int(float(found["need"]) * _UNITS[found["unit"]]) if found else 0
  temporaries = need if found and "temporaries" in found["what"] else 0
  arguments = sum(parts.values())
  return {
    "arguments": arguments,
    "outputs": 0,
    "aliased": 0,
    "temporaries": temporaries,
    "generated_code": 0,
    "total": max(arguments + temporaries, need),
  }


@dataclasses.dataclass
class StepReport:
  """One compiled step: what its inputs take per device and what the TPU compiler says."""

  name: str
  parts: dict  # logical bytes per device of its inputs: parameters, optimiser state, ...
  memory: dict  # memory_of(compiled)
  flops: float  # per device, XLA's cost analysis
  batch_size: int
  tokens: int  # tokens per step at full length, as the trainer counts them (0: decoding)
  compile_s: float = 0.0
  compiled: Optional[object] = None  # the jax.stages.Compiled it describes
  refused: str = ""  # the compiler's message when it ran out of HBM (then compiled is None)

  @classmethod
  def of(cls, name, compiled, compile_s, parts, batch_size, tokens=0):
    """From `compiled`, or from the compiler's out-of-HBM message in its place."""
    if isinstance(compiled, str):
      memory = memory_refused(compiled, parts)
      return cls(name, parts, memory, 0.0, batch_size, tokens, compile_s, None, compiled)
    flops = flops_lib.cost(compiled)[0]
    return cls(name, parts, memory_of(compiled), flops, batch_size, tokens, compile_s, compiled)

  def to_json(self) -> dict:
    return {
      "batch_size": self.batch_size,
      "parts": self.parts,
      "memory": self.memory,
      "flops_per_device": self.flops,
      "tokens_per_step": self.tokens,
      "compile_s": self.compile_s,
      "refused": self.refused,
    }


@dataclasses.dataclass
class Analysis:
  config: object
  tpu_slice: tpu_chips.Slice
  mesh_shape: dict
  train: StepReport
  decode: Optional[StepReport]

  @property
  def steps(self):
    return [s for s in (self.train, self.decode) if s is not None]

  @property
  def hbm(self) -> int:
    """What one program may use: the TPU compiler's limit for this chip."""
    return self.tpu_slice.generation.program_hbm_bytes

  @property
  def decode_in_training(self) -> Optional[int]:
    """Bytes per device of decoding as the trainer's evaluators run it: beside the train
    state, whose optimiser state and VQ-GAN stay on the devices (the parameters are the
    decoding's own arguments)."""
    if self.decode is None:
      return None
    held = self.train.parts["optimiser_state"] + self.train.parts["vqgan_parameters"]
    return self.decode.memory["total"] + held

  def peaks(self) -> dict:
    """Bytes per device at each step's peak: the train step, decoding alone (`predict`,
    `evaluate`) and decoding during training."""
    peaks = {"train step": self.train.memory["total"]}
    if self.decode is not None:
      peaks["decoding"] = self.decode.memory["total"]
      peaks["decoding during training"] = self.decode_in_training
    return peaks

  def fits(self) -> bool:
    return max(self.peaks().values()) <= self.hbm


def _timed_compile(fn, mesh, rules, *args):
  """(Compiled, or the compiler's message when it ran out of HBM; seconds it took).

  Lowers and compiles under the mesh and logical rules, as trainer.train does. Anything
  concrete (a PRNG key, an initialiser) must be made before: inside the mesh JAX would run
  it on the slice's devices, which are only descriptions here. JAX's persistent compilation
  cache is off meanwhile: it cannot load an executable for described devices back (it
  warns on every later read), so storing one only fills the cache.
  """
  start = time.perf_counter()
  cache = jax.config.jax_enable_compilation_cache
  jax.config.update("jax_enable_compilation_cache", False)
  try:
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      compiled = fn.lower(*args).compile()
  except jax.errors.JaxRuntimeError as e:
    if not str(e).startswith("RESOURCE_EXHAUSTED"):
      raise
    compiled = str(e)
  finally:
    jax.config.update("jax_enable_compilation_cache", cache)
  return compiled, time.perf_counter() - start


def compile_train(config, model, mesh, rules):
  """The trainer's train step, jitted as trainer.train does, compiled for `mesh`."""
  _, state, state_shardings, optimizer, schedule = trainer.create_train_state(
    config, model, mesh, rules
  )
  replicated, by_batch = mesh_lib.replicated(mesh), mesh_lib.batch_sharding(mesh)
  images = config.data.source == "mixture"
  vq_config = _vq_config(config) if images else None
  batch_size = config.train.batch_size
  batch = abstract_batch(config, model.config, vq_config, batch_size, by_batch)
  vq_params = abstract_vq_params(vq_config, replicated) if images else None
  step = jax.jit(
    functools.partial(
      trainer.train_step,
      model=model,
      optimizer=optimizer,
      schedule=schedule,
      z_loss=config.loss.z_loss,
      normalization=config.loss.get("normalization", "tokens"),
      vq_config=vq_config if images else None,
      num_tasks=_num_tasks(config),
    ),
    in_shardings=(state_shardings, by_batch, replicated),
    out_shardings=(state_shardings, replicated),
    donate_argnums=0,
    # The trainer's jit drops inputs the step never reads (the VQ-GAN's decoder half), but
    # the trainer holds them on every device all the same: count them as arguments.
    keep_unused=True,
  )
  compiled, seconds = _timed_compile(step, mesh, rules, state, batch, vq_params)
  lengths = config.lengths
  per_example = lengths.text_inputs + lengths.text_targets
  per_example += lengths.image_targets if images else 0
  parts = {
    "parameters": per_device_bytes(state["params"]),
    "optimiser_state": per_device_bytes(state["opt_state"]),
    "vqgan_parameters": per_device_bytes(vq_params) if images else 0,
    "batch": per_device_bytes(batch),
  }
  report = StepReport.of(
    "train step", compiled, seconds, parts, batch_size, batch_size * per_example
  )
  return report, state["params"]


def compile_decode(config, model, mesh, rules, params, batch_size):
  """Image generation as the evaluators run it (greedy text token, then top-p image codes)."""
  by_batch = mesh_lib.batch_sharding(mesh)
  batch = abstract_batch(config, model.config, None, batch_size, by_batch, train=False)
  rng = jax.ShapeDtypeStruct((2,), jnp.uint32, sharding=mesh_lib.replicated(mesh))

  def decode(params, batch, rng):
    return generation.generate_image(model, params, batch, eos_id=vocab.EOS_ID, rng=rng)

  # The abstract inputs carry their shardings (the parameters' are the train state's);
  # parameters decoding never reads are held on the devices all the same.
  fn = jax.jit(decode, keep_unused=True)
  compiled, seconds = _timed_compile(fn, mesh, rules, params, batch, rng)
  parts = {"parameters": per_device_bytes(params), "batch": per_device_bytes(batch)}
  return StepReport.of("decoding", compiled, seconds, parts, batch_size)


def analyse(config, tpu_slice, decode=True, decode_batch=None) -> Analysis:
  """Compiles the train step (and image decoding) of `config` for `tpu_slice`.

  ConfigError for a config that cannot run on the slice (checked before compiling).
  """
  config_check.validate(config)
  devices = tpu_chips.topology_devices(tpu_slice)
  config_check.validate_devices(config, len(devices))
  mesh = mesh_lib.make_mesh(config.mesh, devices=devices)
  decode_batch = decode_batch or config.train.batch_size
  if decode and decode_batch % mesh.shape[mesh_lib.P.DATA_AXIS]:
    raise config_check.ConfigError(
      f"--decode_batch={decode_batch} is not divisible by the mesh's data axis "
      f"({mesh.shape[mesh_lib.P.DATA_AXIS]} devices)"
    )
  rules = mesh_lib.logical_rules(config.mesh)
  model = model_lib.build(config)
  train, params = compile_train(config, model, mesh, rules)
  decoding = compile_decode(config, model, mesh, rules, params, decode_batch) if decode else None
  return Analysis(config, tpu_slice, dict(mesh.shape), train, decoding)
