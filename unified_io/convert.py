"""Convert a released Unified-IO 1 checkpoint into this codebase's parameter layout.

  python -m unified_io.convert --official=xl_1000k.bin --config=configs/xl.py --out=DIR

The released files (allenai/unified-io-inference README: small_1000k.bin ... xl_1000k.bin on
s3://ai2-prior-uio/public/model-weights-bin/) are flax msgpack of the bare float32 parameter
tree: `token_embedder`, `encoder`, `decoder` and the VQ-GAN under `discrete_vae`. Users
download them themselves; nothing here fetches them.

Output: DIR/params (orbax checkpoint of the network parameters), DIR/vqgan.msgpack (the
VQ-GAN subtree, unchanged, for the VQ-GAN converter), DIR/config.json.
"""

import dataclasses
import json
import os

from absl import app
from absl import flags
import flax
import flax.linen as nn
import jax
import numpy as np
import orbax.checkpoint as ocp
from ml_collections import config_flags

from unified_io.model import builder as model_lib
from unified_io.common import param_trees

VQGAN_KEY = "discrete_vae"


def check_tree(tree, expected, what="checkpoint"):
  """Raises ValueError listing missing, unexpected and wrongly shaped parameters."""
  param_trees.check_shapes(
    param_trees.flat_shapes(tree),
    param_trees.flat_shapes(expected),
    f"{what} (against the model config)",
  )


def convert_official(official, config):
  """Official tree -> (network params in our layout for `config`, VQ-GAN subtree or None)."""
  official = flax.core.unfreeze(official)
  if set(official) == {"params"}:
    official = official["params"]
  vqgan = official.pop(VQGAN_KEY, None)
  params = jax.tree.map(lambda x: np.asarray(x, np.float32), official)
  net = model_lib.build(config)
  unscanned = net.clone(config=dataclasses.replace(net.config, scan_layers=False))
  check_tree(params, nn.unbox(model_lib.abstract_params(unscanned)), "official checkpoint")
  if net.config.scan_layers:
    params = param_trees.stack_layers(params)
  return params, vqgan


def load_official(path):
  """The parameter tree of a released .bin; FileNotFoundError / ValueError naming the file."""
  tree = param_trees.read_msgpack(path, "official checkpoint")
  inner = tree["params"] if isinstance(tree, dict) and set(tree) == {"params"} else tree
  if not isinstance(inner, dict):
    raise ValueError(
      f"{path} holds a msgpack {type(inner).__name__} at its top level; expected a released "
      f"Unified-IO checkpoint: a dict of parameters (token_embedder, encoder, decoder, "
      f"{VQGAN_KEY}, optionally under 'params')"
    )
  return tree


def check_request(official, config, out):
  """ValueError naming the flag when the conversion cannot start: no --config, or an --out
  that already holds something (a conversion never overwrites)."""
  if config is None:
    raise ValueError(
      f"Pass --config: the config of the checkpoint's size (e.g. configs/xl.py for "
      f"{os.path.basename(official or 'xl_1000k.bin')}), which its parameters are checked "
      f"against"
    )
  if os.path.exists(out) and not (os.path.isdir(out) and not os.listdir(out)):
    raise ValueError(
      f"--out={out} already exists and is not an empty directory; conversion does not "
      f"overwrite: pass a new --out or remove it"
    )


def save_params(directory, params):
  ckpt = ocp.StandardCheckpointer()
  ckpt.save(os.path.abspath(os.path.join(directory, "params")), params)
  ckpt.wait_until_finished()


def load_params(directory):
  return ocp.StandardCheckpointer().restore(os.path.abspath(os.path.join(directory, "params")))


def _main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  try:
    check_request(_OFFICIAL.value, config, _OUT.value)
    print(f"Reading {_OFFICIAL.value} ...", flush=True)
    params, vqgan = convert_official(load_official(_OFFICIAL.value), config)
  except (OSError, ValueError) as e:  # a file not there, not msgpack, or another model's
    raise app.UsageError(str(e)) from e
  os.makedirs(_OUT.value, exist_ok=True)
  save_params(_OUT.value, params)
  if vqgan is not None:
    with open(os.path.join(_OUT.value, "vqgan.msgpack"), "wb") as f:
      f.write(flax.serialization.msgpack_serialize(vqgan))
  with open(os.path.join(_OUT.value, "config.json"), "w") as f:
    f.write(config.to_json(indent=2))
  counts = model_lib.parameter_counts(params)
  print(
    json.dumps(
      {
        "out": _OUT.value,
        "parameters": counts["total"],
        "vqgan_parameters": int(sum(np.size(x) for x in jax.tree.leaves(vqgan or {}))),
      }
    )
  )


if __name__ == "__main__":
  _OFFICIAL = flags.DEFINE_string("official", None, "Released UIO1 .bin checkpoint.", required=True)
  _OUT = flags.DEFINE_string("out", None, "Output directory.", required=True)
  _CONFIG = config_flags.DEFINE_config_file("config", None, "Config of the matching size.")
  app.run(_main)
