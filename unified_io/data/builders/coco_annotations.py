"""TFDS builder `uio_coco2017`: the COCO 2017 annotations TFDS's `coco` builder leaves out.

TFDS `coco/2017` has boxes and labels only: no person keypoints and no instance masks. Two
configs read them from COCO's own annotation files, one record per image:

- `uio_coco2017/keypoints`: `annotations/person_keypoints_{train,val}2017.json`, every
  person annotation with its 17 keypoints (task coco_keypoints).
- `uio_coco2017/instances`: `annotations/instances_{train,val}2017.json`, every object with
  its instance mask decoded from the polygons or RLE (tasks coco_instance_segmentation and
  coco_instance_segmentation_generation).

Release (https://cocodataset.org/#download: "2017 Train/Val annotations" =
annotations_trainval2017.zip, which unzips to `annotations/`; "2017 Train images" =
train2017.zip, "2017 Val images" = val2017.zip), under `<manual_dir>/uio_coco2017/`
(manual_dir: `<data_dir>/downloads/manual/` unless `--manual_dir` says otherwise):

    annotations/person_keypoints_train2017.json, person_keypoints_val2017.json  (keypoints)
    annotations/instances_train2017.json, instances_val2017.json               (instances)
    train2017/, val2017/    <12-digit image id>.jpg; either folder may be a symlink

Fields read (COCO's data format, cocodataset.org/#format-data, checked against pycocotools):
images [{id, file_name, height, width, ...}]; categories [{id, name, supercategory} (the
keypoints file's one person category adds keypoints (17 names) and skeleton)]; annotations
[{id, image_id, category_id, bbox [x, y, w, h] in pixels, area (the segment's pixel area),
iscrowd (0/1), segmentation: a list of polygons [x1, y1, x2, y2, ...] when iscrowd is 0,
else RLE {counts: [run lengths] (uncompressed; a compressed string is accepted too), size:
[height, width]}}]; keypoint annotations add keypoints [x1, y1, v1, ... x17, y17, v17]
(v: 0 unlabelled (then x = y = 0), 1 labelled but not visible, 2 visible) and
num_keypoints (the number with v > 0).

Records (key: the image id; annotations in annotation-id order; boxes are float32 pixel
(x1, y1, x2, y2) = (x, y, x + w, y + h), as released, not clipped):
- both: id (the image id as text), image (the JPEG bytes as released), image/id (int64),
  image/filename.
- keypoints: persons Sequence{id, box, area, iscrowd (bool), num_keypoints (int32),
  keypoints float32 [17, 2] (x, y), visibility int32 [17] (COCO's v)}.
- instances: objects Sequence{id, category_id (COCO's 1..90), category (its name, e.g.
  "dining table"), box, area, iscrowd, mask uint8 [H, W, 1] PNG (255 inside)}.

Awkward cases, each counted in the build log:
- train keeps only images with something to learn from: for keypoints a person that is not
  a crowd and has num_keypoints > 0 (about 56.6k of 118,287 train images), for instances a
  non-crowd object (all but about a thousand). Validation keeps every image of the file,
  annotated or not: COCO's evaluation (keypoint or mask AP) runs over all of them, and its
  false positives on unannotated images count.
- Kept images keep every annotation: crowd regions (iscrowd 1, RLE masks, no keypoints) and
  persons with num_keypoints 0 are what COCO's evaluation ignores a detection on, so they are
  stored with their flags; the tasks never prompt for nor paint them.
- Keypoints with v = 0 are stored as released (0, 0, v 0); the task writes them as missing.
- Polygons: an object may have several (occlusion splits it); they are merged into one
  mask. A polygon of fewer than three points (or an odd number of coordinates) has no area
  and is dropped (pycocotools would read a 4-number polygon as a box); an object left with
  none, or whose RLE is of another size than the image, keeps an empty mask.
- Boxes reaching outside the image are stored as released; the tasks clip them to it. Masks
  are rasterised inside the image only (pycocotools clips polygons).
- An image whose file has another size than the annotation file's height/width is skipped
  (its annotations are in the frame of that size); a file that is not an RGB or greyscale
  JPEG is re-encoded as an RGB JPEG (TFDS decoding expects 3 or 1 channels). An image the
  annotations list but its folder lacks fails the build naming it, as does any missing
  release file: a partial copy would otherwise build silently smaller.
- Annotations of an image id the file does not list, or of an unknown category, are dropped.

Prepare with `python -m unified_io.data.prepare uio_coco2017/keypoints uio_coco2017/instances
--data_dir=DIR`, which writes ArrayRecord files (random access for the input pipeline);
TFDS 4.9.10 has no per-builder default file format, so a bare `download_and_prepare()`
writes TFRecords: pass `file_format="array_record"`. The annotation file is held in memory
while a split is prepared (instances_train2017.json, 448 MiB, takes a few GB as Python
objects); masks are decoded one object at a time.
"""

from __future__ import annotations

import collections
import io
import warnings
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds
from absl import logging
from etils import epath
from pycocotools import mask as mask_utils

from unified_io.common import coco_keypoints
from unified_io.data.builders import common

NAME = "uio_coco2017"
HOMEPAGE = "https://cocodataset.org/#download"
# Release name part -> TFDS split. test2017 has no annotations: nothing to train or score.
SPLITS = {"train2017": "train", "val2017": "validation"}
ANNOTATION_FILES = {
  "keypoints": "annotations/person_keypoints_{}.json",
  "instances": "annotations/instances_{}.json",
}
NUM_KEYPOINTS = coco_keypoints.NUM_KEYPOINTS
MIN_POLYGON_COORDS = 6  # three points: anything less encloses no area

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
From https://cocodataset.org/#download put into <manual_dir>/uio_coco2017/ (manual_dir:
<data_dir>/downloads/manual/ unless --manual_dir says otherwise), unzipped, under their
original names:
  annotations/person_keypoints_train2017.json, annotations/person_keypoints_val2017.json
  annotations/instances_train2017.json, annotations/instances_val2017.json
      (all four in "2017 Train/Val annotations", annotations_trainval2017.zip)
  train2017/  ("2017 Train images", train2017.zip)
  val2017/    ("2017 Val images", val2017.zip)
train2017/ and val2017/ (and annotations/) may be symlinks to where COCO 2017 already is.
Each config needs only its own two annotation files and the two image folders.
Then: python -m unified_io.data.prepare uio_coco2017/keypoints uio_coco2017/instances
--data_dir=DATA_DIR, which writes ArrayRecord files.
"""


def release_files(config: str) -> List[str]:
  """Every file and folder config `config` reads, relative to the release folder."""
  return [ANNOTATION_FILES[config].format(s) for s in SPLITS] + [f"{s}/" for s in SPLITS]


def xyxy(bbox) -> np.ndarray:
  """COCO's [x, y, w, h] -> float32 (x1, y1, x2, y2); a malformed box becomes NaNs."""
  values = np.asarray(bbox if bbox is not None else [], np.float64).reshape(-1)
  if values.shape != (4,):
    return np.full(4, np.nan, np.float32)
  x, y, w, h = values
  return np.array([x, y, x + w, y + h], np.float32)


def _outside(box: np.ndarray, height: int, width: int) -> bool:
  return bool(box[0] < 0 or box[1] < 0 or box[2] > width or box[3] > height)


# ----------------------------------------------------------------------------- images


def _image(root: epath.Path, folder: str, info: dict, counts) -> Optional[bytes]:
  """The image's bytes (re-encoded if not an RGB/greyscale JPEG), or None to skip it."""
  path = root / folder / info["file_name"]
  if not path.exists():
    raise common.MissingReleaseFile(
      f"{NAME}: missing in {root}: {folder}/{info['file_name']} (see the builder's "
      "MANUAL_DOWNLOAD_INSTRUCTIONS)"
    )
  data = path.read_bytes()
  with PIL.Image.open(io.BytesIO(data)) as image:
    if image.size != (int(info["width"]), int(info["height"])):
      counts["images skipped: file size differs from the annotation file"] += 1
      logging.info(
        "%s: %s is %s, the annotations say %sx%s: skipped",
        NAME,
        info["file_name"],
        image.size,
        info["width"],
        info["height"],
      )
      return None
    stored, reencoded = common.storable_jpeg(image, data)
    if reencoded:
      counts[f"images re-encoded as RGB JPEG ({image.format} {image.mode})"] += 1
    return stored


def _by_image(data: dict, counts) -> Tuple[List[dict], Dict[int, List[dict]]]:
  """(images in id order, their annotations in annotation-id order)."""
  images = sorted(data.get("images", []), key=lambda info: int(info["id"]))
  listed = {int(info["id"]) for info in images}
  anns: Dict[int, List[dict]] = collections.defaultdict(list)
  for ann in data.get("annotations", []):
    if int(ann["image_id"]) not in listed:
      counts["annotations dropped: image id not in images"] += 1
      continue
    anns[int(ann["image_id"])].append(ann)
  for group in anns.values():
    group.sort(key=lambda ann: int(ann["id"]))
  return images, anns


def _records(root, config, split, convert, usable) -> Iterator[Tuple[int, dict]]:
  """The records of one split. `convert(ann, image info, categories, counts)` is the stored
  annotation; `usable(stored)` says whether it lets train keep its image."""
  path = root / ANNOTATION_FILES[config].format(split)
  data = common.read_json(path)
  counts = collections.Counter()
  check = CHECKS.get(config)
  if check:
    check(data, path)
  categories = {int(c["id"]): str(c["name"]) for c in data.get("categories", [])}
  images, anns = _by_image(data, counts)
  del data  # the annotations now live in `anns` only
  for info in images:
    image_id = int(info["id"])
    counts["images"] += 1
    stored = []
    for ann in anns.pop(image_id, []):
      counts["annotations"] += 1
      if int(ann.get("category_id", -1)) not in categories:
        counts["annotations dropped: unknown category"] += 1
        continue
      stored.append(convert(ann, info, categories, counts))
    if SPLITS[split] == "train" and not any(usable(item) for item in stored):
      counts["train images skipped: nothing usable"] += 1
      continue
    image = _image(root, split, info, counts)
    if image is None:
      continue
    counts["images written"] += 1
    yield (
      image_id,
      {
        "id": str(image_id),
        "image": image,
        "image/id": image_id,
        "image/filename": str(info["file_name"]),
        FIELD[config]: stored,
      },
    )
  for reason, n in sorted(counts.items()):
    logging.info("%s/%s %s: %s: %d", NAME, config, split, reason, n)


# -------------------------------------------------------------------------- keypoints


def _check_keypoint_names(data: dict, path) -> None:
  """The file's joint order must be the project's (coco_keypoints): targets index by it."""
  for category in data.get("categories", []):
    names = tuple(category.get("keypoints", ()))
    if names and names != coco_keypoints.KEYPOINT_NAMES:
      raise ValueError(f"{path}: keypoint names {names} are not COCO's 17 in COCO order")


def _person(ann: dict, info: dict, categories, counts) -> dict:
  del categories
  box = xyxy(ann.get("bbox"))
  counts["persons: box reaches outside the image"] += _outside(box, info["height"], info["width"])
  raw = np.asarray(ann.get("keypoints") or [], np.float64).reshape(-1)
  if raw.shape != (3 * NUM_KEYPOINTS,):
    counts["persons: malformed keypoints (stored as unlabelled)"] += 1
    raw = np.zeros(3 * NUM_KEYPOINTS)
  joints = raw.reshape(NUM_KEYPOINTS, 3)
  crowd = bool(ann.get("iscrowd", 0))
  num_keypoints = int(ann.get("num_keypoints", int(np.sum(joints[:, 2] > 0))))
  counts["persons: crowd"] += crowd
  counts["persons: num_keypoints 0"] += num_keypoints == 0
  counts["persons: usable"] += not crowd and num_keypoints > 0
  return {
    "id": int(ann["id"]),
    "box": box,
    "area": float(ann.get("area", 0.0)),
    "iscrowd": crowd,
    "num_keypoints": num_keypoints,
    "keypoints": joints[:, :2].astype(np.float32),
    "visibility": joints[:, 2].astype(np.int32),
  }


def _person_usable(person: dict) -> bool:
  return not person["iscrowd"] and person["num_keypoints"] > 0


# -------------------------------------------------------------------------- instances


def decode_mask(segmentation, height: int, width: int, counts) -> np.ndarray:
  """bool [height, width] of a polygon list or an RLE (uncompressed or compressed)."""
  if isinstance(segmentation, dict):
    size = [int(s) for s in segmentation.get("size", ())]
    if size != [height, width]:
      counts["masks left empty: RLE of another size than the image"] += 1
      return np.zeros((height, width), bool)
    if isinstance(segmentation["counts"], list):  # uncompressed, as crowd annotations are
      rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
      counts_ = segmentation["counts"]
      rle = {"size": size, "counts": counts_.encode() if isinstance(counts_, str) else counts_}
    return _decode(rle)
  polygons = [
    [float(v) for v in p]
    for p in (segmentation or [])
    if len(p) >= MIN_POLYGON_COORDS and len(p) % 2 == 0
  ]
  counts["polygons dropped: fewer than 3 points"] += len(segmentation or []) - len(polygons)
  if not polygons:
    counts["masks left empty: no polygon"] += 1
    return np.zeros((height, width), bool)
  counts["objects with several polygons"] += len(polygons) > 1
  return _decode(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width)))


def _decode(rle) -> np.ndarray:
  with warnings.catch_warnings():  # pycocotools 2.0.x under numpy 2: harmless, once per mask
    warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
    return mask_utils.decode(rle).astype(bool)


def _png(mask: np.ndarray) -> bytes:
  out = io.BytesIO()
  PIL.Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(out, format="PNG")
  return out.getvalue()


def _object(ann: dict, info: dict, categories, counts) -> dict:
  height, width = int(info["height"]), int(info["width"])
  box = xyxy(ann.get("bbox"))
  counts["objects: box reaches outside the image"] += _outside(box, height, width)
  crowd = bool(ann.get("iscrowd", 0))
  counts["objects: crowd"] += crowd
  mask = decode_mask(ann.get("segmentation"), height, width, counts)
  return {
    "id": int(ann["id"]),
    "category_id": int(ann["category_id"]),
    "category": categories[int(ann["category_id"])],
    "box": box,
    "area": float(ann.get("area", 0.0)),
    "iscrowd": crowd,
    "mask": _png(mask),
  }


def _object_usable(obj: dict) -> bool:
  return not obj["iscrowd"]


FIELD = {"keypoints": "persons", "instances": "objects"}
CHECKS = {"keypoints": _check_keypoint_names}
_CONVERT = {"keypoints": (_person, _person_usable), "instances": (_object, _object_usable)}


# ---------------------------------------------------------------------------- builder


def _features(config: str) -> tfds.features.FeaturesDict:
  box = tfds.features.Tensor(shape=(4,), dtype=np.float32, doc="pixel x1, y1, x2, y2")
  fields = {
    "id": tfds.features.Text(doc="the image id in decimal"),
    "image": tfds.features.Image(encoding_format="jpeg"),
    "image/id": np.int64,
    "image/filename": tfds.features.Text(),
  }
  if config == "keypoints":
    fields["persons"] = tfds.features.Sequence(
      {
        "id": np.int64,
        "box": box,
        "area": np.float32,
        "iscrowd": np.bool_,
        "num_keypoints": np.int32,
        "keypoints": tfds.features.Tensor(shape=(NUM_KEYPOINTS, 2), dtype=np.float32),
        "visibility": tfds.features.Tensor(shape=(NUM_KEYPOINTS,), dtype=np.int32),
      }
    )
  else:
    fields["objects"] = tfds.features.Sequence(
      {
        "id": np.int64,
        "category_id": np.int64,
        "category": tfds.features.Text(),
        "box": box,
        "area": np.float32,
        "iscrowd": np.bool_,
        "mask": tfds.features.Image(
          shape=(None, None, 1), encoding_format="png", doc="255 inside the instance"
        ),
      }
    )
  return tfds.features.FeaturesDict(fields)


class UioCoco2017(tfds.core.GeneratorBasedBuilder):
  """COCO 2017 person keypoints and instance masks from COCO's annotation files."""

  name = NAME
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Person keypoints and instance masks, train2017 and val2017."}
  BUILDER_CONFIGS = [
    tfds.core.BuilderConfig(
      name="keypoints", description="person_keypoints_{train,val}2017.json: 17 joints a person."
    ),
    tfds.core.BuilderConfig(
      name="instances", description="instances_{train,val}2017.json: a mask per object."
    ),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  # TFDS 4.9.10 finds this with an undeclared backport (importlib_resources); give it.
  code_path = epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
      description=__doc__, features=_features(self.builder_config.name), homepage=HOMEPAGE
    )

  def _split_generators(self, dl_manager):
    config = self.builder_config.name
    root = common.release_dir(dl_manager, NAME)
    common.require(root, f"{NAME}/{config}", release_files(config))
    return {
      tfds_split: self._generate_examples(root, split) for split, tfds_split in SPLITS.items()
    }

  def _generate_examples(self, root: epath.Path, split: str):
    config = self.builder_config.name
    convert, usable = _CONVERT[config]
    yield from _records(root, config, split, convert, usable)
