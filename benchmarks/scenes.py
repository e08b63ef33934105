"""Built-in dataset generation speed: scene and text examples per second.

  .venv/bin/python benchmarks/scenes.py
  .venv/bin/python benchmarks/scenes.py --scenes=1000 --texts=5000 --image_size=64

Times `builtin_dataset.scene_example` (sample a scene, render image, masks, depth, normals
and keypoints, describe it in text) and `builtin_dataset.text_example` (one text-only task
example) over consecutive seeds in this process, after --warmup untimed examples of each.
This is the cost of building the TFDS dataset (`make train` builds it once), not of the
input pipeline that reads it back (benchmarks/input_pipeline.py). It used to be a test that
printed these rates and could not fail; a number without a threshold is a benchmark.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from unified_io.data import builtin_dataset


def rate(make, count, warmup):
  """Examples per second of `make(seed)` over seeds warmup .. warmup + count - 1."""
  for seed in range(warmup):
    make(seed)
  start = time.perf_counter()
  for seed in range(warmup, warmup + count):
    make(seed)
  return count / (time.perf_counter() - start)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--scenes", type=int, default=300, help="timed scene examples")
  parser.add_argument("--texts", type=int, default=2000, help="timed text examples")
  parser.add_argument("--warmup", type=int, default=10, help="untimed examples of each kind")
  parser.add_argument("--image_size", type=int, default=64, help="scene image side (pixels)")
  args = parser.parse_args()
  scene = rate(
    lambda s: builtin_dataset.scene_example(s, args.image_size), args.scenes, args.warmup
  )
  text = rate(builtin_dataset.text_example, args.texts, args.warmup)
  print(
    f"scene examples ({args.image_size}x{args.image_size}): {scene:.0f}/s "
    f"({args.scenes} timed); text examples: {text:.0f}/s ({args.texts} timed)"
  )


if __name__ == "__main__":
  main()
