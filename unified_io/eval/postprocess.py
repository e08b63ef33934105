"""Model outputs -> structured predictions (paper appendix A.1), and the keypoint text format.

Text outputs are token id sequences of the unified vocabulary (`unified_io.common.vocab`); they are
cut at the first eos and pad ids are dropped. The non-location pieces (class names,
visibility labels) are turned into strings by a caller-supplied `decode_text(ids) -> str`
(e.g. `TextTokenizer.decode`), so this module never needs the SentencePiece model; it only
passes ids the text tokenizer can decode. Parsers never raise on malformed model output:
what cannot be read is dropped (or filled in) and counted in `n_malformed`.

Image outputs are the decoded VQ-GAN image of the padded square model input; they are cropped
to the resized image and resized back to the original size (`undo_image_preprocessing`)
before being read as masks, depth or normals.

Keypoint format (appendix A.1, "Keypoint Estimation": "the output is a list of 17 points (a
pair of locations tokens for the x and y coordinates) along with a visibility labels (1 for
not visible, 2 for partly visible, 3 for fully visible). Non-visible points are preceded by
two copies of a new special tokens that indicate there are no valid coordinates."). Per
joint, in COCO order, space separated:

    labelled joint (COCO v = 1 or 2):  <loc y> <loc x> {v + 1}     e.g. "... 3"
    unlabelled joint (COCO v = 0):     <extra_id_99> <extra_id_99> 1

Points use the project's y-then-x location order (`locations.point_to_text`). The visibility
label is the digit COCO v + 1, which the released inference code reads back as int - 1. The
"new special token" is the last span-corruption sentinel, <extra_id_{num_sentinels - 1}>:
every extra id above the sentinels is a location bin, the text tokenizer must be able to
write it, and span corruption numbers sentinels from 0 up, so the last one (the 100th span
of one example) never occurs in practice. At inference it is masked out
(`not_visible_logit_mask`) so the model guesses coordinates for every joint, as the paper
does: COCO's OKS gives no credit for declaring a joint invisible.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from unified_io.common import image_preprocessing
from unified_io.common import coco_keypoints
from unified_io.common import locations
from unified_io.common import vocab
from unified_io.common import dense_labels

DecodeText = Callable[[np.ndarray], str]

NUM_KEYPOINTS = coco_keypoints.NUM_KEYPOINTS
# Components smaller than this are VQ-GAN speckle, not instances (appendix A.1).
MIN_SEGMENT_PIXELS = 8

# ----------------------------------------------------------------------------------------
# Token sequences
# ----------------------------------------------------------------------------------------


def _clean_ids(token_ids) -> np.ndarray:
  """1-D int64 ids up to the first eos, without pad ids."""
  ids = np.asarray(token_ids)
  if ids.ndim != 1:
    raise ValueError(f"token_ids must be one 1-D sequence, got shape {ids.shape}")
  if ids.size and not np.issubdtype(ids.dtype, np.integer):
    raise ValueError(f"token_ids must be integers, got dtype {ids.dtype}")
  ids = ids.astype(np.int64)
  eos = np.flatnonzero(ids == vocab.EOS_ID)
  if eos.size:
    ids = ids[: eos[0]]
  return ids[ids != vocab.PAD_ID]


def _groups(ids: np.ndarray, is_coordinate: np.ndarray):
  """Splits ids into (coordinate run, following text run) pairs; text before the first
  coordinate is returned separately."""
  groups, start = [], 0
  while start < len(ids) and not is_coordinate[start]:
    start += 1
  leading = ids[:start]
  while start < len(ids):
    end = start
    while end < len(ids) and is_coordinate[end]:
      end += 1
    text_end = end
    while text_end < len(ids) and not is_coordinate[text_end]:
      text_end += 1
    groups.append((ids[start:end], ids[end:text_end]))
    start = text_end
  return leading, groups


def _decode(decode_text: Optional[DecodeText], ids: np.ndarray, layout: vocab.VocabLayout) -> str:
  if decode_text is None or not len(ids):
    return ""
  # Image ids, vocabulary padding and out-of-range garbage are not text: drop them rather
  # than let the tokenizer raise on a bad sample.
  ids = ids[(ids >= 0) & (ids < layout.text_with_extra_size)]
  return decode_text(ids).strip() if len(ids) else ""


def parse_boxes(
  token_ids,
  layout: vocab.VocabLayout,
  image_hw: Sequence[float],
  decode_text: Optional[DecodeText] = None,
) -> Tuple[np.ndarray, List[str], int]:
  """Boxes and labels from "<loc y1> <loc x1> <loc y2> <loc x2> label ..." output.

  Returns (boxes float64 [N, 4] pixel (x1, y1, x2, y2) of the original `image_hw` image,
  labels (the decoded text after each box, "" without `decode_text` or when absent),
  n_malformed). Malformed and dropped: location runs whose length is not a multiple of 4
  (the trailing partial box, with the label after it) and boxes with x2 < x1 or y2 < y1.
  Text before the first box is ignored. Refexp outputs are the same format without labels.
  """
  ids = _clean_ids(token_ids)
  _, groups = _groups(ids, np.asarray(layout.is_location(ids), bool))
  boxes, labels, n_malformed = [], [], 0
  for coords, text in groups:
    n_boxes, leftover = divmod(len(coords), 4)
    n_malformed += int(leftover > 0)
    for k in range(n_boxes):
      box = locations.location_ids_to_box(coords[4 * k : 4 * k + 4], image_hw, layout)
      if box[2] < box[0] or box[3] < box[1]:
        n_malformed += 1
        continue
      # The text belongs to the tokens right before it: the last box, unless a partial box
      # sits in between.
      owns_text = k == n_boxes - 1 and not leftover
      boxes.append(box)
      labels.append(_decode(decode_text, text, layout) if owns_text else "")
  return np.asarray(boxes, np.float64).reshape(-1, 4), labels, n_malformed


# ----------------------------------------------------------------------------------------
# Keypoints
# ----------------------------------------------------------------------------------------


def not_visible_id(layout: vocab.VocabLayout) -> int:
  """Id of the "no valid coordinates" token: the last span-corruption sentinel."""
  if layout.num_sentinels < 1:
    raise ValueError("the layout has no sentinel ids to serve as the not-visible token")
  return layout.sentinel_id(layout.num_sentinels - 1)


def not_visible_text(layout: Optional[vocab.VocabLayout] = None) -> str:
  layout = layout or vocab.VocabLayout.official()
  return vocab.extra_id_token(layout.extra_index(not_visible_id(layout)))


def not_visible_logit_mask(
  layout: vocab.VocabLayout, vocab_size: Optional[int] = None
) -> np.ndarray:
  """bool [vocab_size] allowed-ids mask without the not-visible token, for
  `decoding.allow_only` (equivalently `decoding.forbid(not_visible_id(layout))`)."""
  size = layout.total_size if vocab_size is None else int(vocab_size)
  nv = not_visible_id(layout)
  if size <= nv:
    raise ValueError(f"vocab_size {size} does not contain the not-visible id {nv}")
  allowed = np.ones(size, bool)
  allowed[nv] = False
  return allowed


def keypoints_to_text(
  keypoints, image_hw: Sequence[float], layout: Optional[vocab.VocabLayout] = None
) -> str:
  """Target text of one person's keypoints [K, 3] (x, y, COCO visibility 0/1/2), see the
  module docstring. Labelled joints must lie inside the image (locations' tolerance)."""
  layout = layout or vocab.VocabLayout.official()
  keypoints = np.asarray(keypoints, np.float64)
  if keypoints.ndim != 2 or keypoints.shape[1] != 3:
    raise ValueError(f"keypoints must be [K, 3] (x, y, visibility), got {keypoints.shape}")
  missing = not_visible_text(layout)
  parts = []
  for k, (x, y, v) in enumerate(keypoints):
    if v not in (0, 1, 2):
      raise ValueError(f"keypoint {k} has visibility {v}; COCO uses 0, 1 or 2")
    if v == 0:
      parts += [missing, missing, "1"]
    else:
      parts += [locations.point_to_text((x, y), image_hw, layout), str(int(v) + 1)]
  return " ".join(parts)


def _visibility(label: str) -> Optional[int]:
  return {"1": 0, "2": 1, "3": 2}.get(label)


def parse_keypoints(
  token_ids,
  layout: vocab.VocabLayout,
  image_hw: Sequence[float],
  decode_text: Optional[DecodeText] = None,
  region=None,
  num_keypoints: int = NUM_KEYPOINTS,
) -> Tuple[np.ndarray, int]:
  """Inverse of `keypoints_to_text` for model output: (keypoints float64 [K, 3], n_malformed).

  Rows are (x, y, COCO visibility 0/1/2). Without `decode_text` labels are not read and
  visibility is 2 for located joints, 0 otherwise. Joints without coordinates (not-visible
  pairs, unreadable pairs, missing joints) get visibility 0 and the mean of the located
  joints, or the centre of `region` [4] xyxy (the person box of the prompt) / the image if
  none is located, so OKS sees a plausible guess (as the released code does). Counted as
  malformed: unreadable pairs, location runs of odd length, unreadable labels (with
  `decode_text`), each missing or surplus joint (surplus joints are dropped).
  """
  ids = _clean_ids(token_ids)
  nv = not_visible_id(layout)
  is_coordinate = np.asarray(layout.is_location(ids), bool) | (ids == nv)
  _, groups = _groups(ids, is_coordinate)
  joints: List[Tuple[float, float, int, bool]] = []  # x, y, visibility, located
  n_malformed = 0
  for coords, text in groups:
    n_pairs, leftover = divmod(len(coords), 2)
    n_malformed += int(leftover > 0)
    for k in range(n_pairs):
      pair = coords[2 * k : 2 * k + 2]
      located = bool(np.all(layout.is_location(pair)))
      x = y = 0.0
      if located:
        x, y = locations.location_ids_to_points(pair, image_hw, layout)
      elif not np.all(pair == nv):
        n_malformed += 1  # a location mixed with the not-visible token: no usable point
      visibility = 2 if located else 0
      if decode_text is not None:
        owns_text = k == n_pairs - 1 and not leftover
        label = _visibility(_decode(decode_text, text, layout)) if owns_text else None
        if label is None:
          n_malformed += 1
        elif located:
          visibility = label
      joints.append((float(x), float(y), visibility, located))
  n_malformed += abs(len(joints) - num_keypoints)
  joints = joints[:num_keypoints]
  joints += [(0.0, 0.0, 0, False)] * (num_keypoints - len(joints))

  keypoints = np.asarray([j[:3] for j in joints], np.float64).reshape(num_keypoints, 3)
  located = np.asarray([j[3] for j in joints], bool)
  if located.any():
    fill = keypoints[located, :2].mean(axis=0)
  elif region is not None:
    x1, y1, x2, y2 = np.asarray(region, np.float64)
    fill = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
  else:
    fill = np.array([image_hw[1] / 2, image_hw[0] / 2], np.float64)
  keypoints[~located, :2] = fill
  return keypoints, n_malformed


# ----------------------------------------------------------------------------------------
# Image outputs
# ----------------------------------------------------------------------------------------


def _unit_image(image, what: str) -> np.ndarray:
  """float32 [S, S, 3] in [0, 1] from a uint8 or float model output image."""
  image = np.asarray(image)
  if image.ndim == 2:
    image = np.repeat(image[..., None], 3, axis=-1)
  if image.ndim != 3 or image.shape[-1] != 3 or image.shape[0] != image.shape[1]:
    raise ValueError(f"{what} must be a square [S, S, 3] model output, got {image.shape}")
  if np.issubdtype(image.dtype, np.integer):
    return image.astype(np.float32) / 255.0
  return np.clip(image.astype(np.float32), 0.0, 1.0)


def _to_original(image: np.ndarray, image_hw, method: str) -> np.ndarray:
  height, width = (int(v) for v in image_hw)
  if height <= 0 or width <= 0:
    raise ValueError(f"image_hw must be positive (height, width), got {tuple(image_hw)}")
  return np.asarray(
    image_preprocessing.undo_image_preprocessing(image, (height, width), method=method), np.float32
  )


def image_to_depth(
  image, image_hw: Sequence[int], max_depth: float, method: str = "nearest"
) -> np.ndarray:
  """Depth in metres [H, W] of the original image from the model's grey output image."""
  restored = _to_original(_unit_image(image, "depth image"), image_hw, method)
  return dense_labels.image_to_depth(np.clip(restored, 0.0, 1.0), max_depth)


def image_to_normals(image, image_hw: Sequence[int], method: str = "nearest") -> np.ndarray:
  """Unit surface normals [H, W, 3] of the original image from the model's RGB output.

  Resizing happens before decoding so interpolated ("bilinear") vectors are renormalised.
  """
  restored = _to_original(_unit_image(image, "normal image"), image_hw, method)
  return dense_labels.image_to_normals(np.clip(restored, 0.0, 1.0))


def segmentation_masks(
  color_image,
  image_hw: Sequence[int],
  color_names_to_class: Optional[Dict[str, str]] = None,
  min_pixels: int = MIN_SEGMENT_PIXELS,
  palette=dense_labels.NAMED_COLORS,
) -> Tuple[np.ndarray, List[str], List[Optional[str]]]:
  """Instance masks from a segmentation output image (appendix A.1, Object Segmentation).

  The image is brought back to the original size with nearest resizing, every pixel snaps
  to the nearest colour of black (background) + `palette` ((name, (r, g, b) 0..255) pairs;
  the VQ-GAN never reproduces colours exactly), connected components (4-connected) under
  `min_pixels` are dropped, and each colour with pixels left becomes one mask.

  Returns (masks bool [N, H, W], colour names [N], classes [N]): the class of a colour is
  color_names_to_class[name] (None for a colour the mapping lacks), or the colour name when
  no mapping is given. Caveat: edges blurred between a colour and black can snap to a darker
  palette colour (red -> maroon) and survive as a thin ring; pass only the colours the task
  can produce as `palette` when that matters.
  """
  if min_pixels < 1:
    raise ValueError(f"min_pixels must be >= 1, got {min_pixels}")
  names = [name for name, _ in palette]
  if not names:
    raise ValueError("palette is empty")
  colors = np.concatenate(
    [np.zeros((1, 3), np.float32), np.asarray([rgb for _, rgb in palette], np.float32) / 255.0]
  )
  if colors.shape != (len(names) + 1, 3):
    raise ValueError("palette must be (name, (r, g, b)) pairs")
  image = _to_original(_unit_image(color_image, "color_image"), image_hw, "nearest")
  distances = np.stack([np.sum((image - c) ** 2, axis=-1) for c in colors])
  nearest = np.argmin(distances, axis=0)

  masks, mask_names, classes = [], [], []
  for k, name in enumerate(names, start=1):
    mask = nearest == k
    if mask.sum() < min_pixels:
      continue
    components, count = ndimage.label(mask)
    sizes = ndimage.sum(mask, components, index=np.arange(1, count + 1))
    keep = np.concatenate([[False], np.asarray(sizes) >= min_pixels])
    mask = keep[components]
    if not mask.any():
      continue
    masks.append(mask)
    mask_names.append(name)
    classes.append(name if color_names_to_class is None else color_names_to_class.get(name))
  height, width = (int(v) for v in image_hw)
  stacked = np.stack(masks) if masks else np.zeros((0, height, width), bool)
  return stacked, mask_names, classes
