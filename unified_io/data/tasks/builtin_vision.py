"""Vision tasks of the paper's Table 1 on the built-in scenes, and the helpers they share.

Importing this module registers the `builtin_*` tasks on `uio_builtin_scenes/scenes`
(features in `builtin_dataset.py`); `real_vision_tasks.py` reuses the helpers for COCO,
RefCOCO and NYU Depth v2. Every preprocessor follows the `tasks.py` contract; coordinates in
prompts, targets and `meta` are pixels of the image the raw example carries ("image_hw").

Target formats (paper appendix A.1; "<loc>" is a location token written "<extra_id_N>"):

- A box is "<loc> <loc> <loc> <loc>" = y1 x1 y2 x2 (`locations.box_to_text`); a labelled box
  is the box then its class name, and lists are joined by single spaces (A.1.2 detection
  card: "loc100 loc745 loc495 loc991 chair loc293 ...").
- Detection: every object, in random order. Localization: the boxes of the prompt's class,
  each followed by that class "to keep the output format consistent with the object
  detection output"; a negative (a class not in the image) has the empty target "", i.e.
  just EOS ("in which case the output is an empty sequence").
- Keypoints (one person, A.1.2): the 17 COCO joints in order, each "<y> <x> v" with
  v = COCO visibility + 1 ("1 for not visible, 2 for partly visible, 3 for fully visible");
  an unlabelled joint (COCO v = 0) writes KEYPOINT_MISSING_TOKEN twice instead of its
  coordinates ("preceded by two copies of a new special token").
- Referring expression: the box alone (A.1.2 card "loc270 loc856 loc640 loc982").
- Relationship (A.1.6 card, output "flower on vase"): "subject predicate object".
- Segmentation (A.1.3): the instances of the class, each in its own palette colour
  (`dense_labels`) on black; grounded VQA: the answer plus the object's mask, white on black.
- Depth and normals: `dense_labels.depth_to_image(depth, ctx.max_depth)`, `normals_to_image`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from unified_io.common import image_preprocessing
from unified_io.common import locations
from unified_io.common import vocab
from unified_io.common import dense_labels
from unified_io.data import prompts
from unified_io.data import scene_text
from unified_io.data import scenes
from unified_io.data.tasks import registry as tasks

Skip = tasks.SkipExample
BUILTIN = "uio_builtin_scenes/scenes"
# The paper gives no rate for localization negatives; a quarter keeps most examples useful.
LOCALIZATION_NEGATIVE_RATE = 0.25
# The paper's "new special token" for unlabelled joints; the released code does not name it.
# The last span sentinel: span corruption numbers sentinels from 0 and never gets this far.
KEYPOINT_MISSING_TOKEN = vocab.extra_id_token(vocab.NUM_SENTINELS - 1)
# Inpainting blanks its box to the ImageNet mean: zero after the encoder's normalisation.
INPAINT_FILL = np.asarray(image_preprocessing.IMAGENET_MEAN, np.float32)

# Every task this module and real_vision_tasks.py registered, by name.
TASKS: Dict[str, tasks.Task] = {}
Prompt = Callable[..., str]


def register(
  name: str,
  group: str,
  prompt_key: str,
  fn: Callable[[dict, np.random.Generator, tasks.TaskContext, Prompt], dict],
  *,
  metric: tasks.Metric,
  output: tasks.Output,
  builder: str = BUILTIN,
  **kwargs,
) -> tasks.Task:
  """Registers `fn(example, rng, ctx, prompt)`; `prompt(*args)` fills the task's template."""

  def preprocess(example, rng, ctx):
    return fn(example, rng, ctx, functools.partial(task.prompt, rng, ctx))

  task = tasks.register(
    tasks.Task(
      name=name,
      group=group,
      builder=builder,
      preprocess=preprocess,
      prompts=prompts.PROMPTS[prompt_key],
      output=output,
      metric=metric,
      **kwargs,
    )
  )
  TASKS[name] = task
  return task


# ----------------------------------------------------------------------------- helpers


def text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def example_id(example: dict) -> str:
  for key in ("id", "image/id", "image/filename"):
    if key in example:
      return text(example[key])
  return "?"


def as_image(value) -> np.ndarray:
  image = np.asarray(value)
  if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8 or 0 in image.shape:
    raise Skip(f"image is not a non-empty uint8 [H, W, 3] array: {image.dtype} {image.shape}")
  return image


def to_float(image: np.ndarray) -> np.ndarray:
  return np.asarray(image, np.float32) / np.float32(255.0)


def pick(n: int, rng: np.random.Generator) -> int:
  return int(rng.integers(n))


def box_is_valid(box, image_hw) -> bool:
  """Finite, of positive width and height, inside the image up to locations' tolerance."""
  box = np.asarray(box, np.float64)
  if box.shape != (4,) or not np.all(np.isfinite(box)):
    return False
  x1, y1, x2, y2 = box
  height, width = image_hw
  tolerance = locations.OUTSIDE_TOLERANCE_PX
  return bool(
    x2 > x1
    and y2 > y1
    and min(x1, y1) >= -tolerance
    and x2 <= width + tolerance
    and y2 <= height + tolerance
  )


def point_is_inside(point, image_hw) -> bool:
  x, y = np.asarray(point, np.float64)
  tolerance = locations.OUTSIDE_TOLERANCE_PX
  return bool(
    np.isfinite(x)
    and np.isfinite(y)
    and -tolerance <= x <= image_hw[1] + tolerance
    and -tolerance <= y <= image_hw[0] + tolerance
  )


def normalised_to_pixels(bbox, image_hw) -> np.ndarray:
  """TFDS BBox rows (ymin, xmin, ymax, xmax) in [0, 1] -> pixel boxes (x1, y1, x2, y2)."""
  height, width = image_hw
  bbox = np.asarray(bbox, np.float64).reshape(-1, 4)
  return bbox[:, [1, 0, 3, 2]] * np.array([width, height, width, height], np.float64)


def box_text(box, image_hw, ctx: tasks.TaskContext) -> str:
  return locations.box_to_text(box, image_hw, ctx.layout)


def labelled_boxes_text(boxes, names: Sequence[str], image_hw, ctx) -> str:
  return " ".join(f"{box_text(box, image_hw, ctx)} {name}" for box, name in zip(boxes, names))


def keypoints_text(points, visibility, image_hw, ctx: tasks.TaskContext) -> str:
  """17 joints as "<y> <x> v" with v = COCO visibility + 1; unlabelled joints as missing."""
  parts = []
  for point, v in zip(np.asarray(points, np.float64), np.asarray(visibility)):
    if v == 0:
      coords = f"{KEYPOINT_MISSING_TOKEN} {KEYPOINT_MISSING_TOKEN}"
    else:
      coords = locations.point_to_text(point, image_hw, ctx.layout)
    parts.append(f"{coords} {int(v) + 1}")
  return " ".join(parts)


def raw_example(
  prompt: str,
  image,
  image_hw,
  record_id: str,
  *,
  target_text: str = "",
  target_image=None,
  nearest: bool = False,
  **meta,
) -> dict:
  """A raw example (tasks.py contract); `meta` always holds example_id and image_hw."""
  raw = {
    "prompt": prompt,
    "image": image,
    "target_text": target_text,
    "target_image": target_image,
    "meta": dict(example_id=record_id, image_hw=tuple(int(s) for s in image_hw), **meta),
  }
  if nearest:  # label maps: colours must survive resizing
    raw["target_image_resize"] = "nearest"
  return raw


@dataclasses.dataclass(frozen=True)
class Objects:
  """The usable boxed objects of one image, whichever dataset they come from."""

  example_id: str
  image: np.ndarray  # uint8 [H, W, 3]
  boxes: np.ndarray  # float64 [N, 4] pixel (x1, y1, x2, y2), all valid
  names: Tuple[str, ...]
  index: np.ndarray  # int64 [N]: each object's index in the example's own object list
  annotated: frozenset  # every annotated class, kept objects or not (for negatives)

  @property
  def image_hw(self) -> Tuple[int, int]:
    return self.image.shape[:2]

  def require(self) -> "Objects":
    if not self.names:
      raise Skip("no object with a valid box")
    return self

  def position(self, object_index: int) -> Optional[int]:
    """Where object `object_index` of the example is among the kept ones, or None."""
    where = np.flatnonzero(self.index == object_index)
    return int(where[0]) if len(where) else None


def make_objects(
  example: dict,
  image: np.ndarray,
  boxes,
  names: Sequence[str],
  keep: Optional[Sequence[bool]] = None,
) -> Objects:
  """Keeps objects with valid boxes (and `keep`): a bad box is annotation noise, not fatal."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  if len(names) != len(boxes):
    raise Skip(f"objects have {len(boxes)} boxes but {len(names)} labels")
  kept = [
    i
    for i in range(len(boxes))
    if box_is_valid(boxes[i], image.shape[:2]) and (keep is None or keep[i])
  ]
  return Objects(
    example_id(example),
    image,
    boxes[kept].reshape(-1, 4),
    tuple(names[i] for i in kept),
    np.asarray(kept, np.int64),
    frozenset(names),
  )


def builtin_objects(example: dict) -> Objects:
  objects = example["objects"]
  names = [scenes.SHAPES[int(label)] for label in np.asarray(objects["label"]).reshape(-1)]
  return make_objects(example, as_image(example["image"]), objects["pixel_box"], names)


def on_objects(read: Callable[[dict], Objects], logic, **kwargs):
  """A task fn that reads an example's Objects with `read` and hands them to `logic`."""
  return lambda example, rng, ctx, prompt: logic(read(example), rng, ctx, prompt, **kwargs)


# ------------------------------------------------------- task logic shared with real datasets


def detection(objs: Objects, rng, ctx, prompt: Prompt) -> dict:
  objs.require()
  order = rng.permutation(len(objs.names))
  boxes, names = objs.boxes[order], [objs.names[i] for i in order]
  return raw_example(
    prompt(),
    objs.image,
    objs.image_hw,
    objs.example_id,
    target_text=labelled_boxes_text(boxes, names, objs.image_hw, ctx),
    boxes=boxes,
    labels=names,
  )


def localization(objs: Objects, rng, ctx, prompt: Prompt, class_names: Sequence[str]) -> dict:
  objs.require()
  absent = [name for name in class_names if name not in objs.annotated]
  if absent and rng.random() < LOCALIZATION_NEGATIVE_RATE:
    name = absent[pick(len(absent), rng)]
    return raw_example(
      prompt(name),
      objs.image,
      objs.image_hw,
      objs.example_id,
      target_text="",
      boxes=np.zeros((0, 4)),
      labels=[],
      class_name=name,
      negative=True,
    )
  present = sorted(set(objs.names))
  name = present[pick(len(present), rng)]
  chosen = rng.permutation(np.flatnonzero([n == name for n in objs.names]))
  boxes = objs.boxes[chosen]
  return raw_example(
    prompt(name),
    objs.image,
    objs.image_hw,
    objs.example_id,
    target_text=labelled_boxes_text(boxes, [name] * len(boxes), objs.image_hw, ctx),
    boxes=boxes,
    labels=[name] * len(boxes),
    class_name=name,
    negative=False,
  )


def object_categorization(
  objs: Objects, rng, ctx, prompt: Prompt, class_names: Sequence[str]
) -> dict:
  i = pick(len(objs.require().names), rng)
  return raw_example(
    prompt(box_text(objs.boxes[i], objs.image_hw, ctx)),
    objs.image,
    objs.image_hw,
    objs.example_id,
    target_text=objs.names[i],
    box=objs.boxes[i],
    label=objs.names[i],
    class_names=tuple(class_names),
  )


def inpainting(objs: Objects, rng, ctx, prompt: Prompt) -> dict:
  i = pick(len(objs.require().names), rng)
  box, name = objs.boxes[i], objs.names[i]
  image = to_float(objs.image)
  # Pixel (r, c) spans [c, c + 1) x [r, r + 1): blank every pixel the box touches.
  c0, r0 = (int(np.floor(max(v, 0.0))) for v in box[:2])
  c1, r1 = (int(np.ceil(v)) for v in box[2:])
  blanked = image.copy()
  blanked[r0:r1, c0:c1] = INPAINT_FILL
  return raw_example(
    prompt(f"{box_text(box, objs.image_hw, ctx)} {name}"),
    blanked,
    objs.image_hw,
    objs.example_id,
    target_image=image,
    box=box,
    label=name,
  )


def captioning(image, captions: Sequence[str], record_id: str, rng, prompt: Prompt) -> dict:
  captions = [c for c in captions if c.strip()]
  if not captions:
    raise Skip("no caption")
  return raw_example(
    prompt(),
    image,
    image.shape[:2],
    record_id,
    target_text=captions[pick(len(captions), rng)],
    captions=captions,
  )


def image_generation(image, captions: Sequence[str], record_id: str, rng, prompt: Prompt) -> dict:
  captions = [c for c in captions if c.strip()]
  if not captions:
    raise Skip("no caption")
  caption = captions[pick(len(captions), rng)]
  return raw_example(
    prompt(caption), None, image.shape[:2], record_id, target_image=to_float(image), caption=caption
  )


def refexp(image, box, expression: str, record_id: str, ctx, prompt: Prompt) -> dict:
  return raw_example(
    prompt(expression),
    image,
    image.shape[:2],
    record_id,
    target_text=box_text(box, image.shape[:2], ctx),
    box=np.asarray(box),
    expression=expression,
  )


def depth_estimation(image, depth, record_id: str, ctx, prompt: Prompt) -> dict:
  depth = np.asarray(depth, np.float32)
  if depth.shape != image.shape[:2]:
    raise Skip(f"depth {depth.shape} does not match the image {image.shape[:2]}")
  bad = int(np.sum(~np.isfinite(depth)))
  if bad:
    raise Skip(f"depth has {bad} non-finite pixels")
  if np.any(depth < 0):
    raise Skip("depth has negative values")
  return raw_example(
    prompt(),
    image,
    image.shape[:2],
    record_id,
    target_image=dense_labels.depth_to_image(depth, ctx.max_depth),
    depth=depth,
    max_depth=ctx.max_depth,
  )


# ----------------------------------------------------------------- built-in scene tasks


def _captions(example) -> List[str]:
  return [text(c) for c in example["captions"]]


def _instance_masks(example, objs: Objects) -> List[np.ndarray]:
  """Visible-pixel mask of each kept object (instance_ids == example index + 1)."""
  ids = np.asarray(example["instance_ids"])
  if ids.shape != objs.image_hw:
    raise Skip(f"instance_ids {ids.shape} does not match the image {objs.image_hw}")
  return [ids == i + 1 for i in objs.index]


def _builtin_image_generation(example, rng, ctx, prompt):
  del ctx
  return image_generation(
    as_image(example["image"]), _captions(example), example_id(example), rng, prompt
  )


def _visible_instances(example):
  """(objects, instance masks, indices of the objects with at least one visible pixel)."""
  objs = builtin_objects(example).require()
  masks = _instance_masks(example, objs)
  visible = [k for k, mask in enumerate(masks) if mask.any()]
  if not visible:
    raise Skip("no object has visible pixels")
  return objs, masks, visible


def _builtin_segmentation_generation(example, rng, ctx, prompt):
  del ctx
  objs, masks, visible = _visible_instances(example)
  if len(visible) > len(dense_labels.NAMED_COLORS):
    raise Skip(f"{len(visible)} instances, more than the palette's colours")
  colors = dense_labels.pick_colors(len(visible), rng)
  instance_map = np.zeros(objs.image_hw, np.int64)
  for j, k in enumerate(visible):
    instance_map[masks[k]] = j + 1
  color_names = [dense_labels.COLOR_NAMES[c] for c in colors]
  names = [objs.names[k] for k in visible]
  mapping = " , ".join(f"{color} : {name}" for color, name in zip(color_names, names))
  return raw_example(
    prompt(mapping),
    dense_labels.instances_to_image(instance_map, colors),
    objs.image_hw,
    objs.example_id,
    target_image=to_float(objs.image),
    colors=color_names,
    labels=names,
  )


def _builtin_keypoints(example, rng, ctx, prompt):
  objs = builtin_objects(example)
  persons = example["persons"]
  points = np.asarray(persons["keypoints"], np.float64).reshape(-1, scenes.NUM_KEYPOINTS, 2)
  visibility = np.asarray(persons["visibility"], np.int64).reshape(-1, scenes.NUM_KEYPOINTS)
  owners = np.asarray(persons["object_index"], np.int64).reshape(-1)
  if not len(owners):
    raise Skip("no person in the image")
  candidates = [
    p for p in range(len(owners)) if visibility[p].any() and objs.position(owners[p]) is not None
  ]
  if not candidates:
    raise Skip("no person with a valid box and labelled keypoints")
  p = candidates[pick(len(candidates), rng)]
  if not np.isin(visibility[p], (0, 1, 2)).all():
    raise Skip(f"keypoint visibility outside COCO's 0, 1, 2: {visibility[p].tolist()}")
  labelled = visibility[p] > 0
  if not all(point_is_inside(point, objs.image_hw) for point in points[p][labelled]):
    raise Skip("a labelled keypoint lies outside the image")
  box = objs.boxes[objs.position(owners[p])]
  area = int(np.asarray(example["objects"]["area"]).reshape(-1)[owners[p]])
  return raw_example(
    prompt(box_text(box, objs.image_hw, ctx)),
    objs.image,
    objs.image_hw,
    objs.example_id,
    target_text=keypoints_text(points[p], visibility[p], objs.image_hw, ctx),
    keypoints=points[p],
    visibility=visibility[p],
    box=box,
    area=area,
  )


def _builtin_region_texts(example, objs: Objects) -> List[Tuple[int, str]]:
  """(kept position, region caption) of objects with a valid box and a caption."""
  captions = [text(c) for c in example["objects"]["region_caption"]]
  pairs = [(k, captions[i]) for k, i in enumerate(objs.index) if i < len(captions)]
  pairs = [(k, caption) for k, caption in pairs if caption.strip()]
  if not pairs:
    raise Skip("no object with a valid box and a region caption")
  return pairs


def _builtin_refexp(example, rng, ctx, prompt):
  objs = builtin_objects(example)
  pairs = _builtin_region_texts(example, objs)
  k, expression = pairs[pick(len(pairs), rng)]
  return refexp(objs.image, objs.boxes[k], expression, objs.example_id, ctx, prompt)


def _builtin_region_captioning(example, rng, ctx, prompt):
  objs = builtin_objects(example)
  pairs = _builtin_region_texts(example, objs)
  k, caption = pairs[pick(len(pairs), rng)]
  return raw_example(
    prompt(box_text(objs.boxes[k], objs.image_hw, ctx)),
    objs.image,
    objs.image_hw,
    objs.example_id,
    target_text=caption,
    box=objs.boxes[k],
    captions=[caption],
  )


def _builtin_depth(example, rng, ctx, prompt):
  del rng
  return depth_estimation(
    as_image(example["image"]), example["depth"], example_id(example), ctx, prompt
  )


def _builtin_normals(example, rng, ctx, prompt):
  del rng, ctx
  image = as_image(example["image"])
  normals = np.asarray(example["normals"], np.float32)
  if normals.shape != image.shape[:2] + (3,):
    raise Skip(f"normals {normals.shape} do not match the image {image.shape[:2]}")
  bad = int(np.sum(~np.isfinite(normals).all(axis=-1)))
  if bad:
    raise Skip(f"normals have {bad} non-finite pixels")
  return raw_example(
    prompt(),
    image,
    image.shape[:2],
    example_id(example),
    target_image=dense_labels.normals_to_image(normals),
    normals=normals,
  )


def _builtin_segmentation(example, rng, ctx, prompt):
  del ctx
  objs, masks, visible = _visible_instances(example)
  present = sorted({objs.names[k] for k in visible})
  name = present[pick(len(present), rng)]
  members = [k for k in visible if objs.names[k] == name]
  colors = dense_labels.pick_colors(len(members), rng)
  instance_map = np.zeros(objs.image_hw, np.int64)
  for j, k in enumerate(members):
    instance_map[masks[k]] = j + 1
  return raw_example(
    prompt(name),
    objs.image,
    objs.image_hw,
    objs.example_id,
    target_image=dense_labels.instances_to_image(instance_map, colors),
    nearest=True,
    class_name=name,
    masks=np.stack([masks[k] for k in members]),
    boxes=objs.boxes[members],
    colors=[dense_labels.COLOR_NAMES[c] for c in colors],
  )


def _builtin_image_classification(example, rng, ctx, prompt):
  del rng, ctx
  label = int(example["image_class"])
  if not 0 <= label < len(scene_text.IMAGE_CLASSES):
    raise Skip(f"image_class {label} outside the {len(scene_text.IMAGE_CLASSES)} classes")
  image = as_image(example["image"])
  name = scene_text.IMAGE_CLASSES[label]
  return raw_example(
    prompt(),
    image,
    image.shape[:2],
    example_id(example),
    target_text=name,
    label=name,
    class_names=scene_text.IMAGE_CLASSES,
  )


def _builtin_captioning(example, rng, ctx, prompt):
  del ctx
  return captioning(
    as_image(example["image"]), _captions(example), example_id(example), rng, prompt
  )


def _vqa_pairs(example) -> List[Tuple[str, str, str, int]]:
  qa = example["vqa"]
  return [
    (text(q), text(a), text(kind), int(o))
    for q, a, kind, o in zip(
      qa["question"], qa["answer"], qa["kind"], np.asarray(qa["object_index"])
    )
  ]


def _builtin_vqa(example, rng, ctx, prompt):
  del ctx
  pairs = [pair for pair in _vqa_pairs(example) if pair[0].strip() and pair[1].strip()]
  if not pairs:
    raise Skip("no question with an answer")
  question, answer, kind, _ = pairs[pick(len(pairs), rng)]
  image = as_image(example["image"])
  # The released models were trained on lower-cased questions.
  return raw_example(
    prompt(question.lower()),
    image,
    image.shape[:2],
    example_id(example),
    target_text=answer,
    answers=[answer],
    question=question,
    kind=kind,
  )


def _builtin_grounded_vqa(example, rng, ctx, prompt):
  del ctx
  objs = builtin_objects(example)
  ids = np.asarray(example["instance_ids"])
  pairs = [
    pair
    for pair in _vqa_pairs(example)
    if pair[3] >= 0 and pair[1].strip() and np.any(ids == pair[3] + 1)
  ]
  if not pairs:
    raise Skip("no question about one visible object")
  question, answer, kind, index = pairs[pick(len(pairs), rng)]
  mask = ids == index + 1
  return raw_example(
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
  objs = builtin_objects(example)
  rel = example["relationships"]
  if not len(rel["predicate"]):
    raise Skip("no relationship in the image")
  triples = [
    (objs.position(s), text(p), objs.position(o))
    for s, p, o in zip(np.asarray(rel["subject"]), rel["predicate"], np.asarray(rel["object"]))
  ]
  triples = [(s, p, o) for s, p, o in triples if s is not None and o is not None and p.strip()]
  if not triples:
    raise Skip("no relationship between objects with valid boxes")
  s, predicate, o = triples[pick(len(triples), rng)]
  hw = objs.image_hw
  subject, obj = objs.names[s], objs.names[o]
  return raw_example(
    prompt(
      f"{box_text(objs.boxes[s], hw, ctx)} {subject}", f"{box_text(objs.boxes[o], hw, ctx)} {obj}"
    ),
    objs.image,
    hw,
    objs.example_id,
    target_text=f"{subject} {predicate} {obj}",
    predicate=predicate,
    subject_box=objs.boxes[s],
    object_box=objs.boxes[o],
    subject=subject,
    object=obj,
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
    on_objects(builtin_objects, inpainting),
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
    on_objects(builtin_objects, detection),
    M.DETECTION_MAP,
    O.BOXES,
  ),
  (
    "localization",
    "sparse_labelling",
    "localization",
    on_objects(builtin_objects, localization, **_SHAPES),
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
    on_objects(builtin_objects, object_categorization, **_SHAPES),
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
  register(
    f"builtin_{_name}",
    _group,
    _key,
    _fn,
    metric=_metric,
    output=_output,
    description=f"Built-in scenes: {_name.replace('_', ' ')}.",
  )
