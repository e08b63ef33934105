"""Configs are experiments: the paper configs, their variants, typed switches, the preflight.

Expected values are written out by hand from the task registry (unified_io/data/tasks/) and
the paper's group rates, not recomputed with the code under test.
"""

import os
import subprocess
import sys

from absl import flags
from ml_collections import config_flags
import pytest

from configs import base
from configs import large
from configs import small
from configs import tiny
from configs import xl
from tests import mock_tfds
from unified_io.train import config_check
from unified_io.train import preflight

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER = {"small": small, "base": base, "large": large, "xl": xl}
VARIANTS = (None, "", "runlocal", "mixture=builtin_multitask", "runlocal,mixture=paper_multitask")

# Some of paper_multitask's 47 TFDS datasets (unified_io/data/catalog_rows.py), by hand:
# one per task module, and the manual downloads.
PAPER_DATASETS = (
  "coco/2017",
  "coco_captions/2014",
  "ref_coco/refcoco_unc",
  "ref_coco/refcocog_umd",
  "nyu_depth_v2",
  "imagenet2012",
  "open_images_v4/original",
  "glue/mnli",
  "squad/v2.0",
  "gigaword",
  "wikipedia/20230601.en",
)
PAPER_DATASET_COUNT = 68
MANUAL_DATASETS = ("imagenet2012", "ref_coco/refcoco_unc")
# The project's builders (unified_io/data/builders/) read a folder named after them.
PROJECT_DATASETS = ("uio_vqa_v2", "uio_visual_genome", "uio_vizwiz/grounding")


def _train(args, cwd, timeout):
  env = dict(os.environ, PYTHONPATH=ROOT)
  return subprocess.run(
    [sys.executable, "-m", "unified_io.train", *args],
    cwd=cwd,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
  )


# ------------------------------------------------------------------------- the configs


@pytest.mark.parametrize("name", sorted(PAPER))
@pytest.mark.parametrize("variant", VARIANTS)
def test_paper_configs_and_variants_load_and_validate(name, variant):
  config = PAPER[name].get_config(variant)
  config_check.validate(config)
  assert config.data.source == "mixture"
  assert config.vocab.sentencepiece_model == "tokenizers/t5/sentencepiece.model"
  assert config.vqgan.weights == "vqgan/weights/official"
  assert config.data.allow_missing_groups is False
  assert config.evals.tasks.every_steps > 0 and config.checkpoint.every_steps > 0
  expected_mixture = "builtin_multitask" if "builtin" in (variant or "") else "paper_multitask"
  assert config.data.mixture == expected_mixture
  if "runlocal" in (variant or ""):
    assert (config.train.batch_size, config.train.total_steps, config.train.log_every) == (8, 10, 1)
    assert config.evals.tasks.every_steps == 5
  else:
    assert config.train.batch_size == 512


def test_variant_through_config_flags():
  """--config=FILE:ARG passes ARG to get_config (what the trainer's flag does)."""
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=values)
  values(["prog", f"--config={ROOT}/configs/xl.py:runlocal,mixture=builtin_uniform"])
  config = values.config
  assert (config.train.batch_size, config.train.total_steps) == (8, 10)
  assert config.data.mixture == "builtin_uniform" and config.model.emb_dim == 2048


@pytest.mark.parametrize("name", sorted(PAPER))
def test_pretraining_stage_is_the_papers_first_stage(name):
  """§3.4: 500k pre-training steps with 128 of the input patches; A.2's mixture."""
  config = PAPER[name].get_config("stage=pretraining")
  config_check.validate(config)
  assert config.data.mixture == "paper_pretraining"
  assert (config.model.train_image_patches, config.train.total_steps) == (128, 500_000)
  default = PAPER[name].get_config("stage=multitask")
  assert (default.data.mixture, default.model.train_image_patches) == ("paper_multitask", 256)
  with pytest.raises(ValueError, match="stages are multitask, pretraining"):
    PAPER[name].get_config("stage=finetune")


def test_unknown_variants_are_refused():
  with pytest.raises(ValueError, match="variants: runlocal, mixture"):
    small.get_config("runfast")
  with pytest.raises(ValueError, match="mixtures are .*builtin_multitask.*paper_multitask"):
    small.get_config("mixture=imagenet_only")


def test_tiny_config_is_the_builtin_run():
  config = tiny.get_config()
  config_check.validate(config)
  assert (config.data.source, config.data.mixture) == ("mixture", "builtin_multitask")
  assert config.vqgan.weights == "vqgan/weights/builtin"
  assert (config.train.total_steps, config.evals.tasks.every_steps) == (3000, 1500)


# ------------------------------------------------------------------------ typed switches


@pytest.mark.parametrize(
  "key,bad,allowed",
  [
    ("data.source", "synthetc", "mixture, synthetic"),
    ("data.schedule", "roundrobin", "rates, stratified, round_robin"),
    ("train.batch_shapes", "trimmed", "buckets, padded"),
    ("optimizer.name", "adam", "adafactor, adamw"),
    ("model.remat_policy", "all", "none, minimal, full"),
    ("model.dtype", "int8", "float32, bfloat16, float16"),
    ("vqgan.preset", "f16", "builtin, official, tiny"),
    ("data.mixture", "paper", "builtin_multitask"),
  ],
)
def test_unknown_switch_value_names_the_key_and_the_allowed_values(key, bad, allowed):
  config = small.get_config()
  section, leaf = key.split(".")
  config[section][leaf] = bad
  with pytest.raises(config_check.ConfigError) as error:
    config_check.validate(config)
  assert f"config.{key}={bad!r}" in str(error.value)
  assert allowed in str(error.value)


def test_every_bad_switch_is_listed_at_once():
  config = small.get_config()
  config.optimizer.name = "sgd"
  config.data.tasks = "coco_detection,no_such_task"
  with pytest.raises(config_check.ConfigError) as error:
    config_check.validate(config)
  assert "config.optimizer.name='sgd'" in str(error.value)
  assert "'no_such_task', which is not a registered task" in str(error.value)


def test_synthetic_needs_no_mixture():
  config = small.get_config()
  config.data.update(dict(source="synthetic", mixture=""))
  config_check.validate(config)
  assert preflight.check(config) == []  # the copy task reads no file


# ---------------------------------------------------------------------------- preflight


def test_builtin_dataset_counts_as_prepared(tmp_path):
  assert (
    preflight.dataset_problem(
      "uio_builtin_scenes/scenes", ["train"], str(tmp_path), ["builtin_vqa"]
    )
    is None
  )
  assert not os.listdir(tmp_path)  # nothing built or downloaded by the check


def test_tiny_config_passes_on_a_fresh_data_dir(tmp_path, monkeypatch):
  monkeypatch.chdir(ROOT)  # the config's tokenizer and VQ-GAN paths are relative to the repo
  config = tiny.get_config()
  config.data.data_dir = str(tmp_path / "fresh")
  assert preflight.check(config) == []


def test_unknown_tfds_builder_is_reported(tmp_path):
  problem = preflight.dataset_problem(
    "no_such_dataset_xyz/v1", ["train"], str(tmp_path), ["my_task"]
  )
  assert "no_such_dataset_xyz/v1 (task my_task): TFDS has no builder" in problem.what


def test_absent_data_dir_is_reported(tmp_path):
  config = small.get_config()
  config.data.data_dir = str(tmp_path / "absent")
  whats = [m.what for m in preflight.check(config)]
  assert f"config.data.data_dir={tmp_path / 'absent'} does not exist" in whats


def test_group_rate_mixture_with_empty_groups_is_refused():
  # paper_multitask's groups at the paper rates renormalised over the five present:
  # 3/16 + 1/8 + 1/16 + 1/8 + 1/8 = 5/8.
  totals = {
    "image_synthesis": 0.3,
    "sparse_labelling": 0.2,
    "dense_labelling": 0.1,
    "image_captioning": 0.2,
    "nlp": 0.2,
  }
  problem = preflight.group_problem(totals, "m")
  assert problem and "3 of the paper's 8 task groups" in problem.what
  for group in ("image_classification", "vision_language", "language_modelling"):
    assert group in problem.what
  assert "--config.data.allow_missing_groups=True" in problem.how
  # All eight groups at the paper's rates: nothing to renormalise.
  full = {
    g: 1 / 8
    for g in (
      "sparse_labelling",
      "image_classification",
      "image_captioning",
      "vision_language",
      "nlp",
      "language_modelling",
    )
  }
  full.update(image_synthesis=3 / 16, dense_labelling=1 / 16)
  assert preflight.group_problem(full, "m") is None
  # Rates that are not the group rates (a pre-training mix, 1/2 + 1/2) use no groups.
  assert preflight.group_problem({"language_modelling": 0.5, "image_synthesis": 0.5}, "m") is None


def test_allow_missing_groups_accepts_the_partial_paper_mixture(tmp_path):
  config = small.get_config()
  config.data.data_dir = str(tmp_path)
  # Every group has a task: nothing to refuse, until only some datasets are prepared.
  assert not [m for m in preflight.check(config) if "task groups" in m.what]
  mock_tfds.prepare("glue/sst2", str(tmp_path))
  config.data.prepared_only = True
  refused = [m.what for m in preflight.check(config) if "task groups" in m.what]
  assert len(refused) == 1 and "7 of the paper's 8 task groups" in refused[0]
  assert "image_synthesis" in refused[0] and "nlp" not in refused[0]
  config.data.allow_missing_groups = True
  assert not [m for m in preflight.check(config) if "task groups" in m.what]
  # An explicit task list has uniform rates: no group rates to renormalise.
  config.data.update(dict(allow_missing_groups=False, tasks="builtin_vqa"))
  assert not [m for m in preflight.check(config) if "task groups" in m.what]


@pytest.mark.slow
def test_paper_config_without_inputs_lists_all_of_them(tmp_path):
  """From a directory without the official tokenizer and VQ-GAN, on an empty data_dir."""
  data_dir = tmp_path / "tfds"
  data_dir.mkdir()
  out = _train(
    [
      f"--config={ROOT}/configs/small.py",
      f"--workdir={tmp_path / 'w'}",
      f"--config.data.data_dir={data_dir}",
    ],
    cwd=tmp_path,
    timeout=60,
  )
  assert out.returncode == 1, out.stderr[-3000:]
  err = out.stderr
  assert "Traceback" not in err
  # tokenizer + VQ-GAN + the datasets (data_dir exists; every group has a task).
  assert f"{PAPER_DATASET_COUNT + 2} inputs of this config are missing; nothing was built" in err
  assert "tokenizers/t5/sentencepiece.model" in err
  assert "gsutil cp gs://t5-data/vocabs/cc_all.32000/sentencepiece.model" in err
  assert "config.vqgan.weights=vqgan/weights/official: no config.json, params.msgpack" in err
  assert "python -m vqgan.convert --taming" in err
  for name in PAPER_DATASETS:
    if name in MANUAL_DATASETS:
      assert f"put into {data_dir}/downloads/manual what its instructions say" in err
    assert f"python -m unified_io.data.prepare {name} --data_dir={data_dir}" in err
  for name in PROJECT_DATASETS:
    assert f"put into {data_dir}/downloads/manual/{name.split('/')[0]} what its" in err
    assert f"python -m unified_io.data.prepare {name} --data_dir={data_dir}" in err
  assert "task groups" not in err
  assert not (tmp_path / "w").exists()  # stopped before the trainer wrote anything


@pytest.mark.slow
@pytest.mark.slow
def test_synthetic_source_must_be_named_and_says_so(tmp_path):
  overrides = {
    "data.source": "synthetic",
    "model.emb_dim": 32,
    "model.num_heads": 2,
    "model.head_dim": 16,
    "model.num_encoder_layers": 1,
    "model.num_decoder_layers": 1,
    "model.mlp_dim": 32,
    "model.image_size": 64,
    "model.train_image_patches": 16,
    "model.encoder_max_text_length": 16,
    "model.decoder_max_text_length": 8,
    "model.decoder_max_image_length": 16,
    "model.decoder_image_grid_width": 4,
    "lengths.text_inputs": 16,
    "lengths.text_targets": 8,
    "lengths.image_targets": 16,
    "train.batch_size": 2,
    "train.total_steps": 2,
    "train.tensorboard": False,
  }
  out = _train(
    [
      f"--config={ROOT}/configs/small.py:runlocal",
      f"--workdir={tmp_path / 'w'}",
      *[f"--config.{k}={v}" for k, v in overrides.items()],
    ],
    cwd=tmp_path,
    timeout=300,
  )
  assert out.returncode == 0, out.stderr[-3000:]
  lines = out.stdout.splitlines()
  assert lines[0].startswith("Training on the SYNTHETIC copy task")
  assert any(line.startswith("step 2 loss") for line in lines)


def test_datasets_that_need_beam_or_opencv_say_so(tmp_path):
  config = small.get_config()
  config.data.data_dir = str(tmp_path)
  by_what = {m.what.split()[2]: m.how for m in preflight.check(config) if "TFDS dataset" in m.what}
  assert "apache-beam, opencv-python-headless" in by_what["lvis"]
  assert "apache-beam" in by_what["c4/en"] and "manual download" not in by_what["c4/en"]
  assert (
    by_what["glue/sst2"] == f"python -m unified_io.data.prepare glue/sst2 --data_dir={tmp_path}"
  )
