"""Input pipeline throughput: unified examples per second for a mixture on this machine.

  python benchmarks/input_pipeline.py --mixture=builtin_multitask --config=configs/small.py \
      --batch=8 --batches=20 --workers=2

Builds examples at the given config's sizes (image, text lengths, VQ-GAN target
resolution) and prints examples/s and tokens/s after one warm-up batch. The official T5
SentencePiece model is not shipped, so text is tokenized with the built-in 2k-piece model
(tokenization is a small part of the cost). Compare with the examples/s the train step of
the same config consumes (benchmarks/train_step.py): input must not be the bottleneck.
"""

import argparse
import importlib.util
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from unified_io.common import text_tokenizer
from unified_io.data import pipeline
from unified_io.data import from_config
from vqgan import configs as vqgan_configs


def load_config(path):
  spec = importlib.util.spec_from_file_location("benchmark_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--mixture", default="builtin_multitask")
  parser.add_argument("--config", default="configs/small.py")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--batches", type=int, default=20)
  parser.add_argument("--workers", type=int, default=2)
  parser.add_argument("--data_dir", default="")
  args = parser.parse_args()

  config = load_config(args.config)
  config.data.source = "mixture"
  config.data.mixture = args.mixture
  config.data.data_dir = args.data_dir
  config.data.workers = args.workers
  config.train.batch_size = args.batch
  vq_config = vqgan_configs.get_config(config.vqgan.preset)
  tokenizer = text_tokenizer.TextTokenizer("tokenizers/uio_tiny_2k.model", config.vocab.image_codes)
  spec = pipeline.ExampleSpec(
    tokenizer=tokenizer,
    text_inputs=config.lengths.text_inputs,
    text_targets=config.lengths.text_targets,
    input_image_size=config.model.image_size,
    patch_size=config.model.patch_size,
    target_image_size=vq_config.resolution,
    target_downsample=vq_config.downsample_factor,
  )
  batches = from_config.train_batches(config, spec, 0, 1)
  next(batches)  # warm-up: opens the sources, builds the built-in dataset if needed
  start = time.perf_counter()
  examples = tokens = 0
  for _ in range(args.batches):
    batch = next(batches)
    examples += len(batch["text_inputs"])
    tokens += int(
      np.sum(batch["text_inputs"] > 0)
      + np.sum(batch["text_targets"] > 0)
      + np.sum(batch["image_target_mask"])
      + np.sum(batch["image_input_mask"])
    )
  seconds = time.perf_counter() - start
  batches.close()
  print(
    f"mixture {args.mixture} at {os.path.basename(args.config)} sizes (image "
    f"{config.model.image_size}, text {config.lengths.text_inputs}/"
    f"{config.lengths.text_targets}, target image {vq_config.resolution}), "
    f"{args.workers} workers, batch {args.batch}:"
  )
  print(
    f"  {examples / seconds:.1f} examples/s, {tokens / seconds:.0f} tokens/s "
    f"({args.batches} batches in {seconds:.1f} s)"
  )
  skipped = batches.stream.counters.summary()
  if skipped:
    print(f"  {skipped}")


if __name__ == "__main__":
  main()
