"""Open Images, LVIS and COCO panoptic tasks, in the formats of `vision_logic.py`.

Importing this module registers tasks on the TFDS feature structures of (nothing is
downloaded at import; `size` is left to the dataset catalogue, which holds the paper's units):

- `open_images_v4/original` (train 1,743,042 / validation 41,620 / test 125,436 images;
  'original' is the default config and the only one that builds without OpenCV). Fields:
  image, image/filename; bobjects{bbox (normalised ymin, xmin, ymax, xmax), label (601
  boxable MIDs, ClassLabel order of TFDS's `open_images_classes_boxable.txt`), is_group_of,
  is_occluded, is_truncated, is_depiction, is_inside (1 / 0 / -1 unknown), source};
  objects{label (19,995 MIDs of `open_images_classes_all.txt`), confidence (0..10 = the CSV's
  0.0..1.0), source (verification, crowdsource-verification = human; machine)}: the
  image-level labels. Tasks: open_images_detection, open_images_localization,
  open_images_categorization, open_images_inpainting.
  * Names: `labels/open_images_v4_boxable_classes.csv` (the release's display names, row i =
    label i), lower-cased like COCO's ("Human eye" -> "human eye"): the capital is sentence
    case, not part of the name (it costs "Christmas tree" and "Ipod" their capitals).
  * Group-of boxes (one box around more than 5 touching instances) are kept for detection and
    localization: they are the only annotation of those instances, and Open Images' own
    detection protocol scores them as regions; dropping them would teach that the objects
    are not there. Categorization and inpainting are about one object (A.1: "for each
    object"), so they drop them. The other flags (occluded, truncated, depiction, inside)
    mark real instances and are kept.
  * Localization negatives name only boxable classes that a human verified absent (image
    label with confidence 0 from a human source): the labels are not exhaustive, so a class
    merely unlabelled may well be in the image. An image without such labels gets no negative.
- `lvis` (v1; train 100,170 images, all from COCO 2017; validation; test has no annotations).
  Fields: image, image/id, objects{id, area, bbox, label (1203), segmentation (uint8 mask
  [H, W, 1], 255 inside, one per object)}, neg_category_ids, not_exhaustive_category_ids.
  Tasks: lvis_segmentation, lvis_segmentation_generation.
  * Names: TFDS's `datasets/lvis/classes.txt` with "_" -> " ", the disambiguator kept
    ("car_(automobile)" -> "car (automobile)"): without it bow, fish, octopus, pan and salmon
    would each name two classes. The one v1 name with a synonym after it,
    "monitor_(computer_equipment) computer_monitor", keeps the part up to its ")". Case is
    LVIS's own (lower case but for proper names: "Christmas tree", "iPod").
  * Segmentation never asks for a class in not_exhaustive_category_ids (some of its
    instances are unannotated, and the target would paint them black). neg_category_ids
    (verified absent) go unused: the paper's segmentation has no negatives.
- `coco/2017_panoptic` (train 118,287 / validation 5,000). Fields: image, image/id,
  panoptic_image (PNG; segment id = R + 256 G + 256^2 B, 0 unlabelled), panoptic_objects{id,
  area, bbox, label (133: the 80 things in COCO_CLASSES order, then 53 stuff), is_crowd}.
  Tasks: coco_segmentation, coco_segmentation_generation, on the thing segments as instance
  masks: the fallback when only TFDS data are at hand (TFDS coco/2017 has no instance masks).
  COCO's own instance masks are `uio_coco2017/instances` (ext_coco_annotations.py:
  coco_instance_segmentation, coco_instance_segmentation_generation), the faithful source of
  the paper's COCO segmentation data; where instance masks overlap, a panoptic thing segment
  is only the part left visible.
  * Stuff segments (sky, wall, grass...) are ignored: the paper's COCO segmentation data are
    the instance annotations, which have no stuff; their pixels stay black in targets and
    input maps, like any pixel of another class.
  * Crowd segments are not instances: they are never painted, and segmentation never asks
    for a class that has one in the image (its crowd pixels would be black in the target).

Target formats (vision_logic): detection and localization as "<box> name ..." lists,
categorization the class name, inpainting the image with the prompt "<box> name"; segmentation
the class's instances each in a palette colour on black; segmentation-based generation the
image from the instance map and its "colour : class , ..." prompt, keeping the largest 16
instances (the palette) when an image has more. Records that cannot make an example raise
SkipExample: fields of different lengths, labels outside the label space, masks or panoptic
maps of another size than the image, no object with a valid box; a single bad box is dropped.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import os
from typing import Dict, FrozenSet, List, Tuple

import numpy as np

from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision
from unified_io.data.tasks import instance_logic
from unified_io.data.tasks import vision_logic as vt

LABELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "labels")
OPEN_IMAGES_CLASSES_FILE = os.path.join(LABELS_DIR, "open_images_v4_boxable_classes.csv")
NUM_OPEN_IMAGES_CLASSES = 601
# TFDS open_images_v4 `source` ClassLabel: verification, crowdsource-verification, machine,
# then the box sources. The first two are human image-level labels.
OPEN_IMAGES_HUMAN_SOURCES = (0, 1)
NUM_LVIS_CLASSES = 1203
NUM_COCO_PANOPTIC_CLASSES = 133  # the 80 things (COCO_CLASSES order), then 53 stuff
TRAIN_VALIDATION = {"train": "train", "validation": "validation"}


# ------------------------------------------------------------------------- label names


def open_images_name(display_name: str) -> str:
  """The prompt/target name of an Open Images class: its display name, lower-cased."""
  return display_name.lower()


def read_open_images_classes(path: str = OPEN_IMAGES_CLASSES_FILE) -> Tuple[Tuple[str, str], ...]:
  """(MID, display name) rows of the boxable-class table, in TFDS label order.

  The file's leading "#" lines are its note (source, licence); then a "mid,display_name"
  header. A table that is not 601 distinct MIDs with distinct names fails here, at import.
  """
  with open(path, newline="", encoding="utf-8") as f:
    rows = list(csv.reader(line for line in f if not line.startswith("#")))
  if not rows or rows[0] != ["mid", "display_name"]:
    raise ValueError(f"{path}: expected a 'mid,display_name' header")
  table = tuple((mid, name) for mid, name in rows[1:])
  mids = {mid for mid, _ in table}
  names = {open_images_name(name) for _, name in table}
  if not len(table) == len(mids) == len(names) == NUM_OPEN_IMAGES_CLASSES:
    raise ValueError(
      f"{path}: {len(table)} rows, {len(mids)} distinct MIDs, {len(names)} distinct names; "
      f"expected {NUM_OPEN_IMAGES_CLASSES} of each"
    )
  return table


OPEN_IMAGES_TABLE = read_open_images_classes()
OPEN_IMAGES_MIDS = tuple(mid for mid, _ in OPEN_IMAGES_TABLE)
OPEN_IMAGES_CLASSES = tuple(open_images_name(name) for _, name in OPEN_IMAGES_TABLE)
_OPEN_IMAGES_NAME_BY_MID = dict(zip(OPEN_IMAGES_MIDS, OPEN_IMAGES_CLASSES))


def tfds_names_file(relative: str) -> Tuple[str, ...]:
  """A ClassLabel names file of the installed tensorflow_datasets, read as ClassLabel does.

  Located without importing the package: tasks are registered before anything needs TFDS.
  """
  spec = importlib.util.find_spec("tensorflow_datasets")
  if spec is None or not spec.submodule_search_locations:
    raise RuntimeError("tensorflow_datasets is not installed: its label files are needed")
  path = os.path.join(list(spec.submodule_search_locations)[0], relative)
  with open(path, encoding="utf-8") as f:
    return tuple(name.strip() for name in f.read().split("\n") if name.strip())


@functools.lru_cache(maxsize=None)
def open_images_all_mids() -> Tuple[str, ...]:
  """The 19,995 MIDs of `objects/label` (image-level labels), in label order."""
  return tfds_names_file(os.path.join("object_detection", "open_images_classes_all.txt"))


def lvis_name(raw: str) -> str:
  """'car_(automobile)' -> 'car (automobile)'; see the module docstring."""
  if " " in raw and ")" in raw:  # a synonym appended after the disambiguator
    raw = raw[: raw.index(")") + 1]
  return raw.replace("_", " ")


@functools.lru_cache(maxsize=None)
def lvis_classes() -> Tuple[str, ...]:
  """The 1203 LVIS v1 class names, readable, in TFDS label order."""
  names = tuple(
    lvis_name(n) for n in tfds_names_file(os.path.join("datasets", "lvis", "classes.txt"))
  )
  if len(names) != NUM_LVIS_CLASSES or len(set(names)) != NUM_LVIS_CLASSES:
    raise ValueError(f"LVIS classes: {len(names)} names, {len(set(names))} distinct")
  return names


# ----------------------------------------------------------------------------- helpers


def _check_labels(labels: np.ndarray, num_classes: int, what: str) -> None:
  if np.any((labels < 0) | (labels >= num_classes)):
    raise vt.Skip(f"{what} label outside its {num_classes} classes")


# --------------------------------------------------------------------------- Open Images


def open_images_objects(example: dict, keep_groups: bool = True) -> vt.Objects:
  """The boxed objects; `keep_groups=False` drops group-of boxes (their class stays annotated)."""
  image = vt.as_image(example["image"])
  objects = example["bobjects"]
  labels = vt.column(objects, "label", np.int64)
  boxes = vt.normalised_to_pixels(objects["bbox"], image.shape[:2])
  group = vt.column(objects, "is_group_of", np.int64) == 1
  vt.same_lengths("bobjects", labels=labels, boxes=boxes, is_group_of=group)
  _check_labels(labels, NUM_OPEN_IMAGES_CLASSES, "bobjects")
  names = [OPEN_IMAGES_CLASSES[label] for label in labels]
  return vt.make_objects(example, image, boxes, names, keep=None if keep_groups else ~group)


def open_images_verified_absent(example: dict) -> List[str]:
  """Boxable classes a human verified absent from the image, sorted (localization negatives)."""
  objects = example["objects"]
  labels = vt.column(objects, "label", np.int64)
  confidence = vt.column(objects, "confidence", np.int64)
  source = vt.column(objects, "source", np.int64)
  vt.same_lengths("objects", labels=labels, confidence=confidence, source=source)
  mids = open_images_all_mids()
  _check_labels(labels, len(mids), "objects")
  absent = labels[np.isin(source, OPEN_IMAGES_HUMAN_SOURCES) & (confidence == 0)]
  return sorted(
    {_OPEN_IMAGES_NAME_BY_MID[mids[i]] for i in absent if mids[i] in _OPEN_IMAGES_NAME_BY_MID}
  )


def _open_images_localization(example, rng, ctx, prompt):
  return vt.localization(
    open_images_objects(example),
    rng,
    ctx,
    prompt,
    OPEN_IMAGES_CLASSES,
    negatives=open_images_verified_absent(example),
  )


def _single_objects(example: dict) -> vt.Objects:
  return open_images_objects(example, keep_groups=False)


# --------------------------------------------------------------------------------- LVIS


def lvis_instances(example: dict) -> Tuple[vt.Objects, List[np.ndarray]]:
  """(objects with a valid box, the mask of each)."""
  image = vt.as_image(example["image"])
  hw = image.shape[:2]
  objects = example["objects"]
  labels = vt.column(objects, "label", np.int64)
  boxes = vt.normalised_to_pixels(objects["bbox"], hw)
  masks = np.asarray(objects["segmentation"])
  if masks.ndim == 4 and masks.shape[-1] == 1:
    masks = masks[..., 0]
  vt.same_lengths("objects", labels=labels, boxes=boxes, segmentation=masks)
  _check_labels(labels, NUM_LVIS_CLASSES, "objects")
  names = lvis_classes()
  objs = vt.make_objects(example, image, boxes, [names[label] for label in labels]).require()
  if masks.shape[1:] != hw:
    raise vt.Skip(f"segmentation masks {masks.shape[1:]} do not match the image {hw}")
  return objs, [masks[i] > 0 for i in objs.index]


def lvis_not_exhaustive(example: dict) -> FrozenSet[str]:
  labels = vt.column(example, "not_exhaustive_category_ids", np.int64)
  _check_labels(labels, NUM_LVIS_CLASSES, "not_exhaustive_category_ids")
  return frozenset(lvis_classes()[label] for label in labels)


def _lvis_segmentation(example, rng, ctx, prompt):
  objs, masks = lvis_instances(example)
  return instance_logic.segmentation(
    objs, masks, rng, ctx, prompt, exclude=lvis_not_exhaustive(example)
  )


def _lvis_segmentation_generation(example, rng, ctx, prompt):
  del ctx
  objs, masks = lvis_instances(example)
  return instance_logic.segmentation_generation(objs, masks, rng, prompt, keep_largest=True)


# ------------------------------------------------------------------------- COCO panoptic


def panoptic_ids(panoptic_image) -> np.ndarray:
  """COCO panoptic PNG [H, W, 3] -> segment ids [H, W] (R + 256 G + 256^2 B)."""
  rgb = np.asarray(panoptic_image).astype(np.int64)
  return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def coco_panoptic_instances(example: dict) -> Tuple[vt.Objects, List[np.ndarray], FrozenSet[str]]:
  """(non-crowd thing segments with a valid box, their masks, classes with a crowd segment)."""
  image = vt.as_image(example["image"])
  panoptic = np.asarray(example["panoptic_image"])
  if panoptic.shape != image.shape:
    raise vt.Skip(f"panoptic_image {panoptic.shape} does not match the image {image.shape}")
  segments = example["panoptic_objects"]
  ids = vt.column(segments, "id", np.int64)
  labels = vt.column(segments, "label", np.int64)
  boxes = vt.normalised_to_pixels(segments["bbox"], image.shape[:2])
  crowd = vt.column(segments, "is_crowd", bool)
  vt.same_lengths("panoptic_objects", id=ids, labels=labels, boxes=boxes, is_crowd=crowd)
  _check_labels(labels, NUM_COCO_PANOPTIC_CLASSES, "panoptic_objects")
  things = np.flatnonzero(labels < len(vision.COCO_CLASSES))  # stuff segments are ignored
  names = [vision.COCO_CLASSES[label] for label in labels[things]]
  objs = vt.make_objects(example, image, boxes[things], names, keep=~crowd[things]).require()
  segment_map = panoptic_ids(panoptic)
  masks = [segment_map == ids[things[i]] for i in objs.index]
  crowded = frozenset(n for n, c in zip(names, crowd[things]) if c)
  return objs, masks, crowded


def _coco_segmentation(example, rng, ctx, prompt):
  objs, masks, crowded = coco_panoptic_instances(example)
  return instance_logic.segmentation(objs, masks, rng, ctx, prompt, exclude=crowded)


def _coco_segmentation_generation(example, rng, ctx, prompt):
  del ctx
  objs, masks, _ = coco_panoptic_instances(example)
  return instance_logic.segmentation_generation(objs, masks, rng, prompt, keep_largest=True)


# ------------------------------------------------------------------------- registrations

M, O = tasks.Metric, tasks.Output
OPEN_IMAGES = "open_images_v4/original"
OPEN_IMAGES_SPLITS = {"train": "train", "validation": "validation", "test": "test"}
# name: (group, prompt key, fn, metric, output, builder, splits, description)
_TASKS: Dict[str, tuple] = {
  "open_images_detection": (
    "sparse_labelling",
    "detection",
    vt.on_objects(open_images_objects, vt.detection),
    M.DETECTION_MAP,
    O.BOXES,
    OPEN_IMAGES,
    OPEN_IMAGES_SPLITS,
    "Open Images V4 detection: every box (group-of boxes included) and its class.",
  ),
  "open_images_localization": (
    "sparse_labelling",
    "localization",
    _open_images_localization,
    M.DETECTION_MAP,
    O.BOXES,
    OPEN_IMAGES,
    OPEN_IMAGES_SPLITS,
    "Open Images V4 localization of one class; negatives only from verified-absent labels.",
  ),
  "open_images_categorization": (
    "image_classification",
    "object_categorization",
    vt.on_objects(_single_objects, vt.object_categorization, class_names=OPEN_IMAGES_CLASSES),
    M.ACCURACY,
    O.CHOICE,
    OPEN_IMAGES,
    OPEN_IMAGES_SPLITS,
    "Open Images V4 object categorization among the 601 boxable classes (no group-of boxes).",
  ),
  "open_images_inpainting": (
    "image_synthesis",
    "image_inpainting",
    vt.on_objects(_single_objects, vt.inpainting),
    M.IMAGE_PSNR,
    O.IMAGE,
    OPEN_IMAGES,
    OPEN_IMAGES_SPLITS,
    "Open Images V4 inpainting: one object's box blanked (no group-of boxes).",
  ),
  "lvis_segmentation": (
    "dense_labelling",
    "segmentation",
    _lvis_segmentation,
    M.SEGMENTATION_IOU,
    O.SEGMENTATION,
    "lvis",
    TRAIN_VALIDATION,
    "LVIS v1: every instance of one exhaustively annotated class, a colour each on black.",
  ),
  "lvis_segmentation_generation": (
    "image_synthesis",
    "segmentation_based_generation",
    _lvis_segmentation_generation,
    M.IMAGE_PSNR,
    O.IMAGE,
    "lvis",
    TRAIN_VALIDATION,
    "LVIS v1: the image from its instance map (largest 16 instances).",
  ),
  "coco_segmentation": (
    "dense_labelling",
    "segmentation",
    _coco_segmentation,
    M.SEGMENTATION_IOU,
    O.SEGMENTATION,
    "coco/2017_panoptic",
    TRAIN_VALIDATION,
    "COCO 2017 panoptic thing segments (fallback for coco_instance_segmentation): every "
    "instance of one class, a colour each on black.",
  ),
  "coco_segmentation_generation": (
    "image_synthesis",
    "segmentation_based_generation",
    _coco_segmentation_generation,
    M.IMAGE_PSNR,
    O.IMAGE,
    "coco/2017_panoptic",
    TRAIN_VALIDATION,
    "COCO 2017 panoptic thing segments (fallback for coco_instance_segmentation_generation): "
    "the image from its instance map (largest 16).",
  ),
}
TASK_NAMES = tuple(_TASKS)

for _name, (_group, _key, _fn, _metric, _output, _builder, _splits, _about) in _TASKS.items():
  vt.register(
    _name,
    _group,
    _key,
    _fn,
    metric=_metric,
    output=_output,
    builder=_builder,
    splits=_splits,
    description=_about,
  )
