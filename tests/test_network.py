import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests import tiny
from unified_io.common import param_trees
from unified_io.model import decode_state
from unified_io.model import layers
from unified_io.model import network
from unified_io.model import position_bias


@pytest.fixture(scope="module")
def setup():
  model = tiny.make_model()
  batch = tiny.make_batch()
  params = tiny.init(model, batch)
  return model, batch, params


def _logits(model, params, batch, **kw):
  return model.apply({"params": params}, batch, **kw)


def test_text_buckets_hand_computed():
  # key - query = +3 (key after query), bidirectional: upper half, exact bucket 16 + 3.
  rel = jnp.array([3, -3, 0, -20, 20, -200, -7, -8])
  got = position_bias.text_bucket(rel, bidirectional=True)
  # -20: 8 + int(log(20/8) / log(128/8) * 8) = 8 + int(2.64) = 10; -200 saturates at 15.
  np.testing.assert_array_equal(got, [19, 3, 0, 10, 26, 15, 7, 8])
  # Causal: keys after the query share bucket 0; -20: 16 + int(log(20/16)/log(8)*16) = 17.
  got = position_bias.text_bucket(rel, bidirectional=False)
  np.testing.assert_array_equal(got, [0, 3, 0, 17, 0, 31, 7, 8])


def test_image_buckets_hand_computed():
  # (dx, dy) = key - query in patches. Per-axis bucket of distance d: d if d < 4 else
  # 4 + int(log(d/4)/log(5)*4), capped at 7. Quadrant block (64 buckets each) from the
  # query-minus-key direction (qx, qy) = (-dx, -dy): 3 if qx<=0 & qy<0, 2 if qx<0 & qy>=0,
  # 1 if qx>0 & qy<=0, else 0.
  dx = jnp.array([0, 1, -1, 0, 2, -5, 30, -2])
  dy = jnp.array([0, 0, 0, 2, 3, 1, -30, -3])
  got = position_bias.image_bucket(dx, dy)
  expected = [
    0,  # same patch
    2 * 64 + 1,  # key right: qx=-1<0, qy=0 -> quadrant 2; x bucket 1
    1 * 64 + 1,  # key left: qx=1>0, qy=0 -> quadrant 1
    3 * 64 + 8 * 2,  # key below: qx=0, qy=-2 -> quadrant 3; y bucket 2
    3 * 64 + 2 + 8 * 3,
    1 * 64 + 4 + 8 * 1,  # |dx|=5: 4 + int(log(1.25)/log(5)*4) = 4 + int(0.55) = 4
    2 * 64 + 7 + 8 * 7,  # qx=-30<0, qy=30>=0 -> quadrant 2; both saturate at 7
    0 * 64 + 2 + 8 * 3,  # qx=2>0, qy=3>0 -> quadrant 0
  ]
  np.testing.assert_array_equal(got, expected)


def test_output_shapes_and_modality_masks(setup):
  model, batch, params = setup
  text_logits, image_logits = _logits(model, params, batch)
  assert text_logits.shape == (2, 5, tiny.PADDED_TEXT + tiny.IMAGE_CODES)
  assert image_logits.shape == (2, 16, tiny.PADDED_TEXT + tiny.IMAGE_CODES)
  assert np.all(np.asarray(text_logits[..., tiny.PADDED_TEXT :]) <= -1e9)
  assert np.all(np.asarray(image_logits[..., : tiny.PADDED_TEXT]) <= -1e9)
  assert np.all(np.abs(np.asarray(text_logits[..., : tiny.PADDED_TEXT])) < 1e3)


def test_decoder_is_causal(setup):
  model, batch, params = setup
  text_logits, image_logits = _logits(model, params, batch)
  # Changing a text target moves only later positions (including all image positions).
  t2, i2 = _logits(model, params, dict(batch, text_targets=batch["text_targets"].at[1, 3].set(77)))
  np.testing.assert_array_equal(text_logits[1, :4], t2[1, :4])
  assert not np.allclose(text_logits[1, 4], t2[1, 4])
  assert not np.allclose(image_logits[1, 0], i2[1, 0])
  np.testing.assert_array_equal(image_logits[0], i2[0])
  # Changing a late image target leaves all text and earlier image logits unchanged.
  changed = batch["image_targets"].at[:, 10].set(tiny.PADDED_TEXT + 3)
  t3, i3 = _logits(model, params, dict(batch, image_targets=changed))
  np.testing.assert_array_equal(text_logits, t3)
  np.testing.assert_array_equal(image_logits[:, :11], i3[:, :11])
  assert not np.allclose(image_logits[:, 11], i3[:, 11])


def test_masked_patches_and_padding_have_no_effect(setup):
  model, batch, params = setup
  text_logits, image_logits = _logits(model, params, batch)
  changed = dict(batch)
  # Pixels under masked patches (rows 2-3 of the 4x4 grid of image 1) get new values.
  changed["image_inputs"] = batch["image_inputs"].at[1, 32:].set(5.0)
  # Text padding: the first example's padded tokens become other pad-masked ids, and every
  # example gets extra padding.
  changed["text_inputs"] = jnp.pad(batch["text_inputs"], ((0, 0), (0, 4)))
  changed["text_input_mask"] = changed["text_inputs"] > 0
  changed["text_inputs"] = changed["text_inputs"].at[0, -1].set(99).at[0, 5].set(42)
  changed["text_input_mask"] = changed["text_input_mask"].at[0, -1].set(False).at[0, 5].set(False)
  # Target padding after EOS never changes the logits of real positions.
  changed["text_targets"] = jnp.pad(batch["text_targets"], ((0, 0), (0, 3)))
  t2, i2 = _logits(model, params, changed)
  np.testing.assert_allclose(text_logits, t2[:, :5], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(image_logits, i2, rtol=1e-5, atol=1e-5)
  # The unmasked half of image 1 does matter.
  changed = dict(batch, image_inputs=batch["image_inputs"].at[1, :16].set(5.0))
  assert not np.allclose(text_logits[1], _logits(model, params, changed)[0][1], atol=1e-4)


def test_text_only_batch(setup):
  model, _, params = setup
  batch = tiny.make_batch(with_image=False, with_image_targets=False)
  text_logits, image_logits = _logits(model, params, batch)
  assert text_logits.shape[:2] == (2, 5) and image_logits.shape[1] == 0
  assert np.all(np.isfinite(np.asarray(text_logits)))


def _teacher_forced_cached_logits(model, params, batch, by_modality=False):
  """Every target position through decode_step; `by_modality`: tell each step whether it
  decodes text or image (the loops of generation.py do), else let it mask the logits."""
  encoded, pe, emask = model.apply({"params": params}, batch, method=network.UnifiedIO.encode)
  ids, _, text_len, image_len = model.apply(
    {"params": params}, batch, method=network.UnifiedIO.decoder_inputs
  )
  self_bias, cross_bias = model.apply(
    {"params": params}, text_len, image_len, pe, method=network.UnifiedIO.decoder_biases
  )
  cache = decode_state.init_decode_cache(model.config, ids.shape[0], text_len + image_len)
  step_fn = jax.jit(
    lambda i, s, c, modality: model.apply(
      {"params": params},
      i,
      s,
      c,
      encoded,
      emask,
      self_bias,
      cross_bias,
      text_len,
      tiny.EOS,
      modality and decode_state.modality_logit_rows(params, model.config, modality),
      method=network.UnifiedIO.decode_step,
    ),
    static_argnums=3,
  )
  out = []
  for s in range(text_len + image_len):
    modality = ("text" if s < text_len else "image") if by_modality else None
    logits, cache = step_fn(ids[:, s : s + 1], jnp.int32(s), cache, modality)
    out.append(logits)
  return jnp.stack(out, axis=1), text_len


@pytest.mark.parametrize("scan,by_modality", [(False, False), (True, False), (False, True)])
def test_cached_decoding_equals_full_forward(setup, scan, by_modality):
  model, batch, params = setup
  if scan:
    model = tiny.make_model(scan_layers=True)
    params = param_trees.stack_layers(params)
  text_logits, image_logits = _logits(model, params, batch)
  cached, text_len = _teacher_forced_cached_logits(model, params, batch, by_modality)
  if by_modality:  # the other modality's ids are masked exactly as mask_logits_by_modality does
    split = model.config.padded_text_size
    assert np.all(np.asarray(cached[:, :text_len, split:]) == layers.NEG_INF)
    assert np.all(np.asarray(cached[:, text_len:, :split]) == layers.NEG_INF)
  valid = np.asarray(batch["text_targets"] > 0)
  for b in range(2):
    np.testing.assert_allclose(
      cached[b, :text_len][valid[b]], text_logits[b][valid[b]], rtol=1e-5, atol=2e-5
    )
  np.testing.assert_allclose(cached[:, text_len:], image_logits, rtol=1e-5, atol=2e-5)


def test_scan_and_remat_keep_outputs(setup):
  model, batch, params = setup
  reference = _logits(model, params, batch)
  for overrides in (
    dict(scan_layers=True),
    dict(scan_layers=True, remat_policy="full"),
    dict(remat_policy="minimal"),
  ):
    variant = tiny.make_model(**overrides)
    p = param_trees.stack_layers(params) if overrides.get("scan_layers") else params
    jax.tree.map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5),
      reference,
      _logits(variant, p, batch),
    )
  # Scanned parameters have the stacked layout and convert back exactly.
  scanned = tiny.init(tiny.make_model(scan_layers=True), batch)
  assert scanned["encoder"]["layers"]["mlp"]["wi_0"]["kernel"].shape == (2, 32, 48)
  back = param_trees.unstack_layers(param_trees.stack_layers(params))
  jax.tree.map(np.testing.assert_array_equal, back, params)


def test_patch_subsampling_keeps_valid_patches_and_positions(setup):
  model, batch, params = setup
  # Image 1 has 8 valid patches. Keeping 8 at random (valid first) must give the same
  # encoder output for it as the full image, because masked patches have no effect.
  sub = tiny.make_model(train_image_patches=8)
  full = _logits(model, params, batch)
  sampled = sub.apply({"params": params}, batch, train=True, rngs={"patches": jax.random.key(3)})
  np.testing.assert_allclose(full[0][1], sampled[0][1], rtol=1e-5, atol=2e-5)
  patches = jnp.arange(2 * 16 * 3, dtype=jnp.float32).reshape(2, 16, 3)
  kept, mask, pos = network.subsample_image_patches(
    jax.random.key(0), patches, batch["image_input_mask"], 8
  )
  assert mask.all()
  assert set(np.asarray(pos[1]).tolist()) == set(range(8))
  np.testing.assert_array_equal(kept, jnp.take_along_axis(patches, pos[..., None], axis=1))


def test_dropout_needs_rng_and_changes_outputs(setup):
  _, batch, params = setup
  model = tiny.make_model(dropout_rate=0.3)
  a = _logits(model, params, batch)
  np.testing.assert_array_equal(a[0], _logits(model, params, batch)[0])  # deterministic
  b = model.apply({"params": params}, batch, rngs={"dropout": jax.random.key(1)})
  assert not np.allclose(a[0], b[0])


@pytest.mark.parametrize(
  "key,value,message",
  [
    ("image_inputs", jnp.zeros((2, 64, 64)), "image_inputs must have shape"),
    ("image_inputs", jnp.zeros((2, 64, 64, 4)), "image_inputs must have shape"),
    ("text_inputs", jnp.ones((2, 17), jnp.int32), "exceeds encoder_max_text_length"),
    ("image_input_mask", jnp.ones((2, 9), bool), "image_input_mask must have shape"),
  ],
)
def test_bad_inputs_name_the_field(setup, key, value, message):
  model, batch, params = setup
  with pytest.raises(ValueError, match=message):
    _logits(model, params, dict(batch, **{key: value}))


def test_bad_config_values():
  with pytest.raises(ValueError, match="remat_policy"):
    dataclasses.replace(tiny.CONFIG, remat_policy="sometimes")
  with pytest.raises(ValueError, match="patch_size"):
    dataclasses.replace(tiny.CONFIG, image_size=70)
