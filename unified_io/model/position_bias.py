"""Relative position buckets and the shared 2-D relative position bias module.

Text-text pairs use T5's log-spaced buckets over token distance. Image-image pairs use
per-axis buckets (exact for small distances, log-spaced up to a maximum) on the patch
grid, combined with a quadrant index into num_buckets**2 * 4 buckets. Text-image pairs get
no relative bias. One module instance is shared by all layers of a stack.
"""

import flax.linen as nn
import jax.numpy as jnp

from unified_io.model import layers
from unified_io.common import axis_rules as P


def _log_bucket(distance, num_buckets, max_distance):
  """Distances >= 0 -> [0, num_buckets): exact below num_buckets // 2, log-spaced above."""
  max_exact = num_buckets // 2
  eps = jnp.finfo(jnp.float32).eps
  scaled = jnp.log(distance.astype(jnp.float32) / max_exact + eps) / jnp.log(
    max_distance / max_exact
  )
  large = max_exact + (scaled * (num_buckets - max_exact)).astype(jnp.int32)
  large = jnp.minimum(large, num_buckets - 1)
  return jnp.where(distance < max_exact, distance, large)


def text_bucket(relative_position, bidirectional, num_buckets=32, max_distance=128):
  """T5 bucket of `relative_position` = key position - query position.

  Bidirectional: half the buckets for keys before the query, half (offset by
  num_buckets // 2) for keys after it. Causal: keys after the query share bucket 0.
  """
  distance = -relative_position
  offset = 0
  if bidirectional:
    num_buckets //= 2
    offset = (distance < 0).astype(jnp.int32) * num_buckets
    distance = jnp.abs(distance)
  else:
    distance = jnp.maximum(distance, 0)
  return offset + _log_bucket(distance, num_buckets, max_distance)


def image_bucket(relative_x, relative_y, num_buckets=8, max_distance=20):
  """2-D bucket of a key patch relative to a query patch (key - query, in patches).

  Each axis gets one of `num_buckets` distance buckets; the direction picks one of four
  quadrant blocks of num_buckets**2 buckets (the released quadrant assignment, including
  its handling of the axes themselves).
  """
  dx, dy = -relative_x, -relative_y  # query minus key, as in the released model
  block = num_buckets**2
  quadrant = (
    jnp.where((dx <= 0) & (dy < 0), 3, 0)
    + jnp.where((dx < 0) & (dy >= 0), 2, 0)
    + jnp.where((dx > 0) & (dy <= 0), 1, 0)
  )
  bx = _log_bucket(jnp.abs(dx), num_buckets, max_distance)
  by = _log_bucket(jnp.abs(dy), num_buckets, max_distance)
  return quadrant * block + bx + num_buckets * by


class RelativePositionBias(nn.Module):
  """Bias [B, heads, Lt + Li, Lt + Li] for a sequence of text then image positions."""

  num_heads: int
  image_grid_width: int
  bidirectional: bool
  num_buckets: int = 32
  max_distance: int = 128
  image_num_buckets: int = 8
  image_max_distance: int = 20
  dtype: layers.Dtype = jnp.float32

  @nn.compact
  def __call__(self, text_positions, image_positions):
    """text_positions [B|1, Lt], image_positions [B|1, Li] (patch indices, row-major)."""
    init = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")
    axes = (P.HEADS, P.RELPOS_BUCKETS)
    text_table = layers._param(
      self, "rel_embedding", init, (self.num_heads, self.num_buckets), axes
    )
    image_table = layers._param(
      self, "image_rel_embedding", init, (self.num_heads, 4 * self.image_num_buckets**2), axes
    )

    t_rel = text_positions[:, None, :] - text_positions[:, :, None]
    t_bucket = text_bucket(t_rel, self.bidirectional, self.num_buckets, self.max_distance)
    w = self.image_grid_width
    x, y = image_positions % w, image_positions // w
    i_bucket = image_bucket(
      x[:, None, :] - x[:, :, None],
      y[:, None, :] - y[:, :, None],
      self.image_num_buckets,
      self.image_max_distance,
    )
    t_bias = jnp.take(text_table.astype(self.dtype), t_bucket, axis=1)  # [H, B, Lt, Lt]
    i_bias = jnp.take(image_table.astype(self.dtype), i_bucket, axis=1)  # [H, B, Li, Li]
    lt, li = text_positions.shape[1], image_positions.shape[1]
    t_bias = jnp.pad(t_bias, ((0, 0), (0, 0), (0, li), (0, li)))
    i_bias = jnp.pad(i_bias, ((0, 0), (0, 0), (lt, 0), (lt, 0)))
    return jnp.transpose(t_bias + i_bias, (1, 0, 2, 3))
