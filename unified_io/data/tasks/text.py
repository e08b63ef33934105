"""Built-in NLP and language-modelling tasks (paper Table 1, appendix A.1.7-A.1.8), the text
helpers (span corruption, QA windows) and the pre-training objectives (§3.3, A.2).

Built-in tasks read `uio_builtin_scenes/text` (one split holds every text task kind; a
task skips the other kinds, so its size is a fifth of the split) and, for the V&L and
image-denoising objectives, `uio_builtin_scenes/scenes`. The real NLP and language-modelling
datasets are `nlp` and `nlp_qa`; they build on the public helpers here (`required`, `raw`,
`prompt`, `query`, `qa`, `windows`, `span_corruption`). Their prompts are written with
`prompt` (and `query` for an instruction nested in another), which follow
TaskContext.conditioning as `Task.prompt` does.
"""

from __future__ import annotations

import dataclasses
from typing import List, Sequence, Tuple, Union

import numpy as np

from unified_io.common import vocab
from unified_io.data import prompts
from unified_io.data.tasks import registry as tasks

Skip = tasks.SkipExample
BUILTIN_TEXT = "uio_builtin_scenes/text"
BUILTIN_SCENES = "uio_builtin_scenes/scenes"
# Text-task kinds share the text split uniformly (scene_text.TEXT_TASKS); 4000 train.
BUILTIN_TEXT_KIND_SIZE = 800
BUILTIN_SCENES_SIZE = 4000

NOISE_DENSITY = 0.15  # T5 span corruption: fraction of words dropped
MEAN_SPAN_LENGTH = 3.0
IMAGE_MASK_RATE = 0.75  # masked image denoising: fraction of patches hidden
DROP_MODALITY_RATE = 0.1  # pre-training: drop the text or the image of a V&L example
VL_PREFIX = "An image of "
# Question-answering windows: words of context per window, and the stride between windows.
QA_WINDOW_WORDS, QA_WINDOW_STRIDE = 160, 80


def required(value, field: str, what: str) -> str:
  """`tasks.as_text(value)`, skipping the record (reason "empty <what>") when it is blank."""
  result = tasks.as_text(value, field)
  if not result.strip():
    raise Skip(f"empty {what}")
  return result


def raw(prompt: str, target: str, image=None, **meta) -> dict:
  return {
    "prompt": prompt,
    "image": image,
    "target_text": target,
    "target_image": None,
    "meta": meta,
  }


def template(key: str, rng, ctx: tasks.TaskContext) -> str:
  """The official template of prompt `key`, or with ctx.paraphrase a random one (one draw)."""
  options = prompts.PROMPTS[key]
  return options[int(rng.integers(len(options)))] if ctx.paraphrase else options[0]


@dataclasses.dataclass(frozen=True)
class Query:
  """An instruction filled with its arguments, for a prompt nested in another template (the
  question of a classification, a cloze or candidate-answer question...). Under task-token
  conditioning the outer `prompt` keeps only its arguments: the instruction's words vanish."""

  text: str  # the instruction's template filled with `args`
  args: Tuple[str, ...] = ()


def query(key: str, rng, ctx: tasks.TaskContext, *args) -> Query:
  """The `key` template drawn as `template` draws it, filled with `args`, as a Query."""
  return Query(template(key, rng, ctx).format(*args), tuple(args))


def _flat(args) -> List[str]:
  """Task-token arguments: a Query contributes its own arguments, anything else itself."""
  out = []
  for a in args:
    out += _flat(a.args) if isinstance(a, Query) else [a]
  return out


def _task_token_prompt(ctx: tasks.TaskContext, args) -> str:
  if not ctx.task:
    raise ValueError(
      "task-token conditioning needs the task's name, but the TaskContext has no task name "
      "(TaskContext.task, set by data.pipeline.prepare)"
    )
  return tasks.task_token_prompt(ctx.task, _flat(args))


def prompt(key: str, rng, ctx: tasks.TaskContext, *args) -> str:
  """The `key` template filled with `args` (a Query argument as its text), as `Task.prompt`
  fills a task's own; with ctx.conditioning "task_token", the marker of ctx.task and the
  arguments alone, a Query's arguments in its place. The template is drawn under either
  conditioning, so both consume the same random numbers and see the same examples."""
  chosen = template(key, rng, ctx)
  if ctx.conditioning == "task_token":
    return _task_token_prompt(ctx, args)
  return chosen.format(*(a.text if isinstance(a, Query) else a for a in args))


def literal_prompt(words: str, ctx: tasks.TaskContext) -> str:
  """A prompt written without a template (`words`, no arguments, no random draw); under
  task-token conditioning the task's marker alone."""
  if ctx.conditioning == "task_token":
    return _task_token_prompt(ctx, ())
  return words


# ------------------------------------------------------------------------ span corruption


def span_corruption(
  words: Sequence[str],
  rng: np.random.Generator,
  noise_density: float = NOISE_DENSITY,
  mean_span_length: float = MEAN_SPAN_LENGTH,
):
  """T5 span corruption over words: (input text, target text).

  round(n * noise_density) words (at least 1) are dropped in spans of mean length
  `mean_span_length`; each span becomes one sentinel <extra_id_k> in the input and the
  target lists every sentinel followed by the words it replaced. Inputs with the
  sentinels filled back in give the original text exactly.
  """
  words = list(words)
  n = len(words)
  if n < 2:
    raise Skip("span corruption needs at least two words")
  num_noise = int(np.clip(round(n * noise_density), 1, n - 1))
  num_spans = int(np.clip(round(num_noise / mean_span_length), 1, min(num_noise, n - num_noise)))
  num_spans = min(num_spans, vocab.NUM_SENTINELS - 1)  # the last sentinel marks missing joints
  # Split noise and non-noise words into num_spans non-empty runs each, then interleave.
  noise_lengths = _random_partition(num_noise, num_spans, rng)
  keep_lengths = _random_partition(n - num_noise, num_spans, rng)
  inputs, targets, position = [], [], 0
  for k in range(num_spans):
    inputs += words[position : position + keep_lengths[k]]
    position += keep_lengths[k]
    sentinel = vocab.extra_id_token(k)
    inputs.append(sentinel)
    targets += [sentinel] + words[position : position + noise_lengths[k]]
    position += noise_lengths[k]
  return " ".join(inputs), " ".join(targets)


def _random_partition(total: int, parts: int, rng) -> List[int]:
  """`total` split into `parts` positive lengths, uniformly over compositions."""
  cuts = np.sort(rng.choice(np.arange(1, total), parts - 1, replace=False)) if parts > 1 else []
  bounds = [0, *cuts, total]
  return [int(b - a) for a, b in zip(bounds[:-1], bounds[1:])]


def fill_spans(corrupted: str, target: str) -> str:
  """Inverse of span_corruption: the sentinels of `corrupted` replaced by their spans."""
  spans, current = {}, None
  for word in target.split():
    if word.startswith("<extra_id_"):
      current = word
      spans[current] = []
    elif current is not None:
      spans[current].append(word)
  out = []
  for word in corrupted.split():
    out += spans.get(word, []) if word.startswith("<extra_id_") else [word]
  return " ".join(out)


def masked_patches(grid_size: int, rng, rate: float = IMAGE_MASK_RATE) -> np.ndarray:
  """bool [grid_size ** 2]: True on the round((1 - rate) * n) patches left visible.

  (Training examples get their mask from the pipeline, on the model's patch grid:
  `_image_denoising` asks for `IMAGE_MASK_RATE` via "image_input_mask_rate".)
  """
  n = grid_size * grid_size
  keep = np.zeros(n, bool)
  keep[rng.permutation(n)[: int(round(n * (1 - rate)))]] = True
  return keep


# ------------------------------------------------------------------------ built-in tasks


def _kind(example, kind: str):
  if tasks.as_text(example["task"], "task") != kind:
    raise Skip(f"not a {kind} example")


def _classification(kind: str, question_key: str, labels: Sequence[str]):
  def preprocess(example, rng, ctx):
    _kind(example, kind)
    example_id = tasks.as_text(example["id"], "id")
    texts = (tasks.as_text(example["context"], "context"), tasks.as_text(example["input"], "input"))
    sentences = " ".join(s for s in texts if s)
    if not sentences.strip():
      raise Skip("empty input text")
    label = required(example["label"], "label", "label")
    if label not in labels:
      raise Skip(f"label {label!r} is not one of {', '.join(labels)}")
    question = query(question_key, rng, ctx)  # drawn before the outer template
    text = prompt("text_classification", rng, ctx, sentences, question)
    return raw(text, label, label=label, class_names=tuple(labels), example_id=example_id)

  return preprocess


def windows(context_words: Sequence[str], answer: str):
  """Context windows (QA_WINDOW_WORDS words, stride QA_WINDOW_STRIDE) containing `answer`;
  all windows when the answer is not found verbatim."""
  last = max(len(context_words) - QA_WINDOW_WORDS, 0)
  # Strided starts plus one flush with the end: the stride alone can leave the tail uncovered.
  starts = sorted({*range(0, last + 1, QA_WINDOW_STRIDE), last})
  found = [
    s for s in starts if answer.lower() in " ".join(context_words[s : s + QA_WINDOW_WORDS]).lower()
  ]
  return [(s, context_words[s : s + QA_WINDOW_WORDS]) for s in (found or list(starts))]


def qa(
  context: str,
  question: Union[str, Query],
  answers: Sequence[str],
  rng,
  ctx,
  example_id: str,
):
  words = context.split()
  options = windows(words, answers[0]) if answers else [(0, words)]
  _, window = options[int(rng.integers(len(options)))]
  text = prompt("question_answering", rng, ctx, " ".join(window), question)
  return raw(text, answers[0], answers=list(answers), example_id=example_id)


def _builtin_qa(example, rng, ctx):
  _kind(example, "question_answering")
  example_id = tasks.as_text(example["id"], "id")
  return qa(
    required(example["context"], "context", "context"),
    required(example["input"], "input", "question"),
    [required(example["target"], "target", "answer")],
    rng,
    ctx,
    example_id,
  )


def _builtin_summarization(example, rng, ctx):
  _kind(example, "summarization")
  example_id = tasks.as_text(example["id"], "id")
  document = required(example["input"], "input", "document")
  target = required(example["target"], "target", "summary")
  return raw(
    prompt("summarization", rng, ctx, document), target, captions=[target], example_id=example_id
  )


def _builtin_masked_lm(example, rng, ctx):
  _kind(example, "language_modeling")
  example_id = tasks.as_text(example["id"], "id")
  original = required(example["input"], "input", "text")
  corrupted, target = span_corruption(original.split(), rng)
  return raw(
    prompt("masked_language_modelling", rng, ctx, corrupted),
    target,
    original=original,
    example_id=example_id,
  )


def _vl_text_denoising(example, rng, ctx):
  """Pre-training: span denoising of an image's caption, with the image (§3.3)."""
  captions = [tasks.as_text(c, "captions") for c in example["captions"]]
  captions = [c for c in captions if c.strip()]
  if not captions:
    raise Skip("no caption")
  caption = VL_PREFIX + captions[int(rng.integers(len(captions)))]
  corrupted, target = span_corruption(caption.split(), rng)
  image = np.asarray(example["image"])
  if rng.random() < DROP_MODALITY_RATE:
    image = None
  return raw(
    prompt("span_denoising", rng, ctx, corrupted),
    target,
    image=image,
    original=caption,
    example_id=tasks.as_text(example["id"], "id"),
  )


def _image_denoising(example, rng, ctx):
  """Pre-training: masked image denoising, 75% of input patches hidden, target the image.

  The patch grid is the model's (input size / config.model.patch_size), which only the
  pipeline knows: it hides IMAGE_MASK_RATE of the image's patches, drawn from the seed.
  """
  image = np.asarray(example["image"])
  result = raw(
    literal_prompt("What is the complete image?", ctx),
    "",
    image=image,
    example_id=tasks.as_text(example["id"], "id"),
  )
  result["target_image"] = image.astype(np.float32) / 255.0
  result["image_input_mask_rate"] = IMAGE_MASK_RATE
  result["image_input_mask_seed"] = int(rng.integers(2**32))
  return result


def _register(
  name, group, builder, preprocess, prompt_key, metric, size, output=tasks.Output.TEXT, **kwargs
):
  return tasks.register(
    tasks.Task(
      name=name,
      group=group,
      builder=builder,
      preprocess=preprocess,
      prompts=prompts.PROMPTS[prompt_key],
      metric=metric,
      size=size,
      output=output,
      **kwargs,
    )
  )


M = tasks.Metric


def _kind_filter(kind: str):
  return {"record_filter": ("task", kind)}


_register(
  "builtin_entailment",
  "nlp",
  BUILTIN_TEXT,
  _classification("entailment", "entailment_question", ("true", "false")),
  "text_classification",
  M.ACCURACY,
  BUILTIN_TEXT_KIND_SIZE,
  output=tasks.Output.CHOICE,
  **_kind_filter("entailment"),
)
_register(
  "builtin_sentiment",
  "nlp",
  BUILTIN_TEXT,
  _classification("sentiment", "sentiment_question", ("positive", "negative")),
  "text_classification",
  M.ACCURACY,
  BUILTIN_TEXT_KIND_SIZE,
  output=tasks.Output.CHOICE,
  **_kind_filter("sentiment"),
)
_register(
  "builtin_question_answering",
  "nlp",
  BUILTIN_TEXT,
  _builtin_qa,
  "question_answering",
  M.EXACT_MATCH,
  BUILTIN_TEXT_KIND_SIZE,
  **_kind_filter("question_answering"),
)
_register(
  "builtin_summarization",
  "nlp",
  BUILTIN_TEXT,
  _builtin_summarization,
  "summarization",
  M.ROUGE_L,
  BUILTIN_TEXT_KIND_SIZE,
  **_kind_filter("summarization"),
)
_register(
  "builtin_masked_lm",
  "language_modelling",
  BUILTIN_TEXT,
  _builtin_masked_lm,
  "masked_language_modelling",
  M.EXACT_MATCH,
  BUILTIN_TEXT_KIND_SIZE,
  **_kind_filter("language_modeling"),
)
# Pre-training objectives (the "pretraining" mixture).
_register(
  "builtin_vl_text_denoising",
  "language_modelling",
  BUILTIN_SCENES,
  _vl_text_denoising,
  "span_denoising",
  M.EXACT_MATCH,
  BUILTIN_SCENES_SIZE,
)
_register(
  "builtin_image_denoising",
  "image_synthesis",
  BUILTIN_SCENES,
  _image_denoising,
  "span_denoising",
  M.IMAGE_PSNR,
  BUILTIN_SCENES_SIZE,
  output=tasks.Output.IMAGE,
)
