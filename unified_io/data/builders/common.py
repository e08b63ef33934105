"""What the project's TFDS builders share: where their release files are, and the error
that names a missing one.

Every builder reads the dataset's original release files, under their original names and
folder layout, from `<manual_dir>/<builder name>/` (`manual_dir` is TFDS's:
`<data_dir>/downloads/manual/` unless `prepare --manual_dir=DIR` says otherwise). Image
collections several datasets share (COCO train2014/val2014/train2017, Visual Genome's
VG_100K/VG_100K_2, VCR's vcr1images, Flickr30k) are documented sub-folders of that folder,
which may be symlinks to where the user already keeps them, so nothing is copied by hand.
"""

from __future__ import annotations

import io
import json
import os
from typing import Iterable, Sequence, Tuple

from etils import epath


class MissingReleaseFile(FileNotFoundError):
  """A release file a builder needs is absent; the message names it and where it goes."""


def release_dir(dl_manager, builder_name: str) -> epath.Path:
  """`<manual_dir>/<builder_name>/`, checked to exist."""
  root = epath.Path(dl_manager._manual_dir) / builder_name  # no access check: ours is below
  if not root.exists():
    raise MissingReleaseFile(
      f"{builder_name}: no folder {root}; put the release files there (see the builder's "
      "MANUAL_DOWNLOAD_INSTRUCTIONS, or python -m unified_io.data.catalog)"
    )
  return root


def require(root: epath.Path, builder_name: str, relpaths: Iterable[str]) -> None:
  """Raises MissingReleaseFile naming every absent file or folder of `relpaths`."""
  absent = [p for p in relpaths if not (root / p).exists()]
  if absent:
    raise MissingReleaseFile(
      f"{builder_name}: missing in {root}: {', '.join(absent)} (see the builder's "
      "MANUAL_DOWNLOAD_INSTRUCTIONS)"
    )


# Flickr30k's images, which SNLI-VE and Flickr30k captions share: the tarball unpacks to the
# first name; some mirrors use the second.
FLICKR30K_IMAGE_DIRS = ("flickr30k-images", "flickr30k_images")


def one_of(root: epath.Path, builder_name: str, names: Sequence[str], what: str) -> epath.Path:
  """The first of `names` under root; MissingReleaseFile naming them all otherwise."""
  for name in names:
    if (root / name).exists():
      return root / name
  raise MissingReleaseFile(
    f"{builder_name}: missing in {root}: {what} ({' or '.join(n + '/' for n in names)}; see "
    "the builder's MANUAL_DOWNLOAD_INSTRUCTIONS)"
  )


def read_json(path: epath.Path):
  """A release JSON file; a malformed one names the file."""
  try:
    return json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON ({e})") from e


def image_bytes(path: epath.Path) -> bytes:
  """An image file's bytes, stored as they are (TFDS Image features accept encoded bytes)."""
  return path.read_bytes()


JPEG_QUALITY = 95  # for the few images that must be re-encoded


def storable_jpeg(image, data: bytes) -> Tuple[bytes, bool]:
  """(bytes to store in a tfds Image(encoding_format="jpeg") feature, whether re-encoded) of
  an opened PIL `image` whose file bytes are `data`: RGB and greyscale JPEGs are kept as
  released; anything else (PNG under a .jpg name, CMYK JPEG...) becomes an RGB JPEG."""
  if image.format == "JPEG" and image.mode in ("RGB", "L"):
    return data, False
  out = io.BytesIO()
  image.convert("RGB").save(out, format="JPEG", quality=JPEG_QUALITY)
  return out.getvalue(), True


def exists(path) -> bool:
  return os.path.exists(os.fspath(path))
