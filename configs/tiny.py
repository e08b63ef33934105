"""Tiny Unified-IO: the embedded default run (`make train`) and the tests' model; about
0.4 s per step on 2 CPU cores: the default 3000 steps with 2 evaluations took 31 min 48 s
(README).

  python -m unified_io.train      # = --config=configs/tiny.py --workdir=workdir/tiny
  python -m unified_io.model --config=configs/tiny.py

Same code path as the paper sizes; only the numbers shrink: the shipped 2k-piece
SentencePiece model, the shipped 512-code VQ-GAN trained on the built-in dataset
(vqgan/weights/builtin: 64x64 images <-> 8x8 codes), 64x64 input images (8x8 patches of
8 pixels, so the input grid matches the 8x8 output code grid), 64 location bins (one per
pixel instead of 1000 for 64 pixels, so each location token is seen 15x more often), a
geometric initialisation (unified_io/model/builder.py: geometric_init) and the built-in multi-task
mixture (unified_io/data/mixtures.py), with every task's tokens weighted so that its
share of the gradient is its rate (config.loss.normalization="tasks").
"""

from configs import common


def get_config():
  config = common.base_config(
    emb_dim=128, num_heads=4, num_encoder_layers=3, num_decoder_layers=3, mlp_dim=256
  )
  config.vocab.sentencepiece_model = "tokenizers/uio_tiny_2k.model"
  config.vocab.text_pieces = 2000
  config.vocab.image_codes = 512
  config.vocab.location_bins = 64
  config.vqgan.update(dict(preset="builtin", weights="vqgan/weights/builtin"))
  config.model.update(
    dict(
      head_dim=32,
      image_size=64,
      patch_size=8,
      encoder_max_text_length=144,
      decoder_max_text_length=72,
      decoder_max_image_length=64,
      decoder_image_grid_width=8,
      train_image_patches=48,
    )
  )
  config.lengths.update(dict(text_inputs=144, text_targets=72, image_targets=64))
  config.data.update(dict(source="mixture", mixture="builtin_multitask", max_depth=20.0))
  # Each task's tokens weighted by 1 / its mean target length, so each task gets its rate's
  # share of the gradient; under the released per-token loss image codes took 79% of it
  # and refexp 0.6% (docs/diagnosing_tasks.md: 18/22 baselines beaten either way, refexp
  # 8 of 128 against 4, localization AP50 0.0039 against 0.0022, keypoints 0.21 against 0.29).
  config.loss.normalization = "tasks"
  # 3000 steps: about 32 minutes on 2 CPU cores (the README's `make train` table).
  config.train.update(dict(batch_size=16, total_steps=3000, log_every=50, geometric_init=True))
  config.optimizer.update(dict(constant_steps=500))
  config.checkpoint.update(dict(every_steps=500))
  # 128 examples per task: with 32 or 64, one example more or less decides a close table row.
  config.evals.tasks.update(dict(every_steps=1500, num_examples=128))
  return config
