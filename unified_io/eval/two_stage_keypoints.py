"""Two-stage keypoint inference (paper A.1.2): localize the people, then each one's joints.

The model is trained to give the 17 joints of the one person in a prompt's box. To find
everyone's joints, stage one asks the localization prompt for "person" ('Which regions
does the text " person " describe ?'), stage two asks the keypoint prompt with each box
found ('Find the human joints in the region " <box> " .'), with the not-visible token
masked so that every joint gets a guess (the keypoint output kind's decoding). Both go
through `inference.predict`, so prompts, decoding and parsing are evaluation's.

  people = two_stage_keypoints.find_people(predictor, image)
  people.keypoints   # [N, 17, 3] x, y, visibility; people.boxes [N, 4]; people.scores()

COCO keypoint AP (unified_io/eval/image_metrics.py) ranks people by `scores()`; GRIT's
keypoint confidence (one per image, grit/fields.py) is made of the same log-likelihoods.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

import numpy as np

from unified_io.common import coco_keypoints
from unified_io.eval import inference

PERSON = "person"


@dataclasses.dataclass(frozen=True)
class People:
  """What two-stage inference found in one image.

  boxes [N, 4] pixel x1, y1, x2, y2 (stage one, in output order); keypoints [N, 17, 3]
  (stage two, per box); localization_log_likelihood: stage one's greedy output sequence;
  joint_log_likelihoods [N]: each stage-two sequence's; truncations: prompts cut to fit the
  model's text input (predictor.PromptTruncation).
  """

  boxes: np.ndarray
  keypoints: np.ndarray
  localization_log_likelihood: float
  joint_log_likelihoods: np.ndarray
  truncations: Tuple = ()

  def __len__(self) -> int:
    return len(self.boxes)

  def scores(self) -> np.ndarray:
    """Per person, the log-probability of both stages' outputs: log P(localization) +
    log P(its joints). Comparable across images (an unsure localization lowers all of its
    people); log-space, since 50-token products underflow."""
    return self.localization_log_likelihood + self.joint_log_likelihoods


def _clip(box: Sequence[float], image_hw) -> np.ndarray:
  # Boxes a pixel past the border are common (annotations, detections); the prompt's
  # location tokens need them inside.
  h, w = float(image_hw[0]), float(image_hw[1])
  return np.clip(np.asarray(box, np.float64).reshape(4), 0.0, [w, h, w, h])


def joints_in(
  predictor, image, boxes, seed: int = 0, name: str = "input"
) -> Tuple[np.ndarray, np.ndarray, list]:
  """Stage two: (keypoints [N, 17, 3], log-likelihoods [N], truncations) of the person in
  each of `boxes` [N, 4]; joints the model leaves unlocated go to their box's centre."""
  hw = np.asarray(image).shape[:2]
  poses, scores, cut = [], [], []
  for k, box in enumerate(np.asarray(boxes, np.float64).reshape(-1, 4)):
    box = _clip(box, hw)
    prompt = inference.make_prompt("keypoints", hw, box=box, layout=predictor.layout)
    out = inference.predict(
      predictor, image, prompt, "keypoints", seed=seed, region=box, name=f"{name} person {k}"
    )
    poses.append(out["keypoints"])
    scores.append(out["log_likelihood"])
    if out.get("prompt_truncated"):
      cut.append(out["prompt_truncated"])
  keypoints = np.asarray(poses, np.float64).reshape(-1, coco_keypoints.NUM_KEYPOINTS, 3)
  return keypoints, np.asarray(scores, np.float64), cut


def find_people(
  predictor,
  image,
  class_name: str = PERSON,
  seed: int = 0,
  name: str = "input",
  max_people: Optional[int] = None,
) -> People:
  """Both stages on one image (uint8/float [H, W, 3]).

  class_name: what stage one localizes (GRIT's keypoint samples may name it). max_people:
  stage two runs on the first that many boxes only (COCO keypoint AP reads 20 per image).
  """
  if image is None:
    raise ValueError("two-stage keypoint inference needs an image")
  hw = np.asarray(image).shape[:2]
  prompt = inference.make_prompt("localization", hw, class_name)
  found = inference.predict(predictor, image, prompt, "localization", seed=seed, name=name)
  boxes = np.asarray(found["boxes"], np.float64).reshape(-1, 4)
  if max_people is not None:
    boxes = boxes[:max_people]
  keypoints, scores, cut = joints_in(predictor, image, boxes, seed, name)
  if found.get("prompt_truncated"):
    cut.insert(0, found["prompt_truncated"])
  return People(boxes, keypoints, float(found["log_likelihood"]), scores, tuple(cut))
