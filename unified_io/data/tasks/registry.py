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
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from unified_io.common import vocab

# The paper's task groups (Table 1), in its order.
GROUPS = ("image_synthesis", "sparse_labelling", "dense_labelling", "image_classification",
          "image_captioning", "vision_language", "nlp", "language_modelling")

# Paper §3.4: groups are sampled at 1/8 each, except image synthesis 3/16 and dense
# labelling 1/16.
GROUP_RATES = {group: 1 / 8 for group in GROUPS}
GROUP_RATES.update(image_synthesis=3 / 16, dense_labelling=1 / 16)


class SkipExample(Exception):
  """Raised by a preprocessor for an example it cannot turn into a training example."""


@dataclasses.dataclass(frozen=True)
class TaskContext:
  """What preprocessors need to know about the model they feed."""
  layout: vocab.VocabLayout = dataclasses.field(default_factory=vocab.VocabLayout.official)
  input_image_size: int = 384
  target_image_size: int = 256
  max_depth: float = 10.0  # metres mapped to white in depth target images (NYU: 10 m)
  paraphrase: bool = False  # False: always the official template (the first one)


@dataclasses.dataclass(frozen=True)
class Task:
  name: str
  group: str
  builder: str  # TFDS name with config, e.g. "uio_builtin_scenes/scenes" or "coco/2017"
  preprocess: Callable[[dict, np.random.Generator, TaskContext], dict]
  prompts: Tuple[str, ...]  # templates; prompts[0] is the official one
  splits: Mapping[str, str] = dataclasses.field(
      default_factory=lambda: {"train": "train", "validation": "validation", "test": "test"})
  loss_weight: float = 1.0
  size: Optional[int] = None  # train examples, for mixing rates; None: read from TFDS info
  output: str = "text"  # "text", "image" or "text+image"
  metric: Optional[str] = None  # name of the evaluator that scores this task's predictions
  description: str = ""
  # (field, value): use only records whose top-level `field` equals `value`, e.g. one task
  # kind of a split that mixes several. The pipeline indexes matching records once.
  record_filter: Optional[Tuple[str, str]] = None

  def __post_init__(self):
    if self.group not in GROUPS:
      raise ValueError(f"Task {self.name}: unknown group {self.group!r}; groups are {GROUPS}")
    if not self.prompts:
      raise ValueError(f"Task {self.name}: needs at least one prompt template")
    if self.output not in ("text", "image", "text+image"):
      raise ValueError(f"Task {self.name}: output must be text, image or text+image")

  def prompt(self, rng: np.random.Generator, ctx: TaskContext, *args) -> str:
    """The official template (or, with ctx.paraphrase, a random one) filled with args."""
    template = self.prompts[0] if not ctx.paraphrase else self.prompts[
        int(rng.integers(len(self.prompts)))]
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
