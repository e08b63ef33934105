"""TFDS builders for SNLI-VE (`uio_snli_ve`) and imSitu with SWiG groundings (`uio_imsitu`).

Both read the original release files from `<manual_dir>/<builder name>/` (common.py); image
collections are sub-folders there, which may be symlinks. Prepare with
`python -m unified_io.data.prepare uio_snli_ve uio_imsitu --data_dir=DIR` (ArrayRecord by
default): TFDS 4.9.10 has no per-builder default file format, and the pipeline needs random
access.

uio_snli_ve (Xie et al. 2019, https://github.com/necla-ml/SNLI-VE)
  Release: `snli_ve_train.jsonl`, `snli_ve_dev.jsonl`, `snli_ve_test.jsonl` (the repository's
  generated splits), one JSON object per line with SNLI 1.0's fields plus `Flickr30K_ID`:
  sentence1 (the Flickr30k caption SNLI used as premise), sentence2 (the hypothesis),
  gold_label ("entailment" / "neutral" / "contradiction"; "-" where the five annotators did
  not agree), annotator_labels, pairID ("<flickr id>.jpg#<n>r<k><e|n|c>"), captionID,
  sentence{1,2}_parse and _binary_parse (not kept). Images: Flickr30k's
  `flickr30k-images/<Flickr30K_ID>.jpg` (`flickr30k_images/` is accepted too).
  Record, one per (image, hypothesis) pair, images repeated (about 18 pairs per image): id
  (pairID), image, flickr30k_id, premise, hypothesis, label (ClassLabel LABELS),
  annotator_labels, caption_id. Splits train / validation (dev) / test: 529,527 / 17,858 /
  17,901 pairs by the repository's README. Skipped and counted: gold_label "-", missing or
  outside LABELS (the generator already drops "-"; kept for other copies), lines without an
  image id. A line that is not JSON fails naming its file and line; a missing image fails
  naming it.

uio_imsitu (Yatskar et al. 2016; SWiG: Pratt et al. 2020, https://github.com/allenai/swig)
  Release: the repository's SWiG_jsons/ files `train.json`, `dev.json`, `test.json`,
  `imsitu_space.json` (directly in the folder or under `SWiG_jsons/`). Split files:
  {image_name: {verb, height, width, bb: {role: [x1, y1, x2, y2], [-1] * 4 = not grounded},
  frames: [{role: WordNet synset id, "" = no filler}] x 3 annotators}}. imsitu_space.json:
  {verbs: {verb: {framenet, abstract, def, order: [roles], roles: {role: {framenet, def}}}},
  nouns: {synset: {gloss: [names], def}}}. Images: SWiG's `images_512/<image_name>` (the
  images the boxes and sizes refer to), else imSitu's `of500_images_resized/` (boxes are then
  scaled from the JSON's width/height to the file's size).
  Record, one per image: id (image name), image, verb; roles, in the verb's `order`: role,
  box (float32 [4] pixels of the stored image, [-1] * 4 when not grounded); frames, the three
  annotators' fillers, frame by frame in the roles' order: frame (0-2), role, noun_id (the
  synset, "" = no filler), noun (its first gloss; "" = no filler or a synset
  imsitu_space.json lacks). Splits train / validation (dev) / test: 75,702 / 25,200 /
  25,200 images (imSitu). Skipped and counted: verbs imsitu_space.json lacks, images without
  exactly 3 frames, image files PIL cannot open. Counted and kept: roles a frame leaves out
  (as ""), unknown synsets (as ""), roles without a box entry (as not grounded), images whose
  file size differs from the JSON's (boxes scaled). A missing image fails naming it.
"""

from __future__ import annotations

import collections
import io
import json
from typing import Dict, Iterator, Sequence, Tuple

from absl import logging
from etils import epath
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from unified_io.data.builders import common

# SNLI's labels, in SNLI-VE's README order; the task's class_names.
LABELS = ("entailment", "neutral", "contradiction")
NO_BOX = (-1.0, -1.0, -1.0, -1.0)
NUM_FRAMES = 3  # imSitu: three annotators' frames per image

SNLI_VE = "uio_snli_ve"
SNLI_VE_FILES = {
  "train": "snli_ve_train.jsonl",
  "validation": "snli_ve_dev.jsonl",
  "test": "snli_ve_test.jsonl",
}

IMSITU = "uio_imsitu"
IMSITU_FILES = {"train": "train.json", "validation": "dev.json", "test": "test.json"}
IMSITU_SPACE = "imsitu_space.json"
JSON_DIRS = ("", "SWiG_jsons")
IMSITU_IMAGE_DIRS = ("images_512", "of500_images_resized")  # SWiG's first: boxes refer to it


def _image(path: epath.Path, builder: str) -> bytes:
  if not path.exists():
    raise common.MissingReleaseFile(f"{builder}: missing image {path} (an incomplete copy?)")
  return common.image_bytes(path)


def _log_counts(builder: str, split: str, counts: collections.Counter) -> None:
  logging.info(
    "%s[%s]: %s", builder, split, ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
  )


# ------------------------------------------------------------------------------- SNLI-VE


def _jsonl(path: epath.Path) -> Iterator[Tuple[int, dict]]:
  """(line number, object) of every non-blank line; a malformed line names file and line."""
  with path.open() as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        yield number, json.loads(line)
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{number}: not valid JSON ({e})") from e


def snli_ve_image_id(line: dict) -> str:
  """Flickr30K_ID, else the pairID's image part (the generator derives the id from it)."""
  value = line.get("Flickr30K_ID")
  if value not in (None, ""):
    return str(value)
  pair = str(line.get("pairID", ""))
  return pair[: pair.rfind(".jpg")] if ".jpg" in pair else ""


class UioSnliVe(tfds.core.GeneratorBasedBuilder):
  """SNLI-VE: Flickr30k image premises, SNLI hypotheses, 3-way entailment labels."""

  name = SNLI_VE
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "SNLI-VE jsonl splits with Flickr30k images."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
  Put into <manual_dir>/{SNLI_VE}/ (default manual_dir: <data_dir>/downloads/manual/):
    snli_ve_train.jsonl, snli_ve_dev.jsonl, snli_ve_test.jsonl
      https://github.com/necla-ml/SNLI-VE (README links; or run its snli_ve_generator.py on
      SNLI 1.0, https://nlp.stanford.edu/projects/snli/snli_1.0.zip)
    flickr30k-images/<Flickr30K_ID>.jpg   (flickr30k_images/ is accepted too)
      Flickr30k images (request form: https://shannon.cs.illinois.edu/DenotationGraph/);
      the folder may be a symlink to an existing copy.
  Then: python -m unified_io.data.prepare {SNLI_VE} --data_dir=DATA_DIR
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
      description=__doc__,
      features=tfds.features.FeaturesDict(
        {
          "id": tfds.features.Text(),
          "image": tfds.features.Image(encoding_format="jpeg"),
          "flickr30k_id": tfds.features.Text(),
          "premise": tfds.features.Text(),
          "hypothesis": tfds.features.Text(),
          "label": tfds.features.ClassLabel(names=LABELS),
          "annotator_labels": tfds.features.Sequence(tfds.features.Text()),
          "caption_id": tfds.features.Text(),
        }
      ),
      homepage="https://github.com/necla-ml/SNLI-VE",
    )

  def _split_generators(self, dl_manager):
    root = common.release_dir(dl_manager, SNLI_VE)
    common.require(root, SNLI_VE, SNLI_VE_FILES.values())
    images = common.one_of(root, SNLI_VE, common.FLICKR30K_IMAGE_DIRS, "the Flickr30k images")
    return {
      split: self._generate_examples(root / name, images, split)
      for split, name in SNLI_VE_FILES.items()
    }

  def _generate_examples(self, path: epath.Path, images: epath.Path, split: str):
    counts = collections.Counter()
    for number, line in _jsonl(path):
      label = line.get("gold_label")
      if label not in LABELS:
        unlabelled = label in ("-", None, "")  # "-": the annotators did not agree
        counts["skipped: no gold label" if unlabelled else "skipped: unknown gold label"] += 1
        continue
      image_id = snli_ve_image_id(line)
      if not image_id:
        counts["skipped: no image id"] += 1
        continue
      counts["pairs"] += 1
      # The line number keys the record: unique and stable whatever the ids hold.
      yield (
        number,
        {
          "id": str(line.get("pairID", number)),
          "image": _image(images / f"{image_id}.jpg", SNLI_VE),
          "flickr30k_id": image_id,
          "premise": str(line.get("sentence1", "")),
          "hypothesis": str(line.get("sentence2", "")),
          "label": label,
          "annotator_labels": [str(a) for a in line.get("annotator_labels") or []],
          "caption_id": str(line.get("captionID", "")),
        },
      )
    _log_counts(SNLI_VE, split, counts)


# -------------------------------------------------------------------------- imSitu / SWiG


def noun_name(nouns: Dict[str, dict], synset: str) -> str:
  """A synset's first gloss; "" for no filler or a synset the space lacks."""
  entry = nouns.get(synset) if synset else None
  glosses = (entry or {}).get("gloss") or []
  return str(glosses[0]) if glosses else ""


def _scaled(box, scale_xy: Tuple[float, float]) -> Tuple[float, ...]:
  """A release box in pixels of the stored image; NO_BOX for SWiG's ungrounded marker."""
  if box is None or len(box) != 4 or all(float(v) == -1 for v in box):
    return NO_BOX
  sx, sy = scale_xy
  x1, y1, x2, y2 = (float(v) for v in box)
  return (x1 * sx, y1 * sy, x2 * sx, y2 * sy)


def role_order(verb_entry: dict, entry: dict) -> list:
  """The verb's role order; without one, the roles its frames name, sorted."""
  order = verb_entry.get("order")
  if order:
    return [str(r) for r in order]
  return sorted({str(role) for frame in entry["frames"] for role in frame})


def imsitu_situation(entry: dict, order: Sequence[str], nouns: Dict[str, dict], scale_xy, counts):
  """(roles, frames) of a record (module docstring): roles in the verb's order, then each
  frame's fillers in the roles' order."""
  boxes = entry.get("bb") or {}
  roles, fillers = [], []
  for role in order:
    if role not in boxes:
      counts["kept: role without a box entry (as not grounded)"] += 1
    box = np.asarray(_scaled(boxes.get(role), scale_xy), np.float32)
    roles.append({"role": role, "box": box})
  for index, frame in enumerate(entry["frames"]):
    for role in order:
      if role not in frame:
        counts["kept: role missing from a frame (as no filler)"] += 1
      synset = str(frame.get(role) or "")
      name = noun_name(nouns, synset)
      if synset and not name:
        counts["kept: unknown synset (as no filler)"] += 1
      fillers.append({"frame": index, "role": role, "noun_id": synset, "noun": name})
  return roles, fillers


class UioImsitu(tfds.core.GeneratorBasedBuilder):
  """imSitu situations (verb + three annotators' role fillers) with SWiG's role boxes."""

  name = IMSITU
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "SWiG JSONs with imsitu_space.json glosses and SWiG images."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
  Put into <manual_dir>/{IMSITU}/ (default manual_dir: <data_dir>/downloads/manual/):
    train.json, dev.json, test.json, imsitu_space.json
      the SWiG_jsons/ folder of https://github.com/allenai/swig (the files may also stay in
      a SWiG_jsons/ sub-folder)
    images_512/<image_name>
      SWiG's images, https://swig-data-weights.s3.us-east-2.amazonaws.com/images_512.zip
      (the boxes and sizes of the JSONs refer to them); or imSitu's resized images,
      of500_images_resized/ (https://github.com/my89/imSitu, of500_images_resized.tar),
      whose boxes are scaled to the files' sizes. The folder may be a symlink.
  Then: python -m unified_io.data.prepare {IMSITU} --data_dir=DATA_DIR
  """

  def _info(self) -> tfds.core.DatasetInfo:
    # Flat sequences of scalars: TFDS's random-access decoding garbles nested sequences, and
    # its fake-data generator cannot fill string tensors.
    role = {"role": tfds.features.Text(), "box": tfds.features.Tensor(shape=(4,), dtype=np.float32)}
    filler = {
      "frame": tfds.features.Scalar(dtype=np.int32),
      "role": tfds.features.Text(),
      "noun_id": tfds.features.Text(),
      "noun": tfds.features.Text(),
    }
    return self.dataset_info_from_configs(
      description=__doc__,
      features=tfds.features.FeaturesDict(
        {
          "id": tfds.features.Text(),
          "image": tfds.features.Image(encoding_format="jpeg"),
          "verb": tfds.features.Text(),
          "roles": tfds.features.Sequence(role),
          "frames": tfds.features.Sequence(filler),
        }
      ),
      homepage="https://github.com/allenai/swig",
    )

  def _split_generators(self, dl_manager):
    root = common.release_dir(dl_manager, IMSITU)
    json_dir = root
    for sub in JSON_DIRS:
      if (root / sub / IMSITU_SPACE).exists():
        json_dir = root / sub if sub else root
        break
    common.require(json_dir, IMSITU, [IMSITU_SPACE, *IMSITU_FILES.values()])
    images = common.one_of(root, IMSITU, IMSITU_IMAGE_DIRS, "the images")
    space = common.read_json(json_dir / IMSITU_SPACE)
    return {
      split: self._generate_examples(json_dir / name, images, space, split)
      for split, name in IMSITU_FILES.items()
    }

  def _generate_examples(self, path: epath.Path, images: epath.Path, space: dict, split: str):
    verbs, nouns = space.get("verbs", {}), space.get("nouns", {})
    counts = collections.Counter()
    for image_name, entry in sorted(common.read_json(path).items()):
      verb = str(entry.get("verb", ""))
      if verb not in verbs:
        counts["skipped: verb not in imsitu_space.json"] += 1
        continue
      if len(entry.get("frames") or []) != NUM_FRAMES:
        counts[f"skipped: not {NUM_FRAMES} frames"] += 1
        continue
      data = _image(images / image_name, IMSITU)
      try:
        width, height = Image.open(io.BytesIO(data)).size
      except (OSError, ValueError):  # PIL's UnidentifiedImageError is an OSError
        counts["skipped: unreadable image"] += 1
        continue
      scale_xy = (1.0, 1.0)
      if entry.get("width") and entry.get("height"):
        scale_xy = (width / float(entry["width"]), height / float(entry["height"]))
        if scale_xy != (1.0, 1.0):
          counts["kept: image size differs from the JSON's (boxes scaled)"] += 1
      counts["images"] += 1
      order = role_order(verbs[verb], entry)
      roles, frames = imsitu_situation(entry, order, nouns, scale_xy, counts)
      yield (
        image_name,
        {"id": image_name, "image": data, "verb": verb, "roles": roles, "frames": frames},
      )
    _log_counts(IMSITU, split, counts)
