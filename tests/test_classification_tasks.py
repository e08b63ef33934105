"""Classification and class-name-to-image tasks on the TFDS classification builders: name
tables against the builders' ClassLabels, prompts and targets on mock records (no download),
skips for bad records."""

import copy

import numpy as np
import pytest
import tensorflow_datasets as tfds

from unified_io.data import prompts
from unified_io.data.tasks import classification
from unified_io.data.tasks import registry as tasks

CTX = tasks.TaskContext()
CLASSIFY_PROMPT = "What is this in the image ?"
GENERATE_PROMPT = 'What is the complete image? Text: " {} " .'

# (builder, task-name prefix, label, its readable name written by hand, id feature)
CASES = (
  ("imagenet2012", "imagenet2012", 0, "tench", "file_name"),
  ("imagenet2012", "imagenet2012", 134, "crane (bird)", "file_name"),
  ("places365_small", "places365", 8, "apartment building outdoor", "filename"),
  ("sun397/tfds", "sun397", 27, "bakery shop", "file_name"),
  ("i_naturalist2017", "inaturalist2017", 0, "Nicrophorus tomentosus", "id"),
  ("caltech_birds2011", "caltech_birds2011", 0, "black footed albatross", "image/filename"),
)
BUILDERS = (
  "imagenet2012",
  "places365_small",
  "sun397/tfds",
  "i_naturalist2017",
  "caltech_birds2011",
)
NUM_CLASSES = {
  "imagenet2012": 1000,
  "places365_small": 365,
  "sun397/tfds": 397,
  "i_naturalist2017": 5089,
  "caltech_birds2011": 200,
}


@pytest.fixture(scope="module")
def records():
  """One mock training record per builder (random data from the builders' own features)."""
  out = {}
  with tfds.testing.mock_data(num_examples=1, policy=tfds.testing.MockPolicy.USE_CODE):
    for builder in BUILDERS:
      out[builder] = next(iter(tfds.as_numpy(tfds.load(builder, split="train"))))
  return out


@pytest.fixture(scope="module")
def tfds_names():
  """Each builder's ClassLabel names, from TFDS itself."""
  return {b: tuple(tfds.builder(b).info.features["label"].names) for b in BUILDERS}


def record(records, builder, label, record_id=b"some/file_0001.jpg", id_field=None):
  example = copy.deepcopy(records[builder])
  example["label"] = np.int64(label)
  if id_field:
    example[id_field] = record_id
  return example


def run(name, example, seed=0):
  return tasks.get(name).preprocess(example, np.random.default_rng(seed), CTX)


# ------------------------------------------------------------------------ registration


def test_tasks_are_registered_with_their_builders_and_splits():
  splits = {
    "imagenet2012": {"train": "train", "validation": "validation"},
    "places365_small": {"train": "train", "validation": "validation"},
    "sun397/tfds": {"train": "train", "validation": "validation", "test": "test"},
    "i_naturalist2017": {"train": "train", "validation": "validation"},
    "caltech_birds2011": {"train": "train", "validation": "test", "test": "test"},
  }
  prefixes = {b: p for b, p, *_ in CASES}
  assert len(classification.TASK_NAMES) == 10
  for builder, prefix in prefixes.items():
    task = tasks.get(f"{prefix}_classification")
    assert (task.group, task.output, task.metric) == (
      "image_classification",
      tasks.Output.CHOICE,
      tasks.Metric.ACCURACY,
    )
    assert task.prompts == prompts.PROMPTS["image_classification"]
    gen = tasks.get(f"{prefix}_image_generation")
    assert (gen.group, gen.output, gen.metric) == (
      "image_synthesis",
      tasks.Output.IMAGE,
      tasks.Metric.IMAGE_PSNR,
    )
    assert gen.prompts == prompts.PROMPTS["image_generation"]
    for t in (task, gen):
      assert t.builder == builder and dict(t.splits) == splits[builder]
      assert t.size is None  # the dataset catalogue sets sizes
  assert set(classification.CLASS_READERS) == set(classification.READABLE_NAMES) == set(BUILDERS)


def test_task_splits_exist_in_the_builders():
  for name in classification.TASK_NAMES:
    task = tasks.get(name)
    tfds_splits = {"train", "validation", "test"}
    if task.builder == "caltech_birds2011":
      tfds_splits = {"train", "test"}
    assert set(task.splits.values()) <= tfds_splits, name


# ------------------------------------------------------------------------ name tables


def test_name_tables_match_the_tfds_class_labels(tfds_names):
  for builder, n in NUM_CLASSES.items():
    names = classification.READABLE_NAMES[builder]
    assert len(names) == len(tfds_names[builder]) == n, builder
    assert all(name and name == name.strip() for name in names), builder
    assert len(set(names)) == n, f"{builder} has duplicate readable names"


def test_imagenet_table_order_and_names(tfds_names):
  rows = classification.imagenet_table()
  assert tuple(wnid for wnid, _ in rows) == tfds_names["imagenet2012"]
  names = classification.READABLE_NAMES["imagenet2012"]
  assert rows[0] == ("n01440764", "tench")
  assert rows[999] == ("n15075141", "toilet tissue")
  assert names[1] == "goldfish" and names[2] == "great white shark"
  assert names[207] == "golden retriever" and names[281] == "tabby"
  # The three first lemmas WordNet gives two synsets are told apart.
  assert (names[134], names[517]) == ("crane (bird)", "crane (machine)")
  assert (names[264], names[474]) == ("Cardigan Welsh corgi", "cardigan")
  assert (names[638], names[639]) == ("maillot", "tank suit")
  assert len({n.lower() for n in names}) == 1000


def test_places365_names_by_rule(tfds_names):
  names = classification.READABLE_NAMES["places365_small"]
  assert tfds_names["places365_small"][8] == "apartment_building/outdoor"
  assert names[0] == "airfield" and names[1] == "airplane cabin"
  assert names[8] == "apartment building outdoor" and names[31] == "bakery shop"
  assert names[364] == "zen garden"
  assert names == tuple(classification.places365_name(n) for n in tfds_names["places365_small"])


def test_sun397_names_by_rule(tfds_names):
  names = classification.READABLE_NAMES["sun397/tfds"]
  assert tfds_names["sun397/tfds"][27] == "/b/bakery/shop"
  assert names[0] == "abbey" and names[8] == "apartment building outdoor"
  assert names[27] == "bakery shop" and names[396] == "youth hostel"
  assert names == tuple(classification.sun397_name(n) for n in tfds_names["sun397/tfds"])
  with pytest.raises(ValueError, match="not '/<letter>/<name>"):
    classification.sun397_name("abbey")


def test_inaturalist_names_are_the_scientific_names(tfds_names):
  names = classification.READABLE_NAMES["i_naturalist2017"]
  assert names == tfds_names["i_naturalist2017"]
  assert names[0] == "Nicrophorus tomentosus" and names[5088] == "Letharia vulpina"
  assert names[662] == "Anas superciliosa × platyrhynchos" and names[4631] == "Pelophylax"


def test_caltech_birds_table_matches_the_builder(tfds_names):
  # TFDS's ClassLabel names carry no species: only '0'..'199'.
  assert tfds_names["caltech_birds2011"] == tuple(str(i) for i in range(200))
  folders = classification.caltech_birds_table()
  assert folders[0] == "001.Black_footed_Albatross" and folders[199] == "200.Common_Yellowthroat"
  names = classification.READABLE_NAMES["caltech_birds2011"]
  assert names[21] == "chuck will widow" and names[140] == "artic tern"  # the release's spelling
  assert names[186] == "american three toed woodpecker"
  # The builder parses label and label_name from the image path; they agree with the table.
  from tensorflow_datasets.image_classification import caltech_birds

  for i, folder in enumerate(folders):
    path = f"CUB_200_2011/images/{folder}/{folder.split('.')[1]}_0001_1.jpg"
    groups = caltech_birds._NAME_RE.match(path).groups()
    assert int(groups[-3]) - 1 == i
    assert groups[-2].lower().replace("_", " ") == names[i]


# ---------------------------------------------------------------- tasks on mock records


@pytest.mark.parametrize("builder, prefix, label, name, id_field", CASES)
def test_classification_prompt_and_target(records, builder, prefix, label, name, id_field):
  example = record(records, builder, label, b"abc/xyz_0001.jpg", id_field)
  raw = run(f"{prefix}_classification", example)
  assert raw["prompt"] == CLASSIFY_PROMPT
  assert raw["target_text"] == name and raw["target_image"] is None
  np.testing.assert_array_equal(raw["image"], example["image"])
  meta = raw["meta"]
  assert meta["label"] == name and meta["example_id"] == "abc/xyz_0001.jpg"
  assert meta["class_names"] == classification.READABLE_NAMES[builder]
  assert meta["class_names"][label] == name
  assert meta["image_hw"] == example["image"].shape[:2]


@pytest.mark.parametrize("builder, prefix, label, name, id_field", CASES)
def test_generation_prompt_and_target(records, builder, prefix, label, name, id_field):
  example = record(records, builder, label)
  raw = run(f"{prefix}_image_generation", example)
  assert raw["prompt"] == GENERATE_PROMPT.format(name)
  assert raw["image"] is None and raw["target_text"] == ""
  target = raw["target_image"]
  assert target.dtype == np.float32 and target.shape == example["image"].shape
  np.testing.assert_allclose(target, example["image"] / np.float32(255.0), atol=1e-6)
  assert raw["meta"]["caption"] == name and raw["meta"]["label"] == name


def test_paraphrased_prompts_are_the_prompt_keys_templates(records):
  example = record(records, "imagenet2012", 0)
  ctx = tasks.TaskContext(paraphrase=True)
  task = tasks.get("imagenet2012_image_generation")
  seen = {task.preprocess(example, np.random.default_rng(s), ctx)["prompt"] for s in range(20)}
  assert seen <= {t.format("tench") for t in prompts.PROMPTS["image_generation"]}
  assert len(seen) > 1


@pytest.mark.parametrize("builder, prefix, label, name, id_field", CASES)
def test_class_readers(records, builder, prefix, label, name, id_field):
  example = record(records, builder, label, b"rec-7", id_field)
  image, read_name, record_id = classification.CLASS_READERS[builder](example)
  assert image.dtype == np.uint8 and image.shape == example["image"].shape
  assert (read_name, record_id) == (name, "rec-7")


@pytest.mark.parametrize("builder", BUILDERS)
def test_bad_records_are_skipped(records, builder):
  prefix = {b: p for b, p, *_ in CASES}[builder]
  n = NUM_CLASSES[builder]
  for name in (f"{prefix}_classification", f"{prefix}_image_generation"):
    with pytest.raises(tasks.SkipExample, match="label is -1"):
      run(name, record(records, builder, -1))
    with pytest.raises(tasks.SkipExample, match=f"label {n} outside the {n} classes"):
      run(name, record(records, builder, n))
    with pytest.raises(tasks.SkipExample, match="label -2 outside"):
      run(name, record(records, builder, -2))
    example = record(records, builder, 0)
    example["label"] = np.array([1, 2])
    with pytest.raises(tasks.SkipExample, match="not a single class"):
      run(name, example)
    grey = record(records, builder, 0)
    grey["image"] = grey["image"][..., :1]
    with pytest.raises(tasks.SkipExample, match="uint8"):
      run(name, grey)
    floats = record(records, builder, 0)
    floats["image"] = floats["image"].astype(np.float32)
    with pytest.raises(tasks.SkipExample, match="uint8"):
      classification.CLASS_READERS[builder](floats)
