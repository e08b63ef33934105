"""TFDS builder `uio_open_images_v6`: the Open Images V6 annotations TFDS open_images_v4 lacks.

Two configs, each reading its own release files from `<manual_dir>/uio_open_images_v6/`
(https://storage.googleapis.com/openimages/web/download_v6.html; the segmentations are V5's,
unchanged in V6):

- `segmentation` (catalogue rows 15 and 30), instance masks:
  * `train-annotations-object-segmentation.csv`, `validation-annotations-object-segmentation.csv`:
    MaskPath, ImageID, LabelName (MID), BoxID, BoxXMin, BoxXMax, BoxYMin, BoxYMax (normalised
    to [0, 1]; note the X, X, Y, Y order), PredictedIoU, Clicks ("x y label;..." as released).
  * `train-masks-[0-9a-f].zip`, `validation-masks-[0-9a-f].zip`: one binary PNG per MaskPath,
    in the zip named by the ImageID's first character. They are read inside the zips.
  * optional `oidv6-train-annotations-bbox.csv`, `validation-annotations-bbox.csv` (ImageID,
    Source, LabelName, ...): the boxes, only counted, to find classes whose boxes outnumber
    their masks in an image (see "incomplete" below).
- `relationships` (catalogue row 63), visual relationships:
  * `oidv6-train-annotations-vrd.csv`, `oidv6-validation-annotations-vrd.csv` (the V4/V5 name
    `validation-annotations-vrd.csv` is read where the V6 one is absent): ImageID, LabelName1,
    LabelName2, XMin1, XMax1, YMin1, YMax1, XMin2, XMax2, YMin2, YMax2 (normalised),
    RelationshipLabel ("at", "on", "holds", "plays", "interacts_with", "is", ...).
  * `oidv6-attributes-description.csv` (MID, name): LabelName2 of the "is" rows is an
    attribute, not an object ("/m/083vt" Wooden, "/m/0dnr7" "(made of)Textile").
  * optional `oidv6-relationships-description.csv` (label, display name; no header).
- Both: `class-descriptions-boxable.csv` (MID, display name; no header) and/or
  `oidv6-class-descriptions.csv` (header LabelName, DisplayName), and the images
  `train/<ImageID>.jpg`, `validation/<ImageID>.jpg` (the V4 images; either folder may be a
  symlink to where they already are).

Records (one per image; `id` is the ImageID; boxes are float32 pixel (x1, y1, x2, y2) of the
stored image, clipped to it; names are display names lower-cased like the project's V4
tasks, "Human face" -> "human face"):
- segmentation: id, file_name ("train/<id>.jpg"), image (JPEG), width, height,
  objects {label (MID), name, box, box_id, mask_path, predicted_iou, clicks, mask (uint8
  [H, W, 1] PNG, 255 inside, at the image's size)}, incomplete_classes (names),
  box_counts_checked (whether the split's boxes file was read).
- relationships: id, file_name, image, width, height, relationships {subject_label,
  subject_name, subject_box, object_label, object_name, object_box, predicate_label (as
  released), predicate (display name, "_" -> " "), is_attribute}.

Decisions on the release's awkward cases (each counted in the build log):
- Masks often come at another resolution than the image files (openimages/dataset issue #92;
  fizyr/keras-maskrcnn issue #106 finds 1600 px long sides for images of 1024): a mask with
  the image's aspect ratio (to within a pixel of either) is resized to the image's size,
  nearest neighbour; any other (a transposed one, say) is dropped. A mask listed in the CSV
  but absent from its zip, one PIL cannot read and one empty after resizing are dropped too.
- "incomplete": a class with a dropped mask in an image, or, where the boxes file is
  present, with more boxes than kept masks (an image's masks need not cover every box of
  their class), is listed in `incomplete_classes`: segmenting it would paint its unmasked
  instances black, so the segmentation task never asks for it. Without the boxes file only
  dropped masks are known (logged as a warning).
- VRD "is" rows (RelationshipLabel "is", or LabelName2 an attribute MID; V6's relationships
  include object properties and human actions, "table is wooden", "woman is jumping") are
  kept with is_attribute set and the attribute's name ("(made of)Textile" -> "textile"); the
  relationship task leaves them out (see ext_open_images_v6.py). Rows naming a MID in no
  description file are dropped; so is a relationship or mask whose box is empty after
  clipping.
- An image missing from `train/` or `validation/`, or that PIL cannot open, is skipped
  (logged as a warning with the count: a partial image download builds a smaller dataset);
  one not an RGB or greyscale JPEG is re-encoded as an RGB JPEG. An image left with no mask
  (segmentation) or no relationship is skipped.
- The release's rotation information (the `Rotation` column of the image-ID files) is not
  applied: boxes and masks are in the frame of the stored pixels, as the files give them
  (TFDS open_images_v4, which the V4 tasks read, ignores it too).

Only train and validation are built. Prepare with `python -m unified_io.data.prepare
uio_open_images_v6/segmentation uio_open_images_v6/relationships --data_dir=DIR` (ArrayRecord;
TFDS 4.9.10 has no per-builder default file format).
"""

from __future__ import annotations

import collections
import csv
import io
import re
import zipfile
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from unified_io.data.builders import common

NAME = "uio_open_images_v6"
SEGMENTATION, RELATIONSHIPS = "segmentation", "relationships"
HOMEPAGE = "https://storage.googleapis.com/openimages/web/download_v6.html"
SPLITS = ("train", "validation")
ZIP_SHARDS = "0123456789abcdef"
CLASS_FILES = ("class-descriptions-boxable.csv", "oidv6-class-descriptions.csv")
ATTRIBUTES_FILE = "oidv6-attributes-description.csv"
PREDICATES_FILE = "oidv6-relationships-description.csv"
SEGMENTATION_CSV = {s: f"{s}-annotations-object-segmentation.csv" for s in SPLITS}
BOXES_CSV = {
  "train": "oidv6-train-annotations-bbox.csv",
  "validation": "validation-annotations-bbox.csv",
}
VRD_CSV = {
  "train": ("oidv6-train-annotations-vrd.csv",),
  "validation": ("oidv6-validation-annotations-vrd.csv", "validation-annotations-vrd.csv"),
}

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
From {HOMEPAGE} (Open Images V6; the segmentation files are under V5's links there) put into
`<manual_dir>/{NAME}/`, under their original names, not unzipped:
  class-descriptions-boxable.csv (and/or oidv6-class-descriptions.csv)
  train/<ImageID>.jpg, validation/<ImageID>.jpg: the images (the V4/V6 boxable images from
    the CVDF or AWS downloads); either folder may be a symlink to where they already are.
For uio_open_images_v6/segmentation:
  train-annotations-object-segmentation.csv, validation-annotations-object-segmentation.csv
  train-masks-0.zip ... train-masks-f.zip, validation-masks-0.zip ... validation-masks-f.zip
  optional, to tell which classes have unmasked boxes: oidv6-train-annotations-bbox.csv,
    validation-annotations-bbox.csv
For uio_open_images_v6/relationships:
  oidv6-train-annotations-vrd.csv, oidv6-validation-annotations-vrd.csv
  oidv6-attributes-description.csv, optional oidv6-relationships-description.csv
Then: python -m unified_io.data.prepare uio_open_images_v6/segmentation
  uio_open_images_v6/relationships --data_dir=DIR
"""


def mask_zips(split: str) -> Tuple[str, ...]:
  return tuple(f"{split}-masks-{c}.zip" for c in ZIP_SHARDS)


# ---------------------------------------------------------------------------- names


def _clean(text: str) -> str:
  return " ".join(str(text).split())


def class_name(display: str) -> str:
  """'Human face' -> 'human face': the sentence-case capital is not part of the name."""
  return _clean(display).lower()


def attribute_name(display: str) -> str:
  """'(made of)Textile' -> 'textile': the parenthesised qualifier is the attribute's kind."""
  return class_name(re.sub(r"^\([^)]*\)", "", _clean(display)))


def predicate_name(label: str, names: Dict[str, str]) -> str:
  """'interacts_with' -> 'interacts with' (the description file's name where it has one)."""
  return _clean(names.get(label, label).replace("_", " ")).lower()


def read_descriptions(path: epath.Path) -> Dict[str, str]:
  """{first column: second column} of a description CSV; a header row is left out."""
  table = {}
  with path.open(encoding="utf-8") as f:
    for row in csv.reader(f):
      if len(row) >= 2 and row[0].strip() and row[0] not in ("LabelName", "id", "MID"):
        table.setdefault(row[0].strip(), row[1].strip())
  return table


def _class_names(root: epath.Path) -> Dict[str, str]:
  """MID -> name from the class description files present (boxable first)."""
  names = {}
  for file_name in CLASS_FILES:
    if common.exists(root / file_name):
      for mid, display in read_descriptions(root / file_name).items():
        names.setdefault(mid, class_name(display))
  return names


def _first_present(root: epath.Path, candidates: Sequence[str]) -> str:
  for name in candidates:
    if common.exists(root / name):
      return name
  raise common.MissingReleaseFile(
    f"{NAME}: missing in {root}: {' or '.join(candidates)} (see the builder's "
    "MANUAL_DOWNLOAD_INSTRUCTIONS)"
  )


# ------------------------------------------------------------------------ geometry


def pixel_box(xmin, xmax, ymin, ymax, size: Tuple[int, int]) -> Optional[np.ndarray]:
  """Normalised XMin, XMax, YMin, YMax (the CSV order) -> pixel (x1, y1, x2, y2) clipped to
  size (width, height); None when not finite or empty after clipping."""
  try:
    values = [float(v) for v in (xmin, xmax, ymin, ymax)]
  except (TypeError, ValueError):
    return None
  if not np.all(np.isfinite(values)):
    return None
  width, height = size
  x1, x2 = (min(max(v * width, 0.0), float(width)) for v in values[:2])
  y1, y2 = (min(max(v * height, 0.0), float(height)) for v in values[2:])
  if x2 <= x1 or y2 <= y1:
    return None
  return np.array([x1, y1, x2, y2], np.float32)


def fit_mask(data: bytes, size: Tuple[int, int]) -> Tuple[Optional[np.ndarray], str]:
  """(bool [H, W] mask at the image's size (width, height), or None; what was done)."""
  try:
    with PIL.Image.open(io.BytesIO(data)) as mask:
      values = np.asarray(mask.convert("L"))
  except (OSError, ValueError, SyntaxError):
    return None, "masks dropped: unreadable PNG"
  binary = values > int(values.max()) // 2  # 0/255 as released; a 0/1 file keeps its ones
  width, height = size
  mask_h, mask_w = binary.shape
  if (mask_w, mask_h) != (width, height):
    # Another resolution of the same frame: the sides agree to within one pixel of either.
    slack_w, slack_h = 1 + width / mask_w, 1 + height / mask_h
    if abs(mask_w * height / mask_h - width) > slack_w or (
      abs(mask_h * width / mask_w - height) > slack_h
    ):
      return None, "masks dropped: aspect ratio differs from the image's"
    resized = PIL.Image.fromarray(binary).resize((width, height), PIL.Image.Resampling.NEAREST)
    binary, how = np.asarray(resized), "masks resized to the image (nearest)"
  else:
    how = "masks at the image's size"
  if not binary.any():
    return None, "masks dropped: empty at the image's size"
  return binary, how


def _png(mask: np.ndarray) -> bytes:
  out = io.BytesIO()
  PIL.Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(out, format="PNG")
  return out.getvalue()


def _read_image(path: epath.Path, counts) -> Optional[Tuple[bytes, Tuple[int, int]]]:
  """(JPEG bytes, (width, height)), or None if PIL cannot open the file."""
  data = path.read_bytes()
  try:
    with PIL.Image.open(io.BytesIO(data)) as image:
      size = image.size
      data, reencoded = common.storable_jpeg(image, data)
      counts["images re-encoded as RGB JPEG"] += reencoded
  except (OSError, ValueError, SyntaxError) as e:
    logging.warning("%s: %s cannot be read (%s): skipped", NAME, path, e)
    counts["images skipped: unreadable"] += 1
    return None
  return data, size


def _image(root: epath.Path, split: str, image_id: str, counts):
  """(file_name, JPEG bytes, (width, height)) of the image, or None (counted)."""
  file_name = f"{split}/{image_id}.jpg"
  if not common.exists(root / file_name):
    counts[f"images skipped: not in {split}/"] += 1
    return None
  read = _read_image(root / file_name, counts)
  return None if read is None else (file_name, *read)


def _log(split: str, counts) -> None:
  for reason, n in sorted(c for c in counts.items() if c[1]):
    logging.info("%s[%s]: %s: %d", NAME, split, reason, n)
  missing = sum(n for reason, n in counts.items() if reason.startswith("images skipped: not in"))
  if missing:
    logging.warning("%s[%s]: %d annotated images are not in the image folder", NAME, split, missing)


def _box_features():
  return tfds.features.Tensor(shape=(4,), dtype=np.float32)


# --------------------------------------------------------------------- segmentation


class _MaskZips:
  """The split's mask zips, each opened when first needed; members found by base name."""

  def __init__(self, root: epath.Path, split: str):
    self._root, self._split = root, split
    self._zips: Dict[str, Tuple[zipfile.ZipFile, Dict[str, str]]] = {}
    self._files = []

  def read(self, image_id: str, mask_path: str) -> Optional[bytes]:
    shard = image_id[:1].lower()
    if shard not in self._zips:
      if shard not in ZIP_SHARDS:
        return None
      handle = (self._root / f"{self._split}-masks-{shard}.zip").open("rb")
      self._files.append(handle)
      archive = zipfile.ZipFile(handle)
      members = {n.rsplit("/", 1)[-1]: n for n in archive.namelist() if not n.endswith("/")}
      self._zips[shard] = archive, members
    archive, members = self._zips[shard]
    member = members.get(mask_path.rsplit("/", 1)[-1])
    return None if member is None else archive.read(member)

  def close(self) -> None:
    for archive, _ in self._zips.values():
      archive.close()
    for handle in self._files:
      handle.close()


_MaskRow = collections.namedtuple(
  "_MaskRow", "MaskPath LabelName BoxID BoxXMin BoxXMax BoxYMin BoxYMax PredictedIoU Clicks"
)
_VrdRow = collections.namedtuple(
  "_VrdRow",
  "LabelName1 LabelName2 XMin1 XMax1 YMin1 YMax1 XMin2 XMax2 YMin2 YMax2 RelationshipLabel",
)


def _segmentation_rows(root, split: str, names: Dict[str, str], counts) -> Dict[str, list]:
  """ImageID -> [_MaskRow] in file order, rows of an undescribed MID left out."""
  by_image = collections.defaultdict(list)
  with (root / SEGMENTATION_CSV[split]).open(encoding="utf-8") as f:
    for row in csv.DictReader(f):
      if row["LabelName"] not in names:
        counts["masks dropped: MID in no class description file"] += 1
        continue
      # A tuple of the fields a record keeps: a dict per row would take GBs for train.
      by_image[row["ImageID"]].append(_MaskRow(*(row.get(k) or "" for k in _MaskRow._fields)))
  return by_image


def _box_counts(root, split: str, by_image: Dict[str, list]) -> Optional[collections.Counter]:
  """(ImageID, MID) -> number of boxes, for the pairs that have masks; None without the file."""
  if not common.exists(root / BOXES_CSV[split]):
    logging.warning(
      "%s[%s]: no %s: classes with unmasked boxes are not known (only dropped masks are)",
      NAME,
      split,
      BOXES_CSV[split],
    )
    return None
  wanted = {(image_id, row.LabelName) for image_id, rows in by_image.items() for row in rows}
  counts = collections.Counter()
  with (root / BOXES_CSV[split]).open(encoding="utf-8") as f:
    for row in csv.DictReader(f):
      key = (row["ImageID"], row["LabelName"])
      if key in wanted:
        counts[key] += 1
  return counts


def _float(value, default: float = -1.0) -> float:
  try:
    return float(value)
  except (TypeError, ValueError):
    return default


def segmentation_records(root, split: str, names: Dict[str, str]) -> Iterator[Tuple[str, dict]]:
  counts = collections.Counter()
  by_image = _segmentation_rows(root, split, names, counts)
  box_counts = _box_counts(root, split, by_image)
  zips = _MaskZips(root, split)
  try:
    for image_id in sorted(by_image):
      found = _image(root, split, image_id, counts)
      if found is None:
        continue
      file_name, data, size = found
      objects, dropped = [], set()
      for row in by_image[image_id]:
        box = pixel_box(row.BoxXMin, row.BoxXMax, row.BoxYMin, row.BoxYMax, size)
        png = zips.read(image_id, row.MaskPath)
        if box is None or png is None:
          counts["masks dropped: " + ("empty box" if box is None else "not in the zip")] += 1
          dropped.add(row.LabelName)
          continue
        mask, how = fit_mask(png, size)
        counts[how] += 1
        if mask is None:
          dropped.add(row.LabelName)
          continue
        objects.append((row, box, mask))
      if not objects:
        counts["images skipped: no usable mask"] += 1
        continue
      kept = collections.Counter(row.LabelName for row, _, _ in objects)
      incomplete = set(dropped)
      if box_counts is not None:
        incomplete |= {mid for mid, n in kept.items() if box_counts[(image_id, mid)] > n}
      counts["images with an incomplete class"] += bool(incomplete)
      counts["images"] += 1
      yield (
        image_id,
        {
          "id": image_id,
          "file_name": file_name,
          "image": data,
          "width": size[0],
          "height": size[1],
          "objects": {
            "label": [row.LabelName for row, _, _ in objects],
            "name": [names[row.LabelName] for row, _, _ in objects],
            "box": np.stack([box for _, box, _ in objects]),
            "box_id": [row.BoxID for row, _, _ in objects],
            "mask_path": [row.MaskPath for row, _, _ in objects],
            "predicted_iou": np.asarray(
              [_float(row.PredictedIoU) for row, _, _ in objects], np.float32
            ),
            "clicks": [row.Clicks for row, _, _ in objects],
            "mask": [_png(mask) for _, _, mask in objects],
          },
          "incomplete_classes": sorted(names[mid] for mid in incomplete),
          "box_counts_checked": box_counts is not None,
        },
      )
  finally:
    zips.close()
    _log(split, counts)


# -------------------------------------------------------------------- relationships


def relationship_records(
  root, split: str, vrd_file: str, names: Dict[str, str], attributes: Dict[str, str], predicates
) -> Iterator[Tuple[str, dict]]:
  counts = collections.Counter()
  by_image = collections.defaultdict(list)
  with (root / vrd_file).open(encoding="utf-8") as f:
    for row in csv.DictReader(f):
      subject, obj = row["LabelName1"], row["LabelName2"]
      if subject not in names or (obj not in names and obj not in attributes):
        counts["relationships dropped: MID in no description file"] += 1
        continue
      by_image[row["ImageID"]].append(_VrdRow(*(row[k] for k in _VrdRow._fields)))
  for image_id in sorted(by_image):
    found = _image(root, split, image_id, counts)
    if found is None:
      continue
    file_name, data, size = found
    kept = []
    for row in by_image[image_id]:
      boxes = [
        pixel_box(*(getattr(row, f"{k}{i}") for k in ("XMin", "XMax", "YMin", "YMax")), size)
        for i in (1, 2)
      ]
      if boxes[0] is None or boxes[1] is None:
        counts["relationships dropped: empty box"] += 1
        continue
      kept.append((row, boxes))
    if not kept:
      counts["images skipped: no usable relationship"] += 1
      continue
    # V6's "is" rows pair an object with an attribute or a human action of it ("table is
    # wooden", "woman is jumping"); a full class list may describe such MIDs too.
    is_attribute = [
      row.LabelName2 in attributes or row.RelationshipLabel == "is" for row, _ in kept
    ]
    counts["relationships"] += len(kept)
    counts["relationships with an attribute ('is')"] += sum(is_attribute)
    counts["images"] += 1
    yield (
      image_id,
      {
        "id": image_id,
        "file_name": file_name,
        "image": data,
        "width": size[0],
        "height": size[1],
        "relationships": {
          "subject_label": [row.LabelName1 for row, _ in kept],
          "subject_name": [names[row.LabelName1] for row, _ in kept],
          "subject_box": np.stack([b[0] for _, b in kept]),
          "object_label": [row.LabelName2 for row, _ in kept],
          "object_name": [
            attribute_name(attributes[row.LabelName2])
            if row.LabelName2 in attributes
            else names[row.LabelName2]
            for row, _ in kept
          ],
          "object_box": np.stack([b[1] for _, b in kept]),
          "predicate_label": [row.RelationshipLabel for row, _ in kept],
          "predicate": [predicate_name(row.RelationshipLabel, predicates) for row, _ in kept],
          "is_attribute": is_attribute,
        },
      },
    )
  _log(split, counts)


# -------------------------------------------------------------------------- builder


def _features(config: str) -> tfds.features.FeaturesDict:
  text = tfds.features.Text()
  image_fields = {
    "id": text,
    "file_name": text,
    "image": tfds.features.Image(encoding_format="jpeg"),
    "width": np.int32,
    "height": np.int32,
  }
  if config == SEGMENTATION:
    return tfds.features.FeaturesDict(
      {
        **image_fields,
        "objects": tfds.features.Sequence(
          {
            "label": text,
            "name": text,
            "box": _box_features(),
            "box_id": text,
            "mask_path": text,
            "predicted_iou": np.float32,
            "clicks": text,
            "mask": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
          }
        ),
        "incomplete_classes": tfds.features.Sequence(text),
        "box_counts_checked": np.bool_,
      }
    )
  return tfds.features.FeaturesDict(
    {
      **image_fields,
      "relationships": tfds.features.Sequence(
        {
          "subject_label": text,
          "subject_name": text,
          "subject_box": _box_features(),
          "object_label": text,
          "object_name": text,
          "object_box": _box_features(),
          "predicate_label": text,
          "predicate": text,
          "is_attribute": np.bool_,
        }
      ),
    }
  )


class UioOpenImagesV6(tfds.core.GeneratorBasedBuilder):
  """Open Images V6 instance masks and visual relationships from their release files."""

  name = NAME
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "V5/V6 instance masks and V6 visual relationships, train and val."}
  BUILDER_CONFIGS = [
    tfds.core.BuilderConfig(name=SEGMENTATION, description="Instance masks (350 classes)."),
    tfds.core.BuilderConfig(name=RELATIONSHIPS, description="Visual relationships (VRD)."),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  # TFDS 4.9.10 finds this with an undeclared backport (importlib_resources); give it.
  code_path = epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
      description=__doc__, features=_features(self.builder_config.name), homepage=HOMEPAGE
    )

  def _split_generators(self, dl_manager):
    root = common.release_dir(dl_manager, NAME)
    config = self.builder_config.name
    _first_present(root, CLASS_FILES)
    folders = [f"{split}/" for split in SPLITS]
    if config == SEGMENTATION:
      zips = [z for split in SPLITS for z in mask_zips(split)]
      common.require(root, NAME, [SEGMENTATION_CSV[s] for s in SPLITS] + zips + folders)
      names = _class_names(root)
      return {
        split: self._generate_examples(segmentation_records, root, split, names) for split in SPLITS
      }
    common.require(root, NAME, [ATTRIBUTES_FILE, VRD_CSV["train"][0]] + folders)
    vrd_files = {split: _first_present(root, VRD_CSV[split]) for split in SPLITS}
    names, attributes = _class_names(root), read_descriptions(root / ATTRIBUTES_FILE)
    predicates = {}
    if common.exists(root / PREDICATES_FILE):
      predicates = read_descriptions(root / PREDICATES_FILE)
    return {
      split: self._generate_examples(
        relationship_records, root, split, vrd_files[split], names, attributes, predicates
      )
      for split in SPLITS
    }

  def _generate_examples(self, records, *args):
    yield from records(*args)
