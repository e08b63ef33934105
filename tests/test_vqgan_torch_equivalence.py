"""Our Flax VQ-GAN against the PyTorch original (taming-transformers) on the same weights.

Needs the optional torch extras; skipped (with the reason shown by `pytest -rs`) without them:

  .venv/bin/pip install --no-deps -r requirements-torch.txt
  .venv/bin/pytest -rs tests/test_vqgan_torch_equivalence.py

The reference modules are taming's own Encoder / Decoder (taming.modules.diffusionmodules.model)
and VectorQuantizer (taming.modules.vqvae.quantize), plus the two 1x1 convs of taming's VQModel
(taming/models/vqgan.py, not imported: it pulls in pytorch-lightning). taming-transformers
0.0.1's package __init__ files are empty, so these imports need neither torchvision nor
lightning. Random weights are written into a state_dict named exactly as a taming Lightning
checkpoint names them (with fake `loss.*` entries), converted with vqgan.convert, and both
models run on the same images: codes must be identical, latents and decodings agree to
TOLERANCE relative to the output scale.
"""

import argparse

import numpy as np
import pytest

torch = pytest.importorskip(
  "torch", reason="torch not installed: pip install --no-deps -r requirements-torch.txt"
)
taming_model = pytest.importorskip(
  "taming.modules.diffusionmodules.model",
  reason="taming-transformers not installed: pip install --no-deps -r requirements-torch.txt",
)
taming_quantize = pytest.importorskip("taming.modules.vqvae.quantize")

import jax  # noqa: E402  (after the skips, so a missing torch skips before any work)

import vqgan  # noqa: E402
from vqgan import convert  # noqa: E402
from vqgan.model import VQGAN as VQGANModule  # noqa: E402
from vqgan.model import flatten, param_shapes  # noqa: E402

# float32 on both sides; observed differences are ~1e-6 of the output scale.
TOLERANCE = 1e-4

# Two resolution levels with two blocks each, attention at two resolutions and z_channels !=
# embed_dim: exercises block/attn indices, nin_shortcut and quant_conv shapes the presets miss.
TWO_BLOCKS = vqgan.VQGANConfig(
  resolution=32,
  ch=32,
  ch_mult=(1, 2, 2),
  num_res_blocks=2,
  attn_resolutions=(16, 8),
  z_channels=16,
  embed_dim=8,
  n_codes=64,
)


class TamingVQModel:
  """The inference path of taming's VQModel, built from taming's own modules."""

  def __init__(self, config, seed):
    torch.manual_seed(seed)
    dd = dict(
      double_z=False,
      z_channels=config.z_channels,
      resolution=config.resolution,
      in_channels=config.in_channels,
      out_ch=config.out_channels,
      ch=config.ch,
      ch_mult=list(config.ch_mult),
      num_res_blocks=config.num_res_blocks,
      attn_resolutions=list(config.attn_resolutions),
      dropout=0.0,
    )
    self.parts = {
      "encoder": taming_model.Encoder(**dd),
      "decoder": taming_model.Decoder(**dd),
      "quantize": taming_quantize.VectorQuantizer(
        config.n_codes, config.embed_dim, beta=config.beta
      ),
      "quant_conv": torch.nn.Conv2d(config.z_channels, config.embed_dim, 1),
      "post_quant_conv": torch.nn.Conv2d(config.embed_dim, config.z_channels, 1),
    }
    for part in self.parts.values():
      part.eval()
      for module in part.modules():
        if isinstance(module, torch.nn.GroupNorm):  # default ones/zeros would hide a swap
          with torch.no_grad():
            module.weight.normal_(1.0, 0.2)
            module.bias.normal_(0.0, 0.2)

  @torch.no_grad()
  def latents(self, images_nchw):
    return self.parts["quant_conv"](self.parts["encoder"](images_nchw))

  @torch.no_grad()
  def set_codebook_like(self, latents):
    """Codebook on the latents' scale, so codes are decided by clear margins."""
    weight = self.parts["quantize"].embedding.weight
    weight.copy_(torch.randn_like(weight) * latents.std() + latents.mean())

  @torch.no_grad()
  def quantize(self, latents):
    """-> (codes [B, h, w], quantiser loss)."""
    _, loss, (_, _, indices) = self.parts["quantize"](latents)
    b, _, h, w = latents.shape
    return indices.reshape(b, h, w), loss

  @torch.no_grad()
  def decode(self, codes):
    b, h, w = codes.shape
    z_q = self.parts["quantize"].get_codebook_entry(
      codes.reshape(-1), (b, h, w, self.parts["quantize"].e_dim)
    )
    return self.parts["decoder"](self.parts["post_quant_conv"](z_q))

  def lightning_state_dict(self):
    """Named like `state_dict` in a taming Lightning .ckpt, including loss.* entries."""
    state = {
      f"{prefix}.{k}": v.clone()
      for prefix, part in self.parts.items()
      for k, v in part.state_dict().items()
    }
    state["loss.discriminator.main.0.weight"] = torch.randn(64, 3, 4, 4)
    state["loss.perceptual_loss.net.slice1.0.weight"] = torch.randn(64, 3, 3, 3)
    state["loss.logvar"] = torch.zeros(())
    return state


def smooth_images(config, batch, seed):
  """Random low-frequency images in [-1, 1] (closer to photos than white noise)."""
  rs = np.random.RandomState(seed)
  coarse = rs.uniform(-1, 1, (batch, 4, 4, config.in_channels))
  up = config.resolution // 4
  images = np.repeat(np.repeat(coarse, up, axis=1), up, axis=2)
  images = images + 0.1 * rs.randn(*images.shape)
  return np.clip(images, -1, 1).astype(np.float32)


def nchw(images):
  return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def relative_code_margin(latents_nchw, codebook):
  """Smallest gap between nearest and second-nearest squared code distance, in units of the
  largest nearest distance (float64). Float32 rounding moves distances by ~1e-7 of that."""
  z = latents_nchw.permute(0, 2, 3, 1).reshape(-1, codebook.shape[1]).double()
  d = torch.cdist(z, codebook.detach().double()) ** 2
  two = torch.topk(d, 2, largest=False).values
  return float((two[:, 1] - two[:, 0]).min() / two[:, 0].max())


def assert_close(ours, reference, what):
  scale = max(1.0, float(np.abs(reference).max()))
  diff = float(np.abs(np.asarray(ours) - reference).max())
  assert diff <= TOLERANCE * scale, f"{what}: max abs diff {diff} > {TOLERANCE} * {scale}"
  return diff / scale


def check_equivalence(config, batch=2, seed=0):
  reference = TamingVQModel(config, seed)
  images = smooth_images(config, batch, seed)
  x = nchw(images)
  latents = reference.latents(x)
  reference.set_codebook_like(latents)
  assert relative_code_margin(latents, reference.parts["quantize"].embedding.weight) > 1e-5, (
    "test setup: a position is too close to a tie between two codes to compare"
  )
  ref_codes, ref_loss = reference.quantize(latents)
  ref_decoded = reference.decode(ref_codes).permute(0, 2, 3, 1).numpy()

  state = reference.lightning_state_dict()
  params = convert.from_taming(state, config)
  assert convert.ignored_taming_keys(state) == sorted(k for k in state if k.startswith("loss."))
  module = VQGANModule(config)
  variables = {"params": params}

  # Latents before quantisation, the quantiser's outputs and the unclipped decoding.
  def latents_and_quantized(m, x):
    z = m.quant_conv(m.encoder(x))
    return z, m.quantize(z)

  our_latents, (_, loss, codes) = jax.jit(
    lambda v, x: module.apply(v, x, method=latents_and_quantized)
  )(variables, images)
  rel_latents = assert_close(our_latents, latents.permute(0, 2, 3, 1).numpy(), "latents")
  np.testing.assert_array_equal(np.asarray(codes), ref_codes.numpy())
  np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-4)
  raw = jax.jit(lambda v, c: module.apply(v, c, method=VQGANModule.decode_codes))(
    variables, ref_codes.numpy().astype(np.int32)
  )
  rel_decoded = assert_close(raw, ref_decoded, "decoded images")
  return reference, rel_latents, rel_decoded


@pytest.mark.parametrize("config", [vqgan.PRESETS["tiny"], TWO_BLOCKS], ids=["tiny", "two_blocks"])
def test_matches_taming(config):
  check_equivalence(config)


def test_convert_cli_on_lightning_checkpoint(tmp_path, capsys):
  config = vqgan.PRESETS["tiny"]
  reference = TamingVQModel(config, seed=1)
  images = smooth_images(config, 2, seed=1)
  latents = reference.latents(nchw(images))
  reference.set_codebook_like(latents)
  ref_codes, _ = reference.quantize(latents)
  ref_decoded = reference.decode(ref_codes).permute(0, 2, 3, 1).numpy()
  ckpt = tmp_path / "last.ckpt"
  torch.save({"state_dict": reference.lightning_state_dict(), "global_step": 7}, str(ckpt))

  summary = convert.main(["--taming", str(ckpt), "--out", str(tmp_path / "vq"), "--preset", "tiny"])
  assert summary["ignored_keys"] == 3
  assert summary["ignored_prefixes"] == [
    "loss.discriminator",
    "loss.logvar",
    "loss.perceptual_loss",
  ]
  assert '"ignored_keys": 3' in capsys.readouterr().out
  # The public, jitted, clipping API on the converted weights.
  vq = vqgan.load(str(tmp_path / "vq"))
  np.testing.assert_array_equal(np.asarray(vq.encode(images)), ref_codes.numpy())
  assert_close(vq.decode(ref_codes.numpy()), np.clip(ref_decoded, -1, 1), "clipped decode")


def test_convert_cli_refuses_pickled_objects_without_flag(tmp_path):
  config = vqgan.PRESETS["tiny"]
  ckpt = tmp_path / "last.ckpt"
  state = TamingVQModel(config, seed=2).lightning_state_dict()
  # Old Lightning versions store hyper-parameters as an argparse.Namespace, which
  # torch.load(weights_only=True) refuses.
  torch.save({"state_dict": state, "hparams": argparse.Namespace(lr=4.5e-6)}, str(ckpt))
  with pytest.raises(ValueError, match="--allow-pickle"):
    convert.main(["--taming", str(ckpt), "--out", str(tmp_path / "vq"), "--preset", "tiny"])
  convert.main(
    ["--taming", str(ckpt), "--out", str(tmp_path / "vq"), "--preset", "tiny", "--allow-pickle"]
  )
  assert (tmp_path / "vq" / "params.msgpack").exists()


@pytest.mark.slow
def test_official_size_matches_taming():
  """One image through the full official configuration (256x256, 16384 codes); ~35 s on 2 CPU
  cores. Also counts the reference's parameters: the hand-derived count in test_vqgan.py."""
  reference, _, _ = check_equivalence(vqgan.PRESETS["official"], batch=1)
  torch_count = sum(p.numel() for part in reference.parts.values() for p in part.parameters())
  shapes = flatten(param_shapes(vqgan.PRESETS["official"])).values()
  ours = sum(int(np.prod(shape)) for shape in shapes)
  assert ours == torch_count == 76_073_859
