"""TFDS builders of the VQA-format datasets on COCO images: VQA 2.0, OK-VQA and A-OKVQA.

Each reads its original release files from `<manual_dir>/<builder name>/` (common.py); the
COCO image folders are sub-folders there, which may be symlinks to an existing COCO copy.
Prepare with `python -m unified_io.data.prepare uio_vqa_v2 --data_dir=DIR` (ArrayRecord by
default): TFDS 4.9.10 has no per-builder default file format, and the input pipeline needs
ArrayRecord for random access to datasets this large (TFRecords are held in memory, up to 4 GiB).

uio_vqa_v2 (https://visualqa.org/download.html, v2.0):
  v2_OpenEnded_mscoco_{train,val}2014_questions.json
    {"questions": [{"image_id": int, "question": str, "question_id": int}], "info", ...}
  v2_mscoco_{train,val}2014_annotations.json
    {"annotations": [{"question_id", "image_id", "answers": [10 x {"answer": str,
     "answer_confidence": "yes"|"maybe"|"no", "answer_id": 1..10}], "multiple_choice_answer",
     "answer_type", "question_type"}], ...}
  optional v2_OpenEnded_mscoco_test2015_questions.json (questions only, no annotations file)
  images train2014/COCO_train2014_<12-digit id>.jpg, val2014/..., test2015/... (the last
  only with the test questions)
uio_okvqa (https://okvqa.allenai.org/download.html, v1.1): the same format without
  multiple_choice_answer and without a test split; each answer also has "raw_answer" (the
  annotator's text; "answer" is OK-VQA's processed form, the one its evaluation scores):
  OpenEnded_mscoco_{train,val}2014_questions.json, mscoco_{train,val}2014_annotations.json,
  images train2014/, val2014/. question_type is OK-VQA's knowledge category ("one".."ten",
  "other"), answer_type "other".
uio_aokvqa (https://allenai.org/project/a-okvqa, aokvqa_v1p0.tar.gz, v1.0):
  aokvqa_v1p0_{train,val,test}.json: a list of {"split", "image_id": int, "question_id": str,
  "question", "choices": [4 str], "correct_choice_idx": int, "direct_answers": [10 str],
  "difficult_direct_answer": bool, "rationales": [3 str]}; test entries have no
  correct_choice_idx, direct_answers or rationales. COCO 2017 images train2017/, val2017/,
  test2017/ named <12-digit id>.jpg.

Records: one per question, keyed by question_id. Splits train, validation (release "val"),
and test where the release has questions for it (VQA 2.0 when the optional file is there,
A-OKVQA always). One record per image with all its questions would store each image once,
but a record per question is the unit the catalogue counts and samples by (each question
once per epoch, whatever its image), evaluation then covers every validation question, and
a test-server submission needs an answer per question_id. The cost is disk: VQA 2.0 asks
5.4 questions per image (443,757 on 82,783 train images), so its images are stored ~5x
(~70 GB for train instead of ~13 GB); OK-VQA and A-OKVQA ask about one per image.
  Every record has "id", the question_id as text (what the pipeline names a record by).
  uio_vqa_v2, uio_okvqa: image (JPEG bytes as released), image_id, image/filename (relative
    to the release folder), question_id (int), question, answers {answer, answer_confidence,
    answer_id[, raw_answer (OK-VQA)]} (as released, in order), [multiple_choice_answer
    (VQA 2.0)], answer_type, question_type.
  uio_aokvqa: image, image_id, image/filename, question_id (str), question, choices,
    correct_choice_idx, direct_answers, difficult_direct_answer, rationales.

Awkward cases, decided here (each counted in the build log):
- Test questions have no answers. They are kept, so predictions can be written for the test
  servers: VQA-format records get answers = [] and multiple_choice_answer = "", A-OKVQA
  records correct_choice_idx = -1 and no direct answers or rationales. The tasks skip them
  (and list no test split), so they are never trained or scored on. VQA 2.0's test-dev2015
  questions are a subset of test2015's, so they are in this split too.
- A train/val question without an annotation, an annotation without a question, or a pair
  whose image_ids differ is dropped (not expected in the official files).
- Answer lists of other lengths than 10 are kept as they are (VQA accuracy handles them).
- An image a question needs that is absent fails the build up front (MissingReleaseFile
  naming it): it means an incomplete or mislinked COCO folder, not a bad record.
"""

from __future__ import annotations

import collections
from typing import Dict, Iterator, List, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from unified_io.data.builders import common

VQA_V2 = "uio_vqa_v2"
OKVQA = "uio_okvqa"
AOKVQA = "uio_aokvqa"
VERSION = tfds.core.Version("1.0.0")
# (TFDS split, release split name) of the train and validation splits.
COCO2014_SPLITS = (("train", "train2014"), ("validation", "val2014"))
AOKVQA_SPLITS = (("train", "train"), ("validation", "val"), ("test", "test"))
NO_CHOICE = -1  # correct_choice_idx of A-OKVQA test questions


def coco2014_filename(folder: str, image_id: int) -> str:
  """COCO 2014/2015 naming: train2014/COCO_train2014_000000000009.jpg."""
  return f"{folder}/COCO_{folder}_{int(image_id):012d}.jpg"


def coco2017_filename(folder: str, image_id: int) -> str:
  """COCO 2017 naming: train2017/000000000009.jpg."""
  return f"{folder}/{int(image_id):012d}.jpg"


def _require_images(root, name: str, filenames) -> None:
  """Every image a split needs exists, checked before any record is written."""
  absent = sorted(f for f in set(filenames) if not common.exists(root / f))
  if absent:
    shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
    raise common.MissingReleaseFile(
      f"{name}: {len(absent)} images missing in {root}: {shown} (is the COCO folder complete, "
      "or its symlink right? see the builder's MANUAL_DOWNLOAD_INSTRUCTIONS)"
    )


def _text(value) -> str:
  return "" if value is None else str(value)


# ----------------------------------------------------------------- VQA format (v2, OK-VQA)


class _VqaFormat(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Questions and annotations files in the VQA 2.0 layout, COCO 2014 images."""

  VERSION = VERSION
  RELEASE_NOTES = {"1.0.0": "Original release files, one record per question."}
  QUESTIONS = ""  # "...{}..." formatted with the release split (train2014, val2014, test2015)
  ANNOTATIONS = ""
  TEST = None  # (release split, image folder) of the optional questions-only test split
  RAW_ANSWER = False  # answers carry raw_answer (OK-VQA)
  MC_ANSWER = False  # annotations carry multiple_choice_answer (VQA 2.0)
  HOMEPAGE = ""
  DESCRIPTION = ""

  def _info(self) -> tfds.core.DatasetInfo:
    answer = {
      "answer": tfds.features.Text(),
      "answer_confidence": tfds.features.Text(),
      "answer_id": np.int32,
    }
    if self.RAW_ANSWER:
      answer["raw_answer"] = tfds.features.Text()
    features = {
      "id": tfds.features.Text(),
      "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
      "image_id": np.int64,
      "image/filename": tfds.features.Text(),
      "question_id": np.int64,
      "question": tfds.features.Text(),
      "answers": tfds.features.Sequence(answer),
      "answer_type": tfds.features.Text(),
      "question_type": tfds.features.Text(),
    }
    if self.MC_ANSWER:
      features["multiple_choice_answer"] = tfds.features.Text()
    return tfds.core.DatasetInfo(
      builder=self,
      description=self.DESCRIPTION,
      features=tfds.features.FeaturesDict(features),
      homepage=self.HOMEPAGE,
    )

  def _split_generators(self, dl_manager):
    root = common.release_dir(dl_manager, self.name)
    required = []
    for _, release in COCO2014_SPLITS:
      required += [self.QUESTIONS.format(release), self.ANNOTATIONS.format(release), f"{release}/"]
    common.require(root, self.name, required)
    splits = {}
    for split, release in COCO2014_SPLITS:
      questions = self._questions(root, release, release)
      splits[split] = self._generate_examples(root, release, questions, annotated=True)
    if self.TEST is not None and common.exists(root / self.QUESTIONS.format(self.TEST[0])):
      release, folder = self.TEST
      common.require(root, self.name, [f"{folder}/"])
      questions = self._questions(root, release, folder)
      splits["test"] = self._generate_examples(root, release, questions, annotated=False)
    else:
      logging.info("%s: no test questions file, so no test split", self.name)
    return splits

  def _questions(self, root, release: str, folder: str) -> List[Tuple[dict, str]]:
    """(question, image filename) pairs of a split, its images checked to exist."""
    path = root / self.QUESTIONS.format(release)
    questions = common.read_json(path)["questions"]
    pairs = [(q, coco2014_filename(folder, q["image_id"])) for q in questions]
    _require_images(root, self.name, [f for _, f in pairs])
    return pairs

  def _generate_examples(self, root, release: str, questions, annotated: bool) -> Iterator:
    counts = collections.Counter()
    by_question: Dict[int, dict] = {}
    if annotated:
      annotations = common.read_json(root / self.ANNOTATIONS.format(release))["annotations"]
      by_question = {a["question_id"]: a for a in annotations}
      asked = {q["question_id"] for q, _ in questions}
      counts["annotation without question (dropped)"] = len(set(by_question) - asked)
    for question, filename in questions:
      annotation: Optional[dict] = by_question.get(question["question_id"])
      if annotated and annotation is None:
        counts["question without annotation (dropped)"] += 1
        continue
      if annotation is not None and annotation["image_id"] != question["image_id"]:
        counts["image_id differs between question and annotation (dropped)"] += 1
        continue
      answers = list((annotation or {}).get("answers", ()))
      if annotated and len(answers) != 10:
        counts["answers not 10 (kept)"] += 1
      if not annotated:
        counts["test question without answers (kept)"] += 1
      counts["records"] += 1
      yield str(question["question_id"]), self._record(root, question, annotation, filename)
    logging.info("%s[%s]: %s", self.name, release, dict(counts))

  def _record(self, root, question: dict, annotation: Optional[dict], filename: str) -> dict:
    annotation = annotation or {}
    answers = list(annotation.get("answers", ()))
    columns = {
      "answer": [_text(a.get("answer")) for a in answers],
      "answer_confidence": [_text(a.get("answer_confidence")) for a in answers],
      "answer_id": [int(a.get("answer_id", k + 1)) for k, a in enumerate(answers)],
    }
    if self.RAW_ANSWER:
      columns["raw_answer"] = [_text(a.get("raw_answer")) for a in answers]
    record = {
      "id": str(question["question_id"]),
      "image": common.image_bytes(root / filename),
      "image_id": int(question["image_id"]),
      "image/filename": filename,
      "question_id": int(question["question_id"]),
      "question": _text(question["question"]),
      "answers": columns,
      "answer_type": _text(annotation.get("answer_type")),
      "question_type": _text(annotation.get("question_type")),
    }
    if self.MC_ANSWER:
      record["multiple_choice_answer"] = _text(annotation.get("multiple_choice_answer"))
    return record


def _vqa_instructions(
  name: str, questions: str, annotations: str, page: str, test: str = ""
) -> str:
  return f"""
  Download from {page} and unzip into <manual_dir>/{name}/ (the original names):
    {questions.format("train2014")}
    {annotations.format("train2014")}
    {questions.format("val2014")}
    {annotations.format("val2014")}
  and the COCO 2014 images (https://cocodataset.org/#download: train2014.zip, val2014.zip)
  as the sub-folders train2014/ (COCO_train2014_000000XXXXXX.jpg) and val2014/; each
  sub-folder may be a symlink to an existing COCO copy.{test}
  """


class UioVqaV2(_VqaFormat):
  """VQA 2.0 (Goyal et al., 2017): open-ended questions on COCO 2014 with 10 answers each."""

  name = VQA_V2
  QUESTIONS = "v2_OpenEnded_mscoco_{}_questions.json"
  ANNOTATIONS = "v2_mscoco_{}_annotations.json"
  TEST = ("test2015", "test2015")
  MC_ANSWER = True
  HOMEPAGE = "https://visualqa.org/"
  DESCRIPTION = "VQA 2.0 open-ended questions on COCO, one record per question."
  MANUAL_DOWNLOAD_INSTRUCTIONS = _vqa_instructions(
    VQA_V2,
    QUESTIONS,
    ANNOTATIONS,
    "https://visualqa.org/download.html",
    test="""
  Optional, a questions-only test split (for the test server): from the same page
    v2_OpenEnded_mscoco_test2015_questions.json
  and the COCO test2015 images (test2015.zip) as the sub-folder test2015/.""",
  )


class UioOkvqa(_VqaFormat):
  """OK-VQA (Marino et al., 2019): outside-knowledge questions on COCO 2014."""

  name = OKVQA
  QUESTIONS = "OpenEnded_mscoco_{}_questions.json"
  ANNOTATIONS = "mscoco_{}_annotations.json"
  RAW_ANSWER = True
  HOMEPAGE = "https://okvqa.allenai.org/"
  DESCRIPTION = "OK-VQA v1.1 questions on COCO 2014, one record per question."
  MANUAL_DOWNLOAD_INSTRUCTIONS = _vqa_instructions(
    OKVQA, QUESTIONS, ANNOTATIONS, "https://okvqa.allenai.org/download.html"
  )


# ---------------------------------------------------------------------------------- A-OKVQA


class UioAokvqa(tfds.core.GeneratorBasedBuilder):
  """A-OKVQA (Schwenk et al., 2022): questions with 4 choices, 10 direct answers, rationales."""

  name = AOKVQA
  VERSION = VERSION
  RELEASE_NOTES = {"1.0.0": "aokvqa_v1p0 release files, one record per question."}
  FILES = "aokvqa_v1p0_{}.json"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download aokvqa_v1p0.tar.gz (https://allenai.org/project/a-okvqa; the link is in
  https://github.com/allenai/aokvqa) and extract into <manual_dir>/uio_aokvqa/:
    aokvqa_v1p0_train.json
    aokvqa_v1p0_val.json
    aokvqa_v1p0_test.json
  and the COCO 2017 images (https://cocodataset.org/#download: train2017.zip, val2017.zip,
  test2017.zip) as the sub-folders train2017/, val2017/, test2017/ (000000XXXXXX.jpg);
  each may be a symlink to an existing COCO copy.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description="A-OKVQA v1.0 on COCO 2017, one record per question.",
      features=tfds.features.FeaturesDict(
        {
          "id": tfds.features.Text(),
          "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
          "image_id": np.int64,
          "image/filename": tfds.features.Text(),
          "question_id": tfds.features.Text(),
          "question": tfds.features.Text(),
          "choices": tfds.features.Sequence(tfds.features.Text()),
          "correct_choice_idx": np.int32,  # NO_CHOICE in test
          "direct_answers": tfds.features.Sequence(tfds.features.Text()),
          "difficult_direct_answer": np.bool_,
          "rationales": tfds.features.Sequence(tfds.features.Text()),
        }
      ),
      homepage="https://allenai.org/project/a-okvqa",
    )

  def _split_generators(self, dl_manager):
    root = common.release_dir(dl_manager, self.name)
    required = [self.FILES.format(r) for _, r in AOKVQA_SPLITS]
    common.require(root, self.name, required + [f"{r}2017/" for _, r in AOKVQA_SPLITS])
    splits = {}
    for split, release in AOKVQA_SPLITS:
      entries = common.read_json(root / self.FILES.format(release))
      pairs = [(e, coco2017_filename(f"{release}2017", e["image_id"])) for e in entries]
      _require_images(root, self.name, [f for _, f in pairs])
      splits[split] = self._generate_examples(root, release, pairs)
    return splits

  def _generate_examples(self, root, release: str, pairs) -> Iterator:
    counts = collections.Counter()
    for entry, filename in pairs:
      answered = "direct_answers" in entry
      if not answered:
        counts["question without answers (kept)"] += 1
      choice = entry.get("correct_choice_idx")
      counts["records"] += 1
      yield (
        str(entry["question_id"]),
        {
          "id": str(entry["question_id"]),
          "image": common.image_bytes(root / filename),
          "image_id": int(entry["image_id"]),
          "image/filename": filename,
          "question_id": str(entry["question_id"]),
          "question": _text(entry["question"]),
          "choices": [_text(c) for c in entry.get("choices", ())],
          "correct_choice_idx": NO_CHOICE if choice is None else int(choice),
          "direct_answers": [_text(a) for a in entry.get("direct_answers", ())],
          "difficult_direct_answer": bool(entry.get("difficult_direct_answer", False)),
          "rationales": [_text(r) for r in entry.get("rationales", ())],
        },
      )
    logging.info("%s[%s]: %s", self.name, release, dict(counts))
