"""uio_snli_ve and uio_imsitu on tiny copies of their releases, and their three tasks.

The copies keep the release formats (SNLI-VE jsonl lines with SNLI's fields, SWiG's
{image_name: {verb, height, width, bb, frames}} JSONs and imsitu_space.json) and their
awkward cases: gold labels "-" or missing, a line without Flickr30K_ID, a blank line, a verb
imsitu_space.json lacks, an image with two frames, an unknown synset, roles no annotator
filled, ungrounded roles, roles a frame or bb leaves out, an image smaller than its JSON says.
"""

import json
import logging as py_logging

import numpy as np
import pytest
import tensorflow_datasets as tfds
from absl import logging
from PIL import Image

from configs import tiny as tiny_config
from unified_io.data import show
from unified_io.data import pipeline
from unified_io.data import prompts
from unified_io.data.builders import common
from unified_io.data.builders import snli_ve_imsitu as builders
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision_logic as vt
from unified_io.data.tasks import vl_snli_ve_imsitu  # noqa: F401  (registers the tasks)

CTX = tasks.TaskContext()
SNLI, IMSITU = builders.SNLI_VE, builders.IMSITU


def write_image(path, width, height, color=(200, 30, 60)):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.new("RGB", (width, height), color).save(path, format="JPEG")


def snli_line(pair, label, premise, hypothesis, image_id=True, **extra):
  flickr = pair.split(".jpg")[0]
  line = {
    "annotator_labels": [label] * 5 if label else [],
    "captionID": pair.split("r")[0],
    "pairID": pair,
    "sentence1": premise,
    "sentence1_binary_parse": "( x )",
    "sentence1_parse": "(ROOT x)",
    "sentence2": hypothesis,
    "sentence2_binary_parse": "( y )",
    "sentence2_parse": "(ROOT y)",
    **extra,
  }
  if label is not None:
    line["gold_label"] = label
  if image_id:
    line["Flickr30K_ID"] = flickr
  return json.dumps(line)


def write_snli_ve(root, files=("train", "dev", "test"), images=True):
  lines = {
    "train": [
      snli_line("1000.jpg#0r1e", "entailment", "Two dogs run on grass.", "Animals are outside."),
      snli_line("1000.jpg#0r1n", "-", "Two dogs run on grass.", "The dogs are brothers."),
      "",
      snli_line("2000.jpg#1r1c", "contradiction", "A man sings.", "Nobody sings.", False),
      snli_line("2000.jpg#1r2n", None, "A man sings.", "He is famous."),
      snli_line("2000.jpg#1r3n", "neutral", "A man sings.", "   "),
    ],
    "dev": [snli_line("3000.jpg#2r1n", "neutral", "A cat sleeps.", "The cat is old.")],
    "test": [snli_line("1000.jpg#3r1e", "entailment", "A dog jumps.", "An animal moves.")],
  }
  root.mkdir(parents=True, exist_ok=True)
  for split in files:
    (root / f"snli_ve_{split}.jsonl").write_text("\n".join(lines[split]) + "\n")
  if images:
    for name, (w, h) in {"1000": (40, 30), "2000": (32, 24), "3000": (24, 32)}.items():
      write_image(root / "flickr30k-images" / f"{name}.jpg", w, h)


MAN, DOG, LAND, FENCE = "n10287213", "n02084071", "n09334396", "n03327234"
SPACE = {
  "verbs": {
    "jumping": {
      "framenet": "Self_motion",
      "abstract": "an AGENT jumps from a SOURCE over an OBSTACLE to a DESTINATION at a PLACE",
      "def": "propel oneself off the ground",
      "order": ["agent", "source", "obstacle", "destination", "place"],
      "roles": {
        r: {"framenet": r, "def": f"the {r}"}
        for r in ("agent", "source", "obstacle", "destination", "place")
      },
    },
    "clinging": {
      "framenet": "Retaining",
      "abstract": "an AGENT clings to the CLUNGTO at a PLACE",
      "def": "stick to",
      "order": ["agent", "clungto", "place"],
      "roles": {r: {"framenet": r, "def": f"the {r}"} for r in ("agent", "clungto", "place")},
    },
  },
  "nouns": {
    MAN: {"gloss": ["man", "adult male"], "def": "an adult person who is male"},
    DOG: {"gloss": ["dog", "domestic dog"], "def": "a member of the genus Canis"},
    LAND: {"gloss": ["land", "dry land"], "def": "the solid part of the earth's surface"},
    FENCE: {"gloss": ["fence", "fencing"], "def": "a barrier"},
  },
}
NO = [-1, -1, -1, -1]
JUMP_ROLES = ("agent", "source", "obstacle", "destination", "place")
SWIG = {
  "train": {
    "jumping_1.jpg": {
      "verb": "jumping",
      "height": 30,
      "width": 40,
      "bb": {"agent": [4, 2, 20, 28], "source": NO, "obstacle": [10, 10, 30, 20]}
      | {"destination": NO, "place": NO},
      "frames": [
        {"agent": MAN, "source": LAND, "obstacle": FENCE, "destination": LAND, "place": ""},
        {"agent": DOG, "source": "", "obstacle": FENCE, "destination": LAND, "place": ""},
        {"agent": DOG, "source": LAND, "obstacle": "n99999999", "destination": "", "place": ""},
      ],
    },
    "jumping_2.jpg": {  # the file is half the JSON's size; frames and bb name the agent only
      "verb": "jumping",
      "height": 32,
      "width": 40,
      "bb": {"agent": [8, 4, 24, 30]},
      "frames": [{"agent": MAN}, {"agent": MAN}, {"agent": DOG}],
    },
    "clinging_1.jpg": {
      "verb": "clinging",
      "height": 24,
      "width": 24,
      "bb": {"agent": NO, "clungto": NO, "place": NO},
      "frames": [{"agent": "", "clungto": "", "place": ""}] * 3,
    },
    "flying_1.jpg": {"verb": "flying", "height": 8, "width": 8, "bb": {}, "frames": [{}] * 3},
    "jumping_3.jpg": {
      "verb": "jumping",
      "height": 8,
      "width": 8,
      "bb": {"agent": NO},
      "frames": [{"agent": MAN}] * 2,
    },
  },
  "dev": {
    "clinging_2.jpg": {
      "verb": "clinging",
      "height": 16,
      "width": 16,
      "bb": {"agent": [0, 0, 8, 8], "clungto": NO, "place": NO},
      "frames": [{"agent": MAN, "clungto": FENCE, "place": ""}] * 3,
    }
  },
  "test": {
    "jumping_4.jpg": {
      "verb": "jumping",
      "height": 16,
      "width": 16,
      "bb": dict.fromkeys(JUMP_ROLES, NO),
      "frames": [dict.fromkeys(JUMP_ROLES, DOG)] * 3,
    }
  },
}
IMAGE_SIZES = {
  "jumping_1.jpg": (40, 30),
  "jumping_2.jpg": (20, 16),
  "clinging_1.jpg": (24, 24),
  "clinging_2.jpg": (16, 16),
  "jumping_4.jpg": (16, 16),
}


def write_imsitu(root, skip=()):
  root.mkdir(parents=True, exist_ok=True)
  if "imsitu_space.json" not in skip:
    (root / "imsitu_space.json").write_text(json.dumps(SPACE))
  for split, entries in SWIG.items():
    (root / f"{split}.json").write_text(json.dumps(entries))
  for name, (w, h) in IMAGE_SIZES.items():
    write_image(root / "images_512" / name, w, h)


class Collect(py_logging.Handler):
  def __init__(self):
    super().__init__()
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  """(data_dir, log messages) with both datasets prepared as ArrayRecord."""
  tmp = tmp_path_factory.mktemp("tfds")
  manual = tmp / "downloads" / "manual"
  write_snli_ve(manual / SNLI)
  write_imsitu(manual / IMSITU)
  handler, verbosity = Collect(), logging.get_verbosity()
  logging.set_verbosity(logging.INFO)
  py_logging.getLogger("absl").addHandler(handler)
  try:
    for name in (SNLI, IMSITU):
      tfds.builder(name, data_dir=str(tmp)).download_and_prepare(file_format="array_record")
  finally:
    py_logging.getLogger("absl").removeHandler(handler)
    logging.set_verbosity(verbosity)
  return str(tmp), handler.messages


def records(data_dir, name, split):
  source = pipeline.source(name, split, data_dir)
  return {r["id"].decode(): r for r in (source[i] for i in range(len(source)))}


def run(name, example, seed=0):
  return tasks.get(name).preprocess(example, np.random.default_rng(seed), CTX)


# ------------------------------------------------------------------------------- SNLI-VE


def test_snli_ve_records(built):
  data_dir, log = built
  train = records(data_dir, SNLI, "train")
  assert sorted(train) == ["1000.jpg#0r1e", "2000.jpg#1r1c", "2000.jpg#1r3n"]
  first = train["1000.jpg#0r1e"]
  assert first["image"].shape == (30, 40, 3)
  assert first["flickr30k_id"] == b"1000" and first["caption_id"] == b"1000.jpg#0"
  assert first["premise"] == b"Two dogs run on grass."
  assert first["hypothesis"] == b"Animals are outside."
  assert builders.LABELS[first["label"]] == "entailment"
  assert list(first["annotator_labels"]) == [b"entailment"] * 5
  # No Flickr30K_ID: the image id comes from the pairID, as SNLI-VE's generator derives it.
  derived = train["2000.jpg#1r1c"]
  assert derived["flickr30k_id"] == b"2000" and derived["image"].shape == (24, 32, 3)
  assert builders.LABELS[derived["label"]] == "contradiction"
  assert list(records(data_dir, SNLI, "validation")) == ["3000.jpg#2r1n"]
  assert list(records(data_dir, SNLI, "test")) == ["1000.jpg#3r1e"]
  summary = [m for m in log if m.startswith(f"{SNLI}[train]")]
  assert summary == [f"{SNLI}[train]: pairs 3, skipped: no gold label 2"]


def test_snli_ve_task(built):
  train = records(built[0], SNLI, "train")
  raw = run("snli_ve", train["1000.jpg#0r1e"])
  assert (
    raw["prompt"]
    == 'Can image and text " Two dogs run on grass. " imply text " Animals are outside. " ?'
  )
  assert raw["target_text"] == "entailment"
  assert raw["meta"]["class_names"] == ("entailment", "neutral", "contradiction")
  assert raw["meta"]["image_hw"] == (30, 40) and raw["image"].shape == (30, 40, 3)
  assert raw["meta"]["example_id"] == "1000.jpg#0r1e"
  assert run("snli_ve", train["2000.jpg#1r1c"])["target_text"] == "contradiction"
  with pytest.raises(tasks.SkipExample, match="empty hypothesis"):
    run("snli_ve", train["2000.jpg#1r3n"])
  bad = dict(train["1000.jpg#0r1e"], label=np.int64(7))
  with pytest.raises(tasks.SkipExample, match="outside the 3 classes"):
    run("snli_ve", bad)


@pytest.mark.parametrize(
  "files, images, missing",
  [
    (("train", "dev"), True, "snli_ve_test.jsonl"),
    (("train", "dev", "test"), False, "flickr30k-images/ or flickr30k_images/"),
  ],
)
def test_snli_ve_missing_release_file(tmp_path, files, images, missing):
  write_snli_ve(tmp_path / "downloads" / "manual" / SNLI, files, images)
  with pytest.raises(common.MissingReleaseFile, match=missing):
    tfds.builder(SNLI, data_dir=str(tmp_path)).download_and_prepare(file_format="array_record")


# -------------------------------------------------------------------------- imSitu / SWiG


def roles_of(record):
  """{role: (box, [nouns], [noun ids])}, the frames' fillers in frame order."""
  frames = record["frames"]
  assert list(frames["frame"]) == sorted(frames["frame"])  # frame by frame
  out = {}
  for r, box in zip(record["roles"]["role"], record["roles"]["box"]):
    mine = [i for i, role in enumerate(frames["role"]) if role == r]
    out[r.decode()] = (
      box.tolist(),
      [frames["noun"][i].decode() for i in mine],
      [frames["noun_id"][i].decode() for i in mine],
    )
  return out


def test_imsitu_records(built):
  data_dir, log = built
  train = records(data_dir, IMSITU, "train")
  assert sorted(train) == ["clinging_1.jpg", "jumping_1.jpg", "jumping_2.jpg"]
  jump = train["jumping_1.jpg"]
  assert jump["verb"] == b"jumping" and jump["image"].shape == (30, 40, 3)
  assert [r.decode() for r in jump["roles"]["role"]] == list(JUMP_ROLES)  # the verb's order
  roles = roles_of(jump)
  assert roles["agent"] == ([4, 2, 20, 28], ["man", "dog", "dog"], [MAN, DOG, DOG])
  assert roles["source"] == ([-1] * 4, ["land", "", "land"], [LAND, "", LAND])
  # An unknown synset keeps its id but has no name.
  assert roles["obstacle"] == (
    [10, 10, 30, 20],
    ["fence", "fence", ""],
    [FENCE, FENCE, "n99999999"],
  )
  assert roles["place"] == ([-1] * 4, ["", "", ""], ["", "", ""])
  # Half-size file: boxes scaled by 20/40 and 16/32; roles the frames and bb omit are empty.
  small = roles_of(train["jumping_2.jpg"])
  assert train["jumping_2.jpg"]["image"].shape == (16, 20, 3)
  assert small["agent"] == ([4, 2, 12, 15], ["man", "man", "dog"], [MAN, MAN, DOG])
  assert small["source"] == ([-1] * 4, ["", "", ""], ["", "", ""])
  assert list(records(data_dir, IMSITU, "validation")) == ["clinging_2.jpg"]
  assert list(records(data_dir, IMSITU, "test")) == ["jumping_4.jpg"]
  summary = [m for m in log if m.startswith(f"{IMSITU}[train]")]
  assert len(summary) == 1
  for part in (
    "images 3",
    "skipped: verb not in imsitu_space.json 1",
    "skipped: not 3 frames 1",
    "kept: unknown synset (as no filler) 1",
    "kept: image size differs from the JSON's (boxes scaled) 1",
    "kept: role missing from a frame (as no filler) 12",
    "kept: role without a box entry (as not grounded) 4",
  ):
    assert part in summary[0], (part, summary[0])


def test_imsitu_verb_task(built):
  train = records(built[0], IMSITU, "train")
  raw = run("imsitu_verb", train["jumping_1.jpg"])
  assert raw["prompt"] == "What is the salient activity of the image ?"
  assert raw["target_text"] == "jumping" and raw["meta"]["image_hw"] == (30, 40)
  assert run("imsitu_verb", train["clinging_1.jpg"])["target_text"] == "clinging"


def role_prompt(verb, role):
  head = f'Given the image and salient activity is " {verb} ", '
  return head + f'what is the situation in terms of " {role} " ?'


def test_imsitu_roles_task(built):
  train = records(built[0], IMSITU, "train")
  expected = {  # role: (target, answers, box); "place" has no noun and is never asked
    "agent": ("dog", ["man", "dog"], [4, 2, 20, 28]),
    "source": ("land", ["land"], None),
    "obstacle": ("fence", ["fence"], [10, 10, 30, 20]),
    "destination": ("land", ["land"], None),
  }
  seen = set()
  for seed in range(40):
    raw = run("imsitu_roles", train["jumping_1.jpg"], seed)
    role = raw["meta"]["role"]
    target, answers, box = expected[role]
    assert raw["prompt"] == role_prompt("jumping", role)
    assert raw["target_text"] == target and raw["meta"]["answers"] == answers
    assert (raw["meta"]["box"] is None) == (box is None)
    if box is not None:
      np.testing.assert_allclose(raw["meta"]["box"], box)
    seen.add(role)
  assert seen == set(expected)
  # Two annotators say man, one dog: the majority is the target, the box is scaled.
  small = run("imsitu_roles", train["jumping_2.jpg"])
  assert small["prompt"] == role_prompt("jumping", "agent")
  assert small["target_text"] == "man" and small["meta"]["answers"] == ["man", "dog"]
  np.testing.assert_allclose(small["meta"]["box"], [4, 2, 12, 15])
  with pytest.raises(tasks.SkipExample, match="no role has a noun"):
    run("imsitu_roles", train["clinging_1.jpg"])


@pytest.mark.parametrize("skip", ["imsitu_space.json", "images_512"])
def test_imsitu_missing_release_file(tmp_path, skip):
  root = tmp_path / "downloads" / "manual" / IMSITU
  write_imsitu(root, skip=(skip,))
  if skip == "images_512":
    for path in (root / "images_512").iterdir():
      path.unlink()
    (root / "images_512").rmdir()
  with pytest.raises(common.MissingReleaseFile, match=skip):
    tfds.builder(IMSITU, data_dir=str(tmp_path)).download_and_prepare(file_format="array_record")


def test_no_release_folder(tmp_path):
  with pytest.raises(common.MissingReleaseFile, match=IMSITU):
    tfds.builder(IMSITU, data_dir=str(tmp_path)).download_and_prepare(file_format="array_record")


# ---------------------------------------------------------------------------- registration


def test_tasks_are_registered_as_the_catalogue_names_them():
  expected = {
    "snli_ve": (SNLI, "choice", "accuracy", "visual_entailment"),
    "imsitu_verb": (IMSITU, "text", "accuracy", "situation_verb"),
    "imsitu_roles": (IMSITU, "text", "exact_match", "situation_role"),
  }
  for name, (builder, output, metric, key) in expected.items():
    task = tasks.get(name)
    assert (task.builder, task.output.value, task.metric.value) == (builder, output, metric)
    assert task.group == "vision_language" and task.size is None
    assert task.prompts == prompts.PROMPTS[key]
    files = builders.SNLI_VE_FILES if builder == SNLI else builders.IMSITU_FILES
    assert set(task.splits.values()) == set(files) == {"train", "validation", "test"}
    assert vt.TASKS[name] is task


def test_paraphrases_fill_every_template(built):
  paraphrase = tasks.TaskContext(paraphrase=True)
  snli = records(built[0], SNLI, "train")["1000.jpg#0r1e"]
  jump = records(built[0], IMSITU, "train")["jumping_1.jpg"]
  for seed in range(12):
    rng = np.random.default_rng(seed)
    prompt = tasks.get("snli_ve").preprocess(snli, rng, paraphrase)["prompt"]
    assert "Two dogs run on grass." in prompt and "Animals are outside." in prompt
    assert tasks.get("imsitu_verb").preprocess(jump, rng, paraphrase)["prompt"]
    raw = tasks.get("imsitu_roles").preprocess(jump, rng, paraphrase)
    assert "jumping" in raw["prompt"] and raw["meta"]["role"] in raw["prompt"]


def test_data_show_draws_the_tasks_as_the_model_sees_them(built, tmp_path):
  """`python -m unified_io.data.show`'s library call on the prepared tiny release."""
  config = tiny_config.get_config()
  for name in ['snli_ve', 'imsitu_roles']:
    out = tmp_path / f"{name}.png"
    show.show(config, name, 2, str(out), data_dir=built[0])
    assert out.stat().st_size > 0
