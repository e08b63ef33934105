"""Convert released VQ-GAN weights into this package's parameter layout (see vqgan/model.py).

  python -m vqgan.convert --taming last.ckpt --out DIR [--preset official] [--allow-pickle]
  python -m vqgan.convert --unified-io vqgan.msgpack --out DIR [--preset official]

--taming reads a taming-transformers PyTorch Lightning checkpoint (e.g.
vqgan_imagenet_f16_16384/checkpoints/last.ckpt); it needs torch (requirements-torch.txt).
Its `loss.*` entries (discriminator, LPIPS) are dropped and counted in the summary.
--unified-io reads flax msgpack holding the `discrete_vae` subtree (the vqgan.msgpack that
`python -m unified_io.convert` writes) or a whole released Unified-IO .bin.
DIR is then loadable with `vqgan.load(DIR)`.
"""

import argparse
import json
import os
import re
import sys

import flax
import jax
import numpy as np

from unified_io.common import param_trees
from vqgan import api
from vqgan.configs import PRESETS, VQGANConfig, get_config
from vqgan.model import check_params, count_params, flatten, param_shapes, unflatten

UNIFIED_IO_KEY = "discrete_vae"
IGNORED_TAMING_PREFIX = "loss."  # discriminator and LPIPS weights, unused at inference

_LEVEL_PART = re.compile(r"^(down|up)_(\d+)_(block|attn)_(\d+)$")
_RESAMPLE = re.compile(r"^(down|up)_(\d+)_(downsample|upsample)$")
_MIDDLE = re.compile(r"^mid_(block_1|attn_1|block_2)$")


def _taming_module_part(part, levels):
  """One segment of our module path -> the dotted taming path for it."""
  match = _LEVEL_PART.match(part)
  if match:
    kind, index, sub, i = match.groups()
    return f"{kind}.{_taming_level(kind, int(index), levels)}.{sub}.{i}"
  match = _RESAMPLE.match(part)
  if match:
    kind, index, sub = match.groups()
    return f"{kind}.{_taming_level(kind, int(index), levels)}.{sub}"
  match = _MIDDLE.match(part)
  if match:
    return f"mid.{match.group(1)}"
  return part


def _taming_level(kind, index, levels):
  # Taming's decoder.up list is indexed by resolution level; ours counts execution steps.
  return levels - 1 - index if kind == "up" else index


def taming_names(config: VQGANConfig):
  """{our flat name 'encoder/conv_in/kernel': taming key 'encoder.conv_in.weight'}."""
  levels = len(config.ch_mult)
  names = {}
  for ours in flatten(param_shapes(config)):
    *modules, leaf = ours.split("/")
    parts = [_taming_module_part(p, levels) for p in modules]
    if leaf == "embedding":  # torch nn.Embedding inside VectorQuantizer.embedding
      parts.append("embedding")
    names[ours] = ".".join(parts + ["bias" if leaf == "bias" else "weight"])
  return names


def _to_numpy(value):
  if hasattr(value, "detach"):  # torch.Tensor; .float() because numpy has no bfloat16
    value = value.detach().cpu().float().numpy()
  return np.asarray(value, np.float32)


def _from_torch_layout(array, ndim):
  # torch conv weights are [out, in, kh, kw]; ours are [kh, kw, in, out].
  return np.transpose(array, (2, 3, 1, 0)) if ndim == 4 else array


def ignored_taming_keys(state_dict):
  return sorted(k for k in state_dict if k.startswith(IGNORED_TAMING_PREFIX))


def from_taming(state_dict, preset_or_config="official"):
  """Taming VQModel state_dict (torch tensors or arrays) -> our params (nested dict of numpy).

  `loss.*` keys are skipped (see ignored_taming_keys); any other unknown key, a missing key or
  a wrong shape raises ValueError listing all of them.
  """
  config = get_config(preset_or_config)
  names = taming_names(config)
  shapes = dict(flatten(param_shapes(config)))
  wanted = {taming: ours for ours, taming in names.items()}
  present = {k for k in state_dict if not k.startswith(IGNORED_TAMING_PREFIX)}
  unknown = sorted(present - set(wanted))
  missing = sorted(set(wanted) - present)
  flat, wrong = {}, []
  for taming in sorted(present & set(wanted)):
    ours = wanted[taming]
    try:
      array = _to_numpy(state_dict[taming])
    except (TypeError, ValueError) as e:
      wrong.append(f"{taming} -> {ours}: not a numeric array ({type(e).__name__}: {e})")
      continue
    if array.ndim == len(shapes[ours]):  # a wrong rank is listed in torch's layout
      array = _from_torch_layout(array, array.ndim)
    if tuple(array.shape) != shapes[ours]:
      wrong.append(f"{taming} -> {ours}: {tuple(array.shape)} != expected {shapes[ours]}")
    flat[ours] = array
  if unknown or missing or wrong:
    lines = [f"Taming checkpoint does not match the VQ-GAN config {config}:"]
    for title, items in (
      ("unknown keys", unknown),
      ("missing keys", missing),
      ("wrong shape (after OIHW->HWIO)", wrong),
    ):
      if items:
        lines.append(
          f"  {title} ({len(items)}): "
          + ", ".join(items[:40])
          + (" ..." if len(items) > 40 else "")
        )
    raise ValueError("\n".join(lines))
  return unflatten(flat)


def load_taming_state_dict(path, allow_pickle=False):
  """The `state_dict` of a taming .ckpt (or a bare state_dict file)."""
  try:
    import torch  # only this path needs torch; the rest of the package is torch-free
  except ImportError as e:
    raise ImportError(
      "Reading a taming .ckpt needs PyTorch: pip install --no-deps -r requirements-torch.txt"
    ) from e
  if not os.path.isfile(path):
    raise ValueError(f"Taming checkpoint {path} does not exist")
  try:
    checkpoint = torch.load(path, map_location="cpu", weights_only=not allow_pickle)
  except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError ...
    hint = (
      ""
      if allow_pickle
      else (
        " If the file holds Lightning objects besides tensors and "
        "you trust it, rerun with --allow-pickle."
      )
    )
    raise ValueError(f"Could not read {path} with torch.load: {e}.{hint}") from e
  if isinstance(checkpoint, dict) and "state_dict" in checkpoint:
    checkpoint = checkpoint["state_dict"]
  if not isinstance(checkpoint, dict):
    raise ValueError(f"{path} holds a {type(checkpoint).__name__}, not a state_dict")
  return checkpoint


def from_unified_io(discrete_vae_tree, preset_or_config="official"):
  """The `discrete_vae` subtree of a released Unified-IO checkpoint -> our params.

  The names already match (vqgan/model.py); this casts to float32 numpy and checks every
  name and shape, raising ValueError that lists the mismatches.
  """
  config = get_config(preset_or_config)
  params = jax.tree.map(lambda x: np.asarray(x, np.float32), flax.core.unfreeze(discrete_vae_tree))
  check_params(params, config, "Unified-IO discrete_vae parameters")
  return params


def load_unified_io_tree(path):
  """The `discrete_vae` subtree (or the whole tree when it is one) of a flax msgpack file."""
  tree = param_trees.read_msgpack(path, "Unified-IO file")
  if isinstance(tree, dict) and set(tree) == {"params"}:
    tree = tree["params"]
  if not isinstance(tree, dict):
    raise ValueError(
      f"{path} holds a msgpack {type(tree).__name__} at its top level; expected a dict: the "
      f"VQ-GAN parameters ({UNIFIED_IO_KEY} subtree, as `python -m unified_io.convert` "
      f"writes vqgan.msgpack) or a released Unified-IO .bin"
    )
  return tree.get(UNIFIED_IO_KEY, tree)


def main(argv=None):
  parser = argparse.ArgumentParser(
    prog="python -m vqgan.convert",
    description=__doc__,
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--taming", help="taming-transformers Lightning .ckpt")
  source.add_argument("--unified-io", help="flax msgpack with the discrete_vae subtree")
  parser.add_argument("--out", required=True, help="output directory for vqgan.load")
  parser.add_argument("--preset", default="official", choices=sorted(PRESETS))
  parser.add_argument(
    "--allow-pickle",
    action="store_true",
    help="let torch.load unpickle arbitrary objects (trusted files only)",
  )
  args = parser.parse_args(argv)
  summary = {"out": args.out, "preset": args.preset}
  if args.taming:
    state_dict = load_taming_state_dict(args.taming, args.allow_pickle)
    ignored = ignored_taming_keys(state_dict)
    params = from_taming(state_dict, args.preset)
    summary["ignored_keys"] = len(ignored)
    summary["ignored_prefixes"] = sorted({".".join(k.split(".")[:2]) for k in ignored})
  else:
    params = from_unified_io(load_unified_io_tree(args.unified_io), args.preset)
  api.save(args.out, args.preset, params)
  summary["parameters"] = count_params(params)
  print(json.dumps(summary))
  return summary


if __name__ == "__main__":
  try:
    main()
  except (OSError, ValueError) as e:  # bad input files: the message, exit status 1
    sys.exit(f"python -m vqgan.convert: error: {e}")
