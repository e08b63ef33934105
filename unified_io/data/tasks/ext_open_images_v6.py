"""The Open Images V6 mask and relationship tasks (catalogue rows 15, 30 and 63).

They read `uio_open_images_v6` (builders/open_images_v6.py; one record per image, boxes as
pixel (x1, y1, x2, y2) of the stored image, class names lower-cased display names like the
V4 tasks' in detection.py), splits train and validation. Formats are vision_logic.py's;
"<box>" below is `vision_logic.box_text` (four location tokens).

- open_images_segmentation (dense_labelling), on `uio_open_images_v6/segmentation`: prompt
  'What is the segmentation of " name " ?' -> every masked instance of that class, each in
  its own palette colour on black (A.1.3), resized nearest. The class is drawn among those
  not in the record's `incomplete_classes` (a dropped mask, or more boxes than masks: their
  unmasked instances would be painted black) and with at most 16 instances (the palette).
  meta: class_name, masks, boxes, colors. SEGMENTATION / SEGMENTATION_IOU.
- open_images_segmentation_generation (image_synthesis), same records: the instance map of
  every masked instance (the 16 largest where there are more) as the input image and the
  prompt 'What is the complete image? Segmentation color: " colour : name , ... "' -> the
  image (A.1.1). Optional: A.1.1 names Open Images among this task's sources, but Table 1
  counts 2 datasets and 220k examples, which COCO 2017 train (118k images) and LVIS v1
  train (100k) already make, so the catalogue marks row 15 as not counted; the task is
  registered so that a mixture may add it. A partial map (classes with unmasked instances)
  is fine here: the paper's input labels "some or all of the pixels". IMAGE / IMAGE_PSNR.
- open_images_relationship (vision_language), on `uio_open_images_v6/relationships`:
  'What is the relationship between " <box> subject " and " <box> object " ?' -> "subject
  predicate object" (A.1.6 card "flower on vase"), e.g. "person plays guitar", "person
  interacts with dog" (the release's "interacts_with"). VRD's "is" rows are left out: their
  second "object" is an attribute or action of the first (LabelName2 "/m/083vt" = wooden),
  not a second boxed object, while A.1.6 defines the task on a pair of objects; rendering
  "table is wooden" would name an attribute as a boxed object in the prompt. A record with
  only "is" rows is skipped. meta: predicate, subject, object, subject_box, object_box.
  TEXT / ACCURACY.

Records that cannot make an example raise SkipExample: an image of another size than the
record's width/height, fields of different lengths, masks of another size than the image, no
usable mask or relationship.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from unified_io.data.builders import open_images_v6  # importing registers the builder
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import instance_logic
from unified_io.data.tasks import vision_logic as vt

SEGMENTATION_BUILDER = f"{open_images_v6.NAME}/{open_images_v6.SEGMENTATION}"
RELATIONSHIP_BUILDER = f"{open_images_v6.NAME}/{open_images_v6.RELATIONSHIPS}"
SPLITS = {"train": "train", "validation": "validation"}


def oi_instances(example: dict) -> Tuple[vt.Objects, List[np.ndarray]]:
  """(the masked objects with a valid box, the bool [H, W] mask of each)."""
  image = vt.sized_image(example)
  objects = example["objects"]
  names = vt.texts(objects["name"], "objects/name")
  boxes = np.asarray(objects["box"], np.float64).reshape(-1, 4)
  masks = np.asarray(objects["mask"])
  if masks.ndim == 4 and masks.shape[-1] == 1:
    masks = masks[..., 0]
  vt.same_lengths("objects", name=names, box=boxes, mask=masks)
  objs = vt.make_objects(example, image, boxes, names).require()
  if masks.shape[1:] != image.shape[:2]:
    raise vt.Skip(f"masks {masks.shape[1:]} do not match the image {image.shape[:2]}")
  return objs, [masks[i] > 0 for i in objs.index]


def _segmentation(example, rng, ctx, prompt):
  objs, masks = oi_instances(example)
  incomplete = frozenset(vt.texts(example["incomplete_classes"], "incomplete_classes"))
  return instance_logic.segmentation(objs, masks, rng, ctx, prompt, exclude=incomplete)


def _segmentation_generation(example, rng, ctx, prompt):
  del ctx
  objs, masks = oi_instances(example)
  return instance_logic.segmentation_generation(objs, masks, rng, prompt, keep_largest=True)


def _relationships(example: dict, image_hw) -> list:
  """(subject box, subject, predicate, object box, object) of the object-object pairs."""
  rel = example["relationships"]
  subject_boxes = np.asarray(rel["subject_box"], np.float64).reshape(-1, 4)
  object_boxes = np.asarray(rel["object_box"], np.float64).reshape(-1, 4)
  subjects = vt.texts(rel["subject_name"], "subject_name")
  predicates = vt.texts(rel["predicate"], "predicate")
  objects = vt.texts(rel["object_name"], "object_name")
  is_attribute = np.asarray(rel["is_attribute"], bool).reshape(-1)
  vt.same_lengths(
    "relationships",
    subject_box=subject_boxes,
    subject_name=subjects,
    predicate=predicates,
    object_box=object_boxes,
    object_name=objects,
    is_attribute=is_attribute,
  )
  rows = zip(subject_boxes, subjects, predicates, object_boxes, objects, is_attribute)
  return vt.usable_relations(
    [(sb, s, p, ob, o) for sb, s, p, ob, o, attribute in rows if not attribute], image_hw
  )


def _relationship(example, rng, ctx, prompt):
  image = vt.sized_image(example)
  return vt.relationship(
    image,
    vt.example_id(example),
    _relationships(example, image.shape[:2]),
    rng,
    ctx,
    prompt,
    "no object-object relationship with valid boxes ('is' attribute rows unused)",
  )


M, O = tasks.Metric, tasks.Output
# (name, group, prompt key, fn, metric, output, builder, description)
_TASKS = (
  (
    "open_images_segmentation",
    "dense_labelling",
    "segmentation",
    _segmentation,
    M.SEGMENTATION_IOU,
    O.SEGMENTATION,
    SEGMENTATION_BUILDER,
    "Open Images V6 masks: every instance of one completely masked class, a colour each.",
  ),
  (
    "open_images_segmentation_generation",
    "image_synthesis",
    "segmentation_based_generation",
    _segmentation_generation,
    M.IMAGE_PSNR,
    O.IMAGE,
    SEGMENTATION_BUILDER,
    "Open Images V6 masks: the image from its instance map (largest 16). Optional: not "
    "counted by Table 1.",
  ),
  (
    "open_images_relationship",
    "vision_language",
    "relationship",
    _relationship,
    M.ACCURACY,
    O.TEXT,
    RELATIONSHIP_BUILDER,
    "Open Images V6 VRD: 'subject predicate object' of two boxed objects ('is' rows unused).",
  ),
)

for _name, _group, _key, _fn, _metric, _output, _builder, _description in _TASKS:
  vt.register(
    _name,
    _group,
    _key,
    _fn,
    metric=_metric,
    output=_output,
    builder=_builder,
    splits=SPLITS,
    description=_description,
  )
