"""Image preprocessing for the Unified-IO encoder input and the VQ-GAN image target.

Every image goes through the same steps:

1. Standardise to float32 RGB in [0, 1]. Accepted: uint8 (0..255) or float (0..1) arrays of
   shape [H, W, 3]; grayscale [H, W] / [H, W, 1] is repeated to three channels; RGBA
   [H, W, 4] drops alpha. Anything else raises (ValueError for numpy callers, a
   `tf.errors.InvalidArgumentError` from the tf.data pipeline) with a message naming the input.
2. Resize so the long side becomes `image_size` with bilinear + antialias filtering. The new
   size is `(int(h * scale), int(w * scale))` with `scale = image_size / max(h, w)` computed in
   float64, exactly as the released code does. Because that is float truncation, for some long
   sides (e.g. 588 or 607 with image_size=384) the long side comes out one pixel short; we keep
   that quirk so numbers match the released model. No resampling when scale == 1.
3. Pad bottom/right with zeros to `image_size` x `image_size` and keep a pixel mask of the
   real (resized) pixels.
4. Encoder input: ImageNet normalisation, applied after padding, so padding pixels become
   -mean/std rather than 0 (as in the released model; padding is excluded only via the mask).
   Image target: `x * 2 - 1`, so padding pixels become -1.
5. Patch mask: the pixel mask downsampled to the patch grid with PyTorch's 'nearest' rule,
   `src = floor(dst * in_size / out_size)` in float32. For 384 -> 24 that samples pixel
   `16 * i`, i.e. a patch is valid iff its top-left pixel is real.

The resampling lives in TensorFlow so that tf.data pipelines (`tf_*` functions) and numpy
callers produce identical numbers. Numpy callers run the resize, pad and masks as one
`tf.function` per size (eager dispatch of its ~95 ops from Python cost 2-3x the CPU of the
pixel work, see `_graph_resize_and_masks`) and the last elementwise step in numpy, which
rounds exactly as TF's float32 kernels do.
"""

from __future__ import annotations

import functools
import os
from typing import Optional, Sequence, Tuple

import jax.numpy as jnp
import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_IMAGE_SIZE = 384
TARGET_IMAGE_SIZE = 256
PATCH_SIZE = 16

# Float images produced by other resampling code may overshoot [0, 1] by rounding error;
# anything further out almost certainly is a 0..255 image stored as float.
FLOAT_RANGE_TOLERANCE = 1e-3


def _describe(name: Optional[str], default: str = "image") -> str:
  return f"{default} {name!r}" if name else default


# PIL modes of 16-bit grayscale (e.g. 16-bit PNGs; older PIL opens those as 32-bit "I"):
# PIL's convert("RGB") clips their values at 255, turning almost every pixel white.
_GRAY_16_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def load_image(path) -> np.ndarray:
  """Reads an image file as uint8 RGB [H, W, 3] (EXIF orientation is not applied, as released).

  16-bit grayscale (0..65535) is scaled to 8 bits as round(value / 257), so 65535 -> 255.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"image file {path!r} does not exist")
  try:
    with Image.open(path) as img:
      # PIL decodes lazily; force it here so truncated files fail with the path attached.
      img.load()
      if img.mode in _GRAY_16_BIT_MODES:
        gray = np.asarray(img).astype(np.float64)
        gray = np.round(np.clip(gray, 0, 65535) / 257.0).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
      rgb = img.convert("RGB")
  except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
    raise ValueError(f"could not read image file {path!r}: {error}") from error
  return np.asarray(rgb, dtype=np.uint8)


def _check_sizes(image_size: int, patch_size: int) -> int:
  if image_size <= 0 or patch_size <= 0 or image_size % patch_size != 0:
    raise ValueError(
      f"image_size ({image_size}) must be a positive multiple of patch_size ({patch_size})"
    )
  return image_size // patch_size


def resized_size(height: int, width: int, image_size: int = INPUT_IMAGE_SIZE) -> Tuple[int, int]:
  """Size of an [height, width] image after resizing its long side to `image_size`.

  Float64 truncation as released (see module docstring); clamped to at least one pixel so
  extreme aspect ratios do not produce an empty image.
  """
  if height <= 0 or width <= 0:
    raise ValueError(f"expected a positive image size, got {height}x{width}")
  scale = image_size / max(height, width)
  return max(1, int(height * scale)), max(1, int(width * scale))


def _tf_resized_size(height, width, image_size: int):
  """TF twin of `resized_size`; float64 makes it bit-identical to the Python formula."""
  height = tf.cast(height, tf.float64)
  width = tf.cast(width, tf.float64)
  scale = tf.constant(image_size, tf.float64) / tf.maximum(height, width)
  new_height = tf.maximum(tf.cast(tf.floor(height * scale), tf.int32), 1)
  new_width = tf.maximum(tf.cast(tf.floor(width * scale), tf.int32), 1)
  return new_height, new_width


def _with_checks(tensor, checks):
  # Eager asserts raise immediately and return None; in graph mode (tf.data) they must be
  # made dependencies or they would never run.
  checks = [check for check in checks if check is not None]
  if not checks:
    return tensor
  with tf.control_dependencies(checks):
    return tf.identity(tensor)


def _tf_standardise_image(image, name: str):
  """Any accepted image tensor -> float32 [h, w, 3] in [0, 1], with runtime checks."""
  image = tf.convert_to_tensor(image)
  expected = (
    "expected [H, W, 3] RGB (also accepted: [H, W], [H, W, 1] grayscale, "
    "[H, W, 4] RGBA), uint8 in 0..255 or float in [0, 1]"
  )
  if not (image.dtype == tf.uint8 or image.dtype.is_floating):
    raise ValueError(f"{name}: {expected}; got dtype {image.dtype.name}")

  rank = image.shape.rank
  if rank is None:
    check = tf.debugging.assert_rank_in(image, [2, 3], message=f"{name}: {expected}; bad rank")
    image = _with_checks(image, [check])
    image = tf.cond(tf.equal(tf.rank(image), 2), lambda: image[..., None], lambda: image)
    image = tf.ensure_shape(image, [None, None, None])
  elif rank == 2:
    image = image[:, :, None]
  elif rank != 3:
    raise ValueError(f"{name}: {expected}; got shape {image.shape} (rank {rank})")

  shape = tf.shape(image)
  channels = image.shape[2]
  if channels is None:
    channel_check = tf.debugging.Assert(
      tf.reduce_any(tf.equal(shape[2], [1, 3, 4])), [f"{name}: {expected}; got shape", shape]
    )
    image = _with_checks(image, [channel_check])
    image = tf.cond(
      tf.equal(shape[2], 1), lambda: tf.tile(image, [1, 1, 3]), lambda: image[:, :, :3]
    )
  elif channels == 1:
    image = tf.tile(image, [1, 1, 3])
  elif channels == 4:
    image = image[:, :, :3]
  elif channels != 3:
    raise ValueError(f"{name}: {expected}; got shape {image.shape}")
  image = tf.ensure_shape(image, [None, None, 3])

  checks = [
    tf.debugging.assert_positive(shape[:2], message=f"{name}: expected non-empty height and width")
  ]
  if image.dtype == tf.uint8:
    image = _with_checks(image, checks)
    return tf.cast(image, tf.float32) / 255.0

  checks.append(
    tf.debugging.assert_greater_equal(
      image,
      tf.cast(-FLOAT_RANGE_TOLERANCE, image.dtype),
      message=f"{name}: float images must lie in [0, 1]",
    )
  )
  checks.append(
    tf.debugging.assert_less_equal(
      image,
      tf.cast(1.0 + FLOAT_RANGE_TOLERANCE, image.dtype),
      message=f"{name}: float images must lie in [0, 1] (0..255 images must be uint8)",
    )
  )
  # NaN passes comparisons vacuously, so finiteness is checked on its own.
  image = tf.debugging.assert_all_finite(
    image, message=f"{name}: expected finite float values, got NaN or inf"
  )
  image = _with_checks(image, checks)
  return tf.clip_by_value(tf.cast(image, tf.float32), 0.0, 1.0)


def _standardise_numpy_image(image, label: str) -> np.ndarray:
  """Numpy twin of `_tf_standardise_image`; ValueErrors start with `label`."""
  expected = (
    "expected [H, W, 3] RGB (also accepted: [H, W], [H, W, 1] grayscale, "
    "[H, W, 4] RGBA), uint8 in 0..255 or float in [0, 1]"
  )
  image = np.asarray(image)
  if not (image.dtype == np.uint8 or np.issubdtype(image.dtype, np.floating)):
    raise ValueError(f"{label}: {expected}; got dtype {image.dtype}")
  if image.ndim == 2:
    image = image[:, :, None]
  if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
    raise ValueError(f"{label}: {expected}; got shape {tuple(np.shape(image))}")
  if image.shape[0] == 0 or image.shape[1] == 0:
    raise ValueError(f"{label}: expected non-empty height and width, got shape {image.shape}")
  if image.shape[2] == 1:
    image = np.repeat(image, 3, axis=2)
  image = image[:, :, :3]
  if image.dtype == np.uint8:
    return image.astype(np.float32) / np.float32(255.0)
  if not np.all(np.isfinite(image)):
    raise ValueError(f"{label}: expected finite float values, got NaN or inf")
  low, high = float(image.min()), float(image.max())
  if low < -FLOAT_RANGE_TOLERANCE or high > 1.0 + FLOAT_RANGE_TOLERANCE:
    raise ValueError(
      f"{label}: float images must lie in [0, 1] (0..255 images must be "
      f"uint8); got values in [{low}, {high}]"
    )
  return np.clip(image.astype(np.float32), 0.0, 1.0)


def _standardise_numpy_region(mask_region, name: Optional[str]) -> np.ndarray:
  region = np.asarray(mask_region, dtype=np.float64)
  if region.shape != (4,) or not np.all(np.isfinite(region)):
    raise ValueError(
      f"mask_region of {_describe(name)}: expected 4 finite numbers "
      f"[x1, y1, x2, y2], got {mask_region!r}"
    )
  return region


def tf_nearest_resize(image, size: Sequence):
  """Resizes the first two axes of `image` (any dtype) with PyTorch's 'nearest' rule.

  Output index `i` reads input index `min(floor(i * in / out), in - 1)` with float32
  arithmetic, as `torch.nn.functional.interpolate(mode='nearest')` does. Note this is not
  `tf.image.resize`'s nearest mode, which uses half-pixel centres.
  """
  image = tf.convert_to_tensor(image)

  def source_indices(in_size, out_size):
    scale = tf.cast(in_size, tf.float32) / tf.cast(out_size, tf.float32)
    positions = tf.cast(tf.range(out_size), tf.float32) * scale
    return tf.minimum(tf.cast(tf.floor(positions), tf.int32), in_size - 1)

  shape = tf.shape(image)
  rows = source_indices(shape[0], size[0])
  cols = source_indices(shape[1], size[1])
  return tf.gather(tf.gather(image, rows, axis=0), cols, axis=1)


def _tf_resize_and_pad(image01, image_size: int):
  """float32 [h, w, 3] -> (zero-padded resized image [S, S, 3], resized height, width)."""
  shape = tf.shape(image01)
  height, width = shape[0], shape[1]
  new_height, new_width = _tf_resized_size(height, width, image_size)
  resized = tf.cond(
    tf.equal(tf.maximum(height, width), image_size),
    lambda: image01,
    lambda: tf.image.resize(image01, [new_height, new_width], method="bilinear", antialias=True),
  )
  padded = tf.pad(resized, [[0, image_size - new_height], [0, image_size - new_width], [0, 0]])
  return tf.ensure_shape(padded, [image_size, image_size, 3]), new_height, new_width


def _tf_valid_pixel_mask(height, width, image_size: int, mask_region=None):
  """bool [S, S]: True on resized real pixels, False on padding and on `mask_region`."""
  new_height, new_width = _tf_resized_size(height, width, image_size)
  rows = tf.range(image_size)[:, None]
  cols = tf.range(image_size)[None, :]
  mask = tf.logical_and(rows < new_height, cols < new_width)
  if mask_region is not None:
    long_side = tf.cast(tf.maximum(height, width), tf.float64)
    # Same operation order and half-to-even rounding as the released numpy code.
    region = tf.cast(mask_region, tf.float64) / long_side * image_size
    x1, y1, x2, y2 = tf.unstack(tf.cast(tf.round(region), tf.int32), num=4)
    inside = tf.logical_and(
      tf.logical_and(rows >= y1, rows < y2), tf.logical_and(cols >= x1, cols < x2)
    )
    mask = tf.logical_and(mask, tf.logical_not(inside))
  return mask


def _tf_patch_mask(pixel_mask, grid_size: int):
  return tf.reshape(tf_nearest_resize(pixel_mask, (grid_size, grid_size)), [-1])


def _normalise(image):
  mean = tf.constant(IMAGENET_MEAN, tf.float32)
  std = tf.constant(IMAGENET_STD, tf.float32)
  return (image - mean) / std


def _tf_encode_input(image01, image_size: int, patch_size: int, mask_region=None):
  grid_size = _check_sizes(image_size, patch_size)
  padded, _, _ = _tf_resize_and_pad(image01, image_size)
  shape = tf.shape(image01)
  pixel_mask = _tf_valid_pixel_mask(shape[0], shape[1], image_size, mask_region)
  return _normalise(padded), _tf_patch_mask(pixel_mask, grid_size)


def _tf_encode_target(image01, image_size: int, patch_size: int):
  grid_size = _check_sizes(image_size, patch_size)
  padded, _, _ = _tf_resize_and_pad(image01, image_size)
  shape = tf.shape(image01)
  pixel_mask = _tf_valid_pixel_mask(shape[0], shape[1], image_size)
  return padded * 2.0 - 1.0, _tf_patch_mask(pixel_mask, grid_size)


@functools.lru_cache(maxsize=None)
def _graph_resize_and_masks(image_size: int, patch_size: int, with_region: bool):
  """(resized and zero-padded image [S, S, 3], patch mask [(S/p)^2]) of a float32 [h, w, 3]
  image in [0, 1] and a float64 [4] region (ignored unless `with_region`), as one graph.

  The numpy entry points used to run these ops eagerly: about 95 ops per image, each
  dispatched from Python, and the dispatch cost more than the pixels (one 640x480 photo:
  24.4 ms eager vs 11.5 ms as a graph for the input, 16.0 vs 5.9 ms for the target;
  `benchmarks/input_pipeline.py --real_size`). One function per size, with dynamic height
  and width, so it is traced once per process; tf.function calls are thread-safe."""
  grid_size = _check_sizes(image_size, patch_size)

  def encode(image01, region):
    padded, _, _ = _tf_resize_and_pad(image01, image_size)
    shape = tf.shape(image01)
    region = region if with_region else None
    pixel_mask = _tf_valid_pixel_mask(shape[0], shape[1], image_size, region)
    return padded, _tf_patch_mask(pixel_mask, grid_size)

  signature = [tf.TensorSpec([None, None, 3], tf.float32), tf.TensorSpec([4], tf.float64)]
  return tf.function(encode, input_signature=signature)


_NO_REGION = np.zeros(4, np.float64)


def _blank_input(image_size: int, patch_size: int):
  # The released code normalises an all-zero image, i.e. a fully padded one (-mean/std).
  grid_size = _check_sizes(image_size, patch_size)
  pixel = (np.zeros(3, np.float32) - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(
    IMAGENET_STD, np.float32
  )
  image = np.broadcast_to(pixel, (image_size, image_size, 3)).astype(np.float32)
  return image, np.zeros(grid_size * grid_size, dtype=bool)


def _blank_target(image_size: int, patch_size: int):
  # Zero image mapped through x * 2 - 1, i.e. all padding (-1), as released.
  grid_size = _check_sizes(image_size, patch_size)
  image = np.full((image_size, image_size, 3), -1.0, np.float32)
  return image, np.zeros(grid_size * grid_size, dtype=bool)


def tf_preprocess_image(
  image,
  *,
  image_size: int = INPUT_IMAGE_SIZE,
  patch_size: int = PATCH_SIZE,
  mask_region=None,
  name: str = "image",
):
  """TF/tf.data version of `preprocess_image`; `image` may have dynamic height and width.

  Bad inputs whose problem is only known at run time fail with InvalidArgumentError whose
  message contains `name`. `image=None` gives the text-only placeholder.
  """
  if image is None:
    if mask_region is not None:
      raise ValueError(f"{name}: mask_region given without an image")
    blank_image, blank_mask = _blank_input(image_size, patch_size)
    return tf.constant(blank_image), tf.constant(blank_mask)
  image01 = _tf_standardise_image(image, name)
  if mask_region is not None:
    mask_region = tf.convert_to_tensor(mask_region)
    region_check = tf.debugging.assert_equal(
      tf.size(mask_region), 4, message=f"{name}: mask_region must be [x1, y1, x2, y2]"
    )
    mask_region = tf.reshape(_with_checks(mask_region, [region_check]), [4])
  return _tf_encode_input(image01, image_size, patch_size, mask_region)


def tf_preprocess_target_image(
  image,
  *,
  image_size: int = TARGET_IMAGE_SIZE,
  patch_size: int = PATCH_SIZE,
  name: str = "target_image",
):
  """TF/tf.data version of `preprocess_target_image`."""
  if image is None:
    blank_image, blank_mask = _blank_target(image_size, patch_size)
    return tf.constant(blank_image), tf.constant(blank_mask)
  return _tf_encode_target(_tf_standardise_image(image, name), image_size, patch_size)


def preprocess_image(
  image,
  *,
  image_size: int = INPUT_IMAGE_SIZE,
  patch_size: int = PATCH_SIZE,
  mask_region=None,
  name: Optional[str] = None,
) -> Tuple[np.ndarray, np.ndarray]:
  """Encoder input: (float32 [S, S, 3] ImageNet-normalised, bool [(S/p)^2] patch mask).

  `image=None` (text-only example) gives -mean/std everywhere (the normalised zero image,
  as released) and an all-False patch mask. `mask_region` [x1, y1, x2, y2] in original-image
  pixels is removed from the mask (inpainting). `name` (a path, an example id) is quoted in
  error messages.
  """
  if image is None:
    if mask_region is not None:
      raise ValueError(f"{_describe(name)}: mask_region given without an image")
    return _blank_input(image_size, patch_size)
  image01 = _standardise_numpy_image(image, _describe(name))
  with_region = mask_region is not None
  region = _standardise_numpy_region(mask_region, name) if with_region else _NO_REGION
  padded, patch_mask = _graph_resize_and_masks(image_size, patch_size, with_region)(image01, region)
  # `_normalise` in numpy: float32 subtract and divide round exactly as TF's kernels do.
  mean, std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)
  return (padded.numpy() - mean) / std, patch_mask.numpy()


def preprocess_target_image(
  image,
  *,
  image_size: int = TARGET_IMAGE_SIZE,
  patch_size: int = PATCH_SIZE,
  name: Optional[str] = None,
) -> Tuple[np.ndarray, np.ndarray]:
  """VQ-GAN target: (float32 [S, S, 3] in [-1, 1], padding = -1; bool [(S/p)^2] patch mask).

  `image=None` gives an all -1 image and an all-False mask, as released.
  """
  if image is None:
    return _blank_target(image_size, patch_size)
  image01 = _standardise_numpy_image(image, _describe(name, "target image"))
  padded, patch_mask = _graph_resize_and_masks(image_size, patch_size, False)(image01, _NO_REGION)
  return padded.numpy() * np.float32(2.0) - np.float32(1.0), patch_mask.numpy()


def valid_pixel_mask(
  original_hw: Sequence[int], *, image_size: int = INPUT_IMAGE_SIZE, mask_region=None
) -> np.ndarray:
  """bool [S, S] mask of real pixels for an image of `original_hw` after resize + pad."""
  height, width = (int(v) for v in original_hw)
  resized_size(height, width, image_size)  # validates the size
  region = (
    None if mask_region is None else tf.constant(_standardise_numpy_region(mask_region, None))
  )
  return _tf_valid_pixel_mask(height, width, image_size, region).numpy()


def undo_image_preprocessing(
  image, original_hw: Sequence[int], method: str = "nearest"
) -> np.ndarray:
  """Maps a model-space image [S, S, C] or [S, S] back to the original [H, W, (C)].

  Crops the padding (the valid region is the resized size) and resizes to `original_hw`.
  "nearest" uses PyTorch's rule (see `tf_nearest_resize`) and keeps the dtype, for label
  maps, masks, depth and normals; other methods go to `tf.image.resize` without antialias
  and return float32.
  """
  image = np.asarray(image)
  if image.ndim not in (2, 3) or image.shape[0] != image.shape[1]:
    raise ValueError(f"expected a square [S, S] or [S, S, C] image, got shape {image.shape}")
  height, width = (int(v) for v in original_hw)
  new_height, new_width = resized_size(height, width, image.shape[0])
  cropped = image[:new_height, :new_width]
  if method == "nearest":
    return tf_nearest_resize(cropped, (height, width)).numpy()
  as_3d = cropped if cropped.ndim == 3 else cropped[:, :, None]
  restored = tf.image.resize(
    tf.cast(as_3d, tf.float32), (height, width), method=method, antialias=False
  ).numpy()
  return restored if image.ndim == 3 else restored[:, :, 0]


def space_to_depth(images, patch: int):
  """[B, H, W, C] -> [B, (H/p)*(W/p), p*p*C]; patches row-major, features ordered (dh, dw, c)."""
  batch, height, width, channels = images.shape
  if height % patch or width % patch:
    raise ValueError(f"image size {height}x{width} is not divisible by patch size {patch}")
  grid_h, grid_w = height // patch, width // patch
  patches = jnp.reshape(images, (batch, grid_h, patch, grid_w, patch, channels))
  patches = jnp.transpose(patches, (0, 1, 3, 2, 4, 5))
  return jnp.reshape(patches, (batch, grid_h * grid_w, patch * patch * channels))


def depth_to_space(patches, patch: int, grid_hw: Optional[Tuple[int, int]] = None):
  """Inverse of `space_to_depth`: [B, N, p*p*C] -> [B, H, W, C]; square grid unless given."""
  batch, num_patches, features = patches.shape
  if features % (patch * patch):
    raise ValueError(f"feature size {features} is not a multiple of patch^2 = {patch * patch}")
  if grid_hw is None:
    side = int(round(num_patches**0.5))
    if side * side != num_patches:
      raise ValueError(f"{num_patches} patches do not form a square grid; pass grid_hw")
    grid_hw = (side, side)
  grid_h, grid_w = grid_hw
  if grid_h * grid_w != num_patches:
    raise ValueError(f"grid {grid_h}x{grid_w} does not hold {num_patches} patches")
  channels = features // (patch * patch)
  images = jnp.reshape(patches, (batch, grid_h, grid_w, patch, patch, channels))
  images = jnp.transpose(images, (0, 1, 3, 2, 4, 5))
  return jnp.reshape(images, (batch, grid_h * patch, grid_w * patch, channels))
