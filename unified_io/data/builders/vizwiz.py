"""TFDS builder `uio_vizwiz`: VizWiz-Captions, VizWiz-VQA and VizWiz-VQA-Grounding.

The three are separate releases on https://vizwiz.org/tasks-and-datasets/ (image captioning,
visual question answering, answer grounding), so each is a config that reads its own
release folder under `<manual_dir>/uio_vizwiz/` (TFDS's manual_dir:
`<data_dir>/downloads/manual/` unless `--manual_dir` says otherwise). Each folder holds the
release as it unzips; the image folders may be symlinks to where the images already are.

    uio_vizwiz/captions/annotations/train.json, val.json      VizWiz-Captions annotations
    uio_vizwiz/captions/train/, val/                          its images (train.zip, val.zip)
    uio_vizwiz/vqa/Annotations/train.json, val.json           VizWiz-VQA annotations
    uio_vizwiz/vqa/train/, val/                               its images (train.zip, val.zip)
    uio_vizwiz/grounding/train_grounding.json, val_grounding.json
    uio_vizwiz/grounding/binary_masks_png/train/, val/        <image stem>.png answer masks
    uio_vizwiz/grounding/train/, val/                         its images

Build with `python -m unified_io.data.prepare uio_vizwiz/captions uio_vizwiz/vqa
uio_vizwiz/grounding --data_dir=DATA_DIR` (ArrayRecord, which the input pipeline reads by
random access), or `download_and_prepare(file_format="array_record")`: TFDS 4.9.10 has no
per-builder default file format, so a bare `download_and_prepare()` writes TFRecords. Only
train and validation are built: test answers, captions and masks are hidden (evaluation
servers), so the test files could train or score nothing.

Release files and fields (verified against the VizWiz APIs and public loaders):
- Captions `annotations/{split}.json`, COCO-caption style: images [{file_name, id,
  text_detected, vizwiz_url}], annotations [{image_id, caption, is_precanned, is_rejected,
  id}], 5 captions per image.
- VQA `Annotations/{split}.json`: a list of {image (file name), question, answers: 10 x
  {answer, answer_confidence ("yes"/"maybe"/"no")}, answer_type ("other", "yes/no",
  "number", "unanswerable"), answerable (0/1)}, one question per image.
- Grounding `{split}_grounding.json`: {image file name: {question, most_common_answer,
  answer_grounding (the drawn polygon), height, width, answers (where present)}} and a
  white-on-black mask `binary_masks_png/{split}/<image stem>.png` of the answer's region.

Records (`id` is the image file name without extension, e.g. "VizWiz_train_00000000"):
- captions: id, image (the JPEG bytes), image/filename, image/id (int64), text_detected
  (bool), captions: Sequence{text, id (int64), is_precanned, is_rejected}. Every caption is
  kept with its flags; the task drops rejected and pre-canned ones (see vl_vizwiz.py).
- vqa: id, image, image/filename, question, answers (10 texts), answer_confidences,
  answer_type, answerable (int32). Unanswerable questions are kept as released.
- grounding: id, image, image/filename, question, most_common_answer, answers (the JSON's
  answers, empty where it has none), mask (uint8 [H, W, 1] PNG, 255 on the answer region,
  in the pixel frame of the stored image bytes).

Awkward cases (each counted in the build log):
- An image the annotations name but its folder lacks fails the build naming it
  (MissingReleaseFile), as does any other missing release file: a partial copy would build
  silently smaller. Caption images without captions are kept (the task skips them).
- Captions: rejected and pre-canned captions ("Quality issues are too severe to recognize
  visual content.") are kept with their flags; the task leaves both out, as the VizWiz
  caption API does by default (ignore_rejected, ignore_precanned).
- VQA: unanswerable questions (answerable 0, answers mostly "unanswerable") and blank
  answers are kept as released; the task handles them.
- Grounding masks whose size is not the stored image's. TFDS decodes JPEG pixels as stored,
  ignoring the EXIF orientation tag, while the masks were drawn on the image as displayed
  (the tag applied: public loaders apply it and then find mask and image of one size). A
  tagged image's mask of the displayed size is mapped back to the stored frame with the
  inverse of the tag's transform (lossless); tags that keep the size (flips, the half turn,
  any tag on a square image) cannot show the frame and are undone by the same rule. A mask
  of the stored size otherwise is kept as it is; one of another size with the image's aspect
  ratio (to within one pixel) is resized to it, nearest neighbour; any other mask, and a
  record without a mask file, is skipped. The image bytes are never re-encoded.
"""

from __future__ import annotations

import collections
import io
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from unified_io.data.builders import common

NAME = "uio_vizwiz"
HOMEPAGE = "https://vizwiz.org/tasks-and-datasets/"
# Release split folder and file name part -> TFDS split.
SPLITS = {"train": "train", "val": "validation"}
EXIF_ORIENTATION = 0x0112
# The inverse of each EXIF orientation's display transform (PIL.ImageOps.exif_transpose):
# flips, the 180 degree turn, transpose and transverse undo themselves; the quarter turns
# swap.
_UNDO_ORIENTATION = {
  2: PIL.Image.Transpose.FLIP_LEFT_RIGHT,
  3: PIL.Image.Transpose.ROTATE_180,
  4: PIL.Image.Transpose.FLIP_TOP_BOTTOM,
  5: PIL.Image.Transpose.TRANSPOSE,
  6: PIL.Image.Transpose.ROTATE_90,
  7: PIL.Image.Transpose.TRANSVERSE,
  8: PIL.Image.Transpose.ROTATE_270,
}

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Download from https://vizwiz.org/tasks-and-datasets/ and unzip each release into its own
folder under <manual_dir>/uio_vizwiz/ (manual_dir: <data_dir>/downloads/manual/ unless
--manual_dir says otherwise). Image folders may be symlinks: the releases name VizWiz images
by the same file names (VizWiz_train_00000000.jpg ...), so one unzipped copy that holds every
image a release names can serve several (the build fails naming any image it lacks).

uio_vizwiz/captions/   (https://vizwiz.org/tasks-and-datasets/image-captioning/)
  annotations/train.json, annotations/val.json   (annotations.zip)
  train/, val/                                   (train.zip, val.zip: the images)
uio_vizwiz/vqa/        (https://vizwiz.org/tasks-and-datasets/vqa/)
  Annotations/train.json, Annotations/val.json   (Annotations.zip)
  train/, val/                                   (train.zip, val.zip: the images)
uio_vizwiz/grounding/  (https://vizwiz.org/tasks-and-datasets/answer-grounding-for-vqa/)
  train_grounding.json, val_grounding.json
  binary_masks_png/train/, binary_masks_png/val/ (binary_masks_png.zip)
  train/, val/                                   (the release's train and val images)

Each config needs only its own folder. Test files are not used (their answers are hidden).
Then: python -m unified_io.data.prepare uio_vizwiz/captions (or /vqa, /grounding)
--data_dir=DATA_DIR, which writes ArrayRecord files.
"""


def _release_files(config: str) -> List[str]:
  """Every file and folder config `config` reads, relative to its release folder."""
  if config == "captions":
    return [f"annotations/{s}.json" for s in SPLITS] + [f"{s}/" for s in SPLITS]
  if config == "vqa":
    return [f"Annotations/{s}.json" for s in SPLITS] + [f"{s}/" for s in SPLITS]
  return (
    [f"{s}_grounding.json" for s in SPLITS]
    + [f"binary_masks_png/{s}/" for s in SPLITS]
    + [f"{s}/" for s in SPLITS]
  )


def _stem(file_name: str) -> str:
  return file_name.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _image(root: epath.Path, split: str, file_name: str) -> epath.Path:
  """The image's path; a missing one fails the build, named (a partial copy of the release)."""
  path = root / split / file_name
  if not path.exists():
    raise common.MissingReleaseFile(
      f"{NAME}: missing in {root}: {split}/{file_name} (see the builder's "
      "MANUAL_DOWNLOAD_INSTRUCTIONS)"
    )
  return path


def _answer_text(answer) -> str:
  """VQA answers are {answer, answer_confidence}; grounding files may list plain strings."""
  return str(answer.get("answer", "")) if isinstance(answer, dict) else str(answer)


# ------------------------------------------------------------------------------- captions


def caption_records(root: epath.Path, split: str) -> Iterator[Tuple[str, dict]]:
  data = common.read_json(root / "annotations" / f"{split}.json")
  by_image: Dict[int, list] = collections.defaultdict(list)
  for ann in data.get("annotations", []):
    by_image[int(ann["image_id"])].append(ann)
  counts = collections.Counter()
  for info in data["images"]:
    anns = sorted(by_image.get(int(info["id"]), []), key=lambda a: int(a["id"]))
    counts["images"] += 1
    counts["captions"] += len(anns)
    counts["rejected"] += sum(bool(a.get("is_rejected")) for a in anns)
    counts["precanned"] += sum(bool(a.get("is_precanned")) for a in anns)
    counts["without captions"] += not anns
    name = info["file_name"]
    yield (
      _stem(name),
      {
        "id": _stem(name),
        "image": _image(root, split, name).read_bytes(),
        "image/filename": name,
        "image/id": int(info["id"]),
        "text_detected": bool(info.get("text_detected", False)),
        "captions": [
          {
            "text": str(a["caption"]),
            "id": int(a["id"]),
            "is_precanned": bool(a.get("is_precanned", False)),
            "is_rejected": bool(a.get("is_rejected", False)),
          }
          for a in anns
        ],
      },
    )
  logging.info("%s/captions %s: %s", NAME, split, dict(counts))


# ------------------------------------------------------------------------------------ vqa


def vqa_records(root: epath.Path, split: str) -> Iterator[Tuple[str, dict]]:
  data = common.read_json(root / "Annotations" / f"{split}.json")
  counts = collections.Counter()
  seen = collections.Counter()
  for item in data:
    name = item["image"]
    answers = item.get("answers") or []
    counts["questions"] += 1
    counts["unanswerable"] += int(item.get("answerable", 1)) == 0
    counts["blank answers"] += sum(not _answer_text(a).strip() for a in answers)
    # One question per image in the release; a repeated image still gets a unique key.
    key = _stem(name) if not seen[name] else f"{_stem(name)}#{seen[name]}"
    seen[name] += 1
    yield (
      key,
      {
        "id": key,
        "image": _image(root, split, name).read_bytes(),
        "image/filename": name,
        "question": str(item["question"]),
        "answers": [_answer_text(a) for a in answers],
        "answer_confidences": [
          str(a.get("answer_confidence", "")) if isinstance(a, dict) else "" for a in answers
        ],
        "answer_type": str(item.get("answer_type", "")),
        "answerable": int(item.get("answerable", -1)),
      },
    )
  logging.info("%s/vqa %s: %s", NAME, split, dict(counts))


# ------------------------------------------------------------------------------ grounding


def _binary(mask: PIL.Image.Image) -> np.ndarray:
  """bool [H, W]: masks are 0/255, but a 0/1 file keeps its ones (threshold half the max)."""
  values = np.asarray(mask.convert("L"))
  return values > int(values.max()) // 2


def fit_mask(
  mask: PIL.Image.Image, image_size: Tuple[int, int], orientation: int
) -> Tuple[Optional[np.ndarray], str]:
  """(bool [H, W] mask in the stored image's frame, or None to skip; how it was fitted).

  image_size is the stored image's PIL size (width, height), orientation its EXIF tag.
  """
  width, height = image_size
  binary = _binary(mask)
  undo = _UNDO_ORIENTATION.get(orientation)
  displayed = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
  # Masks were drawn on the displayed image. A tag that keeps the size (flips, the half
  # turn, or any tag of a square image) cannot show it, so it is taken as the rule.
  if undo is not None and mask.size == displayed:
    return np.asarray(PIL.Image.fromarray(binary).transpose(undo)), "EXIF orientation undone"
  if mask.size == (width, height):
    return binary, "as released"
  mask_w, mask_h = mask.size
  # Another resolution of the same frame: the aspect ratios agree to within one pixel.
  if abs(mask_w * height / mask_h - width) <= 1 and abs(mask_h * width / mask_w - height) <= 1:
    resized = PIL.Image.fromarray(binary).resize((width, height), PIL.Image.Resampling.NEAREST)
    return np.asarray(resized), "resized (nearest)"
  return None, "skipped: mask size does not fit the image"


def _orientation(image: PIL.Image.Image) -> int:
  """The EXIF orientation tag, 1 (as stored) when absent, unreadable or not 1-8."""
  try:
    value = int(image.getexif().get(EXIF_ORIENTATION, 1))
  except Exception:  # a corrupt EXIF block: PIL shows the pixels as stored, so do we
    return 1
  return value if 1 <= value <= 8 else 1


def _png(mask: np.ndarray) -> bytes:
  out = io.BytesIO()
  PIL.Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(out, format="PNG")
  return out.getvalue()


def grounding_records(root: epath.Path, split: str) -> Iterator[Tuple[str, dict]]:
  data = common.read_json(root / f"{split}_grounding.json")
  counts = collections.Counter()
  for name in sorted(data):
    item = data[name]
    counts["questions"] += 1
    image_path = _image(root, split, name)
    mask_path = root / "binary_masks_png" / split / f"{_stem(name)}.png"
    if not mask_path.exists():
      counts["skipped: no mask file"] += 1
      logging.info("%s/grounding %s: no mask %s: skipped", NAME, split, mask_path.name)
      continue
    with PIL.Image.open(image_path) as image, PIL.Image.open(mask_path) as mask:
      fitted, how = fit_mask(mask, image.size, _orientation(image))
    counts[how] += 1
    if fitted is None:
      logging.info("%s/grounding %s: %s for %s", NAME, split, how, name)
      continue
    answers = item.get("answers") or []
    yield (
      _stem(name),
      {
        "id": _stem(name),
        "image": image_path.read_bytes(),
        "image/filename": name,
        "question": str(item.get("question", "")),
        "most_common_answer": str(item.get("most_common_answer") or ""),
        "answers": [_answer_text(a) for a in answers] if isinstance(answers, list) else [],
        "mask": _png(fitted),
      },
    )
  logging.info("%s/grounding %s: %s", NAME, split, dict(counts))


# -------------------------------------------------------------------------------- builder


def _features(config: str) -> tfds.features.FeaturesDict:
  text, image = tfds.features.Text, tfds.features.Image
  common_fields = {
    "id": text(doc="image file name without extension"),
    "image": image(encoding_format="jpeg"),
    "image/filename": text(),
  }
  if config == "captions":
    return tfds.features.FeaturesDict(
      {
        **common_fields,
        "image/id": tfds.features.Scalar(dtype=np.int64),
        "text_detected": tfds.features.Scalar(dtype=np.bool_),
        "captions": tfds.features.Sequence(
          {
            "text": text(),
            "id": tfds.features.Scalar(dtype=np.int64),
            "is_precanned": tfds.features.Scalar(dtype=np.bool_),
            "is_rejected": tfds.features.Scalar(dtype=np.bool_),
          }
        ),
      }
    )
  if config == "vqa":
    return tfds.features.FeaturesDict(
      {
        **common_fields,
        "question": text(),
        "answers": tfds.features.Sequence(text()),
        "answer_confidences": tfds.features.Sequence(text()),
        "answer_type": text(),
        "answerable": tfds.features.Scalar(dtype=np.int32, doc="1, 0, or -1 if not given"),
      }
    )
  return tfds.features.FeaturesDict(
    {
      **common_fields,
      "question": text(),
      "most_common_answer": text(),
      "answers": tfds.features.Sequence(text()),
      "mask": image(
        shape=(None, None, 1), encoding_format="png", doc="255 on the answer, stored frame"
      ),
    }
  )


_RECORDS = {"captions": caption_records, "vqa": vqa_records, "grounding": grounding_records}


class UioVizwiz(tfds.core.GeneratorBasedBuilder):
  """VizWiz-Captions, VizWiz-VQA and VizWiz-VQA-Grounding from their release files."""

  name = NAME
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Captions, VQA and answer grounding (train and validation)."}
  BUILDER_CONFIGS = [
    tfds.core.BuilderConfig(name="captions", description="VizWiz-Captions (Gurari et al. 2020)."),
    tfds.core.BuilderConfig(name="vqa", description="VizWiz-VQA (Gurari et al. 2018)."),
    tfds.core.BuilderConfig(
      name="grounding", description="VizWiz-VQA-Grounding (Chen et al. 2022)."
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
    root = common.release_dir(dl_manager, NAME) / config
    common.require(root, f"{NAME}/{config}", _release_files(config))
    return {
      tfds_split: self._generate_examples(root, split) for split, tfds_split in SPLITS.items()
    }

  def _generate_examples(self, root: epath.Path, split: str):
    yield from _RECORDS[self.builder_config.name](root, split)
