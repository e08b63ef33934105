"""Runs the trainer in a fresh process (so XLA device-count flags apply) and prints losses.

  python tests/train_runner.py WORKDIR STEPS MESH_MODEL [--devices N] [--process I/N@PORT]
      [--set key=value ...]

Prints one JSON line: {"losses": [[step, loss], ...]}.
"""

import argparse
import json
import os
import sys


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("workdir")
  parser.add_argument("steps", type=int)
  parser.add_argument("mesh_model", type=int)
  parser.add_argument("--devices", type=int, default=1)
  parser.add_argument("--process", default="")
  parser.add_argument("--set", nargs="*", default=[])
  args = parser.parse_args()
  os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"
  os.environ["JAX_PLATFORMS"] = "cpu"
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  import jax
  from configs import tiny
  from unified_io.common import distributed
  from unified_io.train import trainer as train

  if args.process:
    index_count, port = args.process.split("@")
    index, count = map(int, index_count.split("/"))
    distributed.initialize_distributed(f"127.0.0.1:{port}", count, index)
  assert jax.device_count() == args.devices * (
    int(args.process.split("/")[1].split("@")[0]) if args.process else 1
  )
  config = tiny.get_config()
  config.data.source = "synthetic"  # the in-code copy task: no dataset or VQ-GAN needed
  config.train.total_steps = args.steps
  config.train.log_every = 1
  config.train.tensorboard = False
  config.train.batch_size = 8
  config.mesh.model = args.mesh_model
  config.checkpoint.every_steps = 2
  config.checkpoint.async_save = False
  for item in args.set:
    key, value = item.split("=", 1)
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = type(node[leaf])(value) if not isinstance(node[leaf], bool) else value == "True"
  history = train.train(config, args.workdir)
  if jax.process_index() == 0:
    print(json.dumps({"losses": history}), flush=True)


if __name__ == "__main__":
  main()
