"""Concepts held out of some tasks: GPV-1's COCO-SCE (§4) and the built-in scenes' analogue.

A split definition (`unified_io/data/labels/{coco_sce,builtin_sce}.json`) puts concepts in
disjoint groups, each held out of some task families (COCO-SCE: 10 classes out of VQA and
captioning, 10 out of classification and localization, 60 shared), and names the registered
tasks of each family. A family reads an example's concepts one of two ways:

- "labels" (classification, localization; detection counts as localization): the class
  names of the raw example's meta: "labels" (detection), "class_name" (localization,
  negatives included: the prompt names the class), "label" (categorization).
- "text" (VQA, captioning): word match of concept names, their synonyms and plurals in the
  text. GPV-1: "any annotations containing that word are not used". Matching is on
  lower-cased words ([a-z0-9]+), longest phrase first, and the words of a matched phrase
  are used up: "hot dog" and "hot dogs" mention hot dog, not dog; "teddy bear" is not bear.

Each task of a definition gets a variant, `<task>_sce`, registered beside it. Its train and
validation examples that mention a concept held out of its family are counted skips
(`SkipExample`, one reason per variant); on the test split every example is kept and
tagged in meta: "concepts" (all it mentions), "held_out_concepts" and "concept_split",
"sameCpt" or "newCpt" (GRIT's names for seen / new concepts, which the report shows per
task: unified_io/eval/concept_breakdown.py). Which split it is comes from
TaskContext.split.

What is read: for the training filter, the text the model is trained on (prompt and
target: GPV-1's unit is one annotation, e.g. one of an image's captions); for the test tag,
also the references the metric scores against (meta "captions" and "answers"), so an image
whose reference captions mention a held-out class counts as new.

The variant's splits are its base task's, plus "test": the base's test split, else its
validation split (GPV-1's test images are COCO val). GPV-1 carves its validation set out of
COCO train (80/20); the COCO variants here validate on COCO val's seen part instead.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import re
from typing import Dict, FrozenSet, List, Mapping, Sequence, Tuple

from unified_io.data.tasks import registry as tasks_lib

LABELS_DIR = pathlib.Path(__file__).parent / "labels"
DEFINITIONS = ("coco_sce", "builtin_sce")
FAMILY_KINDS = ("text", "labels")
SAME, NEW = "sameCpt", "newCpt"  # GRIT's partition names (eval/grit/scoring.py PARTITIONS)
SUFFIX = "_sce"
FILTERED_SPLITS = ("train", "validation")
# meta keys holding class names (labels families) and reference texts (text families).
LABEL_KEYS = ("labels", "label", "class_name")
REFERENCE_KEYS = ("captions", "answers")
# Plurals the suffix rules get wrong; a name may be its own plural.
IRREGULAR_PLURALS = {
  "person": "people",
  "mouse": "mice",
  "knife": "knives",
  "sheep": "sheep",
  "skis": "skis",
  "scissors": "scissors",
  "man": "men",
  "woman": "women",
  "child": "children",
}
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> List[str]:
  return _WORD.findall(text.lower())


def plural(word: str) -> str:
  if word in IRREGULAR_PLURALS:
    return IRREGULAR_PLURALS[word]
  if word.endswith(("s", "x", "z", "ch", "sh")):
    return word + "es"
  if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
    return word[:-1] + "ies"
  return word + "s"


@dataclasses.dataclass(frozen=True)
class SplitDefinition:
  name: str
  held_out: Mapping[str, FrozenSet[str]]  # family -> concepts held out of it
  concepts: Tuple[str, ...]  # every concept, held out or shared
  phrases: Mapping[Tuple[str, ...], str]  # word sequence -> the concept it names
  family_kinds: Mapping[str, str]  # family -> "text" or "labels"
  tasks: Mapping[str, str]  # registered task -> family

  def kind(self, family: str) -> str:
    return self.family_kinds[family]

  def mentions_in_text(self, text: str) -> FrozenSet[str]:
    """Concepts the text names: longest phrase first, left to right, words used once."""
    tokens, found, i = words(text), set(), 0
    longest = max(len(p) for p in self.phrases)
    while i < len(tokens):
      for n in range(min(longest, len(tokens) - i), 0, -1):
        concept = self.phrases.get(tuple(tokens[i : i + n]))
        if concept is not None:
          found.add(concept)
          i += n
          break
      else:
        i += 1
    return frozenset(found)

  def mentions(self, raw: dict, family: str, references: bool) -> FrozenSet[str]:
    """Concepts a raw example exposes to `family`; `references`: also its meta references."""
    meta = raw.get("meta", {})
    if self.kind(family) == "labels":
      names = []
      for key in LABEL_KEYS:
        value = meta.get(key)
        if value is not None:
          names += [value] if isinstance(value, str) else list(value)
      return frozenset(n for n in names if n in self.concepts)
    texts = [raw.get("prompt", ""), raw.get("target_text", "")]
    if references:
      for key in REFERENCE_KEYS:
        texts += list(meta.get(key, ()))
    return frozenset().union(*(self.mentions_in_text(t) for t in texts))


def _phrases(concepts: Sequence[str], synonyms: Mapping[str, Sequence[str]], where: str):
  table: Dict[Tuple[str, ...], str] = {}
  for concept in concepts:
    for name in (concept, *synonyms.get(concept, ())):
      tokens = tuple(words(name))
      for form in (tokens, tokens[:-1] + (plural(tokens[-1]),)):
        if table.setdefault(form, concept) != concept:
          raise ValueError(f"{where}: {' '.join(form)!r} names {table[form]} and {concept}")
  return table


def parse(data: Mapping, where: str) -> SplitDefinition:
  """A SplitDefinition from a definition file's JSON; ValueError naming `where` if bad."""
  kinds = dict(data["families"])
  for family, kind in kinds.items():
    if kind not in FAMILY_KINDS:
      raise ValueError(f"{where}: family {family} reads {kind!r}, not one of {FAMILY_KINDS}")
  held: Dict[str, set] = {family: set() for family in kinds}
  concepts: List[str] = []
  for group, spec in data["groups"].items():
    for family in spec["held_out_of"]:
      if family not in kinds:
        raise ValueError(f"{where}: group {group} is held out of unknown family {family!r}")
      held[family] |= set(spec["concepts"])
    repeated = set(concepts) & set(spec["concepts"])
    if repeated:
      raise ValueError(f"{where}: {sorted(repeated)} are in more than one group")
    concepts += spec["concepts"]
  unknown = set(data.get("synonyms", {})) - set(concepts)
  if unknown:
    raise ValueError(f"{where}: synonyms for unknown concepts {sorted(unknown)}")
  for task, family in data["tasks"].items():
    if family not in kinds:
      raise ValueError(f"{where}: task {task} is in unknown family {family!r}")
  return SplitDefinition(
    name=data["name"],
    held_out={f: frozenset(c) for f, c in held.items()},
    concepts=tuple(concepts),
    phrases=_phrases(concepts, data.get("synonyms", {}), where),
    family_kinds=kinds,
    tasks=dict(data["tasks"]),
  )


@functools.lru_cache(maxsize=None)
def load(name: str) -> SplitDefinition:
  path = LABELS_DIR / f"{name}.json"
  if not path.exists():
    raise ValueError(f"No concept split {name!r}: {path} does not exist; known: {DEFINITIONS}")
  with open(path) as f:
    return parse(json.load(f), str(path))


# ------------------------------------------------------------------------- task variants


def variant_name(task: str) -> str:
  return task + SUFFIX


def tag(split: SplitDefinition, family: str, raw: dict) -> dict:
  """The raw example with meta concepts, held_out_concepts and concept_split (in place)."""
  mentioned = split.mentions(raw, family, references=True)
  held = mentioned & split.held_out[family]
  raw["meta"].update(
    concepts=sorted(mentioned),
    held_out_concepts=sorted(held),
    concept_split=NEW if held else SAME,
  )
  return raw


def variant(split: SplitDefinition, base: tasks_lib.Task) -> tasks_lib.Task:
  """`base` with train/validation examples mentioning a held-out concept skipped."""
  family = split.tasks[base.name]
  reason = f"mentions a concept held out of {family} ({split.name})"

  def preprocess(example, rng, ctx):
    # The base's examples, prompts included: Task.prompt of the base names base.name, so
    # text preprocessors (text.prompt, which read ctx.task) must be told the same name.
    if ctx.task != base.name:
      ctx = dataclasses.replace(ctx, task=base.name)
    raw = base.preprocess(example, rng, ctx)
    if ctx.split in FILTERED_SPLITS:
      if split.mentions(raw, family, references=False) & split.held_out[family]:
        raise tasks_lib.SkipExample(reason)
    return tag(split, family, raw)

  splits = dict(base.splits)
  if "test" not in splits and "validation" not in splits:
    raise ValueError(f"{split.name}: task {base.name} has no test or validation split to test on")
  splits.setdefault("test", splits.get("validation"))
  held = ", ".join(sorted(split.held_out[family])) or "nothing"
  return dataclasses.replace(
    base,
    name=variant_name(base.name),
    preprocess=preprocess,
    splits=splits,
    description=f"{base.description} {split.name}: {held} held out of {family} in train/val.",
  )


def register_variants(name: str) -> List[str]:
  split = load(name)
  known = tasks_lib.all_tasks()
  missing = sorted(set(split.tasks) - set(known))
  if missing:
    raise ValueError(f"{name}: tasks {missing} are not registered")
  return [tasks_lib.register(variant(split, known[t])).name for t in split.tasks]


# Variant name -> (split definition name, base task name), for every definition.
VARIANTS: Dict[str, Tuple[str, str]] = {}
for _name in DEFINITIONS:
  for _base in load(_name).tasks:
    VARIANTS[variant_name(_base)] = (_name, _base)
  register_variants(_name)


def variants(name: str) -> List[str]:
  """The registered variant tasks of split definition `name` (a mixture's candidates)."""
  load(name)
  return [v for v, (split, _) in VARIANTS.items() if split == name]


def base_task(task: tasks_lib.Task) -> tasks_lib.Task:
  """The task a variant filters (its records and size), or the task itself."""
  if task.name in VARIANTS:
    return tasks_lib.get(VARIANTS[task.name][1])
  return task
