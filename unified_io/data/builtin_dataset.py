"""TFDS builder `uio_builtin_scenes`: the project's embedded default dataset (no download).

Importing this module registers the builder, so the usual TFDS calls work:

    import unified_io.data.builtin_dataset  # registers uio_builtin_scenes
    tfds.load("uio_builtin_scenes/scenes", split="train", data_dir=...)

or build it with progress output:

    python -m unified_io.data.builtin_dataset --data_dir ~/tensorflow_datasets
    python -m unified_io.data.builtin_dataset --config text --num_examples 100

Configs:
- `scenes`: 64x64 RGB renders of 1-5 coloured shapes and stick figures on a tilted floor
  (`scenes.py` documents the geometry and the box/depth/normal/keypoint conventions) with
  boxes, instance masks, depth, normals, keypoints, captions, region captions,
  relationships, VQA pairs and an image class (`scene_text.py`). Default 4000/500/500.
- `text`: templated text-only examples for entailment, sentiment, question answering,
  summarization and language modelling. Default 4000/500/500.

`scenes` features (pixel coordinates and the camera frame as in `scenes.py`):
- id: "scene-<seed>"; image: uint8 [64, 64, 3] (PNG).
- instance_ids: uint8 [64, 64], 0 = background, i + 1 = objects[i] (visible pixels only;
  the binary mask of object i is `instance_ids == i + 1`).
- depth: float32 [64, 64], camera-frame z in metres (objects 2.5-7.7 m, floor 8-20 m).
- normals: float32 [64, 64, 3], unit, camera frame (x right, y down, z forward), pointing
  toward the camera: a camera-facing face is (0, 0, -1).
- objects (sequence, 1-5 per image): bbox (tfds BBox, normalised ymin, xmin, ymax, xmax),
  pixel_box float32 [4] (x1, y1, x2, y2 pixels, tight around the visible mask), label
  (ClassLabel: circle, square, triangle, person), color (ClassLabel, `scenes.COLORS`),
  depth float32 (metres to the object's nearest point), area int32 (visible pixels, >= 8),
  region_caption (text, unique within the image).
- persons (sequence, one per person object): keypoints float32 [17, 2] (x, y pixels, COCO
  order; (0, 0) where visibility is 0), visibility int32 [17] (COCO: 0 outside the image,
  1 occluded, 2 visible), bbox (the person object's bbox), object_index int32.
- captions (sequence of 3 texts); relationships (sequence of subject int32, predicate text,
  object int32; indices into objects); vqa (sequence of question, answer, kind texts and
  object_index int32, -1 if the question is not about one object); image_class
  (ClassLabel: the four shapes or "mixed shapes").
`text` features, all text: id ("text-<seed>"), task, input, context, target, label
(`scene_text.py` documents what each field holds per task).

Images are 64x64. The model resizes an image's long side to its input size and pads
bottom/right; a square 64x64 image therefore fills the whole input with no padding, is
upsampled by input_size / 64 for larger configs (384 for the paper's sizes: pixel and box
coordinates scale by 6), and for the tiny config (input 64x64) is used as is.

Every example is generated from its own seed: example i of a split uses
`example_seed(config, split, i)`; the three splits (and the two configs) draw from disjoint
seed ranges, so splits never share a scene. `num_examples` (builder keyword or `build`
argument) overrides the split sizes, e.g. for tests; a data_dir holds one size per config,
so build different sizes into different data_dirs (`build` refuses to mix them).
Building the defaults takes about 35 s (scenes, 24 MB) and 2 s (text) on two CPU cores.
Processes that build one config into one local data_dir at the same time take turns (a file
lock, `BUILD_LOCK`): the first generates it, the others wait and then read it, so two
training runs can start together on a fresh machine.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import os
import time
from typing import Dict, Mapping, Optional, Tuple, Union

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds
from etils import epath

from unified_io.data import scene_text, scenes

SPLITS = ("train", "validation", "test")
SEEDS_PER_SPLIT = 1_000_000
SPLIT_SEED_OFFSETS = {"train": 0, "validation": SEEDS_PER_SPLIT, "test": 2 * SEEDS_PER_SPLIT}
CONFIG_SEED_OFFSETS = {"scenes": 0, "text": 10 * SEEDS_PER_SPLIT}
NumExamples = Union[None, int, Mapping[str, int]]


def example_seed(config_name: str, split: str, index: int) -> int:
  if not 0 <= index < SEEDS_PER_SPLIT:
    raise ValueError(f"example index {index} outside [0, {SEEDS_PER_SPLIT})")
  return CONFIG_SEED_OFFSETS[config_name] + SPLIT_SEED_OFFSETS[split] + index


def split_seeds(config_name: str, split: str, num_examples: int) -> range:
  start = example_seed(config_name, split, 0)
  if num_examples > SEEDS_PER_SPLIT:
    raise ValueError(f"at most {SEEDS_PER_SPLIT} examples per split, got {num_examples}")
  return range(start, start + num_examples)


# ----------------------------------------------------------------------------- examples


def scene_example(seed: int, image_size: int = 64) -> Dict[str, object]:
  """One `scenes` example as the numpy/str dict the TFDS features encode."""
  rng = np.random.default_rng(seed)
  rendered = scenes.render(scenes.sample_scene(rng, image_size))
  text = scene_text.describe_scene(scene_text.facts_from_render(rendered), rng)
  boxes = rendered["boxes"]
  # TFDS boxes are normalised (ymin, xmin, ymax, xmax); ours are pixel (x1, y1, x2, y2).
  relative_boxes = (boxes[:, [1, 0, 3, 2]] / image_size).astype(np.float32)
  person_index = rendered["person_object_index"]
  relations = text["relationships"]
  vqa = text["vqa"]
  return {
    "id": f"scene-{seed}",
    # A PIL image is PNG-encoded by PIL, several times faster than TFDS's TF graph.
    "image": PIL.Image.fromarray(rendered["image"]),
    "instance_ids": rendered["instance_ids"],
    "depth": rendered["depth"],
    "normals": rendered["normals"],
    "objects": {
      "bbox": relative_boxes,
      "pixel_box": boxes,
      "label": rendered["shapes"],
      "color": rendered["colors"],
      "depth": rendered["object_depths"],
      "area": rendered["areas"],
      "region_caption": text["region_captions"],
    },
    "persons": {
      "keypoints": rendered["keypoints"],
      "visibility": rendered["visibility"],
      "bbox": relative_boxes[person_index].reshape(-1, 4),
      "object_index": person_index,
    },
    "captions": text["captions"],
    "relationships": {
      "subject": np.array([s for s, _, _ in relations], dtype=np.int32),
      "predicate": [p for _, p, _ in relations],
      "object": np.array([o for _, _, o in relations], dtype=np.int32),
    },
    "vqa": {
      "question": [pair["question"] for pair in vqa],
      "answer": [pair["answer"] for pair in vqa],
      "kind": [pair["kind"] for pair in vqa],
      "object_index": np.array([pair["object_index"] for pair in vqa], dtype=np.int32),
    },
    "image_class": text["image_class"],
  }


def text_example(seed: int) -> Dict[str, str]:
  return dict(id=f"text-{seed}", **scene_text.text_example(np.random.default_rng(seed)))


# ----------------------------------------------------------------------------- features


def scene_features(image_size: int) -> tfds.features.FeaturesDict:
  size = image_size
  # ZLIB: the floor's depth repeats along rows and flat faces share one normal, so the
  # dense float maps compress several-fold.
  zlib = tfds.features.Encoding.ZLIB
  return tfds.features.FeaturesDict(
    {
      "id": tfds.features.Text(),
      "image": tfds.features.Image(shape=(size, size, 3), encoding_format="png"),
      "instance_ids": tfds.features.Tensor(
        shape=(size, size),
        dtype=np.uint8,
        encoding=zlib,
        doc="0 = background, i + 1 = objects[i] (visible pixels)",
      ),
      "depth": tfds.features.Tensor(
        shape=(size, size), dtype=np.float32, encoding=zlib, doc="camera-frame z in metres"
      ),
      "normals": tfds.features.Tensor(
        shape=(size, size, 3),
        dtype=np.float32,
        encoding=zlib,
        doc="unit normals, camera frame x right / y down / z forward, toward the camera",
      ),
      "objects": tfds.features.Sequence(
        {
          "bbox": tfds.features.BBoxFeature(),
          "pixel_box": tfds.features.Tensor(
            shape=(4,), dtype=np.float32, doc="x1, y1, x2, y2 in pixels"
          ),
          "label": tfds.features.ClassLabel(names=scenes.SHAPES),
          "color": tfds.features.ClassLabel(names=scenes.COLORS),
          "depth": tfds.features.Scalar(dtype=np.float32, doc="metres to the nearest point"),
          "area": tfds.features.Scalar(dtype=np.int32, doc="visible pixels"),
          "region_caption": tfds.features.Text(),
        }
      ),
      "persons": tfds.features.Sequence(
        {
          "keypoints": tfds.features.Tensor(
            shape=(scenes.NUM_KEYPOINTS, 2),
            dtype=np.float32,
            doc="(x, y) pixels, COCO order; (0, 0) if v = 0",
          ),
          "visibility": tfds.features.Tensor(
            shape=(scenes.NUM_KEYPOINTS,),
            dtype=np.int32,
            doc="COCO: 0 outside, 1 occluded, 2 visible",
          ),
          "bbox": tfds.features.BBoxFeature(),
          "object_index": tfds.features.Scalar(dtype=np.int32),
        }
      ),
      "captions": tfds.features.Sequence(tfds.features.Text()),
      "relationships": tfds.features.Sequence(
        {
          "subject": tfds.features.Scalar(dtype=np.int32),
          "predicate": tfds.features.Text(),
          "object": tfds.features.Scalar(dtype=np.int32),
        }
      ),
      "vqa": tfds.features.Sequence(
        {
          "question": tfds.features.Text(),
          "answer": tfds.features.Text(),
          "kind": tfds.features.Text(),
          "object_index": tfds.features.Scalar(dtype=np.int32, doc="-1 = no single object"),
        }
      ),
      "image_class": tfds.features.ClassLabel(names=scene_text.IMAGE_CLASSES),
    }
  )


def text_features() -> tfds.features.FeaturesDict:
  return tfds.features.FeaturesDict(
    {name: tfds.features.Text() for name in ("id", "task", "input", "context", "target", "label")}
  )


# ----------------------------------------------------------------------------- builder


@dataclasses.dataclass(eq=False)
class BuiltinScenesConfig(tfds.core.BuilderConfig):
  split_sizes: Tuple[int, int, int] = (4000, 500, 500)  # train, validation, test
  image_size: int = 64


# Run as `python -m`, this file is also imported as `__main__`; only the copy under its
# package name may register (TFDS needs the package to find the builder's metadata, and a
# second registration of the same name is an error).
class UioBuiltinScenes(tfds.core.GeneratorBasedBuilder, skip_registration=__name__ == "__main__"):
  """Synthetic shapes scenes and templated text for all Unified-IO tasks."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {
    "1.0.0": "Initial release: 64x64 shape scenes with boxes, instance masks, depth, "
    "normals, COCO keypoints, captions, relationships and VQA; templated text "
    "for entailment, sentiment, QA, summarization and language modelling.",
  }
  BUILDER_CONFIGS = [
    BuiltinScenesConfig(name="scenes", description="64x64 shape scenes, all vision labels."),
    BuiltinScenesConfig(name="text", description="Templated text-only NLP examples."),
  ]

  # TFDS 4.9.10 works this path out with the `importlib_resources` backport, which it only
  # declares for Python < 3.9; giving it directly avoids that undeclared dependency.
  code_path = epath.Path(__file__)

  def __init__(self, *, num_examples: NumExamples = None, **kwargs):
    self._num_examples = num_examples
    super().__init__(**kwargs)

  def split_sizes(self) -> Dict[str, int]:
    sizes = dict(zip(SPLITS, self.builder_config.split_sizes))
    if isinstance(self._num_examples, int):
      return {split: self._num_examples for split in SPLITS}
    if self._num_examples is not None:
      unknown = set(self._num_examples) - set(SPLITS)
      if unknown:
        raise ValueError(f"unknown splits {sorted(unknown)}; expected {SPLITS}")
      sizes.update(self._num_examples)
    return sizes

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    features = text_features() if config.name == "text" else scene_features(config.image_size)
    return self.dataset_info_from_configs(
      description=__doc__, features=features, homepage="https://unified-io.allenai.org"
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # everything is generated locally
    return {
      split: self._generate_examples(split, size) for split, size in self.split_sizes().items()
    }

  def _generate_examples(self, split: str, num_examples: int):
    config = self.builder_config
    for seed in split_seeds(config.name, split, num_examples):
      if config.name == "text":
        yield seed, text_example(seed)
      else:
        yield seed, scene_example(seed, config.image_size)


BUILD_LOCK = ".build.lock"


@contextlib.contextmanager
def _build_lock(builder: UioBuiltinScenes):
  """One process at a time builds a config into a data_dir: two runs started together would
  both generate it, and the second's TFDS rename onto the finished version fails. The lock
  is an flock on a file beside the version directory (local disks; a gs:// data_dir is not
  locked). It is released when its holder exits, also when it dies."""
  parent = os.path.dirname(os.fspath(builder.data_dir))
  if "://" in parent:
    yield
    return
  os.makedirs(parent, exist_ok=True)
  with open(os.path.join(parent, BUILD_LOCK), "a") as handle:
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      print(f"{parent}: another process is building it; waiting for it", flush=True)
      fcntl.flock(handle, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(handle, fcntl.LOCK_UN)


def build(
  data_dir: Optional[str] = None, config: str = "scenes", num_examples: NumExamples = None
) -> UioBuiltinScenes:
  """Generates `config` into `data_dir` (TFDS default ~/tensorflow_datasets) if needed."""
  builder = UioBuiltinScenes(config=config, data_dir=data_dir, num_examples=num_examples)
  with _build_lock(builder):
    # Anew: another process may have built it while this one waited for the lock.
    builder = UioBuiltinScenes(config=config, data_dir=data_dir, num_examples=num_examples)
    return _build_locked(builder, config)


def _build_locked(builder: UioBuiltinScenes, config: str) -> UioBuiltinScenes:
  wanted = builder.split_sizes()
  if builder.is_prepared():
    found = {split: builder.info.splits[split].num_examples for split in SPLITS}
    if found != wanted:
      raise ValueError(
        f"{builder.data_dir} already holds {found} examples, not {wanted}: delete it or "
        "use another data_dir"
      )
    print(f"uio_builtin_scenes/{config}: already built in {builder.data_dir}")
    return builder
  total = sum(wanted.values())
  print(f"uio_builtin_scenes/{config}: generating {wanted} into {builder.data_dir}", flush=True)
  start = time.perf_counter()
  builder.download_and_prepare()
  seconds = time.perf_counter() - start
  print(
    f"uio_builtin_scenes/{config}: {total} examples in {seconds:.1f} s "
    f"({total / seconds:.0f} examples/s)",
    flush=True,
  )
  return builder


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data_dir", default=None, help="default: ~/tensorflow_datasets")
  parser.add_argument("--config", choices=("scenes", "text", "all"), default="all")
  parser.add_argument(
    "--num_examples",
    type=int,
    default=None,
    help="examples per split (default: the config's split sizes)",
  )
  args = parser.parse_args(argv)
  for config in ("scenes", "text") if args.config == "all" else (args.config,):
    build(args.data_dir, config, args.num_examples)


if __name__ == "__main__":
  from unified_io.data import builtin_dataset  # the registered copy (see UioBuiltinScenes)

  builtin_dataset.main()
