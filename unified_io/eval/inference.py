"""One prompt about one image through a trained model: the structured answer and a picture.

`predict(predictor, image, prompt, task=None)` returns a dict with "text" (and, for text
outputs, "log_likelihood": the greedy output's summed token log-probability) and, by
task, "boxes" (pixel x1, y1, x2, y2 of the original image) + "labels", "keypoints"
[17, 3] (x, y, visibility), "masks" + "labels", "depth" (metres), "normals" (unit vectors)
or "image" (a generated image in [0, 1]): the fields of the task's output kind
(`unified_io.eval.outputs`), decoded and post-processed exactly as evaluation does.
A prompt cut to fit the model's text input adds "prompt_truncated" (see `predict`).
`python -m unified_io.predict` is its command line; the GRIT runner calls it per sample.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from unified_io.common import locations
from unified_io.common import visualize
from unified_io.data import prompts
from unified_io.data.tasks import registry as tasks_lib
from unified_io.eval import outputs

O = tasks_lib.Output
# task -> (prompt key, output kind, what the arguments are). Classification here is free
# text: a lone prompt has no answer options to choose from.
TASKS = {
  "caption": ("image_captioning", O.TEXT, ""),
  "vqa": ("vqa", O.TEXT, "question"),
  "classification": ("image_classification", O.TEXT, ""),
  "categorization": ("object_categorization", O.TEXT, "box"),
  "region_caption": ("region_captioning", O.TEXT, "box"),
  "detection": ("detection", O.BOXES, ""),
  "localization": ("localization", O.BOXES, "class name"),
  "refexp": ("refexp", O.BOXES, "expression"),
  "keypoints": ("keypoint", O.KEYPOINTS, "box"),
  "depth": ("depth", O.DEPTH, ""),
  "normals": ("surface_normal", O.NORMALS, ""),
  "segmentation": ("segmentation", O.SEGMENTATION, "class name"),
  "image_generation": ("image_generation", O.IMAGE, "caption"),
  "inpainting": ("image_inpainting", O.IMAGE, "box + class name"),
}


def kind_of(task: Optional[str]) -> outputs.Kind:
  """The output kind of a `TASKS` task; free text (boxes if it writes any) without one."""
  return outputs.get(TASKS[task][1] if task else O.TEXT)


def make_prompt(
  task: str, image_hw, arg: str = "", box: Optional[Sequence[float]] = None, layout=None
) -> str:
  if task not in TASKS:
    raise ValueError(f"Unknown task {task!r}; tasks: {', '.join(sorted(TASKS))}")
  key, _, wants = TASKS[task]
  if "box" in wants:
    if box is None:
      raise ValueError(f"--task={task} needs --box=x1,y1,x2,y2 (pixels of the input image)")
    region = locations.box_to_text(box, image_hw, layout)
    arg = f"{region} {arg}".strip() if arg else region
  elif wants and not arg.strip():
    raise ValueError(f"--task={task} needs --arg (the {wants})")
  if key == "vqa":
    arg = arg.lower()
  template = prompts.PROMPTS[key][0]
  return template.format(arg) if "{}" in template else template


def raw_input(prompt: str, image) -> dict:
  """A raw example of the prompt and image alone (no targets), for Predictor.features."""
  return {"prompt": prompt, "image": image, "target_text": "", "target_image": None}


def context(predictor) -> outputs.Context:
  """Post-processing of a predictor's outputs: labels read without image ids."""
  return outputs.Context(predictor.layout, predictor.decode_text, predictor.config.data.max_depth)


def predict(
  predictor,
  image,
  prompt: str,
  task: Optional[str] = None,
  seed: int = 0,
  region: Optional[Sequence[float]] = None,
  name: str = "input",
) -> dict:
  """Structured prediction for one image (uint8/float [H, W, 3] or None) and prompt.

  Decoded and post-processed by the task's output kind (`unified_io.eval.outputs`), as in
  evaluation. region: for task="keypoints", the person box x1, y1, x2, y2 of the prompt
  (pixels); joints the model leaves unlocated are placed at its centre rather than the
  image's. A prompt longer than the model's text input is cut to fit, and the result then
  carries "prompt_truncated" (a predictor.PromptTruncation, `.notice()` says it); `name`
  names the input there.
  """
  if not prompt or not prompt.strip():
    raise ValueError("The prompt is empty")
  kind = kind_of(task)
  image_hw = (
    (predictor.config.model.image_size,) * 2 if image is None else np.asarray(image).shape[:2]
  )
  features, cut = predictor.features_and_truncations([raw_input(prompt, image)], names=[name])
  pred = outputs.decode(kind, predictor, features, seed=seed)[0]
  out = {"prompt": prompt, "task": task, "text": pred["text"]}
  if cut:
    out["prompt_truncated"] = cut[0]
  if "log_likelihood" in pred:
    out["log_likelihood"] = pred["log_likelihood"]
  out.update(kind.parse(pred, image_hw, context(predictor), region))
  return out


def picture(image, result: dict, max_depth: Optional[float] = None):
  """The input with the result drawn on it, and beside it the map or image it is."""
  kind = kind_of(result.get("task"))
  tiles = []
  if image is not None:
    drawn = kind.draw(image, result, 256, max_depth) if kind.draws_on_input else None
    if drawn is None:
      drawn, _ = visualize.upscale(visualize.as_pil(image), 256)
    tiles.append((drawn, result["prompt"]))
  if not kind.draws_on_input:
    drawn = kind.draw(None, result, 256, max_depth)
    if drawn is not None:
      tiles.append((drawn, kind.label))
  if result.get("text"):
    tiles.append((None, f"answer: {result['text']}"))
  return visualize.grid([tiles], tile_size=(256, 256))
