"""The paper's Table 6 benchmarks as one suite: our numbers beside the paper's, per model size.

  python -m unified_io.evaluate --benchmark=paper --workdir=W [--config=configs/xl.py]
      [--checkpoint=C] [--config.data.data_dir=D] [--num_examples=N]
      [--tasks="VQA 2.0,BoolQ"] [--out=O]

For a converted release (`python -m unified_io.convert`), --config is the size's config and
--checkpoint the converted directory. Every benchmark whose dataset is prepared in D is
scored on its split with the metric the paper reports, in the paper's units; the table
follows Table 6's layout (benchmarks across; split, metric, the paper's UNIFIED-IO row for
the model's size and ours down), the footnotes say where our split or metric is not the
paper's, and the benchmarks that could not run are listed with the steps that prepare them.
Writes O/paper_benchmarks.md and O/paper_benchmarks.json (default O: W/paper_benchmarks).

The paper's numbers are Table 6 of Lu et al. 2022 (arXiv:2206.08916), copied by hand. Its
column headers did not survive the text extraction we worked from, so the 17 columns are
assigned from the caption's benchmark order, each column's split and metric rows and the
prior results cited in them: OK-VQA, missing from the caption but among the abstract's 16
benchmarks, is column 5 (Flamingo's 57.8 and KAT's 54.4 beside it), and COCO Captions has
two columns, val and test. The paper does not name its COCO split; we score the Karpathy
val and test splits (TFDS coco_captions/2014), the usual ones for captioning results.

Examples are read, predicted and scored in chunks (`CHUNK`), their images dropped once
predicted, so a whole validation set (ImageNet's 50k) fits in memory; scores are computed
once over all of a task's examples (CIDEr-D's IDF is corpus-level). --num_examples limits
each task to its first N usable records, as `unified_io.evaluate` does.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import os
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from unified_io.common import rng_streams
from unified_io.data import availability
from unified_io.data import catalog
from unified_io.data import from_config
from unified_io.data import pipeline
from unified_io.data.tasks import registry as tasks_lib
from unified_io.eval import metrics
from unified_io.eval import task_eval

SIZES = ("small", "base", "large", "xl")
SIZE_NAMES = {"small": "Small", "base": "Base", "large": "Large", "xl": "XL"}
# Table 2: (encoder layers, decoder layers, model dims, MLP dims, heads) of each size.
TABLE2 = {
  "small": (8, 8, 512, 1024, 6),
  "base": (12, 12, 768, 2048, 12),
  "large": (24, 24, 1024, 2816, 16),
  "xl": (24, 24, 2048, 5120, 32),
}
CHUNK = 512  # usable examples read and predicted at a time (their images then dropped)
PAPER_SPLIT_MARK = "*"  # our split is not the paper's
METRIC_MARK = "†"  # our metric is, or may be, computed differently from the paper's

CIDER_NOTE = (
  "CIDEr-D by pycocoevalcap, captions tokenized in Python (coco-caption runs the Java PTB "
  "tokenizer; the two agree on ordinary captions)"
)


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """One column of Table 6.

  metric: the number we report: our scorer's Score.metric or a Score.extra key, or one of
  `DERIVED` (computed from the predictions of all of `tasks`); scale converts it to the
  paper's units (fractions to percent). paper: Table 6's UNIFIED-IO rows, Small to XL,
  None where the table has "-". split_note / metric_note: why ours differs from the paper's
  split / metric, empty where it does not. unavailable: why there is nothing to run.
  """

  name: str
  group: str
  tasks: Tuple[str, ...]
  split: str  # the tasks' split we score
  paper_split: str
  metric: str
  paper_metric: str
  scale: float
  paper: Tuple[Optional[float], ...]
  split_note: str = ""
  metric_note: str = ""
  unavailable: str = ""

  def paper_value(self, size: str) -> Optional[float]:
    return self.paper[SIZES.index(size)]

  @property
  def decimals(self) -> int:
    return 3 if self.paper_metric == "RMSE" else 1


def _server(what: str) -> str:
  return f"the paper's {what} answers are on the evaluation server only: ours is validation"


NOCAPS = (
  "not available: TFDS has no nocaps builder and the project has none yet. It would need "
  "nocaps_val_4500_captions.json (https://nocaps.org/download: COCO-format captions, 10 per "
  "image) and the Open Images validation images it names, a builder in "
  "unified_io/data/builders/ reading them, and a captioning task on it in "
  "unified_io/data/tasks/ (evaluation only: the val captions are public, so CIDEr-D can "
  "score it here)"
)
AOKVQA = (
  "direct answers scored with the VQA normalisation over every question; A-OKVQA's own "
  "score leaves the difficult_direct_answer questions out and does not normalise"
)
VISUALCOMET = (
  "one CIDEr-D over the before, after and intent inferences together (the paper does not "
  f"say how it pooled them); {CIDER_NOTE}"
)
B, PCT = Benchmark, 100.0

# Table 6, by column. Fields: name, group, tasks, our split, the paper's split, our metric,
# the paper's metric, scale, the paper's (Small, Base, Large, XL), then the notes.
# fmt: off
BENCHMARKS: Tuple[Benchmark, ...] = (
  B("NYUv2", "Vision", ("nyu_depth",), "validation", "val", "RMSE (m)", "RMSE", 1.0,
    (0.649, 0.469, 0.402, 0.385)),
  # A.1.4: the answer is the highest-scoring class name of the dataset, as our choice tasks.
  B("ImageNet", "Vision", ("imagenet2012_classification",), "validation", "val", "accuracy",
    "Acc.", PCT, (42.8, 63.3, 71.8, 79.1)),
  B("Places365", "Vision", ("places365_classification",), "validation", "val", "accuracy",
    "Acc.", PCT, (38.2, 43.2, 50.5, 53.2)),
  B("VQA 2.0", "V&L", ("vqa_v2",), "validation", "test-dev", "vqa_accuracy", "Acc.", PCT,
    (57.7, 61.8, 67.8, 77.9), split_note=_server("test-dev")),
  # OK-VQA releases train and val only; its val is what papers report as test.
  B("OK-VQA", "V&L", ("okvqa",), "validation", "test", "vqa_accuracy", "Acc.", PCT,
    (31.0, 37.8, 42.7, 54.0)),
  B("A-OKVQA", "V&L", ("aokvqa",), "validation", "test", "vqa_accuracy", "Acc.", PCT,
    (24.3, 28.5, 33.4, 45.2), split_note=_server("test"), metric_note=AOKVQA),
  B("VizWiz-QA", "V&L", ("vizwiz_vqa",), "validation", "test-dev", "vqa_accuracy", "Acc.", PCT,
    (42.4, 45.8, 47.7, 57.4), split_note=_server("test-dev")),
  B("VizWiz-G", "V&L", ("vizwiz_grounding",), "validation", "test-std", "mask_iou", "IOU", PCT,
    (35.5, 50.0, 54.7, 65.0), split_note=_server("test-std"),
    metric_note="mean IoU of the predicted answer mask over the examples whose mask parsed"),
  B("SWiG", "V&L", ("imsitu_verb",), "test", "test", "accuracy", "Acc.", PCT,
    (17.3, 29.7, 40.4, 49.8),
    metric_note="Acc. read as top-1 verb accuracy: the generated verb, exactly"),
  B("SNLI-VE", "V&L", ("snli_ve",), "validation", "val", "accuracy", "Acc.", PCT,
    (76.5, 85.6, 86.1, 91.1)),
  B("VisualCOMET", "V&L", ("visualcomet_before", "visualcomet_after", "visualcomet_intent"),
    "validation", "val", "pooled CIDEr-D", "CIDEr", PCT, (None, None, None, 21.2),
    metric_note=VISUALCOMET),
  B("nocaps", "V&L", (), "", "val", "CIDEr-D", "CIDEr", PCT, (45.1, 66.9, 87.2, 100.0),
    unavailable=NOCAPS),
  B("COCO Captions", "V&L", ("coco_captioning",), "validation", "val", "CIDEr-D", "CIDEr", PCT,
    (80.1, 104.0, 117.5, 126.8),
    metric_note=f"the Karpathy val split (TFDS coco_captions/2014 val); {CIDER_NOTE}"),
  B("COCO Captions test", "V&L", ("coco_captioning",), "test", "test", "CIDEr-D", "CIDEr", PCT,
    (None, None, None, 122.3),
    metric_note=f"the Karpathy test split (TFDS coco_captions/2014 test); {CIDER_NOTE}"),
  B("MRPC", "Language", ("glue_mrpc",), "validation", "val", "F1 of yes", "F1", PCT,
    (84.9, 87.9, 87.5, 89.2)),
  B("BoolQ", "Language", ("superglue_boolq",), "validation", "val", "accuracy", "Acc.", PCT,
    (65.9, 70.8, 73.1, 79.7)),
  B("SciTail", "Language", ("scitail",), "test", "test", "accuracy", "Acc.", PCT,
    (87.4, 90.8, 93.1, 95.7)),
)
# fmt: on
BY_NAME = {b.name: b for b in BENCHMARKS}


# ------------------------------------------------------------------------------ scoring


@dataclasses.dataclass
class TaskRun:
  """One task's evaluation: its score, and the examples (images dropped) and predictions."""

  score: object  # results.Score
  raws: List[dict]
  predictions: List[dict]
  skipped: Dict[str, int]


def _references(raw) -> List[str]:
  return list(raw["meta"].get("captions") or [raw["target_text"]])


def pooled_cider(runs: Sequence[TaskRun]) -> float:
  """One corpus CIDEr-D over every task's predictions (IDF over all their references)."""
  raws = [r for run in runs for r in run.raws]
  preds = [p["text"] for run in runs for p in run.predictions]
  return metrics.cider(preds, [_references(r) for r in raws])


def f1_of_yes(runs: Sequence[TaskRun]) -> float:
  """F1 of the positive answer ("yes": MRPC's equivalent pairs), as GLUE reports MRPC."""
  (run,) = runs
  preds = [p["text"].strip() for p in run.predictions]
  return metrics.f1(preds, [r["target_text"].strip() for r in run.raws], positive_label="yes")


DERIVED: Dict[str, Callable[[Sequence[TaskRun]], float]] = {
  "pooled CIDEr-D": pooled_cider,
  "F1 of yes": f1_of_yes,
}


def value(benchmark: Benchmark, runs: Sequence[TaskRun]) -> float:
  """The benchmark's number, in the paper's units, from its tasks' runs."""
  if benchmark.metric in DERIVED:
    return benchmark.scale * DERIVED[benchmark.metric](runs)
  (run,) = runs
  score = run.score
  if benchmark.metric == score.metric:
    return benchmark.scale * float(score.value)
  if benchmark.metric in score.extra:
    return benchmark.scale * float(score.extra[benchmark.metric])
  raise ValueError(
    f"{benchmark.name}: its scorer reports {score.metric!r} and {sorted(score.extra)}, "
    f"not {benchmark.metric!r}"
  )


class NoUsableExample(ValueError):
  """A prepared split whose every record the task skips."""


def _chunks(task, spec, ctx, split, limit, seed, data_dir, chunk):
  """The task's usable examples of `split`, in record order, `chunk` at a time; each record
  is prepared with the same seed as task_eval.collect, so the first N are collect's N."""
  src = pipeline.source(task.builder, task.splits[split], data_dir, task.record_filter)
  raws, rows, skipped, total = [], [], collections.Counter(), 0
  for index in range(len(src)):
    if limit is not None and total == limit:
      break
    rng = np.random.default_rng([seed, rng_streams.EVAL_EXAMPLE, index])
    try:
      features, raw, _ = pipeline.prepare(task, src[index], rng, spec, ctx)
    except tasks_lib.SkipExample as e:
      skipped[str(e)] += 1
      continue
    raws.append(raw)
    rows.append(features)
    total += 1
    if len(raws) == chunk:
      yield _stack(task, raws, rows, skipped)
      raws, rows = [], []
  if raws:
    yield _stack(task, raws, rows, skipped)
  if not total:
    raise NoUsableExample(
      f"{task.name}: no usable example in {task.builder}[{task.splits[split]}] "
      f"(skipped: {dict(skipped)})"
    )


def _stack(task, raws, rows, skipped):
  features = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
  return task_eval.TaskExamples(task, raws, features, skipped)


def evaluate_task(
  predictor, name: str, split: str, *, limit, batch_size, seed, data_dir, max_depth, chunk=CHUNK
) -> TaskRun:
  """Task `name` on `split` (its first `limit` usable examples, None: all), scored once."""
  task = tasks_lib.get(name)
  spec = predictor.spec
  # The run's conditioning and object order (a config may set either), this call's depth.
  ctx = dataclasses.replace(from_config.task_context(predictor.config, spec), max_depth=max_depth)
  raws, preds, skipped = [], [], collections.Counter()
  for part in _chunks(task, spec, ctx, split, limit, seed, data_dir, chunk):
    found = task_eval.predict(predictor, part, batch_size, seed, first_index=len(raws))
    preds += [{k: v for k, v in p.items() if k != "option_scores"} for p in found]
    raws += [{k: v for k, v in r.items() if k not in ("image", "target_image")} for r in part.raws]
    skipped = part.skipped
  examples = task_eval.TaskExamples(task, raws, {}, skipped)
  score = task_eval.score(examples, preds, spec, max_depth)
  return TaskRun(score, raws, preds, dict(skipped))


# ---------------------------------------------------------------------------------- suite


@dataclasses.dataclass
class Row:
  """A benchmark's outcome: ours (None when it did not run) and why not."""

  benchmark: Benchmark
  ours: Optional[float] = None
  num_examples: int = 0
  skipped: Dict[str, int] = dataclasses.field(default_factory=dict)
  missing: str = ""  # what is not there and how to prepare it
  error: str = ""  # why a prepared benchmark could not be scored (no usable example)

  def as_json(self, size: Optional[str]) -> dict:
    b = self.benchmark
    return dict(
      benchmark=b.name,
      tasks=list(b.tasks),
      split=b.split,
      paper_split=b.paper_split,
      metric=b.metric,
      paper_metric=b.paper_metric,
      ours=self.ours,
      paper={s: b.paper_value(s) for s in ([size] if size else SIZES)},
      num_examples=self.num_examples,
      skipped=self.skipped,
      missing=self.missing,
      error=self.error,
    )


def missing(benchmark: Benchmark, data_dir: Optional[str]) -> str:
  """Empty when every dataset the benchmark reads is prepared with its split, else what is
  missing and the steps that prepare it (the catalogue's, or a rebuild when only the split
  is absent)."""
  if benchmark.unavailable:
    return benchmark.unavailable
  found = []
  for name in benchmark.tasks:
    task = tasks_lib.get(name)
    problem = availability.dataset_problem(
      task.builder, [task.splits[benchmark.split]], data_dir, benchmark.tasks
    )
    if problem is None:
      continue
    source = catalog.source_of(name)
    if source is None or catalog.prepared(source, data_dir):  # there, without our split
      found.append(f"{problem.what}: {problem.how}")
    else:
      found.append(f"{task.builder} is not prepared: {catalog.prepare_hint(source, data_dir)}")
  return "; ".join(dict.fromkeys(found))  # tasks sharing a builder: said once


def model_size(config) -> Optional[str]:
  """The paper size whose Table 2 shape the config's model has; None for other shapes."""
  m = config.model
  shape = (m.num_encoder_layers, m.num_decoder_layers, m.emb_dim, m.mlp_dim, m.num_heads)
  return next((size for size, dims in TABLE2.items() if dims == shape), None)


def select(names: Optional[Sequence[str]]) -> Tuple[Benchmark, ...]:
  """Benchmarks by Table 6 name (all when names is empty); ValueError naming unknown ones."""
  if not names:
    return BENCHMARKS
  unknown = [n for n in names if n not in BY_NAME]
  if unknown:
    raise ValueError(
      f"unknown benchmark(s) {', '.join(unknown)}; Table 6's are {', '.join(BY_NAME)}"
    )
  return tuple(BY_NAME[n] for n in names)


def run(
  predictor,
  data_dir: Optional[str],
  *,
  benchmarks: Sequence[Benchmark] = BENCHMARKS,
  num_examples: Optional[int] = None,
  batch_size: int = 16,
  seed: int = 0,
  max_depth: float = 10.0,
  progress: Callable[[str], None] = print,
) -> List[Row]:
  """Every benchmark whose data is prepared in data_dir, scored; the others' rows say what
  is missing. A task two benchmarks share on one split runs once."""
  rows, done = [], {}
  evaluate = functools.partial(
    evaluate_task,
    predictor,
    limit=num_examples,
    batch_size=batch_size,
    seed=seed,
    data_dir=data_dir,
    max_depth=max_depth,
  )
  for k, benchmark in enumerate(benchmarks):
    row = Row(benchmark, missing=missing(benchmark, data_dir))
    rows.append(row)
    if row.missing:
      progress(f"[{k + 1}/{len(benchmarks)}] {benchmark.name}: skipped, {row.missing}")
      continue
    start = time.time()
    try:
      for name in benchmark.tasks:
        if (name, benchmark.split) not in done:
          done[name, benchmark.split] = evaluate(name, benchmark.split)
    except NoUsableExample as e:
      row.error = str(e)
      progress(f"[{k + 1}/{len(benchmarks)}] {benchmark.name}: not scored, {e}")
      continue
    runs = [done[name, benchmark.split] for name in benchmark.tasks]
    row.ours = value(benchmark, runs)
    row.num_examples = sum(len(r.raws) for r in runs)
    row.skipped = dict(sum((collections.Counter(r.skipped) for r in runs), collections.Counter()))
    progress(
      f"[{k + 1}/{len(benchmarks)}] {benchmark.name}: {benchmark.paper_metric} "
      f"{row.ours:.{benchmark.decimals}f} on {row.num_examples} {benchmark.split} examples, "
      f"{time.time() - start:.1f} s"
    )
  return rows


# ------------------------------------------------------------------------------- the table

BLOCK_COLUMNS = 7  # benchmarks per table block, so that a block fits a terminal


def _blocks(rows: Sequence[Row]) -> List[Tuple[str, List[Row]]]:
  """Rows by Table 6 group, in order, in blocks of at most BLOCK_COLUMNS."""
  blocks = []
  for group in dict.fromkeys(r.benchmark.group for r in rows):
    members = [r for r in rows if r.benchmark.group == group]
    for i in range(0, len(members), BLOCK_COLUMNS):
      blocks.append((group if i == 0 else f"{group} (continued)", members[i : i + BLOCK_COLUMNS]))
  return blocks


def _number(x: Optional[float], decimals: int) -> str:
  return "-" if x is None else f"{x:.{decimals}f}"


def _markdown(header: Sequence[str], body: Sequence[Sequence[str]]) -> List[str]:
  widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
  line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
  return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)]


def _ours(row: Row) -> str:
  if row.missing:
    return "not run"
  if row.error:
    return "no data"
  return _number(row.ours, row.benchmark.decimals)


def format_table(rows: Sequence[Row], size: Optional[str], num_examples: Optional[int] = None):
  """Table 6's layout (benchmarks across) with the paper's row for `size` (all four when
  None) beside ours, then the notes on splits and metrics, then what did not run."""
  sizes = [size] if size else list(SIZES)
  title = f"UNIFIED-IO {SIZE_NAMES[size]}" if size else "UNIFIED-IO (size unknown: every size)"
  lines = [f"Table 6 benchmarks: {title} in the paper beside ours", ""]
  for group, members in _blocks(rows):
    bs = [r.benchmark for r in members]
    body = [
      ["Split (paper)", *[b.paper_split for b in bs]],
      [
        "Split (ours)",
        *[(b.split or "-") + (PAPER_SPLIT_MARK if b.split_note else "") for b in bs],
      ],
      ["Metric (paper)", *[b.paper_metric for b in bs]],
      ["Metric (ours)", *[b.metric + (METRIC_MARK if b.metric_note else "") for b in bs]],
      *[
        [
          f"UNIFIED-IO {SIZE_NAMES[s]} (paper)",
          *[_number(b.paper_value(s), b.decimals) for b in bs],
        ]
        for s in sizes
      ],
      ["ours", *map(_ours, members)],
      ["examples", *[str(r.num_examples) if r.ours is not None else "-" for r in members]],
    ]
    lines += [f"{group}:", *_markdown(["", *[b.name for b in bs]], body), ""]
  notes = [
    f"- {r.benchmark.name}{mark}: {note}"
    for r in rows
    for mark, note in (
      (PAPER_SPLIT_MARK, r.benchmark.split_note),
      (METRIC_MARK, r.benchmark.metric_note),
    )
    if note
  ]
  lines.append(
    f"Notes ({PAPER_SPLIT_MARK}: our split, {METRIC_MARK}: our metric may differ from the "
    "paper's; ours is in the paper's units, percent or metres):"
  )
  lines += notes
  if num_examples is not None:
    lines.append(f"- ours: the first {num_examples} usable examples of each task's split only")
  for r in [r for r in rows if r.skipped]:
    reasons = ", ".join(f"{k} ({v})" for k, v in sorted(r.skipped.items()))
    lines.append(f"- {r.benchmark.name}: records skipped: {reasons}")
  absent = [r for r in rows if r.missing or r.error]
  if absent:
    lines += ["", f"Not run ({len(absent)} of {len(rows)}):"]
    lines += [f"- {r.benchmark.name}: {r.missing or r.error}" for r in absent]
  return "\n".join(lines)


def write(rows: Sequence[Row], out: str, size: Optional[str], num_examples: Optional[int]):
  """OUT/paper_benchmarks.md (the table) and OUT/paper_benchmarks.json (every row)."""
  os.makedirs(out, exist_ok=True)
  table = format_table(rows, size, num_examples)
  with open(os.path.join(out, "paper_benchmarks.md"), "w") as f:
    f.write(table + "\n")
  saved = {"size": size, "num_examples": num_examples, "rows": [r.as_json(size) for r in rows]}
  with open(os.path.join(out, "paper_benchmarks.json"), "w") as f:
    json.dump(saved, f, indent=1)
  return table


# ---------------------------------------------------------------------------- entry points


def suite(
  predictor,
  *,
  data_dir: Optional[str],
  out: str,
  num_examples: Optional[int] = None,
  batch_size: int = 16,
  seed: int = 0,
  max_depth: float = 10.0,
  size: Optional[str] = None,
  benchmarks: Sequence[str] = (),
  progress: Callable[[str], None] = print,
) -> str:
  """Runs the suite with `predictor`, writes OUT/paper_benchmarks.{md,json} and returns the
  table. size: the paper row to compare with (default: the config's, by Table 2's shapes).
  ValueError naming the input for an unknown benchmark or size, or a limit below 1."""
  chosen = select(benchmarks)
  if size is not None and size not in SIZES:
    raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
  for what, n in (("num_examples", num_examples), ("batch_size", batch_size)):
    if n is not None and n < 1:
      raise ValueError(f"{what} must be >= 1, got {n}")
  size = size or model_size(predictor.config)
  rows = run(
    predictor,
    data_dir,
    benchmarks=chosen,
    num_examples=num_examples,
    batch_size=batch_size,
    seed=seed,
    max_depth=max_depth,
    progress=progress,
  )
  table = write(rows, out, size, num_examples)
  progress(table)
  progress(f"Wrote {out}/paper_benchmarks.md and paper_benchmarks.json")
  return table
