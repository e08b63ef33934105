"""Text for the built-in dataset: scene-graph language and templated text-only examples.

Everything here is a deterministic function of a scene's facts and a numpy Generator.

Scene language (for rendered scenes, via `describe_scene(facts_from_render(...), rng)`):
- relationships (subject, predicate, object) for every pair of objects, with the predicate a
  function of the two boxes and depths only (`predicate`): objects whose boxes overlap and
  whose depths differ by at least DEPTH_MARGIN are "in front of" / "behind"; otherwise the
  larger of the horizontal and vertical centre offsets picks "left of"/"right of" or
  "above"/"below". Which object of a pair is the subject is a coin flip.
- captions (three per image), a region caption per object (unique within the image: when two
  objects share colour, shape and ninth of the image an ordinal from the left is used),
  VQA pairs and an image-level class.

VQA answers are short: colour names, shape names ("person" for stick figures), digits for
counts ("0", "2", as VQA 2.0 normalises numbers), "yes"/"no", and one of left, right, top,
bottom, middle for positions. Questions about one object carry its index (else -1), e.g.
for answer-grounded VQA.

Text-only examples (`text_example(rng)`) use TEXT_TASKS; "entailment" and "sentiment" are
the text-classification tasks. Fields: `input` is the main text (statement, sentence,
question, document to summarise, or plain text for language modelling); `context` is a
passage the input refers to (entailment premise, QA paragraph) or ""; `target` is the
expected output ("" for language modelling, whose targets the preprocessor derives); `label`
is the class for classification tasks and "" otherwise. QA answers are spans of the context.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from unified_io.data import scenes

PREDICATES = ("left of", "right of", "above", "below", "in front of", "behind")
INVERSE_PREDICATE = {
  "left of": "right of",
  "right of": "left of",
  "above": "below",
  "below": "above",
  "in front of": "behind",
  "behind": "in front of",
}
PREDICATE_PHRASE = {
  "left of": "to the left of",
  "right of": "to the right of",
  "above": "above",
  "below": "below",
  "in front of": "in front of",
  "behind": "behind",
}
DEPTH_MARGIN = 0.25  # metres; closer depths are not called "in front of"
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles", "person": "people"}
NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ORDINALS = ("first", "second", "third", "fourth", "fifth")
MIXED_CLASS = "mixed shapes"
IMAGE_CLASSES = scenes.SHAPES + (MIXED_CLASS,)
VQA_KINDS = ("count", "color", "shape", "existence", "position")
POSITION_ANSWERS = ("left", "right", "top", "bottom", "middle")
TEXT_TASKS = ("entailment", "sentiment", "question_answering", "summarization", "language_modeling")
TEXT_CLASSIFICATION_TASKS = ("entailment", "sentiment")
# Ninth of the image (row, column) -> phrase.
CELL_PHRASES = (
  ("at the top left", "at the top", "at the top right"),
  ("on the left", "in the middle", "on the right"),
  ("at the bottom left", "at the bottom", "at the bottom right"),
)


@dataclasses.dataclass(frozen=True)
class ObjectFacts:
  shape: str
  color: str
  box: Tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
  depth: float  # metres to the nearest point

  @property
  def name(self) -> str:
    return f"{self.color} {self.shape}"

  @property
  def center(self) -> Tuple[float, float]:
    return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2


@dataclasses.dataclass(frozen=True)
class SceneFacts:
  objects: Tuple[ObjectFacts, ...]
  image_size: int


def facts_from_render(rendered: Dict[str, object]) -> SceneFacts:
  objects = tuple(
    ObjectFacts(shape, color, tuple(float(c) for c in box), float(depth))
    for shape, color, box, depth in zip(
      rendered["shapes"], rendered["colors"], rendered["boxes"], rendered["object_depths"]
    )
  )
  return SceneFacts(objects, int(rendered["image"].shape[0]))


# ----------------------------------------------------------------------------- geometry words


def _boxes_overlap(a: ObjectFacts, b: ObjectFacts) -> bool:
  return a.box[0] < b.box[2] and b.box[0] < a.box[2] and a.box[1] < b.box[3] and b.box[1] < a.box[3]


def predicate(a: ObjectFacts, b: ObjectFacts) -> str:
  """The relation of `a` to `b` ("a is <predicate> b")."""
  if _boxes_overlap(a, b) and abs(a.depth - b.depth) >= DEPTH_MARGIN:
    return "in front of" if a.depth < b.depth else "behind"
  dx = a.center[0] - b.center[0]
  dy = a.center[1] - b.center[1]
  if abs(dx) >= abs(dy):
    return "left of" if dx < 0 else "right of"
  return "above" if dy < 0 else "below"


def position_answer(obj: ObjectFacts, image_size: int) -> str:
  """left/right/top/bottom by the larger offset from the image centre; middle near it."""
  dx = obj.center[0] - image_size / 2
  dy = obj.center[1] - image_size / 2
  if max(abs(dx), abs(dy)) < image_size / 8:
    return "middle"
  if abs(dx) >= abs(dy):
    return "left" if dx < 0 else "right"
  return "top" if dy < 0 else "bottom"


def position_phrase(obj: ObjectFacts, image_size: int) -> str:
  column = min(int(obj.center[0] * 3 / image_size), 2)
  row = min(int(obj.center[1] * 3 / image_size), 2)
  return CELL_PHRASES[row][column]


def count_phrase(objects: Sequence[ObjectFacts]) -> str:
  """e.g. "two circles and a square", shapes in SHAPES order."""
  parts = []
  for shape in scenes.SHAPES:
    count = sum(obj.shape == shape for obj in objects)
    if count == 1:
      parts.append(f"a {shape}")
    elif count > 1:
      parts.append(f"{NUMBER_WORDS[count]} {PLURAL[shape]}")
  return _join(parts)


def with_article(phrase: str) -> str:
  return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _join(parts: Sequence[str]) -> str:
  return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _count_of(facts: SceneFacts, shape: Optional[str] = None, color: Optional[str] = None) -> int:
  return sum(
    (shape is None or obj.shape == shape) and (color is None or obj.color == color)
    for obj in facts.objects
  )


# ----------------------------------------------------------------------------- scene language


def relationships(facts: SceneFacts, rng: np.random.Generator) -> List[Tuple[int, str, int]]:
  relations = []
  objects = facts.objects
  for i in range(len(objects)):
    for j in range(i + 1, len(objects)):
      subject, other = (i, j) if rng.random() < 0.5 else (j, i)
      relations.append((subject, predicate(objects[subject], objects[other]), other))
  return relations


def region_captions(facts: SceneFacts) -> List[str]:
  captions = []
  for i, obj in enumerate(facts.objects):
    phrase = position_phrase(obj, facts.image_size)
    twins = [j for j, other in enumerate(facts.objects) if other.name == obj.name and j != i]
    if not any(position_phrase(facts.objects[j], facts.image_size) == phrase for j in twins):
      captions.append(f"{with_article(obj.name)} {phrase} of the image")
      continue
    # Same colour, shape and ninth: tell them apart by their order from the left.
    order = sorted(twins + [i], key=lambda k: (facts.objects[k].center[0], k))
    rank = order.index(i)
    if rank == 0:
      captions.append(f"the leftmost {obj.name}")
    elif rank == len(order) - 1:
      captions.append(f"the rightmost {obj.name}")
    else:
      captions.append(f"the {ORDINALS[rank]} {obj.name} from the left")
  return captions


def captions(
  facts: SceneFacts, relations: Sequence[Tuple[int, str, int]], rng: np.random.Generator
) -> List[str]:
  """Three captions: a relation, an inventory from left to right, and the counts."""
  objects = facts.objects
  if relations:
    subject, relation, other = relations[rng.integers(len(relations))]
    first = (
      f"{with_article(objects[subject].name)} {PREDICATE_PHRASE[relation]} "
      f"{with_article(objects[other].name)}"
    )
  else:
    first = (
      f"{with_article(objects[0].name)} "
      f"{position_phrase(objects[0], facts.image_size)} of the image"
    )
  left_to_right = sorted(objects, key=lambda obj: obj.center[0])
  noun = "object" if len(objects) == 1 else "objects"
  inventory = f"{NUMBER_WORDS[len(objects)]} {noun}: " + _join(
    [with_article(obj.name) for obj in left_to_right]
  )
  return [first, inventory, f"an image of {count_phrase(objects)}"]


def vqa_pairs(facts: SceneFacts, rng: np.random.Generator) -> List[Dict[str, object]]:
  pairs = []

  def add(question, answer, kind, index=-1):
    pairs.append(dict(question=question, answer=answer, kind=kind, object_index=index))

  objects = facts.objects
  present = [shape for shape in scenes.SHAPES if _count_of(facts, shape=shape)]
  absent = [shape for shape in scenes.SHAPES if shape not in present]
  asked = present + ([absent[rng.integers(len(absent))]] if absent else [])
  for shape in asked:
    add(f"how many {PLURAL[shape]} are there?", str(_count_of(facts, shape=shape)), "count")
  add("how many objects are there?", str(len(objects)), "count")
  for i, obj in enumerate(objects):
    if _count_of(facts, shape=obj.shape) == 1:
      add(f"what color is the {obj.shape}?", obj.color, "color", i)
    if _count_of(facts, color=obj.color) == 1:
      add(f"what shape is the {obj.color} object?", obj.shape, "shape", i)
  for i, obj in enumerate(objects):
    if _count_of(facts, shape=obj.shape, color=obj.color) == 1:
      add(f"where is the {obj.name}?", position_answer(obj, facts.image_size), "position", i)
  shown = int(rng.integers(len(objects)))
  add(f"is there {with_article(objects[shown].name)}?", "yes", "existence", shown)
  missing = [
    (color, shape)
    for color in scenes.COLORS
    for shape in scenes.SHAPES
    if not _count_of(facts, color=color, shape=shape)
  ]
  color, shape = missing[rng.integers(len(missing))]
  add(f"is there {with_article(f'{color} {shape}')}?", "no", "existence")
  return pairs


def image_class(facts: SceneFacts) -> str:
  """The shape of a strict majority of the objects, else MIXED_CLASS."""
  for shape in scenes.SHAPES:
    if 2 * _count_of(facts, shape=shape) > len(facts.objects):
      return shape
  return MIXED_CLASS


def describe_scene(facts: SceneFacts, rng: np.random.Generator) -> Dict[str, object]:
  relations = relationships(facts, rng)
  return {
    "relationships": relations,
    "captions": captions(facts, relations, rng),
    "region_captions": region_captions(facts),
    "vqa": vqa_pairs(facts, rng),
    "image_class": image_class(facts),
  }


# ----------------------------------------------------------------------------- text-only tasks

SENTIMENT_SUBJECTS = (
  "the movie",
  "this book",
  "the concert",
  "our hotel room",
  "the new phone",
  "the soup",
  "the game",
  "the lecture",
  "the painting",
  "the red chair",
)
SENTIMENT_WORDS = {
  "positive": ("wonderful", "great", "lovely", "excellent", "delightful", "good", "fun"),
  "negative": ("terrible", "awful", "boring", "bad", "dull", "horrible", "disappointing"),
}
SENTIMENT_TEMPLATES = (
  "{subject} was {adverb}{negation}{word}.",
  "i thought {subject} was {adverb}{negation}{word}.",
  "to be honest, {subject} was {negation}{word}.",
)
SENTIMENT_CLOSINGS = {
  "positive": ("i would recommend it.", "we enjoyed every minute."),
  "negative": ("i would not recommend it.", "what a waste of time."),
}
LM_SUBJECTS = (
  "the old man",
  "a young girl",
  "my neighbor",
  "the teacher",
  "a small dog",
  "the farmer",
  "our team",
  "the children",
  "a tall woman",
  "the cat",
)
LM_VERBS = (
  "walked to",
  "looked at",
  "painted",
  "found",
  "carried",
  "cleaned",
  "visited",
  "watched",
  "built",
  "opened",
)
LM_OBJECTS = (
  "the red door",
  "a blue box",
  "the market",
  "the garden",
  "an old house",
  "the green field",
  "a yellow boat",
  "the river",
  "the school",
  "a white fence",
)
LM_ADJUNCTS = (
  " in the morning",
  " after lunch",
  " on sunday",
  " before the rain",
  " with a smile",
  " near the station",
  " every day",
  " late at night",
  "",
  "",
)
SUMMARY_OPENINGS = (
  "this picture was taken in a quiet room.",
  "the photo shows a gray floor.",
  "here is a description of a small scene.",
)
SUMMARY_REMARKS = (
  "it looks {adjective}.",
  "it seems {adjective} in the light.",
  "the surface is {adjective}.",
)
SUMMARY_ADJECTIVES = ("shiny", "old", "new", "bright", "clean", "dusty", "smooth")


def _pick(rng: np.random.Generator, options: Sequence):
  return options[rng.integers(len(options))]


def random_facts(
  rng: np.random.Generator, image_size: int = 64, max_objects: int = 4
) -> SceneFacts:
  """Facts without rendering: distinct names and distinct whole-metre depths, so every
  sentence the text tasks derive (nearest object, one object per name) is unambiguous."""
  count = int(rng.integers(2, max_objects + 1))
  names = rng.choice(len(scenes.COLORS) * len(scenes.SHAPES), size=count, replace=False)
  depths = rng.choice(np.arange(2, 10), size=count, replace=False)
  objects = []
  for name, depth in zip(names, depths):
    half = float(rng.uniform(3, 9))
    cx, cy = (float(rng.uniform(half, image_size - half)) for _ in range(2))
    color = scenes.COLORS[name // len(scenes.SHAPES)]
    shape = scenes.SHAPES[name % len(scenes.SHAPES)]
    objects.append(
      ObjectFacts(shape, color, (cx - half, cy - half, cx + half, cy + half), float(depth))
    )
  return SceneFacts(tuple(objects), image_size)


def _object_sentence(obj: ObjectFacts, image_size: int) -> str:
  return (
    f"there is {with_article(obj.name)} {position_phrase(obj, image_size)}, "
    f"{int(obj.depth)} meters away."
  )


def _relation_sentence(a: ObjectFacts, relation: str, b: ObjectFacts) -> str:
  return f"the {a.name} is {PREDICATE_PHRASE[relation]} the {b.name}."


def entailment_example(rng: np.random.Generator) -> Dict[str, str]:
  """Premise: a scene description; statement: a relation, count or existence claim."""
  facts = random_facts(rng)
  relations = relationships(facts, rng)
  stated = [relations[k] for k in sorted(rng.permutation(len(relations))[:3])]
  context = " ".join(
    [_object_sentence(obj, facts.image_size) for obj in facts.objects]
    + [_relation_sentence(facts.objects[s], p, facts.objects[o]) for s, p, o in stated]
  )
  truth = bool(rng.random() < 0.5)
  kind = _pick(rng, ("relation", "count", "existence"))
  if kind == "relation":
    s, p, o = stated[rng.integers(len(stated))]
    a, b = facts.objects[s], facts.objects[o]
    # Swapping the objects and inverting the predicate keeps the meaning: a paraphrase.
    options = (
      [(a, p, b), (b, INVERSE_PREDICATE[p], a)]
      if truth
      else [(a, INVERSE_PREDICATE[p], b), (b, p, a)]
    )
    statement = _relation_sentence(*options[rng.integers(2)])
  elif kind == "count":
    shape = _pick(rng, scenes.SHAPES)
    count = _count_of(facts, shape=shape)
    if not truth:
      count = _pick(rng, [c for c in range(5) if c != count])
    noun = shape if count == 1 else PLURAL[shape]
    statement = f"there {'is' if count == 1 else 'are'} {NUMBER_WORDS[count]} {noun}."
  else:
    if truth:
      name = _pick(rng, facts.objects).name
    else:
      present = {obj.name for obj in facts.objects}
      name = _pick(
        rng, [f"{c} {s}" for c in scenes.COLORS for s in scenes.SHAPES if f"{c} {s}" not in present]
      )
    statement = f"there is {with_article(name)}."
  label = "true" if truth else "false"
  return dict(task="entailment", input=statement, context=context, target=label, label=label)


def sentiment_example(rng: np.random.Generator) -> Dict[str, str]:
  polarity = _pick(rng, ("positive", "negative"))
  negated = bool(rng.random() < 0.25)
  label = {"positive": "negative", "negative": "positive"}[polarity] if negated else polarity
  sentence = _pick(rng, SENTIMENT_TEMPLATES).format(
    subject=_pick(rng, SENTIMENT_SUBJECTS),
    adverb=_pick(rng, ("", "really ", "very ")),
    negation="not " if negated else "",
    word=_pick(rng, SENTIMENT_WORDS[polarity]),
  )
  if rng.random() < 0.5:
    sentence += " " + _pick(rng, SENTIMENT_CLOSINGS[label])
  return dict(task="sentiment", input=sentence, context="", target=label, label=label)


def question_answering_example(rng: np.random.Generator) -> Dict[str, str]:
  facts = random_facts(rng)
  size = facts.image_size
  context = " ".join(_object_sentence(obj, size) for obj in facts.objects)
  candidates = []
  for obj in facts.objects:
    if _count_of(facts, shape=obj.shape) == 1:
      candidates.append((f"what color is the {obj.shape}?", obj.color))
    candidates.append((f"where is the {obj.name}?", position_phrase(obj, size)))
    candidates.append((f"how far away is the {obj.name}?", f"{int(obj.depth)} meters"))
  nearest = min(facts.objects, key=lambda obj: obj.depth)
  candidates.append(("which object is nearest to the camera?", nearest.name))
  question, answer = _pick(rng, candidates)
  return dict(task="question_answering", input=question, context=context, target=answer, label="")


def summarization_example(rng: np.random.Generator) -> Dict[str, str]:
  """A long description -> its counts and the nearest object."""
  facts = random_facts(rng)
  sentences = [_pick(rng, SUMMARY_OPENINGS)]
  for obj in facts.objects:
    sentences.append(_object_sentence(obj, facts.image_size))
    sentences.append(_pick(rng, SUMMARY_REMARKS).format(adjective=_pick(rng, SUMMARY_ADJECTIVES)))
  s, p, o = _pick(rng, relationships(facts, rng))
  sentences.append(_relation_sentence(facts.objects[s], p, facts.objects[o]))
  nearest = min(facts.objects, key=lambda obj: obj.depth)
  summary = f"{count_phrase(facts.objects)}, with the {nearest.name} closest to the camera"
  return dict(task="summarization", input=" ".join(sentences), context="", target=summary, label="")


def language_modeling_example(rng: np.random.Generator) -> Dict[str, str]:
  sentences = [
    f"{_pick(rng, LM_SUBJECTS)} {_pick(rng, LM_VERBS)} {_pick(rng, LM_OBJECTS)}"
    f"{_pick(rng, LM_ADJUNCTS)}."
    for _ in range(int(rng.integers(1, 4)))
  ]
  return dict(task="language_modeling", input=" ".join(sentences), context="", target="", label="")


TEXT_GENERATORS = {
  "entailment": entailment_example,
  "sentiment": sentiment_example,
  "question_answering": question_answering_example,
  "summarization": summarization_example,
  "language_modeling": language_modeling_example,
}


def text_example(rng: np.random.Generator) -> Dict[str, str]:
  """One text-only example of a task drawn uniformly from TEXT_TASKS."""
  return TEXT_GENERATORS[_pick(rng, TEXT_TASKS)](rng)
