"""The Visual Genome tasks (catalogue rows 12, 17, 20, 39, 48, 50, 62 and pre-training P15).

All read `uio_visual_genome` (builders/visual_genome.py: one record per image, boxes as
pixel (x1, y1, x2, y2) of the stored image, names lower-cased, COCO evaluation images left
out, a 2% hash validation split), splits train and validation. Formats are vision_logic.py's
and builtin_vision.py's; "<box>" below is `vision_logic.box_text` (four location tokens).

- vg_inpainting (image_synthesis): one object's box blanked; prompt
  'Filling the blank region " <box> name " ?', target the whole image. IMAGE / IMAGE_PSNR.
- vg_detection (sparse_labelling): "What objects are in the image ?" -> "<box> name <box>
  name ..." over every object, in random order. BOXES / DETECTION_MAP.
- vg_localization (sparse_labelling): 'Which regions does the text " name " describe ?' ->
  every box of that name, each followed by the name. No negatives: VG's labels are not
  exhaustive (about 34k free-form names, synonyms such as man/person/guy each annotated on
  some objects only), so a name missing from an image is not known to be absent from it.
  BOXES / DETECTION_MAP.
- vg_categorization (image_classification): 'What is the category of region " <box> " ?' ->
  the object's name. TEXT / ACCURACY: the names are too many and too open for a choice
  among options (the paper constrains COCO/Open Images categorization to their label sets).
- vg_region_captioning (image_captioning): 'What does the region " <box> " describe ?' ->
  the region's phrase; meta captions = [phrase]. TEXT / CIDER.
- vg_vqa (vision_language): the lower-cased question is the prompt; the target is the
  answer with whitespace collapsed, final periods dropped and lower-cased ("Two." -> "two",
  as VQA v2's answers are written); meta answers = [target], raw_answer. TEXT / VQA_ACCURACY.
- vg_relationship (vision_language): 'What is the relationship between " <box> subject " and
  " <box> object " ?' -> "subject predicate object" (A.1.6 card "flower on vase"). TEXT /
  ACCURACY.
- vg_image_denoising (image_synthesis, pre-training P15): pretraining.py's masked image
  denoising on the image alone ("What is the complete image?"). IMAGE / IMAGE_PSNR.

Objects, regions and relationship ends whose box is not valid for the decoded image are
left out (vision_logic.make_objects); an image with none to use raises SkipExample.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from unified_io.data import prompts
from unified_io.data.builders import visual_genome  # importing registers the builder
from unified_io.data.tasks import pretraining
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision_logic as vt

BUILDER = visual_genome.NAME
SPLITS = {"train": "train", "validation": "validation"}


def vg_objects(example: dict) -> vt.Objects:
  objects = example["objects"]
  names = vt.texts(objects["name"], "objects/name")
  return vt.make_objects(example, vt.sized_image(example), objects["box"], names)


def vg_regions(example: dict) -> vt.Objects:
  """The regions as Objects whose names are their phrases."""
  regions = example["regions"]
  phrases = vt.texts(regions["phrase"], "regions/phrase")
  keep = [bool(p.strip()) for p in phrases]
  return vt.make_objects(example, vt.sized_image(example), regions["box"], phrases, keep)


def _categorization(objs: vt.Objects, rng, ctx, prompt) -> dict:
  raw = vt.object_categorization(objs, rng, ctx, prompt, class_names=())
  del raw["meta"]["class_names"]  # free text: no option set to choose from
  return raw


def _region_captioning(example, rng, ctx, prompt) -> dict:
  regions = vg_regions(example)
  k = vt.pick(len(regions.require().names), rng)
  box, phrase = regions.boxes[k], regions.names[k]
  return vt.raw_example(
    prompt(vt.box_text(box, regions.image_hw, ctx)),
    regions.image,
    regions.image_hw,
    regions.example_id,
    target_text=phrase,
    box=box,
    captions=[phrase],
  )


def vqa_answer(answer: str) -> str:
  return " ".join(answer.split()).rstrip(".").strip().lower()


def _vqa(example, rng, ctx, prompt) -> dict:
  del ctx
  qas = example["qas"]
  pairs = [
    (q, a)
    for q, a in zip(vt.texts(qas["question"], "question"), vt.texts(qas["answer"], "answer"))
    if q.strip() and vqa_answer(a)
  ]
  if not pairs:
    raise vt.Skip("no question with an answer")
  question, answer = pairs[vt.pick(len(pairs), rng)]
  image = vt.sized_image(example)
  target = vqa_answer(answer)
  return vt.raw_example(
    prompt(question.lower()),
    image,
    image.shape[:2],
    vt.example_id(example),
    target_text=target,
    answers=[target],
    question=question,
    raw_answer=answer,
  )


def _relationships(example, image_hw) -> List[Tuple[np.ndarray, str, str, np.ndarray, str]]:
  """(subject box, subject, predicate, object box, object) of the usable relationships."""
  rel = example["relationships"]
  subject_boxes = np.asarray(rel["subject_box"], np.float64).reshape(-1, 4)
  object_boxes = np.asarray(rel["object_box"], np.float64).reshape(-1, 4)
  triples = zip(
    subject_boxes,
    vt.texts(rel["subject_name"], "subject_name"),
    vt.texts(rel["predicate"], "predicate"),
    object_boxes,
    vt.texts(rel["object_name"], "object_name"),
  )
  return vt.usable_relations(triples, image_hw)


def _relationship(example, rng, ctx, prompt) -> dict:
  image = vt.sized_image(example)
  return vt.relationship(
    image,
    vt.example_id(example),
    _relationships(example, image.shape[:2]),
    rng,
    ctx,
    prompt,
    "no relationship with valid boxes, names and predicate",
  )


M, O = tasks.Metric, tasks.Output
# (name, group, prompt key, fn, metric, output, description)
_TASKS = (
  (
    "vg_inpainting",
    "image_synthesis",
    "image_inpainting",
    vt.on_objects(vg_objects, vt.inpainting),
    M.IMAGE_PSNR,
    O.IMAGE,
    "Visual Genome: fill one blanked object box, named in the prompt.",
  ),
  (
    "vg_detection",
    "sparse_labelling",
    "detection",
    vt.on_objects(vg_objects, vt.detection),
    M.DETECTION_MAP,
    O.BOXES,
    "Visual Genome: every object's box and name, in random order.",
  ),
  (
    "vg_localization",
    "sparse_labelling",
    "localization",
    vt.on_objects(vg_objects, vt.localization, class_names=(), negatives=()),
    M.DETECTION_MAP,
    O.BOXES,
    "Visual Genome: the boxes of one object name in the image (no negatives: not exhaustive).",
  ),
  (
    "vg_categorization",
    "image_classification",
    "object_categorization",
    vt.on_objects(vg_objects, _categorization),
    M.ACCURACY,
    O.TEXT,
    "Visual Genome: the name of the object in a box (free text over ~34k names).",
  ),
  (
    "vg_region_captioning",
    "image_captioning",
    "region_captioning",
    _region_captioning,
    M.CIDER,
    O.TEXT,
    "Visual Genome: the description of one region.",
  ),
  (
    "vg_vqa",
    "vision_language",
    "vqa",
    _vqa,
    M.VQA_ACCURACY,
    O.TEXT,
    "Visual Genome QA: the answer to one question (one reference answer).",
  ),
  (
    "vg_relationship",
    "vision_language",
    "relationship",
    _relationship,
    M.ACCURACY,
    O.TEXT,
    "Visual Genome: 'subject predicate object' of two boxed, named objects.",
  ),
)

for _name, _group, _key, _fn, _metric, _output, _description in _TASKS:
  vt.register(
    _name,
    _group,
    _key,
    _fn,
    metric=_metric,
    output=_output,
    builder=BUILDER,
    splits=SPLITS,
    description=_description,
  )

tasks.register(
  tasks.Task(
    name="vg_image_denoising",
    group="image_synthesis",
    builder=BUILDER,
    preprocess=pretraining.image_denoising(pretraining._image_only),
    prompts=prompts.PROMPTS["image_generation"],
    splits=SPLITS,
    output=O.IMAGE,
    metric=M.IMAGE_PSNR,
    description="Pre-training: masked image denoising on Visual Genome's images alone.",
  )
)
