"""TFDS builders `uio_framenet` and `uio_blendedmvs`: the paper's surface normal data (A.1.3).

Both write an image and its normal map as an 8-bit RGB PNG in one convention (the
project's: unified_io/common/normals_from_depth.py): camera frame x right, y down, z forward
(OpenCV's), unit normals toward the camera, channel c = round((n_c + 1) / 2 * 255), black
(0, 0, 0) where there is no normal. Build with `python -m unified_io.data.prepare
uio_framenet uio_blendedmvs --data_dir=DATA_DIR` (ArrayRecord, which the input pipeline
reads by random access) or `download_and_prepare(file_format="array_record")`: TFDS 4.9.10
has no per-builder default file format, so a bare `download_and_prepare()` writes TFRecords.

uio_framenet (FrameNet, Huang et al. 2019: normals FrameNet rendered from ScanNet's meshes;
GRIT uses the same files for its ScanNet normals). Release files, in
`<manual_dir>/uio_framenet/`:
- `train_test_split.pkl` (from FrameNet's src/data/download.sh): a pickled dict {"train":
  [colour paths, orient paths, mask paths], "test": [...]}, absolute paths on the authors'
  machines; only the last two parts of each colour path, `sceneXXXX_YY/frame-NNNNNN-
  color.png`, are used. It is read with an unpickler that admits lists, dicts, strings and
  numpy arrays only (a pickle can run code).
- `scannet-frames/sceneXXXX_YY/frame-NNNNNN-color.png` and `frame-NNNNNN-normal.png`, one
  zip per scene (scannet-frame-links.txt), every 10th ScanNet frame; the orient-X/-Y,
  orient-mask and orient PNGs in the zips are not read.
The normal PNGs are already in the project's convention, which was checked on GRIT's
example ScanNet normal image (allenai/grit_official data/examples: floors decode to n_y <
0, walls facing the camera to n_z < 0, a wall on the left to n_x > 0) and agrees with
public loaders (MARSLab-UMN/TiltedImageSurfaceNormal negates them to get normals pointing
away from the camera); so they are stored as released, with no axis change.
Splits: train and test, the pickle's two lists (disjoint scenes); there is no validation
list. Records: id "sceneXXXX_YY/frame-NNNNNN", scene, frame (int), image (the
colour PNG bytes), normal (the normal PNG bytes), image/filename (release-relative path).

uio_blendedmvs (BlendedMVS, Yao et al. 2020, the low-res set, 768 x 576). Release files, in
`<manual_dir>/uio_blendedmvs/`:
- `training_list.txt`, `validation_list.txt`: scene ids, one a line (106 and 7 scenes; in
  the dataset zip and at the root of github.com/YoYo000/BlendedMVS).
- `<scene id>/blended_images/NNNNNNNN.jpg` (the `_masked.jpg` copies are not read),
  `<scene id>/cams/NNNNNNNN_cam.txt` ("extrinsic" then the 4 x 4 world-to-camera matrix,
  "intrinsic" then K 3 x 3, then "DEPTH_MIN DEPTH_INTERVAL (DEPTH_NUM DEPTH_MAX)", MVSNet's
  format) and `<scene id>/rendered_depth_maps/NNNNNNNN.pfm` (PFM, rendered from the mesh,
  camera-frame z, 0 where the mesh has no surface). `cams/pair.txt` is not read.
It ships no normals: they are derived from the depth map and K (normals_from_depth.py:
back-projection, cross product of central differences, facing the camera; invalid where a
depth or a neighbour's is missing or the surface is within 5 degrees of grazing, which drops
occlusion boundaries). The paper does not say how it made these normals.
Splits: train and validation, the two lists. Records: id "<scene id>/NNNNNNNN", scene,
image (the blended JPEG bytes), normal (PNG made at build time), intrinsics float32 [3, 3],
extrinsic float32 [4, 4], image/filename.

Awkward cases, each counted in the build log:
- A file a list names that is absent (a scene zip not downloaded, a frame, a camera or a
  depth map) fails the build, naming it: a partial copy would build silently smaller.
- FrameNet: duplicate list entries are written once; a normal PNG whose size is not the
  colour image's is skipped; a PNG that is not 8-bit RGB (palette, grey, alpha, 16-bit) is
  re-encoded as 8-bit RGB PNG, since the reader decodes the stored bytes unchanged.
- BlendedMVS: a depth map of another size than its image, or with no valid normal at all
  (an empty rendering: the README warns the meshes are not always complete), is skipped;
  images with partly empty depth keep a normal map black where it is empty. Cameras with
  depth_min or depth_max <= 0 (the README warns of a few) are kept: the range is not used.
"""

from __future__ import annotations

import collections
import io
import pickle
import re
from typing import Dict, Iterator, List, Tuple

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from unified_io.common import normals_from_depth as nfd
from unified_io.data.builders import common

FRAMENET = "uio_framenet"
BLENDEDMVS = "uio_blendedmvs"
FRAMENET_HOMEPAGE = "https://github.com/hjwdzh/FrameNet"
BLENDEDMVS_HOMEPAGE = "https://github.com/YoYo000/BlendedMVS"
FRAMENET_SPLIT_FILE = "train_test_split.pkl"
FRAMES_DIR = "scannet-frames"
FRAMENET_SPLITS = {"train": "train", "test": "test"}  # pickle key -> TFDS split
BLENDEDMVS_LISTS = {"train": "training_list.txt", "validation": "validation_list.txt"}
_FRAME = re.compile(r"^(scene\d{4}_\d{2})/frame-(\d+)-color\.png$")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_NAMED = 5  # missing files named in the error (then a count)

FRAMENET_INSTRUCTIONS = """\
FrameNet's ScanNet frames (https://github.com/hjwdzh/FrameNet, src/data/download.sh; ScanNet
terms of use apply). Into <manual_dir>/uio_framenet/ (manual_dir: <data_dir>/downloads/manual/
unless --manual_dir says otherwise) put:
  train_test_split.pkl
      http://download.cs.stanford.edu/orion/framenet/train_test_split.pkl
  scannet-frames/sceneXXXX_YY/frame-NNNNNN-color.png, frame-NNNNNN-normal.png
      every zip listed in http://download.cs.stanford.edu/orion/framenet/scannet-frame-links.txt,
      unzipped here (each makes scannet-frames/<scene>/); the orient-X, orient-Y,
      orient-mask and orient PNGs may be deleted. scannet-frames/ may be a symlink.
Then: python -m unified_io.data.prepare uio_framenet --data_dir=DATA_DIR (ArrayRecord).
Do not train on GRIT's ablation or test images (its ScanNet normal samples use these frames).
"""

BLENDEDMVS_INSTRUCTIONS = """\
BlendedMVS low-res set (https://github.com/YoYo000/BlendedMVS, "BlendedMVS low-res set",
27.5 GB, CC BY 4.0). Unzip it into <manual_dir>/uio_blendedmvs/ (manual_dir:
<data_dir>/downloads/manual/ unless --manual_dir says otherwise), so that it holds:
  training_list.txt, validation_list.txt   (also at the root of the GitHub repository)
  <scene id>/blended_images/NNNNNNNN.jpg    (the _masked.jpg copies are not read)
  <scene id>/cams/NNNNNNNN_cam.txt
  <scene id>/rendered_depth_maps/NNNNNNNN.pfm
Scene folders may be symlinks. Normals are computed from the depth maps at build time.
Then: python -m unified_io.data.prepare uio_blendedmvs --data_dir=DATA_DIR (ArrayRecord).
"""


def _missing(builder: str, root: epath.Path, paths: List[str]) -> common.MissingReleaseFile:
  named = ", ".join(paths[:_MAX_NAMED])
  more = f" and {len(paths) - _MAX_NAMED} more" if len(paths) > _MAX_NAMED else ""
  return common.MissingReleaseFile(
    f"{builder}: missing in {root}: {named}{more} (see the builder's MANUAL_DOWNLOAD_INSTRUCTIONS)"
  )


def _png_is_rgb8(data: bytes) -> bool:
  """An 8-bit truecolour PNG (IHDR bit depth 8, colour type 2), decoded as it is stored."""
  return data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR" and data[24:26] == b"\x08\x02"


def _as_rgb8_png(data: bytes) -> Tuple[bytes, bool]:
  """(8-bit RGB PNG bytes, whether they had to be re-encoded)."""
  if _png_is_rgb8(data):
    return data, False
  with PIL.Image.open(io.BytesIO(data)) as image:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG")
  return out.getvalue(), True


def _png(rgb: np.ndarray) -> bytes:
  out = io.BytesIO()
  PIL.Image.fromarray(np.asarray(rgb, np.uint8)).save(out, format="PNG")
  return out.getvalue()


# ------------------------------------------------------------------------------- FrameNet


class _SplitUnpickler(pickle.Unpickler):
  """Admits only the types a list of paths can be made of: a pickle can run any code."""

  _ALLOWED = {
    ("builtins", "list"),
    ("builtins", "dict"),
    ("builtins", "tuple"),
    ("builtins", "str"),
    ("builtins", "bytes"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
  }

  def find_class(self, module, name):
    module = {"__builtin__": "builtins"}.get(module, module)  # Python 2 pickles
    if (module, name) not in self._ALLOWED:
      raise pickle.UnpicklingError(f"{FRAMENET_SPLIT_FILE}: refusing to load {module}.{name}")
    return super().find_class(module, name)


def _text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_split_lists(path: epath.Path) -> Dict[str, List[str]]:
  """{"train": [...], "test": [...]}: each split's colour paths, "sceneXXXX_YY/frame-NNNNNN-
  color.png" (the pickle's absolute prefixes dropped), in the pickle's order."""
  with path.open("rb") as f:
    data = _SplitUnpickler(f, encoding="latin1").load()
  if not isinstance(data, dict):
    raise ValueError(f"{path}: expected a dict of splits, got {type(data).__name__}")
  out = {}
  for split in FRAMENET_SPLITS:
    if split not in data:
      raise ValueError(f"{path}: no {split!r} entry (keys: {sorted(map(str, data))})")
    lists = data[split]
    if len(lists) < 1:
      raise ValueError(f"{path}: {split!r} holds no colour path list")
    out[split] = ["/".join(_text(p).replace("\\", "/").split("/")[-2:]) for p in lists[0]]
  return out


def framenet_records(root: epath.Path, split: str, colour: List[str]) -> Iterator[Tuple[str, dict]]:
  counts = collections.Counter()
  frames = []
  seen = set()
  for rel in colour:
    match = _FRAME.match(rel)
    if match is None:
      raise ValueError(f"{FRAMENET_SPLIT_FILE}: {split} entry {rel!r} is not a colour frame")
    if rel in seen:
      counts["duplicate list entries"] += 1
      continue
    seen.add(rel)
    frames.append((rel, match.group(1), match.group(2)))
  missing = [
    f"{FRAMES_DIR}/{p}"
    for rel, _, _ in frames
    for p in (rel, rel.replace("-color.png", "-normal.png"))
    if not (root / FRAMES_DIR / p).exists()
  ]
  if missing:
    raise _missing(FRAMENET, root, missing)
  for rel, scene, frame in frames:
    counts["frames"] += 1
    image, fixed_image = _as_rgb8_png((root / FRAMES_DIR / rel).read_bytes())
    normal_rel = rel.replace("-color.png", "-normal.png")
    normal, fixed_normal = _as_rgb8_png((root / FRAMES_DIR / normal_rel).read_bytes())
    counts["re-encoded as 8-bit RGB"] += fixed_image + fixed_normal
    with PIL.Image.open(io.BytesIO(image)) as a, PIL.Image.open(io.BytesIO(normal)) as b:
      sizes = (a.size, b.size)
    if sizes[0] != sizes[1]:
      counts["skipped: normal map size differs from the image"] += 1
      logging.info("%s %s: %s: image %s, normal %s: skipped", FRAMENET, split, rel, *sizes)
      continue
    key = f"{scene}/frame-{frame}"
    yield (
      key,
      {
        "id": key,
        "scene": scene,
        "frame": int(frame),
        "image": image,
        "normal": normal,
        "image/filename": f"{FRAMES_DIR}/{rel}",
      },
    )
  logging.info("%s %s: %s", FRAMENET, split, dict(counts))


# ----------------------------------------------------------------------------- BlendedMVS


def read_pfm(data: bytes) -> np.ndarray:
  """A PFM file -> float32 [H, W] ("Pf") or [H, W, 3] ("PF"), top row first.

  Header: "Pf"/"PF", then "width height", then a scale whose sign gives the byte order
  (negative: little-endian); the rows follow bottom to top.
  """
  stream = io.BytesIO(data)
  kind = stream.readline().strip()
  if kind not in (b"Pf", b"PF"):
    raise ValueError(f"not a PFM file (header {kind[:8]!r})")
  try:
    width, height = (int(v) for v in stream.readline().split())
    scale = float(stream.readline().strip())
  except ValueError as e:
    raise ValueError(f"malformed PFM header ({e})") from e
  channels = 3 if kind == b"PF" else 1
  count = width * height * channels
  values = np.frombuffer(stream.read(), dtype="<f4" if scale < 0 else ">f4")
  if values.size < count:
    raise ValueError(f"PFM data holds {values.size} values, the header says {count}")
  shape = (height, width, 3) if channels == 3 else (height, width)
  return np.flipud(values[:count].reshape(shape)).astype(np.float32)


def read_cam(text: str) -> Tuple[np.ndarray, np.ndarray, List[float]]:
  """MVSNet's cam.txt -> (extrinsic [4, 4] world-to-camera, intrinsics [3, 3], the depth
  line's values: DEPTH_MIN DEPTH_INTERVAL (DEPTH_NUM DEPTH_MAX))."""
  tokens = text.split()
  try:
    e = tokens.index("extrinsic")
    k = tokens.index("intrinsic")
    extrinsic = np.asarray([float(v) for v in tokens[e + 1 : e + 17]]).reshape(4, 4)
    intrinsics = np.asarray([float(v) for v in tokens[k + 1 : k + 10]]).reshape(3, 3)
    depth_line = [float(v) for v in tokens[k + 10 :]]
  except ValueError as err:  # a keyword absent, a value not a number, too few values
    raise ValueError(f"malformed camera file ({err})") from err
  return extrinsic, intrinsics, depth_line


def read_scene_list(path: epath.Path) -> List[str]:
  return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _views(scene_dir: epath.Path) -> List[str]:
  """The scene's image stems ("00000000", ...), sorted; the _masked copies left out."""
  names = [p.name for p in (scene_dir / "blended_images").iterdir()]
  return sorted(n[:-4] for n in names if n.endswith(".jpg") and not n.endswith("_masked.jpg"))


def blendedmvs_records(root: epath.Path, split: str, scenes: List[str]):
  absent = [f"{s}/{d}/" for s in scenes for d in ("blended_images", "cams", "rendered_depth_maps")]
  absent = [p for p in absent if not (root / p).exists()]
  if absent:
    raise _missing(BLENDEDMVS, root, absent)
  views = {scene: _views(root / scene) for scene in scenes}
  absent = [
    p
    for scene in scenes
    for v in views[scene]
    for p in (f"{scene}/cams/{v}_cam.txt", f"{scene}/rendered_depth_maps/{v}.pfm")
    if not (root / p).exists()
  ]
  if absent:
    raise _missing(BLENDEDMVS, root, absent)
  counts = collections.Counter()
  for scene in scenes:
    for view in views[scene]:
      counts["images"] += 1
      image_rel = f"{scene}/blended_images/{view}.jpg"
      image = (root / image_rel).read_bytes()
      cam = read_cam((root / scene / "cams" / f"{view}_cam.txt").read_text())
      extrinsic, intrinsics, depth_line = cam
      # DEPTH_MIN and DEPTH_MAX (when given); the README warns a few are <= 0. Unused here.
      if any(v <= 0 for v in depth_line[:1] + depth_line[3:4]):
        counts["cameras with depth_min or depth_max <= 0 (kept)"] += 1
      depth = read_pfm((root / scene / "rendered_depth_maps" / f"{view}.pfm").read_bytes())
      with PIL.Image.open(io.BytesIO(image)) as decoded:
        width, height = decoded.size
      if depth.shape != (height, width):
        counts["skipped: depth map size differs from the image"] += 1
        logging.info(
          "%s: %s: depth %s, image %s", BLENDEDMVS, image_rel, depth.shape, (height, width)
        )
        continue
      normals, valid = nfd.normals_from_depth(depth, intrinsics)
      if not valid.any():
        counts["skipped: no valid normal (empty depth map)"] += 1
        continue
      counts["pixels without a normal"] += int(valid.size - valid.sum())
      key = f"{scene}/{view}"
      yield (
        key,
        {
          "id": key,
          "scene": scene,
          "image": image,
          "normal": _png(nfd.normals_to_rgb8(normals, valid)),
          "intrinsics": intrinsics.astype(np.float32),
          "extrinsic": extrinsic.astype(np.float32),
          "image/filename": image_rel,
        },
      )
  logging.info("%s %s: %s", BLENDEDMVS, split, dict(counts))


# ------------------------------------------------------------------------------- builders

_NORMAL_DOC = (
  "uint8 RGB, channel = round((n + 1) / 2 * 255); camera frame x right, y down, z forward; "
  "normals toward the camera; black = no normal"
)


class UioFramenet(tfds.core.GeneratorBasedBuilder):
  """FrameNet's ScanNet frames: colour images and rendered normal maps."""

  name = FRAMENET
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Colour frames and normal maps, FrameNet's train and test lists."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = FRAMENET_INSTRUCTIONS
  code_path = epath.Path(__file__)  # TFDS 4.9.10 finds it with an undeclared backport

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
      description=__doc__,
      homepage=FRAMENET_HOMEPAGE,
      features=tfds.features.FeaturesDict(
        {
          "id": tfds.features.Text(doc="sceneXXXX_YY/frame-NNNNNN"),
          "scene": tfds.features.Text(),
          "frame": tfds.features.Scalar(dtype=np.int32, doc="ScanNet frame number"),
          "image": tfds.features.Image(encoding_format="png"),
          "normal": tfds.features.Image(encoding_format="png", doc=_NORMAL_DOC),
          "image/filename": tfds.features.Text(),
        }
      ),
    )

  def _split_generators(self, dl_manager):
    root = common.release_dir(dl_manager, FRAMENET)
    common.require(root, FRAMENET, [FRAMENET_SPLIT_FILE, f"{FRAMES_DIR}/"])
    lists = read_split_lists(root / FRAMENET_SPLIT_FILE)
    return {
      tfds_split: self._generate_examples(root, split, lists[split])
      for split, tfds_split in FRAMENET_SPLITS.items()
    }

  def _generate_examples(self, root, split, colour):
    yield from framenet_records(root, split, colour)


class UioBlendedmvs(tfds.core.GeneratorBasedBuilder):
  """BlendedMVS low-res images with normals derived from the rendered depth maps."""

  name = BLENDEDMVS
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Blended images and normals from rendered depth (train, val)."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = BLENDEDMVS_INSTRUCTIONS
  code_path = epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
      description=__doc__,
      homepage=BLENDEDMVS_HOMEPAGE,
      features=tfds.features.FeaturesDict(
        {
          "id": tfds.features.Text(doc="<scene id>/NNNNNNNN"),
          "scene": tfds.features.Text(),
          "image": tfds.features.Image(encoding_format="jpeg"),
          "normal": tfds.features.Image(encoding_format="png", doc=_NORMAL_DOC),
          "intrinsics": tfds.features.Tensor(shape=(3, 3), dtype=np.float32, doc="K"),
          "extrinsic": tfds.features.Tensor(
            shape=(4, 4), dtype=np.float32, doc="world-to-camera [R | t; 0 0 0 1]"
          ),
          "image/filename": tfds.features.Text(),
        }
      ),
    )

  def _split_generators(self, dl_manager):
    root = common.release_dir(dl_manager, BLENDEDMVS)
    common.require(root, BLENDEDMVS, list(BLENDEDMVS_LISTS.values()))
    return {
      split: self._generate_examples(root, split, read_scene_list(root / name))
      for split, name in BLENDEDMVS_LISTS.items()
    }

  def _generate_examples(self, root, split, scenes):
    yield from blendedmvs_records(root, split, scenes)
