"""Batched GRIT prediction (unified_io/eval/grit/batched.py, batching.py and
inference.predict_batch) against the one-at-a-time runner, the reference.

The model is configs/tiny.py with random parameters. Every sample has its own image (size
and pixels) and query, so a batch that mixed up, dropped or padded rows wrongly would
change the submission. Equal means: the same example ids in the same order and the same
fields (text, boxes, masks, keypoints, normal-image pixels) exactly; confidences equal in
log space to 1e-6 relative (a batch sums a log-likelihood in another float order,
batched.py's docstring).

  .venv/bin/python -m pytest -q tests/test_grit_batched.py
"""

import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import ml_collections
import numpy as np
import pytest
from PIL import Image

from configs import tiny as tiny_config
from unified_io.common import locations
from unified_io.common import vocab
from unified_io.eval import evaluators
from unified_io.eval import inference
from unified_io.eval import predictor as predictor_lib
from unified_io.eval.grit import batching
from unified_io.eval.grit import runner as grit_eval
from unified_io.eval.grit import tasks as grit
from unified_io.model import builder as model_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Two label sets of different sizes and option lengths: categorization batches by label set.
LABEL_SETS = {"animals": ["cat", "dog", "bird"], "vehicles": ["car", "fire truck", "bus", "van"]}
BROKEN = "broken/vqa2.png"  # the third VQA sample's image is not an image
SIZES = ((12, 16), (20, 14), (16, 16), (9, 24), (14, 10))
QUERIES = {
  "localization": ("cat", "dog", "red car", "bird", "cup"),
  "vqa": ("What colour is it?", "how many?", "Is it day?", "what is left?", "Why?"),
  "refexp": ("the left cat", "a dog", "the top one", "small bird", "big cup"),
  "segmentation": ("cat", "grass (Stuff)", "sky (Stuff)", "dog", "road (Stuff)"),
}


def _image(path, hw, seed):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  rng = np.random.default_rng(seed)
  Image.fromarray(rng.integers(0, 256, hw + (3,), dtype=np.uint8)).save(path)


def grit_folder(root, n=5):
  """n public-layout samples per task (no ground truth), each with its own image."""
  grit_dir = os.path.join(root, "GRIT")
  os.makedirs(os.path.join(grit_dir, "output_options"))
  for name, labels in LABEL_SETS.items():
    with open(os.path.join(grit_dir, "output_options", f"{name}.json"), "w") as f:
      json.dump(labels, f)
  for t, task in enumerate(grit.GRIT_TASKS):
    samples = []
    for i in range(n):
      hw = SIZES[i % len(SIZES)]
      image_id = f"coco/{task}{i}.png"
      if task == "vqa" and i == 2:
        image_id = BROKEN
        os.makedirs(os.path.join(grit_dir, "images", "broken"), exist_ok=True)
        with open(os.path.join(grit_dir, "images", BROKEN), "wb") as f:
          f.write(b"not a png")
      else:
        _image(os.path.join(grit_dir, "images", image_id), hw, seed=100 * t + i)
      sample = dict(example_id=f"{task}{i}", image_id=image_id, task_name=task)
      if task in QUERIES:
        sample["task_query"] = QUERIES[task][i % len(QUERIES[task])]
      if task == "keypoint":
        sample["task_query"] = "person"
      if task == "categorization":
        sample["task_bbox"] = [1, 2, hw[1] - 1 - i % 5, hw[0] - 1]
        sample["output_options"] = ("animals", "vehicles", "animals", "animals", "vehicles")[i % 5]
      samples.append(sample)
    path = grit.samples_path(grit_dir, task, "ablation")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
      json.dump(samples, f)
  return grit_dir


def _normal_pixels(split_dir, row):
  return np.asarray(Image.open(os.path.join(split_dir, "normals", row["normal"])))


def assert_same_submission(reference_dir, batched_dir, tasks, limit=None):
  """limit: the batched run predicted only the first `limit` samples of each task."""
  for task in tasks:
    want, got = grit.load_predictions(reference_dir, task), grit.load_predictions(batched_dir, task)
    want = want[:limit]
    assert [r["example_id"] for r in got] == [r["example_id"] for r in want], task
    for a, b in zip(want, got):
      key = grit.PREDICTION_FIELD[task]
      if task == "normal":
        np.testing.assert_array_equal(
          _normal_pixels(batched_dir, b), _normal_pixels(reference_dir, a)
        )
      else:
        assert b[key] == a[key], (task, a["example_id"])
      np.testing.assert_allclose(
        np.log(max(b["confidence"], 1e-300)),
        np.log(max(a["confidence"], 1e-300)),
        rtol=1e-6,
        atol=1e-6,
        err_msg=f"{task} {a['example_id']}",
      )


@pytest.fixture(scope="module")
def predictor():
  config = tiny_config.get_config()
  params = nn.unbox(model_lib.init_params(model_lib.build(config), jax.random.key(0)))
  return predictor_lib.Predictor(config, params)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, predictor):
  """The GRIT folder and the one-at-a-time runner's submission of it (all seven tasks)."""
  root = tmp_path_factory.mktemp("grit_batched")
  grit_dir = grit_folder(str(root))
  lines = []
  split_dir, _ = grit_eval.predict_grit(
    predictor, grit_dir, "ablation", grit.GRIT_TASKS, str(root / "one"), progress=lines.append
  )
  return grit_dir, split_dir, lines


# ------------------------------------------------------------------------ batch mechanics


def test_buckets_hand_on_full_batches_per_key_in_order():
  runs = []
  buckets = batching.Buckets(2, lambda key, items: runs.append((key, list(items))))
  for i, key in enumerate("abaab"):
    buckets.add(key, i)
  assert runs == [("a", [0, 2]), ("b", [1, 4])]  # each run as soon as its key has two
  buckets.flush()
  assert runs[2:] == [("a", [3])]
  buckets.flush()
  assert len(runs) == 3  # nothing left twice


def test_placement_pads_with_the_first_row_and_shards(predictor):
  place = batching.Placement(predictor, 3)
  assert place.rows == 3  # one device here; eight: the sharded test below
  raws = [inference.raw_input(p, np.full((8, 8, 3), 40 * i, np.uint8)) for i, p in enumerate("ab")]
  features = predictor.features(raws)
  padded = place(features)
  for key, value in features.items():
    value_out = np.asarray(padded[key])
    assert value_out.shape == (3,) + value.shape[1:], key
    np.testing.assert_array_equal(value_out[:2], value)
    np.testing.assert_array_equal(value_out[2], value[0])  # a copy of a real row
  assert isinstance(padded["text_inputs"], jax.Array)
  assert padded["text_inputs"].sharding.spec == jax.sharding.PartitionSpec("data")
  assert isinstance(padded["text_targets"], np.ndarray)  # not a model input: left on host
  with pytest.raises(ValueError, match="a batch has 4 rows; it must have 1 to 3"):
    place(predictor.features(raws * 2))
  with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
    batching.Placement(predictor, 0)
  with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
    grit_eval.predict_grit(predictor, "/nonexistent", tasks=(), batch_size=0)


class _Log:
  main = True

  def __init__(self):
    self.lines = []

  def line(self, text):
    self.lines.append(text)

  def scalars(self, step, values):
    del step, values


def test_grit_evaluator_runs_batches_of_its_batch_size(tmp_path, predictor, monkeypatch):
  (tmp_path / "grit" / "samples").mkdir(parents=True)

  def build(**grit_settings):
    config = tiny_config.get_config()
    config.evals = ml_collections.ConfigDict(
      {"grit": dict(grit_dir=str(tmp_path / "grit"), tasks="vqa", **grit_settings)}
    )
    return evaluators.build(config, str(tmp_path))

  assert build()[0].settings.batch_size == 16
  with pytest.raises(evaluators.EvaluatorError, match="grit.batch_size must be an int >= 1, got 0"):
    build(batch_size=0)
  (evaluator,) = build(batch_size=4)
  seen = {}
  monkeypatch.setattr(
    evaluators.grit_runner, "predict_grit", lambda *a, **kw: seen.update(kw) or ("out", {})
  )
  evaluator.run(predictor.params, 7, _Log())
  assert seen["batch_size"] == 4


@pytest.mark.slow
def test_evaluate_cli_refuses_a_bad_batch_size(tmp_path):
  (tmp_path / "grit" / "samples").mkdir(parents=True)
  run = subprocess.run(
    [
      sys.executable,
      "-m",
      "unified_io.evaluate",
      "--benchmark=grit",
      "--config=configs/tiny.py",
      f"--checkpoint={tmp_path}",
      f"--grit_dir={tmp_path / 'grit'}",
      "--batch_size=0",
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
  )
  assert run.returncode != 0 and "--batch_size must be >= 1, got 0" in run.stderr


# ------------------------------------------------------------------ against the reference


@pytest.mark.slow
def test_batched_submission_equals_one_at_a_time(tmp_path, predictor, reference):
  grit_dir, reference_dir, reference_lines = reference
  lowerings = []

  def count(event, duration, **kw):
    if event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
      lowerings.append(duration)

  lines = []
  # Batches of 2 over 5 samples: full ones and a padded last one; categorization's label
  # sets 3 + 2 samples; VQA's unreadable third image skipped between two batches.
  split_dir, _ = grit_eval.predict_grit(
    predictor,
    grit_dir,
    "ablation",
    grit.GRIT_TASKS,
    str(tmp_path / "batched"),
    progress=lines.append,
    batch_size=2,
  )
  assert_same_submission(reference_dir, split_dir, grit.GRIT_TASKS)
  assert len(grit.load_predictions(split_dir, "vqa")) == 4
  skipped = [line for line in lines if "skipped vqa vqa2" in line]
  assert len(skipped) == 1 and BROKEN in skipped[0]
  assert [line for line in reference_lines if "skipped vqa" in line] == skipped

  # Another sample count (every batch padded) compiles nothing new: one shape per function.
  jax.monitoring.register_event_duration_secs_listener(count)
  try:
    grit_eval.predict_grit(
      predictor,
      grit_dir,
      "ablation",
      grit.GRIT_TASKS,
      str(tmp_path / "batched_one"),
      limit=1,
      progress=lambda _: None,
      batch_size=2,
    )
  finally:
    jax.monitoring.unregister_event_duration_listener(count)
  assert lowerings == []
  # A sample alone in a batch of padding is predicted as it was beside another.
  assert_same_submission(
    reference_dir, str(tmp_path / "batched_one" / "ablation"), grit.GRIT_TASKS, 1
  )


@pytest.mark.slow
def test_predict_batch_rows_are_predict_alone(predictor):
  rng = np.random.default_rng(1)
  images = [rng.integers(0, 256, hw + (3,), dtype=np.uint8) for hw in SIZES[:3]]
  prompts = ["what is this ?", "how many dogs ?", "is it red ?"]
  place = batching.Placement(predictor, 4)  # one padded row
  batch = inference.predict_batch(
    place.predictor, images, prompts, "vqa", names=["a", "b", "c"], place=place
  )
  assert len(batch) == 3
  for image, prompt, got in zip(images, prompts, batch):
    want = inference.predict(predictor, image, prompt, "vqa")
    assert got.keys() == want.keys()
    for key in want:
      if key != "log_likelihood":
        np.testing.assert_equal(got[key], want[key], err_msg=key)
    np.testing.assert_allclose(got["log_likelihood"], want["log_likelihood"], rtol=1e-6)
  with pytest.raises(ValueError, match="The prompt of b is empty"):
    inference.predict_batch(predictor, images[:2], ["x", " "], "vqa", names=["a", "b"])
  with pytest.raises(ValueError, match="2 images but 1 prompts"):
    inference.predict_batch(predictor, images[:2], ["x"], "vqa")


# --------------------------------------------------------------------- keypoint stage two

VALUES = (0, 60, 120, 180, 240)  # keypoint sample i: a plain image of VALUES[i]
PEOPLE = (2, 0, 3, 1, 2)  # and the people stage one "finds" in it


def _keypoint_folder(root):
  grit_dir = os.path.join(root, "GRIT")
  samples = []
  for i, value in enumerate(VALUES):
    image_id = f"kp/{i}.png"
    os.makedirs(os.path.join(grit_dir, "images", "kp"), exist_ok=True)
    Image.fromarray(np.full((12, 16, 3), value, np.uint8)).save(
      os.path.join(grit_dir, "images", image_id)
    )
    samples.append(dict(example_id=f"kp{i}", image_id=image_id, task_query="person"))
  path = grit.samples_path(grit_dir, "keypoint", "ablation")
  os.makedirs(os.path.dirname(path))
  with open(path, "w") as f:
    json.dump(samples, f)
  return grit_dir


@pytest.mark.slow
def test_keypoint_people_queue_across_batches(tmp_path, predictor, monkeypatch):
  """Stage one made to find PEOPLE[i] boxes in sample i (a random model finds none);
  stage two is the real model. Batches of 2: stage-two rows 2 + 3 | 1 + 2 queue across
  stage-one batches and end in a padded batch."""
  grit_dir = _keypoint_folder(str(tmp_path))
  levels = np.array(
    [
      predictor.features([inference.raw_input("x", np.full((12, 16, 3), v, np.uint8))])[
        "image_inputs"
      ].mean()
      for v in VALUES
    ]
  )
  real = predictor_lib.Predictor.text_with_scores
  layout = predictor.layout

  def stage_one_tokens(n_people):
    ids = []
    for k in range(n_people):
      box = [1 + 2 * k, 1, 8 + 2 * k, 10]
      ids += list(locations.box_to_location_ids(box, (12, 16), layout))
    ids = np.array(ids + [vocab.EOS_ID], np.int32)
    return np.pad(ids, (0, predictor.config.lengths.text_targets - len(ids)))

  def text_with_scores(self, features, max_len=None, method="greedy", num_beams=4, **kw):
    if kw.get("logit_mask_fn") is self.keypoint_mask_fn:  # stage two: the real model
      return real(self, features, max_len, method, num_beams, **kw)
    means = np.asarray(features["image_inputs"]).mean(axis=(1, 2, 3))
    people = [PEOPLE[int(np.argmin(np.abs(levels - m)))] for m in means]
    tokens = np.stack([stage_one_tokens(n) for n in people])
    return [self.decode_text(t) for t in tokens], tokens, np.full(len(tokens), np.log(0.5))

  monkeypatch.setattr(predictor_lib.Predictor, "text_with_scores", text_with_scores)
  dirs = {}
  for batch_size in (1, 2):
    dirs[batch_size], _ = grit_eval.predict_grit(
      predictor,
      grit_dir,
      "ablation",
      ["keypoint"],
      str(tmp_path / f"b{batch_size}"),
      progress=lambda _: None,
      batch_size=batch_size,
    )
  assert_same_submission(dirs[1], dirs[2], ["keypoint"])
  rows = grit.load_predictions(dirs[2], "keypoint")
  assert [len(r["points"]) for r in rows] == list(PEOPLE)
  assert all(len(person) == 51 for r in rows for person in r["points"])
  assert rows[1]["confidence"] == pytest.approx(0.5)  # nobody found: stage one's alone
  assert all(0 < r["confidence"] < 0.5 for r in rows if r["points"])


# ------------------------------------------------------------------ eight devices, sharded

_SHARDED = """
import json, sys
import flax.linen as nn, jax, ml_collections
from configs import tiny as tiny_config
from unified_io.common import mesh as mesh_lib
from unified_io.eval import predictor as predictor_lib
from unified_io.eval.grit import batching, runner as grit_eval
from unified_io.model import builder as model_lib
assert len(jax.local_devices()) == 8
config = tiny_config.get_config()
params = nn.unbox(model_lib.init_params(model_lib.build(config), jax.random.key(0)))
predictor = predictor_lib.Predictor(config, params)
place = batching.Placement(predictor, 3)
# Parameters already on a (data 4, model 2) mesh of these devices (the trainer's) stay put.
trainer_mesh = mesh_lib.make_mesh(ml_collections.ConfigDict(dict(model=2, data=-1)))
replicated = jax.sharding.NamedSharding(trainer_mesh, jax.sharding.PartitionSpec())
placed = jax.device_put(params, replicated)
in_place = batching.Placement(predictor_lib.Predictor(config, placed), 3)
print(json.dumps(dict(rows=place.rows, devices=len(place.mesh.devices.flat),
                      trainer_rows=in_place.rows, kept=in_place.predictor.params is placed)))
grit_eval.predict_grit(predictor, sys.argv[1], "ablation", sys.argv[3].split(","), sys.argv[2],
                       progress=lambda _: None, batch_size=3)
"""


@pytest.mark.slow
def test_sharded_over_eight_devices_equals_one_at_a_time(tmp_path, reference):
  grit_dir, reference_dir, _ = reference
  tasks = ["vqa", "segmentation"]  # a plain SPMD decoder; the vmap + shard_map image one
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
  env["JAX_PLATFORMS"] = "cpu"
  run = subprocess.run(
    [sys.executable, "-c", _SHARDED, grit_dir, str(tmp_path / "sharded"), ",".join(tasks)],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
  )
  assert run.returncode == 0, run.stderr[-3000:]
  # batch_size 3 on 8 devices: 8 rows a call, one per device; on the data axis (4) of a
  # trainer's (4, 2) mesh, 4 rows.
  assert json.loads(run.stdout.strip().splitlines()[-1]) == {
    "rows": 8,
    "devices": 8,
    "trainer_rows": 4,
    "kept": True,
  }
  assert_same_submission(reference_dir, str(tmp_path / "sharded" / "ablation"), tasks)
