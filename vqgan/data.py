"""VQ-GAN training and evaluation images: built-in scenes and renderings of their dense labels.

Unified-IO's image targets are RGB images and dense labels drawn as images
(unified_io/common/dense_labels.py), so the tokenizer learns both. One image of a batch is one
`modality` of one scene:

- rgb: the scene's render.
- depth: `depth_to_image(depth, max_depth)`; max_depth must equal the Unified-IO data
  pipeline's `config.data.max_depth` (the tiny config uses 20 m), else the grey levels the
  tokenizer learns are not the ones it is asked to encode.
- normals: `normals_to_image(normals)`.
- segmentation: `instances_to_image` with random distinct palette colours, either for every
  visible instance (as segmentation-conditioned image generation draws them) or for the
  instances of one random shape class (as the segmentation task's targets do).
- mask: `mask_to_image` of one random visible object (grounded VQA's target).

Scenes are generated on the fly with `builtin_dataset.scene_example(seed)` (about 2 ms each):
training draws from the first `num_scenes` train seeds, evaluation uses validation seeds, so
the two never share a scene and everything is a pure function of its seeds. A train batch is
a function of (seed, step) only, which makes resuming exact and free.
"""

from typing import Dict, Sequence

import numpy as np

from unified_io.data import builtin_dataset
from unified_io.common import dense_labels

MODALITIES = ("rgb", "depth", "normals", "segmentation", "mask")
IMAGE_SIZE = 64  # the built-in scenes' resolution


def scene(seed: int) -> dict:
  return builtin_dataset.scene_example(seed, IMAGE_SIZE)


def _visible(instance_ids) -> np.ndarray:
  """Indices (into objects) of the objects with at least one visible pixel."""
  ids = np.unique(instance_ids)
  return ids[ids > 0].astype(np.int64) - 1


def _segmentation(example, rng) -> np.ndarray:
  ids = np.asarray(example["instance_ids"], np.int64)
  visible = _visible(ids)
  if rng.random() < 0.5 and len(visible):
    labels = np.asarray(example["objects"]["label"])[visible]
    visible = visible[labels == labels[rng.integers(len(labels))]]
  colors = dense_labels.pick_colors(len(visible), rng)
  instance_map = np.zeros(ids.shape, np.int64)
  for j, k in enumerate(visible):
    instance_map[ids == k + 1] = j + 1
  return dense_labels.instances_to_image(instance_map, colors)


def _mask(example, rng) -> np.ndarray:
  ids = np.asarray(example["instance_ids"], np.int64)
  visible = _visible(ids)
  if not len(visible):  # the generator always leaves something visible; stay total anyway
    return dense_labels.mask_to_image(np.zeros(ids.shape, bool))
  return dense_labels.mask_to_image(ids == visible[rng.integers(len(visible))] + 1)


def render(example, modality: str, rng: np.random.Generator, max_depth: float) -> np.ndarray:
  """One modality of a scene as float32 [64, 64, 3] in [0, 1]."""
  if modality == "rgb":
    return np.asarray(example["image"], np.float32) / 255.0
  if modality == "depth":
    return dense_labels.depth_to_image(example["depth"], max_depth)
  if modality == "normals":
    return dense_labels.normals_to_image(example["normals"])
  if modality == "segmentation":
    return _segmentation(example, rng)
  if modality == "mask":
    return _mask(example, rng)
  raise ValueError(f"Unknown modality {modality!r}; choose from {MODALITIES}")


def normalized_rates(rates: Dict[str, float]) -> Dict[str, float]:
  """{modality: rate} with unknown names and non-positive totals rejected; sums to 1."""
  unknown = sorted(set(rates) - set(MODALITIES))
  if unknown:
    raise ValueError(f"Unknown modalities {unknown} in the data rates; choose from {MODALITIES}")
  if any(r < 0 for r in rates.values()) or sum(rates.values()) <= 0:
    raise ValueError(f"Data rates must be non-negative with a positive sum, got {dict(rates)}")
  total = float(sum(rates.values()))
  return {m: float(rates[m]) / total for m in MODALITIES if rates.get(m, 0) > 0}


def train_batch(
  step: int,
  batch_size: int,
  rates: Dict[str, float],
  *,
  seed: int,
  num_scenes: int,
  max_depth: float,
):
  """Batch `step` of the training stream: (images float32 [B, 64, 64, 3] in [-1, 1],
  modality names [B]). Depends only on its arguments."""
  rates = normalized_rates(rates)
  names = list(rates)
  rng = np.random.default_rng([seed, step])
  scenes = rng.integers(num_scenes, size=batch_size)
  picks = rng.choice(len(names), size=batch_size, p=[rates[m] for m in names])
  seeds = builtin_dataset.split_seeds("scenes", "train", num_scenes)
  images = np.stack(
    [render(scene(seeds[int(i)]), names[k], rng, max_depth) for i, k in zip(scenes, picks)]
  )
  return images * 2.0 - 1.0, [names[k] for k in picks]


def heldout_images(
  modality: str, num: int, max_depth: float, split: str = "validation", seeds: Sequence[int] = None
) -> np.ndarray:
  """The first `num` scenes of `split` rendered as `modality`: float32 [num, 64, 64, 3] in
  [0, 1]. Random colours and mask choices are seeded by the scene, so this is fixed."""
  if seeds is None:
    seeds = builtin_dataset.split_seeds("scenes", split, num)
  return (
    np.stack([render(scene(s), modality, np.random.default_rng(s), max_depth) for s in seeds])
    if len(seeds)
    else np.zeros((0, 64, 64, 3), np.float32)
  )


def psnr(reference, reconstruction) -> np.ndarray:
  """Per-image PSNR in dB of images in [0, 1] ([B, H, W, C]); inf for exact copies."""
  err = np.mean(
    np.square(np.asarray(reference, np.float64) - np.asarray(reconstruction, np.float64)),
    axis=(1, 2, 3),
  )
  with np.errstate(divide="ignore"):
    return 10.0 * np.log10(1.0 / err)
