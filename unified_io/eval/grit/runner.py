"""Run a Unified-IO checkpoint over GRIT samples: a submission folder, and metrics when the
sample files carry ground truth.

  python -m unified_io.evaluate --benchmark=grit --workdir=workdir/tiny --grit_dir=GRIT \
      --split=ablation --tasks=categorization,vqa --num_examples=100 --batch_size=16 \
      --out=workdir/tiny/grit

Writes OUT/{split}/ (params.json, one {task}.json per task, normals/*.png), OUT/{split}.zip
for the leaderboard and, when the sample files carry ground truth (see grit.load_samples),
OUT/metrics.json from grit.evaluate / grit.evaluate_submission. With --num_examples only
the samples run are scored, and GRIT's across-task "overall" is left out.

Per task: categorization scores the sample's whole label set (the choice output kind of
unified_io.eval.outputs), so the answer is always one of its options; vqa is the generated
text; localization and refexp are the boxes of the generated location tokens in
original-image pixels, segmentation the masks and normal the normal map of the generated
image (all via inference.predict);
keypoint runs localization of "person", then one joint prediction per box found with the
not-visible token masked (17 x, y, v triples per person).

Confidence: categorization reports the chosen option's probability renormalised over the
label set (softmax of the options' log-likelihoods); vqa, localization and refexp the
probability of the greedy output sequence (exp of its summed token log-probabilities);
keypoint the probability of the person-localization sequence times the mean probability
of the per-person joint sequences. Segmentation and normal output images sampled token by
token, which have no such score: they report 1.0.

With batch_size=1 samples run one at a time (inference.predict takes one image), the
reference; a larger batch_size runs a batch of a task's samples per model call, sharded
over this host's devices, and writes the same submission (batched.py: how it batches, what
it compiles, and the float tolerance of confidences). Every model function is compiled
once per batch shape. With several processes (the trainer's GRIT evaluator) each runs a
contiguous part of every task's samples and process 0 writes the gathered submission.
Unreadable images are skipped and counted, with the file named; a skipped
sample has no prediction, so grit.evaluate scores it 0 and the leaderboard would reject
the zip.
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import jax
import numpy as np

from unified_io.eval.grit import tasks as grit
from unified_io.common import distributed
from unified_io.common import image_preprocessing
from unified_io.eval import host_split
from unified_io.model import builder as model_lib
from unified_io.eval import inference as predict_lib
from unified_io.eval import outputs
from unified_io.eval.grit import batched
from unified_io.eval.grit import fields

MAX_SKIP_LINES = 5  # per task; the count covers the rest
_probability = fields.probability  # the name tests and callers know


class _Runner:
  """Per-task prediction functions: sample + image -> (GRIT prediction fields, confidence)."""

  def __init__(self, predictor, grit_dir: str, seed: int = 0):
    self.predictor, self.grit_dir, self.seed = predictor, grit_dir, seed
    self._options: Dict[str, List[str]] = {}
    self.sample_name = "sample"  # names the sample in truncation notices
    self.truncations: list = []  # predictor.PromptTruncation of prompts cut to fit

  def _predict(self, image, prompt: str, task: str, **kw) -> dict:
    out = predict_lib.predict(
      self.predictor, image, prompt, task, seed=self.seed, name=self.sample_name, **kw
    )
    if out.get("prompt_truncated"):
      self.truncations.append(out["prompt_truncated"])
    return out

  def categorization(self, sample, image):
    name = sample["output_options"]
    if name not in self._options:
      self._options[name] = grit.load_output_options(self.grit_dir, name)
    options = self._options[name]
    prompt = grit.prompt_for(sample, image.shape[:2], self.predictor.layout)
    features, cut = self.predictor.features_and_truncations(
      [predict_lib.raw_input(prompt, image)], names=[self.sample_name]
    )
    self.truncations += cut
    choice = outputs.decode(
      outputs.get(outputs.Output.CHOICE), self.predictor, features, options=[options]
    )[0]
    return {"words": choice["text"]}, fields.softmax_at(choice["option_scores"], choice["choice"])

  def vqa(self, sample, image):
    out = self._predict(image, grit.prompt_for(sample), "vqa")
    return {"words": out["text"].strip()}, fields.probability(out)

  def _boxes(self, sample, image, task: str = "localization"):
    out = self._predict(image, grit.prompt_for(sample), task)
    return out["boxes"], fields.probability(out)

  def localization(self, sample, image):
    boxes, confidence = self._boxes(sample, image)
    return {"bboxes": boxes}, confidence

  def refexp(self, sample, image):
    boxes, confidence = self._boxes(sample, image, "refexp")
    return {"bboxes": boxes}, confidence

  def segmentation(self, sample, image):
    out = self._predict(image, grit.prompt_for(sample), "segmentation")
    return {"masks": list(out["masks"])}, 1.0

  def keypoint(self, sample, image):
    # Stage one finds the people, stage two the joints of each (paper appendix A.1).
    hw = image.shape[:2]
    boxes, confidence = self._boxes(sample, image)
    people, joint_probabilities = [], []
    for box in boxes:
      prompt = grit.keypoint_region_prompt(box, hw, self.predictor.layout)
      out = self._predict(image, prompt, "keypoints", region=box)
      people.append(out["keypoints"])
      joint_probabilities.append(fields.probability(out))
    return {"points": people}, fields.keypoint_confidence(confidence, joint_probabilities)

  def normal(self, sample, image):
    out = self._predict(image, grit.prompt_for(sample), "normals")
    return {"normal": fields.normals_rgb(out["normals"])}, 1.0


def params_in_millions(predictor) -> float:
  """The network plus the VQ-GAN it decodes images with: both run at inference, and the
  paper's 2925M for XL counts both (see unified_io/model/builder.py)."""
  network = model_lib.parameter_counts(predictor.params)["total"]
  vq = sum(int(np.size(x)) for x in jax.tree.leaves(predictor.vq.params))
  return (network + vq) / 1e6


def _readable(grit_dir: str, task: str, samples, skips: List[str], progress):
  """(sample, image) for every sample whose image loads; the others go to `skips`."""
  for sample in samples:
    try:
      image = image_preprocessing.load_image(grit.image_path(grit_dir, sample))
    except (OSError, ValueError) as e:
      skips.append(f"{task} {sample['example_id']}: {e}")
      if len(skips) <= MAX_SKIP_LINES:
        progress(f"  skipped {skips[-1]}")
      continue
    yield sample, image


def _one_at_a_time(runner: _Runner, task: str, pairs, report_truncations):
  for sample, image in pairs:
    runner.sample_name = f"{task} {sample['example_id']}"
    answer, confidence = getattr(runner, task)(sample, image)
    report_truncations()
    yield sample, answer, confidence


def predict_task(
  runner,
  grit_dir: str,
  task: str,
  split: str,
  limit: Optional[int] = None,
  progress: Callable[[str], None] = print,
  shard: Tuple[int, int] = (0, 1),
):
  """(predictions, samples, skip messages) for one task.

  runner: a _Runner (one sample at a time) or a batched.BatchedRunner.
  shard: (this process, processes): this process runs its host_split.host_rows of the
  samples and returns every process's predictions and skips, in sample order (every
  sample's decoding is seeded alike, so the split changes no prediction).
  """
  invalid: Dict[str, int] = {}
  samples = grit.load_samples(grit_dir, task, split, stats=invalid)
  if limit is not None:
    samples = samples[:limit]  # the first ones, so repeated runs compare like with like
  rows = host_split.host_rows(len(samples), *shard)
  skips: List[str] = []
  truncated = 0

  def report_truncations():  # prompts cut to the model's text input: said, not silent
    nonlocal truncated
    for cut in runner.truncations:
      truncated += 1
      if truncated <= MAX_SKIP_LINES:
        progress(f"  {cut.notice()}")
    runner.truncations = []

  pairs = _readable(grit_dir, task, samples[rows.start : rows.stop], skips, progress)
  if isinstance(runner, batched.BatchedRunner):
    answers = runner.predict(task, pairs)
    report_truncations()
  else:
    answers = _one_at_a_time(runner, task, pairs, report_truncations)
  predictions = [
    {"example_id": sample["example_id"], "confidence": confidence, **answer}
    for sample, answer, confidence in answers
  ]
  if shard[1] > 1:
    parts = host_split.gather((predictions, skips), f"grit_{task}")
    predictions = host_split.concatenate([p[0] for p in parts])
    skips = host_split.concatenate([p[1] for p in parts])
  if invalid:
    progress(f"  {task}: {sum(invalid.values())} invalid samples skipped: {invalid}")
  if truncated > MAX_SKIP_LINES:
    progress(f"  {task}: {truncated} prompts truncated to the model's text input in all")
  return predictions, samples, skips


def _has_ground_truth(samples) -> bool:
  return bool(samples) and all(s["gt"] is not None for s in samples)


def score(
  grit_dir: str, split_dir: str, split: str, attempted: Dict[str, Optional[List[str]]]
) -> Dict[str, float]:
  """grit.evaluate per task, keyed as grit.evaluate_submission does.

  attempted: task -> the example_ids run (None: the whole file); samples outside it are
  not scored, while attempted ones without a prediction (skipped) score 0. The across-task
  means and "overall" come only with all seven whole files, as the leaderboard has them.
  """
  if set(attempted) == set(grit.GRIT_TASKS) and all(v is None for v in attempted.values()):
    return grit.evaluate_submission(grit_dir, split_dir, split)
  out = {}
  for task, ids in attempted.items():
    result = grit.evaluate(grit_dir, split_dir, task, split, example_ids=ids)
    out.update({k if "." in k else f"{task}.{k}": v for k, v in result.items()})
  return out


def predict_grit(
  predictor,
  grit_dir: str,
  split: str = "ablation",
  tasks: Sequence[str] = grit.GRIT_TASKS,
  out_dir: str = "grit_out",
  limit: Optional[int] = None,
  seed: int = 0,
  progress: Callable[[str], None] = print,
  shard: Tuple[int, int] = (0, 1),
  batch_size: int = 1,
) -> Tuple[str, Dict[str, float]]:
  """Predicts every sample of `tasks`, writes the submission OUT_DIR/{split}/; returns it and
  the metrics (empty unless every task's samples carry ground truth).

  limit: the first `limit` samples per task. When every task's samples carry ground truth,
  also writes OUT_DIR/metrics.json (beside the submission, so it stays out of the zip).
  shard: see predict_task; only process 0 writes, every process returns the metrics.
  batch_size: samples per model call (batched.py); 1 runs them one at a time.
  """
  writes = shard[0] == 0
  for task in tasks:  # a bad task, split or missing file fails before any model work
    path = grit.samples_path(grit_dir, task, split)
    if not os.path.isfile(path):
      raise FileNotFoundError(f"GRIT {split} {task} sample file {path} does not exist")
  split_dir = os.path.join(out_dir, split)
  if not isinstance(batch_size, int) or batch_size < 1:
    raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
  if batch_size == 1:
    runner = _Runner(predictor, grit_dir, seed)
  else:
    runner = batched.BatchedRunner(predictor, grit_dir, seed, batch_size)
  attempted: Dict[str, Optional[List[str]]] = {}
  with_gt = []
  for k, task in enumerate(tasks):
    start = time.time()
    predictions, samples, skips = predict_task(
      runner, grit_dir, task, split, limit, progress, shard
    )
    if writes:
      grit.write_predictions(split_dir, task, predictions)
    if _has_ground_truth(samples):
      with_gt.append(task)
    attempted[task] = None if limit is None else [s["example_id"] for s in samples]
    progress(
      f"[{k + 1}/{len(tasks)}] grit {split} {task}: {len(predictions)} predictions, "
      f"{len(skips)} skipped (unreadable images), {time.time() - start:.1f} s"
    )
  metrics: Dict[str, float] = {}
  if writes:
    grit.write_params(split_dir, params_in_millions(predictor))
  if tasks and len(with_gt) == len(tasks):
    # Scored on every process from process 0's files: a barrier first, so they are written.
    distributed.host_barrier(f"uio_grit_written_{split_dir}")
    metrics = score(grit_dir, split_dir, split, attempted)
    if writes:
      path = os.path.join(out_dir, "metrics.json")
      with open(path, "w") as f:
        json.dump(metrics, f, indent=2, sort_keys=True)
      progress(f"Wrote {path}")
    if "overall" in metrics:
      progress(f"GRIT {split} overall: {metrics['overall']:.2f}")
  elif with_gt:
    progress(f"Not scored: only {with_gt} have ground truth")
  return split_dir, metrics


def run(
  predictor,
  grit_dir: str,
  split: str,
  tasks: Sequence[str],
  out_dir: str,
  limit: Optional[int] = None,
  seed: int = 0,
  batch_size: int = 1,
) -> str:
  """evaluate.py's --benchmark=grit: predict, score, zip; prints progress. Returns the zip."""
  split_dir, _ = predict_grit(
    predictor,
    grit_dir,
    split,
    tasks,
    out_dir,
    limit,
    seed,
    progress=lambda line: print(line, flush=True),
    batch_size=batch_size,
  )
  zip_path = grit.zip_submission(split_dir)
  print(f"Wrote {split_dir}/ and {zip_path}", flush=True)
  return zip_path


def parse_tasks(text: str) -> List[str]:
  """--tasks for GRIT: comma-separated GRIT task names, all seven when empty."""
  tasks = [t.strip() for t in text.split(",") if t.strip()] or list(grit.GRIT_TASKS)
  unknown = [t for t in tasks if t not in grit.GRIT_TASKS]
  if unknown:
    raise ValueError(f"unknown GRIT tasks {unknown}; tasks are {', '.join(grit.GRIT_TASKS)}")
  return tasks


def check_split(split: str) -> str:
  if split not in grit.SPLITS:
    raise ValueError(f"GRIT splits are {' and '.join(grit.SPLITS)}, got {split!r}")
  return split
