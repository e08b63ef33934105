"""TFDS builders of VCR (`uio_vcr`) and VisualCOMET (`uio_visualcomet`), from their releases.

Both annotate the same images: VCR's `vcr1images/<movie>/<image>.jpg`, each beside its
detections `vcr1images/<movie>/<image>.json` = {boxes: [[x1, y1, x2, y2, score]] (pixels,
Detectron), names: [class], segms: [polygons], width, height}. Object k of an image is the
k-th box; both datasets refer to it by index (VCR: 0-based lists in token sentences;
VisualCOMET: the number k + 1 written in the text, "1 is holding a gun").

uio_vcr (https://visualcommonsense.com/download/, licence form; release README "VCR v1.0"):
  train.jsonl, val.jsonl: one question a line, {movie, objects: [class] (one per box of the
  metadata), img_fn, metadata_fn (relative to vcr1images/), question, answer_choices[4],
  answer_label (0-3), rationale_choices[4], rationale_label (0-3), annot_id, img_id,
  question_number, question_orig, answer_orig, rationale_orig, ...}. A sentence is a token
  list mixing words and lists of object indices: ["What", "are", [0, 1], "doing", "?"].
  test.jsonl is not read: its labels are withheld (leaderboard), so no task could use it.
uio_visualcomet (https://visualcomet.xyz; annotations
  https://storage.googleapis.com/ai2-mosaic/public/visualcomet/visualcomet.zip):
  train_annots.json, val_annots.json: a list of events {img_fn, movie, metadata_fn, place,
  event, intent: [str], before: [str], after: [str]} on VCR's images (so `vcr1images/` too).
  test_annots.json has no inferences (blind set) and is not read.

Records (one per VCR question, one per VisualCOMET event; an image shared by several is
stored with each):
  id: annot_id (VCR) or "<split>-<position in the annots file>" (VisualCOMET, which has no id)
  image: the JPEG's bytes as released; image/filename: img_fn; movie
  objects: Sequence {name, box: float32 [4] x1 y1 x2 y2 pixels as released, score}
  VCR: question: the token list as JSON text; answer_choices, rationale_choices: 4 JSON
    texts; answer_label, rationale_label: int32; img_id, question_number, question_orig,
    answer_orig, rationale_orig ("" where absent).
  VisualCOMET: event, place; intent, before, after: Sequence(Text), possibly empty.
Sentences stay as released (JSON token lists, numbers in text): rendering references as
tags and location tokens is the tasks' job (tasks/vl_vcr_visualcomet.py).

Awkward cases, counted per split in the log (and in `builder.counts[split]`):
  skipped: an absent image or metadata file, metadata whose boxes and names (or VCR's
  `objects`) differ in length or whose box rows are not [x1, y1, x2, y2(, score)], an image
  whose size differs from the metadata's width x height (its boxes would be misplaced);
  VCR only: a sentence that is not a list of words and index lists, choices that are not
  four, a label outside 0-3.
  kept (the tasks skip or work around them): VCR references to an index outside the
  objects; VisualCOMET events naming a number outside the objects or none at all, and
  empty inference lists.

Prepare with `python -m unified_io.data.prepare uio_vcr uio_visualcomet --data_dir=DIR`
(ArrayRecord by default): TFDS 4.9.10 has no per-builder default file format (the
FileFormat comes from the command line or dataset_info.json), and the pipeline reads
ArrayRecord by random access.
"""

from __future__ import annotations

import collections
import json
import re
from typing import Dict, Iterator, List, Optional, Tuple

from absl import logging
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from unified_io.data.builders import common

VCR = "uio_vcr"
VISUALCOMET = "uio_visualcomet"
IMAGES = "vcr1images"
NUM_CHOICES = 4
INFERENCE_KINDS = ("before", "intent", "after")
# A person number of VisualCOMET text: a whole word of digits ("1", "1's", "3,"), not part of
# "2.5", "1,000", "10am" or "3rd" (the release's own loader takes every digit word as a tag).
PERSON_NUMBER = re.compile(r"(?<![^\s(\[\"])(\d+)(?=$|[\s'.,;:!?)\]\"])(?![.,:]\d)")

_OBJECTS = tfds.features.Sequence(
  {
    "name": tfds.features.Text(),
    "box": tfds.features.Tensor(shape=(4,), dtype=np.float32),
    "score": np.float32,
  }
)

_IMAGES_NOTE = f"""\
  {IMAGES}/                 VCR's images and their detections, as unzipped from
                            vcr1images.zip: {IMAGES}/<movie>/<image>.jpg and .json
                            (may be a symlink to where they already are)"""

VCR_INSTRUCTIONS = f"""\
Download VCR v1.0 from https://visualcommonsense.com/download/ (agree to the licence
first): vcr1annots.zip and vcr1images.zip. Put into <manual_dir>/{VCR}/ (manual_dir is
<data_dir>/downloads/manual/ unless --manual_dir says otherwise):
  train.jsonl, val.jsonl    from vcr1annots.zip (test.jsonl has no labels; not read)
{_IMAGES_NOTE}
"""

VISUALCOMET_INSTRUCTIONS = f"""\
Download the VisualCOMET annotations (https://visualcomet.xyz):
https://storage.googleapis.com/ai2-mosaic/public/visualcomet/visualcomet.zip, and VCR's
images from https://visualcommonsense.com/download/ (licence form; only vcr1images.zip is
needed). Put into <manual_dir>/{VISUALCOMET}/ (manual_dir is <data_dir>/downloads/manual/
unless --manual_dir says otherwise):
  train_annots.json, val_annots.json   from visualcomet.zip (test_annots.json has no
                                       inferences; not read)
{_IMAGES_NOTE}; a symlink to ../{VCR}/{IMAGES} shares uio_vcr's copy
"""


class _BadRecord(Exception):
  """A release record the builder skips; the message is the counter key."""


# ------------------------------------------------------------------------ shared reading


def _image_size(path: epath.Path) -> Tuple[int, int]:
  """(width, height) from the image header (PIL reads no pixels for it)."""
  from PIL import Image

  with path.open("rb") as f, Image.open(f) as image:
    return image.size


def _objects(
  images: epath.Path, record: dict, names: Optional[List[str]]
) -> Tuple[bytes, dict, int]:
  """(image bytes, objects feature, number of objects) of one record, or _BadRecord.

  names: the record's own class list (VCR's `objects`); None: the metadata's `names`.
  """
  image_path = images / str(record.get("img_fn", ""))
  meta_path = images / str(record.get("metadata_fn", ""))
  if not record.get("img_fn") or not image_path.is_file():
    raise _BadRecord("skipped: image file absent")
  if not record.get("metadata_fn") or not meta_path.is_file():
    raise _BadRecord("skipped: metadata file absent")
  try:
    meta = common.read_json(meta_path)
  except ValueError:
    raise _BadRecord("skipped: metadata not valid JSON") from None
  boxes = meta.get("boxes") if isinstance(meta, dict) else None
  names = meta.get("names") if names is None and isinstance(meta, dict) else names
  if not isinstance(boxes, list) or not isinstance(names, list) or len(boxes) != len(names):
    raise _BadRecord("skipped: boxes and object names differ in length")
  rows = []
  for box in boxes:
    if not isinstance(box, list) or len(box) not in (4, 5):
      raise _BadRecord("skipped: metadata box rows are not [x1, y1, x2, y2, score]")
    rows.append([float(v) for v in box] + ([1.0] if len(box) == 4 else []))
  size = (meta.get("width"), meta.get("height"))
  if None not in size and size != _image_size(image_path):
    raise _BadRecord("skipped: image size differs from the metadata's width x height")
  rows = np.asarray(rows, np.float32).reshape(-1, 5)
  objects = {"name": [str(n) for n in names], "box": rows[:, :4], "score": rows[:, 4]}
  return image_path.read_bytes(), objects, len(names)


def _log(name: str, split: str, counts: collections.Counter) -> None:
  parts = ", ".join(f"{key}: {n}" for key, n in sorted(counts.items()))
  logging.info("%s[%s]: %s", name, split, parts)


class _Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """What both builders share: the release folder, the splits and the per-split counts."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First version, from the original release files."}
  _FILES: Dict[str, str] = {}  # TFDS split -> release file

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.counts: Dict[str, collections.Counter] = {}

  def _split_generators(self, dl_manager):
    root = common.release_dir(dl_manager, self.name)
    common.require(root, self.name, [*self._FILES.values(), IMAGES])
    return {split: self._generate_examples(root, split) for split in self._FILES}

  def _generate_examples(self, root: epath.Path, split: str):
    counts = self.counts[split] = collections.Counter()
    for key, example in self._examples(root, split, counts):
      counts["written"] += 1
      yield key, example
    _log(self.name, split, counts)

  def _examples(self, root, split, counts) -> Iterator[Tuple[str, dict]]:
    raise NotImplementedError


# ------------------------------------------------------------------------------------ VCR


def _sentence(tokens) -> Tuple[str, List[int]]:
  """(JSON text, every object index) of a VCR token sentence, or _BadRecord."""
  ok = isinstance(tokens, list) and all(
    isinstance(t, str)
    or (isinstance(t, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in t))
    for t in tokens
  )
  if not ok:
    raise _BadRecord("skipped: a sentence is not a list of words and object index lists")
  return json.dumps(tokens), [i for t in tokens if isinstance(t, list) for i in t]


def _choices(record: dict, field: str) -> Tuple[List[str], List[int]]:
  choices = record.get(field)
  if not isinstance(choices, list) or len(choices) != NUM_CHOICES:
    raise _BadRecord(f"skipped: {field} are not {NUM_CHOICES}")
  texts, refs = [], []
  for tokens in choices:
    text, indices = _sentence(tokens)
    texts.append(text)
    refs += indices
  return texts, refs


def _label(record: dict, field: str) -> int:
  label = record.get(field)
  if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < NUM_CHOICES:
    raise _BadRecord(f"skipped: {field} outside 0-{NUM_CHOICES - 1}")
  return label


def vcr_example(images: epath.Path, record: dict) -> Tuple[dict, bool]:
  """(TFDS example, whether a reference is outside the objects) of one VCR line."""
  names = record.get("objects")
  if not isinstance(names, list):
    raise _BadRecord("skipped: no objects list")
  question, refs = _sentence(record.get("question"))
  answers, answer_refs = _choices(record, "answer_choices")
  rationales, rationale_refs = _choices(record, "rationale_choices")
  labels = _label(record, "answer_label"), _label(record, "rationale_label")
  image, objects, n = _objects(images, record, names)
  outside = any(not 0 <= i < n for i in refs + answer_refs + rationale_refs)
  return {
    "id": str(record.get("annot_id", "")),
    "image": image,
    "image/filename": str(record["img_fn"]),
    "movie": str(record.get("movie", "")),
    "img_id": str(record.get("img_id", "")),
    "question_number": int(record.get("question_number", -1)),
    "objects": objects,
    "question": question,
    "answer_choices": answers,
    "answer_label": labels[0],
    "rationale_choices": rationales,
    "rationale_label": labels[1],
    "question_orig": str(record.get("question_orig", "")),
    "answer_orig": str(record.get("answer_orig", "")),
    "rationale_orig": str(record.get("rationale_orig", "")),
  }, outside


class UioVcr(_Builder):
  """VCR v1.0: Q->A and QA->R multiple choice over regions (Zellers et al., 2019)."""

  name = VCR
  MANUAL_DOWNLOAD_INSTRUCTIONS = VCR_INSTRUCTIONS
  _FILES = {"train": "train.jsonl", "validation": "val.jsonl"}

  def _info(self):
    text = tfds.features.Text()
    return self.dataset_info_from_configs(
      description="VCR v1.0 questions with four answers and four rationales each.",
      features=tfds.features.FeaturesDict(
        {
          "id": text,
          "image": tfds.features.Image(encoding_format="jpeg"),
          "image/filename": text,
          "movie": text,
          "img_id": text,
          "question_number": np.int32,
          "objects": _OBJECTS,
          "question": text,
          "answer_choices": tfds.features.Sequence(text),
          "answer_label": np.int32,
          "rationale_choices": tfds.features.Sequence(text),
          "rationale_label": np.int32,
          "question_orig": text,
          "answer_orig": text,
          "rationale_orig": text,
        }
      ),
      homepage="https://visualcommonsense.com",
      citation="Zellers et al., From Recognition to Cognition: Visual Commonsense "
      "Reasoning, CVPR 2019.",
    )

  def _examples(self, root, split, counts):
    with (root / self._FILES[split]).open() as f:
      for line_number, line in enumerate(f):
        if not line.strip():
          continue
        try:
          example, outside = vcr_example(root / IMAGES, json.loads(line))
        except _BadRecord as e:
          counts[str(e)] += 1
          continue
        except json.JSONDecodeError:
          counts["skipped: line not valid JSON"] += 1
          continue
        if outside:
          counts["kept: a reference outside the objects (tasks skip it)"] += 1
        # Line numbers keep keys unique even if an annot_id repeats.
        yield f"{line_number:07d}", example


# ---------------------------------------------------------------------------- VisualCOMET


def _texts(record: dict, field: str) -> List[str]:
  values = record.get(field) or []
  return [str(v) for v in values] if isinstance(values, list) else [str(values)]


def visualcomet_example(images: epath.Path, record: dict, record_id: str) -> Tuple[dict, str]:
  """(TFDS example, "" or what is odd about its event) of one VisualCOMET event."""
  if not isinstance(record, dict):
    raise _BadRecord("skipped: an event is not a JSON object")
  image, objects, n = _objects(images, record, None)
  event = str(record.get("event", ""))
  numbers = [int(m) for m in PERSON_NUMBER.findall(event)]
  odd = ""
  if not numbers:
    odd = "kept: an event names no person number"
  elif any(not 1 <= k <= n for k in numbers):
    odd = "kept: an event names a number outside the objects (tasks skip it)"
  example = {
    "id": record_id,
    "image": image,
    "image/filename": str(record["img_fn"]),
    "movie": str(record.get("movie", "")),
    "objects": objects,
    "event": event,
    "place": str(record.get("place", "")),
  }
  example.update({kind: _texts(record, kind) for kind in INFERENCE_KINDS})
  return example, odd


class UioVisualcomet(_Builder):
  """VisualCOMET: before / intent / after inferences of a person's event (Park et al., 2020)."""

  name = VISUALCOMET
  MANUAL_DOWNLOAD_INSTRUCTIONS = VISUALCOMET_INSTRUCTIONS
  _FILES = {"train": "train_annots.json", "validation": "val_annots.json"}

  def _info(self):
    text = tfds.features.Text()
    features = {
      "id": text,
      "image": tfds.features.Image(encoding_format="jpeg"),
      "image/filename": text,
      "movie": text,
      "objects": _OBJECTS,
      "event": text,
      "place": text,
    }
    features.update({kind: tfds.features.Sequence(text) for kind in INFERENCE_KINDS})
    return self.dataset_info_from_configs(
      description="VisualCOMET events on VCR images with before, intent and after inferences.",
      features=tfds.features.FeaturesDict(features),
      homepage="https://visualcomet.xyz",
      citation="Park et al., VisualCOMET: Reasoning about the Dynamic Context of a Still "
      "Image, ECCV 2020.",
    )

  def _examples(self, root, split, counts):
    records = common.read_json(root / self._FILES[split])
    if not isinstance(records, list):
      raise ValueError(f"{root / self._FILES[split]}: not a list of events")
    stem = self._FILES[split].split("_")[0]  # "train", "val": the release's split names
    for i, record in enumerate(records):
      try:
        example, odd = visualcomet_example(root / IMAGES, record, f"{stem}-{i}")
      except _BadRecord as e:
        counts[str(e)] += 1
        continue
      if odd:
        counts[odd] += 1
      for kind in INFERENCE_KINDS:
        if not example[kind]:
          counts[f"kept: no {kind} inferences (the {kind} task skips it)"] += 1
      yield f"{i:07d}", example
