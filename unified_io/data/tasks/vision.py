"""Vision tasks on public TFDS datasets, in the formats of `vision_logic.py`.

Importing this module registers tasks on the TFDS feature structures of:

- `coco/2017` (image, objects{bbox normalised, label (80, COCO_CLASSES order), is_crowd,
  area}): coco_detection, coco_localization, coco_inpainting (one object's box blanked,
  prompt "<box> <class>", target the image) and coco_categorization (one object's box in the
  prompt, its class the target; class_names COCO_CLASSES). Crowd regions are dropped: they
  are not single instances, and a box around a crowd taught as one object would be wrong.
  Their classes still count as present, so a localization negative never names a class the
  image shows.
- `coco_captions/2014` (Karpathy splits; image, captions{text}): coco_captioning and
  coco_image_generation (the paper's text-to-image data includes COCO Caption).
- `ref_coco` (image, objects{bbox, refexp{raw}}; one record per image): refcoco_refexp
  (`refcoco_unc`: train, validation, testA, testB), refcocoplus_refexp (`refcocoplus_unc`,
  the same splits) and refcocog_refexp (`refcocog_umd`: train, validation, test); one
  (object, expression) pair drawn uniformly per example, the target its box.
- `nyu_depth_v2` (image uint8 [480, 640, 3], depth float16 metres): nyu_depth.

Nothing is downloaded at import. No task sets `size`: the dataset catalogue
(unified_io/data/catalog_rows.py) holds every paper dataset's size in the paper's units.
"""

from __future__ import annotations

from typing import List

import numpy as np

from unified_io.data.tasks import vision_logic as vt
from unified_io.data.tasks import registry as tasks

# COCO's 80 detection categories in category-id order: TFDS coco's ClassLabel order. (The
# names are set from the annotation files at build time, so they are not in the code.)
COCO_CLASSES = (
  "person",
  "bicycle",
  "car",
  "motorcycle",
  "airplane",
  "bus",
  "train",
  "truck",
  "boat",
  "traffic light",
  "fire hydrant",
  "stop sign",
  "parking meter",
  "bench",
  "bird",
  "cat",
  "dog",
  "horse",
  "sheep",
  "cow",
  "elephant",
  "bear",
  "zebra",
  "giraffe",
  "backpack",
  "umbrella",
  "handbag",
  "tie",
  "suitcase",
  "frisbee",
  "skis",
  "snowboard",
  "sports ball",
  "kite",
  "baseball bat",
  "baseball glove",
  "skateboard",
  "surfboard",
  "tennis racket",
  "bottle",
  "wine glass",
  "cup",
  "fork",
  "knife",
  "spoon",
  "bowl",
  "banana",
  "apple",
  "sandwich",
  "orange",
  "broccoli",
  "carrot",
  "hot dog",
  "pizza",
  "donut",
  "cake",
  "chair",
  "couch",
  "potted plant",
  "bed",
  "dining table",
  "toilet",
  "tv",
  "laptop",
  "mouse",
  "remote",
  "keyboard",
  "cell phone",
  "microwave",
  "oven",
  "toaster",
  "sink",
  "refrigerator",
  "book",
  "clock",
  "vase",
  "scissors",
  "teddy bear",
  "hair drier",
  "toothbrush",
)
TRAIN_VALIDATION = {"train": "train", "validation": "validation"}


def coco_objects(example: dict) -> vt.Objects:
  image = vt.as_image(example["image"])
  objects = example["objects"]
  labels = np.asarray(objects["label"], np.int64).reshape(-1)
  boxes = vt.normalised_to_pixels(objects["bbox"], image.shape[:2])
  crowd = np.asarray(objects["is_crowd"], bool).reshape(-1)
  if not len(labels) == len(boxes) == len(crowd):
    raise vt.Skip(
      f"objects fields differ in length: {len(labels)} labels, {len(boxes)} "
      f"boxes, {len(crowd)} is_crowd"
    )
  if np.any((labels < 0) | (labels >= len(COCO_CLASSES))):
    raise vt.Skip(f"label outside COCO's {len(COCO_CLASSES)} classes")
  names = [COCO_CLASSES[label] for label in labels]
  return vt.make_objects(example, image, boxes, names, keep=~crowd)


def _coco_caption_texts(example: dict) -> List[str]:
  return [tasks.as_text(c, "captions") for c in np.asarray(example["captions"]["text"]).reshape(-1)]


def _coco_captioning(example, rng, ctx, prompt):
  del ctx
  return vt.captioning(
    vt.as_image(example["image"]), _coco_caption_texts(example), vt.example_id(example), rng, prompt
  )


def _coco_image_generation(example, rng, ctx, prompt):
  del ctx
  return vt.image_generation(
    vt.as_image(example["image"]), _coco_caption_texts(example), vt.example_id(example), rng, prompt
  )


def _rows(value, field: str) -> List[List[str]]:
  """A nested text Sequence as lists of str: a 2-D array, list of lists or RaggedTensor."""
  if hasattr(value, "to_list"):  # tfds.as_numpy leaves nested sequences as RaggedTensors
    value = value.to_list()
  return [
    [tasks.as_text(t, field) for t in np.asarray(row, dtype=object).reshape(-1)] for row in value
  ]


def _refcoco_refexp(example, rng, ctx, prompt):
  image = vt.as_image(example["image"])
  objects = example["objects"]
  boxes = vt.normalised_to_pixels(objects["bbox"], image.shape[:2])
  expressions = _rows(objects["refexp"]["raw"], "refexp")
  if len(expressions) != len(boxes):
    raise vt.Skip(f"{len(boxes)} objects but {len(expressions)} refexp lists")
  pairs = [
    (i, e)
    for i in range(len(boxes))
    if vt.box_is_valid(boxes[i], image.shape[:2])
    for e in expressions[i]
    if e.strip()
  ]
  if not pairs:
    raise vt.Skip("no referring expression of an object with a valid box")
  i, expression = pairs[vt.pick(len(pairs), rng)]
  return vt.refexp(image, boxes[i], expression, vt.example_id(example), ctx, prompt)


def _nyu_depth(example, rng, ctx, prompt):
  del rng
  return vt.depth_estimation(
    vt.as_image(example["image"]), example["depth"], vt.example_id(example), ctx, prompt
  )


M, O = tasks.Metric, tasks.Output
vt.register(
  "coco_detection",
  "sparse_labelling",
  "detection",
  vt.on_objects(coco_objects, vt.detection),
  metric=M.DETECTION_MAP,
  output=O.BOXES,
  builder="coco/2017",
  splits=TRAIN_VALIDATION,
  description="COCO 2017 detection: all non-crowd boxes and classes.",
)
vt.register(
  "coco_localization",
  "sparse_labelling",
  "localization",
  vt.on_objects(coco_objects, vt.localization, class_names=COCO_CLASSES),
  metric=M.DETECTION_MAP,
  output=O.BOXES,
  builder="coco/2017",
  splits=TRAIN_VALIDATION,
  description="COCO 2017 localization of one class, with negatives.",
)
vt.register(
  "coco_captioning",
  "image_captioning",
  "image_captioning",
  _coco_captioning,
  metric=M.CIDER,
  output=O.TEXT,
  builder="coco_captions/2014",
  splits={"train": "train", "validation": "val", "test": "test"},
  description="COCO Captions, Karpathy splits.",
)
vt.register(
  "coco_image_generation",
  "image_synthesis",
  "image_generation",
  _coco_image_generation,
  metric=M.IMAGE_PSNR,
  output=O.IMAGE,
  builder="coco_captions/2014",
  splits={"train": "train", "validation": "val", "test": "test"},
  description="COCO Captions: image from a caption.",
)
vt.register(
  "refcoco_refexp",
  "sparse_labelling",
  "refexp",
  _refcoco_refexp,
  metric=M.BOX_IOU,
  output=O.BOXES,
  builder="ref_coco/refcoco_unc",
  splits={"train": "train", "validation": "validation", "test": "testA"},
  description="RefCOCO (UNC splits) referring expressions.",
)
vt.register(
  "coco_inpainting",
  "image_synthesis",
  "image_inpainting",
  vt.on_objects(coco_objects, vt.inpainting),
  metric=M.IMAGE_PSNR,
  output=O.IMAGE,
  builder="coco/2017",
  splits=TRAIN_VALIDATION,
  description="COCO 2017 inpainting: one non-crowd object's box blanked.",
)
vt.register(
  "coco_categorization",
  "image_classification",
  "object_categorization",
  vt.on_objects(coco_objects, vt.object_categorization, class_names=COCO_CLASSES),
  metric=M.ACCURACY,
  output=O.CHOICE,
  builder="coco/2017",
  splits=TRAIN_VALIDATION,
  description="COCO 2017 object categorization: the class of one non-crowd box.",
)
vt.register(
  "refcocoplus_refexp",
  "sparse_labelling",
  "refexp",
  _refcoco_refexp,
  metric=M.BOX_IOU,
  output=O.BOXES,
  builder="ref_coco/refcocoplus_unc",
  splits={"train": "train", "validation": "validation", "test": "testA"},
  description="RefCOCO+ (UNC splits) referring expressions (appearance only).",
)
vt.register(
  "refcocog_refexp",
  "sparse_labelling",
  "refexp",
  _refcoco_refexp,
  metric=M.BOX_IOU,
  output=O.BOXES,
  builder="ref_coco/refcocog_umd",
  splits={"train": "train", "validation": "validation", "test": "test"},
  description="RefCOCOg (UMD splits) referring expressions.",
)
vt.register(
  "nyu_depth",
  "dense_labelling",
  "depth",
  _nyu_depth,
  metric=M.DEPTH_RMSE,
  output=O.DEPTH,
  builder="nyu_depth_v2",
  splits=TRAIN_VALIDATION,
  description="NYU Depth v2 (max_depth 10 m).",
)
