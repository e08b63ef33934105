"""uio_framenet and uio_blendedmvs: tiny copies of the two releases, in their formats (PNG
frames and FrameNet's split pickle; blended JPEGs, MVSNet cam.txt files and PFM depth maps
written here), are built into ArrayRecord files; the records match the files, the normals
derived from depth match the analytic plane, the awkward cases go where the docstring
says, the tasks' prompts and targets match hand-made values, a missing release file is
named, and a perfect prediction scores a mean angle error near zero."""

import pickle
import struct
import types

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

from configs import tiny as tiny_config
from tests import specs
from unified_io.data import show
from unified_io.data import pipeline
from unified_io.data.builders import common
from unified_io.data.builders import surface_normals as sn
from unified_io.data.tasks import ext_surface_normals  # noqa: F401  (registers the tasks)
from unified_io.data.tasks import registry as tasks
from unified_io.eval import outputs

CTX = tasks.TaskContext()
PROMPT = "What is the surface normal of the image ?"
FW, FH = 8, 6  # FrameNet frames (the release's are 640 x 480)
BW, BH = 16, 12  # BlendedMVS images (the low-res set's are 768 x 576)
SCENE_A = "5c1f33f1d33e1f2e4aa6dda4"  # 24-hex project ids, as in the release's lists
SCENE_B = "5b7a3890fc8fcf6781e2593a"
K = np.array([[20.0, 0.0, 7.5], [0.0, 18.0, 5.5], [0.0, 0.0, 1.0]])
PLANE_N = np.array([0.2, -0.3, -0.9]) / np.linalg.norm([0.2, -0.3, -0.9])
EXTRINSIC = np.array([[1, 0, 0, 0.5], [0, 0, -1, 1.0], [0, 1, 0, 2.0], [0, 0, 0, 1.0]])

# FrameNet normal pixels (uint8 RGB as released): a wall facing the camera at the top, the
# floor at the bottom, the left column without a normal (black).
WALL, FLOOR = (128, 128, 0), (125, 17, 64)


def framenet_normal():
  rgb = np.zeros((FH, FW, 3), np.uint8)
  rgb[: FH // 2] = WALL
  rgb[FH // 2 :] = FLOOR
  rgb[:, 0] = 0
  return rgb


def _save(path, array, fmt="PNG", mode=None):
  path.parent.mkdir(parents=True, exist_ok=True)
  image = PIL.Image.fromarray(array)
  PIL.Image.Image.save(image.convert(mode) if mode else image, path, format=fmt)


def write_framenet(root):
  """<manual_dir>/uio_framenet: split pickle with absolute paths, scannet-frames/<scene>/."""
  frames = root / "scannet-frames"

  def frame(scene, number, colour, normal, normal_mode=None):
    stem = frames / scene / f"frame-{number:06d}"
    _save(stem.parent / f"{stem.name}-color.png", np.full((FH, FW, 3), colour, np.uint8))
    _save(stem.parent / f"{stem.name}-normal.png", normal, mode=normal_mode)
    # Files of the release the builder does not read.
    _save(stem.parent / f"{stem.name}-orient-mask.png", np.full((FH, FW), 255, np.uint8))

  frame("scene0000_00", 0, (200, 10, 10), framenet_normal())
  frame("scene0000_00", 10, (10, 200, 10), framenet_normal(), normal_mode="RGBA")
  frame("scene0000_00", 20, (10, 10, 200), np.zeros((FH // 2, FW // 2, 3), np.uint8))
  frame("scene0000_00", 30, (90, 90, 90), np.zeros((FH, FW, 3), np.uint8))  # all black
  frame("scene0707_00", 0, (50, 50, 50), framenet_normal())

  def paths(prefix, entries, suffix):
    return [f"{prefix}/scene{s}/frame-{n:06d}-{suffix}" for s, n in entries]

  train = [("0000_00", 0), ("0000_00", 10), ("0000_00", 20), ("0000_00", 30), ("0000_00", 0)]
  test = [("0707_00", 0)]
  split = {
    name: [
      paths("/orion/downloads/framenet", entries, "color.png"),
      paths("/orion/downloads/framenet/", entries, "orient.png"),
      paths("/orion/downloads/framenet/", entries, "orient-mask.png"),
    ]
    for name, entries in (("train", train), ("test", test))
  }
  root.mkdir(parents=True, exist_ok=True)
  (root / "train_test_split.pkl").write_bytes(pickle.dumps(split, protocol=2))


def write_pfm(path, depth, little_endian=True):
  """PFM as the release writes it: "Pf", "W H", scale (< 0: little-endian), rows bottom-up."""
  path.parent.mkdir(parents=True, exist_ok=True)
  order = "<" if little_endian else ">"
  height, width = depth.shape
  header = f"Pf\n{width} {height}\n{-1.0 if little_endian else 1.0}\n".encode()
  body = np.flipud(depth).astype(order + "f4").tobytes()
  path.write_bytes(header + body)


def write_cam(path, extrinsic, k, depth_line="2.5 0.01 192 4.4"):
  path.parent.mkdir(parents=True, exist_ok=True)
  rows = lambda m: "\n".join(" ".join(f"{v:.6f}" for v in row) for row in m)  # noqa: E731
  path.write_text(f"extrinsic\n{rows(extrinsic)}\n\nintrinsic\n{rows(k)}\n\n{depth_line}\n")


def plane_depth():
  rows, cols = np.meshgrid(np.arange(BH), np.arange(BW), indexing="ij")
  rays = np.stack([cols, rows, np.ones_like(cols)], axis=-1) @ np.linalg.inv(K).T
  return (-3.0 / (rays @ PLANE_N)).astype(np.float32)


def write_blendedmvs(root):
  """<manual_dir>/uio_blendedmvs: the two lists and each scene's three folders."""
  root.mkdir(parents=True, exist_ok=True)
  (root / "training_list.txt").write_bytes(f"{SCENE_A}\r\n".encode())  # the release's CRLF
  (root / "validation_list.txt").write_text(f"{SCENE_B}\n\n")
  (root / "all_list.txt").write_text(f"{SCENE_A}\n{SCENE_B}\n")  # not read

  def view(scene, number, depth, colour, little_endian=True, depth_line="2.5 0.01 192 4.4"):
    name = f"{number:08d}"
    _save(
      root / scene / "blended_images" / f"{name}.jpg",
      np.full((BH, BW, 3), colour, np.uint8),
      "JPEG",
    )
    _save(
      root / scene / "blended_images" / f"{name}_masked.jpg",
      np.zeros((BH, BW, 3), np.uint8),
      "JPEG",
    )
    write_cam(root / scene / "cams" / f"{name}_cam.txt", EXTRINSIC, K, depth_line)
    write_pfm(root / scene / "rendered_depth_maps" / f"{name}.pfm", depth, little_endian)

  holed = plane_depth()
  holed[4, 5] = 0.0  # no surface there
  view(SCENE_A, 0, holed, (120, 60, 30))
  view(SCENE_A, 1, np.zeros((BH, BW), np.float32), (0, 0, 0))  # empty rendering
  view(SCENE_A, 2, plane_depth()[:, :-2], (60, 60, 60))  # depth of another size
  view(SCENE_B, 0, plane_depth(), (30, 60, 120), little_endian=False, depth_line="-1 0.01")
  (root / SCENE_A / "cams" / "pair.txt").write_text("3\n")  # not read


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("tfds")
  write_framenet(path / "downloads" / "manual" / sn.FRAMENET)
  write_blendedmvs(path / "downloads" / "manual" / sn.BLENDEDMVS)
  for name in (sn.FRAMENET, sn.BLENDEDMVS):
    tfds.builder(name, data_dir=str(path)).download_and_prepare(file_format="array_record")
  return str(path)


def records(data_dir, name, split):
  source = pipeline.source(name, split, data_dir)
  return {r["id"].decode(): r for r in (source[i] for i in range(len(source)))}


def run(task, record):
  return tasks.get(task).preprocess(record, np.random.default_rng(0), CTX)


def skip_reason(task, record):
  with pytest.raises(tasks.SkipExample) as info:
    run(task, record)
  return str(info.value)


def test_tasks_are_registered():
  for name, builder, splits in (
    ("framenet_normals", sn.FRAMENET, {"train": "train", "validation": "test", "test": "test"}),
    ("blendedmvs_normals", sn.BLENDEDMVS, {"train": "train", "validation": "validation"}),
  ):
    task = tasks.get(name)
    assert (task.builder, task.group, task.size) == (builder, "dense_labelling", None)
    assert (task.metric, task.output) == (tasks.Metric.NORMAL_ANGLE, tasks.Output.NORMALS)
    assert dict(task.splits) == splits


def test_framenet_records(data_dir):
  builder = tfds.builder(sn.FRAMENET, data_dir=data_dir)
  # Train: 5 entries, one a duplicate, one with a half-size normal map (skipped).
  assert {s: builder.info.splits[s].num_examples for s in ("train", "test")} == {
    "train": 3,
    "test": 1,
  }
  found = records(data_dir, sn.FRAMENET, "train")
  assert sorted(found) == [f"scene0000_00/frame-0000{n}" for n in ("00", "10", "30")]
  first = found["scene0000_00/frame-000000"]
  assert first["scene"] == b"scene0000_00" and first["frame"] == 0
  assert first["image/filename"] == b"scannet-frames/scene0000_00/frame-000000-color.png"
  np.testing.assert_array_equal(first["image"], np.full((FH, FW, 3), (200, 10, 10), np.uint8))
  np.testing.assert_array_equal(first["normal"], framenet_normal())  # stored as released
  # The RGBA normal PNG was re-encoded as RGB, same pixels.
  rgba = found["scene0000_00/frame-000010"]
  assert rgba["frame"] == 10 and rgba["normal"].shape == (FH, FW, 3)
  np.testing.assert_array_equal(rgba["normal"], framenet_normal())
  test = records(data_dir, sn.FRAMENET, "test")
  assert list(test) == ["scene0707_00/frame-000000"]


def test_framenet_task(data_dir):
  found = records(data_dir, sn.FRAMENET, "train")
  raw = run("framenet_normals", found["scene0000_00/frame-000000"])
  assert raw["prompt"] == PROMPT
  assert raw["meta"]["example_id"] == "scene0000_00/frame-000000"
  assert raw["meta"]["image_hw"] == (FH, FW)
  normals = raw["meta"]["normals"]
  # (128, 128, 0) -> (1/255, 1/255, -1) renormalised: the wall faces the camera.
  wall = np.array([1 / 255, 1 / 255, -1.0]) / np.linalg.norm([1 / 255, 1 / 255, -1.0])
  np.testing.assert_allclose(normals[1, 3], wall, atol=1e-6)
  # (125, 17, 64): up (n_y < 0) and toward the camera (n_z < 0), as GRIT's ScanNet floors.
  floor = np.array(FLOOR) / 255 * 2 - 1
  np.testing.assert_allclose(normals[4, 3], floor / np.linalg.norm(floor), atol=1e-6)
  np.testing.assert_array_equal(normals[:, 0], 0.0)  # black: no normal
  target = raw["target_image"]
  assert target.shape == (FH, FW, 3) and target.dtype == np.float32
  np.testing.assert_allclose(target[:, 0], 0.5)  # no normal: mid-grey, GRIT's fill colour
  np.testing.assert_allclose(target[1, 3], (wall + 1) / 2, atol=1e-6)
  assert skip_reason("framenet_normals", found["scene0000_00/frame-000030"]) == (
    "normal map has no valid pixel"
  )
  small = dict(found["scene0000_00/frame-000000"], normal=np.zeros((2, 2, 3), np.uint8))
  assert skip_reason("framenet_normals", small) == (
    f"normal map (2, 2, 3) does not match the image ({FH}, {FW}, 3)"
  )


def _interior(hw):
  inside = np.zeros(hw, bool)
  inside[1:-1, 1:-1] = True
  return inside


def test_blendedmvs_records(data_dir):
  builder = tfds.builder(sn.BLENDEDMVS, data_dir=data_dir)
  # Scene A: view 1 is empty, view 2's depth map is two columns short: both skipped.
  assert {s: builder.info.splits[s].num_examples for s in ("train", "validation")} == {
    "train": 1,
    "validation": 1,
  }
  train = records(data_dir, sn.BLENDEDMVS, "train")
  assert list(train) == [f"{SCENE_A}/00000000"]
  record = train[f"{SCENE_A}/00000000"]
  assert record["scene"] == SCENE_A.encode()
  assert record["image/filename"] == f"{SCENE_A}/blended_images/00000000.jpg".encode()
  assert record["image"].shape == (BH, BW, 3)
  np.testing.assert_allclose(record["intrinsics"], K, atol=1e-6)
  np.testing.assert_allclose(record["extrinsic"], EXTRINSIC, atol=1e-6)
  # The plane's normal at every interior pixel but the hole (4, 5) and its four neighbours.
  expected = _interior((BH, BW))
  for r, c in ((4, 5), (3, 5), (5, 5), (4, 4), (4, 6)):
    expected[r, c] = False
  normal = record["normal"]
  plane_rgb = np.round((PLANE_N + 1) / 2 * 255)
  assert np.abs(normal[expected].astype(int) - plane_rgb).max() <= 1
  np.testing.assert_array_equal(normal[~expected], 0)  # black: no normal
  # The big-endian PFM of scene B reads the same plane; its odd depth line is ignored.
  val = records(data_dir, sn.BLENDEDMVS, "validation")[f"{SCENE_B}/00000000"]
  assert np.abs(val["normal"][_interior((BH, BW))].astype(int) - plane_rgb).max() <= 1


def test_blendedmvs_task(data_dir):
  record = records(data_dir, sn.BLENDEDMVS, "validation")[f"{SCENE_B}/00000000"]
  raw = run("blendedmvs_normals", record)
  assert raw["prompt"] == PROMPT and raw["meta"]["image_hw"] == (BH, BW)
  normals = raw["meta"]["normals"]
  inside = _interior((BH, BW))
  cos = np.sum(normals[inside] * PLANE_N, axis=-1)
  assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 0.5  # 8-bit rounding only
  np.testing.assert_array_equal(normals[~inside], 0.0)
  np.testing.assert_allclose(raw["target_image"][~inside], 0.5)


def test_pfm_and_cam_readers(tmp_path):
  depth = np.arange(6, dtype=np.float32).reshape(2, 3)
  for little in (True, False):
    write_pfm(tmp_path / "d.pfm", depth, little)
    np.testing.assert_array_equal(sn.read_pfm((tmp_path / "d.pfm").read_bytes()), depth)
  colour = struct.pack("<6f", *range(6))  # one pixel row pair of a 1 x 2 "PF" map
  np.testing.assert_array_equal(
    sn.read_pfm(b"PF\n2 1\n-1.0\n" + colour), np.arange(6, dtype=np.float32).reshape(1, 2, 3)
  )
  with pytest.raises(ValueError, match="not a PFM"):
    sn.read_pfm(b"P6\n")
  with pytest.raises(ValueError, match="holds 1 values"):
    sn.read_pfm(b"Pf\n2 2\n-1.0\n" + struct.pack("<f", 1.0))
  write_cam(tmp_path / "c.txt", EXTRINSIC, K)
  extrinsic, k, depth_line = sn.read_cam((tmp_path / "c.txt").read_text())
  np.testing.assert_allclose(extrinsic, EXTRINSIC)
  np.testing.assert_allclose(k, K)
  assert depth_line == [2.5, 0.01, 192, 4.4]
  with pytest.raises(ValueError, match="malformed camera"):
    sn.read_cam("extrinsic\n1 2 3\n")


def test_split_pickle_refuses_code(tmp_path):
  import collections

  path = tmp_path / "train_test_split.pkl"
  path.write_bytes(pickle.dumps({"train": [collections.OrderedDict()], "test": [[]]}))
  with pytest.raises(pickle.UnpicklingError, match="refusing to load collections.OrderedDict"):
    sn.read_split_lists(path)
  arrays = {"train": np.array([["/x/scene0001_00/frame-000000-color.png"]]), "test": [[]]}
  path.write_bytes(pickle.dumps(arrays))
  assert sn.read_split_lists(path) == {"train": ["scene0001_00/frame-000000-color.png"], "test": []}


def test_missing_release_files_are_named(tmp_path):
  root = tmp_path / "downloads" / "manual"
  write_framenet(root / sn.FRAMENET)
  (root / sn.FRAMENET / "scannet-frames/scene0707_00/frame-000000-normal.png").unlink()
  with pytest.raises(common.MissingReleaseFile, match=r"scene0707_00/frame-000000-normal\.png"):
    tfds.builder(sn.FRAMENET, data_dir=str(tmp_path)).download_and_prepare(
      file_format="array_record"
    )
  write_blendedmvs(root / sn.BLENDEDMVS)
  (root / sn.BLENDEDMVS / SCENE_B / "rendered_depth_maps/00000000.pfm").unlink()
  with pytest.raises(common.MissingReleaseFile, match=rf"{SCENE_B}/rendered_depth_maps/00000000"):
    tfds.builder(sn.BLENDEDMVS, data_dir=str(tmp_path)).download_and_prepare(
      file_format="array_record"
    )
  (root / sn.BLENDEDMVS / "validation_list.txt").unlink()
  with pytest.raises(common.MissingReleaseFile, match=r"validation_list\.txt"):
    tfds.builder(sn.BLENDEDMVS, data_dir=str(tmp_path)).download_and_prepare(
      file_format="array_record"
    )
  with pytest.raises(common.MissingReleaseFile, match=sn.FRAMENET):
    tfds.builder(sn.FRAMENET, data_dir=str(tmp_path / "empty")).download_and_prepare(
      file_format="array_record"
    )


def test_a_perfect_prediction_scores_near_zero_degrees(data_dir):
  """The target image at the VQ-GAN resolution, read back by the NORMAL_ANGLE scorer."""
  spec = specs.tiny_spec(64, 32)
  raws, preds = [], []
  for name, split, key in (
    (sn.FRAMENET, "train", "scene0000_00/frame-000000"),
    (sn.BLENDEDMVS, "validation", f"{SCENE_B}/00000000"),
  ):
    task = tasks.get("framenet_normals" if name == sn.FRAMENET else "blendedmvs_normals")
    record = records(data_dir, name, split)[key]
    features, raw, _ = pipeline.prepare(task, record, np.random.default_rng(0), spec, CTX)
    raws.append(raw)
    image = (np.asarray(features["image_target_pixels"], np.float32) + 1.0) / 2.0
    preds.append({"text": "", "tokens": None, "image": image})
  ex = types.SimpleNamespace(raws=raws, features={})
  ctx = outputs.Context(spec.tokenizer.layout, spec.tokenizer.decode, max_depth=10.0)
  task = tasks.get("blendedmvs_normals")
  score = outputs.get(task.output).scorers[task.metric](ex, preds, ctx)
  # Resizing to 64 and back blurs only where a normal meets the grey "no normal" pixels.
  assert score.value < 5.0 and score.value < score.baseline


def test_data_show_draws_the_tasks_as_the_model_sees_them(data_dir, tmp_path):
  """`python -m unified_io.data.show`'s library call on the prepared tiny release."""
  config = tiny_config.get_config()
  for name in ['framenet_normals', 'blendedmvs_normals']:
    out = tmp_path / f"{name}.png"
    show.show(config, name, 2, str(out), data_dir=data_dir)
    assert out.stat().st_size > 0
