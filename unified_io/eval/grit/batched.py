"""Batched GRIT prediction: the one-at-a-time runner's answers, many samples per model call.

`BatchedRunner(predictor, grit_dir, seed, batch_size).predict(task, pairs)` takes a
task's readable (sample, image) pairs in sample order and returns (sample, GRIT fields,
confidence) in that order, computed as runner._Runner computes them one sample at a time
(runner.py's docstring says what each task predicts and how confident it is).

Batches: every model call has `rows` rows (batching.Placement: batch_size rounded up to a
multiple of this host's devices, sharded over them); a task's last batch is padded and the
padding dropped. Categorization batches only samples of one label set (batching.Buckets),
so a batch's option table has that label set's shape, as it has alone. Keypoint stage two
has one row per person found in stage one, a number that varies by sample: those rows
queue across the task's samples and run `rows` at a time, the last batch padded.

Compiles per task, each once for the `rows`-row shape: categorization one option scorer
per distinct label-set shape (options x longest option); vqa, localization and refexp the
greedy text decoder (one, shared); segmentation and normal the row-seeded image decoder
(one, shared: inference.predict_batch); keypoint the greedy decoder and the one with the
not-visible token masked.

Equality with the one-at-a-time runner: a batch row runs the same network on the same
inputs, but XLA sums some of its reductions in another order for another batch shape, so
logits differ by float rounding (log-likelihoods by about 1e-7 relative on the tiny
config). Greedy tokens, and so text, boxes and keypoints, and the sampled image codes
(every row draws the noise it draws alone) are therefore the same unless two choices tie
to within that rounding; the VQ-GAN decodes row by row, so masks and normal images follow
the codes exactly. A confidence exp(log-likelihood) differs by a relative |log-likelihood|
x 1e-7; tests/test_grit_batched.py asserts identical fields and log-confidences to 1e-6.
"""

from __future__ import annotations

from typing import Dict, Hashable, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from unified_io.eval import inference
from unified_io.eval import outputs
from unified_io.eval.grit import batching
from unified_io.eval.grit import definitions
from unified_io.eval.grit import fields
from unified_io.eval.grit import tasks as grit


class _Item(NamedTuple):
  index: int  # position among the task's readable samples
  sample: dict
  image: np.ndarray
  name: str  # names the sample in truncation notices


class _Person(NamedTuple):
  """A keypoint stage-two row: the k-th person box found in sample `index`'s image."""

  index: int
  k: int
  box: np.ndarray
  image: np.ndarray
  name: str


class BatchedRunner:
  """Per-task batch prediction; `truncations` collects the prompts cut to fit the text
  input (predictor.PromptTruncation), which the caller reports and clears."""

  def __init__(self, predictor, grit_dir: str, seed: int = 0, batch_size: int = 16):
    self.place = batching.Placement(predictor, batch_size)
    self.predictor, self.rows = self.place.predictor, self.place.rows
    self.grit_dir, self.seed = grit_dir, seed
    self.truncations: list = []
    self._options: Dict[str, List[str]] = {}
    self._results: Dict[int, Tuple[dict, float]] = {}
    self._people: Dict[int, dict] = {}  # keypoint samples waiting for their stage two
    self._joints = batching.Buckets(self.rows, self._keypoint_joints)

  def predict(
    self, task: str, pairs: Iterable[Tuple[dict, np.ndarray]]
  ) -> List[Tuple[dict, dict, float]]:
    definitions.check_task(task)
    run = getattr(self, f"_{task}")
    self._results, self._people, samples = {}, {}, {}
    self._joints = batching.Buckets(self.rows, self._keypoint_joints)
    batches = batching.Buckets(self.rows, lambda _, items: run(items))
    for index, (sample, image) in enumerate(pairs):
      samples[index] = sample
      key: Hashable = sample["output_options"] if task == "categorization" else None
      batches.add(key, _Item(index, sample, image, f"{task} {sample['example_id']}"))
    batches.flush()
    if task == "keypoint":
      self._joints.flush()
    assert not self._people, "keypoint samples left without their stage two"
    return [(samples[i], *self._results[i]) for i in sorted(self._results)]

  # ------------------------------------------------------------------------------ model

  def _answers(
    self,
    items: Sequence,
    task: str,
    prompts: Sequence[str],
    regions: Optional[Sequence] = None,
  ) -> List[dict]:
    out = inference.predict_batch(
      self.predictor,
      [item.image for item in items],
      prompts,
      task,
      seed=self.seed,
      regions=regions,
      names=[item.name for item in items],
      place=self.place,
    )
    self.truncations += [o["prompt_truncated"] for o in out if "prompt_truncated" in o]
    return out

  def _label_set(self, name: str) -> List[str]:
    if name not in self._options:
      self._options[name] = grit.load_output_options(self.grit_dir, name)
    return self._options[name]

  # ------------------------------------------------------------------------------ tasks

  def _categorization(self, items: List[_Item]):
    options = self._label_set(items[0].sample["output_options"])  # one label set a batch
    layout = self.predictor.layout
    raws = [
      inference.raw_input(grit.prompt_for(it.sample, it.image.shape[:2], layout), it.image)
      for it in items
    ]
    features, cut = self.predictor.features_and_truncations(raws, names=[it.name for it in items])
    self.truncations += cut
    features = self.place(features)
    choices = outputs.decode(
      outputs.get(outputs.Output.CHOICE),
      self.predictor,
      features,
      options=[options] * len(features["text_inputs"]),
    )
    for item, choice in zip(items, choices):
      confidence = fields.softmax_at(choice["option_scores"], choice["choice"])
      self._results[item.index] = ({"words": choice["text"]}, confidence)

  def _text_answers(self, items: List[_Item], task: str, field):
    out = self._answers(items, task, [grit.prompt_for(it.sample) for it in items])
    for item, o in zip(items, out):
      self._results[item.index] = field(o)

  def _vqa(self, items):
    self._text_answers(
      items, "vqa", lambda o: ({"words": o["text"].strip()}, fields.probability(o))
    )

  def _localization(self, items):
    self._text_answers(
      items, "localization", lambda o: ({"bboxes": o["boxes"]}, fields.probability(o))
    )

  def _refexp(self, items):
    self._text_answers(items, "refexp", lambda o: ({"bboxes": o["boxes"]}, fields.probability(o)))

  def _segmentation(self, items):
    self._text_answers(items, "segmentation", lambda o: ({"masks": list(o["masks"])}, 1.0))

  def _normal(self, items):
    self._text_answers(
      items, "normals", lambda o: ({"normal": fields.normals_rgb(o["normals"])}, 1.0)
    )

  def _keypoint(self, items: List[_Item]):
    # Stage one finds the people (as localization); their boxes queue for stage two.
    out = self._answers(items, "localization", [grit.prompt_for(it.sample) for it in items])
    for item, o in zip(items, out):
      confidence = fields.probability(o)
      if not len(o["boxes"]):
        self._results[item.index] = ({"points": []}, fields.keypoint_confidence(confidence, []))
        continue
      self._people[item.index] = dict(confidence=confidence, joints=[None] * len(o["boxes"]))
      for k, box in enumerate(o["boxes"]):
        self._joints.add(None, _Person(item.index, k, box, item.image, item.name))

  def _keypoint_joints(self, _, rows: List[_Person]):
    layout = self.predictor.layout
    prompts = [grit.keypoint_region_prompt(r.box, r.image.shape[:2], layout) for r in rows]
    out = self._answers(rows, "keypoints", prompts, regions=[r.box for r in rows])
    for row, o in zip(rows, out):
      person = self._people[row.index]
      person["joints"][row.k] = (o["keypoints"], fields.probability(o))
      if all(j is not None for j in person["joints"]):
        del self._people[row.index]
        points = [keypoints for keypoints, _ in person["joints"]]
        probabilities = [p for _, p in person["joints"]]
        confidence = fields.keypoint_confidence(person["confidence"], probabilities)
        self._results[row.index] = ({"points": points}, confidence)
