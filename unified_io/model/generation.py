"""Generate text and images with a KV cache, and score answer options by likelihood.

The input is encoded once. Text uses greedy, beam search or sampling and stops at EOS;
image mode runs the text part, then feeds the image start token and samples the VQ-GAN
codes (image-only logits) for the whole code grid. Every function takes the network, its
parameters (unboxed) and a batch in `network.UnifiedIO`'s format.
"""

import jax
import jax.numpy as jnp

from unified_io.model import decode_state
from unified_io.model import decoding
from unified_io.model import losses
from unified_io.model import network

TEXT_METHODS = ("greedy", "beam", "sample")


def encode(model, params, batch):
  return model.apply({"params": params}, batch, method=network.UnifiedIO.encode)


def _step_fn(
  model, params, encoded, encoder_mask, self_bias, cross_bias, text_len, eos_id, modality
):
  """The decoding loops' step function; `modality` ("text" or "image") is what every step of
  the loop decodes, so only that part of the vocabulary is projected (decode_step); None
  projects onto the whole vocabulary and masks afterwards."""
  rows = None
  if modality is not None:  # sliced once, here, before the loop
    rows = decode_state.modality_logit_rows(params, model.config, modality)

  def tokens_to_logits(ids, cache, step):
    return model.apply(
      {"params": params},
      ids,
      step,
      cache,
      encoded,
      encoder_mask,
      self_bias,
      cross_bias,
      text_len,
      eos_id,
      rows,
      method=network.UnifiedIO.decode_step,
    )

  return tokens_to_logits


def _prepare(model, params, batch, text_len, image_len, expand):
  encoded, encoder_pe, encoder_mask = encode(model, params, batch)
  self_bias, cross_bias = model.apply(
    {"params": params}, text_len, image_len, encoder_pe, method=network.UnifiedIO.decoder_biases
  )
  if expand > 1:
    encoded, encoder_mask, cross_bias = decoding.expand_for_beams(
      (encoded, encoder_mask, cross_bias), expand
    )
  cache = decode_state.init_decode_cache(model.config, encoded.shape[0], text_len + image_len)
  return encoded, encoder_mask, self_bias, cross_bias, cache


def generate_text(
  model,
  params,
  batch,
  *,
  max_len,
  eos_id,
  method="greedy",
  num_beams=4,
  alpha=0.6,
  temperature=1.0,
  top_k=0,
  top_p=1.0,
  rng=None,
  logit_mask_fn=None,
):
  """Returns (tokens int32 [B, max_len] (0 after EOS), log-likelihood scores [B])."""
  if method not in TEXT_METHODS:
    raise ValueError(f"Unknown decoding method {method!r}; choose from {TEXT_METHODS}")
  bsz = batch["text_inputs"].shape[0]
  beams = num_beams if method == "beam" else 1
  encoded, encoder_mask, self_bias, cross_bias, cache = _prepare(
    model, params, batch, max_len, 0, beams
  )
  step = _step_fn(
    model, params, encoded, encoder_mask, self_bias, cross_bias, max_len, eos_id, "text"
  )
  first = jnp.zeros((bsz,), jnp.int32)  # decoding starts from the pad id, as in training
  if method == "beam":
    tokens, scores, _, _ = decoding.beam_search(
      step,
      cache,
      first,
      max_len,
      eos_id=eos_id,
      num_beams=num_beams,
      alpha=alpha,
      logit_mask_fn=logit_mask_fn,
    )
    return tokens, scores
  if method == "greedy":
    temperature, rng = 0.0, jax.random.key(0)
  elif rng is None:
    raise ValueError("method='sample' needs an rng")
  return decoding.temperature_sample(
    step,
    cache,
    first,
    max_len,
    rng=rng,
    eos_id=eos_id,
    temperature=temperature,
    top_k=top_k,
    top_p=top_p,
    logit_mask_fn=logit_mask_fn,
  )


def generate_image(
  model,
  params,
  batch,
  *,
  eos_id,
  rng,
  text_len=1,
  temperature=1.0,
  top_k=0,
  top_p=0.9,
  logit_mask_fn=None,
):
  """Greedy text (up to `text_len` tokens), then sampled image codes.

  Returns (text tokens [B, text_len], image ids [B, decoder_max_image_length] in the unified
  vocabulary). Top-p 0.9 sampling is what the released model uses for images.
  """
  cfg = model.config
  image_len = cfg.decoder_max_image_length
  bsz = batch["text_inputs"].shape[0]
  encoded, encoder_mask, self_bias, cross_bias, cache = _prepare(
    model, params, batch, text_len, image_len, 1
  )
  context = (encoded, encoder_mask, self_bias, cross_bias, text_len, eos_id)
  text, _, cache = decoding.temperature_sample(
    _step_fn(model, params, *context, "text"),
    cache,
    jnp.zeros((bsz,), jnp.int32),
    text_len,
    rng=rng,
    eos_id=eos_id,
    temperature=0.0,
    return_cache=True,
  )
  image_start = jnp.full((bsz,), cfg.padded_text_size - 1, jnp.int32)
  image, _, _ = decoding.temperature_sample(
    _step_fn(model, params, *context, "image"),
    cache,
    image_start,
    image_len,
    rng=rng,
    eos_id=eos_id,
    start_step=text_len,
    temperature=temperature,
    top_k=top_k,
    top_p=top_p,
    stop_at_eos=False,
    logit_mask_fn=logit_mask_fn,
    return_cache=True,
  )
  return text, image


def image_code_distributions(model, params, batch, text, image_ids, num_codes):
  """Per position, the model's distribution over the `num_codes` image codes given the
  generated prefix, float32 [B, image_len, num_codes]: teacher forcing on `generate_image`'s
  outputs (text [B, text_len], image ids [B, image_len]) gives the distributions each of
  its sampling steps drew from (before top-p filtering), in one decoder pass."""
  encoded, encoder_pe, encoder_mask = encode(model, params, batch)
  targets = {"text_targets": text, "image_targets": image_ids}
  _, image_logits = model.apply(
    {"params": params}, encoded, encoder_pe, encoder_mask, targets, method=network.UnifiedIO.decode
  )
  first = model.config.padded_text_size
  return jax.nn.softmax(image_logits[..., first : first + num_codes].astype(jnp.float32), -1)


def score_options(model, params, batch, options, chunk_size=64):
  """Log-likelihood [B, K] of each candidate text target `options` int32 [B, K, L].

  Options are complete target sequences (ending in EOS, 0-padded). The input is encoded
  once; candidates are scored `chunk_size` at a time with teacher forcing, so a score is
  exactly minus the training loss (summed over tokens) of that option as the target.
  """
  encoded, encoder_pe, encoder_mask = encode(model, params, batch)
  bsz, num_options, _ = options.shape
  scores = []
  for start in range(0, num_options, chunk_size):
    chunk = options[:, start : start + chunk_size]
    k = chunk.shape[1]
    expanded = decoding.expand_for_beams((encoded, encoder_pe, encoder_mask), k)
    targets = {"text_targets": chunk.reshape(bsz * k, -1)}
    text_logits, image_logits = model.apply(
      {"params": params}, *expanded, targets, method=network.UnifiedIO.decode
    )
    total, _ = losses.example_losses(text_logits, image_logits, targets)
    scores.append(-total.reshape(bsz, k))
  return jnp.concatenate(scores, axis=1)
