"""uio_imagenet21k: a tiny copy of the ImageNet-21K-P winter21 release (all 10,450 class
folders, a few holding PIL-made images, one broken file) is built into ArrayRecord files; the
records match the files, the awkward images (CMYK, PNG, greyscale, truncated) go where the
docs say, the name table has the release's classes with distinct readable names, the naming
rule does what its docstring says, and every task's prompt and target match hand-written
strings."""

import io
import logging
import re

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

from configs import tiny as tiny_config
from unified_io.data import show
from unified_io.data import pipeline
from unified_io.data.builders import common
from unified_io.data.builders import imagenet21k
from unified_io.data.tasks import classification
from unified_io.data.tasks import ext_imagenet21k
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import text

CTX = tasks.TaskContext()
NAME = imagenet21k.NAME
W, H = 32, 24
# Labels: the index of the wnid among the 10,450 sorted winter21 wnids.
TENCH, CRANE_BIRD, BENTHOS, KNOTHOLE = 209, 1200, 0, 10449
WNID = {TENCH: "n01440764", CRANE_BIRD: "n02012849", BENTHOS: "n00005787", KNOTHOLE: "n15102894"}
RED, BLUE = (200, 30, 30), (30, 30, 200)


def _image_bytes(mode, color, fmt="JPEG"):
  out = io.BytesIO()
  PIL.Image.new(mode, (W, H), color).save(
    out, format=fmt, **({"quality": 95} if fmt == "JPEG" else {})
  )
  return out.getvalue()


# (split folder, wnid, file name) -> bytes, as the release would hold them.
FILES = {
  ("imagenet21k_train", "n01440764", "n01440764_10026.JPEG"): _image_bytes("RGB", RED),
  ("imagenet21k_train", "n01440764", "n01440764_20.JPEG"): _image_bytes("RGB", BLUE),
  # Truncated: PIL opens it but cannot decode it; the builder skips it.
  ("imagenet21k_train", "n01440764", "n01440764_3.JPEG"): _image_bytes("RGB", RED)[:200],
  ("imagenet21k_train", "n01440764", "Thumbs.db"): b"not an image",  # ignored
  ("imagenet21k_train", "n02012849", "n02012849_7.JPEG"): _image_bytes("CMYK", (0, 255, 255, 0)),
  ("imagenet21k_train", "n00005787", "n00005787_1.PNG"): _image_bytes("RGB", BLUE, "PNG"),
  ("imagenet21k_train", "n15102894", "n15102894_5.JPEG"): _image_bytes("L", 90),
  ("imagenet21k_val", "n01440764", "n01440764_9.JPEG"): _image_bytes("RGB", BLUE),
  ("imagenet21k_val", "n02012849", "n02012849_2.JPEG"): _image_bytes("RGB", RED),
}


def write_release(root, folders=tuple(imagenet21k.SPLITS)):
  """The release under root (= <manual_dir>/uio_imagenet21k/imagenet21k_resized)."""
  for folder in folders:
    for wnid in imagenet21k.class_wnids():  # every class folder; most stay empty here
      (root / folder / wnid).mkdir(parents=True)
  for (folder, wnid, name), data in FILES.items():
    if folder in folders:
      (root / folder / wnid / name).write_bytes(data)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("tfds")
  write_release(path / "downloads" / "manual" / NAME / imagenet21k.TAR_FOLDER)
  tfds.builder(NAME, data_dir=str(path)).download_and_prepare(file_format="array_record")
  return str(path)


def records(data_dir, split="train"):
  source = pipeline.source(NAME, split, data_dir)
  return {r["file_name"].decode(): r for r in (source[i] for i in range(len(source)))}


def run(task, record, seed=0):
  return tasks.get(task).preprocess(record, np.random.default_rng(seed), CTX)


def _decoded(data):
  return np.asarray(PIL.Image.open(io.BytesIO(data)).convert("RGB"))


# ------------------------------------------------------------------------------ builder


def test_records_match_the_release(data_dir):
  builder = tfds.builder(NAME, data_dir=data_dir)
  assert {s: builder.info.splits[s].num_examples for s in ("train", "validation")} == {
    "train": 5,  # 7 files: the truncated JPEG is skipped, Thumbs.db ignored
    "validation": 2,
  }
  label = builder.info.features["label"]
  assert label.num_classes == 10_450 and label.names[TENCH] == "n01440764"
  found = records(data_dir)
  assert sorted(found) == [
    "n00005787/n00005787_1.PNG",
    "n01440764/n01440764_10026.JPEG",
    "n01440764/n01440764_20.JPEG",
    "n02012849/n02012849_7.JPEG",
    "n15102894/n15102894_5.JPEG",
  ]
  for file_name, record in found.items():
    wnid = file_name.split("/")[0]
    assert record["wnid"].decode() == wnid and label.names[record["label"]] == wnid
    assert record["image"].shape == (H, W, 3) and record["image"].dtype == np.uint8
  assert {int(r["label"]) for r in found.values()} == {TENCH, CRANE_BIRD, BENTHOS, KNOTHOLE}
  # RGB and greyscale JPEGs are stored as released: their pixels are the file's.
  key = ("imagenet21k_train", "n01440764", "n01440764_10026.JPEG")
  np.testing.assert_array_equal(
    found["n01440764/n01440764_10026.JPEG"]["image"], _decoded(FILES[key])
  )
  grey = found["n15102894/n15102894_5.JPEG"]["image"]
  assert (grey == grey[..., :1]).all() and abs(int(grey.mean()) - 90) <= 2
  # CMYK (magenta and yellow ink: red) and PNG are re-encoded as RGB JPEGs.
  assert np.abs(found["n02012849/n02012849_7.JPEG"]["image"].mean((0, 1)) - (255, 0, 0)).max() < 8
  assert np.abs(found["n00005787/n00005787_1.PNG"]["image"].mean((0, 1)) - BLUE).max() < 8
  val = records(data_dir, "validation")
  assert sorted(val) == ["n01440764/n01440764_9.JPEG", "n02012849/n02012849_2.JPEG"]
  assert val["n02012849/n02012849_2.JPEG"]["label"] == CRANE_BIRD


def test_the_build_log_counts_the_awkward_files(tmp_path, caplog):
  write_release(tmp_path, folders=("imagenet21k_train",))
  with caplog.at_level(logging.INFO, logger="absl"):
    keys = [
      k
      for k, _ in imagenet21k.split_records(
        tmp_path, "imagenet21k_train", imagenet21k.class_wnids()
      )
    ]
  assert len(keys) == 5 and len(set(keys)) == 5
  log = caplog.text
  assert "n01440764/n01440764_3.JPEG does not decode" in log
  for count in (
    "'stored as released': 3",
    "'re-encoded as RGB JPEG from JPEG CMYK': 1",
    "'re-encoded as RGB JPEG from PNG RGB': 1",
    "'skipped: undecodable': 1",
    "'ignored: not an image file': 1",
    "'class folders without images': 10446",
  ):
    assert count in log


def test_checked_image():
  assert imagenet21k.checked_image(b"")[0] is None
  assert imagenet21k.checked_image(_image_bytes("RGB", RED)[:200])[0] is None
  data = _image_bytes("RGB", RED)
  assert imagenet21k.checked_image(data) == (data, "stored as released")


def test_missing_or_foreign_release_files_are_named(tmp_path):
  # The flat layout (split folders directly in uio_imagenet21k/) is read too.
  root = tmp_path / "downloads" / "manual" / NAME
  (root / "imagenet21k_train").mkdir(parents=True)
  builder = tfds.builder(NAME, data_dir=str(tmp_path))
  with pytest.raises(common.MissingReleaseFile, match=r"missing in .*: imagenet21k_val/"):
    builder.download_and_prepare(file_format="array_record")
  with pytest.raises(common.MissingReleaseFile, match=NAME):
    tfds.builder(NAME, data_dir=str(tmp_path / "empty")).download_and_prepare(
      file_format="array_record"
    )
  split = root / "imagenet21k_train"
  for wnid in ("n00005787", "n01440764"):
    (split / wnid).mkdir()
  wnids = ("n00005787", "n00006484", "n01440764")
  with pytest.raises(
    common.MissingReleaseFile, match=r"1 of 3 class folders .*imagenet21k_train/n00006484/"
  ):
    imagenet21k.check_class_folders(split, "imagenet21k_train", wnids)
  (split / "n00006484").mkdir()
  imagenet21k.check_class_folders(split, "imagenet21k_train", wnids)
  (split / "n09505153").mkdir()  # a class of the fall11 variant only
  with pytest.raises(ValueError, match=r"n09505153.*not fall11"):
    imagenet21k.check_class_folders(split, "imagenet21k_train", wnids)


# --------------------------------------------------------------------------- name table


def test_name_table_has_the_release_classes():
  rows = imagenet21k.name_table_rows()
  wnids = [w for w, _ in rows]
  assert len(rows) == 10_450 and wnids == sorted(set(wnids))
  assert wnids[:3] == ["n00005787", "n00006484", "n00007846"] and wnids[-1] == "n15102894"
  assert wnids.index("n01440764") == TENCH and wnids.index("n02012849") == CRANE_BIRD
  # Classes of fall11 that winter21 dropped, and a synset with too few images, are not in it.
  assert not {"n09505153", "n09606527", "n00004475"} & set(wnids)
  assert ext_imagenet21k.WNIDS == tuple(wnids)
  names = ext_imagenet21k.NAMES
  assert all(n.strip() == n and n for n in names)
  assert len({n.casefold() for n in names}) == 10_450  # distinct, also ignoring case
  table = dict(rows)
  for wnid, name in {
    "n00005787": "benthos",  # the first lemma, verbatim
    "n01440764": "tench",
    "n07739125": "apple",
    "n00017222": "plant life",  # "plant" is shared: another lemma containing it
    "n03956922": "industrial plant",
    "n02778669": "ball (game equipment)",  # no other lemma: the hypernym
    "n02779435": "ball (plaything)",
    "n00474568": "ball (baseball)",
    "n02077152": "fur seal (Arctocephalus)",  # the same parents: the genus
    "n04335209": "street (the part of a thoroughfare between the sidewalks)",  # the definition
    "n02012849": "crane (bird)",  # ImageNet 2012's names win
    "n03126707": "crane (machine)",
    "n02113186": "Cardigan Welsh corgi",
    "n02963159": "cardigan",
    "n01514859": "hen",  # a 2012 class keeps its name; the other hen gives way
    "n01321123": "hen (female)",
  }.items():
    assert table[wnid] == name, wnid


def test_imagenet2012_classes_keep_their_names():
  shared = [(w, n) for w, n in classification.imagenet_table() if w in ext_imagenet21k.WNIDS]
  assert len(shared) == 991  # 9 ImageNet 2012 classes are not winter21 classes
  table = dict(imagenet21k.name_table_rows())
  assert all(table[w] == n for w, n in shared)


def test_naming_rule_steps():
  S = ext_imagenet21k.Synset
  synsets = {
    "n1": S(("thing",)),
    "n2": S(("device",), ("n1",)),
    "n3": S(("toy",), ("n1",)),
    "n4": S(("genus Foo",)),
    "n5": S(("genus Bar",)),
    "n10": S(("plant", "flora", "plant life")),  # 1: another lemma, containing "plant"
    "n11": S(("plant", "works")),  # 1: "works"
    "n12": S(("ball",), ("n2",)),  # 2: hypernyms
    "n13": S(("Ball",), ("n3",)),  # same name, ignoring case
    "n14": S(("seal",), ("n2",), ("n4",), "a seal of the south; thick fur"),  # 3: genera
    "n15": S(("seal",), ("n2",), ("n5",), "a seal of the north"),
    "n16": S(("pier",), ("n2",), (), "a support (of a bridge) for spans; see also"),  # 3: gloss
    "n17": S(("pier",), ("n2",), (), "a vertical support"),
    "n18": S(("crane",), ("n2",)),  # a seeded (ImageNet 2012) class keeps its name
    "n19": S(("crane", "derrick")),
    "n20": S(("crane",), ("n3",)),
  }
  wnids = [f"n{i}" for i in range(10, 21)]
  names = ext_imagenet21k.class_names(wnids, synsets, seeds={"n18": "crane"})
  assert dict(zip(wnids, names)) == {
    "n10": "plant life",
    "n11": "works",
    "n12": "ball (device)",
    "n13": "Ball (toy)",
    "n14": "seal (genus Foo)",
    "n15": "seal (genus Bar)",
    "n16": "pier (a support for spans)",
    "n17": "pier (a vertical support)",
    "n18": "crane",
    "n19": "derrick",
    "n20": "crane (toy)",
  }
  with pytest.raises(ValueError, match="still shared"):
    ext_imagenet21k.class_names(["n1", "n1x"], {"n1": S(("a",)), "n1x": S(("a",))})


def test_read_wordnet_nouns(tmp_path):
  path = tmp_path / "data.noun"
  path.write_text(
    "  1 This software and database is being provided to you, the LICENSEE, by  \n"
    "00000010 05 n 02 crane 0 wading_bird 0 003 @ 00000020 n 0000 #m 00000030 n 0000 "
    "+ 00000040 v 0101 | large long-necked wading bird; \"an example\"  \n"
    "00000020 05 n 01 bird 0 001 ~ 00000010 n 0000 | a vertebrate  \n"
  )
  synsets = ext_imagenet21k.read_wordnet_nouns(str(path))
  assert synsets == {
    "n00000010": ext_imagenet21k.Synset(
      ("crane", "wading bird"),
      ("n00000020",),
      ("n00000030",),
      'large long-necked wading bird; "an example"',
    ),
    "n00000020": ext_imagenet21k.Synset(("bird",), (), (), "a vertebrate"),
  }
  assert ext_imagenet21k.gloss_clause(synsets["n00000010"].gloss) == "large long-necked wading bird"


# -------------------------------------------------------------------------------- tasks


def test_tasks_are_registered():
  M, O = tasks.Metric, tasks.Output
  for name, group, output, metric in (
    ("imagenet21k_classification", "image_classification", O.TEXT, M.ACCURACY),
    ("imagenet21k_image_generation", "image_synthesis", O.IMAGE, M.IMAGE_PSNR),
    ("imagenet21k_text_denoising", "language_modelling", O.TEXT, M.EXACT_MATCH),
    ("imagenet21k_image_denoising", "image_synthesis", O.IMAGE, M.IMAGE_PSNR),
  ):
    task = tasks.get(name)
    assert (task.group, task.output, task.metric, task.builder, task.size) == (
      group,
      output,
      metric,
      NAME,
      None,
    )
    assert dict(task.splits) == {"train": "train", "validation": "validation"}
  assert ext_imagenet21k.TASK_NAMES == tuple(
    n for n in tasks.all_tasks() if n.startswith("imagenet21k_")
  )


def test_classification_and_generation(data_dir):
  found = records(data_dir)
  tench = found["n01440764/n01440764_20.JPEG"]
  raw = run("imagenet21k_classification", tench)
  assert raw["prompt"] == "What is this in the image ?" and raw["target_text"] == "tench"
  assert raw["image"].shape == (H, W, 3) and raw["image"].dtype == np.uint8
  assert raw["meta"] == {
    "example_id": "n01440764/n01440764_20.JPEG",
    "image_hw": (H, W),
    "label": "tench",
    "wnid": "n01440764",
  }
  crane = run("imagenet21k_classification", found["n02012849/n02012849_7.JPEG"])
  assert crane["target_text"] == "crane (bird)"
  gen = run("imagenet21k_image_generation", tench)
  assert gen["prompt"] == 'What is the complete image? Text: " tench " .'
  assert gen["image"] is None and gen["target_text"] == ""
  np.testing.assert_allclose(gen["target_image"], tench["image"] / 255.0, atol=1e-6)
  assert gen["meta"]["label"] == gen["meta"]["caption"] == "tench"
  val = records(data_dir, "validation")["n02012849/n02012849_2.JPEG"]
  assert run("imagenet21k_image_generation", val)["prompt"] == (
    'What is the complete image? Text: " crane (bird) " .'
  )


def test_pretraining_tasks(data_dir):
  knothole = records(data_dir)["n15102894/n15102894_5.JPEG"]
  images = 0
  for seed in range(20):
    raw = run("imagenet21k_text_denoising", knothole, seed)
    assert raw["meta"]["original"] == "An image of knothole"
    assert text.fill_spans(raw["prompt"], raw["target_text"]) == "An image of knothole"
    assert raw["meta"]["example_id"] == "n15102894/n15102894_5.JPEG"
    images += raw["image"] is not None
  assert 14 <= images < 20  # the image is dropped 10% of the time
  prompts = set()
  for seed in range(30):
    raw = run("imagenet21k_image_denoising", knothole, seed)
    assert raw["image_input_mask_rate"] == 0.75
    np.testing.assert_allclose(raw["target_image"], knothole["image"] / 255.0, atol=1e-6)
    prompts.add(raw["prompt"])
  assert prompts == {
    'What is the complete image? Text: " knothole " .',
    "What is the complete image?",
  }


def test_bad_records_are_skipped(data_dir):
  tench = records(data_dir)["n01440764/n01440764_20.JPEG"]
  for name in ext_imagenet21k.TASK_NAMES:
    for bad, reason in (
      (dict(tench, label=np.int64(10_450)), "label 10450 outside the 10450 classes"),
      (dict(tench, label=np.int64(BENTHOS)), "wnid n01440764 is not label 0's (n00005787)"),
      (dict(tench, image=tench["image"][..., :1]), "image is not a non-empty uint8 [H, W, 3]"),
    ):
      with pytest.raises(tasks.SkipExample, match=re.escape(reason)):
        run(name, bad)


def test_data_show_draws_the_tasks_as_the_model_sees_them(data_dir, tmp_path):
  """`python -m unified_io.data.show`'s library call on the prepared tiny release."""
  config = tiny_config.get_config()
  for name in ['imagenet21k_classification']:
    out = tmp_path / f"{name}.png"
    show.show(config, name, 2, str(out), data_dir=data_dir)
    assert out.stat().st_size > 0
