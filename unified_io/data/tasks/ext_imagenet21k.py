"""ImageNet-21K-P winter21 (`uio_imagenet21k`, builders/imagenet21k.py): classification,
generation from the class name, and the pre-training objectives on image + class.

Records: image, label (0..10,449, the sorted wnids), wnid, file_name ("<wnid>/<file>", the
example id). The readable name of label k is row k of
`labels/imagenet21k_winter21_names.txt` (WordNet 3.0 lemmas; the rule is `class_names` below
and the table's header). Tasks (splits train and validation):

- imagenet21k_classification (image_classification, prompt "image_classification"): the
  image and "What is this in the image ?"; target the class name, e.g. "tench". Output TEXT,
  metric ACCURACY (exact match of the generated name). Not CHOICE, as the 1k classification
  sets are: CHOICE scores every one of meta["class_names"] as a complete target, 10,450
  decoder passes per example, which no evaluation can afford; free text keeps one decode
  per example, and the names are all distinct, so an exact match names one class.
- imagenet21k_image_generation (image_synthesis, prompt "image_generation"):
  'What is the complete image? Text: " tench " .' -> the image (float [0, 1], no input
  image). Output IMAGE, metric IMAGE_PSNR.
- imagenet21k_text_denoising (language_modelling; A.2 names Imagenet21k as image + class
  text): pretraining.text_denoising on "An image of <name>", span-corrupted, the image as
  input (dropped 10% of the time). Output TEXT, metric EXACT_MATCH.
- imagenet21k_image_denoising (image_synthesis; A.2: image denoising uses the same class
  data): pretraining.image_denoising, 75% of the patches hidden, the class name in the
  prompt (dropped 10% of the time). Output IMAGE, metric IMAGE_PSNR.

Bad records raise SkipExample: a label outside the table, a wnid that is not the label's
(a dataset built with another table: rebuild), an image that is not uint8 [H, W, 3].
"""

from __future__ import annotations

import collections
import re
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from unified_io.data import prompts
from unified_io.data.builders import imagenet21k
from unified_io.data.tasks import classification
from unified_io.data.tasks import pretraining
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision_logic as vt

BUILDER = imagenet21k.NAME
TABLE = imagenet21k.name_table_rows()
WNIDS = tuple(wnid for wnid, _ in TABLE)
NAMES = tuple(name for _, name in TABLE)
SPLITS = {"train": "train", "validation": "validation"}
TITLE = "ImageNet-21K-P winter21 (10,450 classes)"


def read_record(example: dict) -> Tuple[np.ndarray, str, str]:
  """(uint8 [H, W, 3] image, readable class name, file_name) of one record."""
  label = np.asarray(example["label"])
  if label.size != 1:
    raise tasks.SkipExample(f"label is not a single class: shape {label.shape}")
  label = int(label.reshape(()))
  if not 0 <= label < len(NAMES):
    raise tasks.SkipExample(f"label {label} outside the {len(NAMES)} classes of {BUILDER}")
  wnid = tasks.as_text(example["wnid"], "wnid")
  if wnid != WNIDS[label]:
    raise tasks.SkipExample(f"wnid {wnid} is not label {label}'s ({WNIDS[label]}): rebuild")
  image = vt.as_image(example["image"])
  return image, NAMES[label], tasks.as_text(example["file_name"], "file_name")


def _read_texts(example: dict):
  image, name, record_id = read_record(example)
  return image, [name], record_id


def _classification(example, rng, ctx, prompt):
  del rng, ctx
  image, name, record_id = read_record(example)
  wnid = WNIDS[int(np.asarray(example["label"]).reshape(()))]
  return vt.raw_example(
    prompt(), image, image.shape[:2], record_id, target_text=name, label=name, wnid=wnid
  )


def _image_generation(example, rng, ctx, prompt):
  del ctx
  image, name, record_id = read_record(example)
  raw = vt.image_generation(image, [name], record_id, rng, prompt)
  raw["meta"]["label"] = name  # which class the picture shows, beside the caption
  return raw


M, O = tasks.Metric, tasks.Output
# No `size`: the dataset catalogue holds the paper-unit sizes the mixtures use.
vt.register(
  "imagenet21k_classification",
  "image_classification",
  "image_classification",
  _classification,
  metric=M.ACCURACY,
  output=O.TEXT,
  builder=BUILDER,
  splits=dict(SPLITS),
  description=f"{TITLE}: image -> class name (free text, exact match).",
)
vt.register(
  "imagenet21k_image_generation",
  "image_synthesis",
  "image_generation",
  _image_generation,
  metric=M.IMAGE_PSNR,
  output=O.IMAGE,
  builder=BUILDER,
  splits=dict(SPLITS),
  description=f"{TITLE}: image from its class name as the caption.",
)
for _name, _group, _preprocess, _key, _metric, _output, _what in (
  (
    "imagenet21k_text_denoising",
    "language_modelling",
    pretraining.text_denoising(_read_texts),
    "span_denoising",
    M.EXACT_MATCH,
    O.TEXT,
    "text",
  ),
  (
    "imagenet21k_image_denoising",
    "image_synthesis",
    pretraining.image_denoising(_read_texts),
    "image_generation",
    M.IMAGE_PSNR,
    O.IMAGE,
    "masked image",
  ),
):
  tasks.register(
    tasks.Task(
      name=_name,
      group=_group,
      builder=BUILDER,
      preprocess=_preprocess,
      prompts=prompts.PROMPTS[_key],
      metric=_metric,
      output=_output,
      splits=dict(SPLITS),
      description=f"Pre-training: {_what} denoising on {BUILDER} ({TITLE}).",
    )
  )
TASK_NAMES = (
  "imagenet21k_classification",
  "imagenet21k_image_generation",
  "imagenet21k_text_denoising",
  "imagenet21k_image_denoising",
)


# ------------------------------------------------------------- the name table and its rule


class Synset(NamedTuple):
  """What the naming rule reads of one WordNet 3.0 noun synset."""

  lemmas: Tuple[str, ...]  # in WordNet order, spaces for underscores
  hypernyms: Tuple[str, ...] = ()  # wnids of its '@' and '@i' pointers, in file order
  holonyms: Tuple[str, ...] = ()  # wnids of its member holonyms ('#m': a genus, a family)
  gloss: str = ""


def read_wordnet_nouns(path: str) -> Dict[str, Synset]:
  """{wnid: Synset} of WordNet 3.0's data.noun (wnid = "n" + the 8-digit synset offset)."""
  synsets = {}
  with open(path, encoding="utf-8") as f:
    for line in f:
      if line.startswith(" "):  # the licence header
        continue
      head, _, gloss = line.partition(" | ")
      fields = head.split()
      count = int(fields[3], 16)
      lemmas = tuple(fields[4 + 2 * i].replace("_", " ") for i in range(count))
      at = 4 + 2 * count
      pointers = [fields[at + 1 + 4 * i : at + 4 + 4 * i] for i in range(int(fields[at]))]
      synsets["n" + fields[0]] = Synset(
        lemmas,
        tuple("n" + o for s, o, pos in pointers if s in ("@", "@i") and pos == "n"),
        tuple("n" + o for s, o, pos in pointers if s == "#m" and pos == "n"),
        gloss.strip(),
      )
  return synsets


def _key(name: str) -> str:
  return name.casefold()  # names must differ ignoring case too


def _clashes(names: Mapping[str, str]) -> List[List[str]]:
  """Groups (wnid order) of the classes that share a name, ignoring case."""
  groups = collections.defaultdict(list)
  for wnid, name in names.items():
    groups[_key(name)].append(wnid)
  return [group for group in groups.values() if len(group) > 1]


def _ancestors(wnid: str, synsets: Mapping[str, Synset]) -> List[str]:
  """First lemmas up the first-hypernym chain, nearest first."""
  out, seen = [], {wnid}
  while synsets[wnid].hypernyms and synsets[wnid].hypernyms[0] not in seen:
    wnid = synsets[wnid].hypernyms[0]
    seen.add(wnid)
    out.append(synsets[wnid].lemmas[0])
  return out


def gloss_clause(gloss: str) -> str:
  """The gloss up to its first ';' (examples follow), without its "(asides)"."""
  return " ".join(re.sub(r"\([^()]*\)", " ", gloss.split(";")[0]).split())


def _other_lemma(group: Sequence[str], names: Dict[str, str], synsets, used: set) -> None:
  for wnid in group:
    lemmas = synsets[wnid].lemmas
    free = [lemma for lemma in lemmas[1:] if _key(lemma) not in used]
    if free:
      word = re.compile(rf"\b{re.escape(lemmas[0])}\b", re.IGNORECASE)
      names[wnid] = next((lemma for lemma in free if word.search(lemma)), free[0])
      used.add(_key(names[wnid]))


def _qualified(group: Sequence[str], names, qualifiers: Sequence[Optional[str]], used) -> bool:
  """Gives each class "name (qualifier)" if all are given, distinct and new; else False."""
  keys = [_key(q) if q else None for q in qualifiers]
  new = [f"{names[w]} ({q})" for w, q in zip(group, qualifiers)]
  if None in keys or len(set(keys)) < len(keys) or any(_key(n) in used for n in new):
    return False
  for wnid, name in zip(group, new):
    names[wnid] = name
    used.add(_key(name))
  return True


def _hypernym(group: Sequence[str], names: Dict[str, str], synsets, used: set) -> None:
  chains = [_ancestors(w, synsets) for w in group]
  for depth in range(max(len(c) for c in chains)):
    if _qualified(group, names, [c[depth] if depth < len(c) else None for c in chains], used):
      return


def _last_resort(group: Sequence[str], names: Dict[str, str], synsets, used: set) -> None:
  def unique(values):  # each value where no other class of the group has it
    counts = collections.Counter(_key(v) for v in values if v)
    return [v if v and counts[_key(v)] == 1 else None for v in values]

  def genus(wnid):
    holonyms = synsets[wnid].holonyms
    return synsets[holonyms[0]].lemmas[0] if holonyms else None

  parents = unique([(_ancestors(w, synsets) or [None])[0] for w in group])
  genera = unique([genus(w) for w in group])
  choices = [p or g or gloss_clause(synsets[w].gloss) for w, p, g in zip(group, parents, genera)]
  _qualified(group, names, choices, used)


def class_names(
  wnids: Sequence[str], synsets: Mapping[str, Synset], seeds: Optional[Mapping[str, str]] = None
) -> Tuple[str, ...]:
  """The readable name of each class: the rule of labels/imagenet21k_winter21_names.txt.

  1. The synset's first lemma, verbatim. The classes of ImageNet 2012 (`seeds`) keep the
     names of that table instead (distinct already): where one shares its name with other
     classes, they give way, so a class has one name across both datasets.
  2. Classes sharing a name (ignoring case) that have another lemma take it: the first one
     no class of the table has as its name or first lemma, preferring one that contains the
     first lemma as a word ("plant, works, industrial plant" -> "industrial plant"). Those
     without keep the name; if one is left with it, the clash is settled.
  3. Classes still sharing it get "name (hypernym)": the first lemma of their ancestors at
     the nearest level where these all differ ("ball (game equipment)", "ball (plaything)").
  4. Where no level does (the same parent all the way up): each takes its parent's lemma if
     no other of them shares that parent, else its genus (the first member holonym) if no
     other shares that, else the first clause of its WordNet definition, without asides.
  """
  seeds = seeds or {}
  names = {w: seeds.get(w, synsets[w].lemmas[0]) for w in wnids}
  used = {_key(n) for n in names.values()} | {_key(synsets[w].lemmas[0]) for w in wnids}
  for step in (_other_lemma, _hypernym, _last_resort):
    for group in _clashes(names):
      movable = [w for w in group if w not in seeds]
      if movable:
        step(movable, names, synsets, used)
  left = _clashes(names)
  if left:
    raise ValueError(f"class names still shared: {[[names[w] for w in g] for g in left[:5]]}")
  return tuple(names[w] for w in wnids)


def write_name_table(synset_list: str, data_noun: str, out: str, header: str) -> None:
  """Writes the table: wnids of `synset_list` (one a line), names by `class_names`.

  The shipped table: synset_list = timm 1.0.31's timm/data/_info/
  imagenet21k_miil_w21_synsets.txt, data_noun = WordNet 3.0's data.noun (Debian wordnet-base:
  /usr/share/wordnet/data.noun), header = the table's own '#' lines.
  """
  with open(synset_list, encoding="utf-8") as f:
    wnids = [line.strip() for line in f if line.strip()]
  seeds = dict(classification.imagenet_table())
  names = class_names(wnids, read_wordnet_nouns(data_noun), seeds)
  with open(out, "w", encoding="utf-8") as f:
    f.write(header)
    f.writelines(f"{wnid}\t{name}\n" for wnid, name in zip(wnids, names))
