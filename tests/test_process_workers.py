"""Process workers: the same batches, state, resume, host shards and counts as the threads."""

import functools
from multiprocessing import shared_memory

import numpy as np
import pytest

from tests import specs
from unified_io.data import builtin_dataset
from unified_io.data import pipeline
from unified_io.data import process_workers

# A task with a target image, one with boxes in its text, and one that skips the scenes with
# no person (so skip counts must come back from the workers).
TASKS = ["builtin_image_generation", "builtin_detection", "builtin_keypoints"]
BATCH = 4


@pytest.fixture(scope="module")
def factory(builtin_data_dir):
  path = builtin_data_dir
  spec = specs.tiny_spec(32, 32)
  return functools.partial(
    pipeline.MixtureStream, TASKS, [0.3, 0.3, 0.4], spec, seed=5, data_dir=path
  )


def _assert_same(got, want):
  assert sorted(got) == sorted(want)
  for key in want:
    assert got[key].dtype == want[key].dtype, key
    np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_process_batches_equal_thread_batches(factory):
  threads = pipeline.Batches(factory(), BATCH, workers=2)
  want = [next(threads) for _ in range(4)]
  threads.close()
  # The element-by-element reference, independent of either pool.
  reference = factory()
  rows = [reference.element(e) for e in range(BATCH * 3)]
  counts = reference.counters.summary()
  rows += [reference.element(e) for e in range(BATCH * 3, BATCH * 4)]
  for p, batch in enumerate(want):
    _assert_same(
      batch, {k: np.stack([r[k] for r in rows[p * BATCH : (p + 1) * BATCH]]) for k in batch}
    )

  processes = process_workers.ProcessBatches(factory, BATCH, workers=2)
  try:
    assert processes.task_names == TASKS
    got = [next(processes) for _ in range(3)]
    for g, w in zip(got, want):
      _assert_same(g, w)
    assert processes.get_state() == {"position": 3}
    # Skips and truncations happen in the workers and are counted here, per collected batch.
    assert processes.stream.counters.summary() == counts
    assert "skipped" in counts
    # Resume: state is the position; prefetched batches are dropped.
    processes.set_state({"position": 1})
    _assert_same(next(processes), want[1])
    processes.set_state({"position": 3})
    _assert_same(next(processes), want[3])
    slots = list(processes._slots)
    assert slots  # batches after the first came through shared memory
  finally:
    processes.close()
  for name in slots:  # close() unlinked them
    with pytest.raises(FileNotFoundError):
      shared_memory.SharedMemory(name=name)


def test_host_shard_is_its_rows_of_the_global_batch(factory):
  threads = pipeline.Batches(factory(), BATCH, workers=1)
  want = [next(threads) for _ in range(2)]
  threads.close()
  shard = process_workers.ProcessBatches(
    factory, BATCH, process_index=1, process_count=2, workers=1, transfer="pipe"
  )
  try:
    for batch in want:  # "pipe": every example pickled, none in shared memory
      _assert_same(next(shard), {k: v[BATCH // 2 :] for k, v in batch.items()})
    assert not shard._slots
  finally:
    shard.close()
  with pytest.raises(ValueError, match="not divisible"):
    process_workers.ProcessBatches(factory, 3, process_count=2)


@pytest.mark.slow  # spawns two worker processes
def test_config_switch_gives_process_workers_with_the_thread_batches(tmp_path):
  from configs import tiny
  from unified_io.data import from_config

  builtin_dataset.build(str(tmp_path), "scenes", num_examples=12)
  config = tiny.get_config()
  config.data.update(dict(data_dir=str(tmp_path), tasks=",".join(TASKS)))
  config.train.batch_size = BATCH
  vq_spec = from_config.example_spec(config, from_config.image_tokenizer(config))
  threads = from_config.train_batches(config, vq_spec, 0, 1)
  want = [next(threads) for _ in range(2)]
  threads.close()
  config.data.workers_kind = "process"
  processes = from_config.train_batches(config, vq_spec, 0, 1)
  try:
    assert isinstance(processes, process_workers.ProcessBatches)
    for _ in range(2):
      _assert_same(next(processes), want[processes.get_state()["position"] - 1])
  finally:
    processes.close()
  config.data.schedule = "stop_and_go"
  with pytest.raises(ValueError, match='workers_kind="process" cannot follow'):
    from_config.train_batches(config, vq_spec, 0, 1)
