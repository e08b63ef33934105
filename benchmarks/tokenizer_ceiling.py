"""What the VQ-GAN alone allows: each image-output task scored on its own targets after a
round trip through the tokenizer (encode, decode), beside the task's input-free baseline.

  .venv/bin/python benchmarks/tokenizer_ceiling.py --config=configs/tiny.py --examples=128

A model that predicted every target code exactly would score the round trip's value, so a
task whose round trip is not clearly above its baseline cannot beat the baseline by a clear
margin with this tokenizer, whatever the training. The validation examples are the ones the
trainer's evaluation scores (the first --examples usable records, the same seeds), and the
metric is the evaluation's own (eval/outputs). Also printed: the metric of the targets
without the round trip (the pixels themselves), which checks the scorer (the best value).
"""

import os
import sys

from absl import app
from absl import flags
from ml_collections import config_flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from unified_io.data import from_config  # noqa: E402
from unified_io.data.tasks import registry as tasks_lib  # noqa: E402
from unified_io.eval import outputs  # noqa: E402
from unified_io.eval import task_eval  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", "configs/tiny.py", "Training config.")
_EXAMPLES = flags.DEFINE_integer("examples", 128, "Validation examples per task.")
_TASKS = flags.DEFINE_list("tasks", [], "Tasks (default: the mixture's image-output tasks).")


def _prediction(image):
  return dict(text="", tokens=np.zeros(0, np.int32), image=image)


def _image_only(task) -> bool:
  """Scored on the output image alone (grounded VQA's score is its text answer's)."""
  kind = outputs.get(task.output)
  return kind.image_decoding is not None and kind.text_decoding is None


def main(_):
  config = _CONFIG.value
  vq = from_config.image_tokenizer(config)
  spec = from_config.example_spec(config, vq)
  ctx = from_config.task_context(config, spec)
  names = _TASKS.value or [
    n for n in from_config.mixture_rates(config)[0] if _image_only(tasks_lib.get(n))
  ]
  data_dir = config.data.get("data_dir") or None
  for name in names:
    task = tasks_lib.get(name)
    examples = task_eval.collect(
      task, spec, ctx, "validation", _EXAMPLES.value, from_config.eval_seed(config), data_dir
    )
    pixels = examples.features["image_target_pixels"]  # [-1, 1]
    decoded = (np.asarray(vq.decode(vq.encode(pixels))) + 1.0) / 2.0
    trip = task_eval.score(examples, [_prediction(d) for d in decoded], spec, config.data.max_depth)
    exact = task_eval.score(
      examples, [_prediction((p + 1.0) / 2.0) for p in pixels], spec, config.data.max_depth
    )
    extra = "".join(f", {k} {v:.4g}" for k, v in (trip.extra or {}).items())
    print(
      f"{name:34s} {trip.metric}: round trip {trip.value:.4g}{extra}, targets "
      f"{exact.value:.4g}, baseline {trip.baseline:.4g} ({trip.baseline_is}), "
      f"{len(examples.raws)} examples"
    )


if __name__ == "__main__":
  app.run(main)
