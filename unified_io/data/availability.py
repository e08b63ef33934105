"""Whether a TFDS dataset is prepared in a data_dir, and if not, what prepares it.

`dataset_problem` reads only the prepared version's dataset_info.json (tfds.builder never
downloads), so the trainer's preflight and `python -m unified_io.data.catalog` can check
dozens of datasets in seconds.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
from typing import Optional, Sequence

BUILTIN_PREFIX = "uio_builtin_scenes"
# What prepares a dataset (unified_io/data/prepare.py: `tfds build` cannot start without Beam).
PREPARE = "python -m unified_io.data.prepare"
# Builders whose class has MANUAL_DOWNLOAD_INSTRUCTIONS for another config only: c4's are
# for c4/webtextlike; c4/en downloads Common Crawl itself (with Apache Beam).
NO_MANUAL_DOWNLOAD = frozenset({"c4/en"})


def exists(path: str) -> bool:
  if "://" in path:
    from etils import epath

    return epath.Path(path).exists()
  return os.path.exists(os.path.expanduser(path))


def data_dir_flag(data_dir: Optional[str]) -> str:
  return f" --data_dir={data_dir}" if data_dir else ""


@dataclasses.dataclass(frozen=True)
class Missing:
  what: str  # the absent input, e.g. "TFDS dataset coco/2017 (tasks coco_detection, ...)"
  how: str  # the command(s) or steps that make it

  def __str__(self):
    return f"- {self.what}\n{textwrap.indent(self.how, '    ')}"


def dataset_problem(
  builder_name: str, splits: Sequence[str], data_dir: Optional[str], task_names: Sequence[str]
) -> Optional[Missing]:
  """None if `builder_name` is prepared in data_dir with `splits`, else what to do.

  Reads only dataset_info.json of the prepared version (tfds.builder never downloads).
  """
  if builder_name.startswith(BUILTIN_PREFIX):
    return None  # built on first use, no download
  import tensorflow_datasets as tfds

  where = data_dir or "the TFDS data_dir (~/tensorflow_datasets or $TFDS_DATA_DIR)"
  used_by = f"(task{'s' if len(task_names) > 1 else ''} {', '.join(task_names)})"
  try:
    builder = tfds.builder(builder_name, data_dir=data_dir)
  except tfds.core.DatasetNotFoundError:
    return Missing(
      f"TFDS dataset {builder_name} {used_by}: TFDS has no builder of that name",
      "fix Task.builder in unified_io/data/tasks/, or install the package that registers it",
    )
  except ValueError as e:  # e.g. an unknown builder config ("glue/nope")
    return Missing(
      f"TFDS dataset {builder_name} {used_by}: {str(e).splitlines()[0]}",
      "fix Task.builder in unified_io/data/tasks/",
    )
  build = f"{PREPARE} {builder_name}{data_dir_flag(data_dir)}"
  # What builder.is_prepared() looks at first, without its warning per absent folder.
  if (builder.data_path / "dataset_info.json").exists():
    absent = [s for s in splits if s not in builder.info.splits]
    if not absent:
      return None
    return Missing(
      f"TFDS dataset {builder_name} {used_by} in {builder.data_path} has no split "
      f"{', '.join(absent)} (it has {', '.join(sorted(builder.info.splits))})",
      f"rebuild it: {build} --overwrite",
    )
  what = (
    f"TFDS dataset {builder_name} version {builder.version} {used_by} is not prepared in {where}"
  )
  if builder.MANUAL_DOWNLOAD_INSTRUCTIONS and builder_name not in NO_MANUAL_DOWNLOAD:
    manual = os.path.join(data_dir or "DATA_DIR", "downloads", "manual")
    if builder_name.startswith("uio_"):  # the project's builders: a folder of their own
      manual = os.path.join(manual, builder_name.split("/")[0])
    instructions = textwrap.dedent(builder.MANUAL_DOWNLOAD_INSTRUCTIONS).strip()
    return Missing(
      what,
      f"it needs a manual download: put into {manual} what its "
      f"instructions say, then run {build}\n{builder.name}'s instructions:\n"
      f"{textwrap.indent(instructions, '  ')}",
    )
  return Missing(what, build)
