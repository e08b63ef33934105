"""The task registry: one entry per (task, dataset) the model trains or evaluates on.

A task names where its examples come from (a TFDS builder, config and splits), how one
example becomes a *raw example* (its preprocessor), its prompt templates, its task group
(the paper's eight, which the mixtures sample by) and its loss weight.

Preprocessors are plain Python functions over one decoded TFDS example (the numpy dict
`tfds.as_numpy` yields):

    preprocess(example: dict, rng: np.random.Generator, ctx: TaskContext) -> dict

All randomness comes from `rng` (the pipeline seeds it per example, so a run is
deterministic and resumable). They return a raw example with these keys:

- "prompt": str, the filled prompt. Location tokens are written as "<extra_id_N>" text
  (`unified_io.common.locations.box_to_text`), which the tokenizer maps to their ids.
- "image": uint8 [H, W, 3] or float [H, W, 3] in [0, 1], or None for text-only inputs.
- "target_text": str, "" for tasks whose only output is an image (the target is then EOS).
- "target_image": float32 [h, w, 3] in [0, 1], or None. Any size: the pipeline resizes it
  to the VQ-GAN resolution with "target_image_resize" ("bilinear" default, "nearest" for
  label maps whose colours must survive).
- optional "meta": dict of ground truth that evaluation and `data.show` use (never batched).

A preprocessor that cannot use an example (no object of the asked class, degenerate box,
NaN depth...) raises `SkipExample("reason")`; the pipeline counts skips per task and
reason and draws another example. Anything else it raises is a bug and is re-raised with
the task name and example id.

What a task's model output *is* is typed: `Task.output` is an `Output` kind (text, a choice
among options, boxes, keypoints, a depth/normal/segmentation map, an image, text + mask) and
`Task.metric` a `Metric` that suits it (`METRICS`). Both are checked when the Task is built,
so a misspelt name fails at import, naming the task, instead of at the first evaluation.
`Task.image_metrics` adds metrics over whole images of the split (`IMAGE_METRICS`: COCO
keypoint AP with two-stage inference, COCO mask AP), checked the same way.
How each kind is decoded, post-processed, scored and drawn is `unified_io.eval.outputs`.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from unified_io.common import vocab

# The paper's task groups (Table 1), in its order.
GROUPS = (
  "image_synthesis",
  "sparse_labelling",
  "dense_labelling",
  "image_classification",
  "image_captioning",
  "vision_language",
  "nlp",
  "language_modelling",
)

# Paper §3.4: groups are sampled at 1/8 each, except image synthesis 3/16 and dense
# labelling 1/16.
GROUP_RATES = {group: 1 / 8 for group in GROUPS}
GROUP_RATES.update(image_synthesis=3 / 16, dense_labelling=1 / 16)


class Output(enum.Enum):
  """The kind of a task's model output; it decides decoding, post-processing and drawing."""

  TEXT = "text"  # free text (captions, answers, summaries...)
  CHOICE = "choice"  # one of the example's meta["class_names"], scored as complete targets
  BOXES = "boxes"  # location tokens read as boxes (detection, localization, refexp)
  KEYPOINTS = "keypoints"  # 17 COCO joints as location tokens + visibility labels
  DEPTH = "depth"  # a grey image read as metres
  NORMALS = "normals"  # an RGB image read as unit surface normals
  SEGMENTATION = "segmentation"  # a colour-coded image read as instance masks
  IMAGE = "image"  # a generated picture (generation, inpainting, denoising...)
  TEXT_MASK = "text+mask"  # an answer plus a white-on-black mask image (grounded VQA)

  @property
  def has_text(self) -> bool:
    """Whether the model writes a text target for this kind (otherwise EOS only)."""
    return self not in _IMAGE_ONLY

  @property
  def has_image(self) -> bool:
    """Whether the model writes a target image for this kind."""
    return self in _IMAGE_ONLY or self is Output.TEXT_MASK


_IMAGE_ONLY = (Output.DEPTH, Output.NORMALS, Output.SEGMENTATION, Output.IMAGE)


class Metric(enum.Enum):
  """How a task's predictions are scored (each beside an input-free baseline)."""

  ACCURACY = "accuracy"  # exact string match of the answer
  VQA_ACCURACY = "vqa_accuracy"  # min(#annotators agreeing / 3, 1)
  CIDER = "caption_cider"  # CIDEr-D against the references
  ROUGE_L = "rouge_l"
  EXACT_MATCH = "exact_match"  # normalised (case, final period, spaces) exact match
  BOX_IOU = "box_iou"  # refexp: first box at IoU >= 0.5
  DETECTION_MAP = "detection_map"  # COCO AP50
  KEYPOINT_OKS = "keypoint_oks"
  DEPTH_RMSE = "depth_rmse"
  NORMAL_ANGLE = "normal_angle"  # mean angle error in degrees
  SEGMENTATION_IOU = "segmentation_iou"
  IMAGE_PSNR = "image_psnr"  # PSNR against the target image at the VQ-GAN resolution
  GROUNDED_VQA = "grounded_vqa"  # VQA accuracy, the mask's IoU beside it
  # Image metrics (Task.image_metrics): every instance of an image at once, by COCOeval.
  COCO_KEYPOINT_AP = "coco_keypoint_ap"  # persons localized, then each one's joints
  COCO_MASK_AP = "coco_mask_ap"  # every class of the image asked for, its masks scored


# Which metrics suit which output kind.
METRICS: Dict[Output, Tuple[Metric, ...]] = {
  Output.TEXT: (
    Metric.ACCURACY,
    Metric.VQA_ACCURACY,
    Metric.CIDER,
    Metric.ROUGE_L,
    Metric.EXACT_MATCH,
  ),
  Output.CHOICE: (Metric.ACCURACY,),
  Output.BOXES: (Metric.BOX_IOU, Metric.DETECTION_MAP),
  Output.KEYPOINTS: (Metric.KEYPOINT_OKS,),
  Output.DEPTH: (Metric.DEPTH_RMSE,),
  Output.NORMALS: (Metric.NORMAL_ANGLE,),
  Output.SEGMENTATION: (Metric.SEGMENTATION_IOU,),
  Output.IMAGE: (Metric.IMAGE_PSNR,),
  Output.TEXT_MASK: (Metric.GROUNDED_VQA,),
}


# Which image metrics suit which output kind. An image metric reads whole records of the
# task's builder (every annotated instance, crowd regions included) and runs its own
# inference on the image (unified_io.eval.image_metrics), beside the per-example metric.
IMAGE_METRICS: Dict[Output, Tuple[Metric, ...]] = {
  Output.KEYPOINTS: (Metric.COCO_KEYPOINT_AP,),
  Output.SEGMENTATION: (Metric.COCO_MASK_AP,),
}


def as_text(value, field: str = "text") -> str:
  """A TFDS text value as str; bytes that are not UTF-8 skip the record, naming `field`."""
  if not isinstance(value, bytes):
    return str(value)
  try:
    return value.decode("utf-8")
  except UnicodeDecodeError as e:  # the pipeline counts it and logs the task and example id
    raise SkipExample(f"{field} is not valid UTF-8") from e


def _as_enum(cls, value, task: str, what: str):
  """`value` (a member or its string value) as a member of `cls`; ValueError naming the task."""
  if isinstance(value, cls):
    return value
  try:
    return cls(value)
  except ValueError:
    known = ", ".join(m.value for m in cls)
    raise ValueError(f"Task {task}: unknown {what} {value!r}; known: {known}") from None


class SkipExample(Exception):
  """Raised by a preprocessor for an example it cannot turn into a training example."""


# How a prompt tells the model its task (TaskContext.conditioning, config.data.conditioning):
# "prompt" is the template's natural-language instruction with its arguments filled in (what
# the released models read); "task_token" is the task's marker (`task_token`) followed by the
# template's arguments only, the task-prefix conditioning of the LiT-decoder study
# (docs/ablations.md).
CONDITIONINGS = ("prompt", "task_token")
# How targets list several objects (config.data.object_order): "random", a fresh order per
# example (the paper, A.1.2); "raster", sorted by their boxes' top-left corners, top to
# bottom then left to right (vision_logic.raster_order).
OBJECT_ORDERS = ("random", "raster")
# Between the arguments of a multi-argument template under task-token conditioning (a
# premise and its hypothesis, a subject and its object), so their boundary stays visible.
TASK_TOKEN_ARG_SEPARATOR = " ; "


def task_token(name: str) -> str:
  """The marker of task `name` under task-token conditioning: "NAME:", e.g. "builtin_vqa:".

  The task's name, so it is unique over the registry by construction, in plain text, so every
  tokenizer encodes it (SentencePiece with byte fallback never needs <unk>) without claiming
  an id: the official layout has no spare extra id (100 span-corruption sentinels + 1000
  location bins fill all 1100), and a sentinel already means "a span was cut here". The
  colon ends the marker the way the study's "coco:" prefix does; no task name contains one,
  so no marker's text (hence ids) is a prefix of another's. It is one whitespace-delimited
  word, which SentencePiece segments on its own: the marker's ids are the same whatever
  arguments follow. With the shipped tiny tokenizer "builtin_vqa:" is 7 pieces (a bracketed
  "[builtin_vqa]" would be 11: "[" breaks the "▁built" piece).
  """
  return f"{name}:"


def task_token_prompt(name: str, args=()) -> str:
  """The prompt of task `name` under task-token conditioning: its marker alone when there are
  no arguments, else the marker and the arguments joined by TASK_TOKEN_ARG_SEPARATOR
  ("builtin_relationship: <subject> ; <object>")."""
  token = task_token(name)
  return f"{token} {TASK_TOKEN_ARG_SEPARATOR.join(map(str, args))}" if args else token


@dataclasses.dataclass(frozen=True)
class TaskContext:
  """What preprocessors need to know about the model they feed."""

  layout: vocab.VocabLayout = dataclasses.field(default_factory=vocab.VocabLayout.official)
  input_image_size: int = 384
  target_image_size: int = 256
  max_depth: float = 10.0  # metres mapped to white in depth target images (NYU: 10 m)
  paraphrase: bool = False  # False: always the official template (the first one)
  # The split the examples are for ("train", "validation", "test"); held-out-concept
  # variants filter train and validation only (unified_io/data/concept_split.py).
  split: str = "train"
  # One of CONDITIONINGS: how `Task.prompt` (and text.prompt) names the task to the model.
  conditioning: str = "prompt"
  # One of OBJECT_ORDERS: the order of boxes in box-list targets and of the palette colours
  # given to instances in segmentation targets.
  object_order: str = "random"
  # The registered name of the task whose example is being made; its marker under task-token
  # conditioning. Set by `data.pipeline.prepare` (and by concept_split.variant for its base):
  # the text preprocessors (text.prompt) are closures shared by several tasks and do not know
  # their task's name, unlike Task.prompt. "" outside the pipeline.
  task: str = ""

  def __post_init__(self):
    if self.conditioning not in CONDITIONINGS:
      raise ValueError(
        f"config.data.conditioning={self.conditioning!r} is not one of: {', '.join(CONDITIONINGS)}"
      )
    if self.object_order not in OBJECT_ORDERS:
      raise ValueError(
        f"config.data.object_order={self.object_order!r} is not one of: {', '.join(OBJECT_ORDERS)}"
      )


@dataclasses.dataclass(frozen=True)
class Task:
  name: str
  group: str
  builder: str  # TFDS name with config, e.g. "uio_builtin_scenes/scenes" or "coco/2017"
  preprocess: Callable[[dict, np.random.Generator, TaskContext], dict]
  prompts: Tuple[str, ...]  # templates; prompts[0] is the official one
  splits: Mapping[str, str] = dataclasses.field(
    default_factory=lambda: {"train": "train", "validation": "validation", "test": "test"}
  )
  loss_weight: float = 1.0
  size: Optional[int] = None  # train examples, for mixing rates; None: read from TFDS info
  output: Output = Output.TEXT  # what the model writes (a member or its string value)
  # How it is scored; must suit `output` (METRICS). None: a training-only task.
  metric: Optional[Metric] = None
  description: str = ""
  # (field, value): use only records whose top-level `field` equals `value`, e.g. one task
  # kind of a split that mixes several. The pipeline indexes matching records once.
  record_filter: Optional[Tuple[str, str]] = None
  # Scored over the split's whole images beside `metric`; each must suit `output`
  # (IMAGE_METRICS), e.g. COCO keypoint AP with two-stage inference.
  image_metrics: Tuple[Metric, ...] = ()

  def __post_init__(self):
    if self.group not in GROUPS:
      raise ValueError(f"Task {self.name}: unknown group {self.group!r}; groups are {GROUPS}")
    if not self.prompts:
      raise ValueError(f"Task {self.name}: needs at least one prompt template")
    output = _as_enum(Output, self.output, self.name, "output kind")
    object.__setattr__(self, "output", output)
    image_metrics = tuple(_as_enum(Metric, m, self.name, "metric") for m in self.image_metrics)
    object.__setattr__(self, "image_metrics", image_metrics)
    for m in image_metrics:
      if m not in IMAGE_METRICS.get(output, ()):
        suits = ", ".join(m.value for m in IMAGE_METRICS.get(output, ())) or "none"
        raise ValueError(
          f"Task {self.name}: image metric {m.value} does not suit output {output.value}; "
          f"it takes {suits}"
        )
    if self.metric is None:  # trains, but evaluation refuses it
      return
    metric = _as_enum(Metric, self.metric, self.name, "metric")
    object.__setattr__(self, "metric", metric)
    if metric not in METRICS[output]:
      raise ValueError(
        f"Task {self.name}: metric {metric.value} does not suit output "
        f"{output.value}; it takes {', '.join(m.value for m in METRICS[output])}"
      )

  def prompt(self, rng: np.random.Generator, ctx: TaskContext, *args) -> str:
    """The official template (or, with ctx.paraphrase, a random one) filled with args; with
    ctx.conditioning "task_token", the task's marker and the args alone ("builtin_vqa: what
    color is the circle ?"), args joined by TASK_TOKEN_ARG_SEPARATOR."""
    # The template is drawn under either conditioning, so both consume the same random
    # numbers: the two see the same examples (crops, picked objects), only their prompts differ.
    template = (
      self.prompts[0] if not ctx.paraphrase else self.prompts[int(rng.integers(len(self.prompts)))]
    )
    if ctx.conditioning == "task_token":
      return task_token_prompt(self.name, args)
    return template.format(*args)


_REGISTRY: Dict[str, Task] = {}


def register(task: Task) -> Task:
  if task.name in _REGISTRY and _REGISTRY[task.name] != task:
    raise ValueError(f"Task {task.name} is already registered")
  _REGISTRY[task.name] = task
  return task


def get(name: str) -> Task:
  if name not in _REGISTRY:
    raise KeyError(f"Unknown task {name!r}; registered tasks: {', '.join(sorted(_REGISTRY))}")
  return _REGISTRY[name]


def all_tasks() -> Dict[str, Task]:
  return dict(_REGISTRY)
