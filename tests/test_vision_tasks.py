"""Vision task preprocessors: official prompts, target formats decoded back to the ground
truth, skip reasons, and the real-dataset adapters on TFDS mock data (no download)."""

import copy
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tests import specs
from unified_io.common import locations
from unified_io.common import vocab
from unified_io.data import builtin_dataset
from unified_io.data import catalog
from unified_io.common import dense_labels
from unified_io.data import pipeline
from unified_io.data import prompts
from unified_io.data.tasks import vision as real_vision_tasks
from unified_io.data import scene_text
from unified_io.data import scenes
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import builtin_vision
from unified_io.data.tasks import vision_logic as vt

NUM_EXAMPLES = 40
LAYOUT = vocab.VocabLayout.official()
CTX = tasks.TaskContext(max_depth=25.0)  # the scenes' floor reaches 20 m
LOC = re.compile(r"^<extra_id_(\d+)>$")
MISSING = vt.KEYPOINT_MISSING_TOKEN

# The released model's prompts, as the issue quotes them.
OFFICIAL = {
  "image_captioning": 'What does the image describe ?',
  "depth": 'What is the depth map of the image ?',
  "surface_normal": 'What is the surface normal of the image ?',
  "segmentation": 'What is the segmentation of " {} " ?',
  "image_generation": 'What is the complete image? Text: " {} " .',
  "refexp": 'Which region does the text " {} " describe ?',
  "region_captioning": 'What does the region " {} " describe ?',
  "object_categorization": 'What is the category of region " {} " ?',
  "image_classification": 'What is this in the image ?',
  "image_inpainting": 'Filling the blank region " {} " ?',
  "keypoint": 'Find the human joints in the region " {} " .',
  "segmentation_based_generation": 'What is the complete image? Segmentation color: " {} "',
}


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tfds"))
  builtin_dataset.build(path, "scenes", num_examples=NUM_EXAMPLES)
  source = pipeline.source(vt.BUILTIN, "train", path)
  return [source[i] for i in range(len(source))]


def run(name, example, seed=0, ctx=CTX):
  return vt.TASKS[name].preprocess(example, np.random.default_rng(seed), ctx)


def run_all(name, examples, ctx=CTX):
  """(example, raw) of every example the task does not skip."""
  out = []
  for i, example in enumerate(examples):
    try:
      out.append((example, run(name, example, i, ctx)))
    except tasks.SkipExample:
      pass
  return out


def one_bin(image_hw):
  return max(image_hw) / (vocab.NUM_LOCATION_BINS - 1)


def is_loc(token):
  return LOC.match(token) is not None and token != MISSING


def decode(tokens, image_hw):
  """Location tokens -> pixel box (4 tokens) or point (2 tokens), independently of vt."""
  bins = np.array([int(LOC.match(t).group(1)) - vocab.NUM_SENTINELS for t in tokens])
  ids = LAYOUT.location_id(bins)
  if len(tokens) == 4:
    return locations.location_ids_to_box(ids, image_hw, LAYOUT)
  return locations.location_ids_to_points(ids, image_hw, LAYOUT)


def parse_labelled_boxes(text, image_hw):
  """ "<loc>x4 name words <loc>x4 name ..." -> [(box, name)]."""
  tokens, out = text.split(), []
  while tokens:
    assert all(is_loc(t) for t in tokens[:4]), text
    box, tokens = decode(tokens[:4], image_hw), tokens[4:]
    words = []
    while tokens and not is_loc(tokens[0]):
      words.append(tokens.pop(0))
    out.append((box, " ".join(words)))
  return out


def quoted(prompt, template):
  """The argument of a one-argument template, e.g. the region inside " ... "."""
  head, tail = template.split("{}")
  assert prompt.startswith(head) and prompt.endswith(tail), (prompt, template)
  return prompt[len(head) : len(prompt) - len(tail)]


def ground_truth(example):
  objects = example["objects"]
  return (
    np.asarray(objects["pixel_box"], np.float64),
    [scenes.SHAPES[i] for i in objects["label"]],
  )


def assert_box_close(decoded, box, image_hw):
  np.testing.assert_allclose(decoded, box, atol=one_bin(image_hw))


# ------------------------------------------------------------------------------ prompts


def test_official_prompts_character_for_character():
  for key, template in OFFICIAL.items():
    assert prompts.official(key) == template
  assert prompts.official("detection") == "What objects are in the image ?"
  assert prompts.official("relationship") == (
    'What is the relationship between " {} " and " {} " ?'
  )
  for key in (
    "text_classification",
    "question_answering",
    "summarization",
    "masked_language_modelling",
    "span_denoising",
  ):
    assert key in prompts.PROMPTS
  assert prompts.PROMPTS["question_answering"][1].format("ctx", "q?") == "question: q? context: ctx"


def test_every_template_of_a_key_takes_the_same_arguments():
  for key, templates in prompts.PROMPTS.items():
    n = prompts.num_arguments(templates[0])
    for template in templates:
      assert prompts.num_arguments(template) == n, (key, template)
      template.format(*["x"] * n)


@pytest.mark.parametrize("name", builtin_vision.BUILTIN_TASK_NAMES)
def test_builtin_task_follows_the_contract(examples, name):
  task = vt.TASKS[name]
  assert task.group in tasks.GROUPS and task.builder == vt.BUILTIN and task.metric
  done = run_all(name, examples)
  assert len(done) >= 5, f"{name} skipped almost everything"
  for example, raw in done:
    assert isinstance(raw["prompt"], str) and raw["prompt"]
    assert isinstance(raw["target_text"], str)
    assert raw["meta"]["example_id"] == example["id"].decode()
    shown = raw["image"] if raw["image"] is not None else raw["target_image"]
    assert raw["meta"]["image_hw"] == shown.shape[:2]
    if raw["image"] is not None:
      assert raw["image"].ndim == 3 and raw["image"].shape[-1] == 3
    if not task.output.has_image:
      assert raw["target_image"] is None
      assert raw["target_text"] or raw["meta"].get("negative")  # localization negatives
    else:
      target = raw["target_image"]
      assert target.dtype == np.float32 and target.shape[-1] == 3
      assert 0.0 <= target.min() and target.max() <= 1.0
  # Paraphrases: every task fills every template without error.
  paraphrase = tasks.TaskContext(max_depth=25.0, paraphrase=True)
  for i in range(6):
    try:
      run(name, examples[i], seed=i, ctx=paraphrase)
    except tasks.SkipExample:
      pass


def test_builtin_tasks_become_unified_examples(examples):
  """Through the pipeline's tokenizer: location and missing-joint tokens are single ids."""
  spec = specs.tiny_spec(64, 128)
  layout = spec.tokenizer.layout
  ctx = spec.context(max_depth=25.0)
  for name in builtin_vision.BUILTIN_TASK_NAMES:
    prepared = 0
    for i, example in enumerate(examples):
      if prepared == 3:  # a few per task: the image ops are slow on CPU
        break
      try:
        features, raw, cut = pipeline.prepare(
          vt.TASKS[name], example, np.random.default_rng(i), spec, ctx
        )
      except tasks.SkipExample:
        continue
      prepared += 1
      assert not any(cut.values()), name
      for key, text in (("text_inputs", raw["prompt"]), ("text_targets", raw["target_text"])):
        ids = features[key]
        assert layout.is_location(ids).sum() == sum(map(is_loc, text.split())), (name, text)
        assert layout.is_sentinel(ids).sum() == text.split().count(MISSING), (name, text)


# ------------------------------------------------------------------------ sparse labels


def test_detection_target_decodes_to_every_object(examples):
  orders = set()
  for example, raw in run_all("builtin_detection", examples):
    assert raw["prompt"] == "What objects are in the image ?"
    boxes, names = ground_truth(example)
    hw = example["image"].shape[:2]
    parsed = parse_labelled_boxes(raw["target_text"], hw)
    assert sorted(n for _, n in parsed) == sorted(names)
    for box, name in parsed:  # each decoded box matches a distinct object of its class
      match = [
        i
        for i in range(len(boxes))
        if names[i] == name and np.all(np.abs(boxes[i] - box) <= one_bin(hw))
      ]
      assert match, (box, name)
    if len(names) >= 3:
      for seed in range(4):
        orders.add(run("builtin_detection", example, seed)["target_text"])
  assert len(orders) > 1, "detection order is not randomised"


def test_localization_positives_and_empty_negatives(examples):
  positives = negatives = 0
  for example in examples[:10]:
    boxes, names = ground_truth(example)
    hw = example["image"].shape[:2]
    for seed in range(12):
      raw = run("builtin_localization", example, seed)
      name = quoted(raw["prompt"], 'Which regions does the text " {} " describe ?')
      assert name in scenes.SHAPES
      if name not in names:
        negatives += 1
        assert raw["target_text"] == "" and raw["meta"]["negative"]
        continue
      positives += 1
      parsed = parse_labelled_boxes(raw["target_text"], hw)
      expected = boxes[[i for i, n in enumerate(names) if n == name]]
      assert [n for _, n in parsed] == [name] * len(expected)
      decoded = np.array(sorted(b.tolist() for b, _ in parsed))
      assert_box_close(decoded, np.array(sorted(expected.tolist())), hw)
  assert positives > negatives > 0


def test_keypoints_are_17_joints_in_the_paper_format(examples):
  done = run_all("builtin_keypoints", examples)
  assert done
  for example, raw in done:
    hw = example["image"].shape[:2]
    region = quoted(raw["prompt"], OFFICIAL["keypoint"]).split()
    box = decode(region, hw)
    persons = example["persons"]
    owner_boxes = np.asarray(example["objects"]["pixel_box"])[persons["object_index"]]
    p = int(np.argmin(np.abs(owner_boxes - box).sum(-1)))
    assert_box_close(box, owner_boxes[p], hw)
    tokens = raw["target_text"].split()
    assert len(tokens) == 17 * 3
    for k in range(17):
      y_token, x_token, label = tokens[3 * k : 3 * k + 3]
      v = int(persons["visibility"][p][k])
      assert label == str(v + 1)  # 1 not visible, 2 occluded, 3 visible
      if v == 0:
        assert y_token == x_token == MISSING
      else:
        point = decode([y_token, x_token], hw)
        np.testing.assert_allclose(point, persons["keypoints"][p][k], atol=one_bin(hw))


def test_refexp_region_captioning_and_categorization_use_the_described_box(examples):
  for example in examples[:15]:
    boxes, names = ground_truth(example)
    captions = [c.decode() for c in example["objects"]["region_caption"]]
    hw = example["image"].shape[:2]
    raw = run("builtin_refexp", example)
    i = captions.index(quoted(raw["prompt"], OFFICIAL["refexp"]))
    assert_box_close(decode(raw["target_text"].split(), hw), boxes[i], hw)
    raw = run("builtin_region_captioning", example, 1)
    box = decode(quoted(raw["prompt"], OFFICIAL["region_captioning"]).split(), hw)
    i = captions.index(raw["target_text"])
    assert_box_close(box, boxes[i], hw)
    raw = run("builtin_object_categorization", example, 2)
    box = decode(quoted(raw["prompt"], OFFICIAL["object_categorization"]).split(), hw)
    i = int(np.argmin(np.abs(boxes - box).sum(-1)))
    assert raw["target_text"] == names[i] and raw["meta"]["class_names"] == scenes.SHAPES


def test_relationship_prompt_boxes_and_target(examples):
  template = 'What is the relationship between " {} " and " {} " ?'
  pattern = re.compile("^" + re.escape(template).replace(r"\{\}", "(.*)") + "$")
  for example, raw in run_all("builtin_relationship", examples)[:15]:
    boxes, names = ground_truth(example)
    hw = example["image"].shape[:2]
    sides = [parse_labelled_boxes(part, hw)[0] for part in pattern.match(raw["prompt"]).groups()]
    rel = example["relationships"]
    triples = {
      (int(s), p.decode(), int(o))
      for s, p, o in zip(rel["subject"], rel["predicate"], rel["object"])
    }
    (s_box, s_name), (o_box, o_name) = sides
    s = int(np.argmin(np.abs(boxes - s_box).sum(-1)))
    o = int(np.argmin(np.abs(boxes - o_box).sum(-1)))
    predicate = raw["meta"]["predicate"]
    assert (s, predicate, o) in triples
    assert (s_name, o_name) == (names[s], names[o])
    assert raw["target_text"] == f"{names[s]} {predicate} {names[o]}"


# ------------------------------------------------------------------------- dense labels


def test_depth_target_inverts_to_the_depth(examples):
  for max_depth in (10.0, 25.0):
    ctx = tasks.TaskContext(max_depth=max_depth)
    for example in examples[:5]:
      raw = run("builtin_depth", example, ctx=ctx)
      assert raw["prompt"] == OFFICIAL["depth"]
      back = dense_labels.image_to_depth(raw["target_image"], max_depth)
      np.testing.assert_allclose(back, np.clip(example["depth"], 0, max_depth), atol=1e-4)
      assert raw["meta"]["max_depth"] == max_depth


def test_normals_target_inverts_to_the_normals(examples):
  for example in examples[:5]:
    raw = run("builtin_surface_normals", example)
    assert raw["prompt"] == OFFICIAL["surface_normal"]
    back = dense_labels.image_to_normals(raw["target_image"])
    np.testing.assert_allclose(back, example["normals"], atol=1e-5)


def test_segmentation_paints_each_instance_of_the_class(examples):
  for example in examples[:15]:
    raw = run("builtin_segmentation", example)
    _, names = ground_truth(example)
    name = quoted(raw["prompt"], OFFICIAL["segmentation"])
    assert raw["target_image_resize"] == "nearest"
    ids = example["instance_ids"]
    expected = [ids == i + 1 for i, n in enumerate(names) if n == name]
    np.testing.assert_array_equal(raw["meta"]["masks"], np.stack(expected))
    target = raw["target_image"]
    background = ~np.any(np.stack(expected), axis=0)
    assert np.all(target[background] == 0)
    colours = [
      dense_labels.COLOR_VALUES[dense_labels.COLOR_NAMES.index(c)] for c in raw["meta"]["colors"]
    ]
    assert len({tuple(c) for c in colours}) == len(colours)
    for mask, colour in zip(expected, colours):
      assert np.all(target[mask] == colour)


RASTER = tasks.TaskContext(max_depth=25.0, object_order="raster")


def _top_left_first(boxes):
  """Hand rule: sorted by y1, then x1 (the builtin scenes have no exact ties in both)."""
  return sorted(range(len(boxes)), key=lambda i: (boxes[i][1], boxes[i][0]))


def test_raster_order_lists_boxes_top_to_bottom_then_left_to_right(examples):
  boxes = np.array([[30, 5, 40, 9], [2, 5, 9, 20], [0, 1, 64, 2], [2, 5, 9, 10]], np.float64)
  # y1 = 1 first; then the two at y1 = 5 with x1 = 2 (the shorter box first: its y2 is
  # smaller), then x1 = 30.
  assert vt.raster_order(boxes).tolist() == [2, 3, 1, 0]
  checked = 0
  for example in examples:
    boxes, names = ground_truth(example)
    if len(names) < 3:
      continue
    hw = example["image"].shape[:2]
    targets = {run("builtin_detection", example, seed, RASTER)["target_text"] for seed in range(4)}
    assert len(targets) == 1, "a raster target depends on the seed"
    parsed = parse_labelled_boxes(targets.pop(), hw)
    want = _top_left_first(boxes)
    assert [n for _, n in parsed] == [names[i] for i in want]
    assert_box_close(np.stack([b for b, _ in parsed]), boxes[want], hw)
    checked += 1
  assert checked >= 5


def test_raster_order_for_localization_and_segmentation_colours(examples):
  located = painted = 0
  for example in examples[:20]:
    boxes, names = ground_truth(example)
    hw = example["image"].shape[:2]
    for seed in range(6):
      raw = run("builtin_localization", example, seed, RASTER)
      if raw["meta"]["negative"]:
        continue
      name = raw["meta"]["class_name"]
      members = [i for i, n in enumerate(names) if n == name]
      want = [members[j] for j in _top_left_first(boxes[members])]
      parsed = parse_labelled_boxes(raw["target_text"], hw)
      assert_box_close(np.stack([b for b, _ in parsed]), boxes[want], hw)
      located += len(members) > 1
    raw = run("builtin_segmentation", example, 0, RASTER)
    # The palette's colours in order, instance by instance in raster order of their boxes
    # (visible instances only: every builtin instance here is visible).
    name = raw["meta"]["class_name"]
    members = [i for i, n in enumerate(names) if n == name]
    order = [members[j] for j in _top_left_first(boxes[members])]
    assert raw["meta"]["colors"] == list(dense_labels.COLOR_NAMES[: len(members)])
    ids = example["instance_ids"]
    for k, i in enumerate(order):
      assert np.all(raw["target_image"][ids == i + 1] == dense_labels.COLOR_VALUES[k])
    painted += len(members) > 1
  assert located > 0 and painted > 0


def test_unknown_object_order_is_refused():
  with pytest.raises(ValueError, match="object_order='sorted'"):
    tasks.TaskContext(object_order="sorted")


def test_segmentation_generation_lists_the_colours_of_the_input_map(examples):
  for example in examples[:10]:
    raw = run("builtin_segmentation_generation", example)
    _, names = ground_truth(example)
    pairs = [
      p.split(" : ")
      for p in quoted(raw["prompt"], OFFICIAL["segmentation_based_generation"]).split(" , ")
    ]
    assert sorted(n for _, n in pairs) == sorted(names)
    for colour, name in pairs:
      painted = np.all(
        raw["image"] == dense_labels.COLOR_VALUES[dense_labels.COLOR_NAMES.index(colour)], axis=-1
      )
      owners = set(example["instance_ids"][painted].tolist())
      assert len(owners) == 1 and names[owners.pop() - 1] == name
    np.testing.assert_array_equal(raw["target_image"], example["image"] / np.float32(255))


def test_inpainting_blanks_the_box_and_targets_the_image(examples):
  for example in examples[:10]:
    raw = run("builtin_inpainting", example)
    boxes, names = ground_truth(example)
    hw = example["image"].shape[:2]
    parsed = parse_labelled_boxes(quoted(raw["prompt"], OFFICIAL["image_inpainting"]), hw)
    ((box, name),) = parsed
    i = int(np.argmin(np.abs(boxes - box).sum(-1)))
    assert name == names[i]
    x1, y1, x2, y2 = boxes[i].astype(int)  # built-in boxes are whole pixels
    original = example["image"] / np.float32(255)
    np.testing.assert_array_equal(raw["target_image"], original)
    assert np.all(raw["image"][y1:y2, x1:x2] == vt.INPAINT_FILL)
    outside = np.ones(hw, bool)
    outside[y1:y2, x1:x2] = False
    np.testing.assert_array_equal(raw["image"][outside], original[outside])


# -------------------------------------------------------------- text-output and synthesis


def test_image_level_text_tasks(examples):
  for example in examples[:10]:
    captions = [c.decode() for c in example["captions"]]
    raw = run("builtin_captioning", example)
    assert raw["prompt"] == OFFICIAL["image_captioning"] and raw["target_text"] in captions
    raw = run("builtin_image_generation", example)
    assert quoted(raw["prompt"], OFFICIAL["image_generation"]) in captions
    assert raw["image"] is None
    np.testing.assert_array_equal(raw["target_image"], example["image"] / np.float32(255))
    raw = run("builtin_image_classification", example)
    assert raw["prompt"] == OFFICIAL["image_classification"]
    assert raw["target_text"] == scene_text.IMAGE_CLASSES[example["image_class"]]


def test_vqa_and_grounded_vqa(examples):
  for example in examples[:10]:
    qa = example["vqa"]
    pairs = {
      q.decode().lower(): (a.decode(), int(o))
      for q, a, o in zip(qa["question"], qa["answer"], qa["object_index"])
    }
    raw = run("builtin_vqa", example)
    assert raw["target_text"] == pairs[raw["prompt"]][0]
    raw = run("builtin_grounded_vqa", example)
    answer, index = pairs[raw["prompt"]]
    assert raw["target_text"] == answer and index >= 0
    assert raw["target_image_resize"] == "nearest"
    mask = example["instance_ids"] == index + 1
    np.testing.assert_array_equal(raw["target_image"], dense_labels.mask_to_image(mask))


# --------------------------------------------------------------------------- skip reasons


def skip_reason(name, example):
  with pytest.raises(tasks.SkipExample) as info:
    run(name, example)
  return str(info.value)


def test_unusable_examples_are_skipped_with_a_reason(examples):
  example = next(e for e in examples if len(e["persons"]["object_index"]))
  degenerate = copy.deepcopy(example)
  degenerate["objects"]["pixel_box"][:, 2] = degenerate["objects"]["pixel_box"][:, 0]
  for name in (
    "builtin_detection",
    "builtin_localization",
    "builtin_inpainting",
    "builtin_object_categorization",
    "builtin_segmentation",
  ):
    assert skip_reason(name, degenerate) == "no object with a valid box"
  assert "keypoints" in skip_reason("builtin_keypoints", degenerate)
  outside = copy.deepcopy(example)
  outside["objects"]["pixel_box"][:] = [70, 0, 90, 10]  # right of the 64-px image
  assert skip_reason("builtin_detection", outside) == "no object with a valid box"
  nan_depth = copy.deepcopy(example)
  nan_depth["depth"][3, 4] = np.nan
  assert skip_reason("builtin_depth", nan_depth) == "depth has 1 non-finite pixels"
  nan_normals = copy.deepcopy(example)
  nan_normals["normals"][0, 0, 1] = np.inf
  assert skip_reason("builtin_surface_normals", nan_normals) == "normals have 1 non-finite pixels"
  no_person = copy.deepcopy(example)
  no_person["persons"] = {k: v[:0] for k, v in example["persons"].items()}
  assert skip_reason("builtin_keypoints", no_person) == "no person in the image"
  ungrounded = copy.deepcopy(example)
  ungrounded["vqa"]["object_index"][:] = -1
  assert skip_reason("builtin_grounded_vqa", ungrounded) == "no question about one visible object"
  empty = copy.deepcopy(example)
  empty["objects"] = {k: v[:0] for k, v in example["objects"].items()}
  assert skip_reason("builtin_detection", empty) == "no object with a valid box"
  assert skip_reason("builtin_relationship", empty).startswith("no relationship")
  bad_image = copy.deepcopy(example)
  bad_image["image"] = bad_image["image"][..., :2]
  assert skip_reason("builtin_captioning", bad_image).startswith("image is not")


# ------------------------------------------------------------ real datasets (mock data)


def mock_example(builder, split="train"):
  """One example of `builder` as tfds.as_numpy yields it, random data from its features."""
  with tfds.testing.mock_data(num_examples=1, policy=tfds.testing.MockPolicy.USE_CODE):
    return next(iter(tfds.as_numpy(tfds.load(builder, split=split))))


def consistent(sequence: dict, n: int) -> dict:
  """Mock data draws each field of a Sequence with its own length; real records agree."""
  return {k: consistent(v, n) if isinstance(v, dict) else v[:n] for k, v in sequence.items()}


def ordered_bbox(bbox):
  """Mock BBoxes are random numbers; real ones have ymin <= ymax and xmin <= xmax."""
  return np.concatenate(
    [np.minimum(bbox[:, :2], bbox[:, 2:]), np.maximum(bbox[:, :2], bbox[:, 2:]) + 0.01], axis=1
  ).clip(0, 1)


def test_coco_detection_and_localization_on_mock_data():
  example = mock_example("coco/2017")
  assert set(example["objects"]) >= {"bbox", "label", "is_crowd"}
  example["objects"] = consistent(example["objects"], 6)
  example["objects"]["bbox"] = ordered_bbox(example["objects"]["bbox"])
  example["objects"]["is_crowd"][:] = [False, True, False, False, False, False]
  hw = example["image"].shape[:2]
  height, width = hw
  expected = example["objects"]["bbox"][:, [1, 0, 3, 2]] * [width, height, width, height]
  names = [real_vision_tasks.COCO_CLASSES[i] for i in example["objects"]["label"]]
  keep = [0, 2, 3, 4, 5]  # the crowd region is dropped
  raw = run("coco_detection", example)
  parsed = parse_labelled_boxes(raw["target_text"], hw)
  assert sorted(n for _, n in parsed) == sorted(names[i] for i in keep)
  decoded = np.array(sorted(b.tolist() for b, _ in parsed))
  assert_box_close(decoded, np.array(sorted(expected[keep].tolist())), hw)
  for seed in range(8):
    raw = run("coco_localization", example, seed)
    name = quoted(raw["prompt"], 'Which regions does the text " {} " describe ?')
    if raw["meta"]["negative"]:
      assert raw["target_text"] == "" and name not in names
    else:
      assert {n for _, n in parse_labelled_boxes(raw["target_text"], hw)} == {name}
  # Raw mock records (fields of different lengths) are skipped, not crashed on.
  with pytest.raises(tasks.SkipExample, match="differ in length"):
    run("coco_detection", mock_example("coco/2017"))


def test_coco_captions_on_mock_data():
  example = mock_example("coco_captions/2014")
  captions = [c.decode() for c in example["captions"]["text"] if c.strip()]
  raw = run("coco_captioning", example)
  assert raw["prompt"] == OFFICIAL["image_captioning"] and raw["target_text"] in captions
  raw = run("coco_image_generation", example)
  assert quoted(raw["prompt"], OFFICIAL["image_generation"]) in captions
  assert raw["target_image"].shape == example["image"].shape


def test_refcoco_on_mock_data():
  example = mock_example("ref_coco/refcoco_unc")
  objects = consistent(example["objects"], 3)
  objects["refexp"] = consistent(objects["refexp"], 3)
  objects["bbox"] = ordered_bbox(objects["bbox"])
  # Real nested sequences come as RaggedTensors from tfds.as_numpy.
  objects["refexp"]["raw"] = tf.ragged.constant(
    [[b"man in solid black", b"left man"], [b"red car"], []]
  )
  example["objects"] = objects
  hw = example["image"].shape[:2]
  height, width = hw
  boxes = objects["bbox"][:, [1, 0, 3, 2]] * [width, height, width, height]
  by_text = {"man in solid black": 0, "left man": 0, "red car": 1}
  for seed in range(6):
    raw = run("refcoco_refexp", example, seed)
    i = by_text[quoted(raw["prompt"], OFFICIAL["refexp"])]
    assert_box_close(decode(raw["target_text"].split(), hw), boxes[i], hw)


def test_nyu_depth_on_mock_data():
  example = mock_example("nyu_depth_v2")
  assert example["depth"].dtype == np.float16
  raw = run("nyu_depth", example, ctx=tasks.TaskContext())
  back = dense_labels.image_to_depth(raw["target_image"], 10.0)
  np.testing.assert_allclose(back, np.clip(example["depth"].astype(np.float32), 0, 10), atol=1e-4)
  example["depth"][0, 0] = np.nan
  with pytest.raises(tasks.SkipExample, match="non-finite"):
    run("nyu_depth", example)


def test_real_tasks_are_registered_with_their_builders():
  expected = {
    "coco_detection": "coco/2017",
    "coco_localization": "coco/2017",
    "coco_captioning": "coco_captions/2014",
    "coco_image_generation": "coco_captions/2014",
    "refcoco_refexp": "ref_coco/refcoco_unc",
    "nyu_depth": "nyu_depth_v2",
  }
  sizes = catalog.design_task_sizes()  # the catalogue holds paper datasets' sizes
  for name, builder in expected.items():
    task = vt.TASKS[name]
    assert task.builder == builder and task.splits["train"] == "train"
    assert task.size is None and sizes[name] > 0


def test_keypoints_text_by_hand():
  # 64x64 image: bin = floor(coord / 64 * 999); location bin b is <extra_id_{100 + b}>.
  points = np.zeros((17, 2))
  points[0], points[2] = (10, 20), (30, 40)
  visibility = np.array([2, 0, 1] + [0] * 14)
  text = vt.keypoints_text(points, visibility, (64, 64), CTX)
  assert text.split()[:9] == [
    "<extra_id_412>",
    "<extra_id_256>",
    "3",
    MISSING,
    MISSING,
    "1",
    "<extra_id_724>",
    "<extra_id_568>",
    "2",
  ]
  assert len(text.split()) == 51
