"""Unified-IO Base (241M parameters without the VQ-GAN): 12+12 layers, d=768, 12 heads.

The paper's multi-task training (§3.4) at this size: the `paper_multitask` mixture, the
official vocabulary and VQ-GAN, an evaluation every config.evals.tasks.every_steps steps and a
checkpoint every config.checkpoint.every_steps (configs/common.py holds the numbers).

  python -m unified_io.train --config=configs/base.py --workdir=workdir/base

Before the model is built the trainer lists every input that is missing, with the command
that makes it, and stops (unified_io/train/preflight.py). What it needs:

- tokenizers/t5/sentencepiece.model: T5's cc_all.32000 model (tokenizers/README.md).
- vqgan/weights/official: `python -m vqgan.convert --taming last.ckpt --out
  vqgan/weights/official` from taming-transformers' vqgan_imagenet_f16_16384, or
  `--unified-io converted/base/vqgan.msgpack` after `python -m unified_io.convert`.
- every TFDS dataset of the mixture prepared in data_dir (default: TFDS's, ~/tensorflow_datasets
  or $TFDS_DATA_DIR). `python -m unified_io.data.catalog --data_dir=DIR` lists them with the
  command for each (docs/data.md).
- with only some datasets prepared: --config.data.prepared_only=True samples those at the
  paper's rates recomputed over them, and --config.data.allow_missing_groups=True accepts
  that some of the eight task groups then have none (their rates go to the others).

Variants (`--config=configs/base.py:VARIANT`, comma-separated):
  runlocal       a smoke test on one machine: batch 8, 10 steps, a line per step, an
                 evaluation and a checkpoint every 5 steps.
  mixture=NAME   any mixture of unified_io/data/mixtures.py instead of paper_multitask.
  grit=DIR       also evaluate on GRIT's sample files in DIR (config.evals.grit).
  stage=pretraining  the paper's first stage: paper_pretraining, 128 input patches, 500k
                 steps; then train this config with --config.init_from=THAT_WORKDIR.

  python -m unified_io.model --config=configs/base.py     # parameter count
"""

from configs import common


def get_config(arg=None):
  return common.experiment(
    arg, emb_dim=768, num_heads=12, num_encoder_layers=12, num_decoder_layers=12, mlp_dim=2048
  )
