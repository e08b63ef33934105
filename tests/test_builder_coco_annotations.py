"""uio_coco2017: a tiny copy of COCO 2017's keypoint and instance annotation files, in their
format, is built into ArrayRecord files; the records match the files, the tasks' prompts and
targets match hand-written strings and masks, the awkward cases (crowd RLE and multi-polygon
masks, persons without keypoints, unlabelled joints, boxes outside the image, images without
annotations) go where the docs say, a missing release file is named, and a perfect keypoint
prediction on a built record scores OKS ~1."""

import collections
import json
import types

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds
from pycocotools import mask as mask_utils

from configs import tiny as tiny_config
from unified_io.data import show
from unified_io.common import locations
from unified_io.common import text_tokenizer
from unified_io.data import pipeline
from unified_io.data.builders import coco_annotations
from unified_io.data.builders import common
from unified_io.data.tasks import ext_coco_annotations  # noqa: F401  (registers the tasks)
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision_logic as vt
from unified_io.eval import outputs

CTX = tasks.TaskContext()
NAME = coco_annotations.NAME
W, H = 32, 24  # every test image
MISSING = vt.KEYPOINT_MISSING_TOKEN
JOINTS = (
  "nose left_eye right_eye left_ear right_ear left_shoulder right_shoulder left_elbow "
  "right_elbow left_wrist right_wrist left_hip right_hip left_knee right_knee left_ankle "
  "right_ankle"
).split()


def _name(image_id):
  return f"{image_id:012d}.jpg"


def _info(image_id, width=W, height=H):
  return dict(
    id=image_id, file_name=_name(image_id), width=width, height=height, license=1, coco_url=""
  )


def _rect(x1, y1, x2, y2):
  """A polygon around pixels x1..x2-1, y1..y2-1 (pycocotools fills [x1, x2) x [y1, y2))."""
  return [x1, y1, x2, y1, x2, y2, x1, y2]


def _mask(*rects):
  mask = np.zeros((H, W), bool)
  for x1, y1, x2, y2 in rects:
    mask[max(y1, 0) : y2, max(x1, 0) : x2] = True
  return mask


def _uncompressed_rle(mask):
  """COCO's crowd segmentation: run lengths over the column-major pixels, zeros first."""
  runs, current, n = [], False, 0
  for value in mask.flatten(order="F"):
    if value != current:
      runs.append(n)
      current, n = value, 0
    n += 1
  return {"counts": runs + [n], "size": [H, W]}


def _kp(**joints):
  """51 numbers: the named joints (x, y, v), every other joint unlabelled (0, 0, 0)."""
  flat = []
  for name in JOINTS:
    flat += list(joints.get(name, (0, 0, 0)))
  return flat


def _person(ann_id, image_id, bbox, keypoints=None, crowd=0, segmentation=None):
  keypoints = keypoints or [0] * 51
  return dict(
    id=ann_id,
    image_id=image_id,
    category_id=1,
    bbox=bbox,
    area=float(bbox[2] * bbox[3]) / 2,
    iscrowd=crowd,
    segmentation=segmentation or [_rect(0, 0, 2, 2)],
    keypoints=keypoints,
    num_keypoints=sum(v > 0 for v in keypoints[2::3]),
  )


def _object(ann_id, image_id, category_id, bbox, segmentation, crowd=0):
  return dict(
    id=ann_id,
    image_id=image_id,
    category_id=category_id,
    bbox=bbox,
    area=10.0,
    iscrowd=crowd,
    segmentation=segmentation,
  )


P1 = _kp(nose=(5, 4, 2), left_eye=(6, 5, 1), left_ankle=(7, 14, 2))  # others unlabelled
P2 = _kp(nose=(25, 12, 2), right_hip=(30, 22, 2))
CROWD = _mask((20, 5, 30, 9))
CATEGORIES = [
  dict(id=1, name="person", supercategory="person"),
  dict(id=17, name="cat", supercategory="animal"),
  dict(id=18, name="dog", supercategory="animal"),
]
KP_CATEGORY = dict(CATEGORIES[0], keypoints=JOINTS, skeleton=[[16, 14], [14, 12]])

# Hand masks of the instances of image 1 (train), by annotation id.
MASKS = {
  21: _mask((2, 3, 12, 15)),
  22: _mask((14, 12, 18, 16), (24, 14, 28, 20)),  # two polygons: one dog, occluded
  23: CROWD,
  24: _mask((14, 2, 18, 6)),  # its 4-number polygon is dropped
  25: _mask((26, 0, 32, 4)),  # the polygon reaches outside the image: clipped
}


def write_release(root):
  """annotations/*.json, train2017/ and val2017/ under root (= <manual_dir>/uio_coco2017)."""
  (root / "annotations").mkdir(parents=True, exist_ok=True)
  colours = {1: (200, 40, 40), 2: (40, 200, 40), 3: (40, 40, 200), 4: (90, 90, 90)}
  for image_id, colour in colours.items():
    (root / "train2017").mkdir(exist_ok=True)
    PIL.Image.new("RGB", (W, H), colour).save(root / "train2017" / _name(image_id), quality=95)
  (root / "val2017").mkdir(exist_ok=True)
  for image_id in (5, 6):
    PIL.Image.new("L", (W, H), 120).save(root / "val2017" / _name(image_id), quality=95)
  # 7: a PNG under a .jpg name (re-encoded as an RGB JPEG); 8: another size than the JSON's.
  PIL.Image.new("RGBA", (W, H), (1, 2, 3, 4)).save(root / "val2017" / _name(7), format="PNG")
  PIL.Image.new("RGB", (16, 16)).save(root / "val2017" / _name(8), quality=95)
  train_images = [_info(i) for i in (4, 3, 2, 1)]  # any order: records are in id order
  val_images = [_info(i) for i in (5, 6, 7, 8)]

  def write(name, images, annotations, categories):
    info = {"description": "tiny COCO 2017", "version": "1.0", "year": 2017}
    data = dict(info=info, licenses=[], images=images, annotations=annotations)
    (root / "annotations" / name).write_text(json.dumps(dict(data, categories=categories)))

  write(
    "person_keypoints_train2017.json",
    train_images,
    [
      _person(12, 1, [1, 1, 5, 5]),  # num_keypoints 0: stored, never drawn
      _person(11, 1, [2, 3, 10, 12], P1),
      _person(13, 1, [20, 5, 10, 4], crowd=1, segmentation=_uncompressed_rle(CROWD)),
      _person(14, 2, [20, 10, 20, 20], P2),  # the box reaches outside the image
      _person(15, 3, [0, 0, 4, 4]),  # image 3 has only a person without keypoints
      _person(16, 99, [0, 0, 4, 4], P1),  # an image the file does not list
    ],
    [KP_CATEGORY],
  )
  write(
    "person_keypoints_val2017.json",
    val_images,
    [
      _person(31, 5, [4, 4, 8, 8], _kp(nose=(6, 6, 2))),
      _person(32, 7, [40, 30, 5, 5], _kp(nose=(6, 6, 2))),  # wholly outside the image
    ],
    [KP_CATEGORY],
  )
  write(
    "instances_train2017.json",
    train_images,
    [
      _object(21, 1, 1, [2, 3, 10, 12], [_rect(2, 3, 12, 15)]),
      _object(22, 1, 18, [14, 12, 14, 8], [_rect(14, 12, 18, 16), _rect(24, 14, 28, 20)]),
      _object(23, 1, 1, [20, 5, 10, 4], _uncompressed_rle(CROWD), crowd=1),
      _object(24, 1, 18, [14, 2, 4, 4], [[14, 2, 18, 2], _rect(14, 2, 18, 6)]),
      _object(25, 1, 17, [26, -2, 10, 6], [_rect(26, -2, 36, 4)]),
      _object(26, 1, 5, [0, 0, 4, 4], [_rect(0, 0, 4, 4)]),  # category 5 is not listed
      _object(27, 2, 17, [0, 0, 8, 8], _uncompressed_rle(_mask((0, 0, 8, 8))), crowd=1),
    ],
    CATEGORIES,
  )
  write(
    "instances_val2017.json",
    val_images,
    [_object(41, 5, 18, [4, 4, 8, 8], [_rect(4, 4, 12, 12)])],
    CATEGORIES,
  )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("tfds")
  write_release(path / "downloads" / "manual" / NAME)
  for config in ("keypoints", "instances"):
    builder = tfds.builder(f"{NAME}/{config}", data_dir=str(path))
    builder.download_and_prepare(file_format="array_record")
  return str(path)


def records(data_dir, config, split="train"):
  source = pipeline.source(f"{NAME}/{config}", split, data_dir)
  return {int(r["image/id"]): r for r in (source[i] for i in range(len(source)))}


def run(task, record, seed=0):
  return tasks.get(task).preprocess(record, np.random.default_rng(seed), CTX)


def skip_reason(task, record):
  with pytest.raises(tasks.SkipExample) as info:
    run(task, record)
  return str(info.value)


def box_text(box):
  return vt.box_text(np.asarray(box, np.float64), (H, W), CTX)


def point_text(x, y):
  return locations.point_to_text((x, y), (H, W), CTX.layout)


def test_tasks_are_registered_on_the_configs():
  for name, builder, group, metric, output in (
    ("coco_keypoints", "keypoints", "sparse_labelling", "keypoint_oks", "keypoints"),
    (
      "coco_instance_segmentation",
      "instances",
      "dense_labelling",
      "segmentation_iou",
      "segmentation",
    ),
    (
      "coco_instance_segmentation_generation",
      "instances",
      "image_synthesis",
      "image_psnr",
      "image",
    ),
  ):
    task = tasks.get(name)
    assert (task.builder, task.group, task.size) == (f"{NAME}/{builder}", group, None)
    assert (task.metric.value, task.output.value) == (metric, output)
    assert dict(task.splits) == {"train": "train", "validation": "validation"}


def test_keypoint_records(data_dir):
  # Train: image 3 (only a person without keypoints) and 4 (none) are left out.
  train = records(data_dir, "keypoints")
  assert sorted(train) == [1, 2]
  # Validation keeps every image, image 6 without annotations too.
  assert sorted(records(data_dir, "keypoints", "validation")) == [5, 6, 7]
  one = train[1]
  assert one["id"] == b"1" and one["image/filename"] == b"000000000001.jpg"
  assert one["image"].shape == (H, W, 3)
  persons = one["persons"]
  assert list(persons["id"]) == [11, 12, 13]  # annotation-id order
  np.testing.assert_array_equal(persons["box"][0], [2, 3, 12, 15])
  assert list(persons["iscrowd"]) == [False, False, True]
  assert list(persons["num_keypoints"]) == [3, 0, 0]
  assert persons["area"][0] == pytest.approx(60.0)
  assert persons["keypoints"].shape == (3, 17, 2) and persons["visibility"].shape == (3, 17)
  np.testing.assert_array_equal(persons["keypoints"][0][[0, 1, 15]], [[5, 4], [6, 5], [7, 14]])
  assert persons["visibility"][0].tolist() == [2, 1] + [0] * 13 + [2, 0]
  np.testing.assert_array_equal(train[2]["persons"]["box"][0], [20, 10, 40, 30])  # as released
  assert len(records(data_dir, "keypoints", "validation")[6]["persons"]["id"]) == 0


def test_keypoint_task(data_dir):
  train = records(data_dir, "keypoints")
  for seed in range(4):  # only person 11 can be drawn: 12 has no keypoints, 13 is a crowd
    raw = run("coco_keypoints", train[1], seed)
    box = box_text([2, 3, 12, 15])
    assert raw["prompt"] == f'Find the human joints in the region " {box} " .'
    missing = f"{MISSING} {MISSING} 1"
    joints = [f"{point_text(5, 4)} 3", f"{point_text(6, 5)} 2"] + [missing] * 13
    joints += [f"{point_text(7, 14)} 3", missing]
    assert raw["target_text"] == " ".join(joints)
  meta = raw["meta"]
  assert meta["person_id"] == 11 and meta["area"] == pytest.approx(60.0)
  assert meta["example_id"] == "1" and meta["image_hw"] == (H, W)
  np.testing.assert_array_equal(meta["box"], [2, 3, 12, 15])
  # Person 14's box runs past the image's right and bottom edges: clipped in the prompt.
  clipped = run("coco_keypoints", train[2])
  assert (
    clipped["prompt"] == f'Find the human joints in the region " {box_text([20, 10, 32, 24])} " .'
  )
  assert clipped["target_text"].split()[-3:] == [MISSING, MISSING, "1"]
  val = records(data_dir, "keypoints", "validation")
  assert run("coco_keypoints", val[5])["target_text"].startswith(f"{point_text(6, 6)} 3 ")
  assert skip_reason("coco_keypoints", val[6]) == "no person in the image"
  reason = "no person with a valid box and labelled keypoints"
  assert skip_reason("coco_keypoints", val[7]) == reason  # its box lies outside the image
  persons = dict(train[1]["persons"])
  persons["visibility"] = persons["visibility"].copy()
  persons["visibility"][0, 3] = 5
  assert "visibility outside" in skip_reason("coco_keypoints", dict(train[1], persons=persons))
  persons = dict(train[1]["persons"])
  persons["keypoints"] = persons["keypoints"].copy()
  persons["keypoints"][0, 0] = [50, 4]
  bad = dict(train[1], persons=persons)
  assert skip_reason("coco_keypoints", bad) == "a labelled keypoint lies outside the image"


def test_a_perfect_keypoint_prediction_scores_oks_one(data_dir):
  tokenizer = text_tokenizer.TextTokenizer("tokenizers/uio_tiny_2k.model", 512)
  task = tasks.get("coco_keypoints")
  raws = [run("coco_keypoints", records(data_dir, "keypoints")[i]) for i in (1, 2)]
  preds = [
    {"text": "", "tokens": np.asarray(tokenizer.encode(r["target_text"]), np.int32)} for r in raws
  ]
  ctx = outputs.Context(tokenizer.layout, tokenizer.decode, max_depth=10.0)
  ex = types.SimpleNamespace(raws=raws, features={})
  score = outputs.get(task.output).scorers[task.metric](ex, preds, ctx)
  assert score.value == pytest.approx(1.0, abs=0.05) and score.baseline < score.value


def test_instance_records(data_dir):
  train = records(data_dir, "instances")
  assert sorted(train) == [1]  # image 2 holds only a crowd, 3 and 4 nothing
  assert sorted(records(data_dir, "instances", "validation")) == [5, 6, 7]
  objects = train[1]["objects"]
  # 26's category (5) is not in the file's categories: dropped.
  assert list(objects["id"]) == [21, 22, 23, 24, 25]
  assert [c.decode() for c in objects["category"]] == ["person", "dog", "person", "dog", "cat"]
  assert list(objects["category_id"]) == [1, 18, 1, 18, 17]
  assert list(objects["iscrowd"]) == [False, False, True, False, False]
  np.testing.assert_array_equal(objects["box"][4], [26, -2, 36, 4])  # as released
  assert objects["mask"].shape == (5, H, W, 1)
  assert set(np.unique(objects["mask"])) == {0, 255}
  for k, ann_id in enumerate(objects["id"]):
    np.testing.assert_array_equal(objects["mask"][k, ..., 0] > 0, MASKS[ann_id], str(ann_id))
  val = records(data_dir, "instances", "validation")
  assert val[5]["image"].shape == (H, W, 3)  # a greyscale JPEG, decoded to 3 channels
  np.testing.assert_array_equal(val[5]["objects"]["mask"][0, ..., 0] > 0, _mask((4, 4, 12, 12)))
  assert len(val[6]["objects"]["id"]) == 0
  assert val[7]["image"].shape == (H, W, 3)  # the PNG, re-encoded as an RGB JPEG
  assert 8 not in val  # its file is 16 x 16, not the annotations' 32 x 24: skipped


def _colour_of(image, mask):
  """The one colour the target paints over `mask`."""
  colours = np.unique(image[mask].reshape(-1, 3), axis=0)
  assert len(colours) == 1, colours
  return tuple(colours[0])


def test_instance_segmentation(data_dir):
  one = records(data_dir, "instances")[1]
  seen = set()
  for seed in range(12):
    raw = run("coco_instance_segmentation", one, seed)
    name = raw["meta"]["class_name"]
    seen.add(name)
    assert raw["prompt"] == f'What is the segmentation of " {name} " ?'
    members = {"dog": [22, 24], "cat": [25]}[name]
    target = raw["target_image"]
    assert target.shape == (H, W, 3) and raw["target_image_resize"] == "nearest"
    union = np.any([MASKS[i] for i in members], axis=0)
    assert (target[~union] == 0).all()  # black everywhere else: the persons too
    colours = {_colour_of(target, MASKS[i]) for i in members}
    assert len(colours) == len(members) and (0.0, 0.0, 0.0) not in colours
    np.testing.assert_array_equal(raw["meta"]["masks"], [MASKS[i] for i in members])
  # "person" is never asked for: a crowd region of persons would be black in its target.
  assert seen == {"dog", "cat"}
  val = records(data_dir, "instances", "validation")
  assert run("coco_instance_segmentation", val[5])["meta"]["class_name"] == "dog"
  assert skip_reason("coco_instance_segmentation", val[6]) == "no object with a valid box"
  objects = dict(one["objects"], mask=one["objects"]["mask"][:, :10])
  reason = skip_reason("coco_instance_segmentation", dict(one, objects=objects))
  assert reason == f"masks (10, {W}) do not match the image ({H}, {W})"
  objects = dict(
    one["objects"], category=np.array([b"person", b"dog", b"person", b"dog", b"unicorn"], object)
  )
  reason = skip_reason("coco_instance_segmentation", dict(one, objects=objects))
  assert reason == "categories not among COCO's 80: ['unicorn']"


def test_instance_segmentation_generation(data_dir):
  one = records(data_dir, "instances")[1]
  raw = run("coco_instance_segmentation_generation", one)
  pairs = raw["prompt"].split('" ', 1)[1].rsplit(' "', 1)[0].split(" , ")
  assert raw["prompt"].startswith('What is the complete image? Segmentation color: " ')
  assert [p.split(" : ")[1] for p in pairs] == ["person", "dog", "dog", "cat"]  # no crowd
  assert [p.split(" : ")[0] for p in pairs] == raw["meta"]["colors"]
  np.testing.assert_array_equal(raw["target_image"], vt.to_float(one["image"]))
  instance_map = raw["image"]
  crowd_only = MASKS[23] & ~np.any([MASKS[i] for i in (21, 22, 24, 25)], axis=0)
  assert crowd_only.any() and (instance_map[crowd_only] == 0).all()  # the crowd is not painted
  colours = {_colour_of(instance_map, MASKS[i]) for i in (21, 22, 24, 25)}
  assert len(colours) == 4 and (0, 0, 0) not in colours


def test_missing_release_files_are_named(tmp_path):
  root = tmp_path / "downloads" / "manual" / NAME
  write_release(root)
  (root / "annotations" / "instances_val2017.json").unlink()
  builder = tfds.builder(f"{NAME}/instances", data_dir=str(tmp_path))
  with pytest.raises(common.MissingReleaseFile, match=r"annotations/instances_val2017\.json"):
    builder.download_and_prepare(file_format="array_record")
  (root / "train2017" / _name(2)).unlink()
  builder = tfds.builder(f"{NAME}/keypoints", data_dir=str(tmp_path))
  with pytest.raises(common.MissingReleaseFile, match=r"train2017/000000000002\.jpg"):
    builder.download_and_prepare(file_format="array_record")
  with pytest.raises(common.MissingReleaseFile, match=NAME):
    tfds.builder(f"{NAME}/keypoints", data_dir=str(tmp_path / "empty")).download_and_prepare(
      file_format="array_record"
    )


def test_decode_mask_cases():
  counts = collections.Counter()
  rle = _uncompressed_rle(CROWD)
  np.testing.assert_array_equal(coco_annotations.decode_mask(rle, H, W, counts), CROWD)
  # A compressed RLE (the results-file form) decodes too.
  compressed = mask_utils.encode(np.asfortranarray(CROWD.astype(np.uint8)))
  compressed = {"size": compressed["size"], "counts": compressed["counts"].decode()}
  np.testing.assert_array_equal(coco_annotations.decode_mask(compressed, H, W, counts), CROWD)
  assert not coco_annotations.decode_mask(dict(rle, size=[H, W + 1]), H, W, counts).any()
  assert not coco_annotations.decode_mask([[1, 2, 3, 4]], H, W, counts).any()
  assert counts["masks left empty: no polygon"] == 1
  assert counts["masks left empty: RLE of another size than the image"] == 1


def test_data_show_draws_the_tasks_as_the_model_sees_them(data_dir, tmp_path):
  """`python -m unified_io.data.show`'s library call on the prepared tiny release."""
  config = tiny_config.get_config()
  for name in ['coco_keypoints', 'coco_instance_segmentation']:
    out = tmp_path / f"{name}.png"
    show.show(config, name, 2, str(out), data_dir=data_dir)
    assert out.stat().st_size > 0
