"""TFDS builders `uio_cc3m`, `uio_cc12m`, `uio_redcaps`, `uio_yfcc15m`: web image-text pairs.

The four corpora ship as URL lists with captions (YFCC15M: with the metadata its captions are
built from), not images. Users download the images with img2dataset (https://github.com/rom1504/img2dataset,
`--output_format webdataset`), which writes one output folder of shards:

    00000.tar, 00001.tar, ...   each holding, per downloaded image, NNNNNNNNN.jpg (the image,
                                re-encoded as JPEG unless --skip_reencode), NNNNNNNNN.txt (the
                                caption column, "" where it has none; only with
                                --caption_col) and NNNNNNNNN.json (metadata: url, caption, key,
                                status, error_message, width, height, original_width,
                                original_height, exif, sha256, plus --save_additional_columns)
    00000.parquet, 00000_stats.json   the same metadata for every URL, and the shard's counts

The key NNNNNNNNN is the shard number (5 digits) and the index in the shard (4 digits); only
successful downloads are in the tar. Each builder reads the shards of
`<manual_dir>/<name>/train/*.tar` (and, for CC3M, `validation/*.tar`: its official validation
list downloaded the same way), in file-name order, then key order; the parquet and stats
files are not read (a shard without its `_stats.json` is one img2dataset did not finish: it is
read as far as it goes, and counted). MANUAL_DOWNLOAD_INSTRUCTIONS give each corpus' commands.

Splits. CC3M: train and validation, the release's own. CC12M, RedCaps and YFCC15M have no
validation set: 1 in 1000 pairs (VALIDATION_PER_MILLE), chosen by the SHA-256 of the image
URL, is held out as validation and the rest is train. The URL, not the img2dataset key,
decides, so the split does not depend on how the list was ordered or sharded, and a URL listed
twice lands in one split.

Records (all text is UTF-8):
- id: "<shard stem>/<key>", e.g. "00003/000030017" (unique in a split; the TFDS key too);
- key: the json's key (img2dataset's "NNNNNNNNN"), url: the image URL;
- caption: the caption, whitespace collapsed: the .txt file (the json's "caption" where the
  .txt is missing); for YFCC15M see below;
- image: the JPEG bytes as downloaded (pixels as stored; TFDS ignores EXIF orientation),
  re-encoded only where they are not a colour or grey JPEG (below);
- RedCaps also image_id and subreddit, YFCC15M photoid, title and description: from the json
  when img2dataset saved those columns (--save_additional_columns), else "".

RedCaps' caption is its annotations' "caption" field (the cleaned Reddit post title the
RedCaps paper trains on; "raw_caption" is the original), passed as img2dataset's caption
column. YFCC15M's caption is built from the YFCC100M metadata's title and description, the two
fields CLIP's subset was filtered on ("natural language titles and/or descriptions in
English"): each is URL-decoded (the metadata is URL-encoded, "+" for spaces), HTML-unescaped,
stripped of HTML tags and of web addresses, its whitespace collapsed; the caption is the title
then the description, joined by ". " (by " " after a title that ends in . ! ? : or ;), either
alone where the other is empty, the title alone where both are the same. The cleaned title and
description are kept as fields. A json without either column falls back to the .txt.

Awkward cases (each counted in the build log, per split; a skipped sample is counted under
its first reason):
- an image that does not decode (broken or truncated JPEG, an empty member): skipped;
- a tiny image, under MIN_SIDE (64) pixels on a side, as stored or as originally downloaded
  (the json's original_width/height: img2dataset's default --resize_mode border upscales a
  32-px thumbnail to 256 px): skipped, as LAION's dataset spec drops them;
- no caption (a .jpg without .txt and without a json caption), an empty or blank caption, or
  one that is not UTF-8: skipped; a json that does not parse: the sample is kept (its url is
  then "" and its member key decides its split);
- a .txt or .json without its .jpg, or a json whose status is not "success": skipped;
- an image that is not a colour or grey JPEG (PNG or WebP bytes under .jpg with
  --skip_reencode, CMYK JPEG): re-encoded as an RGB JPEG (quality 95), counted;
- a shard tarfile cannot open: skipped with a warning naming it; a truncated shard: the
  samples before the cut are kept.

Build with `python -m unified_io.data.prepare uio_cc3m --data_dir=DATA_DIR` (ArrayRecord), or
`download_and_prepare(file_format="array_record")`: TFDS 4.9.10 has no per-builder default
file format, so a bare `download_and_prepare()` writes TFRecords.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import html
import io
import json
import re
import tarfile
import urllib.parse
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from unified_io.data.builders import common

CC3M, CC12M, REDCAPS, YFCC15M = "uio_cc3m", "uio_cc12m", "uio_redcaps", "uio_yfcc15m"
MIN_SIDE = 64  # pixels: smaller images are skipped (LAION's dataset spec drops them too)
VALIDATION_PER_MILLE = 1  # held-out share of corpora without a validation set
_TAG = re.compile(r"<[^>]*>")
_WEB_ADDRESS = re.compile(r"(?:https?://|www\.)\S+")

_DOWNLOAD = """\
Then download the images with img2dataset (pip install img2dataset;
https://github.com/rom1504/img2dataset) as webdataset shards into <manual_dir>/{name}/
(manual_dir: <data_dir>/downloads/manual/ unless --manual_dir says otherwise):

{commands}
Any --image_size will do (images are stored as downloaded; those under 64 pixels on a side are
skipped); --resize_mode keep_ratio --resize_only_if_bigger True keeps the photos as they are,
where the default (border) pads them to white-bordered squares. The builder reads

  {name}/train/00000.tar, 00001.tar, ...   NNNNNNNNN.jpg + NNNNNNNNN.txt + NNNNNNNNN.json each
{validation}
(img2dataset's 00000.parquet and 00000_stats.json beside each tar are not read); the folders
may be symlinks to where the shards already are.{split_note}
Then: python -m unified_io.data.prepare {name} --data_dir=DATA_DIR (writes ArrayRecord files).
"""
_HELD_OUT = (
  " The release has no validation set: 1 in 1000\npairs, chosen by a hash of the URL, is held "
  "out as validation."
)


def _instructions(name: str, source: str, commands: str, official_validation=False) -> str:
  validation = (
    f"  {name}/validation/00000.tar, ...        the validation list's shards\n"
    if official_validation
    else ""
  )
  note = "" if official_validation else _HELD_OUT
  body = _DOWNLOAD.format(name=name, commands=commands, validation=validation, split_note=note)
  return source + "\n" + body


CC3M_INSTRUCTIONS = _instructions(
  CC3M,
  """\
Conceptual Captions 3M: https://ai.google.com/research/ConceptualCaptions/download gives
Train_GCC-training.tsv (caption<TAB>url, no header, 3,318,333 rows) and
Validation_GCC-1.1.0-Validation.tsv (the same columns, 15,840 rows).""",
  """\
  sed -i '1s/^/caption\\turl\\n/' Train_GCC-training.tsv   (img2dataset reads a header)
  img2dataset --url_list Train_GCC-training.tsv --input_format tsv --url_col url \\
    --caption_col caption --output_format webdataset --output_folder <manual_dir>/uio_cc3m/train
and the same for Validation_GCC-1.1.0-Validation.tsv with --output_folder
<manual_dir>/uio_cc3m/validation.
""",
  official_validation=True,
)
CC12M_INSTRUCTIONS = _instructions(
  CC12M,
  """\
Conceptual 12M: https://github.com/google-research-datasets/conceptual-12m gives cc12m.tsv
(url<TAB>caption, no header, 12,423,374 rows).""",
  """\
  sed -i '1s/^/url\\tcaption\\n/' cc12m.tsv   (img2dataset reads a header)
  img2dataset --url_list cc12m.tsv --input_format tsv --url_col url --caption_col caption \\
    --output_format webdataset --output_folder <manual_dir>/uio_cc12m/train
""",
)
REDCAPS_INSTRUCTIONS = _instructions(
  REDCAPS,
  """\
RedCaps: https://redcaps.xyz gives redcaps_v1.0_annotations.zip, whose
annotations/<subreddit>_<year>.json files are each {"info": ..., "annotations": [{image_id,
author, url, raw_caption, caption, subreddit, score, created_utc, permalink,
crosspost_parents}, ...]} (12,011,111 annotations in all). Write one URL list of every
annotation with the columns url, caption, image_id and subreddit (e.g. a parquet file,
redcaps.parquet, with pandas); the caption is the annotations' "caption" (the cleaned title).""",
  """\
  img2dataset --url_list redcaps.parquet --input_format parquet --url_col url \\
    --caption_col caption --save_additional_columns '["image_id","subreddit"]' \\
    --output_format webdataset --output_folder <manual_dir>/uio_redcaps/train
(The RedCaps downloader's images/<subreddit>/<image_id>.jpg layout is not read.)
""",
)
YFCC15M_INSTRUCTIONS = _instructions(
  YFCC15M,
  """\
YFCC15M, CLIP's subset of YFCC100M: https://github.com/openai/CLIP/blob/main/data/yfcc100m.md
gives yfcc100m_subset_data.tsv (line number, photo id, photo hash: 14,829,396 rows), which
picks rows of the YFCC100M metadata TSV (https://multimediacommons.wordpress.com/
yfcc100m-core-dataset/; its first three columns are the same). Write one URL list of the
subset's photos with the columns url, photoid, title and description, the last two as the
metadata has them (URL-encoded: the builder decodes them), and url the Multimedia Commons copy
of the image, https://multimedia-commons.s3-us-west-2.amazonaws.com/data/images/
<hash[0:3]>/<hash[3:6]>/<hash>.jpg (Flickr's own links are often dead).""",
  """\
  img2dataset --url_list yfcc15m.parquet --input_format parquet --url_col url \\
    --save_additional_columns '["photoid","title","description"]' \\
    --output_format webdataset --output_folder <manual_dir>/uio_yfcc15m/train
(The caption is built from title and description; a --caption_col is used only for samples
whose json has neither.)
""",
)


# ------------------------------------------------------------------------------- captions


def clean_yfcc_text(value) -> str:
  """A YFCC100M title or description as text: URL-decoded, no HTML, no web addresses."""
  if not isinstance(value, str):
    return ""
  text = html.unescape(urllib.parse.unquote_plus(value))
  text = _WEB_ADDRESS.sub(" ", _TAG.sub(" ", text))
  return " ".join(text.split())


def yfcc_caption(title: str, description: str) -> str:
  """Title then description (both cleaned), either alone, or once if they are the same."""
  if not title or not description or title.lower() == description.lower():
    return title or description
  joiner = " " if title[-1] in ".!?:;" else ". "
  return title + joiner + description


def held_out(url: str) -> bool:
  """Whether a pair of a corpus without a validation set goes to validation."""
  digest = hashlib.sha256(url.encode("utf-8")).digest()
  return int.from_bytes(digest[:8], "big") % 1000 < VALIDATION_PER_MILLE


# ---------------------------------------------------------------------------------- corpora


@dataclasses.dataclass(frozen=True)
class Corpus:
  name: str
  title: str
  homepage: str
  citation: str
  instructions: str
  official_validation: bool = False  # validation/ shards; else held out of train/ by URL
  extras: Tuple[str, ...] = ()  # json fields kept as text ("" where absent)
  yfcc: bool = False  # caption from the json's title and description

  @property
  def folders(self) -> Tuple[str, ...]:
    return ("train", "validation") if self.official_validation else ("train",)


CORPORA: Dict[str, Corpus] = {
  CC3M: Corpus(
    CC3M,
    "Conceptual Captions 3M",
    "https://ai.google.com/research/ConceptualCaptions/",
    "Sharma et al. 2018",
    CC3M_INSTRUCTIONS,
    official_validation=True,
  ),
  CC12M: Corpus(
    CC12M,
    "Conceptual 12M",
    "https://github.com/google-research-datasets/conceptual-12m",
    "Changpinyo et al. 2021",
    CC12M_INSTRUCTIONS,
  ),
  REDCAPS: Corpus(
    REDCAPS,
    "RedCaps",
    "https://redcaps.xyz",
    "Desai et al. 2021",
    REDCAPS_INSTRUCTIONS,
    extras=("image_id", "subreddit"),
  ),
  YFCC15M: Corpus(
    YFCC15M,
    "YFCC15M (CLIP's subset of YFCC100M)",
    "https://github.com/openai/CLIP/blob/main/data/yfcc100m.md",
    "Thomee et al. 2016; Radford et al. 2021",
    YFCC15M_INSTRUCTIONS,
    extras=("photoid", "title", "description"),
    yfcc=True,
  ),
}


# ----------------------------------------------------------------------------------- shards


def shard_paths(folder: epath.Path) -> List[epath.Path]:
  return sorted((p for p in folder.glob("*.tar") if p.is_file()), key=lambda p: p.name)


class Sample:
  """One sample of a shard: its members' extensions, each read on demand (and kept).

  On demand, so a split that leaves a sample to the other reads only its .json.
  """

  def __init__(self, tar: tarfile.TarFile, members: Dict[str, tarfile.TarInfo], counts):
    self._tar, self._members, self._counts = tar, members, counts
    self._data: Dict[str, bytes] = {}

  def __contains__(self, extension: str) -> bool:
    return extension in self._members

  def read(self, extension: str) -> bytes:
    """The member's bytes; b"" for a member whose data a truncation cut short."""
    if extension not in self._data:
      try:
        self._data[extension] = self._tar.extractfile(self._members[extension]).read()
      except (tarfile.TarError, OSError, EOFError):
        self._counts["unreadable tar members"] += 1
        self._data[extension] = b""
    return self._data[extension]


def read_shard(path: epath.Path, counts: collections.Counter) -> Iterator[Tuple[str, Sample]]:
  """(key, Sample) per sample of a webdataset tar, in key order.

  Members are grouped as webdataset groups them: the key is the name up to the first dot of
  its base name, the extension the rest (lower-cased). The whole shard is indexed first, so
  members of a sample need not be adjacent.
  """
  try:
    handle = path.open("rb")
    tar = tarfile.open(fileobj=handle, mode="r:")
  except (tarfile.TarError, OSError) as e:
    counts["unreadable shards (skipped)"] += 1
    logging.warning("%s: not a readable tar file (%s): skipped", path, e)
    return
  with handle, tar:
    groups: Dict[str, Dict[str, tarfile.TarInfo]] = collections.defaultdict(dict)
    while True:
      try:
        member = tar.next()  # None at the end, and where a truncation cut a header
      except (tarfile.TarError, OSError, EOFError) as e:
        counts["truncated shards"] += 1
        logging.warning("%s: truncated (%s): read as far as it goes", path, e)
        break
      if member is None:
        break
      if not member.isfile():
        continue
      directory, _, base = member.name.rpartition("/")
      stem, dot, extension = base.partition(".")
      if not dot or not stem:
        counts["other tar members (ignored)"] += 1
        continue
      groups[f"{directory}/{stem}" if directory else stem][extension.lower()] = member
    for key in sorted(groups):
      yield key, Sample(tar, groups[key], counts)


# ----------------------------------------------------------------------------------- checks


def check_image(data: bytes, meta: dict) -> Tuple[Optional[bytes], str]:
  """(JPEG bytes to store, or None; "ok", "re-encoded" or the reason to skip)."""
  try:
    with PIL.Image.open(io.BytesIO(data)) as image:
      image.load()  # decodes every pixel: a truncated JPEG fails here
      if min(image.size) < MIN_SIDE or min(_original_size(meta)) < MIN_SIDE:
        return None, f"tiny image (under {MIN_SIDE} px on a side)"
      stored, reencoded = common.storable_jpeg(image, data)
      return stored, "re-encoded" if reencoded else "ok"
  except Exception:  # PIL raises many kinds for broken bytes (OSError, ValueError, SyntaxError)
    return None, "undecodable image"


def _original_size(meta: dict) -> Tuple[float, float]:
  """The size img2dataset downloaded (before resizing); inf where the json lacks it."""
  sizes = []
  for field in ("original_width", "original_height"):
    value = meta.get(field)
    sizes.append(float(value) if isinstance(value, (int, float)) and value > 0 else np.inf)
  return sizes[0], sizes[1]


def _text(value) -> str:
  return "" if value is None else str(value)


def _caption(corpus: Corpus, sample: Sample, meta: dict, counts) -> Tuple[str, Optional[str]]:
  """(caption, None) or ("", the reason to skip)."""
  if corpus.yfcc and ("title" in meta or "description" in meta):
    caption = yfcc_caption(
      clean_yfcc_text(meta.get("title")), clean_yfcc_text(meta.get("description"))
    )
    return (caption, None) if caption else ("", "empty caption")
  if "txt" in sample:
    try:
      caption = sample.read("txt").decode("utf-8")
    except UnicodeDecodeError:
      return "", "caption not UTF-8"
  elif isinstance(meta.get("caption"), str):
    counts["caption from the json (no .txt)"] += 1
    caption = meta["caption"]
  else:
    return "", "no caption (no .txt, no json caption)"
  caption = " ".join(caption.split())
  return (caption, None) if caption else ("", "empty caption")


def _meta(sample: Sample, counts) -> dict:
  if "json" not in sample:
    counts["no json"] += 1
    return {}
  try:
    meta = json.loads(sample.read("json").decode("utf-8"))
  except (UnicodeDecodeError, ValueError):
    meta = None
  if not isinstance(meta, dict):
    counts["unreadable json (sample kept)"] += 1
    return {}
  return meta


# ---------------------------------------------------------------------------------- records


def records(
  corpus: Corpus,
  folder: epath.Path,
  counts: collections.Counter,
  keep: Optional[Callable[[str], bool]] = None,
) -> Iterator[Tuple[str, dict]]:
  """The records of the shards in `folder`; `keep(url or key)` picks this split's samples."""
  for path in shard_paths(folder):
    counts["shards"] += 1
    stem = path.name[: -len(".tar")]
    if not (folder / f"{stem}_stats.json").exists():
      counts["shards without _stats.json (unfinished download)"] += 1
    for key, sample in read_shard(path, counts):
      meta = _meta(sample, counts)
      url = _text(meta.get("url"))
      if keep is not None and not keep(url or key):
        counts["in the other split"] += 1
        continue
      counts["samples"] += 1
      reason = None
      if "jpg" not in sample:
        reason = "no image (.txt or .json without .jpg)"
      elif meta.get("status", "success") != "success":
        reason = "download not successful"
      caption = ""
      if reason is None:
        caption, reason = _caption(corpus, sample, meta, counts)
      if reason is None:
        image, how = check_image(sample.read("jpg"), meta)
        reason = None if image is not None else how
        if how == "re-encoded":
          counts["re-encoded as RGB JPEG"] += 1
      if reason is not None:
        counts[f"skipped: {reason}"] += 1
        continue
      counts["kept"] += 1
      record_id = f"{stem}/{key}"
      record = {
        "id": record_id,
        "key": _text(meta.get("key")) or key,
        "url": url,
        "caption": caption,
        "image": image,
      }
      for field in corpus.extras:
        cleaned = corpus.yfcc and field in ("title", "description")
        record[field] = clean_yfcc_text(meta.get(field)) if cleaned else _text(meta.get(field))
      yield record_id, record


def _features(corpus: Corpus) -> tfds.features.FeaturesDict:
  text = tfds.features.Text
  fields = {
    "id": text(doc='"<shard stem>/<key>", e.g. "00003/000030017"'),
    "key": text(doc="img2dataset's key: shard number (5 digits) and index (4 digits)"),
    "url": text(),
    "caption": text(),
    "image": tfds.features.Image(encoding_format="jpeg"),
  }
  fields.update({field: text() for field in corpus.extras})
  return tfds.features.FeaturesDict(fields)


class _WebImageText(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Image-text pairs from img2dataset webdataset shards; subclasses name the corpus."""

  CORPUS: Corpus
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Image-text pairs from img2dataset webdataset shards."}
  # TFDS 4.9.10 finds this with an undeclared backport (importlib_resources); give it.
  code_path = epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    corpus = self.CORPUS
    return self.dataset_info_from_configs(
      description=f"{corpus.title} ({corpus.citation}) image-text pairs.\n\n{__doc__}",
      features=_features(corpus),
      homepage=corpus.homepage,
    )

  def _split_generators(self, dl_manager):
    corpus = self.CORPUS
    root = common.release_dir(dl_manager, corpus.name)
    common.require(root, corpus.name, [f"{folder}/" for folder in corpus.folders])
    empty = [f"{folder}/*.tar" for folder in corpus.folders if not shard_paths(root / folder)]
    if empty:
      raise common.MissingReleaseFile(
        f"{corpus.name}: missing in {root}: {', '.join(empty)} (img2dataset webdataset shards; "
        "see the builder's MANUAL_DOWNLOAD_INSTRUCTIONS)"
      )
    if corpus.official_validation:
      return {split: self._generate_examples(root / split, split) for split in corpus.folders}
    train = root / "train"
    return {
      "train": self._generate_examples(train, "train", lambda url: not held_out(url)),
      "validation": self._generate_examples(train, "validation", held_out),
    }

  def _generate_examples(self, folder: epath.Path, split: str, keep=None):
    counts = collections.Counter()
    yield from records(self.CORPUS, folder, counts, keep)
    logging.info("%s %s: %s", self.CORPUS.name, split, dict(sorted(counts.items())))


class UioCc3m(_WebImageText):
  """Conceptual Captions 3M (Sharma et al. 2018): train and the official validation."""

  name = CC3M
  CORPUS = CORPORA[CC3M]
  MANUAL_DOWNLOAD_INSTRUCTIONS = CC3M_INSTRUCTIONS


class UioCc12m(_WebImageText):
  """Conceptual 12M (Changpinyo et al. 2021); validation held out by URL hash."""

  name = CC12M
  CORPUS = CORPORA[CC12M]
  MANUAL_DOWNLOAD_INSTRUCTIONS = CC12M_INSTRUCTIONS


class UioRedcaps(_WebImageText):
  """RedCaps (Desai et al. 2021); validation held out by URL hash."""

  name = REDCAPS
  CORPUS = CORPORA[REDCAPS]
  MANUAL_DOWNLOAD_INSTRUCTIONS = REDCAPS_INSTRUCTIONS


class UioYfcc15m(_WebImageText):
  """YFCC15M, CLIP's 15M subset of YFCC100M; validation held out by URL hash."""

  name = YFCC15M
  CORPUS = CORPORA[YFCC15M]
  MANUAL_DOWNLOAD_INSTRUCTIONS = YFCC15M_INSTRUCTIONS
