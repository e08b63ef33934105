"""Tests for unified_io.eval.metrics: hand-computed values and the reference libraries."""

import contextlib
import io
import json
import os

import numpy as np
import pytest

from unified_io.eval import metrics

# ---------------------------------------------------------------------------------------
# VQA
# ---------------------------------------------------------------------------------------


def _answers(n_match, match="two", other="3", total=10):
  return [match] * n_match + [other] * (total - n_match)


@pytest.mark.parametrize(
  "n_match, expected",
  [
    # Leave one annotator out, 10 subsets of 9; each scores min(matches / 3, 1).
    (4, 1.0),  # every subset keeps >= 3 matches
    (3, (3 * (2 / 3) + 7 * 1) / 10),  # 0.9: dropping a matching annotator leaves 2
    (2, (2 * (1 / 3) + 8 * (2 / 3)) / 10),  # 0.6
    (1, (1 * 0 + 9 * (1 / 3)) / 10),  # 0.3
    (0, 0.0),
  ],
)
def test_vqa_subset_average_by_hand(n_match, expected):
  # "two" normalises to "2", so the prediction "2" matches those annotators.
  assert metrics.vqa_accuracy(["2"], [_answers(n_match)]) == pytest.approx(expected)


def test_vqa_hand_values_are_the_expected_numbers():
  assert metrics.vqa_accuracy(["2"], [_answers(3)]) == pytest.approx(0.9)
  assert metrics.vqa_accuracy(["2"], [_answers(2)]) == pytest.approx(0.6)


@pytest.mark.parametrize(
  "prediction, answer",
  [
    ("Yes.", "yes"),
    ("a dog", "dog"),
    ("The Dog!", "dog"),
    ("dont", "don't"),
    ("two", "2"),
    ("black/white", "black white"),
    ("1,000", "1000"),
    ("2.5", "2.5"),
    ("  red\n", "red"),
    ("none", "0"),
  ],
)
def test_vqa_normalisation(prediction, answer):
  assert metrics.normalize_vqa_answer(prediction) == metrics.normalize_vqa_answer(answer)
  assert metrics.vqa_accuracy([prediction], [[answer] * 10]) == 1.0


def test_vqa_official_gt_processing_keeps_raw_number_words():
  # The official script only strips punctuation from gt answers: raw "two" never matches.
  assert metrics.vqa_accuracy(["2"], [_answers(4)], official_gt_processing=True) == 0.0
  assert metrics.vqa_accuracy(["2"], [_answers(4, match="2")], official_gt_processing=True) == 1.0
  # And with unanimous annotators it does not normalise them at all.
  assert metrics.vqa_accuracy(["yes"], [["Yes"] * 10], official_gt_processing=True) == 0.0


def test_vqa_fewer_answers():
  assert metrics.vqa_accuracy(["cat"], [["cat"]]) == 1.0
  assert metrics.vqa_accuracy(["cat"], [["dog"]]) == 0.0
  assert metrics.vqa_accuracy(["cat"], [["cat", "cat", "cat"]]) == 1.0
  # threshold = n - 1 = 2 of the other annotators
  assert metrics.vqa_accuracy(["cat"], [["cat", "cat", "dog"]]) == pytest.approx(
    (0.5 + 0.5 + 1.0) / 3
  )
  assert metrics.vqa_scores(["a", "b"], [["a"] * 10, ["c"] * 10]) == [1.0, 0.0]


def test_vqa_errors_name_the_argument():
  with pytest.raises(ValueError, match="answer_lists"):
    metrics.vqa_accuracy(["a", "b"], [["a"]])
  with pytest.raises(ValueError, match=r"answer_lists\[0\]"):
    metrics.vqa_accuracy(["a"], [[]])


# ---------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------


def test_accuracy_and_f1_by_hand():
  assert metrics.accuracy(["a", "b", "c", "a"], ["a", "b", "a", "a"]) == 0.75
  pred, gold = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
  # tp 2, fp 1, fn 1 -> 4 / 6
  assert metrics.f1(pred, gold) == pytest.approx(2 / 3)
  # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: 2/3
  assert metrics.f1(pred, gold, average="macro") == pytest.approx((0.5 + 2 / 3) / 2)
  assert metrics.f1([0, 0], [0, 0]) == 0.0
  with pytest.raises(ValueError, match="average"):
    metrics.f1(pred, gold, average="micro")
  with pytest.raises(ValueError, match="predictions"):
    metrics.accuracy([1], [1, 2])


# ---------------------------------------------------------------------------------------
# Boxes, masks, dense maps
# ---------------------------------------------------------------------------------------


def test_box_iou_by_hand():
  a = [[0, 0, 10, 10], [0, 0, 2, 2]]
  b = [[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30], [3, 3, 3, 9]]
  iou = metrics.box_iou(a, b)
  assert iou.shape == (2, 4)
  np.testing.assert_allclose(iou[0], [25 / 175, 1.0, 0.0, 0.0])
  np.testing.assert_allclose(iou[1], [0.0, 4 / 100, 0.0, 0.0])
  assert metrics.box_iou([0, 0, 4, 4], [2, 0, 6, 4])[0, 0] == pytest.approx(8 / 24)
  with pytest.raises(ValueError, match="b must be"):
    metrics.box_iou(a, [[1, 2, 3]])


def test_refexp_accuracy():
  gt = [[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]]
  pred = [[0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 10, 4.9], None]  # 1, 0.5, 0.49, miss
  assert metrics.refexp_accuracy(pred, gt) == 0.5
  assert metrics.refexp_accuracy(pred, gt, threshold=0.4) == 0.75
  with pytest.raises(ValueError, match="pred_boxes"):
    metrics.refexp_accuracy(pred[:2], gt)


def test_depth_rmse_by_hand():
  pred = np.array([[1.0, 2.0], [3.0, 4.0]])
  gt = np.ones((2, 2))
  assert metrics.depth_rmse(pred, gt, np.ones((2, 2), bool)) == pytest.approx(np.sqrt(3.5))
  mask = np.array([[True, True], [False, False]])
  assert metrics.depth_rmse(pred, gt, mask) == pytest.approx(np.sqrt(0.5))
  # Default mask: gt > 0 and finite.
  gt_holes = np.array([[1.0, 0.0], [np.nan, 1.0]])
  assert metrics.depth_rmse(pred, gt_holes) == pytest.approx(np.sqrt(9 / 2))
  # Batches average per-image RMSE.
  batch = metrics.depth_rmse(np.stack([pred, gt]), np.stack([gt, gt]))
  assert batch == pytest.approx(np.sqrt(3.5) / 2)
  with pytest.raises(ValueError, match="mask"):
    metrics.depth_rmse(pred, gt, np.ones((3, 2), bool))


def test_normal_angle_error_by_hand():
  degrees = np.array([0.0, 10.0, 20.0, 45.0])
  rad = np.radians(degrees)
  pred = np.stack([np.sin(rad), np.zeros(4), np.cos(rad)], -1).reshape(2, 2, 3) * 3.0
  gt = np.tile([0.0, 0.0, 1.0], (2, 2, 1))
  out = metrics.normal_angle_error(pred, gt)
  assert out["mean"] == pytest.approx(18.75)
  assert out["median"] == pytest.approx(15.0)
  assert out["within_11.25"] == pytest.approx(50.0)
  assert out["within_22.5"] == pytest.approx(75.0)
  assert out["within_30"] == pytest.approx(75.0)
  gt_unlabelled = gt.copy()
  gt_unlabelled[1, 1] = 0.0  # the 45 degree pixel has no label
  assert metrics.normal_angle_error(pred, gt_unlabelled)["mean"] == pytest.approx(10.0)
  mask = np.array([[False, True], [True, True]])
  assert metrics.normal_angle_error(pred, gt, mask)["mean"] == pytest.approx(25.0)


def test_mask_iou_and_segmentation_iou_by_hand():
  a = np.zeros((4, 4), bool)
  a[:2, :2] = True  # 4 px
  b = np.zeros((4, 4), bool)
  b[:2, :] = True  # 8 px
  c = np.zeros((4, 4), bool)
  c[3, 3] = True
  assert metrics.mask_iou(a, b) == pytest.approx(0.5)
  np.testing.assert_allclose(
    metrics.mask_iou(np.stack([a, c]), np.stack([b, c, a])), [[0.5, 0, 1], [0, 1, 0]]
  )
  assert metrics.mask_iou(np.zeros((4, 4)), np.zeros((4, 4))) == 0.0
  # Matched IoUs over (#pred + #missed gt).
  assert metrics.segmentation_iou([a, c], [a, c]) == pytest.approx(1.0)
  assert metrics.segmentation_iou([b], [a, c]) == pytest.approx(0.5 / 2)
  assert metrics.segmentation_iou([a, b, c], [a]) == pytest.approx(1.0 / 3)
  assert metrics.segmentation_iou([], []) == 1.0
  assert metrics.segmentation_iou([a], []) == 0.0
  assert metrics.segmentation_iou([a, c], [b], stuff=True) == pytest.approx(4 / 9)
  with pytest.raises(ValueError, match="mask sizes"):
    metrics.mask_iou(a, np.zeros((3, 3)))


# ---------------------------------------------------------------------------------------
# COCO detection and keypoints against pycocotools on json files
# ---------------------------------------------------------------------------------------


def _pycocotools_stats(tmp_path, dataset, detections, iou_type):
  from pycocotools.coco import COCO
  from pycocotools.cocoeval import COCOeval

  gt_file, dt_file = tmp_path / "gt.json", tmp_path / "dt.json"
  gt_file.write_text(json.dumps(dataset))
  dt_file.write_text(json.dumps(detections))
  with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(str(gt_file))
    dt = gt.loadRes(str(dt_file))
    ev = COCOeval(gt, dt, iou_type)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
  return ev.stats


def _random_box(rng, size=200.0):
  x1, y1 = rng.uniform(0, size * 0.7, 2)
  w, h = rng.uniform(10, size * 0.3, 2)
  return [x1, y1, x1 + w, y1 + h]


def _jitter(rng, box, amount):
  return list(np.asarray(box) + rng.normal(0, amount, 4))


def test_detection_map_matches_pycocotools(tmp_path):
  rng = np.random.default_rng(0)
  names = ["cat", "dog", "car"]
  gt_boxes, gt_labels, pred_boxes, pred_scores, pred_labels = [], [], [], [], []
  dataset = {
    "images": [],
    "annotations": [],
    "categories": [{"id": k + 1, "name": n} for k, n in enumerate(names)],
  }
  detections = []
  for image in range(4):
    boxes = [_random_box(rng) for _ in range(rng.integers(1, 5))]
    labels = list(rng.choice(names, len(boxes)))
    preds = [_jitter(rng, b, 4.0) for b in boxes] + [_random_box(rng) for _ in range(2)]
    preds = [[p[0], p[1], max(p[2], p[0] + 1), max(p[3], p[1] + 1)] for p in preds]
    plabels = labels + list(rng.choice(names, 2))
    plabels[0] = names[(names.index(plabels[0]) + 1) % 3]  # one wrong class
    scores = list(rng.uniform(0, 1, len(preds)))
    gt_boxes.append(boxes), gt_labels.append(labels)
    pred_boxes.append(preds), pred_scores.append(scores), pred_labels.append(plabels)
    dataset["images"].append({"id": image + 1})
    for b, l in zip(boxes, labels):
      dataset["annotations"].append(
        {
          "id": len(dataset["annotations"]) + 1,
          "image_id": image + 1,
          "iscrowd": 0,
          "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
          "area": (b[2] - b[0]) * (b[3] - b[1]),
          "category_id": names.index(l) + 1,
        }
      )
    for b, s, l in zip(preds, scores, plabels):
      detections.append(
        {
          "image_id": image + 1,
          "score": s,
          "category_id": names.index(l) + 1,
          "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
        }
      )
  reference = _pycocotools_stats(tmp_path, dataset, detections, "bbox")
  ours = metrics.detection_map(pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels)
  assert 0.0 < ours["AP"] < 1.0
  assert ours["AP"] == pytest.approx(reference[0])
  assert ours["AP50"] == pytest.approx(reference[1])
  assert ours["AP75"] == pytest.approx(reference[2])


def test_detection_map_perfect_empty_and_errors():
  gt = [np.array([[0, 0, 50, 50], [60, 60, 100, 120]]), np.zeros((0, 4))]
  labels = [[1, 2], []]
  perfect = metrics.detection_map(gt, [[0.9, 0.8], []], labels, gt, labels)
  assert perfect == {
    "AP": pytest.approx(1.0),
    "AP50": pytest.approx(1.0),
    "AP75": pytest.approx(1.0),
  }
  assert metrics.detection_map([[], []], [[], []], [[], []], gt, labels)["AP"] == 0.0
  with pytest.raises(ValueError, match=r"pred_scores\[0\]"):
    metrics.detection_map(gt, [[0.9], []], labels, gt, labels)
  with pytest.raises(ValueError, match="gt_boxes"):
    metrics.detection_map([[]], [[]], [[]], [np.zeros((0, 4))], [[]])


def _pose(rng, box):
  x1, y1, x2, y2 = box
  points = np.stack(
    [
      rng.uniform(x1, x2, 17),
      rng.uniform(y1, y2, 17),
      rng.choice([0, 1, 2], 17, p=[0.2, 0.2, 0.6]),
    ],
    -1,
  )
  points[points[:, 2] == 0, :2] = 0
  return points


def test_keypoint_oks_matches_cocoeval():
  from pycocotools.cocoeval import COCOeval

  rng = np.random.default_rng(1)
  boxes = [[10, 10, 60, 110], [100, 20, 150, 140], [0, 0, 30, 30]]
  gts = [_pose(rng, b) for b in boxes]
  gts[2][:, 2] = 0  # no labelled joints: COCO's box-distance fallback
  gts[2][:, :2] = 0
  preds = [g.copy() for g in gts[:2]]
  preds = [
    np.concatenate([p[:, :2] + rng.normal(0, 3, (17, 2)), np.ones((17, 1))], -1) for p in preds
  ] + [_pose(rng, [0, 0, 40, 40])]
  preds[2][:, 2] = 1
  areas = [40 * 90.0, 2000.0, 900.0]
  ours = metrics.keypoint_oks(np.stack(preds), np.stack(gts), areas, gt_boxes=boxes)

  ev = COCOeval(iouType="keypoints")
  ev._gts = {
    (1, 1): [
      {
        "keypoints": g.reshape(-1).tolist(),
        "area": a,
        "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
      }
      for g, a, b in zip(gts, areas, boxes)
    ]
  }
  ev._dts = {
    (1, 1): [
      {"keypoints": p.reshape(-1).tolist(), "score": 1.0 - 0.1 * i} for i, p in enumerate(preds)
    ]
  }
  ev.params.imgIds, ev.params.catIds = [1], [1]
  reference = ev.computeOks(1, 1)
  np.testing.assert_allclose(ours, reference, rtol=1e-10)
  assert ours[0, 0] > 0.5
  with pytest.raises(ValueError, match="gt_boxes"):
    metrics.keypoint_oks(np.stack(preds), np.stack(gts), areas)
  with pytest.raises(ValueError, match="gt_areas"):
    metrics.keypoint_oks(np.stack(preds), np.stack(gts), areas[:2], gt_boxes=boxes)


def test_keypoint_ap_matches_pycocotools(tmp_path):
  rng = np.random.default_rng(2)
  gt_kps, gt_boxes, gt_areas, pred_kps, pred_scores = [], [], [], [], []
  dataset = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}
  detections = []
  for image in range(3):
    boxes = [_random_box(rng, 400) for _ in range(rng.integers(1, 4))]
    poses = [_pose(rng, b) for b in boxes]
    areas = [(b[2] - b[0]) * (b[3] - b[1]) * 0.6 for b in boxes]
    preds = [
      np.concatenate([p[:, :2] + rng.normal(0, 4, (17, 2)), np.ones((17, 1))], -1) for p in poses
    ]
    preds.append(_pose(rng, _random_box(rng, 400)))
    scores = list(rng.uniform(0, 1, len(preds)))
    gt_kps.append(poses), gt_boxes.append(boxes), gt_areas.append(areas)
    pred_kps.append(preds), pred_scores.append(scores)
    dataset["images"].append({"id": image + 1})
    for p, b, a in zip(poses, boxes, areas):
      dataset["annotations"].append(
        {
          "id": len(dataset["annotations"]) + 1,
          "image_id": image + 1,
          "category_id": 1,
          "iscrowd": 0,
          "keypoints": p.reshape(-1).tolist(),
          "area": a,
          "num_keypoints": int((p[:, 2] > 0).sum()),
          "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
        }
      )
    for p, s in zip(preds, scores):
      detections.append(
        {"image_id": image + 1, "category_id": 1, "score": s, "keypoints": p.reshape(-1).tolist()}
      )
  reference = _pycocotools_stats(tmp_path, dataset, detections, "keypoints")
  ours = metrics.keypoint_ap(pred_kps, pred_scores, gt_kps, gt_boxes, gt_areas)
  assert 0.0 < ours["AP"] <= 1.0
  for k, key in enumerate(["AP", "AP50", "AP75", "APm", "APl"]):
    assert ours[key] == pytest.approx(reference[k]), key


# ---------------------------------------------------------------------------------------
# Captioning against pycocoevalcap
# ---------------------------------------------------------------------------------------

CAPTIONS = [
  "a man riding a horse on a beach",
  "two dogs play in the snow",
  "a plate of food with broccoli",
  "a red bus parked on the street",
]
REFERENCES = [
  ["a man rides a horse along the beach", "a person on a horse near the ocean"],
  ["two dogs playing in snow", "dogs run through the snow together", "two puppies in snow"],
  ["a plate with broccoli and rice", "food on a white plate"],
  ["a red double decker bus on a street", "a bus parked by the road"],
]


def _direct(scorer):
  gts = {i: refs for i, refs in enumerate(REFERENCES)}
  res = {i: [c] for i, c in enumerate(CAPTIONS)}
  with contextlib.redirect_stdout(io.StringIO()):
    return scorer.compute_score(gts, res)[0]


def test_cider_bleu_rouge_match_pycocoevalcap():
  from pycocoevalcap.bleu.bleu import Bleu
  from pycocoevalcap.cider.cider import Cider
  from pycocoevalcap.rouge.rouge import Rouge

  # The inputs are already tokenised, so our tokenisation must leave them unchanged.
  assert all(metrics.tokenize_caption(c) == c for c in CAPTIONS)
  assert metrics.cider(CAPTIONS, REFERENCES) == pytest.approx(_direct(Cider()))
  assert metrics.cider(CAPTIONS, REFERENCES) > 0.1
  assert metrics.rouge_l(CAPTIONS, REFERENCES) == pytest.approx(_direct(Rouge()))
  bleu = metrics.bleu(CAPTIONS, REFERENCES)
  np.testing.assert_allclose([bleu[f"BLEU-{n}"] for n in range(1, 5)], _direct(Bleu(4)))
  # Case and punctuation do not matter after tokenisation.
  shouted = [c.upper() + "." for c in CAPTIONS]
  assert metrics.cider(shouted, REFERENCES) == pytest.approx(_direct(Cider()))


def test_caption_errors_name_the_argument():
  with pytest.raises(ValueError, match="references"):
    metrics.cider(CAPTIONS, REFERENCES[:2])
  with pytest.raises(ValueError, match=r"references\[0\]"):
    metrics.cider(["a"], ["a dog"])


def test_tokenize_caption():
  assert metrics.tokenize_caption("A man's dog doesn't bark.") == "a man 's dog does n't bark"
  assert metrics.tokenize_caption('The "black-and-white" cat, (2.5 kg)!') == (
    "the black-and-white cat -lrb- 2.5 kg -rrb-"
  )


@pytest.mark.skipif(not metrics.java_available(), reason="PTBTokenizer needs Java")
def test_tokenize_caption_agrees_with_ptb_tokenizer():
  from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

  sentences = [
    "A man's dog doesn't bark.",
    "Two people, standing in a kitchen!",
    "A black-and-white photo of a 2.5 ton truck.",
    "It's 5 o'clock; time for tea?",
    'The sign says "STOP" (in red).',
  ]
  with contextlib.redirect_stdout(io.StringIO()):
    ptb = PTBTokenizer().tokenize({i: [{"caption": s}] for i, s in enumerate(sentences)})
  for i, s in enumerate(sentences):
    assert metrics.tokenize_caption(s) == ptb[i][0], s


def test_caption_metrics_reports_omissions():
  out = metrics.caption_metrics(CAPTIONS, REFERENCES, use_java=False)
  assert set(out) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr", "omitted"}
  assert set(out["omitted"]) == {"METEOR", "SPICE"}


# Loading METEOR's paraphrase table takes about a minute, too slow for the default run.
@pytest.mark.skipif(
  not (metrics.java_available() and os.environ.get("UIO_JAVA_METRIC_TESTS")),
  reason="needs Java and UIO_JAVA_METRIC_TESTS=1 (slow)",
)
def test_meteor_with_java():
  same = metrics.meteor(["a man riding a horse"], [["a man riding a horse"]])
  different = metrics.meteor(["a plate of food"], [["a man riding a horse"]])
  assert same > 0.9 and different < 0.3


# ---------------------------------------------------------------------------------------
# GRIT's scorer quirks, as parameters: the default is the usual convention, the parameter
# reproduces GRIT (unified_io/eval/grit/scoring.py passes them).
# ---------------------------------------------------------------------------------------


def test_vqa_max_periods():
  # Periods not followed by a digit are removed; the official script stops after 32.
  answer = "yes" + "." * 35
  assert metrics.normalize_vqa_answer(answer) == "yes"
  assert metrics.normalize_vqa_answer(answer, max_periods=32) == "yes..."
  assert metrics.vqa_scores([answer], [["yes"]]) == [1.0]
  assert metrics.vqa_scores([answer], [["yes"]], leave_one_out=False, max_periods=32) == [0.0]


def test_vqa_leave_one_out():
  # 2 of 4 answers match. Leave one out: the two subsets without a match hold 1 match of 3
  # needed (1/3), the other two hold 2 (2/3): mean 0.5. GRIT: min(2 / 3, 1).
  answers = [["cat", "cat", "dog", "dog"]]
  assert metrics.vqa_scores(["cat"], answers) == [pytest.approx(0.5)]
  assert metrics.vqa_scores(["cat"], answers, leave_one_out=False) == [pytest.approx(2 / 3)]
  # One answer: exact match by default, but only 1/3 of GRIT's threshold of 3.
  assert metrics.vqa_scores(["cat"], [["cat"]]) == [1.0]
  assert metrics.vqa_scores(["cat"], [["cat"]], leave_one_out=False) == [pytest.approx(1 / 3)]


def test_box_iou_union_epsilon():
  box = [0, 0, 10, 10]  # area 100
  assert metrics.box_iou(box, box)[0, 0] == 1.0
  assert metrics.box_iou(box, box, union_epsilon=1e-6)[0, 0] == 100 / (100 + 1e-6)
  assert metrics.box_iou(box, [0, 0, 10, 5], union_epsilon=1e-6)[0, 0] < 0.5
  # Empty union: 0 either way.
  assert metrics.box_iou([1, 1, 1, 1], [1, 1, 1, 1], union_epsilon=1e-6)[0, 0] == 0.0


def test_refexp_strict_and_union_epsilon():
  gt = [[0, 0, 10, 10]]
  half = [[0, 0, 10, 5]]  # IoU exactly 50 / 100
  assert metrics.refexp_accuracy(half, gt) == 1.0  # >= 0.5
  assert metrics.refexp_accuracy(half, gt, strict=True) == 0.0  # GRIT: > 0.5
  assert metrics.refexp_accuracy(half, gt, union_epsilon=1e-6) == 0.0  # 50 / (100 + 1e-6)
  assert metrics.refexp_accuracy([[0, 0, 10, 6]], gt, strict=True, union_epsilon=1e-6) == 1.0


def _corner_masks():
  full = np.zeros((4, 4), bool)
  full[:2, :2] = True  # 4 px
  small = np.zeros((2, 2), bool)
  small[0, 0] = True  # full at half resolution
  return full, small


def test_mask_iou_resize_and_union_epsilon():
  full, small = _corner_masks()
  with pytest.raises(ValueError, match="mask sizes"):
    metrics.mask_iou(small, full)
  # Bilinear 2 -> 4 samples source positions 0, .25, .75, 1 on each axis: weights of the
  # set pixel 1, .75, .25, 0; products >= 0.5 are the 2 x 2 corner (.75 * .75 = .5625).
  np.testing.assert_array_equal(metrics.resize_mask_bilinear(small, (4, 4)), full)
  assert metrics.mask_iou(small, full, resize_a=True) == 1.0
  assert metrics.mask_iou(full, full, union_epsilon=1e-6) == 4 / (4 + 1e-6)
  np.testing.assert_allclose(
    metrics.mask_iou(np.stack([small, ~small]), full[None], resize_a=True), [[1.0], [0.0]]
  )


def test_segmentation_iou_resize_and_union_epsilon():
  full, small = _corner_masks()
  with pytest.raises(ValueError, match="mask sizes"):
    metrics.segmentation_iou([small], [full])
  assert metrics.segmentation_iou([small], [full], resize_pred=True) == 1.0
  assert metrics.segmentation_iou([full], [full], union_epsilon=1e-6) == 4 / (4 + 1e-6)
  # With a second, unmatched gt: 1 / (1 prediction + 1 missed).
  other = np.zeros((4, 4), bool)
  other[3, 3] = True
  assert metrics.segmentation_iou([small], [full, other], resize_pred=True) == 0.5


def test_keypoint_oks_keypoint_box_area():
  gt = np.zeros((17, 3))
  gt[0] = [10, 10, 2]
  gt[1] = [20, 10, 2]
  gt[2] = [10, 30, 1]  # labelled points span 10 x 20 = 200 px^2
  pred = gt.copy()
  pred[0, 0] += 1  # nose (sigma .026) 1 px off; the others exact
  variance = (2 * 0.026) ** 2
  coco = (np.exp(-1 / variance / 400 / 2) + 2) / 3  # the given segment area, 400
  grit = (np.exp(-1 / variance / 200 / 2) + 2) / 3  # the labelled points' box, 200
  assert metrics.keypoint_oks(pred, gt, [400])[0, 0] == pytest.approx(coco)
  assert metrics.keypoint_oks(pred, gt, None, keypoint_box_area=True)[0, 0] == pytest.approx(grit)
  # No labelled keypoint: COCO falls back on the gt box; GRIT's box is undefined -> 0.
  blank = np.zeros((17, 3))
  with pytest.raises(ValueError, match="gt_boxes"):
    metrics.keypoint_oks(pred, blank, [400])
  assert metrics.keypoint_oks(pred, blank, None, keypoint_box_area=True)[0, 0] == 0.0


def test_matched_score_by_hand():
  # Hungarian picks (0, 1) and (1, 0): 0.9 + 0.5 over 3 predictions + 0 missed.
  similarity = [[0.2, 0.9], [0.5, 0.0], [0.0, 0.0]]
  assert metrics.matched_score(similarity) == pytest.approx(1.4 / 3)
  assert metrics.matched_score(np.zeros((0, 0))) == 1.0
  assert metrics.matched_score(np.zeros((2, 0))) == 0.0
