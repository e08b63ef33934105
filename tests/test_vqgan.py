"""VQ-GAN tokenizer: shapes, quantiser, API, save/load, errors, parameter layout (no torch).

Equivalence with the PyTorch original is in test_vqgan_torch_equivalence.py.
"""

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vqgan
from vqgan import convert
from vqgan.model import VQGAN as VQGANModule
from vqgan.model import VectorQuantizer, flatten, unflatten

TINY = vqgan.PRESETS["tiny"]
OFFICIAL = vqgan.PRESETS["official"]
# Fewer ops than tiny, for the one test that runs the model op by op (slow without jit).
SMALL = vqgan.VQGANConfig(
  resolution=16,
  ch=32,
  ch_mult=(1, 2),
  num_res_blocks=1,
  attn_resolutions=(8,),
  z_channels=8,
  embed_dim=4,
  n_codes=16,
)


@pytest.fixture(scope="module")
def tiny():
  return vqgan.init("tiny", 0)


def images(config, batch=2, seed=0):
  rs = np.random.RandomState(seed)
  return rs.uniform(-1, 1, (batch, config.resolution, config.resolution, 3)).astype(np.float32)


# --- Reference layout, written from the two reference codebases (not from vqgan/) ----------


def reference_layout(cfg):
  """[(released Unified-IO name, taming state_dict key, HWIO shape)] for every parameter.

  Released names: allenai/unified-io-inference uio/network.py (VAE_Encoder, VAE_Decoder,
  ResBlock, AttnBlock, Downsample, Upsample, DiscreteVAE) with uio/t5x_layers.py Conv
  (kernel, bias), GroupNorm (scale, bias), VectorQuantizer (embedding). Taming keys:
  taming/modules/diffusionmodules/model.py Encoder/Decoder, taming/models/vqgan.py VQModel.
  """
  rows = []

  def conv(name, key, k, cin, cout):
    rows.append((f"{name}/kernel", f"{key}.weight", (k, k, cin, cout)))
    rows.append((f"{name}/bias", f"{key}.bias", (cout,)))

  def norm(name, key, c):
    rows.append((f"{name}/scale", f"{key}.weight", (c,)))
    rows.append((f"{name}/bias", f"{key}.bias", (c,)))

  def resblock(name, key, cin, cout):
    norm(f"{name}/norm1", f"{key}.norm1", cin)
    conv(f"{name}/conv1", f"{key}.conv1", 3, cin, cout)
    norm(f"{name}/norm2", f"{key}.norm2", cout)
    conv(f"{name}/conv2", f"{key}.conv2", 3, cout, cout)
    if cin != cout:
      conv(f"{name}/nin_shortcut", f"{key}.nin_shortcut", 1, cin, cout)

  def attn(name, key, c):
    norm(f"{name}/norm", f"{key}.norm", c)
    for p in ("q", "k", "v", "proj_out"):
      conv(f"{name}/{p}", f"{key}.{p}", 1, c, c)

  levels = len(cfg.ch_mult)
  in_mult = (1,) + tuple(cfg.ch_mult)
  conv("encoder/conv_in", "encoder.conv_in", 3, cfg.in_channels, cfg.ch)
  res = cfg.resolution
  for lvl in range(levels):
    block_in = cfg.ch * in_mult[lvl]
    block_out = cfg.ch * cfg.ch_mult[lvl]
    for i in range(cfg.num_res_blocks):
      resblock(
        f"encoder/down_{lvl}_block_{i}", f"encoder.down.{lvl}.block.{i}", block_in, block_out
      )
      block_in = block_out
      if res in cfg.attn_resolutions:
        attn(f"encoder/down_{lvl}_attn_{i}", f"encoder.down.{lvl}.attn.{i}", block_in)
    if lvl != levels - 1:
      conv(
        f"encoder/down_{lvl}_downsample/conv",
        f"encoder.down.{lvl}.downsample.conv",
        3,
        block_in,
        block_in,
      )
      res //= 2
  for part in ("encoder", "decoder"):
    c = cfg.ch * cfg.ch_mult[-1]
    if part == "decoder":
      conv("decoder/conv_in", "decoder.conv_in", 3, cfg.z_channels, c)
    resblock(f"{part}/mid_block_1", f"{part}.mid.block_1", c, c)
    attn(f"{part}/mid_attn_1", f"{part}.mid.attn_1", c)
    resblock(f"{part}/mid_block_2", f"{part}.mid.block_2", c, c)
    if part == "encoder":
      norm("encoder/norm_out", "encoder.norm_out", c)
      conv("encoder/conv_out", "encoder.conv_out", 3, c, cfg.z_channels)
  block_in = cfg.ch * cfg.ch_mult[-1]
  res = cfg.resolution // 2 ** (levels - 1)
  for lvl in reversed(range(levels)):
    step = levels - lvl - 1  # released i_idx; taming keeps the level index
    block_out = cfg.ch * cfg.ch_mult[lvl]
    for i in range(cfg.num_res_blocks + 1):
      resblock(f"decoder/up_{step}_block_{i}", f"decoder.up.{lvl}.block.{i}", block_in, block_out)
      block_in = block_out
      if res in cfg.attn_resolutions:
        attn(f"decoder/up_{step}_attn_{i}", f"decoder.up.{lvl}.attn.{i}", block_in)
    if lvl != 0:
      conv(
        f"decoder/up_{step}_upsample/conv", f"decoder.up.{lvl}.upsample.conv", 3, block_in, block_in
      )
      res *= 2
  norm("decoder/norm_out", "decoder.norm_out", block_in)
  conv("decoder/conv_out", "decoder.conv_out", 3, block_in, cfg.out_channels)
  conv("quant_conv", "quant_conv", 1, cfg.z_channels, cfg.embed_dim)
  conv("post_quant_conv", "post_quant_conv", 1, cfg.embed_dim, cfg.z_channels)
  rows.append(("quantize/embedding", "quantize.embedding.weight", (cfg.n_codes, cfg.embed_dim)))
  return rows


def released_tree(cfg, seed=0):
  rs = np.random.RandomState(seed)
  return unflatten(
    {name: rs.randn(*shape).astype(np.float32) for name, _, shape in reference_layout(cfg)}
  )


# --- Shapes ------------------------------------------------------------------------------------


def test_presets():
  assert (OFFICIAL.resolution, OFFICIAL.grid_size, OFFICIAL.downsample_factor) == (256, 16, 16)
  assert (OFFICIAL.n_codes, OFFICIAL.embed_dim, OFFICIAL.ch_mult) == (16384, 256, (1, 1, 2, 2, 4))
  assert (TINY.resolution, TINY.grid_size, TINY.n_codes) == (64, 4, 512)
  assert vqgan.get_config("tiny") is TINY
  with pytest.raises(ValueError, match="Unknown VQ-GAN preset 'huge'"):
    vqgan.get_config("huge")
  with pytest.raises(ValueError, match="multiple of the 32 GroupNorm groups"):
    vqgan.VQGANConfig(ch=48)


def test_tiny_codes_and_decode(tiny):
  codes = tiny.encode(images(TINY, batch=3))
  assert codes.shape == (3, 4, 4) and codes.dtype == jnp.int32
  assert int(codes.min()) >= 0 and int(codes.max()) < 512
  assert len(np.unique(np.asarray(codes))) > 8  # random weights still spread over codes
  decoded = tiny.decode(codes)
  assert decoded.shape == (3, 64, 64, 3) and decoded.dtype == jnp.float32
  assert float(decoded.min()) >= -1.0 and float(decoded.max()) <= 1.0


def test_code_probabilities_decode_the_expected_codebook_vector(tiny):
  codes = np.asarray(tiny.encode(images(TINY, batch=2)))
  one_hot = jax.nn.one_hot(codes, TINY.n_codes)
  decode = jax.jit(functools.partial(vqgan.decode_code_probabilities, TINY))
  np.testing.assert_allclose(decode(tiny.params, one_hot), tiny.decode(codes), atol=1e-5)
  # Half code 3, half code 7 everywhere: the decoder's image of the two rows' midpoint.
  half = np.zeros((1, 4, 4, TINY.n_codes), np.float32)
  half[..., [3, 7]] = 0.5
  table = np.asarray(tiny.params["quantize"]["embedding"])
  midpoint = np.broadcast_to((table[3] + table[7]) / 2, (1, 4, 4, TINY.embed_dim))
  by_hand = VQGANModule(TINY).apply(
    {"params": tiny.params}, jnp.asarray(midpoint), method=VQGANModule.decode
  )
  np.testing.assert_allclose(decode(tiny.params, half), np.clip(by_hand, -1, 1), atol=1e-5)
  with pytest.raises(ValueError, match=r"code probabilities must have shape \[batch, 4, 4, 512\]"):
    decode(tiny.params, one_hot[..., :8])


def test_official_shapes_without_computing():
  params = jax.tree.map(
    lambda s: jax.ShapeDtypeStruct(s, jnp.float32),
    vqgan.model.param_shapes(OFFICIAL),
    is_leaf=lambda x: isinstance(x, tuple),
  )
  pixels = jax.ShapeDtypeStruct((2, 256, 256, 3), jnp.float32)
  codes = jax.eval_shape(lambda p, x: vqgan.encode_codes(OFFICIAL, p, x), params, pixels)
  assert (codes.shape, codes.dtype) == ((2, 16, 16), jnp.int32)
  grid = jax.ShapeDtypeStruct((2, 16, 16), jnp.int32)
  out = jax.eval_shape(lambda p, c: vqgan.decode_codes(OFFICIAL, p, c), params, grid)
  assert (out.shape, out.dtype) == ((2, 256, 256, 3), jnp.float32)


def test_official_parameter_count_by_hand():
  conv = lambda k, cin, cout: k * k * cin * cout + cout  # noqa: E731
  norm = lambda c: 2 * c  # noqa: E731  (scale + bias)
  res = lambda cin, cout: (
    norm(cin)
    + conv(3, cin, cout)
    + norm(cout)
    + conv(3, cout, cout)  # noqa
    + (conv(1, cin, cout) if cin != cout else 0)
  )
  attn = lambda c: norm(c) + 4 * conv(1, c, c)  # noqa: E731  (q, k, v, proj_out)
  # Channels per level 128, 128, 256, 256, 512; attention only at 16x16 (the last level).
  encoder = (
    conv(3, 3, 128)
    + 2 * res(128, 128)
    + conv(3, 128, 128)  # 256x256, downsample
    + 2 * res(128, 128)
    + conv(3, 128, 128)  # 128x128
    + res(128, 256)
    + res(256, 256)
    + conv(3, 256, 256)  # 64x64
    + 2 * res(256, 256)
    + conv(3, 256, 256)  # 32x32
    + res(256, 512)
    + res(512, 512)
    + 2 * attn(512)  # 16x16
    + 2 * res(512, 512)
    + attn(512)  # middle
    + norm(512)
    + conv(3, 512, 256)
  )  # to z_channels
  decoder = (
    conv(3, 256, 512)
    + 2 * res(512, 512)
    + attn(512)  # middle
    + 3 * res(512, 512)
    + 3 * attn(512)
    + conv(3, 512, 512)  # 16x16, upsample
    + res(512, 256)
    + 2 * res(256, 256)
    + conv(3, 256, 256)  # 32x32
    + 3 * res(256, 256)
    + conv(3, 256, 256)  # 64x64
    + res(256, 128)
    + 2 * res(128, 128)
    + conv(3, 128, 128)  # 128x128
    + 3 * res(128, 128)  # 256x256
    + norm(128)
    + conv(3, 128, 3)
  )
  quantizer = conv(1, 256, 256) * 2 + 16384 * 256  # quant convs, codebook
  assert (encoder, decoder, quantizer) == (29_298_176, 42_449_795, 4_325_888)
  shapes = flatten(vqgan.model.param_shapes(OFFICIAL))
  assert sum(int(np.prod(s)) for s in shapes.values()) == encoder + decoder + quantizer
  assert encoder + decoder + quantizer == 76_073_859


# --- Quantiser ---------------------------------------------------------------------------------


CODEBOOK = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], np.float32)


def test_quantizer_picks_nearest_code_on_hand_built_codebook():
  z = np.array([[0.9, 0.1], [0.1, 0.2], [-0.6, -0.4], [0.2, 0.8], [0.6, 0.0]], np.float32)
  # Squared distances to codes 0..3 worked out by hand; the third row ties codes 0 and 3
  # (0.36 + 0.16 = 0.16 + 0.36 = 0.52) and, like torch.argmin, the first index wins.
  #   (0.9, 0.1):   0.82, 0.02, 1.62, 4.82  -> 1
  #   (0.1, 0.2):   0.05, 0.85, 0.65, 2.65  -> 0
  #   (-0.6, -0.4): 0.52, 2.72, 2.32, 0.52  -> 0
  #   (0.2, 0.8):   0.68, 1.28, 0.08, 4.68  -> 2
  #   (0.6, 0.0):   0.36, 0.16, 1.36, 3.56  -> 1
  expected = np.array([1, 0, 0, 2, 1])
  z_q, loss, codes = VectorQuantizer(4, 2, beta=0.25).apply(
    {"params": {"embedding": CODEBOOK}}, z[None]
  )
  np.testing.assert_array_equal(np.asarray(codes)[0], expected)
  np.testing.assert_allclose(np.asarray(z_q)[0], CODEBOOK[expected], atol=1e-7)
  # Forward value of both loss terms is mean |z_q - z|^2: squared errors per row are
  # 0.02, 0.05, 0.52, 0.08, 0.16 over 10 numbers -> 0.083; times (1 + beta).
  np.testing.assert_allclose(float(loss), 1.25 * 0.083, rtol=1e-5)


def test_straight_through_gradient_is_identity():
  z = jnp.array([[[0.9, 0.1], [0.2, 0.8], [-0.3, -0.9]]], jnp.float32)
  weights = jnp.array([[[1.0, -2.0], [3.0, 0.5], [-1.5, 4.0]]], jnp.float32)
  quantizer = VectorQuantizer(4, 2)
  variables = {"params": {"embedding": CODEBOOK}}

  def through_quantizer(z):
    z_q, _, _ = quantizer.apply(variables, z)
    return jnp.sum(z_q * weights)

  np.testing.assert_allclose(np.asarray(jax.grad(through_quantizer)(z)), np.asarray(weights))


def test_codebook_and_commitment_gradients():
  """Taming's weighting: the encoder-side term has weight 1, the codebook term beta."""
  z = jnp.array([[[0.9, 0.1]]], jnp.float32)  # nearest code 1 = (1, 0)

  def loss(codebook, z):
    return VectorQuantizer(4, 2, beta=0.25).apply({"params": {"embedding": codebook}}, z)[1]

  d_codebook, d_z = jax.grad(loss, argnums=(0, 1))(jnp.asarray(CODEBOOK), z)
  # loss = mean((sg(e) - z)^2) + 0.25 * mean((e - sg(z))^2) over 2 numbers; e - z = (0.1, -0.1)
  np.testing.assert_allclose(np.asarray(d_z)[0, 0], [-0.1, 0.1], atol=1e-6)  # 2/2 (z-e)
  expected_codebook = np.zeros((4, 2), np.float32)
  expected_codebook[1] = [0.025, -0.025]  # 0.25 (e-z)
  np.testing.assert_allclose(np.asarray(d_codebook), expected_codebook, atol=1e-6)


# --- API ---------------------------------------------------------------------------------------


def test_jit_and_eager_give_identical_codes():
  vq = vqgan.init(SMALL, 1)
  pixels = images(SMALL)
  eager = VQGANModule(SMALL).apply(
    {"params": vq.params}, pixels, method=VQGANModule.encode_to_codes
  )
  np.testing.assert_array_equal(np.asarray(vq.encode(pixels)), np.asarray(eager))


def test_chunked_encode_and_decode_match_whole_batch(tiny):
  pixels = images(TINY, batch=3, seed=3)
  codes = tiny.encode(pixels)
  np.testing.assert_array_equal(np.asarray(tiny.encode(pixels, chunk_size=2)), np.asarray(codes))
  # XLA may pick other conv algorithms for another batch size: not bit-identical.
  np.testing.assert_allclose(
    np.asarray(tiny.decode(codes, chunk_size=2)), np.asarray(tiny.decode(codes)), atol=1e-4
  )


def test_frozen_inside_a_jitted_train_step(tiny):
  pixels = jnp.asarray(images(TINY))

  def loss(weight, vq_params, pixels):
    codes = tiny.encode_fn(vq_params, pixels)
    return jnp.mean(jnp.square(weight * tiny.decode_fn(vq_params, codes) - pixels))

  d_weight, d_vq = jax.jit(jax.grad(loss, argnums=(0, 1)))(jnp.float32(0.5), tiny.params, pixels)
  assert float(d_weight) != 0.0
  assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(d_vq))


def test_init_accepts_a_prng_key():
  a = vqgan.init(SMALL, jax.random.PRNGKey(3))
  b = vqgan.init(SMALL, jax.random.PRNGKey(3))
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_save_load_round_trip(tiny, tmp_path):
  vqgan.save(str(tmp_path / "vq"), "tiny", tiny.params)
  record = json.loads((tmp_path / "vq" / "config.json").read_text())
  assert record["preset"] == "tiny" and record["n_codes"] == 512
  loaded = vqgan.load(str(tmp_path / "vq"))
  assert loaded.config == TINY
  for name, value in flatten(tiny.params).items():
    np.testing.assert_array_equal(np.asarray(flatten(loaded.params)[name]), np.asarray(value))
  pixels = images(TINY, seed=4)
  np.testing.assert_array_equal(np.asarray(loaded.encode(pixels)), np.asarray(tiny.encode(pixels)))


# --- Errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
  "bad, message",
  [
    (np.zeros((1, 64, 64, 3), np.uint8), r"dtype uint8.*images / 127.5 - 1"),
    (np.zeros((64, 64, 3), np.float32), r"shape \[batch, 64, 64, 3\], got \(64, 64, 3\)"),
    (np.zeros((1, 32, 32, 3), np.float32), r"got \(1, 32, 32, 3\)"),
    (np.zeros((1, 64, 64, 1), np.float32), r"got \(1, 64, 64, 1\)"),
    (np.full((1, 64, 64, 3), 255.0, np.float32), r"\[-1, 1\], got values in \[255, 255\]"),
    (np.full((1, 64, 64, 3), np.nan, np.float32), "NaN"),
  ],
)
def test_bad_images(tiny, bad, message):
  with pytest.raises(ValueError, match=message):
    tiny.encode(bad)


def test_small_overshoot_is_tolerated(tiny):
  assert tiny.encode(np.full((1, 64, 64, 3), 1.0005, np.float32)).shape == (1, 4, 4)


@pytest.mark.parametrize(
  "bad, message",
  [
    (np.full((1, 4, 4), 512), r"\[0, 512\), got ids in \[512, 512\]"),
    (np.full((1, 4, 4), -1), r"\[0, 512\), got ids in \[-1, -1\]"),
    (np.zeros((1, 4, 4), np.float32), "must be integers"),
    (np.zeros((1, 16, 16), np.int32), r"shape \[batch, 4, 4\], got \(1, 16, 16\)"),
    (np.zeros((16,), np.int32), r"got \(16,\)"),
  ],
)
def test_bad_codes(tiny, bad, message):
  with pytest.raises(ValueError, match=message):
    tiny.decode(bad)


def test_pure_functions_check_shapes_under_jit(tiny):
  with pytest.raises(ValueError, match="images must have shape"):
    jax.jit(tiny.encode_fn)(tiny.params, jnp.zeros((1, 32, 32, 3)))
  with pytest.raises(ValueError, match="codes must have shape"):
    jax.jit(tiny.decode_fn)(tiny.params, jnp.zeros((1, 5, 5), jnp.int32))


def test_load_errors_name_the_path(tiny, tmp_path):
  missing = tmp_path / "nowhere"
  with pytest.raises(ValueError, match=f"{missing} does not exist"):
    vqgan.load(str(missing))
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match=f"{tmp_path / 'empty' / 'config.json'} is missing"):
    vqgan.load(str(tmp_path / "empty"))

  directory = tmp_path / "vq"
  vqgan.save(str(directory), "tiny", tiny.params)
  record = json.loads((directory / "config.json").read_text())
  record["n_codes"] = 1024  # config no longer matches the saved codebook
  (directory / "config.json").write_text(json.dumps(record))
  with pytest.raises(
    ValueError,
    match=r"params.msgpack.*\n.*quantize/embedding: \(512, 32\) "
    r"!= expected \(1024, 32\)",
  ):
    vqgan.load(str(directory))
  record.pop("n_codes")
  record["colour"] = "blue"
  (directory / "config.json").write_text(json.dumps(record))
  with pytest.raises(
    ValueError,
    match=r"config.json: unknown VQ-GAN config keys \['colour'\], "
    r"missing \['n_codes'\]",
  ):
    vqgan.load(str(directory))
  (directory / "config.json").write_text(json.dumps(TINY.to_dict()))
  (directory / "params.msgpack").write_bytes(b"not msgpack")
  with pytest.raises(ValueError, match="params.msgpack is not a flax msgpack"):
    vqgan.load(str(directory))


def test_save_refuses_params_of_another_config(tiny, tmp_path):
  with pytest.raises(ValueError, match="missing"):
    vqgan.save(str(tmp_path / "vq"), "official", tiny.params)
  assert not os.path.exists(tmp_path / "vq")


# --- Conversion --------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [TINY, OFFICIAL], ids=["tiny", "official"])
def test_released_unified_io_names_convert_unchanged(config):
  layout = reference_layout(config)
  tree = unflatten({name: np.zeros(shape, np.float32) for name, _, shape in layout})
  params = convert.from_unified_io(tree, config)
  assert {k: v.shape for k, v in flatten(params).items()} == {n: s for n, _, s in layout}


def test_unified_io_converter_keeps_values_and_lists_mismatches():
  tree = released_tree(TINY)
  params = convert.from_unified_io(tree, TINY)
  for name, value in flatten(tree).items():
    np.testing.assert_array_equal(flatten(params)[name], value)

  flat = flatten(released_tree(TINY))
  flat["quantize/codebook"] = flat.pop("quantize/embedding")
  flat["encoder/conv_in/kernel"] = np.zeros((3, 3, 3, 16), np.float32)
  with pytest.raises(ValueError) as error:
    convert.from_unified_io(unflatten(flat), TINY)
  message = str(error.value)
  assert "missing (1): quantize/embedding" in message
  assert "unexpected (1): quantize/codebook" in message
  assert "encoder/conv_in/kernel: (3, 3, 3, 16) != expected (3, 3, 3, 32)" in message


def test_taming_state_dict_maps_onto_released_names():
  rs = np.random.RandomState(0)
  layout = reference_layout(TINY)
  oihw = lambda s: (s[3], s[2], s[0], s[1]) if len(s) == 4 else s  # noqa: E731
  state = {key: rs.randn(*oihw(shape)).astype(np.float32) for _, key, shape in layout}
  state["loss.discriminator.main.0.weight"] = np.zeros((64, 3, 4, 4), np.float32)
  params = flatten(convert.from_taming(state, TINY))
  assert set(params) == {name for name, _, _ in layout}
  for name, key, shape in layout:
    expected = state[key].transpose(2, 3, 1, 0) if len(shape) == 4 else state[key]
    np.testing.assert_array_equal(params[name], expected, err_msg=f"{key} -> {name}")
  # Spot checks of the mappings that are easy to get wrong.
  np.testing.assert_array_equal(
    params["decoder/up_0_block_0/conv1/kernel"],
    state["decoder.up.4.block.0.conv1.weight"].transpose(2, 3, 1, 0),
  )
  np.testing.assert_array_equal(
    params["decoder/up_4_block_1/norm2/scale"], state["decoder.up.0.block.1.norm2.weight"]
  )
  np.testing.assert_array_equal(params["quantize/embedding"], state["quantize.embedding.weight"])

  del state["encoder.conv_in.bias"]
  state["encoder.extra.weight"] = np.zeros(1, np.float32)
  state["quant_conv.weight"] = np.zeros((32, 32, 3, 3), np.float32)
  with pytest.raises(ValueError) as error:
    convert.from_taming(state, TINY)
  message = str(error.value)
  assert "unknown keys (1): encoder.extra.weight" in message
  assert "missing keys (1): encoder.conv_in.bias" in message
  assert (
    "quant_conv.weight -> quant_conv/kernel: (3, 3, 32, 32) != expected (1, 1, 32, 32)" in message
  )


def test_unified_io_cli_writes_a_loadable_directory(tmp_path, capsys):
  import flax

  tree = {
    "params": {
      "token_embedder": {"embedding": np.zeros((2, 2), np.float32)},
      "discrete_vae": released_tree(TINY),
    }
  }
  (tmp_path / "model.bin").write_bytes(flax.serialization.msgpack_serialize(tree))
  convert.main(
    ["--unified-io", str(tmp_path / "model.bin"), "--out", str(tmp_path / "vq"), "--preset", "tiny"]
  )
  assert json.loads(capsys.readouterr().out)["parameters"] == sum(
    int(np.prod(s)) for _, _, s in reference_layout(TINY)
  )
  loaded = vqgan.load(str(tmp_path / "vq"))
  np.testing.assert_array_equal(
    np.asarray(loaded.params["quantize"]["embedding"]),
    tree["params"]["discrete_vae"]["quantize"]["embedding"],
  )


def test_taming_reader_explains_missing_torch(monkeypatch, tmp_path):
  import builtins

  real_import = builtins.__import__

  def no_torch(name, *args, **kwargs):
    if name == "torch":
      raise ImportError("No module named 'torch'")
    return real_import(name, *args, **kwargs)

  monkeypatch.setattr(builtins, "__import__", no_torch)
  with pytest.raises(ImportError, match="requirements-torch.txt"):
    convert.load_taming_state_dict(str(tmp_path / "last.ckpt"))
