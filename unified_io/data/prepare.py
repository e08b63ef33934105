"""Prepares TFDS datasets, TFDS's own and the project's builders, into a data_dir.

  python -m unified_io.data.prepare glue/sst2 coco/2017 --data_dir=DATA_DIR
  python -m unified_io.data.prepare uio_vqa_v2 --data_dir=DATA_DIR [--manual_dir=DIR]

What `tfds build NAME --data_dir=DATA_DIR --file_format=array_record` does, with two
differences that matter here:
- the `tfds` command line of tensorflow-datasets 4.9.10 does not start without Apache Beam
  (it imports its Beam-based format converter at start), which the training environment
  cannot install (requirements-data.txt says why), so it fails for every dataset there;
- the project's builders (unified_io/data/builders/) are registered first, and ArrayRecord
  is the default format: the input pipeline reads it by random access.
Builders that do need Beam or OpenCV (lvis, c4, wikipedia, sun397, caltech_birds2011) run in
`make data-setup`'s .venv-data: `.venv-data/bin/python -m unified_io.data.prepare lvis ...`.
A dataset already prepared is left as it is. Release files of manual downloads go into
`<manual_dir>/` (TFDS's builders) or `<manual_dir>/<builder name>/` (the project's).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Optional, Sequence

FILE_FORMATS = ("array_record", "tfrecord")


def prepare(
  name: str,
  data_dir: Optional[str] = None,
  manual_dir: Optional[str] = None,
  file_format: str = "array_record",
):
  """Builds TFDS dataset `name` into data_dir unless it is there; returns its builder."""
  import tensorflow_datasets as tfds

  from unified_io.data import builders  # noqa: F401  (registers the project's builders)

  if file_format not in FILE_FORMATS:
    raise ValueError(f"file_format={file_format!r}: choose one of {', '.join(FILE_FORMATS)}")
  try:
    builder = tfds.builder(name, data_dir=data_dir, file_format=file_format)
  except tfds.core.DatasetNotFoundError as e:
    raise ValueError(f"{name}: no TFDS or project builder of that name") from e
  if builder.is_prepared():
    print(f"{name}: already prepared in {builder.data_dir}", flush=True)
    return builder
  print(f"{name}: preparing into {builder.data_dir} ({file_format})", flush=True)
  start = time.perf_counter()
  config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
  builder.download_and_prepare(download_config=config)
  print(f"{name}: prepared in {time.perf_counter() - start:.0f} s", flush=True)
  return builder


def main(argv: Optional[Sequence[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("names", nargs="+", help="TFDS names with config, e.g. glue/sst2")
  parser.add_argument("--data_dir", default=None, help="default: TFDS's (~/tensorflow_datasets)")
  parser.add_argument("--manual_dir", default=None, help="default: DATA_DIR/downloads/manual")
  parser.add_argument("--file_format", default="array_record", choices=FILE_FORMATS)
  args = parser.parse_args(argv)
  failed = []
  for name in args.names:
    try:
      prepare(name, args.data_dir, args.manual_dir, args.file_format)
    except Exception as e:  # report each dataset and go on with the others
      print(f"{name}: FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
      failed.append(name)
  if failed:
    print(f"{len(failed)} of {len(args.names)} failed: {', '.join(failed)}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
