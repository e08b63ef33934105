"""Image classification datasets of the paper's Table 1, as classification and as generation.

Paper A.1.4: Unified-IO trains image classification on ImageNet 2012, ImageNet21k, Places365,
Sun397, iNaturalist and Caltech birds 2011 ("the input is an image and a static prompt, and
the output is a class name"); A.1.1 adds "datasets used for image classification using the
object class as the input caption" to image synthesis from text. This module registers the
five of them that TFDS builds (ImageNet-21k is ext_imagenet21k.py's), each twice:

- `<key>_classification` (group image_classification, prompt "image_classification"): the
  image and the static prompt; the target is the readable class name. Output CHOICE, metric
  ACCURACY: evaluation scores every name of `meta["class_names"]`, so the answer is always
  a class of the dataset being evaluated, as the paper does.
- `<key>_image_generation` (group image_synthesis, prompt "image_generation"): the prompt
  with the class name as its text; the target is the image (float [0, 1], no input image).
  Output IMAGE, metric IMAGE_PSNR.

Datasets (TFDS 4.9.10 builders; features read; label-name rule; task splits):

- imagenet2012 (image, label, file_name; manual download): ClassLabel names are WordNet ids
  ('n01440764'); readable names from `labels/imagenet2012_names.txt` (the WordNet lemma of
  each synset, duplicates resolved; see that file), e.g. label 0 -> "tench". Splits train,
  validation (its test split has label -1 and is left out).
- places365_small (image 256x256, label, filename): names like 'airfield',
  'apartment_building/outdoor' -> '/' and '_' become spaces: "apartment building outdoor".
  Splits train, validation (test: label -1).
- sun397/tfds (file_name, image, label): names like '/a/abbey', '/b/bakery/shop' -> drop the
  leading '/<letter>/', then '/' and '_' become spaces: "abbey", "bakery shop". The `tfds`
  config is the one with train, validation and test (the `standard-partN-120k` configs
  have train and test only). Splits train, validation, test.
- i_naturalist2017 (id, image, label, supercategory): names are scientific names
  ('Nicrophorus tomentosus'), used verbatim (whitespace normalised). iNaturalist 2017, not
  2018: the paper cites Van Horn et al. 2018 (CVPR), the paper of the 2017 competition
  dataset, which is what TFDS i_naturalist2017 builds (5,089 classes). Splits train,
  validation (test: label -1).
- caltech_birds2011 (image, image/filename, label, label_name, bbox, segmentation_mask):
  ClassLabel names are only '0'..'199', so names come from the dataset's classes.txt, shipped
  as `labels/caltech_birds2011_classes.txt`: "001.Black_footed_Albatross" -> "black footed
  albatross" (TFDS's label_name, 'black_footed_albatross', with spaces; it is not read).
  The builder has train and test only: task split "validation" reads TFDS test too (the
  trainer's default evaluator runs on "validation"; CUB has no other held-out set).

Bad records raise SkipExample with the reason: label -1 (unlabelled), a label outside the
name table, an image that is not a non-empty uint8 [H, W, 3] array.

`READABLE_NAMES[builder]` (the names in label order) and `CLASS_READERS[builder]` (one record
-> (uint8 image, readable name, example id)) serve other objectives over the same records;
keys are the task builders, "sun397/tfds" with its config. Name tables are read at import
from files in the repository and the installed TFDS package: nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import pathlib
from typing import Callable, Dict, Mapping, Tuple

import numpy as np

from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision_logic as vt

LABELS_DIR = pathlib.Path(__file__).resolve().parent.parent / "labels"
# The TFDS package's own label files: the very files the builders' ClassLabels are built
# from. Located without importing tensorflow_datasets, which is slow to import.
TFDS_DIR = pathlib.Path(importlib.util.find_spec("tensorflow_datasets").origin).parent


def _lines(path: pathlib.Path) -> Tuple[str, ...]:
  """Non-empty lines, '#' header comments dropped (TFDS label files have none)."""
  with open(path, encoding="utf-8") as f:
    return tuple(l.rstrip("\n") for l in f if l.strip() and not l.startswith("#"))


def _words(text: str) -> str:
  return " ".join(text.split())


# ------------------------------------------------------------------ label-name rules


def imagenet_table() -> Tuple[Tuple[str, str], ...]:
  """(WordNet id, readable name) rows of labels/imagenet2012_names.txt, in label order."""
  rows = tuple(tuple(line.split("\t")) for line in _lines(LABELS_DIR / "imagenet2012_names.txt"))
  bad = [row for row in rows if len(row) != 2 or not row[1].strip()]
  if bad:
    raise ValueError(f"imagenet2012_names.txt: rows not '<wnid>\\t<name>': {bad[:3]}")
  return rows


def places365_name(label: str) -> str:
  """'apartment_building/outdoor' -> 'apartment building outdoor'."""
  return _words(label.replace("/", " ").replace("_", " "))


def sun397_name(label: str) -> str:
  """'/b/bakery/shop' -> 'bakery shop': the first-letter folder is an index, not a word."""
  parts = label.split("/")
  if len(parts) < 3 or parts[0] or len(parts[1]) != 1:
    raise ValueError(f"SUN397 label {label!r} is not '/<letter>/<name>[/<qualifier>]'")
  return places365_name("/".join(parts[2:]))


def inaturalist_name(label: str) -> str:
  """Scientific names are the dataset's class names; only whitespace is normalised."""
  return _words(label)


def caltech_birds_table() -> Tuple[str, ...]:
  """The "NNN.Folder_Name" rows of labels/caltech_birds2011_classes.txt, label order."""
  folders = []
  for i, line in enumerate(_lines(LABELS_DIR / "caltech_birds2011_classes.txt")):
    class_id, folder = line.split(" ")
    # Label k is class id k + 1 and folder number k + 1 (the builder's int(NNN) - 1).
    if int(class_id) != i + 1 or int(folder.split(".")[0]) != i + 1:
      raise ValueError(f"caltech_birds2011_classes.txt row {i + 1} is out of order: {line!r}")
    folders.append(folder)
  return tuple(folders)


def caltech_birds_name(folder: str) -> str:
  """'001.Black_footed_Albatross' -> 'black footed albatross' (TFDS label_name, spaced)."""
  return _words(folder.split(".", 1)[1].replace("_", " ").lower())


# ---------------------------------------------------------------------- the datasets


@dataclasses.dataclass(frozen=True)
class ClassificationSet:
  key: str  # task-name prefix
  builder: str  # TFDS name, with config where it has several
  names: Tuple[str, ...]  # readable class names in TFDS label order
  id_field: str  # the record's file name or id feature
  splits: Mapping[str, str]  # task split -> TFDS split (labelled splits only)
  title: str


TRAIN_VALIDATION = {"train": "train", "validation": "validation"}
_TFDS_LABELS = TFDS_DIR / "image_classification"

DATASETS: Tuple[ClassificationSet, ...] = (
  ClassificationSet(
    "imagenet2012",
    "imagenet2012",
    tuple(name for _, name in imagenet_table()),
    "file_name",
    TRAIN_VALIDATION,
    "ImageNet 2012 (ILSVRC-2012, 1000 classes)",
  ),
  ClassificationSet(
    "places365",
    "places365_small",
    tuple(places365_name(n) for n in _lines(_TFDS_LABELS / "categories_places365.txt")),
    "filename",
    TRAIN_VALIDATION,
    "Places365-Standard, 256x256 (365 scene classes)",
  ),
  ClassificationSet(
    "sun397",
    "sun397/tfds",
    tuple(sun397_name(n) for n in _lines(_TFDS_LABELS / "sun397_labels.txt")),
    "file_name",
    {"train": "train", "validation": "validation", "test": "test"},
    "SUN397, TFDS random 70/10/20 partition (397 scene classes)",
  ),
  ClassificationSet(
    "inaturalist2017",
    "i_naturalist2017",
    tuple(inaturalist_name(n) for n in _lines(_TFDS_LABELS / "inaturalist_labels.txt")),
    "id",
    TRAIN_VALIDATION,
    "iNaturalist 2017 (5,089 species, scientific names)",
  ),
  ClassificationSet(
    "caltech_birds2011",
    "caltech_birds2011",
    tuple(caltech_birds_name(f) for f in caltech_birds_table()),
    "image/filename",
    # No validation split: the test split stands in for it (see the module docstring).
    {"train": "train", "validation": "test", "test": "test"},
    "Caltech-UCSD Birds-200-2011 (200 species)",
  ),
)
BY_BUILDER: Dict[str, ClassificationSet] = {ds.builder: ds for ds in DATASETS}
READABLE_NAMES: Dict[str, Tuple[str, ...]] = {ds.builder: ds.names for ds in DATASETS}


def read_record(ds: ClassificationSet, example: dict) -> Tuple[np.ndarray, str, str]:
  """(uint8 [H, W, 3] image, readable class name, example id) of one record of `ds`."""
  label = np.asarray(example["label"])
  if label.size != 1:
    raise tasks.SkipExample(f"label is not a single class: shape {label.shape}")
  label = int(label.reshape(()))
  if label == -1:  # TFDS writes -1 where the release has no label (test splits)
    raise tasks.SkipExample("label is -1 (unlabelled record)")
  if not 0 <= label < len(ds.names):
    raise tasks.SkipExample(f"label {label} outside the {len(ds.names)} classes of {ds.builder}")
  image = vt.as_image(example["image"])
  if ds.id_field in example:
    record_id = tasks.as_text(example[ds.id_field], ds.id_field)
  else:
    record_id = vt.example_id(example)
  return image, ds.names[label], record_id


CLASS_READERS: Dict[str, Callable[[dict], Tuple[np.ndarray, str, str]]] = {
  ds.builder: functools.partial(read_record, ds) for ds in DATASETS
}


def _classification(ds: ClassificationSet):
  def fn(example, rng, ctx, prompt):
    del rng, ctx
    image, name, record_id = read_record(ds, example)
    return vt.raw_example(
      prompt(),
      image,
      image.shape[:2],
      record_id,
      target_text=name,
      label=name,
      class_names=ds.names,
    )

  return fn


def _image_generation(ds: ClassificationSet):
  def fn(example, rng, ctx, prompt):
    del ctx
    image, name, record_id = read_record(ds, example)
    raw = vt.image_generation(image, [name], record_id, rng, prompt)
    raw["meta"]["label"] = name  # which class the picture shows, beside the caption
    return raw

  return fn


M, O = tasks.Metric, tasks.Output
TASK_NAMES = []
for _ds in DATASETS:
  # No `size`: the dataset catalogue holds the paper-unit sizes the mixtures use.
  vt.register(
    f"{_ds.key}_classification",
    "image_classification",
    "image_classification",
    _classification(_ds),
    metric=M.ACCURACY,
    output=O.CHOICE,
    builder=_ds.builder,
    splits=dict(_ds.splits),
    description=f"{_ds.title}: image -> class name, among the dataset's classes.",
  )
  vt.register(
    f"{_ds.key}_image_generation",
    "image_synthesis",
    "image_generation",
    _image_generation(_ds),
    metric=M.IMAGE_PSNR,
    output=O.IMAGE,
    builder=_ds.builder,
    splits=dict(_ds.splits),
    description=f"{_ds.title}: image from its class name as the caption.",
  )
  TASK_NAMES += [f"{_ds.key}_classification", f"{_ds.key}_image_generation"]
TASK_NAMES = tuple(TASK_NAMES)
