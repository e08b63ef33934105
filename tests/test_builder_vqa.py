"""The VQA 2.0, OK-VQA and A-OKVQA builders on tiny copies of their releases, and their tasks.

Each test release has the original file names, layout, field names and nesting, with the
awkward cases: test questions without answers, annotations and questions without their pair,
an image_id mismatch, answer ties, a grayscale COCO JPEG. Records are checked against values
written by hand, then the tasks' prompts and targets on records read back through
`pipeline.source`.
"""

import copy
import json
import logging

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from configs import tiny as tiny_config
from tests import specs
from unified_io.data import show
from unified_io.data import pipeline
from unified_io.data import prompts
from unified_io.data.builders import common
from unified_io.data.builders import vqa
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vl_vqa  # noqa: F401  (registers the tasks)

CTX = tasks.TaskContext()


def answers(*texts, raw=False):
  """VQA answers list: answer_id 1..n, confidences cycling yes/maybe/no."""
  out = []
  for k, text in enumerate(texts):
    answer = {
      "answer": text,
      "answer_confidence": ("yes", "maybe", "no")[k % 3],
      "answer_id": k + 1,
    }
    if raw:
      answer["raw_answer"] = text.capitalize() + "s"
    out.append(answer)
  return out


def write_json(path, value):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(value))


def write_image(path, hw, color, mode="RGB"):
  path.parent.mkdir(parents=True, exist_ok=True)
  value = color if mode == "RGB" else color[0]
  Image.new(mode, (hw[1], hw[0]), value).save(path, format="JPEG")


V2_TRAIN_ANSWERS = answers(*["2"] * 6, *["3"] * 3, "two")
V2_TRAIN = {
  "questions": [
    {"image_id": 9, "question": "How many dogs are there?", "question_id": 9000},
    {"image_id": 9, "question": "What Color is the bus?", "question_id": 9001},
    {"image_id": 25, "question": "Is it raining?", "question_id": 25000},
    {"image_id": 25, "question": "Unannotated?", "question_id": 25001},  # dropped
    {"image_id": 25, "question": "Mismatched?", "question_id": 25002},  # dropped
  ]
}
V2_ANNOTATIONS = [
  {
    "question_id": 9000,
    "image_id": 9,
    "answers": V2_TRAIN_ANSWERS,
    "multiple_choice_answer": "2",
    "answer_type": "number",
    "question_type": "how many",
  },
  {
    "question_id": 9001,
    "image_id": 9,
    "answers": answers(*["red"] * 4, *["blue"] * 5, "red and white"),
    "multiple_choice_answer": "blue",
    "answer_type": "other",
    "question_type": "what color is the",
  },
  {
    "question_id": 25000,
    "image_id": 25,
    "answers": answers("no", "no", "yes"),  # 3 answers: kept as they are
    "multiple_choice_answer": "no",
    "answer_type": "yes/no",
    "question_type": "is it",
  },
  {"question_id": 25002, "image_id": 9, "answers": answers("x"), "multiple_choice_answer": "x"},
  {"question_id": 99999, "image_id": 9, "answers": answers("y"), "multiple_choice_answer": "y"},
]


def write_vqa_v2(root, test=True):
  write_json(root / "v2_OpenEnded_mscoco_train2014_questions.json", V2_TRAIN)
  write_json(root / "v2_mscoco_train2014_annotations.json", {"annotations": V2_ANNOTATIONS})
  write_json(
    root / "v2_OpenEnded_mscoco_val2014_questions.json",
    {"questions": [{"image_id": 42, "question": "What is it?", "question_id": 42000}]},
  )
  val = {
    "question_id": 42000,
    "image_id": 42,
    "answers": answers(*["cat"] * 10),
    "multiple_choice_answer": "cat",
    "answer_type": "other",
    "question_type": "what is",
  }
  write_json(root / "v2_mscoco_val2014_annotations.json", {"annotations": [val]})
  write_image(root / "train2014/COCO_train2014_000000000009.jpg", (24, 32), (200, 30, 30))
  write_image(root / "train2014/COCO_train2014_000000000025.jpg", (16, 16), (90, 0, 0), "L")
  write_image(root / "val2014/COCO_val2014_000000000042.jpg", (20, 12), (10, 200, 10))
  if test:
    questions = [
      {"image_id": 7, "question": "Who is there?", "question_id": 7000},
      {"image_id": 7, "question": "Why?", "question_id": 7001},
    ]
    write_json(root / "v2_OpenEnded_mscoco_test2015_questions.json", {"questions": questions})
    write_image(root / "test2015/COCO_test2015_000000000007.jpg", (8, 8), (0, 0, 250))


# truck and car have 3 votes each, truck listed first; one answer is empty.
OKVQA_TIE = ["truck", "car", "car", "truck", "bus", "bus", "car", "truck", "van", ""]


def write_okvqa(root):
  train = [
    {"image_id": 9, "question": "What brand is This?", "question_id": 90},
    {"image_id": 25, "question": "What sport?", "question_id": 250},
  ]
  write_json(root / "OpenEnded_mscoco_train2014_questions.json", {"questions": train})
  annotations = [
    {
      "question_id": 90,
      "image_id": 9,
      "answers": answers(*OKVQA_TIE, raw=True),
      "answer_type": "other",
      "question_type": "one",
    },
    {
      "question_id": 250,
      "image_id": 25,
      "answers": answers(*["tennis"] * 10, raw=True),
      "answer_type": "other",
      "question_type": "four",
    },
  ]
  write_json(root / "mscoco_train2014_annotations.json", {"annotations": annotations})
  write_json(
    root / "OpenEnded_mscoco_val2014_questions.json",
    {"questions": [{"image_id": 42, "question": "Q?", "question_id": 420}]},
  )
  val = {
    "question_id": 420,
    "image_id": 42,
    "answers": answers(*["a"] * 10, raw=True),
    "answer_type": "other",
    "question_type": "other",
  }
  write_json(root / "mscoco_val2014_annotations.json", {"annotations": [val]})
  write_image(root / "train2014/COCO_train2014_000000000009.jpg", (24, 32), (200, 30, 30))
  write_image(root / "train2014/COCO_train2014_000000000025.jpg", (16, 16), (90, 0, 0))
  write_image(root / "val2014/COCO_val2014_000000000042.jpg", (20, 12), (10, 200, 10))


MC = {
  "split": "train",
  "image_id": 461751,
  "question_id": "22jbM6gDxdaMaunuzgrsBB",
  "question": "What is in the Motorcyclist's mouth?",
  "choices": ["toothpick", "food", "popsicle stick", "cigarette"],
  "correct_choice_idx": 3,
  "direct_answers": ["cigarette"] * 7 + ["toothpick", "cigar", "cigar"],
  "difficult_direct_answer": False,
  "rationales": ["He's smoking.", "It is lit.", "Smoke comes out."],
}


def write_aokvqa(root):
  tied = dict(
    MC,
    image_id=299207,
    question_id="22MexNkBPpdZGX6sxbxVBH",
    question="What is the man by the bags awaiting?",
    choices=["skateboarder", "train", "delivery", "cab"],
    correct_choice_idx=3,
    direct_answers=["taxi", "cab", "cab", "taxi", "bus", "ride", "cab", "taxi", "car", "uber"],
    difficult_direct_answer=True,
  )
  write_json(root / "aokvqa_v1p0_train.json", [MC, tied])
  write_json(root / "aokvqa_v1p0_val.json", [dict(MC, split="val", question_id="val1")])
  test = {k: MC[k] for k in ("image_id", "question", "choices", "difficult_direct_answer")}
  write_json(root / "aokvqa_v1p0_test.json", [dict(test, split="test", question_id="test1")])
  write_image(root / "train2017/000000461751.jpg", (30, 20), (120, 120, 0))
  write_image(root / "train2017/000000299207.jpg", (10, 40), (0, 120, 120))
  write_image(root / "val2017/000000461751.jpg", (30, 20), (120, 120, 0))
  write_image(root / "test2017/000000461751.jpg", (30, 20), (120, 120, 0))


WRITERS = {vqa.VQA_V2: write_vqa_v2, vqa.OKVQA: write_okvqa, vqa.AOKVQA: write_aokvqa}


def build(data_dir, name):
  return tfds.builder(name, data_dir=str(data_dir)).download_and_prepare(file_format="array_record")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("tfds")
  for name, write in WRITERS.items():
    write(root / "downloads" / "manual" / name)
    build(root, name)
  return str(root)


def records(data_dir, name, split):
  """{question_id: record} of a split, read back by random access."""
  source = pipeline.source(name, split, data_dir)
  out = {}
  for i in range(len(source)):
    record = source[i]
    key = record["question_id"]
    out[key.decode() if isinstance(key, bytes) else int(key)] = record
  return out


def texts(values):
  return [v.decode() for v in values]


def run(name, example, seed=0):
  return tasks.get(name).preprocess(example, np.random.default_rng(seed), CTX)


# ------------------------------------------------------------------------------ builders


def test_vqa_v2_records(data_dir):
  builder = tfds.builder(vqa.VQA_V2, data_dir=data_dir)
  assert str(builder.info.file_format.value) == "array_record"
  assert {s: builder.info.splits[s].num_examples for s in builder.info.splits} == {
    "train": 3,  # 25001 (no annotation) and 25002 (image_id differs) dropped
    "validation": 1,
    "test": 2,
  }
  train = records(data_dir, vqa.VQA_V2, "train")
  assert sorted(train) == [9000, 9001, 25000]
  r = train[9000]
  assert r["image"].shape == (24, 32, 3) and r["image"].dtype == np.uint8
  assert abs(int(r["image"][..., 0].mean()) - 200) < 8  # the red image, stored as released
  assert r["id"] == b"9000" and r["image_id"] == 9
  assert r["image/filename"] == b"train2014/COCO_train2014_000000000009.jpg"
  assert r["question"] == b"How many dogs are there?"
  assert texts(r["answers"]["answer"]) == [a["answer"] for a in V2_TRAIN_ANSWERS]
  assert texts(r["answers"]["answer_confidence"])[:3] == ["yes", "maybe", "no"]
  assert list(r["answers"]["answer_id"]) == list(range(1, 11))
  assert r["multiple_choice_answer"] == b"2" and r["answer_type"] == b"number"
  assert r["question_type"] == b"how many"
  assert train[25000]["image"].shape == (16, 16, 3)  # a grayscale COCO JPEG, decoded as RGB
  assert texts(train[25000]["answers"]["answer"]) == ["no", "no", "yes"]
  test = records(data_dir, vqa.VQA_V2, "test")
  assert sorted(test) == [7000, 7001]
  assert len(test[7000]["answers"]["answer"]) == 0 and test[7000]["multiple_choice_answer"] == b""
  assert test[7001]["image/filename"] == b"test2015/COCO_test2015_000000000007.jpg"


def test_okvqa_records(data_dir):
  builder = tfds.builder(vqa.OKVQA, data_dir=data_dir)
  assert set(builder.info.splits) == {"train", "validation"}
  assert "multiple_choice_answer" not in builder.info.features
  train = records(data_dir, vqa.OKVQA, "train")
  r = train[90]
  assert texts(r["answers"]["raw_answer"])[:2] == ["Trucks", "Cars"]
  assert r["question_type"] == b"one" and r["answer_type"] == b"other"
  assert records(data_dir, vqa.OKVQA, "validation")[420]["image"].shape == (20, 12, 3)


def test_aokvqa_records(data_dir):
  builder = tfds.builder(vqa.AOKVQA, data_dir=data_dir)
  sizes = {s: builder.info.splits[s].num_examples for s in builder.info.splits}
  assert sizes == {"train": 2, "validation": 1, "test": 1}
  r = records(data_dir, vqa.AOKVQA, "train")["22jbM6gDxdaMaunuzgrsBB"]
  assert r["image"].shape == (30, 20, 3) and r["image_id"] == 461751
  assert r["image/filename"] == b"train2017/000000461751.jpg"
  assert texts(r["choices"]) == MC["choices"] and r["correct_choice_idx"] == 3
  assert texts(r["direct_answers"]) == MC["direct_answers"]
  assert texts(r["rationales"]) == MC["rationales"] and not r["difficult_direct_answer"]
  test = records(data_dir, vqa.AOKVQA, "test")["test1"]
  assert test["correct_choice_idx"] == vqa.NO_CHOICE and texts(test["choices"]) == MC["choices"]
  assert len(test["direct_answers"]) == 0 and len(test["rationales"]) == 0


def test_missing_release_files_are_named(tmp_path):
  root = tmp_path / "downloads" / "manual" / vqa.VQA_V2
  write_vqa_v2(root, test=False)
  (root / "v2_mscoco_val2014_annotations.json").unlink()
  with pytest.raises(common.MissingReleaseFile, match="v2_mscoco_val2014_annotations.json"):
    build(tmp_path, vqa.VQA_V2)
  with pytest.raises(common.MissingReleaseFile, match="uio_okvqa"):  # no folder at all
    build(tmp_path, vqa.OKVQA)
  aokvqa = tmp_path / "downloads" / "manual" / vqa.AOKVQA
  write_aokvqa(aokvqa)
  (aokvqa / "train2017/000000299207.jpg").unlink()
  with pytest.raises(common.MissingReleaseFile, match="train2017/000000299207.jpg"):
    build(tmp_path, vqa.AOKVQA)


def test_vqa_v2_without_the_optional_test_file(tmp_path, caplog):
  write_vqa_v2(tmp_path / "downloads" / "manual" / vqa.VQA_V2, test=False)
  with caplog.at_level(logging.INFO, logger="absl"):
    build(tmp_path, vqa.VQA_V2)
  # The awkward cases are counted in the build log.
  for counted in (
    "'question without annotation (dropped)': 1",
    "'annotation without question (dropped)': 1",
    "'image_id differs between question and annotation (dropped)': 1",
    "'answers not 10 (kept)': 1",
    "no test questions file",
  ):
    assert counted in caplog.text
  assert set(tfds.builder(vqa.VQA_V2, data_dir=str(tmp_path)).info.splits) == {
    "train",
    "validation",
  }


# --------------------------------------------------------------------------------- tasks


def test_registered_tasks():
  expected = {
    "vqa_v2": (vqa.VQA_V2, "vqa", tasks.Output.TEXT, tasks.Metric.VQA_ACCURACY),
    "okvqa": (vqa.OKVQA, "vqa", tasks.Output.TEXT, tasks.Metric.VQA_ACCURACY),
    "aokvqa": (vqa.AOKVQA, "vqa", tasks.Output.TEXT, tasks.Metric.VQA_ACCURACY),
    "aokvqa_mc": (vqa.AOKVQA, "vqa_multiple_choice", tasks.Output.CHOICE, tasks.Metric.ACCURACY),
  }
  for name, (builder, key, output, metric) in expected.items():
    task = tasks.get(name)
    assert (task.builder, task.prompts, task.output, task.metric) == (
      builder,
      prompts.PROMPTS[key],
      output,
      metric,
    )
    assert task.group == "vision_language" and task.size is None
    assert dict(task.splits) == {"train": "train", "validation": "validation"}


def test_vqa_v2_task(data_dir):
  train = records(data_dir, vqa.VQA_V2, "train")
  raw = run("vqa_v2", train[9001])
  assert raw["prompt"] == "what color is the bus?"
  assert raw["target_text"] == "blue"  # multiple_choice_answer
  assert raw["meta"]["answers"] == ["red"] * 4 + ["blue"] * 5 + ["red and white"]
  assert raw["meta"]["example_id"] == "9001" and raw["meta"]["image_hw"] == (24, 32)
  assert raw["meta"]["question_type"] == "what color is the"
  assert raw["image"].shape == (24, 32, 3) and raw["target_image"] is None
  raw = run("vqa_v2", train[9000])
  assert (raw["prompt"], raw["target_text"]) == ("how many dogs are there?", "2")
  assert len(raw["meta"]["answers"]) == 10
  validation = records(data_dir, vqa.VQA_V2, "validation")
  assert run("vqa_v2", validation[42000])["target_text"] == "cat"
  # An empty multiple_choice_answer falls back to the most common answer.
  example = dict(train[9001], multiple_choice_answer=b"")
  assert run("vqa_v2", example)["target_text"] == "blue"


def test_okvqa_task(data_dir):
  train = records(data_dir, vqa.OKVQA, "train")
  raw = run("okvqa", train[90])
  assert raw["prompt"] == "what brand is this?"
  # truck and car tie; truck is listed first. The empty answer stays in meta.
  assert raw["target_text"] == "truck"
  assert raw["meta"]["answers"] == OKVQA_TIE
  assert run("okvqa", train[250])["target_text"] == "tennis"


def test_aokvqa_tasks(data_dir):
  train = records(data_dir, vqa.AOKVQA, "train")
  raw = run("aokvqa", train["22jbM6gDxdaMaunuzgrsBB"])
  assert raw["prompt"] == "what is in the motorcyclist's mouth?"
  assert raw["target_text"] == "cigarette"
  assert raw["meta"]["answers"] == MC["direct_answers"]
  assert raw["meta"]["rationales"] == MC["rationales"]
  assert raw["meta"]["example_id"] == "22jbM6gDxdaMaunuzgrsBB"
  tied = run("aokvqa", train["22MexNkBPpdZGX6sxbxVBH"])
  assert tied["target_text"] == "taxi"  # taxi and cab 3 each: taxi is listed first
  assert tied["meta"]["difficult_direct_answer"] is True

  raw = run("aokvqa_mc", train["22jbM6gDxdaMaunuzgrsBB"])
  assert raw["prompt"] == (
    "what is in the motorcyclist's mouth? Choose from: toothpick , food , popsicle stick , "
    "cigarette"
  )
  assert raw["target_text"] == "cigarette" == raw["meta"]["label"]
  assert raw["meta"]["class_names"] == ("toothpick", "food", "popsicle stick", "cigarette")
  assert raw["meta"]["rationales"] == MC["rationales"]
  raw = run("aokvqa_mc", train["22MexNkBPpdZGX6sxbxVBH"])
  assert raw["target_text"] == "cab" and raw["meta"]["class_names"][3] == "cab"
  # Paraphrases fill every template.
  for seed in range(6):
    para = tasks.get("aokvqa_mc").preprocess(
      train["22MexNkBPpdZGX6sxbxVBH"],
      np.random.default_rng(seed),
      tasks.TaskContext(paraphrase=True),
    )
    assert "skateboarder , train , delivery , cab" in para["prompt"]


def test_unusable_records_are_skipped_with_a_reason(data_dir):
  v2_test = records(data_dir, vqa.VQA_V2, "test")[7000]
  with pytest.raises(tasks.SkipExample, match="no answers"):
    run("vqa_v2", v2_test)
  aokvqa_test = records(data_dir, vqa.AOKVQA, "test")["test1"]
  with pytest.raises(tasks.SkipExample, match="no direct answers"):
    run("aokvqa", aokvqa_test)
  with pytest.raises(tasks.SkipExample, match="no correct choice"):
    run("aokvqa_mc", aokvqa_test)
  v2 = records(data_dir, vqa.VQA_V2, "train")[9000]
  with pytest.raises(tasks.SkipExample, match="empty question"):
    run("vqa_v2", dict(v2, question=b"  "))
  with pytest.raises(tasks.SkipExample, match="not valid UTF-8"):
    run("vqa_v2", dict(v2, question=b"\xff?"))
  broken = copy.deepcopy(v2)
  broken["answers"]["answer"] = np.array([b""] * 10, dtype=object)
  with pytest.raises(tasks.SkipExample, match="no answers"):
    run("vqa_v2", broken)
  with pytest.raises(tasks.SkipExample, match="image"):
    run("vqa_v2", dict(v2, image=np.zeros((0, 4, 3), np.uint8)))
  mc = records(data_dir, vqa.AOKVQA, "train")["22jbM6gDxdaMaunuzgrsBB"]
  with pytest.raises(tasks.SkipExample, match="non-empty choices"):
    run("aokvqa_mc", dict(mc, choices=np.array([b"a", b""], dtype=object)))


def test_tasks_become_unified_examples(data_dir):
  spec = specs.tiny_spec(64, 32)
  ctx = spec.context(max_depth=10.0)
  for name in ("vqa_v2", "okvqa", "aokvqa", "aokvqa_mc"):
    task = tasks.get(name)
    source = pipeline.source(task.builder, task.splits["validation"], data_dir)
    features, raw, cut = pipeline.prepare(task, source[0], np.random.default_rng(0), spec, ctx)
    assert not any(cut.values()) and raw["target_text"], name
    assert features["text_inputs"].shape == (64,)


def test_data_show_draws_the_tasks_as_the_model_sees_them(data_dir, tmp_path):
  """`python -m unified_io.data.show`'s library call on the prepared tiny release."""
  config = tiny_config.get_config()
  for name in ['vqa_v2', 'okvqa', 'aokvqa_mc']:
    out = tmp_path / f"{name}.png"
    show.show(config, name, 2, str(out), data_dir=data_dir)
    assert out.stat().st_size > 0
