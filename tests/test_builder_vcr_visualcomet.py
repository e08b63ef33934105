"""uio_vcr and uio_visualcomet on a tiny copy of their releases: records, counts, and the tasks'
prompts and targets against strings written by hand.

The copy keeps the releases' layout and field names: VCR's train.jsonl / val.jsonl (token
sentences mixing words and object index lists), VisualCOMET's {train,val}_annots.json, and
vcr1images/<movie>/<image>.jpg + .json (boxes [x1, y1, x2, y2, score], names, segms, width,
height), which uio_visualcomet reaches through a symlink to uio_vcr's folder.
"""

import copy
import json
import re

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from configs import tiny as tiny_config
from unified_io.data import show
from unified_io.common import locations
from unified_io.common import vocab
from unified_io.data import pipeline
from unified_io.data.builders import common
from unified_io.data.builders import vcr_visualcomet as builders
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision_logic as vt
from unified_io.data.tasks import vl_vcr_visualcomet as vl

CTX = tasks.TaskContext()
LAYOUT = vocab.VocabLayout.official()
MOVIE = "lsmdc_0001_A_MOVIE"
# image -> (width, height, metadata boxes [x1, y1, x2, y2, score], names); None: no metadata.
IMAGES = {
  "a@0": (
    64,
    48,
    [[2, 3, 30, 40, 0.99], [32, 4, 64.6, 47, 0.9], [10, 10, 20, 20, 0.5]],
    ["person", "person", "horse"],
  ),
  "b@1": (40, 40, [[0, 0, 20, 39, 0.9], [21, 1, 39, 39, 0.8]], ["person", "person"]),
  "c@2": None,  # the image without its metadata file
  "e@4": (40, 30, [[0, 0, 10, 10, 0.9]], ["person"]),  # metadata says 40 x 30, image is 36 x 30
}
IMAGE_SIZE = {"e@4": (36, 30)}
HW = {"a@0": (48, 64), "b@1": (40, 40)}
# Boxes as the tasks see them: clipped to the image (person2's x2 64.6 -> 64).
BOXES = {"a@0": [[2, 3, 30, 40], [32, 4, 64, 47], [10, 10, 20, 20]]}


def fn(name, ext):
  return f"{MOVIE}/{name}.{ext}"


def vcr_line(
  annot_id,
  image,
  question,
  answers,
  rationales,
  answer_label=0,
  rationale_label=0,
  objects=("person", "person", "horse"),
  **extra,
):
  record = {
    "movie": "0001_A_MOVIE",
    "objects": list(objects),
    "interesting_scores": [0],
    "answer_likelihood": "likely",
    "img_fn": fn(image, "jpg"),
    "metadata_fn": fn(image, "json"),
    "question": question,
    "answer_choices": answers,
    "answer_label": answer_label,
    "rationale_choices": rationales,
    "rationale_label": rationale_label,
    "img_id": f"img-{image}",
    "question_number": 0,
    "annot_id": annot_id,
    "match_fold": "train-0",
    "match_index": 0,
  }
  record.update(extra)
  return json.dumps(record)


QUESTION = ["What", "are", [0, 1], "doing", "?"]
ANSWERS = [
  ["They", "are", "dancing", "."],
  [[0], "is", "riding", [2], "."],
  [[1], "is", "sleeping", "."],
  ["Nothing", "."],
]
RATIONALES = [
  [[0, 1, 2], "are", "outside", "."],
  [[0], "holds", "the", "reins", "."],
  ["The", "horse", "is", "moving", "."],
  [[2], "is", "brown", "."],
]
FOUR = [["a", "."], ["b", "."], ["c", "."], ["d", "."]]
VCR_TRAIN = [
  vcr_line(
    "train-0",
    "a@0",
    QUESTION,
    ANSWERS,
    RATIONALES,
    1,
    2,
    question_orig="What are 1 and 2 doing?",
    answer_orig="1 is riding 3.",
    rationale_orig="The horse is moving.",
  ),
  # Index 5 of two objects: kept, and the tasks skip it.
  vcr_line(
    "train-1", "b@1", ["Why", "is", [5], "here", "?"], FOUR, FOUR, objects=("person", "person")
  ),
  vcr_line("train-2", "c@2", QUESTION, ANSWERS, RATIONALES),  # no metadata: skipped
  vcr_line(
    "train-3", "b@1", ["Is", [0], "ok", "?"], FOUR, FOUR, 4, 0, objects=("person", "person")
  ),  # answer_label 4: skipped
  vcr_line("train-4", "e@4", ["Is", [0], "ok", "?"], FOUR, FOUR, objects=("person",)),
  "",  # a blank line
]
VCR_VAL = [
  vcr_line(
    "val-0",
    "b@1",
    ["Is", [1], "happy", "?"],
    FOUR,
    [[[0], "smiles", "."]] + FOUR[1:],
    0,
    0,
    objects=("person", "person"),
  ),
]
COMET_TRAIN = [
  {
    "img_fn": fn("a@0", "jpg"),
    "movie": "0001_A_MOVIE",
    "metadata_fn": fn("a@0", "json"),
    "place": "at a farm",
    "event": "1 is riding 3 near 2",
    "intent": ["get home", "show 2 the way"],
    "before": ["saddle 3", "meet 2's friend"],
    "after": ["buy 12 apples", "  ", "feed 3"],
  },
  {
    "img_fn": fn("b@1", "jpg"),
    "movie": "0001_A_MOVIE",
    "metadata_fn": fn("b@1", "json"),
    "place": "in a room",
    "event": "7 is waving",
    "intent": ["greet"],
    "before": ["walk in"],
    "after": ["leave"],
  },
  {
    "img_fn": fn("b@1", "jpg"),
    "movie": "0001_A_MOVIE",
    "metadata_fn": fn("b@1", "json"),
    "place": "in a room",
    "event": "2 is sitting",
    "intent": [],
    "before": ["sit down"],
  },
  {
    "img_fn": fn("c@2", "jpg"),
    "movie": "0001_A_MOVIE",
    "metadata_fn": fn("c@2", "json"),
    "place": "outside",
    "event": "1 runs",
    "intent": ["x"],
    "before": ["y"],
    "after": ["z"],
  },
]
COMET_VAL = [
  {
    "img_fn": fn("a@0", "jpg"),
    "movie": "0001_A_MOVIE",
    "metadata_fn": fn("a@0", "json"),
    "place": "at a party",
    "event": "Everyone is dancing",
    "intent": ["have fun"],
    "before": ["put on music"],
    "after": ["go home"],
  },
]


def write_images(folder):
  rng = np.random.default_rng(0)
  for name, meta in IMAGES.items():
    path = folder / MOVIE / f"{name}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = IMAGE_SIZE.get(name, meta[:2] if meta else (32, 32))
    pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")
    if meta is not None:
      width, height, boxes, names = meta
      segms = [[[[b[0], b[1]], [b[2], b[1]], [b[2], b[3]]]] for b in boxes]
      (folder / MOVIE / f"{name}.json").write_text(
        json.dumps(
          {"boxes": boxes, "segms": segms, "names": names, "width": width, "height": height}
        )
      )


def write_release(manual):
  vcr = manual / builders.VCR
  write_images(vcr / builders.IMAGES)
  (vcr / "train.jsonl").write_text("\n".join(VCR_TRAIN) + "\n")
  (vcr / "val.jsonl").write_text("\n".join(VCR_VAL) + "\n")
  comet = manual / builders.VISUALCOMET
  comet.mkdir(parents=True)
  (comet / builders.IMAGES).symlink_to(vcr / builders.IMAGES, target_is_directory=True)
  (comet / "train_annots.json").write_text(json.dumps(COMET_TRAIN))
  (comet / "val_annots.json").write_text(json.dumps(COMET_VAL))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("tfds")
  write_release(data_dir / "downloads" / "manual")
  counts = {}
  for name in (builders.VCR, builders.VISUALCOMET):
    builder = tfds.builder(name, data_dir=str(data_dir))
    builder.download_and_prepare(file_format="array_record")
    counts[name] = {split: dict(c) for split, c in builder.counts.items()}
  return str(data_dir), counts


def records(built, name, split):
  source = pipeline.source(name, split, built[0])
  out = [source[i] for i in range(len(source))]
  return {tasks.as_text(r["id"]): r for r in out}


def run(name, example, seed=0):
  return vt.TASKS[name].preprocess(example, np.random.default_rng(seed), CTX)


def box(image, k):
  return vt.box_text(BOXES[image][k], HW[image], CTX)


def decode(tokens, image_hw):
  """Four "<extra_id_N>" tokens -> pixel box, independently of the task code."""
  bins = np.array([int(re.fullmatch(r"<extra_id_(\d+)>", t).group(1)) for t in tokens])
  ids = LAYOUT.location_id(bins - vocab.NUM_SENTINELS)
  return locations.location_ids_to_box(ids, image_hw, LAYOUT)


# ----------------------------------------------------------------------------------- VCR


def test_vcr_records_and_counts(built):
  assert built[1][builders.VCR] == {
    "train": {
      "written": 2,
      "kept: a reference outside the objects (tasks skip it)": 1,
      "skipped: metadata file absent": 1,
      "skipped: answer_label outside 0-3": 1,
      "skipped: image size differs from the metadata's width x height": 1,
    },
    "validation": {"written": 1},
  }
  train = records(built, builders.VCR, "train")
  assert sorted(train) == ["train-0", "train-1"]
  r = train["train-0"]
  assert r["image"].shape == (48, 64, 3)
  assert tasks.as_text(r["image/filename"]) == fn("a@0", "jpg")
  assert [tasks.as_text(n) for n in r["objects"]["name"]] == ["person", "person", "horse"]
  np.testing.assert_allclose(  # as released: not clipped
    r["objects"]["box"], [[2, 3, 30, 40], [32, 4, 64.6, 47], [10, 10, 20, 20]], rtol=1e-6
  )
  np.testing.assert_allclose(r["objects"]["score"], [0.99, 0.9, 0.5], rtol=1e-6)
  assert json.loads(tasks.as_text(r["question"])) == QUESTION
  assert [json.loads(tasks.as_text(a)) for a in r["answer_choices"]] == ANSWERS
  assert [json.loads(tasks.as_text(a)) for a in r["rationale_choices"]] == RATIONALES
  assert (int(r["answer_label"]), int(r["rationale_label"])) == (1, 2)
  assert tasks.as_text(r["question_orig"]) == "What are 1 and 2 doing?"
  assert tasks.as_text(r["img_id"]) == "img-a@0" and int(r["question_number"]) == 0
  val = records(built, builders.VCR, "validation")["val-0"]
  assert tasks.as_text(val["question_orig"]) == ""  # absent from the line


def test_vcr_qa_prompt_target_and_choices(built):
  r = records(built, builders.VCR, "train")["train-0"]
  raw = run("vcr_qa", r)
  b0, b1, b2 = (box("a@0", k) for k in range(3))
  assert raw["prompt"] == f'Question: " What are {b0} person1 and {b1} person2 doing ? " Answer: '
  # The horse is first named by an answer: its box goes there.
  options = (
    "They are dancing .",
    f"person1 is riding {b2} horse3 .",
    "person2 is sleeping .",
    "Nothing .",
  )
  assert raw["meta"]["class_names"] == options
  assert raw["target_text"] == options[1] == raw["meta"]["label"]
  assert (raw["meta"]["answer_label"], raw["meta"]["rationale_label"]) == (1, 2)
  assert raw["meta"]["example_id"] == "train-0" and raw["meta"]["image_hw"] == (48, 64)
  assert raw["image"].shape == (48, 64, 3)
  # The overrunning box was clipped before it was written.
  np.testing.assert_allclose(decode(b1.split(), (48, 64)), [32, 4, 64, 47], atol=64 / 999 + 1e-6)
  np.testing.assert_allclose(decode(b2.split(), (48, 64)), [10, 10, 20, 20], atol=64 / 999 + 1e-6)


def test_vcr_qar_prompt_target_and_choices(built):
  r = records(built, builders.VCR, "train")["train-0"]
  raw = run("vcr_qar", r)
  b0, b1, b2 = (box("a@0", k) for k in range(3))
  assert raw["prompt"] == (
    f'Question: " What are {b0} person1 and {b1} person2 doing ? " '
    f'Answer: " person1 is riding {b2} horse3 . " Rationale: '
  )
  options = (
    "person1 , person2 and horse3 are outside .",
    "person1 holds the reins .",
    "The horse is moving .",
    "horse3 is brown .",
  )
  assert raw["meta"]["class_names"] == options
  assert raw["target_text"] == "The horse is moving ."
  assert vt.TASKS["vcr_qar"].output is tasks.Output.CHOICE
  assert vt.TASKS["vcr_qar"].metric is tasks.Metric.ACCURACY


def test_vcr_bad_records_are_skipped_with_a_reason(built):
  train = records(built, builders.VCR, "train")
  for name in ("vcr_qa", "vcr_qar"):
    with pytest.raises(tasks.SkipExample, match="object reference 5 outside the image's 2"):
      run(name, train["train-1"])
  degenerate = copy.deepcopy(train["train-0"])
  degenerate["objects"]["box"][0] = [5, 5, 5, 9]
  with pytest.raises(tasks.SkipExample, match="person1 has a degenerate box"):
    run("vcr_qa", degenerate)
  unlabelled = dict(train["train-0"], answer_label=np.int32(-1))
  with pytest.raises(tasks.SkipExample, match="answer_label -1 outside the 4 choices"):
    run("vcr_qa", unlabelled)


def test_vcr_validation_split(built):
  raw = run("vcr_qa", records(built, builders.VCR, "validation")["val-0"])
  assert (
    raw["prompt"]
    == f'Question: " Is {vt.box_text([21, 1, 39, 39], (40, 40), CTX)} person2 happy ? " Answer: '
  )
  assert raw["target_text"] == "a ."


def test_qar_accuracy_joins_both_results():
  assert vl.qar_accuracy([True, True, False, True], [True, False, True, True]) == 0.5
  assert vl.qar_accuracy({"q1": True, "q2": True}, {"q2": True, "q1": False}) == 0.5
  assert np.isnan(vl.qar_accuracy([], []))
  with pytest.raises(ValueError, match="differ in 2 questions"):
    vl.qar_accuracy({"q1": True}, {"q2": True})
  with pytest.raises(ValueError):
    vl.qar_accuracy([True], [True, False])
  with pytest.raises(TypeError):
    vl.qar_accuracy({"q1": True}, [True])


def test_joined_lists():
  assert vl.joined(["a"]) == "a"
  assert vl.joined(["a", "b"]) == "a and b"
  assert vl.joined(["a", "b", "c"]) == "a , b and c"


# --------------------------------------------------------------------------- VisualCOMET


def test_visualcomet_records_and_counts(built):
  assert built[1][builders.VISUALCOMET] == {
    "train": {
      "written": 3,
      "skipped: metadata file absent": 1,
      "kept: an event names a number outside the objects (tasks skip it)": 1,
      "kept: no intent inferences (the intent task skips it)": 1,
      "kept: no after inferences (the after task skips it)": 1,
    },
    "validation": {"written": 1, "kept: an event names no person number": 1},
  }
  train = records(built, builders.VISUALCOMET, "train")
  assert sorted(train) == ["train-0", "train-1", "train-2"]
  r = train["train-0"]
  assert tasks.as_text(r["event"]) == "1 is riding 3 near 2"
  assert tasks.as_text(r["place"]) == "at a farm"
  assert [tasks.as_text(t) for t in r["after"]] == ["buy 12 apples", "  ", "feed 3"]
  assert [tasks.as_text(n) for n in r["objects"]["name"]] == ["person", "person", "horse"]
  assert r["image"].shape == (48, 64, 3)  # read through the vcr1images symlink
  assert len(train["train-2"]["after"]) == 0


def test_visualcomet_prompts_targets_and_captions(built):
  r = records(built, builders.VISUALCOMET, "train")["train-0"]
  event = f"{box('a@0', 0)} person1 is riding {box('a@0', 2)} horse3 near {box('a@0', 1)} person2"
  questions = {
    "before": "Before, what the person needed to do ?",
    "intent": "Because, what the person wanted to do ?",
    "after": "After, what the person will most likely to do ?",
  }
  captions = {
    "before": ["saddle horse3", "meet person2's friend"],
    "intent": ["get home", "show person2 the way"],
    "after": ["buy 12 apples", "feed horse3"],  # 12 is no object: left as written
  }
  for kind, question in questions.items():
    targets = set()
    for seed in range(12):
      raw = run(f"visualcomet_{kind}", r, seed)
      assert raw["prompt"] == f'Event: " {event} at a farm " {question}'
      assert raw["meta"]["captions"] == captions[kind]
      assert raw["meta"]["kind"] == kind
      targets.add(raw["target_text"])
    assert targets == set(captions[kind])  # drawn at random among them
    assert vt.TASKS[f"visualcomet_{kind}"].metric is tasks.Metric.CIDER


def test_visualcomet_skips_and_events_without_numbers(built):
  train = records(built, builders.VISUALCOMET, "train")
  with pytest.raises(tasks.SkipExample, match="person number 7 outside the image's 2"):
    run("visualcomet_before", train["train-1"])
  with pytest.raises(tasks.SkipExample, match="no intent inferences"):
    run("visualcomet_intent", train["train-2"])
  with pytest.raises(tasks.SkipExample, match="no after inferences"):
    run("visualcomet_after", train["train-2"])
  sitting = run("visualcomet_before", train["train-2"])
  assert sitting["prompt"].startswith(
    f'Event: " {vt.box_text([21, 1, 39, 39], (40, 40), CTX)} person2 is sitting in a room " '
  )
  val = records(built, builders.VISUALCOMET, "validation")["val-0"]
  raw = run("visualcomet_after", val)
  assert raw["prompt"] == (
    'Event: " Everyone is dancing at a party " After, what the person will most likely to do ?'
  )
  assert raw["target_text"] == "go home"


def test_person_numbers_are_whole_digit_words():
  found = builders.PERSON_NUMBER.findall("1 met 2's dog, 3. 2.5 kg 1,000 10am 3rd (4) 5")
  assert found == ["1", "2", "3", "4", "5"]


# ------------------------------------------------------------------------------ releases


def test_a_missing_release_file_is_named(tmp_path):
  manual = tmp_path / "downloads" / "manual"
  write_release(manual)
  (manual / builders.VCR / "val.jsonl").unlink()
  (manual / builders.VISUALCOMET / builders.IMAGES).unlink()
  with pytest.raises(common.MissingReleaseFile, match="val.jsonl"):
    tfds.builder(builders.VCR, data_dir=str(tmp_path)).download_and_prepare(
      file_format="array_record"
    )
  with pytest.raises(common.MissingReleaseFile, match="vcr1images"):
    tfds.builder(builders.VISUALCOMET, data_dir=str(tmp_path)).download_and_prepare(
      file_format="array_record"
    )


def test_tasks_read_the_builders_splits():
  for name in (
    "vcr_qa",
    "vcr_qar",
    "visualcomet_before",
    "visualcomet_intent",
    "visualcomet_after",
  ):
    task = tasks.get(name)
    assert task.group == "vision_language" and task.size is None
    assert dict(task.splits) == {"train": "train", "validation": "validation"}
  assert builders.UioVcr.MANUAL_DOWNLOAD_INSTRUCTIONS.count("val.jsonl") == 1
  assert "val_annots.json" in builders.UioVisualcomet.MANUAL_DOWNLOAD_INSTRUCTIONS


def test_data_show_draws_the_tasks_as_the_model_sees_them(built, tmp_path):
  """`python -m unified_io.data.show`'s library call on the prepared tiny release."""
  config = tiny_config.get_config()
  for name in ['vcr_qa', 'visualcomet_before']:
    out = tmp_path / f"{name}.png"
    show.show(config, name, 2, str(out), data_dir=built[0])
    assert out.stat().st_size > 0
