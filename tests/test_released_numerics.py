"""Our network against the released Unified-IO 1 network, on data the released code produced.

tests/released_numerics/ holds a tiny random configuration of allenai/unified-io-inference's
network: its parameters in the released checkpoint format (params.bin) and its inputs and
outputs (reference.npz), written by tests/released_numerics/regenerate.py from a checkout
of that repository (see its docstring). Here the parameters go through the real conversion
path (`convert.load_official` + `convert.convert_official`), our network runs on the same
inputs, and logits and hidden states must agree to float32 rounding.

They are compared where the input is not padding. At a padded or masked position (text
padding, a masked image patch, a padded or masked target) the released network masks the
position's own attention row as well as its key column, so that row attends uniformly to
every position; ours masks keys only. Nothing reads those positions (every attention masks
them as keys and the loss weights their targets 0), so no other output changes; the
release's cached decoding step masks keys only too, and is compared at every position.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from unified_io import convert
from unified_io.common import vocab
from unified_io.model import builder as model_lib
from unified_io.model import decode_state
from unified_io.model import network
from tests.released_numerics import regenerate

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "released_numerics")

# Absolute tolerance for every compared array (logits and hidden states are O(1-6) here).
# Equivalent float32 computations in another order (one-hot matmul vs gathered embeddings,
# masks folded into the bias) differ by a few ulps: the largest difference measured is
# 1.3e-6 (many arrays agree bit for bit), while the exact instead of the tanh GELU already
# moves logits by 5e-4.
ATOL = 1e-5
MASKED = -1e9  # logits at or below this are masked out (both networks use -1e10)


def our_config(released):
  """Our ml_collections config for the released `UnifiedIOConfig` fields in `released`."""
  config = common.base_config(
    emb_dim=released["emb_dim"],
    num_heads=released["num_heads"],
    num_encoder_layers=released["num_encoder_layers"],
    num_decoder_layers=released["num_decoder_layers"],
    mlp_dim=released["mlp_dim"],
    num_segment_embeddings=released["num_seg_emb"],
  )
  # The network only sees the padded text size: any piece count that pads to the released
  # vocab_size gives the same network (one below it always does).
  config.vocab.text_pieces = released["vocab_size"] - vocab.NUM_EXTRA_IDS - 1
  config.vocab.image_codes = released["image_vocab_size"]
  image_size = released["default_image_size"][0]
  config.model.update(
    dict(
      head_dim=released["head_dim"],
      image_size=image_size,
      patch_size=released["image_patch_size"],
      encoder_max_text_length=released["encoder_max_text_length"],
      decoder_max_text_length=released["decoder_max_text_length"],
      decoder_max_image_length=released["decoder_max_image_length"],
      decoder_image_grid_width=16,  # fixed in the released Decoder (img_width=16)
      train_image_patches=0,
    )
  )
  layout = model_lib.vocab_layout(config)
  assert layout.padded_text_size == released["vocab_size"]
  assert (image_size // released["image_patch_size"]) ** 2 == released["encoder_max_image_length"]
  return config


@pytest.fixture(scope="module")
def data():
  with np.load(os.path.join(DATA, "reference.npz")) as z:
    arrays = {k: z[k] for k in z.files}
  return arrays, json.loads(str(arrays.pop("config"))), json.loads(str(arrays.pop("source")))


@pytest.fixture(scope="module")
def model(data):
  _, released, _ = data
  config = our_config(released)
  official = convert.load_official(os.path.join(DATA, "params.bin"))
  params, vqgan = convert.convert_official(official, config)
  assert vqgan is None  # the data holds the network only (see regenerate.py)
  return model_lib.build(config), params


def _case(arrays, name, part):
  prefix = f"{name}/{part}/"
  return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


def assert_close(ours, released, what, valid=None):
  """Max |ours - released| <= ATOL over the positions where `valid` [B, L] is True."""
  ours, released = np.asarray(ours), np.asarray(released)
  assert ours.shape == released.shape, f"{what}: shape {ours.shape} != {released.shape}"
  if valid is not None:
    ours, released = ours[valid], released[valid]
  diff = float(np.max(np.abs(ours - released)))
  assert diff <= ATOL, f"{what}: max |ours - released| = {diff:.3g} > {ATOL}"


def assert_allowed_logits(text_logits, image_logits, want, split, what, valid=(None, None)):
  """Allowed ids match the released logits; every other id is masked out."""
  text_valid, image_valid = valid
  assert_close(text_logits[..., :split], want["text_logits"], f"{what} text logits", text_valid)
  assert np.all(np.asarray(text_logits[..., split:]) <= MASKED), f"{what}: image ids not masked"
  if "image_logits" in want:
    assert_close(
      image_logits[..., split:], want["image_logits"], f"{what} image logits", image_valid
    )
    assert np.all(np.asarray(image_logits[..., :split]) <= MASKED), f"{what}: text ids not masked"


def valid_positions(batch):
  """(encoder [B, Lt + Li], text target [B, Tt], image target [B, Ti] or None) masks, from
  the inputs alone: what is not padding, a masked patch or a masked target."""
  text = np.asarray(batch["text_inputs"]) > 0
  patches = np.asarray(batch.get("image_input_mask", np.zeros((text.shape[0], 0), bool)))
  if "image_input_positions" in batch:
    patches = np.take_along_axis(patches, np.asarray(batch["image_input_positions"]), axis=1)
  targets = np.asarray(batch["image_targets"]) if "image_targets" in batch else None
  image = None
  if targets is not None:
    image = np.asarray(batch.get("image_target_mask", np.ones(targets.shape, bool)))
  return np.concatenate([text, patches], axis=1), np.asarray(batch["text_targets"]) > 0, image


def _captured(module, method_name):
  return method_name == "__call__" and tuple(module.scope.path) in regenerate.CAPTURED_LAYERS


@pytest.mark.parametrize("case", regenerate.CASES)
def test_forward_matches_released(data, model, case):
  arrays, released, _ = data
  net, params = model
  batch = {k: jnp.asarray(v) for k, v in _case(arrays, case, "in").items()}
  want = _case(arrays, case, "out")
  encoder_valid, text_valid, image_valid = valid_positions(batch)
  decoder_valid = np.concatenate([text_valid] + ([] if image_valid is None else [image_valid]), 1)
  assert not (encoder_valid.all() and decoder_valid.all()), "each case has padded positions"

  encoded, encoder_pe, _ = net.apply({"params": params}, batch, method=network.UnifiedIO.encode)
  (text_logits, image_logits), state = net.apply(
    {"params": params}, batch, capture_intermediates=_captured, mutable=["intermediates"]
  )
  split = released["vocab_size"]
  assert_allowed_logits(text_logits, image_logits, want, split, case, (text_valid, image_valid))
  # Our text-only encoder has no image positions; the released one has masked ones after
  # the text, and its text-only decoder one masked dummy image position after the text.
  hidden = {
    "encoded": (encoded, encoder_valid),
    "encoder_pe": (jnp.broadcast_to(encoder_pe, encoded.shape), None),
  }
  for path in regenerate.CAPTURED_LAYERS:
    node = state["intermediates"]
    for name in path:
      node = node[name]
    valid = encoder_valid if path[0] == "encoder" else decoder_valid
    hidden["_".join(path)] = (node["__call__"][0][0], valid)  # our layers: (hidden, cache)
  for name, (ours, valid) in hidden.items():
    assert_close(ours, want[name][:, : ours.shape[1]], f"{case} {name}", valid)


def test_cached_decoding_matches_released(data, model):
  arrays, released, source = data
  net, params = model
  batch = {k: jnp.asarray(v) for k, v in _case(arrays, "text_and_image_targets", "in").items()}
  want = {k[len("cached/") :]: v for k, v in arrays.items() if k.startswith("cached/")}
  text_len = batch["text_targets"].shape[1]
  image_len = batch["image_targets"].shape[1]
  apply = lambda method, *args: net.apply({"params": params}, *args, method=method)
  encoded, encoder_pe, encoder_mask = apply(network.UnifiedIO.encode, batch)
  self_bias, cross_bias = apply(network.UnifiedIO.decoder_biases, text_len, image_len, encoder_pe)
  cache = decode_state.init_decode_cache(net.config, encoded.shape[0], text_len + image_len)

  @jax.jit
  def step(ids, i, cache):
    return apply(
      network.UnifiedIO.decode_step,
      ids,
      i,
      cache,
      encoded,
      encoder_mask,
      self_bias,
      cross_bias,
      text_len,
      source["eos_id"],
    )

  fed = jnp.asarray(want["fed_ids"])
  logits = []
  for i in range(text_len + image_len):
    step_logits, cache = step(fed[:, i : i + 1], jnp.int32(i), cache)
    logits.append(step_logits)
  logits = jnp.stack(logits, axis=1)
  assert_allowed_logits(
    logits[:, :text_len], logits[:, text_len:], want, released["vocab_size"], "cached decoding"
  )


def test_committed_data_is_what_the_script_writes(data):
  arrays, released, source = data
  assert released == json.loads(json.dumps(regenerate.RELEASED_CONFIG))
  assert source["repository"] == "allenai/unified-io-inference"
  assert [p["file"] for p in source["patches"]] == [f"uio/{p[0]}" for p in regenerate.PATCHES]
  assert sorted(source["sha256"]) == sorted(f"uio/{f}" for f in regenerate.RELEASED_FILES)
  # The script's inputs from its seed are the committed inputs, array for array.
  cases = regenerate.make_cases(np.random.RandomState(regenerate.SEED), regenerate.RELEASED_CONFIG)
  for name, batch in cases.items():
    committed = _case(arrays, name, "in")
    assert sorted(committed) == sorted(batch), name
    for key, value in batch.items():
      np.testing.assert_array_equal(committed[key], value, err_msg=f"{name}/in/{key}")
  outputs = {k for k in arrays if "/out/" in k or k.startswith("cached/")}
  assert {k.split("/")[0] for k in outputs} == set(regenerate.CASES) | {"cached"}


def test_script_refuses_a_checkout_it_was_not_written_for(tmp_path):
  with pytest.raises(SystemExit, match="no uio/network.py"):
    regenerate.copy_and_patch(str(tmp_path), str(tmp_path / "scratch"))
  (tmp_path / "uio").mkdir()
  for name in regenerate.RELEASED_FILES:
    (tmp_path / "uio" / name).write_text("# another revision\n")
  with pytest.raises(SystemExit, match="uio/model.py: 'jax.pxla.ShardedDeviceArray' occurs 0"):
    regenerate.copy_and_patch(str(tmp_path), str(tmp_path / "scratch"))
  assert "another revision" in (tmp_path / "uio" / "model.py").read_text()  # never written
