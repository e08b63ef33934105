import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests import tiny
from unified_io.model import decoding
from unified_io.model import generation
from unified_io.model import losses


@pytest.fixture(scope="module")
def setup():
  model = tiny.make_model()
  batch = tiny.make_batch(seed=3)
  params = tiny.init(model, batch, seed=5)
  inputs = {k: batch[k] for k in ("text_inputs", "image_inputs", "image_input_mask")}
  return model, inputs, params


def _greedy(model, params, inputs, max_len=8, **kw):
  fn = jax.jit(
    functools.partial(generation.generate_text, model, max_len=max_len, eos_id=tiny.EOS, **kw)
  )
  return fn(params, inputs)


def test_greedy_tokens_are_the_argmax_of_the_full_forward(setup):
  model, inputs, params = setup
  tokens, scores = _greedy(model, params, inputs)
  # Teacher-force the generated sequence: each generated token must be the argmax of the
  # non-cached forward pass at its position, and the score its summed log-probability.
  text_logits, _ = model.apply({"params": params}, dict(inputs, text_targets=tokens))
  valid = np.asarray(tokens) > 0
  argmax = np.asarray(jnp.argmax(text_logits, -1))
  np.testing.assert_array_equal(argmax[valid], np.asarray(tokens)[valid])
  ce = losses.token_cross_entropy(text_logits, tokens)
  np.testing.assert_allclose(scores, -jnp.sum(ce * valid, -1), rtol=1e-4, atol=1e-4)


def test_beam_of_one_equals_greedy(setup):
  model, inputs, params = setup
  greedy, _ = _greedy(model, params, inputs)
  beam, _ = _greedy(model, params, inputs, method="beam", num_beams=1, alpha=0.0)
  np.testing.assert_array_equal(greedy, beam)
  wide, wide_scores = _greedy(model, params, inputs, method="beam", num_beams=3, alpha=0.0)
  assert wide.shape == greedy.shape


def test_logit_mask_hook_restricts_outputs(setup):
  model, inputs, params = setup
  allowed = np.zeros(model.config.vocab_size, bool)
  allowed[[5, 6, 7, tiny.EOS]] = True
  tokens, _ = _greedy(model, params, inputs, logit_mask_fn=decoding.allow_only(allowed))
  assert set(np.asarray(tokens).ravel().tolist()) <= {0, 1, 5, 6, 7}


def test_sampling_needs_rng_and_unknown_method_is_named(setup):
  model, inputs, params = setup
  with pytest.raises(ValueError, match="rng"):
    generation.generate_text(model, params, inputs, max_len=3, eos_id=1, method="sample")
  with pytest.raises(ValueError, match="nucleus"):
    generation.generate_text(model, params, inputs, max_len=3, eos_id=1, method="nucleus")


def test_image_generation_emits_only_image_codes_and_matches_full_forward(setup):
  model, inputs, params = setup
  fn = jax.jit(
    functools.partial(
      generation.generate_image, model, eos_id=tiny.EOS, text_len=2, top_p=1.0, top_k=1
    )
  )  # top_k=1: deterministic, checkable
  text, image = fn(params, inputs, rng=jax.random.key(0))
  assert image.shape == (2, 16)
  assert ((image >= tiny.PADDED_TEXT) & (image < tiny.PADDED_TEXT + tiny.IMAGE_CODES)).all()
  _, image_logits = model.apply(
    {"params": params}, dict(inputs, text_targets=text, image_targets=image)
  )
  np.testing.assert_array_equal(jnp.argmax(image_logits, -1), image)
  # Sampling with a different seed gives different images.
  sampled = jax.jit(functools.partial(generation.generate_image, model, eos_id=tiny.EOS))
  a = sampled(params, inputs, rng=jax.random.key(1))[1]
  b = sampled(params, inputs, rng=jax.random.key(2))[1]
  assert not np.array_equal(a, b)


def test_code_distributions_are_those_the_sampler_drew_from(setup):
  model, inputs, params = setup
  greedy = jax.jit(
    functools.partial(generation.generate_image, model, eos_id=tiny.EOS, temperature=0.0)
  )
  text, image = greedy(params, inputs, rng=jax.random.key(0))
  probs = generation.image_code_distributions(model, params, inputs, text, image, tiny.IMAGE_CODES)
  assert probs.shape == (2, 16, tiny.IMAGE_CODES)
  np.testing.assert_allclose(np.sum(probs, -1), 1.0, rtol=1e-5)
  # Greedy decoding took the most likely code of every step's distribution.
  np.testing.assert_array_equal(np.argmax(probs, -1), np.asarray(image) - tiny.PADDED_TEXT)
  # A sampled prefix changes the later distributions: they are conditioned on it.
  sampled = jax.jit(functools.partial(generation.generate_image, model, eos_id=tiny.EOS))
  text_b, image_b = sampled(params, inputs, rng=jax.random.key(4))
  probs_b = generation.image_code_distributions(
    model, params, inputs, text_b, image_b, tiny.IMAGE_CODES
  )
  np.testing.assert_allclose(probs_b[:, 0], probs[:, 0], rtol=1e-5, atol=1e-7)
  assert not np.allclose(probs_b[:, 1:], probs[:, 1:])


def test_option_scores_equal_training_loss(setup):
  model, inputs, params = setup
  rs = np.random.RandomState(0)
  options = rs.randint(3, tiny.PADDED_TEXT - 1, (2, 5, 4))
  options[:, :, -1] = tiny.EOS
  options[:, 1, 2:] = [tiny.EOS, 0]  # a shorter option
  options = jnp.asarray(options, jnp.int32)
  scores = generation.score_options(model, params, inputs, options, chunk_size=2)
  for k in range(5):
    batch = dict(inputs, text_targets=options[:, k])
    total, _ = losses.example_losses(*model.apply({"params": params}, batch), batch)
    np.testing.assert_allclose(scores[:, k], -total, rtol=1e-5, atol=1e-4)
