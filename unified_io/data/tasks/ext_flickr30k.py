"""Flickr30k captioning on `uio_flickr30k` (unified_io/data/builders/flickr30k.py).

- flickr30k_captioning (image_captioning, CIDEr): the image_captioning prompt ("What does
  the image describe ?"), the target one of the image's captions drawn uniformly; meta
  "captions" holds all of them, the references CIDEr scores against. An image without a
  caption is skipped. Train, validation and test (Karpathy's split; test captions are
  public). The catalogue holds the paper's size (row 47).
"""

from __future__ import annotations

from unified_io.data.builders import flickr30k  # importing it registers uio_flickr30k
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision_logic as vt


def _captioning(example, rng, ctx, prompt):
  del ctx
  captions = [c for c in vt.texts(example["captions"]["text"], "captions") if c.strip()]
  if not captions:
    raise tasks.SkipExample("image has no captions")
  return vt.captioning(vt.as_image(example["image"]), captions, vt.example_id(example), rng, prompt)


vt.register(
  "flickr30k_captioning",
  "image_captioning",
  "image_captioning",
  _captioning,
  metric=tasks.Metric.CIDER,
  output=tasks.Output.TEXT,
  builder=flickr30k.NAME,
  splits={"train": "train", "validation": "validation", "test": "test"},
  description="Flickr30k: five crowd-sourced captions per Flickr photo (Karpathy's split).",
)
