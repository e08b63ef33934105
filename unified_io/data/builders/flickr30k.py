"""TFDS builder `uio_flickr30k`: Flickr30k captions in Karpathy's train/val/test split.

Flickr30k (Young et al. 2014) has 31,783 Flickr photos with five crowd-sourced captions each,
collected with COCO Captions' protocol; the release has no split of its own. Karpathy and
Fei-Fei's `dataset_flickr30k.json` (in `caption_datasets.zip`, from the neuraltalk page at
https://cs.stanford.edu/people/karpathy/deepimagesent/) holds every caption with the split
that captioning work uses: 29,000 train, 1,014 val and 1,000 test images. It is the
catalogue's third supervised-captioning set (Table 1 row 47; catalog_rows.py says why).

Release files under `<manual_dir>/uio_flickr30k/` (TFDS's manual_dir:
`<data_dir>/downloads/manual/` unless `prepare --manual_dir` says otherwise):

    dataset_flickr30k.json     Karpathy's split file (caption_datasets.zip)
    flickr30k-images/          the images, <flickr id>.jpg (flickr30k-images.tar.gz; the
                               folder SNLI-VE reads too: a symlink to that copy is enough)

`dataset_flickr30k.json` is {"dataset": "flickr30k", "images": [{"filename": "1000092795.jpg",
"imgid": 0, "split": "train" | "val" | "test", "sentids": [0, ...], "sentences": [{"raw":
the caption as written, "tokens": [lower-cased words], "imgid": 0, "sentid": 0}, ...]}]}.

SNLI-VE (the paper evaluates on it, Table 6) premises are Flickr30k captions, and its dev
and test images are Flickr30k images: 12-in-1 (Table 1 there) finds most Flickr30k test
images in SNLI-VE's training data, and the converse holds for Karpathy's train split. So a
train image whose id is in SNLI-VE's `snli_ve_dev.jsonl` or `snli_ve_test.jsonl` (optional
files here, may be symlinks to uio_snli_ve's; their `Flickr30K_ID` field) is left out and
counted. Without them nothing is left out and the build log says so.

Records (`id` is the file name without extension, e.g. "1000092795"): id, image (the JPEG
bytes as released, re-encoded only where the file is not an RGB/greyscale JPEG),
image/filename, captions: Sequence{text (the raw caption, whitespace collapsed), id (int64,
the sentid)}. Captions that are blank once collapsed are dropped and counted; an image left
with none is kept (the task skips it). A split other than train/val/test, or a file named
twice, fails naming the image; so does an image the JSON names but the folder lacks.

Build with `python -m unified_io.data.prepare uio_flickr30k --data_dir=DATA_DIR` (ArrayRecord).
"""

from __future__ import annotations

import collections
import io
import json
from typing import Iterator, Tuple

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from unified_io.data.builders import common

NAME = "uio_flickr30k"
HOMEPAGE = "https://shannon.cs.illinois.edu/DenotationGraph/"
SPLIT_FILE = "dataset_flickr30k.json"
# SNLI-VE's evaluation files, whose images the train split leaves out when they are here.
SNLI_VE_EVALUATION_FILES = ("snli_ve_dev.jsonl", "snli_ve_test.jsonl")
# Karpathy's split names -> TFDS splits.
SPLITS = {"train": "train", "val": "validation", "test": "test"}

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Into <manual_dir>/{NAME}/ (manual_dir: <data_dir>/downloads/manual/ unless --manual_dir says
otherwise):
  {SPLIT_FILE}   from caption_datasets.zip, Karpathy's split file
                 (https://cs.stanford.edu/people/karpathy/deepimagesent/)
  snli_ve_dev.jsonl, snli_ve_test.jsonl   optional (symlinks to uio_snli_ve's are enough):
                 their images are left out of train, so SNLI-VE is not evaluated on
                 images trained on
  flickr30k-images/        the images (flickr30k-images.tar.gz, from the request form at
                           {HOMEPAGE}); a symlink to the copy uio_snli_ve reads is enough
Then: python -m unified_io.data.prepare {NAME} --data_dir=DATA_DIR (writes ArrayRecord).
"""


def _stem(file_name: str) -> str:
  return file_name.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _storable(path: epath.Path, counts: collections.Counter) -> bytes:
  data = path.read_bytes()
  try:
    with PIL.Image.open(io.BytesIO(data)) as image:
      stored, reencoded = common.storable_jpeg(image, data)
  except PIL.UnidentifiedImageError as e:
    raise ValueError(f"{NAME}: {path} is not an image ({e})") from e
  counts["re-encoded images"] += reencoded
  return stored


def images_by_split(root: epath.Path) -> dict:
  """{TFDS split: [image entry]} from the split file, checked (split names, repeated files)."""
  data = common.read_json(root / SPLIT_FILE)
  if not isinstance(data, dict) or not isinstance(data.get("images"), list):
    raise ValueError(f"{NAME}: {root / SPLIT_FILE} has no 'images' list")
  out = {split: [] for split in SPLITS.values()}
  seen = set()
  for entry in data["images"]:
    name = entry.get("filename")
    if not name:
      raise ValueError(f"{NAME}: {SPLIT_FILE}: an image entry without 'filename': {entry}")
    split = entry.get("split")
    if split not in SPLITS:
      raise ValueError(
        f"{NAME}: {SPLIT_FILE}: {name} has split {split!r}, not one of {sorted(SPLITS)}"
      )
    if name in seen:
      raise ValueError(f"{NAME}: {SPLIT_FILE}: {name} is listed twice")
    seen.add(name)
    out[SPLITS[split]].append(entry)
  return out


def snli_ve_evaluation_ids(root: epath.Path) -> set:
  """Flickr30k ids of SNLI-VE's dev and test images, from whichever of its files are here."""
  ids, found = set(), []
  for file_name in SNLI_VE_EVALUATION_FILES:
    path = root / file_name
    if not path.exists():
      continue
    found.append(file_name)
    for number, line in enumerate(path.read_text().splitlines(), 1):
      if not line.strip():
        continue
      try:
        ids.add(str(json.loads(line)["Flickr30K_ID"]))
      except (json.JSONDecodeError, KeyError) as e:
        raise ValueError(f"{NAME}: {path} line {number}: no Flickr30K_ID ({e})") from e
  if not found:
    logging.warning(
      "%s: no %s here: no train image is left out for SNLI-VE's evaluation",
      NAME,
      " or ".join(SNLI_VE_EVALUATION_FILES),
    )
  return ids


def records(
  root: epath.Path, images: epath.Path, entries, excluded=frozenset()
) -> Iterator[Tuple[str, dict]]:
  counts = collections.Counter()
  for entry in entries:
    name = entry["filename"]
    if _stem(name) in excluded:
      counts["images left out: in SNLI-VE dev/test"] += 1
      continue
    path = images / name
    if not path.exists():
      raise common.MissingReleaseFile(
        f"{NAME}: missing in {root}: {images.name}/{name} (see the builder's "
        "MANUAL_DOWNLOAD_INSTRUCTIONS)"
      )
    captions = []
    for sentence in entry.get("sentences", []):
      text = " ".join(str(sentence.get("raw", "")).split())
      if text:
        captions.append({"text": text, "id": int(sentence.get("sentid", -1))})
      else:
        counts["blank captions dropped"] += 1
    counts["images"] += 1
    counts["captions"] += len(captions)
    counts["images without captions"] += not captions
    yield (
      _stem(name),
      {
        "id": _stem(name),
        "image": _storable(path, counts),
        "image/filename": name,
        "captions": captions,
      },
    )
  logging.info("%s: %s", NAME, dict(counts))


class UioFlickr30k(tfds.core.GeneratorBasedBuilder):
  """Flickr30k captions (Karpathy's split) from the release files."""

  name = NAME
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Captions in Karpathy's train/val/test split."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  # TFDS 4.9.10 finds this with an undeclared backport (importlib_resources); give it.
  code_path = epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
      description=__doc__,
      homepage=HOMEPAGE,
      features=tfds.features.FeaturesDict(
        {
          "id": tfds.features.Text(),
          "image": tfds.features.Image(encoding_format="jpeg"),
          "image/filename": tfds.features.Text(),
          "captions": tfds.features.Sequence(
            {"text": tfds.features.Text(), "id": tfds.features.Scalar(dtype=np.int64)}
          ),
        }
      ),
    )

  def _split_generators(self, dl_manager):
    root = common.release_dir(dl_manager, NAME)
    common.require(root, NAME, [SPLIT_FILE])
    images = common.one_of(root, NAME, common.FLICKR30K_IMAGE_DIRS, "the Flickr30k images")
    by_split = images_by_split(root)
    excluded = snli_ve_evaluation_ids(root)
    return {
      split: self._generate_examples(
        root, images, entries, excluded if split == "train" else frozenset()
      )
      for split, entries in by_split.items()
    }

  def _generate_examples(self, root, images, entries, excluded):
    yield from records(root, images, entries, excluded)
