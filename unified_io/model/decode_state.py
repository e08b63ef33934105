"""What an incremental decoding loop keeps besides the parameters: the decoder's KV cache
(`init_decode_cache`) and the rows of the output table it projects onto
(`modality_logit_rows`), both for `network.UnifiedIO.decode_step`."""

from typing import Optional

import jax.numpy as jnp

from unified_io.model.network import NetworkConfig


def modality_logit_rows(params, config: NetworkConfig, modality: str):
  """(rows of the token embedding table, first id): what a decoding loop that emits only
  `modality` ("text" or "image") projects onto (UnifiedIO.decode_step's logit_rows).

  Take it outside the loop: XLA does not hoist a slice of a loop-invariant table out of a
  while loop, so slicing inside the step copies the table every step (at batch 8 that made
  decoding 1.32x slower than projecting onto the whole table: benchmarks/README.md)."""
  table, split = params["token_embedder"]["embedding"], config.padded_text_size
  if modality == "text":
    return table[:split], 0
  if modality == "image":
    return table[split:], split
  raise ValueError(f"modality={modality!r}: 'text' or 'image'")


def init_decode_cache(
  config: NetworkConfig, batch_size: int, max_len: int, dtype: Optional[str] = None
):
  """The decoder's KV cache for `batch_size` rows of `max_len` positions.

  "k", "v": with scanned layers one [B, layers, L, H, D] array (the scan's per-layer axis),
  else a tuple of one [B, L, H, D] array per layer (updated in place, see Decoder).
  """
  shape = (batch_size, max_len, config.num_heads, config.head_dim)
  dtype = jnp.dtype(dtype or config.dtype)
  if config.scan_layers:
    stacked = shape[:1] + (config.num_decoder_layers,) + shape[1:]
    k, v = jnp.zeros(stacked, dtype), jnp.zeros(stacked, dtype)
  else:
    k = tuple(jnp.zeros(shape, dtype) for _ in range(config.num_decoder_layers))
    v = tuple(jnp.zeros(shape, dtype) for _ in range(config.num_decoder_layers))
  return {
    "k": k,
    "v": v,
    "valid": jnp.zeros((batch_size, max_len), bool),
    "eos": jnp.zeros((batch_size,), bool),
  }
