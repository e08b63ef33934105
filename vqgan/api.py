"""Load, save and run a frozen VQ-GAN: images <-> code grids.

  vq = vqgan.load("checkpoints/vqgan")          # or vqgan.init("tiny", 0) for random weights
  codes = vq.encode(images)                     # float32 [B, H, W, 3] in [-1, 1] -> int32 [B, h, w]
  images = vq.decode(codes)                     # -> float32 [B, H, W, 3] clipped to [-1, 1]

Inside another jitted function use the pure `vq.encode_fn(params, images)` /
`vq.decode_fn(params, codes)` (or `encode_codes(config, params, images)`): they stop gradients
at the parameters and outputs, so the VQ-GAN stays frozen inside a train step.

A checkpoint directory holds `config.json` (the VQGANConfig fields, plus the preset name when
saved from one) and `params.msgpack` (flax.serialization msgpack of the float32 parameter tree,
one file, loadable without orbax; the official model is about 360 MB).
"""

import functools
import json
import os

import flax
import jax
import jax.numpy as jnp
import numpy as np

from unified_io.common import param_trees
from vqgan.configs import VQGANConfig, get_config
from vqgan.model import VQGAN as VQGANModule
from vqgan.model import check_params, random_params

CONFIG_FILE = "config.json"
PARAMS_FILE = "params.msgpack"
# Resizing and interpolation overshoot [-1, 1] by a hair; anything further is a scaling bug.
RANGE_TOLERANCE = 1e-3


def _check_image_layout(config: VQGANConfig, images):
  """Static checks (dtype and shape), valid under jit."""
  dtype = np.dtype(images.dtype)
  if not np.issubdtype(dtype, np.floating):
    hint = " (scale uint8 pixels with images / 127.5 - 1)" if dtype == np.uint8 else ""
    raise ValueError(f"VQ-GAN images must be floats in [-1, 1], got dtype {dtype}{hint}")
  want = (config.resolution, config.resolution, config.in_channels)
  if images.ndim != 4 or tuple(images.shape[1:]) != want:
    raise ValueError(
      f"VQ-GAN images must have shape [batch, {want[0]}, {want[1]}, {want[2]}], "
      f"got {tuple(images.shape)}"
    )


def _check_code_layout(config: VQGANConfig, codes):
  dtype = np.dtype(codes.dtype)
  if not np.issubdtype(dtype, np.integer):
    raise ValueError(f"VQ-GAN codes must be integers, got dtype {dtype}")
  want = (config.grid_size, config.grid_size)
  if codes.ndim != 3 or tuple(codes.shape[1:]) != want:
    raise ValueError(
      f"VQ-GAN codes must have shape [batch, {want[0]}, {want[1]}], got {tuple(codes.shape)}"
    )


def encode_codes(config: VQGANConfig, params, images):
  """Pure, jit-able: float images [B, H, W, C] in [-1, 1] -> int32 codes [B, h, w]."""
  _check_image_layout(config, images)
  params = jax.lax.stop_gradient(params)
  images = jax.lax.stop_gradient(jnp.asarray(images, jnp.float32))
  return VQGANModule(config).apply({"params": params}, images, method=VQGANModule.encode_to_codes)


def decode_codes(config: VQGANConfig, params, codes):
  """Pure, jit-able: int codes [B, h, w] -> float32 images [B, H, W, C] clipped to [-1, 1].

  Codes outside [0, n_codes) are not checked here (values are unknown under jit); jnp.take
  clamps them. `VQGAN.decode` checks them.
  """
  _check_code_layout(config, codes)
  params = jax.lax.stop_gradient(params)
  images = VQGANModule(config).apply(
    {"params": params}, jnp.asarray(codes, jnp.int32), method=VQGANModule.decode_codes
  )
  return jax.lax.stop_gradient(jnp.clip(images, -1.0, 1.0))


def decode_code_probabilities(config: VQGANConfig, params, probs):
  """Pure, jit-able: per-position code distributions float [B, h, w, n_codes] -> float32
  images [B, H, W, C] clipped to [-1, 1], decoded from each position's expected codebook
  vector (the probability-weighted mean of the codebook rows) instead of one code.

  One-hot distributions give `decode_codes`' images. Other latents lie between codebook
  rows, which the decoder never saw in training: an estimate, measured against sampling in
  benchmarks/dense_decoding.py.
  """
  probs = jnp.asarray(probs, jnp.float32)
  g = config.grid_size
  if probs.ndim != 4 or tuple(probs.shape[1:]) != (g, g, config.n_codes):
    raise ValueError(
      f"code probabilities must have shape [batch, {g}, {g}, {config.n_codes}], "
      f"got {tuple(probs.shape)}"
    )
  params = jax.lax.stop_gradient(params)
  latents = jnp.einsum(
    "bhwk,kd->bhwd", probs, params["quantize"]["embedding"], precision=jax.lax.Precision.HIGHEST
  )
  images = VQGANModule(config).apply({"params": params}, latents, method=VQGANModule.decode)
  return jax.lax.stop_gradient(jnp.clip(images, -1.0, 1.0))


# Module-level so every VQGAN object with the same (hashable) config shares compilations.
_jitted_encode = jax.jit(encode_codes, static_argnums=0)
_jitted_decode = jax.jit(decode_codes, static_argnums=0)


def _in_chunks(fn, x, chunk_size):
  """Runs fn on slices of at most chunk_size rows; pads the last so fn compiles once."""
  n = x.shape[0]
  if chunk_size is None or n <= chunk_size:
    return fn(x)
  outputs = []
  for start in range(0, n, chunk_size):
    part = x[start : start + chunk_size]
    short = chunk_size - part.shape[0]
    if short:
      part = np.concatenate([part, np.repeat(part[-1:], short, axis=0)])
    outputs.append(np.asarray(fn(part))[: chunk_size - short])
  return jnp.asarray(np.concatenate(outputs))


class VQGAN:
  """A frozen VQ-GAN: its config, its parameters and jitted, input-checked encode/decode."""

  def __init__(self, config: VQGANConfig, params):
    self.config = config
    check_params(params, config)
    self.params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), flax.core.unfreeze(params))
    self.encode_fn = functools.partial(encode_codes, config)
    self.decode_fn = functools.partial(decode_codes, config)
    self._encode = functools.partial(_jitted_encode, config)
    self._decode = functools.partial(_jitted_decode, config)

  @property
  def grid_size(self) -> int:
    return self.config.grid_size

  @property
  def n_codes(self) -> int:
    return self.config.n_codes

  def encode(self, images, chunk_size=None):
    """float [B, H, W, C] in [-1, 1] -> int32 [B, h, w]; chunk_size bounds memory per call."""
    images = np.asarray(images) if not isinstance(images, jax.Array) else images
    _check_image_layout(self.config, images)
    if images.size:
      low, high = float(jnp.min(images)), float(jnp.max(images))
      if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError("VQ-GAN images contain NaN or infinite values")
      if low < -1 - RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise ValueError(
          f"VQ-GAN images must lie in [-1, 1], got values in [{low:.4g}, "
          f"{high:.4g}] (for [0, 1] images use images * 2 - 1)"
        )
    return _in_chunks(lambda x: self._encode(self.params, x), images, chunk_size)

  def decode(self, codes, chunk_size=None):
    """int [B, h, w] with ids in [0, n_codes) -> float32 [B, H, W, C] in [-1, 1]."""
    codes = np.asarray(codes) if not isinstance(codes, jax.Array) else codes
    _check_code_layout(self.config, codes)
    if codes.size:
      low, high = int(jnp.min(codes)), int(jnp.max(codes))
      if low < 0 or high >= self.config.n_codes:
        raise ValueError(
          f"VQ-GAN code ids must lie in [0, {self.config.n_codes}), got ids in [{low}, {high}]"
        )
    return _in_chunks(lambda x: self._decode(self.params, x), codes, chunk_size)


def init(preset, rng=0) -> VQGAN:
  """Random weights for a preset name or VQGANConfig; rng is an int seed or a PRNG key."""
  config = get_config(preset)
  seed = rng if isinstance(rng, int) else int(jax.random.randint(rng, (), 0, 2**31 - 1))
  return VQGAN(config, random_params(config, seed))


def save(directory, preset_or_config, params):
  """Writes config.json and params.msgpack into `directory` (created if needed)."""
  config = get_config(preset_or_config)
  check_params(params, config, f"Parameters to save to {directory}")
  os.makedirs(directory, exist_ok=True)
  record = config.to_dict()
  if isinstance(preset_or_config, str):
    record = {"preset": preset_or_config, **record}
  with open(os.path.join(directory, CONFIG_FILE), "w") as f:
    json.dump(record, f, indent=2)
  host = jax.tree.map(lambda x: np.asarray(x, np.float32), flax.core.unfreeze(params))
  with open(os.path.join(directory, PARAMS_FILE), "wb") as f:
    f.write(flax.serialization.msgpack_serialize(host))


def load_config(directory) -> VQGANConfig:
  path = os.path.join(directory, CONFIG_FILE)
  if not os.path.isdir(directory):
    raise ValueError(f"VQ-GAN directory {directory} does not exist")
  if not os.path.isfile(path):
    raise ValueError(f"{path} is missing: not a VQ-GAN directory written by vqgan.save")
  try:
    with open(path) as f:
      record = json.load(f)
  except json.JSONDecodeError as e:
    raise ValueError(f"{path} is not valid JSON: {e}") from e
  record.pop("preset", None)
  return VQGANConfig.from_dict(record, source=path)


def load(directory) -> VQGAN:
  """Reads a directory written by `save`; errors name the file that is wrong."""
  config = load_config(directory)
  path = os.path.join(directory, PARAMS_FILE)
  params = param_trees.read_msgpack(path, "VQ-GAN parameter file")
  check_params(params, config, f"Parameters in {path}")
  return VQGAN(config, params)
