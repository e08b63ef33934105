"""Each task's share of the training loss under both loss normalizations.

  .venv/bin/python benchmarks/loss_shares.py --config=configs/tiny.py --examples=48

For every task of the config's mixture: its sampling rate, the mean number of target tokens
(text and image codes) of its first --examples training examples as the config makes them,
and its share of the batch loss's gradient weight with config.loss.normalization "tokens"
(rate x tokens, renormalised: the released model's per-token mean) and "examples" (the
rate itself). Sorted by the "tokens" share. A task whose share is a fraction of a percent
gets that fraction of every update, whatever its rate says.
"""

import os
import sys

from absl import app
from absl import flags
from ml_collections import config_flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from unified_io.data import from_config  # noqa: E402
from unified_io.data import pipeline  # noqa: E402
from unified_io.data.tasks import registry as tasks_lib  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", "configs/tiny.py", "Training config.")
_EXAMPLES = flags.DEFINE_integer("examples", 48, "Training examples measured per task.")


def _target_tokens(features) -> int:
  return int(np.sum(features["text_targets"] > 0) + np.sum(features["image_target_mask"]))


def main(_):
  config = _CONFIG.value
  names, rates = from_config.mixture_rates(config)
  spec = from_config.example_spec(config, from_config.image_tokenizer(config))
  ctx = from_config.task_context(config, spec)
  data_dir = config.data.get("data_dir") or None
  tokens = {}
  for name in names:
    task = tasks_lib.get(name)
    src = pipeline.source(task.builder, task.splits["train"], data_dir, task.record_filter)
    counts, index = [], 0
    while len(counts) < _EXAMPLES.value and index < len(src):
      rng = np.random.default_rng([config.seed, index])
      try:
        features, _, _ = pipeline.prepare(task, src[index], rng, spec, ctx)
        counts.append(_target_tokens(features))
      except tasks_lib.SkipExample:
        pass
      index += 1
    tokens[name] = float(np.mean(counts))
  weight = {n: r * tokens[n] for n, r in zip(names, rates)}
  total_weight, total_rate = sum(weight.values()), sum(rates)
  print(f"{config.data.mixture}: {len(names)} tasks, {_EXAMPLES.value} examples each")
  print(
    f"{'task':34s} {'rate':>7s} {'tokens':>7s} {'share (tokens)':>15s} {'share (examples)':>17s}"
  )
  for name, rate in sorted(zip(names, rates), key=lambda nr: -weight[nr[0]]):
    print(
      f"{name:34s} {rate:7.3f} {tokens[name]:7.1f} {weight[name] / total_weight:15.3f} "
      f"{rate / total_rate:17.3f}"
    )


if __name__ == "__main__":
  app.run(main)
