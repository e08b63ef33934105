"""Preparation rate: how fast this codebase prepares release files into ArrayRecord, per core.

  .venv/bin/python benchmarks/prepare_rate.py --images=1000 --web_images=4000 --texts=100000

Writes synthetic releases of real-sized files into a temporary folder and prepares them with
`unified_io.data.prepare.prepare` (what `python -m unified_io.data.prepare` runs), timing:

- image: `uio_flickr30k` on N 640 x 480 JPEGs of about COCO's mean size (train2017.zip is
  19,336,861,798 bytes for 118,287 images: 163 KB each). The builder checks each file's
  format and passes the JPEG bytes through, as most image builders (TFDS's and ours) do.
- web: `uio_cc3m` on N 256 x 256 JPEGs in img2dataset webdataset shards (256 is
  img2dataset's default --image_size); the web builders decode every image once.
- text: a minimal TFDS builder writing N records of ~1 KB of text, the writer path of TFDS's
  NLP builders (their own parsing of the release files is not included).
- unzip, untar.gz: Python's zipfile and tarfile extracting the same JPEGs (deflate-zipped
  like COCO's zips, gzip-tarred like Open Images' and iNaturalist's), which is how TFDS
  extracts downloads.

TFDS's generator-based builders (all of the ones measured) write from one Python process,
so each rate is one core's. Files are on local disk and in the page cache; download time is
not included. Each measurement runs --repeats times on fresh folders and prints its median
trial as one JSON line, with every trial's seconds (a shared machine is noisy).
`unified_io/data/disk_sizes.py` (PREP_RATES) holds the numbers the data guide's estimates
use, with the command and machine they came from.
"""

import argparse
import functools
import io
import json
import os
import sys
import tarfile
import tempfile
import time
import zipfile

import numpy as np
import PIL.Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from unified_io.data import prepare as prepare_lib  # noqa: E402

NOISE = 18.0  # per-pixel noise that brings a 640 x 480 quality-90 JPEG to about 163 KB
QUALITY = 90


def synthetic_jpeg(rng: np.random.Generator, width: int, height: int) -> bytes:
  """A photo-like JPEG: smooth colour regions plus grain, so its size is a photo's."""
  coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
  smooth = PIL.Image.fromarray(coarse).resize((width, height), PIL.Image.BICUBIC)
  pixels = np.asarray(smooth, np.float32) + rng.normal(0.0, NOISE, (height, width, 3))
  out = io.BytesIO()
  PIL.Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
    out, format="JPEG", quality=QUALITY
  )
  return out.getvalue()


def folder_bytes(path: str) -> int:
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def timed_prepare(name: str, root: str) -> tuple:
  data_dir = os.path.join(root, "data")
  start = time.perf_counter()
  builder = prepare_lib.prepare(name, data_dir, os.path.join(root, "manual"))
  return time.perf_counter() - start, folder_bytes(str(builder.data_dir))


def result(kind, builder, records, input_bytes, seconds, output_bytes=None, **extra):
  row = dict(
    kind=kind,
    builder=builder,
    records=records,
    input_bytes=input_bytes,
    seconds=round(seconds, 3),
    records_per_s=round(records / seconds, 1),
    input_mb_per_s=round(input_bytes / seconds / 1e6, 2),
    mean_record_input_bytes=round(input_bytes / records),
  )
  if output_bytes is not None:
    row["output_bytes"] = output_bytes
  row.update(extra)
  return row


def measure_images(root: str, jpegs) -> dict:
  """uio_flickr30k: Karpathy's split file and flickr30k-images/; one val and one test image
  (the builder writes all three splits), the rest train."""
  release = os.path.join(root, "manual", "uio_flickr30k")
  images = os.path.join(release, "flickr30k-images")
  os.makedirs(images)
  entries, splits = [], {len(jpegs) - 2: "val", len(jpegs) - 1: "test"}
  for i, data in enumerate(jpegs):
    with open(os.path.join(images, f"{1000 + i}.jpg"), "wb") as f:
      f.write(data)
    raw = f"A synthetic photograph number {i} of a street with people."
    sentence = {"raw": raw, "tokens": raw.lower().split(), "imgid": i, "sentid": i}
    entries.append(
      {
        "filename": f"{1000 + i}.jpg",
        "imgid": i,
        "split": splits.get(i, "train"),
        "sentids": [i],
        "sentences": [sentence],
      }
    )
  with open(os.path.join(release, "dataset_flickr30k.json"), "w") as f:
    json.dump({"dataset": "flickr30k", "images": entries}, f)
  seconds, output = timed_prepare("uio_flickr30k", root)
  return result("image", "uio_flickr30k", len(jpegs), sum(map(len, jpegs)), seconds, output)


def _write_shard(path: str, jpegs, first_key: int, size: int) -> None:
  with tarfile.open(path, "w") as tar:
    for i, data in enumerate(jpegs):
      key = f"{first_key + i:09d}"
      caption = f"a synthetic web photo {first_key + i} of a dog on a beach"
      meta = dict(
        url=f"https://img.example.com/{first_key + i}.jpg", caption=caption, key=key,
        status="success", error_message=None, width=size, height=size,
        original_width=size, original_height=size, exif="{}", sha256="0" * 64,
      )  # fmt: skip
      for ext, payload in (("jpg", data), ("txt", caption.encode()), ("json", json.dumps(meta))):
        payload = payload.encode() if isinstance(payload, str) else payload
        info = tarfile.TarInfo(f"{key}.{ext}")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
  with open(path[: -len(".tar")] + "_stats.json", "w") as f:
    json.dump({"count": len(jpegs)}, f)


def measure_web(root: str, jpegs, size: int) -> dict:
  """uio_cc3m: one train shard with the images, one validation shard of a few."""
  release = os.path.join(root, "manual", "uio_cc3m")
  for split in ("train", "validation"):
    os.makedirs(os.path.join(release, split))
  _write_shard(os.path.join(release, "train", "00000.tar"), jpegs, 0, size)
  _write_shard(os.path.join(release, "validation", "00000.tar"), jpegs[:4], 10**8, size)
  seconds, output = timed_prepare("uio_cc3m", root)
  records = len(jpegs) + 4
  return result("web", "uio_cc3m", records, sum(map(len, jpegs + jpegs[:4])), seconds, output)


@functools.lru_cache(maxsize=None)
def text_builder_class():
  """Defined once: TFDS registers a builder class by name when it is defined."""
  import tensorflow_datasets as tfds

  class PrepareRateText(tfds.core.GeneratorBasedBuilder):
    """Records of text and a label, as a GLUE-style builder writes them."""

    VERSION = tfds.core.Version("1.0.0")
    TEXTS = ()  # set before each build

    def _info(self):
      features = tfds.features.FeaturesDict(
        {"sentence": tfds.features.Text(), "label": tfds.features.ClassLabel(num_classes=2)}
      )
      return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
      return {"train": self._generate_examples()}

    def _generate_examples(self):
      for i, text in enumerate(self.TEXTS):
        yield i, {"sentence": text, "label": i % 2}

  return PrepareRateText


def measure_text(root: str, count: int, chars: int) -> dict:
  rng = np.random.default_rng(1)
  words = np.array(["the", "model", "answers", "a", "question", "about", "text", "with", "words"])
  texts = tuple(" ".join(rng.choice(words, chars // 5)) for _ in range(count))  # not timed
  cls = text_builder_class()
  cls.TEXTS = texts
  builder = cls(data_dir=os.path.join(root, "data"), file_format="array_record")
  start = time.perf_counter()
  builder.download_and_prepare()
  seconds = time.perf_counter() - start
  return result("text", "synthetic GLUE-like", count, sum(map(len, texts)), seconds)


def measure_extraction(root: str, jpegs) -> list:
  rows = []
  total = sum(map(len, jpegs))
  archive = os.path.join(root, "images.zip")
  with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
    for i, data in enumerate(jpegs):
      z.writestr(f"images/{i}.jpg", data)
  start = time.perf_counter()
  with zipfile.ZipFile(archive) as z:
    z.extractall(os.path.join(root, "unzipped"))
  rows.append(result("unzip", "zipfile", len(jpegs), total, time.perf_counter() - start))
  archive = os.path.join(root, "images.tar.gz")
  with tarfile.open(archive, "w:gz") as tar:
    for i, data in enumerate(jpegs):
      info = tarfile.TarInfo(f"images/{i}.jpg")
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  start = time.perf_counter()
  with tarfile.open(archive, "r:gz") as tar:
    tar.extractall(os.path.join(root, "untarred"), filter="data")
  rows.append(result("untar.gz", "tarfile", len(jpegs), total, time.perf_counter() - start))
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--images", type=int, default=1000, help="640 x 480 JPEGs (uio_flickr30k)")
  parser.add_argument("--web_images", type=int, default=4000, help="256 x 256 JPEGs (uio_cc3m)")
  parser.add_argument("--texts", type=int, default=100000, help="~1 KB text records")
  parser.add_argument("--text_chars", type=int, default=1000)
  parser.add_argument("--repeats", type=int, default=3, help="trials; the median is printed")
  parser.add_argument("--tmp", default=None, help="where to write (default: a temporary folder)")
  args = parser.parse_args(argv)
  for name, value in (("--images", args.images), ("--web_images", args.web_images),
                      ("--texts", args.texts)):  # fmt: skip
    if value < 8:
      parser.error(f"{name}={value}: at least 8, so that the rate is not all start-up")
  import tensorflow_datasets as tfds

  tfds.disable_progress_bar()
  rng = np.random.default_rng(0)
  photos = [synthetic_jpeg(rng, 640, 480) for _ in range(args.images)]
  web = [synthetic_jpeg(rng, 256, 256) for _ in range(args.web_images)]
  print(json.dumps({"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}))
  with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
    runs = (
      ("image", lambda root: [measure_images(root, photos)]),
      ("web", lambda root: [measure_web(root, web, 256)]),
      ("text", lambda root: [measure_text(root, args.texts, args.text_chars)]),
      ("extract", lambda root: measure_extraction(root, photos)),
    )
    for kind, run in runs:
      trials = []
      for trial in range(args.repeats):
        root = os.path.join(tmp, f"{kind}{trial}")
        os.makedirs(root)
        trials.append(run(root))
      for rows in zip(*trials):  # the median trial, with the spread: the machine may be shared
        times = sorted(row["seconds"] for row in rows)
        median = next(row for row in rows if row["seconds"] == times[len(times) // 2])
        median["seconds_all_trials"] = times
        print(json.dumps(median), flush=True)


if __name__ == "__main__":
  main()
