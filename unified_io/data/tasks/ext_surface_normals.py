"""Surface normal estimation (A.1.3) on FrameNet's ScanNet frames and on BlendedMVS.

Importing this module registers the builders (unified_io/data/builders/surface_normals.py,
whose docstring lists the release files, the record fields and how the normals were made)
and these tasks, in the dense_labelling group:

- framenet_normals (`uio_framenet`, splits train and test; "validation" reads test, since
  FrameNet has only the two lists).
- blendedmvs_normals (`uio_blendedmvs`, splits train and validation).

Both: the prompt is the "surface_normal" template ("What is the surface normal of the image
?"); the target image is the normal map as RGB, `dense_labels.normals_to_image` of the
decoded unit normals (rgb = (n + 1) / 2, camera frame x right, y down, z forward, normals
toward the camera: the frame of the built-in scenes and of GRIT's normal images). Pixels
without a normal (black in the stored PNG) are zero vectors, which that encoding makes
mid-grey (128, 128, 128): what GRIT's scorer reads as "no ground truth". Meta "normals"
(float32 [H, W, 3], zero where invalid) is what the NORMAL_ANGLE scorer compares with the
decoded prediction; normal_angle_error skips zero ground-truth vectors, so unlabelled
pixels are not scored. Skips: a normal map of another size than the image, or one with no
valid pixel. No task sets `size`: the catalogue holds the paper's sizes.
"""

from __future__ import annotations

import numpy as np

from unified_io.common import dense_labels
from unified_io.common import normals_from_depth as nfd
from unified_io.data.builders import surface_normals  # importing it registers both builders
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision_logic as vt

M, O = tasks.Metric, tasks.Output
FRAMENET_SPLITS = {"train": "train", "validation": "test", "test": "test"}
BLENDEDMVS_SPLITS = {"train": "train", "validation": "validation"}


def _normals(example, rng, ctx, prompt):
  del rng, ctx
  image = vt.as_image(example["image"])
  stored = np.asarray(example["normal"])
  if stored.shape != image.shape:
    raise vt.Skip(f"normal map {stored.shape} does not match the image {image.shape}")
  normals, valid = nfd.rgb8_to_normals(stored)
  if not valid.any():
    raise vt.Skip("normal map has no valid pixel")
  return vt.raw_example(
    prompt(),
    image,
    image.shape[:2],
    vt.example_id(example),
    target_image=dense_labels.normals_to_image(normals),
    normals=normals,
  )


vt.register(
  "framenet_normals",
  "dense_labelling",
  "surface_normal",
  _normals,
  metric=M.NORMAL_ANGLE,
  output=O.NORMALS,
  builder=surface_normals.FRAMENET,
  splits=FRAMENET_SPLITS,
  description="FrameNet: ScanNet frames and the normals FrameNet rendered from the meshes.",
)
vt.register(
  "blendedmvs_normals",
  "dense_labelling",
  "surface_normal",
  _normals,
  metric=M.NORMAL_ANGLE,
  output=O.NORMALS,
  builder=surface_normals.BLENDEDMVS,
  splits=BLENDEDMVS_SPLITS,
  description="BlendedMVS: blended images, normals derived from the rendered depth maps.",
)
