"""Records the tasks cannot use: masked image denoising on any patch grid, text that is not
UTF-8, and empty text inputs or targets; each becomes a named, counted skip, never a crash
of the run."""

import copy
import logging

import numpy as np
import pytest

from configs import tiny
from unified_io.data import builtin_dataset
from unified_io.data import mixtures
from unified_io.data import pipeline
from unified_io.data import show
from unified_io.data.tasks import registry as tasks_lib
from unified_io.data.tasks import text as text_tasks

BAD = b"\xff\xfe"  # never valid UTF-8
SCENES, TEXT = text_tasks.BUILTIN_SCENES, text_tasks.BUILTIN_TEXT


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tfds"))
  builtin_dataset.build(path, "scenes", num_examples=8)
  builtin_dataset.build(path, "text", num_examples=40)
  return path


@pytest.fixture(scope="module")
def scenes(data_dir):
  source = pipeline.source(SCENES, "train", data_dir)
  return [source[i] for i in range(len(source))]


@pytest.fixture(scope="module")
def texts(data_dir):
  source = pipeline.source(TEXT, "train", data_dir)
  return [source[i] for i in range(len(source))]


def _spec(patch_size: int) -> pipeline.ExampleSpec:
  config = tiny.get_config()
  config.model.patch_size = patch_size
  return show.example_spec(config)


def _run(name, record, seed=0, ctx=None):
  return tasks_lib.get(name).preprocess(
    record, np.random.default_rng(seed), ctx or tasks_lib.TaskContext(input_image_size=64)
  )


def _of_kind(texts, kind):
  return [r for r in texts if r["task"] == kind.encode()]


class _Altered:
  """A record source whose records at even indices are changed by `alter` (a copy)."""

  def __init__(self, base, alter):
    self._base, self._alter = base, alter
    self.name = f"altered {base.name}"

  def __len__(self):
    return len(self._base)

  def __getitem__(self, index):
    record = self._base[index]
    return self._alter(copy.deepcopy(record)) if index % 2 == 0 else record


def _stream(task_name, data_dir, alter, spec=None):
  stream = pipeline.MixtureStream([task_name], [1.0], spec or _spec(8), seed=0, data_dir=data_dir)
  stream.sources = [_Altered(stream.sources[0], alter)]
  return stream


# --------------------------------------------------------------- masked image denoising


@pytest.mark.parametrize(
  "patch_size, patches, hidden",
  # 64x64 input: tiny's 8-pixel patches make an 8x8 grid, 16-pixel ones a 4x4 grid; §3.3
  # hides 75% of them.
  [(8, 64, 48), (16, 16, 12)],
)
def test_pretraining_mixture_streams_on_any_patch_grid(data_dir, patch_size, patches, hidden):
  spec = _spec(patch_size)
  assert spec.input_image_size == 64 and spec.patch_size == patch_size
  rates = mixtures.rates("builtin_pretraining")
  stream = pipeline.MixtureStream(
    list(rates), list(rates.values()), spec, seed=0, data_dir=data_dir
  )
  denoising = list(rates).index("builtin_image_denoising")
  seen = set()
  for index in range(12):
    features = stream.element(index)
    seen.add(int(features["task_index"]))
    if features["task_index"] != denoising:
      continue
    mask = features["image_input_mask"]
    assert mask.shape == (patches,) and mask.dtype == bool
    assert int((~mask).sum()) == hidden and int(mask.sum()) == patches - hidden
    assert features["image_target_mask"].all()  # the whole image is the target
  assert seen == set(range(len(rates)))  # every task of the mixture yielded examples
  assert not stream.counters.skipped


def test_denoising_masks_differ_per_example_and_are_deterministic(scenes):
  spec = _spec(8)
  masks = []
  for seed in range(2):
    raw = _run("builtin_image_denoising", scenes[0], seed=seed)
    assert raw["image_input_mask_rate"] == 0.75 and "image_input_patch_mask" not in raw
    masks.append(pipeline.finalize(raw, spec)[0]["image_input_mask"])
    again = pipeline.finalize(raw, spec)[0]["image_input_mask"]
    np.testing.assert_array_equal(masks[-1], again)
  assert (masks[0] != masks[1]).any()


def test_hide_patches_counts_and_spares_padding():
  rng = np.random.default_rng(0)
  # The paper's 384 input and 16-pixel patches: 576 patches, 432 hidden, 144 seen.
  keep = pipeline.hide_patches(np.ones(576, bool), 0.75, rng)
  assert keep.shape == (576,) and keep.sum() == 144
  # Padding patches stay hidden; 75% of the 32 image patches are hidden too.
  visible = np.zeros(64, bool)
  visible[:32] = True
  keep = pipeline.hide_patches(visible, 0.75, rng)
  assert keep.sum() == 8 and not keep[32:].any()
  with pytest.raises(ValueError, match="mask rate"):
    pipeline.hide_patches(visible, 1.5, rng)


def test_patch_mask_of_the_wrong_grid_names_the_grid(scenes):
  raw = _run("builtin_captioning", scenes[0])
  raw["image_input_patch_mask"] = np.ones(16, bool)  # a 4x4 grid for an 8x8 one
  with pytest.raises(ValueError, match=r"ex 1: image_input_patch_mask has 16 patches.*8x8"):
    pipeline.finalize(raw, _spec(8), name="ex 1")


def test_show_draws_image_denoising_on_the_tiny_config(data_dir, tmp_path, capsys):
  out = str(tmp_path / "denoising.png")
  show.show(tiny.get_config(), "builtin_image_denoising", 2, out, data_dir=data_dir)
  assert "wrote" in capsys.readouterr().out


# -------------------------------------------------------------------------- not UTF-8


def _set(path, index=0):
  """An `alter` that puts BAD into record[path...][index] (or the field itself)."""

  def alter(record):
    *parents, key = path
    holder = record
    for parent in parents:
      holder = holder[parent]
    if isinstance(holder[key], bytes):
      holder[key] = BAD
    else:
      values = list(holder[key])
      values[index] = BAD
      holder[key] = np.asarray(values, dtype=object)
    return record

  return alter


SCENE_FIELDS = [
  ("builtin_captioning", ("captions",), "captions"),
  ("builtin_image_generation", ("captions",), "captions"),
  ("builtin_vl_text_denoising", ("captions",), "captions"),
  ("builtin_vqa", ("vqa", "question"), "question"),
  ("builtin_grounded_vqa", ("vqa", "answer"), "answer"),
  ("builtin_relationship", ("relationships", "predicate"), "predicate"),
  ("builtin_refexp", ("objects", "region_caption"), "region_caption"),
  ("builtin_region_captioning", ("objects", "region_caption"), "region_caption"),
  ("builtin_depth", ("id",), "id"),
  ("builtin_detection", ("id",), "id"),
  ("builtin_image_denoising", ("id",), "id"),
]


@pytest.mark.parametrize("name, path, field", SCENE_FIELDS)
def test_non_utf8_scene_fields_skip_naming_the_field(scenes, name, path, field):
  ctx = tasks_lib.TaskContext(input_image_size=64, max_depth=25.0)
  for record in scenes:  # the first record the task can use unaltered
    try:
      _run(name, record, ctx=ctx)
    except tasks_lib.SkipExample:
      continue
    bad = _set(path)(copy.deepcopy(record))
    with pytest.raises(tasks_lib.SkipExample, match=f"^{field} is not valid UTF-8$"):
      _run(name, bad, ctx=ctx)
    return
  pytest.fail(f"no record fits {name}")


TEXT_FIELDS = [
  ("builtin_entailment", "entailment", "input"),
  ("builtin_entailment", "entailment", "label"),
  ("builtin_sentiment", "sentiment", "input"),
  ("builtin_question_answering", "question_answering", "context"),
  ("builtin_question_answering", "question_answering", "target"),
  ("builtin_summarization", "summarization", "input"),
  ("builtin_masked_lm", "language_modeling", "input"),
  ("builtin_masked_lm", "language_modeling", "task"),
  ("builtin_summarization", "summarization", "id"),
]


@pytest.mark.parametrize("name, kind, field", TEXT_FIELDS)
def test_non_utf8_text_fields_skip_naming_the_field(texts, name, kind, field):
  record = _of_kind(texts, kind)[0]
  _run(name, record)  # usable as it is
  with pytest.raises(tasks_lib.SkipExample, match=f"^{field} is not valid UTF-8$"):
    _run(name, dict(record, **{field: BAD}))


def test_text_helpers_pass_str_and_valid_bytes():
  assert (
    tasks_lib.as_text("é") == "é"
    and tasks_lib.as_text("é".encode()) == "é"
    and tasks_lib.as_text(3) == "3"
  )
  with pytest.raises(tasks_lib.SkipExample, match="^caption is not valid UTF-8$") as info:
    tasks_lib.as_text(b"ok " + BAD, "caption")
  assert isinstance(info.value.__cause__, UnicodeDecodeError)


def test_pipeline_counts_non_utf8_captions_and_names_the_example(data_dir, caplog):
  stream = _stream("builtin_captioning", data_dir, _set(("captions",), 1))
  with caplog.at_level(logging.WARNING):
    for index in range(6):
      assert stream.element(index)["text_targets"].any()
  skipped = dict(stream.counters.skipped)
  assert set(skipped) == {("builtin_captioning", "captions is not valid UTF-8")}
  assert skipped[("builtin_captioning", "captions is not valid UTF-8")] >= 1
  assert "builtin_captioning example scene-" in caplog.text
  assert "captions is not valid UTF-8" in caplog.text


def test_non_utf8_ids_are_counted_and_named_with_escapes(data_dir, caplog):
  def bad_id(record):
    record["id"] = record["id"] + BAD
    return record

  for name in ("builtin_depth", "builtin_entailment"):
    stream = _stream(name, data_dir, bad_id)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
      for index in range(6):
        stream.element(index)
    assert stream.counters.skipped[(name, "id is not valid UTF-8")] >= 1
    # The id in the message: its bytes as backslash escapes, after the task's name.
    assert f"{name} example " in caplog.text and "\\xff\\xfe" in caplog.text


def test_prepare_names_a_non_utf8_id_with_escapes(scenes, caplog):
  spec = _spec(8)
  record = dict(scenes[0], id=b"scene-x" + BAD)
  with caplog.at_level(logging.WARNING):
    with pytest.raises(tasks_lib.SkipExample, match="id is not valid UTF-8"):
      pipeline.prepare(
        tasks_lib.get("builtin_depth"),
        record,
        np.random.default_rng(0),
        spec,
        spec.context(25.0),
      )
  assert "builtin_depth example scene-x\\xff\\xfe: skipped: id is not valid UTF-8" in caplog.text


# ------------------------------------------------------------------ empty text and targets


EMPTY = [
  ("builtin_entailment", "entailment", {"input": b"", "context": b" "}, "empty input text"),
  ("builtin_entailment", "entailment", {"label": b""}, "empty label"),
  ("builtin_entailment", "entailment", {"label": b"maybe"}, "label 'maybe' is not one of"),
  ("builtin_sentiment", "sentiment", {"input": b"  "}, "empty input text"),
  ("builtin_sentiment", "sentiment", {"label": b" "}, "empty label"),
  ("builtin_question_answering", "question_answering", {"context": b""}, "empty context"),
  ("builtin_question_answering", "question_answering", {"input": b" "}, "empty question"),
  ("builtin_question_answering", "question_answering", {"target": b""}, "empty answer"),
  ("builtin_summarization", "summarization", {"input": b""}, "empty document"),
  ("builtin_summarization", "summarization", {"target": b"\n"}, "empty summary"),
  ("builtin_masked_lm", "language_modeling", {"input": b" "}, "empty text"),
]


@pytest.mark.parametrize("name, kind, fields, reason", EMPTY)
def test_empty_text_inputs_and_targets_skip_with_the_reason(texts, name, kind, fields, reason):
  record = _of_kind(texts, kind)[0]
  raw = _run(name, record)
  assert raw["prompt"].strip() and raw["target_text"].strip()
  with pytest.raises(tasks_lib.SkipExample, match=f"^{reason}"):
    _run(name, dict(record, **fields))


def test_vl_text_denoising_skips_blank_captions(scenes):
  record = dict(scenes[0], captions=np.asarray([b"", b"  "], dtype=object))
  with pytest.raises(tasks_lib.SkipExample, match="^no caption$"):
    _run("builtin_vl_text_denoising", record)


def test_pipeline_counts_empty_targets_and_yields_none(data_dir):
  spec = _spec(8)

  def blank_summary(record):
    record["target"] = b""
    return record

  stream = _stream("builtin_summarization", data_dir, blank_summary, spec)
  eos = spec.tokenizer.encode("", add_eos=True)
  for index in range(6):
    targets = stream.element(index)["text_targets"]
    assert targets[len(eos) :].any()  # more than EOS: never the empty target
  assert set(stream.counters.skipped) == {("builtin_summarization", "empty summary")}
  assert "skipped" in stream.counters.summary() and "empty summary" in stream.counters.summary()
