"""VQA tasks on the VQA-format COCO datasets: VQA 2.0, OK-VQA and A-OKVQA (Table 1 rows 49,
52, 53; appendix A.1.6: "the question is used as the prompt, and the output is the answer
text"). Builders and record fields: data/builders/vqa.py (one record per question).

Open-ended tasks (group vision_language, Output.TEXT, Metric.VQA_ACCURACY: min(#annotators
agreeing / 3, 1) with the official answer normalisation, eval/metrics/text.py):
  vqa_v2 (uio_vqa_v2): prompt "vqa" = the lower-cased question, as the released models were
    trained; target multiple_choice_answer (VQA 2.0's own most common answer); meta answers =
    the 10 annotators' answers, question, question_id, answer_type, question_type.
  okvqa (uio_okvqa): the same; OK-VQA has no multiple_choice_answer, so the target is the most
    frequent of the 10 (processed) answers, the first listed among equally frequent ones.
  aokvqa (uio_aokvqa, the direct-answer setting): the same prompt; target the most frequent of
    the 10 direct_answers (ties: the first listed); meta answers = the 10 direct answers,
    plus choices, rationales and difficult_direct_answer. A-OKVQA's own direct-answer score
    leaves difficult_direct_answer questions out and matches strings without normalising;
    this task scores every validation question with the VQA normalisation.

Multiple choice (evaluation; it may train too):
  aokvqa_mc (uio_aokvqa): prompt "vqa_multiple_choice" = the lower-cased question, then the
    example's 4 choices (stripped), joined by " , " ("what is in the motorcyclist's mouth?
    Choose from: toothpick , food , popsicle stick , cigarette"); target the correct choice;
    Output.CHOICE over meta class_names = this example's choices (each example is scored
    against its own options), Metric.ACCURACY (A-OKVQA's multiple-choice score).

The rationales (3 per A-OKVQA question) are in meta only: nothing trains on them.

Every task lists the train and validation splits only. The builders also write the test
questions (VQA 2.0 test2015 when its file is there, A-OKVQA test) without answers, for
test-server predictions; those records skip here ("no answers" / "no correct choice"), so
they are never trained or scored on, and a test split would leave nothing to evaluate.
"""

from __future__ import annotations

import collections
from typing import Sequence

from unified_io.data.builders import vqa as vqa_builders
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision_logic as vt

SPLITS = {"train": "train", "validation": "validation"}
CHOICE_SEPARATOR = " , "  # between the options in the multiple-choice prompt
M, O = tasks.Metric, tasks.Output


def most_common(answers: Sequence[str]) -> str:
  """The most frequent non-empty answer; among equally frequent ones the first listed."""
  counts = collections.Counter(a.strip() for a in answers if a.strip())
  if not counts:
    raise vt.Skip("no non-empty answer")
  return counts.most_common(1)[0][0]  # Counter keeps first-seen order among ties


def _question(example) -> str:
  question = tasks.as_text(example["question"], "question").strip()
  if not question:
    raise vt.Skip("empty question")
  return question


def _vqa_format(example, rng, ctx, prompt):
  """vqa_v2 and okvqa: the question as prompt, the (most common) answer as target."""
  del rng, ctx
  question = _question(example)
  answers = vt.texts(example["answers"]["answer"], "answer")
  if not any(a.strip() for a in answers):
    raise vt.Skip("no answers (a test question, kept for predictions only)")
  target = ""
  if "multiple_choice_answer" in example:  # VQA 2.0
    target = tasks.as_text(example["multiple_choice_answer"], "multiple_choice_answer").strip()
  target = target or most_common(answers)
  image = vt.as_image(example["image"])
  return vt.raw_example(
    prompt(question.lower()),
    image,
    image.shape[:2],
    vt.example_id(example),
    target_text=target,
    answers=answers,
    question=question,
    question_id=int(example["question_id"]),
    answer_type=tasks.as_text(example["answer_type"], "answer_type"),
    question_type=tasks.as_text(example["question_type"], "question_type"),
  )


def _aokvqa_fields(example) -> dict:
  """What both A-OKVQA tasks keep in meta besides their own answer fields."""
  return dict(
    question_id=tasks.as_text(example["question_id"], "question_id"),
    choices=[c.strip() for c in vt.texts(example["choices"], "choices")],
    rationales=vt.texts(example["rationales"], "rationales"),
    difficult_direct_answer=bool(example["difficult_direct_answer"]),
  )


def _aokvqa(example, rng, ctx, prompt):
  """Direct answers: the question as prompt, the most frequent direct answer as target."""
  del rng, ctx
  question = _question(example)
  answers = vt.texts(example["direct_answers"], "direct_answers")
  if not any(a.strip() for a in answers):
    raise vt.Skip("no direct answers (a test question, kept for predictions only)")
  image = vt.as_image(example["image"])
  fields = _aokvqa_fields(example)
  return vt.raw_example(
    prompt(question.lower()),
    image,
    image.shape[:2],
    fields["question_id"],
    target_text=most_common(answers),
    answers=answers,
    question=question,
    **fields,
  )


def _aokvqa_mc(example, rng, ctx, prompt):
  """Multiple choice: the question and its options as prompt, the correct option as target."""
  del rng, ctx
  question = _question(example)
  fields = _aokvqa_fields(example)
  choices = fields["choices"]
  if len(choices) < 2 or not all(choices):
    raise vt.Skip(f"needs at least two non-empty choices, has {choices}")
  k = int(example["correct_choice_idx"])
  if not 0 <= k < len(choices):
    raise vt.Skip(f"no correct choice (correct_choice_idx {k}: a test question)")
  image = vt.as_image(example["image"])
  return vt.raw_example(
    prompt(question.lower(), CHOICE_SEPARATOR.join(choices)),
    image,
    image.shape[:2],
    fields["question_id"],
    target_text=choices[k],
    label=choices[k],
    class_names=tuple(choices),
    question=question,
    direct_answers=vt.texts(example["direct_answers"], "direct_answers"),
    **fields,
  )


# (name, builder, prompt key, fn, output, metric, description)
_TASKS = (
  (
    "vqa_v2",
    vqa_builders.VQA_V2,
    "vqa",
    _vqa_format,
    O.TEXT,
    M.VQA_ACCURACY,
    "VQA 2.0: open-ended questions on COCO; target multiple_choice_answer.",
  ),
  (
    "okvqa",
    vqa_builders.OKVQA,
    "vqa",
    _vqa_format,
    O.TEXT,
    M.VQA_ACCURACY,
    "OK-VQA: outside-knowledge questions on COCO; target the most frequent answer.",
  ),
  (
    "aokvqa",
    vqa_builders.AOKVQA,
    "vqa",
    _aokvqa,
    O.TEXT,
    M.VQA_ACCURACY,
    "A-OKVQA direct answer: target the most frequent of the 10 direct answers.",
  ),
  (
    "aokvqa_mc",
    vqa_builders.AOKVQA,
    "vqa_multiple_choice",
    _aokvqa_mc,
    O.CHOICE,
    M.ACCURACY,
    "A-OKVQA multiple choice: pick the correct one of the example's 4 choices.",
  ),
)

for _name, _builder, _key, _fn, _output, _metric, _description in _TASKS:
  vt.register(
    _name,
    "vision_language",
    _key,
    _fn,
    metric=_metric,
    output=_output,
    builder=_builder,
    splits=SPLITS,
    description=_description,
  )
