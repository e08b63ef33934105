"""Build the network from a config, create or describe its parameters, and turn image
targets into the vocabulary's image ids with the frozen VQ-GAN.

`python -m unified_io.model` (unified_io/model/__main__.py) prints the parameter counts.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from unified_io.model import network
from vqgan import api as vqgan_api
from unified_io.common.vocab import VocabLayout


def vocab_layout(config) -> VocabLayout:
  return VocabLayout.from_config(config)


def network_config(config) -> network.NetworkConfig:
  layout = vocab_layout(config)
  known = {f.name for f in dataclasses.fields(network.NetworkConfig)}
  unknown = sorted(set(config.model.keys()) - known)
  if unknown:
    raise ValueError(f"Unknown config.model keys {unknown}; known keys: {sorted(known)}")
  return network.NetworkConfig(
    vocab_size=layout.total_size, padded_text_size=layout.padded_text_size, **config.model.to_dict()
  )


def build(config) -> network.UnifiedIO:
  return network.UnifiedIO(network_config(config))


def dummy_batch(
  net_config: network.NetworkConfig,
  batch_size=1,
  text_len=None,
  target_len=None,
  image_target_len=None,
):
  """Zero-filled batch with every input present, for init and shape inference."""
  cfg = net_config
  text_len = text_len or cfg.encoder_max_text_length
  target_len = target_len or cfg.decoder_max_text_length
  image_target_len = image_target_len or cfg.decoder_max_image_length
  return {
    "text_inputs": jnp.ones((batch_size, text_len), jnp.int32),
    "image_inputs": jnp.zeros((batch_size, cfg.image_size, cfg.image_size, 3), jnp.float32),
    "image_input_mask": jnp.ones((batch_size, cfg.encoder_max_image_length), bool),
    "text_targets": jnp.ones((batch_size, target_len), jnp.int32),
    "image_targets": jnp.full((batch_size, image_target_len), cfg.padded_text_size, jnp.int32),
  }


def init_params(model: network.UnifiedIO, rng, batch=None):
  """Float32 parameters (boxed with logical axis names) for `model`."""
  batch = (
    dummy_batch(model.config, text_len=8, target_len=4, image_target_len=4)
    if batch is None
    else batch
  )
  return model.init({"params": rng}, batch)["params"]


def abstract_params(model: network.UnifiedIO):
  """ShapeDtypeStructs of the parameters (boxed), computed without allocating them."""
  return jax.eval_shape(lambda rng: init_params(model, rng), jax.random.key(0))


def parameter_counts(params) -> dict:
  """{"total": n, "modules": {top-level name: n}} for a (possibly abstract) parameter tree."""
  params = nn.unbox(params)
  modules = {
    name: int(sum(np.prod(x.shape) for x in jax.tree.leaves(sub))) for name, sub in params.items()
  }
  return {"total": int(sum(modules.values())), "modules": modules}


def vqgan_parameter_count(config) -> int:
  """Parameters of the config's VQ-GAN preset (shapes only, nothing allocated)."""
  from vqgan import configs as vq_configs
  from vqgan import model as vq_model

  vq_config = vq_configs.get_config(config.vqgan.preset)
  if vq_config.n_codes != config.vocab.image_codes:
    raise ValueError(
      f"config.vqgan.preset={config.vqgan.preset!r} has {vq_config.n_codes} codes "
      f"but config.vocab.image_codes={config.vocab.image_codes}"
    )
  shapes = vq_model.param_shapes(vq_config)
  return int(
    sum(np.prod(s) for s in jax.tree.leaves(shapes, is_leaf=lambda x: isinstance(x, tuple)))
  )


# ----------------------------------------------------------------------- geometric init


def _sinusoids(u, num_features: int, max_frequency: float):
  """[N, num_features] sin/cos of coordinates u in [0, 1] at geometrically spaced
  frequencies from pi to pi * max_frequency, scaled to unit mean square per feature."""
  k = num_features // 2
  frequencies = np.pi * np.geomspace(1.0, max_frequency, k)
  angles = np.asarray(u, np.float64)[:, None] * frequencies[None]
  return np.sqrt(2.0) * np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def _grid_sinusoids(grid: int, emb_dim: int):
  """[grid * grid, emb_dim] row-major cells: the row's centre in the first half of the
  features, the column's in the second."""
  centres = (np.arange(grid) + 0.5) / grid
  rows, cols = np.meshgrid(centres, centres, indexing="ij")
  half = emb_dim // 2
  return np.concatenate(
    [_sinusoids(rows.ravel(), half, grid), _sinusoids(cols.ravel(), half, grid)], axis=1
  )


def geometric_init(params, config):
  """Gives freshly initialised parameters a shared coordinate code for where things are.

  The location-token embeddings (input and, through the tied embedding, output) and the
  learned position embeddings of input patches and output image codes start as sinusoids of
  the image coordinate they stand for instead of unrelated random vectors. The frequencies
  are geometrically spaced from pi (half a period across the image) up to pi * G for a grid
  of G cells, and up to pi * 2G for location tokens (G: the input patch grid), which are
  finer than a cell. The slow features dominate the similarity, so a location token starts
  out similar to its neighbours and to the patches at its coordinate (along either axis: a
  bin is used for x and for y alike), and a small model learns to point at things in a few
  thousand steps instead of first having to discover that bin 17 lies between bins 16 and
  18. Only the initial values change; names, shapes and the forward pass stay those of the
  released network.
  """
  net = network_config(config)
  layout = vocab_layout(config)
  emb_dim = net.emb_dim
  bins = layout.num_location_bins
  resolution = float(net.image_grid_width * 2)
  centres = np.minimum((np.arange(bins) + 0.5) / (bins - 1), 1.0)  # as locations.py decodes
  half = emb_dim // 2
  location = np.concatenate([_sinusoids(centres, half, resolution)] * 2, axis=1)
  ids = np.asarray(layout.location_id(np.arange(bins)))
  params = jax.tree.map(lambda x: x, params)  # a new tree; the caller's stays as it was
  table = params["token_embedder"]["embedding"]
  params["token_embedder"]["embedding"] = table.at[ids].set(location.astype(table.dtype))
  for part, start, grid in (
    ("encoder", net.encoder_max_text_length, net.image_grid_width),
    ("decoder", net.decoder_max_text_length, net.decoder_image_grid_width),
  ):
    table = params[part]["position_embedding"]["embedding"]
    cells = _grid_sinusoids(grid, emb_dim).astype(table.dtype)
    params[part]["position_embedding"]["embedding"] = table.at[start : start + grid * grid].set(
      cells
    )
  return params


def tokenize_image_targets(batch, vq_config, vq_params, padded_text_size):
  """Replaces `image_target_pixels` by `image_targets`: frozen VQ-GAN codes as vocab ids."""
  if "image_target_pixels" not in batch:
    return batch
  batch = dict(batch)
  codes = vqgan_api.encode_codes(vq_config, vq_params, batch.pop("image_target_pixels"))
  batch["image_targets"] = codes.reshape(codes.shape[0], -1).astype(jnp.int32) + padded_text_size
  return batch
