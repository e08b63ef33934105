"""Decoding tests against a toy step model whose outputs are recomputed independently in numpy.

The toy model's logits depend on the fed token, the absolute step and a per-row cache (a
running sum of fed tokens, plus a shared scalar leaf), so a wrong beam gather of the cache,
a wrong step offset or a wrong fed token all change the decoded sequences.
"""

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from unified_io import decoding

EOS_ID = 1


class ToyModel:
  """logits = table[fed] + step_bias[step] + cache_table[(running_sum + shift) % 3]."""

  def __init__(self, vocab_size, seed, max_steps=32, eos_id=EOS_ID, force_eos_from_step=None):
    rng = np.random.default_rng(seed)
    self.vocab_size = vocab_size
    self.table = (2.0 * rng.normal(size=(vocab_size, vocab_size))).astype(np.float32)
    self.step_bias = rng.normal(size=(max_steps, vocab_size)).astype(np.float32)
    self.cache_table = (2.0 * rng.normal(size=(3, vocab_size))).astype(np.float32)
    if force_eos_from_step is not None:
      self.step_bias[force_eos_from_step:, eos_id] += 30.0
    self.recorded_steps = []
    self.record_steps = False

  def initial_cache(self, initial_sums, shift=1):
    return {"token_sum": jnp.asarray(initial_sums, jnp.int32)[:, None],
            "shift": jnp.asarray(shift, jnp.int32)}

  def tokens_to_logits(self, token_ids, cache, step):
    fed = token_ids[:, 0]
    token_sum = cache["token_sum"][:, 0] + fed
    logits = (jnp.asarray(self.table)[fed] + jnp.asarray(self.step_bias)[step] +
              jnp.asarray(self.cache_table)[(token_sum + cache["shift"]) % 3])
    if self.record_steps:
      jax.debug.callback(lambda s: self.recorded_steps.append(int(s)), step)
    return logits, {"token_sum": token_sum[:, None], "shift": cache["shift"]}

  def reference_logits(self, fed_history, initial_sum, shift, step):
    """float64 logits after feeding `fed_history` (last element is the current token)."""
    running_sum = initial_sum + sum(fed_history)
    return (self.table[fed_history[-1]].astype(np.float64) + self.step_bias[step] +
            self.cache_table[(running_sum + shift) % 3])


def log_softmax64(logits):
  logits = np.asarray(logits, np.float64)
  shifted = logits - logits.max()
  return shifted - np.log(np.exp(shifted).sum())


def apply_reference_mask(logits, allowed):
  if allowed is None:
    return logits
  return np.where(allowed, logits, -1e10)


def brute_force_greedy(model, first_id, initial_sum, shift, max_len, start_step=0,
                       allowed=None, stop_at_eos=True):
  fed, tokens, total_log_prob = [first_id], [], 0.0
  for i in range(max_len):
    logits = apply_reference_mask(
        model.reference_logits(fed, initial_sum, shift, start_step + i), allowed)
    token = int(np.argmax(logits))
    total_log_prob += log_softmax64(logits)[token]
    tokens.append(token)
    if stop_at_eos and token == EOS_ID:
      break
    fed.append(token)
  return tokens + [0] * (max_len - len(tokens)), total_log_prob


def gnmt_penalty(length, alpha):
  return ((5.0 + length) / 6.0) ** alpha


def enumerate_all_sequences(model, first_id, initial_sum, shift, max_len, alpha,
                            start_step=0, allowed=None):
  """Every distinct output (truncated at EOS), with its penalized score, best first."""
  finished = []

  def extend(prefix, fed, log_prob):
    if len(prefix) == max_len:
      finished.append((prefix, log_prob))
      return
    logits = apply_reference_mask(
        model.reference_logits(fed, initial_sum, shift, start_step + len(prefix)), allowed)
    token_log_probs = log_softmax64(logits)
    for token in range(model.vocab_size):
      if allowed is not None and not allowed[token]:
        continue
      if token == EOS_ID:
        finished.append((prefix + [token], log_prob + token_log_probs[token]))
      else:
        extend(prefix + [token], fed + [token], log_prob + token_log_probs[token])

  extend([], [first_id], 0.0)
  scored = [(seq + [0] * (max_len - len(seq)), lp / gnmt_penalty(len(seq), alpha))
            for seq, lp in finished]
  scored.sort(key=lambda item: -item[1])
  return scored


def reference_sampling_distribution(logits, temperature, top_k, top_p):
  """Probabilities actually sampled from, derived step by step in float64."""
  probs = np.exp(log_softmax64(np.asarray(logits, np.float64) / temperature))
  if top_k:
    kth_largest = np.sort(probs)[::-1][top_k - 1]
    probs = np.where(probs >= kth_largest, probs, 0.0)
    probs /= probs.sum()
  if top_p < 1.0:
    kept = np.zeros_like(probs, dtype=bool)
    mass = 0.0
    for token in np.argsort(-probs):
      kept[token] = True
      mass += probs[token]
      if mass >= top_p:
        break
    probs = np.where(kept, probs, 0.0)
    probs /= probs.sum()
  return probs


def sequence_log_prob(model, tokens, first_id, initial_sum, shift, start_step=0):
  """Unpenalized log-prob of a decoded (EOS-truncated, zero padded) row, and its length."""
  fed, total = [first_id], 0.0
  for i, token in enumerate(tokens):
    logits = model.reference_logits(fed, initial_sum, shift, start_step + i)
    total += log_softmax64(logits)[token]
    if token == EOS_ID:
      return total, i + 1
    fed.append(token)
  return total, len(tokens)


# --------------------------------------------------------------------------------------
# Small pieces
# --------------------------------------------------------------------------------------


def test_expand_for_beams_repeats_rows_batch_major_and_keeps_scalars():
  tree = {"x": jnp.array([[1, 2], [3, 4]]), "index": jnp.asarray(7)}
  expanded = decoding.expand_for_beams(tree, 3)
  np.testing.assert_array_equal(expanded["x"],
                                [[1, 2], [1, 2], [1, 2], [3, 4], [3, 4], [3, 4]])
  assert expanded["index"].shape == () and int(expanded["index"]) == 7


def test_score_sequences_matches_hand_computed_values():
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
  np.testing.assert_allclose(decoding.score_sequences(logits, targets, mask), expected,
                             rtol=1e-6)
  np.testing.assert_allclose(decoding.sequence_loss(logits, targets, mask),
                             [-v for v in expected], rtol=1e-6)


def test_length_penalty_formula():
  np.testing.assert_allclose(decoding.length_penalty(7, 0.6), (12 / 6) ** 0.6, rtol=1e-6)
  np.testing.assert_allclose(decoding.length_penalty(3, 0.0), 1.0)


def test_mask_helpers_set_finite_large_negative():
  logits = jnp.arange(5, dtype=jnp.float32)[None]
  forbidden = decoding.forbid([1, 3])(0, logits)
  np.testing.assert_array_equal(forbidden, [[0, -1e10, 2, -1e10, 4]])
  allowed = decoding.allow_only(np.array([True, False, False, True, False]))(0, logits)
  np.testing.assert_array_equal(allowed, [[0, -1e10, -1e10, 3, -1e10]])
  assert np.all(np.isfinite(jax.nn.softmax(allowed)))


# --------------------------------------------------------------------------------------
# Greedy
# --------------------------------------------------------------------------------------

FIRST_IDS = [0, 3, 5, 7]
INITIAL_SUMS = [0, 1, 2, 4]
SHIFT = 1


@pytest.mark.parametrize("start_step", [0, 3])
def test_greedy_matches_brute_force_loop(start_step):
  model = ToyModel(12, seed=0)
  max_len = 8
  tokens, log_probs = decoding.greedy_decode(
      model.tokens_to_logits, model.initial_cache(INITIAL_SUMS, SHIFT),
      jnp.array(FIRST_IDS), max_len, eos_id=EOS_ID, start_step=start_step)
  for row, (first_id, initial_sum) in enumerate(zip(FIRST_IDS, INITIAL_SUMS)):
    expected_tokens, expected_lp = brute_force_greedy(
        model, first_id, initial_sum, SHIFT, max_len, start_step)
    np.testing.assert_array_equal(tokens[row], expected_tokens)
    np.testing.assert_allclose(log_probs[row], expected_lp, rtol=1e-5)


def test_start_step_is_fed_to_model_and_changes_output():
  model = ToyModel(12, seed=1)
  model.record_steps = True
  cache = model.initial_cache(INITIAL_SUMS, SHIFT)
  decoding.greedy_decode(model.tokens_to_logits, cache, jnp.array(FIRST_IDS), 4,
                         eos_id=99, start_step=5)
  jax.effects_barrier()
  assert model.recorded_steps == [5, 6, 7, 8]
  at_0 = decoding.greedy_decode(model.tokens_to_logits, cache, jnp.array(FIRST_IDS), 4,
                                eos_id=99, start_step=0)[0]
  at_5 = decoding.greedy_decode(model.tokens_to_logits, cache, jnp.array(FIRST_IDS), 4,
                                eos_id=99, start_step=5)[0]
  assert not np.array_equal(at_0, at_5)


def test_eos_pads_with_zero_and_loop_exits_early():
  model = ToyModel(12, seed=2, force_eos_from_step=3)
  model.record_steps = True
  max_len = 10
  tokens, _ = decoding.greedy_decode(
      model.tokens_to_logits, model.initial_cache(INITIAL_SUMS, SHIFT),
      jnp.array(FIRST_IDS), max_len, eos_id=EOS_ID)
  jax.effects_barrier()
  end_positions = []
  for row, (first_id, initial_sum) in enumerate(zip(FIRST_IDS, INITIAL_SUMS)):
    expected, _ = brute_force_greedy(model, first_id, initial_sum, SHIFT, max_len)
    np.testing.assert_array_equal(tokens[row], expected)
    end = expected.index(EOS_ID)
    assert all(t == 0 for t in expected[end + 1:])
    end_positions.append(end)
  assert max(end_positions) <= 3
  # One model call per iteration, and none after the last row emitted EOS.
  assert model.recorded_steps == list(range(max(end_positions) + 1))


def test_stop_at_eos_false_keeps_generating():
  model = ToyModel(12, seed=2, force_eos_from_step=3)
  max_len = 6
  tokens, _ = decoding.greedy_decode(
      model.tokens_to_logits, model.initial_cache(INITIAL_SUMS, SHIFT),
      jnp.array(FIRST_IDS), max_len, eos_id=EOS_ID, stop_at_eos=False)
  for row, (first_id, initial_sum) in enumerate(zip(FIRST_IDS, INITIAL_SUMS)):
    expected, _ = brute_force_greedy(model, first_id, initial_sum, SHIFT, max_len,
                                     stop_at_eos=False)
    np.testing.assert_array_equal(tokens[row], expected)
  assert np.all(np.asarray(tokens[:, 3:]) == EOS_ID)


def test_forbid_greedy_token_picks_second_best():
  model = ToyModel(12, seed=3)
  first_id, initial_sum = 4, 2
  step0_logits = model.reference_logits([first_id], initial_sum, SHIFT, 0)
  best, second = np.argsort(-step0_logits)[:2]
  tokens, _ = decoding.greedy_decode(
      model.tokens_to_logits, model.initial_cache([initial_sum], SHIFT), jnp.array([first_id]),
      1, eos_id=EOS_ID, logit_mask_fn=decoding.forbid([int(best)]))
  assert int(tokens[0, 0]) == second


def test_allow_only_restricts_greedy_output_and_receives_absolute_step():
  model = ToyModel(12, seed=4)
  allowed = np.zeros(12, bool)
  allowed[[2, 5, 8, 9, EOS_ID]] = True
  seen_steps = []

  def recording_allow_only(step, logits):
    jax.debug.callback(lambda s: seen_steps.append(int(s)), step)
    return decoding.allow_only(allowed)(step, logits)

  max_len = 6
  tokens, log_probs = decoding.greedy_decode(
      model.tokens_to_logits, model.initial_cache(INITIAL_SUMS, SHIFT), jnp.array(FIRST_IDS),
      max_len, eos_id=EOS_ID, start_step=2, logit_mask_fn=recording_allow_only)
  jax.effects_barrier()
  assert seen_steps[0] == 2 and seen_steps == list(range(2, 2 + len(seen_steps)))
  for row, (first_id, initial_sum) in enumerate(zip(FIRST_IDS, INITIAL_SUMS)):
    expected, expected_lp = brute_force_greedy(model, first_id, initial_sum, SHIFT, max_len,
                                               start_step=2, allowed=allowed)
    np.testing.assert_array_equal(tokens[row], expected)
    np.testing.assert_allclose(log_probs[row], expected_lp, rtol=1e-5)
    emitted = [t for t in expected if t != 0]
    assert all(allowed[t] for t in emitted)


# --------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_k_one_and_tiny_top_p_equal_greedy(seed):
  model = ToyModel(12, seed=5)
  cache = model.initial_cache(INITIAL_SUMS, SHIFT)
  first_ids = jnp.array(FIRST_IDS)
  greedy_tokens, _ = decoding.greedy_decode(model.tokens_to_logits, cache, first_ids, 7,
                                            eos_id=EOS_ID)
  for kwargs in ({"top_k": 1}, {"top_p": 1e-6}):
    tokens, log_probs = decoding.temperature_sample(
        model.tokens_to_logits, cache, first_ids, 7, rng=jax.random.PRNGKey(seed),
        eos_id=EOS_ID, temperature=1.5, **kwargs)
    np.testing.assert_array_equal(tokens, greedy_tokens)
    # A single surviving token has probability 1 under the sampled distribution.
    np.testing.assert_allclose(log_probs, 0.0, atol=1e-6)


def test_sampling_is_reproducible_and_depends_on_rng():
  model = ToyModel(12, seed=6)
  cache = model.initial_cache([0] * 16, SHIFT)
  first_ids = jnp.full((16,), 3)
  sample = functools.partial(decoding.temperature_sample, model.tokens_to_logits, cache,
                             first_ids, 8, eos_id=EOS_ID, temperature=2.0)
  a = sample(rng=jax.random.PRNGKey(11))
  b = sample(rng=jax.random.PRNGKey(11))
  c = sample(rng=jax.random.PRNGKey(12))
  np.testing.assert_array_equal(a[0], b[0])
  np.testing.assert_array_equal(a[1], b[1])
  assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("temperature,top_k,top_p", [(0.7, 0, 1.0), (1.0, 4, 1.0),
                                                     (1.3, 0, 0.75), (0.9, 6, 0.8)])
def test_first_token_frequencies_match_filtered_distribution(temperature, top_k, top_p):
  model = ToyModel(12, seed=7)
  num_draws = 20000
  first_id, initial_sum = 2, 1
  tokens, log_probs = decoding.temperature_sample(
      model.tokens_to_logits, model.initial_cache([initial_sum] * num_draws, SHIFT),
      jnp.full((num_draws,), first_id), 1, rng=jax.random.PRNGKey(0), eos_id=EOS_ID,
      temperature=temperature, top_k=top_k, top_p=top_p)
  expected = reference_sampling_distribution(
      model.reference_logits([first_id], initial_sum, SHIFT, 0), temperature, top_k, top_p)
  counts = np.bincount(np.asarray(tokens[:, 0]), minlength=12)
  frequencies = counts / num_draws
  # Five binomial standard deviations per token, plus a little slack for tiny p.
  tolerance = 5 * np.sqrt(expected * (1 - expected) / num_draws) + 2e-3
  assert np.all(np.abs(frequencies - expected) <= tolerance), (frequencies, expected)
  assert np.all(counts[expected == 0] == 0)
  # Each draw reports log p(token) under the renormalized, filtered distribution.
  np.testing.assert_allclose(log_probs, np.log(expected[np.asarray(tokens[:, 0])]),
                             rtol=1e-4, atol=1e-5)


def test_multistep_sampling_stays_in_support_and_sums_log_probs():
  model = ToyModel(12, seed=8, force_eos_from_step=5)
  temperature, top_k, top_p = 1.2, 5, 0.85
  num_rows, max_len = 32, 8
  initial_sums = list(range(num_rows))
  first_ids = [r % 12 for r in range(num_rows)]
  tokens, log_probs = decoding.temperature_sample(
      model.tokens_to_logits, model.initial_cache(initial_sums, SHIFT), jnp.array(first_ids),
      max_len, rng=jax.random.PRNGKey(3), eos_id=EOS_ID, temperature=temperature,
      top_k=top_k, top_p=top_p)
  tokens = np.asarray(tokens)
  for row in range(num_rows):
    fed, total = [first_ids[row]], 0.0
    for i, token in enumerate(tokens[row]):
      probs = reference_sampling_distribution(
          model.reference_logits(fed, initial_sums[row], SHIFT, i), temperature, top_k, top_p)
      assert probs[token] > 0
      total += np.log(probs[token])
      if token == EOS_ID:
        assert np.all(tokens[row, i + 1:] == 0)
        break
      fed.append(int(token))
    np.testing.assert_allclose(log_probs[row], total, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------
# Beam search
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha,start_step", [(0.0, 0), (0.6, 2), (1.5, 0)])
def test_beam_search_with_wide_beam_equals_exhaustive_enumeration(alpha, start_step):
  vocab_size, max_len = 4, 4
  model = ToyModel(vocab_size, seed=9)
  first_ids, initial_sums = [0, 3], [0, 2]
  # 1 + 3 + 9 + 27 distinct EOS-terminated outputs plus 3**4 that never emit EOS. A beam
  # this wide keeps every hypothesis, so beam search must return all of them in order.
  num_sequences = sum((vocab_size - 1) ** t for t in range(max_len)) + (vocab_size - 1) ** max_len
  num_beams = num_sequences
  best_tokens, best_scores, all_tokens, all_scores = decoding.beam_search(
      model.tokens_to_logits,
      decoding.expand_for_beams(model.initial_cache(initial_sums, SHIFT), num_beams),
      jnp.array(first_ids), max_len, eos_id=EOS_ID, num_beams=num_beams, alpha=alpha,
      start_step=start_step)
  for row in range(2):
    expected = enumerate_all_sequences(model, first_ids[row], initial_sums[row], SHIFT,
                                       max_len, alpha, start_step)
    assert len(expected) == num_sequences
    np.testing.assert_array_equal(all_tokens[row], [seq for seq, _ in expected])
    np.testing.assert_allclose(all_scores[row], [s for _, s in expected], rtol=1e-5)
    np.testing.assert_array_equal(best_tokens[row], expected[0][0])
    np.testing.assert_allclose(best_scores[row], expected[0][1], rtol=1e-5)


def test_beam_search_respects_logit_mask_against_exhaustive():
  vocab_size, max_len = 4, 4
  model = ToyModel(vocab_size, seed=10)
  allowed = np.array([True, True, False, True])  # token 2 forbidden
  # Allowed outputs: EOS after 0..3 of the two other tokens, or 4 of them.
  num_allowed = sum(2 ** t for t in range(max_len)) + 2 ** max_len
  num_beams = num_allowed
  _, _, all_tokens, all_scores = decoding.beam_search(
      model.tokens_to_logits,
      decoding.expand_for_beams(model.initial_cache([1], SHIFT), num_beams),
      jnp.array([3]), max_len, eos_id=EOS_ID, num_beams=num_beams, alpha=0.6,
      logit_mask_fn=decoding.allow_only(allowed))
  expected = enumerate_all_sequences(model, 3, 1, SHIFT, max_len, 0.6, allowed=allowed)
  assert len(expected) == num_allowed
  np.testing.assert_array_equal(all_tokens[0], [seq for seq, _ in expected])
  np.testing.assert_allclose(all_scores[0], [s for _, s in expected], rtol=1e-5)
  assert not np.any(np.asarray(all_tokens) == 2)


@pytest.mark.parametrize("seed", range(6))
def test_single_beam_without_length_penalty_equals_greedy(seed):
  model = ToyModel(12, seed=20 + seed)
  num_rows, max_len = 8, 7
  initial_sums = list(range(num_rows))
  first_ids = jnp.arange(num_rows) % 12
  cache = model.initial_cache(initial_sums, SHIFT)
  # A frequent EOS makes rows finish at different steps and puts EOS among the runner-up
  # candidates, the case where a looser finished-pool rule would diverge from greedy.
  eos_id = seed % 12
  for mask_fn in (None, decoding.forbid([(seed + 5) % 12])):
    greedy_tokens, greedy_log_probs = decoding.greedy_decode(
        model.tokens_to_logits, cache, first_ids, max_len, eos_id=eos_id,
        logit_mask_fn=mask_fn)
    best_tokens, best_scores, _, _ = decoding.beam_search(
        model.tokens_to_logits, decoding.expand_for_beams(cache, 1), first_ids, max_len,
        eos_id=eos_id, num_beams=1, alpha=0.0, logit_mask_fn=mask_fn)
    np.testing.assert_array_equal(best_tokens, greedy_tokens)
    np.testing.assert_allclose(best_scores, greedy_log_probs, rtol=1e-6)


def test_beam_scores_match_independent_rescoring_with_narrow_beam():
  # A wrong cache gather would make a returned sequence's score disagree with the score
  # of the same tokens recomputed from scratch.
  model = ToyModel(12, seed=11)
  num_beams, max_len, alpha, start_step = 4, 6, 0.6, 1
  first_ids, initial_sums = [2, 9, 4], [0, 5, 1]
  _, _, all_tokens, all_scores = decoding.beam_search(
      model.tokens_to_logits,
      decoding.expand_for_beams(model.initial_cache(initial_sums, SHIFT), num_beams),
      jnp.array(first_ids), max_len, eos_id=EOS_ID, num_beams=num_beams, alpha=alpha,
      start_step=start_step)
  all_tokens, all_scores = np.asarray(all_tokens), np.asarray(all_scores)
  for row in range(3):
    assert np.all(np.diff(all_scores[row]) <= 0)
    assert len({tuple(seq) for seq in all_tokens[row]}) == num_beams
    for beam in range(num_beams):
      log_prob, length = sequence_log_prob(model, all_tokens[row, beam], first_ids[row],
                                           initial_sums[row], SHIFT, start_step)
      np.testing.assert_allclose(all_scores[row, beam], log_prob / gnmt_penalty(length, alpha),
                                 rtol=1e-5)


def test_beam_search_terminates_early_when_no_alive_beam_can_win():
  model = ToyModel(12, seed=12, force_eos_from_step=3)
  model.record_steps = True
  max_len = 12
  decoding.beam_search(
      model.tokens_to_logits, decoding.expand_for_beams(model.initial_cache([0, 1], SHIFT), 2),
      jnp.array([4, 6]), max_len, eos_id=EOS_ID, num_beams=2, alpha=0.6)
  jax.effects_barrier()
  # At step 3 EOS is near-certain, so both beams finish and every alive continuation is
  # ~30 nats worse: the search must stop right after that step.
  assert 1 <= len(model.recorded_steps) <= 4
  assert model.recorded_steps == list(range(len(model.recorded_steps)))


# --------------------------------------------------------------------------------------
# jit
# --------------------------------------------------------------------------------------


def test_all_decoders_run_under_jit_with_traced_step_and_temperature():
  model = ToyModel(12, seed=13)
  cache = model.initial_cache(INITIAL_SUMS, SHIFT)
  first_ids = jnp.array(FIRST_IDS)
  max_len, start_step = 6, 2

  @jax.jit
  def run_sample(cache, first_ids, rng, start_step, temperature):
    return decoding.temperature_sample(
        model.tokens_to_logits, cache, first_ids, max_len, rng=rng, eos_id=EOS_ID,
        start_step=start_step, temperature=temperature, top_k=5, top_p=0.9)

  @jax.jit
  def run_greedy(cache, first_ids, start_step):
    return decoding.greedy_decode(model.tokens_to_logits, cache, first_ids, max_len,
                                  eos_id=EOS_ID, start_step=start_step)

  @jax.jit
  def run_beam(cache, first_ids, start_step):
    return decoding.beam_search(model.tokens_to_logits, decoding.expand_for_beams(cache, 3),
                                first_ids, max_len, eos_id=EOS_ID, num_beams=3, alpha=0.6,
                                start_step=start_step)

  greedy_tokens, _ = run_greedy(cache, first_ids, start_step)
  for row, (first_id, initial_sum) in enumerate(zip(FIRST_IDS, INITIAL_SUMS)):
    expected, _ = brute_force_greedy(model, first_id, initial_sum, SHIFT, max_len, start_step)
    np.testing.assert_array_equal(greedy_tokens[row], expected)

  # A traced temperature of 0 must take the greedy branch.
  zero_temp_tokens, _ = run_sample(cache, first_ids, jax.random.PRNGKey(0), start_step, 0.0)
  np.testing.assert_array_equal(zero_temp_tokens, greedy_tokens)
  jit_sample = run_sample(cache, first_ids, jax.random.PRNGKey(4), start_step, 0.8)
  eager_sample = decoding.temperature_sample(
      model.tokens_to_logits, cache, first_ids, max_len, rng=jax.random.PRNGKey(4),
      eos_id=EOS_ID, start_step=start_step, temperature=0.8, top_k=5, top_p=0.9)
  np.testing.assert_array_equal(jit_sample[0], eager_sample[0])

  jit_beam = run_beam(cache, first_ids, start_step)
  eager_beam = decoding.beam_search(
      model.tokens_to_logits, decoding.expand_for_beams(cache, 3), first_ids, max_len,
      eos_id=EOS_ID, num_beams=3, alpha=0.6, start_step=start_step)
  np.testing.assert_array_equal(jit_beam[2], eager_beam[2])
  np.testing.assert_allclose(jit_beam[3], eager_beam[3], rtol=1e-6)
