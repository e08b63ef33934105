"""What the vision tasks of the paper's Table 1 share: target formats, helpers, task logic.

builtin_vision.py registers the `builtin_*` tasks on `uio_builtin_scenes/scenes` (features in
`builtin_dataset.py`) with them, vision.py the tasks of COCO, RefCOCO and NYU Depth v2,
detection.py those of Open Images, LVIS and COCO panoptic; the logic of a task shared by
several (detection, localization, captioning...) is written once here, and the logic of
targets painted from instance masks (segmentation, segmentation-based generation) in
instance_logic.py. Every
preprocessor follows the registry.py contract; coordinates in prompts, targets and `meta` are
pixels of the image the raw example carries ("image_hw").

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
- Segmentation-based generation (A.1.1): the input is the instance map, each instance in its
  own palette colour on black, and the prompt lists "colour : class" pairs joined by " , "
  (card: "white: knob, silver: cupboard, ..."); the target is the image.
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
BLANK_TOLERANCE_PX = 1e-3

# Every task builtin_vision.py, vision.py and detection.py registered, by name.
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


def example_id(example: dict) -> str:
  for key in ("id", "image/id", "image/filename"):
    if key in example:
      return tasks.as_text(example[key], key)
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


def texts(values, field: str) -> List[str]:
  """A TFDS text sequence (bytes, any shape) as a flat list of str (registry.as_text)."""
  return [tasks.as_text(v, field) for v in np.asarray(values, dtype=object).reshape(-1)]


def column(sequence: dict, key: str, dtype) -> np.ndarray:
  """One field of a TFDS Sequence as a flat array."""
  return np.asarray(sequence[key], dtype).reshape(-1)


def same_lengths(what: str, **columns) -> None:
  """Skips a record whose Sequence fields (name=values) differ in length, naming them."""
  lengths = {name: len(values) for name, values in columns.items()}
  if len(set(lengths.values())) > 1:
    listed = ", ".join(f"{n} {name}" for name, n in lengths.items())
    raise Skip(f"{what} fields differ in length: {listed}")


def sized_image(example: dict) -> np.ndarray:
  """The decoded image, checked against the record's height and width, which its boxes and
  masks are drawn on (the project's builders store both)."""
  image = as_image(example["image"])
  stored = (int(example["height"]), int(example["width"]))
  if image.shape[:2] != stored:
    raise Skip(f"image {image.shape[:2]} is not the record's height, width {stored}")
  return image


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
  """A raw example (registry.py contract); `meta` always holds example_id and image_hw."""
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


def raster_order(boxes) -> np.ndarray:
  """Indices that sort pixel boxes [N, 4] (x1, y1, x2, y2) by top-left corner: top to bottom,
  then left to right (ties: the bottom-right corner, then the given order)."""
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  return np.lexsort((np.arange(len(boxes)), boxes[:, 2], boxes[:, 3], boxes[:, 0], boxes[:, 1]))


def object_order(boxes, rng, ctx) -> np.ndarray:
  """The order a target lists objects in (ctx.object_order): a fresh random permutation, as
  the paper trains detection (A.1.2), or `raster_order`, one order per image. A random
  order makes the first box of a target any of the image's objects, which a small model
  learns as the mean of them (docs/training.md)."""
  if ctx.object_order == "raster":
    return raster_order(boxes)
  return rng.permutation(len(boxes))


def detection(objs: Objects, rng, ctx, prompt: Prompt) -> dict:
  objs.require()
  order = object_order(objs.boxes, rng, ctx)
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


def localization(
  objs: Objects,
  rng,
  ctx,
  prompt: Prompt,
  class_names: Sequence[str],
  negatives: Optional[Sequence[str]] = None,
) -> dict:
  """One class's boxes; a negative names a class without any and has the empty target.

  `negatives`: the classes a negative may name. None: every class of `class_names` the image
  does not annotate, right for exhaustively labelled datasets (COCO, the built-in scenes);
  a dataset whose absent classes are not all known to be absent passes the ones verified
  absent (Open Images' image-level labels).
  """
  objs.require()
  pool = class_names if negatives is None else negatives
  absent = [name for name in pool if name not in objs.annotated]
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
  members = np.flatnonzero([n == name for n in objs.names])
  chosen = members[object_order(objs.boxes[members], rng, ctx)]
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
  # Pixel (r, c) spans [c, c + 1) x [r, r + 1): blank every pixel the box touches. Normalised
  # float32 boxes come back a hair off whole pixels (0.6 * 50 = 30.0000012): a box edge
  # within BLANK_TOLERANCE_PX of a pixel border counts as on it, not as one more pixel.
  c0, r0 = (int(np.floor(max(v, 0.0) + BLANK_TOLERANCE_PX)) for v in box[:2])
  c1, r1 = (int(np.ceil(v - BLANK_TOLERANCE_PX)) for v in box[2:])
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


Relation = Tuple[np.ndarray, str, str, np.ndarray, str]  # subject box, subject, predicate, ...


def usable_relations(relations, image_hw) -> List[Relation]:
  """The (subject box, subject, predicate, object box, object) with every text non-blank and
  both boxes valid."""
  return [
    (sb, s, p, ob, o)
    for sb, s, p, ob, o in relations
    if s.strip()
    and p.strip()
    and o.strip()
    and box_is_valid(sb, image_hw)
    and box_is_valid(ob, image_hw)
  ]


def relationship(
  image, record_id: str, relations: Sequence[Relation], rng, ctx, prompt: Prompt, none: str
) -> dict:
  """Relationship detection (A.1.6): both objects as "box-tokens name" in the prompt, the
  target "subject predicate object"; one of `relations` drawn; `none`: the skip reason."""
  if not relations:
    raise Skip(none)
  subject_box, subject, predicate, object_box, obj = relations[pick(len(relations), rng)]
  hw = image.shape[:2]
  return raw_example(
    prompt(f"{box_text(subject_box, hw, ctx)} {subject}", f"{box_text(object_box, hw, ctx)} {obj}"),
    image,
    hw,
    record_id,
    target_text=f"{subject} {predicate} {obj}",
    predicate=predicate,
    subject_box=subject_box,
    object_box=object_box,
    subject=subject,
    object=obj,
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
