"""TFDS builder `uio_imagenet21k`: ImageNet-21K-P, winter21 variant (Ridnik et al. 2021).

The release (https://github.com/Alibaba-MIIL/ImageNet21K, "Winter 21 Version"; downloaded
from https://image-net.org/download-images with an account, `imagenet21k_resized.tar.gz`) is
ImageNet-21K winter21 with the classes of at most 500 images removed, 50 images of each kept
class moved to a validation folder, and the images resized (the repository's script squishes
them to 224 x 224 and copies smaller ones as they were). One folder per class, named by its
WordNet 3.0 noun id:

    imagenet21k_train/<wnid>/<wnid>_<n>.JPEG    11,060,223 images, 10,450 classes
    imagenet21k_val/<wnid>/<wnid>_<n>.JPEG      522,500 images (50 per class)
    imagenet21k_small_classes/                  the removed classes: not read

(counts from the repository's dataset_preprocessing/processing_instructions.md). The tar
unpacks to `imagenet21k_resized/`: either that folder or its contents may sit in
`<manual_dir>/uio_imagenet21k/` (TFDS's manual_dir: `<data_dir>/downloads/manual/` unless
`--manual_dir` says otherwise), and the split folders may be symlinks. The fall11 variant
(11,221 classes, processed by the user with the repository's scripts) is not supported: its
771 extra classes are refused by name.

The release ships no class list file: its loaders use torchvision's ImageFolder, whose label
is the index of the class folder in sorted order. The class list here is the wnid column of
`unified_io/data/labels/imagenet21k_winter21_names.txt` (10,450 sorted wnids, the sorted
class folders of the release, as timm ships them for its winter21 models), so label k is the
release's own label k.

Records (key = `file_name`): image (JPEG bytes), label (ClassLabel over the 10,450 wnids),
wnid (the class folder), file_name ("<wnid>/<file>", relative to the split folder).

Build with `python -m unified_io.data.prepare uio_imagenet21k --data_dir=DATA_DIR`
(ArrayRecord, which the input pipeline reads by random access) or
`download_and_prepare(file_format="array_record")`: TFDS 4.9.10 has no per-builder default
file format, so a bare `download_and_prepare()` writes TFRecords.

Awkward cases (counts in the build log, per split):
- A class folder of the table that the split lacks fails the build naming it, and a folder
  that is no winter21 class fails it too (a partial copy, or the fall11 variant, would
  otherwise build silently smaller or mislabelled). Files that are not .JPEG/.JPG/.PNG are
  ignored, counted.
- Every image is decoded once with PIL (about a millisecond at 224 pixels). One that does
  not decode (truncated, empty, not an image) is skipped, counted and logged by name.
- Images smaller than 224 pixels were copied from the original release as they were, so
  some are not RGB JPEGs: a JPEG in RGB or greyscale is stored as its bytes; anything else
  (CMYK JPEGs, PNGs) is converted to RGB and re-encoded as JPEG (quality 95, deterministic),
  as TFDS does for the few such ImageNet 2012 files: readers decode every record to
  [H, W, 3].
"""

from __future__ import annotations

import collections
import io
import pathlib
from typing import Dict, Iterator, Optional, Sequence, Tuple

import PIL.Image
import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from unified_io.data.builders import common

NAME = "uio_imagenet21k"
HOMEPAGE = "https://github.com/Alibaba-MIIL/ImageNet21K"
# Release split folder -> TFDS split.
SPLITS = {"imagenet21k_train": "train", "imagenet21k_val": "validation"}
TAR_FOLDER = "imagenet21k_resized"  # what imagenet21k_resized.tar.gz unpacks to
NUM_CLASSES = 10_450  # winter21 (processing_instructions.md)
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")  # the repository's file list counts .JPEG and .PNG
NAMES_FILE = (
  pathlib.Path(__file__).resolve().parent.parent / "labels" / "imagenet21k_winter21_names.txt"
)

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
ImageNet-21K-P, winter21 variant (https://github.com/Alibaba-MIIL/ImageNet21K, "Winter 21
Version"): download imagenet21k_resized.tar.gz ("Processed version of ImageNet21K", winter
2021 release) from https://image-net.org/download-images with an
image-net.org account, and unpack it into <manual_dir>/uio_imagenet21k/ (manual_dir:
<data_dir>/downloads/manual/ unless --manual_dir says otherwise):

  uio_imagenet21k/imagenet21k_resized/imagenet21k_train/<wnid>/*.JPEG  (10,450 class folders)
  uio_imagenet21k/imagenet21k_resized/imagenet21k_val/<wnid>/*.JPEG    (10,450 class folders)

The imagenet21k_resized/ level may be left out (the two split folders directly in
uio_imagenet21k/), and either split folder may be a symlink to where the images already are.
imagenet21k_small_classes/ is not read. The fall11 variant (11,221 classes) is not accepted.
Then: python -m unified_io.data.prepare uio_imagenet21k --data_dir=DATA_DIR, which writes
ArrayRecord files.
"""


def name_table_rows(path: pathlib.Path = NAMES_FILE) -> Tuple[Tuple[str, str], ...]:
  """(wnid, readable name) rows of the shipped table, in label order ('#' lines dropped)."""
  with open(path, encoding="utf-8") as f:
    lines = [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]
  rows = tuple(tuple(line.split("\t")) for line in lines)
  bad = [row for row in rows if len(row) != 2 or not row[1].strip()]
  if bad:
    raise ValueError(f"{path.name}: rows not '<wnid>\\t<name>': {bad[:3]}")
  return rows


def class_wnids() -> Tuple[str, ...]:
  """The 10,450 winter21 class folders, sorted: label k is wnid k."""
  wnids = tuple(wnid for wnid, _ in name_table_rows())
  if len(wnids) != NUM_CLASSES or list(wnids) != sorted(set(wnids)):
    raise ValueError(f"{NAMES_FILE.name}: not {NUM_CLASSES} distinct sorted wnids")
  return wnids


def release_root(root: epath.Path) -> epath.Path:
  """The folder holding the split folders: the tar's top folder when it is there."""
  return root / TAR_FOLDER if (root / TAR_FOLDER).is_dir() else root


def check_class_folders(split_dir: epath.Path, folder: str, wnids: Sequence[str]) -> None:
  """Fails naming class folders the split lacks, or folders that are no winter21 class."""
  found = {p.name for p in split_dir.iterdir() if p.is_dir()}
  unknown = sorted(found - set(wnids))
  if unknown:
    raise ValueError(
      f"{NAME}: {len(unknown)} folders of {folder}/ are not ImageNet-21K-P winter21 classes "
      f"({', '.join(unknown[:5])}...): only the winter21 variant (10,450 classes) is "
      "supported, not fall11 (see the builder's MANUAL_DOWNLOAD_INSTRUCTIONS)"
    )
  absent = [w for w in wnids if w not in found]
  if absent:
    raise common.MissingReleaseFile(
      f"{NAME}: missing in {split_dir.parent}: {len(absent)} of {len(wnids)} class folders "
      f"of {folder}/, e.g. {', '.join(f'{folder}/{w}/' for w in absent[:5])} (see the "
      "builder's MANUAL_DOWNLOAD_INSTRUCTIONS)"
    )


def checked_image(data: bytes) -> Tuple[Optional[bytes], str]:
  """(bytes to store, or None to skip; what was done), after decoding `data` with PIL."""
  try:
    with PIL.Image.open(io.BytesIO(data)) as image:
      image.load()  # decodes every pixel: truncated files fail here, not at training
      stored, reencoded = common.storable_jpeg(image, data)
      if not reencoded:
        return data, "stored as released"
      return stored, f"re-encoded as RGB JPEG from {image.format} {image.mode}"
  except Exception as e:  # PIL raises many types for corrupt files; each is a skip
    return None, f"{type(e).__name__}: {e}"


def split_records(root: epath.Path, folder: str, wnids: Sequence[str]) -> Iterator[tuple]:
  """(key, record) of every decodable image of split folder `folder`, class by class."""
  split_dir = root / folder
  check_class_folders(split_dir, folder, wnids)
  counts = collections.Counter()
  for label, wnid in enumerate(wnids):
    files = sorted((p for p in (split_dir / wnid).iterdir() if p.is_file()), key=lambda p: p.name)
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    counts["ignored: not an image file"] += len(files) - len(images)
    counts["class folders without images"] += not images
    for path in images:
      file_name = f"{wnid}/{path.name}"
      data, how = checked_image(path.read_bytes())
      if data is None:
        counts["skipped: undecodable"] += 1
        logging.info("%s %s: %s does not decode (%s): skipped", NAME, folder, file_name, how)
        continue
      counts[how] += 1
      yield file_name, {"image": data, "label": label, "wnid": wnid, "file_name": file_name}
  logging.info("%s %s: %s", NAME, folder, dict(counts))


def _features(wnids: Sequence[str]) -> tfds.features.FeaturesDict:
  return tfds.features.FeaturesDict(
    {
      "image": tfds.features.Image(encoding_format="jpeg"),
      "label": tfds.features.ClassLabel(names=list(wnids)),
      "wnid": tfds.features.Text(doc="WordNet 3.0 noun id: the class folder"),
      "file_name": tfds.features.Text(doc="<wnid>/<file>, relative to the split folder"),
    }
  )


class UioImagenet21k(tfds.core.GeneratorBasedBuilder):
  """ImageNet-21K-P winter21 (10,450 classes) from its class folders."""

  name = NAME
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "ImageNet-21K-P winter21: train and validation folders."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  # TFDS 4.9.10 finds this with an undeclared backport (importlib_resources); give it.
  code_path = epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
      description=__doc__,
      features=_features(class_wnids()),
      homepage=HOMEPAGE,
      supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager) -> Dict[str, Iterator]:
    root = release_root(common.release_dir(dl_manager, NAME))
    common.require(root, NAME, [f"{folder}/" for folder in SPLITS])
    wnids = class_wnids()
    return {split: self._generate_examples(root, folder, wnids) for folder, split in SPLITS.items()}

  def _generate_examples(self, root: epath.Path, folder: str, wnids: Sequence[str]):
    yield from split_records(root, folder, wnids)
