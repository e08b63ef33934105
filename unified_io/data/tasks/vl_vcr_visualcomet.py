"""VCR and VisualCOMET as VQA (paper A.1.6): regions enter the prompt as location tokens.

Builders: `uio_vcr` and `uio_visualcomet` (builders/vcr_visualcomet.py, which lists the
release files and fields); splits train and validation (the releases' test labels are
withheld). Group vision_language. The official prompts are Unified-IO's released ones
(Prompt_VCR_QA, Prompt_VCR_QAR, Prompt_VisComet_Before / _Intent / _After of
allenai/unified-io-2's data/prompt_dict.py, kept with its other "original" prompts).

Object references (both datasets index the image's detections: VCR from 0 in its token
lists, VisualCOMET from 1 as numbers in its text): object k is the tag "<class><k + 1>"
("person1", "horse3"), the numbering of VCR's own question_orig and of VisualCOMET's text.
An object's box is written once per example, before its tag at its first mention,
"<loc> <loc> <loc> <loc> person1" (the relationship card's box then name); later mentions
are the tag alone. A list of several indices reads "person1 and person2" ("person1 ,
person2 and person3" for three). Boxes are clipped to the image (detector boxes overrun its
edge by a pixel or so).

vcr_qa (Q->A; Output.CHOICE, Metric.ACCURACY), prompt "vcr_answer":
  'Question: " <question> " Answer: ' (released, trailing space included); the options
  are not in the prompt: the released model generates the answer, and evaluation scores
  the four answers as complete targets (meta class_names). Target: the right answer.
vcr_qar (QA->R; CHOICE, ACCURACY), prompt "vcr_rationale":
  'Question: " <question> " Answer: " <right answer> " Rationale: '; target the right
  rationale ("integrate the rationales into the target text"), class_names the four.
  The first-mention rule runs on from the prompt into each option: an object the prompt
  has not named gets its box in the option (r2c's VCR models see every object the choices
  name, too). Both tasks keep answer_label and rationale_label in meta, and example_id is
  VCR's annot_id, so Q->AR (`qar_accuracy`) joins their results.
visualcomet_before / _intent / _after (Output.TEXT, Metric.CIDER): prompts
  'Event: " <event> <place> " Before, what the person needed to do ?', '... Because, what
  the person wanted to do ?', '... After, what the person will most likely to do ?'
  (released, sic). Target: one inference of the kind drawn at random, meta captions: all of
  that kind. Inferences are free text scored by CIDEr, so their person numbers become tags
  without boxes (location tokens would be n-grams no reference shares). Person numbers are
  whole digit words; one beyond the objects is left as written in an inference (it may
  count something: "buy 2 tickets") and skips the example in the event.

Skips (SkipExample, counted by the pipeline): a reference outside the objects or to a
degenerate box, a label outside the choices, an empty event or inference list.
"""

from __future__ import annotations

import dataclasses
import json
from typing import FrozenSet, List, Mapping, Sequence, Tuple, Union

import numpy as np

from unified_io.data.builders import vcr_visualcomet as builders
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision_logic as vt

Skip = tasks.SkipExample
M, O = tasks.Metric, tasks.Output
SPLITS = {"train": "train", "validation": "validation"}


@dataclasses.dataclass(frozen=True)
class Regions:
  """An example's objects, writing references as tags with the box at the first mention."""

  image: np.ndarray
  names: Tuple[str, ...]
  boxes: np.ndarray  # float64 [N, 4] x1 y1 x2 y2, clipped to the image
  ctx: tasks.TaskContext

  @classmethod
  def of(cls, example: dict, ctx: tasks.TaskContext) -> "Regions":
    image = vt.as_image(example["image"])
    objects = example["objects"]
    names = tuple(
      tasks.as_text(n, "objects/name").strip() for n in np.asarray(objects["name"], object)
    )
    boxes = np.asarray(objects["box"], np.float64).reshape(-1, 4)
    if len(boxes) != len(names):
      raise Skip(f"objects have {len(boxes)} boxes but {len(names)} names")
    height, width = image.shape[:2]
    return cls(image, names, np.clip(boxes, 0.0, [width, height, width, height]), ctx)

  @property
  def image_hw(self):
    return self.image.shape[:2]

  def has(self, index: int) -> bool:
    return 0 <= index < len(self.names)

  def tag(self, index: int) -> str:
    return f"{self.names[index]}{index + 1}"


@dataclasses.dataclass
class Writer:
  """Writes one text of an example; `seen` holds the objects whose box is already written."""

  regions: Regions
  seen: FrozenSet[int] = frozenset()
  boxed: bool = True  # False: tags only

  def fork(self) -> "Writer":
    """A writer that goes on from here (one per option: each continues the prompt)."""
    return Writer(self.regions, self.seen, self.boxed)

  def mention(self, index: int) -> str:
    """Object `index` as its tag, preceded by its box at its first mention."""
    r = self.regions
    if not r.has(index):
      raise Skip(f"object reference {index} outside the image's {len(r.names)} objects")
    if not self.boxed or index in self.seen:
      return r.tag(index)
    if not vt.box_is_valid(r.boxes[index], r.image_hw):
      raise Skip(f"object {r.tag(index)} has a degenerate box")
    self.seen = self.seen | {index}
    return f"{vt.box_text(r.boxes[index], r.image_hw, r.ctx)} {r.tag(index)}"

  def tokens(self, sentence: list) -> str:
    """A VCR token sentence: words as they are, each index list as its joined mentions."""
    words = []
    for token in sentence:
      if isinstance(token, list):
        if token:
          words.append(joined([self.mention(int(i)) for i in token]))
      else:
        words.append(str(token))
    return " ".join(words)

  def numbers(self, text: str, lenient: bool = False) -> str:
    """VisualCOMET text with its person numbers as mentions. A number outside the objects
    skips the example, or with `lenient` stays as written."""

    def replace(match):
      index = int(match.group(1)) - 1
      if not self.regions.has(index):
        if lenient:
          return match.group(0)
        n = len(self.regions.names)
        raise Skip(f"person number {index + 1} outside the image's {n} objects")
      return self.mention(index)

    return builders.PERSON_NUMBER.sub(replace, text)


def joined(parts: Sequence[str]) -> str:
  """ "a", "a and b", "a , b and c" (VCR's sentences are space-tokenised)."""
  if len(parts) < 2:
    return "".join(parts)
  return " , ".join(parts[:-1]) + " and " + parts[-1]


# ------------------------------------------------------------------------------------ VCR


def _sentence(value, field: str) -> list:
  text = tasks.as_text(value, field)
  try:
    tokens = json.loads(text)
  except json.JSONDecodeError:
    raise Skip(f"{field} is not a JSON token list") from None
  if not isinstance(tokens, list):
    raise Skip(f"{field} is not a JSON token list")
  return tokens


def _choices(example: dict, field: str) -> List[list]:
  return [_sentence(v, field) for v in np.asarray(example[field], object).reshape(-1)]


def _label(example: dict, field: str, n: int) -> int:
  label = int(example[field])
  if not 0 <= label < n:
    raise Skip(f"{field} {label} outside the {n} choices")
  return label


def _vcr(example, ctx, prompt, rationale: bool) -> dict:
  writer = Writer(Regions.of(example, ctx))
  answers = _choices(example, "answer_choices")
  rationales = _choices(example, "rationale_choices")
  answer_label = _label(example, "answer_label", len(answers))
  rationale_label = _label(example, "rationale_label", len(rationales))
  question = writer.tokens(_sentence(example["question"], "question"))
  if rationale:
    text = prompt(question, writer.tokens(answers[answer_label]))
    choices, label = rationales, rationale_label
  else:
    text = prompt(question)
    choices, label = answers, answer_label
  options = [writer.fork().tokens(choice) for choice in choices]
  regions = writer.regions
  return vt.raw_example(
    text,
    regions.image,
    regions.image_hw,
    vt.example_id(example),
    target_text=options[label],
    label=options[label],
    class_names=tuple(options),
    answer_label=answer_label,
    rationale_label=rationale_label,
  )


def _vcr_qa(example, rng, ctx, prompt):
  del rng
  return _vcr(example, ctx, prompt, rationale=False)


def _vcr_qar(example, rng, ctx, prompt):
  del rng
  return _vcr(example, ctx, prompt, rationale=True)


def qar_accuracy(
  qa_correct: Union[Sequence[bool], Mapping[str, bool]],
  qar_correct: Union[Sequence[bool], Mapping[str, bool]],
) -> float:
  """VCR's Q->AR: the fraction of questions whose answer and rationale are both right.

  Either two sequences of per-question correctness in the same order, or two mappings
  example_id (annot_id) -> correct, as vcr_qa's and vcr_qar's evaluations give them; the
  mappings must cover the same questions. NaN when there is none.
  """
  if isinstance(qa_correct, Mapping) != isinstance(qar_correct, Mapping):
    raise TypeError("qar_accuracy takes two sequences or two mappings, not one of each")
  if isinstance(qa_correct, Mapping):
    if set(qa_correct) != set(qar_correct):
      unmatched = len(set(qa_correct) ^ set(qar_correct))
      raise ValueError(f"Q->A and QA->R results differ in {unmatched} questions")
    pairs = [(qa_correct[k], qar_correct[k]) for k in qa_correct]
  else:
    if len(qa_correct) != len(qar_correct):
      raise ValueError(f"{len(qa_correct)} Q->A results but {len(qar_correct)} QA->R results")
    pairs = list(zip(qa_correct, qar_correct))
  if not pairs:
    return float("nan")
  return float(np.mean([bool(a) and bool(r) for a, r in pairs]))


# ---------------------------------------------------------------------------- VisualCOMET


def _visualcomet(kind: str):
  def fn(example, rng, ctx, prompt):
    regions = Regions.of(example, ctx)
    event = tasks.as_text(example["event"], "event").strip()
    if not event:
      raise Skip("no event")
    place = tasks.as_text(example["place"], "place").strip()
    tags = Writer(regions, boxed=False)
    texts = [tasks.as_text(v, kind).strip() for v in np.asarray(example[kind], object).ravel()]
    inferences = [tags.numbers(t, lenient=True) for t in texts if t]
    if not inferences:
      raise Skip(f"no {kind} inferences")
    return vt.raw_example(
      prompt(Writer(regions).numbers(event), place),
      regions.image,
      regions.image_hw,
      vt.example_id(example),
      target_text=inferences[vt.pick(len(inferences), rng)],
      captions=inferences,
      kind=kind,
      event=event,
      place=place,
    )

  return fn


# ----------------------------------------------------------------------------- registry

_TASKS = (
  # (name, builder, prompt key, fn, output, metric, description)
  (
    "vcr_qa",
    builders.VCR,
    "vcr_answer",
    _vcr_qa,
    O.CHOICE,
    M.ACCURACY,
    "VCR Q->A: the right one of four answers to a question about the image's regions.",
  ),
  (
    "vcr_qar",
    builders.VCR,
    "vcr_rationale",
    _vcr_qar,
    O.CHOICE,
    M.ACCURACY,
    "VCR QA->R: the right one of four rationales of a question's right answer.",
  ),
  *(
    (
      f"visualcomet_{kind}",
      builders.VISUALCOMET,
      f"visualcomet_{kind}",
      _visualcomet(kind),
      O.TEXT,
      M.CIDER,
      f"VisualCOMET {kind}: what a person of the event and place {what}.",
    )
    for kind, what in (
      ("before", "needed to do before"),
      ("intent", "wants to do"),
      ("after", "will most likely do after"),
    )
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
