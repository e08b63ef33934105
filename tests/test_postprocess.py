"""Tests for unified_io.eval.postprocess on hand-made token sequences and images."""

import os

import numpy as np
import pytest

from unified_io.common import image_preprocessing
from unified_io.common import locations
from unified_io.eval import postprocess
from unified_io.common import vocab
from unified_io.common import dense_labels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYOUT = vocab.VocabLayout.official()
IMAGE_HW = (480, 640)
BIN_PX = max(IMAGE_HW) / (LAYOUT.num_location_bins - 1)  # one location bin in pixels

# A stand-in text vocabulary: ids 10.. are words, so tests need no SentencePiece model.
WORDS = {10: "dining", 11: "table", 12: "cat", 13: "dog", 14: "1", 15: "2", 16: "3", 17: "x"}
IDS = {w: i for i, w in WORDS.items()}


def fake_decode(ids):
  return " ".join(WORDS.get(int(i), "?") for i in ids)


def box_ids(box):
  return list(locations.box_to_location_ids(box, IMAGE_HW, LAYOUT))


# ---------------------------------------------------------------------------------------
# Boxes
# ---------------------------------------------------------------------------------------


def test_boxes_round_trip_within_one_bin():
  rng = np.random.default_rng(0)
  xy1 = rng.uniform(0, 300, (6, 2))
  boxes = np.concatenate([xy1, xy1 + rng.uniform(1, 170, (6, 2))], -1)
  names = [["dining", "table"], ["cat"], ["dog"], ["cat"], ["dining", "table"], ["dog"]]
  ids = []
  for box, name in zip(boxes, names):
    ids += box_ids(box) + [IDS[w] for w in name]
  ids += [vocab.EOS_ID, 0, 0]
  parsed, labels, n_malformed = postprocess.parse_boxes(
    np.asarray(ids, np.int32), LAYOUT, IMAGE_HW, fake_decode
  )
  assert n_malformed == 0
  assert labels == [" ".join(n) for n in names]
  assert parsed.shape == (6, 4)
  assert np.abs(parsed - boxes).max() <= BIN_PX


def test_boxes_without_labels_and_without_decoder():
  box = [10.0, 20.0, 200.0, 300.0]
  parsed, labels, n_malformed = postprocess.parse_boxes(box_ids(box), LAYOUT, IMAGE_HW)
  assert labels == [""] and n_malformed == 0
  np.testing.assert_allclose(parsed[0], box, atol=BIN_PX)
  # Two boxes back to back (refexp style): both kept, the label goes to the second.
  parsed, labels, _ = postprocess.parse_boxes(
    box_ids(box) + box_ids(box) + [IDS["cat"]], LAYOUT, IMAGE_HW, fake_decode
  )
  assert len(parsed) == 2 and labels == ["", "cat"]


def test_malformed_box_sequences_are_counted_not_fatal():
  good = box_ids([10, 10, 50, 50])
  reversed_box = box_ids([10, 10, 50, 50])
  reversed_box[0], reversed_box[2] = reversed_box[2], reversed_box[0]  # y2 < y1
  image_token = LAYOUT.image_id(5)
  ids = (
    [IDS["x"]]  # leading text: ignored
    + good
    + [IDS["cat"]]
    + good[:3]
    + [IDS["dog"]]  # partial box, its label dropped with it
    + reversed_box
    + [IDS["cat"]]  # x2 < x1 or y2 < y1
    + good
    + [image_token, -7, 10**6, IDS["dog"]]  # garbage ids inside a label
    + good[:2]
  )  # trailing partial box
  parsed, labels, n_malformed = postprocess.parse_boxes(ids, LAYOUT, IMAGE_HW, fake_decode)
  assert labels == ["cat", "dog"]
  assert len(parsed) == 2
  assert n_malformed == 3


@pytest.mark.parametrize(
  "ids",
  [[], [vocab.EOS_ID] + [LAYOUT.location_id(3)] * 4, [LAYOUT.image_id(1)] * 9, [IDS["cat"]] * 3],
)
def test_no_boxes(ids):
  parsed, labels, n_malformed = postprocess.parse_boxes(ids, LAYOUT, IMAGE_HW, fake_decode)
  assert parsed.shape == (0, 4) and labels == [] and n_malformed == 0


def test_parse_boxes_rejects_bad_arguments():
  with pytest.raises(ValueError, match="token_ids"):
    postprocess.parse_boxes(np.zeros((2, 4), np.int32), LAYOUT, IMAGE_HW)
  with pytest.raises(ValueError, match="token_ids"):
    postprocess.parse_boxes(np.zeros(4, np.float32), LAYOUT, IMAGE_HW)


# ---------------------------------------------------------------------------------------
# Keypoints
# ---------------------------------------------------------------------------------------


def _person(rng):
  keypoints = np.concatenate(
    [
      rng.uniform([100, 50], [400, 450], (17, 2)),
      rng.choice([0, 1, 2], (17, 1), p=[0.25, 0.25, 0.5]),
    ],
    -1,
  )
  keypoints[0, 2], keypoints[1, 2] = 2, 0
  keypoints[keypoints[:, 2] == 0, :2] = 0.0
  return keypoints


def test_keypoint_text_format():
  keypoints = np.zeros((17, 3))
  keypoints[0] = [320.0, 240.0, 2]
  keypoints[1] = [10.0, 20.0, 1]
  text = postprocess.keypoints_to_text(keypoints, IMAGE_HW)
  parts = text.split(" ")
  assert len(parts) == 17 * 3
  # y then x, then COCO visibility + 1.
  assert parts[:3] == locations.point_to_text([320.0, 240.0], IMAGE_HW).split(" ") + ["3"]
  assert parts[5] == "2"
  assert parts[6:9] == ["<extra_id_99>", "<extra_id_99>", "1"]
  assert postprocess.not_visible_text() == "<extra_id_99>"
  with pytest.raises(ValueError, match="visibility"):
    postprocess.keypoints_to_text(np.full((17, 3), 3.0), IMAGE_HW)
  with pytest.raises(ValueError, match="keypoints"):
    postprocess.keypoints_to_text(np.zeros((17, 2)), IMAGE_HW)


@pytest.fixture(scope="module")
def tokenizer():
  from unified_io.common.text_tokenizer import TextTokenizer

  return TextTokenizer(os.path.join(ROOT, "tokenizers", "uio_tiny_2k.model"), image_vocab_size=512)


def test_keypoints_round_trip_through_the_tokenizer(tokenizer):
  layout = tokenizer.layout
  keypoints = _person(np.random.default_rng(1))
  ids = tokenizer.encode(postprocess.keypoints_to_text(keypoints, IMAGE_HW, layout), True)
  assert np.sum(ids == postprocess.not_visible_id(layout)) == 2 * np.sum(keypoints[:, 2] == 0)
  parsed, n_malformed = postprocess.parse_keypoints(ids, layout, IMAGE_HW, tokenizer.decode)
  assert n_malformed == 0
  np.testing.assert_array_equal(parsed[:, 2], keypoints[:, 2])
  labelled = keypoints[:, 2] > 0
  assert np.abs(parsed[labelled, :2] - keypoints[labelled, :2]).max() <= BIN_PX
  # Unlabelled joints get the mean of the located ones.
  np.testing.assert_allclose(
    parsed[~labelled, :2], np.broadcast_to(parsed[labelled, :2].mean(0), (sum(~labelled), 2))
  )


def test_keypoint_text_matches_the_task_encoder():
  vision_tasks = pytest.importorskip("unified_io.data.tasks.vision_logic")
  from unified_io.data.tasks import registry as tasks

  keypoints = _person(np.random.default_rng(2))
  ours = postprocess.keypoints_to_text(keypoints, IMAGE_HW, LAYOUT)
  theirs = vision_tasks.keypoints_text(
    keypoints[:, :2], keypoints[:, 2].astype(int), IMAGE_HW, tasks.TaskContext(layout=LAYOUT)
  )
  assert ours == theirs


def _joint(point, label):
  return list(locations.points_to_location_ids(point, IMAGE_HW, LAYOUT)) + [IDS[label]]


def test_malformed_keypoint_sequences():
  nv = postprocess.not_visible_id(LAYOUT)
  loc = LAYOUT.location_id(500)
  ids = (
    _joint([100.0, 100.0], "3")
    + _joint([200.0, 300.0], "2")
    + [nv, nv, IDS["1"]]  # not visible: filled with the mean
    + [loc, nv, IDS["3"]]  # mixed pair: no point (1)
    + _joint([50.0, 60.0], "x")  # unreadable label (1), located -> v 2
    + [loc, loc, loc, IDS["3"]]
  )  # odd run (1), its label dropped (1)
  parsed, n_malformed = postprocess.parse_keypoints(ids, LAYOUT, IMAGE_HW, fake_decode)
  assert parsed.shape == (17, 3)
  # 6 joints read, 11 missing.
  assert n_malformed == 4 + 11
  np.testing.assert_array_equal(parsed[:6, 2], [2, 1, 0, 0, 2, 2])
  located = [0, 1, 4, 5]
  mean = parsed[located, :2].mean(0)
  np.testing.assert_allclose(
    parsed[[2, 3] + list(range(6, 17)), :2], np.broadcast_to(mean, (13, 2))
  )
  # Surplus joints are cut and counted; no decoder means located joints are visible.
  many = _joint([10.0, 10.0], "3") * 19
  parsed, n_malformed = postprocess.parse_keypoints(many, LAYOUT, IMAGE_HW)
  assert n_malformed == 2 and np.all(parsed[:, 2] == 2)


def test_keypoints_with_nothing_located_use_the_region_centre():
  parsed, n_malformed = postprocess.parse_keypoints(
    [], LAYOUT, IMAGE_HW, region=[100, 200, 300, 400]
  )
  assert n_malformed == 17
  np.testing.assert_allclose(parsed, np.tile([200.0, 300.0, 0.0], (17, 1)))
  parsed, _ = postprocess.parse_keypoints([LAYOUT.image_id(3)] * 5, LAYOUT, IMAGE_HW)
  np.testing.assert_allclose(parsed[:, :2], np.tile([320.0, 240.0], (17, 1)))


def test_not_visible_logit_mask():
  nv = postprocess.not_visible_id(LAYOUT)
  assert nv == LAYOUT.sentinel_id(99) and not LAYOUT.is_location(nv)
  mask = postprocess.not_visible_logit_mask(LAYOUT)
  assert mask.shape == (LAYOUT.total_size,) and not mask[nv] and mask.sum() == mask.size - 1
  assert postprocess.not_visible_logit_mask(LAYOUT, vocab_size=LAYOUT.total_size + 64).size == (
    LAYOUT.total_size + 64
  )


# ---------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------

RED = np.array(dict(dense_labels.NAMED_COLORS)["red"]) / 255.0
BLUE = np.array(dict(dense_labels.NAMED_COLORS)["blue"]) / 255.0


def test_segmentation_two_squares_and_a_speck():
  rng = np.random.default_rng(0)
  image = np.zeros((64, 64, 3))
  image[5:20, 5:20] = RED
  image[30:50, 35:60] = BLUE
  image[60, 2:5] = RED  # a 3-pixel speck
  # The VQ-GAN never reproduces colours exactly.
  image = np.clip(image + rng.normal(0, 0.06, image.shape), 0, 1)
  masks, names, classes = postprocess.segmentation_masks(
    image, (64, 64), color_names_to_class={"red": "apple"}
  )
  assert names == ["red", "blue"] and classes == ["apple", None]
  expected_red = np.zeros((64, 64), bool)
  expected_red[5:20, 5:20] = True
  expected_blue = np.zeros((64, 64), bool)
  expected_blue[30:50, 35:60] = True
  np.testing.assert_array_equal(masks[0], expected_red)
  np.testing.assert_array_equal(masks[1], expected_blue)
  # Without a mapping the classes are the colour names; uint8 input works the same.
  masks8, _, classes = postprocess.segmentation_masks(
    (image * 255).round().astype(np.uint8), (64, 64)
  )
  assert classes == ["red", "blue"]
  np.testing.assert_array_equal(masks8, masks)


def test_segmentation_undoes_padding_and_resizes():
  # Original 100 x 150: the model saw it resized to 42 x 64 (of 64) and padded below.
  assert image_preprocessing.resized_size(100, 150, 64) == (42, 64)
  image = np.zeros((64, 64, 3))
  image[0:21, 0:32] = RED  # the top-left quarter of the real image
  image[50:, :] = BLUE  # padding: must not show up
  masks, names, _ = postprocess.segmentation_masks(image, (100, 150))
  assert names == ["red"] and masks.shape == (1, 100, 150)
  rows, cols = np.flatnonzero(masks[0].any(1)), np.flatnonzero(masks[0].any(0))
  assert rows[0] == 0 and abs(rows[-1] - 49) <= 2
  assert cols[0] == 0 and abs(cols[-1] - 74) <= 2
  empty, names, classes = postprocess.segmentation_masks(np.zeros((64, 64, 3)), (100, 150))
  assert empty.shape == (0, 100, 150) and names == [] and classes == []


def test_image_to_depth_and_normals():
  depth = np.full((64, 64), np.nan)
  depth[:42, :] = np.linspace(0.0, 10.0, 64)[None, :]
  image = dense_labels.depth_to_image(depth, max_depth=10.0)
  out = postprocess.image_to_depth(image, (100, 150), max_depth=10.0)
  assert out.shape == (100, 150)
  np.testing.assert_allclose(out[:, 0], 0.0, atol=1e-5)
  np.testing.assert_allclose(out[:, -1], 10.0, atol=1e-5)
  assert np.all(np.diff(out[0]) >= -1e-6)
  normal = np.array([0.6, 0.0, -0.8])
  image = dense_labels.normals_to_image(np.tile(normal, (64, 64, 1)))
  image[42:] = 0.0  # padding
  out = postprocess.image_to_normals((image * 255).round().astype(np.uint8), (100, 150))
  assert out.shape == (100, 150, 3)
  np.testing.assert_allclose(out, np.broadcast_to(normal, out.shape), atol=0.01)
  with pytest.raises(ValueError, match="square"):
    postprocess.image_to_normals(np.zeros((64, 32, 3)), (100, 150))
