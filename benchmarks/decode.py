"""Decoding speed: KV-cached greedy text and image decoding against recomputing the prefix,
text decoding against Hugging Face FlaxT5 `generate`, beam search and answer-option scoring.

  .venv/bin/python benchmarks/decode.py        # the default cells, ~11 min on a loaded 2-core box
  .venv/bin/python benchmarks/decode.py --parts=text --text_cells=8x128 --recompute_batches=8
  .venv/bin/python benchmarks/decode.py --parts=image --image_configs=small --image_batches=1

HF needs the optional extras: .venv/bin/pip install --no-deps -r requirements-bench.txt
(or pass --no-hf).

Parts (--parts, comma-separated); BATCHxN cells name a batch size and a length:

- text (--text_cells, BATCHxNEW_TOKENS): greedy text decoding at the --text_config dims
  (Small: 8+8 layers, d 512, 6 heads of 64, MLP 1024, 49536-id vocabulary) from a text-only
  prompt of --prompt_len tokens (each row's real length drawn from [prompt_len / 2,
  prompt_len], the rest padding). Up to three decoders per cell: ours
  (`generation.generate_text`: the input encoded once, a KV cache, one decoder position
  per step), the recompute baseline (below; at --recompute_batches only, it is slow) and
  Hugging Face `FlaxT5ForConditionalGeneration.generate` (--hf) at the same dims and
  vocabulary size with its own random parameters.
- image (--image_configs, --image_batches): `generation.generate_image` (one text step,
  then every VQ-GAN code of the grid: 64 at tiny, 256 at the paper sizes) from a text
  prompt, against the recompute baseline. Codes are greedy here so that the two can be
  checked token for token; the released top-p sampling costs the same model calls.
- beam (--beam_batches, --beam_new_tokens): 4-beam search (`method="beam"`) against HF
  `generate(num_beams=4)`; the text part's row of the same cell is greedy decoding.
- score (--score_cases, BATCHxOPTIONSxTOKENS): `generation.score_options`, by default 1000
  ImageNet-like class names of 4 tokens for one example and 4 VCR-like answers of 30 tokens
  for each of 8 examples.

The recompute baseline is decoding without a cache, as XLA runs it best: the encoder output
is computed once, then each step runs the whole teacher-forced decoder
(`network.UnifiedIO.decode`) over the full, fixed-length target buffer (the tokens so far,
a placeholder after them; causality hides the rest from the current position) and computes
the logits of the current position only (the decoder's other logits are dead code that XLA
drops). A fixed shape keeps it one compiled loop; a growing prefix would do about half the
work (prefix lengths average half the buffer) for one compilation per length.

Every decoder runs its full length: EOS (and, since the baseline's key mask reads a 0
target as padding, the pad id) is made unselectable, because random parameters may pick
either; HF gets `min_length` = its maximum length. Before timing, the script asserts that
ours and the baseline produce identical tokens. Every function is jitted and compiled, then
called once untimed; the decoders of one cell are then timed alternately, --repeats rounds,
so that load from other processes hits them alike. The table gives medians and min-max;
`time/ref` is a row's median over the cell's reference row (ours; ours beam 4 in the beam
part): how many times longer it takes, or how many times faster ours is.

GFLOP/step is the matmul work of one iteration of the compiled decoding loop, read off the
optimised HLO: XLA hoists loop-invariant work out of the loop (the cross-attention keys and
values of the encoder output, ours and HF's alike; the baseline's position biases), so this
is what every step really runs. GFLOP/call is XLA's cost analysis of the whole program
(which counts a loop body once) plus the other steps, and GFLOP/s that over the median.
MB/prog is the same analysis's bytes accessed, loop body counted once: the prologue (the
encoder, hoisted cross-attention keys and values) plus one step, so between two decoders of
the same dims and prompt its difference is the difference of their steps' memory traffic.
After each text and image cell a line gives every decoder's time per step beside the time
it takes to read, once, the weights a cached step reads (a jitted reduction over them,
timed in the same rounds): at small batches that read is most of a cached step.
"""

import argparse
import dataclasses
import math
import os
import re
import statistics
import sys
import time

import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import small as small_config
from configs import tiny as tiny_config
from unified_io.common import flops as flops_lib
from unified_io.common import vocab
from unified_io.model import builder
from unified_io.model import decoding
from unified_io.model import generation
from unified_io.model import network

CONFIGS = {"tiny": tiny_config, "small": small_config}
# Any non-pad id: the baseline's target buffer needs one after the tokens so far, where a
# 0 would mask the current position out of its own self-attention.
PLACEHOLDER_TEXT_ID = vocab.UNK_ID
UNSELECTABLE = decoding.forbid([vocab.PAD_ID, vocab.EOS_ID])


# ---------------------------------------------------------------------------- models


@dataclasses.dataclass
class Ours:
  name: str
  model: network.UnifiedIO
  params: dict
  layout: vocab.VocabLayout

  @property
  def config(self):
    return self.model.config


def build_ours(name, prompt_len, new_tokens, seed=0):
  """Our network at configs/<name>.py's dims with random parameters, its position tables
  grown to `prompt_len` inputs and `new_tokens` outputs if needed."""
  config = CONFIGS[name].get_config()
  config.model.encoder_max_text_length = max(config.model.encoder_max_text_length, prompt_len)
  config.model.decoder_max_text_length = max(config.model.decoder_max_text_length, new_tokens)
  model = builder.build(config)
  params = nn.unbox(jax.jit(lambda key: builder.init_params(model, key))(jax.random.key(seed)))
  return Ours(name, model, params, builder.vocab_layout(config))


def prompts(layout, batch_size, prompt_len, seed=0):
  """Text-only inputs: random pieces, each row a random real length then padding."""
  rs = np.random.RandomState(seed)
  ids = rs.randint(vocab.UNK_ID + 1, layout.text_size, (batch_size, prompt_len))
  lengths = rs.randint(max(prompt_len // 2, 1), prompt_len + 1, batch_size)
  ids[np.arange(prompt_len)[None] >= lengths[:, None]] = vocab.PAD_ID
  return {"text_inputs": jnp.asarray(ids, jnp.int32)}


@dataclasses.dataclass
class Peer:
  name: str
  t5: object  # FlaxT5ForConditionalGeneration
  params: dict


def hf_peer(ours, seed=0):
  """FlaxT5ForConditionalGeneration at our dims and vocabulary size, random parameters."""
  from benchmarks import train_step  # for its jnp.clip shim for transformers 4.x FlaxT5

  version, t5_config_cls, t5_cls = train_step.import_hf_t5()
  c = ours.config
  t5_config = t5_config_cls(
    vocab_size=c.vocab_size,
    d_model=c.emb_dim,
    d_kv=c.head_dim,
    d_ff=c.mlp_dim,
    num_layers=c.num_encoder_layers,
    num_decoder_layers=c.num_decoder_layers,
    num_heads=c.num_heads,
    dropout_rate=0.0,
    feed_forward_proj="gated-gelu",  # tanh-GELU gated MLP, as ours
    tie_word_embeddings=True,  # one table for inputs and logits, as ours
    pad_token_id=vocab.PAD_ID,
    eos_token_id=vocab.EOS_ID,
    decoder_start_token_id=vocab.PAD_ID,  # ours starts from the pad id too
  )
  t5 = t5_cls(t5_config, dtype=jnp.float32, _do_init=False)
  params = jax.jit(t5.init_weights, static_argnums=1)(jax.random.PRNGKey(seed), (1, 1))
  return Peer(f"HF FlaxT5 (transformers {version})", t5, params)


# -------------------------------------------------------------------------- decoders


def ours_text(ours, new_tokens, method="greedy", num_beams=4):
  def run(params, batch):
    tokens, _ = generation.generate_text(
      ours.model,
      params,
      batch,
      max_len=new_tokens,
      eos_id=vocab.EOS_ID,
      method=method,
      num_beams=num_beams,
      logit_mask_fn=UNSELECTABLE,
    )
    return tokens

  return run


def ours_text_all_logits(ours, new_tokens):
  """Greedy `ours_text` with every step projecting onto the whole vocabulary and masking
  the image ids afterwards (decode_step's modality=None): what ours did before the loops
  told the step what they decode."""

  def run(params, batch):
    bsz = batch["text_inputs"].shape[0]
    encoded, mask, self_bias, cross_bias, cache = generation._prepare(  # noqa: SLF001
      ours.model, params, batch, new_tokens, 0, 1
    )
    step = generation._step_fn(  # noqa: SLF001
      ours.model, params, encoded, mask, self_bias, cross_bias, new_tokens, vocab.EOS_ID, None
    )
    tokens, _ = decoding.temperature_sample(
      step,
      cache,
      jnp.zeros((bsz,), jnp.int32),
      new_tokens,
      rng=jax.random.key(0),
      eos_id=vocab.EOS_ID,
      temperature=0.0,
      logit_mask_fn=UNSELECTABLE,
    )
    return tokens

  return run


def _decoder_output(model, params, encoded, targets):
  """The decoder's final hidden states [B, L, E] for teacher-forced `targets`. Its logits
  are left unused, so XLA drops them: the caller computes the one position it needs."""
  _, state = model.apply(
    {"params": params},
    *encoded,
    targets,
    method=network.UnifiedIO.decode,
    capture_intermediates=lambda module, method: module.name == "decoder_norm",
    mutable=["intermediates"],
  )
  return state["intermediates"]["decoder"]["decoder_norm"]["__call__"][0]


def _logits(params, hidden, ids):
  """Logits [B, len(ids)] of one position's `hidden` [B, E], as the decoder computes them."""
  table = params["token_embedder"]["embedding"][ids]
  return jnp.dot(hidden.astype(jnp.float32), table.T) / jnp.sqrt(hidden.shape[-1])


def recompute_text(ours, new_tokens):
  """Greedy decoding that reruns the whole decoder over the target buffer at every step."""
  model, split = ours.model, ours.config.padded_text_size

  def run(params, batch):
    encoded = generation.encode(model, params, batch)
    bsz = batch["text_inputs"].shape[0]

    def step(i, tokens):
      so_far = jnp.where(jnp.arange(new_tokens) < i, tokens, PLACEHOLDER_TEXT_ID)
      hidden = _decoder_output(model, params, encoded, {"text_targets": so_far})
      current = jax.lax.dynamic_index_in_dim(hidden, i, 1, keepdims=False)
      logits = UNSELECTABLE(i, _logits(params, current, slice(0, split)))
      return tokens.at[:, i].set(jnp.argmax(logits, -1).astype(jnp.int32))

    return jax.lax.fori_loop(0, new_tokens, step, jnp.zeros((bsz, new_tokens), jnp.int32))

  return run


def hf_text(peer, new_tokens, num_beams=1):
  def run(params, batch):
    ids = batch["text_inputs"]
    out = peer.t5.generate(
      ids,
      attention_mask=(ids > 0).astype(jnp.int32),
      params=params,
      max_new_tokens=new_tokens,
      min_length=new_tokens + 1,  # EOS unselectable: every row runs the full length
      do_sample=False,
      num_beams=num_beams,
    )
    return out.sequences[:, 1:]  # without the decoder start token

  return run


def ours_image(ours):
  def run(params, batch):
    _, image = generation.generate_image(
      ours.model,
      params,
      batch,
      eos_id=vocab.EOS_ID,
      rng=jax.random.key(0),
      text_len=1,
      temperature=0.0,
      top_p=1.0,
    )
    return image

  return run


def recompute_image(ours):
  """`ours_image` (one text step, then greedy codes) rerunning the decoder at every step."""
  model, split = ours.model, ours.config.padded_text_size
  image_len = ours.config.decoder_max_image_length

  def run(params, batch):
    encoded = generation.encode(model, params, batch)
    bsz = batch["text_inputs"].shape[0]
    # The text target only enters as a key mask (> 0): its position is fed the pad id.
    text = jnp.full((bsz, 1), vocab.EOS_ID, jnp.int32)

    def step(j, codes):
      so_far = jnp.where(jnp.arange(image_len) < j, codes, split)  # split: any image id
      targets = {"text_targets": text, "image_targets": so_far}
      hidden = _decoder_output(model, params, encoded, targets)
      current = jax.lax.dynamic_index_in_dim(hidden, 1 + j, 1, keepdims=False)
      logits = _logits(params, current, slice(split, None))
      return codes.at[:, j].set(split + jnp.argmax(logits, -1).astype(jnp.int32))

    return jax.lax.fori_loop(0, image_len, step, jnp.zeros((bsz, image_len), jnp.int32))

  return run


def ours_scores(ours, chunk_size):
  def run(params, batch, options):
    return generation.score_options(ours.model, params, batch, options, chunk_size=chunk_size)

  return run


# ------------------------------------------------------------ FLOPs from the compiled HLO

# Lines of XLA's optimised HLO text: computation headers, instructions, called computations.
_COMPUTATION = re.compile(r"^(?:ENTRY )?%([\w.\-]+) \((.*)\) -> .* \{$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%([\w.\-]+) = (\w+\[[\d,]*\])\S* ([\w\-]+)\((.*)$")
_PARAMETER = re.compile(r"([\w.\-]+): (\w+\[[\d,]*\])")
_CALLED = re.compile(r"(?:calls|to_apply|body|condition)=%([\w.\-]+)")


def _dims(shape):
  return [int(d) for d in shape[shape.index("[") + 1 : shape.index("]")].split(",") if d]


def _computations(hlo):
  """{name: (shapes {value name: shape}, instructions [(shape, opcode, rest of line)])}."""
  computations, shapes, instructions = {}, None, None
  for line in hlo.splitlines():
    if m := _COMPUTATION.match(line):
      shapes, instructions = dict(_PARAMETER.findall(m.group(2))), []
      computations[m.group(1)] = (shapes, instructions)
    elif shapes is not None and (m := _INSTRUCTION.match(line)):
      shapes[m.group(1)] = m.group(2)
      instructions.append(m.groups()[1:])
  return computations


def _dot_flops(computations, name, seen):
  """FLOPs of the dots in computation `name` and everything it calls (fusions included)."""
  if name in seen or name not in computations:
    return 0
  seen.add(name)
  shapes, instructions = computations[name]
  total = 0
  for shape, opcode, rest in instructions:
    if opcode == "dot":
      lhs = _dims(shapes[re.match(r"%([\w.\-]+)", rest).group(1)])
      contracting = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", rest).group(1)
      total += 2 * math.prod(_dims(shape)) * math.prod(lhs[int(d)] for d in _ints(contracting))
    total += sum(_dot_flops(computations, called, seen) for called in _CALLED.findall(rest))
  return total


def loop_step_flops(compiled):
  """Matmul FLOPs of one iteration of the compiled program's largest while loop: the
  decoding step as XLA runs it, after it hoisted the loop-invariant work (such as the
  cross-attention keys and values of the encoder output) out of the loop. A loop nested in
  it (scanned layers: model.scan_layers) would count once, not once per iteration."""
  hlo = compiled.as_text()
  computations = _computations(hlo)
  bodies = re.findall(r"body=%([\w.\-]+)", hlo)
  return max((_dot_flops(computations, body, set()) for body in bodies), default=0)


# ------------------------------------------------------------------ the memory floor


def step_weights(params, split, modality):
  """The parameters every cached decoding step of `modality` reads: the decoder layers
  (less the cross-attention key and value kernels, whose products XLA hoists out of the
  loop), the final norm and the rows of the token embedding table that the step projects
  onto (text ids [:split] or image ids [split:]: decode_step computes only the loop's
  modality); the input embedding reads one row per example, which is negligible."""
  flat = traverse_util.flatten_dict(params)
  hoisted = lambda path: "encoder_decoder_attention" in path and path[-2] in ("key", "value")
  rows = slice(None, split) if modality == "text" else slice(split, None)
  out = {}
  for path, x in flat.items():
    if path[0] == "token_embedder":
      out["/".join(path)] = x[rows]
    elif path[0] == "decoder" and path[1].startswith(("layers", "decoder_norm")):
      if not hoisted(path):
        out["/".join(path)] = x
  return out


def weight_reader(ours, modality):
  """A Timed that reads `step_weights` once (a reduction over each): at batch 1 a cached
  step does little else, so this is the floor its time cannot go below on this machine."""
  weights = step_weights(ours.params, ours.config.padded_text_size, modality)
  megabytes = sum(x.size * x.dtype.itemsize for x in weights.values()) / 1e6
  read = lambda w: sum(jnp.sum(x) for x in w.values())
  return Timed(f"read the {megabytes:.0f} MB of step weights", read, weights)


def report_per_step(timed, steps, floor):
  per_step = ", ".join(f"{t.name} {t.median / steps * 1e3:.1f} ms" for t in timed)
  print(f"  per step: {per_step}; {floor.name} once: {floor.median * 1e3:.1f} ms", flush=True)


# ---------------------------------------------------------------------------- timing


class Timed:
  """A compiled decoder and its arguments; `time()` runs it once and records the seconds.

  `steps`: iterations of its decoding loop, to count the FLOPs it executes per call: XLA's
  cost analysis counts a loop body once, so the other steps' matmuls are added to it.
  """

  def __init__(self, name, fn, *args, steps=0):
    self.name, self.args, self.times = name, args, []
    start = time.perf_counter()
    self.compiled = jax.jit(fn).lower(*args).compile()
    self.compile_s = time.perf_counter() - start
    self.step_flops = loop_step_flops(self.compiled) if steps else 0
    flops, self.call_bytes = flops_lib.cost(self.compiled)
    self.call_flops = flops + max(steps - 1, 0) * self.step_flops
    self.output = self.run()  # the untimed call

  def run(self):
    return jax.block_until_ready(self.compiled(*self.args))

  def time(self):
    start = time.perf_counter()
    self.run()
    self.times.append(time.perf_counter() - start)

  @property
  def median(self):
    return statistics.median(self.times)


def time_alternately(timed, repeats):
  _report_compiles(timed)
  for _ in range(repeats):
    for t in timed:  # alternate, so that load from elsewhere hits every decoder alike
      t.time()


def _report_compiles(timed):
  compiles = ", ".join(f"{t.name} {t.compile_s:.0f} s" for t in timed)
  print(f"  compiled: {compiles}", flush=True)


class Table:
  HEADER = (
    f"{'part':<6}{'config':<7}{'batch':>5}{'len':>6}  {'decoder':<40}{'median s':>10}"
    f"{'min-max s':>16}{'tokens/s':>9}{'ex/s':>8}{'time/ref':>9}{'GFLOP/step':>11}"
    f"{'GFLOP/call':>11}{'GFLOP/s':>8}{'MB/prog':>9}"
  )

  def __init__(self):
    self.rows = []
    print(self.HEADER, flush=True)

  def add(self, part, config, batch, length, timed, reference):
    t = timed.median
    spread = f"{min(timed.times):.3f}-{max(timed.times):.3f}"
    step = f"{timed.step_flops / 1e9:.3f}" if timed.step_flops else "-"
    row = (
      f"{part:<6}{config:<7}{batch:>5}{length:>6}  {timed.name:<40}{t:>10.3f}{spread:>16}"
      f"{batch * length / t:>9.0f}{batch / t:>8.2f}{f'{t / reference.median:.2f}x':>9}"
      f"{step:>11}{timed.call_flops / 1e9:>11.2f}{timed.call_flops / t / 1e9:>8.1f}"
      f"{timed.call_bytes / 1e6:>9.0f}"
    )
    self.rows.append(row)
    print(row, flush=True)

  def print(self):
    print("\n" + self.HEADER)
    for row in self.rows:
      print(row)


# ----------------------------------------------------------------------------- parts


def _ints(text, sep=","):
  return [int(x) for x in text.split(sep) if x]


def _cells(text):
  return [_ints(cell, "x") for cell in text.split(",") if cell]


def text_part(args, table):
  cells = _cells(args.text_cells)
  ours = build_ours(args.text_config, args.prompt_len, max(new for _, new in cells))
  peer = hf_peer(ours) if args.hf else None
  recompute_batches = _ints(args.recompute_batches)
  for bsz, new in cells:
    batch = prompts(ours.layout, bsz, args.prompt_len)
    timed = [Timed("ours (KV cache)", ours_text(ours, new), ours.params, batch, steps=new)]
    fn = ours_text_all_logits(ours, new)
    timed.append(Timed("ours, all-vocabulary logits", fn, ours.params, batch, steps=new))
    np.testing.assert_array_equal(timed[0].output, timed[-1].output)
    if bsz in recompute_batches:
      fn = recompute_text(ours, new)
      timed.append(Timed("recompute prefix", fn, ours.params, batch, steps=new))
      np.testing.assert_array_equal(timed[0].output, timed[-1].output)
    if peer:
      fn = hf_text(peer, new)
      timed.append(Timed(f"{peer.name} generate", fn, peer.params, batch, steps=new))
    floor = weight_reader(ours, "text")
    time_alternately(timed + [floor], args.repeats)
    report_per_step(timed, new, floor)
    for t in timed:
      table.add("text", ours.name, bsz, new, t, timed[0])


def image_part(args, table):
  for name in args.image_configs.split(","):
    ours = build_ours(name, args.prompt_len, 1)
    image_len = ours.config.decoder_max_image_length
    for bsz in _ints(args.image_batches):
      batch = prompts(ours.layout, bsz, args.prompt_len)
      timed = [
        Timed("ours (KV cache)", ours_image(ours), ours.params, batch, steps=image_len),
        Timed("recompute prefix", recompute_image(ours), ours.params, batch, steps=image_len),
      ]
      np.testing.assert_array_equal(timed[0].output, timed[1].output)
      floor = weight_reader(ours, "image")
      time_alternately(timed + [floor], args.repeats)
      report_per_step(timed, image_len, floor)
      for t in timed:
        table.add("image", ours.name, bsz, image_len, t, timed[0])


def beam_part(args, table):
  new = args.beam_new_tokens
  ours = build_ours(args.text_config, args.prompt_len, new)
  peer = hf_peer(ours) if args.hf else None
  for bsz in _ints(args.beam_batches):
    batch = prompts(ours.layout, bsz, args.prompt_len)
    timed = [Timed("ours beam 4", ours_text(ours, new, "beam", 4), ours.params, batch, steps=new)]
    if peer:
      # HF runs the first beam step before its loop, which then runs the others.
      fn = hf_text(peer, new, 4)
      timed.append(Timed(f"{peer.name} beam 4", fn, peer.params, batch, steps=new - 1))
    time_alternately(timed, args.repeats)
    for t in timed:
      table.add("beam", ours.name, bsz, new, t, timed[0])


def score_part(args, table):
  ours = build_ours(args.text_config, args.prompt_len, max(c[2] for c in _cells(args.score_cases)))
  rs = np.random.RandomState(1)
  for bsz, num_options, length in _cells(args.score_cases):
    batch = prompts(ours.layout, bsz, args.prompt_len)
    options = rs.randint(vocab.UNK_ID + 1, ours.layout.text_size, (bsz, num_options, length))
    options[..., -1] = vocab.EOS_ID
    options = jnp.asarray(options, jnp.int32)
    name = f"score {num_options} options x {length}"
    timed = Timed(name, ours_scores(ours, args.score_chunk), ours.params, batch, options)
    time_alternately([timed], args.repeats)
    # The length column is the scored tokens per example, so tokens/s counts those.
    table.add("score", ours.name, bsz, num_options * length, timed, timed)


PARTS = {"text": text_part, "image": image_part, "beam": beam_part, "score": score_part}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--parts", default=",".join(PARTS), help=f"some of {list(PARTS)}")
  parser.add_argument("--text_config", default="small", choices=sorted(CONFIGS))
  parser.add_argument("--prompt_len", type=int, default=64, help="input tokens, padding included")
  parser.add_argument("--text_cells", default="1x32,8x32,1x128", help="BATCHxNEW_TOKENS,...")
  parser.add_argument("--recompute_batches", default="1", help="text batches with the baseline")
  parser.add_argument("--hf", default=True, action=argparse.BooleanOptionalAction)
  parser.add_argument("--image_configs", default="tiny", help="e.g. tiny,small")
  parser.add_argument("--image_batches", default="1,4")
  parser.add_argument("--beam_batches", default="1")
  parser.add_argument("--beam_new_tokens", type=int, default=32)
  parser.add_argument("--score_cases", default="1x1000x4,8x4x30", help="BxOPTIONSxTOKENS,...")
  parser.add_argument("--score_chunk", type=int, default=64, help="options scored at once")
  parser.add_argument("--repeats", type=int, default=2, help="timed rounds")
  args = parser.parse_args()
  parts = args.parts.split(",")
  unknown = sorted(set(parts) - set(PARTS))
  if unknown:
    parser.error(f"unknown --parts {unknown}; choose from {list(PARTS)}")

  print(
    f"devices: {jax.device_count()} x {jax.devices()[0].device_kind}; measured f32 matmul "
    f"{flops_lib.matmul_flops_per_s() / 1e9:.1f} GFLOP/s; prompt {args.prompt_len} tokens; "
    f"{args.repeats} timed rounds",
    flush=True,
  )
  table = Table()
  for part in PARTS:
    if part in parts:
      PARTS[part](args, table)
  table.print()


if __name__ == "__main__":
  main()
