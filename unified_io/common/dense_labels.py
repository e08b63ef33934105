"""Dense labels <-> RGB images, the one place both directions are defined.

Unified-IO reads and writes depth, surface normals and segmentations as RGB images that the
VQ-GAN tokenizes (paper §2, appendix A.1). Images here are float32 in [0, 1] (the pipeline
maps targets to [-1, 1] for the VQ-GAN). Inverses are exact up to quantisation, so
`image_to_depth(depth_to_image(d, m), m) == clip(d, 0, m)`.

- Depth: grey level = depth / max_depth, clipped to [0, 1]; non-finite depth is black.
- Normals: rgb = (n + 1) / 2 per axis (x, y, z -> r, g, b); the inverse renormalises.
- Segmentation: each instance gets its own colour on black; colours come from a named
  palette so prompts can say "red : circle" and evaluation can map colours back.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

# Saturated, mutually distant colours with one-word names (none is black, the background).
NAMED_COLORS: Tuple[Tuple[str, Tuple[int, int, int]], ...] = (
  ("red", (255, 0, 0)),
  ("green", (0, 255, 0)),
  ("blue", (0, 0, 255)),
  ("yellow", (255, 255, 0)),
  ("cyan", (0, 255, 255)),
  ("magenta", (255, 0, 255)),
  ("white", (255, 255, 255)),
  ("orange", (255, 128, 0)),
  ("purple", (128, 0, 255)),
  ("gray", (128, 128, 128)),
  ("pink", (255, 128, 192)),
  ("lime", (128, 255, 0)),
  ("navy", (0, 0, 128)),
  ("maroon", (128, 0, 0)),
  ("teal", (0, 128, 128)),
  ("olive", (128, 128, 0)),
)
COLOR_NAMES = tuple(name for name, _ in NAMED_COLORS)
COLOR_VALUES = np.asarray([rgb for _, rgb in NAMED_COLORS], np.float32) / 255.0


def _check_hw(array: np.ndarray, channels: int | None, what: str) -> np.ndarray:
  array = np.asarray(array)
  if channels is None and array.ndim != 2:
    raise ValueError(f"{what} must be [H, W], got shape {array.shape}")
  if channels is not None and (array.ndim != 3 or array.shape[-1] != channels):
    raise ValueError(f"{what} must be [H, W, {channels}], got shape {array.shape}")
  return array


def depth_to_image(depth, max_depth: float) -> np.ndarray:
  """Depth in metres [H, W] -> grey float32 image [H, W, 3] in [0, 1]."""
  if not max_depth > 0:
    raise ValueError(f"max_depth must be positive, got {max_depth}")
  depth = _check_hw(depth, None, "depth").astype(np.float32)
  grey = np.where(np.isfinite(depth), np.clip(depth / max_depth, 0.0, 1.0), 0.0)
  return np.repeat(grey[..., None], 3, axis=-1).astype(np.float32)


def image_to_depth(image, max_depth: float) -> np.ndarray:
  """Grey image [H, W, 3] in [0, 1] -> depth in metres [H, W] (channels averaged)."""
  image = _check_hw(image, 3, "depth image").astype(np.float32)
  return np.clip(image.mean(axis=-1), 0.0, 1.0) * np.float32(max_depth)


def normals_to_image(normals) -> np.ndarray:
  """Unit normals [H, W, 3] (x, y, z) -> float32 image [H, W, 3] in [0, 1]."""
  normals = _check_hw(normals, 3, "normals").astype(np.float32)
  normals = np.where(np.isfinite(normals), normals, 0.0)
  return np.clip((normals + 1.0) / 2.0, 0.0, 1.0)


def image_to_normals(image) -> np.ndarray:
  """Image [H, W, 3] in [0, 1] -> unit normals [H, W, 3]; a zero vector stays zero."""
  vectors = _check_hw(image, 3, "normal image").astype(np.float32) * 2.0 - 1.0
  norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
  return np.where(norm > 1e-6, vectors / np.maximum(norm, 1e-6), 0.0).astype(np.float32)


def pick_colors(n: int, rng: np.random.Generator) -> np.ndarray:
  """Indices of `n` distinct palette colours in random order."""
  if n > len(NAMED_COLORS):
    raise ValueError(f"{n} instances need more than the {len(NAMED_COLORS)} palette colours")
  return rng.permutation(len(NAMED_COLORS))[:n]


def instances_to_image(instance_ids, color_indices: Sequence[int]) -> np.ndarray:
  """Instance map [H, W] (0 = background, i + 1 = instance i) -> colour image in [0, 1].

  Instance i is painted with palette colour color_indices[i]; ids without a colour (and
  the background) stay black.
  """
  instance_ids = _check_hw(instance_ids, None, "instance_ids").astype(np.int64)
  table = np.zeros((len(color_indices) + 1, 3), np.float32)
  if len(color_indices):
    table[1:] = COLOR_VALUES[np.asarray(color_indices, np.int64)]
  ids = np.where((instance_ids >= 0) & (instance_ids <= len(color_indices)), instance_ids, 0)
  return table[ids]


def mask_to_image(mask) -> np.ndarray:
  """Binary mask [H, W] -> white-on-black image [H, W, 3] in [0, 1]."""
  mask = _check_hw(mask, None, "mask").astype(bool)
  return np.repeat(mask[..., None], 3, axis=-1).astype(np.float32)
