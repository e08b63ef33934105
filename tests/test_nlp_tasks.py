"""The real NLP and language-modelling tasks (data/tasks/nlp.py, nlp_qa.py) on TFDS mock data.

Each builder's record comes from `tfds.testing.mock_data` (USE_CODE: the builder's own
feature spec, random values), once per builder for the module; the tests set the fields
they read to fixed values and compare prompts and targets with strings written out by hand.
Label names are checked against each builder's real ClassLabel, split names against the
builders' `_split_generators` (read in TFDS 4.9.10's source: without prepared data TFDS
knows no split, and mock data accepts any name).
"""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests import specs
from unified_io.data import pipeline
from unified_io.data.tasks import registry as tasks_lib
from unified_io.data.tasks import text as text_tasks

CTX = tasks_lib.TaskContext()
Skip = tasks_lib.SkipExample
GLUE3 = {"train", "validation", "test"}
HELLASWAG_SPLITS = {"train", "train_activitynet", "train_wikihow", "validation", "test"} | {
  f"{split}_{domain}_{source}"
  for split in ("validation", "test")
  for domain in ("ind", "ood")
  for source in ("activitynet", "wikihow")
}
# Each builder's splits, from its _split_generators in TFDS 4.9.10.
REAL_SPLITS = {
  **{f"glue/{c}": GLUE3 for c in ("cola", "sst2", "mrpc", "qqp", "stsb", "qnli", "rte", "wnli")},
  "glue/mnli": {
    "train",
    "validation_matched",
    "validation_mismatched",
    "test_matched",
    "test_mismatched",
  },
  **{
    f"super_glue/{c}": GLUE3
    for c in ("cb", "rte", "wic", "wsc.fixed", "boolq", "multirc", "copa", "record")
  },
  "snli": GLUE3,
  "sci_tail": GLUE3,
  "imdb_reviews/plain_text": {"train", "test", "unsupervised"},
  "paws_wiki/labeled_final_raw": GLUE3,
  "squad/v2.0": {"train", "validation"},
  **{
    f"mrqa/{c}": {"train", "validation"}
    for c in ("news_qa", "trivia_qa", "search_qa", "hotpot_qa", "natural_questions")
  },
  "cosmos_qa": GLUE3,
  "openbookqa": GLUE3,
  "hellaswag": HELLASWAG_SPLITS,
  "gigaword": GLUE3,
  "cnn_dailymail": GLUE3,
  "c4/en": {"train", "validation"},
  "wikipedia/20230601.en": {"train"},
}
C, T = tasks_lib.Output.CHOICE, tasks_lib.Output.TEXT
ACC, EM, ROUGE = tasks_lib.Metric.ACCURACY, tasks_lib.Metric.EXACT_MATCH, tasks_lib.Metric.ROUGE_L
# name: (builder, group, output, metric)
TASKS = {
  "glue_cola": ("glue/cola", "nlp", C, ACC),
  "glue_sst2": ("glue/sst2", "nlp", C, ACC),
  "glue_mrpc": ("glue/mrpc", "nlp", C, ACC),
  "glue_qqp": ("glue/qqp", "nlp", C, ACC),
  "glue_stsb": ("glue/stsb", "nlp", C, ACC),
  "glue_mnli": ("glue/mnli", "nlp", C, ACC),
  "glue_qnli": ("glue/qnli", "nlp", C, ACC),
  "glue_rte": ("glue/rte", "nlp", C, ACC),
  "glue_wnli": ("glue/wnli", "nlp", C, ACC),
  "superglue_cb": ("super_glue/cb", "nlp", C, ACC),
  "superglue_rte": ("super_glue/rte", "nlp", C, ACC),
  "superglue_wic": ("super_glue/wic", "nlp", C, ACC),
  "superglue_wsc": ("super_glue/wsc.fixed", "nlp", C, ACC),
  "snli": ("snli", "nlp", C, ACC),
  "scitail": ("sci_tail", "nlp", C, ACC),
  "imdb_reviews": ("imdb_reviews/plain_text", "nlp", C, ACC),
  "paws_wiki": ("paws_wiki/labeled_final_raw", "nlp", C, ACC),
  "squad_v2": ("squad/v2.0", "nlp", T, EM),
  "mrqa_news_qa": ("mrqa/news_qa", "nlp", T, EM),
  "mrqa_trivia_qa": ("mrqa/trivia_qa", "nlp", T, EM),
  "mrqa_search_qa": ("mrqa/search_qa", "nlp", T, EM),
  "mrqa_hotpot_qa": ("mrqa/hotpot_qa", "nlp", T, EM),
  "mrqa_natural_questions": ("mrqa/natural_questions", "nlp", T, EM),
  "superglue_record": ("super_glue/record", "nlp", T, EM),
  "superglue_boolq": ("super_glue/boolq", "nlp", C, ACC),
  "superglue_multirc": ("super_glue/multirc", "nlp", C, ACC),
  "superglue_copa": ("super_glue/copa", "nlp", C, ACC),
  "cosmos_qa": ("cosmos_qa", "nlp", C, ACC),
  "openbookqa": ("openbookqa", "nlp", C, ACC),
  "hellaswag": ("hellaswag", "nlp", C, ACC),
  "gigaword": ("gigaword", "nlp", T, ROUGE),
  "cnn_dailymail": ("cnn_dailymail", "nlp", T, ROUGE),
  "c4_masked_lm": ("c4/en", "language_modelling", T, EM),
  "wikipedia_masked_lm": ("wikipedia/20230601.en", "language_modelling", T, None),
}


@pytest.fixture(scope="module")
def records():
  """One mock `tfds.as_numpy` train record per builder (mock_data is slow to enter)."""
  out = {}
  with tfds.testing.mock_data(num_examples=1, policy=tfds.testing.MockPolicy.USE_CODE):
    for builder in sorted({b for b, *_ in TASKS.values()}):
      out[builder] = next(iter(tfds.as_numpy(tfds.load(builder, split="train"))))
  return out


def run(name, example, seed=0):
  return tasks_lib.get(name).preprocess(example, np.random.default_rng(seed), CTX)


def record(records, name, **fields):
  """The task's mock record with `fields` set (str values are encoded as TFDS text)."""
  example = dict(records[TASKS[name][0]])
  example.update({k: v.encode() if isinstance(v, str) else v for k, v in fields.items()})
  return example


def strings(*values):
  return np.array([v.encode() for v in values], object)


# ----------------------------------------------------------------------------- registry


def test_tasks_name_real_builders_and_splits():
  for name, (builder, group, output, metric) in TASKS.items():
    task = tasks_lib.get(name)
    assert (task.builder, task.group, task.output, task.metric) == (builder, group, output, metric)
    assert "train" in task.splits and set(task.splits.values()) <= REAL_SPLITS[builder], name
    assert task.size is None, name  # sizes live in the dataset catalogue
    assert task.description, name
  assert "squad" not in tasks_lib.all_tasks()  # SQuAD 1.1 was replaced by squad_v2
  # Unlabelled test splits are left out.
  assert "test" not in tasks_lib.get("glue_sst2").splits
  assert tasks_lib.get("glue_mnli").splits["validation"] == "validation_matched"
  assert tasks_lib.get("imdb_reviews").splits == {"train": "train", "test": "test"}


# Each task's TFDS label names (by hand, from the builders) and the target of each name.
LABELS = {
  "glue_cola": {"unacceptable": "unacceptable", "acceptable": "acceptable"},
  "glue_sst2": {"negative": "negative", "positive": "positive"},
  "glue_mrpc": {"not_equivalent": "no", "equivalent": "yes"},
  "glue_qqp": {"not_duplicate": "no", "duplicate": "yes"},
  "glue_mnli": {"entailment": "entailment", "neutral": "neutral", "contradiction": "contradiction"},
  "glue_qnli": {"entailment": "yes", "not_entailment": "no"},
  "glue_rte": {"entailment": "yes", "not_entailment": "no"},
  "glue_wnli": {"not_entailment": "no", "entailment": "yes"},
  "superglue_cb": {
    "entailment": "entailment",
    "contradiction": "contradiction",
    "neutral": "neutral",
  },
  "superglue_rte": {"entailment": "yes", "not_entailment": "no"},
  "superglue_wic": {"False": "no", "True": "yes"},
  "superglue_wsc": {"False": "no", "True": "yes"},
  "snli": {"entailment": "entailment", "neutral": "neutral", "contradiction": "contradiction"},
  "scitail": {"entails": "yes", "neutral": "no"},
  "imdb_reviews": {"neg": "negative", "pos": "positive"},
  "paws_wiki": {"different_meaning": "no", "paraphrase": "yes"},
  "superglue_boolq": {"False": "no", "True": "yes"},
  "superglue_multirc": {"False": "no", "True": "yes"},
}


# Text fields of the yes/no QA tasks (the classification tasks use CLASSIFICATION's below).
LABEL_FIELDS = {
  "superglue_boolq": dict(passage="Pawns can become queens.", question="can pawns become queens"),
  "superglue_multirc": dict(paragraph="Sam ate.", question="Who ate?", answer="Sam"),
}


@pytest.mark.parametrize("name", sorted(LABELS))
def test_label_names_follow_the_builders_class_labels(name, records):
  """Every TFDS label index gives the readable target of its TFDS name."""
  names = tfds.builder(TASKS[name][0]).info.features["label"].names
  assert sorted(names) == sorted(LABELS[name])  # the hand-written names are the builder's
  example = record(records, name, **LABEL_FIELDS.get(name, CLASSIFICATION.get(name, ({},))[0]))
  for index, tfds_name in enumerate(names):
    raw = run(name, dict(example, label=np.int64(index)))
    assert raw["target_text"] == LABELS[name][tfds_name] == raw["meta"]["label"]
    assert tuple(raw["meta"]["class_names"]) == tuple(LABELS[name][n] for n in names)
  for bad in (-1, len(names)):
    with pytest.raises(Skip, match="unlabelled"):
      run(name, dict(example, label=np.int64(bad)))


# ------------------------------------------------------------------ text classification

ENTAIL = "Does this sentence entail the following sentence?"
NLI = "Is the relation of the sentences entailment, neutral or contradiction?"
PAIR = dict(sentence1="A man sleeps.", sentence2="A person rests.")
PAIR_CONTEXT = "A man sleeps. A person rests."
NLI_PAIR = dict(premise="A man sleeps.", hypothesis="A person rests.")
# name: (fields, label index, prompt, target)
CLASSIFICATION = {
  "glue_cola": (
    dict(sentence="The book was read by me."),
    1,
    "context: The book was read by me. question: "
    "Is this sentence grammatically acceptable or unacceptable?",
    "acceptable",
  ),
  "glue_sst2": (
    dict(sentence="A gripping film."),
    1,
    "context: A gripping film. question: What is the sentiment of this sentence?",
    "positive",
  ),
  "glue_mrpc": (
    dict(sentence1="He left.", sentence2="He went away."),
    1,
    "context: He left. He went away. question: Are these sentence paraphrases?",
    "yes",
  ),
  "glue_qqp": (
    dict(question1="How do I cook rice?", question2="How is rice cooked?"),
    0,
    "context: How do I cook rice? How is rice cooked? question: "
    "Do these questions ask the same thing?",
    "no",
  ),
  "glue_mnli": (NLI_PAIR, 0, f"context: {PAIR_CONTEXT} question: {NLI}", "entailment"),
  "glue_qnli": (
    dict(question="Where is Koblenz?", sentence="Koblenz is in Germany."),
    0,
    "context: Koblenz is in Germany. Where is Koblenz? question: "
    "Does the first sentence contain the answer to the second sentence?",
    "yes",
  ),
  "glue_rte": (PAIR, 1, f"context: {PAIR_CONTEXT} question: {ENTAIL}", "no"),
  "glue_wnli": (PAIR, 1, f"context: {PAIR_CONTEXT} question: {ENTAIL}", "yes"),
  "superglue_cb": (NLI_PAIR, 1, f"context: {PAIR_CONTEXT} question: {NLI}", "contradiction"),
  "superglue_rte": (NLI_PAIR, 0, f"context: {PAIR_CONTEXT} question: {ENTAIL}", "yes"),
  "superglue_wic": (
    dict(word="bank", sentence1="He sat on the bank.", sentence2="The bank lent money."),
    0,
    "context: He sat on the bank. The bank lent money. question: "
    'Does the word " bank " have the same meaning in both sentences?',
    "no",
  ),
  "superglue_wsc": (
    dict(
      text="The cup did not fit in the bag as it was big.", span1_text="The cup", span2_text="it"
    ),
    1,
    "context: The cup did not fit in the bag as it was big. question: "
    'Does the word " it " refer to The cup?',
    "yes",
  ),
  "snli": (NLI_PAIR, 2, f"context: {PAIR_CONTEXT} question: {NLI}", "contradiction"),
  "scitail": (NLI_PAIR, 0, f"context: {PAIR_CONTEXT} question: {ENTAIL}", "yes"),
  "imdb_reviews": (
    dict(text="Great film.<br /><br />Loved it."),
    1,
    "context: Great film. Loved it. question: What is the sentiment of this sentence?",
    "positive",
  ),
  "paws_wiki": (
    PAIR,
    0,
    f"context: {PAIR_CONTEXT} question: Are these sentence paraphrases?",
    "no",
  ),
}


@pytest.mark.parametrize("name", sorted(CLASSIFICATION))
def test_classification_prompts_and_targets(name, records):
  fields, label, prompt, target = CLASSIFICATION[name]
  raw = run(name, record(records, name, label=np.int64(label), **fields))
  assert raw["prompt"] == prompt and raw["target_text"] == target
  assert raw["image"] is None and target in raw["meta"]["class_names"]
  # A blank input sentence and bytes that are not UTF-8 are counted skips.
  key = next(k for k in fields if k not in ("word", "span1_text", "span2_text"))
  with pytest.raises(Skip, match=f"empty {key}"):
    run(name, record(records, name, label=np.int64(label), **dict(fields, **{key: "  "})))
  with pytest.raises(Skip, match=f"{key} is not valid UTF-8"):
    run(name, record(records, name, label=np.int64(label), **dict(fields, **{key: b"\xff\xfe"})))


def test_stsb_scores_round_to_a_fifth_as_t5_does(records):
  base = record(records, "glue_stsb", **PAIR)
  # T5: round(score * 5) / 5 in float32, half to even; 4.9 * 5 is 24.5 in float32.
  for score, target in [(3.8, "3.8"), (2.5, "2.4"), (3.5, "3.6"), (4.9, "4.8"), (0.1, "0.0")]:
    raw = run("glue_stsb", dict(base, label=np.float32(score)))
    assert raw["target_text"] == target and raw["meta"]["score"] == pytest.approx(score)
    assert raw["prompt"] == (
      f"context: {PAIR_CONTEXT} question: How similar are these sentences on a scale from 0 to 5?"
    )
  classes = raw["meta"]["class_names"]
  assert len(classes) == 26 and classes[:3] == ("0.0", "0.2", "0.4") and classes[-1] == "5.0"
  for score, target in [(0.0, "0.0"), (5.0, "5.0")]:
    assert run("glue_stsb", dict(base, label=np.float32(score)))["target_text"] == target
  with pytest.raises(Skip, match="unlabelled"):
    run("glue_stsb", dict(base, label=np.float32(-1.0)))


def test_imdb_keeps_the_first_words_of_a_long_review(records):
  review = " ".join(f"w{i}" for i in range(300))
  raw = run("imdb_reviews", record(records, "imdb_reviews", text=review, label=np.int64(0)))
  kept = " ".join(f"w{i}" for i in range(text_tasks.QA_WINDOW_WORDS))
  assert raw["prompt"] == f"context: {kept} question: What is the sentiment of this sentence?"


# ------------------------------------------------------------------- question answering

CAPITAL = "Paris is the capital of France."
CAPITAL_Q = "What is the capital of France?"


def test_squad_v2_answers_and_unanswerable(records):
  answers = {"text": strings("Paris", "Paris", "the city of Paris"), "answer_start": np.zeros(3)}
  base = record(records, "squad_v2", context=CAPITAL, question=CAPITAL_Q, id="q1")
  raw = run("squad_v2", dict(base, is_impossible=np.False_, answers=answers))
  assert raw["prompt"] == f"context: {CAPITAL} question: {CAPITAL_Q}"
  assert raw["target_text"] == "Paris"
  assert raw["meta"]["answers"] == ["Paris", "the city of Paris"]
  assert raw["meta"]["example_id"] == "q1"
  empty = {"text": np.array([], object), "answer_start": np.zeros(0, np.int32)}
  raw = run("squad_v2", dict(base, is_impossible=np.True_, answers=empty))
  assert raw["target_text"] == "unanswerable" and raw["meta"]["answers"] == ["unanswerable"]
  assert raw["prompt"] == f"context: {CAPITAL} question: {CAPITAL_Q}"
  for blank in (empty, {"text": strings(" "), "answer_start": np.zeros(1)}):
    with pytest.raises(Skip, match="no answer text"):
      run("squad_v2", dict(base, is_impossible=np.False_, answers=blank))
  with pytest.raises(Skip, match="empty question"):
    run("squad_v2", dict(base, question=b" ", is_impossible=np.True_, answers=empty))


@pytest.mark.parametrize(
  "name",
  ["mrqa_news_qa", "mrqa_trivia_qa", "mrqa_search_qa", "mrqa_hotpot_qa", "mrqa_natural_questions"],
)
def test_mrqa_detected_answers_first_and_markers_dropped(name, records):
  base = records[TASKS[name][0]]
  detected = dict(base["detected_answers"], text=strings("Paris"))
  example = record(
    records,
    name,
    context="[DOC] [TLE] France [PAR] " + CAPITAL,
    question=CAPITAL_Q,
    qid="abc",
    detected_answers=detected,
    answers=strings("paris", "Paris"),
  )
  raw = run(name, example)
  assert raw["prompt"] == f"context: France {CAPITAL} question: {CAPITAL_Q}"
  assert raw["target_text"] == "Paris" and raw["meta"]["answers"] == ["Paris", "paris"]
  assert raw["meta"]["example_id"] == "abc"
  no_answer = dict(example, detected_answers=dict(detected, text=strings()), answers=strings())
  with pytest.raises(Skip, match="no answer text"):
    run(name, no_answer)


def test_mrqa_long_context_window_holds_the_answer(records):
  context = " ".join([f"w{i}" for i in range(400)] + ["Paris"] + [f"v{i}" for i in range(50)])
  example = record(
    records,
    "mrqa_news_qa",
    context=context,
    question=CAPITAL_Q,
    detected_answers=dict(records["mrqa/news_qa"]["detected_answers"], text=strings("Paris")),
    answers=strings("Paris"),
  )
  for seed in range(5):
    prompt = run("mrqa_news_qa", example, seed)["prompt"]
    words = prompt[len("context: ") : prompt.index(" question: ")].split()
    assert "Paris" in words and len(words) <= text_tasks.QA_WINDOW_WORDS


def test_record_fills_the_placeholder(records):
  example = record(
    records,
    "superglue_record",
    passage="A storm hit Leeds.\n@highlight\nResidents flee\n@highlight\nRoads are closed",
    query="@placeholder was hit by a storm.",
    answers=strings("Leeds", "Leeds"),
  )
  raw = run("superglue_record", example)
  assert raw["prompt"] == (
    "context: A storm hit Leeds. Residents flee. Roads are closed question: "
    'Which entity fills the blank " _ " in: _ was hit by a storm.'
  )
  assert raw["target_text"] == "Leeds" and raw["meta"]["answers"] == ["Leeds"]
  with pytest.raises(Skip, match="no answer text"):  # the test split has no answers
    run("superglue_record", dict(example, answers=strings()))


def test_boolq_question_and_yes_no(records):
  example = record(
    records,
    "superglue_boolq",
    passage="Pawns can be promoted to a queen.",
    question="can a pawn become a queen",
    label=np.int64(1),
  )
  raw = run("superglue_boolq", example)
  assert raw["prompt"] == (
    "context: Pawns can be promoted to a queen. question: Can a pawn become a queen?"
  )
  assert raw["target_text"] == "yes" and raw["meta"]["class_names"] == ("no", "yes")
  # A long passage keeps the window sharing most words with the question.
  passage = " ".join([f"w{i}" for i in range(300)] + ["a pawn can become a queen ."])
  prompt = run("superglue_boolq", dict(example, passage=passage.encode()))["prompt"]
  context = prompt[len("context: ") : prompt.index(" question: ")].split()
  assert len(context) == text_tasks.QA_WINDOW_WORDS and context[-3:] == ["a", "queen", "."]


def test_multirc_asks_about_one_candidate(records):
  example = record(
    records,
    "superglue_multirc",
    paragraph="Sam ate an apple. Then he slept.",
    question="What did Sam eat?",
    answer="an apple",
    label=np.int64(1),
  )
  raw = run("superglue_multirc", example)
  assert raw["prompt"] == (
    "context: Sam ate an apple. Then he slept. question: "
    'What did Sam eat? Is " an apple " a correct answer?'
  )
  assert raw["target_text"] == "yes"
  with pytest.raises(Skip, match="empty answer"):
    run("superglue_multirc", dict(example, answer=b""))


def test_copa_lists_the_choices(records):
  example = record(
    records,
    "superglue_copa",
    premise="The man broke his toe.",
    choice1="He dropped a hammer on his foot.",
    choice2="He got a hole in his sock.",
    question="cause",
    label=np.int64(0),
  )
  raw = run("superglue_copa", example)
  assert raw["prompt"] == (
    "context: The man broke his toe. (0) He dropped a hammer on his foot. "
    "(1) He got a hole in his sock. question: Which option is the more likely cause of this?"
  )
  assert raw["target_text"] == "(0) He dropped a hammer on his foot."
  assert raw["meta"]["class_names"] == (
    "(0) He dropped a hammer on his foot.",
    "(1) He got a hole in his sock.",
  )
  effect = run("superglue_copa", dict(example, question=b"effect", label=np.int64(1)))
  assert effect["prompt"].endswith("question: Which option is the more likely effect of this?")
  assert effect["target_text"] == "(1) He got a hole in his sock."
  with pytest.raises(Skip, match="unlabelled"):
    run("superglue_copa", dict(example, label=np.int64(-1)))


def test_cosmos_qa_options_and_question(records):
  answers = {f"answer{k}": v for k, v in enumerate(["I overslept.", "Rain.", "A cat.", "None."])}
  example = record(
    records,
    "cosmos_qa",
    context="I missed the bus today.",
    question="Why did I miss the bus?",
    label=np.int64(0),
    id="c1",
    **answers,
  )
  raw = run("cosmos_qa", example)
  assert raw["prompt"] == (
    "context: I missed the bus today. (0) I overslept. (1) Rain. (2) A cat. (3) None. "
    "question: Why did I miss the bus?"
  )
  assert raw["target_text"] == "(0) I overslept." and raw["meta"]["example_id"] == "c1"
  with pytest.raises(Skip, match="unlabelled"):  # the test split
    run("cosmos_qa", dict(example, label=np.int64(-1)))
  with pytest.raises(Skip, match="empty option"):
    run("cosmos_qa", dict(example, answer2=b" "))


def test_openbookqa_has_no_context_but_the_options(records):
  question = {
    "stem": b"What do plants need to grow?",
    **{f"choice_{k}": v.encode() for k, v in zip("ABCD", ["sunlight", "sand", "noise", "plastic"])},
  }
  raw = run("openbookqa", record(records, "openbookqa", question=question, answerKey=np.int64(0)))
  assert raw["prompt"] == (
    "context: (0) sunlight (1) sand (2) noise (3) plastic question: What do plants need to grow?"
  )
  assert raw["target_text"] == "(0) sunlight"


def test_hellaswag_continuation(records):
  endings = strings("sits down.", "runs away.", "sings.", "waves at the camera.")
  example = record(
    records, "hellaswag", context="A man stands in a hall. He", endings=endings, label=np.int32(3)
  )
  raw = run("hellaswag", example)
  assert raw["prompt"] == (
    "context: A man stands in a hall. He (0) sits down. (1) runs away. (2) sings. "
    "(3) waves at the camera. question: "
    "Which option is the most likely continutation of this paragraph?"
  )
  assert raw["target_text"] == "(3) waves at the camera."
  with pytest.raises(Skip, match="unlabelled"):  # the test split's -1
    run("hellaswag", dict(example, label=np.int32(-1)))


# ----------------------------------------------------------------------- summarization


@pytest.mark.parametrize(
  "name,document,summary",
  [("gigaword", "document", "summary"), ("cnn_dailymail", "article", "highlights")],
)
def test_summarization(name, document, summary, records):
  example = record(records, name, **{document: "Stocks rose on Tuesday .", summary: "Stocks rise"})
  raw = run(name, example)
  assert raw["prompt"] == (
    "context: Stocks rose on Tuesday . question: What is a short summary of this document?"
  )
  assert raw["target_text"] == "Stocks rise" and raw["meta"]["captions"] == ["Stocks rise"]
  for key in (document, summary):
    with pytest.raises(Skip, match="empty article or summary"):
      run(name, dict(example, **{key: b"  "}))


# ------------------------------------------------------------------ language modelling


@pytest.mark.parametrize("name,id_key", [("c4_masked_lm", "url"), ("wikipedia_masked_lm", "title")])
def test_masked_lm_corrupts_fifteen_percent_of_a_window(name, id_key, records):
  short = " ".join(f"w{i}" for i in range(20))
  raw = run(name, record(records, name, text=short, **{id_key: "doc-1"}))
  assert raw["meta"]["original"] == short and raw["meta"]["example_id"] == "doc-1"
  assert text_tasks.fill_spans(raw["prompt"], raw["target_text"]) == short
  sentinels = [w for w in raw["prompt"].split() if w.startswith("<extra_id_")]
  assert sentinels and sentinels[0] == "<extra_id_0>"
  assert len(raw["target_text"].split()) - len(sentinels) == 3  # round(20 * 0.15)
  # A long document: a window of 180 consecutive words, somewhere else for other seeds.
  long = " ".join(f"w{i}" for i in range(1000))
  starts = set()
  for seed in range(4):
    words = run(name, record(records, name, text=long), seed)["meta"]["original"].split()
    start = int(words[0][1:])
    assert words == [f"w{i}" for i in range(start, start + 180)]
    starts.add(start)
  assert len(starts) > 1
  with pytest.raises(Skip, match="empty text"):
    run(name, record(records, name, text=" "))


# ------------------------------------------------------------ every task, end to end


@pytest.fixture(scope="module")
def spec():
  return specs.tiny_spec(32, 16)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_mock_records_prepare_or_skip(name, records, spec):
  """The raw mock record and its blanked copy: a counted skip or a unified example."""
  example = records[TASKS[name][0]]
  blank = {k: b"" if isinstance(v, bytes) else v for k, v in example.items()}
  for ex in (example, blank):
    try:
      features, _, _ = pipeline.prepare(
        tasks_lib.get(name), ex, np.random.default_rng(0), spec, spec.context(10.0)
      )
    except Skip as e:
      assert str(e)
    else:
      assert features["text_inputs"].shape == (32,) and features["text_targets"][0] != 0
