"""One prompt about one image through a trained model: the structured answer and a picture.

`predict(predictor, image, prompt, task=None)` returns a dict with "text" (and, for text
outputs, "log_likelihood": the greedy output's summed token log-probability) and, by
task, "boxes" (pixel x1, y1, x2, y2 of the original image) + "labels", "keypoints"
[17, 3] (x, y, visibility), "masks" + "labels", "depth" (metres), "normals" (unit vectors)
or "image" (a generated image in [0, 1]). `python -m unified_io.predict` is its command
line; the GRIT runner calls it per sample.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from unified_io.common import locations
from unified_io.common import visualize
from unified_io.data import prompts
from unified_io.eval import postprocess
from unified_io.eval import predictor as predictor_lib

# task -> (prompt key, output kind, what the arguments are)
TASKS = {
    "caption": ("image_captioning", "text", ""),
    "vqa": ("vqa", "text", "question"),
    "classification": ("image_classification", "text", ""),
    "categorization": ("object_categorization", "text", "box"),
    "region_caption": ("region_captioning", "text", "box"),
    "detection": ("detection", "boxes", ""),
    "localization": ("localization", "boxes", "class name"),
    "refexp": ("refexp", "boxes", "expression"),
    "keypoints": ("keypoint", "keypoints", "box"),
    "depth": ("depth", "depth", ""),
    "normals": ("surface_normal", "normals", ""),
    "segmentation": ("segmentation", "masks", "class name"),
    "image_generation": ("image_generation", "image", "caption"),
    "inpainting": ("image_inpainting", "image", "box + class name"),
}
IMAGE_OUTPUTS = ("depth", "normals", "masks", "image")


def make_prompt(task: str, image_hw, arg: str = "", box: Optional[Sequence[float]] = None,
                layout=None) -> str:
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


def predict(predictor, image, prompt: str, task: Optional[str] = None, seed: int = 0,
            region: Optional[Sequence[float]] = None) -> dict:
  """Structured prediction for one image (uint8/float [H, W, 3] or None) and prompt.

  region: for task="keypoints", the person box x1, y1, x2, y2 of the prompt (pixels); joints
  the model leaves unlocated are placed at its centre rather than the image's.
  """
  if not prompt or not prompt.strip():
    raise ValueError("The prompt is empty")
  kind = TASKS[task][1] if task else "text"
  image_hw = (predictor.config.model.image_size,) * 2 if image is None else np.asarray(
      image).shape[:2]
  features = predictor.features([raw_input(prompt, image)], names=["input"])
  out = {"prompt": prompt, "task": task}
  layout = predictor.layout
  if kind in IMAGE_OUTPUTS:
    decoding = predictor_lib.image_decoding(kind in ("depth", "normals"))
    images, _ = predictor.image(features, seed=seed, **decoding)
    generated = images[0]
    if kind == "image":
      out["image"] = generated
    elif kind == "depth":
      out["depth"] = postprocess.image_to_depth(generated, image_hw,
                                                predictor.config.data.max_depth)
    elif kind == "normals":
      out["normals"] = postprocess.image_to_normals(generated, image_hw)
    else:
      out["masks"], out["colors"], out["labels"] = postprocess.segmentation_masks(
          generated, image_hw)
    out["text"] = ""
    return out
  mask_fn = predictor.keypoint_mask_fn if kind == "keypoints" else None
  texts, tokens, scores = predictor.text_with_scores(features, logit_mask_fn=mask_fn)
  out["text"], out["log_likelihood"] = texts[0], float(scores[0])
  if kind == "keypoints":
    out["keypoints"], out["malformed"] = postprocess.parse_keypoints(
        tokens[0], layout, image_hw, predictor.decode_text, region=region)
  elif kind == "boxes" or layout.is_location(tokens[0]).any():
    out["boxes"], out["labels"], out["malformed"] = postprocess.parse_boxes(
        tokens[0], layout, image_hw, predictor.decode_text)
  return out


def picture(image, result: dict):
  """The input with the result drawn on it (or beside it, for image outputs)."""
  base = visualize.as_pil(image) if image is not None else None
  tiles = []
  if base is not None:
    big, scale = visualize.upscale(base, 256)
    drawn = big
    if result.get("boxes") is not None and len(result["boxes"]):
      drawn = visualize.draw_boxes(big, result["boxes"],
                                   labels=[l.strip() for l in result["labels"]], scale=scale)
    if result.get("keypoints") is not None:
      drawn = visualize.draw_keypoints(big, result["keypoints"], scale=scale)
    if result.get("masks") is not None and len(result["masks"]):
      drawn = visualize.overlay_masks(big, result["masks"], labels=result["labels"])
    tiles.append((drawn, result["prompt"]))
  if result.get("depth") is not None:
    tiles.append((visualize.colorize_depth(result["depth"]), "depth"))
  if result.get("normals") is not None:
    tiles.append((visualize.colorize_normals(result["normals"]), "surface normals"))
  if result.get("image") is not None:
    tiles.append((visualize.as_pil(result["image"]), "generated image"))
  if result.get("text"):
    tiles.append((None, f"answer: {result['text']}"))
  return visualize.grid([tiles], tile_size=(256, 256))
