import os
import subprocess
import sys

import flax
import jax
import numpy as np
import pytest

from configs import tiny as tiny_config
from unified_io import convert
from unified_io.model import builder as model_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def official_layout(
  emb,
  heads,
  head_dim,
  enc_layers,
  dec_layers,
  mlp,
  vocab,
  enc_text,
  enc_image,
  patch_features,
  dec_positions,
  segments=2,
):
  """Names and shapes of a released UIO1 checkpoint, written from the released model code."""
  hd = heads * head_dim
  norm = {"scale": (emb,)}
  dense = lambda i, o: {"kernel": (i, o)}
  attention = {
    "query": dense(emb, hd),
    "key": dense(emb, hd),
    "value": dense(emb, hd),
    "out": dense(hd, emb),
  }
  mlp_block = {"wi_0": dense(emb, mlp), "wi_1": dense(emb, mlp), "wo": dense(mlp, emb)}
  relpos = {"rel_embedding": (heads, 32), "image_rel_embedding": (heads, 256)}
  encoder = {
    "segment_embedding": {"embedding": (segments, emb)},
    "position_embedding": {"embedding": (enc_text + enc_image, emb)},
    "relpos_bias": relpos,
    "image_projection": dense(patch_features, emb),
    "txt_emb_pre_ln": norm,
    "img_emb_pre_ln": norm,
    "pe_pre_ln": norm,
    "position_q_linear": dense(emb, hd),
    "position_k_linear": dense(emb, hd),
    "encoder_norm": norm,
  }
  for i in range(enc_layers):
    encoder[f"layers_{i}"] = {
      "pre_attention_layer_norm": norm,
      "attention": attention,
      "pre_mlp_layer_norm": norm,
      "mlp": mlp_block,
    }
  decoder = {
    "relpos_bias": relpos,
    "position_embedding": {"embedding": (dec_positions, emb)},
    "segments_embedding": {"embedding": (segments, emb)},
    "pre_ln": norm,
    "pe_pre_ln": norm,
    "self_position_q_linear": dense(emb, hd),
    "self_position_k_linear": dense(emb, hd),
    "cross_position_q_linear": dense(emb, hd),
    "cross_position_k_linear": dense(emb, hd),
    "decoder_norm": norm,
  }
  for i in range(dec_layers):
    decoder[f"layers_{i}"] = {
      "pre_self_attention_layer_norm": norm,
      "self_attention": attention,
      "pre_cross_attention_layer_norm": norm,
      "encoder_decoder_attention": attention,
      "pre_mlp_layer_norm": norm,
      "mlp": mlp_block,
    }
  return {
    "token_embedder": {"embedding": (vocab, emb)},
    "encoder": encoder,
    "decoder": decoder,
    "discrete_vae": {"quantize": {"embedding": (512, 32)}},
  }


def tiny_official_tree(seed=0):
  c = tiny_config.get_config()
  m = c.model
  layout = model_lib.vocab_layout(c)
  shapes = official_layout(
    m.emb_dim,
    m.num_heads,
    m.head_dim,
    m.num_encoder_layers,
    m.num_decoder_layers,
    m.mlp_dim,
    layout.total_size,
    m.encoder_max_text_length,
    (m.image_size // m.patch_size) ** 2,
    m.patch_size**2 * 3,
    m.decoder_max_text_length + m.decoder_max_image_length,
  )
  rs = np.random.RandomState(seed)
  is_shape = lambda x: isinstance(x, tuple)
  return jax.tree.map(lambda s: rs.randn(*s).astype(np.float32), shapes, is_leaf=is_shape)


def _write(tree, path):
  with open(path, "wb") as f:
    f.write(flax.serialization.msgpack_serialize(tree))


def test_convert_official_tree_loads_and_runs(tmp_path):
  tree = tiny_official_tree()
  _write(tree, tmp_path / "tiny.bin")
  params, vqgan = convert.convert_official(
    convert.load_official(str(tmp_path / "tiny.bin")), tiny_config.get_config()
  )
  np.testing.assert_array_equal(
    vqgan["quantize"]["embedding"], tree["discrete_vae"]["quantize"]["embedding"]
  )
  np.testing.assert_array_equal(
    params["decoder"]["layers_1"]["mlp"]["wo"]["kernel"],
    tree["decoder"]["layers_1"]["mlp"]["wo"]["kernel"],
  )
  net = model_lib.build(tiny_config.get_config())
  text, image = net.apply({"params": params}, model_lib.dummy_batch(net.config, 1, 5, 3, 4))
  assert np.isfinite(np.asarray(text[..., : net.config.padded_text_size])).all()


def test_convert_to_scanned_layout():
  config = tiny_config.get_config()
  config.model.scan_layers = True
  tree = tiny_official_tree()
  params, _ = convert.convert_official(tree, config)
  stacked = params["encoder"]["layers"]["attention"]["query"]["kernel"]
  np.testing.assert_array_equal(
    stacked[1], tree["encoder"]["layers_1"]["attention"]["query"]["kernel"]
  )


def test_mismatches_are_listed():
  tree = tiny_official_tree()
  del tree["decoder"]["layers_0"]["mlp"]["wi_1"]
  tree["encoder"]["extra_thing"] = {"kernel": np.zeros((2, 2), np.float32)}
  tree["token_embedder"]["embedding"] = np.zeros((7, 64), np.float32)
  with pytest.raises(ValueError) as err:
    convert.convert_official(tree, tiny_config.get_config())
  message = str(err.value)
  assert "decoder/layers_0/mlp/wi_1/kernel" in message
  assert "encoder/extra_thing/kernel" in message
  assert "token_embedder/embedding: (7, 64)" in message


def test_bad_checkpoint_files_are_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="nope.bin"):
    convert.load_official(str(tmp_path / "nope.bin"))
  (tmp_path / "junk.bin").write_bytes(b"\x00garbage")
  with pytest.raises(ValueError, match="junk.bin"):
    convert.load_official(str(tmp_path / "junk.bin"))


@pytest.mark.slow
def test_cli_round_trip(tmp_path):
  tree = tiny_official_tree(seed=1)
  _write(tree, tmp_path / "tiny.bin")
  out = tmp_path / "converted"
  subprocess.run(
    [
      sys.executable,
      "-m",
      "unified_io.convert",
      f"--official={tmp_path / 'tiny.bin'}",
      "--config=configs/tiny.py",
      f"--out={out}",
    ],
    cwd=ROOT,
    check=True,
    capture_output=True,
    text=True,
  )
  restored = convert.load_params(str(out))
  np.testing.assert_array_equal(
    restored["encoder"]["image_projection"]["kernel"], tree["encoder"]["image_projection"]["kernel"]
  )
  assert (out / "vqgan.msgpack").exists() and (out / "config.json").exists()
