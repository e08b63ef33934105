"""Pieces shared by every model-size config: vocabulary, sequence lengths, network defaults.

`base_config` is the paper's multitask experiment (official vocabulary, official VQ-GAN,
`paper_multitask`); `experiment` adds the variants that `get_config(arg)` of the size configs
accept (`configs/xl.py:runlocal`, `configs/xl.py:mixture=NAME`, or both, comma-separated).
"""

import ml_collections

# T5's cc_all.32000 SentencePiece model, which the released checkpoints use. Users copy it
# here (see tokenizers/README.md); it is never downloaded at run time.
OFFICIAL_SENTENCEPIECE = "tokenizers/t5/sentencepiece.model"
OFFICIAL_TEXT_PIECES = 32000
OFFICIAL_IMAGE_CODES = 16384
# taming-transformers' ImageNet f16 16384-code VQ-GAN, which the released checkpoints use,
# converted by `python -m vqgan.convert` (README "VQ-GAN image tokenizer"); never downloaded.
OFFICIAL_VQGAN_WEIGHTS = "vqgan/weights/official"
OFFICIAL_MIXTURE = "paper_multitask"
# What `get_config(arg)` accepts: `runlocal` (a flag), `mixture=NAME`, `grit=DIR`, `stage=S`.
VARIANT_KEYS = ("runlocal", "mixture", "grit", "stage")
STAGES = ("multitask", "pretraining")
# §3.4: 1000k steps in all, 500k of pre-training then 500k of multi-task training; 128 of
# the 576 input patches sampled in pre-training, 256 in multi-task training.
PRETRAINING_STEPS = 500_000
PRETRAINING_IMAGE_PATCHES = 128
GRIT_EVERY_STEPS = 50_000


def base_config(
  *, emb_dim, num_heads, num_encoder_layers, num_decoder_layers, mlp_dim, num_segment_embeddings=2
):
  """Config for one of the paper's sizes (Table 2) with the official vocabulary."""
  config = ml_collections.ConfigDict()
  config.vocab = ml_collections.ConfigDict(
    dict(
      sentencepiece_model=OFFICIAL_SENTENCEPIECE,
      text_pieces=OFFICIAL_TEXT_PIECES,  # checked against the model file when it is loaded
      image_codes=OFFICIAL_IMAGE_CODES,  # VQ-GAN codebook size
      # Quantisation of box and point coordinates (unified_io/common/locations.py); the released
      # models use 1000 of the 1100 extra ids.
      location_bins=1000,
    )
  )
  # Frozen image tokenizer (vqgan/configs.py presets); its codebook size is vocab.image_codes.
  # `weights`: a directory written by vqgan.save or `python -m vqgan.convert` (needed to train
  # on image targets); `preset` only sizes the parameter count when no weights are given.
  config.vqgan = ml_collections.ConfigDict(dict(preset="official", weights=OFFICIAL_VQGAN_WEIGHTS))
  config.model = ml_collections.ConfigDict(
    dict(
      emb_dim=emb_dim,
      num_heads=num_heads,
      head_dim=64,
      num_encoder_layers=num_encoder_layers,
      num_decoder_layers=num_decoder_layers,
      mlp_dim=mlp_dim,
      dropout_rate=0.0,
      dtype="float32",
      num_segment_embeddings=num_segment_embeddings,
      image_size=384,
      patch_size=16,
      encoder_max_text_length=256,
      decoder_max_text_length=256,
      decoder_max_image_length=256,
      decoder_image_grid_width=16,
      train_image_patches=256,  # paper: 128 in pre-training, 256 in multi-task training
      float32_attention_logits=False,
      cross_attention_position_bias=False,
      scan_layers=False,
      remat_policy="none",
    )
  )
  # Sequence lengths of batches fed to the model (the position tables above are upper bounds).
  config.lengths = ml_collections.ConfigDict(
    dict(text_inputs=256, text_targets=128, image_targets=256)
  )
  config.seed = 0
  # The evaluation's seed: each validation example's preprocessing choices (which question,
  # object or region it asks about) and sampled decoding. Apart from config.seed, so that
  # runs of different training seeds are scored on the same examples and baselines.
  config.eval_seed = 0
  # Inputs (unified_io/data/from_config.py documents every key). "mixture" reads tasks
  # through the registry; "synthetic" (the in-code copy task of the trainer tests) is only
  # used when named: --config.data.source=synthetic. The trainer's preflight
  # (unified_io/train/preflight.py) refuses a group-rate mixture that leaves some of the
  # paper's task groups empty unless allow_missing_groups=True; prepared_only=True trains
  # on the mixture's tasks whose datasets are prepared (rates recomputed over them).
  config.data = ml_collections.ConfigDict(
    dict(
      source="mixture",
      mixture=OFFICIAL_MIXTURE,
      tasks="",
      # "stratified": the mixture's rates, each example shape (input image or not, target
      # image or not) spread evenly over the stream; "rates": shuffled blocks at the rates.
      schedule="stratified",
      data_dir="",
      # A clean_split exclusion list (python -m unified_io.data.clean_split --out=FILE):
      # training images also in any task's validation or test split are skipped and counted.
      exclude_images="",
      max_depth=10.0,
      paraphrase=False,
      # How prompts name the task: "prompt", the templates' natural-language instructions
      # (the released models); "task_token", the task's marker followed by the template's
      # arguments only (the LiT-decoder study's task prefix; docs/ablations.md).
      conditioning="prompt",
      # How a target lists several objects: "random", a fresh order per example (the paper
      # randomises detection outputs, A.1.2, and segmentation colours, section 2); "raster",
      # sorted by their boxes' top-left corners (top to bottom, then left to right) with
      # segmentation instances given the palette's colours in that order, so that the
      # target is a function of the image and the prompt (unified_io/data/tasks/vision_logic.py).
      object_order="random",
      workers=2,
      # "process": preprocessing in worker processes (no GIL; data/process_workers.py).
      workers_kind="thread",
      allow_missing_groups=False,
      prepared_only=False,
      # schedule="stop_and_go" (12-in-1 §3; unified_io/data/stop_and_go.py): measure each
      # task's validation loss every every_steps steps on num_examples fixed examples; a task
      # improving less than min_improvement over patience measurements is stopped (sampled
      # every iter_gap-th time), and goes again when its loss is max_degradation above its best.
      stop_and_go=ml_collections.ConfigDict(
        dict(
          every_steps=1000,
          num_examples=16,
          split="validation",
          min_improvement=0.001,
          patience=2,
          max_degradation=0.005,
          iter_gap=4,
        )
      ),
      # Curriculum (12-in-1 §3, Table 6; docs/training.md; unified_io/data/schedule.py): the
      # first `steps` training steps sample only the tasks of the comma-separated task
      # groups `first_groups` (unified_io/data/tasks/registry.py GROUPS), at their rates
      # renormalised over them, then the whole mixture at its rates. Easy (fast-converging)
      # groups first is a curriculum, hard (slow) ones first an anti-curriculum: one
      # mechanism. 12-in-1 tried both (one group, then all tasks) and kept neither: each
      # averaged below its dynamic stop-and-go schedule and its full model, the curriculum
      # even below plain round-robin, while the anti-curriculum about matched round-robin
      # and only helped the hard group it began with. With schedule "stratified" or
      # "rates" (not round_robin or stop_and_go). first_groups="" or steps=0: off.
      curriculum=ml_collections.ConfigDict(dict(first_groups="", steps=0)),
    )
  )
  # Evaluators the trainer runs (unified_io/eval/evaluators.py), each every its every_steps
  # (0: only after the last step) and all after the last step. "tasks": the mixture's
  # registered tasks, metric beside baseline and a report with pictures in WORKDIR/eval/.
  # The variant `:grit=DIR` adds GRIT (its sample files in DIR) every 50k steps.
  config.evals = ml_collections.ConfigDict(
    dict(
      tasks=dict(
        kind="tasks",
        every_steps=20_000,
        split="validation",
        num_examples=32,
        batch_size=16,
        report=True,
        tasks="",
      )
    )
  )
  config.train = ml_collections.ConfigDict(
    dict(
      batch_size=512,
      total_steps=1_000_000,
      log_every=100,
      max_consecutive_skips=20,
      tensorboard=True,
      # Start location tokens and patch/code positions as sinusoids of their image
      # coordinate (model.geometric_init) instead of random vectors; only from scratch.
      geometric_init=False,
      # For the progress line's FLOP utilisation; 0 = from the device kind
      # (unified_io/common/flops.py).
      peak_flops_per_device=0.0,
      # "buckets": each batch runs as parts by example shape, each cut to bucketed lengths,
      # so no FLOPs go to padding (unified_io/train/length_buckets.py); same loss and
      # gradients as "padded", the config's fixed lengths (benchmarks/README.md).
      batch_shapes="buckets",
      # examples=N > 0: train the decoder alone from cached encoder outputs (see config.freeze).
      encoder_cache=dict(examples=0),
    )
  )
  # Paper §3.4: Adafactor, lr 1e-2 constant for 10k steps then 1/sqrt(k), clip at 1.0.
  config.optimizer = ml_collections.ConfigDict(
    dict(
      name="adafactor",
      lr=1e-2,
      constant_steps=10_000,
      warmup_steps=0,
      decay_rate=0.8,
      beta1=0.9,
      parameter_scale=True,
      clip_norm=1.0,
    )
  )
  # normalization "tokens": the mean over every non-padding target token of the batch (the
  # released model), so a task's share of the gradient is its rate times its target length
  # (a 65-code image weighs as much as 30 one-word answers); "examples": the mean over the
  # batch's examples of each one's per-token mean (t5x's AVERAGE_PER_SEQUENCE), so a task's
  # share is its rate, but a short target's tokens weigh more than a long one's of the same
  # task; "tasks": the per-token mean with each task's tokens weighted by 1 / its mean
  # target length (measured on 32 records at start), so a task's share is its rate and
  # one task's tokens weigh alike (unified_io/model/losses.py, docs/diagnosing_tasks.md).
  config.loss = ml_collections.ConfigDict(dict(z_loss=0.0, normalization="tokens"))
  config.freeze = ""  # regex over parameter paths, e.g. "^encoder/" (LiT-decoder setup)
  # With the encoder and the token embedding it shares frozen ("^(encoder|token_embedder)/"),
  # config.train.encoder_cache.examples=N > 0 (0 = off, the default) encodes the first N
  # training examples once (N a multiple of train.batch_size; with the eval-time path: no
  # dropout, so model.dropout_rate must be 0, and every input patch, not train_image_patches
  # random ones) and trains only the decoder on them, epoch after epoch
  # (unified_io/train/encoder_cache.py). Not with data.schedule="stop_and_go" or
  # data.workers_kind="process".
  config.init_from = ""  # a workdir or a converted checkpoint directory: parameters only
  # 2-D mesh (data, model); data=-1 takes the remaining devices. rules=() uses the t5x
  # standard logical-axis rules of unified_io/common/axis_rules.py. fsdp=True also splits
  # parameters and optimiser state over the data axis (t5x's 2-D parameter partitioning);
  # `python -m unified_io.aot` shows what each setting takes per device.
  config.mesh = ml_collections.ConfigDict(dict(model=1, data=-1, rules=(), fsdp=False))
  # restore_step: 0 resumes from the latest checkpoint; an older step falls back to it (the
  # later ones are moved to WORKDIR/checkpoints_set_aside/, never deleted).
  config.checkpoint = ml_collections.ConfigDict(
    dict(every_steps=2000, keep=3, async_save=True, restore_step=0)
  )
  return config


def parse_variant(arg):
  """'runlocal,mixture=NAME' -> {"runlocal": True, "mixture": "NAME"}; unknown keys raise.

  ml_collections' config_flags passes the text after ':' of --config=FILE:ARG as `arg`.
  """
  variant = {}
  for item in (arg or "").split(","):
    item = item.strip()
    if not item:
      continue
    key, has_value, value = item.partition("=")
    if key not in VARIANT_KEYS:
      raise ValueError(
        f"Unknown config variant {key!r} in {arg!r}; variants: "
        f"{', '.join(VARIANT_KEYS)} (e.g. configs/xl.py:runlocal,mixture=NAME)"
      )
    if (key == "runlocal") == bool(has_value):
      raise ValueError(
        f"Config variant {item!r}: write 'runlocal', 'mixture=NAME', 'grit=DIR' or 'stage=S'"
      )
    variant[key] = value if has_value else True
  return variant


def experiment(arg, **sizes):
  """A paper size's config (base_config(**sizes)) with the variant `arg` applied.

  runlocal: a smoke test of the same code path on one machine (tiny batch, a few steps,
  a line per step, an evaluation and a checkpoint within the run), not a result.
  mixture=NAME: any mixture of unified_io/data/mixtures.py instead of paper_multitask.
  grit=DIR: also evaluate on GRIT's sample files in DIR (ablation split, every
  GRIT_EVERY_STEPS steps and at the end), writing submissions under WORKDIR/grit/.
  stage=pretraining: the paper's first stage (§3.3, A.2): the paper_pretraining mixture
  (text and masked image denoising), 128 input patches, PRETRAINING_STEPS steps. The
  multi-task stage (the default, stage=multitask) then starts from it with
  --config.init_from=PRETRAINING_WORKDIR.
  """
  variant = parse_variant(arg)
  config = base_config(**sizes)
  stage = variant.get("stage", "multitask")
  if stage not in STAGES:
    raise ValueError(f"Config variant stage={stage!r}: stages are {', '.join(STAGES)}")
  if stage == "pretraining":
    config.data.mixture = "paper_pretraining"
    config.model.train_image_patches = PRETRAINING_IMAGE_PATCHES
    config.train.total_steps = PRETRAINING_STEPS
  if "mixture" in variant:
    from unified_io.data import mixtures

    if variant["mixture"] not in mixtures.MIXTURES:
      raise ValueError(
        f"Config variant mixture={variant['mixture']!r}: mixtures are "
        f"{', '.join(sorted(mixtures.MIXTURES))}"
      )
    config.data.mixture = variant["mixture"]
  if "grit" in variant:
    config.evals.grit = dict(
      kind="grit",
      every_steps=GRIT_EVERY_STEPS,
      grit_dir=variant["grit"],
      split="ablation",
      tasks="",
      num_examples=0,
      batch_size=16,
    )
  if variant.get("runlocal"):
    config.train.update(dict(batch_size=8, total_steps=10, log_every=1))
    config.evals.tasks.update(dict(every_steps=5, num_examples=4, batch_size=4))
    config.checkpoint.update(dict(every_steps=5, async_save=False))
    config.data.workers = 1
  return config
