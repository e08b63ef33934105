"""A model's answers as GRIT prediction fields: confidences in [0, 1] and normal images.

Shared by the one-at-a-time and the batched runner (runner.py, batched.py), so both write
the same numbers from the same answers.
"""

from __future__ import annotations

import numpy as np


def softmax_at(scores: np.ndarray, index: int) -> float:
  """Option `index`'s probability renormalised over the options (-inf: not an option)."""
  scores = np.asarray(scores, np.float64)
  top = scores[np.isfinite(scores)].max()
  return float(np.exp(scores[index] - top) / np.exp(scores - top).sum())  # exp(-inf) = 0


def probability(prediction: dict) -> float:
  """The greedy output sequence's probability, in [0, 1] as GRIT wants a confidence."""
  return float(np.clip(np.exp(prediction["log_likelihood"]), 0.0, 1.0))


def normals_rgb(normals: np.ndarray) -> np.ndarray:
  """Unit normals [H, W, 3] -> GRIT's RGB encoding, channel = (n + 1) / 2 * 255."""
  return np.clip(np.round((np.asarray(normals) + 1.0) / 2.0 * 255.0), 0, 255).astype(np.uint8)


def keypoint_confidence(person_confidence: float, joint_probabilities) -> float:
  """The person-localization sequence's probability times the mean probability of the
  per-person joint sequences (the person confidence alone when nobody was found)."""
  if len(joint_probabilities):
    return person_confidence * float(np.mean(joint_probabilities))
  return person_confidence
