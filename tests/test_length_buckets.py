"""Batches split by example shape and cut to bucketed lengths (config.train.batch_shapes=
"buckets"): the parts hold every row once, per-example losses and the whole step equal those
of the padded batch, hosts agree on shapes, the stratified schedule spreads shapes evenly
and keeps every task's count per block, and a resumed run on a real mixture is exact."""

import functools
import json
import subprocess

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import tiny as tiny_config
from tests import tiny
from unified_io.common import mesh as mesh_lib
from unified_io.data import schedule as schedule_lib
from unified_io.model import losses
from unified_io.train import length_buckets
from unified_io.train import optim
from unified_io.train import step as step_lib
from unified_io.train import trainer

# Per-example losses are sums of float32 cross-entropies over at most 28 tokens; the cut and
# padded programs differ only in the order of their reductions.
LOSS_RTOL, LOSS_ATOL = 1e-5, 1e-5

# Rows 0-1 text only, 2-4 with an input image, 5 with a target image only, 6-7 with both.
# Text lengths differ by row so that every part is cut to its own longest text.
HAS_IMAGE = np.array([0, 0, 1, 1, 1, 0, 1, 1], bool)
HAS_TARGET = np.array([0, 0, 0, 0, 0, 1, 1, 1], bool)
TEXT_LENGTHS = [20, 3, 5, 2, 7, 9, 4, 1]
TARGET_LENGTHS = [2, 12, 5, 9, 1, 3, 1, 2]


TEXT_POSITIONS, TARGET_POSITIONS = 64, 32


def _model(**overrides):
  """The tests' tiny network with position tables for the batch's lengths."""
  return tiny.make_model(
    encoder_max_text_length=TEXT_POSITIONS, decoder_max_text_length=TARGET_POSITIONS, **overrides
  )


def _init(model, batch):
  init = jax.jit(lambda batch: model.init({"params": jax.random.key(0)}, batch)["params"])
  return nn.unbox(init(jax.tree.map(jnp.asarray, batch)))


def _mixed_batch(seed=0):
  """A padded host batch: 64 text and 32 target positions, 16 patches and 16 codes."""
  rs = np.random.RandomState(seed)
  rows = len(HAS_IMAGE)
  text = rs.randint(3, tiny.PADDED_TEXT - 1, (rows, TEXT_POSITIONS)).astype(np.int32)
  targets = rs.randint(3, tiny.PADDED_TEXT - 1, (rows, TARGET_POSITIONS)).astype(np.int32)
  for i, (n, m) in enumerate(zip(TEXT_LENGTHS, TARGET_LENGTHS)):
    text[i, n:] = 0
    targets[i, m - 1] = tiny.EOS
    targets[i, m:] = 0
  images = rs.randn(rows, 64, 64, 3).astype(np.float32) * HAS_IMAGE[:, None, None, None]
  patch_mask = np.repeat(HAS_IMAGE[:, None], 16, axis=1)
  patch_mask[2, 8:] = False  # half an image is padding
  codes = rs.randint(tiny.PADDED_TEXT, tiny.PADDED_TEXT + tiny.IMAGE_CODES, (rows, 16))
  return {
    "text_inputs": text,
    "image_inputs": images,
    "image_input_mask": patch_mask,
    "text_targets": targets,
    "image_targets": codes.astype(np.int32),
    "image_target_mask": np.repeat(HAS_TARGET[:, None], 16, axis=1),
    "task_index": np.array([0, 1, 2, 2, 3, 4, 4, 3], np.int32),
    "loss_weight": np.array([1, 1, 2, 1, 1, 0.5, 1, 1], np.float32),
  }


def _plan(batch, local_rows=None, granularity=1):
  stats = length_buckets.host_stats(batch)[None]
  limits = (batch["text_inputs"].shape[1], batch["text_targets"].shape[1])
  return length_buckets.plan(stats, limits, local_rows or len(batch["text_inputs"]), granularity)


# ------------------------------------------------------------------------------ buckets


def test_buckets_round_up_by_at_most_the_ladder_step():
  assert [length_buckets.ladder_ceil(n) for n in range(1, 14)] == [
    1, 2, 4, 4, 6, 6, 8, 8, 12, 12, 12, 12, 16,
  ]  # fmt: skip
  assert [length_buckets.text_bucket(n, 144, 32) for n in (1, 32, 33, 100, 129, 144)] == [
    32, 32, 64, 128, 144, 144,
  ]  # fmt: skip
  assert length_buckets.text_bucket(5, 12, 16) == 12  # the batch's length caps the ladder
  # Rows: the ladder, then a multiple of the host's data devices, at most the host's rows.
  assert [length_buckets.row_bucket(n, 16, 4) for n in (1, 4, 5, 7, 9, 16)] == [4, 4, 8, 8, 12, 16]
  assert [length_buckets.row_bucket(n, 12, 1) for n in (3, 5, 9)] == [4, 6, 12]
  with pytest.raises(ValueError, match="does not fit a host batch of 8"):
    length_buckets.row_bucket(9, 8, 1)
  with pytest.raises(ValueError, match="text length 20 exceeds the batch's 16"):
    length_buckets.text_bucket(20, 16, 16)


def test_parts_hold_every_row_once_cut_to_their_own_lengths():
  batch = _mixed_batch()
  shapes, tokens = _plan(batch)
  # By hand from HAS_IMAGE / HAS_TARGET and the lengths: the text-only rows 0-1 have the
  # longest target (12 -> 16); every text fits the 32 minimum of inputs (row 0: 20 tokens).
  # The 3 image-and-text rows round up to 4 (an empty row).
  assert shapes == (
    length_buckets.PartShape(False, False, rows=2, text_inputs=32, text_targets=16),
    length_buckets.PartShape(True, False, rows=4, text_inputs=32, text_targets=16),
    length_buckets.PartShape(False, True, rows=1, text_inputs=32, text_targets=16),
    length_buckets.PartShape(True, True, rows=2, text_inputs=32, text_targets=16),
  )
  assert tokens == sum(TARGET_LENGTHS) + 16 * int(HAS_TARGET.sum())
  parts = length_buckets.split(batch, shapes, row_offset=10, global_denominator=tokens)
  rows = np.concatenate([p["row"] for p in parts])
  assert sorted(rows[rows >= 0]) == list(range(10, 18)) and list(rows).count(-1) == 1
  for shape, part in zip(shapes, parts):
    assert ("image_inputs" in part) == ("image_input_mask" in part) == shape.image_inputs
    assert ("image_targets" in part) == ("image_target_mask" in part) == shape.image_targets
    assert "loss_weight" not in part
    assert part["text_inputs"].shape == (shape.rows, shape.text_inputs)
    assert part["text_targets"].shape == (shape.rows, shape.text_targets)
    for j, row in enumerate(part["row"][part["row"] >= 0] - 10):
      cut = batch["text_inputs"][row, : shape.text_inputs]
      np.testing.assert_array_equal(part["text_inputs"][j], cut)
      assert not batch["text_inputs"][row, shape.text_inputs :].any()  # only padding cut off
      expected = batch["loss_weight"][row] / tokens
      np.testing.assert_allclose(part["loss_scale"][j], expected, rtol=1e-7)


def test_padding_rows_are_empty_and_rows_split_over_the_data_devices():
  batch = _mixed_batch()
  shapes, tokens = _plan(batch, granularity=2)
  assert [s.rows for s in shapes] == [2, 4, 2, 2]  # 2, 3 -> 4, 1, 2 rows, in multiples of 2
  parts = length_buckets.split(batch, shapes, 0, tokens)
  image_only = parts[1]
  assert list(image_only["row"]) == [2, 3, 4, -1]
  assert image_only["loss_scale"][-1] == 0
  assert not image_only["text_inputs"][-1].any() and not image_only["text_targets"][-1].any()
  assert not image_only["image_input_mask"][-1].any()


def test_hosts_agree_on_the_widest_shape_and_share_the_token_count():
  batch = _mixed_batch()
  halves = [{k: v[:4] for k, v in batch.items()}, {k: v[4:] for k, v in batch.items()}]
  stats = np.stack([length_buckets.host_stats(h) for h in halves])
  shapes, tokens = length_buckets.plan(stats, (TEXT_POSITIONS, TARGET_POSITIONS), local_rows=4)
  assert tokens == _plan(batch)[1]
  # Host 0 has rows 0-3 (two text-only, two with images), host 1 rows 4-7 (one with an
  # image, one with a target only, two with both): every kind any host has is a part on
  # both hosts, with the rows of the host that has the most.
  assert [(s.kind, s.rows) for s in shapes] == [(0, 2), (1, 2), (2, 1), (3, 2)]
  parts = [length_buckets.split(h, shapes, 4 * i, tokens) for i, h in enumerate(halves)]
  kinds = 2 * HAS_TARGET.astype(int) + HAS_IMAGE.astype(int)
  for k, shape in enumerate(shapes):
    rows = np.concatenate([p[k]["row"] for p in parts])
    assert sorted(rows[rows >= 0]) == list(np.flatnonzero(kinds == shape.kind))


# ------------------------------------------------------------------- same losses, same step


def _state(model, params, seed=0):
  config = tiny_config.get_config()
  optimizer, schedule = optim.build(config.optimizer, params, "")
  state = {
    "params": params,
    "opt_state": optimizer.init(params),
    "step": jnp.int32(3),
    "rng": jax.random.PRNGKey(seed),
    "skipped": jnp.int32(0),
    "consecutive_skips": jnp.int32(0),
  }
  return state, optimizer, schedule


def _per_example(model, params, state, batch):
  @jax.jit
  def losses(params, batch):
    batch, rngs = step_lib.prepare(batch, state, model)
    total, count = step_lib.example_losses(params, batch, rngs, model=model)
    return total, count, batch.get("image_input_positions")

  total, count, positions = losses(params, batch)
  return np.asarray(total), np.asarray(count), positions


def test_per_example_losses_of_the_parts_equal_the_padded_batch():
  model = _model(train_image_patches=12)  # 12 of 16 patches, drawn per row
  batch = _mixed_batch()
  params = _init(model, batch)
  state, _, _ = _state(model, params)
  padded_loss, padded_count, padded_positions = _per_example(model, params, state, batch)
  assert (padded_count > 0).all() and padded_positions.shape == (8, 12)
  shapes, tokens = _plan(batch)
  got_loss, got_count = np.zeros(8), np.zeros(8, int)
  for part in length_buckets.split(batch, shapes, 0, tokens):
    loss, count, positions = _per_example(model, params, state, part)
    real = part["row"] >= 0
    got_loss[part["row"][real]], got_count[part["row"][real]] = loss[real], count[real]
    if positions is not None:  # each example drew the patches it drew in the padded batch
      np.testing.assert_array_equal(positions[real], padded_positions[part["row"][real]])
  np.testing.assert_array_equal(got_count, padded_count)
  np.testing.assert_allclose(got_loss, padded_loss, rtol=LOSS_RTOL, atol=LOSS_ATOL)


@pytest.mark.parametrize("normalization", ["tokens", "examples"])
def test_row_scales_of_the_parts_add_up_to_the_batch_loss(normalization):
  """Any per-row losses, weighted by the parts' loss_scale, give losses.batch_loss of the
  padded batch (so the bucketed step's gradient is the padded step's)."""
  batch = _mixed_batch()
  rows = len(batch["text_inputs"])
  batch["text_targets"][1] = 0  # a row without target tokens counts in neither loss
  shapes, denominator = length_buckets.plan(
    length_buckets.host_stats(batch, normalization)[None],
    (batch["text_inputs"].shape[1], batch["text_targets"].shape[1]),
    rows,
  )
  example_loss = np.random.RandomState(3).uniform(0.5, 4.0, rows).astype(np.float32)
  counts = (batch["text_targets"] > 0).sum(1) + batch["image_target_mask"].sum(1)
  example_loss[counts == 0] = 0.0
  total = 0.0
  for part in length_buckets.split(batch, shapes, 0, denominator, normalization):
    real = part["row"] >= 0
    total += float(np.sum(part["loss_scale"][real] * example_loss[part["row"][real]]))
  want = losses.batch_loss(
    jnp.asarray(example_loss), jnp.asarray(counts), jnp.asarray(batch["loss_weight"]), normalization
  )
  np.testing.assert_allclose(total, float(want), rtol=1e-6)
  if normalization == "examples":  # by hand: the mean of weight * loss / tokens over 7 rows
    keep = counts > 0
    by_hand = np.mean((batch["loss_weight"] * example_loss / np.maximum(counts, 1))[keep])
    np.testing.assert_allclose(total, by_hand, rtol=1e-6)


def _mesh_and_shardings(state):
  mesh = mesh_lib.make_mesh(ml_collections.ConfigDict(dict(model=1, data=-1)), jax.devices()[:1])
  return mesh, jax.tree.map(lambda _: mesh_lib.replicated(mesh), state)


class _Log(list):
  def line(self, text):
    self.append(text)


@pytest.mark.slow  # six compiles: about 45 s on 2 idle cores
@pytest.mark.parametrize("normalization", ["tokens", "examples"])
def test_bucketed_step_equals_the_padded_step(normalization):
  model = _model(train_image_patches=12)
  # Two kinds keep the compiles few: rows 2-4 (image input; 3 rows, so one padding row)
  # and 6-7 (image input and target).
  batch = {k: v[[2, 3, 4, 6, 7]] for k, v in _mixed_batch(seed=1).items()}
  params = _init(model, batch)
  state, optimizer, schedule = _state(model, params)
  mesh, shardings = _mesh_and_shardings(state)
  log = _Log()
  common = dict(
    optimizer=optimizer,
    schedule=schedule,
    z_loss=1e-4,
    model=model,
    num_tasks=5,
    normalization=normalization,
  )
  with jax.set_mesh(mesh), nn.logical_axis_rules(()):
    padded_fn = jax.jit(functools.partial(step_lib.train_step, vq_config=None, **common))
    padded_state, padded = padded_fn(state, jax.tree.map(jnp.asarray, batch))
    bucketed = step_lib.BucketedStep(
      vq_config=None,
      vq_params=None,
      mesh=mesh,
      state_shardings=shardings,
      global_batch_size=5,
      log=log.line,
      **common,
    )
    bucketed.compile_for(state, batch)
    new_state, metrics = bucketed(state, batch)
  assert len(log) == 2 and all("Compiled step part" in line for line in log)
  assert 0 < bucketed.last_flops
  for key in ("loss", "grad_norm", "task_loss_sum", "task_tokens"):
    np.testing.assert_allclose(metrics[key], padded[key], rtol=1e-5, atol=1e-6, err_msg=key)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
    new_state["params"],
    padded_state["params"],
  )
  assert int(new_state["step"]) == int(padded_state["step"]) == 4


# ----------------------------------------------------------------------------- schedule


def test_stratified_schedule_keeps_counts_and_spreads_each_stratum():
  rates = [0.3, 0.1, 0.25, 0.05, 0.3]
  strata = [0, 0, 1, 2, 1]
  block = 200
  schedule = schedule_lib.Schedule(list("abcde"), rates, seed=4, block=block, strata=strata)
  tasks = np.array([schedule(e)[0] for e in range(2 * block)])
  for b in range(2):
    counts = np.bincount(tasks[b * block : (b + 1) * block], minlength=5)
    np.testing.assert_array_equal(
      counts, schedule_lib.block_counts(dict(zip("abcde", rates)), block)
    )
  of_stratum = np.asarray(strata)[tasks]
  share = {0: 0.4, 1: 0.55, 2: 0.05}
  for window in (8, 16, 50):
    for start in range(0, block - window):  # within a block: w * q +- (1 + 3q)
      held = np.bincount(of_stratum[start : start + window], minlength=3)
      for s, q in share.items():
        assert abs(held[s] - window * q) < 1 + 3 * q, (window, start, s)
  # Independent draws of the same rates spread far wider.
  shuffled = np.asarray(strata)[
    [schedule_lib.Schedule(list("abcde"), rates, 4)(e)[0] for e in range(800)]
  ]
  spread = lambda x: np.ptp([np.sum(x[i : i + 16] == 1) for i in range(0, 784, 16)])
  stratified = np.asarray(strata)[[schedule(e)[0] for e in range(800)]]
  assert spread(stratified) <= 3 < spread(shuffled)
  # Draw numbers still count each task's slots in order.
  draws = [schedule(e)[1] for e in range(2 * block) if tasks[e] == 0]
  assert draws == list(range(len(draws)))
  # One stratum is the plain shuffled layout.
  plain = schedule_lib.Schedule(list("abcde"), rates, seed=4, block=block)
  one = schedule_lib.Schedule(list("abcde"), rates, seed=4, block=block, strata=[0] * 5)
  assert [plain(e) for e in range(block)] == [one(e) for e in range(block)]


@pytest.fixture(scope="module")
def data_dir(builtin_data_dir):
  return builtin_data_dir


MIXED_TASKS = "builtin_captioning,builtin_depth,builtin_image_generation,builtin_sentiment"


def test_stream_probes_each_task_shape(data_dir):
  config = tiny_config.get_config()
  config.data.update(dict(tasks=MIXED_TASKS, data_dir=data_dir))
  from unified_io.data import from_config

  vq = from_config.image_tokenizer(config)
  stream = from_config.stream(config, from_config.example_spec(config, vq))
  # captioning: image in, text out; depth: image in and out; generation: text in, image
  # out; sentiment: text only.
  np.testing.assert_array_equal(stream.schedule.strata, [1, 3, 2, 0])
  assert stream.counters.summary() == ""  # probing counts nothing


def test_task_length_weights_give_each_task_its_rate_of_the_gradient(data_dir):
  """normalization="tasks": weight x mean target length is the same for every task (so under
  the per-token loss each task's share is its rate), by hand from the probed lengths; the
  stream's examples carry the weight."""
  config = tiny_config.get_config()
  config.data.update(dict(tasks=MIXED_TASKS, data_dir=data_dir))
  from unified_io.data import from_config

  vq = from_config.image_tokenizer(config)
  stream = from_config.stream(config, from_config.example_spec(config, vq))
  rates = [0.25] * 4  # data.tasks: uniform
  line = from_config.set_length_weights(stream, rates, examples=4)
  lengths = [stream.mean_target_tokens(i, 4) for i in range(4)]
  # Depth and generation targets are 64 codes + EOS; captioning and sentiment are short text.
  assert lengths[1] == lengths[2] == 65.0 and max(lengths[0], lengths[3]) < 30
  mean = sum(lengths) / 4
  np.testing.assert_allclose(
    [w * n for w, n in zip(stream.length_weights, lengths)], [mean] * 4, rtol=1e-6
  )
  assert "config.loss.normalization=tasks" in line and "builtin_sentiment" in line
  for index in range(8):
    element = stream.element(index)
    want = stream.length_weights[int(element["task_index"])]
    np.testing.assert_allclose(element["loss_weight"], want, rtol=1e-6)
  assert stream.counters.summary() == ""  # probing counts nothing


# ------------------------------------------------------------------------------- resume


def _mixture_config(data_dir, steps):
  config = tiny_config.get_config()
  config.data.update(dict(tasks=MIXED_TASKS, data_dir=data_dir, workers=1))
  config.train.update(dict(batch_size=8, total_steps=steps, log_every=1, tensorboard=False))
  config.checkpoint.update(dict(every_steps=2, async_save=False))
  return config


@pytest.mark.slow
def test_resume_on_a_mixture_is_exact(tmp_path, data_dir):
  whole = dict(trainer.train(_mixture_config(data_dir, 4), str(tmp_path / "whole")))
  trainer.train(_mixture_config(data_dir, 2), str(tmp_path / "halves"))
  resumed = dict(trainer.train(_mixture_config(data_dir, 4), str(tmp_path / "halves")))
  assert sorted(resumed) == [3, 4]
  assert [resumed[s] for s in (3, 4)] == [whole[s] for s in (3, 4)]
  log = (tmp_path / "whole" / "log.txt").read_text()
  assert "Compiled step part" in log and "text -> text+image" in log


@pytest.mark.slow
def test_two_hosts_on_a_mixture_equal_one_host(tmp_path, data_dir):
  """Hosts hold different kinds of examples, agree on the parts' shapes and give the losses
  of one process with as many devices."""
  from tests.test_train import RUNNER, ROOT, _free_port

  mixture = ["data.source=mixture", f"data.tasks={MIXED_TASKS}", f"data.data_dir={data_dir}"]
  run = lambda workdir, devices, process="": subprocess.Popen(
    RUNNER
    + [str(workdir), "3", "1", "--devices", str(devices), "--set", *mixture]
    + (["--process", process] if process else []),
    cwd=ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  port = _free_port()
  procs = [run(tmp_path / "one", 2)] + [run(tmp_path / "two", 1, f"{i}/2@{port}") for i in range(2)]
  try:
    outs = [p.communicate(timeout=1200) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  one, two = (dict(json.loads(outs[i][0].strip().splitlines()[-1])["losses"]) for i in (0, 1))
  np.testing.assert_allclose([two[s] for s in (1, 2, 3)], [one[s] for s in (1, 2, 3)], rtol=2e-5)
