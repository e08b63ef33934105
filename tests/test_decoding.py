"""Decoding tests against a toy step model whose outputs are recomputed independently in numpy.

The toy model's logits depend on the fed token, the absolute step and a per-row cache (a
running sum of fed tokens, plus a shared scalar leaf), so a wrong beam gather of the cache,
a wrong step offset or a wrong fed token all change the decoded sequences.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from unified_io.model import decoding

EOS_ID = 1


RECORDED_STEPS = []


def toy_tokens_to_logits(params, record_steps=False):
  """Step function of the toy model; `params` may be traced so jitted runners are shared."""

  def tokens_to_logits(token_ids, cache, step):
    fed = token_ids[:, 0]
    token_sum = cache["token_sum"][:, 0] + fed
    logits = (
      params["table"][fed]
      + params["step_bias"][step]
      + params["cache_table"][(token_sum + cache["shift"]) % 3]
    )
    if record_steps:
      jax.debug.callback(lambda s: RECORDED_STEPS.append(int(s)), step)
    return logits, {"token_sum": token_sum[:, None], "shift": cache["shift"]}

  return tokens_to_logits


class ToyModel:
  """logits = table[fed] + step_bias[step] + cache_table[(running_sum + shift) % 3].

  The cache holds the per-row running sum of fed tokens ([N, 1]) and a shared scalar shift.
  """

  def __init__(
    self,
    vocab_size,
    seed,
    max_steps=32,
    eos_id=EOS_ID,
    force_eos_from_step=None,
    transition_probs=None,
  ):
    rng = np.random.default_rng(seed)
    self.vocab_size = vocab_size
    self.table = (2.0 * rng.normal(size=(vocab_size, vocab_size))).astype(np.float32)
    self.step_bias = rng.normal(size=(max_steps, vocab_size)).astype(np.float32)
    self.cache_table = (2.0 * rng.normal(size=(3, vocab_size))).astype(np.float32)
    if transition_probs is not None:
      # A hand-specified Markov chain: next-token probabilities depend on the fed token only.
      self.table = np.log(np.asarray(transition_probs, np.float64)).astype(np.float32)
      self.step_bias[:] = 0.0
      self.cache_table[:] = 0.0
    if force_eos_from_step is not None:
      self.step_bias[force_eos_from_step:, eos_id] += 30.0
    self.params = {
      "table": jnp.asarray(self.table),
      "step_bias": jnp.asarray(self.step_bias),
      "cache_table": jnp.asarray(self.cache_table),
    }
    self.tokens_to_logits = toy_tokens_to_logits(self.params)

  def initial_cache(self, initial_sums, shift=1):
    return {
      "token_sum": jnp.asarray(initial_sums, jnp.int32)[:, None],
      "shift": jnp.asarray(shift, jnp.int32),
    }

  def reference_logits(self, fed_history, initial_sum, shift, step):
    """float64 logits after feeding `fed_history` (last element is the current token)."""
    running_sum = initial_sum + sum(fed_history)
    return (
      self.table[fed_history[-1]].astype(np.float64)
      + self.step_bias[step]
      + self.cache_table[(running_sum + shift) % 3]
    )


# Jitted runners take the toy parameters, EOS id, start step and optional allow-mask as
# traced arguments, so tests with different seeds share one compilation per shape.


def _mask_fn(allowed):
  return None if allowed is None else decoding.allow_only(allowed)


@functools.partial(jax.jit, static_argnames=("max_len", "stop_at_eos", "record_steps"))
def jit_greedy(
  params,
  cache,
  first_ids,
  *,
  max_len,
  eos_id=EOS_ID,
  start_step=0,
  allowed=None,
  stop_at_eos=True,
  record_steps=False,
):
  return decoding.greedy_decode(
    toy_tokens_to_logits(params, record_steps),
    cache,
    first_ids,
    max_len,
    eos_id=eos_id,
    start_step=start_step,
    stop_at_eos=stop_at_eos,
    logit_mask_fn=_mask_fn(allowed),
  )


@functools.partial(jax.jit, static_argnames=("max_len", "top_k", "top_p"))
def jit_sample(
  params,
  cache,
  first_ids,
  *,
  max_len,
  rng,
  temperature,
  top_k=0,
  top_p=1.0,
  eos_id=EOS_ID,
  start_step=0,
):
  return decoding.temperature_sample(
    toy_tokens_to_logits(params),
    cache,
    first_ids,
    max_len,
    rng=rng,
    eos_id=eos_id,
    start_step=start_step,
    temperature=temperature,
    top_k=top_k,
    top_p=top_p,
  )


@functools.partial(jax.jit, static_argnames=("max_len", "num_beams", "record_steps"))
def jit_beam(
  params,
  cache,
  first_ids,
  *,
  max_len,
  num_beams,
  alpha,
  eos_id=EOS_ID,
  start_step=0,
  allowed=None,
  record_steps=False,
):
  return decoding.beam_search(
    toy_tokens_to_logits(params, record_steps),
    decoding.expand_for_beams(cache, num_beams),
    first_ids,
    max_len,
    eos_id=eos_id,
    num_beams=num_beams,
    alpha=alpha,
    start_step=start_step,
    logit_mask_fn=_mask_fn(allowed),
  )


def log_softmax64(logits):
  logits = np.asarray(logits, np.float64)
  shifted = logits - logits.max()
  return shifted - np.log(np.exp(shifted).sum())


def apply_reference_mask(logits, allowed):
  if allowed is None:
    return logits
  return np.where(allowed, logits, -1e10)


def brute_force_greedy(
  model, first_id, initial_sum, shift, max_len, start_step=0, allowed=None, stop_at_eos=True
):
  fed, tokens, total_log_prob = [first_id], [], 0.0
  for i in range(max_len):
    logits = apply_reference_mask(
      model.reference_logits(fed, initial_sum, shift, start_step + i), allowed
    )
    token = int(np.argmax(logits))
    total_log_prob += log_softmax64(logits)[token]
    tokens.append(token)
    if stop_at_eos and token == EOS_ID:
      break
    fed.append(token)
  return tokens + [0] * (max_len - len(tokens)), total_log_prob


def gnmt_penalty(length, alpha):
  return ((5.0 + length) / 6.0) ** alpha


def enumerate_all_sequences(
  model, first_id, initial_sum, shift, max_len, alpha, start_step=0, allowed=None
):
  """Every distinct output (truncated at EOS), with its penalized score, best first."""
  finished = []

  def extend(prefix, fed, log_prob):
    if len(prefix) == max_len:
      finished.append((prefix, log_prob))
      return
    logits = apply_reference_mask(
      model.reference_logits(fed, initial_sum, shift, start_step + len(prefix)), allowed
    )
    token_log_probs = log_softmax64(logits)
    for token in range(model.vocab_size):
      if allowed is not None and not allowed[token]:
        continue
      if token == EOS_ID:
        finished.append((prefix + [token], log_prob + token_log_probs[token]))
      else:
        extend(prefix + [token], fed + [token], log_prob + token_log_probs[token])

  extend([], [first_id], 0.0)
  scored = [
    (seq + [0] * (max_len - len(seq)), lp / gnmt_penalty(len(seq), alpha)) for seq, lp in finished
  ]
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
  np.testing.assert_array_equal(expanded["x"], [[1, 2], [1, 2], [1, 2], [3, 4], [3, 4], [3, 4]])
  assert expanded["index"].shape == () and int(expanded["index"]) == 7


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
MAX_LEN = 8


def toy_inputs(model):
  return model.params, model.initial_cache(INITIAL_SUMS, SHIFT), jnp.array(FIRST_IDS)


def test_stop_against_group_masks_eos_only_below_the_group_total():
  # Group ids 3..5, EOS id 1. Row 0: three group logits of 0 total log(3) = 1.0986 > 1.0,
  # so EOS (the single likeliest id) is masked and argmax moves to id 2. Row 1: EOS at 1.2
  # beats the group's total and stays; nothing else changes in either row.
  logits = jnp.array([[0.0, 1.0, 0.5, 0.0, 0.0, 0.0], [0.0, 1.2, 0.5, 0.0, 0.0, 0.0]])
  out = np.asarray(decoding.stop_against_group(1, 3, 6)(0, logits))
  np.testing.assert_array_equal(out[0], [0.0, -1e10, 0.5, 0.0, 0.0, 0.0])
  np.testing.assert_array_equal(out[1], np.asarray(logits[1]))
  assert int(np.argmax(out[0])) == 2 and int(np.argmax(out[1])) == 1


def test_greedy_matches_brute_force_loop():
  for seed, start_step in [(0, 0), (0, 3), (1, 0)]:
    model = ToyModel(12, seed=seed)
    tokens, log_probs = jit_greedy(*toy_inputs(model), max_len=MAX_LEN, start_step=start_step)
    for row, (first_id, initial_sum) in enumerate(zip(FIRST_IDS, INITIAL_SUMS)):
      expected_tokens, expected_lp = brute_force_greedy(
        model, first_id, initial_sum, SHIFT, MAX_LEN, start_step
      )
      np.testing.assert_array_equal(tokens[row], expected_tokens)
      np.testing.assert_allclose(log_probs[row], expected_lp, rtol=1e-5)


def test_start_step_is_fed_to_model_and_changes_output():
  model = ToyModel(12, seed=1)
  RECORDED_STEPS.clear()
  at_5, _ = jit_greedy(
    *toy_inputs(model), max_len=MAX_LEN, eos_id=99, start_step=5, record_steps=True
  )
  jax.effects_barrier()
  assert RECORDED_STEPS == list(range(5, 5 + MAX_LEN))
  at_0, _ = jit_greedy(*toy_inputs(model), max_len=MAX_LEN, eos_id=99, start_step=0)
  assert not np.array_equal(at_0, at_5)


def test_eos_pads_with_zero_and_loop_exits_early():
  model = ToyModel(12, seed=2, force_eos_from_step=3)
  RECORDED_STEPS.clear()
  tokens, _ = jit_greedy(*toy_inputs(model), max_len=MAX_LEN, record_steps=True)
  jax.effects_barrier()
  end_positions = []
  for row, (first_id, initial_sum) in enumerate(zip(FIRST_IDS, INITIAL_SUMS)):
    expected, _ = brute_force_greedy(model, first_id, initial_sum, SHIFT, MAX_LEN)
    np.testing.assert_array_equal(tokens[row], expected)
    end = expected.index(EOS_ID)
    assert all(t == 0 for t in expected[end + 1 :])
    end_positions.append(end)
  assert max(end_positions) <= 3
  # One model call per iteration, and none after the last row emitted EOS.
  assert RECORDED_STEPS == list(range(max(end_positions) + 1))


def test_stop_at_eos_false_keeps_generating():
  model = ToyModel(12, seed=2, force_eos_from_step=3)
  tokens, _ = jit_greedy(*toy_inputs(model), max_len=MAX_LEN, stop_at_eos=False)
  for row, (first_id, initial_sum) in enumerate(zip(FIRST_IDS, INITIAL_SUMS)):
    expected, _ = brute_force_greedy(
      model, first_id, initial_sum, SHIFT, MAX_LEN, stop_at_eos=False
    )
    np.testing.assert_array_equal(tokens[row], expected)
  assert np.all(np.asarray(tokens[:, 3:]) == EOS_ID)


def test_return_cache_is_state_after_last_executed_step():
  # The toy cache is the running sum of fed tokens, so the final cache is known from the
  # brute-force tokens: every fed token is the start token or a chosen one, and rows that
  # finished early are fed the pad id 0 until the loop exits.
  for force_eos_from_step, stop_at_eos in [(None, True), (3, True), (3, False)]:
    model = ToyModel(12, seed=15, force_eos_from_step=force_eos_from_step)
    _, cache, first_ids = toy_inputs(model)
    tokens, _, final_cache = decoding.greedy_decode(
      model.tokens_to_logits,
      cache,
      first_ids,
      MAX_LEN,
      eos_id=EOS_ID,
      stop_at_eos=stop_at_eos,
      return_cache=True,
    )
    tokens = np.asarray(tokens)
    steps_run = MAX_LEN
    if stop_at_eos and all(EOS_ID in row for row in tokens):
      steps_run = max(list(row).index(EOS_ID) for row in tokens) + 1
    if force_eos_from_step is not None:
      assert steps_run == (4 if stop_at_eos else MAX_LEN)
    expected_sums = [
      initial_sum + first_id + int(tokens[row, : steps_run - 1].sum())
      for row, (first_id, initial_sum) in enumerate(zip(FIRST_IDS, INITIAL_SUMS))
    ]
    np.testing.assert_array_equal(final_cache["token_sum"][:, 0], expected_sums)
    assert int(final_cache["shift"]) == SHIFT


def test_forbid_greedy_token_picks_second_best():
  model = ToyModel(12, seed=3)
  first_id, initial_sum = 4, 2
  step0_logits = model.reference_logits([first_id], initial_sum, SHIFT, 0)
  best, second = np.argsort(-step0_logits)[:2]
  tokens, _ = decoding.greedy_decode(
    model.tokens_to_logits,
    model.initial_cache([initial_sum], SHIFT),
    jnp.array([first_id]),
    1,
    eos_id=EOS_ID,
    logit_mask_fn=decoding.forbid([int(best)]),
  )
  assert int(tokens[0, 0]) == second


def test_allow_only_restricts_greedy_output_and_receives_absolute_step():
  model = ToyModel(12, seed=4)
  allowed = np.zeros(12, bool)
  allowed[[2, 5, 8, 9, EOS_ID]] = True
  seen_steps = []

  def recording_allow_only(step, logits):
    jax.debug.callback(lambda s: seen_steps.append(int(s)), step)
    return decoding.allow_only(allowed)(step, logits)

  # Eager on purpose: the decoders must also work outside an enclosing jit.
  tokens, log_probs = decoding.greedy_decode(
    model.tokens_to_logits,
    model.initial_cache(INITIAL_SUMS, SHIFT),
    jnp.array(FIRST_IDS),
    MAX_LEN,
    eos_id=EOS_ID,
    start_step=2,
    logit_mask_fn=recording_allow_only,
  )
  jax.effects_barrier()
  assert seen_steps[0] == 2 and seen_steps == list(range(2, 2 + len(seen_steps)))
  for row, (first_id, initial_sum) in enumerate(zip(FIRST_IDS, INITIAL_SUMS)):
    expected, expected_lp = brute_force_greedy(
      model, first_id, initial_sum, SHIFT, MAX_LEN, start_step=2, allowed=allowed
    )
    np.testing.assert_array_equal(tokens[row], expected)
    np.testing.assert_allclose(log_probs[row], expected_lp, rtol=1e-5)
    assert all(allowed[t] for t in expected if t != 0)


# --------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------


def test_top_k_one_and_tiny_top_p_equal_greedy():
  model = ToyModel(12, seed=5)
  greedy_tokens, _ = jit_greedy(*toy_inputs(model), max_len=MAX_LEN)
  for seed in range(3):
    for filtering in ({"top_k": 1}, {"top_p": 1e-6}):
      tokens, log_probs = jit_sample(
        *toy_inputs(model),
        max_len=MAX_LEN,
        rng=jax.random.PRNGKey(seed),
        temperature=1.5,
        **filtering,
      )
      np.testing.assert_array_equal(tokens, greedy_tokens)
      # A single surviving token has probability 1 under the sampled distribution.
      np.testing.assert_allclose(log_probs, 0.0, atol=1e-6)


def test_sampling_is_reproducible_and_depends_on_rng():
  model = ToyModel(12, seed=6)
  sample = functools.partial(jit_sample, *toy_inputs(model), max_len=MAX_LEN, temperature=2.0)
  a = sample(rng=jax.random.PRNGKey(11))
  b = sample(rng=jax.random.PRNGKey(11))
  c = sample(rng=jax.random.PRNGKey(12))
  np.testing.assert_array_equal(a[0], b[0])
  np.testing.assert_array_equal(a[1], b[1])
  assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("temperature,top_k,top_p", [(0.7, 0, 1.0), (1.3, 0, 0.75), (0.9, 4, 0.8)])
def test_first_token_frequencies_match_filtered_distribution(temperature, top_k, top_p):
  model = ToyModel(12, seed=7)
  num_draws = 20000
  first_id, initial_sum = 2, 1
  tokens, log_probs = jit_sample(
    model.params,
    model.initial_cache([initial_sum] * num_draws, SHIFT),
    jnp.full((num_draws,), first_id),
    max_len=1,
    rng=jax.random.PRNGKey(0),
    temperature=temperature,
    top_k=top_k,
    top_p=top_p,
  )
  expected = reference_sampling_distribution(
    model.reference_logits([first_id], initial_sum, SHIFT, 0), temperature, top_k, top_p
  )
  counts = np.bincount(np.asarray(tokens[:, 0]), minlength=12)
  frequencies = counts / num_draws
  # Five binomial standard deviations per token, plus a little slack for tiny p.
  tolerance = 5 * np.sqrt(expected * (1 - expected) / num_draws) + 2e-3
  assert np.all(np.abs(frequencies - expected) <= tolerance), (frequencies, expected)
  assert np.all(counts[expected == 0] == 0)
  # Each draw reports log p(token) under the renormalized, filtered distribution.
  np.testing.assert_allclose(
    log_probs, np.log(expected[np.asarray(tokens[:, 0])]), rtol=1e-4, atol=1e-5
  )


def test_multistep_sampling_stays_in_support_and_sums_log_probs():
  model = ToyModel(12, seed=8, force_eos_from_step=5)
  temperature, top_k, top_p = 1.2, 5, 0.85
  num_rows = 32
  initial_sums = list(range(num_rows))
  first_ids = [r % 12 for r in range(num_rows)]
  tokens, log_probs = jit_sample(
    model.params,
    model.initial_cache(initial_sums, SHIFT),
    jnp.array(first_ids),
    max_len=MAX_LEN,
    rng=jax.random.PRNGKey(3),
    temperature=temperature,
    top_k=top_k,
    top_p=top_p,
  )
  tokens = np.asarray(tokens)
  for row in range(num_rows):
    fed, total = [first_ids[row]], 0.0
    for i, token in enumerate(tokens[row]):
      probs = reference_sampling_distribution(
        model.reference_logits(fed, initial_sums[row], SHIFT, i), temperature, top_k, top_p
      )
      assert probs[token] > 0
      total += np.log(probs[token])
      if token == EOS_ID:
        assert np.all(tokens[row, i + 1 :] == 0)
        break
      fed.append(int(token))
    np.testing.assert_allclose(log_probs[row], total, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------
# Beam search
# --------------------------------------------------------------------------------------


def test_beam_search_with_wide_beam_equals_exhaustive_enumeration():
  vocab_size, max_len = 4, 4
  first_ids, initial_sums = [0, 3], [0, 2]
  # 1 + 3 + 9 + 27 distinct EOS-terminated outputs plus 3**4 that never emit EOS. A beam
  # this wide keeps every hypothesis, so beam search must return all of them in order.
  num_sequences = sum((vocab_size - 1) ** t for t in range(max_len)) + (vocab_size - 1) ** max_len
  for seed, alpha, start_step in [(9, 0.0, 0), (9, 0.6, 2), (10, 1.5, 0)]:
    model = ToyModel(vocab_size, seed=seed)
    best_tokens, best_scores, all_tokens, all_scores = jit_beam(
      model.params,
      model.initial_cache(initial_sums, SHIFT),
      jnp.array(first_ids),
      max_len=max_len,
      num_beams=num_sequences,
      alpha=alpha,
      start_step=start_step,
    )
    for row in range(2):
      expected = enumerate_all_sequences(
        model, first_ids[row], initial_sums[row], SHIFT, max_len, alpha, start_step
      )
      assert len(expected) == num_sequences
      np.testing.assert_array_equal(all_tokens[row], [seq for seq, _ in expected])
      np.testing.assert_allclose(all_scores[row], [s for _, s in expected], rtol=1e-5)
      np.testing.assert_array_equal(best_tokens[row], expected[0][0])
      np.testing.assert_allclose(best_scores[row], expected[0][1], rtol=1e-5)


def test_beam_search_respects_logit_mask_against_exhaustive():
  vocab_size, max_len = 4, 4
  model = ToyModel(vocab_size, seed=11)
  allowed = np.array([True, True, False, True])  # token 2 forbidden
  # Allowed outputs: EOS after 0..3 of the two other tokens, or 4 of them.
  num_allowed = sum(2**t for t in range(max_len)) + 2**max_len
  _, _, all_tokens, all_scores = jit_beam(
    model.params,
    model.initial_cache([1], SHIFT),
    jnp.array([3]),
    max_len=max_len,
    num_beams=num_allowed,
    alpha=0.6,
    allowed=allowed,
  )
  expected = enumerate_all_sequences(model, 3, 1, SHIFT, max_len, 0.6, allowed=allowed)
  assert len(expected) == num_allowed
  np.testing.assert_array_equal(all_tokens[0], [seq for seq, _ in expected])
  np.testing.assert_allclose(all_scores[0], [s for _, s in expected], rtol=1e-5)
  assert not np.any(np.asarray(all_tokens) == 2)


def test_single_beam_without_length_penalty_equals_greedy():
  for seed in range(8):
    model = ToyModel(12, seed=20 + seed)
    # Varying EOS ids make rows finish at different steps and put EOS among the runner-up
    # candidates, the case where a looser finished-pool rule would diverge from greedy.
    eos_id = seed % 12
    forbid_one = np.arange(12) != (seed + 5) % 12
    for allowed in (None, forbid_one):
      greedy_tokens, greedy_log_probs = jit_greedy(
        *toy_inputs(model), max_len=MAX_LEN, eos_id=eos_id, allowed=allowed
      )
      best_tokens, best_scores, _, _ = jit_beam(
        *toy_inputs(model), max_len=MAX_LEN, num_beams=1, alpha=0.0, eos_id=eos_id, allowed=allowed
      )
      np.testing.assert_array_equal(best_tokens, greedy_tokens)
      np.testing.assert_allclose(best_scores, greedy_log_probs, rtol=1e-6)


def test_beam_scores_match_independent_rescoring_with_narrow_beam():
  # A wrong cache gather would make a returned sequence's score disagree with the score
  # of the same tokens recomputed from scratch.
  model = ToyModel(12, seed=12)
  num_beams, alpha, start_step = 4, 0.6, 1
  all_tokens, all_scores = jit_beam(
    *toy_inputs(model), max_len=MAX_LEN, num_beams=num_beams, alpha=alpha, start_step=start_step
  )[2:]
  all_tokens, all_scores = np.asarray(all_tokens), np.asarray(all_scores)
  for row, (first_id, initial_sum) in enumerate(zip(FIRST_IDS, INITIAL_SUMS)):
    assert np.all(np.diff(all_scores[row]) <= 0)
    assert len({tuple(seq) for seq in all_tokens[row]}) == num_beams
    for beam in range(num_beams):
      log_prob, length = sequence_log_prob(
        model, all_tokens[row, beam], first_id, initial_sum, SHIFT, start_step
      )
      np.testing.assert_allclose(
        all_scores[row, beam], log_prob / gnmt_penalty(length, alpha), rtol=1e-5
      )


def test_beam_search_terminates_early_when_no_alive_beam_can_win():
  model = ToyModel(12, seed=13, force_eos_from_step=3)
  RECORDED_STEPS.clear()
  jit_beam(*toy_inputs(model), max_len=MAX_LEN, num_beams=2, alpha=0.6, record_steps=True)
  jax.effects_barrier()
  # From step 3 on EOS is near-certain, so both beams finish and every alive continuation
  # is ~30 nats worse: the search must stop right after that step.
  assert 1 <= len(RECORDED_STEPS) <= 4
  assert RECORDED_STEPS == list(range(len(RECORDED_STEPS)))


def test_beam_search_keeps_going_while_an_alive_beam_can_still_win():
  # Hand-built chain (EOS = 1, A = 2): from the start token EOS is the most likely token
  # (0.5) and A the runner-up (0.35); after A, A repeats with probability 0.97. With
  # alpha = 2 the finished "EOS" hypothesis scores log(0.5) / 1 = -0.69. The alive A beam
  # can still reach log(0.35) / ((5 + 6) / 6) ** 2 = -0.31 at max_len 6 (judged at the next
  # length only it would look hopeless: log(0.35) / (7 / 6) ** 2 = -0.77), so the search
  # must not stop after step 0: the best output is A repeated to max_len,
  # (log 0.35 + 5 log 0.97) / (11 / 6) ** 2 = -0.358, ahead of EOS alone.
  transition_probs = [
    [0.005, 0.5, 0.35, 0.145],
    [0.1, 0.2, 0.3, 0.4],
    [0.005, 0.01, 0.97, 0.015],
    [0.2, 0.3, 0.1, 0.4],
  ]
  model = ToyModel(4, seed=0, transition_probs=transition_probs)
  max_len, alpha = 6, 2.0
  expected_best = (math.log(0.35) + 5 * math.log(0.97)) / (11 / 6) ** 2
  expected = enumerate_all_sequences(model, 0, 0, SHIFT, max_len, alpha)
  assert expected[0][0] == [2] * max_len and expected[1][0] == [EOS_ID] + [0] * 5
  np.testing.assert_allclose(expected[0][1], expected_best, rtol=1e-6)
  for num_beams in (1, 2):
    RECORDED_STEPS.clear()
    best_tokens, best_scores, all_tokens, all_scores = jit_beam(
      model.params,
      model.initial_cache([0], SHIFT),
      jnp.array([0]),
      max_len=max_len,
      num_beams=num_beams,
      alpha=alpha,
      record_steps=True,
    )
    jax.effects_barrier()
    assert RECORDED_STEPS == list(range(max_len))
    np.testing.assert_array_equal(best_tokens[0], expected[0][0])
    np.testing.assert_allclose(best_scores[0], expected_best, rtol=1e-5)
    np.testing.assert_array_equal(all_tokens[0], [seq for seq, _ in expected[:num_beams]])
    np.testing.assert_allclose(all_scores[0], [s for _, s in expected[:num_beams]], rtol=1e-5)


# --------------------------------------------------------------------------------------
# Eager use and traced arguments
# --------------------------------------------------------------------------------------


def test_eager_beam_search_and_traced_zero_temperature():
  model = ToyModel(12, seed=14)
  params, cache, first_ids = toy_inputs(model)
  start_step = 2
  greedy_tokens, _ = jit_greedy(params, cache, first_ids, max_len=MAX_LEN, start_step=start_step)
  # A traced temperature of 0 must take the greedy branch despite the filters.
  zero_temp_tokens, _ = jit_sample(
    params,
    cache,
    first_ids,
    max_len=MAX_LEN,
    rng=jax.random.PRNGKey(0),
    temperature=0.0,
    top_k=5,
    top_p=0.9,
    start_step=start_step,
  )
  np.testing.assert_array_equal(zero_temp_tokens, greedy_tokens)

  jitted = jit_beam(
    params, cache, first_ids, max_len=MAX_LEN, num_beams=3, alpha=0.6, start_step=start_step
  )
  eager = decoding.beam_search(
    model.tokens_to_logits,
    decoding.expand_for_beams(cache, 3),
    first_ids,
    MAX_LEN,
    eos_id=EOS_ID,
    num_beams=3,
    alpha=0.6,
    start_step=start_step,
  )
  np.testing.assert_array_equal(jitted[2], eager[2])
  np.testing.assert_allclose(jitted[3], eager[3], rtol=1e-6)
