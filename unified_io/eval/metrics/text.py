"""Text metrics: exact-match accuracy and F1, VQA accuracy, and the captioning metrics.

Where a reference implementation exists we call it rather than re-deriving it, so numbers
are comparable with published ones:

- Captioning: pycocoevalcap's BLEU, ROUGE-L and CIDEr-D (its `Cider` class is CIDEr-D:
  Gaussian length penalty, clipped n-gram counts, x10). The coco-caption pipeline first runs
  the Stanford PTB tokenizer, which needs Java; we tokenize in Python instead
  (`tokenize_caption`: lowercase, PTB-style clitic splitting, punctuation dropped), which
  agrees with PTB on ordinary captions and keeps the metrics usable without Java.
  METEOR and SPICE only exist as Java programs; they are offered when `java` is on PATH
  (SPICE also needs the Stanford CoreNLP jar that pycocoevalcap downloads on first use).
- VQA: the official VQA v2 answer normalisation, re-implemented (the script is not a package).
  GRIT scores VQA with the same normalisation but its own accuracy; the parameters that
  reproduce it are documented where they are taken (`normalize_vqa_answer`, `vqa_scores`).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from typing import Dict, Hashable, List, Optional, Sequence

import numpy as np

from unified_io.eval.metrics import base

# ----------------------------------------------------------------------------------------
# Classification
# ----------------------------------------------------------------------------------------


def accuracy(predictions: Sequence, targets: Sequence) -> float:
  """Fraction of predictions equal to their target (exact match)."""
  base.same_length(predictions, targets, "predictions", "targets")
  if not len(targets):
    raise ValueError("targets is empty")
  return float(np.mean([p == t for p, t in zip(predictions, targets)]))


def _class_f1(predictions, targets, label) -> float:
  tp = sum(p == label and t == label for p, t in zip(predictions, targets))
  fp = sum(p == label and t != label for p, t in zip(predictions, targets))
  fn = sum(p != label and t == label for p, t in zip(predictions, targets))
  # F1 = 2tp / (2tp + fp + fn); 0 when the class never occurs on either side (as sklearn).
  return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def f1(
  predictions: Sequence, targets: Sequence, average: str = "binary", positive_label: Hashable = 1
) -> float:
  """F1 score. "binary": of `positive_label`; "macro": unweighted mean over every label seen
  in targets or predictions (sklearn's convention)."""
  base.same_length(predictions, targets, "predictions", "targets")
  if not len(targets):
    raise ValueError("targets is empty")
  predictions, targets = list(predictions), list(targets)
  if average == "binary":
    return float(_class_f1(predictions, targets, positive_label))
  if average == "macro":
    labels = set(targets) | set(predictions)
    return float(np.mean([_class_f1(predictions, targets, label) for label in labels]))
  raise ValueError(f"average must be 'binary' or 'macro', got {average!r}")


# ----------------------------------------------------------------------------------------
# VQA
# ----------------------------------------------------------------------------------------

# Verbatim from the official VQA evaluation script (vqaEval.py), quirks included: keys with a
# capital I never match after lowercasing, and "somebody'd" maps to "somebodyd".
_CONTRACTIONS = {
  "aint": "ain't",
  "arent": "aren't",
  "cant": "can't",
  "couldve": "could've",
  "couldnt": "couldn't",
  "couldn'tve": "couldn't've",
  "couldnt've": "couldn't've",
  "didnt": "didn't",
  "doesnt": "doesn't",
  "dont": "don't",
  "hadnt": "hadn't",
  "hadnt've": "hadn't've",
  "hadn'tve": "hadn't've",
  "hasnt": "hasn't",
  "havent": "haven't",
  "hed": "he'd",
  "hed've": "he'd've",
  "he'dve": "he'd've",
  "hes": "he's",
  "howd": "how'd",
  "howll": "how'll",
  "hows": "how's",
  "Id've": "I'd've",
  "I'dve": "I'd've",
  "Im": "I'm",
  "Ive": "I've",
  "isnt": "isn't",
  "itd": "it'd",
  "itd've": "it'd've",
  "it'dve": "it'd've",
  "itll": "it'll",
  "let's": "let's",
  "maam": "ma'am",
  "mightnt": "mightn't",
  "mightnt've": "mightn't've",
  "mightn'tve": "mightn't've",
  "mightve": "might've",
  "mustnt": "mustn't",
  "mustve": "must've",
  "neednt": "needn't",
  "notve": "not've",
  "oclock": "o'clock",
  "oughtnt": "oughtn't",
  "ow's'at": "'ow's'at",
  "'ows'at": "'ow's'at",
  "'ow'sat": "'ow's'at",
  "shant": "shan't",
  "shed've": "she'd've",
  "she'dve": "she'd've",
  "she's": "she's",
  "shouldve": "should've",
  "shouldnt": "shouldn't",
  "shouldnt've": "shouldn't've",
  "shouldn'tve": "shouldn't've",
  "somebody'd": "somebodyd",
  "somebodyd've": "somebody'd've",
  "somebody'dve": "somebody'd've",
  "somebodyll": "somebody'll",
  "somebodys": "somebody's",
  "someoned": "someone'd",
  "someoned've": "someone'd've",
  "someone'dve": "someone'd've",
  "someonell": "someone'll",
  "someones": "someone's",
  "somethingd": "something'd",
  "somethingd've": "something'd've",
  "something'dve": "something'd've",
  "somethingll": "something'll",
  "thats": "that's",
  "thered": "there'd",
  "thered've": "there'd've",
  "there'dve": "there'd've",
  "therere": "there're",
  "theres": "there's",
  "theyd": "they'd",
  "theyd've": "they'd've",
  "they'dve": "they'd've",
  "theyll": "they'll",
  "theyre": "they're",
  "theyve": "they've",
  "twas": "'twas",
  "wasnt": "wasn't",
  "wed've": "we'd've",
  "we'dve": "we'd've",
  "weve": "we've",
  "werent": "weren't",
  "whatll": "what'll",
  "whatre": "what're",
  "whats": "what's",
  "whatve": "what've",
  "whens": "when's",
  "whered": "where'd",
  "wheres": "where's",
  "whereve": "where've",
  "whod": "who'd",
  "whod've": "who'd've",
  "who'dve": "who'd've",
  "wholl": "who'll",
  "whos": "who's",
  "whove": "who've",
  "whyll": "why'll",
  "whyre": "why're",
  "whys": "why's",
  "wont": "won't",
  "wouldve": "would've",
  "wouldnt": "wouldn't",
  "wouldnt've": "wouldn't've",
  "wouldn'tve": "wouldn't've",
  "yall": "y'all",
  "yall'll": "y'all'll",
  "y'allll": "y'all'll",
  "yall'd've": "y'all'd've",
  "y'alld've": "y'all'd've",
  "y'all'dve": "y'all'd've",
  "youd": "you'd",
  "youd've": "you'd've",
  "you'dve": "you'd've",
  "youll": "you'll",
  "youre": "you're",
  "youve": "you've",
}
_NUMBER_WORDS = {
  "none": "0",
  "zero": "0",
  "one": "1",
  "two": "2",
  "three": "3",
  "four": "4",
  "five": "5",
  "six": "6",
  "seven": "7",
  "eight": "8",
  "nine": "9",
  "ten": "10",
}
_ARTICLES = ("a", "an", "the")
_PUNCTUATION = (
  ";",
  "/",
  "[",
  "]",
  '"',
  "{",
  "}",
  "(",
  ")",
  "=",
  "+",
  "\\",
  "_",
  "-",
  ">",
  "<",
  "@",
  "`",
  ",",
  "?",
  "!",
)
# The official regexes, including the malformed look-behind "(?!<=\d)": in effect a period
# is removed unless a digit follows it ("2.5" keeps its point, "yes." loses it). The script
# also passes re.UNICODE (= 32) where re.sub takes `count`, so it removes at most 32 periods;
# `max_periods` reproduces that where a scorer (GRIT's) keeps it.
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")


def _text_pairs(predictions, reference_lists, name: str):
  """(prediction, references) pairs, checked: one string against a non-empty list each."""
  base.same_length(predictions, reference_lists, "predictions", name)
  for i, (prediction, refs) in enumerate(zip(predictions, reference_lists)):
    if isinstance(refs, str) or not len(refs):
      raise ValueError(f"{name}[{i}] must be a non-empty list of strings, got {refs!r}")
    if not isinstance(prediction, str):
      raise ValueError(f"predictions[{i}] must be a string, got {type(prediction).__name__}")
  return zip(predictions, reference_lists)


def _vqa_punctuation(text: str, max_periods: Optional[int] = None) -> str:
  out = text
  for p in _PUNCTUATION:
    # Punctuation next to a space (or any digit comma digit in the answer) is deleted,
    # otherwise it separates words: "black/white" -> "black white", "1,000" -> "1000".
    if (p + " " in text or " " + p in text) or _COMMA_STRIP.search(text) is not None:
      out = out.replace(p, "")
    else:
      out = out.replace(p, " ")
  return _PERIOD_STRIP.sub("", out, count=max_periods or 0)


def _vqa_digits_articles(text: str) -> str:
  words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
  words = [w for w in words if w not in _ARTICLES]
  return " ".join(_CONTRACTIONS.get(w, w) for w in words)


def normalize_vqa_answer(answer: str, max_periods: Optional[int] = None) -> str:
  """The official VQA answer normalisation (punctuation, number words, articles, contractions).

  max_periods: remove at most this many periods, as the official script in effect does
  (GRIT's scorer passes 32); default: all of them, what the script means to do.
  """
  answer = answer.replace("\n", " ").replace("\t", " ").strip()
  return _vqa_digits_articles(_vqa_punctuation(answer, max_periods))


def vqa_scores(
  predictions: Sequence[str],
  answer_lists: Sequence[Sequence[str]],
  official_gt_processing: bool = False,
  *,
  leave_one_out: bool = True,
  max_periods: Optional[int] = None,
) -> List[float]:
  """Per-question VQA accuracy: min(#matching annotators / 3, 1) averaged over the
  leave-one-annotator-out subsets (10 choose 9 for VQA v2's 10 answers).

  leave_one_out=False scores min(#matching answers / 3, 1) over all the answers at once,
  with the threshold 3 whatever their number (GRIT's VQA accuracy: one answer matching
  scores 1/3). max_periods: see `normalize_vqa_answer`.

  The official script normalises the prediction fully but ground-truth answers only for
  punctuation, and only when annotators disagree; that is exact for VQA v2 whose released
  answers are already normalised, but would score "2" against a raw "two" as wrong. By
  default we apply the full normalisation to both sides; `official_gt_processing=True`
  (with max_periods=32) reproduces the script exactly.

  With fewer than 4 answers, 3 matching others cannot exist, so the threshold becomes all
  other annotators (n - 1); a single answer is exact match. (Official mode keeps 3.)
  """
  scores = []
  for prediction, answers in _text_pairs(predictions, answer_lists, "answer_lists"):
    prediction = normalize_vqa_answer(prediction, max_periods)
    answers = [a.replace("\n", " ").replace("\t", " ").strip() for a in answers]
    if not official_gt_processing:
      answers = [normalize_vqa_answer(a, max_periods) for a in answers]
    elif len(set(answers)) > 1:
      answers = [_vqa_punctuation(a, max_periods) for a in answers]
    matches = [a == prediction for a in answers]
    if not leave_one_out:
      scores.append(min(1.0, sum(matches) / 3))
      continue
    n = len(answers)
    if n == 1 and not official_gt_processing:
      scores.append(float(matches[0]))
      continue
    needed = 3 if official_gt_processing else min(3, n - 1)
    total = sum(matches)
    scores.append(float(np.mean([min(1.0, (total - m) / needed) for m in matches])))
  return scores


def vqa_accuracy(
  predictions: Sequence[str],
  answer_lists: Sequence[Sequence[str]],
  official_gt_processing: bool = False,
) -> float:
  """Mean VQA accuracy in [0, 1] (see `vqa_scores`)."""
  if not len(predictions):
    raise ValueError("predictions is empty")
  return float(np.mean(vqa_scores(predictions, answer_lists, official_gt_processing)))


# ----------------------------------------------------------------------------------------
# Captioning (pycocoevalcap)
# ----------------------------------------------------------------------------------------

# Tokens coco-caption's PTBTokenizer wrapper removes after tokenizing. It lists the bracket
# tokens in upper case ("-LRB-") but runs PTB with -lowerCase, so brackets survive as
# "-lrb-" etc.; we reproduce that rather than fix it, to match published scores.
_PTB_DROPPED = {"''", "'", "``", "`", ".", "?", "!", ",", ":", "-", "--", "...", ";", '"'}
_PTB_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "{": "-lcb-", "}": "-rcb-", "[": "-lsb-", "]": "-rsb-"}
_CLITICS = re.compile(r"(n't|'s|'re|'ve|'ll|'m|'d)\b")
# A word keeps inner hyphens, slashes, apostrophes and periods, as PTB does ("black-and-white",
# "o'clock", "2.5"); other characters are single tokens.
_WORD = re.compile(r"[a-z0-9]+(?:[-/.'][a-z0-9]+)*|'[a-z]+|[^\sa-z0-9]")


def tokenize_caption(text: str) -> str:
  """coco-caption's tokenisation without Java: lowercase, PTB clitic splitting ("don't" ->
  "do n't", "man's" -> "man 's"), PTB bracket names, then the punctuation tokens coco-caption
  drops are dropped. Matches PTBTokenizer on ordinary captions, not on every corner case."""
  text = _CLITICS.sub(r" \1", text.lower().replace("\n", " "))
  tokens = (_PTB_BRACKETS.get(t, t) for t in _WORD.findall(text))
  return " ".join(t for t in tokens if t not in _PTB_DROPPED)


def _caption_inputs(predictions, references, tokenize: bool):
  pairs = _text_pairs(predictions, references, "references")
  if not len(predictions):
    raise ValueError("predictions is empty")
  gts, res = {}, {}
  prep = tokenize_caption if tokenize else (lambda s: s)
  for i, (prediction, refs) in enumerate(pairs):
    res[i] = [prep(prediction)]
    gts[i] = [prep(r) for r in refs]
  return gts, res


def _score(scorer, predictions, references, tokenize):
  gts, res = _caption_inputs(predictions, references, tokenize)
  with contextlib.redirect_stdout(io.StringIO()):  # Bleu prints its n-gram statistics
    score, _ = scorer.compute_score(gts, res)
  return score


def cider(
  predictions: Sequence[str], references: Sequence[Sequence[str]], tokenize: bool = True
) -> float:
  """Corpus CIDEr-D (pycocoevalcap's Cider). IDF comes from the references passed, so call
  it once on the whole evaluation set, not per example."""
  from pycocoevalcap.cider import cider as cider_lib

  return float(_score(cider_lib.Cider(), predictions, references, tokenize))


def bleu(
  predictions: Sequence[str], references: Sequence[Sequence[str]], tokenize: bool = True
) -> Dict[str, float]:
  """Corpus BLEU-1..4 as coco-caption reports them (closest reference length)."""
  from pycocoevalcap.bleu import bleu as bleu_lib

  scores = _score(bleu_lib.Bleu(4), predictions, references, tokenize)
  return {f"BLEU-{n + 1}": float(s) for n, s in enumerate(scores)}


def rouge_l(
  predictions: Sequence[str], references: Sequence[Sequence[str]], tokenize: bool = True
) -> float:
  """Mean sentence-level ROUGE-L (F-measure, beta 1.2) as in coco-caption."""
  from pycocoevalcap.rouge import rouge as rouge_lib

  return float(_score(rouge_lib.Rouge(), predictions, references, tokenize))


def java_available() -> bool:
  return shutil.which("java") is not None


def spice_available() -> bool:
  """SPICE needs Java and the CoreNLP jar (otherwise pycocoevalcap tries to download it)."""
  if not java_available():
    return False
  from pycocoevalcap.spice import spice as spice_lib

  lib = os.path.join(os.path.dirname(spice_lib.__file__), "lib")
  return os.path.exists(os.path.join(lib, "stanford-corenlp-3.6.0-models.jar"))


def meteor(
  predictions: Sequence[str], references: Sequence[Sequence[str]], tokenize: bool = True
) -> float:
  """METEOR 1.5 via pycocoevalcap's Java wrapper; raises if Java is missing."""
  if not java_available():
    raise RuntimeError("METEOR needs Java (`java` is not on PATH)")
  from pycocoevalcap.meteor import meteor as meteor_lib

  scorer = meteor_lib.Meteor()
  try:
    return float(_score(scorer, predictions, references, tokenize))
  finally:
    del scorer  # its __del__ stops the Java process


def spice(
  predictions: Sequence[str], references: Sequence[Sequence[str]], tokenize: bool = True
) -> float:
  """SPICE via pycocoevalcap; raises unless `spice_available()`."""
  if not spice_available():
    raise RuntimeError("SPICE needs Java and pycocoevalcap's Stanford CoreNLP jar")
  from pycocoevalcap.spice import spice as spice_lib

  return float(_score(spice_lib.Spice(), predictions, references, tokenize))


def caption_metrics(
  predictions: Sequence[str], references: Sequence[Sequence[str]], use_java: bool = True
) -> Dict[str, object]:
  """BLEU-1..4, ROUGE-L and CIDEr; METEOR and SPICE when their Java parts are available.

  Metrics that could not run are listed under "omitted" with the reason, so a report never
  silently lacks a column.
  """
  out: Dict[str, object] = dict(bleu(predictions, references))
  out["ROUGE-L"] = rouge_l(predictions, references)
  out["CIDEr"] = cider(predictions, references)
  omitted = {}
  if use_java and java_available():
    out["METEOR"] = meteor(predictions, references)
  else:
    omitted["METEOR"] = "needs Java" if use_java else "use_java=False"
  if use_java and spice_available():
    out["SPICE"] = spice(predictions, references)
  else:
    omitted["SPICE"] = "needs Java and the Stanford CoreNLP jar" if use_java else "use_java=False"
  out["omitted"] = omitted
  return out
