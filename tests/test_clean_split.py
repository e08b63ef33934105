"""Clean multi-task splits: image keys, the perceptual hash, the exclusion list and its use.

Overlaps are planted by hand, so every expected count below is known from the plant:
- the built-in dataset built with train scene 5 also in its validation split (same id);
- mock TFDS copies of coco/2017, uio_vqa_v2, sun397/tfds and places365_small with COCO id 3
  in coco/2017 train and uio_vqa_v2 validation, COCO id 10 the other way round (asked by
  two VQA train questions), a sun397 validation photo re-encoded and resized in
  places365 train under another file name, and a near miss: another sun397 validation
  photo with a shadow over one corner, within the hash's bits but not its thumbnail.
"""

import collections
import io
import json
import os

import numpy as np
import PIL.Image
import pytest
import skimage
import tensorflow_datasets as tfds
from tensorflow_datasets.testing import mocking

import unified_io.data.tasks  # noqa: F401  registers every task and builder
from tests import specs
from unified_io.data import builtin_dataset
from unified_io.data import clean_split
from unified_io.data import exclusions
from unified_io.data import image_keys
from unified_io.data import pipeline
from unified_io.data.tasks import registry as tasks_lib
from tests import mock_tfds

SCENE_TASKS = 17  # builtin_multitask's tasks on uio_builtin_scenes/scenes
PHOTOS = os.path.join(os.path.dirname(skimage.__file__), "data")  # sample photos
CTX = tasks_lib.TaskContext()


def photo(name, size=300):
  """A square centre crop of a scikit-image sample photo, `size` pixels a side."""
  image = PIL.Image.open(os.path.join(PHOTOS, name)).convert("RGB")
  w, h = image.size
  s = min(w, h)
  box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
  return np.asarray(image.crop(box).resize((size, size), PIL.Image.BICUBIC))


def jpeg_copy(image, size):
  """`image` resized to size x size and re-encoded as JPEG (quality 75)."""
  resized = PIL.Image.fromarray(image).resize((size, size), PIL.Image.BICUBIC)
  buffer = io.BytesIO()
  resized.save(buffer, "JPEG", quality=75)
  return np.asarray(PIL.Image.open(buffer).convert("RGB"))


def shadowed(image):
  """`image` with its lower-left corner darkened to 40%: another picture of the scene."""
  out = image.copy()
  out[200:260, 30:90] = (out[200:260, 30:90] * 0.4).astype(np.uint8)
  return out


# ---------------------------------------------------------------------- hash, by hand


def test_dhash_bits_by_hand():
  # 8 rows x 9 columns, one pixel per cell. Row 0 rises by 10 per column: 8 ones. Row 1
  # falls: 8 zeros. Row 2 rises by 1 (not above the 1-level margin): zeros. Row 3 rises
  # only between columns 4 and 5: one bit, the fifth. Rows 4-7 are flat: zeros.
  grey = np.zeros((8, 9), np.float64)
  grey[0] = np.arange(9) * 10
  grey[1] = 80 - np.arange(9) * 10
  grey[2] = 100 + np.arange(9)
  grey[3] = [50] * 5 + [90] * 4
  image = np.repeat(grey.astype(np.uint8)[..., None], 3, axis=-1)
  expected = (0xFF << 56) | (0b00001000 << 32)
  assert image_keys.fingerprint(image).hash == expected
  # Twice the size (each cell 2x2 pixels, one 3-pixel-wide cell column): the same bits.
  big = np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)
  assert image_keys.fingerprint(big).hash == expected
  assert image_keys.fingerprint(big).thumb.shape == (16, 16, 3)
  # A grid spanning 7 grey levels is too flat to hash; one pixel bright is still flat
  # once averaged into its cell.
  assert image_keys.fingerprint(np.full((40, 45, 3), 120, np.uint8)) is None
  ramp = np.tile((np.arange(45) * 7 // 44 + 100).astype(np.uint8), (40, 1))
  assert image_keys.fingerprint(ramp) is None
  assert image_keys.fingerprint(None) is None


def test_cell_means_by_hand():
  a = np.arange(20, dtype=np.float64).reshape(4, 5)
  # Rows split [0, 2), [2, 4); columns [0, 2), [2, 5): (2 + 3 + 4 + 7 + 8 + 9) / 6 = 5.5.
  assert image_keys.cell_means(a, 2, 2).tolist() == [[3.0, 5.5], [13.0, 15.5]]
  # Smaller than the grid: pixels repeated, so a 1x1 image gives its value everywhere.
  assert image_keys.cell_means(np.full((1, 1), 9.0), 8, 9).tolist() == [[9.0] * 9] * 8


def test_hash_index_distance_and_thumbnail():
  base = 0x0123456789ABCDEF
  four = base ^ (1 << 60) ^ (1 << 45) ^ (1 << 30) ^ (1 << 2)  # one bit in each of 4 bands
  five = four ^ (1 << 15)  # and the fifth band: 5 bits
  thumb = np.full((16, 16, 3), 100, np.uint8)
  index = image_keys.HashIndex([base, 0xFFFF0000FFFF0000], np.stack([thumb, thumb]))
  queries = [base, four, five, base, base]
  thumbs = np.stack([thumb, thumb, thumb, thumb + 5, thumb + 6])  # RMS 0, 0, 0, 5, 6
  assert index.match(queries, thumbs).tolist() == [0, 0, -1, 0, -1]
  # A crowded band splits the batch; the answer stays the same.
  index.max_pairs = 1
  assert index.match(queries, thumbs).tolist() == [0, 0, -1, 0, -1]
  assert image_keys.HashIndex([], np.zeros((0, 16, 16, 3))).match([base], thumb).tolist() == [-1]


def test_copies_match_and_near_misses_do_not():
  cat = photo("chelsea.png")
  copy = image_keys.fingerprint(jpeg_copy(cat, 256))
  original = image_keys.fingerprint(cat)
  index = image_keys.HashIndex([original.hash], original.thumb[None])
  assert index.match([copy.hash], copy.thumb[None]).tolist() == [0]
  astronaut = photo("astronaut.png")
  near = image_keys.fingerprint(jpeg_copy(shadowed(astronaut), 256))
  far = image_keys.fingerprint(astronaut)
  # The near miss passes the hash (the shadow moves few gradients) and fails the thumbnail.
  assert bin(near.hash ^ far.hash).count("1") <= image_keys.MAX_HASH_DISTANCE
  assert image_keys.thumb_rms(near.thumb, far.thumb) > 2 * image_keys.MAX_THUMB_RMS
  index = image_keys.HashIndex([far.hash], far.thumb[None])
  assert index.match([near.hash], near.thumb[None]).tolist() == [-1]


# ---------------------------------------------------------------------- the key table


def test_shared_ids_by_source():
  ids = image_keys.shared_ids
  assert ids("coco/2017", {"image/id": np.int64(391895)}) == ("coco:391895",)
  assert ids("ref_coco/refcoco_unc", {"image/id": np.int64(391895)}) == ("coco:391895",)
  assert ids("uio_vqa_v2", {"image_id": np.int64(391895)}) == ("coco:391895",)
  assert ids("uio_visual_genome", {"coco_id": np.int64(-1)}) == ()  # not a COCO image
  assert ids("uio_visual_genome", {"coco_id": np.int64(7)}) == ("coco:7",)
  assert ids("uio_snli_ve", {"flickr30k_id": b"1000092795"}) == ("flickr30k:1000092795",)
  assert ids("uio_flickr30k", {"id": b"1000092795"}) == ("flickr30k:1000092795",)
  name = {"file_name": b"n01440764/n01440764_10026.JPEG"}
  assert ids("uio_imagenet21k", name) == ("imagenet:n01440764_10026",)
  assert ids("imagenet2012", {"file_name": b"n01440764_10026.JPEG"}) == (
    "imagenet:n01440764_10026",
  )
  assert ids("places365_small", {"filename": b"a.jpg"}) == ()
  assert image_keys.local_id("uio_vqa_v2", {"image_id": np.int64(9)}) == "image_id=9"
  assert image_keys.local_id("nyu_depth_v2", {"image": None}) is None
  with pytest.raises(KeyError, match=r"coco/2017: a record has no field 'image/id'"):
    ids("coco/2017", {"image": None})


def test_table_keys_every_image_source_by_its_own_fields():
  """Every image source of a registered task has a table entry (a new one must be added),
  and every field the entry names is a top-level feature of the builder."""
  checked = 0
  for builder in sorted({t.builder for t in tasks_lib.all_tasks().values()}):
    features = tfds.builder(builder, data_dir="/nonexistent").info.features
    if "image" not in features:  # text-only (the built-in text config, GLUE, C4...)
      continue
    keys = image_keys.source_keys(builder)
    assert keys is not image_keys.UNKNOWN, builder
    for field in [k.field for k in keys.shared] + ([keys.image_id] if keys.image_id else []):
      assert field in features, f"{builder} has no {field}: {sorted(features)}"
    checked += 1
  assert checked >= 38  # 38 image builders when written (COCO x3, RefCOCO x3, VizWiz x3, ...)


# --------------------------------------------------------------- the built-in dataset


@pytest.fixture(scope="module")
def builtin_dir(tmp_path_factory):
  """The built-in scenes, 12 per split, with validation's first scene train's scene 5."""
  path = str(tmp_path_factory.mktemp("builtin"))
  real = builtin_dataset.split_seeds

  def planted(config, split, n):
    seeds = list(real(config, split, n))
    if config == "scenes" and split == "validation":
      seeds[0] = builtin_dataset.example_seed("scenes", "train", 5)
    return seeds

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(builtin_dataset, "split_seeds", planted)
    builtin_dataset.build(path, "scenes", num_examples=12)
    builtin_dataset.build(path, "text", num_examples=4)
  return path


def table_rows(text):
  """{task: (images, removed, after, records removed)} from the printed table."""
  rows = {}
  for line in text.splitlines():
    parts = line.split()
    if len(parts) == 7 and parts[5].endswith("%"):
      rows[parts[0]] = tuple(int(p.replace(",", "")) for p in parts[2:5]) + (int(parts[6]),)
  return rows


def test_builtin_mixture_table_and_list(builtin_dir, tmp_path, capsys):
  out = tmp_path / "exclude.json"
  argv = ["--mixture=builtin_multitask", f"--data_dir={builtin_dir}", f"--out={out}"]
  assert clean_split.main(argv) == 0
  printed = capsys.readouterr().out
  rows = table_rows(printed)
  assert len(rows) == SCENE_TASKS
  assert set(rows.values()) == {(12, 1, 11, 1)}  # scene 5, in validation too
  assert "uio_builtin_scenes/scenes[train]: reading 12 records" in printed  # progress
  assert "Text only (no images): builtin_entailment" in printed
  assert "matched by shared id: 1, by hash: 0" in printed
  data = json.loads(out.read_text())
  train = data["train_splits"]["uio_builtin_scenes/scenes[train]"]
  assert train["excluded"] == ["id=scene-5"]
  assert train["removed_by_split"] == {"uio_builtin_scenes/scenes[validation]": 1}
  assert train["records"] == 12 and train["named_by"] == "id"


@pytest.fixture(scope="module")
def spec():
  return specs.tiny_spec(16, 16)


class CountingSource:
  """A record source that counts which records were read."""

  def __init__(self, base):
    self.base, self.name, self.reads = base, base.name, collections.Counter()

  def __len__(self):
    return len(self.base)

  def __getitem__(self, index):
    self.reads[index] += 1
    return self.base[index]


def test_pipeline_skips_and_counts_exactly_the_listed_images(builtin_dir, spec):
  cleaning = clean_split.make(["builtin_captioning"], builtin_dir, out=lambda line: None)
  path = os.path.join(builtin_dir, "exclude.json")
  clean_split.write(cleaning, path, "test")
  stream = pipeline.MixtureStream(
    ["builtin_captioning"], None, spec, seed=0, data_dir=builtin_dir, round_robin=True
  )
  original = stream.tasks[0]
  lines = exclusions.exclude(stream, exclusions.load(path))
  assert lines == [f"builtin_captioning: skips 1 training images listed in {path}"]
  source = stream.sources[0] = CountingSource(stream.sources[0])
  planted = [i for i in range(12) if source.base[i]["id"] == b"scene-5"]
  assert len(planted) == 1
  rng = np.random.default_rng(0)
  listed = pipeline.prepare(original, source.base[planted[0]], rng, spec, stream.ctx)[0]
  epochs = 3
  for element in range(12 * epochs):  # one task in turn: element e is its draw e
    features = stream.element(element)
    assert not np.array_equal(features["image_inputs"], listed["image_inputs"])
  # Every epoch reads every record once, so scene 5 at least once per epoch, and each
  # time it is skipped, counted under REASON and replaced by another record.
  assert source.reads[planted[0]] >= epochs
  expected = {("builtin_captioning", exclusions.REASON): source.reads[planted[0]]}
  assert dict(stream.counters.skipped) == expected
  assert f"({exclusions.REASON})" in stream.counters.summary()


def test_config_data_exclude_images_applies_the_list_to_training(
  builtin_dir, spec, tmp_path, capsys
):
  from configs import tiny
  from unified_io.data import from_config

  cleaning = clean_split.make(["builtin_captioning"], builtin_dir, out=lambda line: None)
  path = str(tmp_path / "exclude.json")
  clean_split.write(cleaning, path, "test")
  config = tiny.get_config()
  config.data.update(dict(data_dir=builtin_dir, tasks="builtin_captioning", exclude_images=path))
  batches = from_config.train_batches(config, spec, 0, 1)
  try:
    assert batches.stream.tasks[0].name == "builtin_captioning"
    out = capsys.readouterr().out
    assert f"builtin_captioning: skips 1 training images listed in {path}" in out
  finally:
    batches.close()


def test_exclude_refuses_what_it_cannot_apply(builtin_dir, spec, tmp_path):
  cleaning = clean_split.make(["builtin_depth"], builtin_dir, out=lambda line: None)
  path = str(tmp_path / "exclude.json")
  clean_split.write(cleaning, path, "test")
  listed = exclusions.load(path)
  validation = pipeline.MixtureStream(
    ["builtin_depth"],
    None,
    spec,
    seed=0,
    data_dir=builtin_dir,
    split="validation",
    round_robin=True,
  )
  with pytest.raises(ValueError, match=r"applies to training splits; task builtin_depth reads"):
    exclusions.exclude(validation, listed)
  data = json.loads(open(path).read())
  data["train_splits"]["uio_builtin_scenes/scenes[train]"]["records"] = 99
  with open(path, "w") as f:
    json.dump(data, f)
  train = pipeline.MixtureStream(
    ["builtin_depth"], None, spec, seed=0, data_dir=builtin_dir, round_robin=True
  )
  with pytest.raises(
    ValueError, match=r"made from 99 records of uio_builtin_scenes/scenes\[train\]"
  ):
    exclusions.exclude(train, exclusions.load(path))
  with open(path, "w") as f:
    json.dump({"format": "something else"}, f)
  with pytest.raises(ValueError, match=f"exclusion list {path}: format 'something else'"):
    exclusions.load(path)
  with pytest.raises(FileNotFoundError, match="clean_split makes it"):
    exclusions.load(str(tmp_path / "absent.json"))


def test_a_split_that_is_train_and_evaluation_is_refused():
  for name, splits in (
    ("test_clean_trains_on_validation", {"train": "validation"}),
    ("test_clean_evaluates_on_train", {"train": "unused", "validation": "train"}),
  ):
    tasks_lib.register(
      tasks_lib.Task(
        name=name,
        group="image_captioning",
        builder="uio_builtin_scenes/scenes",
        preprocess=lambda example, rng, ctx: {},
        prompts=("p",),
        splits=splits,
      )
    )
  with pytest.raises(ValueError, match=r"scenes\[train\] is the training split of builtin_depth"):
    clean_split.plan(["builtin_depth", "test_clean_evaluates_on_train"])
  with pytest.raises(
    ValueError, match=r"scenes\[validation\] is the training split of test_clean_t"
  ):
    clean_split.plan(["builtin_depth", "test_clean_trains_on_validation"])


# ------------------------------------------------------------------ mock TFDS sources


def prepare(name, data_dir, splits):
  """Writes mock records of TFDS dataset `name`: for each split, one record per dict of
  `splits[split]`, a random record of the builder's features with those fields set."""
  builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  features = builder.info.features
  fix = mock_tfds.consistent(features)

  def generate(split_index, overrides):
    fakes = mocking.RandomFakeGenerator(features, len(overrides), seed=split_index)
    for i, (fake, override) in enumerate(zip(fakes, overrides)):
      yield f"{split_index}-{i}", dict(fix(fake), **override)

  builder._split_generators = lambda dl_manager: {
    split: generate(i, overrides) for i, (split, overrides) in enumerate(splits.items())
  }
  builder.download_and_prepare()


def noise(seed, size=64):
  return np.random.default_rng(seed).integers(0, 256, (size, size, 3), np.uint8)


@pytest.fixture(scope="module")
def mock_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("mock"))
  coco = lambda ids, seed: [{"image/id": i, "image": noise(seed + k)} for k, i in enumerate(ids)]
  prepare("coco/2017", path, {"train": coco([1, 2, 3, 4], 0), "validation": coco([10, 11, 12], 10)})
  vqa = lambda ids, seed: [{"image_id": i, "image": noise(seed + k)} for k, i in enumerate(ids)]
  prepare("uio_vqa_v2", path, {"train": vqa([20, 10, 21, 10], 20), "validation": vqa([3, 30], 30)})
  cat, astronaut = photo("chelsea.png"), photo("astronaut.png")
  sun = lambda images, tag: [
    {"file_name": f"/{tag}/{k}.jpg", "image": image} for k, image in enumerate(images)
  ]
  prepare(
    "sun397/tfds",
    path,
    {
      "train": sun([photo("coffee.png"), photo("rocket.jpg")], "train"),
      "validation": sun([cat, astronaut], "validation"),
      "test": sun([photo("camera.png")], "test"),
    },
  )
  places = [
    jpeg_copy(cat, 256),  # the planted copy: the sun397 validation cat, re-encoded
    jpeg_copy(shadowed(astronaut), 256),  # the near miss
    photo("motorcycle_left.png", 256),
    photo("coins.png", 256),
  ]
  place = lambda images, tag: [
    {"filename": f"{tag}_{k}.jpg", "image": image} for k, image in enumerate(images)
  ]
  prepare(
    "places365_small",
    path,
    {"train": place(places, "train"), "validation": place([photo("moon.png", 256)], "val")},
  )
  return path


MOCK_TASKS = ["coco_detection", "vqa_v2", "sun397_classification", "places365_classification"]


def test_mock_sources_ids_and_hash(mock_dir, tmp_path):
  lines = []
  cleaning = clean_split.make(MOCK_TASKS, mock_dir, out=lines.append)
  rows = {r["task"]: r for r in cleaning.rows()}
  counts = {n: (r["images"], r["removed"], r["records_removed"]) for n, r in rows.items()}
  assert counts == {
    "coco_detection": (4, 1, 1),  # COCO id 3, in VQA validation
    "vqa_v2": (3, 1, 2),  # COCO id 10 (asked twice), in COCO validation
    "sun397_classification": (2, 0, 0),
    "places365_classification": (4, 1, 1),  # the cat copy; not the near miss
  }
  printed = table_rows(clean_split.table(cleaning, "title"))
  assert printed == {
    "coco_detection": (4, 1, 3, 1),
    "vqa_v2": (3, 1, 2, 2),
    "sun397_classification": (2, 0, 2, 0),
    "places365_classification": (4, 1, 3, 1),
  }
  path = str(tmp_path / "exclude.json")
  clean_split.write(cleaning, path, "test")
  data = json.loads(open(path).read())["train_splits"]
  assert data["coco/2017[train]"]["excluded"] == ["image/id=3"]
  assert data["coco/2017[train]"]["removed_by_split"] == {"uio_vqa_v2[validation]": 1}
  assert data["uio_vqa_v2[train]"]["excluded"] == ["image_id=10"]
  assert data["places365_small[train]"]["excluded"] == ["filename=train_0.jpg"]
  assert data["places365_small[train]"]["removed_by"] == {"id": 0, "hash": 1}
  assert data["places365_small[train]"]["removed_by_split"] == {"sun397/tfds[validation]": 1}
  assert any("places365_small[train]: reading 4 records" in line for line in lines)
  # Applied, exactly the listed records skip, with the pipeline's skip reason.
  listed = exclusions.load(path)
  for task_name, split, field, skipped in (
    ("places365_classification", "places365_small[train]", "filename", [b"train_0.jpg"]),
    ("vqa_v2", "uio_vqa_v2[train]", "image_id", [10, 10]),
  ):
    task = tasks_lib.get(task_name)
    filtered = exclusions.skipping(task, listed.splits[split])
    source = pipeline.source(task.builder, "train", mock_dir)
    found = []
    for i in range(len(source)):  # ArrayRecord keeps TFDS's shuffled order, so by field
      try:
        filtered.preprocess(source[i], np.random.default_rng(i), CTX)
      except tasks_lib.SkipExample as e:
        if str(e) == exclusions.REASON:
          found.append(source[i][field])
    assert found == skipped, task_name


def test_hash_all_and_hash_named_sources(mock_dir, tmp_path):
  # With --hash_all the COCO and VQA train images (noise, unlike any evaluation image) are
  # hashed too: nothing more is found.
  cleaning = clean_split.make(MOCK_TASKS, mock_dir, hash_all=True, out=lambda line: None)
  removed = {r["task"]: r["removed"] for r in cleaning.rows()}
  assert removed == {
    "coco_detection": 1,
    "vqa_v2": 1,
    "sun397_classification": 0,
    "places365_classification": 1,
  }
  # A source without an image-id field is named by its hash, which the list refuses to
  # apply where TFDS decodes with another library.
  cat = photo("chelsea.png")
  assert image_keys.identity("some_unknown_source", {"image": cat}) == (
    f"dhash:{image_keys.fingerprint(cat).hash:016x}"
  )
  path = str(tmp_path / "exclude.json")
  clean_split.write(cleaning, path, "test")
  data = json.loads(open(path).read())
  data["train_splits"]["places365_small[train]"]["named_by"] = "dhash"
  data["image_decoder"] = "another decoder 0.1"
  with open(path, "w") as f:
    json.dump(data, f)
  with pytest.raises(ValueError, match="as decoded by another decoder 0.1"):
    exclusions.load(path)


def test_fingerprint_is_cell_means_of_the_whole_image():
  """The one-pass fingerprint equals its definition by `cell_means` on a real photo."""
  cat = photo("chelsea.png", 317)  # 317 rows: bands of 19 and 20 rows
  grey = image_keys.cell_means(cat, 8, 9) @ np.array([0.299, 0.587, 0.114])
  bits = ((grey[:, 1:] - grey[:, :-1]) > 1.0).reshape(-1)
  print_ = image_keys.fingerprint(cat)
  assert print_.hash == int("".join("1" if b else "0" for b in bits), 2)
  thumb = np.round(image_keys.cell_means(cat, 16, 16)).astype(np.uint8)
  assert np.array_equal(print_.thumb, thumb)
