"""GRIT inference (unified_io/eval/grit/runner.py) on a tiny GRIT folder with ground truth: the
submission files, the metrics, skips for unreadable images, and the evaluate CLI.

The model is configs/tiny.py with random parameters: the point is the plumbing (every
output parsed, written and scored), not the scores.

  .venv/bin/python -m pytest tests/test_grit_eval.py
"""

import json
import math
import os
import subprocess
import sys

import flax.linen as nn
import jax
import numpy as np
import pytest

from configs import tiny as tiny_config
from tests import test_grit
from unified_io import convert
from unified_io.model import generation
from unified_io.eval.grit import tasks as grit
from unified_io.eval.grit import runner as grit_eval
from unified_io.common import locations
from unified_io.model import builder as model_lib
from unified_io.eval import inference as predict_lib
from unified_io.eval import outputs
from unified_io.eval import predictor as predictor_lib
from unified_io.common import vocab

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPTIONS = ["cat", "dog", "bird", "cow"]
BROKEN = "coco/test2015/vqa_broken.png"


@pytest.fixture(scope="module")
def params():
  config = tiny_config.get_config()
  return config, nn.unbox(model_lib.init_params(model_lib.build(config), jax.random.key(0)))


def _grit_dir(tmp_path):
  """test_grit's two samples per task with ground truth, a label set, and a third VQA
  sample whose image is not an image."""
  grit_dir, _ = test_grit._perfect_submission(tmp_path)
  options = os.path.join(grit_dir, "output_options", "coco_categories.json")
  os.makedirs(os.path.dirname(options))
  with open(options, "w") as f:
    json.dump([{"id": i, "name": n} for i, n in enumerate(OPTIONS)], f)
  path = grit.samples_path(grit_dir, "vqa", "ablation")
  samples = json.load(open(path))
  broken = test_grit._gt_sample("vqa", "vqa_broken", {"words": ["yes"]}, query="what?")
  assert broken["input"]["image_id"] == BROKEN
  with open(path, "w") as f:
    json.dump(samples + [broken], f)
  with open(os.path.join(grit_dir, "images", BROKEN), "wb") as f:
    f.write(b"not a png")
  return grit_dir


def _check_metrics(path):
  metrics = json.load(open(path))
  means = {k: v for k, v in metrics.items() if k.endswith(".mean")}
  assert means
  for key, value in means.items():
    assert math.isfinite(value) and 0 <= value <= 100, (key, value)
  return metrics


def test_predict_grit_all_tasks(tmp_path, params):
  config, p = params
  predictor = predictor_lib.Predictor(config, p)
  grit_dir = _grit_dir(tmp_path)
  lines = []
  split_dir, _ = grit_eval.predict_grit(
    predictor, grit_dir, "ablation", grit.GRIT_TASKS, str(tmp_path / "out"), progress=lines.append
  )
  assert split_dir == str(tmp_path / "out" / "ablation")
  n_params = json.load(open(os.path.join(split_dir, "params.json")))["params_in_millions"]
  assert n_params == round(grit_eval.params_in_millions(predictor))
  for task in grit.GRIT_TASKS:
    preds = grit.load_predictions(split_dir, task)
    assert [r["example_id"] for r in preds] == [f"{task}0", f"{task}1"], task
    key = grit.PREDICTION_FIELD[task]
    for row in preds:
      assert set(row) == {"example_id", "confidence", key} and 0 <= row["confidence"] <= 1
  for row in grit.load_predictions(split_dir, "categorization"):
    assert row["words"] in OPTIONS  # option scoring never answers out of the label set
  for row in grit.load_predictions(split_dir, "keypoint"):
    assert all(len(person) == 51 for person in row["points"])
  for row in grit.load_predictions(split_dir, "normal"):
    assert os.path.isfile(os.path.join(split_dir, "normals", row["normal"]))

  # The unreadable image: named, counted, and scored as a missing prediction.
  skip_lines = [l for l in lines if "skipped vqa vqa_broken" in l]
  assert len(skip_lines) == 1 and BROKEN in skip_lines[0]
  assert any("grit ablation vqa: 2 predictions, 1 skipped" in l for l in lines)
  metrics = _check_metrics(tmp_path / "out" / "metrics.json")
  assert metrics["vqa.num_missing_predictions"] == 1 and metrics["vqa.num_samples"] == 3
  assert 0 <= metrics["overall"] <= 100


def test_boxes_and_keypoint_stages(tmp_path, params, monkeypatch):
  """A random model finds no box; make every box-list output one box (test_grit's images are
  12 x 16) so the box path and keypoint stage two (the real model, not-visible token
  masked) run."""
  config, p = params
  predictor = predictor_lib.Predictor(config, p)
  box = [2.0, 3.0, 10.0, 9.0]
  ids = np.zeros(config.lengths.text_targets, np.int32)
  ids[:5] = [*locations.box_to_location_ids(box, (12, 16), predictor.layout), vocab.EOS_ID]
  real_text = predictor.text_with_scores
  stage_two = []

  def text(features, logit_mask_fn=None, **kw):
    if logit_mask_fn is predictor.keypoint_mask_fn:  # keypoint stage two
      out = real_text(features, logit_mask_fn=logit_mask_fn, **kw)
      stage_two.append(float(np.exp(out[2][0])))
      return out
    tokens = np.repeat(ids[None], len(features["text_inputs"]), 0)
    return ([predictor.decode_text(t) for t in tokens], tokens, np.full(len(tokens), np.log(0.5)))

  monkeypatch.setattr(predictor, "text_with_scores", text)
  grit_dir = _grit_dir(tmp_path)
  split_dir, _ = grit_eval.predict_grit(
    predictor,
    grit_dir,
    "ablation",
    ["localization", "refexp", "keypoint"],
    str(tmp_path / "out"),
    limit=1,
    progress=lambda _: None,
  )
  for task in ("localization", "refexp"):
    (row,) = grit.load_predictions(split_dir, task)
    np.testing.assert_allclose(row["bboxes"], [box], atol=0.1)  # original-image pixels
    assert row["confidence"] == pytest.approx(0.5)  # the output sequence's probability
  (row,) = grit.load_predictions(split_dir, "keypoint")
  assert len(row["points"]) == 1 and len(row["points"][0]) == 51
  assert len(stage_two) == 1 and 0 < stage_two[0] < 1
  assert row["confidence"] == pytest.approx(0.5 * stage_two[0])  # person box x its joints
  _check_metrics(tmp_path / "out" / "metrics.json")


def _evaluate(*args):
  return subprocess.run(
    [
      sys.executable,
      "-m",
      "unified_io.evaluate",
      "--benchmark=grit",
      "--config=configs/tiny.py",
      *args,
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
  )


@pytest.mark.slow
def test_evaluate_cli_grit(tmp_path, params):
  _, p = params
  checkpoint = str(tmp_path / "ckpt")
  convert.save_params(checkpoint, p)
  grit_dir = _grit_dir(tmp_path)
  out = tmp_path / "cli"
  run = _evaluate(
    f"--checkpoint={checkpoint}",
    f"--grit_dir={grit_dir}",
    "--tasks=categorization,refexp",
    "--num_examples=1",
    f"--out={out}",
  )
  assert run.returncode == 0, run.stderr[-3000:]
  assert "grit ablation refexp: 1 predictions" in run.stdout
  assert (out / "ablation.zip").is_file() and (out / "ablation" / "params.json").is_file()
  assert sorted(os.listdir(out / "ablation")) == [
    "categorization.json",
    "params.json",
    "refexp.json",
  ]
  metrics = _check_metrics(out / "metrics.json")
  # --num_examples=1: only the sample run is scored; no leaderboard "overall" for a subset.
  assert metrics["refexp.num_samples"] == 1 and metrics["refexp.num_missing_predictions"] == 0
  assert "overall" not in metrics

  bad = _evaluate(f"--checkpoint={checkpoint}", f"--grit_dir={grit_dir}", "--split=validation")
  assert bad.returncode != 0 and "GRIT splits are ablation and test" in bad.stderr


def test_text_log_likelihood_is_the_teacher_forced_score(params):
  """predict's log_likelihood (summed during greedy decoding) equals the score of the same
  tokens as a complete target (generation.score_options: minus the training loss)."""
  config, p = params
  predictor = predictor_lib.Predictor(config, p)
  image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
  features = predictor.features(
    [predict_lib.raw_input("what colour is the circle ?", image)], names=["q"]
  )
  _, tokens, scores = predictor.text_with_scores(features)
  row = tokens[0]
  assert (row != 0).any()
  length = int(np.argmax(row == vocab.EOS_ID)) + 1 if (row == vocab.EOS_ID).any() else len(row)
  assert (row[:length] != 0).all()  # no pad id inside the output: score_options would skip it
  table = np.zeros((1, 1, len(row)), np.int32)
  table[0, 0, :length] = row[:length]
  batch = predictor._model_inputs(features)
  teacher_forced = generation.score_options(predictor.model, predictor.params, batch, table)
  assert scores[0] < 0
  np.testing.assert_allclose(scores[0], float(teacher_forced[0, 0]), rtol=1e-4, atol=1e-3)
  result = predict_lib.predict(predictor, image, "what colour is the circle ?", "vqa")
  assert result["log_likelihood"] == pytest.approx(scores[0], rel=1e-5)
  assert grit_eval._probability(result) == pytest.approx(np.exp(scores[0]))


def test_regression_maps_average_samples(params):
  # Depth and normal maps are the pixel-wise mean of REGRESSION_SAMPLES top-p samples drawn
  # with seeds seed, seed + 1, ...; other image outputs are one sample.
  config, p = params
  predictor = predictor_lib.Predictor(config, p)
  image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
  features = predictor.features(
    [predict_lib.raw_input("What is the depth map of the image ?", image)]
  )
  O = outputs.Output
  for output in (O.DEPTH, O.NORMALS):
    assert outputs.get(output).image_decoding == dict(temperature=1.0, top_p=0.9, num_samples=4)
  for output in (O.SEGMENTATION, O.IMAGE, O.TEXT_MASK):
    assert outputs.get(output).image_decoding["num_samples"] == 1
  singles = [predictor.image(features, seed=7 + k, top_p=0.9) for k in range(3)]
  mean, codes = predictor.image(features, seed=7, top_p=0.9, num_samples=3)
  np.testing.assert_allclose(mean, np.mean([images for images, _ in singles], axis=0), atol=1e-6)
  np.testing.assert_array_equal(codes, singles[0][1])
  assert not np.array_equal(singles[0][1], singles[1][1])  # the samples do differ
  with pytest.raises(ValueError, match="num_samples"):
    predictor.image(features, num_samples=0)
