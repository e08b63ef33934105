"""Regenerate the released-network reference data that tests/test_released_numerics.py checks.

  .venv/bin/python tests/released_numerics/regenerate.py --uio_inference=/path/to/checkout

`--uio_inference` is a checkout of allenai/unified-io-inference (the released Unified-IO 1
inference code; the committed data came from commit ee0bd9d, see `source` in the npz). Its
`uio/` package is copied into a temporary directory, the two compatibility patches of
`PATCHES` are applied to the copy (the checkout is never written), and its network is run on
this venv's JAX/Flax:

  - a tiny random configuration of the released `Transformer` (`RELEASED_CONFIG`), its
    parameters made by the released initialisers with every norm scale then drawn from
    U(0.5, 1.5) (released norms start at 1, which would hide a norm applied in the wrong
    place);
  - fixed-seed inputs for the cases of `CASES` (text and image targets, masked image
    patches, a text-only batch, pre-selected patches) and a teacher-forced run of the
    released cached decoding step (`UnifiedIOModel._compute_logits_from_slice`).

Written to --out_dir (default: this directory):
  params.bin     the parameters in the released checkpoint format (flax msgpack of the bare
                 tree, as in small_1000k.bin; no `discrete_vae`, see below), read by
                 `unified_io.convert.load_official`;
  reference.npz  `<case>/in/<key>` inputs in `unified_io.model.network.UnifiedIO`'s batch
                 format, `<case>/out/<name>` the released network's outputs (logits of the
                 ids the position may emit, a few hidden states), `cached/...` the cached
                 decoding steps, and `config` / `source` (JSON strings).

The VQ-GAN is not part of this data: the released `Transformer.__call__` turns target images
into codes with its `discrete_vae` and then calls `Transformer.encode` and
`Transformer.decode`; this script calls those two directly with code ids (as the released
`predict_with_answer_options` does). The VQ-GAN has its own equivalence test
(tests/test_vqgan_torch_equivalence.py).
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import flax
import jax
import jax.numpy as jnp
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# Files of the released code that are imported (uio/runner.py and uio/utils.py need torch and
# transformers and are not used).
RELEASED_FILES = ("network.py", "t5x_layers.py", "model.py", "decoding.py")

# (file, released text, replacement, occurrences, why). Each text must occur exactly that
# often in the copy, so a checkout that differs from the one these were written for fails
# here, naming the file, instead of running patched differently.
PATCHES = (
  (
    "model.py",
    "jax.pxla.ShardedDeviceArray",
    "jax.Array",
    1,
    "jax.pxla is no longer public API; the name is only used in a type alias",
  ),
  (
    "decoding.py",
    "jnp.DeviceArray",
    "jax.Array",
    7,
    "jnp.DeviceArray was removed; only used in BeamState's field annotations",
  ),
)

# The released `UnifiedIOConfig`, made tiny. Things the released code fixes and this data
# therefore follows: 2-D relative position buckets of the decoder assume a 16-code-wide
# target grid (`img_width=16` in Decoder); the encoder image must have exactly
# `encoder_max_image_length` patches (otherwise the released encoder resizes its position
# table); text ids below `vocab_size` (text pieces + 1100 extra ids, padded), image ids above.
# head_dim != emb_dim / num_heads on purpose: the released absolute position bias is scaled
# by (emb_dim / num_heads)^-0.5, and equal numbers would hide a head_dim^-0.5.
RELEASED_CONFIG = dict(
  vocab_size=1152,  # padded text part for 32 pieces + 1100 extra ids (the smallest there is)
  image_vocab_size=64,
  image_patch_size=4,
  dtype="float32",
  emb_dim=32,
  num_heads=2,
  num_encoder_layers=2,
  num_decoder_layers=2,
  head_dim=8,
  mlp_dim=64,
  encoder_max_image_length=64,  # 32x32 image, 4-pixel patches: an 8x8 grid
  encoder_max_text_length=16,
  decoder_max_image_length=48,  # three rows of the 16-wide target grid
  decoder_max_text_length=16,
  default_image_size=(32, 32),
  num_seg_emb=2,
)
BATCH = 2
TEXT_LEN = 12  # encoder text length, < encoder_max_text_length (image positions start at 16)
TARGET_LEN = 6  # decoder text length, < decoder_max_text_length (image positions start at 16)
SELECTED_PATCHES = 40
EOS_ID = 1
SEED = 0
# The released model's pixel normalisation (uio/utils.py normalize_image); a missing image is
# zeros normalised, with every patch masked (uio/utils.py preprocess_image).
PIXEL_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
PIXEL_STD = np.array([0.229, 0.224, 0.225], np.float32)

CASES = ("text_and_image_targets", "masked_patches", "text_only", "selected_patches")
# Hidden states recorded besides the encoder output: the output of each stack's first layer.
CAPTURED_LAYERS = (("encoder", "layers_0"), ("decoder", "layers_0"))


def copy_and_patch(checkout, dest):
  """Copies the released `uio/` package to dest/uio and applies PATCHES; returns file hashes."""
  src = os.path.join(checkout, "uio")
  missing = [f for f in RELEASED_FILES if not os.path.isfile(os.path.join(src, f))]
  if missing:
    raise SystemExit(
      f"--uio_inference={checkout}: no {', '.join('uio/' + f for f in missing)}; pass a "
      f"checkout of allenai/unified-io-inference"
    )
  os.makedirs(os.path.join(dest, "uio"))
  hashes = {}
  for name in RELEASED_FILES:
    shutil.copy(os.path.join(src, name), os.path.join(dest, "uio", name))
    with open(os.path.join(src, name), "rb") as f:
      hashes[name] = hashlib.sha256(f.read()).hexdigest()
  for name, old, new, expected, why in PATCHES:
    path = os.path.join(dest, "uio", name)
    with open(path) as f:
      text = f.read()
    if text.count(old) != expected:
      raise SystemExit(
        f"uio/{name}: {old!r} occurs {text.count(old)} times, not {expected} (patch: {why}); "
        f"the checkout is not the revision these patches were written for"
      )
    with open(path, "w") as f:
      f.write(text.replace(old, new))
  return hashes


def checkout_commit(checkout):
  try:
    out = subprocess.run(
      ["git", "-C", checkout, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown (not a git checkout)"


# ------------------------------------------------------------------------------- inputs


def _image_and_mask(rs, image_size, grid):
  images = rs.uniform(0, 1, (BATCH, image_size, image_size, 3)).astype(np.float32)
  return (images - PIXEL_MEAN) / PIXEL_STD, np.ones((BATCH, grid * grid), bool)


def make_cases(rs, cfg):
  """{case: batch} in `unified_io.model.network.UnifiedIO`'s batch format (numpy)."""
  text_vocab, image_vocab = cfg["vocab_size"], cfg["image_vocab_size"]
  size = cfg["default_image_size"][0]
  grid = size // cfg["image_patch_size"]

  def text(length, valid):
    """Random non-special ids, then EOS, then padding, `valid[b]` ids (EOS included)."""
    ids = rs.randint(3, text_vocab - 1, (BATCH, length)).astype(np.int32)
    for b, n in enumerate(valid):
      ids[b, n - 1] = EOS_ID
      ids[b, n:] = 0
    return ids

  def image_targets():
    n = cfg["decoder_max_image_length"]
    return (text_vocab + rs.randint(0, image_vocab, (BATCH, n))).astype(np.int32)

  cases = {}
  images, mask = _image_and_mask(rs, size, grid)
  target_mask = np.ones((BATCH, cfg["decoder_max_image_length"]), bool)
  target_mask[1, -10:] = False  # a partly padded target image
  cases["text_and_image_targets"] = dict(
    text_inputs=text(TEXT_LEN, (TEXT_LEN, 7)),
    image_inputs=images,
    image_input_mask=mask,
    text_targets=text(TARGET_LEN, (TARGET_LEN, 3)),
    image_targets=image_targets(),
    image_target_mask=target_mask,
  )
  images, mask = _image_and_mask(rs, size, grid)
  mask = mask.reshape(BATCH, grid, grid)
  mask[0, 2:5, 3:7] = False  # an inpainting region
  mask[1, 5:, :] = False  # padding below a wide image
  cases["masked_patches"] = dict(
    text_inputs=text(TEXT_LEN, (9, TEXT_LEN)),
    image_inputs=images,
    image_input_mask=mask.reshape(BATCH, grid * grid),
    text_targets=text(TARGET_LEN, (4, TARGET_LEN)),
  )
  cases["text_only"] = dict(
    text_inputs=text(TEXT_LEN, (TEXT_LEN, 5)),
    text_targets=text(TARGET_LEN, (TARGET_LEN, 2)),
    image_targets=image_targets(),
  )
  images, mask = _image_and_mask(rs, size, grid)
  mask[1, rs.choice(grid * grid, 20, replace=False)] = False
  positions = np.stack([rs.permutation(grid * grid)[:SELECTED_PATCHES] for _ in range(BATCH)])
  cases["selected_patches"] = dict(
    text_inputs=text(TEXT_LEN, (TEXT_LEN, 10)),
    image_inputs=images,
    image_input_mask=mask,
    image_input_positions=positions.astype(np.int32),
    text_targets=text(TARGET_LEN, (TARGET_LEN, 5)),
    image_targets=image_targets(),
  )
  return cases


# ------------------------------------------------------------------ the released network


def released_arguments(batch, cfg, layers):
  """The released `encode` / `decode` arguments for one of our batches.

  Our network builds the decoder inputs itself (targets shifted right, BOS = 0; image codes
  after the image start id vocab_size - 1); the released `decode` takes them from the caller
  (its data pipeline / `__call__`), so they are built here the same way.
  """
  bsz = batch["text_inputs"].shape[0]
  patch = cfg["image_patch_size"]
  size = cfg["default_image_size"][0]
  grid = size // patch
  images = batch.get("image_inputs")
  mask = batch.get("image_input_mask")
  positions = None
  if images is None:  # the released runner's missing image: zeros, normalised, all masked
    images = np.broadcast_to(-PIXEL_MEAN / PIXEL_STD, (bsz, size, size, 3)).astype(np.float32)
    mask = np.zeros((bsz, grid * grid), bool)
  if "image_input_positions" in batch:  # released form: patches already cut and selected
    positions = batch["image_input_positions"]
    patches = np.asarray(layers.space_to_depth(jnp.asarray(images), spatial_block_size=patch))
    images = np.take_along_axis(patches, positions[..., None], axis=1)
    mask = np.take_along_axis(mask, positions, axis=1)
  text_targets = batch["text_targets"]
  image_targets = batch.get("image_targets")
  if image_targets is None:
    # The released text-only output: one masked dummy image position (model.py does this
    # for answer options); causal attention keeps it out of every text position.
    image_targets = np.zeros((bsz, 1), np.int32)
    image_target_mask = np.zeros((bsz, 1), np.int32)
  else:
    image_target_mask = batch.get("image_target_mask", np.ones(image_targets.shape, bool))
  start = np.full((bsz, 1), cfg["vocab_size"] - 1, np.int32)
  encode = (batch["text_inputs"], images, None, mask, positions, None)
  decode = dict(
    text_decoder_inputs=np.pad(text_targets[:, :-1], ((0, 0), (1, 0))),
    image_decoder_inputs=np.concatenate([start, image_targets[:, :-1]], axis=1),
    text_decoder_targets=text_targets,
    image_decoder_targets=image_targets,
    image_decoder_masks=image_target_mask,
  )
  return encode, decode


def _forward(module, encode_args, decode_args):
  (encoded, pe), encoder_masks = module.encode(*encode_args, enable_dropout=False)
  text_logits, image_logits, _ = module.decode(
    (encoded, pe), encoder_masks, enable_dropout=False, **decode_args
  )
  return dict(encoded=encoded, encoder_pe=pe, text_logits=text_logits, image_logits=image_logits)


def make_params(transformer, encode_args, decode_args, rs):
  """Released initialisers, then every norm scale drawn from U(0.5, 1.5)."""
  variables = transformer.init(jax.random.key(SEED), encode_args, decode_args, method=_forward)
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables["params"]))
  flat = {k: np.asarray(v, np.float32) for k, v in flat.items()}
  for k, v in flat.items():
    if k[-1] == "scale":
      flat[k] = rs.uniform(0.5, 1.5, v.shape).astype(np.float32)
  return flax.traverse_util.unflatten_dict(flat)


def _is_captured(module, method_name):
  return method_name == "__call__" and tuple(module.scope.path) in CAPTURED_LAYERS


def run_case(transformer, params, batch, cfg, layers):
  """The released network's outputs for one batch, as saved: allowed logits and hidden states."""
  encode_args, decode_args = released_arguments(batch, cfg, layers)
  out, state = transformer.apply(
    {"params": params},
    encode_args,
    decode_args,
    method=_forward,
    capture_intermediates=_is_captured,
  )
  out = {k: np.asarray(v) for k, v in out.items()}
  for path in CAPTURED_LAYERS:
    node = state["intermediates"]
    for name in path:
      node = node[name]
    out["_".join(path)] = np.asarray(node["__call__"][0])
  split = cfg["vocab_size"]
  # Only the ids a position may emit are saved; the rest must be the released -1e10.
  check_modality_mask(out["text_logits"], out["image_logits"], split)
  out["text_logits"] = out["text_logits"][..., :split]
  if "image_targets" in batch:
    out["image_logits"] = out["image_logits"][..., split:]
  else:
    del out["image_logits"]  # the dummy position
  return out


def check_modality_mask(text_logits, image_logits, split):
  if not (np.all(text_logits[..., split:] <= -1e9) and np.all(image_logits[..., :split] <= -1e9)):
    raise AssertionError("the released network did not mask logits by modality as expected")


def run_cached(transformer, released_model, params, batch, cfg, layers):
  """Teacher-forced steps of the released cached decoding (`_compute_logits_from_slice`).

  Every decoder input of `batch` (text then image) is fed one step at a time, as the
  released temperature sampler feeds its tokens, with its `sequences` buffer (position i
  holds the token fed at step i) as `live_seqs`; the released step then masks text positions
  after an EOS and replaces the id fed at the first image step by the image start id.
  """
  encode_args, decode_args = released_arguments(batch, cfg, layers)
  (encoded, pe), encoder_masks = transformer.apply(
    {"params": params}, *encode_args, enable_dropout=False, method=transformer.encode
  )
  text_len = decode_args["text_decoder_inputs"].shape[1]
  image_len = decode_args["image_decoder_inputs"].shape[1]
  # The released predict_batch_with_aux makes the cache with a decode=True call of the whole
  # model on ones; the cache depends only on the shapes, so `decode` on ones makes the same.
  ones = lambda n: jnp.ones((BATCH, n), jnp.int32)
  _, variables = transformer.apply(
    {"params": params},
    (encoded, pe),
    encoder_masks,
    ones(text_len),
    ones(image_len),
    ones(text_len),
    ones(image_len),
    decode=True,
    enable_dropout=False,
    method=transformer.decode,
    mutable=["cache"],
  )
  cache = variables["cache"]
  fed = np.concatenate(
    [decode_args["text_decoder_inputs"], decode_args["image_decoder_inputs"]], axis=1
  )
  sequences = np.zeros((BATCH, text_len + image_len + 2), np.int32)
  logits = []
  for i in range(text_len + image_len):
    sequences[:, i] = fed[:, i]
    step_logits, cache = released_model._compute_logits_from_slice(
      jnp.asarray(fed[:, i : i + 1]),
      cache,
      jnp.int32(i),
      jnp.asarray(sequences),
      params,
      (encoded, pe),
      encoder_masks,
      text_len,
      image_len,
    )
    logits.append(np.asarray(step_logits))
  logits = np.stack(logits, axis=1)
  split = cfg["vocab_size"]
  check_modality_mask(logits[:, :text_len], logits[:, text_len:], split)
  return dict(
    fed_ids=fed,
    text_logits=logits[:, :text_len, :split],
    image_logits=logits[:, text_len:, split:],
  )


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--uio_inference", required=True, help="allenai/unified-io-inference")
  parser.add_argument("--out_dir", default=HERE, help="where params.bin and reference.npz go")
  args = parser.parse_args(argv)
  checkout = os.path.abspath(args.uio_inference)
  jax.config.update("jax_platforms", "cpu")
  with tempfile.TemporaryDirectory() as scratch:
    hashes = copy_and_patch(checkout, scratch)
    sys.path.insert(0, scratch)
    try:
      from uio import model as released_model_lib
      from uio import network as released
      from uio import t5x_layers as layers
    finally:
      sys.path.remove(scratch)
    cfg = dict(RELEASED_CONFIG)
    transformer = released.Transformer(released.UnifiedIOConfig(**cfg), released.VAEConfig())
    rs = np.random.RandomState(SEED)
    cases = make_cases(rs, cfg)
    first = released_arguments(cases["text_and_image_targets"], cfg, layers)
    params = make_params(transformer, *first, rs)
    arrays = {}
    for name, batch in cases.items():
      arrays.update({f"{name}/in/{k}": v for k, v in batch.items()})
      out = run_case(transformer, params, batch, cfg, layers)
      arrays.update({f"{name}/out/{k}": v for k, v in out.items()})
    cached = run_cached(
      transformer,
      released_model_lib.UnifiedIOModel(transformer),
      params,
      cases["text_and_image_targets"],
      cfg,
      layers,
    )
    arrays.update({f"cached/{k}": v for k, v in cached.items()})
  source = dict(
    repository="allenai/unified-io-inference",
    commit=checkout_commit(checkout),
    sha256={f"uio/{k}": v for k, v in hashes.items()},
    patches=[dict(file=f"uio/{f}", old=o, new=n, why=w) for f, o, n, _, w in PATCHES],
    jax=jax.__version__,
    flax=flax.__version__,
    batch=BATCH,
    eos_id=EOS_ID,
  )
  arrays["config"] = np.array(json.dumps(cfg))
  arrays["source"] = np.array(json.dumps(source))
  os.makedirs(args.out_dir, exist_ok=True)
  with open(os.path.join(args.out_dir, "params.bin"), "wb") as f:
    f.write(flax.serialization.msgpack_serialize(params))
  np.savez_compressed(os.path.join(args.out_dir, "reference.npz"), **arrays)
  sizes = {
    n: os.path.getsize(os.path.join(args.out_dir, n)) for n in ("params.bin", "reference.npz")
  }
  print(json.dumps(dict(out_dir=args.out_dir, bytes=sizes, arrays=len(arrays))))


if __name__ == "__main__":
  main()
