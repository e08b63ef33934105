"""A tiny network and random batches shared by the model tests."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from unified_io.model import network

PADDED_TEXT = 200
IMAGE_CODES = 40
EOS = 1

CONFIG = network.NetworkConfig(
  vocab_size=PADDED_TEXT + IMAGE_CODES,
  padded_text_size=PADDED_TEXT,
  emb_dim=32,
  num_heads=2,
  head_dim=16,
  num_encoder_layers=2,
  num_decoder_layers=2,
  mlp_dim=48,
  image_size=64,
  patch_size=16,
  encoder_max_text_length=16,
  decoder_max_text_length=12,
  decoder_max_image_length=16,
  decoder_image_grid_width=4,
)


def make_model(**overrides):
  return network.UnifiedIO(dataclasses.replace(CONFIG, **overrides))


def make_batch(
  seed=0, batch_size=2, text_len=7, target_len=5, with_image=True, with_image_targets=True
):
  rs = np.random.RandomState(seed)
  text = rs.randint(3, PADDED_TEXT - 1, (batch_size, text_len))
  text[0, -2:] = 0  # padding in the first example
  targets = rs.randint(3, PADDED_TEXT - 1, (batch_size, target_len))
  targets[:, -1] = EOS
  targets[0, -2] = EOS  # first example ends early: EOS then padding
  targets[0, -1] = 0
  batch = {
    "text_inputs": jnp.asarray(text, jnp.int32),
    "text_targets": jnp.asarray(targets, jnp.int32),
  }
  if with_image:
    batch["image_inputs"] = jnp.asarray(rs.randn(batch_size, 64, 64, 3), jnp.float32)
    mask = np.ones((batch_size, 16), bool)
    mask[1, 8:] = False  # bottom half of the second image is padding
    batch["image_input_mask"] = jnp.asarray(mask)
  if with_image_targets:
    batch["image_targets"] = jnp.asarray(
      rs.randint(PADDED_TEXT, PADDED_TEXT + IMAGE_CODES, (batch_size, 16)), jnp.int32
    )
  return batch


def init(model, batch, seed=0):
  return nn.unbox(model.init({"params": jax.random.key(seed)}, batch)["params"])
