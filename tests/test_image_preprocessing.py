"""Tests for unified_io.common.image_preprocessing; expected values are worked out by hand in
comments."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from unified_io.common import image_preprocessing as ip

# -mean/std per channel: -0.485/0.229, -0.456/0.224, -0.406/0.225
NORMALISED_BLACK = np.array([-2.1179039, -2.0357143, -1.8044444], np.float32)


def patch_grid_mask(grid, valid_rows, valid_cols):
  mask = np.zeros((grid, grid), bool)
  mask[:valid_rows, :valid_cols] = True
  return mask.reshape(-1)


# (h, w, image_size, resized (h, w), valid patch rows, valid patch cols). A patch row i is
# valid iff its sampled pixel 16*i lies inside the resized image, i.e. 16*i < resized height.
LAYOUTS = [
  # scale 1, no resampling; 16*6=96 < 100 <= 112 -> rows 0..6
  (100, 384, 384, (100, 384), 7, 24),
  # wide: scale 0.96 -> 288x384; 288/16 = 18 rows exactly
  (300, 400, 384, (288, 384), 18, 24),
  # tall: scale 0.768 -> 384 x 153.6 -> 153; 16*9=144 < 153 <= 160 -> 10 cols
  (500, 200, 384, (384, 153), 24, 10),
  # square
  (1000, 1000, 384, (384, 384), 24, 24),
  # smaller, upscaled: scale 6.4 -> 320x384 -> 20 rows
  (50, 60, 384, (320, 384), 20, 24),
  # smaller and tall: scale 12.8 -> 384x256 -> 16 cols
  (30, 20, 384, (384, 256), 24, 16),
  # truncation: 3*384/7 = 164.57 -> 164; 16*10=160 < 164 -> 11 rows
  (3, 7, 384, (164, 384), 11, 24),
  # tiny config 64/16: 40 rows real; 16*2=32 < 40 <= 48 -> 3 of 4 rows
  (40, 64, 64, (40, 64), 3, 4),
  # released float64 quirk: 607 * (384/607) = 383.99999999999994 -> 383 columns;
  # 100 * 384/607 = 63.26 -> 63 rows -> 16*3=48 < 63 <= 64 -> 4 rows; 16*23=368 < 383 -> 24 cols
  (100, 607, 384, (63, 383), 4, 24),
]


@pytest.mark.parametrize("h,w,size,resized,rows,cols", LAYOUTS)
def test_patch_mask_layouts(h, w, size, resized, rows, cols):
  assert ip.resized_size(h, w, size) == resized
  image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
  encoded, patch_mask = ip.preprocess_image(image, image_size=size)
  assert encoded.shape == (size, size, 3) and encoded.dtype == np.float32
  assert patch_mask.dtype == bool
  np.testing.assert_array_equal(patch_mask, patch_grid_mask(size // 16, rows, cols))
  pixel_mask = ip.valid_pixel_mask((h, w), image_size=size)
  assert pixel_mask.sum() == resized[0] * resized[1]
  assert pixel_mask[resized[0] - 1, resized[1] - 1]


def test_hundred_by_384_has_168_valid_patches():
  _, patch_mask = ip.preprocess_image(np.zeros((100, 384, 3), np.uint8))
  assert patch_mask.sum() == 7 * 24 == 168


def test_padding_becomes_negative_mean_over_std():
  encoded, _ = ip.preprocess_image(np.full((100, 384, 3), 255, np.uint8))
  np.testing.assert_allclose(
    encoded[100:], np.broadcast_to(NORMALISED_BLACK, (284, 384, 3)), atol=1e-6
  )
  # White real pixels: (1 - mean) / std
  white = np.array([(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225])
  np.testing.assert_allclose(encoded[:100], np.broadcast_to(white, (100, 384, 3)), atol=1e-5)


@pytest.mark.parametrize(
  "h,w,resized", [(600, 800, (288, 384)), (50, 60, (320, 384)), (384, 120, (384, 120))]
)
def test_constant_colour_survives_resize(h, w, resized):
  # (51, 102, 204) / 255 = (0.2, 0.4, 0.8)
  image = np.empty((h, w, 3), np.uint8)
  image[:] = (51, 102, 204)
  encoded, _ = ip.preprocess_image(image)
  real = encoded[: resized[0], : resized[1]]
  unnormalised = real * np.array([0.229, 0.224, 0.225]) + np.array([0.485, 0.456, 0.406])
  assert np.abs(unnormalised - np.array([0.2, 0.4, 0.8])).max() < 1e-5
  # (0.2-0.485)/0.229 = -1.2445415, (0.4-0.456)/0.224 = -0.25, (0.8-0.406)/0.225 = 1.7511111
  np.testing.assert_allclose(real[0, 0], [-1.2445415, -0.25, 1.7511111], atol=5e-5)
  padding = encoded[resized[0] :]
  np.testing.assert_allclose(padding, np.broadcast_to(NORMALISED_BLACK, padding.shape), atol=1e-6)


def test_scale_one_does_not_resample():
  image = np.random.default_rng(1).integers(0, 256, (384, 200, 3), dtype=np.uint8)
  encoded, _ = ip.preprocess_image(image)
  expected = (image / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
  np.testing.assert_allclose(encoded[:, :200], expected, atol=1e-5)


def test_float_grayscale_and_rgba_inputs_match_uint8_rgb():
  rgb = np.random.default_rng(2).integers(0, 256, (90, 130, 3), dtype=np.uint8)
  reference, reference_mask = ip.preprocess_image(rgb)
  as_float, _ = ip.preprocess_image(rgb.astype(np.float64) / 255.0)
  np.testing.assert_allclose(as_float, reference, atol=1e-5)
  rgba = np.concatenate([rgb, np.full((90, 130, 1), 7, np.uint8)], axis=2)
  np.testing.assert_array_equal(ip.preprocess_image(rgba)[0], reference)

  gray = rgb[:, :, 0]
  gray_rgb, gray_mask = ip.preprocess_image(np.stack([gray] * 3, axis=2))
  for variant in (gray, gray[:, :, None]):
    encoded, mask = ip.preprocess_image(variant)
    np.testing.assert_array_equal(encoded, gray_rgb)
    np.testing.assert_array_equal(mask, reference_mask)


def test_mask_region_rounded_into_resized_image():
  # 768x768 -> scale 0.5; box [34, 0, 94, 30] -> [17, 0, 47, 15]
  pixel_mask = ip.valid_pixel_mask((768, 768), mask_region=[34, 0, 94, 30])
  expected = np.ones((384, 384), bool)
  expected[0:15, 17:47] = False
  np.testing.assert_array_equal(pixel_mask, expected)
  # Patch (0, 1) samples pixel (0, 16), outside the box; patch (0, 2) samples (0, 32), inside.
  _, patch_mask = ip.preprocess_image(
    np.zeros((768, 768, 3), np.uint8), mask_region=[34, 0, 94, 30]
  )
  expected_patches = np.ones(576, bool)
  expected_patches[2] = False
  np.testing.assert_array_equal(patch_mask, expected_patches)


def test_mask_region_rounds_half_to_even_like_numpy():
  # [33, 0, 95, 31] * 0.5 = [16.5, 0, 47.5, 15.5] -> [16, 0, 48, 16]
  pixel_mask = ip.valid_pixel_mask((768, 768), mask_region=[33, 0, 95, 31])
  expected = np.ones((384, 384), bool)
  expected[0:16, 16:48] = False
  np.testing.assert_array_equal(pixel_mask, expected)


def test_mask_region_combines_with_padding():
  # 100x384 unscaled; box covers columns 0..47 of rows 0..99 -> patches in cols 0..2 gone
  _, patch_mask = ip.preprocess_image(
    np.zeros((100, 384, 3), np.uint8), mask_region=np.array([0, 0, 48, 100])
  )
  expected = patch_grid_mask(24, 7, 24).reshape(24, 24)
  expected[:, :3] = False
  np.testing.assert_array_equal(patch_mask, expected.reshape(-1))


def test_text_only_example():
  encoded, patch_mask = ip.preprocess_image(None)
  np.testing.assert_allclose(encoded, np.broadcast_to(NORMALISED_BLACK, (384, 384, 3)), atol=1e-6)
  assert patch_mask.shape == (576,) and not patch_mask.any()
  encoded, patch_mask = ip.preprocess_image(None, image_size=64, patch_size=16)
  assert encoded.shape == (64, 64, 3) and patch_mask.shape == (16,) and not patch_mask.any()
  target, target_mask = ip.preprocess_target_image(None)
  assert target.shape == (256, 256, 3) and np.all(target == -1.0)
  assert target_mask.shape == (256,) and not target_mask.any()
  with pytest.raises(ValueError, match="mask_region"):
    ip.preprocess_image(None, mask_region=[0, 0, 1, 1])


def test_nearest_rule_is_torch_floor():
  # 5 -> 3: src = floor(i * 5/3) = 0, 1, 3
  values = np.arange(5)[:, None] * 10 + np.arange(5)[None, :]
  out = ip.tf_nearest_resize(values, (3, 3)).numpy()
  np.testing.assert_array_equal(out, [[0, 1, 3], [10, 11, 13], [30, 31, 33]])
  # 2 -> 5: src = floor(i * 0.4) = 0, 0, 0, 1, 1
  out = ip.tf_nearest_resize(np.array([[1, 2], [3, 4]]), (5, 5)).numpy()
  np.testing.assert_array_equal(out[:, 0], [1, 1, 1, 3, 3])
  np.testing.assert_array_equal(out[0], [1, 1, 1, 2, 2])


def test_space_to_depth_ordering():
  # value = 1000*b + 100*row + 10*col + channel
  b, h, w, c = np.meshgrid(np.arange(2), np.arange(4), np.arange(4), np.arange(3), indexing="ij")
  images = (1000 * b + 100 * h + 10 * w + c).astype(np.float32)
  patches = np.asarray(ip.space_to_depth(images, 2))
  assert patches.shape == (2, 4, 12)
  # Patch 1 = grid (0, 1): rows 0-1, cols 2-3, features ordered (dh, dw, c)
  np.testing.assert_array_equal(
    patches[0, 1], [20, 21, 22, 30, 31, 32, 120, 121, 122, 130, 131, 132]
  )
  # Patch 2 = grid (1, 0): rows 2-3, cols 0-1, second batch element
  np.testing.assert_array_equal(
    patches[1, 2], [1200, 1201, 1202, 1210, 1211, 1212, 1300, 1301, 1302, 1310, 1311, 1312]
  )
  np.testing.assert_array_equal(np.asarray(ip.depth_to_space(patches, 2)), images)


def test_depth_to_space_non_square_grid():
  images = np.arange(1 * 4 * 6 * 2, dtype=np.float32).reshape(1, 4, 6, 2)
  patches = ip.space_to_depth(images, 2)
  assert patches.shape == (1, 6, 8)
  np.testing.assert_array_equal(np.asarray(ip.depth_to_space(patches, 2, (2, 3))), images)
  with pytest.raises(ValueError, match="square"):
    ip.depth_to_space(patches, 2)


def test_target_image_range_and_padding():
  image = np.empty((10, 20, 3), np.uint8)
  image[:] = (51, 255, 0)
  target, patch_mask = ip.preprocess_target_image(image)
  assert target.shape == (256, 256, 3) and target.dtype == np.float32
  assert target.min() >= -1.0 and target.max() <= 1.0
  # 10x20 -> 128x256; 0.2*2-1 = -0.6, 1*2-1 = 1, 0*2-1 = -1
  np.testing.assert_allclose(
    target[:128], np.broadcast_to([-0.6, 1.0, -1.0], (128, 256, 3)), atol=1e-5
  )
  assert np.all(target[128:] == -1.0)
  np.testing.assert_array_equal(patch_mask, patch_grid_mask(16, 8, 16))


def test_undo_upscaled_label_map_round_trip():
  labels = np.random.default_rng(3).integers(0, 20, (96, 192)).astype(np.int32)
  # Forward by hand: 96x192 -> 192x384 is an exact 2x nearest upscale, then padded.
  model_space = np.full((384, 384), 255, np.int32)
  model_space[:192] = np.repeat(np.repeat(labels, 2, axis=0), 2, axis=1)
  restored = ip.undo_image_preprocessing(model_space, (96, 192))
  assert restored.dtype == np.int32
  np.testing.assert_array_equal(restored, labels)
  restored = ip.undo_image_preprocessing(model_space[:, :, None], (96, 192))
  np.testing.assert_array_equal(restored[:, :, 0], labels)


def test_undo_downscaled_label_map_round_trip():
  blocks = np.random.default_rng(4).integers(0, 2, (384, 192)).astype(bool)
  original = np.repeat(np.repeat(blocks, 2, axis=0), 2, axis=1)  # 768x384
  model_space = np.zeros((384, 384), bool)
  model_space[:, :192] = blocks
  restored = ip.undo_image_preprocessing(model_space, (768, 384))
  np.testing.assert_array_equal(restored, original)


def test_undo_bilinear_returns_float_at_original_size():
  model_space = np.full((256, 256, 3), 0.5, np.float32)
  restored = ip.undo_image_preprocessing(model_space, (30, 90), method="bilinear")
  assert restored.shape == (30, 90, 3)
  np.testing.assert_allclose(restored, 0.5, atol=1e-6)


BAD_IMAGES = [
  (np.zeros((2, 8, 8, 3), np.uint8), "got shape"),
  (np.zeros((8, 8, 2), np.uint8), "got shape"),
  (np.zeros((8, 8, 5), np.uint8), "got shape"),
  (np.zeros((0, 8, 3), np.uint8), "non-empty"),
  (np.zeros((8, 0, 3), np.uint8), "non-empty"),
  (np.full((8, 8, 3), np.nan, np.float32), "NaN"),
  (np.full((8, 8, 3), np.inf, np.float32), "NaN or inf"),
  (np.full((8, 8, 3), 200.0, np.float32), r"\[0, 1\]"),
  (np.full((8, 8, 3), -0.5, np.float32), r"\[0, 1\]"),
  (np.zeros((8, 8, 3), np.int64), "dtype"),
]


@pytest.mark.parametrize("image,problem", BAD_IMAGES)
def test_errors_name_the_input(image, problem):
  with pytest.raises(ValueError, match=problem) as error:
    ip.preprocess_image(image, name="coco/val/000123.jpg")
  assert "coco/val/000123.jpg" in str(error.value)
  assert "expected" in str(error.value) or "must" in str(error.value)
  with pytest.raises(ValueError, match="example-7"):
    ip.preprocess_target_image(image, name="example-7")


def test_small_float_overshoot_is_tolerated():
  image = np.full((8, 8, 3), 1.0 + 1e-4, np.float32)
  encoded, _ = ip.preprocess_image(image, image_size=64)
  np.testing.assert_allclose(
    encoded[0, 0], [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225], atol=1e-5
  )


def test_bad_mask_region_and_sizes():
  with pytest.raises(ValueError, match="img-9"):
    ip.preprocess_image(np.zeros((8, 8, 3), np.uint8), mask_region=[1, 2, 3], name="img-9")
  with pytest.raises(ValueError, match="multiple of patch_size"):
    ip.preprocess_image(np.zeros((8, 8, 3), np.uint8), image_size=60, patch_size=16)


def test_load_image(tmp_path):
  rgb = np.random.default_rng(5).integers(0, 256, (12, 17, 3), dtype=np.uint8)
  Image.fromarray(rgb).save(tmp_path / "rgb.png")
  loaded = ip.load_image(tmp_path / "rgb.png")
  assert loaded.dtype == np.uint8
  np.testing.assert_array_equal(loaded, rgb)
  Image.fromarray(rgb[:, :, 0]).save(tmp_path / "gray.png")
  np.testing.assert_array_equal(
    ip.load_image(str(tmp_path / "gray.png")), np.stack([rgb[:, :, 0]] * 3, axis=2)
  )


def test_load_image_missing_and_corrupt_files(tmp_path):
  missing = tmp_path / "nope.jpg"
  with pytest.raises(FileNotFoundError, match="nope.jpg"):
    ip.load_image(missing)
  corrupt = tmp_path / "corrupt.jpg"
  corrupt.write_bytes(b"this is not a jpeg \x00\x01\x02" * 10)
  with pytest.raises(ValueError, match="corrupt.jpg"):
    ip.load_image(corrupt)
  Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "whole.jpg")
  data = (tmp_path / "whole.jpg").read_bytes()
  (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
  with pytest.raises(ValueError, match="truncated.jpg"):
    ip.load_image(tmp_path / "truncated.jpg")


def _numpy_results(images, fn, **kwargs):
  return [fn(image, **kwargs) for image in images]


def test_tf_data_matches_numpy_on_variable_sizes():
  rng = np.random.default_rng(6)
  images = [
    rng.integers(0, 256, shape, dtype=np.uint8)
    for shape in [(100, 384, 3), (300, 400, 3), (500, 200, 3), (30, 20, 3)]
  ]
  spec = tf.TensorSpec([None, None, 3], tf.uint8)
  dataset = tf.data.Dataset.from_generator(lambda: iter(images), output_signature=spec)
  encoded = list(dataset.map(lambda image: ip.tf_preprocess_image(image)).as_numpy_iterator())
  targets = list(dataset.map(ip.tf_preprocess_target_image).as_numpy_iterator())
  for (tf_image, tf_mask), (np_image, np_mask) in zip(
    encoded, _numpy_results(images, ip.preprocess_image)
  ):
    assert tf_image.shape == (384, 384, 3) and tf_mask.shape == (576,)
    np.testing.assert_allclose(tf_image, np_image, atol=1e-6)
    np.testing.assert_array_equal(tf_mask, np_mask)
  for (tf_image, tf_mask), (np_image, np_mask) in zip(
    targets, _numpy_results(images, ip.preprocess_target_image)
  ):
    np.testing.assert_allclose(tf_image, np_image, atol=1e-6)
    np.testing.assert_array_equal(tf_mask, np_mask)


def test_tf_data_dynamic_channels_and_mask_region():
  rng = np.random.default_rng(7)
  rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
  items = [
    (rgb[:, :, :1], np.array([0, 0, 10, 10], np.float32)),
    (np.concatenate([rgb, rgb[:, :, :1]], axis=2), np.array([5, 5, 40, 30], np.float32)),
    (rgb, np.array([0, 0, 0, 0], np.float32)),
  ]
  dataset = tf.data.Dataset.from_generator(
    lambda: iter(items),
    output_signature=(tf.TensorSpec([None, None, None], tf.uint8), tf.TensorSpec([4], tf.float32)),
  )
  results = list(
    dataset.map(
      lambda image, region: ip.tf_preprocess_image(
        image, image_size=64, patch_size=16, mask_region=region
      )
    ).as_numpy_iterator()
  )
  for (tf_image, tf_mask), (image, region) in zip(results, items):
    np_image, np_mask = ip.preprocess_image(image, image_size=64, patch_size=16, mask_region=region)
    np.testing.assert_allclose(tf_image, np_image, atol=1e-6)
    np.testing.assert_array_equal(tf_mask, np_mask)
  # Second item: 40x50 -> 51x64 (scale 1.28); box -> [6, 6, 51, 38]; patch (0, 0) samples
  # pixel (0, 0), outside the box; rows sampled at 16, 32 lie in [6, 38) and columns sampled
  # at 16, 32, 48 lie in [6, 51), so patches (1..2, 1..3) are masked.
  expected = patch_grid_mask(4, 4, 4).reshape(4, 4)
  expected[1:3, 1:4] = False
  np.testing.assert_array_equal(results[1][1], expected.reshape(-1))


@pytest.mark.parametrize(
  "image,problem",
  [
    (np.zeros((8, 8, 2), np.uint8), "my_field"),
    (np.zeros((0, 8, 3), np.uint8), "my_field: expected non-empty"),
  ],
)
def test_tf_data_errors_name_the_field(image, problem):
  dataset = tf.data.Dataset.from_generator(
    lambda: iter([image]), output_signature=tf.TensorSpec([None, None, None], tf.uint8)
  )
  dataset = dataset.map(lambda x: ip.tf_preprocess_image(x, name="my_field"))
  with pytest.raises(tf.errors.InvalidArgumentError, match=problem):
    list(dataset.as_numpy_iterator())


@pytest.mark.parametrize("value", [255.0, np.nan])
def test_tf_data_float_errors_name_the_field(value):
  dataset = tf.data.Dataset.from_generator(
    lambda: iter([np.full((8, 8, 3), value, np.float32)]),
    output_signature=tf.TensorSpec([None, None, 3], tf.float32),
  )
  dataset = dataset.map(lambda x: ip.tf_preprocess_target_image(x, name="frame"))
  with pytest.raises(tf.errors.InvalidArgumentError, match="frame"):
    list(dataset.as_numpy_iterator())


def test_tf_static_bad_rank_raises_immediately():
  with pytest.raises(ValueError, match="query_image"):
    ip.tf_preprocess_image(tf.zeros([2, 8, 8, 3], tf.uint8), name="query_image")


def test_tf_unknown_rank_grayscale_matches_numpy():
  gray = np.random.default_rng(8).integers(0, 256, (20, 30), dtype=np.uint8)
  preprocess = tf.function(
    lambda image: ip.tf_preprocess_image(image, image_size=64, patch_size=16),
    input_signature=[tf.TensorSpec(None, tf.uint8)],
  )
  tf_image, tf_mask = preprocess(gray)
  np_image, np_mask = ip.preprocess_image(gray, image_size=64, patch_size=16)
  np.testing.assert_allclose(tf_image.numpy(), np_image, atol=1e-6)
  np.testing.assert_array_equal(tf_mask.numpy(), np_mask)
  with pytest.raises(tf.errors.InvalidArgumentError, match="image"):
    preprocess(np.zeros((1, 2, 3, 3), np.uint8))


def test_numpy_entry_points_equal_the_eager_ops_bit_for_bit():
  # The numpy entry points run the resize and masks as one graph and normalise in numpy;
  # the reference is the same ops run eagerly, one by one (what they did before).
  rng = np.random.default_rng(11)
  cases = [
    ((480, 640), None),
    ((37, 29), None),
    ((384, 384), None),
    ((300, 200), (10, 20, 90, 150)),
  ]
  for (h, w), region in cases:
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    image01 = tf.constant(image.astype(np.float32) / np.float32(255.0))
    tf_region = None if region is None else tf.constant(np.asarray(region, np.float64))
    want_image, want_mask = ip._tf_encode_input(image01, 384, 16, tf_region)
    got_image, got_mask = ip.preprocess_image(image, mask_region=region)
    np.testing.assert_array_equal(got_image, want_image.numpy())
    np.testing.assert_array_equal(got_mask, want_mask.numpy())
    want_target, want_target_mask = ip._tf_encode_target(image01, 256, 16)
    got_target, got_target_mask = ip.preprocess_target_image(image)
    np.testing.assert_array_equal(got_target, want_target.numpy())
    np.testing.assert_array_equal(got_target_mask, want_target_mask.numpy())
