"""Task-token conditioning, the decoding override of evaluation, and the ablation CLI on a
one-step tiny run (docs/ablations.md)."""

import collections
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import types

import flax.linen as nn
import jax
import numpy as np
import pytest

from configs import tiny as tiny_config
from unified_io.common import locations
from unified_io.data import from_config
from unified_io.data import pipeline
from unified_io.data import prompts
from unified_io.data.tasks import builtin_vision
from unified_io.data.tasks import pretraining
from unified_io.data.tasks import registry as tasks_lib
from unified_io.data.tasks import text as text_tasks
from unified_io.eval import ablation
from unified_io.eval import outputs
from unified_io.eval import predictor as predictor_lib
from unified_io.eval import task_eval
from unified_io.model import builder
from unified_io.model import generation
from unified_io.train import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A text, an image and a choice task: one of each way outputs are decoded.
TASKS = ("builtin_vqa", "builtin_depth", "builtin_image_classification")
MAX_DEPTH = 20.0
# The built-in NLP, language-modelling and pre-training tasks (data/tasks/text.py).
BUILTIN_TEXT_TASKS = (
  "builtin_entailment",
  "builtin_sentiment",
  "builtin_question_answering",
  "builtin_summarization",
  "builtin_masked_lm",
  "builtin_vl_text_denoising",
  "builtin_image_denoising",
)


@pytest.fixture(scope="module")
def data_dir(builtin_data_dir):
  return builtin_data_dir


@pytest.fixture(scope="module")
def predictor():
  """The tiny config's random initialisation (no training needed to compare decodings)."""
  config = tiny_config.get_config()
  params = nn.unbox(builder.init_params(builder.build(config), jax.random.key(0)))
  return predictor_lib.Predictor(config, params)


def _collect(name, spec, data_dir, conditioning="prompt", paraphrase=False, n=4):
  ctx = spec.context(MAX_DEPTH, paraphrase, conditioning)
  return task_eval.collect(tasks_lib.get(name), spec, ctx, "validation", n, 0, data_dir)


def _decoded_input(spec, features, i):
  return spec.tokenizer.decode(features["text_inputs"][i])


# ------------------------------------------------------------------------- conditioning


def test_task_token_replaces_the_template_words_keeping_the_argument(predictor, data_dir):
  spec = predictor.spec
  prompted = _collect("builtin_refexp", spec, data_dir)
  tokened = _collect("builtin_refexp", spec, data_dir, "task_token")
  token_ids = spec.tokenizer.encode("builtin_refexp:")
  for i, (p, t) in enumerate(zip(prompted.raws, tokened.raws)):
    expression = p["meta"]["expression"]
    assert p["meta"]["example_id"] == t["meta"]["example_id"]
    assert t["target_text"] == p["target_text"]  # the same example, only the prompt differs
    # The official refexp template, written out here.
    official = f'Which region does the text " {expression} " describe ?'
    assert p["prompt"] == official and _decoded_input(spec, prompted.features, i) == official
    ids = tokened.features["text_inputs"][i]
    assert list(ids[: len(token_ids)]) == list(token_ids)
    decoded = _decoded_input(spec, tokened.features, i)
    assert decoded == f"builtin_refexp: {expression}"
    assert "describe" not in decoded and "Which" not in decoded


def test_task_token_of_two_arguments_and_of_none(predictor, data_dir):
  spec = predictor.spec
  layout = spec.tokenizer.layout
  prompted = _collect("builtin_relationship", spec, data_dir)
  tokened = _collect("builtin_relationship", spec, data_dir, "task_token")
  for i, (p, t) in enumerate(zip(prompted.raws, tokened.raws)):
    meta, hw = p["meta"], p["meta"]["image_hw"]
    subject = f"{locations.box_to_text(meta['subject_box'], hw, layout)} {meta['subject']}"
    obj = f"{locations.box_to_text(meta['object_box'], hw, layout)} {meta['object']}"
    assert p["prompt"] == f'What is the relationship between " {subject} " and " {obj} " ?'
    assert t["prompt"] == f"builtin_relationship: {subject} ; {obj}"
    assert _decoded_input(spec, tokened.features, i) == t["prompt"]
  depth = _collect("builtin_depth", spec, data_dir, "task_token", n=2)
  assert [r["prompt"] for r in depth.raws] == ["builtin_depth:"] * 2
  prompted_depth = _collect("builtin_depth", spec, data_dir, n=2)
  assert [r["prompt"] for r in prompted_depth.raws] == ["What is the depth map of the image ?"] * 2


def test_both_conditionings_see_the_same_examples_even_with_paraphrases(predictor, data_dir):
  """Task tokens draw the paraphrase choice too, so every later random choice matches (the
  text and pre-training preprocessors' text.prompt as Task.prompt)."""
  spec = predictor.spec
  for name in (*builtin_vision.BUILTIN_TASK_NAMES, *BUILTIN_TEXT_TASKS):
    prompted = _collect(name, spec, data_dir, paraphrase=True, n=3)
    tokened = _collect(name, spec, data_dir, "task_token", paraphrase=True, n=3)
    assert tokened.raws and len(prompted.raws) == len(tokened.raws), name
    for key, value in prompted.features.items():
      if key != "text_inputs":
        np.testing.assert_array_equal(value, tokened.features[key], err_msg=f"{name} {key}")
    for p, t in zip(prompted.raws, tokened.raws):
      assert t["prompt"].startswith(f"{name}:") and p["target_text"] == t["target_text"], name


def test_evaluation_asks_a_model_the_way_its_run_was_conditioned(predictor):
  config = tiny_config.get_config()
  config.data.conditioning = "task_token"
  run = types.SimpleNamespace(config=config, spec=predictor.spec)
  assert task_eval.task_context(run, "test", MAX_DEPTH).conditioning == "task_token"
  assert task_eval.task_context(run, "test", MAX_DEPTH).split == "test"
  del config.data["conditioning"]  # a config saved before the key existed: prompts
  assert task_eval.task_context(run, "test", MAX_DEPTH).conditioning == "prompt"


def test_tasks_that_bypass_task_prompt_are_marked_under_task_tokens():
  """A preprocessor that writes its prompt without Task.prompt or text.prompt keeps the
  template's words under task tokens: the table must say so."""
  toy = tasks_lib.Task(
    name="toy_literal", group="nlp", builder="toy", preprocess=None, prompts=("{}",)
  )
  unmarked = task_eval.TaskExamples(
    toy, [{"prompt": "context: it rains. question: is it wet?"}], {}, collections.Counter()
  )
  tokened = ablation.Run("w", None, "task_token", ("toy_literal",))
  assert "toy_literal: its prompts do not start with its task token" in (
    ablation.conditioning_note(tokened, unmarked)
  )
  prompted = ablation.Run("w", None, "prompt", ("toy_literal",))
  assert ablation.conditioning_note(prompted, unmarked) == ""
  marked = task_eval.TaskExamples(
    toy, [{"prompt": "toy_literal: it rains."}], {}, collections.Counter()
  )
  assert ablation.conditioning_note(tokened, marked) == ""
  # One unmarked prompt among marked ones is enough.
  mixed = task_eval.TaskExamples(toy, marked.raws + unmarked.raws, {}, collections.Counter())
  assert ablation.conditioning_note(tokened, mixed) != ""


def test_a_concept_variant_carries_its_base_tasks_marker():
  """builtin_vqa_sce makes builtin_vqa's examples (Task.prompt of the base): the guard must
  look for the base's marker, not the variant's."""
  variant = tasks_lib.get("builtin_vqa_sce")
  tokened = ablation.Run("w", None, "task_token", (variant.name,))
  based = task_eval.TaskExamples(
    variant, [{"prompt": "builtin_vqa: what color is the circle ?"}], {}, collections.Counter()
  )
  assert ablation.conditioning_note(tokened, based) == ""
  own = task_eval.TaskExamples(
    variant, [{"prompt": "builtin_vqa_sce: what color ?"}], {}, collections.Counter()
  )
  assert "its prompts do not start with its task token" in ablation.conditioning_note(tokened, own)


def _records_by_id(name, data_dir, split="validation"):
  """The raw TFDS records of a task's split, by their id (the raws' meta example_id)."""
  task = tasks_lib.get(name)
  src = pipeline.source(task.builder, task.splits[split], data_dir, task.record_filter)
  return {src[i]["id"].decode(): src[i] for i in range(len(src))}


def test_builtin_text_tasks_get_their_task_token(predictor, data_dir):
  """The NLP preprocessors write their prompts with text.prompt: the marker and the
  template's arguments, the nested question's words gone; the same examples as prompts."""
  spec = predictor.spec
  official = {key: prompts.PROMPTS[key][0] for key in prompts.PROMPTS}
  for name in ("builtin_entailment", "builtin_question_answering"):
    records = _records_by_id(name, data_dir)
    prompted = _collect(name, spec, data_dir)
    tokened = _collect(name, spec, data_dir, "task_token")
    assert prompted.raws and len(prompted.raws) == len(tokened.raws) == len(records)
    for i, (p, t) in enumerate(zip(prompted.raws, tokened.raws)):
      assert p["meta"]["example_id"] == t["meta"]["example_id"]
      assert p["target_text"] == t["target_text"]  # the same example, only the prompt differs
      record = records[p["meta"]["example_id"]]
      context, text = record["context"].decode(), record["input"].decode()
      assert t["target_text"] == record["target"].decode()
      if name == "builtin_entailment":
        sentences = f"{context} {text}"
        question = "Does this sentence entail the following sentence?"
        assert official["entailment_question"] == question
        assert p["prompt"] == f"context: {sentences} question: {question}"
        assert p["prompt"] == official["text_classification"].format(sentences, question)
        assert t["prompt"] == f"builtin_entailment: {sentences}"
      else:
        window = " ".join(context.split())  # short contexts: one window, all of it
        assert len(context.split()) <= text_tasks.QA_WINDOW_WORDS
        assert p["prompt"] == f"context: {window} question: {text}"
        assert p["prompt"] == official["question_answering"].format(window, text)
        assert t["prompt"] == f"builtin_question_answering: {window} ; {text}"
      assert _decoded_input(spec, tokened.features, i) == t["prompt"]
      assert "question:" not in t["prompt"] and "context:" not in t["prompt"]


def test_nlp_classifier_query_arguments_follow_the_marker():
  """A nested query's arguments stay (WiC's word), its words go; STS-B's query has none."""
  wic = {
    "sentence1": b"He sat on the bank.",
    "sentence2": b"The bank lent him money.",
    "word": b"bank",
    "label": np.int64(0),
    "idx": np.int32(7),
  }
  stsb = {
    "sentence1": b"A cat sleeps.",
    "sentence2": b"A cat is asleep.",
    "label": np.float32(4.0),
    "idx": np.int32(3),
  }
  context = "He sat on the bank. The bank lent him money."
  pair = "A cat sleeps. A cat is asleep."
  wic_question = 'Does the word " bank " have the same meaning in both sentences?'
  stsb_question = "How similar are these sentences on a scale from 0 to 5?"
  assert prompts.PROMPTS["word_sense_question"][0].format("bank") == wic_question
  assert prompts.PROMPTS["similarity_question"][0] == stsb_question
  expected = {  # name: (record, prompt, task-token prompt, target)
    "superglue_wic": (
      wic,
      f"context: {context} question: {wic_question}",
      f"superglue_wic: {context} ; bank",
      "no",
    ),
    "glue_stsb": (
      stsb,
      f"context: {pair} question: {stsb_question}",
      f"glue_stsb: {pair}",
      "4.0",
    ),
  }
  for name, (record, words, marked, target) in expected.items():
    task = tasks_lib.get(name)
    ctx = tasks_lib.TaskContext(task=name, conditioning="task_token")
    tokened = task.preprocess(record, np.random.default_rng(0), ctx)
    prompted = task.preprocess(record, np.random.default_rng(0), tasks_lib.TaskContext())
    assert prompted["prompt"] == words and tokened["prompt"] == marked
    assert tokened["target_text"] == prompted["target_text"] == target


def test_task_tokens_need_the_task_name():
  """Outside the pipeline a TaskContext names no task: text prompts cannot be marked."""
  nameless = tasks_lib.TaskContext(conditioning="task_token")
  record = {"sentence1": b"A cat.", "sentence2": b"A dog.", "label": np.float32(1.0), "idx": 0}
  with pytest.raises(ValueError, match="the TaskContext has no task name"):
    tasks_lib.get("glue_stsb").preprocess(record, np.random.default_rng(0), nameless)
  with pytest.raises(ValueError, match="the TaskContext has no task name"):
    text_tasks.literal_prompt(pretraining.IMAGE_ONLY_PROMPT, nameless)
  named = dataclasses.replace(nameless, task="coco2017_image_denoising")
  assert text_tasks.literal_prompt(pretraining.IMAGE_ONLY_PROMPT, named) == (
    "coco2017_image_denoising:"
  )
  prompted = tasks_lib.TaskContext()  # prompts need no name
  assert text_tasks.literal_prompt(pretraining.IMAGE_ONLY_PROMPT, prompted) == (
    "What is the complete image?"
  )


# ------------------------------------------------------------------ decoding override


def _greedy_reference(predictor, features):
  """Greedy text straight from the model's generation function, as evaluation decoded it
  before the override existed."""
  fn = jax.jit(
    lambda params, batch: generation.generate_text(
      predictor.model,
      params,
      batch,
      max_len=predictor.config.lengths.text_targets,
      eos_id=1,
      method="greedy",
    )
  )
  inputs = {k: features[k] for k in ("text_inputs", "image_inputs", "image_input_mask")}
  tokens, _ = fn(predictor.params, inputs)
  return np.asarray(tokens)


def _tokens(preds):
  return np.stack([p["tokens"] for p in preds])


def test_text_override_reaches_the_decoder(predictor, data_dir):
  examples = _collect("builtin_vqa", predictor.spec, data_dir, n=2)
  kind, features = outputs.get(tasks_lib.Output.TEXT), examples.features
  default = outputs.decode(kind, predictor, features, seed=0)
  np.testing.assert_array_equal(_tokens(default), _greedy_reference(predictor, features))
  # One beam without length normalisation is greedy search (decoding.beam_search).
  beam = dict(method="beam", num_beams=1, alpha=0.0)
  one_beam = outputs.decode(kind, predictor, features, seed=0, text_decoding=beam)
  np.testing.assert_array_equal(_tokens(one_beam), _tokens(default))
  sample = dict(method="sample", temperature=1.0, top_k=0, top_p=1.0)
  drawn = outputs.decode(kind, predictor, features, seed=3, text_decoding=sample)
  again = outputs.decode(kind, predictor, features, seed=3, text_decoding=sample)
  other = outputs.decode(kind, predictor, features, seed=4, text_decoding=sample)
  np.testing.assert_array_equal(_tokens(drawn), _tokens(again))  # seeded
  assert not np.array_equal(_tokens(drawn), _tokens(default))
  assert not np.array_equal(_tokens(drawn), _tokens(other))


def test_choice_override_writes_free_text_and_image_override_takes_argmax(predictor, data_dir):
  spec = predictor.spec
  choice = _collect("builtin_image_classification", spec, data_dir, n=2)
  options = [list(r["meta"]["class_names"]) for r in choice.raws]
  kind = outputs.get(tasks_lib.Output.CHOICE)
  scored = outputs.decode(kind, predictor, choice.features, options=options)
  assert all("choice" in p and p["text"] in o for p, o in zip(scored, options))
  free = outputs.decode(
    kind, predictor, choice.features, options=options, text_decoding=dict(method="greedy")
  )
  assert not any("choice" in p for p in free)
  np.testing.assert_array_equal(_tokens(free), _greedy_reference(predictor, choice.features))

  depth = _collect("builtin_depth", spec, data_dir, n=2)
  kind = outputs.get(tasks_lib.Output.DEPTH)
  argmax = [
    outputs.decode(kind, predictor, depth.features, seed=s, image_decoding=ablation.GREEDY_CODES)
    for s in (0, 1000)
  ]
  one_sample = outputs.ONE_SAMPLE  # the default's top-p sampling, one draw instead of four
  sampled = [
    outputs.decode(kind, predictor, depth.features, seed=s, image_decoding=one_sample)
    for s in (0, 1000)
  ]
  # Argmax codes do not depend on the seed; top-p samples do.
  np.testing.assert_array_equal(argmax[0][0]["image"], argmax[1][0]["image"])
  assert not np.array_equal(sampled[0][0]["image"], sampled[1][0]["image"])


def test_plans_say_what_each_kind_decodes():
  beam = ablation.parse_strategy("beam4")
  depth = ablation.plan(outputs.get(tasks_lib.Output.DEPTH), beam)
  assert depth.text_decoding is None and depth.image_decoding == ablation.GREEDY_CODES
  assert depth.used == "image: argmax codes" and "no beam search" in depth.substitute
  text = ablation.plan(outputs.get(tasks_lib.Output.TEXT), beam)
  assert text.text_decoding == dict(method="beam", num_beams=4, alpha=ablation.BEAM_ALPHA)
  assert text.used == "text: beam 4 (alpha 0.6)" and not text.substitute
  default = ablation.plan(outputs.get(tasks_lib.Output.NORMALS), ablation.parse_strategy("default"))
  assert default.image_decoding is None
  assert default.used == f"image: mean of {outputs.REGRESSION_SAMPLES} top-p 0.9 samples"
  choice = ablation.plan(outputs.get(tasks_lib.Output.CHOICE), ablation.parse_strategy("sample"))
  assert choice.used == "text: free text, sampling (T 1, top-k off, top-p off)"


# -------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory, data_dir):
  """A one-step tiny run trained on task tokens, and a copy of it whose config says
  prompts: the CLI must read each run's conditioning from its own config.json."""
  tokened = str(tmp_path_factory.mktemp("task_token"))
  config = tiny_config.get_config()
  config.data.update(dict(tasks=",".join(TASKS), data_dir=data_dir, conditioning="task_token"))
  config.train.update(dict(total_steps=1, batch_size=4, log_every=1, batch_shapes="padded"))
  config.train.tensorboard = False
  config.checkpoint.update(dict(every_steps=1, async_save=False))
  config.evals = {}
  trainer.train(config, tokened)
  prompted = str(tmp_path_factory.mktemp("prompt") / "run")
  shutil.copytree(tokened, prompted)
  path = os.path.join(prompted, "config.json")
  saved = json.load(open(path))
  saved["data"]["conditioning"] = "prompt"
  json.dump(saved, open(path, "w"))
  return tokened, prompted


@pytest.fixture(scope="module")
def table(workdirs, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("ablation"))
  args = [f"--workdir={w}" for w in workdirs]
  # Sampling reaches the decoder in test_text_override_reaches_the_decoder; two strategies
  # keep this run short while still showing columns and the image-codes footnote.
  args += ["--decodings=greedy,beam2", "--num_examples=2", "--batch_size=2", f"--out={out}"]
  done = subprocess.run(
    [sys.executable, "-m", "unified_io.eval.ablation", *args],
    cwd=ROOT,
    capture_output=True,
    text=True,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  return out, done.stdout


def _columns(row):
  """A markdown row's cells: task, metric, baseline, examples, then one per setting."""
  return row.strip("| ").split(" | ")


@pytest.mark.slow
def test_cli_writes_a_row_per_task_and_a_column_per_setting(table, predictor, data_dir):
  out, stdout = table
  result = json.load(open(os.path.join(out, "ablation.json")))
  settings = [f"{c} / {d}" for c in ("task_token", "prompt") for d in ("greedy", "beam2")]
  assert result["settings"] == settings
  cells = result["cells"]
  assert len(cells) == len(TASKS) * len(settings)
  assert {c["task"] for c in cells} == set(TASKS)
  assert all(c["num_examples"] == 2 and np.isfinite(c["baseline"]) for c in cells)
  text = open(os.path.join(out, "ablation.md")).read()
  assert text in stdout  # printed too
  header = next(line for line in text.splitlines() if line.startswith("| task |"))
  assert header == "| " + " | ".join(["task", "metric", "baseline", "examples", *settings]) + " |"
  rows = {
    _columns(line)[0]: _columns(line) for line in text.splitlines() if line.startswith("| builtin_")
  }
  assert list(rows) == list(TASKS)
  assert all(len(columns) == 4 + len(settings) for columns in rows.values())
  assert all(columns[3] == "2" for columns in rows.values())

  # The classification baseline: the share of the most frequent label, counted here (the
  # run's seed is the tiny config's 0, as _collect's).
  classification = _collect("builtin_image_classification", predictor.spec, data_dir, n=2)
  labels = [r["target_text"] for r in classification.raws]
  majority = collections.Counter(labels).most_common(1)[0][1] / len(labels)
  assert rows["builtin_image_classification"][2] == f"{majority:.4g}"
  assert all(
    c["baseline"] == pytest.approx(majority)
    for c in cells
    if c["task"] == "builtin_image_classification"
  )

  # Depth under beam search: argmax codes, and the cell says so.
  depth = [c for c in cells if c["task"] == "builtin_depth" and c["decoding"] == "beam2"]
  assert all(c["used"] == "image: argmax codes" and c["substitute"] for c in depth)
  depth_row = rows["builtin_depth"]
  footnoted = [bool(re.search(r"\[\d+\]$", cell)) for cell in depth_row[4:]]
  assert footnoted == [s.endswith("beam2") for s in settings]
  assert not any(re.search(r"\[\d+\]$", cell) for cell in rows["builtin_vqa"][4:])
  assert "no beam search over image codes" in text
  # Built-in vision tasks get their task token: no cell carries a conditioning note.
  assert not any(c["conditioning_note"] for c in cells)


def _saved_run(path, **data):
  """A workdir holding only the tiny config's config.json (data.* updated): never trained."""
  path.mkdir()
  config = tiny_config.get_config()
  config.data.update(data)
  (path / "config.json").write_text(config.to_json_best_effort(indent=2))
  return str(path)


def test_bad_requests_name_what_is_wrong(predictor, tmp_path):
  with pytest.raises(ValueError, match="unknown strategy 'bem4'"):
    ablation.parse_decodings("greedy,bem4")
  with pytest.raises(ValueError, match="unknown strategy 'beam0'"):
    ablation.parse_decodings("beam0")
  with pytest.raises(ValueError, match="more than once"):
    ablation.parse_decodings("greedy,greedy")
  with pytest.raises(ValueError, match="--decodings is empty"):
    ablation.parse_decodings(" , ")
  untrained = _saved_run(tmp_path / "untrained")
  with pytest.raises(ValueError, match=re.escape(f"--workdir={untrained} has no checkpoint")):
    ablation.load_run(untrained)
  missing = str(tmp_path / "missing")
  with pytest.raises(ValueError, match=re.escape(f"--workdir={missing} does not exist")):
    ablation.load_run(missing)
  with pytest.raises(ValueError, match="is given more than once"):
    ablation.run([untrained, untrained], "greedy")
  with pytest.raises(ValueError, match="--num_examples must be >= 1"):
    ablation.run([untrained], "greedy", num_examples=0)
  with pytest.raises(ValueError, match=r"config.data.conditioning='tokens' is not one of"):
    tasks_lib.TaskContext(conditioning="tokens")
  bad = _saved_run(tmp_path / "bad", conditioning="tokens")
  with pytest.raises(ValueError, match=re.escape(f"--workdir={bad}: its config.data")):
    ablation.load_run(bad)
  config = tiny_config.get_config()
  config.data.conditioning = "tokens"
  with pytest.raises(ValueError, match="config.data.conditioning='tokens'"):
    from_config.stream(config, predictor.spec)


@pytest.mark.slow
def test_tasks_outside_the_mixture_and_unknown_splits_are_refused(workdirs):
  with pytest.raises(ValueError, match="builtin_captioning is not in the mixture"):
    ablation.load_run(workdirs[0], ["builtin_captioning"])
  with pytest.raises(ValueError, match="--split='train2' is not a split of task builtin_vqa"):
    ablation.run(list(workdirs), "greedy", split="train2")
