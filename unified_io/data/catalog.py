"""The catalogue of the paper's datasets: what each is, its design rate, whether it is here.

  python -m unified_io.data.catalog [--data_dir=D] [--pretraining | --sizes]

prints one line per dataset of Table 1 (`catalog_rows.SOURCES`, 97 rows for its 95 slots):
the registered task(s), the builder, the design size and rate, the state (implemented, or
the issue that brings its builder) and, per row, whether it is prepared in D with the exact
command that prepares it. Totals per group close the table. `--pretraining` prints the
pre-training sources (A.2) instead, `--sizes` every builder's download size and estimated
preparation time with the totals over unique files (`disk_sizes.py`).

Design rates follow §3.3 and A.3: each group gets GROUP_RATES[group] (1/8; image synthesis
3/16, dense labelling 1/16) and within a group each dataset is sampled in proportion to
sqrt(size) (temperature T = 2), over every Table 1 row whether implemented or not, so the
rates are the paper's design. Sizes are `design_size`: a row's documented count scaled so
its paper task's rows add up to Table 1's size (see catalog_rows). What a run actually
samples, over the tasks that are implemented and prepared, is
`python -m unified_io.data.mixtures --mixture=paper_multitask`.
"""

from __future__ import annotations

import argparse
import functools
import os
from typing import Dict, List, Optional, Sequence, Tuple

from unified_io.data import availability
from unified_io.data.catalog_rows import PAPER_TASKS, PRETRAINING, SOURCES, Source
from unified_io.data.tasks import registry as tasks_lib

TEMPERATURE = 2.0
EXTRAS = {"beam": "apache-beam", "cv2": "opencv-python-headless"}


def table1_rows() -> Tuple[Source, ...]:
  """The rows Table 1 counts (those the paper's rates are computed over)."""
  return tuple(s for s in SOURCES if s.in_table1 and s.size is not None)


def all_sources() -> Tuple[Source, ...]:
  return SOURCES + PRETRAINING


def paper_task(name: str):
  return PAPER_TASKS[name]


def group_of(source: Source) -> str:
  return PAPER_TASKS[source.paper_task].group


@functools.lru_cache(maxsize=None)
def _documented_totals() -> Dict[str, float]:
  totals: Dict[str, float] = {}
  for s in table1_rows():
    totals[s.paper_task] = totals.get(s.paper_task, 0.0) + s.size
  return totals


def design_size(source: Source) -> Optional[float]:
  """The row's size in the paper's design: its documented count, scaled so that the rows of
  its paper task add up to Table 1's size for the task (unscaled where Table 1 gives none,
  and for the pre-training sources)."""
  if source.size is None or not source.in_table1:
    return None
  paper = PAPER_TASKS.get(source.paper_task)  # None: a pre-training source (sizes as stated)
  table_size = paper.size if paper is not None else None
  if table_size is None:
    return float(source.size)
  return source.size * table_size / _documented_totals()[source.paper_task]


def design_rates(rows: Optional[Sequence[Source]] = None) -> Dict[str, float]:
  """row -> sampling rate under the paper's rule, over `rows` (default: all of Table 1)."""
  rows = table1_rows() if rows is None else tuple(rows)
  weights = {s.row: design_size(s) ** (1.0 / TEMPERATURE) for s in rows}
  by_group: Dict[str, float] = {}
  for s in rows:
    by_group[group_of(s)] = by_group.get(group_of(s), 0.0) + weights[s.row]
  group_total = sum(tasks_lib.GROUP_RATES[g] for g in by_group)
  return {
    s.row: tasks_lib.GROUP_RATES[group_of(s)] / group_total * weights[s.row] / by_group[group_of(s)]
    for s in rows
  }


def paper_task_rates() -> Dict[str, float]:
  """Each of Table 1's 22 tasks: the sum of its rows' design rates."""
  rates = design_rates()
  out = {name: 0.0 for name in PAPER_TASKS}
  for s in table1_rows():
    out[s.paper_task] += rates[s.row]
  return out


def is_implemented(source: Source) -> bool:
  registered = tasks_lib.all_tasks()
  return bool(source.tasks) and all(t in registered for t in source.tasks)


def state(source: Source) -> str:
  if is_implemented(source):
    return "implemented"
  if not source.builder:
    return "no dataset"
  if source.issue is not None:
    return f"builder: issue {source.issue}"
  return "task missing"


def implemented_tasks(rows: Sequence[Source] = SOURCES) -> List[str]:
  """Registered task names of the implemented rows Table 1 counts, in table order."""
  return [t for s in rows if s.in_table1 and is_implemented(s) for t in s.tasks]


def design_task_sizes(rows: Sequence[Source] = SOURCES) -> Dict[str, float]:
  """task name -> design size (its row's), for every registered task the catalogue names."""
  return {t: design_size(s) for s in rows if design_size(s) is not None for t in s.tasks}


def source_of(task_name: str, rows: Sequence[Source] = SOURCES) -> Optional[Source]:
  for s in rows:
    if task_name in s.tasks:
      return s
  return None


# ------------------------------------------------------------------------ preparation


PROJECT_PREFIX = "uio_"  # builders of unified_io/data/builders/, not TFDS's


def manual_dir(builder: str, data_dir: Optional[str]) -> str:
  """Where `builder`'s release files go: TFDS's manual folder, and for the project's builders
  a sub-folder named after the builder (builders/common.py)."""
  root = data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")
  manual = os.path.join(root, "downloads", "manual")
  if builder.startswith(PROJECT_PREFIX):
    return os.path.join(manual, builder.split("/")[0])
  return manual


def prepare_hint(source: Source, data_dir: Optional[str]) -> str:
  """The exact steps that prepare `source` in data_dir."""
  if not source.builder:
    return "no dataset to prepare"
  files = ", ".join(source.release.files) if source.release else "its release files"
  page = f" ({source.release.page})" if source.release else ""
  folder = manual_dir(source.builder, data_dir)
  if not is_implemented(source) and source.issue is not None:
    return f"no builder yet (issue {source.issue}); it will read {files}{page} from {folder}/"
  flag = availability.data_dir_flag(data_dir)
  extras = ", ".join(EXTRAS[e] for e in source.extras)
  python = ".venv-data/bin/python -m unified_io.data.prepare" if extras else availability.PREPARE
  needs = f" (needs {extras}: `make data-setup` first)" if extras else ""
  build = f"{python} {source.builder}{flag}{needs}"
  if source.release is not None:  # a manual download (TFDS's or one of ours)
    return f"put {files}{page} into {folder}/, then {build}"
  return build


def prepared(source: Source, data_dir: Optional[str]) -> Optional[bool]:
  """Whether the row's dataset is prepared in data_dir; None when there is no builder yet."""
  if not source.builder or not is_implemented(source):
    return None
  task = tasks_lib.all_tasks().get(source.tasks[0]) if source.tasks else None
  splits = [task.splits["train"]] if task is not None else []
  return availability.dataset_problem(source.builder, splits, data_dir, source.tasks) is None


# ------------------------------------------------------------------------ printing


def _size(value: Optional[float]) -> str:
  if value is None:
    return "-"
  if value >= 1e6:
    return f"{value / 1e6:.2f}m"
  if value >= 1e3:
    return f"{value / 1e3:.1f}k"
  return f"{value:.0f}"


def table(data_dir: Optional[str] = None, check: bool = True) -> str:
  rates = design_rates()
  task_rates = paper_task_rates()
  lines = [
    "Table 1 datasets (design size: documented count scaled to Table 1's task size; "
    "rate: the paper's rule over all rows)",
    f"{'#':>4} {'dataset':<34} {'task(s)':<36} {'builder':<28} {'size':>7} {'rate':>7}  "
    f"{'state':<16} prepared",
  ]
  groups: Dict[str, Dict[str, List[Source]]] = {}
  last_task = None
  for s in SOURCES:
    g = groups.setdefault(group_of(s), {"rows": [], "implemented": [], "prepared": []})
    g["rows"].append(s)
    is_ready = prepared(s, data_dir) if check else None
    if is_implemented(s):
      g["implemented"].append(s)
    if is_ready:
      g["prepared"].append(s)
    if s.paper_task != last_task:
      paper = PAPER_TASKS[s.paper_task]
      lines.append(
        f"  {s.paper_task} [{paper.group}]: Table 1 {paper.datasets} datasets, "
        f"{_size(paper.size)}, rate {paper.rate:.1f}%; design {100 * task_rates[s.paper_task]:.2f}%"
      )
      last_task = s.paper_task
    status = "-" if is_ready is None else ("yes" if is_ready else "no")
    lines.append(
      f"{s.row:>4} {s.dataset[:34]:<34} {', '.join(s.tasks)[:36]:<36} {s.builder[:28]:<28} "
      f"{_size(design_size(s)):>7} "
      f"{(f'{100 * rates[s.row]:.2f}%' if s.row in rates else '-'):>7}  {state(s):<16} {status}"
    )
    if is_ready is not True:
      lines.append(f"{'':>6}{prepare_hint(s, data_dir)}")
    if s.note:
      lines.append(f"{'':>6}note: {s.note}")
  lines.append("")
  lines.append(
    f"{'group':<22}{'rows':>6}{'implemented':>13}{'prepared':>10}{'design rate':>13}"
    f"{'Table 1 rate':>14}"
  )
  for group in tasks_lib.GROUPS:
    g = groups.get(group)
    if g is None:
      continue
    design = sum(rates.get(s.row, 0.0) for s in g["rows"])
    table_rate = sum(PAPER_TASKS[t].rate for t in PAPER_TASKS if PAPER_TASKS[t].group == group)
    lines.append(
      f"{group:<22}{len(g['rows']):>6}{len(g['implemented']):>13}"
      f"{(len(g['prepared']) if check else '-'):>10}{100 * design:>12.2f}%{table_rate:>13.1f}%"
    )
  total_rows = sum(len(g["rows"]) for g in groups.values())
  total_impl = sum(len(g["implemented"]) for g in groups.values())
  total_prep = sum(len(g["prepared"]) for g in groups.values())
  lines.append(
    f"{'all':<22}{total_rows:>6}{total_impl:>13}{(total_prep if check else '-'):>10}"
    f"{100 * sum(rates.values()):>12.2f}%{sum(p.rate for p in PAPER_TASKS.values()):>13.1f}%"
  )
  return "\n".join(lines)


def pretraining_table(data_dir: Optional[str] = None, check: bool = True) -> str:
  lines = [
    "Pre-training sources (A.2): text and image denoising sampled equally; text half pure "
    "text, half image+class/caption; in proportion to size within each",
    f"{'#':>4} {'objective':<42} {'dataset':<28} {'task':<34} {'size':>7}  {'state':<16} prepared",
  ]
  for s in PRETRAINING:
    is_ready = prepared(s, data_dir) if check else None
    status = "-" if is_ready is None else ("yes" if is_ready else "no")
    lines.append(
      f"{s.row:>4} {s.paper_task:<42} {s.dataset[:28]:<28} {', '.join(s.tasks)[:34]:<34} "
      f"{_size(s.size):>7}  {state(s):<16} {status}"
    )
    if is_ready is not True:
      lines.append(f"{'':>6}{prepare_hint(s, data_dir)}")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data_dir", default=None, help="TFDS data_dir to check (default: TFDS's)")
  parser.add_argument("--pretraining", action="store_true", help="the pre-training sources")
  parser.add_argument("--sizes", action="store_true", help="download sizes, preparation times")
  args = parser.parse_args(argv)
  if args.sizes:
    from unified_io.data import disk_sizes  # reads TFDS's checksum files only when asked

    print(disk_sizes.table())
    return
  print(pretraining_table(args.data_dir) if args.pretraining else table(args.data_dir))


if __name__ == "__main__":
  main()
