"""The Table 6 suite (unified_io/eval/paper_benchmarks.py): the paper's numbers, the table,
what is missing, and every benchmark run on mock-prepared data by a paper config at test
sizes with random parameters (the point is the plumbing, not the scores).

Expected paper numbers are copied by hand from Table 6 of the paper (arXiv:2206.08916).

  .venv/bin/python -m pytest -q tests/test_paper_benchmarks.py
"""

import json
import math
import os
import re
import subprocess
import sys

import flax.linen as nn
import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import small as small_config
from configs import tiny as tiny_config
from configs import xl as xl_config
from tests import mock_tfds
from tests import test_catalog
from unified_io import convert
from unified_io.eval import paper_benchmarks as pb
from unified_io.eval import predictor as predictor_lib
from unified_io.eval import results
from unified_io.model import builder as model_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER_TEXT = "/work/shared/papers/unified-io.txt"
# Table 6, by hand: (benchmark, size) -> the UNIFIED-IO row's number; None for "-".
BY_HAND = {
  ("NYUv2", "small"): 0.649,
  ("NYUv2", "xl"): 0.385,
  ("ImageNet", "base"): 63.3,
  ("VQA 2.0", "xl"): 77.9,
  ("OK-VQA", "large"): 42.7,
  ("VizWiz-G", "xl"): 65.0,
  ("SWiG", "small"): 17.3,
  ("VisualCOMET", "xl"): 21.2,
  ("VisualCOMET", "large"): None,
  ("nocaps", "large"): 87.2,
  ("COCO Captions", "base"): 104.0,
  ("COCO Captions test", "small"): None,
  ("COCO Captions test", "xl"): 122.3,
  ("MRPC", "large"): 87.5,
  ("SciTail", "xl"): 95.7,
}
# Table 6's split and metric rows, left to right, by hand.
SPLITS = "val val val test-dev test test test-dev test-std test val val val val test val val test"
METRICS = "RMSE Acc. Acc. Acc. Acc. Acc. Acc. IOU Acc. Acc. CIDEr CIDEr CIDEr CIDEr F1 Acc. Acc."


def test_paper_numbers_by_hand():
  for (name, size), expected in BY_HAND.items():
    assert pb.BY_NAME[name].paper_value(size) == expected, (name, size)
  assert [b.paper_split for b in pb.BENCHMARKS] == SPLITS.split()
  assert [b.paper_metric for b in pb.BENCHMARKS] == METRICS.split()


@pytest.mark.skipif(not os.path.exists(PAPER_TEXT), reason=f"{PAPER_TEXT} is not here")
def test_paper_numbers_match_the_paper_text():
  """All 68 numbers against the UNIFIED-IO rows of the paper's extracted text."""
  text = open(PAPER_TEXT).read()
  for size in pb.SIZES:
    label = f"UNIFIED-IO{pb.SIZE_NAMES[size].upper()} "
    (line,) = [l for l in text.splitlines() if l.startswith(label) and l.count(" ") == 17]
    cells = line.split()[1:]
    assert [None if c == "-" else float(c) for c in cells] == [
      b.paper[pb.SIZES.index(size)] for b in pb.BENCHMARKS
    ], size


def test_benchmarks_name_registered_tasks_and_their_splits():
  from unified_io.data.tasks import registry

  assert len(pb.BENCHMARKS) == 17 and len(pb.BY_NAME) == 17
  for b in pb.BENCHMARKS:
    assert len(b.paper) == 4
    if b.unavailable:
      assert not b.tasks
      continue
    for name in b.tasks:
      task = registry.get(name)
      assert b.split in task.splits and task.metric is not None, (b.name, name)
  # Server-only test answers: the four whose paper split we cannot score.
  noted = {b.name for b in pb.BENCHMARKS if b.split_note}
  assert noted == {"VQA 2.0", "A-OKVQA", "VizWiz-QA", "VizWiz-G"}


def test_model_size_follows_table2():
  assert pb.model_size(small_config.get_config()) == "small"
  assert pb.model_size(xl_config.get_config()) == "xl"
  assert pb.model_size(tiny_config.get_config()) is None


def _run(texts, targets, captions=None):
  raws = [
    {"target_text": t, "meta": {} if captions is None else {"captions": c}}
    for t, c in zip(targets, captions or targets)
  ]
  return pb.TaskRun(None, raws, [{"text": t} for t in texts], {})


def test_mrpc_f1_by_hand():
  # yes/yes, yes/no, no/yes, no/no, yes/yes: tp 2, fp 1, fn 1 -> F1 = 4 / 6.
  run = _run(["yes", "yes", "no", "no", " yes"], ["yes", "no", "yes", "no", "yes"])
  assert pb.value(pb.BY_NAME["MRPC"], [run]) == pytest.approx(100 * 4 / 6)


def test_visualcomet_pools_its_three_tasks():
  # Four-word captions with disjoint words: a perfect prediction scores CIDEr-D 10 (cosine
  # 1 for each n-gram order 1-4, x10, no length penalty), a wrong one 0. Pooled, the IDF is
  # log(3 / 1) per n-gram; each task alone (one example) would have IDF log(1 / 1) = 0, so 0.
  refs = [
    ["a red ball here"],
    ["two green trees grow"],
    ["the blue sky now"],
    ["old brown shoes lie"],
  ]
  right = [_run([r[0]], [r[0]], [r]) for r in refs[:3]]
  assert pb.value(pb.BY_NAME["VisualCOMET"], right) == pytest.approx(1000.0)
  assert pb.value(pb.BY_NAME["VisualCOMET"], right[:1]) == 0.0
  wrong = [_run([refs[3][0]], [r[0]], [r]) for r in refs[:3]]
  assert pb.value(pb.BY_NAME["VisualCOMET"], wrong) == pytest.approx(0.0)


def test_value_reads_the_scorers_metric_or_extra():
  score = results.Score("vqa_accuracy", 0.25, 0.1, "x", extra={"mask_iou": 0.5})
  run = pb.TaskRun(score, [], [], {})
  assert pb.value(pb.BY_NAME["VizWiz-G"], [run]) == pytest.approx(50.0)
  assert pb.value(pb.BY_NAME["VQA 2.0"], [run]) == pytest.approx(25.0)
  with pytest.raises(ValueError, match="not 'RMSE"):
    pb.value(pb.BY_NAME["NYUv2"], [run])


def test_missing_names_the_prepare_steps(tmp_path):
  data_dir = str(tmp_path)
  boolq = pb.missing(pb.BY_NAME["BoolQ"], data_dir)
  assert boolq == (
    "super_glue/boolq is not prepared: python -m unified_io.data.prepare super_glue/boolq "
    f"--data_dir={data_dir}"
  )
  vqa = pb.missing(pb.BY_NAME["VQA 2.0"], data_dir)
  assert f"{data_dir}/downloads/manual/uio_vqa_v2/" in vqa and "uio_vqa_v2 --data_dir" in vqa
  # The three VisualCOMET tasks read one builder: its steps are given once.
  assert pb.missing(pb.BY_NAME["VisualCOMET"], data_dir).count("is not prepared") == 1
  assert pb.missing(pb.BY_NAME["nocaps"], data_dir).startswith("not available: TFDS has no")
  # Prepared without the split scored: rebuild, rather than the catalogue's first steps.
  mock_tfds.mark_prepared("sci_tail", data_dir, splits=("train", "validation"))
  scitail = pb.missing(pb.BY_NAME["SciTail"], data_dir)
  assert "has no split test" in scitail and "--overwrite" in scitail
  mock_tfds.mark_prepared("glue/mrpc", data_dir, splits=("train", "validation"))
  assert pb.missing(pb.BY_NAME["MRPC"], data_dir) == ""


def test_table_layout():
  rows = [
    pb.Row(pb.BY_NAME["NYUv2"], ours=0.5123, num_examples=654),
    pb.Row(pb.BY_NAME["VQA 2.0"], ours=61.04, num_examples=10, skipped={"no answers": 2}),
    pb.Row(pb.BY_NAME["nocaps"], missing=pb.NOCAPS),
    pb.Row(pb.BY_NAME["BoolQ"], missing="super_glue/boolq is not prepared: CMD"),
  ]
  table = pb.format_table(rows, "base", num_examples=10)
  lines = table.splitlines()
  assert lines[0] == "Table 6 benchmarks: UNIFIED-IO Base in the paper beside ours"

  def cells(label):  # the row's cells across the table's blocks, left to right
    found = [l for l in lines if l.startswith(f"| {label} ")]
    return [c.strip() for l in found for c in l.strip("|").split("|")[1:]]

  assert [l for l in lines if l in ("Vision:", "V&L:", "Language:")] == [
    "Vision:",
    "V&L:",
    "Language:",
  ]
  assert cells("Split (paper)") == ["val", "test-dev", "val", "val"]
  assert cells("Split (ours)") == ["validation", "validation*", "-", "validation"]
  assert cells("Metric (paper)") == ["RMSE", "Acc.", "CIDEr", "Acc."]
  assert cells("UNIFIED-IO Base (paper)") == ["0.469", "61.8", "66.9", "70.8"]
  assert cells("ours") == ["0.512", "61.0", "not run", "not run"]
  assert cells("examples") == ["654", "10", "-", "-"]
  assert "- VQA 2.0*: the paper's test-dev answers are on the evaluation server only" in table
  assert "- ours: the first 10 usable examples of each task's split only" in table
  assert "- VQA 2.0: records skipped: no answers (2)" in table
  assert lines[-3:] == [
    "Not run (2 of 4):",
    f"- nocaps: {pb.NOCAPS}",
    "- BoolQ: super_glue/boolq is not prepared: CMD",
  ]
  # Size unknown: every size's paper row.
  every = pb.format_table(rows[:1], None).splitlines()
  assert [l.split("|")[1].strip() for l in every if l.startswith("| UNIFIED-IO")] == [
    f"UNIFIED-IO {s} (paper)" for s in ("Small", "Base", "Large", "XL")
  ]


def test_bad_requests_are_named():
  with pytest.raises(ValueError, match="unknown benchmark.*VQA 3"):
    pb.select(["VQA 3"])
  with pytest.raises(ValueError, match="size must be one of"):
    pb.suite(None, data_dir=None, out="x", size="huge")
  with pytest.raises(ValueError, match="num_examples must be >= 1"):
    pb.suite(None, data_dir=None, out="x", num_examples=0)


# ----------------------------------------------------------- every benchmark on mock data


def _vizwiz_mask(example):
  """The generator draws mask and image sizes apart; the builder writes them equal."""
  h, w = example["image"].shape[:2]
  example["mask"] = np.where(np.arange(h * w).reshape(h, w, 1) % 3 == 0, 255, 0).astype(np.uint8)
  return example


def _prepare_every_benchmark(data_dir, num_examples=3):
  """Mock records, per builder, in every split a benchmark scores."""
  from unified_io.data.tasks import registry

  splits = {}
  for b in pb.BENCHMARKS:
    for name in b.tasks:
      task = registry.get(name)
      splits.setdefault(task.builder, set()).add(task.splits[b.split])
  for builder, names in sorted(splits.items()):
    fix = mock_tfds.consistent(tfds.builder(builder, data_dir=data_dir).info.features)
    if builder == "uio_vizwiz/grounding":
      fix = mock_tfds.chain(fix, _vizwiz_mask)
    mock_tfds.prepare(builder, data_dir, sorted(names), num_examples, fix)
  return splits


def _test_config():
  """configs/small.py at test sizes (test_catalog's overrides): the shipped tiny tokenizer
  and VQ-GAN, one layer each side, 64-pixel images."""
  config = small_config.get_config()
  config.update_from_flattened_dict(test_catalog.TINY_OVERRIDES)
  return config


@pytest.fixture(scope="module")
def mock_run(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  builders = _prepare_every_benchmark(data_dir)
  config = _test_config()
  params = nn.unbox(model_lib.init_params(model_lib.build(config), jax.random.key(0)))
  lines = []
  out = str(tmp_path_factory.mktemp("out"))
  table = pb.suite(
    predictor_lib.Predictor(config, params),
    data_dir=data_dir,
    out=out,
    num_examples=2,
    batch_size=2,
    max_depth=config.data.max_depth,
    size="small",
    progress=lines.append,
  )
  return dict(
    data_dir=data_dir,
    builders=builders,
    table=table,
    lines=lines,
    out=out,
    config=config,
    params=params,
  )


@pytest.mark.slow
def test_every_benchmark_runs_on_mock_data(mock_run):
  assert len(mock_run["builders"]) == 15
  saved = json.load(open(os.path.join(mock_run["out"], "paper_benchmarks.json")))
  assert saved["size"] == "small" and saved["num_examples"] == 2
  rows = {r["benchmark"]: r for r in saved["rows"]}
  assert list(rows) == [b.name for b in pb.BENCHMARKS]
  for name, row in rows.items():
    if name == "nocaps":
      assert row["ours"] is None and row["missing"].startswith("not available")
      continue
    assert row["missing"] == "" and row["error"] == "", name
    assert math.isfinite(row["ours"]), name
    # Percent metrics stay in [0, 100]; CIDEr-D (x100) is at most 1000, RMSE non-negative.
    assert 0 <= row["ours"] <= (1000 if "CIDEr" in row["metric"] else 100), (name, row)
    assert row["num_examples"] == 2 * len(pb.BY_NAME[name].tasks), name
  table = mock_run["table"]
  assert open(os.path.join(mock_run["out"], "paper_benchmarks.md")).read() == table + "\n"
  assert table in mock_run["lines"]
  paper = [l for l in table.splitlines() if l.startswith("| UNIFIED-IO Small (paper) ")]
  ours = [l for l in table.splitlines() if l.startswith("| ours ")]
  assert len(paper) == len(ours) == 4  # Vision, V&L, V&L (continued), Language
  numbers = " ".join(paper)
  for value in ("0.649", "42.8", "57.7", "35.5", "76.5", "45.1", "80.1", "84.9", "87.4"):
    assert f" {value} " in numbers
  assert table.splitlines()[-2:] == ["Not run (1 of 17):", f"- nocaps: {pb.NOCAPS}"]
  progress = [l for l in mock_run["lines"] if re.match(r"\[\d+/17\]", l)]
  assert len(progress) == 17 and "nocaps: skipped, not available" in progress[11]


@pytest.mark.slow
def test_cli_runs_what_is_prepared_and_lists_the_rest(mock_run, tmp_path):
  """`unified_io.evaluate --benchmark=paper` on a converted checkpoint: the prepared
  benchmark runs, the absent dataset is listed with its prepare command."""
  checkpoint = str(tmp_path / "ckpt")
  convert.save_params(checkpoint, mock_run["params"])
  data_dir = str(tmp_path / "tfds")
  fix = mock_tfds.consistent(tfds.builder("sci_tail", data_dir=data_dir).info.features)
  mock_tfds.prepare("sci_tail", data_dir, ("test",), 3, fix)
  overrides = [f"--config.{k}={v}" for k, v in test_catalog.TINY_OVERRIDES.items()]
  out = subprocess.run(
    [
      sys.executable,
      "-m",
      "unified_io.evaluate",
      "--benchmark=paper",
      f"--config={ROOT}/configs/small.py",
      *overrides,
      f"--config.data.data_dir={data_dir}",
      f"--checkpoint={checkpoint}",
      "--tasks=SciTail,BoolQ",
      "--num_examples=2",
      f"--out={tmp_path / 'o'}",
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert out.returncode == 0, out.stderr[-3000:]
  assert "| UNIFIED-IO Small (paper) | 87.4 " in out.stdout  # small.py's Table 2 shape
  assert "Not run (1 of 2):" in out.stdout
  assert (
    f"- BoolQ: super_glue/boolq is not prepared: python -m unified_io.data.prepare "
    f"super_glue/boolq --data_dir={data_dir}" in out.stdout
  )
  saved = json.load(open(tmp_path / "o" / "paper_benchmarks.json"))
  assert [r["num_examples"] for r in saved["rows"]] == [2, 0]
