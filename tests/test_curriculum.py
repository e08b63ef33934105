"""Curriculum (12-in-1 §3): some task groups first, then the whole mixture
(config.data.curriculum, schedule.Curriculum).

Expected values come from the plain `schedule.Schedule` (phase 1 is one over the first
tasks at their renormalised rates, phase 2 the mixture's restarted at the switch) and from
`block_counts` worked out by hand."""

import collections
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import unified_io.data.tasks  # noqa: F401  registers the built-in tasks
from configs import tiny as tiny_config
from unified_io.data import from_config
from unified_io.data import pipeline
from unified_io.data import schedule as schedule_lib
from unified_io.data import stop_and_go
from unified_io.data.tasks import registry as tasks_lib
from unified_io.train import config_check

NAMES = ("a", "b", "c", "d")
RATES = (0.1, 0.2, 0.3, 0.4)
FIRST = (1, 3)  # b and d: 0.2 and 0.4, renormalised 1/3 and 2/3
BLOCK = 30  # phase 1: 10 b + 20 d per block; phase 2: 3 a, 6 b, 9 c, 12 d
SWITCH = 3 * BLOCK + 12  # inside phase 1's fourth block
SEED = 5
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _curriculum(strata=None, switch=SWITCH):
  base = schedule_lib.Schedule(NAMES, RATES, SEED, block=BLOCK, strata=strata)
  return schedule_lib.Curriculum(base, RATES, FIRST, switch)


STRATA = [None, [0, 1, 1, 0]]  # the "rates" schedule, and "stratified" with two shapes


# ---------------------------------------------------------------------------- (a) rates


@pytest.mark.parametrize("strata", STRATA)
def test_first_phase_only_first_tasks_at_renormalised_rates_then_the_mixture(strata):
  plan = _curriculum(strata)
  picks = [plan(e) for e in range(SWITCH + 4 * BLOCK)]
  tasks = np.array([t for t, _ in picks])
  # Phase 1: only b and d, exactly 10 and 20 in every whole block.
  assert set(tasks[:SWITCH]) == {1, 3}
  for k in range(SWITCH // BLOCK):
    got = collections.Counter(tasks[k * BLOCK : (k + 1) * BLOCK].tolist())
    assert got == {1: 10, 3: 20}, k
  assert schedule_lib.block_counts({"b": 0.2 / 0.6, "d": 0.4 / 0.6}, BLOCK).tolist() == [10, 20]
  # Phase 2: every block from the switch holds the mixture's exact counts.
  for k in range(4):
    lo = SWITCH + k * BLOCK
    got = np.bincount(tasks[lo : lo + BLOCK], minlength=4).tolist()
    assert got == [3, 6, 9, 12], k
  # and the tasks are those of the plain schedules.
  sub_strata = None if strata is None else [strata[i] for i in FIRST]
  one = schedule_lib.Schedule(["b", "d"], [1 / 3, 2 / 3], SEED, block=BLOCK, strata=sub_strata)
  plain = schedule_lib.Schedule(NAMES, RATES, SEED, block=BLOCK, strata=strata)
  assert tasks[:SWITCH].tolist() == [FIRST[one(e)[0]] for e in range(SWITCH)]
  assert tasks[SWITCH:].tolist() == [plain(e)[0] for e in range(4 * BLOCK)]


def test_no_first_phase_is_the_plain_schedule():
  plain = schedule_lib.Schedule(NAMES, RATES, SEED, block=BLOCK)
  assert [_curriculum(switch=0)(e) for e in range(100)] == [plain(e) for e in range(100)]


# --------------------------------------------------------------------- (b) draw numbers


@pytest.mark.parametrize("switch", [SWITCH, 2 * BLOCK, 7])
@pytest.mark.parametrize("strata", STRATA)
def test_draw_numbers_run_on_across_the_switch(strata, switch):
  plan = _curriculum(strata, switch)
  picks = [plan(e) for e in range(switch + 3 * BLOCK)]
  for task in range(4):
    draws = [d for t, d in picks if t == task]
    assert draws == list(range(len(draws))), NAMES[task]  # 0, 1, 2, ...: no gap, no repeat
  # The closed-form phase-1 counts are the slots before the switch.
  before = np.bincount([t for t, _ in picks[:switch]], minlength=4)
  np.testing.assert_array_equal(plan.phase1_draws, before)
  # So a task reads every record once per epoch, across the switch too.
  d_draws = [d for t, d in picks if t == 3]
  records = schedule_lib.EpochPermutation(7, SEED, 3)
  read = [records(d) for d in d_draws]
  for epoch in range(len(read) // 7):
    assert sorted(read[epoch * 7 : (epoch + 1) * 7]) == list(range(7))


# --------------------------------------------------------------------------- (c) resume


@pytest.mark.parametrize("start", [SWITCH - 25, SWITCH, SWITCH + 37])
@pytest.mark.parametrize("strata", STRATA)
def test_resume_from_any_element_is_the_tail(strata, start):
  whole = [_curriculum(strata)(e) for e in range(SWITCH + 3 * BLOCK)]
  fresh = _curriculum(strata)  # nothing cached: a resumed process
  assert [fresh(e) for e in range(start, SWITCH + 3 * BLOCK)] == whole[start:]


# --------------------------------------------------------------------------- (d) errors


def test_curriculum_refuses_round_robin_and_empty_phases():
  robin = schedule_lib.Schedule(NAMES, None, SEED, round_robin=True)
  with pytest.raises(ValueError, match="not round_robin"):
    schedule_lib.Curriculum(robin, RATES, FIRST, 10)
  base = schedule_lib.Schedule(NAMES, RATES, SEED, block=BLOCK)
  with pytest.raises(TypeError, match="not a GatedSchedule"):
    schedule_lib.Curriculum(stop_and_go.GatedSchedule(base), RATES, FIRST, 10)
  with pytest.raises(ValueError, match="at least one task"):
    schedule_lib.Curriculum(base, RATES, [], 10)
  with pytest.raises(ValueError, match=">= 0"):
    schedule_lib.Curriculum(base, RATES, FIRST, -1)
  with pytest.raises(ValueError, match="rate > 0"):
    schedule_lib.Curriculum(base, (0.5, 0.0, 0.5, 0.0), FIRST, 10)


def _config(**curriculum):
  config = tiny_config.get_config()
  config.data.curriculum.update(curriculum)
  return config


def test_default_config_has_the_curriculum_off():
  config = tiny_config.get_config()
  assert dict(config.data.curriculum) == {"first_groups": "", "steps": 0}
  assert from_config.curriculum_problems(config) == []
  config_check.validate(config)


@pytest.mark.parametrize(
  "settings,schedule,message",
  [
    (dict(first_groups="nlp", steps=10), "round_robin", "config.data.schedule='round_robin'"),
    (dict(first_groups="nlp", steps=10), "stop_and_go", "config.data.schedule='stop_and_go'"),
    (
      dict(first_groups="image_clasification", steps=10),
      "stratified",
      "'image_clasification' \\(not a task group\\); the groups of .*mixture builtin_multitask.*: "
      "image_synthesis, sparse_labelling, dense_labelling, image_classification, "
      "image_captioning, vision_language, nlp, language_modelling",
    ),
    (dict(first_groups="", steps=10), "rates", "first phase would have no task"),
    (dict(first_groups=" , ", steps=10), "rates", "first phase would have no task"),
    (dict(first_groups="nlp", steps=-1), "rates", "steps=-1 must be an int >= 0"),
  ],
)
def test_bad_curriculum_settings_are_refused(settings, schedule, message):
  config = _config(**settings)
  config.data.schedule = schedule
  # config_check at the command line, and from_config before it reads any record.
  with pytest.raises(config_check.ConfigError, match=message):
    config_check.validate(config)
  with pytest.raises(ValueError, match=message):
    from_config.stream(config, spec=None)


def test_a_group_without_a_task_in_the_run_lists_the_runs_groups():
  config = _config(first_groups="nlp", steps=10)
  config.data.tasks = "builtin_captioning,builtin_vqa"
  expected = "'nlp' \\(none of them is of it\\); the groups of config.data.tasks: "
  with pytest.raises(config_check.ConfigError, match=expected + "image_captioning, vision_l"):
    config_check.validate(config)
  expected = "the groups of this run's 2 tasks \\(config.data.tasks\\): image_captioning, vi"
  with pytest.raises(ValueError, match=expected):
    from_config.stream(config, spec=None)


def test_a_curriculum_needs_the_mixture_source():
  config = _config(first_groups="nlp", steps=10)
  config.data.source = "synthetic"
  with pytest.raises(config_check.ConfigError, match="needs config.data.source='mixture'"):
    config_check.validate(config)


# -------------------------------------------------------- (e) the built-in mixture, end to end


FIRST_GROUPS = ("image_classification", "image_captioning")
BATCH = 8


@pytest.fixture(scope="module")
def built(builtin_data_dir):
  path = builtin_data_dir
  config = _config(first_groups=",".join(FIRST_GROUPS), steps=2)
  config.data.update(dict(data_dir=path, workers=1))
  config.train.batch_size = BATCH
  return config, from_config.example_spec(config, from_config.image_tokenizer(config))


def test_builtin_mixture_starts_with_the_first_groups(built, capsys):
  config, spec = built
  batches = from_config.train_batches(config, spec, 0, 1)
  try:
    groups = {n: tasks_lib.get(n).group for n in batches.task_names}
    first = [n for n in batches.task_names if groups[n] in FIRST_GROUPS]
    assert len(first) == 4 and len(batches.task_names) == 22
    seen = [[batches.task_names[i] for i in next(batches)["task_index"]] for _ in range(4)]
    assert all(groups[n] in FIRST_GROUPS for batch in seen[:2] for n in batch), seen[:2]
    assert any(groups[n] not in FIRST_GROUPS for n in seen[2] + seen[3])
    # The plan is said once, when the stream is built.
    out = capsys.readouterr().out
    assert (
      "Curriculum: steps 1..2 (batch positions 0..1, stream elements 0..15) on groups "
      f"[image_classification, image_captioning] (4 tasks: {', '.join(sorted(first))}), "
      "then all 22 tasks" in out
    )
    # Resume from the batch position alone, at and after the switch.
    for position in (1, 2, 3):
      batches.set_state({"position": position})
      again = [batches.task_names[i] for i in next(batches)["task_index"]]
      assert again == seen[position]
  finally:
    batches.close()
  # Two hosts read their halves of the same global batches.
  hosts = [from_config.train_batches(config, spec, i, 2) for i in range(2)]
  try:
    for position in range(4):
      halves = [h.task_names[j] for h in hosts for j in next(h)["task_index"]]
      assert halves == seen[position]
  finally:
    for h in hosts:
      h.close()
  # Off (the default), the stream's schedule is the plain one, as before.
  config.data.curriculum.steps = 0
  plain = from_config.stream(config, spec)
  assert type(plain.schedule) is schedule_lib.Schedule
  assert isinstance(plain, pipeline.MixtureStream)


# ------------------------------------------------------------- trainer: kill and resume


def _train(workdir, steps, data_dir):
  sets = [
    "data.source=mixture",
    "data.tasks=builtin_image_classification,builtin_captioning,builtin_depth",
    f"data.data_dir={data_dir}",
    "data.curriculum.first_groups=image_classification,dense_labelling",
    "data.curriculum.steps=3",
    "train.batch_shapes=padded",
  ]
  cmd = [sys.executable, "tests/train_runner.py", workdir, str(steps), "1", "--set", *sets]
  out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  return out.stdout, json.loads(out.stdout.strip().splitlines()[-1])["losses"]


@pytest.mark.slow
def test_trainer_resume_across_the_switch_is_exact(tmp_path, built):
  data_dir = built[0].data.data_dir
  said, whole = _train(str(tmp_path / "whole"), 6, data_dir)
  assert "Curriculum: steps 1..3 (batch positions 0..2, stream elements 0..23) on groups" in said
  _train(str(tmp_path / "split"), 2, data_dir)  # resumes before the switch
  _, resumed = _train(str(tmp_path / "split"), 6, data_dir)
  assert [s for s, _ in resumed] == [3, 4, 5, 6]
  assert np.allclose([v for _, v in whole[2:]], [v for _, v in resumed], rtol=1e-5)
