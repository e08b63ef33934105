"""The dataset catalogue: Table 1's design rates, the state of each row, the CLIs, and a paper
config training on a data_dir of mock-prepared datasets.

Expected rates are Table 1's "Rate" column, copied from the paper by hand.
"""

import math
import os
import subprocess
import sys

import pytest

from tests import mock_tfds
from unified_io.data import catalog
from unified_io.data import catalog_rows
from unified_io.data import concept_split
from unified_io.data import mixtures
from unified_io.data.tasks import registry as tasks_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Table 1, "Rate" column (percent), in the paper's order.
TABLE1_RATES = {
  "Image Synthesis from Text": 16.7,
  "Image Inpainting": 1.5,
  "Image Synthesis from Seg.": 0.6,
  "Object Detection": 3.6,
  "Object Localization": 7.1,
  "Keypoint Estimation": 0.7,
  "Referring Expression": 1.1,
  "Depth Estimation": 0.4,
  "Surface Normal Estimation": 1.1,
  "Object Segmentation": 4.7,
  "Image Classification": 8.1,
  "Object Categorization": 4.4,
  "Webly Supervised Captioning": 8.8,
  "Supervised Captioning": 1.7,
  "Region Captioning": 2.0,
  "Visual Question Answering": 10.4,
  "Relationship Detection": 1.9,
  "Grounded VQA": 0.1,
  "Text Classification": 4.8,
  "Question Answering": 5.2,
  "Text Summarization": 2.5,
  "Masked Language Modelling": 12.5,
}
# Registered tasks on real datasets that Table 1 does not use (its summarization set is Gigaword).
NOT_PAPER_DATASETS = {"cnn_dailymail"}


def test_design_rates_match_table1_for_all_22_tasks():
  rates = catalog.paper_task_rates()
  assert set(rates) == set(TABLE1_RATES)
  for name, expected in TABLE1_RATES.items():
    got = 100 * rates[name]
    assert abs(got - expected) <= max(0.3, 0.25 * expected), (name, got, expected)
  assert math.isclose(sum(rates.values()), 1.0)


def test_design_sizes_add_up_to_table1_task_sizes():
  totals = {}
  for source in catalog.table1_rows():
    totals[source.paper_task] = totals.get(source.paper_task, 0) + catalog.design_size(source)
  # Table 1 "Size" column, by hand (Masked Language Modelling has none).
  assert totals["Object Localization"] == pytest.approx(6e6)
  assert totals["Referring Expression"] == pytest.approx(130e3)
  assert totals["Text Classification"] == pytest.approx(1.6e6)
  # A one-dataset task's size is Table 1's: NYU Depth 48k, not TFDS's 47,584.
  (nyu,) = [s for s in catalog.table1_rows() if s.paper_task == "Depth Estimation"]
  assert catalog.design_size(nyu) == pytest.approx(48e3)


def test_design_rate_rule_by_hand():
  """Two groups present: each gets its group rate renormalised, rows sqrt(size) within."""
  rows = [
    catalog_rows.Source("a", "Depth Estimation", "A", (), "x", 100, "-", "-"),
    catalog_rows.Source("b", "Depth Estimation", "B", (), "x", 900, "-", "-"),
    catalog_rows.Source("c", "Text Summarization", "C", (), "x", 5, "-", "-"),
  ]
  rates = catalog.design_rates(rows)
  # dense 1/16, nlp 1/8 -> 1/3 and 2/3; within dense the two rows share Table 1's 48k in
  # proportion 1:9, so sqrt weights 1:3.
  assert rates["a"] == pytest.approx(1 / 3 * 1 / 4)
  assert rates["b"] == pytest.approx(1 / 3 * 3 / 4)
  assert rates["c"] == pytest.approx(2 / 3)


def test_rows_name_the_builders_their_tasks_read():
  registered = tasks_lib.all_tasks()
  for source in catalog_rows.SOURCES + catalog_rows.PRETRAINING:
    for name in source.tasks:
      if name in registered:
        assert registered[name].builder == source.builder, (source.row, name)
        assert source.row.startswith("P") or registered[name].group == catalog.group_of(source)
    if source.issue is None and source.in_table1 and source.builder:
      assert catalog.is_implemented(source), f"row {source.row}: TFDS builds it, task missing"


def test_every_real_task_is_in_the_catalogue():
  named = {
    t for s in catalog_rows.SOURCES + catalog_rows.PRETRAINING for t in s.tasks + s.other_tasks
  }
  for name, task in tasks_lib.all_tasks().items():
    if task.builder.startswith("uio_builtin_scenes") or name in NOT_PAPER_DATASETS:
      continue
    if name in concept_split.VARIANTS:  # a held-out-concept view of a catalogued task
      name = concept_split.VARIANTS[name][1]
    assert name in named, f"{name} ({task.builder}) is registered but not catalogued"


def test_catalogue_counts():
  table1 = [s for s in catalog_rows.SOURCES if s.in_table1]
  assert len(catalog_rows.SOURCES) == 97
  assert len({s.row for s in catalog_rows.SOURCES}) == 97
  # Table 1 counts 95 slots: A.1 names one text-to-image source more (10 rows for 9); the
  # Open Images row 15 Table 1 does not count. Row 47 (unnamed by the paper) is Flickr30k.
  assert len(table1) == 96
  for name, paper in catalog_rows.PAPER_TASKS.items():
    rows = [s for s in table1 if s.paper_task == name]
    extra = 1 if name == "Image Synthesis from Text" else 0
    assert len(rows) == paper.datasets + extra, name


def test_prepare_hints_name_the_command_and_the_manual_files(tmp_path):
  by_row = {s.row: s for s in catalog_rows.SOURCES}
  data_dir = str(tmp_path)
  sst2 = catalog.prepare_hint(by_row["66"], data_dir)
  assert sst2 == f"python -m unified_io.data.prepare glue/sst2 --data_dir={data_dir}"
  imagenet = catalog.prepare_hint(by_row["33"], data_dir)
  assert "ILSVRC2012_img_train.tar" in imagenet and f"{data_dir}/downloads/manual" in imagenet
  assert "apache-beam" in catalog.prepare_hint(by_row["31"], data_dir)  # lvis
  assert ".venv-data/bin/python -m unified_io.data.prepare lvis" in catalog.prepare_hint(
    by_row["31"], data_dir
  )
  assert catalog.prepared(by_row["66"], data_dir) is False
  # A row whose builder is still to come says so and names the files it will read.
  future = catalog_rows.Source(
    "x",
    "Grounded VQA",
    "X",
    ("no_such_task",),
    "uio_x",
    10,
    "-",
    "-",
    99,
    catalog_rows.Release("https://example.org", ("x.json",)),
  )
  assert catalog.prepare_hint(future, data_dir) == (
    f"no builder yet (issue 99); it will read x.json (https://example.org) from "
    f"{data_dir}/downloads/manual/uio_x/"
  )
  assert catalog.prepared(future, data_dir) is None
  flickr = catalog.prepare_hint(by_row["47"], data_dir)
  assert (
    f"{data_dir}/downloads/manual/uio_flickr30k/" in flickr and "dataset_flickr30k.json" in flickr
  )
  # The project's builders read their release files from a folder named after them.
  vqa = catalog.prepare_hint(by_row["49"], data_dir)
  assert f"{data_dir}/downloads/manual/uio_vqa_v2/" in vqa and "v2_mscoco_{train,val}" in vqa
  assert vqa.endswith(f"python -m unified_io.data.prepare uio_vqa_v2 --data_dir={data_dir}")
  assert catalog.prepared(by_row["49"], data_dir) is False


def _run(module, *args, timeout=120):
  return subprocess.run(
    [sys.executable, "-m", module, *args],
    cwd=ROOT,
    env=dict(os.environ, PYTHONPATH=ROOT),
    capture_output=True,
    text=True,
    timeout=timeout,
  )


@pytest.mark.slow
def test_catalog_and_mixture_clis_run_without_data(tmp_path):
  out = _run("unified_io.data.catalog", f"--data_dir={tmp_path}")
  assert out.returncode == 0, out.stderr[-2000:]
  lines = out.stdout.splitlines()
  assert any(line.startswith("all") and line.split()[1] == "97" for line in lines)
  assert f"python -m unified_io.data.prepare glue/sst2 --data_dir={tmp_path}" in out.stdout
  out = _run("unified_io.data.mixtures", "--mixture=paper_multitask", f"--data_dir={tmp_path}")
  assert out.returncode == 0, out.stderr[-2000:]
  depth = [line for line in out.stdout.splitlines() if "Depth Estimation" in line]
  assert depth and depth[0].split()[-2:] == ["0.42%", "0.4%"]
  assert "prepared: the rates over the 0 tasks" in out.stdout


def test_prepared_only_samples_the_prepared_tasks_at_the_paper_rule(tmp_path):
  mock_tfds.prepare("glue/sst2", str(tmp_path))
  keep = mixtures.prepared_filter(str(tmp_path))
  rates = mixtures.rates("paper_multitask", keep)
  assert rates == {"glue_sst2": 1.0}
  everything = mixtures.rates("paper_multitask")
  assert "glue_sst2" in everything and len(everything) > 20


# A paper config at test sizes: the shipped tiny tokenizer and VQ-GAN, 64-pixel images.
TINY_OVERRIDES = {
  "vocab.sentencepiece_model": "tokenizers/uio_tiny_2k.model",
  "vocab.text_pieces": 2000,
  "vocab.image_codes": 512,
  "vocab.location_bins": 64,
  "vqgan.preset": "builtin",
  "vqgan.weights": "vqgan/weights/builtin",
  "model.emb_dim": 32,
  "model.num_heads": 2,
  "model.head_dim": 16,
  "model.num_encoder_layers": 1,
  "model.num_decoder_layers": 1,
  "model.mlp_dim": 32,
  "model.image_size": 64,
  "model.patch_size": 8,
  "model.train_image_patches": 32,
  "model.encoder_max_text_length": 64,
  "model.decoder_max_text_length": 32,
  "model.decoder_max_image_length": 64,
  "model.decoder_image_grid_width": 8,
  "lengths.text_inputs": 64,
  "lengths.text_targets": 32,
  "lengths.image_targets": 64,
  "train.batch_size": 4,
  "train.total_steps": 3,
  "train.log_every": 1,
  "train.tensorboard": False,
  "evals.tasks.num_examples": 2,
  "evals.tasks.batch_size": 2,
  "evals.tasks.report": False,
  "data.workers": 1,
}
MOCK_DATASETS = ("glue/sst2", "imagenet2012", "nyu_depth_v2")


@pytest.mark.slow
def test_small_config_trains_on_mock_prepared_paper_datasets(tmp_path):
  data_dir = tmp_path / "tfds"
  for name in MOCK_DATASETS:
    mock_tfds.prepare(name, str(data_dir), num_examples=6)
  args = [
    f"--config={ROOT}/configs/small.py",
    f"--workdir={tmp_path / 'w'}",
    f"--config.data.data_dir={data_dir}",
    "--config.data.prepared_only=True",
    "--config.data.allow_missing_groups=True",
    *[f"--config.{k}={v}" for k, v in TINY_OVERRIDES.items()],
  ]
  out = _run("unified_io.train", *args, timeout=600)
  assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
  assert "data.prepared_only: sampling paper_multitask without" in out.stdout
  steps = [line for line in out.stdout.splitlines() if line.startswith("step 3 loss")]
  assert steps, out.stdout[-2000:]
  for task in ("glue_sst2", "imagenet2012_classification", "nyu_depth"):
    assert task in out.stdout
  # Without prepared_only the same data_dir stops before building anything, listing what
  # is missing (a TFDS dataset of a task that is not prepared names its build command).
  out = _run("unified_io.train", *[a for a in args if "prepared_only" not in a], timeout=120)
  assert out.returncode == 1
  assert "missing; nothing was built" in out.stderr
  assert f"python -m unified_io.data.prepare coco/2017 --data_dir={data_dir}" in out.stderr


def _mark_every_row_prepared(data_dir):
  """dataset_info.json, with every split a task reads, for each builder the catalogue names."""
  all_tasks = tasks_lib.all_tasks()
  splits = {}
  for s in catalog_rows.SOURCES + catalog_rows.PRETRAINING:
    for name in s.tasks + s.other_tasks:
      task = all_tasks[name]
      splits.setdefault(task.builder, set()).update(v.split("[")[0] for v in task.splits.values())
  for builder, names in sorted(splits.items()):
    mock_tfds.mark_prepared(builder, data_dir, splits=tuple(sorted(names)))
  return splits


def test_with_every_row_prepared_the_sampled_rates_are_the_design(tmp_path):
  """Everything prepared: every row of Table 1 and A.2 counts as prepared, prepared_only
  leaves no task out, and the sampled rates per paper task equal the design."""
  data_dir = str(tmp_path)
  builders = _mark_every_row_prepared(data_dir)
  assert len(builders) >= 60
  for s in catalog_rows.SOURCES + catalog_rows.PRETRAINING:
    assert catalog.prepared(s, data_dir) is True, (s.row, s.dataset)
  keep = mixtures.prepared_filter(data_dir)
  for name in ("paper_multitask", "paper_pretraining"):
    assert mixtures.rates(name, keep) == mixtures.rates(name), name
  sampled = mixtures.rates("paper_multitask", keep)
  sampled_rows = {t for s in catalog.table1_rows() for t in s.tasks if sampled.get(t, 0) > 0}
  assert sampled_rows == {t for s in catalog.table1_rows() for t in s.tasks}  # every row
  design = catalog.paper_task_rates()
  for name in catalog_rows.PAPER_TASKS:
    rows = [s for s in catalog.table1_rows() if s.paper_task == name]
    got = sum(sampled.get(t, 0.0) for s in rows for t in s.tasks)
    assert abs(got - design[name]) <= max(0.003, 0.25 * design[name]), (name, got)
  pretraining = mixtures.rates("paper_pretraining", keep)
  assert {t for s in catalog_rows.PRETRAINING for t in s.tasks} <= set(pretraining)
  assert math.isclose(sum(pretraining.values()), 1.0)
  listing = catalog.table(data_dir)
  assert listing.splitlines()[-1].split()[1:4] == ["97", "97", "97"]  # rows, implemented, prepared


def test_sampled_rates_match_the_design_for_every_task():
  """paper_multitask over what is implemented vs the catalogue's design (all 22 tasks)."""
  sampled = mixtures.rates("paper_multitask")
  design = catalog.paper_task_rates()
  for name in catalog_rows.PAPER_TASKS:
    rows = [s for s in catalog.table1_rows() if s.paper_task == name]
    got = sum(sampled.get(t, 0.0) for s in rows for t in s.tasks)
    expected = design[name]
    assert got > 0, name
    assert abs(got - expected) <= max(0.003, 0.25 * expected), (name, got, expected)
