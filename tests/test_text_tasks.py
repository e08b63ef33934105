"""Span corruption, masked image denoising, text-task preprocessors and mixture rates."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from unified_io.common import text_tokenizer
from unified_io.common import vocab
from unified_io.data import builtin_dataset
from unified_io.data import mixtures
from unified_io.data import pipeline
from unified_io.data.tasks import registry as tasks_lib
from unified_io.data.tasks import text as text_tasks

WORDS = "the quick brown fox jumps over the lazy dog while a cat sleeps on the warm mat".split()


def test_span_corruption_round_trips_and_drops_fifteen_percent():
  for seed in range(20):
    corrupted, target = text_tasks.span_corruption(WORDS, np.random.default_rng(seed))
    assert text_tasks.fill_spans(corrupted, target) == " ".join(WORDS)
    sentinels = [w for w in corrupted.split() if w.startswith("<extra_id_")]
    # Sentinels are numbered from 0 in order, once each, in inputs and targets alike.
    assert sentinels == [vocab.extra_id_token(k) for k in range(len(sentinels))]
    assert [w for w in target.split() if w.startswith("<extra_id_")] == sentinels
    dropped = len(target.split()) - len(sentinels)
    assert dropped == round(len(WORDS) * 0.15)  # 17 words -> 3 dropped


def test_span_corruption_needs_two_words():
  with pytest.raises(tasks_lib.SkipExample):
    text_tasks.span_corruption(["alone"], np.random.default_rng(0))


def test_masked_patches_hide_three_quarters():
  keep = text_tasks.masked_patches(4, np.random.default_rng(0))
  assert keep.shape == (16,) and keep.sum() == 4
  assert text_tasks.masked_patches(24, np.random.default_rng(1)).sum() == 144  # 576 / 4


def test_qa_windows_keep_the_answer():
  context = [f"w{i}" for i in range(400)] + ["answer"] + [f"v{i}" for i in range(100)]
  found = text_tasks.windows(context, "answer")
  assert found and all("answer" in words for _, words in found)
  assert all(len(words) <= text_tasks.QA_WINDOW_WORDS for _, words in found)


def test_multitask_rates_follow_the_paper():
  # Sizes 100 and 400 in one group: weights sqrt -> 10 : 20 of the group's rate.
  names = ["builtin_depth", "builtin_segmentation", "builtin_vqa"]
  sizes = {"builtin_depth": 100, "builtin_segmentation": 400, "builtin_vqa": 7}
  rates = mixtures.multitask_rates(names, sizes=sizes)
  dense, vl = tasks_lib.GROUP_RATES["dense_labelling"], tasks_lib.GROUP_RATES["vision_language"]
  assert rates["builtin_depth"] == pytest.approx(dense / (dense + vl) / 3)
  assert rates["builtin_segmentation"] == pytest.approx(dense / (dense + vl) * 2 / 3)
  assert rates["builtin_vqa"] == pytest.approx(vl / (dense + vl))


def test_builtin_multitask_covers_all_groups_at_paper_rates():
  rates = mixtures.rates("builtin_multitask")
  assert sum(rates.values()) == pytest.approx(1.0) and len(rates) == 22
  by_group = {}
  for name, rate in rates.items():
    group = tasks_lib.get(name).group
    by_group[group] = by_group.get(group, 0.0) + rate
  assert by_group == pytest.approx(tasks_lib.GROUP_RATES)
  table = mixtures.table("builtin_multitask")
  assert "image_synthesis" in table and "18.75%" in table and "6.25%" in table
  with pytest.raises(KeyError, match="builtin_multitask"):
    mixtures.rates("nope")


@pytest.fixture(scope="module")
def text_source(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tfds"))
  builtin_dataset.build(path, "text", num_examples=40)
  return path


@pytest.mark.parametrize(
  "name",
  [
    "builtin_entailment",
    "builtin_sentiment",
    "builtin_question_answering",
    "builtin_summarization",
    "builtin_masked_lm",
  ],
)
def test_builtin_text_tasks_read_only_their_kind(name, text_source):
  task = tasks_lib.get(name)
  src = pipeline.source(task.builder, "train", text_source, task.record_filter)
  ctx = tasks_lib.TaskContext()
  assert 0 < len(src) < 40
  for i in range(len(src)):
    raw = task.preprocess(src[i], np.random.default_rng(i), ctx)
    assert raw["prompt"] and raw["image"] is None
    if task.metric is tasks_lib.Metric.ACCURACY:
      assert raw["target_text"] in raw["meta"]["class_names"]
      assert raw["prompt"].startswith("context: ") and " question: " in raw["prompt"]
    if name == "builtin_masked_lm":
      assert text_tasks.fill_spans(raw["prompt"], raw["target_text"]) == raw["meta"]["original"]


def test_glue_and_squad_adapters_on_tfds_structures():
  ctx, rng = tasks_lib.TaskContext(), np.random.default_rng(0)
  mnli = {"premise": b"A man sleeps.", "hypothesis": b"A person rests.", "label": 0, "idx": 3}
  raw = tasks_lib.get("glue_mnli").preprocess(mnli, rng, ctx)
  assert raw["target_text"] == "entailment"
  assert raw["prompt"] == (
    "context: A man sleeps. A person rests. question: Does this sentence "
    "entail the following sentence?"
  )
  with pytest.raises(tasks_lib.SkipExample):
    tasks_lib.get("glue_mnli").preprocess(dict(mnli, label=-1), rng, ctx)
  squad = {
    "context": b"Paris is the capital of France.",
    "question": b"What is the capital?",
    "answers": {"text": np.array([b"Paris"], object), "answer_start": np.array([0])},
    "id": b"q1",
  }
  raw = tasks_lib.get("squad").preprocess(squad, rng, ctx)
  assert raw["target_text"] == "Paris" and "What is the capital?" in raw["prompt"]


# ------------------------------------------------------------ real datasets (mock data)

CTX = tasks_lib.TaskContext()
# Splits of the real builders (TFDS catalog; each builder's _split_generators).
REAL_SPLITS = {
  "glue/mnli": {
    "train",
    "validation_matched",
    "validation_mismatched",
    "test_matched",
    "test_mismatched",
  },
  "glue/sst2": {"train", "validation", "test"},
  "squad/v1.1": {"train", "validation"},
  "cnn_dailymail": {"train", "validation", "test"},
}
TEXT_TASKS = {
  "glue_mnli": "glue/mnli",
  "glue_sst2": "glue/sst2",
  "squad": "squad/v1.1",
  "cnn_dailymail": "cnn_dailymail",
}


def mock_example(builder, split="train", text_keys=()):
  """One `tfds.as_numpy` record of `builder` from mock data; blank `text_keys` filled in."""
  with tfds.testing.mock_data(num_examples=1, policy=tfds.testing.MockPolicy.USE_CODE):
    example = next(iter(tfds.as_numpy(tfds.load(builder, split=split))))
  for key in text_keys:  # mock text is random and may be blank
    if not example[key].strip():
      example[key] = f"some {key} text".encode()
  return example


def run(name, example, seed=0):
  return tasks_lib.get(name).preprocess(example, np.random.default_rng(seed), CTX)


def label_names(builder):
  return tfds.builder(builder).info.features["label"].names


def test_text_tasks_name_real_builders_and_splits():
  """Each task reads its TFDS builder and only splits that builder has."""
  for name, builder in TEXT_TASKS.items():
    task = tasks_lib.get(name)
    assert task.builder == builder and set(task.splits.values()) <= REAL_SPLITS[builder]


def test_mnli_on_mock_data():
  """MNLI: premise and hypothesis in the context, label name target; label -1 skipped."""
  example = mock_example("glue/mnli", text_keys=("premise", "hypothesis"))
  names = label_names("glue/mnli")
  assert tuple(names) == text_tasks.GLUE_MNLI_LABELS
  for label in [int(example["label"]), 0, 1, 2]:
    raw = run("glue_mnli", dict(example, label=np.int64(label)))
    assert raw["target_text"] == names[label] == raw["meta"]["label"]
    assert raw["prompt"] == (
      f"context: {example['premise'].decode()} "
      f"{example['hypothesis'].decode()} question: Does this sentence "
      "entail the following sentence?"
    )
    assert raw["meta"]["example_id"] == str(example["idx"])
  test = mock_example("glue/mnli", "test_matched")
  with pytest.raises(tasks_lib.SkipExample, match="unlabelled"):
    run("glue_mnli", dict(test, label=np.int64(-1)))


def test_sst2_on_mock_data():
  """SST-2: the sentence in the context, label name target; label -1 skipped."""
  example = mock_example("glue/sst2", text_keys=("sentence",))
  names = label_names("glue/sst2")
  assert tuple(names) == text_tasks.GLUE_SST2_LABELS
  for label in [int(example["label"]), 0, 1]:
    raw = run("glue_sst2", dict(example, label=np.int64(label)))
    assert raw["target_text"] == names[label]
    assert raw["prompt"] == (
      f"context: {example['sentence'].decode()} question: What is the sentiment of this sentence?"
    )
  with pytest.raises(tasks_lib.SkipExample, match="unlabelled"):
    run("glue_sst2", dict(mock_example("glue/sst2", "test"), label=np.int64(-1)))


def test_squad_on_mock_data():
  """SQuAD: context words and question in the prompt, an answer as target; no answer skipped."""
  example = mock_example("squad/v1.1", text_keys=("context", "question"))
  answers = [a.decode() for a in example["answers"]["text"] if a.strip()]
  if not answers:
    example["answers"] = {
      "text": np.array([b"an answer"], object),
      "answer_start": np.array([0], np.int32),
    }
    answers = ["an answer"]
  context, question = example["context"].decode(), example["question"].decode()
  assert len(context.split()) <= text_tasks.QA_WINDOW_WORDS  # one window: the whole context
  for seed in range(4):
    raw = run("squad", example, seed)
    assert raw["target_text"] in answers and raw["meta"]["answers"] == answers
    assert raw["prompt"] == f"context: {' '.join(context.split())} question: {question}"
    assert raw["meta"]["example_id"] == example["id"].decode()
  for text in ([], [b"", b"  "]):
    blank = dict(
      example,
      answers={"text": np.array(text, object), "answer_start": np.zeros(len(text), np.int32)},
    )
    with pytest.raises(tasks_lib.SkipExample, match="no answer text"):
      run("squad", blank)


def test_cnn_dailymail_on_mock_data():
  """CNN/DailyMail: the article in the prompt, the highlights as target; blank ones skipped."""
  example = mock_example("cnn_dailymail", text_keys=("article", "highlights"))
  article, highlights = example["article"].decode(), example["highlights"].decode()
  raw = run("cnn_dailymail", example)
  assert raw["target_text"] == highlights and raw["meta"]["captions"] == [highlights]
  assert raw["prompt"] == (
    f"context: {article} question: What is a short summary of this document?"
  )
  assert raw["meta"]["example_id"] == example["id"].decode()
  for key in ("article", "highlights"):
    with pytest.raises(tasks_lib.SkipExample, match="empty article or summary"):
      run("cnn_dailymail", dict(example, **{key: b"  "}))


@pytest.mark.parametrize("name", sorted(TEXT_TASKS))
def test_blank_text_fields_skip_or_tokenize(name):
  """Blank text fields: a counted SkipExample or a unified example, never a crash."""
  example = mock_example(TEXT_TASKS[name])
  example = {k: b"" if isinstance(v, bytes) else v for k, v in example.items()}
  spec = pipeline.ExampleSpec(
    tokenizer=text_tokenizer.TextTokenizer(
      "tokenizers/uio_tiny_2k.model", 512, expected_text_size=2000
    ),
    text_inputs=32,
    text_targets=16,
    input_image_size=64,
    patch_size=16,
    target_image_size=64,
    target_downsample=8,
  )
  try:
    features, _, _ = pipeline.prepare(
      tasks_lib.get(name), example, np.random.default_rng(0), spec, spec.context(10.0)
    )
  except tasks_lib.SkipExample as e:
    assert str(e)
  else:
    assert features["text_inputs"].shape == (32,) and features["text_targets"][0] != 0
