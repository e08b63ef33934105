"""The COCO person-keypoint conventions, in one place.

Keypoint data, prompts, metrics and drawings all index joints in COCO order; keeping the
order, the OKS falloffs and the limbs here means a change to one cannot silently disagree
with another (they used to be written out in several modules).
"""

import numpy as np

# COCO keypoint order (the "keypoints" field of person_keypoints annotations).
KEYPOINT_NAMES = (
  "nose",
  "left_eye",
  "right_eye",
  "left_ear",
  "right_ear",
  "left_shoulder",
  "right_shoulder",
  "left_elbow",
  "right_elbow",
  "left_wrist",
  "right_wrist",
  "left_hip",
  "right_hip",
  "left_knee",
  "right_knee",
  "left_ankle",
  "right_ankle",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)  # 17

# COCO's per-keypoint OKS falloffs (COCOeval.Params.kpt_oks_sigmas), in KEYPOINT_NAMES order.
OKS_SIGMAS = (
  np.array(
    [
      0.26,
      0.25,
      0.25,
      0.35,
      0.35,
      0.79,
      0.79,
      0.72,
      0.72,
      0.62,
      0.62,
      1.07,
      1.07,
      0.87,
      0.87,
      0.89,
      0.89,
    ]
  )
  / 10.0
)
OKS_SIGMAS.setflags(write=False)  # shared by every caller: nobody may edit it in place

# COCO's 19 limbs ("skeleton" in the annotation files, 1-based there), as 0-based pairs.
SKELETON = (
  (15, 13),
  (13, 11),
  (16, 14),
  (14, 12),
  (11, 12),
  (5, 11),
  (6, 12),
  (5, 6),
  (5, 7),
  (6, 8),
  (7, 9),
  (8, 10),
  (1, 2),
  (0, 1),
  (0, 2),
  (1, 3),
  (2, 4),
  (3, 5),
  (4, 6),
)
