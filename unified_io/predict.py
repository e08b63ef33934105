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

Python API: `unified_io.eval.inference.predict` (what it returns is documented there).
"""

from absl import app
from absl import flags
import numpy as np
from ml_collections import config_flags

from unified_io.common import checkpointing
from unified_io.train import config_check
from unified_io.common import image_preprocessing
from unified_io.common import visualize
from unified_io.eval import inference
from unified_io.eval import predictor as predictor_lib


def parse_box(values):
  """--box's values -> [x1, y1, x2, y2] floats (None without --box); ValueError naming the
  flag unless they are 4 finite numbers."""
  if not values:
    return None
  given = ",".join(values)
  box = []
  for value in values:
    try:
      box.append(float(value))
    except ValueError:
      raise ValueError(
        f"--box={given}: {value!r} is not a number; pass 4 numbers x1,y1,x2,y2 (pixels)"
      ) from None
  if len(box) != 4:
    raise ValueError(f"--box={given} has {len(box)} numbers; pass 4: x1,y1,x2,y2 (pixels)")
  if not np.all(np.isfinite(box)):
    raise ValueError(f"--box={given} must be finite numbers x1,y1,x2,y2 (pixels)")
  return box


def main(argv):
  checkpointing.quiet_library_logs()
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not _WORKDIR.value and not (_CONFIG.value and _CHECKPOINT.value):
    raise app.UsageError("Pass --workdir, or both --config and --checkpoint")
  if not _PROMPT.value and not _TASK.value:
    raise app.UsageError("Pass --prompt or --task")
  try:
    box = parse_box(_BOX.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  image = None
  if _IMAGE.value:
    try:
      image = image_preprocessing.load_image(_IMAGE.value)
    except (OSError, ValueError) as e:
      raise app.UsageError(f"Cannot read --image={_IMAGE.value}: {e}") from e
  try:  # a missing or bad config: one clear error, before anything is built
    config = config_check.command_config(_CONFIG.value, _WORKDIR.value)
  except config_check.ConfigError as e:
    raise app.UsageError(str(e)) from None
  try:
    params = predictor_lib.load_params(config, _CHECKPOINT.value or _WORKDIR.value)
  except (OSError, ValueError) as e:  # none there, corrupt (CheckpointError) or not fitting
    raise app.UsageError(str(e)) from e
  predictor = predictor_lib.Predictor(config, params)
  image_hw = np.asarray(image).shape[:2] if image is not None else (config.model.image_size,) * 2
  try:
    prompt = _PROMPT.value or inference.make_prompt(
      _TASK.value, image_hw, _ARG.value, box, predictor.layout
    )
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  if image is None and _TASK.value not in (None, "image_generation"):
    raise app.UsageError(f"--task={_TASK.value} needs --image")
  result = inference.predict(predictor, image, prompt, _TASK.value, seed=_SEED.value, region=box)
  print(f"prompt: {prompt}")
  if result.get("prompt_truncated"):
    print(result["prompt_truncated"].notice(), flush=True)
  print(f"answer: {result['text']}")
  for key in ("boxes", "labels", "keypoints"):
    if result.get(key) is not None:
      value = result[key] if key == "labels" else np.round(np.asarray(result[key]), 1).tolist()
      print(f"{key}: {value}")
  if _OUT.value:
    visualize.save(inference.picture(image, result, config.data.max_depth), _OUT.value)
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
  _TASK = flags.DEFINE_enum(
    "task", None, sorted(inference.TASKS), "Fill this task's official prompt."
  )
  _ARG = flags.DEFINE_string("arg", "", "The prompt argument of --task (question, class...).")
  _BOX = flags.DEFINE_list("box", None, "x1,y1,x2,y2 pixels, for region tasks.")
  _OUT = flags.DEFINE_string("out", None, "Write a picture of the result here (PNG).")
  _SEED = flags.DEFINE_integer("seed", 0, "Sampling seed for image outputs.")
  app.run(main)
