"""Real NLP datasets of the paper's Table 1: text classification and summarization, plus the
masked language modelling of C4 and Wikipedia (appendix A.1.7-A.1.8). Question answering is
`nlp_qa`. Every builder is TFDS 4.9.10's and the fields are its feature keys.

Text classification (Output.CHOICE, Metric.ACCURACY). As in T5 and the paper's A.4 cards the
prompt is "context: <input sentence(s), joined by a space> question: <per-dataset query>"
(prompt "text_classification"; the query keys are in data/prompts.py) and the target is a
readable label word; meta has `label` and `class_names` (the targets in TFDS label order).
Where the query is a yes/no question (the A.4 cards of QNLI, MRPC and WSC answer "yes" or
"no") two-way TFDS names become "no"/"yes"; where the query names the classes, they are the
targets. Task (builder): context fields; query key; TFDS label names -> targets.

  glue_cola (glue/cola): sentence; acceptability; unacceptable, acceptable (as is)
  glue_sst2 (glue/sst2): sentence; sentiment; negative, positive (as is)
  glue_mrpc (glue/mrpc): sentence1 sentence2; paraphrase; not_equivalent, equivalent -> no, yes
  glue_qqp (glue/qqp): question1 question2; duplicate; not_duplicate, duplicate -> no, yes
  glue_stsb (glue/stsb): sentence1 sentence2; similarity; float score -> "0.0" ... "5.0"
  glue_mnli (glue/mnli): premise hypothesis; nli; entailment, neutral, contradiction (as is)
  glue_qnli (glue/qnli): sentence question; answer_sentence; entailment, not_entailment -> yes, no
  glue_rte (glue/rte): sentence1 sentence2; entailment; entailment, not_entailment -> yes, no
  glue_wnli (glue/wnli): sentence1 sentence2; entailment; not_entailment, entailment -> no, yes
  superglue_cb (super_glue/cb): premise hypothesis; nli; entailment, contradiction, neutral
  superglue_rte (super_glue/rte): premise hypothesis; entailment; as glue_rte
  superglue_wic (super_glue/wic): sentence1 sentence2; word_sense(word); False, True -> no, yes
  superglue_wsc (super_glue/wsc.fixed): text; coreference(span2_text, span1_text); False, True
    -> no, yes
  snli (snli): premise hypothesis; nli; entailment, neutral, contradiction (as is)
  scitail (sci_tail): premise hypothesis; entailment; entails, neutral -> yes, no
  imdb_reviews (imdb_reviews/plain_text): text; sentiment; neg, pos -> negative, positive
  paws_wiki (paws_wiki/labeled_final_raw): sentence1 sentence2; paraphrase;
    different_meaning, paraphrase -> no, yes

Label -1 (GLUE/SuperGLUE test rows, SNLI pairs without a gold label) is a counted skip, and
unlabelled test splits are left out of `splits`. QNLI puts the sentence first and the
question second, as its A.4 card reads. MNLI's validation is validation_matched
(validation_mismatched is also named). PAWS reads the raw (untokenized) config: natural text,
as the other datasets have. IMDB reviews average ~230 words and reach thousands; the query
follows the context, so truncating the prompt would cut the query: a review keeps its first
CONTEXT_WORDS words (the QA window's budget for the 256 text tokens), "<br />" removed.

STS-B's score (a float in [0, 5]) is written as T5 writes it: rounded to the nearest 0.2 with
round-half-to-even (np.round, like tf.round in T5's preprocessor) and formatted "%.1f", one
of 26 strings "0.0", "0.2", ... "5.0". The task is Output.CHOICE over those 26 strings with
Metric.ACCURACY rather than free text: scoring the options always yields a valid score, and
the options are the same for every example. Accuracy is on the 0.2 bucket; STS-B's own
Pearson/Spearman correlation can be computed from the predicted strings and meta["score"]
(the float), which no Metric does yet.

Summarization (Output.TEXT, Metric.ROUGE_L, prompt "summarization", meta captions):
  gigaword (gigaword): document -> summary (the paper's dataset, Rush et al. 2015 version)
  cnn_dailymail (cnn_dailymail): article -> highlights (kept; not a paper dataset)

Language modelling (group language_modelling; prompt "masked_language_modelling", the
corrupted text is the whole prompt): T5 span corruption (`text.span_corruption`: 15% of the
words dropped in spans of mean length 3, one sentinel <extra_id_k> per span; the target
lists each sentinel and the words it replaced) of a random window of LM_WINDOW_WORDS words.
  c4_masked_lm (c4/en): text; the url is the example id
  wikipedia_masked_lm (wikipedia/20230601.en): text; the title is the example id. Train only
    (the builder has no other split), so the task is training-only (metric None).
Why a window: C4 documents average ~400 words and Wikipedia articles more, while the text
encoder takes config.model.encoder_max_text_length = config.lengths.text_inputs = 256
tokens. Corrupting W words leaves 0.85 W words and 0.05 W sentinels: at 1.3-1.5 SentencePiece
tokens per English word that is 1.16-1.33 W tokens, so W = 180 fills ~210-240 tokens with
room for EOS, and the target (0.15 W words plus the sentinels, ~45 tokens) fits
text_targets = 128. A random window rather than the head covers whole documents over
epochs; shorter documents are used whole.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from unified_io.data import prompts
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import text

Skip = tasks.SkipExample
M, O = tasks.Metric, tasks.Output

CONTEXT_WORDS = text.QA_WINDOW_WORDS  # words of a long classification input that are kept
LM_WINDOW_WORDS = 180  # words of a document one masked-LM example corrupts (docstring)

TRAIN_VALIDATION = {"train": "train", "validation": "validation"}
ALL_SPLITS = {"train": "train", "validation": "validation", "test": "test"}

# STS-B targets: 0.0, 0.2, ... 5.0 written "%.1f".
STSB_CLASSES = tuple(f"{k / 5:.1f}" for k in range(26))


def register(
  name: str,
  builder: str,
  preprocess,
  prompt_key: str,
  output: tasks.Output,
  metric: Optional[tasks.Metric],
  splits: Mapping[str, str],
  description: str,
  group: str = "nlp",
) -> tasks.Task:
  """Registers a real-dataset task; no size: the dataset catalogue holds paper-unit sizes."""
  return tasks.register(
    tasks.Task(
      name=name,
      group=group,
      builder=builder,
      preprocess=preprocess,
      prompts=prompts.PROMPTS[prompt_key],
      splits=dict(splits),
      output=output,
      metric=metric,
      description=description,
    )
  )


def label_index(example, num_classes: int, key: str = "label") -> int:
  """The example's class index; -1 (test rows, no gold label) or out of range skips."""
  label = int(example[key])
  if not 0 <= label < num_classes:
    raise Skip(f"unlabelled example (label {label})")
  return label


def example_id(example) -> str:
  """`idx` (an int, or a dict of ints for MultiRC/ReCoRD) or `id` as text; "?" if neither."""
  if "idx" in example:
    idx = example["idx"]
    if isinstance(idx, Mapping):
      return "-".join(str(int(v)) for v in idx.values())
    return str(int(idx))
  if "id" in example:
    return tasks.as_text(example["id"], "id")
  return "?"


# --------------------------------------------------------------------- text classification


def _classifier(
  fields: Sequence[str],
  query: str,
  targets: Tuple[str, ...],
  query_fields: Sequence[str] = (),
  clean: Optional[Callable[[str], str]] = None,
  max_words: Optional[int] = None,
):
  """Preprocessor: the `fields` joined as context, the `query` prompt (filled with
  `query_fields`) as question, targets[label] as target."""

  def preprocess(example, rng, ctx):
    label = label_index(example, len(targets))
    texts = [text.required(example[f], f, f) for f in fields]
    context = " ".join((clean(t) if clean else t).strip() for t in texts)
    if max_words is not None:
      context = " ".join(context.split()[:max_words])
    args = [text.required(example[f], f, f).strip() for f in query_fields]
    question = text.query(query, rng, ctx, *args)  # drawn before the outer template
    prompt = text.prompt("text_classification", rng, ctx, context, question)
    target = targets[label]
    return text.raw(
      prompt, target, label=target, class_names=targets, example_id=example_id(example)
    )

  return preprocess


def _stsb(example, rng, ctx):
  score = float(example["label"])
  if not 0.0 <= score <= 5.0:  # the test split's -1
    raise Skip(f"unlabelled example (score {score:g})")
  # In float32, as T5 computes it: 4.9 * 5 is then exactly 24.5, which rounds to even (4.8).
  target = f"{np.round(np.float32(score) * np.float32(5)) / 5:.1f}"
  context = " ".join(text.required(example[f], f, f) for f in ("sentence1", "sentence2"))
  question = text.query("similarity_question", rng, ctx)  # drawn before the outer template
  prompt = text.prompt("text_classification", rng, ctx, context, question)
  return text.raw(
    prompt,
    target,
    label=target,
    class_names=STSB_CLASSES,
    score=score,
    example_id=example_id(example),
  )


def _imdb_clean(review: str) -> str:
  return review.replace("<br />", " ")


@dataclasses.dataclass(frozen=True)
class Classification:
  """One text-classification dataset: where its text is and how its labels read."""

  builder: str
  names: Tuple[str, ...]  # the TFDS ClassLabel names, in index order
  fields: Tuple[str, ...]  # the input sentences, joined by a space into the context
  query: str  # the prompt key of its question
  description: str
  readable: Mapping[str, str] = dataclasses.field(default_factory=dict)  # TFDS name -> target
  query_fields: Tuple[str, ...] = ()  # fields that fill the query's "{}"s
  splits: Mapping[str, str] = dataclasses.field(default_factory=lambda: TRAIN_VALIDATION)

  @property
  def targets(self) -> Tuple[str, ...]:
    """The target of each label index: the readable word of its TFDS name."""
    return tuple(self.readable.get(n, n) for n in self.names)


_YES_NO = {"entailment": "yes", "not_entailment": "no"}
_BOOL = {"False": "no", "True": "yes"}
_PAIR = ("sentence1", "sentence2")
_NLI = ("premise", "hypothesis")
# GLUE and SuperGLUE test labels are hidden (-1): those tasks read train and validation only.
CLASSIFICATION: Dict[str, Classification] = {
  "glue_cola": Classification(
    "glue/cola",
    ("unacceptable", "acceptable"),
    ("sentence",),
    "acceptability_question",
    "CoLA: grammatical acceptability of a sentence",
  ),
  "glue_sst2": Classification(
    "glue/sst2",
    ("negative", "positive"),
    ("sentence",),
    "sentiment_question",
    "SST-2: sentiment of a movie-review sentence",
  ),
  "glue_mrpc": Classification(
    "glue/mrpc",
    ("not_equivalent", "equivalent"),
    _PAIR,
    "paraphrase_question",
    "MRPC: are two news sentences paraphrases",
    readable={"not_equivalent": "no", "equivalent": "yes"},
  ),
  "glue_qqp": Classification(
    "glue/qqp",
    ("not_duplicate", "duplicate"),
    ("question1", "question2"),
    "duplicate_question",
    "QQP: do two Quora questions ask the same thing",
    readable={"not_duplicate": "no", "duplicate": "yes"},
  ),
  "glue_mnli": Classification(
    "glue/mnli",
    ("entailment", "neutral", "contradiction"),
    _NLI,
    "nli_question",
    "MNLI: 3-way entailment of a hypothesis by a premise",
    splits={
      "train": "train",
      "validation": "validation_matched",
      "validation_mismatched": "validation_mismatched",
    },
  ),
  "glue_qnli": Classification(
    "glue/qnli",
    ("entailment", "not_entailment"),
    ("sentence", "question"),
    "answer_sentence_question",
    "QNLI: does a Wikipedia sentence answer a question",
    readable=_YES_NO,
  ),
  "glue_rte": Classification(
    "glue/rte",
    ("entailment", "not_entailment"),
    _PAIR,
    "entailment_question",
    "RTE (GLUE): does a sentence entail another",
    readable=_YES_NO,
  ),
  "glue_wnli": Classification(
    "glue/wnli",
    ("not_entailment", "entailment"),
    _PAIR,
    "entailment_question",
    "WNLI: entailment of a sentence with its pronoun resolved",
    readable=_YES_NO,
  ),
  "superglue_cb": Classification(
    "super_glue/cb",
    ("entailment", "contradiction", "neutral"),
    _NLI,
    "nli_question",
    "CommitmentBank: 3-way entailment of an embedded clause",
  ),
  "superglue_rte": Classification(
    "super_glue/rte",
    ("entailment", "not_entailment"),
    _NLI,
    "entailment_question",
    "RTE (SuperGLUE): does a premise entail a hypothesis",
    readable=_YES_NO,
  ),
  "superglue_wic": Classification(
    "super_glue/wic",
    ("False", "True"),
    _PAIR,
    "word_sense_question",
    "WiC: is a word used with the same sense in two sentences",
    readable=_BOOL,
    query_fields=("word",),
  ),
  "superglue_wsc": Classification(
    "super_glue/wsc.fixed",
    ("False", "True"),
    ("text",),
    "coreference_question",
    "WSC: does a pronoun refer to a noun phrase",
    readable=_BOOL,
    query_fields=("span2_text", "span1_text"),  # the pronoun, then the candidate referent
  ),
  "snli": Classification(
    "snli",
    ("entailment", "neutral", "contradiction"),
    _NLI,
    "nli_question",
    "SNLI: 3-way entailment between image-caption sentences",
    splits=ALL_SPLITS,
  ),
  "scitail": Classification(
    "sci_tail",
    ("entails", "neutral"),
    _NLI,
    "entailment_question",
    "SciTail: does a web sentence entail a science-exam statement",
    readable={"entails": "yes", "neutral": "no"},
    splits=ALL_SPLITS,
  ),
  "imdb_reviews": Classification(
    "imdb_reviews/plain_text",
    ("neg", "pos"),
    ("text",),
    "sentiment_question",
    "IMDB: sentiment of a movie review (its first CONTEXT_WORDS words)",
    readable={"neg": "negative", "pos": "positive"},
    splits={"train": "train", "test": "test"},  # no validation split
  ),
  "paws_wiki": Classification(
    "paws_wiki/labeled_final_raw",
    ("different_meaning", "paraphrase"),
    _PAIR,
    "paraphrase_question",
    "PAWS (Wiki): are two high-overlap sentences paraphrases",
    readable={"different_meaning": "no", "paraphrase": "yes"},
    splits=ALL_SPLITS,
  ),
}

for _name, _spec in CLASSIFICATION.items():
  _imdb = _name == "imdb_reviews"
  register(
    _name,
    _spec.builder,
    _classifier(
      _spec.fields,
      _spec.query,
      _spec.targets,
      _spec.query_fields,
      clean=_imdb_clean if _imdb else None,
      max_words=CONTEXT_WORDS if _imdb else None,
    ),
    "text_classification",
    O.CHOICE,
    M.ACCURACY,
    _spec.splits,
    _spec.description,
  )

register(
  "glue_stsb",
  "glue/stsb",
  _stsb,
  "text_classification",
  O.CHOICE,
  M.ACCURACY,
  TRAIN_VALIDATION,
  'STS-B: sentence similarity 0-5, rounded to 0.2 and written "%.1f"',
)


# ---------------------------------------------------------------------------- summarization


def _summarizer(document_key: str, summary_key: str):
  def preprocess(example, rng, ctx):
    document = tasks.as_text(example[document_key], document_key)
    summary = tasks.as_text(example[summary_key], summary_key)
    if not document.strip() or not summary.strip():
      raise Skip("empty article or summary")
    prompt = text.prompt("summarization", rng, ctx, document)
    return text.raw(prompt, summary, captions=[summary], example_id=example_id(example))

  return preprocess


register(
  "gigaword",
  "gigaword",
  _summarizer("document", "summary"),
  "summarization",
  O.TEXT,
  M.ROUGE_L,
  ALL_SPLITS,
  "Gigaword: headline of a news article's first sentence (Rush et al. 2015)",
)
register(
  "cnn_dailymail",
  "cnn_dailymail",
  _summarizer("article", "highlights"),
  "summarization",
  O.TEXT,
  M.ROUGE_L,
  ALL_SPLITS,
  "CNN/DailyMail: highlights of a news article",
)


# ----------------------------------------------------------------------- language modelling


def window_words(document: str, rng, size: int = LM_WINDOW_WORDS):
  """A random run of `size` consecutive words of `document` (all of them if fewer)."""
  words = document.split()
  if len(words) <= size:
    return words
  start = int(rng.integers(len(words) - size + 1))
  return words[start : start + size]


def _masked_lm(id_key: str):
  def preprocess(example, rng, ctx):
    words = window_words(text.required(example["text"], "text", "text"), rng)
    corrupted, target = text.span_corruption(words, rng)
    return text.raw(
      text.prompt("masked_language_modelling", rng, ctx, corrupted),
      target,
      original=" ".join(words),
      example_id=tasks.as_text(example[id_key], id_key),
    )

  return preprocess


register(
  "c4_masked_lm",
  "c4/en",
  _masked_lm("url"),
  "masked_language_modelling",
  O.TEXT,
  M.EXACT_MATCH,
  TRAIN_VALIDATION,
  "C4: T5 span corruption (15%) of a window of a web document",
  group="language_modelling",
)
register(
  "wikipedia_masked_lm",
  "wikipedia/20230601.en",
  _masked_lm("title"),
  "masked_language_modelling",
  O.TEXT,
  None,  # no held-out split: training only
  {"train": "train"},
  "Wikipedia: T5 span corruption (15%) of a window of an article",
  group="language_modelling",
)
