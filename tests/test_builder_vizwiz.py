"""uio_vizwiz: a tiny copy of the three VizWiz releases, in their formats, is built into
ArrayRecord files; the records match the files, the tasks' prompts and targets match
hand-written strings, the awkward cases (rejected and pre-canned captions, unanswerable
questions, masks of another size or orientation) go where the docs say, a missing release
file is named, and a perfect grounded-VQA prediction on a built record scores mask IoU 1."""

import io
import json
import types

import numpy as np
import PIL.Image
import PIL.ImageOps
import pytest
import tensorflow_datasets as tfds

from configs import tiny as tiny_config
from tests import specs
from unified_io.data import show
from unified_io.data import pipeline
from unified_io.data.builders import common
from unified_io.data.builders import vizwiz
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import vl_vizwiz
from unified_io.eval import outputs

CTX = tasks.TaskContext()
PRECANNED = "Quality issues are too severe to recognize visual content."
# Every test image is 32 wide, 16 high as stored: the 64-pixel target image below scales it by
# exactly 2, which nearest resizing undoes exactly (other scales move mask edges by a pixel).
W, H = 32, 16


def _jpeg(path, color, size=(W, H), orientation=None):
  path.parent.mkdir(parents=True, exist_ok=True)
  image = PIL.Image.new("RGB", size, color)
  if orientation is None:
    image.save(path, format="JPEG", quality=95)
  else:
    exif = PIL.Image.Exif()
    exif[vizwiz.EXIF_ORIENTATION] = orientation
    image.save(path, format="JPEG", quality=95, exif=exif.tobytes())


def _png(path, mask):
  path.parent.mkdir(parents=True, exist_ok=True)
  PIL.Image.fromarray(mask.astype(np.uint8) * 255).save(path)


def _json(path, data):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(data))


def _box(hw, rows, cols):
  mask = np.zeros(hw, bool)
  mask[rows, cols] = True
  return mask


def _caption(image_id, ann_id, text, precanned=False, rejected=False):
  return dict(
    image_id=image_id, id=ann_id, caption=text, is_precanned=precanned, is_rejected=rejected
  )


def _answers(*texts):
  return [{"answer": t, "answer_confidence": "yes"} for t in texts]


# Grounding masks (bool [rows, cols]) as released, by image stem.
G = "VizWiz_train_0000000"
MASKS = {
  f"{G}0": _box((H, W), slice(2, 6), slice(3, 9)),  # the image's own size
  f"{G}1": _box((W, H), slice(1, 4), slice(7, 11)),  # drawn on the displayed (EXIF 6) image
  f"{G}2": _box((H // 2, W // 2), slice(1, 3), slice(2, 5)),  # half resolution
  f"{G}3": _box((15, 15), slice(0, 5), slice(0, 5)),  # another aspect ratio: skipped
  f"{G}5": np.zeros((H, W), bool),  # empty: built, skipped by the task
}


def write_release(root):
  """The three releases under root (= <manual_dir>/uio_vizwiz), in their own layouts."""
  cap = root / "captions"
  _json(
    cap / "annotations/train.json",
    {
      "info": {"description": "tiny"},
      "images": [
        dict(file_name="VizWiz_train_00000000.jpg", id=10, text_detected=True, vizwiz_url=""),
        dict(file_name="VizWiz_train_00000001.jpg", id=11, text_detected=False, vizwiz_url=""),
      ],
      "annotations": [
        _caption(10, 102, "A can of soup on a table."),
        _caption(10, 101, "A red can of tomato soup."),
        _caption(10, 103, PRECANNED, precanned=True),
        _caption(10, 104, "asdf", rejected=True),
        _caption(11, 105, PRECANNED, precanned=True),
        _caption(11, 106, "blurry", rejected=True),
      ],
    },
  )
  _json(
    cap / "annotations/val.json",
    {
      "images": [dict(file_name="VizWiz_val_00000000.jpg", id=20, text_detected=False)],
      "annotations": [_caption(20, 201, "A laptop keyboard.")],
    },
  )
  for split, name, color in (
    ("train", "VizWiz_train_00000000.jpg", (200, 30, 30)),
    ("train", "VizWiz_train_00000001.jpg", (30, 200, 30)),
    ("val", "VizWiz_val_00000000.jpg", (30, 30, 200)),
  ):
    _jpeg(cap / split / name, color)

  vqa = root / "vqa"
  train = [
    dict(
      image="VizWiz_train_00000000.jpg",
      question="What  flavor is this soup?",
      answers=_answers("Tomato", "tomato ", "tomato", "", "tomato soup", *["tomato"] * 5),
      answer_type="other",
      answerable=1,
    ),
    dict(
      image="VizWiz_train_00000001.jpg",
      question="What is this?",
      answers=_answers(*["unanswerable"] * 7, *["unsuitable"] * 3),
      answer_type="unanswerable",
      answerable=0,
    ),
    dict(
      image="VizWiz_train_00000002.jpg",
      question="Is it on?",
      answers=_answers("no", "yes", "yes", "no"),
      answer_type="yes/no",
      answerable=1,
    ),
  ]
  _json(vqa / "Annotations/train.json", train)
  _json(
    vqa / "Annotations/val.json",
    [
      dict(
        image="VizWiz_val_00000000.jpg",
        question="What color is it?",
        answers=_answers(*["blue"] * 10),
        answer_type="other",
        answerable=1,
      )
    ],
  )
  for item in train:
    _jpeg(vqa / "train" / item["image"], (90, 90, 90))
  _jpeg(vqa / "val/VizWiz_val_00000000.jpg", (0, 0, 255))

  gr = root / "grounding"
  entry = dict(question="What is this?", height=H, width=W, answer_grounding=[])
  _json(
    gr / "train_grounding.json",
    {
      f"{G}0.jpg": dict(entry, most_common_answer="Soup", answers=_answers(*["soup"] * 10)),
      f"{G}1.jpg": dict(entry, question="Which key?", most_common_answer="enter"),
      f"{G}2.jpg": dict(entry, most_common_answer="", answers=["milk", "Milk", "juice"]),
      f"{G}3.jpg": dict(entry, most_common_answer="tea"),
      f"{G}4.jpg": dict(entry, most_common_answer="no mask"),
      f"{G}5.jpg": dict(entry, most_common_answer="nothing"),
    },
  )
  _json(gr / "val_grounding.json", {"VizWiz_val_00000000.jpg": dict(entry, most_common_answer="a")})
  for i in range(6):
    _jpeg(gr / f"train/{G}{i}.jpg", (10, 10, 10), orientation=6 if i == 1 else None)
  _jpeg(gr / "val/VizWiz_val_00000000.jpg", (10, 10, 10))
  for stem, mask in MASKS.items():
    _png(gr / f"binary_masks_png/train/{stem}.png", mask)
  _png(gr / "binary_masks_png/val/VizWiz_val_00000000.png", np.ones((H, W), bool))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("tfds")
  write_release(path / "downloads" / "manual" / vizwiz.NAME)
  for config in ("captions", "vqa", "grounding"):
    builder = tfds.builder(f"{vizwiz.NAME}/{config}", data_dir=str(path))
    builder.download_and_prepare(file_format="array_record")
  return str(path)


def records(data_dir, config, split="train"):
  source = pipeline.source(f"{vizwiz.NAME}/{config}", split, data_dir)
  found = [source[i] for i in range(len(source))]
  return {r["id"].decode(): r for r in found}


def run(task, record, seed=0):
  return tasks.get(task).preprocess(record, np.random.default_rng(seed), CTX)


def skip_reason(task, record):
  with pytest.raises(tasks.SkipExample) as info:
    run(task, record)
  return str(info.value)


def test_tasks_are_registered_on_the_configs():
  for name, builder, metric, output in (
    ("vizwiz_captioning", "uio_vizwiz/captions", tasks.Metric.CIDER, tasks.Output.TEXT),
    ("vizwiz_vqa", "uio_vizwiz/vqa", tasks.Metric.VQA_ACCURACY, tasks.Output.TEXT),
    ("vizwiz_grounding", "uio_vizwiz/grounding", tasks.Metric.GROUNDED_VQA, tasks.Output.TEXT_MASK),
  ):
    task = tasks.get(name)
    assert (task.builder, task.metric, task.output, task.size) == (builder, metric, output, None)
    assert dict(task.splits) == {"train": "train", "validation": "validation"}
  assert tasks.get("vizwiz_captioning").group == "image_captioning"
  assert vl_vizwiz.most_common(["b", "a", "a", "b"]) == "b"  # a tie goes to the first given
  assert vl_vizwiz.normalize_answer("  Coca  Cola ") == "coca cola"
  assert tasks.get("vizwiz_grounding").group == tasks.get("vizwiz_vqa").group == "vision_language"


def test_caption_records_and_task(data_dir):
  builder = tfds.builder("uio_vizwiz/captions", data_dir=data_dir)
  assert {s: builder.info.splits[s].num_examples for s in ("train", "validation")} == {
    "train": 2,
    "validation": 1,
  }
  found = records(data_dir, "captions")
  soup = found["VizWiz_train_00000000"]
  assert soup["image"].shape == (H, W, 3) and soup["image/id"] == 10 and soup["text_detected"]
  assert soup["image/filename"] == b"VizWiz_train_00000000.jpg"
  caps = soup["captions"]
  assert list(caps["id"]) == [101, 102, 103, 104]  # in caption-id order
  assert [t.decode() for t in caps["text"]][:2] == [
    "A red can of tomato soup.",
    "A can of soup on a table.",
  ]
  assert list(caps["is_precanned"]) == [False, False, True, False]
  assert list(caps["is_rejected"]) == [False, False, False, True]

  raw = run("vizwiz_captioning", soup)
  assert raw["prompt"] == "What does the image describe ?"
  assert raw["meta"]["captions"] == ["A red can of tomato soup.", "A can of soup on a table."]
  assert raw["target_text"] in raw["meta"]["captions"]
  assert raw["meta"]["example_id"] == "VizWiz_train_00000000"
  assert raw["meta"]["image_hw"] == (H, W)
  only_bad = found["VizWiz_train_00000001"]
  assert skip_reason("vizwiz_captioning", only_bad) == "no caption but rejected or pre-canned ones"
  val = records(data_dir, "captions", "validation")["VizWiz_val_00000000"]
  assert run("vizwiz_captioning", val)["target_text"] == "A laptop keyboard."


def test_vqa_records_and_task(data_dir):
  found = records(data_dir, "vqa")
  assert sorted(found) == [f"VizWiz_train_0000000{i}" for i in range(3)]
  soup = found["VizWiz_train_00000000"]
  assert soup["question"] == b"What  flavor is this soup?"  # stored as released
  assert [a.decode() for a in soup["answers"]][:5] == [
    "Tomato",
    "tomato ",
    "tomato",
    "",
    "tomato soup",
  ]
  assert list(soup["answer_confidences"]) == [b"yes"] * 10
  assert soup["answer_type"] == b"other" and soup["answerable"] == 1

  raw = run("vizwiz_vqa", soup)
  assert raw["prompt"] == "what flavor is this soup?"
  # "Tomato" and "tomato " count as "tomato": 8 of the 9 non-blank answers.
  assert raw["target_text"] == "tomato"
  assert raw["meta"]["answers"] == ["tomato"] * 3 + ["tomato soup"] + ["tomato"] * 5
  unanswerable = run("vizwiz_vqa", found["VizWiz_train_00000001"])
  assert unanswerable["prompt"] == "what is this?"
  assert unanswerable["target_text"] == "unanswerable"
  assert unanswerable["meta"]["answerable"] == 0
  assert unanswerable["meta"]["answer_type"] == "unanswerable"
  assert run("vizwiz_vqa", found["VizWiz_train_00000002"])["target_text"] == "no"  # tie: first
  no_answers = dict(soup, answers=np.array([b"", b" "], object))
  assert skip_reason("vizwiz_vqa", no_answers) == "no answers"
  assert skip_reason("vizwiz_vqa", dict(soup, question=b"  ")) == "blank question"
  val = records(data_dir, "vqa", "validation")["VizWiz_val_00000000"]
  assert run("vizwiz_vqa", val)["target_text"] == "blue"


def test_grounding_masks_are_fitted_to_the_stored_image(data_dir):
  found = records(data_dir, "grounding")
  # 3: another aspect ratio, 4: no mask file; both skipped by the builder.
  assert sorted(found) == [f"{G}{i}" for i in (0, 1, 2, 5)]
  for record in found.values():
    assert record["image"].shape == (H, W, 3)  # TFDS decodes the pixels as stored
    assert record["mask"].shape == (H, W, 1) and set(np.unique(record["mask"])) <= {0, 255}
  np.testing.assert_array_equal(found[f"{G}0"]["mask"][..., 0] > 0, MASKS[f"{G}0"])
  # EXIF 6 shows the stored image turned a quarter clockwise: displayed = rot90(stored, -1).
  np.testing.assert_array_equal(found[f"{G}1"]["mask"][..., 0] > 0, np.rot90(MASKS[f"{G}1"], 1))
  half = MASKS[f"{G}2"].repeat(2, axis=0).repeat(2, axis=1)
  np.testing.assert_array_equal(found[f"{G}2"]["mask"][..., 0] > 0, half)
  assert found[f"{G}0"]["answers"].tolist() == [b"soup"] * 10
  assert (
    found[f"{G}1"]["answers"].tolist() == [] and found[f"{G}1"]["most_common_answer"] == b"enter"
  )


def test_grounding_task(data_dir):
  found = records(data_dir, "grounding")
  raw = run("vizwiz_grounding", found[f"{G}0"])
  assert raw["prompt"] == "what is this?" and raw["target_text"] == "soup"
  assert raw["target_image_resize"] == "nearest"
  assert raw["target_image"].shape == (H, W, 3) and raw["target_image"].dtype == np.float32
  white = raw["target_image"].min(axis=-1) == 1.0
  np.testing.assert_array_equal(white, MASKS[f"{G}0"])
  assert set(np.unique(raw["target_image"])) == {0.0, 1.0}
  np.testing.assert_array_equal(raw["meta"]["mask"], MASKS[f"{G}0"])
  assert raw["meta"]["image_hw"] == (H, W) and raw["meta"]["answers"] == ["soup"] * 10
  rotated = run("vizwiz_grounding", found[f"{G}1"])
  assert rotated["prompt"] == "which key?" and rotated["meta"]["answers"] == ["enter"]
  # No most_common_answer: the most common of the answers, "milk" (2 of 3).
  assert run("vizwiz_grounding", found[f"{G}2"])["target_text"] == "milk"
  assert skip_reason("vizwiz_grounding", found[f"{G}5"]) == "empty answer mask"
  no_answer = dict(found[f"{G}1"], most_common_answer=b"")
  assert skip_reason("vizwiz_grounding", no_answer) == "no answer"
  small = dict(found[f"{G}0"], mask=found[f"{G}0"]["mask"][:6])
  assert skip_reason("vizwiz_grounding", small) == "mask (6, 32) does not match the image (16, 32)"


def test_a_perfect_grounded_prediction_scores_iou_one(data_dir):
  """The target image at the VQ-GAN resolution, read back by the grounded VQA scorer."""
  spec = specs.tiny_spec(64, 32)
  found = records(data_dir, "grounding")
  task = tasks.get("vizwiz_grounding")
  raws, preds = [], []
  for stem in (f"{G}0", f"{G}1", f"{G}2"):
    features, raw, _ = pipeline.prepare(task, found[stem], np.random.default_rng(0), spec, CTX)
    raws.append(raw)
    image = (np.asarray(features["image_target_pixels"], np.float32) + 1.0) / 2.0
    preds.append({"text": raw["target_text"], "tokens": None, "image": image})
  ex = types.SimpleNamespace(raws=raws, features={})
  ctx = outputs.Context(spec.tokenizer.layout, spec.tokenizer.decode, max_depth=10.0)
  score = outputs.get(task.output).scorers[task.metric](ex, preds, ctx)
  assert score.extra["mask_iou"] == pytest.approx(1.0)
  # The answers: 10 x "soup" and ["enter"] score 1; "milk" against milk, milk, juice scores
  # 2/3 (each answer left out in turn: 1/2, 1/2, 1, over min(3, n - 1) = 2 annotators).
  assert score.value == pytest.approx((1 + 1 + 2 / 3) / 3)
  # The mask of another question scores below 1.
  preds[0]["image"] = preds[1]["image"]
  score = outputs.get(task.output).scorers[task.metric](ex, preds, ctx)
  assert score.extra["mask_iou"] < 1.0


def test_missing_release_files_are_named(tmp_path):
  root = tmp_path / "downloads" / "manual" / vizwiz.NAME
  write_release(root)
  for path in sorted((root / "grounding/binary_masks_png/val").iterdir()):
    path.unlink()
  (root / "grounding/binary_masks_png/val").rmdir()
  builder = tfds.builder("uio_vizwiz/grounding", data_dir=str(tmp_path))
  with pytest.raises(common.MissingReleaseFile, match=r"binary_masks_png/val/"):
    builder.download_and_prepare(file_format="array_record")
  (root / "vqa/train/VizWiz_train_00000002.jpg").unlink()
  builder = tfds.builder("uio_vizwiz/vqa", data_dir=str(tmp_path))
  with pytest.raises(common.MissingReleaseFile, match=r"train/VizWiz_train_00000002\.jpg"):
    builder.download_and_prepare(file_format="array_record")
  empty = tmp_path / "empty"
  with pytest.raises(common.MissingReleaseFile, match=r"uio_vizwiz"):
    tfds.builder("uio_vizwiz/captions", data_dir=str(empty)).download_and_prepare(
      file_format="array_record"
    )


def _displayed(stored, orientation):
  """The mask as an EXIF-aware viewer shows it: PIL's exif_transpose of a tagged PNG."""
  exif = PIL.Image.Exif()
  exif[vizwiz.EXIF_ORIENTATION] = orientation
  buffer = io.BytesIO()
  PIL.Image.fromarray(stored.astype(np.uint8) * 255).save(buffer, "PNG", exif=exif.tobytes())
  with PIL.Image.open(buffer) as tagged:
    return PIL.ImageOps.exif_transpose(tagged)


def test_fit_mask_undoes_every_orientation():
  stored = np.random.default_rng(0).random((H, W)) > 0.5
  for orientation in range(2, 9):
    displayed = _displayed(stored, orientation)
    assert displayed.size == ((H, W) if orientation >= 5 else (W, H)), orientation
    fitted, how = vizwiz.fit_mask(displayed, (W, H), orientation)
    assert how == "EXIF orientation undone", orientation
    np.testing.assert_array_equal(fitted, stored)
  # Untagged: kept; a tagged mask of the stored, not the displayed, size: kept too.
  as_stored = PIL.Image.fromarray(stored.astype(np.uint8) * 255)
  assert vizwiz.fit_mask(as_stored, (W, H), 1)[1] == "as released"
  assert vizwiz.fit_mask(as_stored, (W, H), 6)[1] == "as released"
  # 0/1 masks keep their ones.
  np.testing.assert_array_equal(
    vizwiz.fit_mask(PIL.Image.fromarray(stored.astype(np.uint8)), (W, H), 1)[0], stored
  )


def test_data_show_draws_the_tasks_as_the_model_sees_them(data_dir, tmp_path):
  """`python -m unified_io.data.show`'s library call on the prepared tiny release."""
  config = tiny_config.get_config()
  for name in ['vizwiz_captioning', 'vizwiz_vqa', 'vizwiz_grounding']:
    out = tmp_path / f"{name}.png"
    show.show(config, name, 2, str(out), data_dir=data_dir)
    assert out.stat().st_size > 0
