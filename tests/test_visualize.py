"""Tests for unified_io.common.visualize; pixel positions worked out by hand."""

import numpy as np
import pytest
from PIL import Image

from unified_io.common import visualize as vis

RED = (255, 0, 0)


def test_upscale_is_integer_nearest():
  img = np.zeros((64, 48, 3), np.uint8)
  img[10, 20] = 200
  up, scale = vis.upscale(img, min_side=256)
  # Short side 48 -> ceil(256 / 48) = 6.
  assert scale == 6 and up.size == (48 * 6, 64 * 6)
  a = np.asarray(up)
  assert (a[60:66, 120:126] == 200).all() and a[59, 120].sum() == 0 and a[60, 126].sum() == 0
  assert vis.upscale(np.zeros((300, 300, 3), np.uint8))[1] == 1  # never shrinks


def test_box_border_is_exactly_the_rectangle():
  up, scale = vis.upscale(np.zeros((64, 64, 3), np.uint8), min_side=256)
  assert scale == 4
  # Box x1=8 y1=16 x2=40 y2=48 -> scaled pixels x 32..159, y 64..191, 2px inward border.
  out = np.asarray(vis.draw_boxes(up, [[8, 16, 40, 48]], color=RED, scale=scale, width=2))
  drawn = np.all(out == RED, axis=-1)
  expected = np.zeros((256, 256), bool)
  expected[64:192, 32:160] = True
  expected[66:190, 34:158] = False
  np.testing.assert_array_equal(drawn, expected)
  assert out[~expected].sum() == 0  # nothing else touched
  assert np.asarray(up).sum() == 0  # input unchanged


def test_box_labels_and_scores_draw_a_tag_in_bounds():
  img = np.zeros((64, 64, 3), np.uint8)
  out = np.asarray(
    vis.draw_boxes(
      img, [[0, 0, 30, 30], [20, 20, 60, 60]], labels=["cat", b"dog"], scores=[0.9, 0.5], scale=1
    )
  )
  assert out.shape == (64, 64, 3)
  # The tag of the box at the top edge goes inside it, filled with its palette colour.
  assert np.all(out[1, 1] == vis.PALETTE[0])


def test_keypoints_visibility_zero_not_drawn():
  img = np.zeros((100, 100, 3), np.uint8)
  kps = np.zeros((17, 3))
  kps[5] = (20, 20, 2)  # left shoulder, visible
  kps[6] = (80, 20, 2)  # right shoulder, visible: limb (5, 6) drawn
  kps[7] = (20, 80, 0)  # left elbow, not labelled: no dot, no limb (5, 7)
  kps[8] = (80, 80, 1)  # right elbow, occluded: outline dot and limb (6, 8)
  out = np.asarray(vis.draw_keypoints(img, kps, radius=3, width=2))
  assert out[20, 50].any()  # shoulder limb
  assert out[50, 80].any()  # right upper arm
  assert not out[50, 20].any()  # left upper arm skipped
  assert not out[70:91, 10:31].any()  # nothing around the invisible elbow
  assert out[80, 77].any()  # occluded elbow outline
  # [P,17,3] works, and people get distinct colours.
  two = np.stack([kps, kps + [[5, 0, 0]]])
  assert vis.draw_keypoints(img, two).size == (100, 100)
  with pytest.raises(ValueError, match="keypoints"):
    vis.draw_keypoints(img, np.zeros((5, 3)))


def test_coco_skeleton():
  assert len(vis.COCO_SKELETON) == 19 and len(vis.COCO_KEYPOINTS) == 17
  assert all(0 <= a < 17 and 0 <= b < 17 for a, b in vis.COCO_SKELETON)
  assert (5, 6) in vis.COCO_SKELETON and (15, 13) in vis.COCO_SKELETON


def test_mask_overlay_blends_inside_only():
  rng = np.random.default_rng(0)
  img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
  mask = np.zeros((1, 20, 30), bool)
  mask[0, 5:12, 8:20] = True
  color = (10, 200, 90)
  out = np.asarray(vis.overlay_masks(img, mask, alpha=0.3, color=color))
  expected = np.round(0.3 * np.array(color) + 0.7 * img[mask[0]].astype(np.float64))
  np.testing.assert_array_equal(out[mask[0]], expected.astype(np.uint8))
  np.testing.assert_array_equal(out[~mask[0]], img[~mask[0]])


def test_mask_follows_upscale():
  img = np.zeros((8, 8, 3), np.uint8)
  mask = np.zeros((1, 8, 8), bool)
  mask[0, 2, 3] = True
  up, scale = vis.upscale(img, min_side=32)
  out = np.asarray(vis.overlay_masks(up, mask, alpha=1.0, color=RED))
  drawn = np.all(out == RED, axis=-1)
  assert drawn.sum() == 16 and drawn[8:12, 12:16].all()


def test_to_uint8_ranges_and_errors():
  u = np.array([[0, 7, 255]], np.uint8)
  assert vis.to_uint8(u) is u
  np.testing.assert_array_equal(vis.to_uint8(np.array([0.0, 0.5, 1.0])), [0, 128, 255])
  np.testing.assert_array_equal(
    vis.to_uint8(np.array([-1.0, 0.0, 1.0]), value_range=(-1, 1)), [0, 128, 255]
  )
  # Within 1e-3 of the range is rounding noise: clipped, not an error.
  np.testing.assert_array_equal(vis.to_uint8(np.array([-0.0005, 1.0005])), [0, 255])
  with pytest.raises(ValueError, match="my_input.*outside value_range"):
    vis.to_uint8(np.array([-0.5, 0.5]), name="my_input")
  with pytest.raises(ValueError, match="outside value_range"):
    vis.to_uint8(np.array([0.0, 2.0]), value_range=(-1, 1))
  with pytest.raises(ValueError, match="non-finite"):
    vis.to_uint8(np.array([np.nan]))


def test_as_pil_shapes():
  assert vis.as_pil(np.zeros((4, 5))).size == (5, 4)
  assert vis.as_pil(np.zeros((4, 5, 1), np.uint8)).mode == "RGB"
  assert vis.as_pil(np.zeros((4, 5, 4), np.uint8)).mode == "RGB"
  with pytest.raises(ValueError, match="expected"):
    vis.as_pil(np.zeros((4, 5, 2), np.uint8))


def test_colorize_depth():
  depth = np.array([[0.0, -1.0, np.nan, np.inf], [1.0, 2.0, 4.0, 8.0]])
  out = vis.colorize_depth(depth, max_depth=4.0)
  assert out.dtype == np.uint8 and out.shape == (2, 4, 3)
  np.testing.assert_array_equal(out[0], 0)  # all invalid -> black
  np.testing.assert_array_equal(out[1, 2], [253, 231, 37])  # at max_depth: viridis end
  np.testing.assert_array_equal(out[1, 3], out[1, 2])  # deeper saturates
  assert out[1, 0].sum() < out[1, 1].sum() < out[1, 2].sum()  # brighter with depth
  np.testing.assert_array_equal(vis.colorize_depth(np.zeros((3, 3))), 0)


def test_colorize_normals():
  n = np.array([[[-1.0, 0.0, 1.0]]])
  np.testing.assert_array_equal(vis.colorize_normals(n), [[[0, 128, 255]]])


def test_wrap_text_fits_width():
  text = "find the small red object next to the very long supercalifragilisticexpialidocious"
  lines = vis.wrap_text(text, 60)
  assert len(lines) > 1 and all(vis.font().getlength(line) <= 60 for line in lines)
  assert "".join(lines).replace(" ", "") == text.replace(" ", "")
  short = vis.wrap_text(text, 60, max_lines=2)
  assert len(short) == 2 and short[-1].endswith("...")


def test_grid_size_hand_computed():
  tile = (40, 30)
  img = np.zeros((8, 8, 3), np.uint8)
  # No captions and no padding: exactly cols * tile_w by rows * tile_h.
  g = vis.grid([[(img, None), (img, None), (img, None)], [(img, None)]], tile_size=tile)
  assert g.size == (3 * 40, 2 * 30)
  # Padding and a row-title column.
  g = vis.grid([[(img, None), None]], tile_size=tile, pad=5, row_titles=["vqa"], row_title_width=50)
  assert g.size == (50 + 2 * 40 + 3 * 5, 30 + 2 * 5)
  # Captions add one band per row: lines * line_height + 4, for the longest caption.
  caption = "a long prompt that has to wrap onto several lines of text"
  n = len(vis.wrap_text(caption, 40))
  g = vis.grid([[(img, "x"), (img, caption)], [(img, None)]], tile_size=tile)
  assert g.size == (2 * 40, 2 * 30 + n * vis.line_height() + 4)
  # Column titles add a header band.
  g = vis.grid([[(img, None)]], tile_size=tile, col_titles=["input"])
  assert g.size == (40, 30 + vis.line_height() + 4)


def test_grid_tile_content_and_panel():
  img = np.zeros((10, 20, 3), np.uint8)  # 2:1, fits a 40x40 tile as 40x20, centred
  g = np.asarray(vis.grid([[(img, None)]], tile_size=(40, 40)))
  assert (g[10:30, :] == 0).all() and (g[:10] == 255).all() and (g[30:] == 255).all()
  p = vis.panel([img] * 5, titles=["a"] * 5, cols=2, tile_size=(40, 40))
  assert p.size == (2 * 40, 3 * (40 + vis.line_height() + 4))
  with pytest.raises(ValueError, match="titles"):
    vis.panel([img], titles=["a", "b"])


def test_save_creates_parents(tmp_path):
  path = tmp_path / "a" / "b" / "img.png"
  assert vis.save(np.zeros((4, 4, 3), np.uint8), str(path)) == str(path)
  assert Image.open(path).size == (4, 4)
