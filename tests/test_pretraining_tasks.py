"""Pre-training objectives on the paper's datasets (A.2) and the paper_pretraining mixture."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from unified_io.data import mixtures
from unified_io.data.tasks import registry as tasks
from unified_io.data.tasks import text

CTX = tasks.TaskContext()


@pytest.fixture(scope="module")
def imagenet_record():
  with tfds.testing.mock_data(num_examples=1, policy=tfds.testing.MockPolicy.USE_CODE):
    example = next(iter(tfds.as_numpy(tfds.load("imagenet2012", split="train"))))
  example["label"] = np.int64(0)  # n01440764, "tench"
  return example


def run(name, example, seed):
  return tasks.get(name).preprocess(example, np.random.default_rng(seed), CTX)


def test_class_text_denoising_corrupts_an_image_of_the_class(imagenet_record):
  images = 0
  for seed in range(20):
    raw = run("imagenet2012_text_denoising", imagenet_record, seed)
    assert raw["meta"]["original"] == "An image of tench"
    assert text.fill_spans(raw["prompt"], raw["target_text"]) == "An image of tench"
    assert raw["target_text"].startswith("<extra_id_0>")
    images += raw["image"] is not None
  assert 14 <= images < 20  # the image is dropped 10% of the time


def test_image_denoising_hides_three_quarters_and_carries_the_class(imagenet_record):
  prompts = set()
  for seed in range(30):
    raw = run("imagenet2012_image_denoising", imagenet_record, seed)
    assert raw["image_input_mask_rate"] == 0.75
    np.testing.assert_allclose(raw["target_image"], imagenet_record["image"] / 255.0, atol=1e-6)
    prompts.add(raw["prompt"])
  assert prompts == {'What is the complete image? Text: " tench " .', "What is the complete image?"}


def test_unlabelled_records_are_skipped(imagenet_record):
  with pytest.raises(tasks.SkipExample, match="label is -1"):
    run("imagenet2012_text_denoising", dict(imagenet_record, label=np.int64(-1)), 0)


def test_paper_pretraining_rates_follow_a2():
  rates = mixtures.rates("paper_pretraining")
  lm = [n for n in rates if tasks.get(n).group == "language_modelling"]
  pure = [n for n in lm if n in ("c4_masked_lm", "wikipedia_masked_lm")]
  assert sum(rates[n] for n in pure) == pytest.approx(0.25)
  assert sum(rates[n] for n in lm) == pytest.approx(0.5)
  image = [n for n in rates if n.endswith("_image_denoising")]
  assert sum(rates[n] for n in image) == pytest.approx(0.5)
  # In proportion to size within an objective: ImageNet 1,281,167 vs SUN397 76,128 images.
  ratio = rates["imagenet2012_image_denoising"] / rates["sun397_image_denoising"]
  assert ratio == pytest.approx(1_281_167 / 76_128)
  # C4 (364,868,892 documents) vs Wikipedia (about 6.7M articles).
  assert rates["c4_masked_lm"] / rates["wikipedia_masked_lm"] == pytest.approx(
    364_613_570 / 6_700_000
  )
