"""Web image-text tasks: CC3M, CC12M, RedCaps (Table 1) and YFCC15M, RedCaps (pre-training).

Importing this module registers the builders (unified_io/data/builders/web_image_text.py,
whose docstring lists the release files, the img2dataset shard layout and the record fields:
id, key, url, caption, image) and these tasks, each on train and validation:

- cc3m_image_generation, cc12m_image_generation, redcaps_image_generation (image_synthesis,
  Table 1 rows 2-4, PSNR): the image_generation template filled with the caption
  ('What is the complete image? Text: " <caption> " .'), no input image, the target the image
  (A.1.1); meta "caption".
- cc3m_captioning, cc12m_captioning, redcaps_captioning (image_captioning, "webly supervised
  captioning", rows 42-44, CIDEr): the image_captioning template ("What does the image
  describe ?"), the target the caption (A.1.5); meta "captions" holds it as the one reference.
- yfcc15m_text_denoising, redcaps_text_denoising (language_modelling, pre-training P4, P5,
  exact match): "An image of " + the caption with T5 span corruption, the image as input
  (dropped 10% of the time), as pretraining.text_denoising does for every image+text source.
- yfcc15m_image_denoising, redcaps_image_denoising (image_synthesis, pre-training, PSNR):
  pretraining.image_denoising: 75% of the input patches hidden, the target the whole image,
  the caption in the image_generation template (10% of the time "What is the complete
  image?" instead). A.2 uses image+caption data for image denoising too.

A record with a blank caption (the builder skips those, so only a hand-made one) raises
SkipExample "no caption" (captioning, generation) or "no caption or class name" (denoising).
No task sets `size`: the catalogue holds the paper's sizes.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from unified_io.data import prompts
from unified_io.data.builders import web_image_text as wit  # registers the uio_* builders
from unified_io.data.tasks import pretraining
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision_logic as vt

TRAIN_VALIDATION = {"train": "train", "validation": "validation"}
M, O = tasks.Metric, tasks.Output
# Task prefix -> builder, for the Table 1 rows (generation, captioning) and pre-training.
TABLE1 = {"cc3m": wit.CC3M, "cc12m": wit.CC12M, "redcaps": wit.REDCAPS}
PRETRAINING = {"yfcc15m": wit.YFCC15M, "redcaps": wit.REDCAPS}


def read(example: dict) -> Tuple[np.ndarray, List[str], str]:
  """(image, [caption] or [] if blank, id): pretraining's Reader contract."""
  caption = tasks.as_text(example["caption"], "caption")
  image = vt.as_image(example["image"])
  return image, [caption] if caption.strip() else [], vt.example_id(example)


def _image_generation(example, rng, ctx, prompt):
  del ctx
  image, captions, record_id = read(example)
  return vt.image_generation(image, captions, record_id, rng, prompt)


def _captioning(example, rng, ctx, prompt):
  del ctx
  image, captions, record_id = read(example)
  return vt.captioning(image, captions, record_id, rng, prompt)


for _prefix, _builder in TABLE1.items():
  _title = wit.CORPORA[_builder].title
  vt.register(
    f"{_prefix}_image_generation",
    "image_synthesis",
    "image_generation",
    _image_generation,
    metric=M.IMAGE_PSNR,
    output=O.IMAGE,
    builder=_builder,
    splits=TRAIN_VALIDATION,
    description=f"{_title}: the image from its web caption.",
  )
  vt.register(
    f"{_prefix}_captioning",
    "image_captioning",
    "image_captioning",
    _captioning,
    metric=M.CIDER,
    output=O.TEXT,
    builder=_builder,
    splits=TRAIN_VALIDATION,
    description=f"{_title}: webly supervised captioning (the web caption as target).",
  )

for _prefix, _builder in PRETRAINING.items():
  _title = wit.CORPORA[_builder].title
  tasks.register(
    tasks.Task(
      name=f"{_prefix}_text_denoising",
      group="language_modelling",
      builder=_builder,
      preprocess=pretraining.text_denoising(read),
      prompts=prompts.PROMPTS["span_denoising"],
      metric=M.EXACT_MATCH,
      output=O.TEXT,
      splits=TRAIN_VALIDATION,
      description=f'Pre-training: span denoising of "An image of " + the {_title} caption.',
    )
  )
  tasks.register(
    tasks.Task(
      name=f"{_prefix}_image_denoising",
      group="image_synthesis",
      builder=_builder,
      preprocess=pretraining.image_denoising(read),
      prompts=prompts.PROMPTS["image_generation"],
      metric=M.IMAGE_PSNR,
      output=O.IMAGE,
      splits=TRAIN_VALIDATION,
      description=f"Pre-training: masked image denoising on {_title}, with its caption.",
    )
  )
