"""Prepared TFDS datasets made of mock records: a data_dir the trainer reads like real data.

`prepare(name, data_dir)` runs the real builder's `download_and_prepare` with its split
generators replaced by TFDS's RandomFakeGenerator over the builder's own features, so the
directory, dataset_info.json and ArrayRecord files are exactly what `tfds build` writes.
"""

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.testing import mocking


def prepare(name, data_dir, splits=("train", "validation"), num_examples=8, fix=None, seed=0):
  """Writes `num_examples` mock records per split of TFDS dataset `name` into data_dir.

  fix(example) -> example makes a random record valid where the generator cannot (e.g.
  Sequence fields of equal length); it must keep the feature structure.
  """
  builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  features = builder.info.features

  def generate(split_index):
    records = mocking.RandomFakeGenerator(features, num_examples, seed=seed + split_index)
    for i, example in enumerate(records):
      yield f"{split_index}-{i}", fix(example) if fix else example

  builder._split_generators = lambda dl_manager: {
    split: generate(i) for i, split in enumerate(splits)
  }
  builder.download_and_prepare()
  return tfds.builder(name, data_dir=data_dir)


def mark_prepared(name, data_dir, splits=("train", "validation"), num_examples=1):
  """Writes only dataset_info.json of `name`, with `splits` of `num_examples` each: what the
  preflight, the catalogue and `data.prepared_only` read to call a dataset prepared. No
  records: for tests of what is sampled, not read (RandomFakeGenerator cannot make valid
  records for every builder's features, e.g. Sequence fields of unequal lengths)."""
  builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  builder.info.set_splits(
    tfds.core.SplitDict(
      [tfds.core.SplitInfo(name=s, shard_lengths=[num_examples], num_bytes=0) for s in splits]
    )
  )
  builder.data_path.mkdir(parents=True, exist_ok=True)
  builder.info.write_to_directory(builder.data_path)
  return tfds.builder(name, data_dir=data_dir)


def _ordered_boxes(boxes):
  """[..., 4] (ymin, xmin, ymax, xmax) with each min <= max, as BBoxFeature requires."""
  boxes = np.asarray(boxes, np.float32)
  low, high = np.minimum(boxes[..., :2], boxes[..., 2:]), np.maximum(boxes[..., :2], boxes[..., 2:])
  return np.concatenate([low, high], axis=-1)


def consistent(features):
  """A `fix` for `features` (a builder's info.features) that makes the generator's records
  encodable: it draws each field of a Sequence of dicts with its own length, which TFDS
  refuses (real records agree: every such field is cut to its shortest), and BBoxFeature
  corners in any order (each box gets min <= max)."""

  def cut(feature, value):
    if isinstance(feature, tfds.features.BBoxFeature):
      return _ordered_boxes(value)
    if isinstance(feature, tfds.features.Sequence):
      inner = feature.feature
      if isinstance(inner, tfds.features.FeaturesDict):
        n = min((len(v) for v in value.values()), default=0)
        return {k: cut(inner[k], v[:n]) for k, v in value.items()}
      return cut(inner, value) if isinstance(inner, tfds.features.BBoxFeature) else value
    if isinstance(feature, tfds.features.FeaturesDict):
      return {k: cut(feature[k], v) for k, v in value.items()}
    return value

  return lambda example: cut(features, example)


def chain(*fixes):
  """One `fix` applying `fixes` in order."""

  def fix(example):
    for f in fixes:
      example = f(example)
    return example

  return fix
