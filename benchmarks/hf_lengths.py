"""Ours against Hugging Face FlaxT5 on text-only batches at a mixture's real text lengths.

  .venv/bin/python benchmarks/hf_lengths.py --config=configs/small.py --batch=8 --batches=4 \
      --steps=2

benchmarks/train_step.py --compare_hf times both steps on full-length text (512 -> 128
tokens, every position real), where they are at parity. Real text-only examples are short:
this script takes the text-only examples (no input image, no target image) of a mixture's
stream (default builtin_multitask: entailment, question answering, sentiment, summarization,
masked LM) at the config's lengths, --batches batches of --batch of them, and times, round
by round, alternating:
- ours: the trainer's step with config.train.batch_shapes="buckets" (unified_io/train/step.py
  BucketedStep: each batch cut to its longest text, rounded up to a bucket length);
- HF padded: FlaxT5ForConditionalGeneration's train step (same dims, vocabulary, Adafactor,
  loss; benchmarks/train_step.py `hf_t5`) on the batches at the config's fixed lengths, as a
  static-shape JAX input pipeline gives them;
- HF cut: the same HF step on each batch cut to the lengths ours uses (one compile per
  shape), the best a user of that step can do with per-batch lengths.
It prints useful (non-padding) tokens/s of each and the ratios. Compilation is not timed.
"""

import os
import sys
import time

from absl import app
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import train_step as bench  # noqa: E402
from unified_io.data import pipeline  # noqa: E402
from unified_io.train import length_buckets  # noqa: E402
from unified_io.train import trainer as train  # noqa: E402

# The flags are benchmarks/train_step.py's (importing it defines them): --config, --batch,
# --batches (distinct text-only batches), --steps (timed rounds over them, after one
# untimed round) and --mixture (default here: builtin_multitask).
DEFAULT_MIXTURE = "builtin_multitask"
TEXT_KEYS = ("text_inputs", "text_targets")
# Stream elements to look through for text-only examples before giving up.
_MAX_ELEMENTS = 200_000


def text_only_batches(stream, batch_size, num_batches):
  """`num_batches` host batches of the stream's text-only examples, in stream order."""
  found, element = [], 0
  while len(found) < batch_size * num_batches:
    if element >= _MAX_ELEMENTS:
      raise SystemExit(
        f"only {len(found)} text-only examples in the first {_MAX_ELEMENTS} stream elements"
      )
    features = stream.element(element)
    if pipeline.shape_of(features) == 0:
      found.append(features)
    element += 1
  groups = [found[i * batch_size : (i + 1) * batch_size] for i in range(num_batches)]
  return [{k: np.stack([f[k] for f in group]) for k in group[0]} for group in groups]


def cut_like_buckets(batch):
  """The text of `batch` cut to the lengths the bucketed step gives a text-only batch."""
  _, text_inputs, text_targets = length_buckets.example_kinds(batch)
  cut = {}
  for key, longest, smallest in zip(
    ("text_inputs", "text_targets"), (text_inputs, text_targets), length_buckets.MIN_TEXT_LENGTHS
  ):
    width = batch[key].shape[1]
    cut[key] = batch[key][:, : length_buckets.text_bucket(int(longest.max()), width, smallest)]
  return cut


class _HF:
  """HF's step on a batch; one compiled runner per text shape."""

  def __init__(self, config, name, cut):
    self.config, self.name, self.cut, self.runners, self.times = config, name, cut, {}, []

  def run(self, batch):
    text = cut_like_buckets(batch) if self.cut else {k: batch[k] for k in TEXT_KEYS}
    shape = (text["text_inputs"].shape, text["text_targets"].shape)
    if shape not in self.runners:
      self.runners[shape] = bench.hf_t5(self.config, text)
    runner = self.runners[shape]
    runner.batch = bench.hf_inputs(text)
    return runner.run()


def main(_):
  config = bench._CONFIG.value.copy_and_resolve_references()
  batch_size, rounds = bench._BATCH.value, bench._STEPS.value
  mixture = bench._MIXTURE.value or DEFAULT_MIXTURE
  config.train.batch_size = batch_size
  source, vq = bench.mixture_inputs(config, mixture, batch_size, [])
  batches = text_only_batches(source.stream, batch_size, bench._BATCHES.value)
  source.close()
  tokens = [train._tokens_per_batch(b) for b in batches]
  _, ins, outs = zip(*(length_buckets.example_kinds(b) for b in batches))
  ins, outs = np.concatenate(ins), np.concatenate(outs)
  lengths = config.lengths
  print(
    f"{mixture} text-only examples: text inputs {ins.mean():.1f} real tokens of "
    f"{lengths.text_inputs} (max {ins.max()}), targets {outs.mean():.1f} of "
    f"{lengths.text_targets} (max {outs.max()}); {sum(tokens)} useful tokens in "
    f"{len(batches)} batches of {batch_size}",
    flush=True,
  )
  for i, b in enumerate(batches):
    cut = cut_like_buckets(b)
    print(f"  batch {i}: cut to {cut['text_inputs'].shape[1]} -> {cut['text_targets'].shape[1]}")
  steps = bench.Steps(config, vq)
  with steps.context():
    ours = bench._Timed("ours (buckets)", steps.bucketed(batch_size), steps.init())
    start = time.perf_counter()
    for b in batches:
      ours.step.compile_for(ours.state, b)
    print(f"ours: {len(ours.step.programs)} programs in {time.perf_counter() - start:.0f} s")
    hf_padded = _HF(config, "HF FlaxT5, padded", cut=False)
    hf_cut = _HF(config, "HF FlaxT5, cut like ours", cut=True)
    runners = [ours, hf_padded, hf_cut]
    for b in batches:  # untimed: compiles HF's shapes and runs every program once
      for r in runners:
        r.run(b)
    for _ in range(rounds):
      for b in batches:
        for r in runners:  # alternate, so that load from elsewhere hits them alike
          r.times.append(r.run(b))
  useful = sum(tokens) * rounds
  print(f"\n{'':<28s}{'total s':>9s}{'s/step':>8s}{'useful tokens/s':>17s}{'vs ours':>9s}")
  for r in runners:
    total = sum(r.times)
    ratio = total / sum(ours.times)
    print(
      f"{r.name:<28s}{total:>9.1f}{total / len(r.times):>8.2f}{useful / total:>17.1f}{ratio:>8.2f}x"
    )
  print(
    f"ours over HF padded: {sum(hf_padded.times) / sum(ours.times):.2f}x useful tokens/s; "
    f"over HF cut like ours: {sum(hf_cut.times) / sum(ours.times):.2f}x",
    flush=True,
  )


if __name__ == "__main__":
  app.run(main)
