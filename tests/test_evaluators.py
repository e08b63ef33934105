"""config.evals plug-ins: settings checked before training, and evaluation split across
hosts (2 processes on 127.0.0.1 give the metrics of 1 process, each predicting half)."""

import json
import os
import socket
import subprocess
import sys
import types

import ml_collections
import pytest

from configs import tiny
from tests import specs
from unified_io.data import builtin_dataset
from unified_io.data.tasks import registry as tasks_lib
from unified_io.eval import evaluators
from unified_io.eval import host_split
from unified_io.eval import task_eval

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "tests", "eval_runner.py")


def test_host_rows_cover_every_example_once_in_balanced_parts():
  # 7 examples over 3 hosts: 7*h//3 for h = 0..3 is 0, 2, 4, 7.
  assert [host_split.host_rows(7, h, 3) for h in range(3)] == [
    range(0, 2),
    range(2, 4),
    range(4, 7),
  ]
  assert host_split.host_rows(1, 1, 2) == range(0, 1) and host_split.host_rows(1, 0, 2) == range(
    0, 0
  )
  with pytest.raises(ValueError, match="process_index 2"):
    host_split.host_rows(4, 2, 2)


def test_host_batches_are_whole_batches_of_the_one_process_order():
  # 10 examples in batches of 4 are batches [0:4], [4:8], [8:10]; 2 hosts take 3*h//2 of
  # the 3 batches: host 0 batch 0, host 1 batches 1-2.
  assert task_eval.host_batches(10, 4, (0, 2)) == range(0, 4)
  assert task_eval.host_batches(10, 4, (1, 2)) == range(4, 10)
  assert task_eval.host_batches(3, 4, (0, 2)) == range(0, 0)  # 1 batch: all on host 1
  assert task_eval.host_batches(3, 4, (1, 2)) == range(0, 3)


def _config(**evals):
  config = tiny.get_config()
  config.evals = ml_collections.ConfigDict(evals)
  return config


@pytest.mark.parametrize(
  "evals, message",
  [
    ({"tasks": dict(split="valdation")}, "config.evals.tasks.split='valdation': task builtin_"),
    ({"tasks": dict(num_exampels=3)}, "config.evals.tasks: unknown keys ['num_exampels']"),
    (
      {"coco": dict(kind="coco_sce")},
      "config.evals.coco.kind='coco_sce': evaluators are grit, tasks",
    ),
    ({"tasks": dict(every_steps=-1)}, "config.evals.tasks.every_steps must be an int >= 0"),
    ({"tasks": dict(tasks="builtin_vqa,no_such_task")}, "Unknown task 'no_such_task'"),
    (
      {"grit": dict(grit_dir="/nonexistent")},
      "config.evals.grit.grit_dir='/nonexistent' must be a GRIT folder",
    ),
    ({"grit": dict(grit_dir="/tmp", split="val")}, "config.evals.grit: GRIT splits are"),
  ],
)
def test_bad_settings_are_named_before_anything_runs(evals, message):
  with pytest.raises(evaluators.EvaluatorError) as e:
    evaluators.build(_config(**evals), "/tmp/unused")
  assert message in str(e.value)


def test_every_evaluator_of_the_config_is_built_with_its_own_schedule(tmp_path):
  (tmp_path / "grit" / "samples").mkdir(parents=True)
  built = evaluators.build(
    _config(
      tasks=dict(every_steps=10, tasks="builtin_vqa"),
      grit=dict(every_steps=0, grit_dir=str(tmp_path / "grit"), tasks="vqa"),
    ),
    str(tmp_path),
  )
  assert [(e.name, e.every_steps) for e in built] == [("grit", 0), ("tasks", 10)]
  assert built[1].task_names == ["builtin_vqa"] and built[0].tasks == ["vqa"]
  assert built[1].has_report(10) is None  # nothing written yet


class _SeedSeen(Exception):
  pass


def _evaluation_seed(config, monkeypatch):
  """The seed a TaskEvaluator of `config` hands to task_eval.evaluate."""

  def evaluate(predictor, task_names, **kwargs):
    raise _SeedSeen(kwargs["seed"])

  monkeypatch.setattr(task_eval, "evaluate", evaluate)
  monkeypatch.setattr(evaluators._Shared, "get", lambda self, params: None)
  (evaluator,) = evaluators.build(config, "/tmp/unused")
  log = types.SimpleNamespace(line=lambda text: None, main=True)
  with pytest.raises(_SeedSeen) as seen:
    evaluator.run(params=None, step=1, log=log)
  return seen.value.args[0]


def _refexp_boxes(seed, data_dir):
  spec = specs.tiny_spec(144, 72, patch_size=8)
  examples = task_eval.collect(
    tasks_lib.get("builtin_refexp"), spec, spec.context(20.0), "validation", 12, seed, data_dir
  )
  return [tuple(raw["meta"]["box"]) for raw in examples.raws]


def test_runs_of_two_training_seeds_are_scored_on_the_same_examples(monkeypatch, builtin_data_dir):
  def config(seed, eval_seed):
    c = _config(tasks=dict(tasks="builtin_refexp"))
    c.seed, c.eval_seed = seed, eval_seed
    return c

  assert _evaluation_seed(config(0, 0), monkeypatch) == 0
  assert _evaluation_seed(config(7, 0), monkeypatch) == 0
  assert _evaluation_seed(config(0, 7), monkeypatch) == 7
  # The seed decides the examples: which object of a scene each refexp example asks for.
  # Under the training seed, a seed sweep was scored on different questions.
  assert _refexp_boxes(0, builtin_data_dir) == _refexp_boxes(0, builtin_data_dir)
  assert _refexp_boxes(0, builtin_data_dir) != _refexp_boxes(7, builtin_data_dir)
  # A workdir config saved before config.eval_seed existed: evaluated with seed 0.
  old = config(7, 0)
  del old["eval_seed"]
  assert _evaluation_seed(old, monkeypatch) == 0


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _run(out, data_dir, process=""):
  args = [sys.executable, RUNNER, f"--data_dir={data_dir}", f"--out={out}"]
  return subprocess.Popen(
    args + ([f"--process={process}"] if process else []),
    cwd=ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
  )


@pytest.mark.slow
def test_two_processes_give_the_metrics_of_one_each_predicting_half(tmp_path):
  data_dir = str(tmp_path / "tfds")
  builtin_dataset.build(data_dir, "scenes", num_examples=12)
  single = _run(tmp_path / "one.json", data_dir)
  out, _ = single.communicate(timeout=600)
  assert single.returncode == 0, out[-3000:]
  port = _free_port()
  procs = [_run(tmp_path / f"two_{i}.json", data_dir, f"{i}/2@{port}") for i in range(2)]
  for p in procs:
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out[-3000:]
  one = json.loads((tmp_path / "one.json").read_text())
  two = [json.loads((tmp_path / f"two_{i}.json").read_text()) for i in range(2)]
  assert one["metrics"] and all(t["metrics"] == one["metrics"] for t in two)
  # 2 tasks x 4 examples in batches of 2 = 2 batches per task: each host decodes one
  # (2 rows per task); one process decodes all 4.
  assert one["predicted_rows"] == 8
  assert [t["predicted_rows"] for t in two] == [4, 4]
