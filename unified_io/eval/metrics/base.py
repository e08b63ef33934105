"""What several metric families share: argument checks and GRIT's matched-instance score.

The matched score lives here rather than in one family because boxes (localization),
masks (segmentation) and poses (keypoints) are all scored with it.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import optimize


def same_length(a, b, name_a: str, name_b: str):
  if len(a) != len(b):
    raise ValueError(f"{name_a} has {len(a)} entries but {name_b} has {len(b)}")


def per_image(values, name: str, n_images: int, width: Optional[int] = None):
  """Checks a per-image list; with `width`, each entry becomes a float [N_i, width] array."""
  if len(values) != n_images:
    raise ValueError(f"{name} has {len(values)} images, expected {n_images}")
  out = []
  for i, v in enumerate(values):
    v = np.asarray(v, np.float64) if width is not None else list(v)
    if width is not None:
      v = v.reshape((0, width)) if v.size == 0 else v
      if v.ndim != 2 or v.shape[1] != width:
        raise ValueError(f"{name}[{i}] must be [N, {width}], got shape {v.shape}")
    out.append(v)
  return out


def matched_score(similarity) -> float:
  """One image's instance score from a [num_pred, num_gt] similarity matrix (GRIT's).

  Predictions and ground truth are paired one-to-one to maximise the total similarity
  (Hungarian); pairs of similarity 0 do not count. The score is sum(matched) /
  (num_pred + num_gt_unmatched), so extra and missing instances both cost. Nothing on
  both sides scores 1; nothing on exactly one side scores 0.
  """
  similarity = np.asarray(similarity, np.float64)
  num_pred, num_gt = similarity.shape
  if num_pred == 0 and num_gt == 0:
    return 1.0
  if num_pred == 0 or num_gt == 0:
    return 0.0
  rows, cols = optimize.linear_sum_assignment(-similarity)
  matched = similarity[rows, cols]
  matched = matched[matched > 0]
  return float(matched.sum() / (num_pred + num_gt - len(matched)))


def safe_ratio(numerator: np.ndarray, denominator: np.ndarray, epsilon: float = 0.0) -> np.ndarray:
  """numerator / (denominator + epsilon), 0 where that denominator is 0 (an IoU's union).

  epsilon > 0 reproduces scorers that add it to every union (GRIT adds 1e-6).
  """
  denominator = denominator + epsilon
  return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), 0.0)
