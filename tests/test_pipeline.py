"""Input pipeline: exact rates, epochs without replacement, host sharding, O(1) resume,
counted skips and truncations, and the unified example's shapes and values."""

import collections

import numpy as np
import pytest

from tests import specs
from unified_io.common import image_preprocessing
from unified_io.data import builtin_dataset
from unified_io.data import pipeline
from unified_io.data import schedule as schedule_lib
from unified_io.data.tasks import registry as tasks_lib

NUM_EXAMPLES = 12


def _caption(example, rng, ctx):
  del ctx
  captions = example["captions"]
  return {
    "prompt": "What does the image describe ?",
    "image": example["image"],
    "target_text": captions[int(rng.integers(len(captions)))].decode(),
    "target_image": None,
  }


def _picky(example, rng, ctx):
  """Skips scenes whose id ends in an even digit, so fallbacks are exercised."""
  if int(example["id"].decode()[-1]) % 2 == 0:
    raise tasks_lib.SkipExample("even id")
  raw = _caption(example, rng, ctx)
  raw["target_text"] = raw["target_text"] + " and more words" * 10  # always truncated
  raw["target_image"] = np.full((32, 64, 3), 0.5, np.float32)
  return raw


def _rare(example, rng, ctx):
  """Usable on 2 of the 12 test scenes (ids 0 and 10): rarer than builtin_keypoints' 35%."""
  if example["id"].decode()[-1] != "0":
    raise tasks_lib.SkipExample("id does not end in 0")
  return _caption(example, rng, ctx)


def _never(example, rng, ctx):
  raise tasks_lib.SkipExample("never usable")


for _name, _fn in (
  ("test_caption", _caption),
  ("test_picky", _picky),
  ("test_rare", _rare),
  ("test_never", _never),
):
  tasks_lib.register(
    tasks_lib.Task(
      name=_name,
      group="image_captioning",
      builder="uio_builtin_scenes/scenes",
      preprocess=_fn,
      prompts=("What does the image describe ?",),
    )
  )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tfds"))
  builtin_dataset.build(path, "scenes", num_examples=NUM_EXAMPLES)
  return path


@pytest.fixture(scope="module")
def spec():
  return specs.tiny_spec(16, 8)


def _stream(spec, data_dir, rates=(0.5, 0.5), **kwargs):
  return pipeline.MixtureStream(
    ["test_caption", "test_picky"], list(rates), spec, seed=3, data_dir=data_dir, **kwargs
  )


def test_block_counts_meet_rates_exactly():
  counts = schedule_lib.block_counts({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, block=10)
  assert counts.tolist() == [4, 3, 3]  # largest remainder, ties to the first
  assert schedule_lib.block_counts({"a": 0.25, "b": 0.75}, block=8).tolist() == [2, 6]
  with pytest.raises(ValueError, match="sum to 1"):
    schedule_lib.block_counts({"a": 0.5, "b": 0.4})


def test_schedule_rates_and_draw_numbers():
  schedule = schedule_lib.Schedule(["a", "b"], [0.25, 0.75], seed=0, block=8)
  picks = [schedule(e) for e in range(16)]
  for block in range(2):
    tasks = [t for t, _ in picks[block * 8 : (block + 1) * 8]]
    assert collections.Counter(tasks) == {0: 2, 1: 6}
  # Draw numbers of each task count 0, 1, 2, ... in stream order.
  for task in (0, 1):
    assert [d for t, d in picks if t == task] == list(range(sum(t == task for t, _ in picks)))
  robin = schedule_lib.Schedule(["a", "b", "c"], None, seed=0, round_robin=True)
  assert [robin(e) for e in range(6)] == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]


def test_epochs_visit_every_record_once():
  perm = schedule_lib.EpochPermutation(5, seed=1, task_index=0)
  for epoch in range(3):
    assert sorted(perm(epoch * 5 + i) for i in range(5)) == list(range(5))


def test_finalize_shapes_and_values(spec, data_dir):
  source = pipeline.source("uio_builtin_scenes/scenes", "train", data_dir)
  record = source[0]
  raw = _caption(record, np.random.default_rng(0), None)
  raw["target_image"] = np.full((32, 64, 3), 0.5, np.float32)  # wide: bottom half is padding
  features, cut = pipeline.finalize(raw, spec)
  assert features["text_inputs"].shape == (16,) and features["text_targets"].shape == (8,)
  ids = spec.tokenizer.encode(raw["prompt"], add_eos=True)
  np.testing.assert_array_equal(features["text_inputs"][: len(ids)], ids)
  assert not features["text_inputs"][len(ids) :].any()
  expected, _ = image_preprocessing.preprocess_image(record["image"], image_size=64)
  np.testing.assert_allclose(features["image_inputs"], expected)
  assert features["image_input_mask"].all()
  # A 32x64 target fills the top half of the 64x64 VQ-GAN input: 0.5 -> 0.0, padding -> -1;
  # of the 8x8 code grid the top 4 rows are valid.
  pixels = features["image_target_pixels"]
  np.testing.assert_allclose(pixels[:32], 0.0, atol=1e-6)
  np.testing.assert_allclose(pixels[32:], -1.0)
  assert features["image_target_mask"].reshape(8, 8)[:4].all()
  assert not features["image_target_mask"].reshape(8, 8)[4:].any()
  assert cut == {
    "text_inputs": False,
    "text_targets": len(spec.tokenizer.encode(raw["target_text"], add_eos=True)) > 8,
  }


def test_stream_is_deterministic_and_counts_skips(spec, data_dir):
  first = _stream(spec, data_dir)
  second = _stream(spec, data_dir)
  for e in (0, 5, 17):
    a, b = first.element(e), second.element(e)
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])
  for e in range(40):
    first.element(e)
  skipped = sum(n for (task, _), n in first.counters.skipped.items() if task == "test_picky")
  assert skipped > 0 and set(first.counters.skipped) == {("test_picky", "even id")}
  # Every picky target is cut to 8 tokens and still ends in EOS.
  truncated = first.counters.truncated[("test_picky", "text_targets")]
  assert truncated == sum(first.schedule(e)[0] == 1 for e in range(40)) + (
    sum(first.schedule(e)[0] == 1 for e in (0, 5, 17))
  )
  picky = next(first.element(e) for e in range(40) if first.schedule(e)[0] == 1)
  assert picky["text_targets"][-1] == 1 and picky["task_index"] == 1
  assert "skipped" in first.counters.summary()


def test_host_shards_concatenate_to_the_single_host_batch(spec, data_dir):
  single = pipeline.Batches(_stream(spec, data_dir), 4)
  hosts = [
    pipeline.Batches(_stream(spec, data_dir), 4, process_index=i, process_count=2) for i in range(2)
  ]
  for _ in range(2):
    whole = next(single)
    parts = [next(h) for h in hosts]
    for key in whole:
      np.testing.assert_array_equal(whole[key], np.concatenate([p[key] for p in parts]))
  with pytest.raises(ValueError, match="not divisible"):
    pipeline.Batches(_stream(spec, data_dir), 5, process_count=2)


def test_resume_from_position_replays_the_stream(spec, data_dir):
  batches = pipeline.Batches(_stream(spec, data_dir), 4)
  seen = [next(batches) for _ in range(3)]
  resumed = pipeline.Batches(_stream(spec, data_dir), 4)
  resumed.set_state({"position": 1})
  for expected in seen[1:]:
    got = next(resumed)
    for key in expected:
      np.testing.assert_array_equal(got[key], expected[key])
  assert resumed.get_state() == {"position": 3}


def test_unknown_dataset_and_split_errors(data_dir):
  with pytest.raises(ValueError, match="no split 'nope'"):
    pipeline.RecordSource("uio_builtin_scenes/scenes", "nope", data_dir)
  with pytest.raises(ValueError, match="does_not_exist"):
    pipeline.RecordSource("does_not_exist", "train", data_dir)
  with pytest.raises(KeyError, match="Unknown task 'nope'"):
    tasks_lib.get("nope")


def _corrupt_image(serialized: bytes) -> bytes:
  import tensorflow as tf

  example = tf.train.Example.FromString(serialized)
  example.features.feature["image"].bytes_list.value[:] = [b"\x89PNG but not really"]
  return example.SerializeToString()


def test_undecodable_records_are_skipped_counted_and_named(spec, data_dir, monkeypatch, caplog):
  stream = pipeline.MixtureStream(["test_caption"], [1.0], spec, seed=0, data_dir=data_dir)
  src = stream.sources[0]
  assert src._records is not None, "the built-in test dataset is stored as TFRecords"
  corrupted = [_corrupt_image(r) if i % 2 == 0 else r for i, r in enumerate(src._records)]
  monkeypatch.setattr(src, "_records", corrupted)
  with pytest.raises(tasks_lib.SkipExample, match="undecodable record"):
    src[0]
  assert "record 0 cannot be decoded" in caplog.text and src.name in caplog.text
  for index in range(8):
    assert stream.element(index)["text_targets"].any()
  skips = {
    reason: n for (task, reason), n in stream.counters.skipped.items() if task == "test_caption"
  }
  assert list(skips) and all(r.startswith("undecodable record") for r in skips)
  # Every corrupt record visited was skipped; a fallback always found a readable one.
  assert sum(skips.values()) >= 1


def test_rarely_usable_tasks_fall_back_until_a_record_fits(spec, data_dir):
  """With 1 in 6 records usable, 17 skips in a row (the old fallback limit) come once in
  about 22 draws; 500 draws must all find a usable record."""
  counters = pipeline.Counters()
  stream = pipeline.MixtureStream(
    ["test_rare"], [1.0], spec, seed=0, data_dir=data_dir, counters=counters
  )
  usable = [i for i in range(NUM_EXAMPLES) if str(i).endswith("0")]
  assert len(usable) == 2
  for index in range(500):
    assert stream.element(index)["task_index"] == 0
  skipped = counters.skipped[("test_rare", "id does not end in 0")]
  assert 500 * 3 < skipped < 500 * 7  # 5 skips per draw expected


def test_a_task_no_record_fits_names_itself(spec, data_dir):
  stream = pipeline.MixtureStream(["test_never"], [1.0], spec, seed=0, data_dir=data_dir)
  with pytest.raises(
    RuntimeError,
    match=r"test_never: 101 records in a row were skipped at "
    r"stream element 0 \(does the task fit uio_builtin",
  ):
    stream.element(0)
