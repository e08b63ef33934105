"""The Unified-IO 1 network: a T5-style encoder-decoder over text tokens and image patches.

Parameter names and shapes follow the released checkpoints (allenai/unified-io-inference),
so converted official weights load without renaming. Numbers-changing details of the
release are reproduced on purpose (see the `NetworkConfig` field docs).

Dropout is active exactly when the caller passes a 'dropout' rng to `apply`.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from unified_io.model import layers
from unified_io.common import axis_rules as P
from unified_io.common.image_preprocessing import space_to_depth
from unified_io.model.position_bias import RelativePositionBias

REMAT_POLICIES = ("none", "minimal", "full")
# The floating dtypes `dtype` (activations) may name; jnp.dtype would also take integer
# names, which the network cannot compute in.
ACTIVATION_DTYPES = ("float32", "bfloat16", "float16")


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
  vocab_size: int  # whole unified vocabulary: padded text part + image codes
  padded_text_size: int  # ids below this are text (incl. extra ids); ids at/above are image codes
  emb_dim: int = 512
  num_heads: int = 6
  head_dim: int = 64
  num_encoder_layers: int = 8
  num_decoder_layers: int = 8
  mlp_dim: int = 1024
  dropout_rate: float = 0.0
  dtype: str = "float32"  # activation dtype; parameters are always float32
  # The XL release has 8 segment embeddings (only 2 are used); other sizes have 2.
  num_segment_embeddings: int = 2
  image_size: int = 384
  patch_size: int = 16
  encoder_max_text_length: int = 256
  decoder_max_text_length: int = 256
  decoder_max_image_length: int = 256  # 16x16 VQ-GAN codes of a 256x256 target image
  decoder_image_grid_width: int = 16
  # Patches kept (at random, valid ones first) when `train=True`; 0 keeps all.
  train_image_patches: int = 0
  float32_attention_logits: bool = False
  # The release computes a decoder->encoder absolute-position bias but never adds it to
  # the cross-attention logits; its parameters exist either way. True adds it.
  cross_attention_position_bias: bool = False
  scan_layers: bool = False
  remat_policy: str = "none"

  def __post_init__(self):
    if self.image_size % self.patch_size:
      raise ValueError(
        f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
      )
    if self.remat_policy not in REMAT_POLICIES:
      raise ValueError(f"remat_policy {self.remat_policy!r} not in {REMAT_POLICIES}")
    if not 0 < self.padded_text_size < self.vocab_size:
      raise ValueError(
        f"padded_text_size {self.padded_text_size} must be in (0, vocab_size {self.vocab_size})"
      )

  @property
  def image_grid_width(self):
    return self.image_size // self.patch_size

  @property
  def encoder_max_image_length(self):
    return self.image_grid_width**2

  @property
  def activation_dtype(self):
    return jnp.dtype(self.dtype)


def _stack(layer_cls, config, num_layers, num_broadcast_args):
  """Wraps a layer class in remat and (optionally) scan; the last argument is per-layer."""
  if config.remat_policy != "none":
    policy = (
      None
      if config.remat_policy == "full"
      else jax.checkpoint_policies.dots_with_no_batch_dims_saveable
    )
    layer_cls = nn.remat(layer_cls, policy=policy, prevent_cse=not config.scan_layers)
  if not config.scan_layers:
    return layer_cls
  return nn.scan(
    layer_cls,
    variable_axes={"params": 0},
    split_rngs={"params": True, "dropout": True},
    in_axes=(nn.broadcast,) * num_broadcast_args + (1,),
    out_axes=1,
    length=num_layers,
    metadata_params={nn.PARTITION_NAME: P.LAYERS},
  )


def _layers(layer_cls, config, num_layers, num_broadcast_args):
  """One scanned `layers` module, or `layers_0..layers_{n-1}` (the released names)."""
  layer = _stack(layer_cls, config, num_layers, num_broadcast_args)
  if config.scan_layers:
    return layer(config, name="layers")
  return [layer(config, name=f"layers_{i}") for i in range(num_layers)]


def _dropout(module, rate, x):
  """Dropout shared across the length axis; a no-op unless a 'dropout' rng was given."""
  if rate == 0 or not module.has_rng("dropout"):
    return x
  shape = x.shape[:-2] + (1,) + x.shape[-1:]
  keep = jax.random.bernoulli(module.make_rng("dropout"), 1.0 - rate, shape)
  return jnp.where(keep, x / (1.0 - rate), 0).astype(x.dtype)


def _attention(config, name):
  return layers.MultiHeadAttention(
    config.num_heads,
    config.head_dim,
    config.activation_dtype,
    config.dropout_rate,
    config.float32_attention_logits,
    name=name,
  )


class EncoderLayer(nn.Module):
  config: NetworkConfig

  @nn.compact
  def __call__(self, x, bias, key_mask, unused_per_layer=None):
    cfg = self.config
    dtype = cfg.activation_dtype
    h = layers.RMSNorm(dtype, name="pre_attention_layer_norm")(x)
    h, _ = _attention(cfg, "attention")(
      h, h, bias, key_mask, deterministic=not self.has_rng("dropout")
    )
    x = x + _dropout(self, cfg.dropout_rate, h)
    h = layers.RMSNorm(dtype, name="pre_mlp_layer_norm")(x)
    h = layers.MlpBlock(cfg.mlp_dim, dtype, cfg.dropout_rate, name="mlp")(
      h, deterministic=not self.has_rng("dropout")
    )
    x = x + _dropout(self, cfg.dropout_rate, h)
    return nn.with_logical_constraint(x, (P.BATCH, P.LENGTH, P.EMBED)), None


class DecoderLayer(nn.Module):
  config: NetworkConfig

  @nn.compact
  def __call__(
    self, y, encoded, encoder_mask, self_bias, self_key_mask, cross_bias, step, cache=None
  ):
    cfg = self.config
    dtype = cfg.activation_dtype
    deterministic = not self.has_rng("dropout")
    h = layers.RMSNorm(dtype, name="pre_self_attention_layer_norm")(y)
    h, new_cache = _attention(cfg, "self_attention")(
      h, h, self_bias, self_key_mask, deterministic=deterministic, cache=cache, step=step
    )
    y = y + _dropout(self, cfg.dropout_rate, h)
    h = layers.RMSNorm(dtype, name="pre_cross_attention_layer_norm")(y)
    h, _ = _attention(cfg, "encoder_decoder_attention")(
      h, encoded, cross_bias, encoder_mask, deterministic=deterministic
    )
    y = y + _dropout(self, cfg.dropout_rate, h)
    h = layers.RMSNorm(dtype, name="pre_mlp_layer_norm")(y)
    h = layers.MlpBlock(cfg.mlp_dim, dtype, cfg.dropout_rate, name="mlp")(
      h, deterministic=deterministic
    )
    y = y + _dropout(self, cfg.dropout_rate, h)
    return nn.with_logical_constraint(y, (P.BATCH, P.LENGTH, P.EMBED)), new_cache


def _embed(cfg, num, name):
  return layers.Embed(num, cfg.emb_dim, cfg.activation_dtype, name=name)


def _position_projection(cfg, name):
  return layers.Dense(
    (cfg.num_heads, cfg.head_dim), (P.EMBED, P.JOINED_KV), cfg.activation_dtype, name=name
  )


def _absolute_bias(cfg, pos_q, pos_k):
  # The release scales by (emb_dim / num_heads)^-0.5, not head_dim^-0.5.
  scale = float(cfg.emb_dim / cfg.num_heads) ** -0.5
  return jnp.einsum("bqhd,bkhd->bhqk", pos_q, pos_k) * scale


class Encoder(nn.Module):
  config: NetworkConfig
  token_embedder: nn.Module

  def setup(self):
    cfg = self.config
    dtype = cfg.activation_dtype
    self.segment_embedding = _embed(cfg, cfg.num_segment_embeddings, "segment_embedding")
    self.position_embedding = _embed(
      cfg, cfg.encoder_max_text_length + cfg.encoder_max_image_length, "position_embedding"
    )
    self.relpos_bias = RelativePositionBias(
      cfg.num_heads, cfg.image_grid_width, bidirectional=True, dtype=dtype
    )
    self.image_projection = layers.Dense((cfg.emb_dim,), (P.IMAGE_PATCH, P.EMBED), dtype)
    self.txt_emb_pre_ln = layers.RMSNorm(dtype)
    self.img_emb_pre_ln = layers.RMSNorm(dtype)
    self.pe_pre_ln = layers.RMSNorm(dtype)
    self.position_q_linear = _position_projection(cfg, "position_q_linear")
    self.position_k_linear = _position_projection(cfg, "position_k_linear")
    self.layers = _layers(EncoderLayer, cfg, cfg.num_encoder_layers, 2)
    self.encoder_norm = layers.RMSNorm(dtype)

  def __call__(self, text_ids, text_mask, text_positions, patches, patch_mask, image_positions):
    """Returns (encoded [B, Lt+Li, E], normalised position embeddings, key mask [B, Lt+Li])."""
    cfg = self.config
    txt_pos = self.position_embedding(text_positions)
    img_pos = self.position_embedding(image_positions + cfg.encoder_max_text_length)
    txt = self.token_embedder(text_ids) + self.segment_embedding(jnp.zeros_like(text_ids[:1]))
    img = self.image_projection(patches) + self.segment_embedding(
      jnp.ones((1, patches.shape[1]), jnp.int32)
    )
    txt = self.txt_emb_pre_ln(txt + txt_pos)
    img = self.img_emb_pre_ln(img + img_pos)
    pe = self.pe_pre_ln(
      jnp.concatenate(
        [jnp.broadcast_to(txt_pos, txt.shape), jnp.broadcast_to(img_pos, img.shape)], axis=1
      )
    )
    bias = _absolute_bias(cfg, self.position_q_linear(pe), self.position_k_linear(pe))
    bias = bias + self.relpos_bias(text_positions, image_positions)
    key_mask = jnp.concatenate([text_mask, patch_mask], axis=1)
    # The key mask goes into the bias once here, not into every layer's logits: XLA then
    # computes the bias once and fuses `logits + bias` into each layer's attention matmul.
    bias = jnp.where(key_mask[:, None, None, :], bias, layers.NEG_INF)
    x = jnp.concatenate([txt, img], axis=1).astype(cfg.activation_dtype)
    x = _dropout(self, cfg.dropout_rate, x)
    x = nn.with_logical_constraint(x, (P.BATCH, P.LENGTH, P.EMBED))
    if cfg.scan_layers:
      x, _ = self.layers(x, bias, None, None)
    else:
      for layer in self.layers:
        x, _ = layer(x, bias, None)
    x = _dropout(self, cfg.dropout_rate, self.encoder_norm(x))
    return x, pe, key_mask


class Decoder(nn.Module):
  config: NetworkConfig
  token_embedder: nn.Module

  def setup(self):
    cfg = self.config
    dtype = cfg.activation_dtype
    self.relpos_bias = RelativePositionBias(
      cfg.num_heads, cfg.decoder_image_grid_width, bidirectional=False, dtype=dtype
    )
    self.position_embedding = _embed(
      cfg, cfg.decoder_max_text_length + cfg.decoder_max_image_length, "position_embedding"
    )
    self.segments_embedding = _embed(cfg, cfg.num_segment_embeddings, "segments_embedding")
    self.pre_ln = layers.RMSNorm(dtype)
    self.pe_pre_ln = layers.RMSNorm(dtype)
    self.self_position_q_linear = _position_projection(cfg, "self_position_q_linear")
    self.self_position_k_linear = _position_projection(cfg, "self_position_k_linear")
    self.cross_position_q_linear = _position_projection(cfg, "cross_position_q_linear")
    self.cross_position_k_linear = _position_projection(cfg, "cross_position_k_linear")
    self.layers = _layers(DecoderLayer, cfg, cfg.num_decoder_layers, 6)
    self.decoder_norm = layers.RMSNorm(dtype)

  def positions(self, text_len, image_len):
    """Position-table ids and segment ids of a sequence of text then image targets."""
    cfg = self.config
    if image_len > cfg.decoder_max_image_length or text_len > cfg.decoder_max_text_length:
      raise ValueError(
        f"Decoder lengths text={text_len}, image={image_len} exceed the position "
        f"table ({cfg.decoder_max_text_length}, {cfg.decoder_max_image_length})"
      )
    positions = jnp.concatenate(
      [
        jnp.arange(text_len, dtype=jnp.int32),
        cfg.decoder_max_text_length + jnp.arange(image_len, dtype=jnp.int32),
      ]
    )
    segments = (jnp.arange(text_len + image_len) >= text_len).astype(jnp.int32)
    return positions[None], segments[None]

  def biases(self, text_len, image_len, encoder_pe):
    """Self-attention bias [1, H, L, L] (relative + absolute) and cross bias (or None)."""
    cfg = self.config
    positions, _ = self.positions(text_len, image_len)
    pe = self.pe_pre_ln(self.position_embedding(positions))
    self_bias = _absolute_bias(
      cfg, self.self_position_q_linear(pe), self.self_position_k_linear(pe)
    )
    self_bias = self_bias + self.relpos_bias(
      jnp.arange(text_len)[None], jnp.arange(image_len)[None]
    )
    cross_bias = _absolute_bias(
      cfg,
      jnp.broadcast_to(
        self.cross_position_q_linear(pe),
        (encoder_pe.shape[0],) + pe.shape[1:2] + (cfg.num_heads, cfg.head_dim),
      ),
      self.cross_position_k_linear(encoder_pe),
    )
    return self_bias, (cross_bias if cfg.cross_attention_position_bias else None)

  def __call__(
    self,
    ids,
    positions,
    segments,
    encoded,
    encoder_mask,
    self_bias,
    self_key_mask,
    cross_bias,
    cache=None,
    step=None,
    text_len=None,
    logit_rows=None,
  ):
    """Logits [B, L, V] for decoder inputs `ids` [B, L] (L = 1 with `cache` at `step`).

    With a static `text_len` (text positions first, then image positions) the logits come
    already masked by modality (`mask_logits_by_modality`), and only the allowed part of the
    vocabulary is computed: text ids for text positions, image ids for image positions.
    `logit_rows` (`decode_state.modality_logit_rows`): project onto those rows of the table
    only, every other id NEG_INF.
    """
    cfg = self.config
    y = (
      self.token_embedder(ids)
      + self.position_embedding(positions)
      + self.segments_embedding(segments)
    )
    y = _dropout(self, cfg.dropout_rate, self.pre_ln(y)).astype(cfg.activation_dtype)
    y = nn.with_logical_constraint(y, (P.BATCH, P.LENGTH, P.EMBED))
    args = (encoded, encoder_mask, self_bias, self_key_mask, cross_bias, step)
    new_cache = None
    if cfg.scan_layers:
      y, new_cache = self.layers(y, *args, cache)
    else:
      per_layer = []
      # The cache holds one array per layer here (decode_state.init_decode_cache): each layer
      # writes its step into its own buffer in place, where slicing a stacked [B, layers, ...]
      # cache and stacking it again copied the whole cache three times per step.
      for i, layer in enumerate(self.layers):
        layer_cache = None if cache is None else {k: v[i] for k, v in cache.items()}
        y, c = layer(y, *args, layer_cache)
        per_layer.append(c)
      if cache is not None:
        new_cache = {k: tuple(c[k] for c in per_layer) for k in cache}
    y = _dropout(self, cfg.dropout_rate, self.decoder_norm(y))
    scale = jnp.sqrt(y.shape[-1]).astype(jnp.float32)
    if logit_rows is not None:
      table, first = logit_rows
      logits = jnp.dot(y.astype(jnp.float32), table.T) / scale
      after = self.token_embedder.num_embeddings - first - table.shape[0]
      logits = jnp.pad(logits, ((0, 0), (0, 0), (first, after)), constant_values=layers.NEG_INF)
    elif text_len is None:
      logits = self.token_embedder.attend(y) / scale
    else:
      logits = self.token_embedder.attend_by_modality(y, text_len, cfg.padded_text_size, scale)
    return nn.with_logical_constraint(logits, (P.BATCH, P.LENGTH, P.VOCAB)), new_cache


def mask_logits_by_modality(logits, is_image_position, padded_text_size):
  """Text positions cannot emit image ids; image positions can only emit image ids."""
  is_image_id = jnp.arange(logits.shape[-1]) >= padded_text_size
  allowed = is_image_id == is_image_position[..., None]
  return jnp.where(allowed, logits, layers.NEG_INF)


def subsample_image_patches(rng, patches, patch_mask, num_keep):
  """Keeps `num_keep` patches per example, valid ones first in random order.

  Returns (patches [B, num_keep, F], mask [B, num_keep], positions [B, num_keep]); each
  kept patch keeps its true grid position, so position embeddings and biases still apply.
  """
  noise = jax.random.uniform(rng, patch_mask.shape)
  order = jnp.argsort(jnp.where(patch_mask, noise, noise + 2.0), axis=1)[:, :num_keep]
  take = lambda x: jnp.take_along_axis(x, order.reshape(order.shape + (1,) * (x.ndim - 2)), axis=1)
  return take(patches), take(patch_mask), order.astype(jnp.int32)


class UnifiedIO(nn.Module):
  """Top-level network. Batch keys (all arrays, B = batch):

  text_inputs int32 [B, Lt]; image_inputs float [B, S, S, 3] (normalised) or absent;
  image_input_mask bool [B, (S/p)^2]; text_targets int32 [B, Tt] (0 = padding);
  image_targets int32 [B, Ti] unified-vocabulary ids of VQ-GAN codes, or absent;
  image_target_mask bool [B, Ti] (default: all valid). Optional: text_input_mask
  (default text_inputs > 0), image_input_positions int32 [B, Np] for pre-selected patches.
  """

  config: NetworkConfig

  def setup(self):
    cfg = self.config
    self.token_embedder = _embed(cfg, cfg.vocab_size, "token_embedder")
    self.encoder = Encoder(cfg, self.token_embedder)
    self.decoder = Decoder(cfg, self.token_embedder)

  def encode(self, batch, train=False):
    cfg = self.config
    text_ids = batch["text_inputs"]
    if text_ids.ndim != 2:
      raise ValueError(f"text_inputs must be [batch, length], got shape {text_ids.shape}")
    if text_ids.shape[1] > cfg.encoder_max_text_length:
      raise ValueError(
        f"text_inputs length {text_ids.shape[1]} exceeds encoder_max_text_length "
        f"{cfg.encoder_max_text_length}"
      )
    bsz = text_ids.shape[0]
    text_mask = batch.get("text_input_mask")
    text_mask = text_ids > 0 if text_mask is None else text_mask.astype(bool)
    patches, patch_mask, image_positions = self._patches(batch, bsz)
    if train and 0 < cfg.train_image_patches < patches.shape[1]:
      patches, patch_mask, image_positions = subsample_image_patches(
        self.make_rng("patches"), patches, patch_mask, cfg.train_image_patches
      )
    text_positions = jnp.arange(text_ids.shape[1], dtype=jnp.int32)[None]
    return self.encoder(text_ids, text_mask, text_positions, patches, patch_mask, image_positions)

  def _patches(self, batch, bsz):
    cfg = self.config
    num = cfg.encoder_max_image_length
    feat = cfg.patch_size**2 * 3
    images = batch.get("image_inputs")
    if images is None:
      # Text-only batch: no patches at all. Masked-out patches would change no output (no
      # query attends to them and the decoder never reads them) but would lengthen every
      # encoder layer by train_image_patches (or all) positions.
      return (
        jnp.zeros((bsz, 0, feat), cfg.activation_dtype),
        jnp.zeros((bsz, 0), bool),
        jnp.zeros((1, 0), jnp.int32),
      )
    expected = (bsz, cfg.image_size, cfg.image_size, 3)
    if images.shape != expected:
      raise ValueError(
        f"image_inputs must have shape {expected} (batch, size, size, RGB), got {images.shape}"
      )
    mask = batch.get("image_input_mask")
    if mask is None or mask.shape != (bsz, num):
      raise ValueError(
        f"image_input_mask must have shape {(bsz, num)}, got {None if mask is None else mask.shape}"
      )
    positions = batch.get("image_input_positions")
    patches = space_to_depth(images, cfg.patch_size)
    if positions is None:
      return patches, mask.astype(bool), jnp.arange(num, dtype=jnp.int32)[None]
    take = lambda x: jnp.take_along_axis(
      x, positions.reshape(positions.shape + (1,) * (x.ndim - 2)), 1
    )
    return take(patches), take(mask.astype(bool)), positions

  def decoder_inputs(self, batch):
    """Shifted-right decoder inputs, key mask and lengths for text then image targets."""
    cfg = self.config
    text_targets = batch["text_targets"]
    bsz = text_targets.shape[0]
    text_inputs = jnp.pad(text_targets[:, :-1], ((0, 0), (1, 0)))  # BOS is the pad id 0
    parts, masks = [text_inputs], [text_targets > 0]
    image_targets = batch.get("image_targets")
    if image_targets is not None:
      start = jnp.full((bsz, 1), cfg.padded_text_size - 1, image_targets.dtype)
      parts.append(jnp.concatenate([start, image_targets[:, :-1]], axis=1))
      image_mask = batch.get("image_target_mask")
      masks.append(
        jnp.ones(image_targets.shape, bool) if image_mask is None else image_mask.astype(bool)
      )
    image_len = 0 if image_targets is None else image_targets.shape[1]
    return (
      jnp.concatenate(parts, axis=1),
      jnp.concatenate(masks, axis=1),
      text_targets.shape[1],
      image_len,
    )

  def __call__(self, batch, train=False):
    """Returns (text_logits [B, Tt, V], image_logits [B, Ti, V]) with modality masking."""
    return self.decode(*self.encode(batch, train), batch)

  def decode(self, encoded, encoder_pe, encoder_mask, batch):
    """Teacher-forced logits for the targets in `batch`, given `encode`'s outputs."""
    ids, key_mask, text_len, image_len = self.decoder_inputs(batch)
    positions, segments = self.decoder.positions(text_len, image_len)
    self_bias, cross_bias = self.decoder.biases(text_len, image_len, encoder_pe)
    causal = jnp.tril(jnp.ones((text_len + image_len,) * 2, bool))
    # Key masks folded into the biases once (see Encoder), not applied in every layer.
    self_bias = jnp.where(causal & key_mask[:, None, None, :], self_bias, layers.NEG_INF)
    cross_bias = jnp.where(
      encoder_mask[:, None, None, :],
      jnp.float32(0) if cross_bias is None else cross_bias,
      layers.NEG_INF,
    )
    logits, _ = self.decoder(
      ids, positions, segments, encoded, None, self_bias, None, cross_bias, text_len=text_len
    )
    return logits[:, :text_len], logits[:, text_len:]

  def decoder_biases(self, text_len, image_len, encoder_pe):
    return self.decoder.biases(text_len, image_len, encoder_pe)

  def decode_step(
    self,
    ids,
    step,
    cache,
    encoded,
    encoder_mask,
    self_bias,
    cross_bias,
    text_len,
    eos_id,
    logit_rows=None,
  ):
    """One cached decoding step at absolute position `step` (text first, then image).

    cache: `decode_state.init_decode_cache`'s {"k", "v", "valid": [N, L] bool, "eos": [N] bool}.
    self_bias: [1, H, L, L] from `decoder.biases` (causality is enforced here).
    logit_rows: None, or `decode_state.modality_logit_rows(...)` when the caller's loop decodes only
    text or only image positions: then only that part of the vocabulary is projected (the
    output table is most of the bytes a small-batch step reads: 49536 x 512 floats at
    Small), and the other part would be masked anyway. The logits are the same either way.
    Returns (logits [N, V] masked by modality, new cache).
    """
    cfg = self.config
    is_image = step >= text_len
    position = jnp.where(is_image, cfg.decoder_max_text_length + step - text_len, step)
    # A text position stops being attended to once EOS has been fed (it is padding).
    eos = cache["eos"] | ((ids[:, 0] == eos_id) & ~is_image)
    valid = jax.lax.dynamic_update_slice_in_dim(cache["valid"], (is_image | ~eos)[:, None], step, 1)
    row = jax.lax.dynamic_slice_in_dim(self_bias, step, 1, axis=2)
    causal = jnp.arange(row.shape[-1]) <= step
    row = jnp.where(causal, row, layers.NEG_INF)
    if cross_bias is not None:
      cross_bias = jax.lax.dynamic_slice_in_dim(cross_bias, step, 1, axis=2)
    kv = {"k": cache["k"], "v": cache["v"]}
    logits, kv = self.decoder(
      ids,
      position.reshape(1, 1),
      is_image.astype(jnp.int32).reshape(1, 1),
      encoded,
      encoder_mask,
      row,
      valid,
      cross_bias,
      kv,
      step,
      logit_rows=logit_rows,
    )
    if logit_rows is None:
      logits = mask_logits_by_modality(logits[:, 0], is_image, cfg.padded_text_size)
    else:
      logits = logits[:, 0]
    return logits, {"k": kv["k"], "v": kv["v"], "valid": valid, "eos": eos}
