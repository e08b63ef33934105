"""GRIT support: sample loading, prompts, submission files and the official metrics.

Every test builds a tiny GRIT folder in tmp_path in the official layout (GRIT/images,
GRIT/samples/{split}/{task}.json) and checks against hand-computed numbers.
"""

import json
import math
import os
import zipfile

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from unified_io.eval.grit import tasks as grit
from unified_io.eval.grit import scoring as gm


def _png(path, hw=(12, 16), value=0):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(np.full(hw + (3,), value, np.uint8)).save(path)


def _rle(mask):
  rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
  return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode()}


def _write_samples(grit_dir, split, task, samples):
  path = os.path.join(grit_dir, "samples", split, f"{task}.json")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(samples, f)
  for s in samples:
    image_id = s.get("image_id") or s.get("input", {}).get("image_id")
    if image_id:
      _png(os.path.join(grit_dir, "images", image_id))


def _gt_sample(
  task,
  example_id,
  output,
  new_src=False,
  new_cpt=False,
  query=None,
  bbox=None,
  options=None,
  concepts=(),
  dist=False,
):
  """One sample in the layout grit_official's evaluate.py reads (input/output/meta)."""
  base = example_id[:-5] if dist else example_id
  image_id = f"coco/test2015/{base}.png"
  if dist:
    image_id = f"distorted/{task}/{image_id}"
  return {
    "input": {
      "example_id": example_id,
      "image_id": image_id,
      "task_name": task,
      "task_query": query,
      "task_bbox": bbox,
      "output_options": options,
    },
    "output": dict(example_id=example_id, **output),
    "meta": {
      "is_new_source": new_src,
      "has_new_concept": new_cpt,
      "is_distorted": dist,
      "data_source": "coco",
      "concepts": [{"lemma": c} for c in concepts],
    },
  }


# Surface normals: four stripes tilted 25 degrees from +z at azimuths 0, 90, 180, 270.
# Neighbouring stripes differ by about 35 degrees (under the 40 degree sharp-edge limit),
# every pair by more than 11.25.
def _stripe_normals(hw=(16, 16)):
  tilt = math.radians(25)
  azimuth = np.radians(90.0 * (np.arange(hw[1]) * 4 // hw[1]))
  n = np.stack(
    [
      np.sin(tilt) * np.cos(azimuth),
      np.sin(tilt) * np.sin(azimuth),
      np.full_like(azimuth, np.cos(tilt)),
    ],
    -1,
  )
  return np.broadcast_to(n, hw + (3,))


def _to_rgb(normals):
  return np.round((normals + 1) / 2 * 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------
# Samples.


def test_load_public_samples_with_skips(tmp_path):
  grit_dir = str(tmp_path / "GRIT")
  good = {
    "example_id": "coco_cat_1",
    "image_id": "coco/test2015/1.png",
    "task_name": "categorization",
    "task_query": None,
    "task_bbox": [1, 2, 8, 9],
    "output_options": "coco_categories",
  }
  samples = [
    good,
    dict(good, example_id="coco_cat_2_dist", image_id="distorted/categorization/x.png"),
    dict(good, example_id=""),  # no id
    dict(good, example_id="a", task_name="vqa"),  # wrong task
    dict(good, example_id="b", task_bbox=None),  # categorization needs a box
    dict(good, example_id="c", task_bbox=[5, 5, 1, 1]),  # x2 < x1
    dict(good),
  ]  # repeated id
  _write_samples(grit_dir, "test", "categorization", samples)
  stats = {}
  loaded = grit.load_samples(grit_dir, "categorization", "test", stats=stats)
  assert [s["example_id"] for s in loaded] == ["coco_cat_1", "coco_cat_2_dist"]
  assert sum(stats.values()) == 5 and stats["repeated example_id"] == 1
  first = loaded[0]
  assert first["gt"] is None and first["task_bbox"] == [1, 2, 8, 9]
  assert first["meta"]["is_distorted"] is False and loaded[1]["meta"]["is_distorted"] is True
  assert first["meta"]["is_new_source"] is None
  path = grit.image_path(grit_dir, first)
  assert path == os.path.join(grit_dir, "images", "coco/test2015/1.png") and os.path.isfile(path)
  with pytest.raises(ValueError, match="sample 2: missing example_id"):
    grit.load_samples(grit_dir, "categorization", "test", strict=True)
  with pytest.raises(ValueError, match="relative"):
    grit.image_path(grit_dir, {"image_id": "/etc/passwd"})


def test_load_samples_file_errors(tmp_path):
  grit_dir = str(tmp_path / "GRIT")
  with pytest.raises(FileNotFoundError, match="samples/ablation/vqa.json"):
    grit.load_samples(grit_dir, "vqa", "ablation")
  path = tmp_path / "GRIT" / "samples" / "ablation" / "vqa.json"
  path.parent.mkdir(parents=True)
  path.write_text("[{")
  with pytest.raises(ValueError, match="vqa.json is not valid JSON"):
    grit.load_samples(grit_dir, "vqa", "ablation")
  path.write_text('{"a": 1}')
  with pytest.raises(ValueError, match="JSON list"):
    grit.load_samples(grit_dir, "vqa", "ablation")
  with pytest.raises(ValueError, match="unknown GRIT task"):
    grit.load_samples(grit_dir, "depth", "ablation")


def test_load_output_options(tmp_path):
  path = tmp_path / "GRIT" / "output_options" / "coco_categories.json"
  path.parent.mkdir(parents=True)
  path.write_text(json.dumps([{"id": 1, "name": "person"}, {"id": 2, "name": "bicycle"}]))
  assert grit.load_output_options(str(tmp_path / "GRIT"), "coco_categories") == [
    "person",
    "bicycle",
  ]


def test_prompts():
  cat = {"task_name": "categorization", "task_bbox": [0, 0, 50, 100], "task_query": None}
  prompt = grit.prompt_for(cat, image_hw=(100, 200))
  # y1 x1 y2 x2 bins over the longer side (200): 0 0 499 249, as <extra_id_{100 + bin}>.
  assert prompt == (
    'What is the category of region " <extra_id_100> <extra_id_100> '
    '<extra_id_599> <extra_id_349> " ?'
  )
  assert grit.prompt_for({"task_name": "vqa", "task_query": "What Color?"}) == "what color?"
  assert grit.prompt_for({"task_name": "refexp", "task_query": "man in red"}) == (
    'Which region does the text " man in red " describe ?'
  )
  assert grit.prompt_for({"task_name": "segmentation", "task_query": "sky (Stuff)"}) == (
    'What is the segmentation of " sky " ?'
  )
  assert grit.prompt_for({"task_name": "normal", "task_query": None}) == (
    "What is the surface normal of the image ?"
  )
  assert grit.prompt_for({"task_name": "keypoint", "task_query": "person"}) == (
    'Which regions does the text " person " describe ?'
  )
  assert grit.keypoint_region_prompt([0, 0, 200, 100], (100, 200)).startswith(
    'Find the human joints in the region " <extra_id_100> <extra_id_100> <extra_id_599> '
  )


# ---------------------------------------------------------------------------------------
# Submission files.


def test_write_predictions_all_tasks(tmp_path):
  out = str(tmp_path / "ablation")
  mask = np.zeros((6, 8), np.uint8)
  mask[1:4, 2:6] = 1
  normal = _to_rgb(_stripe_normals((4, 4)))
  preds = {
    "categorization": [{"example_id": "a", "confidence": np.float32(0.5), "words": "cat"}],
    "vqa": [{"example_id": "a", "confidence": 1, "words": "2", "extra": 1}],
    "localization": [{"example_id": "a", "confidence": 0.1, "bboxes": np.array([[1, 2, 3, 4]])}],
    "refexp": [{"example_id": "a", "confidence": 0.1, "bboxes": [[1.5, 2, 3, 4]]}],
    "segmentation": [{"example_id": "a", "confidence": 0.3, "masks": [mask, _rle(mask)]}],
    "keypoint": [{"example_id": "a", "confidence": 0.3, "points": [np.ones((17, 2))]}],
    "normal": [{"example_id": "a", "confidence": 0.3, "normal": normal}],
  }
  for task, p in preds.items():
    path = grit.write_predictions(out, task, p)
    assert path == os.path.join(out, f"{task}.json")
    (row,) = json.load(open(path))
    assert set(row) == {"example_id", "confidence", grit.PREDICTION_FIELD[task]}
  (seg,) = json.load(open(os.path.join(out, "segmentation.json")))
  for rle in seg["masks"]:
    assert rle["size"] == [6, 8]
    np.testing.assert_array_equal(
      mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()}), mask
    )
  (kp,) = json.load(open(os.path.join(out, "keypoint.json")))
  assert kp["points"] == [[1.0, 1.0, 2.0] * 17]
  (sn,) = json.load(open(os.path.join(out, "normal.json")))
  assert sn["normal"] == "0.png"
  np.testing.assert_array_equal(
    np.asarray(Image.open(os.path.join(out, "normals", "0.png"))), normal
  )
  assert json.load(open(os.path.join(out, "localization.json")))[0]["bboxes"] == [[1, 2, 3, 4]]

  grit.write_params(out, 241.4)
  assert json.load(open(os.path.join(out, "params.json"))) == {"params_in_millions": 241}
  zip_path = grit.zip_submission(out)
  assert zip_path == out + ".zip"
  names = zipfile.ZipFile(zip_path).namelist()
  assert "ablation/params.json" in names and "ablation/normals/0.png" in names


@pytest.mark.parametrize(
  "task,pred,match",
  [
    ("vqa", {"example_id": "a", "words": "x"}, "needs 'confidence'"),
    ("vqa", {"example_id": "a", "confidence": 1.5, "words": "x"}, "outside"),
    ("vqa", {"example_id": "a", "confidence": float("nan"), "words": "x"}, "finite"),
    ("vqa", {"example_id": "", "confidence": 1, "words": "x"}, "example_id"),
    ("vqa", {"example_id": "a", "confidence": 1, "words": 3}, "string"),
    ("refexp", {"example_id": "a", "confidence": 1, "bboxes": [[1, 2, 3]]}, r"\[x1"),
    ("keypoint", {"example_id": "a", "confidence": 1, "points": [[1, 2]]}, "17"),
    ("normal", {"example_id": "a", "confidence": 1, "normal": np.zeros((4, 4, 3))}, "uint8"),
    ("normal", {"example_id": "a", "confidence": 1, "normal": "missing.png"}, "not in"),
  ],
)
def test_write_predictions_rejects(tmp_path, task, pred, match):
  with pytest.raises(ValueError, match=match):
    grit.write_predictions(str(tmp_path / "ablation"), task, [pred])


def test_write_predictions_rejects_repeated_ids(tmp_path):
  pred = {"example_id": "a", "confidence": 1, "words": "x"}
  with pytest.raises(ValueError, match="repeated"):
    grit.write_predictions(str(tmp_path), "vqa", [pred, pred])


# ---------------------------------------------------------------------------------------
# Per-sample metrics.


def test_box_metrics():
  gt = [0, 0, 10, 10]
  assert gm.box_iou(gt, [0, 0, 10, 4]) == pytest.approx(0.4)
  assert gm.box_iou(gt, [0, 0, 10, 10]) == pytest.approx(1.0)
  assert gm.box_iou(gt, [5, 5, 5, 9]) == 0.0  # degenerate box
  # refexp: IoU 0.4 fails, 0.6 passes, only the first predicted box counts.
  assert gm.refexp_score([[0, 0, 10, 4]], [gt]) == 0.0
  assert gm.refexp_score([[0, 0, 10, 6]], [gt]) == 1.0
  assert gm.refexp_score([[50, 50, 60, 60], gt], [gt]) == 0.0
  assert gm.refexp_score([], [gt]) == 0.0
  # localization: exact match + a false positive + a missed box -> 1 / (2 preds + 1 miss).
  gts = [[0, 0, 10, 10], [20, 20, 30, 30]]
  assert gm.localization_score([[0, 0, 10, 10], [50, 50, 60, 60]], gts) == pytest.approx(1 / 3)
  assert gm.localization_score([[0, 0, 10, 6], [20, 20, 30, 30]], gts) == pytest.approx(0.8)
  assert gm.localization_score([], []) == 1.0
  assert gm.localization_score([[0, 0, 1, 1]], []) == 0.0


def test_grit_quirks_are_passed_to_the_shared_metrics():
  # Each GRIT quirk by hand; tests/test_metrics.py shows the parameters' two behaviours.
  box = [0, 0, 10, 10]
  assert gm.box_iou(box, box) == 100 / (100 + 1e-6)  # +1e-6 on every union
  assert gm.refexp_score([[0, 0, 10, 5]], [box]) == 0.0  # IoU 0.5 is not > 0.5
  assert gm.normalize_vqa_answer("yes" + "." * 35) == "yes..."  # at most 32 periods
  assert gm.vqa_score("cat", ["cat", "cat", "dog", "dog"]) == pytest.approx(2 / 3)
  full = np.zeros((4, 4), np.uint8)
  full[:2, :2] = 1
  assert gm.mask_iou(full, full) == 4 / (4 + 1e-6)
  assert gm.segmentation_score([full[::2, ::2]], [full], stuff=False) == 4 / (4 + 1e-6)
  assert gm.keypoint_oks(np.ones(51), np.zeros(51)) == 0.0  # no labelled gt keypoint


def test_vqa_metric():
  gts = ["Two", "2", "two.", "3", "three"]
  assert gm.vqa_score("two", gts) == 1.0
  assert gm.vqa_score("Three!", gts) == pytest.approx(2 / 3)
  assert gm.vqa_score("a dog", ["dog"]) == pytest.approx(1 / 3)
  assert gm.vqa_score("dont", ["don't"] * 3) == 1.0
  assert gm.normalize_vqa_answer("It's 3.5, the man") == "it's 3.5 man"
  assert gm.normalize_vqa_answer("yes-no") == "yes no"
  assert gm.normalize_vqa_answer("1,000 cats") == "1000 cats"


def test_categorization_metric():
  assert gm.categorization_score("cat", ["cat"]) == 1.0
  assert gm.categorization_score("Cat", ["cat"]) == 0.0  # GRIT compares raw strings


def test_segmentation_metric():
  a = np.zeros((8, 8), np.uint8)
  a[:4, :4] = 1
  b = np.zeros((8, 8), np.uint8)
  b[4:, 4:] = 1
  assert gm.segmentation_score([a], [a], stuff=False) == pytest.approx(1.0)
  half = a.copy()
  half[:, 2:] = 0
  assert gm.segmentation_score([half], [a], stuff=False) == pytest.approx(0.5)
  # Things: one prediction covering both instances has IoU 0.5 with each; one match, one
  # miss -> 0.5 / (1 + 1). Stuff merges both sides into one mask -> 1.
  both = a | b
  assert gm.segmentation_score([both], [a, b], stuff=False) == pytest.approx(0.25)
  assert gm.segmentation_score([both], [a, b], stuff=True) == pytest.approx(1.0)
  assert gm.segmentation_score([], [a], stuff=True) == 0.0
  # A prediction at half resolution is resized to the ground truth's size first.
  assert gm.mask_iou(a[::2, ::2], a) == pytest.approx(1.0)


def test_keypoint_oks_hand_computed():
  gt = np.zeros((17, 3))
  gt[0] = [10, 10, 2]  # nose
  gt[1] = [20, 10, 2]  # left eye
  gt[2] = [10, 30, 1]  # right eye: labelled though not visible, still scored
  pred = gt.copy()
  pred[0, 0] += 1  # nose 1 px off
  pred[5] = [500, 500, 2]  # unlabelled in the ground truth: ignored
  # Scale: the labelled points' box, 10 x 20 = 200 px^2. Nose sigma 0.026:
  # e = d^2 / (2 sigma)^2 / area / 2 = 1 / 0.002704 / 200 / 2.
  nose = math.exp(-1 / 0.002704 / 400)
  oks = (nose + 1 + 1) / 3
  assert gm.keypoint_oks(pred.ravel(), gt.ravel()) == pytest.approx(oks)
  assert oks == pytest.approx(0.79890, abs=1e-5)
  far = gt.copy()
  far[:, :2] += 1000  # OKS underflows to 0: an unmatched false positive
  assert gm.keypoint_score([pred.ravel(), far.ravel()], [gt.ravel()]) == pytest.approx(oks / 2)
  assert gm.keypoint_score([], [gt.ravel()]) == 0.0


def test_normal_metric():
  gt_normals = _stripe_normals()
  gt_rgb = _to_rgb(gt_normals)
  assert gm.normal_valid_mask(gt_rgb).all()
  assert gm.normal_score(gt_rgb, gt_rgb) == pytest.approx(1.0)
  # A global 90 degree turn about the view axis maps each stripe onto the next; identity
  # scores 0 but RANSAC recovers the rotation.
  turned = gt_normals @ np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]).T
  assert gm.normal_score(_to_rgb(turned), gt_rgb) == pytest.approx(1.0)
  # A constant prediction can at best be rotated onto one stripe of four.
  flat = _to_rgb(np.broadcast_to(np.array([0.0, 0, 1]), gt_normals.shape))
  assert gm.normal_score(flat, gt_rgb) == pytest.approx(0.25)
  # Fill colours mark pixels without ground truth; the jump from a fill colour's "normal"
  # to the stripes also masks row 3 where it exceeds 40 degrees (a sharp edge).
  holes = gt_rgb.copy()
  holes[0, :] = 0
  holes[1, :] = 128
  holes[2, :] = 201
  valid = gm.normal_valid_mask(holes)
  assert not valid[:3].any() and not valid[3].all() and valid[4:].all()
  with pytest.raises(ValueError, match="differ in size"):
    gm.normal_score(gt_rgb[:8], gt_rgb)


# ---------------------------------------------------------------------------------------
# evaluate: aggregation as evaluate.py does it.


def _categorization_dir(tmp_path):
  grit_dir = str(tmp_path / "GRIT")
  kw = dict(bbox=[0, 0, 4, 4], options="coco_categories")
  samples = [
    _gt_sample("categorization", "c0", {"words": ["cat"]}, concepts=["cat"], **kw),
    _gt_sample("categorization", "c1", {"words": ["dog"]}, new_cpt=True, concepts=["dog"], **kw),
    _gt_sample("categorization", "c2", {"words": ["bird"]}, new_src=True, concepts=["bird"], **kw),
    _gt_sample(
      "categorization", "c3", {"words": ["cow"]}, new_src=True, new_cpt=True, concepts=["cow"], **kw
    ),
    _gt_sample("categorization", "c0_dist", {"words": ["cat"]}, dist=True, concepts=["cat"], **kw),
  ]
  _write_samples(grit_dir, "ablation", "categorization", samples)
  preds = [
    {"example_id": "c0", "confidence": 0.9, "words": "cat"},
    {"example_id": "c1", "confidence": 0.5, "words": "dog"},
    {"example_id": "c2", "confidence": 0.2, "words": "horse"},
    {"example_id": "c3", "confidence": 1.0, "words": "cow"},
    {"example_id": "c0_dist", "confidence": 0.5, "words": "dog"},
  ]
  return grit_dir, preds


def test_evaluate_partitions_hand_computed(tmp_path):
  grit_dir, preds = _categorization_dir(tmp_path)
  groups = {"cat": ["animals"], "dog": ["animals"], "bird": ["birds", "animals"]}
  out = grit.evaluate(grit_dir, preds, "categorization", "ablation", lemma2groups=groups)
  # Scores: c0 1, c1 1, c2 0, c3 1, c0_dist 0.
  expected = {
    "acc.any.sameSrc.cat": 100,
    "acc.any.newSrc.cat": 50,
    "acc.any.agg.cat": 75,
    "acc.any.sameCpt.cat": 50,
    "acc.any.newCpt.cat": 100,
    "acc.any.dist.cat": 0,
    "acc.any.undist.cat": 100,
    "acc.any.deldist.cat": 100,
    "acc.any.pooled.cat": 60,
    "conf.any.sameSrc.cat": 70,
    "inf.any.sameSrc.cat": 70,
    "misinf.any.newSrc.cat": 10,
    "sa.any.newSrc.cat": 90,
    "rmse.any.newSrc.cat": math.sqrt((20**2 + 0) / 2),
    # agg of rmse averages the two mean squared errors: c0 10^2, c1 50^2 | c2 20^2, c3 0.
    "rmse.any.agg.cat": math.sqrt(((10**2 + 50**2) / 2 + (20**2) / 2) / 2),
    # Group "animals": sameSrc c0, c1 (100), newSrc c2 (0).
    "acc.animals.agg.cat": 50,
  }
  for key, value in expected.items():
    assert out[key + ".mean"] == pytest.approx(value), key
  assert out["acc.any.sameSrc.cat.cnt"] == 2 and out["acc.any.dist.cat.cnt"] == 1
  assert "acc.birds.agg.cat.mean" not in out  # no sameSrc bird sample
  assert "rmse.any.deldist.cat.mean" not in out
  assert out["num_samples"] == 5 and out["num_missing_predictions"] == 0

  # A missing prediction scores 0 and is counted.
  out = grit.evaluate(grit_dir, preds[1:], "categorization")
  assert out["num_missing_predictions"] == 1
  assert out["acc.any.sameSrc.cat.mean"] == pytest.approx(50)


def test_evaluate_needs_ground_truth(tmp_path):
  grit_dir = str(tmp_path / "GRIT")
  _write_samples(
    grit_dir,
    "test",
    "vqa",
    [
      {
        "example_id": "v0",
        "image_id": "vg/0.png",
        "task_name": "vqa",
        "task_query": "what?",
        "task_bbox": None,
        "output_options": None,
      }
    ],
  )
  with pytest.raises(ValueError, match="no ground truth"):
    grit.evaluate(grit_dir, [], "vqa", "test")


def _perfect_submission(tmp_path):
  """Two samples per task (one sameSrc, one newSrc) and predictions equal to the truth."""
  grit_dir = str(tmp_path / "GRIT")
  square = np.zeros((12, 16), np.uint8)
  square[2:6, 3:9] = 1
  other = np.zeros((12, 16), np.uint8)
  other[7:11, 10:15] = 1
  person = np.zeros((17, 3))
  person[:5] = [[4, 2, 2], [5, 1, 2], [3, 1, 2], [6, 3, 1], [2, 3, 1]]
  normals = _to_rgb(_stripe_normals((12, 16)))
  for i in range(2):
    _png(os.path.join(grit_dir, "images", "normals_gt", f"{i}.png"))
    Image.fromarray(normals).save(os.path.join(grit_dir, "images", "normals_gt", f"{i}.png"))
  outputs = {
    "categorization": [{"words": ["cat"]}, {"words": ["dog"]}],
    "localization": [{"bboxes": [[1, 1, 5, 5], [6, 6, 9, 9]]}, {"bboxes": []}],
    "vqa": [{"words": ["yes"] * 10}, {"words": ["2"] * 3 + ["3"] * 7}],
    "refexp": [{"bboxes": [[0, 0, 6, 6]]}, {"bboxes": [[2, 2, 8, 9]]}],
    "segmentation": [{"masks": [_rle(square), _rle(other)]}, {"masks": [_rle(square)]}],
    "keypoint": [{"points": [person.ravel().tolist()]}, {"points": []}],
    "normal": [{"out_image_name": "normals_gt/0.png"}, {"out_image_name": "normals_gt/1.png"}],
  }
  queries = {
    "categorization": None,
    "localization": "cat",
    "vqa": "what?",
    "refexp": "left cat",
    "segmentation": "grass (Stuff)",
    "keypoint": "person",
    "normal": None,
  }
  sub = str(tmp_path / "sub" / "ablation")
  for task, outs in outputs.items():
    samples = [
      _gt_sample(
        task,
        f"{task}{i}",
        o,
        new_src=bool(i),
        query=queries[task],
        bbox=[0, 0, 4, 4] if task == "categorization" else None,
        options="coco_categories" if task == "categorization" else None,
      )
      for i, o in enumerate(outs)
    ]
    _write_samples(grit_dir, "ablation", task, samples)
    key = grit.PREDICTION_FIELD[task]
    preds = []
    for i, o in enumerate(outs):
      value = {
        "words": lambda: o["words"][-1],
        "bboxes": lambda: o["bboxes"],
        "masks": lambda: o["masks"],
        "points": lambda: o["points"],
        "normal": lambda: normals,
      }[key]()
      preds.append({"example_id": f"{task}{i}", "confidence": 1.0, key: value})
    grit.write_predictions(sub, task, preds)
  return grit_dir, sub


def test_perfect_predictions_score_100(tmp_path):
  grit_dir, sub = _perfect_submission(tmp_path)
  for task, abbrev in grit.TASK_ABBREVIATIONS.items():
    out = grit.evaluate(grit_dir, sub, task)
    assert out[f"acc.any.agg.{abbrev}.mean"] == pytest.approx(100, rel=1e-5), task
    assert out[f"rmse.any.agg.{abbrev}.mean"] == pytest.approx(0, abs=1e-2), task
  full = grit.evaluate_submission(grit_dir, sub)
  assert full["overall"] == pytest.approx(100, rel=1e-5)
  assert full["vqa.num_samples"] == 2
  # A task left out of the submission counts 0 in the across-task means.
  os.remove(os.path.join(sub, "vqa.json"))
  partial = grit.evaluate_submission(grit_dir, sub)
  assert partial["overall"] == pytest.approx(600 / 7, rel=1e-5)


def test_evaluate_imperfect_submission_file(tmp_path):
  grit_dir, sub = _perfect_submission(tmp_path)
  # refexp: first sample's box moved to IoU 0.4 fails; the second still passes.
  grit.write_predictions(
    sub,
    "refexp",
    [
      {"example_id": "refexp0", "confidence": 0.5, "bboxes": [[0, 0, 6, 2.4]]},
      {"example_id": "refexp1", "confidence": 0.5, "bboxes": [[2, 2, 8, 9]]},
    ],
  )
  out = grit.evaluate(grit_dir, os.path.join(sub, "refexp.json"), "refexp")
  assert out["acc.any.sameSrc.ref.mean"] == 0 and out["acc.any.newSrc.ref.mean"] == 100
  assert out["acc.any.agg.ref.mean"] == pytest.approx(50)
  # segmentation (things would need both instances; stuff merges them): one merged mask.
  merged = np.zeros((12, 16), np.uint8)
  merged[2:6, 3:9] = 1
  merged[7:11, 10:15] = 1
  square = merged.copy()
  square[7:] = 0
  out = grit.evaluate(
    grit_dir,
    [
      {"example_id": "segmentation0", "confidence": 1, "masks": [merged]},
      {"example_id": "segmentation1", "confidence": 1, "masks": [square, merged]},
    ],
    "segmentation",
  )
  # Sample 1: stuff merges the two predictions into `merged`, IoU 24 / 44 with the square.
  assert out["acc.any.sameSrc.seg.mean"] == pytest.approx(100, rel=1e-6)
  assert out["acc.any.newSrc.seg.mean"] == pytest.approx(100 * 24 / 44, rel=1e-6)
