"""Output kinds: every kind is implemented, tasks are checked when declared, and every scorer
gives hand-derived values on tiny fabricated perfect, wrong and baseline predictions."""

import types

import numpy as np
import pytest

from unified_io.common import coco_keypoints
from unified_io.common import dense_labels
from unified_io.common import locations
from unified_io.common import text_tokenizer
from unified_io.data.tasks import registry as tasks_lib
from unified_io.eval import outputs
from unified_io.eval import postprocess

O, M = tasks_lib.Output, tasks_lib.Metric
K = coco_keypoints.NUM_KEYPOINTS


@pytest.fixture(scope="module")
def tok():
  return text_tokenizer.TextTokenizer("tokenizers/uio_tiny_2k.model", 512)


@pytest.fixture(scope="module")
def ctx(tok):
  return outputs.Context(tok.layout, tok.decode, max_depth=10.0)


def _examples(metas, targets=None, target_images=None):
  """What a scorer reads: raw examples (ground truth in meta) and batched features."""
  raws = [
    {"meta": m, "target_text": t, "prompt": ""} for m, t in zip(metas, targets or [""] * len(metas))
  ]
  features = {}
  if target_images is not None:
    features["image_target_pixels"] = np.stack(target_images) * 2.0 - 1.0  # [-1, 1]
  return types.SimpleNamespace(raws=raws, features=features)


def _score(output, metric, ex, preds, ctx):
  return outputs.get(output).scorers[metric](ex, preds, ctx)


def _texts(texts):
  return [{"text": t, "tokens": np.zeros(0, np.int32), "image": None} for t in texts]


# ----------------------------------------------------------------- kinds and registration


def test_every_output_kind_is_implemented_with_exactly_its_metrics():
  assert set(outputs.KINDS) == set(O)
  for output in O:
    kind = outputs.get(output)
    assert kind.output is output and set(kind.metrics) == set(tasks_lib.METRICS[output])
    assert kind.text_decoding is not None or kind.image_decoding is not None
    assert (kind.image_decoding is not None) == output.has_image
  # Every metric suits some kind, as a per-example metric or as an image metric (COCO AP over
  # whole images, eval/image_metrics.py), never both; every task's metric has a scorer.
  per_example = {m for ms in tasks_lib.METRICS.values() for m in ms}
  whole_image = {m for ms in tasks_lib.IMAGE_METRICS.values() for m in ms}
  assert per_example | whole_image == set(M) and not per_example & whole_image
  for task in tasks_lib.all_tasks().values():
    if task.metric is not None:
      assert task.metric in outputs.get(task.output).scorers, task.name


def _task(**kw):
  return tasks_lib.Task(
    name="my_task", group="nlp", builder="b", preprocess=lambda *a: {}, prompts=("p",), **kw
  )


def test_task_kinds_and_metrics_are_checked_when_declared():
  task = _task(output="boxes", metric="detection_map")  # strings become the enum members
  assert task.output is O.BOXES and task.metric is M.DETECTION_MAP
  with pytest.raises(ValueError, match="my_task.*output kind 'picture'"):
    _task(output="picture", metric="accuracy")
  with pytest.raises(ValueError, match="my_task.*metric 'acuracy'"):
    _task(output=O.TEXT, metric="acuracy")
  with pytest.raises(ValueError, match="my_task.*depth_rmse does not suit output boxes"):
    _task(output=O.BOXES, metric=M.DEPTH_RMSE)
  with pytest.raises(ValueError, match="my_task"):
    tasks_lib.register(_task(output=O.CHOICE, metric=M.CIDER))
  assert "my_task" not in tasks_lib.all_tasks()


# ------------------------------------------------------------------------------ text


def test_accuracy():
  ex = _examples([{}] * 4, targets=["cat", "dog", "cat", "cat"])
  assert _score(O.CHOICE, M.ACCURACY, ex, _texts(["cat", "dog", "cat", "cat"]), None).value == 1
  assert _score(O.TEXT, M.ACCURACY, ex, _texts(["bird"] * 4), None).value == 0.0
  s = _score(O.CHOICE, M.ACCURACY, ex, _texts([" cat "] * 4), None)  # stripped: 3 of 4 right
  # The baseline answers the majority "cat" everywhere: 3 of 4.
  assert s.value == 0.75 and s.baseline == 0.75 and s.baseline_is == "majority answer"
  assert not s.lower_is_better and not s.beats_baseline  # a tie does not beat it


def test_vqa_accuracy():
  # Ten annotators agreeing: a match scores min(9 / 3, 1) = 1 in every leave-one-out subset.
  ex = _examples([{"answers": ["2"] * 10}, {"answers": ["red"] * 10}, {"answers": ["2"] * 10}])
  s = _score(O.TEXT, M.VQA_ACCURACY, ex, _texts(["2", "red", "2"]), None)
  # Majority first answer "2": right on 2 of 3 questions.
  assert s.value == 1.0 and s.baseline == pytest.approx(2 / 3)
  assert _score(O.TEXT, M.VQA_ACCURACY, ex, _texts(["blue"] * 3), None).value == 0.0


def test_exact_match_normalises_case_period_and_spaces():
  ex = _examples([{}] * 3, targets=["paris", "rome", "paris"])
  s = _score(O.TEXT, M.EXACT_MATCH, ex, _texts(["Paris.", " rome ", "PARIS"]), None)
  assert s.value == 1.0 and s.baseline == pytest.approx(2 / 3)  # majority "paris": 2 of 3
  assert _score(O.TEXT, M.EXACT_MATCH, ex, _texts(["london"] * 3), None).value == 0.0


CAPTIONS = [
  "red circle near blue square",
  "green triangle under yellow star",
  "small purple hexagon beside orange disc",
]


def test_cider():
  # One reference each, no word shared between images (every n-gram's IDF is log 3 > 0): a
  # caption equal to its reference has cosine 1 for n = 1..4 and no length penalty, so
  # CIDEr-D = 10 * mean(1, 1, 1, 1) = 10. The baseline (another image's caption) and a
  # caption of unseen words share no n-gram: 0.
  ex = _examples([{"captions": [c]} for c in CAPTIONS])
  s = _score(O.TEXT, M.CIDER, ex, _texts(CAPTIONS), None)
  assert s.value == pytest.approx(10.0) and s.baseline == 0.0
  assert s.baseline_is == "another image's caption"
  assert _score(O.TEXT, M.CIDER, ex, _texts(["w x y z"] * 3), None).value == 0.0


def test_rouge_l():
  # Equal to the reference: LCS = both lengths, P = R = 1, F = 1. No common word: 0.
  ex = _examples([{}] * 3, targets=CAPTIONS)
  s = _score(O.TEXT, M.ROUGE_L, ex, _texts(CAPTIONS), None)
  assert s.value == pytest.approx(1.0) and s.baseline == 0.0
  assert _score(O.TEXT, M.ROUGE_L, ex, _texts(["w x y z"] * 3), None).value == 0.0


def test_grounded_vqa_scores_the_answer_and_logs_the_mask_iou(ctx):
  mask = np.zeros((16, 16), bool)
  mask[4:12, 4:12] = True
  ex = _examples([{"answers": ["yes"] * 10, "mask": mask, "image_hw": (16, 16)}] * 2)
  white = np.repeat(mask[..., None], 3, axis=-1).astype(np.float32)  # white on black
  preds = [{"text": "yes", "tokens": None, "image": white}] * 2
  s = _score(O.TEXT_MASK, M.GROUNDED_VQA, ex, preds, ctx)
  assert s.value == 1.0 and s.extra["mask_iou"] == pytest.approx(1.0)
  # Wrong answer, and a mask of the other half: the 64 gt pixels are not in it, IoU 0.
  preds = [{"text": "no", "tokens": None, "image": 1.0 - white}] * 2
  s = _score(O.TEXT_MASK, M.GROUNDED_VQA, ex, preds, ctx)
  assert s.value == 0.0 and s.extra["mask_iou"] == 0.0


# ------------------------------------------------------------------------- boxes, joints


HW = (32, 32)
A, B = np.array([0.0, 0.0, 10.0, 10.0]), np.array([20.0, 20.0, 30.0, 30.0])


def _box_tokens(tok, boxes, label=""):
  ids = [locations.box_to_location_ids(b, HW, tok.layout) for b in boxes]
  if label:
    ids.append(np.asarray(tok.encode(label), np.int32))
  return np.concatenate(ids) if ids else np.zeros(0, np.int32)


def test_refexp_accuracy(tok, ctx):
  ex = _examples([{"box": A, "image_hw": HW}, {"box": B, "image_hw": HW}])
  perfect = [{"tokens": _box_tokens(tok, [b]), "text": ""} for b in (A, B)]
  swapped = [{"tokens": _box_tokens(tok, [b]), "text": ""} for b in (B, A)]
  s = _score(O.BOXES, M.BOX_IOU, ex, perfect, ctx)
  # Perfect up to location bins (IoU ~0.99 >= 0.5): 1. The mean box (10, 10, 20, 20) touches
  # A and B at one corner only: IoU 0, baseline 0. Swapped boxes do not overlap: 0.
  assert s.value == 1.0 and s.baseline == 0.0 and s.baseline_is == "mean box"
  assert _score(O.BOXES, M.BOX_IOU, ex, swapped, ctx).value == 0.0
  no_box = [{"tokens": np.zeros(0, np.int32), "text": ""}] * 2
  assert _score(O.BOXES, M.BOX_IOU, ex, no_box, ctx).value == 0.0


def test_detection_ap50(tok, ctx):
  metas = [
    {"boxes": [A], "labels": ["circle"], "image_hw": HW},
    {"boxes": [B], "labels": ["circle"], "image_hw": HW},
  ]
  ex = _examples(metas)
  perfect = [{"tokens": _box_tokens(tok, [b], "circle"), "text": ""} for b in (A, B)]
  s = _score(O.BOXES, M.DETECTION_MAP, ex, perfect, ctx)
  # Every gt box found at IoU > 0.5 with the right class and no false positive: precision 1
  # at every recall, AP50 1. The baseline's mean box (10, 10, 20, 20) hits neither: AP50 0.
  assert s.value == pytest.approx(1.0) and s.baseline == pytest.approx(0.0)
  swapped = [{"tokens": _box_tokens(tok, [b], "circle"), "text": ""} for b in (B, A)]
  assert _score(O.BOXES, M.DETECTION_MAP, ex, swapped, ctx).value == pytest.approx(0.0)
  wrong_class = [{"tokens": _box_tokens(tok, [b], "square"), "text": ""} for b in (A, B)]
  assert _score(O.BOXES, M.DETECTION_MAP, ex, wrong_class, ctx).value == pytest.approx(0.0)
  # Localization (meta class_name): every box counts as the asked class, labels or not.
  local = [dict(m, class_name="circle") for m in metas]
  unlabelled = [{"tokens": _box_tokens(tok, [b]), "text": ""} for b in (A, B)]
  assert _score(O.BOXES, M.DETECTION_MAP, _examples(local), unlabelled, ctx).value == pytest.approx(
    1.0
  )


def test_keypoint_oks(tok, ctx):
  hw, box = (64, 64), np.array([16.0, 16.0, 48.0, 48.0])
  rng = np.random.default_rng(0)
  joints = rng.uniform(20, 44, (K, 2))
  meta = {
    "keypoints": joints,
    "visibility": np.full(K, 2),
    "box": box,
    "area": 1024.0,
    "image_hw": hw,
  }

  def tokens(points):
    text = postprocess.keypoints_to_text(
      np.concatenate([points, np.full((K, 1), 2)], 1), hw, tok.layout
    )
    return np.asarray(tok.encode(text), np.int32)

  ex = _examples([meta])
  s = _score(O.KEYPOINTS, M.KEYPOINT_OKS, ex, [{"tokens": tokens(joints), "text": ""}], ctx)
  # Exact up to location bins (a fraction of a pixel against sqrt(area) = 32 px): OKS ~1.
  assert s.value == pytest.approx(1.0, abs=0.02) and 0.0 < s.baseline < 0.9
  # Every joint at the image corner (0, 0), at least 28 px from the true ones (all in
  # [20, 44]): d^2 / (2 area k^2) >= 784 / (2 * 1024 * (2 * 0.107)^2) = 8.4 even for the hips
  # (the largest sigma, 0.107), so each joint scores below exp(-8.4) = 2e-4.
  corner = np.zeros((K, 2))
  assert (
    _score(O.KEYPOINTS, M.KEYPOINT_OKS, ex, [{"tokens": tokens(corner), "text": ""}], ctx).value
    < 1e-3
  )
  # The baseline puts every joint at the box centre: a person whose joints all are there
  # scores 1 for it.
  centred = dict(meta, keypoints=np.full((K, 2), 32.0))
  assert _score(
    O.KEYPOINTS, M.KEYPOINT_OKS, _examples([centred]), [{"tokens": tokens(joints), "text": ""}], ctx
  ).baseline == pytest.approx(1.0)


# -------------------------------------------------------------------------------- images


def test_depth_rmse(ctx):
  gts = [np.full((16, 16), 2.0, np.float32), np.full((16, 16), 4.0, np.float32)]
  ex = _examples([{"depth": g, "image_hw": (16, 16)} for g in gts])

  def preds(depths):
    return [{"image": dense_labels.depth_to_image(d, ctx.max_depth), "text": ""} for d in depths]

  s = _score(O.DEPTH, M.DEPTH_RMSE, ex, preds(gts), ctx)
  # Perfect: exact up to the float32 grey level. Baseline: the mean depth 3 m, 1 m off
  # everywhere in both images: RMSE 1.
  assert s.value < 1e-3 and s.baseline == pytest.approx(1.0, abs=1e-5) and s.lower_is_better
  assert _score(
    O.DEPTH, M.DEPTH_RMSE, ex, preds([g + 1.5 for g in gts]), ctx
  ).value == pytest.approx(1.5, abs=1e-3)  # 1.5 m off everywhere
  assert s.beats_baseline


def test_normal_angle(ctx):
  up, right = np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])
  gts = [np.broadcast_to(n, (8, 8, 3)).astype(np.float32) for n in (up, right)]
  ex = _examples([{"normals": g, "image_hw": (8, 8)} for g in gts])

  def preds(normals):
    return [{"image": dense_labels.normals_to_image(n), "text": ""} for n in normals]

  s = _score(O.NORMALS, M.NORMAL_ANGLE, ex, preds(gts), ctx)
  # Perfect: 0 degrees. Baseline: the mean normal (1, 0, 1) / sqrt 2 is 45 degrees from both.
  assert s.value < 0.1 and s.baseline == pytest.approx(45.0, abs=1e-3) and s.lower_is_better
  assert s.extra["within_11.25"] == 100.0 and s.extra["median"] < 0.1
  # Swapped: up against right, 90 degrees everywhere.
  swapped = _score(O.NORMALS, M.NORMAL_ANGLE, ex, preds(gts[::-1]), ctx)
  assert swapped.value == pytest.approx(90.0, abs=0.1)
  assert swapped.extra["median"] == pytest.approx(90.0, abs=0.1)
  assert swapped.extra["within_30"] == 0.0


def test_segmentation_iou(ctx):
  gt = np.zeros((1, 32, 32), bool)
  gt[0, :16, :16] = True
  ex = _examples([{"masks": gt, "image_hw": (32, 32)}])
  colour = np.asarray(dense_labels.NAMED_COLORS[0][1], np.float32) / 255.0

  def painted(mask):
    image = np.zeros((32, 32, 3), np.float32)
    image[mask] = colour
    return [{"image": image, "text": ""}]

  s = _score(O.SEGMENTATION, M.SEGMENTATION_IOU, ex, painted(gt[0]), ctx)
  # Perfect: one mask matched at IoU 1 over (1 prediction + 0 unmatched gt) = 1. Baseline:
  # the whole image, IoU 256 / 1024 = 0.25, over 1 prediction = 0.25.
  assert s.value == pytest.approx(1.0) and s.baseline == pytest.approx(0.25)
  other = np.zeros((32, 32), bool)
  other[16:, 16:] = True  # disjoint: matched at IoU 0
  assert _score(O.SEGMENTATION, M.SEGMENTATION_IOU, ex, painted(other), ctx).value == 0.0
  assert (
    _score(O.SEGMENTATION, M.SEGMENTATION_IOU, ex, painted(np.zeros_like(other)), ctx).value == 0.0
  )  # all background: no mask, 0 / (0 + 1 unmatched gt)


def test_image_psnr():
  targets = [np.full((8, 8, 3), 0.2, np.float32), np.full((8, 8, 3), 0.7, np.float32)]
  ex = _examples([{}, {}], target_images=targets)
  off = [{"image": t + 0.1, "text": ""} for t in targets]
  s = _score(O.IMAGE, M.IMAGE_PSNR, ex, off, None)
  # Off by 0.1 everywhere: MSE 0.01, PSNR 10 log10(1 / 0.01) = 20 dB. Baseline: the other
  # image, 0.5 off: MSE 0.25, 10 log10(4) = 6.02 dB.
  assert s.value == pytest.approx(20.0, abs=1e-4)
  assert s.baseline == pytest.approx(10 * np.log10(4.0), abs=1e-4)
  perfect = [{"image": t, "text": ""} for t in targets]
  # Perfect: MSE floored at 1e-10, 100 dB.
  assert _score(O.IMAGE, M.IMAGE_PSNR, ex, perfect, None).value == pytest.approx(100.0, abs=1e-3)


# ------------------------------------------------------------------------------- drawing


def test_kinds_draw_on_the_input_or_as_their_own_picture(tok, ctx):
  image = np.zeros((32, 32, 3), np.uint8)
  boxes = outputs.get(O.BOXES)
  fields = boxes.parse({"tokens": _box_tokens(tok, [A], "circle")}, HW, ctx)
  assert fields["labels"] == ["circle"]
  drawn = np.asarray(boxes.draw(image, fields, 64))
  assert drawn.shape[:2] == (64, 64) and drawn.any()
  assert boxes.draw(None, fields, 64) is None  # nothing to draw boxes on
  depth = outputs.get(O.DEPTH)
  assert not depth.draws_on_input
  picture = depth.draw(None, {"depth": np.full((4, 4), 5.0)}, 64, 10.0)
  assert picture.shape == (4, 4, 3) and picture.dtype == np.uint8
  assert outputs.get(O.CHOICE).draw(image, {}, 64) is None


def test_each_text_decoding_passes_its_logit_mask():
  """Keypoints mask the not-visible token, box lists decode with the EOS-against-boxes rule,
  plain text has no mask; the mask is the predictor's own (one compiled program each)."""

  class Recorder:
    keypoint_mask_fn, box_list_mask_fn = object(), object()

    def __init__(self):
      self.masks = []

    def text_with_scores(self, features, logit_mask_fn=None, **_):
      self.masks.append(logit_mask_fn)
      rows = len(features["text_inputs"])
      return [""] * rows, np.zeros((rows, 1), np.int32), np.zeros(rows)

  features = {"text_inputs": np.zeros((2, 4), np.int32)}
  recorder = Recorder()
  for output in (tasks_lib.Output.KEYPOINTS, tasks_lib.Output.BOXES, tasks_lib.Output.TEXT):
    outputs.decode(outputs.get(output), recorder, features)
  assert recorder.masks == [Recorder.keypoint_mask_fn, Recorder.box_list_mask_fn, None]
