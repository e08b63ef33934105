"""T5-style building blocks: RMS norm, bias-free dense layers, embeddings, attention, gated MLP.

Parameters are float32 and stored in the released Unified-IO layout (2-D dense kernels,
T5 names), each tagged with logical axis names for sharding. Computation runs in `dtype`.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from unified_io.common import axis_rules as P

# Large finite negative used for masking: -inf would turn fully masked rows into NaN.
NEG_INF = -1e10

Dtype = Any


def _param(module, name, init, shape, axes):
  return module.param(name, nn.with_logical_partitioning(init, axes), shape, jnp.float32)


class RMSNorm(nn.Module):
  """T5 layer norm: scale by the root mean square; no mean subtraction, no bias."""

  dtype: Dtype = jnp.float32
  epsilon: float = 1e-6

  @nn.compact
  def __call__(self, x):
    x = x.astype(jnp.float32)
    mean_square = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
    y = (x * jax.lax.rsqrt(mean_square + self.epsilon)).astype(self.dtype)
    scale = _param(self, "scale", nn.initializers.ones, (x.shape[-1],), (P.EMBED,))
    return y * scale.astype(self.dtype)


class Dense(nn.Module):
  """Bias-free linear map with a 2-D kernel [in, out]; `out_shape` reshapes the result."""

  out_shape: tuple
  kernel_axes: tuple
  dtype: Dtype = jnp.float32
  kernel_init: Any = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
  in_dims: int = 1  # number of trailing input axes that are contracted

  @nn.compact
  def __call__(self, x):
    in_shape = x.shape[-self.in_dims :]
    in_size = 1
    for d in in_shape:
      in_size *= d
    out_size = 1
    for d in self.out_shape:
      out_size *= d
    kernel = _param(self, "kernel", self.kernel_init, (in_size, out_size), self.kernel_axes)
    x = x.astype(self.dtype).reshape(x.shape[: -self.in_dims] + (in_size,))
    y = jnp.dot(x, kernel.astype(self.dtype))
    return y.reshape(y.shape[:-1] + tuple(self.out_shape))


class Embed(nn.Module):
  """Embedding table [num, features]; `attend` gives logits against the table in float32."""

  num_embeddings: int
  features: int
  dtype: Dtype = jnp.float32

  def setup(self):
    self.embedding = _param(
      self,
      "embedding",
      nn.initializers.normal(stddev=1.0),
      (self.num_embeddings, self.features),
      (P.VOCAB, P.EMBED),
    )

  def __call__(self, ids):
    if not jnp.issubdtype(ids.dtype, jnp.integer):
      raise ValueError(f"Embedding ids must be integers, got dtype {ids.dtype}")
    return jnp.take(self.embedding, ids, axis=0).astype(self.dtype)

  def attend(self, query):
    # float32 logits for a stable softmax over the ~50k-way vocabulary.
    return jnp.dot(query.astype(jnp.float32), self.embedding.T)

  def attend_by_modality(self, query, text_len, split, scale):
    """attend(query) / scale, where query positions [:text_len] get logits for ids [:split]
    only and the others for ids [split:] only; the rest are NEG_INF, not computed."""
    query = query.astype(jnp.float32)
    num, length = self.embedding.shape[0], query.shape[1]
    parts = []
    if text_len:
      text = jnp.dot(query[:, :text_len], self.embedding[:split].T) / scale
      parts.append(jnp.pad(text, ((0, 0), (0, 0), (0, num - split)), constant_values=NEG_INF))
    if length > text_len:
      image = jnp.dot(query[:, text_len:], self.embedding[split:].T) / scale
      parts.append(jnp.pad(image, ((0, 0), (0, 0), (split, 0)), constant_values=NEG_INF))
    return jnp.concatenate(parts, axis=1)


class MlpBlock(nn.Module):
  """Gated-GELU MLP: gelu(x W0) * (x W1), then Wo. GELU is the tanh approximation."""

  mlp_dim: int
  dtype: Dtype = jnp.float32
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x, deterministic=True):
    dense = lambda n, axes, name: Dense((n,), axes, self.dtype, name=name)
    gate = nn.gelu(dense(self.mlp_dim, (P.EMBED, P.MLP), "wi_0")(x), approximate=True)
    linear = dense(self.mlp_dim, (P.EMBED, P.MLP), "wi_1")(x)
    h = gate * linear
    h = nn.Dropout(self.dropout_rate, broadcast_dims=(-2,))(h, deterministic=deterministic)
    h = nn.with_logical_constraint(h, (P.BATCH, P.LENGTH, P.MLP))
    return dense(x.shape[-1], (P.MLP, P.EMBED), "wo")(h)


def dot_product_attention(
  query, key, value, bias, key_mask, *, dtype, float32_logits, dropout_rng=None, dropout_rate=0.0
):
  """Softmax attention. query [B,Q,H,D], key/value [B,K,H,D], bias [B|1,H,Q,K], key_mask [B,K]."""
  if float32_logits:
    query, key = query.astype(jnp.float32), key.astype(jnp.float32)
  logits = jnp.einsum("bqhd,bkhd->bhqk", query, key)
  if bias is not None:
    logits = logits + bias.astype(logits.dtype)
  if key_mask is not None:
    logits = jnp.where(key_mask[:, None, None, :], logits, jnp.asarray(NEG_INF, logits.dtype))
  weights = jax.nn.softmax(logits.astype(jnp.float32)).astype(dtype)
  if dropout_rng is not None and dropout_rate > 0:
    keep = jax.random.bernoulli(
      dropout_rng, 1.0 - dropout_rate, weights.shape[:2] + (1,) + weights.shape[3:]
    )
    weights = weights * keep.astype(dtype) / jnp.asarray(1.0 - dropout_rate, dtype)
  return jnp.einsum("bhqk,bkhd->bqhd", weights, value)


class MultiHeadAttention(nn.Module):
  """Multi-head attention with T5's convention: 1/sqrt(head_dim) lives in the query init.

  With `cache` (a dict with "k", "v" of shape [B, max_len, H, D]) the call handles one
  query position: its key/value are written at `step` and the updated cache is returned.
  """

  num_heads: int
  head_dim: int
  dtype: Dtype = jnp.float32
  dropout_rate: float = 0.0
  float32_logits: bool = False

  @nn.compact
  def __call__(
    self, inputs_q, inputs_kv, bias, key_mask, *, deterministic=True, cache=None, step=None
  ):
    heads = (self.num_heads, self.head_dim)
    base_init = nn.initializers.variance_scaling(1.0, "fan_in", "normal")

    def query_init(rng, shape, dtype=jnp.float32):
      return base_init(rng, shape, dtype) / jnp.sqrt(self.head_dim).astype(dtype)

    proj = lambda name, init: Dense(heads, (P.EMBED, P.JOINED_KV), self.dtype, init, name=name)
    query = proj("query", query_init)(inputs_q)
    key = proj("key", base_init)(inputs_kv)
    value = proj("value", base_init)(inputs_kv)
    axes = (P.BATCH, P.LENGTH, P.HEADS, P.KV)
    query = nn.with_logical_constraint(query, axes)
    key = nn.with_logical_constraint(key, axes)
    value = nn.with_logical_constraint(value, axes)

    new_cache = None
    if cache is not None:
      key = jax.lax.dynamic_update_slice_in_dim(cache["k"], key.astype(cache["k"].dtype), step, 1)
      value = jax.lax.dynamic_update_slice_in_dim(
        cache["v"], value.astype(cache["v"].dtype), step, 1
      )
      new_cache = {"k": key, "v": value}

    dropout_rng = None
    if not deterministic and self.dropout_rate > 0:
      dropout_rng = self.make_rng("dropout")
    x = dot_product_attention(
      query,
      key,
      value,
      bias,
      key_mask,
      dtype=self.dtype,
      float32_logits=self.float32_logits,
      dropout_rng=dropout_rng,
      dropout_rate=self.dropout_rate,
    )
    out = Dense(
      (inputs_q.shape[-1],), (P.JOINED_KV, P.EMBED), self.dtype, base_init, in_dims=2, name="out"
    )(x)
    return out, new_cache
