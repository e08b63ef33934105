"""Tiny Unified-IO for tests and the embedded default run (CPU-friendly, seconds per step).

  python -m unified_io.model --config=configs/tiny.py

Same code path as the paper sizes; only the numbers shrink: the shipped 2k-piece
SentencePiece model, a 512-code image vocabulary, 64x64 input images (4x4 patches) and
4x4 target-code grids.
"""
from configs import common


def get_config():
  config = common.base_config(emb_dim=64, num_heads=2, num_encoder_layers=2,
                              num_decoder_layers=2, mlp_dim=128)
  config.vocab.sentencepiece_model = "tokenizers/uio_tiny_2k.model"
  config.vocab.text_pieces = 2000
  config.vocab.image_codes = 512
  config.vqgan.preset = "tiny"
  config.model.update(dict(
      head_dim=32, image_size=64, patch_size=16,
      encoder_max_text_length=64, decoder_max_text_length=32,
      decoder_max_image_length=16, decoder_image_grid_width=4, train_image_patches=12))
  config.lengths.update(dict(text_inputs=32, text_targets=8, image_targets=16))
  config.train.update(dict(batch_size=16, total_steps=200, log_every=20))
  config.optimizer.update(dict(constant_steps=100))
  config.checkpoint.update(dict(every_steps=100))
  return config
