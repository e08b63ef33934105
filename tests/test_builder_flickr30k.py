"""uio_flickr30k: a tiny copy of Karpathy's dataset_flickr30k.json and flickr30k-images/ is
built into ArrayRecord files; records match the files (whitespace collapsed, blank captions
dropped, a PNG under a .jpg name re-encoded), train leaves out SNLI-VE's dev/test images, the
task's prompt and target match hand-written strings, and bad release files are named."""

import json

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

from configs import tiny as tiny_config
from unified_io.data import catalog
from unified_io.data import pipeline
from unified_io.data import show
from unified_io.data.builders import common
from unified_io.data.builders import flickr30k
from unified_io.data.tasks import registry as tasks

CTX = tasks.TaskContext()
W, H = 24, 16


def _sentence(image_number, sentence_id, raw):
  return {
    "tokens": raw.lower().split(),
    "raw": raw,
    "imgid": image_number,
    "sentid": sentence_id,
  }


# (file name, split, captions as released). 1001 has only a blank caption after the first;
# 1003 is in SNLI-VE's dev file, so train leaves it out; 1002 is a PNG under a .jpg name.
IMAGES = [
  ("1000.jpg", "train", ["Two  dogs run on grass. ", "Dogs playing outside."]),
  ("1001.jpg", "train", ["A man rides a bike.", "   "]),
  ("1002.jpg", "train", ["A red square."]),
  ("1003.jpg", "train", ["A child in a pool."]),
  ("2000.jpg", "val", ["A cat sleeps."]),
  ("3000.jpg", "test", ["A boat at sea.", "Sail boat."]),
]


def write_release(root, images=IMAGES, snli_dev=("1003",)):
  folder = root / "flickr30k-images"
  folder.mkdir(parents=True)
  entries, sentence_id = [], 0
  for number, (name, split, captions) in enumerate(images):
    color = (40 * number, 100, 200)
    fmt = "PNG" if name == "1002.jpg" else "JPEG"
    PIL.Image.new("RGB", (W, H), color).save(folder / name, format=fmt)
    sentences = []
    for raw in captions:
      sentences.append(_sentence(number, sentence_id, raw))
      sentence_id += 1
    entries.append(
      {
        "filename": name,
        "imgid": number,
        "split": split,
        "sentids": [s["sentid"] for s in sentences],
        "sentences": sentences,
      }
    )
  (root / flickr30k.SPLIT_FILE).write_text(json.dumps({"dataset": "flickr30k", "images": entries}))
  lines = [
    json.dumps({"Flickr30K_ID": i, "sentence2": "x", "gold_label": "neutral"}) for i in snli_dev
  ]
  (root / "snli_ve_dev.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("tfds")
  write_release(path / "downloads" / "manual" / flickr30k.NAME)
  tfds.builder(flickr30k.NAME, data_dir=str(path)).download_and_prepare(file_format="array_record")
  return str(path)


def records(data_dir, split):
  source = pipeline.source(flickr30k.NAME, split, data_dir)
  return {r["id"].decode(): r for r in (source[i] for i in range(len(source)))}


def test_records_follow_the_split_file(data_dir):
  builder = tfds.builder(flickr30k.NAME, data_dir=data_dir)
  counts = {s: builder.info.splits[s].num_examples for s in ("train", "validation", "test")}
  assert counts == {"train": 3, "validation": 1, "test": 1}  # 1003: SNLI-VE dev, left out
  train = records(data_dir, "train")
  assert sorted(train) == ["1000", "1001", "1002"]
  dogs = train["1000"]
  assert [t.decode() for t in dogs["captions"]["text"]] == [
    "Two dogs run on grass.",
    "Dogs playing outside.",
  ]
  assert list(dogs["captions"]["id"]) == [0, 1]
  assert dogs["image"].shape == (H, W, 3) and dogs["image/filename"] == b"1000.jpg"
  assert [t.decode() for t in train["1001"]["captions"]["text"]] == ["A man rides a bike."]
  # The PNG was re-encoded as JPEG: pixels within JPEG error of its flat colour.
  square = train["1002"]["image"].astype(int)
  assert np.abs(square - np.array([80, 100, 200])).max() <= 3
  assert list(records(data_dir, "test")["3000"]["captions"]["id"]) == [7, 8]


def test_captioning_task(data_dir):
  task = tasks.get("flickr30k_captioning")
  assert (task.builder, task.metric, task.output) == (
    "uio_flickr30k",
    tasks.Metric.CIDER,
    tasks.Output.TEXT,
  )
  assert task.group == "image_captioning"
  record = records(data_dir, "train")["1000"]
  raw = task.preprocess(record, np.random.default_rng(0), CTX)
  assert raw["prompt"] == "What does the image describe ?"
  assert raw["meta"]["captions"] == ["Two dogs run on grass.", "Dogs playing outside."]
  assert raw["target_text"] in raw["meta"]["captions"]
  assert raw["meta"]["example_id"] == "1000" and raw["meta"]["image_hw"] == (H, W)
  drawn = {
    task.preprocess(record, np.random.default_rng(seed), CTX)["target_text"] for seed in range(20)
  }
  assert drawn == set(raw["meta"]["captions"])  # both captions get drawn
  empty = dict(record, captions={"text": np.array([], object), "id": np.array([], np.int64)})
  with pytest.raises(tasks.SkipExample, match="no captions"):
    task.preprocess(empty, np.random.default_rng(0), CTX)


def test_catalogue_row_47_is_flickr30k():
  row = catalog.source_of("flickr30k_captioning")
  assert row.row == "47" and row.paper_task == "Supervised Captioning"
  assert catalog.state(row) == "implemented"
  assert "dataset_flickr30k.json" in row.release.files


def test_bad_release_files_are_named(tmp_path):
  root = tmp_path / "downloads" / "manual" / flickr30k.NAME
  write_release(root)
  (root / "flickr30k-images" / "2000.jpg").unlink()
  builder = tfds.builder(flickr30k.NAME, data_dir=str(tmp_path))
  with pytest.raises(common.MissingReleaseFile, match=r"flickr30k-images/2000\.jpg"):
    builder.download_and_prepare(file_format="array_record")
  (root / flickr30k.SPLIT_FILE).unlink()
  with pytest.raises(common.MissingReleaseFile, match="dataset_flickr30k.json"):
    builder.download_and_prepare(file_format="array_record")

  other = tmp_path / "other" / "downloads" / "manual" / flickr30k.NAME
  write_release(other, images=[("1.jpg", "restval", ["A."])])
  with pytest.raises(ValueError, match=r"1\.jpg has split 'restval'"):
    flickr30k.images_by_split(other)
  twice = tmp_path / "twice"
  write_release(twice, images=[("1.jpg", "train", ["A."]), ("1.jpg", "val", ["B."])])
  with pytest.raises(ValueError, match=r"1\.jpg is listed twice"):
    flickr30k.images_by_split(twice)
  (twice / "snli_ve_dev.jsonl").write_text('{"pairID": "no id"}\n')
  with pytest.raises(ValueError, match=r"snli_ve_dev\.jsonl line 1: no Flickr30K_ID"):
    flickr30k.snli_ve_evaluation_ids(twice)


def test_data_show_draws_the_task(data_dir, tmp_path):
  out = tmp_path / "flickr30k.png"
  show.show(tiny_config.get_config(), "flickr30k_captioning", 2, str(out), data_dir=data_dir)
  assert out.stat().st_size > 0
