"""uio_cc3m, uio_cc12m, uio_redcaps, uio_yfcc15m: tiny img2dataset webdataset shards (tar files
of NNNNNNNNN.jpg + .txt + .json, with a _stats.json beside) are built into ArrayRecord files;
the records and skip counts match the shards, the held-out validation split follows the URL
hash, YFCC15M captions are built from title and description, every task's prompt and target
match hand-written strings, and a missing shard folder is named."""

import collections
import hashlib
import io
import json
import tarfile

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds
from etils import epath

from configs import tiny as tiny_config
from unified_io.data import show
from unified_io.data import pipeline
from unified_io.data.builders import common
from unified_io.data.builders import web_image_text as wit
from unified_io.data.tasks import ext_web_image_text  # noqa: F401  (registers the tasks)
from unified_io.data.tasks import pretraining
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import text

CTX = tasks.TaskContext()
W, H = 80, 64  # every kept test image: at least 64 px on a side


def _jpeg(size=(W, H), color=(200, 30, 30), mode="RGB", fmt="JPEG"):
  out = io.BytesIO()
  PIL.Image.new(mode, size, color if mode != "L" else color[0]).save(out, format=fmt)
  return out.getvalue()


def _meta(key, url, caption, size=(W, H), original=None, **extra):
  """img2dataset's json for one successful download."""
  width, height = size
  original_width, original_height = original or size
  return dict(
    url=url,
    caption=caption,
    key=key,
    status="success",
    error_message=None,
    width=width,
    height=height,
    original_width=original_width,
    original_height=original_height,
    exif="{}",
    sha256="0" * 64,
    **extra,
  )


def _sample(key, url, caption, image=None, txt=True, meta=None, **extra):
  """{extension: bytes} as img2dataset writes them; txt=False leaves the .txt out."""
  files = {"jpg": _jpeg() if image is None else image}
  if txt:
    files["txt"] = (caption or "").encode()
  files["json"] = json.dumps(meta or _meta(key, url, caption, **extra), indent=4).encode()
  return key, files


def write_shard(folder, stem, samples, stats=True):
  folder.mkdir(parents=True, exist_ok=True)
  with tarfile.open(folder / f"{stem}.tar", "w") as tar:
    for key, files in samples:
      for extension in sorted(files):
        if files[extension] is None:
          continue
        info = tarfile.TarInfo(f"{key}.{extension}")
        info.size = len(files[extension])
        tar.addfile(info, io.BytesIO(files[extension]))
  (folder / f"{stem}.parquet").write_bytes(b"PAR1")  # beside the tar, never read
  if stats:
    (folder / f"{stem}_stats.json").write_text(json.dumps({"count": len(samples)}))


def url(corpus, i):
  return f"https://img.example.com/{corpus}/{i}.jpg"


def by_hand_held_out(address):
  """1 in 1000 by the first 8 bytes of the URL's SHA-256, big-endian."""
  return int(hashlib.sha256(address.encode()).hexdigest()[:16], 16) % 1000 == 0


# URLs whose hash sends them to validation (found by searching i = 0, 1, 2, ...).
HELD_OUT = {"cc12m": (213, 871), "redcaps": (53, 931), "yfcc": (1700, 3675)}
PNG = _jpeg(fmt="PNG", color=(0, 0, 255))  # PNG bytes under .jpg (--skip_reencode)
BROKEN = _jpeg()[:200]  # a JPEG cut short


def write_cc3m(root):
  train = root / "train"
  write_shard(
    train,
    "00000",
    [
      _sample("000000000", url("cc3m", 0), "a dog on the beach"),
      _sample("000000001", url("cc3m", 1), "a broken picture", image=BROKEN),
      _sample("000000002", url("cc3m", 2), None, txt=False),  # no .txt, json caption null
      _sample("000000003", url("cc3m", 3), "  \n "),  # blank caption
      _sample("000000004", url("cc3m", 4), "a thin strip", image=_jpeg((40, 100))),
      _sample("000000005", url("cc3m", 5), "  two   cats\n", image=_jpeg(mode="L")),
      _sample("000000006", url("cc3m", 6), "a blue square", image=PNG),
      # Upscaled by img2dataset's border resizing from a 32 x 32 thumbnail: tiny.
      _sample("000000007", url("cc3m", 7), "a small icon", original=(32, 32)),
    ],
  )
  write_shard(
    train,
    "00001",
    [
      _sample("000010000", url("cc3m", 10), "a red bus"),
      # A caption and json without their .jpg.
      ("000010001", {"txt": b"no image", "json": json.dumps({"key": "000010001"}).encode()}),
    ],
    stats=False,  # an unfinished download: read, counted
  )
  write_shard(root / "validation", "00000", [_sample("000000000", url("cc3m", 100), "a tree")])


def write_cc12m(root):
  a, b = HELD_OUT["cc12m"]
  write_shard(
    root / "train",
    "00000",
    [
      _sample("000000000", url("cc12m", 0), "<PERSON> at the market"),
      _sample("000000001", url("cc12m", a), "a held out lamp"),
      _sample("000000002", url("cc12m", 1), "broken", image=BROKEN),
      _sample("000000003", url("cc12m", b), "a held out chair"),
      _sample("000000004", url("cc12m", 2), "a second train pair"),
    ],
  )


def write_redcaps(root):
  a, _ = HELD_OUT["redcaps"]

  def extra(i, subreddit):
    return dict(image_id=f"id{i}", subreddit=subreddit)

  write_shard(
    root / "train",
    "00000",
    [
      _sample("000000000", url("redcaps", 0), "my cat loves this box", **extra(0, "cats")),
      # The .txt is missing but the json has the caption: kept.
      _sample("000000001", url("redcaps", 1), "sunset over lake", txt=False, **extra(1, "pics")),
      _sample("000000002", url("redcaps", a), "a held out dog", **extra(2, "dogs")),
      _sample("000000003", url("redcaps", 2), "", **extra(3, "pics")),  # empty caption
    ],
  )


def write_yfcc(root):
  a, _ = HELD_OUT["yfcc"]

  def yfcc(key, i, title, description, caption=""):
    meta = _meta(key, url("yfcc", i), caption, photoid=str(1000 + i))
    meta.update(title=title, description=description)
    return _sample(key, url("yfcc", i), caption, meta=meta)

  description = "Taken+from+%3Ca+href%3D%22http%3A%2F%2Fexample.com%22%3Ethe+pier%3C%2Fa%3E+at+dusk"
  no_columns = _meta("000000004", url("yfcc", 4), "a plain caption")  # no title/description
  write_shard(
    root / "train",
    "00000",
    [
      yfcc("000000000", 0, "Sunset+over+the+bay", description),
      yfcc("000000001", 1, "IMG_0042%21", ""),  # title alone
      yfcc("000000002", a, "Held+out", "Held+out"),  # the same twice: once
      yfcc("000000003", 3, "", "+"),  # nothing left: empty caption
      _sample("000000004", url("yfcc", 4), "a plain caption", meta=no_columns),
    ],
  )


WRITERS = {wit.CC3M: write_cc3m, wit.CC12M: write_cc12m, wit.REDCAPS: write_redcaps}
WRITERS[wit.YFCC15M] = write_yfcc


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("tfds")
  for name, write in WRITERS.items():
    write(path / "downloads" / "manual" / name)
    tfds.builder(name, data_dir=str(path)).download_and_prepare(file_format="array_record")
  return str(path)


def records(data_dir, name, split="train"):
  source = pipeline.source(name, split, data_dir)
  found = [source[i] for i in range(len(source))]
  return {r["id"].decode(): r for r in found}


def counts_of(data_dir, name, folder="train", keep=None):
  counts = collections.Counter()
  root = epath.Path(data_dir) / "downloads" / "manual" / name / folder
  list(wit.records(wit.CORPORA[name], root, counts, keep))
  return counts


def run(task, record, seed=0):
  return tasks.get(task).preprocess(record, np.random.default_rng(seed), CTX)


def test_held_out_urls_match_the_hand_rule():
  for corpus, held in HELD_OUT.items():
    for i in range(max(held) + 1):  # the first two held-out URLs of each corpus
      address = url(corpus, i)
      assert wit.held_out(address) == by_hand_held_out(address) == (i in held), address


def test_yfcc_text_cleaning():
  assert wit.clean_yfcc_text("Caf%C3%A9+%26amp%3B+bar") == "Café & bar"
  assert wit.clean_yfcc_text("see+www.example.com+now") == "see now"
  assert wit.yfcc_caption("Done!", "We left") == "Done! We left"
  assert wit.yfcc_caption("A title", "") == "A title"
  assert wit.yfcc_caption("", "Only this") == "Only this"


def test_cc3m_records_and_counts(data_dir):
  builder = tfds.builder(wit.CC3M, data_dir=data_dir)
  assert {s: builder.info.splits[s].num_examples for s in ("train", "validation")} == {
    "train": 4,
    "validation": 1,
  }
  found = records(data_dir, wit.CC3M)
  assert sorted(found) == [
    "00000/000000000",
    "00000/000000005",
    "00000/000000006",
    "00001/000010000",
  ]
  dog = found["00000/000000000"]
  assert dog["caption"] == b"a dog on the beach" and dog["key"] == b"000000000"
  assert dog["url"] == url("cc3m", 0).encode()
  assert dog["image"].shape == (H, W, 3)
  np.testing.assert_allclose(dog["image"][H // 2, W // 2], (200, 30, 30), atol=4)  # JPEG
  cats = found["00000/000000005"]
  assert cats["caption"] == b"two cats"  # whitespace collapsed
  assert cats["image"].shape == (H, W, 3)  # the grey JPEG decodes as RGB
  val = records(data_dir, wit.CC3M, "validation")
  assert list(val) == ["00000/000000000"] and val["00000/000000000"]["caption"] == b"a tree"

  counts = counts_of(data_dir, wit.CC3M)
  assert counts["shards"] == 2 and counts["samples"] == 10 and counts["kept"] == 4
  assert counts["skipped: undecodable image"] == 1
  assert counts["skipped: no caption (no .txt, no json caption)"] == 1
  assert counts["skipped: empty caption"] == 1
  assert counts["skipped: tiny image (under 64 px on a side)"] == 2  # 40 px, and 32 px original
  assert counts["skipped: no image (.txt or .json without .jpg)"] == 1
  assert counts["re-encoded as RGB JPEG"] == 1
  assert counts["shards without _stats.json (unfinished download)"] == 1


def test_png_under_jpg_is_reencoded(data_dir):
  counts = collections.Counter()
  root = epath.Path(data_dir) / "downloads" / "manual" / wit.CC3M / "train"
  found = dict(wit.records(wit.CORPORA[wit.CC3M], root, counts))
  assert sorted(found) == [
    f"0000{k}" for k in ("0/000000000", "0/000000005", "0/000000006", "1/000010000")
  ]
  blue = found["00000/000000006"]
  assert blue["image"][:3] == b"\xff\xd8\xff" and blue["caption"] == "a blue square"
  with PIL.Image.open(io.BytesIO(blue["image"])) as image:
    assert image.format == "JPEG" and image.mode == "RGB" and image.size == (W, H)


def test_held_out_validation_splits(data_dir):
  for name, corpus, train_urls in (
    (wit.CC12M, "cc12m", (0, 2)),
    (wit.REDCAPS, "redcaps", (0, 1)),
  ):
    train = records(data_dir, name)
    validation = records(data_dir, name, "validation")
    assert sorted(r["url"].decode() for r in train.values()) == [url(corpus, i) for i in train_urls]
    assert sorted(r["url"].decode() for r in validation.values()) == sorted(
      url(corpus, i) for i in HELD_OUT[corpus][: 2 if name == wit.CC12M else 1]
    )
  assert records(data_dir, wit.CC12M)["00000/000000000"]["caption"] == b"<PERSON> at the market"
  counts = counts_of(data_dir, wit.CC12M, keep=wit.held_out)
  assert counts["samples"] == 2 and counts["kept"] == 2 and counts["in the other split"] == 3


def test_redcaps_records(data_dir):
  found = records(data_dir, wit.REDCAPS)
  cat = found["00000/000000000"]
  assert (cat["caption"], cat["image_id"], cat["subreddit"]) == (
    b"my cat loves this box",
    b"id0",
    b"cats",
  )
  assert found["00000/000000001"]["caption"] == b"sunset over lake"  # from the json
  counts = counts_of(data_dir, wit.REDCAPS, keep=lambda u: not wit.held_out(u))
  assert counts["caption from the json (no .txt)"] == 1
  assert counts["skipped: empty caption"] == 1 and counts["kept"] == 2


def test_yfcc_records(data_dir):
  found = records(data_dir, wit.YFCC15M)
  assert sorted(found) == ["00000/000000000", "00000/000000001", "00000/000000004"]
  sunset = found["00000/000000000"]
  assert sunset["caption"] == b"Sunset over the bay. Taken from the pier at dusk"
  assert sunset["title"] == b"Sunset over the bay"
  assert sunset["description"] == b"Taken from the pier at dusk"
  assert sunset["photoid"] == b"1000"
  assert found["00000/000000001"]["caption"] == b"IMG_0042!"
  plain = found["00000/000000004"]  # no title/description columns: the .txt
  assert plain["caption"] == b"a plain caption" and plain["photoid"] == b""
  held = records(data_dir, wit.YFCC15M, "validation")
  assert [r["caption"] for r in held.values()] == [b"Held out"]
  counts = counts_of(data_dir, wit.YFCC15M, keep=lambda u: not wit.held_out(u))
  assert counts["skipped: empty caption"] == 1 and counts["kept"] == 3


def test_tasks_are_registered():
  for prefix, builder in (("cc3m", wit.CC3M), ("cc12m", wit.CC12M), ("redcaps", wit.REDCAPS)):
    generation, captioning = (
      tasks.get(f"{prefix}_{kind}") for kind in ("image_generation", "captioning")
    )
    assert (generation.group, generation.output, generation.metric) == (
      "image_synthesis",
      tasks.Output.IMAGE,
      tasks.Metric.IMAGE_PSNR,
    )
    assert (captioning.group, captioning.output, captioning.metric) == (
      "image_captioning",
      tasks.Output.TEXT,
      tasks.Metric.CIDER,
    )
    assert generation.builder == captioning.builder == builder
  for prefix, builder in (("yfcc15m", wit.YFCC15M), ("redcaps", wit.REDCAPS)):
    denoise_text = tasks.get(f"{prefix}_text_denoising")
    denoise_image = tasks.get(f"{prefix}_image_denoising")
    assert denoise_text.group == "language_modelling" and denoise_text.builder == builder
    assert denoise_image.group == "image_synthesis" and denoise_image.builder == builder
    assert denoise_image.output == tasks.Output.IMAGE
  for task in tasks.all_tasks().values():
    if task.builder in wit.CORPORA:
      assert dict(task.splits) == {"train": "train", "validation": "validation"}
      assert task.size is None


def test_generation_and_captioning_tasks(data_dir):
  dog = records(data_dir, wit.CC3M)["00000/000000000"]
  raw = run("cc3m_image_generation", dog)
  assert raw["prompt"] == 'What is the complete image? Text: " a dog on the beach " .'
  assert raw["image"] is None and raw["target_text"] == ""
  np.testing.assert_allclose(raw["target_image"], dog["image"] / 255.0, atol=1e-6)
  assert raw["meta"]["example_id"] == "00000/000000000" and raw["meta"]["image_hw"] == (H, W)
  raw = run("cc3m_captioning", dog)
  assert raw["prompt"] == "What does the image describe ?"
  assert raw["target_text"] == "a dog on the beach"
  assert raw["meta"]["captions"] == ["a dog on the beach"]
  np.testing.assert_array_equal(raw["image"], dog["image"])
  lamp = next(iter(records(data_dir, wit.CC12M, "validation").values()))
  assert run("cc12m_captioning", lamp)["target_text"] == lamp["caption"].decode()
  cat = records(data_dir, wit.REDCAPS)["00000/000000000"]
  raw = run("redcaps_image_generation", cat)
  assert raw["prompt"] == 'What is the complete image? Text: " my cat loves this box " .'
  assert run("redcaps_captioning", cat)["target_text"] == "my cat loves this box"
  for name in ("cc3m_captioning", "cc12m_image_generation", "redcaps_captioning"):
    with pytest.raises(tasks.SkipExample, match="no caption"):
      run(name, dict(dog, caption=b"  "))


def test_denoising_tasks(data_dir):
  sunset = records(data_dir, wit.YFCC15M)["00000/000000000"]
  cat = records(data_dir, wit.REDCAPS)["00000/000000000"]
  for name, record, caption in (
    ("yfcc15m", sunset, "Sunset over the bay. Taken from the pier at dusk"),
    ("redcaps", cat, "my cat loves this box"),
  ):
    images, prompts = 0, set()
    for seed in range(20):
      raw = run(f"{name}_text_denoising", record, seed)
      assert raw["meta"]["original"] == "An image of " + caption
      assert text.fill_spans(raw["prompt"], raw["target_text"]) == "An image of " + caption
      assert raw["target_text"].startswith("<extra_id_0>")
      images += raw["image"] is not None
      raw = run(f"{name}_image_denoising", record, seed)
      assert raw["image_input_mask_rate"] == 0.75 and raw["target_text"] == ""
      np.testing.assert_allclose(raw["target_image"], record["image"] / 255.0, atol=1e-6)
      prompts.add(raw["prompt"])
    assert 14 <= images < 20  # the image is dropped 10% of the time
    assert prompts == {
      f'What is the complete image? Text: " {caption} " .',
      pretraining.IMAGE_ONLY_PROMPT,
    }
    with pytest.raises(tasks.SkipExample, match="no caption or class name"):
      run(f"{name}_text_denoising", dict(record, caption=b""))
    assert run(f"{name}_image_denoising", dict(record, caption=b""))["prompt"] == (
      pretraining.IMAGE_ONLY_PROMPT
    )


def test_missing_release_files_are_named(tmp_path):
  empty = tmp_path / "empty"
  with pytest.raises(common.MissingReleaseFile, match=wit.CC3M):
    tfds.builder(wit.CC3M, data_dir=str(empty)).download_and_prepare(file_format="array_record")
  root = tmp_path / "downloads" / "manual" / wit.CC3M
  write_shard(root / "train", "00000", [_sample("000000000", url("cc3m", 0), "a dog")])
  builder = tfds.builder(wit.CC3M, data_dir=str(tmp_path))
  with pytest.raises(common.MissingReleaseFile, match=r"validation/"):
    builder.download_and_prepare(file_format="array_record")
  (root / "validation").mkdir()
  with pytest.raises(common.MissingReleaseFile, match=r"validation/\*\.tar"):
    builder.download_and_prepare(file_format="array_record")


def test_unreadable_and_truncated_shards(tmp_path):
  folder = tmp_path / "train"
  samples = [_sample(f"00000000{i}", url("cc3m", i), f"pair {i}") for i in range(3)]
  write_shard(folder, "00000", samples)
  with tarfile.open(folder / "00000.tar") as tar:
    cut = tar.getmember("000000002.txt").offset_data + 2
  # An interrupted download: the shard ends inside the last member, the third caption.
  (folder / "00000.tar").write_bytes((folder / "00000.tar").read_bytes()[:cut])
  (folder / "00001.tar").write_bytes(b"not a tar file")
  counts = collections.Counter()
  found = dict(wit.records(wit.CORPORA[wit.CC3M], epath.Path(folder), counts))
  assert sorted(found) == ["00000/000000000", "00000/000000001"]
  assert found["00000/000000001"]["caption"] == "pair 1"
  assert counts["unreadable shards (skipped)"] == 1 and counts["unreadable tar members"] == 1
  assert counts["skipped: empty caption"] == 1 and counts["samples"] == 3


def test_data_show_draws_the_tasks_as_the_model_sees_them(data_dir, tmp_path):
  """`python -m unified_io.data.show`'s library call on the prepared tiny release."""
  config = tiny_config.get_config()
  for name in ['cc3m_captioning', 'redcaps_image_generation']:
    out = tmp_path / f"{name}.png"
    show.show(config, name, 2, str(out), data_dir=data_dir)
    assert out.stat().st_size > 0
