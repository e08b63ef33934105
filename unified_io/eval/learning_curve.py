"""A learning-efficiency curve (GPV-1 §5.3): one task's metric against the number of
fine-tuning examples N, and how much of every other task's metric is retained.

`curve` gathers the evaluations (metrics.json "tasks" entries, task_eval.write) before
fine-tuning and after it for each N into one JSON-able dict; `markdown` and `draw` present
that dict. Retained percent follows GPV-1 Fig. 4 (right): after / before for a metric where
higher is better, before / after where lower is better (RMSE, angle error), so 100 is no
forgetting either way.
"""

from __future__ import annotations

import math
from typing import List, Mapping, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from unified_io.common import visualize

PICTURE_FILE = "curve.png"
PICTURE_SIZE = (960, 400)  # width, height in pixels
# The retained-percent panel's top. A metric near zero before fine-tuning (a task the model
# had not learnt yet) can come out at several hundred percent and would squash every other
# line to the bottom; values above are drawn hollow at the top (the table has them exactly).
RETAINED_AXIS_MAX = 200.0


def retained_percent(before: float, after: float, lower_is_better: bool) -> Optional[float]:
  """100 * after / before (higher is better) or 100 * before / after; None when undefined."""
  num, den = (before, after) if lower_is_better else (after, before)
  if not (np.isfinite(num) and np.isfinite(den)) or den == 0:
    return None
  return 100.0 * num / den


def curve(
  settings: Mapping,
  examples: Sequence[int],
  before: Mapping[str, dict],
  after: Mapping[int, Mapping[str, dict]],
) -> dict:
  """The curve as JSON: per task metric, baseline, before, after[N] and retained[N].

  `before` and each `after[N]` map task names to metrics.json entries (metric, score,
  baseline, lower_is_better, loss); `settings["task"]` is the fine-tuned task, the others are
  "other_tasks". The rest of `settings` (init_from, steps, ...) is stored as it is.
  """
  task = settings["task"]
  if task not in before:
    raise ValueError(f"the evaluation before fine-tuning has no {task}: {sorted(before)}")
  names = [task] + sorted(n for n in before if n != task)
  tasks = {}
  for name in names:
    entry = before[name]
    lower = bool(entry["lower_is_better"])
    scores = {str(n): float(after[n][name]["score"]) for n in examples}
    tasks[name] = dict(
      metric=entry["metric"],
      lower_is_better=lower,
      baseline=float(entry["baseline"]),
      before=float(entry["score"]),
      after=scores,
      retained_percent={
        n: retained_percent(float(entry["score"]), s, lower) for n, s in scores.items()
      },
      # The validation loss moves where a small model's metric does not (yet).
      loss_before=float(entry["loss"]),
      loss_after={str(n): float(after[n][name]["loss"]) for n in examples},
    )
  return {
    **settings,
    "other_tasks": names[1:],
    "examples": [int(n) for n in examples],
    "tasks": tasks,
    "picture": dict(file=PICTURE_FILE, width=PICTURE_SIZE[0], height=PICTURE_SIZE[1]),
  }


def _number(value: Optional[float], digits: int = 3) -> str:
  return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def markdown(result: dict) -> str:
  """Three tables: every task's metric before and after each N, the other tasks' retained
  percent, and every task's validation loss."""
  ns = [str(n) for n in result["examples"]]
  head = "| task | metric | baseline | before (0) | " + " | ".join(f"N={n}" for n in ns) + " |"
  rule = "|" + "---|" * (4 + len(ns))
  lines = [
    f"# Learning curve: {result['task']}",
    "",
    f"Fine-tuned {result.get('steps', '?')} steps from {result.get('init_from', '?')} on the "
    f"first N {result['task']} train examples; evaluated on {result.get('eval_examples', '?')} "
    f"{result.get('split', '?')} examples per task.",
    "",
    "## Metric vs training examples",
    "",
    head,
    rule,
  ]
  for name, t in result["tasks"].items():
    arrow = "↓" if t["lower_is_better"] else "↑"
    cells = [_number(t["after"][n]) for n in ns]
    lines.append(
      f"| {name} | {t['metric']} {arrow} | {_number(t['baseline'])} | {_number(t['before'])} | "
      + " | ".join(cells)
      + " |"
    )
  lines += ["", "## Other tasks: percent of the metric before fine-tuning retained", ""]
  if not result["other_tasks"]:
    lines.append("(no other tasks evaluated)")
  else:
    lines += ["| task | " + " | ".join(f"N={n}" for n in ns) + " |", "|" + "---|" * (1 + len(ns))]
    for name in result["other_tasks"]:
      kept = result["tasks"][name]["retained_percent"]
      lines.append(f"| {name} | " + " | ".join(_number(kept[n], 1) for n in ns) + " |")
  lines += ["", "## Validation loss", ""]
  lines += ["| task | before (0) | " + " | ".join(f"N={n}" for n in ns) + " |"]
  lines += ["|" + "---|" * (2 + len(ns))]
  for name, t in result["tasks"].items():
    cells = [_number(t["loss_before"])] + [_number(t["loss_after"][n]) for n in ns]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ picture

_COLORS = (
  (31, 119, 180),
  (255, 127, 14),
  (44, 160, 44),
  (214, 39, 40),
  (148, 103, 189),
  (140, 86, 75),
  (227, 119, 194),
  (188, 189, 34),
  (23, 190, 207),
)
_GREY = (150, 150, 150)


def _log_range(ns: Sequence[int]):
  lo, hi = math.floor(math.log10(min(ns))), math.ceil(math.log10(max(ns)))
  return lo, max(hi, lo + 1)


def _value_range(values: List[float]):
  values = [v for v in values if v is not None and math.isfinite(v)]
  if not values:
    return 0.0, 1.0
  lo, hi = min(values), max(values)
  pad = (hi - lo) * 0.1 or abs(hi) * 0.1 or 1.0
  return lo - pad, hi + pad


def _dashed(draw, a, b, fill, dash=6):
  (x0, y0), (x1, y1) = a, b
  length = math.hypot(x1 - x0, y1 - y0)
  for start in np.arange(0, length, 2 * dash):
    t0, t1 = start / length, min(start + dash, length) / length
    ends = [(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t) for t in (t0, t1)]
    draw.line(ends, fill=fill)


def _panel(draw, box, title, ns, series, references, ceiling=None):
  """Axes in `box` (x0, y0, x1, y1): log-scaled N against values. `series`: (label,
  colour, [value per N]); `references`: (label, colour, value) drawn as dashed lines.
  ceiling: the value axis ends there (from 0) and larger values are drawn hollow on it."""
  x0, y0, x1, y1 = box
  left, right, top, bottom = x0 + 56, x1 - 28, y0 + 22, y1 - 34  # room for tick labels
  draw.text((x0 + 4, y0 + 4), title, fill=(0, 0, 0), font=visualize.font())
  lo_dec, hi_dec = _log_range(ns)
  if ceiling is None:
    values = [v for _, _, vs in series for v in vs] + [v for _, _, v in references]
    v_lo, v_hi = _value_range(values)
  else:
    v_lo, v_hi = 0.0, ceiling

  def px(n):
    return left + (math.log10(n) - lo_dec) / (hi_dec - lo_dec) * (right - left)

  def py(v):
    return bottom - (v - v_lo) / (v_hi - v_lo) * (bottom - top)

  draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
  for dec in range(lo_dec, hi_dec + 1):
    x = px(10**dec)
    draw.line([(x, bottom), (x, bottom + 4)], fill=(0, 0, 0))
    draw.text((x - 10, bottom + 6), f"{10**dec:g}", fill=(0, 0, 0), font=visualize.font())
  draw.text(((left + right) / 2 - 60, bottom + 20), "training examples N (log)", fill=(0, 0, 0))
  for i in range(5):
    v = v_lo + (v_hi - v_lo) * i / 4
    draw.line([(left - 4, py(v)), (left, py(v))], fill=(0, 0, 0))
    draw.text((x0 + 4, py(v) - 5), f"{v:.3g}", fill=(0, 0, 0), font=visualize.font())
  legend_y = top + 4
  for label, color, value in references:
    if value is not None and math.isfinite(value):
      _dashed(draw, (left, py(value)), (right, py(value)), color)
    draw.text((left + 6, legend_y), f"- - {label}", fill=color, font=visualize.font())
    legend_y += visualize.line_height()
  for label, color, values in series:
    shown = [(n, v) for n, v in zip(ns, values) if v is not None and math.isfinite(v)]
    clipped = [ceiling is not None and v > ceiling for _, v in shown]
    points = [(px(n), py(v if not c else ceiling)) for (n, v), c in zip(shown, clipped)]
    if len(points) > 1:
      draw.line(points, fill=color, width=2)
    for (x, y), c in zip(points, clipped):
      draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=color, fill=None if c else color)
    draw.text((left + 6, legend_y), f"-o- {label}", fill=color, font=visualize.font())
    legend_y += visualize.line_height()


def draw(result: dict) -> Image.Image:
  """Left: the fine-tuned task's metric vs N (log axis) beside its value before fine-tuning
  and its baseline. Right: each other task's retained percent vs N. PICTURE_SIZE pixels."""
  width, height = PICTURE_SIZE
  image = Image.new("RGB", PICTURE_SIZE, (255, 255, 255))
  canvas = ImageDraw.Draw(image)
  ns = result["examples"]
  keys = [str(n) for n in ns]
  t = result["tasks"][result["task"]]
  arrow = "lower is better" if t["lower_is_better"] else "higher is better"
  _panel(
    canvas,
    (0, 0, width // 2, height),
    f"{result['task']}: {t['metric']} ({arrow})",
    ns,
    [("after fine-tuning", _COLORS[0], [t["after"][k] for k in keys])],
    [("before (0 examples)", _COLORS[1], t["before"]), ("baseline", _GREY, t["baseline"])],
  )
  others = []
  for i, name in enumerate(result["other_tasks"]):
    kept = result["tasks"][name]["retained_percent"]
    others.append((name, _COLORS[(i + 2) % len(_COLORS)], [kept[k] for k in keys]))
  _panel(
    canvas,
    (width // 2, 0, width, height),
    f"other tasks: % of metric retained (hollow: over {RETAINED_AXIS_MAX:g}%)",
    ns,
    others,
    [("no forgetting (100%)", _GREY, 100.0)],
    ceiling=RETAINED_AXIS_MAX,
  )
  return image
