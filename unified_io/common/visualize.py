"""Drawing Unified-IO inputs and outputs (boxes, keypoints, masks, depth, normals) for reports.

Plain functions on PIL images. Every function takes an image as a PIL image or an array
([H,W], [H,W,1], [H,W,3] or [H,W,4]; uint8, or float in `value_range`) and returns a new RGB
PIL image; inputs are never modified. Coordinates are pixels of the *original* image; after
`upscale` pass its `scale` so they follow (64x64 task images are too small to draw on).

The depth colormap is viridis, interpolated from its 10 standard stops so that matplotlib
(not a project dependency) is not needed.
"""

import functools
import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from unified_io.common import coco_keypoints

# COCO keypoint order and limbs, under this module's names (defined in coco_keypoints).
COCO_KEYPOINTS = coco_keypoints.KEYPOINT_NAMES
COCO_SKELETON = coco_keypoints.SKELETON

# tab10: distinct colours for boxes / masks / people, cycled by index.
PALETTE = (
  (31, 119, 180),
  (255, 127, 14),
  (44, 160, 44),
  (214, 39, 40),
  (148, 103, 189),
  (140, 86, 75),
  (227, 119, 194),
  (127, 127, 127),
  (188, 189, 34),
  (23, 190, 207),
)
_VIRIDIS_STOPS = np.array(
  [
    (68, 1, 84),
    (72, 40, 120),
    (62, 74, 137),
    (49, 104, 142),
    (38, 130, 142),
    (31, 158, 137),
    (53, 183, 121),
    (109, 205, 89),
    (180, 222, 44),
    (253, 231, 37),
  ],
  np.float64,
)
BACKGROUND = (255, 255, 255)
TEXT_COLOR = (0, 0, 0)


@functools.lru_cache(maxsize=None)
def font():
  return ImageFont.load_default()


def line_height():
  """Pixel height of one line of caption text (ascender to descender, plus 2px leading)."""
  return font().getbbox("Ayg|")[3] + 2


def to_uint8(image, value_range=(0, 1), name="image"):
  """Array -> uint8 array. uint8 passes through; other dtypes are mapped from `value_range`.

  The range is explicit rather than guessed from the data: a [-1,1] image whose values
  happen to be non-negative would otherwise come out silently wrong.
  """
  a = np.asarray(image)
  if a.dtype == np.uint8:
    return a
  if a.dtype == bool:
    return a.astype(np.uint8) * 255
  lo, hi = float(value_range[0]), float(value_range[1])
  if not hi > lo:
    raise ValueError(f"{name}: value_range {value_range} must have low < high")
  a = a.astype(np.float64)
  if a.size:
    if not np.all(np.isfinite(a)):
      raise ValueError(f"{name}: contains non-finite values")
    vmin, vmax = a.min(), a.max()
    if vmin < lo - 1e-3 or vmax > hi + 1e-3:
      raise ValueError(
        f"{name}: values span [{vmin:.4g}, {vmax:.4g}], outside value_range "
        f"({lo:g}, {hi:g}); pass the range the data is in"
      )
  return np.round((np.clip(a, lo, hi) - lo) / (hi - lo) * 255).astype(np.uint8)


def as_pil(image, value_range=(0, 1), name="image"):
  """A new RGB PIL image from a PIL image or an array (see `to_uint8`)."""
  if isinstance(image, Image.Image):
    return image.convert("RGB")  # convert always copies, so drawing never touches the input
  a = to_uint8(image, value_range, name)
  if a.ndim == 3 and a.shape[-1] == 1:
    a = a[..., 0]
  if a.ndim == 3 and a.shape[-1] == 4:
    a = a[..., :3]
  if a.ndim == 2:
    a = np.repeat(a[..., None], 3, axis=-1)
  if a.ndim != 3 or a.shape[-1] != 3:
    raise ValueError(f"{name}: expected [H,W], [H,W,1], [H,W,3] or [H,W,4], got {a.shape}")
  return Image.fromarray(np.ascontiguousarray(a), "RGB")


def upscale(image, min_side=256, value_range=(0, 1)):
  """Nearest-neighbour upscale by an integer factor until the short side is >= min_side.

  Returns (image, scale); pass `scale` to the drawing functions. An integer factor keeps
  every source pixel a whole block, so coordinates map exactly (x -> x * scale).
  """
  im = as_pil(image, value_range)
  scale = max(1, math.ceil(min_side / max(1, min(im.size))))
  if scale > 1:
    im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
  return im, scale


def _color(i, color):
  if color is None:
    return PALETTE[i % len(PALETTE)]
  if isinstance(color[0], (int, np.integer)):
    return tuple(int(c) for c in color)  # one colour for everything
  return tuple(int(c) for c in color[i % len(color)])


def _text(s):
  return s.decode("utf-8") if isinstance(s, bytes) else str(s)


def _draw_tag(draw, x, y, text, fill, bounds):
  """A filled tag with `text`, bottom-left at (x, y), moved inside `bounds` (w, h)."""
  l, t, r, b = draw.textbbox((0, 0), text, font=font())
  w, h = r - l + 4, b - t + 2
  x = min(max(0, x), max(0, bounds[0] - w))
  y = y - h if y - h >= 0 else y  # above the box, or just inside it when at the top edge
  y = min(y, max(0, bounds[1] - h))
  draw.rectangle([x, y, x + w - 1, y + h - 1], fill=fill)
  luminance = 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2]
  draw.text(
    (x + 2 - l, y + 1 - t),
    text,
    font=font(),
    fill=(0, 0, 0) if luminance > 140 else (255, 255, 255),
  )


def draw_boxes(
  image, boxes, labels=None, color=None, scores=None, scale=1, width=2, value_range=(0, 1)
):
  """Box outlines, [N,4] pixel x1 y1 x2 y2, with optional label/score tags.

  A box covers pixels x1..x2-1 (continuous coordinates), so after scaling the outline is
  the rectangle round(x1*s)..round(x2*s)-1; PIL grows line width inward, so it never spills
  outside the box. `color`: None (palette by index), one RGB tuple, or one per box.
  """
  im = as_pil(image, value_range)
  draw = ImageDraw.Draw(im)
  boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
  for i, (x1, y1, x2, y2) in enumerate(boxes):
    c = _color(i, color)
    x1, y1, x2, y2 = (int(round(v * scale)) for v in (x1, y1, x2, y2))
    draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=c, width=width)
    parts = []
    if labels is not None:
      parts.append(_text(labels[i]))
    if scores is not None:
      parts.append(f"{float(scores[i]):.2f}")
    if parts:
      _draw_tag(draw, x1, y1, " ".join(parts), c, im.size)
  return im


def draw_keypoints(image, keypoints, scale=1, radius=3, width=2, color=None, value_range=(0, 1)):
  """COCO keypoints [P,17,3] or [17,3] of (x, y, visibility) with the COCO skeleton.

  Visibility 0 (not labelled) joints and their limbs are skipped; 2 (visible) is a filled
  dot, 1 (labelled but occluded) an outlined one. One palette colour per person.
  """
  im = as_pil(image, value_range)
  draw = ImageDraw.Draw(im)
  kps = np.asarray(keypoints, np.float64)
  if kps.ndim == 2:
    kps = kps[None]
  if kps.shape[1:] != (len(COCO_KEYPOINTS), 3):
    raise ValueError(f"keypoints: expected [P,17,3] or [17,3], got {np.shape(keypoints)}")
  for p, person in enumerate(kps):
    c = _color(p, color)
    xy = person[:, :2] * scale
    vis = person[:, 2]
    for a, b in COCO_SKELETON:
      if vis[a] > 0 and vis[b] > 0:
        draw.line([tuple(xy[a]), tuple(xy[b])], fill=c, width=width)
    for (x, y), v in zip(xy, vis):
      if v <= 0:
        continue
      ellipse = [x - radius, y - radius, x + radius, y + radius]
      if v >= 2:
        draw.ellipse(ellipse, fill=c, outline=(255, 255, 255))
      else:
        draw.ellipse(ellipse, outline=c, width=1)
  return im


def overlay_masks(image, masks, labels=None, alpha=0.5, color=None, value_range=(0, 1)):
  """Blends `alpha * colour + (1 - alpha) * pixel` inside each [N,H,W] bool mask.

  Masks at the original resolution are nearest-upscaled to the image, so they can be laid
  over the output of `upscale`. Later masks blend over earlier ones where they overlap.
  Labels go in a tag at each mask's bounding-box corner.
  """
  im = as_pil(image, value_range)
  out = np.asarray(im).astype(np.float64)
  masks = np.asarray(masks, bool)
  if masks.ndim == 2:
    masks = masks[None]
  tags = []
  for i, m in enumerate(masks):
    if m.shape != out.shape[:2]:
      m = np.asarray(Image.fromarray(m).resize(im.size, Image.NEAREST))
    c = np.asarray(_color(i, color), np.float64)
    out[m] = alpha * c + (1 - alpha) * out[m]
    if labels is not None and m.any():
      ys, xs = np.nonzero(m)
      tags.append((int(xs.min()), int(ys.min()), _text(labels[i]), _color(i, color)))
  im = Image.fromarray(np.round(out).astype(np.uint8), "RGB")
  draw = ImageDraw.Draw(im)
  for x, y, text, c in tags:
    _draw_tag(draw, x, y, text, c, im.size)
  return im


def colorize_depth(depth, max_depth=None):
  """[H,W] depth -> [H,W,3] uint8 viridis (near dark, far bright); invalid pixels black.

  Invalid means non-finite or <= 0 (the convention for missing depth). `max_depth`
  defaults to the largest valid depth; deeper pixels saturate.
  """
  d = np.asarray(depth, np.float64)
  if d.ndim == 3 and d.shape[-1] == 1:
    d = d[..., 0]
  valid = np.isfinite(d) & (d > 0)
  out = np.zeros(d.shape + (3,), np.uint8)
  if not valid.any():
    return out
  if max_depth is None:
    max_depth = d[valid].max()
  t = np.clip(d[valid] / max_depth, 0, 1) * (len(_VIRIDIS_STOPS) - 1)
  i = np.minimum(np.floor(t).astype(int), len(_VIRIDIS_STOPS) - 2)
  f = (t - i)[:, None]
  rgb = (1 - f) * _VIRIDIS_STOPS[i] + f * _VIRIDIS_STOPS[i + 1]
  out[valid] = np.round(rgb).astype(np.uint8)
  return out


def colorize_normals(normals):
  """[H,W,3] unit normals in [-1,1] -> uint8 (n + 1) / 2 * 255; non-finite read as 0."""
  n = np.nan_to_num(np.asarray(normals, np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
  return np.round(np.clip((n + 1) / 2, 0, 1) * 255).astype(np.uint8)


def wrap_text(text, width, max_lines=None):
  """Greedy word wrap to `width` pixels in the default font; over-long words are split."""
  f = font()
  lines = []
  for paragraph in _text(text).split("\n"):
    line = ""
    for word in paragraph.split():
      candidate = f"{line} {word}" if line else word
      if f.getlength(candidate) <= width:
        line = candidate
        continue
      if line:
        lines.append(line)
      while f.getlength(word) > width and len(word) > 1:  # split by characters
        k = len(word) - 1
        while k > 1 and f.getlength(word[:k]) > width:
          k -= 1
        lines.append(word[:k])
        word = word[k:]
      line = word
    lines.append(line)
  if max_lines is not None and len(lines) > max_lines:
    lines = lines[:max_lines]
    last = lines[-1]
    while last and f.getlength(last + "...") > width:
      last = last[:-1]
    lines[-1] = last + "..."
  return lines


def fit(image, size, value_range=(0, 1)):
  """`image` scaled to fit in `size` (w, h), aspect kept, centred on the background colour.

  Nearest when enlarging (small task images stay crisp, pixels stay readable), box filter
  when shrinking.
  """
  im = as_pil(image, value_range)
  tw, th = size
  s = min(tw / im.width, th / im.height)
  w, h = max(1, round(im.width * s)), max(1, round(im.height * s))
  if (w, h) != im.size:
    im = im.resize((w, h), Image.NEAREST if s >= 1 else Image.BOX)
  tile = Image.new("RGB", (tw, th), BACKGROUND)
  tile.paste(im, ((tw - w) // 2, (th - h) // 2))
  return tile


def _text_block(draw, xy, lines):
  x, y = xy
  for k, line in enumerate(lines):
    draw.text((x, y + k * line_height()), line, font=font(), fill=TEXT_COLOR)


def grid(
  rows,
  tile_size=(256, 256),
  row_titles=None,
  col_titles=None,
  row_title_width=120,
  pad=0,
  max_caption_lines=8,
  value_range=(0, 1),
):
  """Rows of (image, caption) cells -> one PIL image of equal tiles, captions underneath.

  Used by the evaluation report: one row per example/task group, columns such as
  input / ground truth / prediction. A cell may be None, or an (image, caption) pair whose
  image or caption is None, for a blank tile. Captions are wrapped to the tile width; each
  row's caption band is as tall as its longest caption (0 when the row has none).
  Layout: width = [row_title_width] + cols * tile_w + (cols + 1) * pad;
  height = [header] + sum(tile_h + caption band) + (rows + 1) * pad.
  """
  tw, th = tile_size
  cols = max((len(r) for r in rows), default=0)
  cells, bands = [], []
  for row in rows:
    row_cells = []
    for cell in row:
      image, caption = (None, None) if cell is None else cell
      lines = wrap_text(caption, tw, max_caption_lines) if caption else []
      row_cells.append((image, lines))
    cells.append(row_cells)
    n = max((len(lines) for _, lines in row_cells), default=0)
    bands.append(n * line_height() + (4 if n else 0))
  left = row_title_width if row_titles is not None else 0
  header_lines = [wrap_text(t, tw, 2) if t else [] for t in (col_titles or [])]
  n_header = max((len(h) for h in header_lines), default=0)
  header = n_header * line_height() + 4 if n_header else 0
  width = left + cols * tw + (cols + 1) * pad
  height = header + sum(th + b for b in bands) + (len(rows) + 1) * pad
  canvas = Image.new("RGB", (max(1, width), max(1, height)), BACKGROUND)
  draw = ImageDraw.Draw(canvas)
  for j, lines in enumerate(header_lines):
    _text_block(draw, (left + pad + j * (tw + pad) + 2, 2), lines)
  y = header + pad
  for r, (row_cells, band) in enumerate(zip(cells, bands)):
    if row_titles is not None and r < len(row_titles) and row_titles[r]:
      lines = wrap_text(row_titles[r], row_title_width - 4, (th + band) // line_height())
      _text_block(draw, (2, y + 2), lines)
    for j, (image, lines) in enumerate(row_cells):
      x = left + pad + j * (tw + pad)
      if image is not None:
        canvas.paste(fit(image, tile_size, value_range), (x, y))
      _text_block(draw, (x + 2, y + th + 2), lines)
    y += th + band + pad
  return canvas


def panel(images, titles=None, cols=None, **kwargs):
  """Images in a grid of `cols` columns (default: one row), `titles` as captions."""
  images = list(images)
  titles = list(titles) if titles is not None else [None] * len(images)
  if len(titles) != len(images):
    raise ValueError(f"panel: {len(images)} images but {len(titles)} titles")
  cols = cols or max(1, len(images))
  cells = list(zip(images, titles))
  return grid([cells[i : i + cols] for i in range(0, len(cells), cols)], **kwargs)


def save(image, path, value_range=(0, 1)):
  """Writes `image` (PIL or array) to `path`, creating parent directories; returns path."""
  parent = os.path.dirname(path)
  if parent:
    os.makedirs(parent, exist_ok=True)
  as_pil(image, value_range).save(path)
  return path
