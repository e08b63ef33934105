"""uio_visual_genome on a tiny copy of the Visual Genome v1.2 release, and its tasks.

The copy has the release's JSON files with their real field names and nesting and a few
images made here, with the awkward cases: several names, `name` for `names`, boxes partly
and wholly outside the image, zero-size boxes, empty phrases and answers, an image in
neither folder, a file smaller than image_data.json says, a url naming the wrong folder, a
PNG named .jpg, a greyscale JPEG, and COCO evaluation images to leave out.
"""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from configs import tiny as tiny_config
from unified_io.data import show
from unified_io.data import pipeline
from unified_io.data.builders import common
from unified_io.data.builders import visual_genome
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision_logic as vt
from unified_io.data.tasks import vl_visual_genome  # noqa: F401  registers the vg_ tasks

NAME = visual_genome.NAME
CTX = tasks.TaskContext()
URL = "https://cs.stanford.edu/people/rak248/{}/{}.jpg"


def _pixels(width, height, seed, mode="RGB"):
  rng = np.random.default_rng(seed)
  # Smooth blocks survive JPEG well enough to tell images apart.
  small = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
  image = Image.fromarray(small).resize((width, height), Image.NEAREST)
  return image.convert(mode)


def _save(root, folder, image_id, width, height, mode="RGB", fmt="JPEG"):
  (root / folder).mkdir(exist_ok=True)
  _pixels(width, height, image_id, mode).save(root / folder / f"{image_id}.jpg", format=fmt)


def _image_entry(image_id, folder, width, height, coco_id=None):
  return {
    "image_id": image_id,
    "url": URL.format(folder, image_id),
    "width": width,
    "height": height,
    "coco_id": coco_id,
    "flickr_id": 1000 + image_id,
  }


def _obj(object_id, x, y, w, h, names=None, name=None, synsets=()):
  obj = {"object_id": object_id, "x": x, "y": y, "w": w, "h": h, "synsets": list(synsets)}
  if names is not None:
    obj["names"] = names
  if name is not None:
    obj["name"] = name
  return obj


def _region(region_id, image_id, phrase, x, y, w, h):
  return {
    "region_id": region_id,
    "image_id": image_id,
    "phrase": phrase,
    "x": x,
    "y": y,
    "width": w,
    "height": h,
  }


def write_release(root):
  root.mkdir(parents=True)
  _save(root, "VG_100K", 1, 40, 30)
  _save(root, "VG_100K_2", 2, 50, 40, mode="L")  # greyscale JPEG: stored as it is
  _save(root, "VG_100K", 3, 20, 20)
  # 4.jpg is in neither folder.
  _save(root, "VG_100K_2", 5, 50, 40)  # image_data.json says VG_100K and 100 x 80
  _save(root, "VG_100K", 6, 24, 16, mode="RGBA", fmt="PNG")  # a PNG named .jpg
  _save(root, "VG_100K", 7, 20, 20)
  _save(root, "VG_100K", 62, 32, 32)  # split_of(62) is validation
  image_data = [
    _image_entry(1, "VG_100K", 40, 30),
    _image_entry(2, "VG_100K_2", 50, 40, coco_id=139),
    _image_entry(3, "VG_100K", 20, 20, coco_id=285),  # COCO val2017: excluded
    _image_entry(4, "VG_100K", 20, 20),
    _image_entry(5, "VG_100K", 100, 80),
    _image_entry(6, "VG_100K", 24, 16),
    _image_entry(7, "VG_100K", 20, 20, coco_id=777),  # in excluded_coco_ids.txt
    _image_entry(62, "VG_100K", 32, 32),
  ]
  objects = [
    {
      "image_id": 1,
      "objects": [
        _obj(11, 2, 3, 10, 8, names=["Man", "person"], synsets=["man.n.01"]),
        _obj(12, 30, 20, 20, 15, names=[" Tree "]),  # partly outside: clipped
        _obj(13, 50, 40, 5, 5, names=["kite"]),  # wholly outside: dropped
        _obj(14, 5, 5, 0, 4, names=["pole"]),  # zero width: dropped
        _obj(15, 15, 10, 10, 10, name="horse", synsets=["horse.n.01"]),  # `name`
        _obj(16, 1, 1, 5, 5, names=[]),  # no name: dropped
        {**_obj(17, 20, 2, 6, 6, names=["man"]), "merged_object_ids": [18]},
      ],
    },
    {"image_id": 5, "objects": [_obj(51, 20, 10, 40, 20, names=["dog"])]},
    {"image_id": 62, "objects": [_obj(621, 0, 0, 16, 16, names=["cat"])]},
    {"image_id": 999, "objects": [_obj(9991, 0, 0, 1, 1, names=["ghost"])]},  # unknown image
  ]
  regions = [
    {
      "id": 1,
      "regions": [
        _region(101, 1, "A man walking ", 1, 1, 20, 20),
        _region(102, 1, "tree top", 35, 25, 10, 10),  # clipped
        _region(103, 1, "", 0, 0, 10, 10),  # empty phrase: dropped
        _region(104, 1, "nothing", 0, 0, 0, 10),  # zero width: dropped
      ],
    },
    {"id": 2, "regions": []},
  ]
  qa = {"q_objects": [], "a_objects": []}
  question_answers = [
    {
      "id": 1,
      "qas": [
        {
          "qa_id": 201,
          "image_id": 1,
          "question": "What is the man doing?",
          "answer": "Walking.",
          **qa,
        },
        {"qa_id": 202, "image_id": 1, "question": "Who?", "answer": " ", **qa},  # dropped
      ],
    },
    {"id": 2, "qas": []},
  ]
  man = {"object_id": 11, "x": 2, "y": 3, "w": 10, "h": 8, "name": "Man", "synsets": []}
  horse = {"object_id": 15, "x": 15, "y": 10, "w": 10, "h": 10, "names": ["horse"]}
  outside = {"object_id": 13, "x": 50, "y": 40, "w": 5, "h": 5, "names": ["kite"]}
  relationships = [
    {
      "image_id": 1,
      "relationships": [
        {
          "relationship_id": 301,
          "predicate": "ON",
          "synsets": ["along.r.01"],
          "subject": man,
          "object": horse,
        },
        {
          "relationship_id": 302,
          "predicate": "near",
          "synsets": [],
          "subject": man,
          "object": outside,
        },
      ],
    }
  ]
  for name, content in [
    ("image_data.json", image_data),
    ("objects.json", objects),
    ("region_descriptions.json", regions),
    ("question_answers.json", question_answers),
    ("relationships.json", relationships),
  ]:
    (root / name).write_text(json.dumps(content))
  (root / "annotations").mkdir()
  coco = {"images": [{"id": 285, "file_name": "000000000285.jpg"}], "annotations": []}
  (root / "annotations" / "instances_val2017.json").write_text(json.dumps(coco))
  (root / "excluded_coco_ids.txt").write_text("# COCO ids\n777\n")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("tfds")
  root = data_dir / "downloads" / "manual" / NAME
  write_release(root)
  tfds.builder(NAME, data_dir=str(data_dir)).download_and_prepare(file_format="array_record")
  records = {}
  for split in ("train", "validation"):
    source = pipeline.source(NAME, split, str(data_dir))
    records[split] = {source[i]["id"].decode(): source[i] for i in range(len(source))}
  return root, records


def run(name, example, seed=0):
  return tasks.get(name).preprocess(example, np.random.default_rng(seed), CTX)


def box(values, hw):
  return vt.box_text(np.asarray(values, np.float64), hw, CTX)


HW1 = (30, 40)
MAN, TREE, HORSE, MAN2 = (2, 3, 12, 11), (30, 20, 40, 30), (15, 10, 25, 20), (20, 2, 26, 8)


def test_splits_and_exclusions(built):
  _, records = built
  assert visual_genome.split_of(62) == "validation"
  assert all(visual_genome.split_of(i) == "train" for i in (1, 2, 5, 6))
  # 3 and 7 are COCO evaluation images, 4 has no file.
  assert sorted(records["train"]) == ["1", "2", "5", "6"]
  assert sorted(records["validation"]) == ["62"]


def test_record_fields(built):
  root, records = built
  r = records["train"]["1"]
  assert (r["image_id"], r["coco_id"], r["flickr_id"]) == (1, -1, 1001)
  assert r["file_name"].decode() == "VG_100K/1.jpg" and (r["width"], r["height"]) == (40, 30)
  expected = np.asarray(Image.open(root / "VG_100K" / "1.jpg").convert("RGB"))
  np.testing.assert_array_equal(r["image"], expected)  # the file's bytes, as they are
  objects = r["objects"]
  assert objects["object_id"].tolist() == [11, 12, 15, 17]
  assert [n.decode() for n in objects["name"]] == ["man", "tree", "horse", "man"]
  assert [s.decode() for s in objects["synset"]] == ["man.n.01", "", "horse.n.01", ""]
  np.testing.assert_array_equal(objects["box"], [MAN, TREE, HORSE, MAN2])
  regions = r["regions"]
  assert regions["region_id"].tolist() == [101, 102]
  assert [p.decode() for p in regions["phrase"]] == ["A man walking", "tree top"]
  np.testing.assert_array_equal(regions["box"], [(1, 1, 21, 21), (35, 25, 40, 30)])
  qas = r["qas"]
  assert qas["qa_id"].tolist() == [201]
  assert (qas["question"][0].decode(), qas["answer"][0].decode()) == (
    "What is the man doing?",
    "Walking.",
  )
  rel = r["relationships"]
  assert rel["relationship_id"].tolist() == [301]
  assert (rel["predicate"][0], rel["synset"][0]) == (b"on", b"along.r.01")
  assert (rel["subject_id"][0], rel["subject_name"][0]) == (11, b"man")
  assert (rel["object_id"][0], rel["object_name"][0]) == (15, b"horse")
  np.testing.assert_array_equal(rel["subject_box"], [MAN])
  np.testing.assert_array_equal(rel["object_box"], [HORSE])


def test_awkward_images(built):
  _, records = built
  grey = records["train"]["2"]
  assert grey["coco_id"] == 139 and grey["file_name"].decode() == "VG_100K_2/2.jpg"
  assert grey["image"].shape == (40, 50, 3) and len(grey["objects"]["name"]) == 0
  assert grey["objects"]["box"].shape == (0, 4)
  # File 50 x 40 where image_data.json says 100 x 80, in VG_100K_2 where its url says VG_100K.
  scaled = records["train"]["5"]
  assert scaled["file_name"].decode() == "VG_100K_2/5.jpg"
  assert (scaled["width"], scaled["height"]) == (50, 40)
  np.testing.assert_array_equal(scaled["objects"]["box"], [(10, 5, 30, 15)])
  png = records["train"]["6"]
  assert png["image"].shape == (16, 24, 3) and png["image"].dtype == np.uint8
  assert records["validation"]["62"]["objects"]["name"].tolist() == [b"cat"]


def test_registered_tasks():
  expected = {
    "vg_inpainting": ("image_synthesis", "image", "image_psnr"),
    "vg_detection": ("sparse_labelling", "boxes", "detection_map"),
    "vg_localization": ("sparse_labelling", "boxes", "detection_map"),
    "vg_categorization": ("image_classification", "text", "accuracy"),
    "vg_region_captioning": ("image_captioning", "text", "caption_cider"),
    "vg_vqa": ("vision_language", "text", "vqa_accuracy"),
    "vg_relationship": ("vision_language", "text", "accuracy"),
    "vg_image_denoising": ("image_synthesis", "image", "image_psnr"),
  }
  for name, (group, output, metric) in expected.items():
    task = tasks.get(name)
    assert (task.group, task.output.value, task.metric.value) == (group, output, metric)
    assert task.builder == NAME and dict(task.splits) == {
      "train": "train",
      "validation": "validation",
    }
    assert task.size is None and task.description


def test_detection(built):
  r = built[1]["train"]["1"]
  raw = run("vg_detection", r, seed=3)
  assert raw["prompt"] == "What objects are in the image ?"
  tokens = raw["target_text"].split()
  chunks = sorted(" ".join(tokens[i : i + 5]) for i in range(0, len(tokens), 5))
  by_hand = [(MAN, "man"), (TREE, "tree"), (HORSE, "horse"), (MAN2, "man")]
  assert chunks == sorted(f"{box(b, HW1)} {n}" for b, n in by_hand)
  assert raw["meta"]["example_id"] == "1" and raw["meta"]["image_hw"] == HW1


def test_localization_has_no_negatives(built):
  r = built[1]["train"]["1"]
  targets = {
    "man": {
      f"{box(MAN, HW1)} man {box(MAN2, HW1)} man",
      f"{box(MAN2, HW1)} man {box(MAN, HW1)} man",
    },
    "tree": {f"{box(TREE, HW1)} tree"},
    "horse": {f"{box(HORSE, HW1)} horse"},
  }
  seen = set()
  for seed in range(30):
    raw = run("vg_localization", r, seed)
    name = raw["meta"]["class_name"]
    assert raw["prompt"] == f'Which regions does the text " {name} " describe ?'
    assert not raw["meta"]["negative"] and raw["target_text"] in targets[name]
    seen.add(name)
  assert seen == set(targets)


def test_categorization(built):
  r = built[1]["train"]["1"]
  by_box = {
    box(b, HW1): n for b, n in [(MAN, "man"), (TREE, "tree"), (HORSE, "horse"), (MAN2, "man")]
  }
  for seed in range(10):
    raw = run("vg_categorization", r, seed)
    region = raw["prompt"].split('"')[1].strip()
    assert raw["prompt"] == f'What is the category of region " {region} " ?'
    assert raw["target_text"] == by_box[region] and "class_names" not in raw["meta"]


def test_inpainting(built):
  r = built[1]["train"]["1"]
  by_prompt = {
    f'Filling the blank region " {box(b, HW1)} {n} " ?': b
    for b, n in [(MAN, "man"), (TREE, "tree"), (HORSE, "horse"), (MAN2, "man")]
  }
  raw = run("vg_inpainting", r, seed=1)
  x1, y1, x2, y2 = by_prompt[raw["prompt"]]
  np.testing.assert_allclose(raw["target_image"], vt.to_float(r["image"]))
  np.testing.assert_allclose(
    raw["image"][y1:y2, x1:x2], np.broadcast_to(vt.INPAINT_FILL, (y2 - y1, x2 - x1, 3))
  )
  assert raw["target_text"] == ""


def test_region_captioning(built):
  r = built[1]["train"]["1"]
  by_prompt = {
    f'What does the region " {box((1, 1, 21, 21), HW1)} " describe ?': "A man walking",
    f'What does the region " {box((35, 25, 40, 30), HW1)} " describe ?': "tree top",
  }
  seen = set()
  for seed in range(10):
    raw = run("vg_region_captioning", r, seed)
    assert raw["target_text"] == by_prompt[raw["prompt"]]
    assert raw["meta"]["captions"] == [raw["target_text"]]
    seen.add(raw["prompt"])
  assert seen == set(by_prompt)


def test_vqa(built):
  raw = run("vg_vqa", built[1]["train"]["1"])
  assert raw["prompt"] == "what is the man doing?"
  assert raw["target_text"] == "walking" and raw["meta"]["answers"] == ["walking"]
  assert raw["meta"]["raw_answer"] == "Walking."


def test_relationship(built):
  raw = run("vg_relationship", built[1]["train"]["1"])
  assert raw["prompt"] == (
    f'What is the relationship between " {box(MAN, HW1)} man " and " {box(HORSE, HW1)} horse " ?'
  )
  assert raw["target_text"] == "man on horse" and raw["meta"]["predicate"] == "on"


def test_image_denoising(built):
  r = built[1]["train"]["2"]
  raw = run("vg_image_denoising", r)
  assert raw["prompt"] == "What is the complete image?" and raw["target_text"] == ""
  assert raw["target_image"].shape == (40, 50, 3) and raw["image_input_mask_rate"] == 0.75


@pytest.mark.parametrize(
  "name",
  [
    "vg_inpainting",
    "vg_detection",
    "vg_localization",
    "vg_categorization",
    "vg_region_captioning",
    "vg_vqa",
    "vg_relationship",
  ],
)
def test_image_without_annotations_is_skipped(built, name):
  with pytest.raises(tasks.SkipExample):
    run(name, built[1]["train"]["2"])


def test_missing_release_file(tmp_path):
  root = tmp_path / "downloads" / "manual" / NAME
  write_release(root)
  (root / "relationships.json").unlink()
  builder = tfds.builder(NAME, data_dir=str(tmp_path))
  with pytest.raises(common.MissingReleaseFile, match="relationships.json"):
    builder.download_and_prepare(file_format="array_record")


def test_clip_box_by_hand():
  scale, size = (1.0, 1.0), (40, 30)
  np.testing.assert_array_equal(visual_genome.clip_box((-5, 2, 10, 5), scale, size), (0, 2, 5, 7))
  assert visual_genome.clip_box((41, 0, 5, 5), scale, size) is None
  assert visual_genome.clip_box((1, 1, 5, -1), scale, size) is None
  np.testing.assert_array_equal(
    visual_genome.clip_box((10, 10, 20, 20), (0.5, 0.5), size), (5, 5, 15, 15)
  )


def test_data_show_draws_the_tasks_as_the_model_sees_them(built, tmp_path):
  """`python -m unified_io.data.show`'s library call on the prepared tiny release."""
  config = tiny_config.get_config()
  for name in ['vg_relationship']:
    out = tmp_path / f"{name}.png"
    show.show(config, name, 2, str(out), data_dir=str(built[0].parents[2]))
    assert out.stat().st_size > 0
