"""COCO keypoint AP and mask AP (unified_io/eval/metrics/coco_ap.py) against hand-derived
values and pycocotools itself, and their evaluation on the COCO 2017 tasks
(unified_io/eval/image_metrics.py, two_stage_keypoints.py) on a tiny builder copy.

The end-to-end tests replace the model's outputs with the ground truth's tokens (so AP must
be 1.0) and with nothing (AP 0.0); one runs the tiny config's random model as it is.

  .venv/bin/python -m pytest -q tests/test_coco_ap.py
"""

import json
import re

import flax.linen as nn
import jax
import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds
from pycocotools import coco as coco_lib
from pycocotools import cocoeval
from pycocotools import mask as mask_utils

from configs import tiny as tiny_config
from tests import test_builder_coco_annotations as release
from unified_io.common import coco_keypoints
from unified_io.common import dense_labels
from unified_io.common import locations
from unified_io.common import vocab
from unified_io.data import pipeline
from unified_io.data.tasks import ext_coco_annotations  # noqa: F401  (registers the tasks)
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision_logic as vt
from unified_io.eval import image_metrics
from unified_io.eval import inference
from unified_io.eval import predictor as predictor_lib
from unified_io.eval import task_eval
from unified_io.eval import two_stage_keypoints
from unified_io.eval.metrics import coco_ap
from unified_io.model import builder as model_lib

# pycocotools 2.0.x's mask.decode under numpy 2: harmless, once per mask.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
K = coco_keypoints.NUM_KEYPOINTS
SIGMA = dict(zip(coco_keypoints.KEYPOINT_NAMES, coco_keypoints.OKS_SIGMAS))
THRESHOLDS = np.arange(10) * 0.05 + 0.5  # COCO's OKS / IoU thresholds .50:.05:.95
RECALL_POINTS = 101  # COCO's interpolation: recall 0, .01, ..., 1


def _person(box, joints, area, crowd=False):
  """One ground-truth person: joints {name: (x, y, v)}, every other joint unlabelled."""
  points, visibility = np.zeros((K, 2)), np.zeros(K, np.int64)
  for name, (x, y, v) in joints.items():
    k = coco_keypoints.KEYPOINT_NAMES.index(name)
    points[k], visibility[k] = (x, y), v
  return dict(box=box, keypoints=points, visibility=visibility, area=area, iscrowd=crowd)


def _persons(*people):
  return {
    "box": np.asarray([p["box"] for p in people], np.float64).reshape(-1, 4),
    "keypoints": np.asarray([p["keypoints"] for p in people]).reshape(-1, K, 2),
    "visibility": np.asarray([p["visibility"] for p in people], np.int64).reshape(-1, K),
    "area": np.asarray([p["area"] for p in people], np.float64),
    "iscrowd": np.asarray([p["iscrowd"] for p in people], bool),
  }


def _pose(person, dx=0.0):
  """A prediction of `person`'s joints moved dx pixels right (unlabelled joints at 0, 0)."""
  pose = np.concatenate([person["keypoints"], np.full((K, 1), 2.0)], axis=1)
  pose[:, 0] += dx
  return pose


def _poses(poses, scores):
  return {"keypoints": np.asarray(poses, np.float64).reshape(-1, K, 3), "score": scores}


NOBODY = _poses([], [])
ALICE = _person([40, 30, 80, 100], {"nose": (50, 40, 2), "left_hip": (60, 80, 2)}, 500.0)
BOB = _person([100, 30, 140, 100], {"nose": (120, 40, 2), "right_ankle": (130, 95, 1)}, 900.0)


def _hand_oks(dx, area, names=("nose", "left_hip")):
  """COCO's OKS of joints all moved dx: mean of exp(-d^2 / (2 area (2 sigma)^2))."""
  return np.mean([np.exp(-(dx**2) / (2 * area * (2 * SIGMA[n]) ** 2)) for n in names])


def _cocoeval(dataset, detections, iou_type):
  """pycocotools as its README uses it, on the same ground truth and results."""
  gt = coco_lib.COCO()
  gt.dataset = json.loads(json.dumps(dataset, default=_jsonable))
  gt.createIndex()
  evaluator = cocoeval.COCOeval(
    gt, gt.loadRes(json.loads(json.dumps(detections, default=_jsonable))), iou_type
  )
  evaluator.evaluate()
  evaluator.accumulate()
  evaluator.summarize()
  return evaluator


def _jsonable(value):
  return value.decode() if isinstance(value, bytes) else value


# ------------------------------------------------------------------------ keypoint metric


def test_perfect_poses_score_ap_one_and_match_pycocotools():
  truth = [_persons(ALICE, BOB), _persons(ALICE)]
  preds = [_poses([_pose(ALICE), _pose(BOB)], [0.9, 0.8]), _poses([_pose(ALICE)], [0.7])]
  ours = coco_ap.keypoint_ap(truth, preds)
  assert ours["AP"] == pytest.approx(1.0) and ours["AR"] == pytest.approx(1.0)
  assert ours["AP50"] == pytest.approx(1.0) and ours["AP75"] == pytest.approx(1.0)
  # Areas 500 and 900 are COCO "small" (< 32^2): no medium or large person to score.
  assert np.isnan(ours["APm"]) and np.isnan(ours["APl"])
  reference = _cocoeval(*coco_ap.keypoint_dataset(truth, preds), "keypoints").stats
  expected = [np.nan if s == -1 else s for s in reference]
  np.testing.assert_allclose([ours[k] for k in coco_ap.KEYPOINT_STATS], expected)


@pytest.mark.parametrize("dx", [1.0, 2.0])
def test_displaced_pose_scores_the_hand_oks_and_its_ap(dx):
  oks = _hand_oks(dx, ALICE["area"])  # dx 1: 0.835, dx 2: 0.572
  truth, preds = [_persons(ALICE)], [_poses([_pose(ALICE, dx)], [1.0])]
  evaluator = coco_ap.evaluate(*coco_ap.keypoint_dataset(truth, preds), "keypoints")
  assert evaluator.ious[(1, coco_ap.PERSON)][0, 0] == pytest.approx(oks)
  # One person, one pose: a hit (precision 1 at recall 1) at each threshold <= OKS, a miss
  # above, so AP is the fraction of the ten thresholds at or under it.
  hand_ap = np.mean(THRESHOLDS <= oks)
  assert hand_ap == {1.0: 0.7, 2.0: 0.2}[dx]
  ours = coco_ap.keypoint_ap(truth, preds)
  assert ours["AP"] == pytest.approx(hand_ap) and ours["AR"] == pytest.approx(hand_ap)
  assert ours["AP50"] == pytest.approx(1.0)
  assert ours["AP75"] == pytest.approx(float(oks >= 0.75))


def test_a_pose_on_a_crowd_region_is_ignored_but_one_on_an_empty_image_is_a_false_positive():
  crowd = _person([0, 0, 30, 30], {}, 400.0, crowd=True)  # COCO crowds have no joints
  inside = np.zeros((K, 3))
  inside[:, :2] = 15.0  # every joint in the crowd box
  # The stray pose outranks the right one: were it a false positive, precision at recall 1
  # would be 1/2 and AP (101-point interpolated) 0.5.
  with_crowd = coco_ap.keypoint_ap(
    [_persons(ALICE, crowd)], [_poses([inside, _pose(ALICE)], [0.9, 0.5])]
  )
  assert with_crowd["AP"] == pytest.approx(1.0)
  on_empty_image = coco_ap.keypoint_ap(
    [_persons(ALICE), _persons()], [_poses([_pose(ALICE)], [0.5]), _poses([inside], [0.9])]
  )
  assert on_empty_image["AP"] == pytest.approx(0.5) and on_empty_image["AR"] == 1.0


def test_a_missed_person_halves_recall():
  ours = coco_ap.keypoint_ap([_persons(ALICE, BOB)], [_poses([_pose(ALICE)], [1.0])])
  assert ours["AR"] == pytest.approx(0.5)
  # Precision 1 up to recall 0.5, none beyond: 51 of COCO's 101 recall points.
  assert ours["AP"] == pytest.approx(51 / RECALL_POINTS)
  nothing = coco_ap.keypoint_ap([_persons(ALICE)], [NOBODY])
  assert nothing["AP"] == 0.0 and nothing["AR"] == 0.0


def test_a_person_without_labelled_joints_is_ignored_ground_truth():
  unlabelled = _person([100, 30, 140, 100], {}, 900.0)
  ours = coco_ap.keypoint_ap([_persons(ALICE, unlabelled)], [_poses([_pose(ALICE)], [1.0])])
  assert ours["AP"] == pytest.approx(1.0) and ours["AR"] == pytest.approx(1.0)


def test_bad_keypoint_inputs_name_the_field():
  with pytest.raises(ValueError, match=r"truth\[0\].*fields of different lengths"):
    coco_ap.keypoint_ap([dict(_persons(ALICE, BOB), area=[1.0])], [NOBODY])
  with pytest.raises(ValueError, match=r"predictions\[0\] keypoints must be \[N, 17, 3\]"):
    coco_ap.keypoint_ap([_persons(ALICE)], [{"keypoints": np.zeros((1, 17, 2)), "score": [1]}])
  with pytest.raises(ValueError, match=r"truth\[0\] has no 'visibility'"):
    coco_ap.keypoint_ap([{"box": [[0, 0, 1, 1]], "keypoints": np.zeros((1, K, 2))}], [NOBODY])
  with pytest.raises(ValueError, match="predictions has 2 images, truth has 1"):
    coco_ap.keypoint_ap([_persons(ALICE)], [NOBODY, NOBODY])


# ---------------------------------------------------------------------------- mask metric

HW = (30, 40)


def _square(x, y, size=10):
  mask = np.zeros(HW, bool)
  mask[y : y + size, x : x + size] = True
  return mask


def _objects(categories, masks, crowd=None, **extra):
  crowd = [False] * len(masks) if crowd is None else crowd
  return dict(
    category=categories, mask=np.asarray(masks, bool).reshape(-1, *HW), iscrowd=crowd, **extra
  )


def _found(categories, masks, scores):
  return dict(category=categories, mask=np.asarray(masks, bool).reshape(-1, *HW), score=scores)


def test_perfect_masks_score_ap_one_and_match_pycocotools():
  truth = [
    _objects(["dog", "cat"], [_square(2, 2), _square(20, 5)]),
    _objects(["dog"], [_square(5, 15)]),
  ]
  preds = [
    _found(["dog", "cat"], [_square(2, 2), _square(20, 5)], [1, 1]),
    _found(["dog"], [_square(5, 15)], [1]),
  ]
  ours = coco_ap.mask_ap(truth, preds)
  assert ours["AP"] == pytest.approx(1.0) and ours["AR100"] == pytest.approx(1.0)
  reference = _cocoeval(*coco_ap.mask_dataset(truth, preds), "segm").stats
  expected = [np.nan if s == -1 else s for s in reference]
  np.testing.assert_allclose([ours[k] for k in coco_ap.MASK_STATS], expected)


def test_a_shifted_mask_scores_the_hand_iou_and_its_ap():
  # 10 x 10 squares 2 pixels apart: intersection 80, union 120, IoU 2/3.
  truth, preds = [_objects(["dog"], [_square(2, 2)])], [_found(["dog"], [_square(4, 2)], [1])]
  evaluator = coco_ap.evaluate(*coco_ap.mask_dataset(truth, preds), "segm")
  assert evaluator.ious[(1, 1)][0, 0] == pytest.approx(2 / 3)
  ours = coco_ap.mask_ap(truth, preds)
  assert ours["AP"] == pytest.approx(np.mean(THRESHOLDS <= 2 / 3)) == pytest.approx(0.4)


def test_a_mask_on_a_crowd_region_is_ignored():
  crowd = _square(20, 10, 15)
  stray = _square(22, 12, 8)  # inside the crowd region: its intersection over its own area is 1
  truth = [_objects(["dog", "dog"], [_square(2, 2), crowd], crowd=[False, True])]
  ours = coco_ap.mask_ap(truth, [_found(["dog", "dog"], [stray, _square(2, 2)], [0.9, 0.5])])
  assert ours["AP"] == pytest.approx(1.0)
  uncrowded = [_objects(["dog"], [_square(2, 2)])]
  ours = coco_ap.mask_ap(uncrowded, [_found(["dog", "dog"], [stray, _square(2, 2)], [0.9, 0.5])])
  assert ours["AP"] == pytest.approx(0.5)


def test_the_wrong_class_and_a_missed_instance():
  truth = [_objects(["dog", "dog"], [_square(2, 2), _square(20, 5)])]
  wrong = coco_ap.mask_ap(truth, [_found(["cat"], [_square(2, 2)], [1])])
  assert wrong["AP"] == 0.0  # the cat has no ground truth: only the dog's AP is averaged
  missed = coco_ap.mask_ap(truth, [_found(["dog"], [_square(2, 2)], [1])])
  assert missed["AR100"] == pytest.approx(0.5) and missed["AP"] == pytest.approx(51 / RECALL_POINTS)


def test_polygon_and_rle_ground_truth():
  """COCO's own segmentation formats: a polygon fills [x1, x2) x [y1, y2); a crowd RLE."""
  polygon = [[2, 2, 12, 2, 12, 12, 2, 12]]
  rle = mask_utils.encode(np.asfortranarray(_square(20, 10, 15).astype(np.uint8)))
  truth = [
    dict(
      category=["dog", "dog"], mask=[polygon, rle], iscrowd=[0, 1], area=[100.0, 225.0], image_hw=HW
    )
  ]
  ours = coco_ap.mask_ap(
    truth, [_found(["dog", "dog"], [_square(22, 12, 8), _square(2, 2)], [0.9, 0.5])]
  )
  assert ours["AP"] == pytest.approx(1.0)
  with pytest.raises(ValueError, match="need 'image_hw'"):
    coco_ap.mask_ap([dict(category=["dog"], mask=[polygon], iscrowd=[0])], [_found([], [], [])])


def test_bad_mask_inputs_name_the_field():
  with pytest.raises(ValueError, match=r"image 0: a mask of shape \(5, 5\)"):
    coco_ap.mask_ap(
      [_objects(["dog"], [_square(2, 2)])],
      [dict(category=["dog"], mask=np.ones((1, 5, 5)), score=[1])],
    )
  with pytest.raises(ValueError, match=r"predictions\[0\]: fields of different lengths"):
    coco_ap.mask_ap(
      [_objects(["dog"], [_square(2, 2)])], [_found(["dog", "cat"], [_square(2, 2)], [1])]
    )


# --------------------------------------------------------- evaluation on the tiny release

# Validation images 63 pixels wide: with the tiny config's 64 location bins a bin is one
# pixel and decodes to its centre, so half-pixel coordinates survive the tokens exactly.
VW, VH = 63, 42
COLOURS = {5: (200, 30, 30), 6: (30, 200, 30), 7: (30, 30, 200)}  # 7: no annotation
VAL_PERSONS = {
  5: [
    (
      51,
      [10.5, 5.5, 20, 35],
      release._kp(nose=(20.5, 8.5, 2), left_shoulder=(15.5, 15.5, 2), right_hip=(25.5, 30.5, 1)),
      0,
    ),
    (52, [35.5, 5.5, 20, 35], release._kp(nose=(45.5, 9.5, 2), left_ankle=(40.5, 38.5, 2)), 0),
    (53, [0, 30, 8, 8], None, 1),  # a crowd region: no joints, an RLE
  ],
  6: [
    (61, [5.5, 2.5, 20, 28], release._kp(nose=(10.5, 5.5, 2), right_knee=(20.5, 25.5, 2)), 0),
    (62, [40, 20, 10, 10], None, 0),  # a person without labelled joints: ignored
  ],
}


def _rect_mask(x1, y1, x2, y2):
  mask = np.zeros((VH, VW), bool)
  mask[y1:y2, x1:x2] = True
  return mask


VAL_OBJECTS = {  # (annotation id, category id, rectangle, crowd)
  5: [(71, 18, (5, 5, 20, 20), 0), (72, 18, (30, 5, 45, 20), 0), (73, 17, (5, 25, 25, 40), 0)],
  6: [(81, 1, (10, 10, 30, 30), 0), (82, 1, (40, 10, 60, 30), 1)],
}


def _rle(mask):
  """COCO's crowd segmentation (uncompressed RLE) of a mask of the validation images."""
  return dict(release._uncompressed_rle(mask), size=[VH, VW])


def _write_validation(root):
  """Replaces the release's val2017 (images and both annotation files) with VAL_*."""
  for path in (root / "val2017").iterdir():
    path.unlink()
  infos = []
  for image_id, colour in COLOURS.items():
    PIL.Image.new("RGB", (VW, VH), colour).save(
      root / "val2017" / release._name(image_id), quality=95
    )
    infos.append(release._info(image_id, VW, VH))
  persons, objects = [], []
  for image_id, rows in VAL_PERSONS.items():
    for ann_id, (x, y, w, h), kp, crowd in rows:
      ann = release._person(ann_id, image_id, [x, y, w, h], kp, crowd=crowd)
      if crowd:
        region = _rect_mask(int(x), int(y), int(x + w), int(y + h))
        ann["segmentation"] = _rle(region)
      persons.append(ann)
  for image_id, rows in VAL_OBJECTS.items():
    for ann_id, category, (x1, y1, x2, y2), crowd in rows:
      if crowd:
        segmentation = _rle(_rect_mask(x1, y1, x2, y2))
      else:
        segmentation = [release._rect(x1, y1, x2, y2)]
      ann = release._object(
        ann_id, image_id, category, [x1, y1, x2 - x1, y2 - y1], segmentation, crowd
      )
      ann["area"] = float((x2 - x1) * (y2 - y1))
      objects.append(ann)
  for name, annotations, categories in (
    ("person_keypoints_val2017.json", persons, [release.KP_CATEGORY]),
    ("instances_val2017.json", objects, release.CATEGORIES),
  ):
    data = dict(info={}, licenses=[], images=infos, annotations=annotations, categories=categories)
    (root / "annotations" / name).write_text(json.dumps(data))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("tfds")
  root = path / "downloads" / "manual" / release.NAME
  release.write_release(root)
  _write_validation(root)
  for config in ("keypoints", "instances"):
    builder = tfds.builder(f"{release.NAME}/{config}", data_dir=str(path))
    builder.download_and_prepare(file_format="array_record")
  return str(path)


@pytest.fixture(scope="module")
def predictor():
  config = tiny_config.get_config()
  params = nn.unbox(model_lib.init_params(model_lib.build(config), jax.random.key(0)))
  return predictor_lib.Predictor(config, params)


def _val_records(data_dir, config):
  """{image id: record} of the validation split (stored in key-hash order, not id order)."""
  task = {"keypoints": "coco_keypoints", "instances": "coco_instance_segmentation"}[config]
  source = pipeline.source(tasks.get(task).builder, "validation", data_dir)
  return {int(r["image/id"]): r for r in (source[i] for i in range(len(source)))}


class GroundTruthModel:
  """Stands in for the predictor's decoders: the tokens of the validation ground truth.

  Stage one (greedy text without a logit mask) answers the image's persons with labelled
  joints as boxes; stage two (the keypoint mask) the joints of the person whose box the
  prompt holds; images the masks of the prompt's class, a palette colour each. The image
  is recognised by its input pixels (each validation image is one colour). perfect=False
  answers nothing: EOS, and black images.
  """

  def __init__(self, predictor, data_dir, perfect=True):
    self.p, self.perfect, self.prompts = predictor, perfect, []
    people = _val_records(data_dir, "keypoints")
    self.persons = {i: image_metrics.keypoint_truth(r) for i, r in people.items()}
    objects = _val_records(data_dir, "instances")
    self.objects = {i: image_metrics.mask_truth(r) for i, r in objects.items()}
    self.ids = sorted(people)
    raws = [inference.raw_input("x", people[i]["image"]) for i in self.ids]
    self.pixels = predictor.features(raws)["image_inputs"]
    self.ctx = tasks.TaskContext(layout=predictor.layout)

  def _image(self, features, row):
    distances = [np.abs(features["image_inputs"][row] - p).mean() for p in self.pixels]
    return self.ids[int(np.argmin(distances))]

  def _labelled(self, image):
    t = self.persons[image]
    return [
      j for j in range(len(t["box"])) if not t["iscrowd"][j] and (t["visibility"][j] > 0).any()
    ]

  def _box_ids(self, box):
    return locations.box_to_location_ids(box, (VH, VW), self.p.layout)

  def _tokens(self, ids):
    out = np.zeros(self.p.config.lengths.text_targets, np.int32)
    ids = list(ids)[: len(out) - 1] + [vocab.EOS_ID]
    out[: len(ids)] = ids
    return out

  def _answer(self, features, row, masked):
    if not self.perfect:
      return self._tokens([])
    if not masked:  # stage one
      image = self._image(features, row)
      boxes = [self._box_ids(self.persons[image]["box"][j]) for j in self._labelled(image)]
      return self._tokens(np.concatenate(boxes) if boxes else [])
    prompt = np.asarray(features["text_inputs"][row])
    asked = prompt[np.asarray(self.p.layout.is_location(prompt))].tolist()
    for image, t in self.persons.items():
      for j in self._labelled(image):
        if self._box_ids(t["box"][j]).tolist() == asked:
          text = vt.keypoints_text(t["keypoints"][j], t["visibility"][j], (VH, VW), self.ctx)
          return self._tokens(self.p.tokenizer.encode(text))
    raise AssertionError(f"no person has the prompt's box {asked}")

  def text_with_scores(self, features, logit_mask_fn=None, **kw):
    rows = range(len(features["text_inputs"]))
    for row in rows:
      self.prompts.append(self.p.decode_text(features["text_inputs"][row]))
    keypoints = logit_mask_fn is self.p.keypoint_mask_fn  # stage two; stage one: box lists
    tokens = np.stack([self._answer(features, row, keypoints) for row in rows])
    scores = np.full(len(tokens), np.log(0.25 if keypoints else 0.5))
    return [self.p.decode_text(t) for t in tokens], tokens, scores

  def image(self, features, seed=0, **kw):
    images = np.zeros((len(features["text_inputs"]), VW, VW, 3), np.float32)
    for row in range(len(images)):
      name = re.search(r'" (.+) "', self.p.decode_text(features["text_inputs"][row])).group(1)
      t = self.objects[self._image(features, row)]
      members = [j for j, c in enumerate(t["category"]) if c == name and not t["iscrowd"][j]]
      if self.perfect:
        for k, j in enumerate(members):
          mask = mask_utils.decode(t["mask"][j]).astype(bool)
          images[row, :VH][mask] = dense_labels.COLOR_VALUES[k]
    return images, None


def _pretend(monkeypatch, predictor, model):
  monkeypatch.setattr(predictor, "text_with_scores", model.text_with_scores)
  monkeypatch.setattr(predictor, "image", model.image)


def test_validation_records_keep_every_image_and_annotation(data_dir):
  persons = {
    i: image_metrics.keypoint_truth(r) for i, r in _val_records(data_dir, "keypoints").items()
  }
  assert {i: len(p["box"]) for i, p in persons.items()} == {5: 3, 6: 2, 7: 0}  # 7: still scored
  assert persons[5]["iscrowd"].tolist() == [False, False, True]
  objects = {i: image_metrics.mask_truth(r) for i, r in _val_records(data_dir, "instances").items()}
  assert objects[5]["category"] == ["dog", "dog", "cat"] and objects[7]["category"] == []
  assert objects[6]["category"] == ["person", "person"]
  crowd = mask_utils.decode(objects[6]["mask"][1])
  np.testing.assert_array_equal(crowd, _rect_mask(40, 10, 60, 30))  # from its RLE
  assert image_metrics.classes_to_ask(objects[5]) == ["cat", "dog"]


def test_two_stage_inference_asks_each_found_box(predictor, data_dir, monkeypatch):
  model = GroundTruthModel(predictor, data_dir)
  _pretend(monkeypatch, predictor, model)
  image = _val_records(data_dir, "keypoints")[5]["image"]
  people = two_stage_keypoints.find_people(predictor, image, seed=0, name="image 5")
  truth = model.persons[5]
  np.testing.assert_allclose(people.boxes, truth["box"][:2])  # the two with joints, exactly
  assert model.prompts[0] == 'Which regions does the text " person " describe ?'
  for box, prompt in zip(people.boxes, model.prompts[1:]):
    assert prompt == inference.make_prompt("keypoints", (VH, VW), box=box, layout=predictor.layout)
  for j in range(2):
    labelled = truth["visibility"][j] > 0
    np.testing.assert_allclose(people.keypoints[j, labelled, :2], truth["keypoints"][j][labelled])
  assert people.localization_log_likelihood == pytest.approx(np.log(0.5))
  np.testing.assert_allclose(people.joint_log_likelihoods, [np.log(0.25)] * 2)
  np.testing.assert_allclose(people.scores(), [np.log(0.5 * 0.25)] * 2)  # both stages


@pytest.mark.slow  # compiles the validation loss of two tasks
def test_evaluation_with_ground_truth_outputs_scores_ap_one(predictor, data_dir, monkeypatch):
  _pretend(monkeypatch, predictor, GroundTruthModel(predictor, data_dir))
  lines = []
  results = task_eval.evaluate(
    predictor,
    ["coco_keypoints", "coco_instance_segmentation"],
    split="validation",
    num_examples=8,
    batch_size=2,
    seed=0,
    data_dir=data_dir,
    max_depth=10.0,
    progress=lines.append,
  )
  keypoints = results["coco_keypoints"].score
  assert keypoints.metric == "OKS" and keypoints.value == pytest.approx(1.0)  # stage two alone
  assert keypoints.extra["COCO keypoint AP"] == pytest.approx(1.0)
  assert keypoints.extra["COCO keypoint AR"] == pytest.approx(1.0)
  assert keypoints.extra["COCO keypoint images"] == 3  # image 7 has nobody and still counts
  masks = results["coco_instance_segmentation"].score
  assert masks.extra["COCO mask AP"] == pytest.approx(1.0) and masks.extra["COCO mask images"] == 3
  assert any("coco_keypoints: COCO keypoint AP 1 " in line for line in lines), lines
  summary = results["coco_keypoints"].as_json()
  assert summary["COCO keypoint AP"] == pytest.approx(1.0)  # into metrics.json


def test_nothing_found_scores_ap_zero(predictor, data_dir, monkeypatch):
  _pretend(monkeypatch, predictor, GroundTruthModel(predictor, data_dir, perfect=False))
  for task, label in (
    ("coco_keypoints", "COCO keypoint"),
    ("coco_instance_segmentation", "COCO mask"),
  ):
    values = image_metrics.evaluate(
      predictor,
      tasks.get(task),
      tasks.get(task).image_metrics[0],
      split="validation",
      num_images=10,
      seed=0,
      data_dir=data_dir,
      progress=lambda line: None,
    )
    assert values[f"{label} AP"] == 0.0 and values[f"{label} images"] == 3


@pytest.mark.slow
def test_the_random_tiny_model_runs_both_image_metrics(predictor, data_dir):
  for task in ("coco_keypoints", "coco_instance_segmentation"):
    values = image_metrics.evaluate(
      predictor,
      tasks.get(task),
      tasks.get(task).image_metrics[0],
      split="validation",
      num_images=2,
      seed=0,
      data_dir=data_dir,
      progress=lambda line: None,
    )
    ap = [v for k, v in values.items() if k.endswith(" AP")]
    assert len(ap) == 1 and 0.0 <= ap[0] <= 1.0


def test_image_metrics_are_declared_and_checked():
  assert tasks.get("coco_keypoints").image_metrics == (tasks.Metric.COCO_KEYPOINT_AP,)
  assert tasks.get("coco_instance_segmentation").image_metrics == (tasks.Metric.COCO_MASK_AP,)
  with pytest.raises(ValueError, match="image metric coco_mask_ap does not suit output keypoints"):
    tasks.Task(
      "bad",
      "sparse_labelling",
      "b",
      lambda *a: {},
      ("p",),
      output="keypoints",
      image_metrics=("coco_mask_ap",),
    )
  with pytest.raises(ValueError, match="unknown metric 'coco_ap'"):
    tasks.Task("bad", "sparse_labelling", "b", lambda *a: {}, ("p",), image_metrics=("coco_ap",))
