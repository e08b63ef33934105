"""uio_open_images_v6 on a tiny copy of the Open Images V6 release, and its tasks.

The copy has the release's CSV files with their real columns (the X, X, Y, Y box order,
normalised coordinates, no header in the description files), the 16 mask zips of each split
and a few images made here, with the awkward cases: masks at twice and half the image's
resolution, a transposed mask, a 1-bit PNG, a mask the CSV lists but its zip lacks, an empty
mask, more boxes than masks, an unknown MID, images missing from their folder, VRD boxes
outside the image or empty, "is" attribute rows and a predicate missing from the
relationship descriptions.
"""

import csv
import io
import logging
import zipfile

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds
from absl import logging as absl_logging

from configs import tiny as tiny_config
from unified_io.data import show
from unified_io.common import dense_labels
from unified_io.data import pipeline
from unified_io.data.builders import common
from unified_io.data.builders import open_images_v6 as oi
from unified_io.data.tasks import ext_open_images_v6  # noqa: F401  registers the tasks
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vision_logic as vt

SEG, REL = f"{oi.NAME}/segmentation", f"{oi.NAME}/relationships"
CTX = tasks.TaskContext()
W, H = 40, 30
HW = (H, W)
PERSON, CAT, DOG, TABLE, GUITAR = "/m/01g317", "/m/01yrx", "/m/0bt9lr", "/m/04bcr3", "/m/0342h"
WOODEN, TRANSPARENT = "/m/083vt", "/m/02gy9n"
CLASSES = [(PERSON, "Person"), (CAT, "Cat"), (DOG, "Dog"), (TABLE, "Table"), (GUITAR, "Guitar")]
# Segmentation images: T1, T2 train (zips 0, 1), T3 not in train/, T4 only an empty mask;
# V1 validation. Relationship images: R1, R2 train, R3 not in train/; V2 validation.
T1, T2, T3, T4 = "0a1b2c3d4e5f6071", "1b2c3d4e5f607182", "2c3d4e5f60718293", "3d4e5f6071829304"
V1, R1, R2, R3, V2 = (
  "4e5f607182930415",
  "5f60718293041526",
  "6071829304152637",
  "7182930415263748",
  "8293041526374859",
)
SEG_HEADER = "MaskPath,ImageID,LabelName,BoxID,BoxXMin,BoxXMax,BoxYMin,BoxYMax,PredictedIoU,Clicks"
VRD_HEADER = (
  "ImageID,LabelName1,LabelName2,XMin1,XMax1,YMin1,YMax1,XMin2,XMax2,YMin2,YMax2,RelationshipLabel"
)
CLICKS = "0.30 0.20 1;0.50 0.40 0"


def rect(hw, rows, cols):
  mask = np.zeros(hw, bool)
  mask[rows, cols] = True
  return mask


def _png(mask, mode="L"):
  out = io.BytesIO()
  PIL.Image.fromarray(mask.astype(np.uint8) * 255, mode="L").convert(mode).save(out, "PNG")
  return out.getvalue()


def _jpeg(path, seed):
  path.parent.mkdir(parents=True, exist_ok=True)
  small = np.random.default_rng(seed).integers(0, 256, (H // 5, W // 5, 3), dtype=np.uint8)
  PIL.Image.fromarray(small).resize((W, H), PIL.Image.NEAREST).save(path, "JPEG", quality=95)


def _csv(path, header, rows):
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    if header:
      writer.writerow(header.split(","))
    writer.writerows(rows)


def _mask_row(image_id, mid, box_id, box, iou="0.87"):
  mask_path = f"{image_id}_{mid[1:].replace('/', '')}_{box_id}.png"
  return [mask_path, image_id, mid, box_id, *box, iou, CLICKS]


# Released masks (bool [rows, cols]) by (image, box id), and what they are at 40 x 30.
P1 = rect((60, 80), slice(10, 30), slice(20, 60))  # twice the image's size
P1_FIT = rect(HW, slice(5, 15), slice(10, 30))
P2 = rect((15, 20), slice(9, 14), slice(1, 4))  # half the image's size
P2_FIT = rect(HW, slice(18, 28), slice(2, 8))
C1 = rect(HW, slice(20, 28), slice(30, 38))  # stored as a 1-bit PNG
B1 = rect(HW, slice(0, 10), slice(0, 20))
G1 = rect(HW, slice(5, 25), slice(5, 15))
SEG_ROWS = {
  "train": [
    _mask_row(T1, PERSON, "p1", ("0.25", "0.75", "0.1666667", "0.5")),
    _mask_row(T1, PERSON, "p2", ("0.05", "0.2", "0.6", "0.9333333"), iou=""),
    _mask_row(T1, CAT, "c1", ("0.75", "0.95", "0.6666667", "0.9333333")),
    _mask_row(T1, CAT, "c2", ("0.0", "0.2", "0.0", "0.2")),  # not in the zip
    _mask_row(T1, "/m/0unknown", "u1", ("0.0", "0.2", "0.0", "0.2")),  # no description
    _mask_row(T2, DOG, "d1", ("0.0", "0.5", "0.0", "0.5")),  # transposed mask
    _mask_row(T2, TABLE, "b1", ("0.0", "0.5", "0.0", "0.3333333")),
    _mask_row(T3, PERSON, "p3", ("0.0", "0.5", "0.0", "0.5")),  # image missing
    _mask_row(T4, PERSON, "p4", ("0.0", "0.5", "0.0", "0.5")),  # empty mask
  ],
  "validation": [_mask_row(V1, GUITAR, "g1", ("0.125", "0.375", "0.1666667", "0.8333333"))],
}
MASK_FILES = {
  (T1, "p1"): _png(P1),
  (T1, "p2"): _png(P2),
  (T1, "c1"): _png(C1, mode="1"),
  (T2, "d1"): _png(rect((W, H), slice(0, 20), slice(0, 15))),  # 30 wide, 40 high
  (T2, "b1"): _png(B1),
  (T3, "p3"): _png(B1),
  (T4, "p4"): _png(np.zeros(HW, bool)),
  (V1, "g1"): _png(G1),
}
# Boxes file: T1 has 2 persons, 2 cats; T2 2 tables (1 masked), 1 dog.
BOXES = [
  [image_id, "xclick", mid, "1", "0.1", "0.2", "0.1", "0.2", "0", "0", "0", "0", "0"]
  for image_id, mid in [(T1, PERSON), (T1, PERSON), (T1, CAT), (T1, CAT)]
  + [(T2, TABLE), (T2, TABLE), (T2, DOG), (R1, PERSON)]
]
BOX_HEADER = (
  "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,"
  "IsDepiction,IsInside"
)


def _vrd(image_id, subject, obj, box1, box2, label):
  return [image_id, subject, obj, *box1, *box2, label]


PERSON_BOX, GUITAR_BOX = ("0.1", "0.5", "0.2", "0.9"), ("0.3", "0.6", "0.5", "1.0")
DOG_BOX, TABLE_BOX = ("0.55", "0.95", "0.4", "0.8"), ("0.0", "0.5", "0.6", "1.0")
VRD_ROWS = {
  "train": [
    _vrd(R1, PERSON, GUITAR, PERSON_BOX, GUITAR_BOX, "plays"),
    _vrd(R1, PERSON, DOG, PERSON_BOX, DOG_BOX, "interacts_with"),  # not in the descriptions
    _vrd(R1, TABLE, WOODEN, TABLE_BOX, TABLE_BOX, "is"),
    _vrd(R1, "/m/0unknown", DOG, PERSON_BOX, DOG_BOX, "at"),  # dropped
    _vrd(R1, PERSON, TABLE, PERSON_BOX, ("0.3", "0.3", "0.6", "1.0"), "on"),  # empty: dropped
    _vrd(R1, PERSON, TABLE, ("0.5", "1.2", "0.0", "0.5"), TABLE_BOX, "at"),  # clipped
    _vrd(R2, TABLE, TRANSPARENT, TABLE_BOX, TABLE_BOX, "is"),
    _vrd(R2, PERSON, DOG, PERSON_BOX, PERSON_BOX, "is"),  # "is" of a described MID: unused
    _vrd(R3, PERSON, GUITAR, PERSON_BOX, GUITAR_BOX, "plays"),  # image missing
  ],
  "validation": [_vrd(V2, PERSON, GUITAR, PERSON_BOX, GUITAR_BOX, "holds")],
}
# Pixel boxes at 40 x 30.
PERSON_PX, GUITAR_PX, DOG_PX = (4, 6, 20, 27), (12, 15, 24, 30), (22, 12, 38, 24)
TABLE_PX, CLIPPED_PX = (0, 18, 20, 30), (20, 0, 40, 15)


def write_release(root):
  root.mkdir(parents=True)
  _csv(root / "class-descriptions-boxable.csv", None, CLASSES)
  _csv(
    root / "oidv6-attributes-description.csv",
    None,
    [(WOODEN, "Wooden"), (TRANSPARENT, "Transparent")],
  )
  _csv(
    root / "oidv6-relationships-description.csv",
    None,
    [(p, p) for p in ("at", "holds", "is", "on", "plays")],
  )
  _csv(root / "oidv6-train-annotations-bbox.csv", BOX_HEADER, BOXES)
  for split, rows in SEG_ROWS.items():
    _csv(root / oi.SEGMENTATION_CSV[split], SEG_HEADER, rows)
    members = {c: {} for c in oi.ZIP_SHARDS}
    for row in rows:
      data = MASK_FILES.get((row[1], row[3]))
      if data is not None:
        members[row[1][0]][row[0]] = data
    for shard, files in members.items():
      with zipfile.ZipFile(root / f"{split}-masks-{shard}.zip", "w") as z:
        for name, data in files.items():
          z.writestr(name, data)
  for split, rows in VRD_ROWS.items():
    _csv(root / oi.VRD_CSV[split][0], VRD_HEADER, rows)
  for i, (split, image_id) in enumerate(
    [("train", T1), ("train", T2), ("train", T4), ("validation", V1)]
    + [("train", R1), ("train", R2), ("validation", V2)]
  ):
    _jpeg(root / split / f"{image_id}.jpg", seed=i)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("tfds")
  root = data_dir / "downloads" / "manual" / oi.NAME
  write_release(root)
  handler, verbosity = _Records(), absl_logging.get_verbosity()
  logging.getLogger().addHandler(handler)
  absl_logging.set_verbosity(absl_logging.INFO)  # the counts are logged at INFO
  try:
    for name in (SEG, REL):
      tfds.builder(name, data_dir=str(data_dir)).download_and_prepare(file_format="array_record")
  finally:
    logging.getLogger().removeHandler(handler)
    absl_logging.set_verbosity(verbosity)
  records = {}
  for name in (SEG, REL):
    for split in ("train", "validation"):
      source = pipeline.source(name, split, str(data_dir))
      records[name, split] = {source[i]["id"].decode(): source[i] for i in range(len(source))}
  return root, records, "\n".join(handler.lines)


class _Records(logging.Handler):
  def __init__(self):
    super().__init__()
    self.lines = []

  def emit(self, record):
    self.lines.append(record.getMessage())


def run(name, example, seed=0):
  return tasks.get(name).preprocess(example, np.random.default_rng(seed), CTX)


def box(values):
  return vt.box_text(np.asarray(values, np.float64), HW, CTX)


def texts(values):
  return [v.decode() for v in values]


def test_segmentation_records(built):
  root, records, _ = built
  assert sorted(records[SEG, "train"]) == [T1, T2]  # T3: no image, T4: only an empty mask
  assert sorted(records[SEG, "validation"]) == [V1]
  r = records[SEG, "train"][T1]
  assert (r["file_name"].decode(), r["width"], r["height"]) == (f"train/{T1}.jpg", W, H)
  expected = np.asarray(PIL.Image.open(root / "train" / f"{T1}.jpg").convert("RGB"))
  np.testing.assert_array_equal(r["image"], expected)
  objects = r["objects"]
  assert texts(objects["label"]) == [PERSON, PERSON, CAT]
  assert texts(objects["name"]) == ["person", "person", "cat"]
  assert texts(objects["box_id"]) == ["p1", "p2", "c1"]
  assert texts(objects["mask_path"])[0] == f"{T1}_m01g317_p1.png"
  assert texts(objects["clicks"]) == [CLICKS] * 3
  np.testing.assert_allclose(objects["predicted_iou"], [0.87, -1.0, 0.87], rtol=1e-6)
  boxes = [(10, 5, 30, 15), (2, 18, 8, 28), (30, 20, 38, 28)]
  np.testing.assert_allclose(objects["box"], boxes, atol=1e-4)
  # Masks at twice and half the resolution, resized nearest; the 1-bit PNG as it is.
  assert objects["mask"].shape == (3, H, W, 1) and objects["mask"].dtype == np.uint8
  for got, want in zip(objects["mask"][..., 0], [P1_FIT, P2_FIT, C1]):
    np.testing.assert_array_equal(got, want.astype(np.uint8) * 255)
  # c2 is not in its zip: the cat's target would miss an instance.
  assert texts(r["incomplete_classes"]) == ["cat"] and r["box_counts_checked"]


def test_incomplete_classes_and_missing_boxes_file(built):
  _, records, _ = built
  r = records[SEG, "train"][T2]
  # The transposed dog mask is dropped; one of the two tables has no mask.
  assert texts(r["objects"]["name"]) == ["table"]
  np.testing.assert_array_equal(r["objects"]["mask"][0, ..., 0] > 0, B1)
  assert texts(r["incomplete_classes"]) == ["dog", "table"]
  v = records[SEG, "validation"][V1]  # no validation boxes file: only dropped masks count
  assert not v["box_counts_checked"] and len(v["incomplete_classes"]) == 0
  assert texts(v["objects"]["name"]) == ["guitar"]
  np.testing.assert_allclose(v["objects"]["box"], [(5, 5, 15, 25)], atol=1e-4)


def test_build_log_counts_what_was_dropped(built):
  log = built[2]
  for line in [
    "[train]: masks dropped: not in the zip: 1",
    "[train]: masks dropped: aspect ratio differs from the image's: 1",
    "[train]: masks dropped: empty at the image's size: 1",
    "[train]: masks dropped: MID in no class description file: 1",
    "[train]: masks resized to the image (nearest): 2",
    "[train]: images skipped: not in train/: 1",
    "[train]: images skipped: no usable mask: 1",
    "[train]: relationships dropped: MID in no description file: 1",
    "[train]: relationships dropped: empty box: 1",
    "[train]: relationships with an attribute ('is'): 3",
  ]:
    assert line in log, line


def test_relationship_records(built):
  _, records, _ = built
  assert sorted(records[REL, "train"]) == [R1, R2] and sorted(records[REL, "validation"]) == [V2]
  rel = records[REL, "train"][R1]["relationships"]
  assert texts(rel["subject_name"]) == ["person", "person", "table", "person"]
  assert texts(rel["object_label"]) == [GUITAR, DOG, WOODEN, TABLE]
  assert texts(rel["object_name"]) == ["guitar", "dog", "wooden", "table"]
  assert texts(rel["predicate_label"]) == ["plays", "interacts_with", "is", "at"]
  assert texts(rel["predicate"]) == ["plays", "interacts with", "is", "at"]
  assert rel["is_attribute"].tolist() == [False, False, True, False]
  # Normalised XMin, XMax, YMin, YMax -> pixel x1, y1, x2, y2, clipped to the image.
  np.testing.assert_allclose(rel["subject_box"], [PERSON_PX, PERSON_PX, TABLE_PX, CLIPPED_PX])
  np.testing.assert_allclose(rel["object_box"], [GUITAR_PX, DOG_PX, TABLE_PX, TABLE_PX])
  only_is = records[REL, "train"][R2]["relationships"]
  assert texts(only_is["object_name"]) == ["transparent", "dog"] and only_is["is_attribute"].all()
  assert texts(records[REL, "validation"][V2]["relationships"]["predicate"]) == ["holds"]


def test_registered_tasks():
  expected = {
    "open_images_segmentation": ("dense_labelling", "segmentation", "segmentation_iou", SEG),
    "open_images_segmentation_generation": ("image_synthesis", "image", "image_psnr", SEG),
    "open_images_relationship": ("vision_language", "text", "accuracy", REL),
  }
  for name, (group, output, metric, builder) in expected.items():
    task = tasks.get(name)
    assert (task.group, task.output.value, task.metric.value, task.builder) == (
      group,
      output,
      metric,
      builder,
    )
    assert dict(task.splits) == {"train": "train", "validation": "validation"}
    assert task.size is None and task.description


def test_segmentation_asks_only_complete_classes(built):
  r = built[1][SEG, "train"][T1]
  for seed in range(6):
    raw = run("open_images_segmentation", r, seed)
    assert raw["prompt"] == 'What is the segmentation of " person " ?'  # the cat is incomplete
    assert raw["target_image_resize"] == "nearest" and raw["meta"]["class_name"] == "person"
    np.testing.assert_array_equal(raw["meta"]["masks"], np.stack([P1_FIT, P2_FIT]))
    target, colours = raw["target_image"], raw["meta"]["colors"]
    assert len(set(colours)) == 2
    for mask, colour in zip([P1_FIT, P2_FIT], colours):
      colour_value = dense_labels.COLOR_VALUES[dense_labels.COLOR_NAMES.index(colour)]
      assert np.all(target[mask] == colour_value)
    assert np.all(target[~(P1_FIT | P2_FIT)] == 0)  # the cat's pixels too


def test_segmentation_skips_when_every_class_is_incomplete(built):
  with pytest.raises(tasks.SkipExample, match="no class to segment"):
    run("open_images_segmentation", built[1][SEG, "train"][T2])


def test_segmentation_generation_lists_every_masked_instance(built):
  r = built[1][SEG, "train"][T1]
  raw = run("open_images_segmentation_generation", r, seed=2)
  quoted = raw["prompt"].split('"')[1].strip()
  assert raw["prompt"] == f'What is the complete image? Segmentation color: " {quoted} "'
  pairs = [p.split(" : ") for p in quoted.split(" , ")]
  assert sorted(name for _, name in pairs) == ["cat", "person", "person"]
  for (colour, _), mask in zip(pairs, [P1_FIT, P2_FIT, C1]):
    colour_value = dense_labels.COLOR_VALUES[dense_labels.COLOR_NAMES.index(colour)]
    assert np.all(raw["image"][mask] == colour_value)
  np.testing.assert_array_equal(raw["target_image"], r["image"] / np.float32(255))
  # The partial map of T2 (one table of two) still makes an example.
  only_table = run("open_images_segmentation_generation", built[1][SEG, "train"][T2])
  assert only_table["prompt"].endswith(' : table "')


def test_relationship_task(built):
  r = built[1][REL, "train"][R1]
  by_target = {
    "person plays guitar": (PERSON_PX, "person", GUITAR_PX, "guitar"),
    "person interacts with dog": (PERSON_PX, "person", DOG_PX, "dog"),
    "person at table": (CLIPPED_PX, "person", TABLE_PX, "table"),
  }
  seen = set()
  for seed in range(20):
    raw = run("open_images_relationship", r, seed)
    subject_box, subject, object_box, obj = by_target[raw["target_text"]]  # never "is"
    assert raw["prompt"] == (
      f'What is the relationship between " {box(subject_box)} {subject} " and '
      f'" {box(object_box)} {obj} " ?'
    )
    assert raw["meta"]["predicate"] == raw["target_text"].split(" ", 1)[1].rsplit(" ", 1)[0]
    seen.add(raw["target_text"])
  assert seen == set(by_target)
  with pytest.raises(tasks.SkipExample, match="'is' attribute rows unused"):
    run("open_images_relationship", built[1][REL, "train"][R2])


def test_bad_records_are_skipped(built):
  r = dict(built[1][SEG, "train"][T1])
  r["width"] = W + 1
  with pytest.raises(tasks.SkipExample, match="not the record's height, width"):
    run("open_images_segmentation", r)
  r = dict(built[1][SEG, "train"][T1])
  r["objects"] = dict(r["objects"], mask=r["objects"]["mask"][:, :, :20])
  with pytest.raises(tasks.SkipExample, match="do not match the image"):
    run("open_images_segmentation", r)


@pytest.mark.parametrize(
  "name, removed",
  [
    (SEG, "train-masks-7.zip"),
    (SEG, "validation-annotations-object-segmentation.csv"),
    (REL, "oidv6-train-annotations-vrd.csv"),
    (REL, "oidv6-attributes-description.csv"),
  ],
)
def test_missing_release_file(tmp_path, name, removed):
  root = tmp_path / "downloads" / "manual" / oi.NAME
  write_release(root)
  (root / removed).unlink()
  with pytest.raises(common.MissingReleaseFile, match=removed):
    tfds.builder(name, data_dir=str(tmp_path)).download_and_prepare(file_format="array_record")


def test_release_files_by_hand(tmp_path):
  # Validation VRD: V6's name, else the V4/V5 one; neither names both.
  (tmp_path / "validation-annotations-vrd.csv").write_text(VRD_HEADER + "\n")
  assert oi._first_present(tmp_path, oi.VRD_CSV["validation"]) == "validation-annotations-vrd.csv"
  with pytest.raises(common.MissingReleaseFile, match="oidv6-validation.* or validation-"):
    oi._first_present(tmp_path / "nowhere", oi.VRD_CSV["validation"])
  # oidv6-class-descriptions.csv has a header row; the boxable file has none.
  (tmp_path / "oidv6-class-descriptions.csv").write_text(
    "LabelName,DisplayName\n/m/0dzct,Human face\n"
  )
  assert oi.read_descriptions(tmp_path / "oidv6-class-descriptions.csv") == {
    "/m/0dzct": "Human face"
  }
  assert (
    oi.attribute_name("(made of)Textile") == "textile" and oi.attribute_name("Wooden") == "wooden"
  )
  assert oi.predicate_name("interacts_with", {}) == "interacts with"


def test_geometry_by_hand():
  size = (W, H)
  np.testing.assert_allclose(oi.pixel_box("0.25", "0.75", "0.5", "1.0", size), (10, 15, 30, 30))
  np.testing.assert_allclose(oi.pixel_box("-0.1", "1.5", "0", "0.5", size), (0, 0, 40, 15))
  assert oi.pixel_box("0.5", "0.5", "0", "1", size) is None
  assert oi.pixel_box("nan", "0.5", "0", "1", size) is None
  # The release's rounding: a 1600 x 1068 mask of a 1024 x 684 image fits; transposed not.
  mask = _png(rect((1068, 1600), slice(0, 534), slice(0, 800)))
  fitted, how = oi.fit_mask(mask, (1024, 684))
  assert how == "masks resized to the image (nearest)" and fitted.shape == (684, 1024)
  assert fitted[:342, :512].all() and not fitted[342:, 512:].any()
  assert oi.fit_mask(_png(rect((1600, 1068), slice(0, 5), slice(0, 5))), (1024, 684))[0] is None
  # A 0/1 file keeps its ones.
  ones = io.BytesIO()
  PIL.Image.fromarray(rect(HW, slice(0, 3), slice(0, 3)).astype(np.uint8)).save(ones, "PNG")
  assert oi.fit_mask(ones.getvalue(), size)[0].sum() == 9
  assert oi.fit_mask(b"not a png", size) == (None, "masks dropped: unreadable PNG")


def test_data_show_draws_the_tasks_as_the_model_sees_them(built, tmp_path):
  """`python -m unified_io.data.show`'s library call on the prepared tiny release."""
  config = tiny_config.get_config()
  for name in ['open_images_segmentation', 'open_images_relationship']:
    out = tmp_path / f"{name}.png"
    show.show(config, name, 2, str(out), data_dir=str(built[0].parents[2]))
    assert out.stat().st_size > 0
