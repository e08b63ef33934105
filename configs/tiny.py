"""Tiny Unified-IO: the embedded default run (`make train`) and the tests' model; about
0.5 s per step on 2 CPU cores, so the default 3000 steps (with 3 evaluations) take
about 30 minutes.

  python -m unified_io.train                      # = --config=configs/tiny.py --workdir=workdir/tiny
  python -m unified_io.model --config=configs/tiny.py

Same code path as the paper sizes; only the numbers shrink: the shipped 2k-piece
SentencePiece model, the shipped 512-code VQ-GAN trained on the built-in dataset
(vqgan/weights/builtin: 64x64 images <-> 8x8 codes), 64x64 input images (4x4 patches of
16 pixels) and the built-in multi-task mixture (unified_io/data/mixtures.py).
"""
from configs import common


def get_config():
  config = common.base_config(emb_dim=128, num_heads=4, num_encoder_layers=3,
                              num_decoder_layers=3, mlp_dim=256)
  config.vocab.sentencepiece_model = "tokenizers/uio_tiny_2k.model"
  config.vocab.text_pieces = 2000
  config.vocab.image_codes = 512
  config.vqgan.update(dict(preset="builtin", weights="vqgan/weights/builtin"))
  config.model.update(dict(
      head_dim=32, image_size=64, patch_size=16,
      encoder_max_text_length=144, decoder_max_text_length=72,
      decoder_max_image_length=64, decoder_image_grid_width=8, train_image_patches=12))
  config.lengths.update(dict(text_inputs=144, text_targets=72, image_targets=64))
  config.data.update(dict(source="mixture", mixture="builtin_multitask", max_depth=20.0))
  # 3000 steps: about 30 minutes on 2 CPU cores (the README's `make train` table).
  config.train.update(dict(batch_size=16, total_steps=3000, log_every=50))
  config.optimizer.update(dict(constant_steps=500))
  config.checkpoint.update(dict(every_steps=500))
  config.eval.update(dict(every_steps=1000, num_examples=32))
  return config
