"""How to decode depth and normal maps: greedy codes, one top-p sample, or a mean of samples.

  .venv/bin/python benchmarks/dense_decoding.py --workdir=workdir/tiny
  .venv/bin/python benchmarks/dense_decoding.py --workdir=workdir/tiny --num_examples=256 \
      --samples=4,8,16

For each dense-labelling task of the built-in mixture (depth: RMSE in metres; surface
normals: mean angle error in degrees; lower is better for both) prints the metric of the
workdir's latest checkpoint on the validation split under each decoding, beside the task's
input-free baseline, and the seconds it took:

- greedy: the most likely code at every position (temperature 0);
- sample: one top-p 0.9 sample, as the released model decodes images;
- mean of K: the pixel-wise mean of K top-p 0.9 samples, an estimate of the model's expected
  map (what the depth and normal output kinds of `unified_io.eval.outputs` decode with, K =
  REGRESSION_SAMPLES);
- expected codes, mean of K: the same K samples, each decoded from its positions' expected
  codebook vectors (the distributions its codes were drawn from) instead of from its codes
  (`Predictor.image(expected_codes=True)`); paired with the row above, same draws.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from unified_io.data import from_config
from unified_io.eval import task_eval as evaluation
from unified_io.eval import predictor as predictor_lib
from unified_io.data.tasks import registry as tasks_lib

TASKS = ("builtin_depth", "builtin_surface_normals")


def _counts(text):
  try:
    counts = [int(k) for k in text.split(",")]
  except ValueError:
    counts = []
  if not counts or min(counts) < 1:
    raise argparse.ArgumentTypeError(f"--samples={text!r}: want integers >= 1 such as 4,8")
  return counts


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", default="workdir/tiny", help="a training workdir")
  parser.add_argument("--num_examples", type=int, default=128, help="validation examples")
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument(
    "--samples",
    default="4,8",
    type=_counts,
    help="comma-separated K values (>= 1) for the mean of K samples",
  )
  args = parser.parse_args()
  predictor = predictor_lib.Predictor.from_workdir(args.workdir)
  config = predictor.config
  max_depth = config.data.max_depth
  ctx = from_config.task_context(config, predictor.spec)
  seed = from_config.eval_seed(config)
  decodings = [
    ("greedy", dict(temperature=0.0, top_p=1.0)),
    ("sample", dict(temperature=1.0, top_p=0.9)),
  ]
  for k in args.samples:
    decodings.append((f"mean of {k}", dict(temperature=1.0, top_p=0.9, num_samples=k)))
    decodings.append(
      (
        f"expected codes, mean of {k}",
        dict(temperature=1.0, top_p=0.9, num_samples=k, expected_codes=True),
      )
    )
  for name in TASKS:
    examples = evaluation.collect(
      tasks_lib.get(name),
      predictor.spec,
      ctx,
      "validation",
      args.num_examples,
      seed,
      config.data.get("data_dir") or None,
    )
    for label, decoding in decodings:
      start = time.time()
      preds = evaluation.predict(
        predictor, examples, args.batch_size, seed, image_decoding=decoding
      )
      s = evaluation.score(examples, preds, predictor.spec, max_depth)
      print(
        f"{name} {label:>26}: {s.metric} {s.value:.3f} (baseline {s.baseline:.3f}, "
        f"{s.baseline_is}), "
        f"{len(preds)} examples, {time.time() - start:.1f} s",
        flush=True,
      )


if __name__ == "__main__":
  main()
