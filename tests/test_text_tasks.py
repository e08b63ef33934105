"""Span corruption, masked image denoising, the built-in text tasks and mixture rates.

The real NLP datasets (data/tasks/nlp.py, nlp_qa.py) are tests/test_nlp_tasks.py.
"""

import numpy as np
import pytest

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
  # An answer past the last strided window (starts 0, 80, 160, 240 end at word 400) is
  # still found: the last window is flush with the end of the context.
  tail = [f"w{i}" for i in range(400)] + ["answer"] + [f"v{i}" for i in range(50)]
  assert [start for start, _ in text_tasks.windows(tail, "answer")] == [291]


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
