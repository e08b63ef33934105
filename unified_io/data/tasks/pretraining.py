"""The pre-training objectives (§3.3, A.2) on the paper's datasets that TFDS builds.

- Text denoising of image+text data: the caption, or "An image of " + the class name, with
  T5 span corruption (text.span_corruption: 15% of words, one sentinel per span), the image
  as input; the image is dropped DROP_MODALITY_RATE (10%) of the time.
- Masked image denoising: IMAGE_MASK_RATE (75%) of the input patches hidden, the target the
  whole image. Where the source has a class or caption the prompt carries it (A.2: "we use
  the text information when class and caption are present"), in the image-generation
  template; 10% of the time the text is dropped and the prompt is "What is the complete
  image?", which image-only sources always use.
- Pure-text denoising is nlp.py's c4_masked_lm and wikipedia_masked_lm.

Sources: the class datasets of Figure 3 that TFDS builds (ImageNet 2012, SUN397, iNaturalist
2017, via classification.CLASS_READERS), COCO Captions for image+caption, and COCO 2017 as
image-only data "from datasets for our vision tasks". Their rates are the catalogue's
`paper_pretraining` mixture (catalog_rows.PRETRAINING: in proportion to size).
"""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import numpy as np

from unified_io.data import prompts
from unified_io.data.tasks import classification
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import text
from unified_io.data.tasks import vision_logic as vt

Skip = tasks.SkipExample
# The image-only prompt of masked image denoising (the released model's wording).
IMAGE_ONLY_PROMPT = "What is the complete image?"
# Reads one record: (uint8 image, the texts it has (may be empty), example id).
Reader = Callable[[dict], Tuple[np.ndarray, List[str], str]]


def _class_reader(builder: str) -> Reader:
  def read(example):
    image, name, record_id = classification.CLASS_READERS[builder](example)
    return image, [name], record_id

  return read


def _coco_captions(example):
  captions = [
    tasks.as_text(c, "captions") for c in np.asarray(example["captions"]["text"]).reshape(-1)
  ]
  return vt.as_image(example["image"]), [c for c in captions if c.strip()], vt.example_id(example)


def _image_only(example):
  return vt.as_image(example["image"]), [], vt.example_id(example)


def text_denoising(read: Reader) -> Callable:
  def preprocess(example, rng, ctx):
    image, texts, record_id = read(example)
    if not texts:
      raise Skip("no caption or class name")
    chosen = texts[int(rng.integers(len(texts)))]
    original = text.VL_PREFIX + chosen  # A.2: captions and class names alike
    corrupted, target = text.span_corruption(original.split(), rng)
    if rng.random() < text.DROP_MODALITY_RATE:
      image = None
    return text.raw(
      text.prompt("span_denoising", rng, ctx, corrupted),
      target,
      image=image,
      original=original,
      example_id=record_id,
    )

  return preprocess


def image_denoising(read: Reader) -> Callable:
  def preprocess(example, rng, ctx):
    image, texts, record_id = read(example)
    caption: Optional[str] = None
    if texts and rng.random() >= text.DROP_MODALITY_RATE:
      caption = texts[int(rng.integers(len(texts)))]
    prompt = (
      text.literal_prompt(IMAGE_ONLY_PROMPT, ctx)
      if caption is None
      else text.prompt("image_generation", rng, ctx, caption)
    )
    raw = text.raw(prompt, "", image=image, example_id=record_id, caption=caption)
    raw["target_image"] = vt.to_float(image)
    raw["image_input_mask_rate"] = text.IMAGE_MASK_RATE
    raw["image_input_mask_seed"] = int(rng.integers(2**32))
    return raw

  return preprocess


def _register(name, group, builder, preprocess, prompt_key, metric, output, splits):
  objective = "text" if output is tasks.Output.TEXT else "masked image"
  tasks.register(
    tasks.Task(
      name=name,
      group=group,
      builder=builder,
      preprocess=preprocess,
      prompts=prompts.PROMPTS[prompt_key],
      metric=metric,
      output=output,
      splits=splits,
      description=f"Pre-training: {objective} denoising on {builder}.",
    )
  )


TRAIN_VALIDATION = {"train": "train", "validation": "validation"}
CLASS_SOURCES = {  # task prefix -> builder
  "imagenet2012": "imagenet2012",
  "sun397": "sun397/tfds",
  "inaturalist2017": "i_naturalist2017",
}
M, O = tasks.Metric, tasks.Output
for _prefix, _builder in CLASS_SOURCES.items():
  _read = _class_reader(_builder)
  _register(
    f"{_prefix}_text_denoising",
    "language_modelling",
    _builder,
    text_denoising(_read),
    "span_denoising",
    M.EXACT_MATCH,
    O.TEXT,
    TRAIN_VALIDATION,
  )
  _register(
    f"{_prefix}_image_denoising",
    "image_synthesis",
    _builder,
    image_denoising(_read),
    "image_generation",
    M.IMAGE_PSNR,
    O.IMAGE,
    TRAIN_VALIDATION,
  )
COCO_CAPTION_SPLITS = {"train": "train", "validation": "val"}
_register(
  "coco_text_denoising",
  "language_modelling",
  "coco_captions/2014",
  text_denoising(_coco_captions),
  "span_denoising",
  M.EXACT_MATCH,
  O.TEXT,
  COCO_CAPTION_SPLITS,
)
_register(
  "coco_image_denoising",
  "image_synthesis",
  "coco_captions/2014",
  image_denoising(_coco_captions),
  "image_generation",
  M.IMAGE_PSNR,
  O.IMAGE,
  COCO_CAPTION_SPLITS,
)
_register(
  "coco2017_image_denoising",
  "image_synthesis",
  "coco/2017",
  image_denoising(_image_only),
  "image_generation",
  M.IMAGE_PSNR,
  O.IMAGE,
  TRAIN_VALIDATION,
)
