"""Tests for unified_io.common.locations; bins worked out by hand with bin = floor(c / S * 999)."""

import numpy as np
import pytest

from unified_io.common import locations
from unified_io.common.vocab import VocabLayout

OFFICIAL = VocabLayout.official()
TINY = VocabLayout(text_size=2000, image_vocab_size=512)
IMAGE_HW = (480, 640)  # height, width; longer side S = 640

# Box x1=100, y1=50, x2=300, y2=400 on the 640x480 image:
#   y1: 50 / 640 * 999 = 78.05 -> 78      x1: 100 / 640 * 999 = 156.09 -> 156
#   y2: 400 / 640 * 999 = 624.38 -> 624   x2: 300 / 640 * 999 = 468.28 -> 468
BOX = [100, 50, 300, 400]
BOX_BINS = [78, 156, 624, 468]  # y1 x1 y2 x2
BOX_OFFICIAL_IDS = [32921, 32843, 32375, 32531]  # 32999 - bin
BOX_TINY_IDS = [2921, 2843, 2375, 2531]  # 2999 - bin
# Bin centres (b + 0.5) / 999 * 640, back in x1 y1 x2 y2 order.
BOX_DECODED = [156.5 * 640 / 999, 78.5 * 640 / 999, 468.5 * 640 / 999, 624.5 * 640 / 999]


def test_known_box_bins_and_ids():
  np.testing.assert_array_equal(locations.box_to_bins(BOX, IMAGE_HW), BOX_BINS)
  ids = locations.box_to_location_ids(BOX, IMAGE_HW, OFFICIAL)
  assert ids.dtype == np.int32
  np.testing.assert_array_equal(ids, BOX_OFFICIAL_IDS)
  np.testing.assert_array_equal(locations.box_to_location_ids(BOX, IMAGE_HW, TINY), BOX_TINY_IDS)


def test_known_box_text():
  assert locations.box_to_text(BOX, IMAGE_HW) == (
    "<extra_id_178> <extra_id_256> <extra_id_724> <extra_id_568>"
  )
  assert locations.box_to_text(BOX, IMAGE_HW, TINY) == locations.box_to_text(BOX, IMAGE_HW)


def test_known_box_decodes_to_bin_centres():
  box = locations.location_ids_to_box(BOX_OFFICIAL_IDS, IMAGE_HW, OFFICIAL)
  np.testing.assert_allclose(box, BOX_DECODED, rtol=0, atol=1e-9)
  np.testing.assert_allclose(
    locations.location_ids_to_box(BOX_TINY_IDS, IMAGE_HW, TINY), BOX_DECODED, rtol=0, atol=1e-9
  )


def test_whole_image_box_uses_the_edge_bins():
  # x2 = 640 = S -> 999; y2 = 480 -> 480 / 640 * 999 = 749.25 -> 749.
  np.testing.assert_array_equal(locations.box_to_bins([0, 0, 640, 480], IMAGE_HW), [0, 0, 749, 999])
  # Decoding clips the last bin's centre (999.5 / 999 * 640 > 640) to the image edge, and
  # y2's centre 749.5 / 999 * 640 = 480.16 to the height.
  box = locations.location_ids_to_box(
    locations.box_to_location_ids([0, 0, 640, 480], IMAGE_HW, OFFICIAL), IMAGE_HW, OFFICIAL
  )
  np.testing.assert_allclose(box, [0.5 * 640 / 999, 0.5 * 640 / 999, 640, 480], atol=1e-9)


@pytest.mark.parametrize(
  "image_hw", [(480, 640), (640, 480), (300, 1000), (1333, 800), (7, 5), (512, 512)]
)
def test_random_boxes_round_trip_within_one_bin(image_hw):
  height, width = image_hw
  bin_width = max(height, width) / 999
  rng = np.random.default_rng(0)
  xs = np.sort(rng.uniform(0, width, (200, 2)), axis=1)
  ys = np.sort(rng.uniform(0, height, (200, 2)), axis=1)
  boxes = np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1)
  ids = locations.box_to_location_ids(boxes, image_hw, OFFICIAL)
  assert ids.shape == (200, 4)
  assert np.all(OFFICIAL.is_location(ids))
  decoded = locations.location_ids_to_box(ids, image_hw, OFFICIAL)
  assert np.all(np.abs(decoded - boxes) <= bin_width)
  # Bin centres make it half a bin in fact.
  assert np.all(np.abs(decoded - boxes) <= bin_width / 2 + 1e-9)


def test_batch_shape_is_kept():
  boxes = np.tile(np.asarray(BOX, np.float32), (2, 3, 1))
  ids = locations.box_to_location_ids(boxes, IMAGE_HW, OFFICIAL)
  assert ids.shape == (2, 3, 4)
  np.testing.assert_array_equal(ids[1, 2], BOX_OFFICIAL_IDS)
  assert locations.location_ids_to_box(ids, IMAGE_HW, OFFICIAL).shape == (2, 3, 4)


def test_points_are_y_then_x():
  # Point (x=100, y=50): y bin 78, x bin 156 (as for the box corner above).
  ids = locations.points_to_location_ids([100, 50], IMAGE_HW, OFFICIAL)
  np.testing.assert_array_equal(ids, [32921, 32843])
  assert locations.point_to_text([100, 50], IMAGE_HW) == "<extra_id_178> <extra_id_256>"
  np.testing.assert_allclose(
    locations.location_ids_to_points(ids, IMAGE_HW, OFFICIAL),
    [156.5 * 640 / 999, 78.5 * 640 / 999],
    atol=1e-9,
  )


def test_keypoints_batch_round_trip():
  # 17 keypoints on a tall 600x300 image (S = 600).
  rng = np.random.default_rng(1)
  points = np.stack([rng.uniform(0, 300, 17), rng.uniform(0, 600, 17)], axis=1)
  ids = locations.points_to_location_ids(points, (600, 300), TINY)
  assert ids.shape == (17, 2)
  decoded = locations.location_ids_to_points(ids, (600, 300), TINY)
  assert np.all(np.abs(decoded - points) <= 600 / 999)


def test_tolerance_at_the_border():
  # 0.4 px outside is clipped onto the border; 0.6 px is an error.
  np.testing.assert_array_equal(
    locations.box_to_bins([-0.4, -0.4, 640.4, 480.4], IMAGE_HW), [0, 0, 749, 999]
  )
  with pytest.raises(ValueError, match=r"box x = 640.6 is outside the image"):
    locations.box_to_bins([0, 0, 640.6, 480], IMAGE_HW)


@pytest.mark.parametrize(
  "box, image_hw, message",
  [
    ([0, 0, 700, 100], IMAGE_HW, r"box x = 700.0 is outside the image \(x in \[0, 640.0\]"),
    ([0, 0, 100, 500], IMAGE_HW, r"box y = 500.0 is outside the image"),
    ([0, -5, 100, 100], IMAGE_HW, r"box y = -5.0 is outside"),
    ([300, 50, 100, 400], IMAGE_HW, r"must have x1 <= x2 and y1 <= y2"),
    ([100, 400, 300, 50], IMAGE_HW, r"must have x1 <= x2 and y1 <= y2"),
    ([100, 50, 300], IMAGE_HW, r"box must have shape \[\.\.\., 4\], got \(3,\)"),
    ([100, np.nan, 300, 400], IMAGE_HW, "non-finite"),
    ([100, 50, np.inf, 400], IMAGE_HW, "non-finite"),
    (BOX, (0, 640), r"image size \(height, width\) = \(0.0, 640.0\) must be finite and > 0"),
    (BOX, (480, -1), r"must be finite and > 0"),
    (BOX, (480,), r"image_hw must be \(height, width\)"),
  ],
)
def test_bad_boxes(box, image_hw, message):
  with pytest.raises(ValueError, match=message):
    locations.box_to_location_ids(box, image_hw, OFFICIAL)


def test_zero_size_box_is_allowed():
  np.testing.assert_array_equal(
    locations.box_to_bins([100, 50, 100, 50], IMAGE_HW), [78, 156, 78, 156]
  )


def test_bad_points():
  with pytest.raises(ValueError, match=r"point must have shape \[\.\.\., 2\]"):
    locations.points_to_location_ids([1, 2, 3], IMAGE_HW, OFFICIAL)
  with pytest.raises(ValueError, match="point x = 641.0 is outside"):
    locations.points_to_location_ids([641, 2], IMAGE_HW, OFFICIAL)


def test_decoding_non_location_ids_is_an_error():
  with pytest.raises(ValueError, match="location token id 33000 out of range"):
    locations.location_ids_to_box([32921, 32843, 32375, 33000], IMAGE_HW, OFFICIAL)
  with pytest.raises(ValueError, match="location token id 5 out of range"):
    locations.location_ids_to_points([5, 32000], IMAGE_HW, OFFICIAL)
  with pytest.raises(ValueError, match=r"box location ids must have shape \[\.\.\., 4\]"):
    locations.location_ids_to_box([32921, 32843], IMAGE_HW, OFFICIAL)


def test_text_form_takes_one_box():
  with pytest.raises(ValueError, match="one box"):
    locations.box_to_text([BOX, BOX], IMAGE_HW)
