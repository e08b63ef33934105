"""Pieces shared by every model-size config: vocabulary, sequence lengths, network defaults."""
import ml_collections

# T5's cc_all.32000 SentencePiece model, which the released checkpoints use. Users copy it
# here (see tokenizers/README.md); it is never downloaded at run time.
OFFICIAL_SENTENCEPIECE = "tokenizers/t5/sentencepiece.model"
OFFICIAL_TEXT_PIECES = 32000
OFFICIAL_IMAGE_CODES = 16384


def base_config(*, emb_dim, num_heads, num_encoder_layers, num_decoder_layers, mlp_dim,
                num_segment_embeddings=2):
  """Config for one of the paper's sizes (Table 2) with the official vocabulary."""
  config = ml_collections.ConfigDict()
  config.vocab = ml_collections.ConfigDict(dict(
      sentencepiece_model=OFFICIAL_SENTENCEPIECE,
      text_pieces=OFFICIAL_TEXT_PIECES,  # checked against the model file when it is loaded
      image_codes=OFFICIAL_IMAGE_CODES,  # VQ-GAN codebook size
      # Quantisation of box and point coordinates (unified_io/common/locations.py); the released
      # models use 1000 of the 1100 extra ids.
      location_bins=1000,
  ))
  # Frozen image tokenizer (vqgan/configs.py presets); its codebook size is vocab.image_codes.
  # `weights`: a directory written by vqgan.save or `python -m vqgan.convert` (needed to train
  # on image targets); `preset` only sizes the parameter count when no weights are given.
  config.vqgan = ml_collections.ConfigDict(dict(preset="official", weights=""))
  config.model = ml_collections.ConfigDict(dict(
      emb_dim=emb_dim, num_heads=num_heads, head_dim=64,
      num_encoder_layers=num_encoder_layers, num_decoder_layers=num_decoder_layers,
      mlp_dim=mlp_dim, dropout_rate=0.0, dtype="float32",
      num_segment_embeddings=num_segment_embeddings,
      image_size=384, patch_size=16,
      encoder_max_text_length=256, decoder_max_text_length=256, decoder_max_image_length=256,
      decoder_image_grid_width=16,
      train_image_patches=256,  # paper: 128 in pre-training, 256 in multi-task training
      float32_attention_logits=False, cross_attention_position_bias=False,
      scan_layers=False, remat_policy="none",
  ))
  # Sequence lengths of batches fed to the model (the position tables above are upper bounds).
  config.lengths = ml_collections.ConfigDict(dict(
      text_inputs=256, text_targets=128, image_targets=256))
  config.seed = 0
  # Inputs (unified_io/data/from_config.py documents every key). "synthetic" is the
  # in-code copy task the trainer tests use; "mixture" reads tasks through the registry.
  config.data = ml_collections.ConfigDict(dict(
      source="synthetic", mixture="", tasks="", schedule="rates", data_dir="", max_depth=10.0,
      paraphrase=False, workers=2))
  # Periodic evaluation during training (unified_io/eval/task_eval.py); 0 = only at the end.
  config.eval = ml_collections.ConfigDict(dict(
      every_steps=0, split="validation", num_examples=32, batch_size=16, report=True))
  config.train = ml_collections.ConfigDict(dict(
      batch_size=512, total_steps=1_000_000, log_every=100, max_consecutive_skips=20,
      tensorboard=True,
      # Start location tokens and patch/code positions as sinusoids of their image
      # coordinate (model.geometric_init) instead of random vectors; only from scratch.
      geometric_init=False,
      # For the progress line's FLOP utilisation; 0 = from the device kind (unified_io/common/flops.py).
      peak_flops_per_device=0.0))
  # Paper §3.4: Adafactor, lr 1e-2 constant for 10k steps then 1/sqrt(k), clip at 1.0.
  config.optimizer = ml_collections.ConfigDict(dict(
      name="adafactor", lr=1e-2, constant_steps=10_000, warmup_steps=0, decay_rate=0.8,
      beta1=0.9, parameter_scale=True, clip_norm=1.0))
  # Per-token loss: the mean over every non-padding target token of the batch.
  config.loss = ml_collections.ConfigDict(dict(z_loss=0.0))
  config.freeze = ""  # regex over parameter paths, e.g. "^encoder/" (LiT-decoder setup)
  config.init_from = ""  # a workdir or a converted checkpoint directory: parameters only
  # 2-D mesh (data, model); data=-1 takes the remaining devices. rules=() uses the t5x
  # standard logical-axis rules of unified_io/common/axis_rules.py.
  config.mesh = ml_collections.ConfigDict(dict(model=1, data=-1, rules=()))
  config.checkpoint = ml_collections.ConfigDict(dict(every_steps=2000, keep=3, async_save=True))
  return config
