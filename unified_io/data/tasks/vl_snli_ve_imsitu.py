"""Vision & language tasks on SNLI-VE and imSitu/SWiG, asked as VQA (paper A.1.6).

The paper: "SNLI-VE ... where we integrate the entailed text into an input question" and
"imSitu ..., where we treat predicting the verb and then the related slots as separate VQA
questions". The question wording is Unified-IO's released prompt list (prompts.py keys
"visual_entailment", "situation_verb", "situation_role"); records are those of
`builders/snli_ve_imsitu.py`.

- snli_ve (uio_snli_ve): prompt 'Can image and text " <premise caption> " imply text
  " <hypothesis> " ?' over the Flickr30k image; target "entailment", "neutral" or
  "contradiction". A choice among the three (meta class_names), scored by accuracy. The
  premise caption is in the prompt as the released template has it (SNLI-VE's benchmark
  premise is the image alone; the template's first slot is SNLI's caption).
- imsitu_verb (uio_imsitu): prompt "What is the salient activity of the image ?"; target the
  verb as imSitu names it ("jumping"). Free text scored by accuracy (the paper does not
  constrain VQA answers to a list, so no 504-way choice); SWiG's verb accuracy.
- imsitu_roles (uio_imsitu): one role of the image's verb, drawn among the roles some
  annotator filled: prompt 'Given the image and salient activity is " <verb> ", what is the
  situation in terms of " <role> " ?'; target that role's noun (a synset's first gloss) most
  annotators gave, ties to the earlier frame; meta "answers" = every annotator's noun, so
  exact match is imSitu's "value" measure (right if it matches any of the three). Roles no
  annotator filled ("" = no filler) are not asked; an image with none is skipped. SWiG's
  box of the role, in pixels, is meta "box" (None where the role is not grounded or the box
  is degenerate): the paper's imSitu questions name no region.
"""

from __future__ import annotations

import collections

import numpy as np

from unified_io.data.builders import snli_ve_imsitu as builders
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision_logic as vt

GROUP = "vision_language"
LABELS = builders.LABELS


def _text(value, field: str) -> str:
  return tasks.as_text(value, field).strip()


def _snli_ve(example, rng, ctx, prompt):
  del rng, ctx
  label = int(example["label"])
  if not 0 <= label < len(LABELS):
    raise vt.Skip(f"label {label} outside the {len(LABELS)} classes")
  premise = _text(example["premise"], "premise")
  hypothesis = _text(example["hypothesis"], "hypothesis")
  if not hypothesis:
    raise vt.Skip("empty hypothesis")
  if not premise:
    raise vt.Skip("empty premise caption")
  image = vt.as_image(example["image"])
  return vt.raw_example(
    prompt(premise, hypothesis),
    image,
    image.shape[:2],
    vt.example_id(example),
    target_text=LABELS[label],
    label=LABELS[label],
    class_names=LABELS,
    premise=premise,
    hypothesis=hypothesis,
  )


def _verb(example) -> str:
  verb = _text(example["verb"], "verb")
  if not verb:
    raise vt.Skip("no verb")
  return verb


def _imsitu_verb(example, rng, ctx, prompt):
  del rng, ctx
  verb = _verb(example)
  image = vt.as_image(example["image"])
  return vt.raw_example(
    prompt(), image, image.shape[:2], vt.example_id(example), target_text=verb, verb=verb
  )


def _filled_roles(example):
  """(role, box, [annotators' nouns in frame order, "" = none]) of the roles at least one
  annotator filled, in the verb's role order."""
  frames = example["frames"]
  nouns = collections.defaultdict(list)
  order = np.argsort(np.asarray(frames["frame"]).reshape(-1), kind="stable")
  for i in order:
    role = _text(frames["role"][i], "frames/role")
    nouns[role].append(_text(frames["noun"][i], "frames/noun"))
  roles = example["roles"]
  out = []
  for role, box in zip(roles["role"], np.asarray(roles["box"]).reshape(-1, 4)):
    role = _text(role, "role")
    if any(nouns.get(role, ())):
      out.append((role, box, nouns[role]))
  return out


def _imsitu_roles(example, rng, ctx, prompt):
  del ctx
  verb = _verb(example)
  filled = _filled_roles(example)
  if not filled:
    raise vt.Skip("no role has a noun")
  role, box, names = filled[vt.pick(len(filled), rng)]
  named = [n for n in names if n]
  # Counter keeps first-seen order among equal counts: ties go to the earlier frame.
  target = collections.Counter(named).most_common(1)[0][0]
  image = vt.as_image(example["image"])
  hw = image.shape[:2]
  return vt.raw_example(
    prompt(verb, role),
    image,
    hw,
    vt.example_id(example),
    target_text=target,
    answers=list(dict.fromkeys(named)),
    verb=verb,
    role=role,
    frame_nouns=names,
    box=np.asarray(box, np.float64) if vt.box_is_valid(box, hw) else None,
  )


M, O = tasks.Metric, tasks.Output
vt.register(
  "snli_ve",
  GROUP,
  "visual_entailment",
  _snli_ve,
  metric=M.ACCURACY,
  output=O.CHOICE,
  builder=builders.SNLI_VE,
  description="SNLI-VE: does the image and its caption imply the hypothesis (3 labels).",
)
vt.register(
  "imsitu_verb",
  GROUP,
  "situation_verb",
  _imsitu_verb,
  metric=M.ACCURACY,
  output=O.TEXT,
  builder=builders.IMSITU,
  description="imSitu/SWiG: the image's salient activity (one of 504 verbs), as VQA.",
)
vt.register(
  "imsitu_roles",
  GROUP,
  "situation_role",
  _imsitu_roles,
  metric=M.EXACT_MATCH,
  output=O.TEXT,
  builder=builders.IMSITU,
  description="imSitu/SWiG: the noun filling one role of the image's verb, as VQA.",
)
