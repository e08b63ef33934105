"""Open Images, LVIS, COCO panoptic, COCO inpainting/categorization and RefCOCO+/g tasks on
TFDS mock data (no download): fixed records, prompts and targets written out by hand.

Every fixed record has a 50 x 100 image (longer side S = 100), so a coordinate c becomes the
location bin floor(c / 100 * 999), written <extra_id_{100 + bin}>. The three boxes used
throughout, as TFDS BBoxes (ymin, xmin, ymax, xmax) and then in pixels:

  A = (0.2, 0.1, 0.6, 0.5)   -> x 10..50, y 10..30 -> y1 99, x1 99, y2 299, x2 499
  B = (0.0, 0.25, 1.0, 0.75) -> x 25..75, y 0..50  -> y1 0, x1 249, y2 499, x2 749
  C = (0.5, 0.8, 0.9, 0.95)  -> x 80..95, y 25..45 -> y1 249, x1 799, y2 449, x2 949
"""

import copy
import csv
import functools
import os
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from unified_io.common import dense_labels
from unified_io.data.tasks import detection
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision
from unified_io.data.tasks import vision_logic as vt

TFDS_DIR = os.path.dirname(tfds.__file__)
H, W = 50, 100
BOX_A, BOX_B, BOX_C = (0.2, 0.1, 0.6, 0.5), (0.0, 0.25, 1.0, 0.75), (0.5, 0.8, 0.9, 0.95)
DEGENERATE = (0.3, 0.3, 0.3, 0.4)  # zero height
TOKENS_A = "<extra_id_199> <extra_id_199> <extra_id_399> <extra_id_599>"
TOKENS_B = "<extra_id_100> <extra_id_349> <extra_id_599> <extra_id_849>"
TOKENS_C = "<extra_id_349> <extra_id_899> <extra_id_549> <extra_id_1049>"
# Pixel rows / columns of A, B and C.
RECT_A = (slice(10, 30), slice(10, 50))
RECT_B = (slice(0, 50), slice(25, 75))
RECT_C = (slice(25, 45), slice(80, 95))
LOC = re.compile(r"^<extra_id_\d+>$")
CATEGORIZATION = 'What is the category of region " {} " ?'
INPAINTING = 'Filling the blank region " {} " ?'
LOCALIZATION = 'Which regions does the text " {} " describe ?'
SEGMENTATION = 'What is the segmentation of " {} " ?'
SEGMENTATION_GENERATION = 'What is the complete image? Segmentation color: " {} "'
REFEXP = 'Which region does the text " {} " describe ?'


@functools.lru_cache(maxsize=None)
def _mock_record(builder):
  with tfds.testing.mock_data(num_examples=1, policy=tfds.testing.MockPolicy.USE_CODE):
    return next(iter(tfds.as_numpy(tfds.load(builder, split="train"))))


def mock_example(builder):
  """A fresh copy of the module's one mock record of `builder`."""
  return copy.deepcopy(_mock_record(builder))


def run(name, example, seed=0, ctx=tasks.TaskContext()):
  return vt.TASKS[name].preprocess(example, np.random.default_rng(seed), ctx)


def skip_reason(name, example):
  with pytest.raises(tasks.SkipExample) as info:
    run(name, example)
  return str(info.value)


def quoted(prompt, template):
  head, tail = template.split("{}")
  assert prompt.startswith(head) and prompt.endswith(tail), (prompt, template)
  return prompt[len(head) : len(prompt) - len(tail)]


def chunks(text):
  """'<loc>x4 name <loc>x4 name ...' -> sorted [(the 4 tokens, name)]."""
  tokens, out = text.split(), []
  while tokens:
    box, tokens = tokens[:4], tokens[4:]
    assert len(box) == 4 and all(LOC.match(t) for t in box), text
    words = []
    while tokens and not LOC.match(tokens[0]):
      words.append(tokens.pop(0))
    out.append((" ".join(box), " ".join(words)))
  return sorted(out)


def image(value=200):
  return np.full((H, W, 3), value, np.uint8)


def bboxes(*boxes):
  return np.asarray(boxes, np.float32).reshape(-1, 4)


def rect_mask(*rects):
  mask = np.zeros((H, W), bool)
  for rows, cols in rects:
    mask[rows, cols] = True
  return mask


def colour_of(name):
  return dense_labels.COLOR_VALUES[dense_labels.COLOR_NAMES.index(name)]


def pairs(prompt):
  """The "colour : class" pairs of a segmentation-generation prompt."""
  return [p.split(" : ") for p in quoted(prompt, SEGMENTATION_GENERATION).split(" , ")]


# ------------------------------------------------------------------------- Open Images


@functools.lru_cache(maxsize=None)
def tfds_lines(relative):
  with open(os.path.join(TFDS_DIR, relative)) as f:
    return [line.strip() for line in f.read().split("\n") if line.strip()]


def boxable(mid):
  return tfds_lines("object_detection/open_images_classes_boxable.txt").index(mid)


def all_label(mid):
  return tfds_lines("object_detection/open_images_classes_all.txt").index(mid)


PERSON, CAR, TORTOISE, DOG, CAT = "/m/01g317", "/m/0k4j", "/m/011k07", "/m/0bt9lr", "/m/01yrx"


def open_images_example(group_b=True):
  """person at A, car at B (a group-of box), tortoise at C, a degenerate person box."""
  example = mock_example("open_images_v4/original")
  example["image"] = image()
  n = 4
  example["bobjects"] = {
    "label": np.array([boxable(m) for m in (PERSON, CAR, TORTOISE, PERSON)], np.int64),
    "source": np.full(n, 4, np.int64),  # xclick
    "bbox": bboxes(BOX_A, BOX_B, BOX_C, DEGENERATE),
    "is_occluded": np.zeros(n, np.int8),
    "is_truncated": np.zeros(n, np.int8),
    "is_group_of": np.array([0, int(group_b), 0, 0], np.int8),
    "is_depiction": np.zeros(n, np.int8),
    "is_inside": np.full(n, -1, np.int8),
  }
  # Image-level labels: person verified present; dog verified absent (human, confidence 0);
  # cat at confidence 0 from the machine (not verified); a non-boxable MID verified absent.
  non_boxable = next(
    m
    for m in tfds_lines("object_detection/open_images_classes_all.txt")
    if m not in set(tfds_lines("object_detection/open_images_classes_boxable.txt"))
  )
  example["objects"] = {
    "label": np.array([all_label(m) for m in (PERSON, DOG, CAT, non_boxable)], np.int64),
    "confidence": np.array([10, 0, 0, 0], np.int32),
    "source": np.array([0, 1, 2, 0], np.int64),  # verification, crowdsource, machine, verif.
  }
  return example


def test_open_images_name_table():
  table = detection.read_open_images_classes()
  assert len(table) == 601
  assert [mid for mid, _ in table] == tfds_lines("object_detection/open_images_classes_boxable.txt")
  by_mid = dict(table)
  assert by_mid["/m/011k07"] == "Tortoise"
  assert by_mid["/m/01g317"] == "Person"
  assert by_mid["/m/0k4j"] == "Car"
  assert by_mid["/m/014sv8"] == "Human eye"
  assert by_mid["/m/0h8n5zk"] == "Kitchen & dining room table"
  assert by_mid["/m/0mcx2"] == "Ipod"
  assert by_mid["/m/0zvk5"] == "Helmet"
  names = detection.OPEN_IMAGES_CLASSES
  assert names[boxable("/m/014sv8")] == "human eye"
  assert names[boxable("/m/0h8n5zk")] == "kitchen & dining room table"
  assert len(set(names)) == 601 and all(n == n.lower() and n.strip() == n for n in names)
  # The file's note names its source and licence.
  with open(detection.OPEN_IMAGES_CLASSES_FILE) as f:
    note = "".join(line for line in f if line.startswith("#"))
  assert "class-descriptions-boxable.csv" in note and "CC BY 4.0" in note
  with open(detection.OPEN_IMAGES_CLASSES_FILE, newline="") as f:
    rows = list(csv.reader(line for line in f if not line.startswith("#")))
  assert rows[0] == ["mid", "display_name"] and len(rows) == 602


def test_open_images_detection_keeps_group_of_boxes():
  example = open_images_example()
  raw = run("open_images_detection", example)
  assert raw["prompt"] == "What objects are in the image ?"
  assert chunks(raw["target_text"]) == sorted(
    [(TOKENS_A, "person"), (TOKENS_B, "car"), (TOKENS_C, "tortoise")]
  )
  assert raw["meta"]["example_id"] == example["image/filename"].decode()
  assert raw["meta"]["image_hw"] == (H, W)


def test_open_images_localization_negatives_are_verified_absent():
  example = open_images_example()
  assert detection.open_images_verified_absent(example) == ["dog"]
  expected = {
    "person": [(TOKENS_A, "person")],
    "car": [(TOKENS_B, "car")],  # the group-of box
    "tortoise": [(TOKENS_C, "tortoise")],
  }
  seen = set()
  for seed in range(24):
    raw = run("open_images_localization", example, seed)
    name = quoted(raw["prompt"], LOCALIZATION)
    seen.add(name)
    if raw["meta"]["negative"]:
      assert name == "dog" and raw["target_text"] == ""
    else:
      assert chunks(raw["target_text"]) == expected[name]
  assert seen == {"person", "car", "tortoise", "dog"}
  # Without verified-absent labels there is no negative (unlabelled classes may be present).
  example["objects"] = {k: v[:1] for k, v in example["objects"].items()}
  for seed in range(24):
    assert not run("open_images_localization", example, seed)["meta"]["negative"]


def test_open_images_categorization_and_inpainting_drop_group_of_boxes():
  example = open_images_example()
  by_region = {TOKENS_A: "person", TOKENS_C: "tortoise"}
  regions = set()
  for seed in range(12):
    raw = run("open_images_categorization", example, seed)
    region = quoted(raw["prompt"], CATEGORIZATION)
    regions.add(region)
    assert raw["target_text"] == by_region[region]
    assert raw["meta"]["class_names"] == detection.OPEN_IMAGES_CLASSES
  assert regions == set(by_region)
  blank = {TOKENS_A: RECT_A, TOKENS_C: RECT_C}
  for seed in range(6):
    raw = run("open_images_inpainting", example, seed)
    ((tokens, name),) = chunks(quoted(raw["prompt"], INPAINTING))
    assert by_region[tokens] == name and raw["target_text"] == ""
    np.testing.assert_array_equal(raw["target_image"], example["image"] / np.float32(255))
    inside = rect_mask(blank[tokens])
    assert np.all(raw["image"][inside] == vt.INPAINT_FILL)
    np.testing.assert_array_equal(raw["image"][~inside], raw["target_image"][~inside])
  # Only group-of boxes left: nothing to categorize or inpaint.
  example["bobjects"]["is_group_of"][:] = 1
  for name in ("open_images_categorization", "open_images_inpainting"):
    assert skip_reason(name, example) == "no object with a valid box"


def test_open_images_skips():
  raw_mock = mock_example("open_images_v4/original")  # fields of different lengths
  assert "differ in length" in skip_reason("open_images_detection", raw_mock)
  example = open_images_example()
  example["bobjects"]["bbox"][:] = DEGENERATE
  assert skip_reason("open_images_detection", example) == "no object with a valid box"
  example = open_images_example()
  example["bobjects"] = {k: v[:0] for k, v in example["bobjects"].items()}
  assert skip_reason("open_images_localization", example) == "no object with a valid box"
  example = open_images_example()
  example["bobjects"]["label"][0] = 601
  assert "outside its 601 classes" in skip_reason("open_images_detection", example)
  example = open_images_example()
  example["objects"]["confidence"] = example["objects"]["confidence"][:2]
  assert "differ in length" in skip_reason("open_images_localization", example)


# --------------------------------------------------------------------------------- LVIS


def lvis_label(raw_name):
  return tfds_lines("datasets/lvis/classes.txt").index(raw_name)


def lvis_example(masks, labels, boxes, not_exhaustive=()):
  example = mock_example("lvis")
  example["image"] = image()
  n = len(labels)
  example["objects"] = {
    "id": np.arange(n, dtype=np.int64),
    "area": np.array([m.sum() for m in masks], np.int64),
    "bbox": bboxes(*boxes),
    "label": np.array([lvis_label(name) for name in labels], np.int64),
    "segmentation": (np.stack(masks)[..., None] * 255).astype(np.uint8),
  }
  example["neg_category_ids"] = np.zeros(0, np.int64)
  example["not_exhaustive_category_ids"] = np.array(
    [lvis_label(name) for name in not_exhaustive], np.int64
  )
  return example


def apples_and_car(not_exhaustive=("car_(automobile)",)):
  """apple at A and at C, a car at B under the first apple; car not exhaustively annotated."""
  masks = [rect_mask(RECT_A), rect_mask(RECT_C), rect_mask(RECT_B)]
  return lvis_example(
    masks, ["apple", "apple", "car_(automobile)"], [BOX_A, BOX_C, BOX_B], not_exhaustive
  )


def test_lvis_class_names_are_readable():
  names = detection.lvis_classes()
  assert len(names) == 1203 and len(set(names)) == 1203
  raw = tfds_lines("datasets/lvis/classes.txt")
  by_raw = dict(zip(raw, names))
  assert by_raw["aerosol_can"] == "aerosol can"
  assert by_raw["car_(automobile)"] == "car (automobile)"
  assert by_raw["bow_(weapon)"] == "bow (weapon)"
  assert by_raw["monitor_(computer_equipment) computer_monitor"] == "monitor (computer equipment)"
  assert by_raw["Christmas_tree"] == "Christmas tree"
  assert all("_" not in n for n in names)


def test_lvis_segmentation_paints_the_asked_class():
  example = apples_and_car()
  for seed in range(4):
    raw = run("lvis_segmentation", example, seed)
    assert raw["prompt"] == SEGMENTATION.format("apple")  # car: not exhaustive
    assert raw["target_image_resize"] == "nearest" and raw["image"].shape == (H, W, 3)
    masks = [rect_mask(RECT_A), rect_mask(RECT_C)]
    np.testing.assert_array_equal(raw["meta"]["masks"], np.stack(masks))
    colours = raw["meta"]["colors"]
    assert len(set(colours)) == 2
    target = raw["target_image"]
    for mask, colour in zip(masks, colours):
      assert np.all(target[mask] == colour_of(colour))
    assert np.all(target[~(masks[0] | masks[1])] == 0)  # the car's own pixels included
  # Once the car is exhaustive too, both classes are asked for.
  asked = {
    quoted(run("lvis_segmentation", apples_and_car(()), s)["prompt"], SEGMENTATION)
    for s in range(12)
  }
  assert asked == {"apple", "car (automobile)"}


def test_lvis_segmentation_generation_lists_every_instance():
  example = apples_and_car()
  raw = run("lvis_segmentation_generation", example, 3)
  listed = pairs(raw["prompt"])
  assert sorted(name for _, name in listed) == ["apple", "apple", "car (automobile)"]
  colour = {name: c for c, name in listed if name != "apple"}
  apples = [c for c, name in listed if name == "apple"]
  # The smaller apple overlapping the car is painted over it.
  car_only = rect_mask(RECT_B) & ~rect_mask(RECT_A)
  assert np.all(raw["image"][car_only] == colour_of(colour["car (automobile)"]))
  painted = {c: np.all(raw["image"] == colour_of(c), axis=-1) for c in apples}
  assert sorted(m.sum() for m in painted.values()) == [15 * 20, 20 * 40]
  assert np.all(raw["image"][~(rect_mask(RECT_A, RECT_B, RECT_C))] == 0)
  np.testing.assert_array_equal(raw["target_image"], example["image"] / np.float32(255))


def test_lvis_more_instances_than_colours():
  # 18 apples, apple i a 4-pixel-wide column of i + 1 rows: areas 4, 8, ..., 72.
  masks, boxes = [], []
  for i in range(18):
    masks.append(rect_mask((slice(0, i + 1), slice(5 * i, 5 * i + 4))))
    boxes.append((0.0, 5 * i / 100, (i + 1) / 50, (5 * i + 4) / 100))
  example = lvis_example(masks, ["apple"] * 18, boxes)
  assert skip_reason("lvis_segmentation", example).startswith("no class to segment")
  raw = run("lvis_segmentation_generation", example)
  assert len(pairs(raw["prompt"])) == 16
  for i in (0, 1):  # the two smallest are left out, black
    assert np.all(raw["image"][masks[i]] == 0)
  for i in range(2, 18):
    assert np.all(raw["image"][masks[i]].any(axis=-1))


def test_lvis_skips():
  assert "differ in length" in skip_reason("lvis_segmentation", mock_example("lvis"))
  example = apples_and_car()
  example["objects"]["segmentation"] = example["objects"]["segmentation"][:, :40]
  assert "do not match the image (50, 100)" in skip_reason("lvis_segmentation", example)
  example = apples_and_car(("apple", "car_(automobile)"))
  assert skip_reason("lvis_segmentation", example) == (
    "no class to segment: 2 visible, 0 with more than 16 instances, 2 not exhaustively annotated"
  )
  example = apples_and_car()
  example["objects"]["segmentation"][:] = 0
  assert skip_reason("lvis_segmentation_generation", example) == "no object has visible pixels"
  example = apples_and_car()
  example["objects"]["label"][0] = 1203
  assert "outside its 1203 classes" in skip_reason("lvis_segmentation", example)


# ------------------------------------------------------------------------- COCO panoptic


def panoptic_example():
  """Segments: person at A (id 66309 = 5 + 256 * 3 + 256^2 * 1), a crowd of persons at C
  (id 7), a dog at B around the person (id 512), stuff 'wall' elsewhere (id 9)."""
  example = mock_example("coco/2017_panoptic")
  example["image"] = image()
  png = np.zeros((H, W, 3), np.uint8)
  png[:, :] = (9, 0, 0)
  png[RECT_B] = (0, 2, 0)
  png[RECT_A] = (5, 3, 1)
  png[RECT_C] = (7, 0, 0)
  example["panoptic_image"] = png
  dog = vision.COCO_CLASSES.index("dog")
  example["panoptic_objects"] = {
    "id": np.array([66309, 7, 512, 9], np.int64),
    "area": np.array([800, 300, 1700, 2200], np.int64),
    "bbox": bboxes(BOX_A, BOX_C, BOX_B, (0.0, 0.0, 1.0, 1.0)),
    "label": np.array([0, 0, dog, 120], np.int64),
    "is_crowd": np.array([False, True, False, False]),
  }
  return example


def test_panoptic_ids():
  png = np.array([[[5, 3, 1], [0, 2, 0], [255, 255, 255]]], np.uint8)
  np.testing.assert_array_equal(detection.panoptic_ids(png), [[66309, 512, 256**3 - 1]])


def test_coco_segmentation_uses_thing_segments():
  example = panoptic_example()
  dog = rect_mask(RECT_B) & ~rect_mask(RECT_A)
  for seed in range(4):
    raw = run("coco_segmentation", example, seed)
    assert raw["prompt"] == SEGMENTATION.format("dog")  # person has a crowd segment
    np.testing.assert_array_equal(raw["meta"]["masks"], dog[None])
    (colour,) = raw["meta"]["colors"]
    assert np.all(raw["target_image"][dog] == colour_of(colour))
    assert np.all(raw["target_image"][~dog] == 0)
  example["panoptic_objects"]["is_crowd"][1] = False
  asked = {quoted(run("coco_segmentation", example, s)["prompt"], SEGMENTATION) for s in range(12)}
  assert asked == {"person", "dog"}


def test_coco_segmentation_generation_leaves_stuff_and_crowds_black():
  example = panoptic_example()
  raw = run("coco_segmentation_generation", example, 1)
  listed = dict((name, colour) for colour, name in pairs(raw["prompt"]))
  assert sorted(listed) == ["dog", "person"]
  dog = rect_mask(RECT_B) & ~rect_mask(RECT_A)
  assert np.all(raw["image"][rect_mask(RECT_A)] == colour_of(listed["person"]))
  assert np.all(raw["image"][dog] == colour_of(listed["dog"]))
  assert np.all(raw["image"][~rect_mask(RECT_A, RECT_B)] == 0)  # crowd and wall
  np.testing.assert_array_equal(raw["target_image"], example["image"] / np.float32(255))


def test_coco_panoptic_skips():
  example = panoptic_example()
  example["panoptic_image"] = example["panoptic_image"][:40]
  assert "does not match the image" in skip_reason("coco_segmentation", example)
  example = panoptic_example()
  example["panoptic_objects"]["label"][:] = 120  # stuff only
  assert skip_reason("coco_segmentation_generation", example) == "no object with a valid box"
  example = panoptic_example()
  example["panoptic_objects"]["label"][0] = 133
  assert "outside its 133 classes" in skip_reason("coco_segmentation", example)
  example = panoptic_example()
  example["panoptic_objects"]["id"] = example["panoptic_objects"]["id"][:3]
  assert "differ in length" in skip_reason("coco_segmentation", example)


# ----------------------------------------------------------------- COCO and RefCOCO+/g


def coco_example():
  """person at A, a crowd of cars at B, a dog at C."""
  example = mock_example("coco/2017")
  example["image"] = image()
  example["objects"] = {
    "id": np.arange(3, dtype=np.int64),
    "area": np.array([800, 2500, 300], np.int64),
    "bbox": bboxes(BOX_A, BOX_B, BOX_C),
    "label": np.array([0, 2, vision.COCO_CLASSES.index("dog")], np.int64),
    "is_crowd": np.array([False, True, False]),
  }
  return example


def test_coco_categorization_and_inpainting():
  example = coco_example()
  by_region = {TOKENS_A: "person", TOKENS_C: "dog"}  # never the crowd
  regions = set()
  for seed in range(12):
    raw = run("coco_categorization", example, seed)
    region = quoted(raw["prompt"], CATEGORIZATION)
    regions.add(region)
    assert raw["target_text"] == by_region[region]
    assert raw["meta"]["class_names"] == vision.COCO_CLASSES
    raw = run("coco_inpainting", example, seed)
    ((tokens, name),) = chunks(quoted(raw["prompt"], INPAINTING))
    assert by_region[tokens] == name
    blank = rect_mask(RECT_A if tokens == TOKENS_A else RECT_C)
    assert np.all(raw["image"][blank] == vt.INPAINT_FILL)
    np.testing.assert_array_equal(raw["image"][~blank], raw["target_image"][~blank])
  assert regions == set(by_region)
  example["objects"]["bbox"][:] = DEGENERATE
  assert skip_reason("coco_inpainting", example) == "no object with a valid box"


@pytest.mark.parametrize(
  "name, builder",
  [
    ("refcocoplus_refexp", "ref_coco/refcocoplus_unc"),
    ("refcocog_refexp", "ref_coco/refcocog_umd"),
  ],
)
def test_refcoco_plus_and_g(name, builder):
  example = mock_example(builder)
  example["image"] = image()
  objects = {k: v[:2] for k, v in example["objects"].items() if k not in ("refexp", "mask", "bbox")}
  objects["bbox"] = bboxes(BOX_A, BOX_C)
  objects["refexp"] = {
    "refexp_id": tf.ragged.constant([[1, 2], [3]]),
    "raw": tf.ragged.constant([[b"man in solid black", b"left man"], [b"small dog"]]),
  }
  example["objects"] = objects
  by_text = {"man in solid black": TOKENS_A, "left man": TOKENS_A, "small dog": TOKENS_C}
  seen = set()
  for seed in range(12):
    raw = run(name, example, seed)
    text = quoted(raw["prompt"], REFEXP)
    seen.add(text)
    assert raw["target_text"] == by_text[text]
  assert seen == set(by_text)
  # The task's splits are the builder's (read from its split generators, no data needed).
  splits = tfds.builder(builder, data_dir="/nonexistent")._split_generators(None)
  assert set(vt.TASKS[name].splits.values()) <= {str(s) for s in splits}


def test_registered_tasks():
  expected = {
    "coco_inpainting": ("coco/2017", "image_synthesis", "image", "image_psnr"),
    "coco_categorization": ("coco/2017", "image_classification", "choice", "accuracy"),
    "refcocoplus_refexp": ("ref_coco/refcocoplus_unc", "sparse_labelling", "boxes", "box_iou"),
    "refcocog_refexp": ("ref_coco/refcocog_umd", "sparse_labelling", "boxes", "box_iou"),
    "open_images_detection": (
      "open_images_v4/original",
      "sparse_labelling",
      "boxes",
      "detection_map",
    ),
    "open_images_localization": (
      "open_images_v4/original",
      "sparse_labelling",
      "boxes",
      "detection_map",
    ),
    "open_images_categorization": (
      "open_images_v4/original",
      "image_classification",
      "choice",
      "accuracy",
    ),
    "open_images_inpainting": ("open_images_v4/original", "image_synthesis", "image", "image_psnr"),
    "lvis_segmentation": ("lvis", "dense_labelling", "segmentation", "segmentation_iou"),
    "lvis_segmentation_generation": ("lvis", "image_synthesis", "image", "image_psnr"),
    "coco_segmentation": (
      "coco/2017_panoptic",
      "dense_labelling",
      "segmentation",
      "segmentation_iou",
    ),
    "coco_segmentation_generation": (
      "coco/2017_panoptic",
      "image_synthesis",
      "image",
      "image_psnr",
    ),
  }
  for name, (builder, group, output, metric) in expected.items():
    task = vt.TASKS[name]
    assert (task.builder, task.group, task.output.value, task.metric.value) == (
      builder,
      group,
      output,
      metric,
    ), name
    assert task.size is None and task.splits["train"] == "train", name  # sizes: the catalogue


def test_paraphrases_fill_every_template():
  ctx = tasks.TaskContext(paraphrase=True)
  examples = {
    "open_images": open_images_example(),
    "lvis": apples_and_car(()),
    "coco_segmentation": panoptic_example(),
  }
  for name in detection.TASK_NAMES:
    example = next(v for k, v in examples.items() if name.startswith(k))
    for seed in range(6):
      raw = run(name, example, seed, ctx)
      assert raw["prompt"] and '"  "' not in raw["prompt"]
