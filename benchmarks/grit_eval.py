"""GRIT evaluation speed: samples/s one sample at a time against batches, same process.

  .venv/bin/python benchmarks/grit_eval.py                       # tiny config, random init
  .venv/bin/python benchmarks/grit_eval.py --num_examples=64 --batch_size=16
  .venv/bin/python benchmarks/grit_eval.py --workdir=workdir/tiny --grit_dir=GRIT

Runs unified_io.eval.grit.runner.predict_grit per task with batch_size=1 (the reference)
and with --batch_size, on --num_examples samples per task, and prints per task and overall
the samples/s of each and their ratio (batched / one at a time), and whether the two
submissions are the same (tests/test_grit_batched.py's comparison: fields exactly,
confidences to 1e-6 in log space). Each mode first runs two samples per task, so
compilation is not timed; the two modes alternate task by task, so a machine that slows
down mid-run slows both. Without --grit_dir, a synthetic GRIT folder (random images and
queries, tests/test_grit_batched.py) is written to a temporary directory; without
--workdir, configs/tiny.py with random parameters: speed does not depend on the weights,
except that a random model finds no people, so keypoint runs stage one only.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import flax.linen as nn
import jax

from configs import tiny as tiny_config
from tests import test_grit_batched
from unified_io.eval import predictor as predictor_lib
from unified_io.eval.grit import runner as grit_eval
from unified_io.eval.grit import tasks as grit
from unified_io.model import builder as model_lib

WARMUP_SAMPLES = 2  # compiles every function: both label sets of the synthetic folder


def _predictor(workdir):
  if workdir:
    return predictor_lib.Predictor.from_workdir(workdir)
  config = tiny_config.get_config()
  params = nn.unbox(model_lib.init_params(model_lib.build(config), jax.random.key(0)))
  return predictor_lib.Predictor(config, params)


def _seconds(predictor, grit_dir, task, out, limit, batch_size):
  start = time.perf_counter()
  split_dir, _ = grit_eval.predict_grit(
    predictor,
    grit_dir,
    "ablation",
    [task],
    out,
    limit,
    progress=lambda _: None,
    batch_size=batch_size,
  )
  return time.perf_counter() - start, split_dir


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", default="", help="a training workdir (default: random tiny)")
  parser.add_argument("--grit_dir", default="", help="a GRIT folder (default: synthetic)")
  parser.add_argument("--num_examples", type=int, default=32, help="samples per task")
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--tasks", default="", help="comma-separated GRIT tasks (default: all)")
  args = parser.parse_args()
  if args.num_examples < 1 or args.batch_size < 2:
    parser.error("--num_examples must be >= 1 and --batch_size >= 2")
  tasks = grit_eval.parse_tasks(args.tasks)
  predictor = _predictor(args.workdir)
  tmp = tempfile.mkdtemp(prefix="grit_eval_bench_")
  grit_dir = args.grit_dir or test_grit_batched.grit_folder(tmp, args.num_examples)
  modes = {"one at a time": 1, f"batch {args.batch_size}": args.batch_size}
  print(
    f"{jax.device_count()} {jax.devices()[0].platform} device(s); "
    f"{'workdir ' + args.workdir if args.workdir else 'configs/tiny.py, random parameters'}; "
    f"{args.num_examples} samples per task"
  )
  for task in tasks:  # warm-up: compile outside the timings
    for name, size in modes.items():
      _seconds(predictor, grit_dir, task, os.path.join(tmp, "warm"), WARMUP_SAMPLES, size)
  rows, totals = [], {name: 0.0 for name in modes}
  count = 0
  for task in tasks:
    times, dirs = {}, {}
    for name, size in modes.items():
      out = os.path.join(tmp, name.replace(" ", "_"))
      times[name], dirs[name] = _seconds(predictor, grit_dir, task, out, args.num_examples, size)
      totals[name] += times[name]
    n = len(grit.load_predictions(dirs["one at a time"], task))
    count += n
    try:
      test_grit_batched.assert_same_submission(*dirs.values(), [task])
      same = "yes"
    except AssertionError as e:
      same = f"NO ({str(e).splitlines()[0][:60]})"
    rows.append((task, n, times, same))
  names = list(modes)
  print(f"| task | samples | {names[0]} (samples/s) | {names[1]} (samples/s) | ratio | same |")
  print("| --- | --- | --- | --- | --- | --- |")
  for task, n, times, same in rows:
    a, b = n / times[names[0]], n / times[names[1]]
    print(f"| {task} | {n} | {a:.2f} | {b:.2f} | {b / a:.2f}x | {same} |")
  a, b = count / totals[names[0]], count / totals[names[1]]
  print(f"| overall | {count} | {a:.2f} | {b:.2f} | {b / a:.2f}x | |")


if __name__ == "__main__":
  main()
