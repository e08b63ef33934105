"""Runs the built-in task evaluator once, in 1 or N processes on 127.0.0.1 (test helper).

  python tests/eval_runner.py --data_dir=D --out=metrics.json [--process=I/N@PORT]

Parameters are the tiny config's initialisation, made global over every process's devices
as the trainer makes them. Writes the evaluator's metrics and how many examples this
process predicted to --out.
"""

import argparse
import json
import os
import sys


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--process", default="")
  parser.add_argument("--tasks", default="builtin_vqa,builtin_segmentation")
  parser.add_argument("--num_examples", type=int, default=4)
  args = parser.parse_args()
  os.environ["JAX_PLATFORMS"] = "cpu"
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  import flax.linen as nn
  import jax
  from configs import tiny
  from unified_io.common import distributed
  from unified_io.common import mesh as mesh_lib
  from unified_io.eval import evaluators
  from unified_io.eval import predictor as predictor_lib
  from unified_io.model import builder

  if args.process:
    index_count, port = args.process.split("@")
    index, count = map(int, index_count.split("/"))
    distributed.initialize_distributed(f"127.0.0.1:{port}", count, index)
  config = tiny.get_config()
  config.data.data_dir = args.data_dir
  config.evals = {
    "tasks": dict(
      every_steps=1, num_examples=args.num_examples, batch_size=2, report=False, tasks=args.tasks
    )
  }
  model = builder.build(config)
  mesh = mesh_lib.make_mesh(config.mesh)
  params = jax.jit(
    lambda: nn.unbox(builder.init_params(model, jax.random.PRNGKey(0))),
    out_shardings=mesh_lib.replicated(mesh),
  )()
  predicted = []
  for name in ("text_with_scores", "choose", "image"):  # count the rows this host decodes
    original = getattr(predictor_lib.Predictor, name)

    def counted(self, features, *a, _original=original, **kw):
      predicted.append(len(features["text_inputs"]))
      return _original(self, features, *a, **kw)

    setattr(predictor_lib.Predictor, name, counted)

  class Log:
    main = jax.process_index() == 0

    def line(self, text):
      print(text, flush=True)

    def scalars(self, step, values):
      pass

  (evaluator,) = evaluators.build(config, workdir=os.path.dirname(args.out))
  metrics = evaluator.run(params, 1, Log())
  with open(args.out, "w") as f:
    json.dump(
      {"metrics": metrics, "predicted_rows": sum(predicted), "process_count": jax.process_count()},
      f,
      indent=1,
      sort_keys=True,
    )


if __name__ == "__main__":
  main()
