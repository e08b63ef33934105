"""Evaluate a model on registered tasks: predictions, metrics beside a trivial baseline, report.

  python -m unified_io.evaluate --workdir=workdir/tiny            # latest checkpoint
  python -m unified_io.evaluate --workdir=workdir/tiny --tasks=builtin_vqa,builtin_depth \
      --split=test --num_examples=100 --out=workdir/tiny/eval_test

Every task has an output kind and a metric (tasks.Task.output, .metric); its kind
(`unified_io.eval.outputs`) decodes the model's predictions and scores them against the
ground truth (the raw examples' `meta`) as a results.Score beside an input-free baseline:
the most frequent answer, the mean box, the mean depth or normal, the whole-image mask, or
another example's ground truth for generation tasks (does the output depend on the prompt
at all?). The steps are separate functions, `collect`, `predict`, `score` and `loss`:
with several processes each predicts a whole-batch slice of every task's examples and the
predictions are gathered before scoring (eval/host_split.py), so the metrics are those of
one process. A task's image metrics (Task.image_metrics: COCO keypoint AP with two-stage
inference, COCO mask AP) run over the first num_examples images of its split beside its
metric and land in its Score.extra (eval/image_metrics.py). The trainer runs it through
eval/evaluators.py (config.evals).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from unified_io.common import rng_streams
from unified_io.model import builder as model_builder
from unified_io.model import losses
from unified_io.eval import concept_breakdown
from unified_io.eval import host_split
from unified_io.eval import image_metrics
from unified_io.eval import outputs
from unified_io.eval import report
from unified_io.eval import results as results_lib
from unified_io.data import from_config
from unified_io.data import pipeline
from unified_io.data.tasks import registry as tasks_lib
from unified_io.data.tasks import vl_vcr_visualcomet


@dataclasses.dataclass
class TaskExamples:
  task: tasks_lib.Task
  raws: List[dict]
  features: Dict[str, np.ndarray]
  skipped: collections.Counter


def collect(
  task: tasks_lib.Task,
  spec: pipeline.ExampleSpec,
  ctx: tasks_lib.TaskContext,
  split: str,
  num_examples: int,
  seed: int,
  data_dir: Optional[str] = None,
) -> TaskExamples:
  """The first `num_examples` usable records of a task's split, in record order."""
  src = pipeline.source(task.builder, task.splits[split], data_dir, task.record_filter)
  raws, rows, skipped = [], [], collections.Counter()
  for index in range(len(src)):
    if len(raws) == num_examples:
      break
    rng = np.random.default_rng([seed, rng_streams.EVAL_EXAMPLE, index])
    try:
      features, raw, _ = pipeline.prepare(task, src[index], rng, spec, ctx)
    except tasks_lib.SkipExample as e:
      skipped[str(e)] += 1
      continue
    raws.append(raw)
    rows.append(features)
  if not raws:
    raise ValueError(
      f"{task.name}: no usable example in {task.builder}[{split}] (skipped: {dict(skipped)})"
    )
  return TaskExamples(task, raws, {k: np.stack([r[k] for r in rows]) for k in rows[0]}, skipped)


# ------------------------------------------------------------------------------ predictions


def _slice(features, start, stop):
  return {k: v[start:stop] for k, v in features.items()}


def subset(examples: TaskExamples, rows: range) -> TaskExamples:
  """The examples of `rows` (a contiguous range), e.g. one host's part."""
  return TaskExamples(
    examples.task,
    examples.raws[rows.start : rows.stop],
    _slice(examples.features, rows.start, rows.stop),
    examples.skipped,
  )


def host_batches(num_examples: int, batch_size: int, shard: Tuple[int, int]) -> range:
  """The examples this host predicts: whole batches of the one-process order, so every
  batch (its shape, and the image-sampling seed of its first example) is the same as
  with one process."""
  num_batches = -(-num_examples // batch_size)
  batches = host_split.host_rows(num_batches, *shard)
  return range(
    min(batches.start * batch_size, num_examples), min(batches.stop * batch_size, num_examples)
  )


def predict(
  predictor,
  examples: TaskExamples,
  batch_size: int,
  seed: int = 0,
  image_decoding: Optional[dict] = None,
  first_index: int = 0,
  text_decoding: Optional[dict] = None,
) -> List[dict]:
  """Per example, `outputs.decode`'s raw prediction ("text", "tokens", "image"...).

  Choices pick among the examples' meta["class_names"] (never an out-of-set answer). Image
  samples of the batch starting at example `start` are seeded with seed + 1000 * start
  (counted from `first_index`, the position of `examples` in the whole set).
  image_decoding: `Predictor.image` keyword arguments instead of the task kind's.
  text_decoding: `Predictor.text_with_scores` keyword arguments instead of the kind's
  (`outputs.decode`; sampling is seeded like the images).
  """
  kind = outputs.get(examples.task.output)
  n = len(examples.raws)
  # Each example's own options: multiple-choice sets (COPA, HellaSwag...) differ per example.
  options = [raw["meta"].get("class_names") for raw in examples.raws]
  preds = []
  for start in range(0, n, batch_size):
    part = _slice(examples.features, start, start + batch_size)
    rows = len(part["text_inputs"])
    batch_options = options[start : start + rows]
    preds += outputs.decode(
      kind,
      predictor,
      part,
      seed=seed + 1000 * (first_index + start),
      options=None if batch_options[0] is None else [list(o) for o in batch_options],
      image_decoding=image_decoding,
      text_decoding=text_decoding,
    )
  return preds


# ---------------------------------------------------------------------------------- scoring


def context(spec, max_depth: float) -> outputs.Context:
  """Post-processing as evaluation reads outputs: labels with the spec's tokenizer."""
  return outputs.Context(spec.tokenizer.layout, spec.tokenizer.decode, max_depth)


def score(
  examples: TaskExamples, preds: Sequence[dict], spec, max_depth: float
) -> results_lib.Score:
  """The task's metric of `preds` (all of its examples' predictions) beside its baseline."""
  return outputs.score(examples.task, examples, preds, context(spec, max_depth))


# ---------------------------------------------------------------------------- loss and run


def _loss_fn(model, vq, padded_text_size):
  @jax.jit
  def run(params, vq_params, batch):
    batch = model_builder.tokenize_image_targets(batch, vq.config, vq_params, padded_text_size)
    text_logits, image_logits = model.apply({"params": params}, batch)
    total, count = losses.example_losses(text_logits, image_logits, batch)
    return jnp.sum(total), jnp.sum(count)

  return run


def loss_sums(
  predictor, loss_fn, examples: TaskExamples, batch_size: int
) -> List[Tuple[float, float]]:
  """Per batch: (summed token loss, target tokens) of the examples' targets (teacher
  forced). Kept per batch so that gathered parts add up in the one-process order."""
  keys = (
    "text_inputs",
    "image_inputs",
    "image_input_mask",
    "text_targets",
    "image_target_pixels",
    "image_target_mask",
  )
  sums = []
  for s in range(0, len(examples.raws), batch_size):
    part = {
      key: jnp.asarray(v)
      for key, v in _slice(examples.features, s, s + batch_size).items()
      if key in keys
    }
    t, c = loss_fn(predictor.params, predictor.vq.params, part)
    sums.append((float(t), float(c)))
  return sums


def mean_loss(sums: Sequence[Tuple[float, float]]) -> float:
  total = count = 0.0
  for t, c in sums:
    total, count = total + t, count + c
  return total / max(count, 1.0)


def loss(predictor, loss_fn, examples: TaskExamples, batch_size: int) -> float:
  """Mean per-token validation loss of the examples' targets (teacher forced)."""
  return mean_loss(loss_sums(predictor, loss_fn, examples, batch_size))


def task_context(predictor, split: str, max_depth: float) -> tasks_lib.TaskContext:
  """How evaluation examples are made for `predictor`'s model: prompts conditioned as its
  config's data.conditioning says (a model trained on task tokens is asked with them; configs
  saved before the key existed used prompts) and its objects ordered as data.object_order
  says (the validation loss then scores the order it trained on), for `split`."""
  ctx = from_config.task_context(predictor.config, predictor.spec)
  # The split tells held-out-concept variants to keep and tag test examples, not skip them.
  return dataclasses.replace(ctx, max_depth=max_depth, split=split)


def evaluate(
  predictor,
  task_names: Sequence[str],
  *,
  split: str,
  num_examples: int,
  batch_size: int,
  seed: int,
  data_dir: Optional[str],
  max_depth: float,
  progress: Callable[[str], None] = print,
  shard: Tuple[int, int] = (0, 1),
) -> Dict[str, results_lib.TaskResult]:
  """Per task: its score beside the baseline, validation loss, examples and predictions.

  shard: (this process, processes). Every process collects the same examples, predicts
  its `host_batches` of them with `predictor` (whose parameters must be on its own
  devices: host_split.host_local_params) and receives the others' predictions; all
  processes return the same results. A task's image metrics add their numbers to its
  score.extra, over the first num_examples images of its split.
  """
  spec = predictor.spec
  ctx = task_context(predictor, split, max_depth)
  loss_fn = _loss_fn(predictor.model, predictor.vq, predictor.model.config.padded_text_size)
  results = {}
  for k, name in enumerate(task_names):
    start = time.time()
    task = tasks_lib.get(name)
    if task.metric is None:
      raise ValueError(f"{name} has no metric: it is a training-only task")
    examples = collect(task, spec, ctx, split, num_examples, seed, data_dir)
    rows = host_batches(len(examples.raws), batch_size, shard)
    mine = subset(examples, rows)
    part = (
      loss_sums(predictor, loss_fn, mine, batch_size),
      predict(predictor, mine, batch_size, seed, first_index=rows.start),
    )
    parts = host_split.gather(part, name) if shard[1] > 1 else [part]
    task_loss = mean_loss(host_split.concatenate([p[0] for p in parts]))
    preds = host_split.concatenate([p[1] for p in parts])
    s = score(examples, preds, spec, max_depth)
    s = concept_breakdown.with_breakdown(  # sameCpt / newCpt where examples are tagged
      s, examples, preds, lambda part, p: score(part, p, spec, max_depth)
    )
    for metric in task.image_metrics:  # whole images, their own inference: in Score.extra
      values = image_metrics.evaluate(
        predictor,
        task,
        metric,
        split=split,
        num_images=num_examples,
        seed=seed,
        data_dir=data_dir,
        progress=progress,
        shard=shard,
      )
      s = dataclasses.replace(s, extra={**s.extra, **values})
    results[name] = results_lib.TaskResult(
      group=task.group,
      score=s,
      loss=task_loss,
      num_examples=len(examples.raws),
      skipped=dict(examples.skipped),
      examples=examples,
      predictions=preds,
    )
    progress(
      f"[{k + 1}/{len(task_names)}] {name}: {s.metric} {s.value:.4g} (baseline "
      f"{s.baseline:.4g}, {s.baseline_is}), loss {task_loss:.3f}, "
      f"{len(examples.raws)} examples, {time.time() - start:.1f} s"
    )
  return joint_scores(results, progress)


# (first task, second task) -> the name of the score "both right on the same example".
JOINT_SCORES = {("vcr_qa", "vcr_qar"): "Q->AR accuracy"}


def joint_scores(results, progress: Callable[[str], None] = print):
  """Adds to the second task's score.extra the joint accuracy of task pairs evaluated
  together (VCR's Q->AR: answer and rationale both right), over their shared example ids."""
  for (first, second), label in JOINT_SCORES.items():
    if first not in results or second not in results:
      continue
    right = {}
    for name in (first, second):
      r = results[name]
      right[name] = {
        raw["meta"]["example_id"]: p["text"].strip() == raw["target_text"].strip()
        for raw, p in zip(r.examples.raws, r.predictions)
      }
    shared = sorted(right[first].keys() & right[second].keys())
    value = vl_vcr_visualcomet.qar_accuracy(
      [right[first][i] for i in shared], [right[second][i] for i in shared]
    )
    result = results[second]
    extra = dict(result.score.extra, **{label: value, f"{label} examples": float(len(shared))})
    results[second] = dataclasses.replace(
      result, score=dataclasses.replace(result.score, extra=extra)
    )
    progress(f"{first} + {second}: {label} {value:.4g} over {len(shared)} shared questions")
  return results


def write(
  results: Dict[str, results_lib.TaskResult],
  out_dir: str,
  step: Optional[int] = None,
  spec=None,
  max_depth: float = report.MAX_DEPTH,
):
  """metrics.json, report.md and one picture per task group into out_dir."""
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "metrics.json"), "w") as f:
    json.dump({"step": step, "tasks": results_lib.summary(results)}, f, indent=2)
  return report.write(results, out_dir, step, spec, max_depth)


def scalars(results: Dict[str, results_lib.TaskResult], prefix: str = "eval/") -> Dict[str, float]:
  """TensorBoard scalars: per task its metric, baseline and loss."""
  out = {}
  for name, r in results.items():
    out[f"{prefix}{name}/{r.score.metric}"] = float(r.score.value)
    out[f"{prefix}{name}/baseline"] = float(r.score.baseline)
    out[f"{prefix}{name}/loss"] = float(r.loss)
    for part in concept_breakdown.PARTS:  # seen / held-out concepts, where tagged
      if part in r.score.extra:
        out[f"{prefix}{name}/{part}"] = float(r.score.extra[part])
  return out
