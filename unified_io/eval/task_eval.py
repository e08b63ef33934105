"""Evaluate a model on registered tasks: predictions, metrics beside a trivial baseline, report.

  python -m unified_io.evaluate --workdir=workdir/tiny            # latest checkpoint
  python -m unified_io.evaluate --workdir=workdir/tiny --tasks=builtin_vqa,builtin_depth \
      --split=test --num_examples=100 --out=workdir/tiny/eval_test

Every task names a metric (tasks.Task.metric); `SCORERS` turns that task's predictions and
ground truth (the raw examples' `meta`) into (score, baseline score). Baselines ignore the
input: the most frequent answer, the mean box, the mean depth or normal, the whole-image
mask, or another example's ground truth for generation tasks (does the output depend on
the prompt at all?). The trainer calls `make_train_evaluator` at config.eval.every_steps
and after the last step.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import time
from typing import Callable, Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from unified_io.model import builder as model_builder
from unified_io.model import losses
from unified_io.eval import metrics
from unified_io.eval import postprocess
from unified_io.eval import predictor as predictor_lib
from unified_io.eval import report
from unified_io.eval import results as results_lib
from unified_io.data import pipeline
from unified_io.data.tasks import registry as tasks_lib


@dataclasses.dataclass
class TaskExamples:
  task: tasks_lib.Task
  raws: List[dict]
  features: Dict[str, np.ndarray]
  skipped: collections.Counter


def collect(task: tasks_lib.Task, spec: pipeline.ExampleSpec, ctx: tasks_lib.TaskContext,
            split: str, num_examples: int, seed: int, data_dir: Optional[str] = None
            ) -> TaskExamples:
  """The first `num_examples` usable records of a task's split, in record order."""
  src = pipeline.source(task.builder, task.splits[split], data_dir, task.record_filter)
  raws, rows, skipped = [], [], collections.Counter()
  for index in range(len(src)):
    if len(raws) == num_examples:
      break
    rng = np.random.default_rng([seed, 17, index])
    try:
      features, raw, _ = pipeline.prepare(task, src[index], rng, spec, ctx)
    except tasks_lib.SkipExample as e:
      skipped[str(e)] += 1
      continue
    raws.append(raw)
    rows.append(features)
  if not raws:
    raise ValueError(f"{task.name}: no usable example in {task.builder}[{split}] "
                     f"(skipped: {dict(skipped)})")
  return TaskExamples(task, raws, {k: np.stack([r[k] for r in rows]) for k in rows[0]}, skipped)


# ------------------------------------------------------------------------------ predictions


def _slice(features, start, stop):
  return {k: v[start:stop] for k, v in features.items()}


def predict(predictor, examples: TaskExamples, batch_size: int, seed: int = 0,
            image_decoding: Optional[dict] = None) -> List[dict]:
  """Per example: {"text", "tokens", "image" ([H, W, 3] in [0, 1] or None), "choice"}.

  image_decoding: `Predictor.image` keyword arguments for image outputs, instead of
  `predictor.image_decoding`'s choice for the task.
  """
  task, n = examples.task, len(examples.raws)
  out = [dict(text="", tokens=np.zeros(0, np.int32), image=None) for _ in range(n)]
  options = examples.raws[0]["meta"].get("class_names")
  for start in range(0, n, batch_size):
    part = _slice(examples.features, start, start + batch_size)
    rows = range(start, min(start + batch_size, n))
    if task.output in ("text", "text+image"):
      if task.metric == "accuracy" and options is not None:
        # Classification answers are scored options: never an out-of-set answer.
        best, _ = predictor.choose(part, [list(options)] * len(rows))
        for i, k in zip(rows, best):
          out[i]["text"] = str(options[int(k)])
      else:
        mask_fn = predictor.keypoint_mask_fn if task.metric == "keypoint_oks" else None
        texts, tokens = predictor.text(part, logit_mask_fn=mask_fn)
        for i, text, ids in zip(rows, texts, tokens):
          out[i]["text"], out[i]["tokens"] = text, ids
    if task.output in ("image", "text+image"):
      decoding = image_decoding or predictor_lib.image_decoding(task.metric in REGRESSION_MAPS)
      images, _ = predictor.image(part, seed=seed + 1000 * start, **decoding)
      for i, image in zip(rows, images):
        out[i]["image"] = image
  return out


# ---------------------------------------------------------------------------------- scorers


def _meta(raw, key, default=None):
  return raw["meta"].get(key, default)


def _majority(values: Sequence[str]) -> str:
  return collections.Counter(values).most_common(1)[0][0]


def _rotate(values: Sequence, by: int = 1) -> list:
  return list(values[by:]) + list(values[:by])


def _target_image01(features, i):
  """The example's target image at the VQ-GAN resolution, [0, 1]."""
  return (features["image_target_pixels"][i] + 1.0) / 2.0


def score_accuracy(ex, preds, spec):
  targets = [r["target_text"] for r in ex.raws]
  model = metrics.accuracy([p["text"].strip() for p in preds], targets)
  majority = _majority(targets)
  return "accuracy", model, metrics.accuracy([majority] * len(targets), targets), "majority answer"


def score_vqa(ex, preds, spec):
  answers = [list(_meta(r, "answers", None) or [r["target_text"]]) for r in ex.raws]
  model = metrics.vqa_accuracy([p["text"] for p in preds], answers)
  majority = _majority([a[0] for a in answers])
  return "vqa_accuracy", model, metrics.vqa_accuracy([majority] * len(answers), answers), \
      "majority answer"


def score_caption(ex, preds, spec):
  refs = [list(_meta(r, "captions", None) or [r["target_text"]]) for r in ex.raws]
  model = metrics.cider([p["text"] for p in preds], refs)
  other = [r[0] for r in _rotate(refs)]
  return "CIDEr-D", model, metrics.cider(other, refs), "another image's caption"


def _normalise(text: str) -> str:
  return " ".join(text.lower().strip().rstrip(".").split())


def score_exact_match(ex, preds, spec):
  answers = [[_normalise(a) for a in (_meta(r, "answers", None) or [r["target_text"]])]
             for r in ex.raws]
  hits = [_normalise(p["text"]) in a for p, a in zip(preds, answers)]
  majority = _majority([a[0] for a in answers])
  return "exact match", float(np.mean(hits)), float(np.mean([majority in a for a in answers])), \
      "majority answer"


def score_rouge(ex, preds, spec):
  refs = [list(_meta(r, "captions", None) or [r["target_text"]]) for r in ex.raws]
  model = metrics.rouge_l([p["text"] for p in preds], refs)
  other = [r[0] for r in _rotate(refs)]
  return "ROUGE-L", model, metrics.rouge_l(other, refs), "another example's reference"


def _first_box(pred, raw, spec):
  boxes, _, _ = postprocess.parse_boxes(pred["tokens"], spec.tokenizer.layout,
                                        _meta(raw, "image_hw"))
  return boxes[0] if len(boxes) else np.zeros(4)


def score_refexp(ex, preds, spec):
  gt = np.stack([np.asarray(_meta(r, "box"), np.float64).reshape(4) for r in ex.raws])
  pred = np.stack([_first_box(p, r, spec) for p, r in zip(preds, ex.raws)])
  mean_box = np.broadcast_to(gt.mean(axis=0), gt.shape)
  return "acc@IoU0.5", metrics.refexp_accuracy(pred, gt), metrics.refexp_accuracy(
      mean_box, gt), "mean box"


def score_detection(ex, preds, spec):
  gt_boxes = [np.asarray(_meta(r, "boxes"), np.float64).reshape(-1, 4) for r in ex.raws]
  gt_labels = [list(_meta(r, "labels")) for r in ex.raws]
  keep = [i for i, b in enumerate(gt_boxes) if len(b)]  # AP needs positives
  if not keep:
    return "AP50", float("nan"), float("nan"), "no positive examples"
  pred_boxes, pred_labels, pred_scores = [], [], []
  for p, r in zip(preds, ex.raws):
    boxes, labels, _ = postprocess.parse_boxes(p["tokens"], spec.tokenizer.layout,
                                               _meta(r, "image_hw"), spec.tokenizer.decode)
    if _meta(r, "class_name") is not None:  # localization: every box is of the asked class
      labels = [_meta(r, "class_name")] * len(boxes)
    pred_boxes.append(boxes)
    pred_labels.append([l.strip() for l in labels])
    # Earlier boxes first: the sequence order stands in for a confidence.
    pred_scores.append(np.linspace(1.0, 0.5, len(boxes)) if len(boxes) else np.zeros(0))
  pick = lambda values: [values[i] for i in keep]
  model = metrics.detection_map(pick(pred_boxes), pick(pred_scores), pick(pred_labels),
                                pick(gt_boxes), pick(gt_labels))["AP50"]
  all_gt = np.concatenate([gt_boxes[i] for i in keep])
  majority = _majority([l for i in keep for l in gt_labels[i]])
  base_labels = [[_meta(ex.raws[i], "class_name") or majority] for i in keep]
  baseline = metrics.detection_map([all_gt.mean(0, keepdims=True)] * len(keep),
                                   [np.ones(1)] * len(keep), base_labels, pick(gt_boxes),
                                   pick(gt_labels))["AP50"]
  return "AP50", model, baseline, "one mean box per image"


def score_keypoints(ex, preds, spec):
  model, baseline = [], []
  for p, r in zip(preds, ex.raws):
    gt = np.concatenate([np.asarray(_meta(r, "keypoints"), np.float64).reshape(17, 2),
                         np.asarray(_meta(r, "visibility"), np.float64).reshape(17, 1)], axis=1)
    region = np.asarray(_meta(r, "box"), np.float64)
    area = float(_meta(r, "area"))  # the person's visible pixels, as COCO's segment area
    pred, _ = postprocess.parse_keypoints(p["tokens"], spec.tokenizer.layout,
                                          _meta(r, "image_hw"), region=region)
    model.append(metrics.keypoint_oks(pred, gt, [area], [region])[0, 0])
    centre = np.zeros((17, 3))
    centre[:, 0], centre[:, 1], centre[:, 2] = (region[0] + region[2]) / 2, (
        region[1] + region[3]) / 2, 2
    baseline.append(metrics.keypoint_oks(centre, gt, [area], [region])[0, 0])
  return "OKS", float(np.mean(model)), float(np.mean(baseline)), "all joints at the box centre"


def score_depth(ex, preds, spec, max_depth):
  gts = [np.asarray(_meta(r, "depth"), np.float32) for r in ex.raws]
  pred = [postprocess.image_to_depth(p["image"], _meta(r, "image_hw"), max_depth)
          for p, r in zip(preds, ex.raws)]
  valid = [np.isfinite(g) & (g > 0) for g in gts]
  mean = float(np.mean([g[v].mean() for g, v in zip(gts, valid)]))
  model = float(np.mean([metrics.depth_rmse(p, g, v) for p, g, v in zip(pred, gts, valid)]))
  baseline = float(np.mean([metrics.depth_rmse(np.full_like(g, mean), g, v)
                            for g, v in zip(gts, valid)]))
  return "RMSE (m)", model, baseline, "mean depth"


def score_normals(ex, preds, spec):
  gts = [np.asarray(_meta(r, "normals"), np.float32) for r in ex.raws]
  pred = [postprocess.image_to_normals(p["image"], _meta(r, "image_hw"))
          for p, r in zip(preds, ex.raws)]
  mean = np.mean([g.reshape(-1, 3).mean(0) for g in gts], axis=0)
  mean = mean / max(np.linalg.norm(mean), 1e-6)
  model = float(np.mean([metrics.normal_angle_error(p, g)["mean"] for p, g in zip(pred, gts)]))
  baseline = float(np.mean([metrics.normal_angle_error(np.broadcast_to(mean, g.shape), g)["mean"]
                            for g in gts]))
  return "mean angle error (deg)", model, baseline, "mean normal"


def score_segmentation(ex, preds, spec):
  model, baseline = [], []
  for p, r in zip(preds, ex.raws):
    gt = np.asarray(_meta(r, "masks"), bool)
    masks, _, _ = postprocess.segmentation_masks(p["image"], _meta(r, "image_hw"))
    model.append(metrics.segmentation_iou(list(masks), list(gt)))
    baseline.append(metrics.segmentation_iou([np.ones(gt.shape[1:], bool)], list(gt)))
  return "segmentation IoU", float(np.mean(model)), float(np.mean(baseline)), "whole-image mask"


def _psnr(a, b):
  mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
  return 10 * np.log10(1.0 / max(mse, 1e-10))


def score_image(ex, preds, spec):
  targets = [_target_image01(ex.features, i) for i in range(len(preds))]
  model = float(np.mean([_psnr(p["image"], t) for p, t in zip(preds, targets)]))
  baseline = float(np.mean([_psnr(o, t) for o, t in zip(_rotate(targets), targets)]))
  return "PSNR (dB)", model, baseline, "another example's target image"


def score_grounded_vqa(ex, preds, spec):
  """The answer is the headline; the mask's IoU is logged beside it."""
  ious = []
  for p, r in zip(preds, ex.raws):
    gt = np.asarray(_meta(r, "mask"), bool)
    if p["image"] is not None:
      # The mask is white on black: its grey level (depth decoding with max 1) above 0.5.
      pred = postprocess.image_to_depth(p["image"], _meta(r, "image_hw"), 1.0) > 0.5
      ious.append(metrics.mask_iou(pred, gt))
  name, model, baseline, how = score_vqa(ex, preds, spec)
  return name, model, baseline, how, {"mask_iou": float(np.mean(ious)) if ious else float("nan")}


SCORERS: Dict[str, Callable] = {
    "accuracy": score_accuracy, "vqa_accuracy": score_vqa, "caption_cider": score_caption,
    "box_iou": score_refexp, "detection_map": score_detection, "keypoint_oks": score_keypoints,
    "normal_angle": score_normals, "segmentation_iou": score_segmentation,
    "image_fid_proxy": score_image, "grounded_vqa": score_grounded_vqa,
    "exact_match": score_exact_match, "rouge_l": score_rouge,
}
LOWER_IS_BETTER = ("depth_rmse", "normal_angle")
# Image outputs scored by per-pixel error: decoded as the mean of several samples.
REGRESSION_MAPS = ("depth_rmse", "normal_angle")


def score(examples: TaskExamples, preds, spec, max_depth: float):
  metric = examples.task.metric
  if metric == "depth_rmse":
    return score_depth(examples, preds, spec, max_depth)
  if metric not in SCORERS:
    raise KeyError(f"{examples.task.name}: no scorer for metric {metric!r}; known: "
                   f"{sorted(SCORERS) + ['depth_rmse']}")
  return SCORERS[metric](examples, preds, spec)


# ---------------------------------------------------------------------------- loss and run


def _loss_fn(model, vq, padded_text_size):
  @jax.jit
  def run(params, vq_params, batch):
    batch = model_builder.tokenize_image_targets(batch, vq.config, vq_params, padded_text_size)
    text_logits, image_logits = model.apply({"params": params}, batch)
    total, count = losses.example_losses(text_logits, image_logits, batch)
    return jnp.sum(total), jnp.sum(count)
  return run


def evaluate(predictor, task_names: Sequence[str], *, split: str, num_examples: int,
             batch_size: int, seed: int, data_dir: Optional[str], max_depth: float,
             progress: Callable[[str], None] = print) -> Dict[str, dict]:
  """Per task: metric, score, baseline, validation loss, examples and predictions."""
  spec = predictor.spec
  ctx = spec.context(max_depth)
  loss_fn = _loss_fn(predictor.model, predictor.vq, predictor.model.config.padded_text_size)
  keys = ("text_inputs", "image_inputs", "image_input_mask", "text_targets",
          "image_target_pixels", "image_target_mask")
  results = {}
  for k, name in enumerate(task_names):
    start = time.time()
    task = tasks_lib.get(name)
    examples = collect(task, spec, ctx, split, num_examples, seed, data_dir)
    total = count = 0.0
    for s in range(0, len(examples.raws), batch_size):
      part = {key: jnp.asarray(v) for key, v in _slice(examples.features, s, s + batch_size).items()
              if key in keys}
      t, c = loss_fn(predictor.params, predictor.vq.params, part)
      total, count = total + float(t), count + float(c)
    preds = predict(predictor, examples, batch_size, seed)
    scored = score(examples, preds, spec, max_depth)
    metric, value, baseline, how = scored[:4]
    extra = scored[4] if len(scored) > 4 else {}
    results[name] = dict(group=task.group, metric=metric, score=float(value),
                         baseline=float(baseline), baseline_is=how,
                         lower_is_better=task.metric in LOWER_IS_BETTER,
                         loss=total / max(count, 1.0), num_examples=len(examples.raws), **extra,
                         skipped=dict(examples.skipped), examples=examples, predictions=preds)
    progress(f"[{k + 1}/{len(task_names)}] {name}: {metric} {value:.4g} (baseline {baseline:.4g}, "
             f"{how}), loss {results[name]['loss']:.3f}, {len(examples.raws)} examples, "
             f"{time.time() - start:.1f} s")
  return results


def write(results, out_dir: str, step: Optional[int] = None, spec=None):
  """metrics.json, report.md and one picture per task group into out_dir."""
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "metrics.json"), "w") as f:
    json.dump({"step": step, "tasks": results_lib.summary(results)}, f, indent=2)
  return report.write(results, out_dir, step, spec)


def make_train_evaluator(config, workdir: str):
  """The trainer's hook: evaluate(params, step, log) on config.eval.split.

  Logs every task's metric, baseline and loss to the console and TensorBoard; after the
  last step (or whenever config.eval.report is set) also writes WORKDIR/eval/step_N/ with
  metrics.json, report.md and the pictures.
  """
  from unified_io.data import from_config  # pylint: disable=g-import-not-at-top
  task_names, _ = from_config.mixture_rates(config)
  state = {}

  def run(params, step, log):
    if "predictor" not in state:
      state["predictor"] = predictor_lib.Predictor(config, params)
    predictor = state["predictor"]
    predictor.params = params
    log.line(f"Evaluating {len(task_names)} tasks on {config.eval.split} "
             f"({config.eval.num_examples} examples each) at step {step}")
    results = evaluate(predictor, task_names, split=config.eval.split,
                       num_examples=config.eval.num_examples, batch_size=config.eval.batch_size,
                       seed=config.seed, data_dir=config.data.get("data_dir") or None,
                       max_depth=config.data.max_depth, progress=log.line)
    scalars = {}
    for name, r in results.items():
      scalars[f"eval/{name}/{r['metric']}"] = r["score"]
      scalars[f"eval/{name}/baseline"] = r["baseline"]
      scalars[f"eval/{name}/loss"] = r["loss"]
    log.scalars(step, scalars)
    log.line(f"Evaluation at step {step}: {results_lib.headline(results)}")
    if config.eval.report and jax.process_index() == 0:
      path = write(results, os.path.join(workdir, "eval", f"step_{step}"), step, predictor.spec)
      log.line(f"Report: {path}")
    return results

  def has_report(step):
    """The report of `step` if a finished run already wrote it, else None."""
    path = os.path.join(workdir, "eval", f"step_{step}", "report.md")
    return path if config.eval.report and os.path.exists(path) else None

  run.has_report = has_report
  return run
