"""VQ-GAN training losses (taming-transformers VQLPIPSWithDiscriminator) and codebook tools.

- LPIPS (Zhang et al. 2018, the `vgg` variant taming uses): VGG16 conv features at relu1_2,
  relu2_2, relu3_3, relu4_3, relu5_3, unit-normalised over channels, squared differences
  weighted per channel by 1x1 "linear heads", averaged over space and summed over layers.
- PatchGAN discriminator: taming's NLayerDiscriminator (pix2pix): 4x4 convs, stride 2 except
  the last two, BatchNorm + LeakyReLU(0.2) between, one logit per patch.
- Hinge / vanilla GAN losses and taming's adaptive generator weight.
- Codebook usage statistics and dead-code restarts.

LPIPS weights are never downloaded: they are read from a user-supplied `.npz`
(see `load_lpips_params`); `random_lpips_weights` writes the same format for tests.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# --------------------------------------------------------------------------------- LPIPS

# torchvision vgg16().features indices of the 13 convs, grouped by LPIPS slice (each slice
# ends at the ReLU LPIPS taps; a 2x2 max-pool starts every slice after the first).
VGG16_CONVS = ((0, 2), (5, 7), (10, 12, 14), (17, 19, 21), (24, 26, 28))
VGG16_CHANNELS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
# LPIPS ScalingLayer: ImageNet statistics re-expressed for inputs in [-1, 1].
LPIPS_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
LPIPS_SCALE = np.array([0.458, 0.448, 0.450], np.float32)


class LPIPS(nn.Module):
  """Perceptual distance of images in [-1, 1] ([B, H, W, 3], H and W >= 16): -> [B].

  Parameters: `conv{slice}_{i}` (VGG16 convs, HWIO kernels + biases) and `lin{slice}`
  (1x1 heads, kernel [1, 1, C, 1], no bias). Dropout in the heads is off (eval mode, as
  taming uses it).
  """

  @nn.compact
  def __call__(self, x, y):
    convs = [
      [
        nn.Conv(c, (3, 3), padding=((1, 1), (1, 1)), name=f"conv{s}_{i}")
        for i, c in enumerate(channels)
      ]
      for s, channels in enumerate(VGG16_CHANNELS)
    ]
    heads = [nn.Conv(1, (1, 1), use_bias=False, name=f"lin{s}") for s in range(len(VGG16_CHANNELS))]

    def features(images):
      h = (images - LPIPS_SHIFT) / LPIPS_SCALE
      taps = []
      for s, block in enumerate(convs):
        if s:
          h = nn.max_pool(h, (2, 2), strides=(2, 2))
        for conv in block:
          h = nn.relu(conv(h))
        # LPIPS normalize_tensor: unit length over channels.
        taps.append(h / (jnp.sqrt(jnp.sum(jnp.square(h), axis=-1, keepdims=True)) + 1e-10))
      return taps

    # Two passes, not one batch of both: identical images then give identical features on
    # every backend, so LPIPS(x, x) is exactly 0.
    total = 0.0
    for head, a, b in zip(heads, features(x), features(y)):
      total = total + jnp.mean(head(jnp.square(a - b)), axis=(1, 2, 3))
    return total


def lpips_params_from_torch(weights):
  """{torch name: array} -> LPIPS params.

  Names: torchvision `vgg16().features.state_dict()` keys prefixed with `features.`
  (`features.0.weight` [64, 3, 3, 3] OIHW, `features.0.bias`, ... `features.28.*`) and the
  LPIPS heads as in taming's / lpips' `vgg.pth` (`lin0.model.1.weight` [1, 64, 1, 1] ...
  `lin4.model.1.weight`).
  """
  params, missing = {}, []

  def get(name):
    if name not in weights:
      missing.append(name)
      return None
    return np.asarray(weights[name], np.float32)

  for s, indices in enumerate(VGG16_CONVS):
    for i, index in enumerate(indices):
      kernel, bias = get(f"features.{index}.weight"), get(f"features.{index}.bias")
      if kernel is not None and bias is not None:
        params[f"conv{s}_{i}"] = {"kernel": kernel.transpose(2, 3, 1, 0), "bias": bias}
    head = get(f"lin{s}.model.1.weight")
    if head is not None:
      params[f"lin{s}"] = {"kernel": head.transpose(2, 3, 1, 0)}
  if missing:
    raise ValueError(f"LPIPS weights lack {missing[:6]}{' ...' if len(missing) > 6 else ''}")
  want = jax.eval_shape(
    lambda: LPIPS().init(
      jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)), jnp.zeros((1, 16, 16, 3))
    )
  )["params"]
  for name, sub in want.items():
    for leaf, shape in sub.items():
      if params[name][leaf].shape != shape.shape:
        raise ValueError(
          f"LPIPS weight {name}/{leaf} has shape {params[name][leaf].shape}, "
          f"expected {shape.shape} (HWIO after transposing torch's OIHW)"
        )
  return params


def load_lpips_params(path):
  """Reads an `.npz` of torch-named LPIPS weights (lpips_params_from_torch lists them).

  Make one where torch is installed:
    import numpy as np, torch, torchvision
    vgg = torchvision.models.vgg16(weights="IMAGENET1K_V1").features.state_dict()
    heads = torch.load("vgg.pth")  # lpips / taming-transformers LPIPS heads
    np.savez("lpips_vgg16.npz", **{f"features.{k}": v.numpy() for k, v in vgg.items()},
             **{k: v.numpy() for k, v in heads.items()})
  """
  try:
    with np.load(path) as f:
      weights = {k: f[k] for k in f.files}
  except (OSError, ValueError) as e:
    raise ValueError(f"Cannot read LPIPS weights {path}: {e}") from e
  return lpips_params_from_torch(weights)


def random_lpips_weights(seed=0):
  """Random weights in the torch-named format `load_lpips_params` reads (tests only)."""
  rng = np.random.default_rng(seed)
  weights, cin = {}, 3
  for s, (indices, channels) in enumerate(zip(VGG16_CONVS, VGG16_CHANNELS)):
    for index, c in zip(indices, channels):
      weights[f"features.{index}.weight"] = (
        rng.standard_normal((c, cin, 3, 3)) / np.sqrt(9 * cin)
      ).astype(np.float32)
      weights[f"features.{index}.bias"] = np.zeros(c, np.float32)
      cin = c
    # The trained heads are non-negative, which makes LPIPS a (squared) distance.
    weights[f"lin{s}.model.1.weight"] = rng.uniform(0, 1, (1, cin, 1, 1)).astype(np.float32)
  return weights


# ------------------------------------------------------------------------- discriminator

# taming's weights_init: conv weights N(0, 0.02), BatchNorm weights N(1, 0.02).
DISC_INIT = nn.initializers.normal(0.02)


class BatchStatNorm(nn.Module):
  """BatchNorm2d in training mode: normalises with the statistics of the batch it sees.

  The discriminator is only run during training, where taming keeps it in train mode, so
  torch's running averages are never read and are not kept.
  """

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    scale = self.param("scale", lambda k, s: 1.0 + DISC_INIT(k, s), (c,))
    bias = self.param("bias", nn.initializers.zeros, (c,))
    mean = jnp.mean(x, axis=(0, 1, 2))
    var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
    return (x - mean) * jax.lax.rsqrt(var + 1e-5) * scale + bias


class NLayerDiscriminator(nn.Module):
  """PatchGAN: images [B, H, W, C] -> logits [B, H', W', 1] (taming's default structure)."""

  ndf: int = 64
  n_layers: int = 3

  @nn.compact
  def __call__(self, x):
    def conv(features, stride, name, bias):
      return nn.Conv(
        features,
        (4, 4),
        strides=(stride, stride),
        padding=((1, 1), (1, 1)),
        use_bias=bias,
        kernel_init=DISC_INIT,
        name=name,
      )

    h = nn.leaky_relu(conv(self.ndf, 2, "conv_0", True)(x), 0.2)
    mult = 1
    for n in range(1, self.n_layers + 1):
      mult = min(2**n, 8)
      # The last hidden layer keeps the resolution (stride 1), as in pix2pix.
      stride = 2 if n < self.n_layers else 1
      h = conv(self.ndf * mult, stride, f"conv_{n}", False)(h)
      h = nn.leaky_relu(BatchStatNorm(name=f"norm_{n}")(h), 0.2)
    return conv(1, 1, "conv_out", True)(h)


def random_disc_params(disc, channels, seed):
  """disc.init's distributions drawn on the host (taming's weights_init; conv biases 0).

  Compiling the init's RNG for the 2M-weight discriminator takes seconds on a small CPU.
  """
  rng = np.random.default_rng(seed)
  images = jnp.zeros((1, 64, 64, channels))
  shapes = jax.eval_shape(disc.init, jax.random.PRNGKey(0), images)["params"]

  def draw(path, leaf):
    name = path[-1].key
    if name == "kernel":
      return (0.02 * rng.standard_normal(leaf.shape)).astype(np.float32)
    if name == "scale":
      return (1.0 + 0.02 * rng.standard_normal(leaf.shape)).astype(np.float32)
    return np.zeros(leaf.shape, np.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def hinge_d_loss(logits_real, logits_fake):
  return 0.5 * (jnp.mean(jax.nn.relu(1.0 - logits_real)) + jnp.mean(jax.nn.relu(1.0 + logits_fake)))


def vanilla_d_loss(logits_real, logits_fake):
  return 0.5 * (jnp.mean(jax.nn.softplus(-logits_real)) + jnp.mean(jax.nn.softplus(logits_fake)))


D_LOSSES = {"hinge": hinge_d_loss, "vanilla": vanilla_d_loss}


def last_layer_grad(h, cotangent):
  """Gradient w.r.t. a 3x3 'SAME' conv's kernel given its input h [B, H, W, Cin] and the
  gradient of a loss w.r.t. its output [B, H, W, Cout]: the decoder's conv_out here."""
  kernel = jnp.zeros((3, 3, h.shape[-1], cotangent.shape[-1]), h.dtype)
  conv = lambda k: jax.lax.conv_general_dilated(
    h, k, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
  )
  return jax.vjp(conv, kernel)[1](cotangent)[0]


def adaptive_weight(nll_grad, g_grad, max_weight=1e4):
  """taming's calculate_adaptive_weight (before the discriminator_weight factor): balances
  the GAN term against the reconstruction term at the decoder's last layer."""
  weight = jnp.linalg.norm(nll_grad) / (jnp.linalg.norm(g_grad) + 1e-4)
  return jax.lax.stop_gradient(jnp.clip(weight, 0.0, max_weight))


# ------------------------------------------------------------------------------ codebook


def code_counts(codes, n_codes):
  """How often each code occurs in `codes` (any shape): float32 [n_codes]."""
  return jnp.zeros(n_codes, jnp.float32).at[jnp.reshape(codes, -1)].add(1.0)


def codebook_stats(counts):
  """Usage statistics from code counts [n_codes]: perplexity (exp of the entropy of usage;
  k codes used equally often give k) and the fraction of codes used at least once."""
  counts = np.asarray(counts, np.float64)
  total = counts.sum()
  p = counts / max(total, 1.0)
  entropy = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0))
  return {
    "perplexity": float(np.exp(entropy)) if total else 0.0,
    "used_fraction": float(np.mean(counts > 0)),
  }


def restart_dead_codes(embedding, dead, candidates, rng):
  """Replaces the rows of `embedding` [K, D] where `dead` [K] is true by encoder outputs
  drawn at random from `candidates` [N, D] (without replacement when N >= K), so an
  unused code restarts where the data is. Rows not dead are returned unchanged."""
  n = candidates.shape[0]
  picks = jax.random.choice(rng, n, (embedding.shape[0],), replace=n < embedding.shape[0])
  return jnp.where(dead[:, None], candidates[picks].astype(embedding.dtype), embedding)
