"""One object per output kind: how its predictions are decoded, post-processed, scored, drawn.

  kind = outputs.get(task.output)                      # tasks.Output -> Kind
  preds = outputs.decode(kind, predictor, features)    # per example: text, tokens, image...
  fields = kind.parse(preds[0], image_hw, ctx)         # boxes, keypoints, depth, masks...
  score = outputs.score(task, examples, preds, ctx)    # results.Score beside its baseline
  picture = kind.draw(image, fields, 256)              # or None when there is nothing to draw

The names (tasks.Output, tasks.Metric and which metrics suit which kind) live in the task
registry, so a task is checked when it is declared; the implementations live here, above
the model and the data. `decode` is the one prediction path of evaluation
(task_eval.predict), `inference.predict` (and through it GRIT); `Kind.draw` the one drawing
path of the report, `data.show` and `predict`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from unified_io.data.tasks import registry as tasks_lib
from unified_io.eval import results
from unified_io.eval.outputs import drawing
from unified_io.eval.outputs import parsing
from unified_io.eval.outputs import scoring

Output, Metric, Context, Score = tasks_lib.Output, tasks_lib.Metric, parsing.Context, results.Score

# A depth or normal map is a regression target scored by squared or angular error, whose
# best estimate is the model's expected map, not one draw from it: it is the pixel-wise mean
# of REGRESSION_SAMPLES top-p samples. Greedy decoding is no substitute: taking the top code
# at every step falls into repetitive patterns on normal maps (`benchmarks/dense_decoding.py`
# measures the choices; numbers in benchmarks/README.md). Segmentations (colour-coded labels,
# which averaging would blur) and generated pictures are one sample, as in the released model.
REGRESSION_SAMPLES = 4
ONE_SAMPLE = dict(temperature=1.0, top_p=0.9, num_samples=1)
MEAN_OF_SAMPLES = dict(temperature=1.0, top_p=0.9, num_samples=REGRESSION_SAMPLES)

# Text decodings: greedy text, greedy text with the keypoint not-visible token masked (paper
# A.1: every joint gets a guess), greedy box lists that stop only when EOS is likelier than
# another box (all location tokens together; decoding.stop_against_group), or the most
# likely of the example's answer options.
GREEDY, KEYPOINT_GREEDY, BOX_LIST_GREEDY, OPTIONS = (
  "greedy",
  "keypoint_greedy",
  "box_list_greedy",
  "options",
)
MASKS = {KEYPOINT_GREEDY: "keypoint_mask_fn", BOX_LIST_GREEDY: "box_list_mask_fn"}


@dataclasses.dataclass(frozen=True)
class Kind:
  """What a task of one output kind does with the model's output.

  text_decoding: GREEDY, KEYPOINT_GREEDY, BOX_LIST_GREEDY, OPTIONS or None (no text output:
  EOS only).
  image_decoding: `Predictor.image` keyword arguments, or None (no image output).
  parse(pred, image_hw, ctx, region=None) -> fields (parsing); truth(raw, target_image01)
  -> the same fields for the ground truth; scorers: metric -> scorer (scoring);
  draw(image, fields, size, max_depth=None) -> picture or None (drawing), on the input when
  draws_on_input, else a picture of its own captioned `label`.
  """

  output: Output
  text_decoding: Optional[str]
  image_decoding: Optional[Mapping[str, float]]
  parse: Callable[..., dict]
  truth: Callable[..., dict]
  scorers: Mapping[Metric, Callable[..., Score]]
  draw: Callable
  draws_on_input: bool = True
  label: str = ""

  @property
  def metrics(self):
    return tuple(self.scorers)


KINDS: Dict[Output, Kind] = {
  k.output: k
  for k in (
    Kind(
      Output.TEXT,
      GREEDY,
      None,
      parsing.text,
      parsing.truth_nothing,
      {
        Metric.ACCURACY: scoring.accuracy,
        Metric.VQA_ACCURACY: scoring.vqa_accuracy,
        Metric.CIDER: scoring.cider,
        Metric.ROUGE_L: scoring.rouge_l,
        Metric.EXACT_MATCH: scoring.exact_match,
      },
      drawing.text,
    ),
    Kind(
      Output.CHOICE,
      OPTIONS,
      None,
      parsing.nothing,
      parsing.truth_nothing,
      {Metric.ACCURACY: scoring.accuracy},
      drawing.nothing,
    ),
    Kind(
      Output.BOXES,
      BOX_LIST_GREEDY,
      None,
      parsing.boxes,
      parsing.truth_boxes,
      {Metric.BOX_IOU: scoring.box_iou, Metric.DETECTION_MAP: scoring.detection_map},
      drawing.boxes,
    ),
    Kind(
      Output.KEYPOINTS,
      KEYPOINT_GREEDY,
      None,
      parsing.keypoints,
      parsing.truth_keypoints,
      {Metric.KEYPOINT_OKS: scoring.keypoint_oks},
      drawing.keypoints,
    ),
    Kind(
      Output.DEPTH,
      None,
      MEAN_OF_SAMPLES,
      parsing.depth,
      parsing.truth_field("depth", "depth"),
      {Metric.DEPTH_RMSE: scoring.depth_rmse},
      drawing.depth,
      False,
      "depth",
    ),
    Kind(
      Output.NORMALS,
      None,
      MEAN_OF_SAMPLES,
      parsing.normals,
      parsing.truth_field("normals", "normals"),
      {Metric.NORMAL_ANGLE: scoring.normal_angle},
      drawing.normals,
      False,
      "surface normals",
    ),
    Kind(
      Output.SEGMENTATION,
      None,
      ONE_SAMPLE,
      parsing.segmentation,
      parsing.truth_field("masks", "masks"),
      {Metric.SEGMENTATION_IOU: scoring.segmentation_iou},
      drawing.masks,
    ),
    Kind(
      Output.IMAGE,
      None,
      ONE_SAMPLE,
      parsing.image,
      parsing.truth_image,
      {Metric.IMAGE_PSNR: scoring.image_psnr},
      drawing.image,
      False,
      "generated image",
    ),
    Kind(
      Output.TEXT_MASK,
      GREEDY,
      ONE_SAMPLE,
      parsing.text_mask,
      parsing.truth_field("mask", "mask"),
      {Metric.GROUNDED_VQA: scoring.grounded_vqa},
      drawing.masks,
    ),
  )
}


def get(output) -> Kind:
  """The Kind of a tasks.Output (or its string value)."""
  return KINDS[Output(output)]


def decode(
  kind: Kind,
  predictor,
  features,
  seed: int = 0,
  options: Optional[Sequence[Sequence[str]]] = None,
  image_decoding: Optional[dict] = None,
  text_decoding: Optional[dict] = None,
) -> List[dict]:
  """The model's raw predictions for a batch of features, one dict per example.

  "text", "tokens" (the text output's ids; empty for choices and image-only kinds) and
  "image" ([H, W, 3] in [0, 1] or None); "log_likelihood" of generated text (its tokens'
  summed log-probability); for choices "choice" (the option's index) and "option_scores"
  (every option's log-likelihood). options: per example, the answers a choice picks from.
  image_decoding: `Predictor.image` keyword arguments instead of the kind's.
  text_decoding: `Predictor.text_with_scores` keyword arguments (method, num_beams, alpha,
  temperature, top_k, top_p) instead of the kind's greedy text, sampling seeded by `seed`; a
  choice kind then writes free text (no "choice") instead of picking an option, which is how
  decoding strategies compare with option scoring (eval/ablation.py). Image-only kinds have
  no text to decode: it does not apply to them.
  """
  n = len(features["text_inputs"])
  out = [dict(text="", tokens=np.zeros(0, np.int32), image=None) for _ in range(n)]
  if kind.text_decoding == OPTIONS and text_decoding is None:
    if options is None:
      raise ValueError(
        f"{kind.output.value} outputs pick one of the example's options "
        f"(meta['class_names']); none given"
      )
    best, scores = predictor.choose(features, options)
    for o, row, k, s in zip(out, options, best, scores):
      o.update(text=str(row[int(k)]), choice=int(k), option_scores=s)
  elif kind.text_decoding is not None:
    mask = MASKS.get(kind.text_decoding)
    mask_fn = None if mask is None else getattr(predictor, mask)
    # Only an override passes more arguments, so the default call is exactly today's.
    override = {} if text_decoding is None else dict(text_decoding, seed=seed)
    texts, tokens, scores = predictor.text_with_scores(features, logit_mask_fn=mask_fn, **override)
    for o, t, ids, s in zip(out, texts, tokens, scores):
      o.update(text=t, tokens=ids, log_likelihood=float(s))
  if kind.image_decoding is not None:
    images, _ = predictor.image(features, seed=seed, **dict(image_decoding or kind.image_decoding))
    for o, image in zip(out, images):
      o["image"] = image
  return out


def score(task: tasks_lib.Task, examples, preds: Sequence[dict], ctx: Context) -> Score:
  """The task's metric of `preds` beside its baseline (examples: .raws and .features)."""
  if task.metric is None:
    raise ValueError(f"{task.name} has no metric: it is a training-only task")
  return get(task.output).scorers[task.metric](examples, preds, ctx)
