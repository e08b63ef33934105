import math

import jax.numpy as jnp
import numpy as np

from unified_io.model import losses


def test_token_cross_entropy_matches_hand_computed_values():
  # Row 0: uniform logits over 4 tokens, two counted positions -> 2 * log(1/4).
  # Row 1: logits [log 1, log 3, 0-ish...] chosen so p(target) = 3/4 then 1/2; last masked.
  uniform = np.zeros((3, 4), np.float32)
  row1 = np.array([[0.0, math.log(3.0), -1e9, -1e9],
                   [0.0, 0.0, -1e9, -1e9],
                   [5.0, 0.0, 0.0, 0.0]], np.float32)
  logits = jnp.asarray(np.stack([uniform, row1]))
  targets = jnp.array([[2, 3, 0], [1, 0, 3]])
  mask = jnp.array([[1, 1, 0], [1, 1, 0]])
  expected = [2 * math.log(0.25), math.log(0.75) + math.log(0.5)]
  per_token = losses.token_cross_entropy(logits, targets)
  np.testing.assert_allclose(jnp.sum(per_token * mask, axis=-1), [-v for v in expected], rtol=1e-6)
  # z-loss adds z * logsumexp^2 per token: uniform zero logits over 4 ids -> log(4)^2.
  with_z = losses.token_cross_entropy(logits, targets, z_loss=0.1)
  np.testing.assert_allclose(with_z[0, 0] - per_token[0, 0], 0.1 * math.log(4.0) ** 2, rtol=1e-6)
