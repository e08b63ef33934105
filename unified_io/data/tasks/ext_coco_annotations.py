"""COCO 2017 keypoint and instance-mask tasks on the `uio_coco2017` configs.

Importing this module registers the builder (unified_io/data/builders/coco_annotations.py,
whose docstring lists the release files and record fields) and these tasks, on train and
validation, in the formats of vision_logic.py:

- coco_keypoints (`uio_coco2017/keypoints`, sparse_labelling, keypoint OKS): A.1.2's
  single-person subtask. One person is drawn per example among those that are not a crowd
  and have num_keypoints > 0 and a valid box; the prompt is the "keypoint" template with the
  person's box as location tokens ('Find the human joints in the region " <y1> <x1> <y2>
  <x2> " .'), the target the 17 joints in COCO order, each "<y> <x> v" with v = COCO
  visibility + 1, an unlabelled joint (v = 0) as two KEYPOINT_MISSING_TOKENs then "1"
  (`vision_logic.keypoints_text`). Meta: keypoints [17, 2], visibility [17] (COCO's v), box,
  area (COCO's segment area, which OKS scales by) and person_id. Skips, as the built-in
  keypoint task's: no person, no usable person, a visibility outside 0/1/2, a labelled joint
  outside the image. Beside OKS (stage two alone, given the true box), its evaluation runs
  COCO keypoint AP over whole images with the paper's two-stage inference.
- coco_instance_segmentation (`uio_coco2017/instances`, dense_labelling, segmentation IoU):
  A.1.3 on COCO's own instance masks: prompt 'What is the segmentation of " <class> " ?',
  target every instance of the class in its own palette colour on black
  (`instance_logic.segmentation`). Its evaluation adds COCO mask AP over whole images.
- coco_instance_segmentation_generation (`uio_coco2017/instances`, image_synthesis, PSNR):
  A.1.1: the input is the instance map (each instance a palette colour on black), the prompt
  its "colour : class , ..." list, the target the image; the largest 16 instances (the
  palette) are drawn when an image has more (`instance_logic.segmentation_generation`).

Both mask tasks read the 80 COCO classes by name (vision.COCO_CLASSES; the release's names
are the same); crowd regions are never painted (input or target) nor asked for: a class
with a crowd region in the image is not prompted, since its crowd pixels would be black in a
target that claims to show every instance. Boxes are clipped to the image (COCO's reach a
little outside now and then); an object whose clipped box is empty is dropped. These
replace detection.py's coco_segmentation / coco_segmentation_generation (COCO panoptic
thing segments), which stay registered as the fallback when only TFDS data are at hand.
Records that cannot make an example raise SkipExample: fields of different lengths, masks
of another size than the image, a category not among the 80, no object with a valid box.
No task sets `size`: the catalogue holds the paper's sizes (persons, instances).
"""

from __future__ import annotations

from typing import FrozenSet, List, Tuple

import numpy as np

from unified_io.common import coco_keypoints
from unified_io.data.builders import coco_annotations  # importing it registers uio_coco2017
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision
from unified_io.data.tasks import instance_logic
from unified_io.data.tasks import vision_logic as vt

KEYPOINTS = f"{coco_annotations.NAME}/keypoints"
INSTANCES = f"{coco_annotations.NAME}/instances"
TRAIN_VALIDATION = {"train": "train", "validation": "validation"}
NUM_KEYPOINTS = coco_keypoints.NUM_KEYPOINTS
_COCO_CLASSES = frozenset(vision.COCO_CLASSES)


def clip_boxes(boxes, image_hw) -> np.ndarray:
  """Pixel (x1, y1, x2, y2) boxes clipped to the image; NaN stays NaN (then invalid)."""
  height, width = image_hw
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  return np.clip(boxes, 0.0, [width, height, width, height])


# --------------------------------------------------------------------------- keypoints


def _coco_keypoints(example, rng, ctx, prompt):
  image = vt.as_image(example["image"])
  hw = image.shape[:2]
  persons = example["persons"]
  ids = vt.column(persons, "id", np.int64)
  boxes = clip_boxes(persons["box"], hw)
  crowd = vt.column(persons, "iscrowd", bool)
  num_keypoints = vt.column(persons, "num_keypoints", np.int64)
  area = vt.column(persons, "area", np.float64)
  points = np.asarray(persons["keypoints"], np.float64).reshape(-1, NUM_KEYPOINTS, 2)
  visibility = np.asarray(persons["visibility"], np.int64).reshape(-1, NUM_KEYPOINTS)
  vt.same_lengths(
    "persons",
    id=ids,
    box=boxes,
    iscrowd=crowd,
    num_keypoints=num_keypoints,
    area=area,
    keypoints=points,
    visibility=visibility,
  )
  if not len(ids):
    raise vt.Skip("no person in the image")
  candidates = [
    p
    for p in range(len(ids))
    if not crowd[p]
    and num_keypoints[p] > 0
    and visibility[p].any()
    and vt.box_is_valid(boxes[p], hw)
  ]
  if not candidates:
    raise vt.Skip("no person with a valid box and labelled keypoints")
  p = candidates[vt.pick(len(candidates), rng)]
  if not np.isin(visibility[p], (0, 1, 2)).all():
    raise vt.Skip(f"keypoint visibility outside COCO's 0, 1, 2: {visibility[p].tolist()}")
  labelled = visibility[p] > 0
  if not all(vt.point_is_inside(point, hw) for point in points[p][labelled]):
    raise vt.Skip("a labelled keypoint lies outside the image")
  return vt.raw_example(
    prompt(vt.box_text(boxes[p], hw, ctx)),
    image,
    hw,
    vt.example_id(example),
    target_text=vt.keypoints_text(points[p], visibility[p], hw, ctx),
    keypoints=points[p],
    visibility=visibility[p],
    box=boxes[p],
    area=float(area[p]),
    person_id=int(ids[p]),
  )


# --------------------------------------------------------------------------- instances


def coco_instances(example: dict) -> Tuple[vt.Objects, List[np.ndarray], FrozenSet[str]]:
  """(non-crowd objects with a valid box, their masks, classes with a crowd region)."""
  image = vt.as_image(example["image"])
  hw = image.shape[:2]
  objects = example["objects"]
  names = [tasks.as_text(c, "category") for c in np.asarray(objects["category"]).reshape(-1)]
  boxes = clip_boxes(objects["box"], hw)
  crowd = vt.column(objects, "iscrowd", bool)
  masks = np.asarray(objects["mask"])
  if masks.ndim == 4 and masks.shape[-1] == 1:
    masks = masks[..., 0]
  vt.same_lengths("objects", category=names, box=boxes, iscrowd=crowd, mask=masks)
  unknown = sorted(set(names) - _COCO_CLASSES)
  if unknown:
    raise vt.Skip(f"categories not among COCO's 80: {unknown}")
  objs = vt.make_objects(example, image, boxes, names, keep=~crowd).require()
  if masks.shape[1:] != hw:
    raise vt.Skip(f"masks {masks.shape[1:]} do not match the image {hw}")
  crowded = frozenset(name for name, c in zip(names, crowd) if c)
  return objs, [masks[i] > 0 for i in objs.index], crowded


def _coco_instance_segmentation(example, rng, ctx, prompt):
  objs, masks, crowded = coco_instances(example)
  return instance_logic.segmentation(objs, masks, rng, ctx, prompt, exclude=crowded)


def _coco_instance_segmentation_generation(example, rng, ctx, prompt):
  del ctx
  objs, masks, _ = coco_instances(example)
  return instance_logic.segmentation_generation(objs, masks, rng, prompt, keep_largest=True)


# ------------------------------------------------------------------------- registrations

M, O = tasks.Metric, tasks.Output
# name: (group, prompt key, fn, metric, output, builder, description)
_TASKS = {
  "coco_keypoints": (
    "sparse_labelling",
    "keypoint",
    _coco_keypoints,
    M.KEYPOINT_OKS,
    O.KEYPOINTS,
    KEYPOINTS,
    "COCO 2017 person keypoints: the 17 joints of the person in the prompt's box.",
  ),
  "coco_instance_segmentation": (
    "dense_labelling",
    "segmentation",
    _coco_instance_segmentation,
    M.SEGMENTATION_IOU,
    O.SEGMENTATION,
    INSTANCES,
    "COCO 2017 instance masks: every instance of one class, a colour each on black.",
  ),
  "coco_instance_segmentation_generation": (
    "image_synthesis",
    "segmentation_based_generation",
    _coco_instance_segmentation_generation,
    M.IMAGE_PSNR,
    O.IMAGE,
    INSTANCES,
    "COCO 2017 instance masks: the image from its instance map (largest 16).",
  ),
}
TASK_NAMES = tuple(_TASKS)
# Scored over whole validation images beside the per-example metric (eval/image_metrics.py):
# keypoints by two-stage inference (localize "person", then each box's joints), masks by
# asking every class of the image.
_IMAGE_METRICS = {
  "coco_keypoints": (M.COCO_KEYPOINT_AP,),
  "coco_instance_segmentation": (M.COCO_MASK_AP,),
}

for _name, (_group, _key, _fn, _metric, _output, _builder, _about) in _TASKS.items():
  vt.register(
    _name,
    _group,
    _key,
    _fn,
    metric=_metric,
    output=_output,
    builder=_builder,
    splits=TRAIN_VALIDATION,
    description=_about,
    image_metrics=_IMAGE_METRICS.get(_name, ()),
  )
