import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import base, large, small, xl
from configs import tiny as tiny_config
from unified_io.model import builder as model_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def hand_count(
  emb,
  heads,
  enc_layers,
  dec_layers,
  mlp,
  vocab,
  segments=2,
  head_dim=64,
  enc_text=256,
  enc_image=576,
  patch_features=16 * 16 * 3,
  dec_positions=512,
):
  """Parameter count of the released architecture, written out from its module list."""
  hd = heads * head_dim
  relpos = heads * (32 + 4 * 8 * 8)  # text buckets + 2-D image buckets
  attention = 4 * emb * hd  # query, key, value, out
  gated_mlp = 3 * emb * mlp  # wi_0, wi_1, wo
  encoder = (
    segments * emb
    + (enc_text + enc_image) * emb
    + relpos
    + patch_features * emb
    + 3 * emb  # text, image and position-embedding norms
    + 2 * emb * hd  # absolute-position query/key projections
    + enc_layers * (attention + gated_mlp + 2 * emb)
    + emb
  )
  decoder = (
    relpos
    + dec_positions * emb
    + segments * emb
    + 2 * emb
    + 4 * emb * hd
    + dec_layers * (2 * attention + gated_mlp + 3 * emb)
    + emb
  )
  return {"token_embedder": vocab * emb, "encoder": encoder, "decoder": decoder}


PAPER_SIZES = {  # Table 2 of the paper: dims and total parameters (VQ-GAN excluded)
  "small": (small, dict(emb=512, heads=6, enc_layers=8, dec_layers=8, mlp=1024), 71e6),
  "base": (base, dict(emb=768, heads=12, enc_layers=12, dec_layers=12, mlp=2048), 241e6),
  "large": (large, dict(emb=1024, heads=16, enc_layers=24, dec_layers=24, mlp=2816), 776e6),
  "xl": (xl, dict(emb=2048, heads=32, enc_layers=24, dec_layers=24, mlp=5120, segments=8), 2925e6),
}


@pytest.mark.parametrize("name", ["small", "base", "large"])
def test_parameter_counts_match_paper(name):
  module, dims, paper_total = PAPER_SIZES[name]
  counts = model_lib.parameter_counts(
    model_lib.abstract_params(model_lib.build(module.get_config()))
  )
  assert counts["modules"] == hand_count(vocab=49536, **dims)
  assert abs(counts["total"] - paper_total) / paper_total < 0.01


@pytest.mark.slow
def test_xl_count_from_cli_without_allocating():
  # The XL network alone is 2849M parameters; the paper's 2925M also counts the
  # VQ-GAN (see README), which the released 10.9 GiB float32 checkpoint confirms.
  module, dims, _ = PAPER_SIZES["xl"]
  out = subprocess.run(
    [sys.executable, "-m", "unified_io.model", "--config=configs/xl.py", "--json"],
    cwd=ROOT,
    capture_output=True,
    text=True,
    check=True,
  ).stdout
  counts = json.loads(out)
  expected = hand_count(vocab=49536, **dims)
  assert counts["modules"] == expected
  assert counts["total"] == sum(expected.values()) == 2_849_161_216
  # The official VQ-GAN has 76,073,859 parameters (hand count in tests/test_vqgan.py).
  assert counts["vqgan"] == 76_073_859
  assert abs(counts["total_with_vqgan"] - 2925e6) / 2925e6 < 0.01


def test_tiny_config_uses_shipped_vocabulary():
  config = tiny_config.get_config()
  net = model_lib.network_config(config)
  layout = model_lib.vocab_layout(config)
  assert net.vocab_size == layout.total_size and net.padded_text_size == layout.padded_text_size
  assert os.path.exists(os.path.join(ROOT, config.vocab.sentencepiece_model))


def test_unknown_model_key_is_named():
  config = tiny_config.get_config()
  config.model.num_layerz = 3
  with pytest.raises(ValueError, match="num_layerz"):
    model_lib.network_config(config)


@pytest.fixture
def model_cli(monkeypatch):
  """`python -m unified_io.model` in this process: its module, flags defined on absl's FLAGS.

  Its flags are removed again afterwards (and FLAGS left unparsed if it was), so that
  another in-process CLI test may define a flag of the same name.
  """
  import importlib
  from absl import flags

  monkeypatch.chdir(ROOT)
  was_parsed = flags.FLAGS.is_parsed()
  name = "unified_io.model.__main__"
  module = importlib.import_module(name)
  yield module, flags.FLAGS
  for flag in flags.FLAGS.get_flags_for_module(name):
    delattr(flags.FLAGS, flag.name)
  sys.modules.pop(name, None)
  if not was_parsed:
    flags.FLAGS.unparse_flags()


def test_unknown_config_file_is_named(model_cli):
  # In process: what app.run does, flags then main. The end-to-end run of the same CLI is
  # test_xl_count_from_cli_without_allocating.
  cli, flag_values = model_cli
  argv = flag_values(["unified_io.model", "--config=configs/huge.py"])
  with pytest.raises(OSError, match="configs/huge.py"):
    cli._main(argv)


def test_location_bins_come_from_the_config():
  # A config with 64 bins (one per pixel of a 64x64 image) must quantise boxes with 64 bins
  # in the data pipeline (the tokenizer's layout) and in the model and predictor alike.
  from unified_io.common import locations
  from unified_io.data import from_config

  config = tiny_config.get_config()
  config.vocab.location_bins = 64
  layout = model_lib.vocab_layout(config)
  assert from_config.tokenizer(config).layout == layout
  assert layout.num_location_bins == 64
  # bin = floor(coord / 64 * 63): y1 = 32 -> 31, x1 = 0 -> 0, y2 = 48 -> 47, x2 = 64 -> 63;
  # bin b is <extra_id_{100 + b}>.
  assert locations.box_to_text([0, 32, 64, 48], (64, 64), layout) == (
    "<extra_id_131> <extra_id_100> <extra_id_147> <extra_id_163>"
  )
  # Bin centres come back: (31 + 0.5) / 63 * 64 = 32, (47 + 0.5) / 63 * 64 = 3040 / 63.
  ids = layout.location_id([31, 0, 47, 63])
  np.testing.assert_allclose(
    locations.location_ids_to_box(ids, (64, 64), layout),
    [32 / 63, 32.0, 64.0, 3040 / 63],
    atol=1e-4,
  )
  # Configs saved before the key existed keep the released models' 1000 bins.
  del config.vocab.location_bins
  assert model_lib.vocab_layout(config).num_location_bins == 1000


def test_geometric_init_gives_location_rows_a_shared_coordinate_code():
  import flax.linen as nn
  import jax

  config = tiny_config.get_config()  # 64 location bins, 8x8 input patches, 8x8 output codes
  params = nn.unbox(model_lib.init_params(model_lib.build(config), jax.random.key(0)))
  new = model_lib.geometric_init(params, config)
  layout = model_lib.vocab_layout(config)
  ids = layout.location_id(np.arange(64))
  old_tokens = np.asarray(params["token_embedder"]["embedding"])
  tokens = np.asarray(new["token_embedder"]["embedding"])
  # Only the 64 location rows change; the caller's tree is left alone.
  changed = np.flatnonzero(np.any(tokens != old_tokens, axis=1))
  np.testing.assert_array_equal(changed, np.sort(ids))
  assert not np.shares_memory(tokens, old_tokens)
  # Bin 0 stands for u = 0.5 / 63 of the image side; feature 0 is sqrt(2) sin(pi u) and
  # feature 32 (the first cosine of the 64-feature half) sqrt(2) cos(pi u); the second half
  # repeats the first (a bin is an x or a y).
  u = 0.5 / 63
  assert abs(tokens[ids[0], 0] - 0.035256) < 1e-5
  assert abs(tokens[ids[0], 32] - np.sqrt(2) * np.cos(np.pi * u)) < 1e-5
  np.testing.assert_allclose(tokens[ids, :64], tokens[ids, 64:])
  # Encoder image positions start after the 144 text positions; cell (0, 0) has its row
  # and column centre at 1/16: sqrt(2) sin(pi / 16) = 0.275899.
  enc = np.asarray(new["encoder"]["position_embedding"]["embedding"])
  assert abs(enc[144, 0] - 0.275899) < 1e-5 and abs(enc[144, 64] - 0.275899) < 1e-5
  np.testing.assert_array_equal(
    enc[:144], params["encoder"]["position_embedding"]["embedding"][:144]
  )
  dec = np.asarray(new["decoder"]["position_embedding"]["embedding"])
  np.testing.assert_allclose(dec[72:136], enc[144:208])  # both grids are 8x8
  # Neighbouring bins start out more alike than distant ones.
  sims = tokens[ids[10]] @ tokens[ids].T
  assert sims[11] > sims[14] > sims[40]
