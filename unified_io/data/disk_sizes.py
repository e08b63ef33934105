"""What each catalogue builder downloads, in bytes, and how long preparing it takes (estimated).

  python -m unified_io.data.disk_sizes [--markdown]     # also: catalog --sizes

Downloads are files keyed by URL, or by release and file name where there is no URL here, so
a file that several builders read counts once in a total: COCO's train2017.zip feeds
coco/2017, lvis, uio_aokvqa and uio_coco2017; the Flickr30k images feed uio_flickr30k and
uio_snli_ve. Each file's size is one of
- exact: the bytes in the checksum files tensorflow-datasets ships for its builders
  (`url_checksums/*.txt` and `checksums.tsv` beside a builder), read by `read_checksums`;
  the project's builders reuse them where they read the same file (COCO's and Open Images'
  archives, Visual Genome's image zips, Karpathy's caption_datasets.zip, SNLI 1.0);
- documented: the size the release's own page states, as rounded there;
- unknown: no size is shipped or documented where this was written; the note says which.
A total over files some of which are unknown is a lower bound, printed with ">=".
TFDS 4.9.10 ships no dataset_info.json, so prepared sizes are not known ahead; for the image
builders, which store the JPEG bytes as released, the prepared copy is about the images' size
again (benchmarks/prepare_rate.py measures it), and the one-record-per-question builders
repeat each image in every record of it (VQA 2.0: about 5x).

Preparation time is an estimate: a rate measured by benchmarks/prepare_rate.py on this
codebase's builders (PREP_RATES) times what the source has, on one core from local disk,
download time excluded. `PREP` says per builder what it is multiplied by: its exact bytes
(TFDS's image builders: building plus TFDS extracting the archives), or its record count
(the project's builders, whose records are images or questions on images, and text). A
builder doing more per record than the measured ones (masks, normals, Beam) gets ">=".
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import glob
import importlib.util
import os
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from unified_io.data.catalog_rows import PRETRAINING, SOURCES
from unified_io.data.disk_size_rows import (
  DOCUMENTED,
  EXACT,
  MANUAL_URLS,
  OTHER_FILES,
  PREP,
  PREP_RATES,
  TEXT,
  TFDS_URLS,
  File,
  Prep,
)


# ------------------------------------------------------------------ TFDS's checksum files


def read_checksums(path: str) -> Dict[str, int]:
  """URL -> bytes of one TFDS checksum file.

  Lines are `URL<TAB>size<TAB>sha256[<TAB>file name]`, or in legacy files `URL size sha256`
  separated by spaces (the URL may hold spaces itself, the last two fields do not); blank
  lines and `#` comments are skipped, as TFDS does. A URL listed twice with the same size is
  one file; with two sizes the file is contradictory and named in the error."""
  sizes: Dict[str, int] = {}
  with open(path, encoding="utf-8") as f:
    for number, line in enumerate(f, 1):
      line = line.strip()
      if not line or line.startswith("#"):
        continue
      fields = line.split("\t")
      if len(fields) == 1:
        fields = line.rsplit(" ", 2)
      if len(fields) not in (3, 4) or not fields[1].isdigit():
        raise ValueError(f"{path}:{number}: not URL, size, sha256[, file name]: {line!r}")
      url, size = fields[0], int(fields[1])
      if sizes.get(url, size) != size:
        raise ValueError(f"{path}:{number}: {url} listed with {sizes[url]} and {size} bytes")
      sizes[url] = size
  return sizes


def tfds_package_dir() -> str:
  spec = importlib.util.find_spec("tensorflow_datasets")  # found, not imported: no TF start
  if spec is None or not spec.submodule_search_locations:
    raise ImportError("tensorflow_datasets is not installed: its checksum files give the sizes")
  return list(spec.submodule_search_locations)[0]


def checksum_files(package_dir: str) -> List[str]:
  legacy = glob.glob(os.path.join(package_dir, "url_checksums", "*.txt"))
  return sorted(
    legacy + glob.glob(os.path.join(package_dir, "**", "checksums.tsv"), recursive=True)
  )


@functools.lru_cache(maxsize=None)
def shipped_sizes(package_dir: Optional[str] = None) -> Dict[str, int]:
  """URL -> bytes over every checksum file of the installed tensorflow-datasets."""
  sizes: Dict[str, int] = {}
  for path in checksum_files(package_dir or tfds_package_dir()):
    for url, size in read_checksums(path).items():
      if sizes.get(url, size) != size:
        raise ValueError(f"{path}: {url} has {size} bytes here and {sizes[url]} elsewhere")
      sizes[url] = size
  return sizes


def select(patterns: Iterable[str], sizes: Dict[str, int]) -> Dict[str, int]:
  """The shipped URLs each pattern names: the URL itself, or a prefix ending in `*`. A
  pattern that names none is an error (a typo, or a TFDS release that moved the file)."""
  chosen: Dict[str, int] = {}
  for pattern in patterns:
    if pattern.endswith("*"):
      found = {u: s for u, s in sizes.items() if u.startswith(pattern[:-1])}
    else:
      found = {pattern: sizes[pattern]} if pattern in sizes else {}
    if not found:
      raise KeyError(f"{pattern}: in no checksum file of tensorflow-datasets")
    chosen.update(found)
  return chosen


def downloads(builder: str, sizes: Optional[Dict[str, int]] = None) -> Tuple[File, ...]:
  """The files `builder` reads, each with its size and where the size comes from."""
  if builder not in TFDS_URLS and builder not in MANUAL_URLS and builder not in OTHER_FILES:
    raise KeyError(
      f"{builder}: no download sizes recorded (disk_size_rows: TFDS_URLS, MANUAL_URLS, OTHER_FILES)"
    )
  sizes = shipped_sizes() if sizes is None else sizes
  patterns = TFDS_URLS.get(builder, ()) + MANUAL_URLS.get(builder, ())
  exact = select(patterns, sizes)
  files = [File(url, size, EXACT, "TFDS checksums") for url, size in sorted(exact.items())]
  return tuple(files) + OTHER_FILES.get(builder, ())


@dataclasses.dataclass(frozen=True)
class Total:
  size: int  # bytes of the files whose size is known
  files: int
  unknown: int  # files of unknown size: `size` is then a lower bound
  documented: int  # files whose size is the release's statement, not exact

  def text(self) -> str:
    if self.unknown and not self.size:
      return "unknown"
    return (">=" if self.unknown else "") + human(self.size)


def total(builders: Iterable[str], sizes: Optional[Dict[str, int]] = None) -> Total:
  """Bytes to download for all of `builders`, each file once however many builders read it."""
  unique: Dict[str, File] = {}
  for builder in builders:
    for f in downloads(builder, sizes):
      unique.setdefault(f.key, f)
  known = [f for f in unique.values() if f.size is not None]
  return Total(
    sum(f.size for f in known),
    len(unique),
    len(unique) - len(known),
    sum(f.kind == DOCUMENTED for f in known),
  )


def human(size: Optional[float]) -> str:
  if size is None:
    return "unknown"
  if size >= 1e12:
    return f"{size / 1e12:.2f} TB"
  for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
    if size >= scale:
      return f"{size / scale:.1f} {unit}"
  return f"{size:.0f} B"


def prep(builder: str) -> Prep:
  """The builder's estimate basis; text builders count their catalogue row's records."""
  if builder in PREP:
    return PREP[builder]
  rows = [s for s in SOURCES + PRETRAINING if s.builder == builder and s.size is not None]
  if not rows or builder not in TFDS_URLS:
    raise KeyError(f"{builder}: no preparation basis (disk_size_rows.PREP)")
  return Prep(TEXT, rows[0].size, note=f"{rows[0].size_source}: {rows[0].unit}")


def prep_seconds(builder: str, sizes: Optional[Dict[str, int]] = None) -> Optional[float]:
  """Estimated seconds to prepare `builder` on one core; None where there is no estimate."""
  basis = prep(builder)
  rates = PREP_RATES
  if basis.basis == "bytes":
    files = downloads(builder, sizes)
    if any(f.size is None for f in files):
      return None
    build = sum(f.size for f in files) / (rates["image_mb_per_s"] * 1e6)
    gz = sum(f.size for f in files if f.key.endswith((".gz", ".tgz", ".tgz?download=1")))
    other = sum(f.size for f in files) - gz
    extract = gz / (rates["untar_gz_mb_per_s"] * 1e6) + other / (rates["unzip_mb_per_s"] * 1e6)
    return build + extract
  per_second = {
    "image": "image_records_per_s",
    "web": "web_records_per_s",
    TEXT: "text_records_per_s",
  }
  if basis.basis in per_second:
    return basis.records / rates[per_second[basis.basis]]
  return None


def duration(seconds: Optional[float], lower_bound: bool = False) -> str:
  if seconds is None:
    return "-"
  mark = ">=" if lower_bound else ""
  if seconds < 60:
    return f"{mark}{seconds:.0f} s"
  if seconds < 3600:
    return f"{mark}{seconds / 60:.0f} min"
  return f"{mark}{seconds / 3600:.1f} h"


# ------------------------------------------------------------------ tables


def builders_of(rows) -> List[str]:
  return list(dict.fromkeys(s.builder for s in rows if s.builder))


def table1_builders() -> List[str]:
  return builders_of(SOURCES)


def pretraining_builders() -> List[str]:
  return builders_of(PRETRAINING)


def builder_line(builder: str, sizes: Dict[str, int]) -> Tuple[str, str, str, str]:
  files = downloads(builder, sizes)
  kinds = sorted({f.kind for f in files})
  size = total([builder], sizes).text()
  basis = prep(builder)
  time = duration(prep_seconds(builder, sizes), bool(basis.more_work))
  how = {"bytes": "exact bytes", "image": "records", "web": "records (web)", TEXT: "records"}
  why = basis.more_work or basis.note
  return size, "+".join(kinds), time, f"{how.get(basis.basis, 'none')}: {why}".rstrip(": ")


def totals_lines(sizes: Dict[str, int]) -> List[str]:
  lines = []
  for name, builders in (
    ("Table 1", table1_builders()),
    ("pre-training", pretraining_builders()),
    ("everything", builders_of(SOURCES + PRETRAINING)),
  ):
    t = total(builders, sizes)
    seconds = [prep_seconds(b, sizes) for b in builders]
    hours = sum(s for s in seconds if s is not None) / 3600
    lines.append(
      f"{name}: {t.text()} ({t.size:,} bytes) to download, {t.files} unique files of "
      f"{len(builders)} builders: {t.files - t.unknown - t.documented} exact, "
      f"{t.documented} documented, {t.unknown} unknown; preparing the "
      f"{sum(s is not None for s in seconds)} builders with an estimate: {hours:.0f} core-hours"
    )
  return lines


def table(markdown: bool = False) -> str:
  sizes = shipped_sizes()
  names = builders_of(SOURCES + PRETRAINING)
  rows_of = {b: [s.row for s in SOURCES + PRETRAINING if s.builder == b] for b in names}
  if markdown:
    lines = [
      "| builder | rows | download | sizes | preparation (1 core) | estimated from |",
      "| --- | --- | --- | --- | --- | --- |",
    ]
    for b in names:
      size, kinds, time, how = builder_line(b, sizes)
      lines.append(f"| `{b}` | {', '.join(rows_of[b])} | {size} | {kinds} | {time} | {how} |")
    return "\n".join(lines + [""] + [f"- {line}" for line in totals_lines(sizes)])
  lines = [f"{'builder':<34}{'download':>12}  {'sizes':<26}{'prepare':>10}  estimated from"]
  for b in names:
    size, kinds, time, how = builder_line(b, sizes)
    lines.append(f"{b:<34}{size:>12}  {kinds:<26}{time:>10}  {how}")
  return "\n".join(lines + [""] + totals_lines(sizes))


# ------------------------------------------------------------------ checking TFDS_URLS


def requested_urls(name: str) -> Tuple[List[str], bool]:
  """The URLs TFDS builder `name`'s _split_generators asks a download manager for, recorded
  by a stand-in manager that downloads nothing, and whether it asked for all: a builder that
  reads a downloaded file before asking for more (wikipedia's dumpstatus.json) stops there."""
  import tempfile

  import tensorflow_datasets as tfds
  import tree
  from etils import epath

  asked: List[str] = []
  tmp = tempfile.mkdtemp()

  class Recorder:
    manual_dir = epath.Path(tmp) / "manual"
    download_dir = epath.Path(tmp)

    def download(self, urls):
      return tree.map_structure(
        lambda u: (asked.append(str(getattr(u, "url", u))), epath.Path(tmp))[1], urls
      )

    download_and_extract = download

    def extract(self, paths):
      return paths

    def iter_archive(self, path):
      return iter(())

  builder = tfds.builder(name, data_dir=tmp)
  complete = True
  try:
    if "pipeline" in builder._split_generators.__code__.co_varnames:
      builder._split_generators(Recorder(), pipeline=None)
    else:
      builder._split_generators(Recorder())
  except Exception:  # reading a file the stand-in did not fetch, or a missing Beam
    complete = False
  return list(dict.fromkeys(asked)), complete


def check(names: Sequence[str]) -> List[str]:
  """Differences between TFDS_URLS and what the builders ask for (empty: they agree). Where
  a builder stopped early, what it asked must be among the listed URLs."""
  sizes = shipped_sizes()
  problems = []
  for name in names:
    listed = set(select(TFDS_URLS[name], sizes))
    urls, complete = requested_urls(name)
    asked = {u for u in urls if u in sizes}
    if asked - listed or (complete and listed - asked):
      problems.append(f"{name}: asked, not listed {sorted(asked - listed)}; listed, not asked "
                      f"{sorted(listed - asked) if complete else '(stopped early)'}")  # fmt: skip
  return problems


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--markdown", action="store_true", help="the data guide's table")
  parser.add_argument("--check", action="store_true", help="compare TFDS_URLS with TFDS's code")
  args = parser.parse_args(argv)
  if args.check:
    problems = check(sorted(b for b in TFDS_URLS if b in builders_of(SOURCES + PRETRAINING)))
    print("\n".join(problems) or "TFDS_URLS agree with what the TFDS builders ask for")
    return 1 if problems else 0
  print(table(args.markdown))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
