"""Learning-efficiency curves: split slices, the curve's tables and picture, and
`python -m unified_io.finetune_curve` end to end on a 2-step tiny run (resume and refusals
included)."""

import json
import os
import subprocess
import sys

import ml_collections
import numpy as np
import PIL.Image
import pytest

from configs import tiny as tiny_config
from unified_io import finetune_curve
from unified_io.data import builtin_dataset
from unified_io.data import from_config
from unified_io.data import pipeline
from unified_io.data import split_slice
from unified_io.data.tasks import registry as tasks_lib
from unified_io.eval import learning_curve
from unified_io.train import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK, OTHER = "builtin_refexp", "builtin_vqa"
SCENES = 12  # records per split of the test's built-in dataset
STEPS, BATCH = 2, 4


# ------------------------------------------------------------------------- split slices


def test_parse_reads_leading_slices_and_refuses_others():
  assert split_slice.parse("train") == ("train", None)
  assert split_slice.parse("train[:10]") == ("train", 10)
  for bad in ("train[5:]", "train[:0]", "train[:-3]", "train[1:4]", "train[:10%]"):
    with pytest.raises(ValueError, match="only leading slices"):
      split_slice.parse(bad)


def test_first_serves_the_first_records_and_refuses_too_many():
  class Base(list):
    name = "d[train]"

  first = split_slice.First(Base(range(10, 20)), 3)
  assert len(first) == 3 and [first[i] for i in range(3)] == [10, 11, 12]
  with pytest.raises(IndexError):
    first[3]
  with pytest.raises(ValueError, match="has 10 records, fewer than the 11"):
    split_slice.First(Base(range(10)), 11)


def test_first_examples_task_changes_only_the_train_split():
  task = split_slice.first_examples(TASK, 7)
  whole = tasks_lib.get(TASK)
  assert task.name == f"{TASK}_first7" and tasks_lib.get(task.name) is task
  assert task.splits == {**whole.splits, "train": "train[:7]"}
  assert (task.preprocess, task.metric, task.builder) == (
    whole.preprocess,
    whole.metric,
    whole.builder,
  )
  assert split_slice.first_examples(TASK, 7) == task  # registering twice is harmless
  with pytest.raises(KeyError, match="Unknown task"):
    split_slice.first_examples("no_such_task", 7)


# -------------------------------------------------------------------- curve, table, picture


def _entry(metric, score, baseline, lower, loss=1.0):
  return dict(metric=metric, score=score, baseline=baseline, lower_is_better=lower, loss=loss)


def test_curve_retention_table_and_picture_from_hand_made_metrics():
  before = {"a": _entry("acc", 0.2, 0.1, False), "d": _entry("RMSE", 2.0, 3.0, True)}
  after = {
    10: {"a": _entry("acc", 0.3, 0.1, False, 0.75), "d": _entry("RMSE", 4.0, 3.0, True)},
    100: {"a": _entry("acc", 0.5, 0.1, False), "d": _entry("RMSE", 2.5, 3.0, True)},
  }
  result = learning_curve.curve(dict(task="a", steps=5), [10, 100], before, after)
  assert result["other_tasks"] == ["d"] and result["steps"] == 5
  assert result["tasks"]["a"]["after"] == {"10": 0.3, "100": 0.5}
  # RMSE 2 -> 4 is half the quality kept; 2 -> 2.5 is 80%.
  assert result["tasks"]["d"]["retained_percent"] == pytest.approx({"10": 50.0, "100": 80.0})
  assert learning_curve.retained_percent(0.0, 0.5, False) is None
  text = learning_curve.markdown(result)
  assert "| a | acc ↑ | 0.100 | 0.200 | 0.300 | 0.500 |" in text
  assert "| d | RMSE ↓ | 3.000 | 2.000 | 4.000 | 2.500 |" in text
  assert "| d | 50.0 | 80.0 |" in text
  assert "| a | 1.000 | 0.750 | 1.000 |" in text.split("Validation loss")[1]
  image = learning_curve.draw(result)
  assert image.size == learning_curve.PICTURE_SIZE
  pixels = np.asarray(image)
  assert (pixels != 255).any(axis=2).mean() > 0.01  # axes, lines and labels were drawn


def test_retained_axis_stops_at_its_ceiling():
  # "d" went from near zero to 0.06: 600% retained at N=10, 50% at N=100.
  before = {"a": _entry("acc", 0.2, 0.1, False), "d": _entry("AP", 0.01, 0.0, False)}
  after = {
    10: {"a": _entry("acc", 0.3, 0.1, False), "d": _entry("AP", 0.06, 0.0, False)},
    100: {"a": _entry("acc", 0.5, 0.1, False), "d": _entry("AP", 0.005, 0.0, False)},
  }
  result = learning_curve.curve(dict(task="a", steps=5), [10, 100], before, after)
  assert result["tasks"]["d"]["retained_percent"] == pytest.approx({"10": 600.0, "100": 50.0})
  pixels = np.asarray(learning_curve.draw(result)).astype(int)
  colour = np.asarray((44, 160, 44))  # the first other task's line colour
  is_colour = np.abs(pixels - colour).sum(axis=2) < 30
  # Right panel: N=10 at x=536, N=100 at x=932; values 0..200% map to y=366..22.
  assert is_colour[19:26, 533:540].any()  # 600% drawn on the top edge
  y50 = round(366 - 50 / learning_curve.RETAINED_AXIS_MAX * (366 - 22))  # 280
  assert is_colour[y50 - 3 : y50 + 4, 928:932].any()  # 50% where a 0..200 axis puts it


# ------------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tfds"))
  builtin_dataset.build(path, "scenes", num_examples=SCENES)
  return path


def _overrides(data_dir):
  return {
    # One task, as the fine-tuning runs have: the same compiled step (the XLA cache, see
    # conftest.py, then compiles it once for the whole module).
    "data.tasks": TASK,
    "data.data_dir": data_dir,
    "train.batch_size": BATCH,
    "train.batch_shapes": "padded",  # one compiled step instead of one per example shape
    "train.log_every": 1,
    "checkpoint.async_save": False,
  }


def _config(data_dir):
  config = tiny_config.get_config()
  for key, value in _overrides(data_dir).items():
    section, name = key.split(".")
    config[section][name] = value
  return config


@pytest.fixture(scope="module")
def init_workdir(tmp_path_factory, data_dir):
  """A tiny model trained 2 steps (no evaluation: the curve does its own)."""
  path = str(tmp_path_factory.mktemp("init"))
  config = _config(data_dir)
  config.train.total_steps = 2
  config.evals = {}
  trainer.train(config, path)
  return path


def _curve(init_workdir, data_dir, out, examples="3,6"):
  args = [f"--config.{k}={v}" for k, v in _overrides(data_dir).items()]
  return subprocess.run(
    [
      sys.executable,
      "-m",
      "unified_io.finetune_curve",
      f"--init_from={init_workdir}",
      "--config=configs/tiny.py",
      *args,
      f"--task={TASK}",
      f"--examples={examples}",
      f"--steps={STEPS}",
      "--eval_examples=2",
      "--eval_batch_size=2",
      f"--other_tasks={OTHER}",
      f"--workdir={out}",
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
  )


@pytest.fixture(scope="module")
def curve_dir(tmp_path_factory, init_workdir, data_dir):
  path = tmp_path_factory.mktemp("curve")
  out = _curve(init_workdir, data_dir, path)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "finetune_curve: N=3: 2 steps on the first 3 builtin_refexp train examples" in out.stdout
  return path


def _row(text, name):
  (line,) = [line for line in text.splitlines() if line.startswith(f"| {name} |")][:1]
  return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.mark.slow
def test_curve_files_agree_and_name_every_task(curve_dir):
  result = json.loads((curve_dir / "curve.json").read_text())
  assert result["task"] == TASK and result["other_tasks"] == [OTHER]
  assert result["examples"] == [3, 6] and result["steps"] == STEPS
  text = (curve_dir / "curve.md").read_text()
  metric_table, rest = text.split("percent of the metric before fine-tuning retained")
  retained_table, loss_table = rest.split("Validation loss")
  before = json.loads((curve_dir / "before" / "eval" / "step_0" / "metrics.json").read_text())
  after = {
    n: json.loads((curve_dir / f"n{n}" / "eval" / f"step_{STEPS}" / "metrics.json").read_text())
    for n in ("3", "6")
  }
  for name in (TASK, OTHER):
    t = result["tasks"][name]
    values = (t["baseline"], t["before"], t["after"]["3"], t["after"]["6"])
    assert _row(metric_table, name)[2:] == [f"{v:.3f}" for v in values]
    losses = (t["loss_before"], t["loss_after"]["3"], t["loss_after"]["6"])
    assert _row(loss_table, name)[1:] == [f"{v:.3f}" for v in losses]
    assert (t["before"], t["loss_before"]) == (
      before["tasks"][name]["score"],
      before["tasks"][name]["loss"],
    )
    for n in ("3", "6"):
      entry = after[n]["tasks"][name]
      assert (t["after"][n], t["loss_after"][n]) == (entry["score"], entry["loss"])
  # Fine-tuning moved the parameters: the task's validation loss is not what it was.
  assert result["tasks"][TASK]["loss_after"]["6"] != result["tasks"][TASK]["loss_before"]
  kept = result["tasks"][OTHER]["retained_percent"]
  assert _row(retained_table, OTHER) == [OTHER] + [
    "n/a" if kept[n] is None else f"{kept[n]:.1f}" for n in ("3", "6")
  ]
  picture = PIL.Image.open(curve_dir / "curve.png")
  assert picture.format == "PNG"
  assert picture.size == (result["picture"]["width"], result["picture"]["height"])
  log = (curve_dir / "n3" / "log.txt").read_text()
  assert f"Tasks (1): {TASK}_first3" in log and "Initialised parameters from" in log


def _image_key(features):
  return np.asarray(features["image_inputs"]).tobytes()


@pytest.mark.slow
@pytest.mark.parametrize("n", [3, 6])
def test_fine_tuning_saw_only_the_first_n_examples(curve_dir, data_dir, n):
  # The stream the trainer read is a pure function of its saved config: rebuild it and
  # read the STEPS * BATCH elements it consumed.
  with open(curve_dir / f"n{n}" / "config.json") as f:
    config = ml_collections.ConfigDict(json.load(f))
  split_slice.first_examples(TASK, n)
  spec = from_config.example_spec(config, from_config.image_tokenizer(config))
  stream = from_config.stream(config, spec)
  seen = {_image_key(stream.element(i)) for i in range(STEPS * BATCH)}
  # Independently: the input images of the unsliced split's records, by record index.
  task = tasks_lib.get(TASK)
  whole = pipeline.source(task.builder, "train", data_dir, task.record_filter)
  ctx = spec.context(config.data.max_depth)
  images = []
  for i in range(len(whole)):
    features, _, _ = pipeline.prepare(task, whole[i], np.random.default_rng(0), spec, ctx)
    images.append(_image_key(features))
  assert len(set(images)) == SCENES  # an input image tells the records apart
  assert seen == set(images[:n])  # STEPS * BATCH >= n draws cover all N, and nothing else


@pytest.mark.slow
def test_rerun_skips_finished_examples(curve_dir, init_workdir, data_dir):
  before = (curve_dir / "curve.json").read_text()
  out = _curve(init_workdir, data_dir, curve_dir)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "N=3: already done" in out.stdout and "N=6: already done" in out.stdout
  assert "before fine-tuning: already evaluated" in out.stdout
  assert (curve_dir / "curve.json").read_text() == before


@pytest.mark.slow
def test_other_settings_are_refused_not_mixed_in(curve_dir, init_workdir, data_dir):
  # The evaluation before fine-tuning does not depend on --steps, so only n3 is refused.
  settings = dict(
    init_from=init_workdir,
    task=TASK,
    steps=STEPS + 1,
    split="validation",
    eval_examples=2,
    other_tasks=[OTHER],
  )
  with pytest.raises(finetune_curve.Refused, match=r"n3/result.json was made with other ") as e:
    finetune_curve.run(_config(data_dir), settings, [3, 6], str(curve_dir), 2)
  assert "settings.steps 2, now 3" in str(e.value)
  assert "train.total_steps 2, now 3" in str(e.value)


def _settings(init_from, task=TASK):
  return dict(
    init_from=init_from, task=task, steps=1, split="validation", eval_examples=1, other_tasks=[]
  )


def test_unknown_task_and_missing_checkpoint_are_refused(tmp_path, data_dir):
  config = _config(data_dir)
  with pytest.raises(finetune_curve.Refused, match="--task=builtin_nothing: Unknown task"):
    finetune_curve.run(config, _settings(str(tmp_path), "builtin_nothing"), [3], str(tmp_path), 2)
  with pytest.raises(finetune_curve.Refused, match="--init_from=.*does not exist"):
    finetune_curve.run(config, _settings(str(tmp_path / "nope")), [3], str(tmp_path / "o"), 2)
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(finetune_curve.Refused, match="no checkpoint or params found"):
    finetune_curve.run(config, _settings(str(empty)), [3], str(tmp_path / "out"), 2)
  with pytest.raises(finetune_curve.Refused, match=f"N=100 .* has {SCENES} records, fewer than"):
    finetune_curve.run(config, _settings(str(empty)), [3, 100], str(tmp_path / "out"), 2)
  with pytest.raises(finetune_curve.Refused, match="--examples"):
    finetune_curve.parse_examples("10,ten")
