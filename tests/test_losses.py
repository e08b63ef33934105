import math

import jax.numpy as jnp
import numpy as np

from unified_io.model import losses


def test_token_cross_entropy_matches_hand_computed_values():
  # Row 0: uniform logits over 4 tokens, two counted positions -> 2 * log(1/4).
  # Row 1: logits [log 1, log 3, 0-ish...] chosen so p(target) = 3/4 then 1/2; last masked.
  uniform = np.zeros((3, 4), np.float32)
  row1 = np.array(
    [[0.0, math.log(3.0), -1e9, -1e9], [0.0, 0.0, -1e9, -1e9], [5.0, 0.0, 0.0, 0.0]], np.float32
  )
  logits = jnp.asarray(np.stack([uniform, row1]))
  targets = jnp.array([[2, 3, 0], [1, 0, 3]])
  mask = jnp.array([[1, 1, 0], [1, 1, 0]])
  expected = [2 * math.log(0.25), math.log(0.75) + math.log(0.5)]
  per_token = losses.token_cross_entropy(logits, targets)
  np.testing.assert_allclose(jnp.sum(per_token * mask, axis=-1), [-v for v in expected], rtol=1e-6)
  # z-loss adds z * logsumexp^2 per token: uniform zero logits over 4 ids -> log(4)^2.
  with_z = losses.token_cross_entropy(logits, targets, z_loss=0.1)
  np.testing.assert_allclose(with_z[0, 0] - per_token[0, 0], 0.1 * math.log(4.0) ** 2, rtol=1e-6)


def test_weighted_token_mean_matches_hand_computed_values():
  # Example 0 sums 6.0 over 3 tokens, example 1 sums 2.0 over 1 token: 4 tokens in all.
  total, count = jnp.array([6.0, 2.0]), jnp.array([3, 1])
  np.testing.assert_allclose(losses.weighted_token_mean(total, count), (6.0 + 2.0) / 4)
  # Weights scale the numerator only: (0.5 * 6 + 3 * 2) / 4 tokens, not / (0.5 * 3 + 3 * 1).
  np.testing.assert_allclose(
    losses.weighted_token_mean(total, count, jnp.array([0.5, 3.0])), (0.5 * 6.0 + 3.0 * 2.0) / 4
  )
  # No target tokens at all: 0, not 0 / 0.
  assert float(losses.weighted_token_mean(jnp.zeros(2), jnp.zeros(2, jnp.int32))) == 0.0


def test_batch_loss_per_example_matches_hand_computed_values():
  # Per-token means 6/3 = 2 and 3/1 = 3, so the mean over examples is 2.5; a third example
  # has no target tokens and neither counts nor divides by zero.
  total, count = jnp.array([6.0, 3.0, 0.0]), jnp.array([3, 1, 0])
  np.testing.assert_allclose(losses.batch_loss(total, count, normalization="examples"), 2.5)
  # Weights scale each example's mean: (0.5 * 2 + 2 * 3) / 2 examples.
  weights = jnp.array([0.5, 2.0, 7.0])
  np.testing.assert_allclose(
    losses.batch_loss(total, count, weights, normalization="examples"), (0.5 * 2 + 2 * 3) / 2
  )
  # "tokens" is the per-token mean: 9 / 4.
  np.testing.assert_allclose(losses.batch_loss(total, count), 9.0 / 4)
  assert float(losses.batch_loss(jnp.zeros(2), jnp.zeros(2, jnp.int32), None, "examples")) == 0


def test_unknown_normalization_is_refused():
  try:
    losses.batch_loss(jnp.ones(1), jnp.ones(1), normalization="sequence")
  except ValueError as e:
    assert "config.loss.normalization='sequence'" in str(e)
  else:
    raise AssertionError("no error")


def test_mean_token_loss_counts_every_text_and_image_token_once():
  # Uniform logits: every counted token costs log(V). Text: V = 4, 2 + 1 tokens (0 = padding);
  # image: V = 8, one masked-out position of 2 per example -> 1 + 1 tokens.
  batch = {
    "text_targets": jnp.array([[2, 3, 0], [1, 0, 0]]),
    "image_targets": jnp.array([[5, 6], [7, 1]]),
    "image_target_mask": jnp.array([[1, 0], [0, 1]]),
  }
  text_logits, image_logits = jnp.zeros((2, 3, 4)), jnp.zeros((2, 2, 8))
  total, count = losses.example_losses(text_logits, image_logits, batch)
  np.testing.assert_allclose(
    total, [2 * math.log(4) + math.log(8), math.log(4) + math.log(8)], rtol=1e-6
  )
  np.testing.assert_array_equal(count, [3, 2])
  weights = jnp.array([2.0, 1.0])
  expected = (2 * (2 * math.log(4) + math.log(8)) + math.log(4) + math.log(8)) / 5
  np.testing.assert_allclose(
    losses.mean_token_loss(text_logits, image_logits, batch, example_weights=weights),
    expected,
    rtol=1e-6,
  )
