"""Held-out concepts (GPV-1's COCO-SCE): the split data, word matching, the train/val filter,
its counted skips on the built-in scenes, and the seen / held-out evaluation breakdown."""

import collections
import dataclasses
import json

import numpy as np
import pytest

from tests import specs
from unified_io.data import builtin_dataset
from unified_io.data import concept_split
from unified_io.data import mixtures
from unified_io.data import pipeline
from unified_io.data import scenes
from unified_io.data.tasks import registry as tasks_lib
from unified_io.data.tasks import text as text_tasks
from unified_io.data.tasks import vision
from unified_io.eval import concept_breakdown
from unified_io.eval import report
from unified_io.eval import results as results_lib
from unified_io.eval import task_eval

COCO = concept_split.load("coco_sce")
TRAIN = tasks_lib.TaskContext(split="train")
VAL = tasks_lib.TaskContext(split="validation")
TEST = tasks_lib.TaskContext(split="test")


def raw(prompt="", target="", **meta):
  return {"prompt": prompt, "target_text": target, "meta": dict(example_id="x", **meta)}


def toy_variant(family, made):
  """The COCO-SCE variant of a task of `family` whose preprocessor returns `made`."""
  base = tasks_lib.Task(
    name=f"toy_{family}",
    group="vision_language",
    builder="toy",
    preprocess=lambda example, rng, ctx: {**made, "meta": dict(made["meta"])},
    prompts=("{}",),
  )
  split = concept_split.SplitDefinition(**{**vars(COCO), "tasks": {base.name: family}})
  return concept_split.variant(split, base)


# ------------------------------------------------------------------------------ the data


def test_coco_split_is_gpv1_table6():
  groups = json.loads((concept_split.LABELS_DIR / "coco_sce.json").read_text())["groups"]
  sizes = {name: len(g["concepts"]) for name, g in groups.items()}
  assert sizes == {"H_vqa_cap": 10, "H_cls_loc": 10, "S": 60}
  assert sorted(COCO.concepts) == sorted(vision.COCO_CLASSES)  # a partition of the 80
  assert COCO.held_out["vqa"] == COCO.held_out["captioning"]
  assert {"horse", "wine glass", "cell phone", "bed"} <= COCO.held_out["vqa"]
  assert {"hot dog", "tv", "train", "banana"} <= COCO.held_out["localization"]
  assert COCO.held_out["classification"] == COCO.held_out["localization"]
  assert "person" not in COCO.held_out["vqa"] | COCO.held_out["localization"]


def test_builtin_split_holds_one_shape_out_of_each_side():
  split = concept_split.load("builtin_sce")
  assert split.held_out["vqa"] == {"triangle"}
  assert split.held_out["localization"] == {"square"}
  assert set(scenes.SHAPES) | set(scenes.COLORS) == set(split.concepts)


def test_bad_definitions_name_the_file():
  good = json.loads((concept_split.LABELS_DIR / "builtin_sce.json").read_text())
  twice = json.loads(json.dumps(good))
  twice["groups"]["S"]["concepts"].append("square")
  with pytest.raises(ValueError, match=r"x\.json: \['square'\] are in more than one group"):
    concept_split.parse(twice, "x.json")
  clash = {**good, "synonyms": {"circle": ["square"]}}
  with pytest.raises(ValueError, match="x.json: 'square' names square and circle"):
    concept_split.parse(clash, "x.json")
  with pytest.raises(ValueError, match="No concept split 'nope'"):
    concept_split.load("nope")


# ---------------------------------------------------------------------------- word match


@pytest.mark.parametrize(
  "text, concepts",
  [
    ("Two dogs play with a frisbee.", {"dog", "frisbee"}),
    ("a hot dog with mustard", {"hot dog"}),  # the food is not the animal
    ("hot dogs and hotdogs", {"hot dog"}),
    ("a dog eating a hot dog", {"dog", "hot dog"}),
    ("Teddy bears on a bed", {"teddy bear", "bed"}),  # not bear
    ("knives, buses and mice", {"knife", "bus", "mouse"}),
    ("people watching TV-stands", {"person", "tv"}),
    ("she is training for a race", set()),  # "train" is a word, not a prefix
    ("a man on his phone", {"person", "cell phone"}),  # synonyms
  ],
)
def test_word_match(text, concepts):
  assert COCO.mentions_in_text(text) == concepts


def test_no_prompt_template_of_a_text_family_names_a_concept():
  for name in ("coco_captioning", "vqa_v2", "builtin_captioning", "builtin_vqa"):
    for template in tasks_lib.get(name).prompts:
      assert not COCO.mentions_in_text(template.replace("{}", "")), (name, template)


# ------------------------------------------------------------------- the train/val filter


def test_caption_mentioning_a_held_out_class_is_skipped_in_train_and_val_only():
  task = toy_variant("captioning", raw("What does the image describe?", "Two horses graze."))
  for ctx in (TRAIN, VAL):
    with pytest.raises(tasks_lib.SkipExample, match="held out of captioning .coco_sce."):
      task.preprocess({}, None, ctx)
  kept = task.preprocess({}, None, TEST)["meta"]
  assert kept["concept_split"] == "newCpt" and kept["held_out_concepts"] == ["horse"]


def test_caption_with_hot_dog_is_kept_for_captioning():
  # hot dog is held out of localization and classification only: captions may say it
  task = toy_variant("captioning", raw("", "A hot dog next to a dog."))
  meta = task.preprocess({}, None, TRAIN)["meta"]
  assert meta["concepts"] == ["dog", "hot dog"] and meta["concept_split"] == "sameCpt"


def test_vqa_question_or_answer_mentioning_a_held_out_class():
  asked = toy_variant("vqa", raw("what color is the sheep?", "white"))
  answered = toy_variant("vqa", raw("what animal is this?", "sheep"))
  sunny = toy_variant("vqa", raw("is it a sunny day?", "yes"))
  for task in (asked, answered):
    with pytest.raises(tasks_lib.SkipExample):
      task.preprocess({}, None, TRAIN)
  assert sunny.preprocess({}, None, TRAIN)["meta"]["concept_split"] == "sameCpt"


def test_test_tag_reads_the_references_the_training_filter_does_not():
  made = raw("", "a cat on a chair", captions=["a cat on a chair", "a cat on a bed"])
  task = toy_variant("captioning", made)
  trained = task.preprocess({}, None, TRAIN)  # kept: the trained caption names no bed
  assert trained["target_text"] == "a cat on a chair"
  # the tag describes the whole annotation, references included
  assert task.preprocess({}, None, TEST)["meta"]["held_out_concepts"] == ["bed"]


@pytest.mark.parametrize(
  "family, meta, skipped",
  [
    ("localization", dict(labels=["dog", "banana"]), True),  # detection: one held-out box
    ("localization", dict(labels=["dog", "horse"]), False),  # horse: held out of VQA only
    ("localization", dict(labels=[], class_name="train", negative=True), True),
    ("classification", dict(label="tv"), True),
    ("classification", dict(label="person"), False),
  ],
)
def test_label_families(family, meta, skipped):
  task = toy_variant(family, raw("", "", **meta))
  if skipped:
    with pytest.raises(tasks_lib.SkipExample, match=f"held out of {family}"):
      task.preprocess({}, None, TRAIN)
  else:
    assert task.preprocess({}, None, TRAIN)["meta"]["concept_split"] == "sameCpt"


def test_the_base_preprocessor_makes_prompts_under_its_own_name():
  """Task.prompt of the base names the base: text prompts (text.prompt, reading
  TaskContext.task) must name it too, whatever name the pipeline gave the variant."""
  seen = []

  def preprocess(example, rng, ctx):
    seen.append(ctx.task)
    return raw(text_tasks.literal_prompt("What does the image describe?", ctx), "A cat.")

  base = tasks_lib.Task(
    name="toy_captioning",
    group="image_captioning",
    builder="toy",
    preprocess=preprocess,
    prompts=("{}",),
  )
  split = concept_split.SplitDefinition(**{**vars(COCO), "tasks": {base.name: "captioning"}})
  task = concept_split.variant(split, base)
  tokened = dataclasses.replace(TRAIN, conditioning="task_token", task=task.name)
  assert task.preprocess({}, None, tokened)["prompt"] == "toy_captioning:"
  assert task.preprocess({}, None, TRAIN)["prompt"] == "What does the image describe?"
  assert seen == ["toy_captioning", "toy_captioning"]


def test_variants_are_registered_with_a_test_split_and_mixtures():
  assert concept_split.variants("coco_sce") == [
    "coco_detection_sce",
    "coco_localization_sce",
    "coco_categorization_sce",
    "coco_captioning_sce",
    "vqa_v2_sce",
  ]
  assert tasks_lib.get("vqa_v2_sce").splits["test"] == "validation"  # GPV-1: COCO val
  assert tasks_lib.get("coco_captioning_sce").splits["test"] == "test"  # Karpathy test
  rates = mixtures.rates("coco_sce")
  assert set(rates) == set(concept_split.variants("coco_sce"))
  assert mixtures.task_size(tasks_lib.get("vqa_v2_sce")) == mixtures.task_size(
    tasks_lib.get("vqa_v2")
  )
  assert set(mixtures.rates("builtin_sce")) == set(concept_split.variants("builtin_sce"))


# ----------------------------------------------------------------- on the built-in scenes


@pytest.fixture(scope="module")
def builtin_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("builtin"))
  builtin_dataset.build(path, "scenes", num_examples=16)
  return path


@pytest.fixture(scope="module")
def spec():
  return specs.tiny_spec(32, 32)


def shapes_of(record):
  return {scenes.SHAPES[int(i)] for i in np.asarray(record["objects"]["label"]).reshape(-1)}


def test_builtin_detection_filter_and_tags(builtin_dir, spec):
  task = tasks_lib.get("builtin_detection_sce")
  records = pipeline.source(task.builder, "validation", builtin_dir)
  with_square = [i for i in range(len(records)) if "square" in shapes_of(records[i])]
  assert 0 < len(with_square) < len(records)
  val = task_eval.collect(task, spec, VAL, "validation", 100, 0, builtin_dir)
  assert dict(val.skipped) == {
    "mentions a concept held out of localization (builtin_sce)": len(with_square)
  }
  assert all("square" not in r["meta"]["labels"] for r in val.raws)
  test = task_eval.collect(task, spec, TEST, "validation", 100, 0, builtin_dir)
  tags = [r["meta"]["concept_split"] for r in test.raws]
  assert tags == ["newCpt" if i in with_square else "sameCpt" for i in range(len(records))]


def test_builtin_captioning_test_tags_follow_the_captions(builtin_dir, spec):
  task = tasks_lib.get("builtin_captioning_sce")
  test = task_eval.collect(task, spec, TEST, "test", 100, 0, builtin_dir)
  records = pipeline.source(task.builder, "test", builtin_dir)
  expected = [
    "newCpt" if any(b"triangle" in c for c in records[i]["captions"]) else "sameCpt"
    for i in range(len(records))
  ]
  assert [r["meta"]["concept_split"] for r in test.raws] == expected
  assert "newCpt" in expected and "sameCpt" in expected


class CountingSource:
  def __init__(self, base):
    self.base, self.name, self.reads = base, base.name, collections.Counter()

  def __len__(self):
    return len(self.base)

  def __getitem__(self, index):
    self.reads[index] += 1
    return self.base[index]


def test_training_stream_counts_every_skip(builtin_dir, spec):
  stream = pipeline.MixtureStream(
    ["builtin_detection_sce"], None, spec, seed=0, data_dir=builtin_dir, round_robin=True
  )
  source = stream.sources[0] = CountingSource(stream.sources[0])
  for index in range(24):
    stream.element(index)
  # Detection uses every object: a record with a square is skipped whatever the rng.
  reads_with_square = sum(n for i, n in source.reads.items() if "square" in shapes_of(source[i]))
  reason = "mentions a concept held out of localization (builtin_sce)"
  assert reads_with_square > 0
  assert stream.counters.skipped == {("builtin_detection_sce", reason): reads_with_square}


# ------------------------------------------------------------------ evaluation breakdown


def test_breakdown_scores_seen_and_held_out_apart(spec):
  task = tasks_lib.get("builtin_object_categorization_sce")
  rows = [  # (target, prediction, tag)
    ("circle", "circle", "sameCpt"),
    ("person", "person", "sameCpt"),
    ("circle", "person", "sameCpt"),
    ("square", "square", "newCpt"),
    ("square", "circle", "newCpt"),
  ]
  examples = task_eval.TaskExamples(
    task,
    [raw("", t, concept_split=tag) for t, _, tag in rows],
    {"text_inputs": np.arange(5)},
    collections.Counter(),
  )
  preds = [{"text": p} for _, p, _ in rows]
  whole = task_eval.score(examples, preds, spec, 10.0)
  assert whole.value == pytest.approx(3 / 5)
  s = concept_breakdown.with_breakdown(
    whole, examples, preds, lambda part, p: task_eval.score(part, p, spec, 10.0)
  )
  assert s.extra == {"sameCpt": 2 / 3, "sameCpt.cnt": 3, "newCpt": 1 / 2, "newCpt.cnt": 2}
  result = results_lib.TaskResult(task.group, s, 0.5, 5)
  plain = results_lib.TaskResult(task.group, whole, 0.5, 5)
  lines = report.table({"builtin_object_categorization_sce": result, "plain": plain})
  assert lines[0].endswith("| sameCpt (n) | newCpt (n) |")
  assert lines[2].endswith("| 0.500 | 0.667 (3) | 0.500 (2) |")
  assert lines[3].endswith("| 0.500 |  |  |")
  assert result.as_json()["newCpt"] == 0.5
  logged = task_eval.scalars({"t": result})
  assert (logged["eval/t/sameCpt"], logged["eval/t/newCpt"]) == (pytest.approx(2 / 3), 0.5)


def test_untagged_examples_get_no_breakdown_and_an_empty_part_no_value(spec):
  task = tasks_lib.get("builtin_object_categorization")
  examples = task_eval.TaskExamples(task, [raw("", "circle")], {"x": np.zeros(1)}, {})
  assert concept_breakdown.breakdown(examples, [{"text": "circle"}], None) == {}
  examples.raws[0]["meta"]["concept_split"] = "sameCpt"
  parts = concept_breakdown.breakdown(
    examples, [{"text": "circle"}], lambda part, p: task_eval.score(part, p, spec, 10.0)
  )
  assert parts == {"sameCpt": 1.0, "sameCpt.cnt": 1, "newCpt.cnt": 0}
  score = results_lib.Score("accuracy", 1.0, 1.0, "x", extra=parts)
  assert concept_breakdown.cells(score) == ("1.000 (1)", "- (0)")
