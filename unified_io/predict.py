"""Ask a trained Unified-IO one question about one image; print the answer, draw the result.

  python -m unified_io.predict --workdir=workdir/tiny --image=photo.png --task=detection \
      --out=result.png
  python -m unified_io.predict --workdir=workdir/tiny --image=photo.png \
      --prompt="What does the image describe ?"
  python -m unified_io.predict --workdir=workdir/tiny --task=image_generation \
      --arg="a red circle to the left of a blue square" --out=generated.png

--task fills the official prompt template (unified_io/data/prompts.py) with --arg (a class
name, an expression, a question; region tasks take --box=x1,y1,x2,y2 in image pixels) and
picks the output kind and post-processing. Without --task the prompt is used as given and
the answer is text (boxes are drawn if it contains location tokens).

Python API: `predict(predictor, image, prompt, task=None)` returns a dict with "text" (and,
for text outputs, "log_likelihood": the greedy output's summed token log-probability) and,
by task, "boxes" (pixel x1, y1, x2, y2 of the original image) + "labels", "keypoints"
[17, 3] (x, y, visibility), "masks" + "labels", "depth" (metres), "normals" (unit
vectors) or "image" (a generated image in [0, 1]).
"""
from __future__ import annotations

from typing import Optional, Sequence

from absl import app
from absl import flags
import numpy as np
from ml_collections import config_flags

from unified_io import checkpointing
from unified_io import image_preprocessing
from unified_io import locations
from unified_io import postprocess
from unified_io import predictor as predictor_lib
from unified_io import visualize
from unified_io.data import prompts

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


def main(argv):
  checkpointing.quiet_library_logs()
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not _WORKDIR.value and not (_CONFIG.value and _CHECKPOINT.value):
    raise app.UsageError("Pass --workdir, or both --config and --checkpoint")
  if not _PROMPT.value and not _TASK.value:
    raise app.UsageError("Pass --prompt or --task")
  image = None
  if _IMAGE.value:
    try:
      image = image_preprocessing.load_image(_IMAGE.value)
    except (OSError, ValueError) as e:
      raise app.UsageError(f"Cannot read --image={_IMAGE.value}: {e}") from e
  config = _CONFIG.value or predictor_lib.load_config(_WORKDIR.value)
  predictor = predictor_lib.Predictor.from_workdir(_WORKDIR.value, config=config,
                                                   checkpoint=_CHECKPOINT.value)
  image_hw = np.asarray(image).shape[:2] if image is not None else (config.model.image_size,) * 2
  box = [float(v) for v in _BOX.value] if _BOX.value else None
  try:
    prompt = _PROMPT.value or make_prompt(_TASK.value, image_hw, _ARG.value, box,
                                          predictor.layout)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  if image is None and _TASK.value not in (None, "image_generation"):
    raise app.UsageError(f"--task={_TASK.value} needs --image")
  result = predict(predictor, image, prompt, _TASK.value, seed=_SEED.value, region=box)
  print(f"prompt: {prompt}")
  print(f"answer: {result['text']}")
  for key in ("boxes", "labels", "keypoints"):
    if result.get(key) is not None:
      print(f"{key}: {np.round(np.asarray(result[key]), 1).tolist() if key != 'labels' else result[key]}")
  if _OUT.value:
    visualize.save(picture(image, result), _OUT.value)
    print(f"wrote {_OUT.value}")
  if result.get("malformed"):
    print(f"note: {result['malformed']} malformed parts of the output were dropped")


if __name__ == "__main__":
  # Flags only when run as a program: the functions above are a library too.
  _CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (default: WORKDIR's).")
  _WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir (config + checkpoints).")
  _CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Workdir, step dir or converted params.")
  _IMAGE = flags.DEFINE_string("image", None, "Input image file.")
  _PROMPT = flags.DEFINE_string("prompt", None, "The prompt, used as given.")
  _TASK = flags.DEFINE_enum("task", None, sorted(TASKS), "Fill this task's official prompt.")
  _ARG = flags.DEFINE_string("arg", "", "The prompt argument of --task (question, class...).")
  _BOX = flags.DEFINE_list("box", None, "x1,y1,x2,y2 pixels, for region tasks.")
  _OUT = flags.DEFINE_string("out", None, "Write a picture of the result here (PNG).")
  _SEED = flags.DEFINE_integer("seed", 0, "Sampling seed for image outputs.")
  app.run(main)
