"""What identifies the image of a TFDS record: dataset ids that sources share, and a hash.

Many of the paper's datasets annotate the same pictures: COCO's images under COCO
detection, captions, keypoints, panoptic and LVIS, RefCOCO/+/g, VQA 2.0, OK-VQA, A-OKVQA and
Visual Genome's `coco_id`; Flickr30k's under Flickr30k captions and SNLI-VE; VCR's under
VisualCOMET. `unified_io.data.clean_split` uses this module to find training images that
are also in some task's validation or test split (12-in-1, §2.2 and Table 7).

`SOURCES` is the one table of how a source's records are keyed, by TFDS builder name (a
"name/config" entry wins over its "name" entry):

- `image_id`: the field that names the picture within the source, so that the source's
  records of one picture (VQA: one record per question) count as one image and an
  exclusion list can name it; None: the picture's perceptual hash names it.
- `shared`: `Key`s, ids that other sources use for the same picture: ("coco", 391895).
- `hash_train`: its train images are also hashed, because its ids miss overlaps that are
  likely (web corpora can hold COCO or ImageNet pictures under any URL).

A source the table lacks is keyed by its perceptual hash alone. Every validation and test
image is hashed, whatever its source; a training image is hashed when its source says
`hash_train`, or it has no shared id (Visual Genome images without a `coco_id`, every
source without shared ids), or clean_split runs with --hash_all.

The perceptual hash is a 64-bit difference hash (dHash): the image's grey level averaged
over a grid of 8 rows x 9 columns of near-equal cells, one bit per horizontally
neighbouring pair, set when the right cell is brighter by more than HASH_MARGIN grey
levels. Chosen over the average hash because its bits are local gradients, not each
cell's side of one global mean: it ignores brightness and contrast shifts, and it does not
give every photo with a bright sky above a dark ground nearly the same bits. The margin
keeps equal neighbours (white backgrounds, silhouettes) from flipping bits at JPEG noise:
on a black-on-white silhouette (skimage's horse) it cut the distance of a 0.9x resized JPEG
copy from 6 to 2 bits. Images whose grid spans under FLAT_RANGE grey levels (blank, fog,
black frames) cannot be told apart this way and are not hashed ("too flat to hash").

Two images match when their hashes differ in at most MAX_HASH_DISTANCE bits and their
16x16 colour thumbnails (cell means, rounded to uint8) differ by at most MAX_THUMB_RMS grey
levels, root mean square. The thumbnail check removes what the hash cannot see: of 749,000
train x validation pairs of different built-in scenes (64x64, one checkered floor under
different shapes), 42 are within 4 bits and none of them within 5 RMS; over all 4,000 x
1,000 train x validation+test pairs one is within both (an orange ball and an orange square
at one spot: 4 bits, 4.1 RMS), so the built-in scenes are matched by id. Measured on the 22
scikit-image sample photos (`skimage/data`) with Pillow: JPEG quality 40-75, resizes
0.5x-1.2x and both together stay within 4 bits and 3.05 RMS; the closest pair of
different photos is 13 bits and 10.2 RMS apart. A crop is not a copy: 2% off two sides
moves a photo by 0-15 bits and 2.4-27.7 RMS, and 4 of the 22 still match.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

HASH_ROWS, HASH_COLS = 8, 9  # 8 x 8 = 64 horizontal comparisons
THUMB_SIZE = 16  # thumbnail cells per side; twice HASH_ROWS (fingerprint shares row sums)
HASH_MARGIN = 1.0  # grey levels (0-255) the right cell must exceed the left one by
FLAT_RANGE = 8.0  # grey levels: a grid spanning less is too flat to hash
MAX_HASH_DISTANCE = 4  # bits
MAX_THUMB_RMS = 5.0  # grey levels
# ITU-R BT.601 luma in thousandths, as PIL's "L" mode: whole weights keep a grey pixel's
# value exact, so a rise of exactly HASH_MARGIN never sets a bit by rounding.
LUMA = np.array([299, 587, 114])


# --------------------------------------------------------------------------- the table


def _plain(value) -> Optional[str]:
  """A record value as id text; None for the "none" markers (-1, empty)."""
  if isinstance(value, bytes):
    value = value.decode("utf-8", "backslashreplace")
  if isinstance(value, (np.integer, int)):
    return None if int(value) < 0 else str(int(value))
  if isinstance(value, np.ndarray) and value.shape == ():
    return _plain(value.item())
  value = str(value)
  return value or None


def _stem(value) -> Optional[str]:
  """A file name's last component without its extension: "n01/n01_10.JPEG" -> "n01_10"."""
  text = _plain(value)
  return None if text is None else os.path.splitext(text.replace("\\", "/").split("/")[-1])[0]


@dataclasses.dataclass(frozen=True)
class Key:
  namespace: str  # sources whose ids of one namespace name the same pictures
  field: str  # the record's top-level field holding the id
  parse: Callable[[object], Optional[str]] = _plain


@dataclasses.dataclass(frozen=True)
class SourceKeys:
  image_id: Optional[str]  # field naming the picture within the source; None: its hash
  shared: Tuple[Key, ...] = ()
  hash_train: bool = False


_COCO = SourceKeys("image/id", (Key("coco", "image/id"),))
_COCO_QA = SourceKeys("image_id", (Key("coco", "image_id"),))
_URL = SourceKeys("id", (Key("url", "url"),), hash_train=True)

SOURCES: Dict[str, SourceKeys] = {
  # COCO image ids (2014 and 2017 share them; RefCOCO and LVIS use them too).
  "coco": _COCO,
  "coco_captions": _COCO,
  "ref_coco": _COCO,
  "lvis": _COCO,
  "uio_coco2017": _COCO,
  "uio_vqa_v2": _COCO_QA,
  "uio_okvqa": _COCO_QA,
  "uio_aokvqa": _COCO_QA,  # COCO 2017 ids
  "uio_visual_genome": SourceKeys("image_id", (Key("coco", "coco_id"),)),  # -1: not COCO
  # Flickr30k ids (file stems): Karpathy's captioning split and SNLI-VE.
  "uio_flickr30k": SourceKeys("id", (Key("flickr30k", "id"),)),
  "uio_snli_ve": SourceKeys("flickr30k_id", (Key("flickr30k", "flickr30k_id"),)),
  # VCR's movie frames, which VisualCOMET annotates too.
  "uio_vcr": SourceKeys("image/filename", (Key("vcr", "image/filename"),)),
  "uio_visualcomet": SourceKeys("image/filename", (Key("vcr", "image/filename"),)),
  # VizWiz's three releases name the same photos alike.
  "uio_vizwiz": SourceKeys("id", (Key("vizwiz", "id"),)),
  # Open Images ids: V4's boxes and V6's masks and relationships.
  "open_images_v4": SourceKeys("image/filename", (Key("open_images", "image/filename", _stem),)),
  "uio_open_images_v6": SourceKeys("id", (Key("open_images", "id"),)),
  # ImageNet file names (synset_number): 21K-P keeps the originals' names, but ImageNet-1k
  # validation photos are renamed ILSVRC2012_val_*, so 21K-P's train images are hashed too.
  "imagenet2012": SourceKeys("file_name", (Key("imagenet", "file_name", _stem),)),
  "uio_imagenet21k": SourceKeys(
    "file_name", (Key("imagenet", "file_name", _stem),), hash_train=True
  ),
  # Web image-text corpora: the same URL in two corpora is one picture; any other copy is
  # found by the hash.
  "uio_cc3m": _URL,
  "uio_cc12m": _URL,
  "uio_redcaps": _URL,
  "uio_yfcc15m": _URL,
  # Sources whose ids no other source uses: their own id names the picture, the hash
  # finds it elsewhere.
  "places365_small": SourceKeys("filename"),
  "sun397": SourceKeys("file_name"),
  "i_naturalist2017": SourceKeys("id"),
  "caltech_birds2011": SourceKeys("image/filename"),
  "uio_imsitu": SourceKeys("id"),
  "uio_framenet": SourceKeys("id"),
  "uio_blendedmvs": SourceKeys("id"),
  "nyu_depth_v2": SourceKeys(None),  # its records carry no id
  # The built-in scenes: "scene-<seed>", from disjoint seed ranges per split. Its 64x64
  # renders share one floor pattern, too alike for the hash (module docstring), so its
  # train images are hashed only with --hash_all.
  "uio_builtin_scenes": SourceKeys("id", (Key("uio_builtin_scenes", "id"),)),
}
UNKNOWN = SourceKeys(None)


def source_keys(builder: str) -> SourceKeys:
  """The table's entry for TFDS builder `builder` ("name/config" first, then "name")."""
  name = builder.split(":")[0]
  return SOURCES.get(name) or SOURCES.get(name.split("/")[0]) or UNKNOWN


def _field(record, field: str, builder: str):
  if field not in record:
    raise KeyError(
      f"{builder}: a record has no field {field!r} (unified_io/data/image_keys.py SOURCES "
      f"names it; the record has {', '.join(sorted(record))})"
    )
  return record[field]


def shared_ids(builder: str, record) -> Tuple[str, ...]:
  """The record's ids that other sources share, as "namespace:id" texts."""
  found = []
  for key in source_keys(builder).shared:
    value = key.parse(_field(record, key.field, builder))
    if value is not None:
      found.append(f"{key.namespace}:{value}")
  return tuple(found)


def local_id(builder: str, record) -> Optional[str]:
  """ "<field>=<value>" of the table's `image_id`: what names the record's picture within its
  source; None when the source has no such field (or the record leaves it empty)."""
  field = source_keys(builder).image_id
  if field is None:
    return None
  value = _plain(_field(record, field, builder))
  return None if value is None else f"{field}={value}"


def hash_name(print_: "Fingerprint") -> str:
  """What names a picture by its hash where its source has no `image_id`."""
  return f"dhash:{print_.hash:016x}"


def identity(builder: str, record) -> Optional[str]:
  """`local_id`, else the picture's `hash_name`; None when it has neither (a flat image)."""
  name = local_id(builder, record)
  if name is not None:
    return name
  print_ = fingerprint(image_of(record))
  return None if print_ is None else hash_name(print_)


def image_of(record) -> Optional[np.ndarray]:
  """The record's decoded "image" ([H, W, C] uint8), or None for text-only records."""
  image = record.get("image") if hasattr(record, "get") else None
  if image is None or not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
    return None
  return image


def image_decoder() -> str:
  """Which library TFDS decodes images with here (OpenCV if installed, else Pillow).

  Their JPEG decoders differ in the last bit, so a hash-named exclusion made with one may
  not name the same image when read with the other."""
  try:
    import cv2

    return f"opencv {cv2.__version__}"
  except ImportError:
    import PIL

    return f"pillow {PIL.__version__}"


# -------------------------------------------------------------------------------- hash


def _enlarged(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
  """`a` with pixels repeated until it has at least rows x cols of them."""
  if a.shape[0] < rows:
    a = np.repeat(a, -(-rows // a.shape[0]), axis=0)
  if a.shape[1] < cols:
    a = np.repeat(a, -(-cols // a.shape[1]), axis=1)
  return a


def _row_sums(a: np.ndarray, rows: int):
  """(sums over `rows` bands of rows, rows per band); band i starts at floor(i H / rows)."""
  edges = (np.arange(rows + 1) * a.shape[0]) // rows
  # A sum per band of contiguous rows, uint8 summed as integers: several times faster than
  # np.add.reduceat along axis 0 (1.3 ms for a 640x480 fingerprint instead of 8).
  dtype = np.uint32 if a.dtype == np.uint8 else np.float64
  sums = [a[edges[i] : edges[i + 1]].sum(axis=0, dtype=dtype) for i in range(rows)]
  return np.stack(sums).astype(np.float64), np.diff(edges)


def _means(sums: np.ndarray, counts: np.ndarray, cols: int) -> np.ndarray:
  """Cell means of row-band `sums` ([rows, W(, C)]) over `cols` bands of columns."""
  left = (np.arange(cols) * sums.shape[1]) // cols
  cell = np.outer(counts, np.diff(np.append(left, sums.shape[1])))
  return np.add.reduceat(sums, left, axis=1) / (cell if sums.ndim == 2 else cell[..., None])


def cell_means(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
  """Mean of `image` ([H, W] or [H, W, C]) over rows x cols near-equal cells: cell (i, j)
  spans rows floor(i H / rows) up to floor((i + 1) H / rows), and so for columns. An image
  smaller than the grid is first enlarged by repeating pixels."""
  return _means(*_row_sums(_enlarged(np.asarray(image), rows, cols), rows), cols)


def _rgb(image: np.ndarray) -> np.ndarray:
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[..., None]
  if image.shape[-1] == 1:
    return np.repeat(image, 3, axis=-1)
  if image.shape[-1] in (3, 4):
    return image[..., :3]
  raise ValueError(f"an image of shape {image.shape}: expected 1, 3 or 4 channels")


@dataclasses.dataclass(frozen=True)
class Fingerprint:
  hash: int  # the 64-bit dHash; bit 63 compares cells (0, 0) and (0, 1), row-major
  thumb: np.ndarray  # uint8 [THUMB_SIZE, THUMB_SIZE, 3] cell means


def fingerprint(image: Optional[np.ndarray]) -> Optional[Fingerprint]:
  """The image's dHash and thumbnail; None without an image or for a flat one."""
  if image is None:
    return None
  # One pass over the pixels: the hash's 8 row bands are pairs of the thumbnail's 16
  # (floor(i H / 8) = floor(2i H / 16)), so both come from the same row sums.
  rgb = _enlarged(_rgb(image), THUMB_SIZE, THUMB_SIZE)
  sums, counts = _row_sums(rgb, THUMB_SIZE)
  pairs = sums[0::2] + sums[1::2], counts[0::2] + counts[1::2]
  grey = _means(*pairs, HASH_COLS) @ LUMA / 1000  # the cells' mean grey (luma is linear)
  if np.ptp(grey) < FLAT_RANGE:
    return None
  bits = (grey[:, 1:] - grey[:, :-1]) > HASH_MARGIN
  value = int.from_bytes(np.packbits(bits.reshape(-1)).tobytes(), "big")
  thumb = np.clip(np.round(_means(sums, counts, THUMB_SIZE)), 0, 255).astype(np.uint8)
  return Fingerprint(value, thumb)


def thumb_rms(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Root mean square difference of thumbnails, over the last three axes."""
  diff = np.asarray(a, np.float32) - np.asarray(b, np.float32)
  return np.sqrt(np.mean(diff * diff, axis=(-3, -2, -1)))


class HashIndex:
  """The fingerprints of many images, searchable for near copies of a query image.

  Pigeonhole: two 64-bit hashes within MAX_HASH_DISTANCE = d bits agree exactly on at
  least one of d + 1 disjoint bands of bits, so each band is a sorted table and a query
  looks up only the images sharing one of its bands, then checks the distance and the
  thumbnail of those candidates.
  """

  def __init__(self, hashes: Sequence[int], thumbs: np.ndarray, max_pairs: int = 1 << 21):
    self.hashes = np.asarray(hashes, np.uint64).reshape(-1)
    self.thumbs = np.asarray(thumbs, np.uint8).reshape(-1, THUMB_SIZE, THUMB_SIZE, 3)
    if len(self.hashes) != len(self.thumbs):
      raise ValueError(f"{len(self.hashes)} hashes for {len(self.thumbs)} thumbnails")
    self.max_pairs = max_pairs
    widths = np.diff(np.linspace(0, 64, MAX_HASH_DISTANCE + 2).astype(int))
    self.bands = []  # (shift, mask, sorted band values, image order)
    shift = 64
    for width in widths:
      shift -= int(width)
      mask = np.uint64((1 << int(width)) - 1)
      values = (self.hashes >> np.uint64(shift)) & mask
      order = np.argsort(values, kind="stable")
      self.bands.append((np.uint64(shift), mask, values[order], order))

  def __len__(self):
    return len(self.hashes)

  def _candidates(self, hashes: np.ndarray):
    """(query, image) index pairs sharing a band, possibly repeated."""
    queries, images = [], []
    for shift, mask, values, order in self.bands:
      wanted = (hashes >> shift) & mask
      lo = np.searchsorted(values, wanted, "left")
      counts = np.searchsorted(values, wanted, "right") - lo
      total = int(counts.sum())
      starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
      queries.append(np.repeat(np.arange(len(hashes)), counts))
      images.append(order[starts + np.arange(total)])
    return np.concatenate(queries), np.concatenate(images)

  def match(self, hashes: Sequence[int], thumbs: np.ndarray) -> np.ndarray:
    """For each query, the index of the first image it matches, or -1."""
    hashes = np.asarray(hashes, np.uint64).reshape(-1)
    thumbs = np.asarray(thumbs, np.uint8).reshape(-1, THUMB_SIZE, THUMB_SIZE, 3)
    found = np.full(len(hashes), -1, np.int64)
    if not len(self.hashes) or not len(hashes):
      return found
    queries, images = self._candidates(hashes)
    if len(queries) > self.max_pairs and len(hashes) > 1:  # a crowded band: halve the batch
      half = len(hashes) // 2
      return np.concatenate(
        [self.match(hashes[:half], thumbs[:half]), self.match(hashes[half:], thumbs[half:])]
      )
    near = np.bitwise_count(hashes[queries] ^ self.hashes[images]) <= MAX_HASH_DISTANCE
    queries, images = queries[near], images[near]
    same = thumb_rms(thumbs[queries], self.thumbs[images]) <= MAX_THUMB_RMS
    queries, images = queries[same], images[same]
    order = np.lexsort((images, queries))  # the smallest image index per query
    queries, images = queries[order], images[order]
    first = np.ones(len(queries), bool)
    first[1:] = queries[1:] != queries[:-1]
    found[queries[first]] = images[first]
    return found
