"""The taming-transformers VQ-GAN (Esser et al. 2021) as Flax modules, NHWC.

Parameter names follow the `discrete_vae` subtree of the released Unified-IO 1 checkpoints
(allenai/unified-io-inference uio/network.py DiscreteVAE), so converting those is an identity:

  encoder/conv_in, encoder/down_{level}_block_{i}/{norm1,conv1,norm2,conv2,nin_shortcut},
  encoder/down_{level}_attn_{i}/{norm,q,k,v,proj_out}, encoder/down_{level}_downsample/conv,
  encoder/mid_block_1, encoder/mid_attn_1, encoder/mid_block_2, encoder/norm_out,
  encoder/conv_out, quant_conv, quantize/embedding, post_quant_conv,
  decoder/conv_in, decoder/mid_*, decoder/up_{step}_block_{i}, decoder/up_{step}_attn_{i},
  decoder/up_{step}_upsample/conv, decoder/norm_out, decoder/conv_out.

Convs hold `kernel` [kh, kw, in, out] (HWIO) and `bias`; GroupNorms hold `scale` and `bias`.
Decoder `up_{step}` counts in execution order (up_0 is the coarsest level), whereas taming's
`decoder.up.{level}` counts by resolution level: step = len(ch_mult) - 1 - level.

Behaviour follows taming (the weights were trained there), which the released Flax code matches:
- Downsampling pads (0, 1) on both spatial axes, then a VALID 3x3 stride-2 conv. The released
  Flax code writes a stride-2 conv with 'SAME' padding instead; for even sizes XLA's SAME pads
  exactly (0, 1), so both agree. We write taming's explicit pad so odd sizes would agree too.
- Quantiser loss: mean((sg(z_q) - z)^2) + beta * mean((z_q - sg(z))^2). Taming (and the released
  code) weight the term that moves the *encoder* by 1 and the *codebook* term by beta, the
  reverse of the VQ-VAE paper; later taming versions keep this as `legacy=True`. We reproduce it.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from unified_io.common import param_trees

from vqgan.configs import GROUPS, VQGANConfig

EPSILON = 1e-6  # taming's Normalize(): GroupNorm(32, eps=1e-6)
# Random-weight models only serve tests and the tiny default run. Plain (untruncated) normals
# with variance 1/fan_in, so random_params() below can draw the same distribution on the host.
KERNEL_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "normal")
EMBEDDING_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0)


def swish(x):
  return x * jax.nn.sigmoid(x)


class GroupNorm(nn.Module):
  """torch.nn.GroupNorm(32, C, eps=1e-6) over NHWC; contiguous channel chunks form a group."""

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (channels,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (channels,), jnp.float32)
    grouped = x.reshape(x.shape[:-1] + (GROUPS, channels // GROUPS))
    axes = tuple(range(1, x.ndim - 1)) + (x.ndim,)
    mean = jnp.mean(grouped, axis=axes, keepdims=True)
    # Two-pass variance like torch: E[x^2] - E[x]^2 loses digits on large activations.
    var = jnp.mean(jnp.square(grouped - mean), axis=axes, keepdims=True)
    normed = ((grouped - mean) * jax.lax.rsqrt(var + EPSILON)).reshape(x.shape)
    return normed * scale + bias


def conv(features, kernel_size, name, strides=1, padding=None):
  """torch Conv2d(padding=k//2) equivalent unless `padding` is given."""
  if padding is None:
    padding = ((kernel_size // 2,) * 2,) * 2
  return nn.Conv(
    features,
    (kernel_size, kernel_size),
    strides=(strides, strides),
    padding=padding,
    kernel_init=KERNEL_INIT,
    name=name,
  )


class ResBlock(nn.Module):
  out_channels: int

  @nn.compact
  def __call__(self, x):
    h = conv(self.out_channels, 3, "conv1")(swish(GroupNorm(name="norm1")(x)))
    # Dropout is 0 in every released VQ-GAN and the model is frozen, so it is left out.
    h = conv(self.out_channels, 3, "conv2")(swish(GroupNorm(name="norm2")(h)))
    if x.shape[-1] != self.out_channels:
      x = conv(self.out_channels, 1, "nin_shortcut")(x)
    return x + h


class AttnBlock(nn.Module):
  """Single-head self-attention over all positions, with 1x1-conv projections."""

  @nn.compact
  def __call__(self, x):
    b, height, width, c = x.shape
    h = GroupNorm(name="norm")(x)
    q, k, v = (conv(c, 1, name)(h).reshape(b, height * width, c) for name in ("q", "k", "v"))
    weights = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", q, k) * (c**-0.5), axis=-1)
    h = jnp.einsum("bqk,bkc->bqc", weights, v).reshape(b, height, width, c)
    return x + conv(c, 1, "proj_out")(h)


class Downsample(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
    return conv(x.shape[-1], 3, "conv", strides=2, padding="VALID")(x)


class Upsample(nn.Module):
  @nn.compact
  def __call__(self, x):
    # Nearest-neighbour x2 is torch's interpolate(scale_factor=2, mode="nearest") exactly.
    x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    return conv(x.shape[-1], 3, "conv")(x)


class Encoder(nn.Module):
  config: VQGANConfig

  @nn.compact
  def __call__(self, x):
    cfg = self.config
    levels = len(cfg.ch_mult)
    h = conv(cfg.ch, 3, "conv_in")(x)
    resolution = cfg.resolution
    for level in range(levels):
      for i in range(cfg.num_res_blocks):
        h = ResBlock(cfg.ch * cfg.ch_mult[level], name=f"down_{level}_block_{i}")(h)
        if resolution in cfg.attn_resolutions:
          h = AttnBlock(name=f"down_{level}_attn_{i}")(h)
      if level != levels - 1:
        h = Downsample(name=f"down_{level}_downsample")(h)
        resolution //= 2
    h = _middle(h)
    h = swish(GroupNorm(name="norm_out")(h))
    return conv(cfg.z_channels, 3, "conv_out")(h)


class Decoder(nn.Module):
  config: VQGANConfig

  @nn.compact
  def __call__(self, z):
    cfg = self.config
    levels = len(cfg.ch_mult)
    h = conv(cfg.ch * cfg.ch_mult[-1], 3, "conv_in")(z)
    h = _middle(h)
    resolution = cfg.grid_size
    for step, level in enumerate(reversed(range(levels))):
      for i in range(cfg.num_res_blocks + 1):
        h = ResBlock(cfg.ch * cfg.ch_mult[level], name=f"up_{step}_block_{i}")(h)
        if resolution in cfg.attn_resolutions:
          h = AttnBlock(name=f"up_{step}_attn_{i}")(h)
      if level != 0:
        h = Upsample(name=f"up_{step}_upsample")(h)
        resolution *= 2
    h = swish(GroupNorm(name="norm_out")(h))
    return conv(cfg.out_channels, 3, "conv_out")(h)


def _middle(h):
  """Encoder and decoder share this bottleneck; called inside their compact scopes."""
  channels = h.shape[-1]
  h = ResBlock(channels, name="mid_block_1")(h)
  h = AttnBlock(name="mid_attn_1")(h)
  return ResBlock(channels, name="mid_block_2")(h)


class VectorQuantizer(nn.Module):
  """Nearest-codebook-entry quantisation with a straight-through gradient."""

  n_codes: int
  embed_dim: int
  beta: float = 0.25

  def setup(self):
    # The released code's embedding init: rows of norm ~1, so random models use many codes
    # (taming's uniform(+-1/n_codes) would send every position to nearly the same code).
    self.embedding = self.param(
      "embedding", EMBEDDING_INIT, (self.n_codes, self.embed_dim), jnp.float32
    )

  def codes(self, z):
    """Index of the nearest codebook row for every position of z [..., embed_dim]."""
    # |z - e|^2 = |z|^2 + |e|^2 - 2 z.e; |z|^2 is the same for every code, so it is dropped
    # (it only adds rounding). HIGHEST keeps TPU/GPU matmuls from rounding to bf16/tf32.
    scores = jnp.sum(jnp.square(self.embedding), axis=-1) - 2 * jnp.einsum(
      "...d,kd->...k", z, self.embedding, precision=jax.lax.Precision.HIGHEST
    )
    return jnp.argmin(scores, axis=-1).astype(jnp.int32)

  def lookup(self, codes):
    return jnp.take(self.embedding, codes, axis=0)

  def __call__(self, z):
    """z [..., embed_dim] -> (straight-through z_q, quantiser loss, int32 codes)."""
    codes = self.codes(z)
    z_q = self.lookup(codes)
    sg = jax.lax.stop_gradient
    loss = jnp.mean(jnp.square(sg(z_q) - z)) + self.beta * jnp.mean(jnp.square(z_q - sg(z)))
    z_q = z + sg(z_q - z)
    return z_q, loss, codes


class VQGAN(nn.Module):
  """Images [B, H, W, C] in [-1, 1] <-> int32 code grids [B, H/f, W/f]."""

  config: VQGANConfig

  def setup(self):
    cfg = self.config
    self.encoder = Encoder(cfg)
    self.quant_conv = conv(cfg.embed_dim, 1, "quant_conv")
    self.quantize = VectorQuantizer(cfg.n_codes, cfg.embed_dim, cfg.beta)
    self.post_quant_conv = conv(cfg.z_channels, 1, "post_quant_conv")
    self.decoder = Decoder(cfg)

  def encode(self, images):
    """-> (straight-through quantised latents, quantiser loss, codes)."""
    return self.quantize(self.quant_conv(self.encoder(images)))

  def decode(self, z_q):
    """Quantised latents -> unclipped reconstruction."""
    return self.decoder(self.post_quant_conv(z_q))

  def encode_to_codes(self, images):
    return self.encode(images)[2]

  def decode_codes(self, codes):
    return self.decode(self.quantize.lookup(codes))

  def __call__(self, images):
    """Autoencode: -> (unclipped reconstruction, quantiser loss, codes)."""
    z_q, loss, codes = self.encode(images)
    return self.decode(z_q), loss, codes


def param_shapes(config: VQGANConfig):
  """Nested dict of parameter shapes (tuples) for `config`, computed without allocating."""
  return unflatten(dict(_flat_param_shapes(config)))


@functools.lru_cache(maxsize=None)
def _flat_param_shapes(config: VQGANConfig):
  # Tracing the official model takes a second or two; loading checks shapes more than once.
  images = jax.ShapeDtypeStruct(
    (1, config.resolution, config.resolution, config.in_channels), jnp.float32
  )
  abstract = jax.eval_shape(lambda x: VQGAN(config).init(jax.random.PRNGKey(0), x), images)
  return tuple((name, tuple(a.shape)) for name, a in flatten(abstract["params"]).items())


def random_params(config: VQGANConfig, seed: int):
  """Random parameters drawn on the host with the modules' initializer distributions.

  VQGAN(config).init would do the same, but XLA needs tens of seconds on a small CPU to
  compile the per-parameter RNG it builds; this takes milliseconds.
  """
  rng = np.random.default_rng(seed)
  flat = {}
  for name, shape in _flat_param_shapes(config):
    leaf = name.rsplit("/", 1)[-1]
    if leaf == "kernel":  # [kh, kw, in, out]: fan_in = kh * kw * in
      value = rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1]))
    elif leaf == "embedding":  # [n_codes, embed_dim]: fan_in = embed_dim
      value = rng.standard_normal(shape) / np.sqrt(shape[-1])
    elif leaf == "scale":
      value = np.ones(shape)
    else:
      value = np.zeros(shape)
    flat[name] = value.astype(np.float32)
  return unflatten(flat)


def flatten(tree, sep="/"):
  """{'a': {'b': x}} -> {'a/b': x}."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict) or hasattr(value, "items"):
      for sub, leaf in flatten(value, sep).items():
        flat[f"{key}{sep}{sub}"] = leaf
    else:
      flat[key] = value
  return flat


def unflatten(flat, sep="/"):
  tree = {}
  for key, value in flat.items():
    node = tree
    *parents, leaf = key.split(sep)
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return tree


def check_params(params, config: VQGANConfig, what="VQ-GAN parameters"):
  """Raises ValueError listing missing, unexpected and wrongly shaped parameters."""
  got = {k: tuple(np.shape(v)) for k, v in flatten(params).items()}
  param_trees.check_shapes(
    got, dict(_flat_param_shapes(config)), f"{what} (against the VQ-GAN config {config})", limit=40
  )


def count_params(params) -> int:
  return int(sum(np.prod(np.shape(x)) for x in jax.tree.leaves(params)))
