"""VizWiz tasks: captioning, VQA and grounded VQA on the `uio_vizwiz` configs.

Importing this module registers the builder (unified_io/data/builders/vizwiz.py, whose
docstring lists the release files and record fields) and these tasks, on train and
validation (the releases hide their test answers):

- vizwiz_captioning (`uio_vizwiz/captions`, image_captioning, CIDEr): the prompt is the
  image_captioning template ("What does the image describe ?"), the target one caption drawn
  uniformly; meta "captions" holds the references. Rejected and pre-canned captions ("Quality
  issues are too severe to recognize visual content.") are left out of both, as the VizWiz
  caption API leaves them out by default; an image with no other caption is skipped.
- vizwiz_vqa (`uio_vizwiz/vqa`, vision_language, VQA accuracy): the prompt is the question,
  lower-cased (the "vqa" template is the question itself); the target is the most common of
  the ten answers, meta "answers" all non-blank answers, which VQA accuracy scores against.
  Unanswerable questions are kept: their answers are mostly "unanswerable", so that is the
  target, which is what VizWiz's own evaluation expects a model to say.
- vizwiz_grounding (`uio_vizwiz/grounding`, vision_language, grounded VQA): the paper's
  answer-grounded VQA (appendix A.1.6): the VQA prompt; the target text is the answer (the
  release's most_common_answer), the target image the answer's mask, white on black, resized
  nearest neighbour; meta "mask" (bool [H, W]) and "image_hw" are what the grounded VQA
  scorer reads for the mask IoU it reports beside the answer accuracy, "answers" what VQA
  accuracy reads (the JSON's answers where it has them, else the most common answer).

Answers are counted, and kept in meta, lower-cased with their spaces collapsed ("Yes" and
"yes " are one answer; VQA accuracy lower-cases both sides anyway); blank ones are dropped
and ties go to the answer given first. Bad records skip with a reason: a blank question, no
answer, no usable caption, a mask that is empty or not the image's size. No task sets
`size`: the catalogue holds the paper's sizes.
"""

from __future__ import annotations

import collections
from typing import List, Sequence

import numpy as np

from unified_io.common import dense_labels
from unified_io.data.builders import vizwiz  # importing it registers uio_vizwiz
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision_logic as vt

TRAIN_VALIDATION = {"train": "train", "validation": "validation"}
CAPTIONS = f"{vizwiz.NAME}/captions"
VQA = f"{vizwiz.NAME}/vqa"
GROUNDING = f"{vizwiz.NAME}/grounding"
M, O = tasks.Metric, tasks.Output


def normalize_answer(answer: str) -> str:
  return " ".join(answer.lower().split())


def most_common(answers: Sequence[str]) -> str:
  """The most frequent answer; Counter keeps first-seen order, so ties go to the first."""
  return collections.Counter(answers).most_common(1)[0][0]


def _question(example) -> str:
  question = " ".join(tasks.as_text(example["question"], "question").split())
  if not question:
    raise tasks.SkipExample("blank question")
  return question


def _answers(example) -> List[str]:
  return [a for a in map(normalize_answer, vt.texts(example["answers"], "answers")) if a]


# ------------------------------------------------------------------------------ captioning


def _captioning(example, rng, ctx, prompt):
  del ctx
  captions = example["captions"]
  texts = vt.texts(captions["text"], "captions")
  rejected = np.asarray(captions["is_rejected"], bool).reshape(-1)
  precanned = np.asarray(captions["is_precanned"], bool).reshape(-1)
  kept = [t for t, r, p in zip(texts, rejected, precanned) if not r and not p and t.strip()]
  if not kept:
    raise tasks.SkipExample(
      "no caption but rejected or pre-canned ones" if texts else "image has no captions"
    )
  return vt.captioning(vt.as_image(example["image"]), kept, vt.example_id(example), rng, prompt)


# ------------------------------------------------------------------------------------ vqa


def _vqa(example, rng, ctx, prompt):
  del rng, ctx
  question = _question(example)
  answers = _answers(example)
  if not answers:
    raise tasks.SkipExample("no answers")
  image = vt.as_image(example["image"])
  return vt.raw_example(
    prompt(question.lower()),
    image,
    image.shape[:2],
    vt.example_id(example),
    target_text=most_common(answers),
    answers=answers,
    question=question,
    answer_type=tasks.as_text(example["answer_type"], "answer_type"),
    answerable=int(example["answerable"]),
  )


# ------------------------------------------------------------------------------ grounding


def _grounding(example, rng, ctx, prompt):
  del rng, ctx
  question = _question(example)
  answers = _answers(example)
  answer = normalize_answer(tasks.as_text(example["most_common_answer"], "most_common_answer"))
  answer = answer or (most_common(answers) if answers else "")
  if not answer:
    raise tasks.SkipExample("no answer")
  image = vt.as_image(example["image"])
  mask = np.asarray(example["mask"])
  mask = (mask[..., 0] if mask.ndim == 3 else mask) > 127
  if mask.shape != image.shape[:2]:
    raise tasks.SkipExample(f"mask {mask.shape} does not match the image {image.shape[:2]}")
  if not mask.any():
    raise tasks.SkipExample("empty answer mask")
  return vt.raw_example(
    prompt(question.lower()),
    image,
    image.shape[:2],
    vt.example_id(example),
    target_text=answer,
    target_image=dense_labels.mask_to_image(mask),
    nearest=True,
    answers=answers or [answer],
    question=question,
    mask=mask,
  )


vt.register(
  "vizwiz_captioning",
  "image_captioning",
  "image_captioning",
  _captioning,
  metric=M.CIDER,
  output=O.TEXT,
  builder=CAPTIONS,
  splits=TRAIN_VALIDATION,
  description="VizWiz-Captions: captions of photos taken by blind people (no rejected or "
  "pre-canned captions).",
)
vt.register(
  "vizwiz_vqa",
  "vision_language",
  "vqa",
  _vqa,
  metric=M.VQA_ACCURACY,
  output=O.TEXT,
  builder=VQA,
  splits=TRAIN_VALIDATION,
  description="VizWiz-VQA: blind people's questions; target the most common of 10 answers "
  "(unanswerable ones kept).",
)
vt.register(
  "vizwiz_grounding",
  "vision_language",
  "grounded_vqa",
  _grounding,
  metric=M.GROUNDED_VQA,
  output=O.TEXT_MASK,
  builder=GROUNDING,
  splits=TRAIN_VALIDATION,
  description="VizWiz-VQA-Grounding: the answer and a white-on-black mask of its region.",
)
