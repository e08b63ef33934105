"""Draw N examples of one registered task exactly as the model gets them after preprocessing.

  python -m unified_io.data.show --task=builtin_detection --n=8 --out=/tmp/show_detection.png
  python -m unified_io.data.show --task=builtin_depth --n=4 --out=depth.png \
      --split=validation --data_dir=/tmp/tfds --seed=1 --config=configs/tiny.py

The first thing to run to trust a pipeline. Examples come from the same `MixtureStream` the
trainer reads (the config's sizes and tokenizer, --seed for the stream), so what is drawn is
what the model sees: the resized, padded input image and the prompt and target decoded back
from their token ids (truncation included). One row per example:

- input: the model's input image (patches the encoder never sees, e.g. of masked image
  denoising, greyed out; boxes written in the prompt drawn on it), the prompt underneath.
- target: location tokens of the target turned back into boxes (keypoints with the COCO
  skeleton for keypoint tasks) on the input image, or the target image (depth in viridis;
  normals, segmentation colour maps and generated images as they are), the target text
  underneath (runs of location tokens shortened to [box] / [point]).

Prompts and target texts are printed in full, then the skip and truncation counters, if any.
The built-in dataset (uio_builtin_scenes) is built into --data_dir on first use.
"""

from __future__ import annotations

import types
from typing import List, Optional

from absl import app
from absl import flags
import numpy as np
from ml_collections import config_flags

import vqgan as vqgan_lib
from unified_io.common import checkpointing
from unified_io.common import image_preprocessing
from unified_io.eval import postprocess
from unified_io.common import visualize
from unified_io.data import from_config
from unified_io.common import dense_labels
from unified_io.data import pipeline
from unified_io.data.tasks import registry as tasks_lib
from unified_io.eval import outputs

TILE = 256
# Every caption is padded to this many lines, so all rows are equally tall and the
# picture's size follows from N alone (longer captions are cut with "..."; stdout has all).
# Text-only tasks get no image tiles and more lines instead.
CAPTION_LINES = 6
TEXT_CAPTION_LINES = 16
COLUMNS = ("input + prompt", "target")
ROW_TITLE_WIDTH = 40
PAD = 6
GREY = 0.5  # what patches the encoder never sees are blended towards


def example_spec(config) -> pipeline.ExampleSpec:
  """The config's ExampleSpec; needs only the VQ-GAN's config, not its weights."""
  weights = config.vqgan.get("weights", "")
  vq_config = (
    vqgan_lib.load_config(weights) if weights else vqgan_lib.get_config(config.vqgan.preset)
  )
  # example_spec reads nothing but vq.config; loading the weights would cost time for nothing.
  return from_config.example_spec(config, types.SimpleNamespace(config=vq_config))


def examples(config, task: tasks_lib.Task, n: int, split: str, data_dir: Optional[str], seed: int):
  """(stream, the first n unified examples of a stream of `task` alone)."""
  stream = pipeline.MixtureStream(
    [task.name],
    [1.0],
    example_spec(config),
    seed=seed,
    split=split,
    data_dir=data_dir,
    max_depth=config.data.get("max_depth", 10.0),
    paraphrase=config.data.get("paraphrase", False),
  )
  return stream, [stream.element(i) for i in range(n)]


def input_image(features) -> np.ndarray:
  """[S, S, 3] in [0, 1]: the encoder's input un-normalised, unseen patches greyed."""
  mean = np.asarray(image_preprocessing.IMAGENET_MEAN, np.float32)
  std = np.asarray(image_preprocessing.IMAGENET_STD, np.float32)
  image = np.clip(features["image_inputs"] * std + mean, 0.0, 1.0)
  mask = features["image_input_mask"]
  grid = int(round(np.sqrt(mask.size)))
  patch = image.shape[0] // grid
  # Patch mask [grid * grid] (row-major) -> pixel mask.
  seen = np.kron(mask.reshape(grid, grid), np.ones((patch, patch), bool))
  image[~seen] = 0.2 * image[~seen] + 0.8 * GREY
  return image


def compact(ids, spec: pipeline.ExampleSpec) -> str:
  """Decoded text with each run of location tokens shortened to [box]s / [point]s."""
  layout, tokenizer = spec.tokenizer.layout, spec.tokenizer
  ids = np.asarray(ids)
  eos = np.flatnonzero(ids == layout.eos_id)
  ids = ids[: eos[0]] if eos.size else ids
  ids = ids[ids != layout.pad_id]
  is_location = np.asarray(layout.is_location(ids), bool)
  parts, start = [], 0
  while start < len(ids):
    end = start
    while end < len(ids) and is_location[end] == is_location[start]:
      end += 1
    run = ids[start:end]
    if not is_location[start]:
      parts.append(tokenizer.decode(run).strip())
    elif len(run) % 4 == 0:
      parts.append(" ".join(["[box]"] * (len(run) // 4)))
    else:
      parts.append(" ".join(["[point]"] * (len(run) // 2) + ["[loc]"] * (len(run) % 2)))
    start = end
  return " ".join(p for p in parts if p)


def _with_boxes(image, ids, spec):
  """`image` upscaled to TILE with the boxes written in `ids` (the prompt's) drawn on it."""
  size = image.shape[:2]  # square: location tokens are relative to the padded input
  boxes, _, _ = postprocess.parse_boxes(ids, spec.tokenizer.layout, size)
  big, scale = visualize.upscale(image, TILE)
  return visualize.draw_boxes(big, boxes, scale=scale) if len(boxes) else big


def target_image(task: tasks_lib.Task, features, max_depth: float):
  """The target image in [0, 1] (depth colourised), or None for text-only targets."""
  if not features["image_target_mask"].any():
    return None
  image = (features["image_target_pixels"] + 1.0) / 2.0
  if task.output is tasks_lib.Output.DEPTH:  # grey is hard to read; the task's own scale
    return visualize.colorize_depth(dense_labels.image_to_depth(image, max_depth), max_depth)
  return np.clip(image, 0.0, 1.0)


def row(task: tasks_lib.Task, features, spec: pipeline.ExampleSpec, max_depth: float):
  """[(input tile, prompt caption), (target tile, target caption)] of one example.

  The target is drawn by the task's output kind, as the report draws predictions: boxes
  and joints written in the target text on the input, masks over it; otherwise (or when it
  draws nothing) the target image.
  """
  prompt_ids, target_ids = features["text_inputs"], features["text_targets"]
  seen = input_image(features) if features["image_input_mask"].any() else None
  inputs = drawn = None
  if seen is not None:  # prompt regions (region captioning, keypoints...) on the input
    inputs = _with_boxes(seen, prompt_ids, spec)
    kind = outputs.get(task.output)
    if kind.draws_on_input:
      image = (
        (features["image_target_pixels"] + 1.0) / 2.0
        if features["image_target_mask"].any()
        else None
      )
      ctx = outputs.Context(spec.tokenizer.layout, spec.tokenizer.decode, max_depth)
      target = {"tokens": target_ids, "image": image}
      drawn = kind.draw(seen, kind.parse(target, seen.shape[:2], ctx), TILE, max_depth)
  target = drawn if drawn is not None else target_image(task, features, max_depth)
  text = compact(target_ids, spec)
  if not text and target is None:
    text = "(empty target: EOS only)"
  elif not text and task.output is tasks_lib.Output.DEPTH:
    text = f"(depth: viridis, 0 to {max_depth:g} m)"
  return [(inputs, compact(prompt_ids, spec)), (target, text)]


def layout(rows: List[list]):
  """(tile size, caption lines): no image tiles at all when no row has an image."""
  if any(image is not None for cells in rows for image, _ in cells):
    return (TILE, TILE), CAPTION_LINES
  return (TILE, 0), TEXT_CAPTION_LINES


def picture(rows: List[list]):
  """The grid of rows, every caption padded to the same number of lines."""
  tile, lines = layout(rows)

  def padded(caption):
    return caption + "\n" * (lines - len(visualize.wrap_text(caption, tile[0], lines)))

  rows = [[(image, padded(caption)) for image, caption in cells] for cells in rows]
  return visualize.grid(
    rows,
    tile_size=tile,
    col_titles=list(COLUMNS),
    pad=PAD,
    row_titles=[f"#{i}" for i in range(len(rows))],
    row_title_width=ROW_TITLE_WIDTH,
    max_caption_lines=lines,
  )


def checked_task(task_name: str, n: int, split: str) -> tasks_lib.Task:
  """The task; KeyError listing the registered ones, ValueError for a bad n or split."""
  task = tasks_lib.get(task_name)
  if n < 1:
    raise ValueError(f"--n must be >= 1, got {n}")
  if split not in task.splits:
    raise ValueError(f"Task {task.name} has no split {split!r}; it has {sorted(task.splits)}")
  return task


def show(
  config,
  task_name: str,
  n: int,
  out: str,
  split: str = "train",
  data_dir: Optional[str] = None,
  seed: int = 0,
) -> str:
  """Prints n examples of `task_name` and draws them into `out`; returns the counters."""
  task = checked_task(task_name, n, split)
  data_dir = data_dir or config.data.get("data_dir", "") or None
  stream, features = examples(config, task, n, split, data_dir, seed)
  spec, max_depth = stream.spec, stream.ctx.max_depth
  print(
    f"{task.name} ({task.group}, output {task.output.value}, metric "
    f"{task.metric.value if task.metric else None}), {split} split, seed {seed}"
  )
  for i, f in enumerate(features):
    print(f"#{i} prompt: {spec.tokenizer.decode(f['text_inputs'])}")
    image = "[+ target image]" if f["image_target_mask"].any() else ""
    target = " ".join(t for t in (spec.tokenizer.decode(f["text_targets"]), image) if t)
    print(f"#{i} target: {target}")
  visualize.save(picture([row(task, f, spec, max_depth) for f in features]), out)
  summary = stream.counters.summary()
  if summary:
    print(f"counters: {summary}")
  print(f"wrote {out}")
  return summary


def main(argv):
  checkpointing.quiet_library_logs()
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # User errors get their message, not a traceback (KeyError's lists the known tasks).
  try:
    checked_task(_TASK.value, _N.value, _SPLIT.value)
  except KeyError as e:
    raise app.UsageError(e.args[0]) from None
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  try:
    show(
      _CONFIG.value, _TASK.value, _N.value, _OUT.value, _SPLIT.value, _DATA_DIR.value, _SEED.value
    )
  except FileNotFoundError as e:  # e.g. coco/2017 not prepared in data_dir: says how to
    raise app.UsageError(str(e)) from None


if __name__ == "__main__":
  # Flags only when run as a program: the functions above are a library too.
  _CONFIG = config_flags.DEFINE_config_file("config", "configs/tiny.py", "Model config file.")
  _TASK = flags.DEFINE_string(
    "task", None, "Registered task name, e.g. builtin_detection.", required=True
  )
  _N = flags.DEFINE_integer("n", 8, "Examples to show.")
  _OUT = flags.DEFINE_string("out", None, "Picture to write (PNG).", required=True)
  _SPLIT = flags.DEFINE_enum("split", "train", ["train", "validation", "test"], "Split.")
  _DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: the config's).")
  _SEED = flags.DEFINE_integer("seed", 0, "Stream seed: which records, which random choices.")
  app.run(main)
