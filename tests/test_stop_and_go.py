"""Dynamic stop-and-go (12-in-1 §3): the rule on hand-made loss sequences, the gated
schedule's counts (derived by hand from the block layout), exact resume, and the stream of
two built-in tasks with the easy one stopped and brought back."""

import collections
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import unified_io.data.tasks  # noqa: F401  registers the built-in tasks
from tests import specs
from unified_io.data import pipeline
from unified_io.data import schedule as schedule_lib
from unified_io.data import stop_and_go as sg

RULE = sg.Rule()  # the paper's: 0.1% over 2 measurements, 0.5%, Δ = 4
EASY, HARD = "builtin_image_classification", "builtin_captioning"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------------------ the rule


def test_converged_needs_patience_plus_one_measurements():
  assert not sg.converged([1.0, 1.0], RULE)  # two measurements: no "before" yet
  assert sg.converged([1.0, 1.0, 1.0], RULE)


def test_converged_threshold_is_relative_to_the_best_before():
  # best before the last 2: 2.0; best of the last 2: 1.999 -> 0.05% < 0.1%: converged
  assert sg.converged([2.5, 2.0, 2.1, 1.999], RULE)
  # 1.997 -> 0.15% >= 0.1%: still improving
  assert not sg.converged([2.5, 2.0, 2.1, 1.997], RULE)
  # a rise is no improvement
  assert sg.converged([1.0, 1.2, 1.1], RULE)


def test_diverged_threshold():
  assert not sg.diverged(1.005, 1.0, RULE)  # exactly 0.5%: not beyond it
  assert sg.diverged(1.0051, 1.0, RULE)


def test_controller_go_stop_go_on_a_hand_made_sequence():
  c = sg.Controller(["a", "b"], RULE)
  a = [3.0, 2.0, 1.9995, 1.999, 1.998, 2.0, 2.02, 1.9, 1.8]
  b = [3.0, 2.5, 2.0, 1.5, 1.0, 0.8, 0.6, 0.5, 0.4]  # keeps improving: always go
  modes = []
  for i, (la, lb) in enumerate(zip(a, b)):
    decisions = c.update(10 * (i + 1), [la, lb], position=10 * (i + 1) + 2)
    modes.append(c.modes[0])
    assert all(d.task == "a" for d in decisions)
  # measurement 3: 1.9995 is 33% below the best before it (3.0): go; measurement 4: the
  # best before the last 2 is 2.0, the best of [1.9995, 1.999] only 0.05% lower -> stop;
  # 1.998, 2.0 are within 0.5% of the best 1.998; 2.02 is 1.1% above it -> go; back in go
  # the window restarts at 2.02, so 1.9 and 1.8 (improving) keep it in go.
  assert modes == ["go", "go", "go", "stop", "stop", "stop", "go", "go", "go"]
  assert c.changes == [(42, "a", "stop"), (72, "a", "go")]
  assert c.modes[1] == "go"


def test_controller_skips_non_finite_losses():
  c = sg.Controller(["a"], RULE)
  for loss in (1.0, float("nan"), 1.0, float("inf"), 1.0):
    c.update(1, [loss], 0)
  assert c.non_finite == 2 and c.modes == ["stop"]


def test_rule_settings_checked():
  class Config:
    data = {"stop_and_go": {"every_step": 3}}

  with pytest.raises(ValueError, match="every_step"):
    sg.settings(Config)
  Config.data = {"stop_and_go": {"iter_gap": 0}}
  with pytest.raises(ValueError, match="iter_gap"):
    sg.settings(Config)


def test_config_defaults_match_the_paper():
  from configs import common

  config = common.base_config(
    emb_dim=8, num_heads=1, num_encoder_layers=1, num_decoder_layers=1, mlp_dim=8
  )
  assert dict(config.data.stop_and_go) == sg.DEFAULTS
  assert sg.rule(sg.DEFAULTS) == sg.Rule(0.001, 2, 0.005, 4)


# ------------------------------------------------------------------------ gated schedule

NAMES, RATES, BLOCK = ("a", "b", "c"), (0.5, 0.3, 0.2), 200  # 100, 60, 40 slots per block


def _gated(changes=()):
  g = sg.GatedSchedule(schedule_lib.Schedule(NAMES, RATES, seed=3, block=BLOCK), iter_gap=4)
  g.set_changes(list(changes))
  return g


def test_no_changes_is_the_base_schedule():
  g, base = _gated(), schedule_lib.Schedule(NAMES, RATES, seed=3, block=BLOCK)
  assert [g(e) for e in range(1000)] == [base(e) for e in range(1000)]


def test_stopped_task_keeps_every_fourth_slot_and_go_tasks_take_the_rest():
  g = _gated([(350, 0, sg.STOP)])  # mid-block 1
  tasks = np.array([g(e)[0] for e in range(2400)])
  for b in range(2, 12):  # whole blocks after the change
    counts = np.bincount(tasks[b * BLOCK : (b + 1) * BLOCK], minlength=3)
    # a: draws 100b .. 100b + 99, of which 25 are multiples of 4; the 75 freed go to b and
    # c as 0.3 : 0.2 -> 45 and 30.
    assert counts.tolist() == [25, 60 + 45, 40 + 30]
  # before the change the block is the base block
  base = schedule_lib.Schedule(NAMES, RATES, seed=3, block=BLOCK)
  assert tasks[:350].tolist() == [base(e)[0] for e in range(350)]


def test_every_task_walks_its_draws_without_gaps_or_repeats():
  g = _gated([(350, 0, sg.STOP), (1010, 1, sg.STOP), (1990, 0, sg.GO)])
  draws = collections.defaultdict(list)
  for e in range(3000):
    task, draw = g(e)
    draws[task].append(draw)
  for task, seen in draws.items():
    assert seen == list(range(len(seen))), NAMES[task]


def test_block_counts_without_layout_match_the_layout():
  g = _gated([(400, 0, sg.STOP), (1000, 2, sg.STOP)])  # both at block starts
  for b in range(2, 9):
    layout = np.bincount(g._gated_block(b)[0], minlength=3)
    assert g._block_counts(b).tolist() == layout.tolist()


def test_all_stopped_is_the_base_schedule():
  changes = [(0, 0, sg.STOP), (0, 1, sg.STOP), (0, 2, sg.STOP)]
  g, base = _gated(changes), schedule_lib.Schedule(NAMES, RATES, seed=3, block=BLOCK)
  assert [g(e) for e in range(600)] == [base(e) for e in range(600)]


def test_resume_from_the_changes_alone_is_exact():
  changes = [(350, 0, sg.STOP), (1010, 1, sg.STOP), (1990, 0, sg.GO)]
  whole = [_gated(changes)(e) for e in range(2600)]
  # A fresh process asked first for element 2100 (no earlier queries, no cache).
  fresh = _gated(changes)
  assert [fresh(e) for e in range(2100, 2600)] == whole[2100:]
  # Changes added while running (as the trainer does) give the same as restored ones.
  live = _gated()
  run = [live(e) for e in range(300)]
  for change in changes:
    run += [live(e) for e in range(len(run), change[0])]
    live.add_change(*change)
  run += [live(e) for e in range(len(run), 2600)]
  assert run == whole


def test_a_change_at_an_already_scheduled_element_is_refused():
  g = _gated()
  g(500)
  with pytest.raises(RuntimeError, match="already scheduled"):
    g.add_change(500, 0, sg.STOP)
  g.add_change(501, 0, sg.STOP)


def test_controller_state_round_trip_through_json():
  c = sg.Controller(NAMES, RULE, _gated(), global_batch_size=10)
  for i, a in enumerate([2.0, 1.9999, 1.9999, 1.9999, 2.1]):
    c.update(i, [a, 30.0 - i, 30.0 - i], position=4 * i + 3)
  assert [m for _, _, m in c.changes] == ["stop", "go"]
  state = json.loads(json.dumps(c.state()))
  restored = sg.Controller(NAMES, RULE, _gated(), global_batch_size=10)
  restored.set_state(state)
  assert restored.state() == c.state()
  assert [restored.schedule(e) for e in range(1500)] == [c.schedule(e) for e in range(1500)]
  # and it goes on deciding the same
  for ctrl in (c, restored):
    ctrl.update(9, [2.1, 2.1, 2.1], position=100)
  assert restored.state() == c.state()
  with pytest.raises(ValueError, match="tasks"):
    sg.Controller(["x", "y", "z"], RULE).set_state(state)


def test_draw_modes_picture():
  c = sg.Controller(["a", "b"], RULE)
  for i, a in enumerate([1.0, 1.0, 1.0, 1.0, 2.0]):
    c.update(10 * (i + 1), [a, 1.0 / (i + 1)], i)
  image = sg.draw_modes(c)
  assert image.size[0] > 900 and image.size[1] > 2 * 18


# -------------------------------------------------------- two built-in tasks in the stream


@pytest.fixture(scope="module")
def data_dir(builtin_data_dir):
  return builtin_data_dir


def test_easy_builtin_task_stops_then_returns(data_dir):
  spec = specs.tiny_spec(64, 32, patch_size=8)
  stream = pipeline.MixtureStream([EASY, HARD], [0.5, 0.5], spec, seed=0, data_dir=data_dir)
  stream.schedule = sg.GatedSchedule(stream.schedule, iter_gap=4)
  batch = 8
  c = sg.Controller([EASY, HARD], RULE, stream.schedule, batch)
  served = 0

  def serve(until_position):  # the tasks of the stream's elements up to that batch
    nonlocal served
    out = [stream.schedule(e)[0] for e in range(served, until_position * batch)]
    served = until_position * batch
    return np.array(out)

  # The easy task plateaus at its third measurement, the hard one keeps improving.
  easy = [1.0, 0.5, 0.4999, 0.4998]
  hard = [4.0, 3.5, 3.0, 2.5]
  for i, losses in enumerate(zip(easy, hard)):
    serve(100 * i)
    c.update(100 * i, losses, position=100 * i + 2)
  assert c.modes == [sg.STOP, sg.GO] and c.changes == [(302, EASY, sg.STOP)]
  stopped = serve(2000)[2 * batch :]
  # 1800 batches of 8 in stop: the easy task's base share is half, it keeps a quarter.
  share = np.mean(stopped == 0)
  assert abs(share - 0.5 / 4) < 0.01, share
  # A planted degraded loss: 0.6% above its best 0.4998 sends it back to go.
  c.update(2000, [0.4998 * 1.006, 2.0], position=2002)
  assert c.modes == [sg.GO, sg.GO]
  going = serve(3000)[2 * batch :]
  assert abs(np.mean(going == 0) - 0.5) < 0.02
  # and every element is a real example of its task
  element = stream.element(2500 * batch)
  assert element["task_index"] == stream.schedule(2500 * batch)[0]


# ------------------------------------------------------------- trainer: kill and resume


def _train(workdir, steps, data_dir):
  sets = [
    "data.source=mixture",
    f"data.tasks={EASY},{HARD}",
    f"data.data_dir={data_dir}",
    "data.schedule=stop_and_go",
    "data.stop_and_go.every_steps=2",
    "data.stop_and_go.num_examples=4",
    "data.stop_and_go.min_improvement=10.0",  # planted: every task converges at once
    "train.batch_shapes=padded",
  ]
  cmd = [sys.executable, "tests/train_runner.py", workdir, str(steps), "1", "--set", *sets]
  out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])["losses"]


@pytest.mark.slow
def test_trainer_resume_reproduces_the_schedule(tmp_path, data_dir):
  whole = _train(str(tmp_path / "whole"), 8, data_dir)
  _train(str(tmp_path / "split"), 4, data_dir)
  resumed = _train(str(tmp_path / "split"), 8, data_dir)
  assert [s for s, _ in resumed] == [5, 6, 7, 8]
  assert np.allclose([v for _, v in whole[4:]], [v for _, v in resumed], rtol=1e-5)
  log = (tmp_path / "whole" / "log.txt").read_text()
  assert "stop_and_go step 6:" in log and "-> stop from batch" in log
  assert (tmp_path / "whole" / "stop_and_go.png").exists()
  # the measurement after the resume saw the same parameters and decided the same
  split_log = (tmp_path / "split" / "log.txt").read_text()
  last = lambda text: [x for x in text.splitlines() if x.startswith("stop_and_go step 8:")]
  assert last(log) == last(split_log) and len(last(log)) == 1
  assert not math.isnan(whole[-1][1])
