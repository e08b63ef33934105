"""The vision tasks of the paper's Table 1 on the built-in scenes.

Importing this module registers the `builtin_*` tasks on `uio_builtin_scenes/scenes`
(features in `builtin_dataset.py`), in the target formats of vision_logic.py, whose task
logic they share with the real-dataset tasks of vision.py and detection.py. What is left here
reads the scenes' own fields (instance_ids, persons, region captions, vqa, relationships).
"""

from __future__ import annotations


from typing import List, Tuple

import numpy as np

from unified_io.common import dense_labels
from unified_io.data import scene_text
from unified_io.data import scenes
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import instance_logic
from unified_io.data.tasks import vision_logic as vt


# ----------------------------------------------------------------- built-in scene tasks


def _captions(example) -> List[str]:
  return [tasks.as_text(c, "captions") for c in example["captions"]]


def _instance_masks(example, objs: vt.Objects) -> List[np.ndarray]:
  """Visible-pixel mask of each kept object (instance_ids == example index + 1)."""
  ids = np.asarray(example["instance_ids"])
  if ids.shape != objs.image_hw:
    raise vt.Skip(f"instance_ids {ids.shape} does not match the image {objs.image_hw}")
  return [ids == i + 1 for i in objs.index]


def _builtin_image_generation(example, rng, ctx, prompt):
  del ctx
  return vt.image_generation(
    vt.as_image(example["image"]), _captions(example), vt.example_id(example), rng, prompt
  )


def _builtin_instances(example):
  """(objects, visible-pixel mask of each kept object)."""
  objs = vt.builtin_objects(example).require()
  return objs, _instance_masks(example, objs)


def _builtin_segmentation_generation(example, rng, ctx, prompt):
  del ctx
  return instance_logic.segmentation_generation(*_builtin_instances(example), rng, prompt)


def _builtin_keypoints(example, rng, ctx, prompt):
  objs = vt.builtin_objects(example)
  persons = example["persons"]
  points = np.asarray(persons["keypoints"], np.float64).reshape(-1, scenes.NUM_KEYPOINTS, 2)
  visibility = np.asarray(persons["visibility"], np.int64).reshape(-1, scenes.NUM_KEYPOINTS)
  owners = np.asarray(persons["object_index"], np.int64).reshape(-1)
  if not len(owners):
    raise vt.Skip("no person in the image")
  candidates = [
    p for p in range(len(owners)) if visibility[p].any() and objs.position(owners[p]) is not None
  ]
  if not candidates:
    raise vt.Skip("no person with a valid box and labelled keypoints")
  p = candidates[vt.pick(len(candidates), rng)]
  if not np.isin(visibility[p], (0, 1, 2)).all():
    raise vt.Skip(f"keypoint visibility outside COCO's 0, 1, 2: {visibility[p].tolist()}")
  labelled = visibility[p] > 0
  if not all(vt.point_is_inside(point, objs.image_hw) for point in points[p][labelled]):
    raise vt.Skip("a labelled keypoint lies outside the image")
  box = objs.boxes[objs.position(owners[p])]
  area = int(np.asarray(example["objects"]["area"]).reshape(-1)[owners[p]])
  return vt.raw_example(
    prompt(vt.box_text(box, objs.image_hw, ctx)),
    objs.image,
    objs.image_hw,
    objs.example_id,
    target_text=vt.keypoints_text(points[p], visibility[p], objs.image_hw, ctx),
    keypoints=points[p],
    visibility=visibility[p],
    box=box,
    area=area,
  )


def _builtin_region_texts(example, objs: vt.Objects) -> List[Tuple[int, str]]:
  """(kept position, region caption) of objects with a valid box and a caption."""
  captions = [tasks.as_text(c, "region_caption") for c in example["objects"]["region_caption"]]
  pairs = [(k, captions[i]) for k, i in enumerate(objs.index) if i < len(captions)]
  pairs = [(k, caption) for k, caption in pairs if caption.strip()]
  if not pairs:
    raise vt.Skip("no object with a valid box and a region caption")
  return pairs


def _builtin_refexp(example, rng, ctx, prompt):
  objs = vt.builtin_objects(example)
  pairs = _builtin_region_texts(example, objs)
  k, expression = pairs[vt.pick(len(pairs), rng)]
  return vt.refexp(objs.image, objs.boxes[k], expression, objs.example_id, ctx, prompt)


def _builtin_region_captioning(example, rng, ctx, prompt):
  objs = vt.builtin_objects(example)
  pairs = _builtin_region_texts(example, objs)
  k, caption = pairs[vt.pick(len(pairs), rng)]
  return vt.raw_example(
    prompt(vt.box_text(objs.boxes[k], objs.image_hw, ctx)),
    objs.image,
    objs.image_hw,
    objs.example_id,
    target_text=caption,
    box=objs.boxes[k],
    captions=[caption],
  )


def _builtin_depth(example, rng, ctx, prompt):
  del rng
  return vt.depth_estimation(
    vt.as_image(example["image"]), example["depth"], vt.example_id(example), ctx, prompt
  )


def _builtin_normals(example, rng, ctx, prompt):
  del rng, ctx
  image = vt.as_image(example["image"])
  normals = np.asarray(example["normals"], np.float32)
  if normals.shape != image.shape[:2] + (3,):
    raise vt.Skip(f"normals {normals.shape} do not match the image {image.shape[:2]}")
  bad = int(np.sum(~np.isfinite(normals).all(axis=-1)))
  if bad:
    raise vt.Skip(f"normals have {bad} non-finite pixels")
  return vt.raw_example(
    prompt(),
    image,
    image.shape[:2],
    vt.example_id(example),
    target_image=dense_labels.normals_to_image(normals),
    normals=normals,
  )


def _builtin_segmentation(example, rng, ctx, prompt):
  return instance_logic.segmentation(*_builtin_instances(example), rng, ctx, prompt)


def _builtin_image_classification(example, rng, ctx, prompt):
  del rng, ctx
  label = int(example["image_class"])
  if not 0 <= label < len(scene_text.IMAGE_CLASSES):
    raise vt.Skip(f"image_class {label} outside the {len(scene_text.IMAGE_CLASSES)} classes")
  image = vt.as_image(example["image"])
  name = scene_text.IMAGE_CLASSES[label]
  return vt.raw_example(
    prompt(),
    image,
    image.shape[:2],
    vt.example_id(example),
    target_text=name,
    label=name,
    class_names=scene_text.IMAGE_CLASSES,
  )


def _builtin_captioning(example, rng, ctx, prompt):
  del ctx
  return vt.captioning(
    vt.as_image(example["image"]), _captions(example), vt.example_id(example), rng, prompt
  )


def _vqa_pairs(example) -> List[Tuple[str, str, str, int]]:
  qa = example["vqa"]
  return [
    (tasks.as_text(q, "question"), tasks.as_text(a, "answer"), tasks.as_text(kind, "kind"), int(o))
    for q, a, kind, o in zip(
      qa["question"], qa["answer"], qa["kind"], np.asarray(qa["object_index"])
    )
  ]


def _builtin_vqa(example, rng, ctx, prompt):
  del ctx
  pairs = [pair for pair in _vqa_pairs(example) if pair[0].strip() and pair[1].strip()]
  if not pairs:
    raise vt.Skip("no question with an answer")
  question, answer, kind, _ = pairs[vt.pick(len(pairs), rng)]
  image = vt.as_image(example["image"])
  # The released models were trained on lower-cased questions.
  return vt.raw_example(
    prompt(question.lower()),
    image,
    image.shape[:2],
    vt.example_id(example),
    target_text=answer,
    answers=[answer],
    question=question,
    kind=kind,
  )


def _builtin_grounded_vqa(example, rng, ctx, prompt):
  del ctx
  objs = vt.builtin_objects(example)
  ids = np.asarray(example["instance_ids"])
  pairs = [
    pair
    for pair in _vqa_pairs(example)
    if pair[3] >= 0 and pair[1].strip() and np.any(ids == pair[3] + 1)
  ]
  if not pairs:
    raise vt.Skip("no question about one visible object")
  question, answer, kind, index = pairs[vt.pick(len(pairs), rng)]
  mask = ids == index + 1
  return vt.raw_example(
    prompt(question.lower()),
    objs.image,
    objs.image_hw,
    objs.example_id,
    target_text=answer,
    target_image=dense_labels.mask_to_image(mask),
    nearest=True,
    answers=[answer],
    question=question,
    kind=kind,
    mask=mask,
  )


def _builtin_relationship(example, rng, ctx, prompt):
  objs = vt.builtin_objects(example)
  rel = example["relationships"]
  if not len(rel["predicate"]):
    raise vt.Skip("no relationship in the image")
  triples = [
    (objs.position(s), tasks.as_text(p, "predicate"), objs.position(o))
    for s, p, o in zip(np.asarray(rel["subject"]), rel["predicate"], np.asarray(rel["object"]))
  ]
  relations = [
    (objs.boxes[s], objs.names[s], p, objs.boxes[o], objs.names[o])
    for s, p, o in triples
    if s is not None and o is not None and p.strip()
  ]
  return vt.relationship(
    objs.image,
    objs.example_id,
    relations,
    rng,
    ctx,
    prompt,
    "no relationship between objects with valid boxes",
  )


_SHAPES = {"class_names": scenes.SHAPES}
M, O = tasks.Metric, tasks.Output
# (name, group, prompt key, fn, metric, output)
_BUILTIN_TASKS = (
  (
    "image_generation",
    "image_synthesis",
    "image_generation",
    _builtin_image_generation,
    M.IMAGE_PSNR,
    O.IMAGE,
  ),
  (
    "inpainting",
    "image_synthesis",
    "image_inpainting",
    vt.on_objects(vt.builtin_objects, vt.inpainting),
    M.IMAGE_PSNR,
    O.IMAGE,
  ),
  (
    "segmentation_generation",
    "image_synthesis",
    "segmentation_based_generation",
    _builtin_segmentation_generation,
    M.IMAGE_PSNR,
    O.IMAGE,
  ),
  (
    "detection",
    "sparse_labelling",
    "detection",
    vt.on_objects(vt.builtin_objects, vt.detection),
    M.DETECTION_MAP,
    O.BOXES,
  ),
  (
    "localization",
    "sparse_labelling",
    "localization",
    vt.on_objects(vt.builtin_objects, vt.localization, **_SHAPES),
    M.DETECTION_MAP,
    O.BOXES,
  ),
  ("keypoints", "sparse_labelling", "keypoint", _builtin_keypoints, M.KEYPOINT_OKS, O.KEYPOINTS),
  ("refexp", "sparse_labelling", "refexp", _builtin_refexp, M.BOX_IOU, O.BOXES),
  ("depth", "dense_labelling", "depth", _builtin_depth, M.DEPTH_RMSE, O.DEPTH),
  (
    "surface_normals",
    "dense_labelling",
    "surface_normal",
    _builtin_normals,
    M.NORMAL_ANGLE,
    O.NORMALS,
  ),
  (
    "segmentation",
    "dense_labelling",
    "segmentation",
    _builtin_segmentation,
    M.SEGMENTATION_IOU,
    O.SEGMENTATION,
  ),
  (
    "image_classification",
    "image_classification",
    "image_classification",
    _builtin_image_classification,
    M.ACCURACY,
    O.CHOICE,
  ),
  (
    "object_categorization",
    "image_classification",
    "object_categorization",
    vt.on_objects(vt.builtin_objects, vt.object_categorization, **_SHAPES),
    M.ACCURACY,
    O.CHOICE,
  ),
  ("captioning", "image_captioning", "image_captioning", _builtin_captioning, M.CIDER, O.TEXT),
  (
    "region_captioning",
    "image_captioning",
    "region_captioning",
    _builtin_region_captioning,
    M.CIDER,
    O.TEXT,
  ),
  ("vqa", "vision_language", "vqa", _builtin_vqa, M.VQA_ACCURACY, O.TEXT),
  (
    "grounded_vqa",
    "vision_language",
    "grounded_vqa",
    _builtin_grounded_vqa,
    M.GROUNDED_VQA,
    O.TEXT_MASK,
  ),
  ("relationship", "vision_language", "relationship", _builtin_relationship, M.ACCURACY, O.TEXT),
)
BUILTIN_TASK_NAMES = tuple(f"builtin_{name}" for name, *_ in _BUILTIN_TASKS)

for _name, _group, _key, _fn, _metric, _output in _BUILTIN_TASKS:
  vt.register(
    f"builtin_{_name}",
    _group,
    _key,
    _fn,
    metric=_metric,
    output=_output,
    description=f"Built-in scenes: {_name.replace('_', ' ')}.",
  )
