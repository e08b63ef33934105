"""Tests for the built-in dataset: scene geometry, scene text, text tasks and the TFDS builder.

Expected values are worked out by hand from the conventions in unified_io/data/scenes.py:
pixel (row r, column c) is sampled at (c + 0.5, r + 0.5); f = 64 px for 64x64 images;
camera x right, y down, z forward; normals point toward the camera.
"""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from unified_io.data import builtin_dataset, scene_text, scenes
from unified_io.data.scene_text import ObjectFacts, SceneFacts
from unified_io.data.scenes import Scene, SceneObject

COCO_KEYPOINTS = [
  "nose",
  "left_eye",
  "right_eye",
  "left_ear",
  "right_ear",
  "left_shoulder",
  "right_shoulder",
  "left_elbow",
  "right_elbow",
  "left_wrist",
  "right_wrist",
  "left_hip",
  "right_hip",
  "left_knee",
  "right_knee",
  "left_ankle",
  "right_ankle",
]
CAMERA_FACING = [0.0, 0.0, -1.0]


def flat_scene(*objects, tilt=0.0, ground_depth=12.0):
  return Scene(
    image_size=64,
    objects=tuple(objects),
    ground_depth=ground_depth,
    ground_tilt=tilt,
    ground_gray=90,
  )


# ----------------------------------------------------------------------------- geometry


def test_single_square_box_mask_depth_normals_and_colour():
  # Half side 5 around x = 20: centres 15.5 .. 24.5 lie in (15, 25) -> columns 15..24;
  # around y = 30 -> rows 25..34. Box [15, 25, 25, 35], 10 x 10 = 100 pixels.
  square = SceneObject("square", "red", (20.0, 30.0), 5.0, 4.0)
  out = scenes.render(flat_scene(square))
  assert out["shapes"] == ["square"] and out["colors"] == ["red"]
  np.testing.assert_array_equal(out["boxes"], [[15, 25, 25, 35]])
  np.testing.assert_array_equal(out["areas"], [100])
  expected_ids = np.zeros((64, 64), np.uint8)
  expected_ids[25:35, 15:25] = 1
  np.testing.assert_array_equal(out["instance_ids"], expected_ids)
  # Flat, camera-facing: depth 4 m inside; an untilted floor is a wall at 12 m.
  np.testing.assert_allclose(out["depth"][25:35, 15:25], 4.0)
  assert np.all(out["depth"][expected_ids == 0] == 12.0)
  np.testing.assert_allclose(out["normals"].reshape(-1, 3), [CAMERA_FACING] * 64 * 64)
  # Shade 0.55 + 0.45 * n.L with n.L = 0.75 / |(-0.35, -0.55, -0.75)| = 0.75 / 0.993730
  # = 0.754732 -> 0.889629; red (220, 40, 40) * 0.889629 = (195.72, 35.59, 35.59).
  np.testing.assert_array_equal(out["image"][30, 20], [196, 36, 36])
  assert out["image"].dtype == np.uint8 and out["image"].shape == (64, 64, 3)


def test_sphere_depth_and_normals():
  # Radius 10 around the centre of pixel (32, 32); metric radius R = 10 * 5 / 64 = 0.78125.
  sphere = SceneObject("circle", "blue", (32.5, 32.5), 10.0, 5.0)
  out = scenes.render(flat_scene(sphere))
  normals = out["normals"]
  np.testing.assert_allclose(np.linalg.norm(normals, axis=-1), 1.0, atol=1e-6)
  # The centre faces the camera at the front depth.
  np.testing.assert_allclose(normals[32, 32], CAMERA_FACING, atol=1e-7)
  assert out["depth"][32, 32] == pytest.approx(5.0)
  # Pixel (row 36, col 35): offset (3, 4) / 10 = (0.3, 0.4), w = sqrt(0.75) = 0.866025;
  # depth 5 + 0.78125 * (1 - 0.866025) = 5.104668.
  np.testing.assert_allclose(normals[36, 35], [0.3, 0.4, -0.8660254], atol=1e-6)
  assert out["depth"][36, 35] == pytest.approx(5.104668, abs=1e-5)
  # Lattice points with x^2 + y^2 <= 100 (Gauss circle problem, N(10) = 317).
  np.testing.assert_array_equal(out["areas"], [317])
  np.testing.assert_array_equal(out["boxes"], [[22, 22, 43, 43]])
  # The sphere is lit from the upper left: its upper-left side is brighter.
  assert out["image"][28, 28].sum() > out["image"][36, 36].sum()


def test_tilted_floor_depth_and_normal():
  # z = Z0 cos t / (cos t + v sin t), v = (row + 0.5 - 32) / 64. t = 30 deg, Z0 = 10:
  # row 0: v = -0.4921875 -> 8.660254 / 0.619932 = 13.969692;
  # row 63: v = 0.4921875 -> 8.660254 / 1.112119 = 7.787164.
  out = scenes.render(flat_scene(tilt=np.radians(30.0), ground_depth=10.0))
  np.testing.assert_allclose(out["depth"][0], 13.969692, rtol=1e-6)
  np.testing.assert_allclose(out["depth"][63], 7.787164, rtol=1e-6)
  # Up (-y) and toward the camera: (0, -sin 30, -cos 30).
  np.testing.assert_allclose(out["normals"][10, 10], [0.0, -0.5, -0.8660254], atol=1e-6)
  assert out["shapes"] == [] and out["boxes"].shape == (0, 4)


def test_nearer_object_occludes_and_hidden_objects_are_dropped():
  # Red (3 m): columns and rows 15..24.
  front = SceneObject("square", "red", (20.0, 20.0), 5.0, 3.0)
  # Blue (6 m): columns and rows 18..21, all behind red -> 0 visible pixels.
  hidden = SceneObject("square", "blue", (20.0, 20.0), 2.0, 6.0)
  # Yellow (6 m): columns 14..17, rows 18..21; red hides columns 15..17 -> 4 visible pixels.
  sliver = SceneObject("square", "yellow", (16.0, 20.0), 2.0, 6.0)
  # Green (5 m): columns 23..30, rows 16..23; red hides columns 23..24 -> 6 x 8 = 48 pixels.
  partly = SceneObject("square", "green", (27.0, 20.0), 4.0, 5.0)
  out = scenes.render(flat_scene(front, hidden, sliver, partly))
  assert out["colors"] == ["red", "green"]
  np.testing.assert_array_equal(out["areas"], [100, 48])
  np.testing.assert_array_equal(out["boxes"], [[15, 15, 25, 25], [25, 16, 31, 24]])
  # Dropped objects are not drawn either: the yellow sliver's pixels show the 12 m wall,
  # coloured like its neighbour in column 13 (the same 1 m tile: X = 12 * (c + 0.5 - 32) / 64
  # is -3.28 and -3.47 m).
  assert out["depth"][19, 14] == 12.0 and out["instance_ids"][19, 14] == 0
  np.testing.assert_array_equal(out["image"][19, 14], out["image"][19, 13])


def test_keypoint_order_and_visibility_on_an_occluded_figure():
  assert list(scenes.KEYPOINT_NAMES) == COCO_KEYPOINTS
  # Height 40 around (32, 32), arms and legs straight down: hips at y = 32 + 0.02 * 40
  # = 32.8, knees 9.6 lower at y = 42.4, x = 32 +- 0.065 * 40 = 34.6 / 29.4.
  figure = SceneObject("person", "white", (32.0, 32.0), 40.0, 3.0, (0.0,) * 8)
  # A square in front covering columns 29..34, rows 39..44: both knees (pixels (42, 34)
  # and (42, 29)); a square behind the figure over its wrists hides nothing.
  in_front = SceneObject("square", "red", (32.0, 42.0), 3.0, 2.0)
  behind = SceneObject("square", "blue", (32.0, 33.0), 6.0, 5.0)
  out = scenes.render(flat_scene(figure, in_front, behind))
  assert out["shapes"] == ["person", "square", "square"]
  np.testing.assert_array_equal(out["person_object_index"], [0])
  expected = {
    "nose": (32.0, 16.5),  # head centre y = 32 - 0.41 * 40 = 15.6, + 0.25 * 3.6
    "left_eye": (33.26, 15.06),
    "right_eye": (30.74, 15.06),
    "left_ear": (34.88, 15.6),
    "right_ear": (29.12, 15.6),
    "left_shoulder": (36.4, 20.4),
    "right_shoulder": (27.6, 20.4),
    "left_elbow": (36.4, 26.8),
    "right_elbow": (27.6, 26.8),
    "left_wrist": (36.4, 32.8),
    "right_wrist": (27.6, 32.8),
    "left_hip": (34.6, 32.8),
    "right_hip": (29.4, 32.8),
    "left_knee": (34.6, 42.4),
    "right_knee": (29.4, 42.4),
    "left_ankle": (34.6, 52.0),
    "right_ankle": (29.4, 52.0),
  }
  np.testing.assert_allclose(out["keypoints"][0], [expected[n] for n in COCO_KEYPOINTS], atol=1e-5)
  visibility = dict(zip(COCO_KEYPOINTS, out["visibility"][0]))
  assert visibility.pop("left_knee") == 1 and visibility.pop("right_knee") == 1
  assert set(visibility.values()) == {2}
  assert out["keypoints"].dtype == np.float32 and out["visibility"].dtype == np.int32


def test_keypoints_outside_the_image_have_visibility_zero_and_zero_coordinates():
  # Centred at y = 50 with height 40: hips at 50 + 0.02 * 40 = 50.8, knees 9.6 lower at
  # 60.4 (inside), ankles at 70.0 (outside the 64 rows).
  figure = SceneObject("person", "green", (32.0, 50.0), 40.0, 3.0, (0.0,) * 8)
  out = scenes.render(flat_scene(figure))
  visibility = dict(zip(COCO_KEYPOINTS, out["visibility"][0]))
  assert visibility["left_ankle"] == 0 and visibility["right_ankle"] == 0
  assert visibility["left_knee"] == 2 and visibility["right_knee"] == 2
  np.testing.assert_array_equal(out["keypoints"][0, 15:], [[0, 0], [0, 0]])
  np.testing.assert_allclose(out["keypoints"][0, 13], [34.6, 60.4], atol=1e-5)


def test_boxes_are_tight_around_the_masks_of_sampled_scenes():
  for seed in range(40):
    out = scenes.render(scenes.sample_scene(np.random.default_rng(seed)))
    assert 1 <= len(out["shapes"]) <= scenes.MAX_OBJECTS
    for index, (x1, y1, x2, y2) in enumerate(out["boxes"].astype(int)):
      mask = out["instance_ids"] == index + 1
      assert mask.sum() == out["areas"][index] >= scenes.MIN_VISIBLE_PIXELS
      assert not mask[:y1].any() and not mask[y2:].any()
      assert not mask[:, :x1].any() and not mask[:, x2:].any()
      assert mask[y1].any() and mask[y2 - 1].any()
      assert mask[:, x1].any() and mask[:, x2 - 1].any()
    np.testing.assert_allclose(np.linalg.norm(out["normals"], axis=-1), 1.0, atol=1e-5)
    assert np.all(out["normals"][..., 2] < 0)


def test_generation_is_deterministic_per_seed():
  first = builtin_dataset.scene_example(123)
  again = builtin_dataset.scene_example(123)
  other = builtin_dataset.scene_example(124)
  for key in ("depth", "normals", "instance_ids"):
    np.testing.assert_array_equal(first[key], again[key])
  np.testing.assert_array_equal(np.asarray(first["image"]), np.asarray(again["image"]))
  assert (
    first["captions"] == again["captions"] and first["vqa"]["question"] == again["vqa"]["question"]
  )
  assert not np.array_equal(np.asarray(first["image"]), np.asarray(other["image"]))
  assert builtin_dataset.text_example(5) == builtin_dataset.text_example(5)
  assert builtin_dataset.text_example(5) != builtin_dataset.text_example(6)


def test_split_seed_ranges_are_disjoint():
  seen = {}
  for config in ("scenes", "text"):
    for split in builtin_dataset.SPLITS:
      seeds = set(builtin_dataset.split_seeds(config, split, builtin_dataset.SEEDS_PER_SPLIT))
      for other, other_seeds in seen.items():
        assert not seeds & other_seeds, (config, split, other)
      seen[(config, split)] = seeds
  assert builtin_dataset.example_seed("scenes", "validation", 0) == 1_000_000
  with pytest.raises(ValueError):
    builtin_dataset.split_seeds("scenes", "train", builtin_dataset.SEEDS_PER_SPLIT + 1)


# ----------------------------------------------------------------------------- scene text


def test_text_for_a_red_circle_left_of_a_blue_square():
  circle = SceneObject("circle", "red", (16.0, 32.0), 6.0, 4.0)
  square = SceneObject("square", "blue", (48.0, 32.0), 6.0, 5.0)
  rendered = scenes.render(flat_scene(circle, square))
  facts = scene_text.facts_from_render(rendered)
  text = scene_text.describe_scene(facts, np.random.default_rng(0))
  ((subject, predicate, obj),) = text["relationships"]
  assert (subject, predicate, obj) in [(0, "left of", 1), (1, "right of", 0)]
  assert text["captions"][0] in [
    "a red circle to the left of a blue square",
    "a blue square to the right of a red circle",
  ]
  assert text["captions"][1] == "two objects: a red circle and a blue square"
  assert text["captions"][2] == "an image of a circle and a square"
  # Circle centre x = 16 -> first third; y = 32 -> middle third.
  assert text["region_captions"] == [
    "a red circle on the left of the image",
    "a blue square on the right of the image",
  ]
  answers = {pair["question"]: pair["answer"] for pair in text["vqa"]}
  assert answers["how many circles are there?"] == "1"
  assert answers["how many squares are there?"] == "1"
  assert answers["how many objects are there?"] == "2"
  assert answers["what color is the circle?"] == "red"
  assert answers["what shape is the blue object?"] == "square"
  assert answers["where is the red circle?"] == "left"  # x offset -16, |dx| >= 8
  assert answers["where is the blue square?"] == "right"
  assert sum(answer == "yes" for answer in answers.values()) == 1
  assert sum(answer == "no" for answer in answers.values()) == 1
  grounded = [pair for pair in text["vqa"] if pair["question"] == "what color is the circle?"]
  assert grounded[0]["object_index"] == 0 and grounded[0]["kind"] == "color"
  assert text["image_class"] == "mixed shapes"  # one of each: no strict majority


def test_overlapping_objects_relate_by_depth_and_counts_pick_the_majority():
  near = ObjectFacts("circle", "orange", (22, 24, 38, 40), 3.0)
  far = ObjectFacts("square", "blue", (28, 24, 44, 40), 6.0)
  third = ObjectFacts("circle", "white", (30, 2, 36, 8), 6.0)
  assert scene_text.predicate(near, far) == "in front of"
  assert scene_text.predicate(far, near) == "behind"
  # Depths 0.1 m apart are not ordered: the horizontal offset decides.
  assert scene_text.predicate(ObjectFacts("circle", "red", near.box, 5.9), far) == "left of"
  # Centres (33, 5) and (36, 32): |dy| = 27 > |dx| = 3, and the boxes do not overlap.
  assert scene_text.predicate(third, far) == "above"
  facts = SceneFacts((near, far, third), 64)
  assert scene_text.image_class(facts) == "circle"
  assert scene_text.count_phrase(facts.objects) == "two circles and a square"
  assert scene_text.region_captions(facts)[0] == "an orange circle in the middle of the image"


def test_region_captions_disambiguate_twins_in_the_same_ninth():
  left = ObjectFacts("circle", "red", (0, 0, 4, 4), 4.0)
  right = ObjectFacts("circle", "red", (10, 0, 14, 4), 4.0)
  other = ObjectFacts("circle", "red", (50, 50, 54, 54), 4.0)
  captions = scene_text.region_captions(SceneFacts((right, left, other), 64))
  # `left` and `right` share the top-left ninth, so both are named by their order among all
  # three red circles from the left; `other` is alone in its ninth.
  assert captions == [
    "the second red circle from the left",
    "the leftmost red circle",
    "a red circle at the bottom right of the image",
  ]


def test_text_only_examples_are_well_formed():
  tasks = set()
  for seed in range(300):
    example = scene_text.text_example(np.random.default_rng(seed))
    tasks.add(example["task"])
    assert example["input"]
    if example["task"] == "entailment":
      assert example["label"] in ("true", "false") and example["target"] == example["label"]
    elif example["task"] == "sentiment":
      assert example["label"] in ("positive", "negative")
      assert example["target"] == example["label"]
    elif example["task"] == "question_answering":
      assert example["target"] and example["target"] in example["context"]
    elif example["task"] == "summarization":
      assert example["target"] and len(example["target"]) < len(example["input"])
    else:
      assert example["task"] == "language_modeling" and example["target"] == ""
  assert tasks == set(scene_text.TEXT_TASKS)


def _object_sentences(context):
  """(color, shape, where, meters) from "there is a red circle at the top, 4 meters away."."""
  objects = []
  for sentence in context.split(". "):
    words = sentence.rstrip(".").split()
    if words[:2] == ["there", "is"]:
      where = " ".join(words[5:]).split(",")[0]
      objects.append((words[3], words[4], where, int(words[-3])))
  return objects


NUMBER = {"no": 0, "one": 1, "two": 2, "three": 3, "four": 4}
SINGULAR = {"circles": "circle", "squares": "square", "triangles": "triangle", "people": "person"}
INVERSE_PHRASE = {
  "to the left of": "to the right of",
  "to the right of": "to the left of",
  "above": "below",
  "below": "above",
  "in front of": "behind",
  "behind": "in front of",
}


def test_entailment_labels_agree_with_the_premise():
  kinds = set()
  for seed in range(300):
    example = scene_text.entailment_example(np.random.default_rng(seed))
    objects = _object_sentences(example["context"])
    words = example["input"].rstrip(".").split()
    if words[0] == "there" and words[2] in NUMBER:  # "there are two circles."
      shape = SINGULAR.get(words[3], words[3])
      truth = sum(obj[1] == shape for obj in objects) == NUMBER[words[2]]
      kinds.add("count")
    elif words[0] == "there":  # "there is a red circle."
      truth = (words[3], words[4]) in [obj[:2] for obj in objects]
      kinds.add("existence")
    else:  # "the red circle is to the left of the blue square."
      subject, other = " ".join(words[1:3]), " ".join(words[-2:])
      phrase = " ".join(words[4:-3])
      swapped = f"the {other} is {INVERSE_PHRASE[phrase]} the {subject}."
      truth = example["input"] in example["context"] or swapped in example["context"]
      kinds.add("relation")
    assert example["label"] == ("true" if truth else "false"), example
  assert kinds == {"count", "existence", "relation"}


def test_question_answering_answers_agree_with_the_context():
  for seed in range(300):
    example = scene_text.question_answering_example(np.random.default_rng(seed))
    objects = _object_sentences(example["context"])
    question = example["input"].rstrip("?").split()
    if question[:2] == ["what", "color"]:  # "what color is the circle?"
      expected = [obj[0] for obj in objects if obj[1] == question[-1]]
    elif question[0] == "where":  # "where is the red circle?"
      expected = [obj[2] for obj in objects if obj[:2] == tuple(question[-2:])]
    elif question[:2] == ["how", "far"]:  # "how far away is the red circle?"
      expected = [f"{obj[3]} meters" for obj in objects if obj[:2] == tuple(question[-2:])]
    else:  # "which object is nearest to the camera?"
      nearest = min(objects, key=lambda obj: obj[3])
      expected = [f"{nearest[0]} {nearest[1]}"]
    assert expected == [example["target"]], example


def test_sentiment_negation_flips_the_label():
  labels = {}
  for seed in range(200):
    example = scene_text.sentiment_example(np.random.default_rng(seed))
    words = example["input"].split(".")[0].split()
    word = words[-1]
    polarity = "positive" if word in scene_text.SENTIMENT_WORDS["positive"] else "negative"
    expected = (
      polarity if "not" not in words else {"positive": "negative", "negative": "positive"}[polarity]
    )
    labels[seed] = example["label"]
    assert example["label"] == expected, example
  assert set(labels.values()) == {"positive", "negative"}


# ----------------------------------------------------------------------------- TFDS


def test_tfds_build_and_read_back(tmp_path, capsys):
  builder = builtin_dataset.build(str(tmp_path), "scenes", num_examples=3)
  printed = capsys.readouterr().out
  assert "generating" in printed and "9 examples in" in printed
  assert builder.info.splits["train"].num_examples == 3
  assert builder.info.version == "1.0.0"
  registered = tfds.builder("uio_builtin_scenes/scenes", data_dir=str(tmp_path))
  assert registered.info.splits["validation"].num_examples == 3

  dataset = tfds.load("uio_builtin_scenes/scenes", split="test", data_dir=str(tmp_path))
  examples = list(tfds.as_numpy(dataset))
  assert len(examples) == 3
  for example in examples:
    seed = int(example["id"].decode().split("-")[1])
    assert seed in builtin_dataset.split_seeds("scenes", "test", 3)
    expected = builtin_dataset.scene_example(seed)
    assert example["image"].shape == (64, 64, 3) and example["image"].dtype == np.uint8
    np.testing.assert_array_equal(example["image"], np.asarray(expected["image"]))
    assert example["depth"].shape == (64, 64) and example["depth"].dtype == np.float32
    np.testing.assert_array_equal(example["depth"], expected["depth"])
    assert example["normals"].shape == (64, 64, 3) and example["normals"].dtype == np.float32
    assert example["instance_ids"].dtype == np.uint8
    np.testing.assert_array_equal(example["instance_ids"], expected["instance_ids"])
    objects = example["objects"]
    count = len(expected["objects"]["label"])
    assert objects["bbox"].shape == (count, 4) and objects["bbox"].dtype == np.float32
    # Normalised (ymin, xmin, ymax, xmax) = pixel (y1, x1, y2, x2) / 64.
    pixel = objects["pixel_box"]
    np.testing.assert_allclose(objects["bbox"], pixel[:, [1, 0, 3, 2]] / 64, atol=1e-7)
    assert [scenes.SHAPES[i] for i in objects["label"]] == expected["objects"]["label"]
    assert [scenes.COLORS[i] for i in objects["color"]] == expected["objects"]["color"]
    assert objects["region_caption"].dtype == object
    persons = example["persons"]
    num_persons = len(expected["persons"]["object_index"])
    assert persons["keypoints"].shape == (num_persons, 17, 2)
    assert persons["keypoints"].dtype == np.float32
    assert persons["visibility"].shape == (num_persons, 17)
    assert persons["visibility"].dtype == np.int32
    assert example["captions"].shape == (3,)
    assert example["relationships"]["subject"].dtype == np.int32
    assert len(example["vqa"]["question"]) == len(expected["vqa"]["question"])
    assert scene_text.IMAGE_CLASSES[example["image_class"]] == expected["image_class"]

  # A data_dir holds one size; building another size there is refused.
  with pytest.raises(ValueError, match="already holds"):
    builtin_dataset.build(str(tmp_path), "scenes", num_examples=4)


def test_tfds_text_config(tmp_path):
  builtin_dataset.build(
    str(tmp_path), "text", num_examples={"train": 4, "validation": 2, "test": 2}
  )
  examples = list(
    tfds.as_numpy(tfds.load("uio_builtin_scenes/text", split="train", data_dir=str(tmp_path)))
  )
  assert len(examples) == 4
  for example in examples:
    seed = int(example["id"].decode().split("-")[1])
    expected = builtin_dataset.text_example(seed)
    assert {key: value.decode() for key, value in example.items()} == expected


@pytest.mark.slow
def test_two_processes_building_at_once_generate_it_once(tmp_path):
  # Two trainers started together used to both generate the dataset; the second's rename
  # onto the finished version failed (FileExistsError). The build lock serialises them.
  command = [
    sys.executable,
    "-m",
    "unified_io.data.builtin_dataset",
    f"--data_dir={tmp_path}",
    "--config=text",
    "--num_examples=300",
  ]
  runs = [
    subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for _ in range(2)
  ]
  outputs = [run.communicate(timeout=300)[0] for run in runs]
  assert [run.returncode for run in runs] == [0, 0], outputs
  assert sum("generating" in out for out in outputs) == 1, outputs
  assert sum("already built" in out for out in outputs) == 1, outputs
  examples = tfds.load("uio_builtin_scenes/text", split="train", data_dir=str(tmp_path))
  assert len(list(examples)) == 300
