"""Evaluation scorers on hand-made predictions, and the predict/evaluate CLIs end to end on
a 2-step tiny run (clear errors for bad inputs included)."""

import collections
import json
import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

from configs import tiny as tiny_config
from tests import specs
from unified_io.eval import results as results_lib
from unified_io.eval import task_eval as evaluation
from unified_io.common import locations
from unified_io.data import pipeline
from unified_io.data.tasks import registry as tasks_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASKS = "builtin_refexp,builtin_depth,builtin_vqa,builtin_object_categorization,builtin_keypoints"


@pytest.fixture(scope="module")
def data_dir(builtin_data_dir):
  return builtin_data_dir


@pytest.fixture(scope="module")
def spec():
  return specs.tiny_spec(144, 72)


def _examples(task_name, spec, data_dir, n=6):
  return evaluation.collect(
    tasks_lib.get(task_name), spec, spec.context(20.0), "validation", n, seed=0, data_dir=data_dir
  )


def test_refexp_scores_ground_truth_and_mean_box(spec, data_dir):
  ex = _examples("builtin_refexp", spec, data_dir)
  layout = spec.tokenizer.layout
  preds = [
    {
      "tokens": locations.box_to_location_ids(r["meta"]["box"], r["meta"]["image_hw"], layout),
      "text": "",
      "image": None,
    }
    for r in ex.raws
  ]
  s = evaluation.score(ex, preds, spec, 20.0)
  metric, score, baseline = s.metric, s.value, s.baseline
  assert metric == "acc@IoU0.5" and score == 1.0
  gt = np.stack([r["meta"]["box"] for r in ex.raws])
  mean = gt.mean(0)
  from unified_io.eval import metrics

  assert baseline == pytest.approx(
    np.mean([metrics.box_iou(mean[None], g[None])[0, 0] >= 0.5 for g in gt])
  )


def test_depth_scores_perfect_prediction_near_zero(spec, data_dir):
  from unified_io.common import dense_labels

  ex = _examples("builtin_depth", spec, data_dir)
  preds = [
    {"image": dense_labels.depth_to_image(r["meta"]["depth"], 20.0), "text": ""} for r in ex.raws
  ]
  s = evaluation.score(ex, preds, spec, 20.0)
  rmse, baseline, how = s.value, s.baseline, s.baseline_is
  # Exact up to the float32 grey level; the mean-depth baseline is metres off.
  assert rmse < 1e-3 and baseline > 1.0 and how == "mean depth"


def test_vqa_and_accuracy_baselines_are_the_majority(spec, data_dir):
  ex = _examples("builtin_vqa", spec, data_dir)
  answers = [r["meta"]["answers"][0] for r in ex.raws]
  preds = [{"text": a, "tokens": None, "image": None} for a in answers]
  s = evaluation.score(ex, preds, spec, 20.0)
  score, baseline = s.value, s.baseline
  majority = max(set(answers), key=answers.count)
  assert score == 1.0 and baseline == pytest.approx(answers.count(majority) / len(answers))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, data_dir):
  path = tmp_path_factory.mktemp("run")
  out = _train(path, data_dir)
  assert out.returncode == 0, out.stderr[-3000:]
  return path


def _train(workdir, data_dir):
  overrides = {
    "data.tasks": TASKS,
    "data.data_dir": data_dir,
    "train.total_steps": 2,
    "train.log_every": 1,
    "checkpoint.async_save": False,
    "evals.tasks.num_examples": 2,
    "evals.tasks.batch_size": 2,
    "train.batch_size": 4,
  }
  args = [f"--config.{k}={v}" for k, v in overrides.items()]
  return subprocess.run(
    [sys.executable, "-m", "unified_io.train", f"--workdir={workdir}", *args],
    cwd=ROOT,
    capture_output=True,
    text=True,
  )


@pytest.mark.slow
def test_training_ends_with_a_report(workdir):
  report = workdir / "eval" / "step_2"
  metrics = json.loads((report / "metrics.json").read_text())
  assert set(metrics["tasks"]) == set(TASKS.split(","))
  for result in metrics["tasks"].values():
    assert np.isfinite(result["baseline"]) and np.isfinite(result["loss"])
  assert (report / "sparse_labelling.png").exists() and (report / "dense_labelling.png").exists()
  assert "| sparse_labelling | builtin_refexp |" in (report / "report.md").read_text()
  assert "Evaluating 5 tasks" in (workdir / "log.txt").read_text()
  assert "tasks beat their baseline (" in (report / "report.md").read_text()


@pytest.mark.slow
def test_rerunning_a_finished_run_keeps_its_report(workdir, data_dir):
  report = workdir / "eval" / "step_2" / "report.md"
  before = report.stat().st_mtime_ns
  out = _train(workdir, data_dir)
  assert out.returncode == 0, out.stderr[-3000:]
  assert f"Already at step 2; its evaluation report is {report}" in out.stdout + out.stderr
  assert report.stat().st_mtime_ns == before


def _predict(workdir, *args):
  return subprocess.run(
    [sys.executable, "-m", "unified_io.predict", f"--workdir={workdir}", *args],
    cwd=ROOT,
    capture_output=True,
    text=True,
  )


@pytest.mark.slow
def test_predict_cli_draws_the_answer(workdir, tmp_path, data_dir):
  image = pipeline.source("uio_builtin_scenes/scenes", "test", data_dir)[0]["image"]
  path = tmp_path / "scene.png"
  PIL.Image.fromarray(image).save(path)
  for task, extra in (("detection", []), ("depth", []), ("vqa", ["--arg=How many circles?"])):
    out = _predict(
      workdir, f"--image={path}", f"--task={task}", f"--out={tmp_path / task}.png", *extra
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "answer:" in out.stdout and (tmp_path / f"{task}.png").exists()


@pytest.mark.slow
def test_predict_cli_bad_inputs_name_the_problem(workdir, tmp_path):
  missing = tmp_path / "nope.png"
  out = _predict(workdir, f"--image={missing}", "--task=detection")
  assert out.returncode != 0 and str(missing) in out.stderr
  out = _predict(workdir, f"--image={missing}", "--prompt=")
  assert out.returncode != 0 and "--prompt or --task" in out.stderr
  out = _predict(workdir, "--task=nonsense")
  assert out.returncode != 0 and "nonsense" in out.stderr
  out = _predict(
    workdir,
    "--config=configs/small.py",
    f"--checkpoint={workdir}",
    "--task=image_generation",
    "--arg=a red circle",
  )
  assert out.returncode != 0 and str(workdir) in out.stderr


@pytest.mark.slow
def test_evaluate_cli_writes_metrics_and_predictions(workdir, tmp_path):
  out = subprocess.run(
    [
      sys.executable,
      "-m",
      "unified_io.evaluate",
      f"--workdir={workdir}",
      "--tasks=builtin_vqa",
      "--num_examples=2",
      f"--out={tmp_path / 'ev'}",
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
  )
  assert out.returncode == 0, out.stderr[-3000:]
  metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
  assert list(metrics["tasks"]) == ["builtin_vqa"]
  lines = (tmp_path / "ev" / "predictions.jsonl").read_text().splitlines()
  assert len(lines) == 2 and json.loads(lines[0])["task"] == "builtin_vqa"


def test_tiny_config_evaluates_its_mixture():
  config = tiny_config.get_config()
  assert config.data.source == "mixture" and config.vqgan.weights


def test_headline_counts_tasks_per_group_in_the_paper_order():
  def result(group, score, baseline, lower_is_better=False):
    return results_lib.TaskResult(
      group=group,
      score=results_lib.Score("m", score, baseline, "b", lower_is_better),
      loss=0.0,
      num_examples=1,
    )

  results = {
    "depth": result("dense_labelling", 2.5, 3.0, lower_is_better=True),  # beats
    "normals": result("dense_labelling", 9.0, 8.0, lower_is_better=True),  # does not
    "nan": result("dense_labelling", float("nan"), 8.0, lower_is_better=True),  # never
    "refexp": result("sparse_labelling", 0.1, 0.0),  # beats
    "tie": result("image_classification", 0.625, 0.625),  # a tie does not
  }
  assert results_lib.group_counts(results) == {
    "sparse_labelling": (1, 1),
    "dense_labelling": (1, 3),
    "image_classification": (0, 1),
  }
  assert results_lib.headline(results) == (
    "2/5 tasks beat their baseline (sparse_labelling 1/1, dense_labelling 1/3, "
    "image_classification 0/1)"
  )


def test_choice_tasks_pick_among_each_examples_own_options():
  """Multiple-choice sets (COPA, HellaSwag...) have other options in every example."""

  class LastOption:
    def choose(self, features, options):
      best = [len(row) - 1 for row in options]
      return best, [np.zeros(len(row)) for row in options]

  options = [("(0) rain", "(1) sun"), ("(0) a cat", "(1) a dog", "(2) a fish"), ("no", "yes")]
  examples = evaluation.TaskExamples(
    tasks_lib.get("superglue_copa"),
    [{"meta": {"class_names": o}} for o in options],
    {"text_inputs": np.zeros((3, 4), np.int32)},
    collections.Counter(),
  )
  preds = evaluation.predict(LastOption(), examples, batch_size=2)
  assert [p["text"] for p in preds] == ["(1) sun", "(2) a fish", "yes"]


def test_vcr_q_to_ar_is_both_right_on_the_same_question():
  def result(name, rights):
    raws = [{"meta": {"example_id": f"q{i}"}, "target_text": "(right)"} for i in range(len(rights))]
    preds = [{"text": "(right)" if ok else "(wrong)"} for ok in rights]
    score = results_lib.Score("accuracy", float(np.mean(rights)), 0.25, "majority answer")
    examples = evaluation.TaskExamples(tasks_lib.get(name), raws, {}, collections.Counter())
    return results_lib.TaskResult("vision_language", score, 0.0, len(raws), {}, examples, preds)

  results = {
    "vcr_qa": result("vcr_qa", [True, True, False, True]),
    "vcr_qar": result("vcr_qar", [True, False, True, True]),
  }
  out = evaluation.joint_scores(results, progress=lambda line: None)
  # Both right on q0 and q3 of four.
  assert out["vcr_qar"].score.extra["Q->AR accuracy"] == 0.5
  assert out["vcr_qar"].score.extra["Q->AR accuracy examples"] == 4
  assert "Q->AR accuracy" not in out["vcr_qa"].score.extra
