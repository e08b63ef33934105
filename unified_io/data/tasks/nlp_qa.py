"""Question-answering datasets of the paper's Table 1 (appendix A.1.7), on TFDS 4.9.10's
builders; group "nlp", prompt "question_answering" ("context: {} question: {}").

Extractive and abstractive QA (Output.TEXT, Metric.EXACT_MATCH; meta `answers` lists every
accepted answer, the target is the first). Long contexts go through `text.qa`'s sliding
windows (text.QA_WINDOW_WORDS words, a random one of those containing the answer), after
Devlin et al. as the paper says.

  squad_v2 (squad/v2.0): context, question, answers/text; is_impossible questions answer
    UNANSWERABLE ("unanswerable"): a word the model can write and exact match can score (an
    empty target would be EOS only). Their window is any window: none holds an answer.
  mrqa_news_qa, mrqa_trivia_qa, mrqa_search_qa, mrqa_hotpot_qa, mrqa_natural_questions
    (mrqa/<config>): context, question, detected_answers/text (spans found in the context,
    listed first so the window holds the target) then answers (the gold strings). MRQA's
    separator tokens [PAR] [DOC] [TLE] [SEP] are dropped from the context: they carry no
    text and would cost tokens of the window.
  superglue_record (super_glue/record): passage, query, answers. "@highlight" lines of the
    passage become sentences ("... . "); the query's @placeholder is written " _ " and asked
    with "cloze_question". Queries without answers (the test split) are skipped.

The 13th QA dataset is ReCoRD, not MRQA's SQuAD: A.1.7 cites SQuAD 2.0 and then "other
training datasets from the MRQA shared tasks" with five citations (NewsQA, TriviaQA,
SearchQA, HotpotQA, NQ), which leaves MRQA's SQuAD out as a duplicate of SQuAD 2.0's
questions; its "QA datasets from SuperGLUE" cite SuperGLUE itself besides BoolQ, MultiRC
and COPA, and ReCoRD is SuperGLUE's fourth QA-style task. Neither closes the gap between the
12 named sets (~0.7M train questions) and Table 1's 1.7M.

Yes/no QA (Output.CHOICE over ("no", "yes"), Metric.ACCURACY):
  superglue_boolq (super_glue/boolq): passage, question (capitalised, "?" added: BoolQ's
    questions are lower-case without one), label False/True -> no/yes (A.4's BoolQ card
    answers "yes").
  superglue_multirc (super_glue/multirc): paragraph, question, answer, label. One TFDS record
    is one candidate answer, so one example is one (question, candidate) pair asked with
    "candidate_answer_question"; label False/True -> no/yes.
  BoolQ passages and MultiRC paragraphs longer than a window keep the window of
  text.QA_WINDOW_WORDS words sharing the most words with the question (and candidate).

Multiple choice (Output.CHOICE, Metric.ACCURACY): the options are listed in the context as
"(0) ... (1) ...", after the passage, as the A.4 HellaSwag card shows, and the target is the
chosen option as listed, "(k) <option text>" (the card's prediction reads "(0) holds his
hands in his pockets"); the index keeps options distinct. meta class_names are this
example's listed options (they differ per example) and label the target.
  superglue_copa (super_glue/copa): premise; choice1, choice2; question "cause"/"effect" asked
    with "cause_effect_question"; label choice1/choice2.
  cosmos_qa (cosmos_qa): context; answer0..answer3; the dataset's question; label 0-3.
  openbookqa (openbookqa): question/choice_A..choice_D as options, question/stem as the
    question, no context (fact1, the "open book" fact, is not given: the standard setting);
    answerKey A-D.
  hellaswag (hellaswag): context; endings; "continuation_question"; label (-1 in test).
"""

from __future__ import annotations

import re
from typing import List, Sequence, Union

import numpy as np

from unified_io.data.tasks import nlp
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import text

Skip = tasks.SkipExample
M, O = tasks.Metric, tasks.Output

UNANSWERABLE = "unanswerable"  # SQuAD 2.0's target for questions the context cannot answer
YES_NO = ("no", "yes")  # False/True (index order) of BoolQ and MultiRC
MRQA_CONFIGS = ("news_qa", "trivia_qa", "search_qa", "hotpot_qa", "natural_questions")
_MRQA_MARKERS = re.compile(r"\[(?:PAR|DOC|TLE|SEP)\]")
_WORD = re.compile(r"\w+")


def texts(values, field: str) -> List[str]:
  """The non-blank strings of a TFDS text sequence (a numpy array of bytes)."""
  out = [tasks.as_text(v, field).strip() for v in np.asarray(values, object).reshape(-1)]
  return [v for v in out if v]


def _unique(values: Sequence[str]) -> List[str]:
  return list(dict.fromkeys(values))


# ---------------------------------------------------------------------- extractive QA


def _squad_v2(example, rng, ctx):
  context = text.required(example["context"], "context", "context")
  question = text.required(example["question"], "question", "question")
  if bool(example["is_impossible"]):
    answers = [UNANSWERABLE]
  else:
    answers = _unique(texts(example["answers"]["text"], "answers"))  # annotators repeat
    if not answers:
      raise Skip("no answer text")
  return text.qa(context, question, answers, rng, ctx, nlp.example_id(example))


def _mrqa(example, rng, ctx):
  context = _MRQA_MARKERS.sub(" ", text.required(example["context"], "context", "context"))
  if not context.strip():
    raise Skip("empty context")
  question = text.required(example["question"], "question", "question")
  detected = texts(example["detected_answers"]["text"], "detected_answers")
  answers = _unique(detected + texts(example["answers"], "answers"))
  if not answers:
    raise Skip("no answer text")
  return text.qa(context, question, answers, rng, ctx, tasks.as_text(example["qid"], "qid"))


def record_passage(passage: str) -> str:
  """ReCoRD's "@highlight" lines as sentences: "text\\n@highlight\\nA" -> "text. A"."""
  out = ""
  for part in (p.strip() for p in passage.split("@highlight")):
    if part:  # a highlight is a headline without a final period: end the previous one
      out = part if not out else f"{out} {part}" if out[-1] in ".!?\"'" else f"{out}. {part}"
  return " ".join(out.split())


def _record(example, rng, ctx):
  passage = record_passage(text.required(example["passage"], "passage", "passage"))
  query = text.required(example["query"], "query", "query")
  answers = _unique(texts(example["answers"], "answers"))
  if not answers:
    raise Skip("no answer text")  # the test split
  question = text.query("cloze_question", rng, ctx, query.replace("@placeholder", "_"))
  return text.qa(passage, question, answers, rng, ctx, nlp.example_id(example))


# ---------------------------------------------------------------------- yes/no QA


def best_window(context: str, query: str) -> str:
  """The context if it fits one QA window, else the window of text.QA_WINDOW_WORDS words
  (stride text.QA_WINDOW_STRIDE) sharing the most distinct words with `query`; the first of
  equals. For questions without an answer span to look for (BoolQ, MultiRC)."""
  words = context.split()
  size = text.QA_WINDOW_WORDS
  if len(words) <= size:
    return " ".join(words)
  wanted = {w.lower() for w in _WORD.findall(query)}

  def overlap(start):
    found = {w.lower() for w in _WORD.findall(" ".join(words[start : start + size]))}
    return len(found & wanted)

  # Strided starts plus one flush with the end, so the tail is covered by a full window.
  starts = [*range(0, len(words) - size, text.QA_WINDOW_STRIDE), len(words) - size]
  best = max(starts, key=lambda s: (overlap(s), -s))
  return " ".join(words[best : best + size])


def _question_text(question: str) -> str:
  """BoolQ's lower-case question as a question: capitalised, ending in "?"."""
  question = question.strip()
  question = question[:1].upper() + question[1:]
  return question if question.endswith("?") else question + "?"


def _yes_no(example, rng, ctx, context: str, question: Union[str, text.Query]):
  label = nlp.label_index(example, 2)
  prompt = text.prompt("question_answering", rng, ctx, context, question)
  return text.raw(
    prompt,
    YES_NO[label],
    label=YES_NO[label],
    class_names=YES_NO,
    example_id=nlp.example_id(example),
  )


def _boolq(example, rng, ctx):
  passage = text.required(example["passage"], "passage", "passage")
  question = _question_text(text.required(example["question"], "question", "question"))
  return _yes_no(example, rng, ctx, best_window(passage, question), question)


def _multirc(example, rng, ctx):
  paragraph = text.required(example["paragraph"], "paragraph", "paragraph")
  question = text.required(example["question"], "question", "question").strip()
  answer = text.required(example["answer"], "answer", "answer").strip()
  query = text.query("candidate_answer_question", rng, ctx, question, answer)
  return _yes_no(example, rng, ctx, best_window(paragraph, f"{question} {answer}"), query)


# ---------------------------------------------------------------------- multiple choice


def listed(options: Sequence[str]) -> List[str]:
  """Options as listed in the prompt and written as targets: "(0) first", "(1) second"..."""
  return [f"({k}) {option}" for k, option in enumerate(options)]


def _multiple_choice(example, rng, ctx, passage: str, options: Sequence[str], question, label):
  if len(options) < 2:
    raise Skip("fewer than two options")
  if not 0 <= label < len(options):
    raise Skip(f"unlabelled example (label {label})")
  choices = listed(options)
  context = " ".join([passage, *choices]) if passage else " ".join(choices)
  prompt = text.prompt("question_answering", rng, ctx, context, question)
  return text.raw(
    prompt,
    choices[label],
    label=choices[label],
    class_names=tuple(choices),
    example_id=nlp.example_id(example),
  )


def _options(example, keys: Sequence[str]) -> List[str]:
  return [text.required(example[k], k, "option").strip() for k in keys]


def _copa(example, rng, ctx):
  relation = text.required(example["question"], "question", "question").strip()
  if relation not in ("cause", "effect"):
    raise Skip(f"COPA question {relation!r} is neither cause nor effect")
  return _multiple_choice(
    example,
    rng,
    ctx,
    text.required(example["premise"], "premise", "premise").strip(),
    _options(example, ("choice1", "choice2")),
    text.query("cause_effect_question", rng, ctx, relation),
    int(example["label"]),
  )


def _cosmos_qa(example, rng, ctx):
  return _multiple_choice(
    example,
    rng,
    ctx,
    text.required(example["context"], "context", "context").strip(),
    _options(example, [f"answer{k}" for k in range(4)]),
    text.required(example["question"], "question", "question").strip(),
    int(example["label"]),
  )


def _openbookqa(example, rng, ctx):
  question = example["question"]
  return _multiple_choice(
    example,
    rng,
    ctx,
    "",
    _options(question, [f"choice_{k}" for k in "ABCD"]),
    text.required(question["stem"], "question/stem", "question").strip(),
    int(example["answerKey"]),
  )


def _hellaswag(example, rng, ctx):
  endings = [tasks.as_text(e, "endings").strip() for e in np.asarray(example["endings"], object)]
  if not all(endings):
    raise Skip("empty ending")
  return _multiple_choice(
    example,
    rng,
    ctx,
    text.required(example["context"], "context", "context").strip(),
    endings,
    text.query("continuation_question", rng, ctx),
    int(example["label"]),
  )


# ---------------------------------------------------------------------- registrations

_TV = nlp.TRAIN_VALIDATION
_QA = ("question_answering", O.TEXT, M.EXACT_MATCH)
_CHOICE = ("question_answering", O.CHOICE, M.ACCURACY)

nlp.register(
  "squad_v2",
  "squad/v2.0",
  _squad_v2,
  *_QA,
  _TV,
  f'SQuAD 2.0: extractive answers, "{UNANSWERABLE}" when the context has none',
)
for _config in MRQA_CONFIGS:
  nlp.register(
    f"mrqa_{_config}",
    f"mrqa/{_config}",
    _mrqa,
    *_QA,
    _TV,
    f"MRQA 2019 {_config}: extractive answers in the shared task's SQuAD format",
  )
nlp.register(
  "superglue_record",
  "super_glue/record",
  _record,
  *_QA,
  _TV,
  "ReCoRD: the entity that fills a news query's blank",
)
nlp.register(
  "superglue_boolq",
  "super_glue/boolq",
  _boolq,
  *_CHOICE,
  _TV,
  "BoolQ: yes/no questions about a Wikipedia passage",
)
nlp.register(
  "superglue_multirc",
  "super_glue/multirc",
  _multirc,
  *_CHOICE,
  _TV,
  "MultiRC: is a candidate answer to a question about a paragraph correct (per answer)",
)
nlp.register(
  "superglue_copa",
  "super_glue/copa",
  _copa,
  *_CHOICE,
  _TV,
  "COPA: the more plausible cause or effect of a premise, of two",
)
nlp.register(
  "cosmos_qa",
  "cosmos_qa",
  _cosmos_qa,
  *_CHOICE,
  _TV,  # test labels are hidden
  "Cosmos QA: commonsense reading comprehension, four options",
)
nlp.register(
  "openbookqa",
  "openbookqa",
  _openbookqa,
  *_CHOICE,
  nlp.ALL_SPLITS,
  "OpenBookQA: elementary science questions, four options (no fact given)",
)
nlp.register(
  "hellaswag",
  "hellaswag",
  _hellaswag,
  *_CHOICE,
  _TV,  # test labels are hidden
  "HellaSwag: the most likely continuation of a paragraph, four options",
)
