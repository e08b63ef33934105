"""Autoregressive decoding for the Unified-IO decoder: sampling, greedy and beam search.

All decoders drive the model through one incremental step function,

    tokens_to_logits(token_ids: int32[N, 1], cache, step: int32[]) -> (float32[N, V], cache)

where N is the flat batch (batch-major when beams are involved: row b * num_beams + k is
beam k of example b), `step` is the absolute decoder position of the fed token, and every
cache leaf with ndim >= 1 has N as its leading axis. Leaves with ndim 0 (e.g. a shared
position counter) are carried along untouched by beam reordering.

Everything is written with `jax.lax.while_loop` over a static `max_len` so the decoders can
be jitted with the step function traced inside; loops exit as soon as every sequence is
finished.

Selected token ids are written into a [batch, max_len] buffer: position i holds the token
chosen at iteration i (which was predicted from the token fed at decoder position
start_step + i). Positions after a sequence's EOS hold 0 (the pad id).
"""

from typing import Any, Callable, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any
TokensToLogitsFn = Callable[[jnp.ndarray, PyTree, jnp.ndarray], Tuple[jnp.ndarray, PyTree]]
LogitMaskFn = Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]

PAD_ID = 0

# Disallowed logits get a large but finite value: -inf would turn a fully masked row, or
# arithmetic such as `masked - max`, into NaN, while -1e10 still has exactly zero softmax
# mass in float32 next to any ordinary logit.
MASKED_LOGIT = -1e10

# Internal "impossible" marker for beam search bookkeeping (dead beams, empty finished
# slots). Unlike model logits these never pass through a softmax, so -inf is safe and keeps
# them strictly below any real (even heavily masked) hypothesis.
_IMPOSSIBLE = -jnp.inf


# ---------------------------------------------------------------------------------------
# Logit masking hooks
# ---------------------------------------------------------------------------------------


def allow_only(allowed_ids_mask: Union[np.ndarray, jnp.ndarray]) -> LogitMaskFn:
  """Returns a logit_mask_fn that keeps only the vocabulary ids where `allowed_ids_mask` is True.

  Args:
    allowed_ids_mask: bool[V] over the full vocabulary.
  """
  allowed_ids_mask = jnp.asarray(allowed_ids_mask, dtype=bool)

  def mask_fn(step, logits):
    del step
    return jnp.where(allowed_ids_mask, logits, jnp.asarray(MASKED_LOGIT, logits.dtype))

  return mask_fn


def forbid(ids: Union[int, Sequence[int], np.ndarray, jnp.ndarray]) -> LogitMaskFn:
  """Returns a logit_mask_fn that makes the given vocabulary ids unselectable."""
  ids = jnp.atleast_1d(jnp.asarray(ids, dtype=jnp.int32))

  def mask_fn(step, logits):
    del step
    return logits.at[..., ids].set(MASKED_LOGIT)

  return mask_fn


def stop_against_group(eos_id: int, group_start: int, group_stop: int) -> LogitMaskFn:
  """Returns a logit_mask_fn under which EOS is only chosen when it is likelier than the
  ids [group_start, group_stop) together.

  For set-like outputs (a list of boxes) greedy decoding otherwise compares EOS with the
  single likeliest next box token: a model sure that another box follows but unsure where
  (its mass spread over many location bins) stops, and a localization model that gives
  the empty answer 25% stops before every first box. Where the group's total probability
  exceeds EOS's, EOS is masked; elsewhere the logits are unchanged.
  """

  def mask_fn(step, logits):
    del step
    ids = jnp.arange(logits.shape[-1])
    in_group = (ids >= group_start) & (ids < group_stop)
    group = jax.nn.logsumexp(jnp.where(in_group, logits, -jnp.inf), axis=-1)
    eos = logits[..., eos_id]
    masked = jnp.where(group > eos, jnp.asarray(MASKED_LOGIT, logits.dtype), eos)
    return logits.at[..., eos_id].set(masked)

  return mask_fn


def _apply_logit_mask(logit_mask_fn: Optional[LogitMaskFn], step, logits):
  logits = logits.astype(jnp.float32)
  if logit_mask_fn is None:
    return logits
  return logit_mask_fn(step, logits).astype(jnp.float32)


# ---------------------------------------------------------------------------------------
# Beam bookkeeping helpers
# ---------------------------------------------------------------------------------------


def expand_for_beams(tree: PyTree, num_beams: int) -> PyTree:
  """Repeats every batch row `num_beams` times along axis 0, batch-major.

  [x0, x1] -> [x0, x0, ..., x1, x1, ...]. Scalar (ndim 0) leaves are returned unchanged,
  matching the cache contract that they are shared across the batch.
  """

  def expand(leaf):
    leaf = jnp.asarray(leaf)
    if leaf.ndim == 0:
      return leaf
    return jnp.repeat(leaf, num_beams, axis=0)

  return jax.tree.map(expand, tree)


def _gather_flat_rows(tree: PyTree, flat_row_ids: jnp.ndarray) -> PyTree:
  """Reorders axis 0 of every non-scalar leaf by `flat_row_ids`."""

  def gather(leaf):
    if jnp.ndim(leaf) == 0:
      return leaf
    return jnp.take(leaf, flat_row_ids, axis=0)

  return jax.tree.map(gather, tree)


def length_penalty(length, alpha: float) -> jnp.ndarray:
  """GNMT/T5 length penalty ((5 + length) / 6) ** alpha."""
  length = jnp.asarray(length, jnp.float32)
  return ((5.0 + length) / 6.0) ** alpha


# ---------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------


def _filter_top_k(logits: jnp.ndarray, top_k: int) -> jnp.ndarray:
  """Masks everything below the k-th largest logit (ties with the k-th are kept)."""
  vocab_size = logits.shape[-1]
  if top_k <= 0 or top_k >= vocab_size:
    return logits
  kth_largest = jax.lax.top_k(logits, top_k)[0][..., -1:]
  return jnp.where(logits < kth_largest, MASKED_LOGIT, logits)


def _filter_top_p(logits: jnp.ndarray, top_p) -> jnp.ndarray:
  """Nucleus filtering: keeps the smallest highest-probability set with mass >= top_p.

  A token is kept iff the probability mass of all strictly higher-ranked tokens is below
  top_p, so the top token always survives.
  """
  order = jnp.argsort(-logits, axis=-1)
  sorted_probs = jnp.take_along_axis(jax.nn.softmax(logits, axis=-1), order, axis=-1)
  mass_before = jnp.cumsum(sorted_probs, axis=-1) - sorted_probs
  keep_sorted = mass_before < top_p
  keep_sorted = keep_sorted.at[..., 0].set(True)
  # Scatter the sorted decision back to vocabulary order via the inverse permutation.
  keep = jnp.take_along_axis(keep_sorted, jnp.argsort(order, axis=-1), axis=-1)
  return jnp.where(keep, logits, MASKED_LOGIT)


def _is_static_number(x) -> bool:
  return isinstance(x, (int, float, np.integer, np.floating))


def _select_tokens(logits, rng, temperature, top_k: int, top_p):
  """Picks one token per row; returns (token_ids int32[N], log_prob float32[N]).

  Greedy (temperature == 0) scores with the log-softmax of the (masked) logits; sampling
  scores with the log-softmax of the temperature-scaled, top-k/top-p filtered logits, i.e.
  the distribution the token was actually drawn from.
  """
  greedy_ids = jnp.argmax(logits, axis=-1).astype(jnp.int32)
  greedy_log_probs = jnp.take_along_axis(
    jax.nn.log_softmax(logits, axis=-1), greedy_ids[:, None], axis=-1
  )[:, 0]
  if _is_static_number(temperature) and temperature == 0:
    return greedy_ids, greedy_log_probs

  temperature = jnp.asarray(temperature, jnp.float32)
  # A traced temperature may be 0; divide by 1 there and pick the greedy branch below.
  safe_temperature = jnp.where(temperature == 0, 1.0, temperature)
  scaled = logits / safe_temperature
  scaled = _filter_top_k(scaled, top_k)
  if not (_is_static_number(top_p) and top_p >= 1.0):
    scaled = _filter_top_p(scaled, top_p)
  sampled_ids = jax.random.categorical(rng, scaled, axis=-1).astype(jnp.int32)
  sampled_log_probs = jnp.take_along_axis(
    jax.nn.log_softmax(scaled, axis=-1), sampled_ids[:, None], axis=-1
  )[:, 0]

  is_greedy = temperature == 0
  return (
    jnp.where(is_greedy, greedy_ids, sampled_ids),
    jnp.where(is_greedy, greedy_log_probs, sampled_log_probs),
  )


def temperature_sample(
  tokens_to_logits: TokensToLogitsFn,
  cache: PyTree,
  first_ids: jnp.ndarray,
  max_len: int,
  *,
  rng: jax.Array,
  eos_id: int,
  start_step=0,
  temperature=1.0,
  top_k: int = 0,
  top_p=1.0,
  stop_at_eos: bool = True,
  logit_mask_fn: Optional[LogitMaskFn] = None,
  return_cache: bool = False,
) -> Tuple[jnp.ndarray, ...]:
  """Samples up to `max_len` tokens per row.

  Iteration i feeds the previous token (`first_ids` when i == 0) at decoder position
  `start_step + i`, applies `logit_mask_fn(start_step + i, logits)`, then picks a token:
  argmax when temperature == 0, otherwise a draw from softmax(logits / temperature)
  restricted by top_k (0 disables; must be a Python int) and top_p (1.0 disables).

  Returns:
    tokens: int32[B, max_len]; after a row's EOS (when stop_at_eos) positions are 0.
    log_probs: float32[B], sum over emitted tokens (EOS included, pads excluded) of the
      chosen token's log-probability. For sampling this is under the distribution actually
      sampled from (temperature-scaled, filtered, renormalized); for greedy it is the
      log-softmax of the masked, unscaled logits.
    cache: only with return_cache=True, the cache after the last executed step, so a later
      call can continue decoding from it. After an early exit (every row emitted EOS) it
      covers fewer than max_len positions; rows that finished before the others were fed
      the pad id for the remaining executed steps.
  """
  first_ids = jnp.asarray(first_ids, jnp.int32)
  batch_size = first_ids.shape[0]
  start_step = jnp.asarray(start_step, jnp.int32)

  def not_done(state):
    i, _, _, _, finished, _ = state
    return (i < max_len) & ~jnp.all(finished)

  def decode_one_step(state):
    i, tokens, prev_ids, cache, finished, log_probs = state
    step = start_step + i
    logits, cache = tokens_to_logits(prev_ids[:, None], cache, step)
    logits = _apply_logit_mask(logit_mask_fn, step, logits)
    # fold_in keeps draws a pure function of (rng, iteration), independent of early exit.
    new_ids, new_log_probs = _select_tokens(
      logits, jax.random.fold_in(rng, i), temperature, top_k, top_p
    )
    new_ids = jnp.where(finished, PAD_ID, new_ids)
    log_probs = log_probs + jnp.where(finished, 0.0, new_log_probs)
    tokens = tokens.at[:, i].set(new_ids)
    if stop_at_eos:
      finished = finished | (new_ids == eos_id)
    return i + 1, tokens, new_ids, cache, finished, log_probs

  initial_state = (
    jnp.asarray(0, jnp.int32),
    jnp.full((batch_size, max_len), PAD_ID, jnp.int32),
    first_ids,
    cache,
    jnp.zeros((batch_size,), bool),
    jnp.zeros((batch_size,), jnp.float32),
  )
  _, tokens, _, cache, _, log_probs = jax.lax.while_loop(not_done, decode_one_step, initial_state)
  if return_cache:
    return tokens, log_probs, cache
  return tokens, log_probs


def greedy_decode(
  tokens_to_logits: TokensToLogitsFn,
  cache: PyTree,
  first_ids: jnp.ndarray,
  max_len: int,
  *,
  eos_id: int,
  start_step=0,
  stop_at_eos: bool = True,
  logit_mask_fn: Optional[LogitMaskFn] = None,
  return_cache: bool = False,
) -> Tuple[jnp.ndarray, ...]:
  """Argmax decoding; `temperature_sample` with temperature 0 (see it for the outputs)."""
  return temperature_sample(
    tokens_to_logits,
    cache,
    first_ids,
    max_len,
    rng=jax.random.PRNGKey(0),  # unused: greedy never draws
    eos_id=eos_id,
    start_step=start_step,
    temperature=0.0,
    stop_at_eos=stop_at_eos,
    logit_mask_fn=logit_mask_fn,
    return_cache=return_cache,
  )


# ---------------------------------------------------------------------------------------
# Beam search
# ---------------------------------------------------------------------------------------


def _top_k_gather(values, k: int, *arrays_to_gather):
  """Top-k of `values` along axis 1, gathering each extra [B, M, ...] array to match."""
  top_values, top_indices = jax.lax.top_k(values, k)
  gathered = []
  for array in arrays_to_gather:
    indices = top_indices.reshape(top_indices.shape + (1,) * (array.ndim - 2))
    gathered.append(jnp.take_along_axis(array, indices, axis=1))
  return top_values, top_indices, gathered


def beam_search(
  tokens_to_logits: TokensToLogitsFn,
  cache: PyTree,
  first_ids: jnp.ndarray,
  max_len: int,
  *,
  eos_id: int,
  num_beams: int,
  alpha: float = 0.6,
  start_step=0,
  logit_mask_fn: Optional[LogitMaskFn] = None,
) -> Tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray, jnp.ndarray]:
  """Beam search with the GNMT/T5 length penalty.

  A finished hypothesis scores log_prob / ((5 + length) / 6) ** alpha, where length counts
  its tokens up to and including EOS (max_len if it never emits EOS).

  Each step expands every alive beam over the vocabulary and keeps the 2 * num_beams best
  continuations by log-probability. Of these:
    * those ending in EOS and ranked within the first num_beams are moved to the finished
      pool (at the last step every top-num_beams continuation is finished, EOS or not);
    * the num_beams best that do not end in EOS stay alive, so EOS never shrinks the beam.
  Restricting finalization to the first num_beams ranks (as fairseq does) is what makes
  num_beams=1, alpha=0 reproduce greedy decoding exactly: a lower-ranked EOS never
  becomes a competitor the greedy path would not have produced.

  The loop stops early once, for every example, the worst finished score is at least the
  best score any alive beam could still reach (its current log-probability under the most
  favourable remaining length penalty, since log-probabilities only decrease).

  Args:
    cache: already expanded with `expand_for_beams(cache, num_beams)`.
    first_ids: int32[B], one start token per example (expanded here).

  Returns:
    best_tokens: int32[B, max_len], best_scores: float32[B],
    all_tokens: int32[B, num_beams, max_len], all_scores: float32[B, num_beams];
    beams sorted best first. Slots that could never be filled (tiny vocabularies) score -inf.
  """
  first_ids = jnp.asarray(first_ids, jnp.int32)
  batch_size = first_ids.shape[0]
  start_step = jnp.asarray(start_step, jnp.int32)
  beam_row_offsets = (jnp.arange(batch_size, dtype=jnp.int32) * num_beams)[:, None]

  def best_reachable_score(alive_log_probs, num_decoded):
    # The penalty is monotonic in length, so the best ratio over the remaining lengths
    # (num_decoded + 1 .. max_len) sits at one of the two ends, whatever alpha's sign.
    shortest = alive_log_probs / length_penalty(num_decoded + 1, alpha)
    longest = alive_log_probs / length_penalty(max_len, alpha)
    return jnp.max(jnp.maximum(shortest, longest), axis=1)

  def not_done(state):
    i, _, alive_log_probs, _, _, _, finished_scores = state
    cannot_improve = jnp.min(finished_scores, axis=1) >= best_reachable_score(alive_log_probs, i)
    return (i < max_len) & ~jnp.all(cannot_improve)

  def decode_one_step(state):
    i, alive_tokens, alive_log_probs, last_ids, cache, finished_tokens, finished_scores = state
    step = start_step + i
    logits, cache = tokens_to_logits(last_ids.reshape(-1, 1), cache, step)
    logits = _apply_logit_mask(logit_mask_fn, step, logits)
    vocab_size = logits.shape[-1]
    token_log_probs = jax.nn.log_softmax(logits, axis=-1).reshape(batch_size, num_beams, vocab_size)

    # Candidate continuations: every (beam, token) pair, flattened beam-major.
    candidate_log_probs = (alive_log_probs[:, :, None] + token_log_probs).reshape(
      batch_size, num_beams * vocab_size
    )
    num_candidates = min(2 * num_beams, num_beams * vocab_size)
    top_log_probs, top_flat_ids, _ = _top_k_gather(candidate_log_probs, num_candidates)
    top_source_beams = top_flat_ids // vocab_size
    top_new_ids = (top_flat_ids % vocab_size).astype(jnp.int32)
    top_tokens = jnp.take_along_axis(alive_tokens, top_source_beams[:, :, None], axis=1)
    top_tokens = top_tokens.at[:, :, i].set(top_new_ids)

    ends_in_eos = top_new_ids == eos_id
    within_beam = jnp.arange(num_candidates)[None, :] < num_beams
    is_last_step = i == max_len - 1
    finalize = within_beam & (ends_in_eos | is_last_step)
    new_finished_scores = jnp.where(
      finalize, top_log_probs / length_penalty(i + 1, alpha), _IMPOSSIBLE
    )
    finished_scores, _, (finished_tokens,) = _top_k_gather(
      jnp.concatenate([finished_scores, new_finished_scores], axis=1),
      num_beams,
      jnp.concatenate([finished_tokens, top_tokens], axis=1),
    )

    continuing_log_probs = jnp.where(ends_in_eos, _IMPOSSIBLE, top_log_probs)
    alive_log_probs, _, (alive_tokens, alive_source_beams, last_ids) = _top_k_gather(
      continuing_log_probs, num_beams, top_tokens, top_source_beams, top_new_ids
    )
    cache = _gather_flat_rows(cache, (beam_row_offsets + alive_source_beams).reshape(-1))
    return (i + 1, alive_tokens, alive_log_probs, last_ids, cache, finished_tokens, finished_scores)

  # All beams start identical; only beam 0 may expand on the first step, otherwise the
  # search would fill the beam with num_beams copies of the same hypotheses.
  initial_alive_log_probs = jnp.tile(
    jnp.asarray([0.0] + [_IMPOSSIBLE] * (num_beams - 1), jnp.float32), (batch_size, 1)
  )
  initial_state = (
    jnp.asarray(0, jnp.int32),
    jnp.full((batch_size, num_beams, max_len), PAD_ID, jnp.int32),
    initial_alive_log_probs,
    jnp.repeat(first_ids[:, None], num_beams, axis=1),
    cache,
    jnp.full((batch_size, num_beams, max_len), PAD_ID, jnp.int32),
    jnp.full((batch_size, num_beams), _IMPOSSIBLE, jnp.float32),
  )
  final_state = jax.lax.while_loop(not_done, decode_one_step, initial_state)
  all_tokens, all_scores = final_state[5], final_state[6]
  return all_tokens[:, 0], all_scores[:, 0], all_tokens, all_scores
