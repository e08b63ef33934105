"""VQ-GAN tokenizer training (vqgan/train.py, losses.py, data.py) and the shipped builtin weights.

Step and loss tests use a 16x16 one-level model (SMALL, fast to compile); the trainer runs on
the tiny preset; the last tests load vqgan/weights/builtin.
"""

import functools
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import vqgan
from configs.vqgan import builtin as builtin_config
from unified_io.common import checkpointing
from vqgan import data
from vqgan import losses
from vqgan import model as vq_model
from vqgan import train as vq_train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = os.path.join(ROOT, "vqgan", "weights", "builtin")
# One level (no resampling), so its train steps compile in seconds; 64 codes, so a batch
# leaves some unused (the restart test needs both kinds).
SMALL = vqgan.VQGANConfig(
  resolution=16,
  ch=32,
  ch_mult=(1,),
  num_res_blocks=1,
  attn_resolutions=(),
  z_channels=8,
  embed_dim=4,
  n_codes=64,
)
# Mean PSNR (dB) of the shipped weights on the first 32 validation scenes, measured when they
# were trained (benchmarks/vqgan.py reports 200 scenes); the test allows 1 dB less.
SHIPPED_PSNR = {
  "rgb": 22.43,
  "depth": 25.72,
  "normals": 28.11,
  "segmentation": 20.64,
  "mask": 24.8,
}
PSNR_MARGIN = 1.0


def small_config(**loss):
  config = builtin_config.get_config()
  config.vqgan = ml_collections.ConfigDict({"preset": SMALL})  # a VQGANConfig, not a name
  config.disc.update(ndf=8, n_layers=2)
  config.optimizer.update(warmup_steps=0, decay="constant")
  config.loss.update(loss)
  return config


def small_images(batch=4, seed=0):
  return np.random.RandomState(seed).uniform(-1, 1, (batch, 16, 16, 3)).astype(np.float32)


def tiny_config(total_steps):
  config = builtin_config.get_config("rgb")
  config.vqgan.preset = "tiny"
  config.train.update(batch_size=4, total_steps=total_steps, log_every=1, tensorboard=False)
  config.optimizer.update(lr=2e-3, warmup_steps=0, decay="constant")
  config.eval.update(every_steps=0, num_scenes=0)
  config.checkpoint.update(every_steps=1000, async_save=False)
  return config


# ------------------------------------------------------------------------------ trainer


@pytest.mark.slow
def test_train_reduces_loss_and_resumes(tmp_path):
  workdir = str(tmp_path / "run")
  history = vq_train.train(tiny_config(6), workdir)
  assert [s for s, _ in history] == list(range(1, 7))
  losses_seen = [loss for _, loss in history]
  assert np.mean(losses_seen[-2:]) < 0.8 * np.mean(losses_seen[:2]), losses_seen
  assert checkpointing.Checkpointer(workdir).latest_step() == 6
  first = vqgan.load(os.path.join(workdir, "final"))
  assert first.config == vqgan.PRESETS["tiny"]

  resumed = vq_train.train(tiny_config(8), workdir)  # same workdir: continues at step 6
  assert [s for s, _ in resumed] == [7, 8]
  log = open(os.path.join(workdir, "log.txt")).read()
  assert "at step 6" in log
  assert checkpointing.Checkpointer(workdir).latest_step() == 8


def test_init_from_starts_from_saved_weights(tmp_path):
  saved = vq_model.random_params(vqgan.PRESETS["tiny"], seed=7)
  vqgan.save(str(tmp_path / "tiny"), "tiny", saved)
  config = tiny_config(1)
  config.init_from = str(tmp_path / "tiny")
  state = vq_train.Parts(config).init_state()
  got = vq_model.flatten(jax.device_get(state["params"]["vqgan"]))
  want = vq_model.flatten(saved)
  assert got.keys() == want.keys()
  for name in want:
    np.testing.assert_array_equal(got[name], want[name], err_msg=name)
  assert int(state["step"]) == 0
  # The random init of the same run is another set of weights (seed 0, zeroed branches).
  fresh = vq_model.flatten(
    jax.device_get(vq_train.Parts(tiny_config(1)).init_state()["params"]["vqgan"])
  )
  assert any(not np.array_equal(fresh[n], want[n]) for n in want)

  vqgan.save(str(tmp_path / "small"), SMALL, vq_model.random_params(SMALL, seed=0))
  config.init_from = str(tmp_path / "small")
  with pytest.raises(ValueError, match="init_from=.*small.*not the run's preset 'tiny'"):
    vq_train.Parts(config).init_state()


def test_train_batches_are_deterministic():
  rates = {"rgb": 1, "depth": 1, "normals": 1, "segmentation": 1, "mask": 1}
  kwargs = dict(seed=0, num_scenes=100, max_depth=20.0)
  a, names = data.train_batch(3, 8, rates, **kwargs)
  b, _ = data.train_batch(3, 8, rates, **kwargs)
  c, _ = data.train_batch(4, 8, rates, **kwargs)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  assert a.shape == (8, 64, 64, 3) and a.min() >= -1 and a.max() <= 1
  assert set(names) <= set(data.MODALITIES)
  with pytest.raises(ValueError, match="Unknown modalities"):
    data.normalized_rates({"rgb": 1, "sketch": 1})


# ------------------------------------------------------------------ GAN switch, restarts


class SmallRun:
  """One SMALL-model setup shared by the step tests, so each step variant compiles once."""

  def __init__(self):
    self.config = small_config(disc_start=5, disc_weight=0.8)
    self.config.codebook.update(restart_dead=True, restart_every=4, dead_after_steps=2)
    self.parts = vq_train.Parts(self.config)
    self.state = self.parts.init_state()
    self.images = small_images()
    self.steps = {
      gan: jax.jit(functools.partial(vq_train.train_step, parts=self.parts, gan=gan))
      for gan in (False, True)
    }

  def step(self, gan, step=0):
    state = dict(jax.tree.map(jnp.copy, self.state), step=jnp.int32(step))
    return self.steps[gan](state, self.images, None)


@pytest.fixture(scope="module")
def small_run():
  return SmallRun()


def test_discriminator_off_before_warmup_and_on_after(small_run):
  parts, state = small_run.parts, small_run.state
  assert not parts.gan_active(4) and parts.gan_active(5)

  off_state, off = small_run.step(gan=False)
  assert "g_loss" not in off and "d_loss" not in off
  # The generator loss is exactly reconstruction + codebook: no GAN term.
  assert float(off["loss"]) == float(off["nll"] + off["quant_loss"])
  jax.tree.map(np.testing.assert_array_equal, off_state["params"]["disc"], state["params"]["disc"])

  on_state, on = small_run.step(gan=True)
  assert float(on["d_loss"]) > 0 and float(on["d_weight"]) > 0
  expected = on["nll"] + on["quant_loss"] + on["d_weight"] * on["g_loss"]
  np.testing.assert_allclose(float(on["loss"]), float(expected), rtol=1e-5)
  changed = jax.tree.map(
    lambda a, b: bool(np.any(a != b)), on_state["params"]["disc"], state["params"]["disc"]
  )
  # Every kernel learns; the output bias has zero hinge gradient while all logits lie in
  # (-1, 1), as they do at initialisation.
  assert all(v["kernel"] for v in changed.values() if "kernel" in v)
  # Same reconstruction either way: the GAN only adds terms.
  np.testing.assert_allclose(float(on["nll"]), float(off["nll"]), rtol=1e-6)


def test_adaptive_weight_matches_gradients_at_the_last_layer(small_run):
  parts, state, images = small_run.parts, small_run.state, jnp.asarray(small_run.images)
  params, disc_params = state["params"]["vqgan"], state["params"]["disc"]

  @jax.jit
  def last_layer_grads(p):
    def nll(p):
      err = images - parts.model.apply({"params": p}, images)[0]
      return jnp.mean(jnp.abs(err)) + jnp.mean(jnp.square(err))  # l1_weight = l2_weight = 1

    def g(p):
      recon = parts.model.apply({"params": p}, images)[0]
      return -jnp.mean(parts.disc.apply({"params": disc_params}, recon))

    return [jax.grad(f)(p)["decoder"]["conv_out"]["kernel"] for f in (nll, g)]

  nll_grad, g_grad = last_layer_grads(params)
  want = 0.8 * np.linalg.norm(nll_grad) / (np.linalg.norm(g_grad) + 1e-4)
  _, on = small_run.step(gan=True)
  np.testing.assert_allclose(float(on["d_weight"]), want, rtol=1e-4)


# ----------------------------------------------------------------------------- codebook


def test_codebook_stats_by_hand():
  k_uniform = losses.codebook_stats(np.array([5, 5, 5, 5, 0, 0, 0, 0]))
  assert k_uniform["perplexity"] == pytest.approx(4.0)
  assert k_uniform["used_fraction"] == 0.5
  one = losses.codebook_stats(np.array([9, 0, 0]))
  assert one["perplexity"] == pytest.approx(1.0) and one["used_fraction"] == pytest.approx(1 / 3)
  # p = (1/2, 1/4, 1/4): entropy 1.5 bits, perplexity 2 ** 1.5.
  skewed = losses.codebook_stats(np.array([2, 1, 1, 0]))
  assert skewed["perplexity"] == pytest.approx(2**1.5)
  counts = losses.code_counts(jnp.array([[0, 2], [2, 2]]), 4)
  np.testing.assert_array_equal(counts, [1, 0, 3, 0])


def test_restart_dead_codes_replaces_exactly_the_dead_rows():
  embedding = jnp.arange(16.0).reshape(8, 2)
  dead = np.array([False, True, False, False, True, True, False, False])
  candidates = 100 + jnp.arange(40.0).reshape(20, 2)
  new = np.asarray(
    losses.restart_dead_codes(embedding, jnp.asarray(dead), candidates, jax.random.PRNGKey(0))
  )
  np.testing.assert_array_equal(new[~dead], np.asarray(embedding)[~dead])
  restarted = new[dead]
  for row in restarted:
    assert any(np.array_equal(row, c) for c in np.asarray(candidates))
  assert len({tuple(r) for r in restarted}) == 3  # drawn without replacement


def test_train_step_restarts_exactly_the_unused_codes(small_run):
  # Codes were last used at step 0 and are dead after 2 steps; restarts run when
  # (step + 1) % 4 == 0, so step 3 restarts every code this batch leaves unused, step 2 none.
  base = np.asarray(small_run.state["params"]["vqgan"]["quantize"]["embedding"])
  kept_state, kept = small_run.step(gan=False, step=2)
  new_state, new = small_run.step(gan=False, step=3)
  used = np.asarray(new["code_counts"]) > 0
  assert 0 < used.sum() < SMALL.n_codes
  kept_emb = np.asarray(kept_state["params"]["vqgan"]["quantize"]["embedding"])
  new_emb = np.asarray(new_state["params"]["vqgan"]["quantize"]["embedding"])
  # Used codes take the same gradient step either way; unused codes have no gradient (and
  # fresh Adam moments), so they move only when restarted.
  np.testing.assert_array_equal(new_emb[used], kept_emb[used])
  np.testing.assert_array_equal(kept_emb[~used], base[~used])
  assert np.all(np.any(new_emb[~used] != base[~used], axis=1))
  assert int(new["restarted"]) == int((~used).sum()) and int(kept["restarted"]) == 0
  assert np.all(np.asarray(new_state["last_used"]) == 3)  # used now, or restarted now
  np.testing.assert_array_equal(kept_state["last_used"], np.where(used, 2, 0))


# -------------------------------------------------------------------------------- LPIPS


def test_lpips_with_random_vgg_weights(tmp_path):
  path = tmp_path / "lpips.npz"
  np.savez(path, **losses.random_lpips_weights(0))
  config = small_config(perceptual_weight=0.5, lpips_weights=str(path), l2_weight=0.0)
  parts = vq_train.Parts(config)  # loads the weights like a training run
  # Weights are arguments, not closed-over constants: XLA would fold 15M constants.
  lpips_fn = jax.jit(lambda w, a, b: parts.lpips.apply({"params": w}, a, b))
  lpips = functools.partial(lpips_fn, parts.lpips_params)
  x, y = jnp.asarray(small_images(2, seed=1)), jnp.asarray(small_images(2, seed=2))
  # Compiled, XLA may fuse the two feature passes differently, which leaves float rounding
  # (~1e-15) for identical images.
  assert np.all(np.asarray(lpips(x, x)) < 1e-10)
  assert np.all(np.asarray(lpips(x, y)) > 1e-2)

  # The trainer's reconstruction loss adds perceptual_weight * LPIPS to the L1 term.
  state = parts.init_state()
  aux, _, _, recon = jax.jit(
    lambda p, w, x: vq_train.generator_loss(p, None, w, x, parts=parts, gan=False)[1]
  )(state["params"]["vqgan"], parts.lpips_params, x)
  perceptual = float(np.mean(lpips(x, recon)))
  assert perceptual > 1e-2
  np.testing.assert_allclose(float(aux["nll"]), float(aux["l1"]) + 0.5 * perceptual, rtol=1e-5)

  np.savez(path, **{k: v for k, v in losses.random_lpips_weights(0).items() if "lin4" not in k})
  with pytest.raises(ValueError, match="lin4"):
    losses.load_lpips_params(str(path))


# ------------------------------------------------------------------------ shipped weights


@pytest.fixture(scope="module")
def shipped():
  return vqgan.load(WEIGHTS)


def test_shipped_weights_are_the_builtin_preset(shipped):
  assert shipped.config == vqgan.PRESETS["builtin"]
  assert shipped.grid_size == 8 and shipped.n_codes == 512
  assert os.path.getsize(os.path.join(WEIGHTS, "params.msgpack")) < 4.5e6


def test_shipped_codes_same_with_and_without_jit(shipped):
  images = data.heldout_images("rgb", 32, 20.0) * 2 - 1  # the batch the next test encodes
  jitted = np.asarray(shipped.encode(images))
  with jax.disable_jit():
    eager = np.asarray(vqgan.encode_codes(shipped.config, shipped.params, images))
  np.testing.assert_array_equal(jitted, eager)


def test_shipped_weights_reconstruct_heldout_scenes(shipped):
  for modality, measured in SHIPPED_PSNR.items():
    images = data.heldout_images(modality, 32, 20.0)
    recon = (np.asarray(shipped.decode(shipped.encode(images * 2 - 1))) + 1) / 2
    psnr = float(np.mean(data.psnr(images, recon)))
    assert psnr > measured - PSNR_MARGIN, (modality, psnr)
