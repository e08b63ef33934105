"""Bad inputs of evaluate / predict / convert: a message naming the input and exit status 1,
not a library traceback. One table of cases, run in-process through the library function
the CLI calls (the CLIs define their flags only when run as programs) and two of them as
subprocesses; plus loading every documented --checkpoint form of a 2-step tiny run, 16-bit
grayscale PNGs and the prompt-truncation notices of predict and the GRIT runner."""

import json
import os
import shutil
import subprocess
import sys

import flax
import jax
import numpy as np
import pytest
from absl import app
from PIL import Image

from configs import tiny
from tests import test_grit
from unified_io import convert
from unified_io import evaluate
from unified_io import predict
from unified_io.common import checkpointing
from unified_io.common import image_preprocessing
from unified_io.eval import inference
from unified_io.eval import predictor as predictor_lib
from unified_io.eval.grit import runner as grit_eval
from unified_io.eval.grit import tasks as grit
from unified_io.train import trainer
from vqgan import convert as vqgan_convert
from vqgan.model import flatten, param_shapes
from vqgan.configs import get_config as vqgan_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK = "builtin_vqa"


def _msgpack(path, tree):
  with open(path, "wb") as f:
    f.write(flax.serialization.msgpack_serialize(tree))
  return str(path)


def _damaged_workdir(tmp):
  os.makedirs(tmp / "run")
  (tmp / "run" / "config.json").write_text('{"model": {"emb_dim": 32,')  # cut mid-write
  return str(tmp / "run")


def _existing_out(tmp):
  os.makedirs(tmp / "out")
  (tmp / "out" / "config.json").write_text("{}")
  return str(tmp / "out")


def _taming_state_with_a_3d_conv():
  """A taming state dict of numpy arrays for the tiny preset whose conv_in weight lost a dim."""
  config = vqgan_config("tiny")
  names = vqgan_convert.taming_names(config)
  state = {}
  for ours, shape in flatten(param_shapes(config)).items():
    oihw = (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else shape
    state[names[ours]] = np.zeros(oihw, np.float32)
  state["encoder.conv_in.weight"] = np.zeros((32, 3, 9), np.float32)
  return state


# (id, call on a fresh tmp_path, fragment of the message, exit status of the CLI). Every
# call raises; the CLIs print the message (app.UsageError, or vqgan.convert's sys.exit).
CASES = [
  (
    "evaluate --split=unknown",
    lambda tmp: evaluate.check_request([TASK], "bogus", 64, 16),
    f"--split='bogus' is not a split of task {TASK}; its splits are train, validation, test",
    1,
  ),
  (
    "evaluate --num_examples=0",
    lambda tmp: evaluate.check_request([TASK], "validation", 0, 16),
    "--num_examples must be >= 1, got 0",
    1,
  ),
  (
    "evaluate --batch_size=0",
    lambda tmp: evaluate.check_request([TASK], "validation", 64, 0),
    "--batch_size must be >= 1, got 0",
    1,
  ),
  (
    "evaluate/predict --workdir with a damaged config.json",
    lambda tmp: predictor_lib.load_config(_damaged_workdir(tmp)),
    "run/config.json is damaged (not valid JSON",
    1,
  ),
  (
    "evaluate --checkpoint that does not exist",
    lambda tmp: evaluate.load(_tiny_config(), str(tmp / "nope")),
    "checkpoint=",
    1,
  ),
  (
    "evaluate --checkpoint without checkpoints",
    lambda tmp: evaluate.load(_tiny_config(), str(tmp)),
    "no checkpoint or params found",
    1,
  ),
  (
    "predict --box=1,2,x,4",
    lambda tmp: predict.parse_box(["1", "2", "x", "4"]),
    "--box=1,2,x,4: 'x' is not a number",
    1,
  ),
  (
    "predict --box=1,2,3",
    lambda tmp: predict.parse_box(["1", "2", "3"]),
    "--box=1,2,3 has 3 numbers; pass 4",
    1,
  ),
  (
    "convert without --config",
    lambda tmp: convert.check_request("xl_1000k.bin", None, str(tmp / "out")),
    "Pass --config",
    1,
  ),
  (
    "convert into an existing --out",
    lambda tmp: convert.check_request("xl.bin", _tiny_config(), _existing_out(tmp)),
    "already exists and is not an empty directory; conversion does not overwrite",
    1,
  ),
  (
    "convert --official=<msgpack list>",
    lambda tmp: convert.load_official(_msgpack(tmp / "list.bin", [1, 2, 3])),
    "list.bin holds a msgpack list at its top level; expected a released Unified-IO",
    1,
  ),
  (
    "vqgan.convert --unified-io=<msgpack list>",
    lambda tmp: vqgan_convert.load_unified_io_tree(_msgpack(tmp / "list.msgpack", [1, 2])),
    "list.msgpack holds a msgpack list at its top level; expected a dict",
    1,
  ),
  (
    "vqgan.convert --taming with a wrongly shaped tensor",
    lambda tmp: vqgan_convert.from_taming(_taming_state_with_a_3d_conv(), "tiny"),
    "encoder.conv_in.weight -> encoder/conv_in/kernel: (32, 3, 9) != expected (3, 3, 3, 32)",
    1,
  ),
]


def _tiny_config():
  config = tiny.get_config()
  config.data.source = "synthetic"
  config.model.update(
    dict(
      emb_dim=32, num_heads=2, head_dim=16, num_encoder_layers=1, num_decoder_layers=1, mlp_dim=64
    )
  )
  return config


@pytest.mark.parametrize("name,call,fragment,exit_code", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_named(name, call, fragment, exit_code, tmp_path):
  with pytest.raises((ValueError, OSError, app.UsageError)) as error:
    call(tmp_path)
  assert fragment in str(error.value)
  # What the CLI exits with: a UsageError's exitcode; the others are turned into one.
  assert getattr(error.value, "exitcode", 1) == exit_code


SUBPROCESS_CASES = [
  (
    ["unified_io.predict", "--workdir=nowhere", "--task=categorization", "--box=1,2,x,4"],
    "--box=1,2,x,4: 'x' is not a number",
    1,
  ),
  (
    ["vqgan.convert", "--unified-io", "{tmp}/list.msgpack", "--out", "{tmp}/vq"],
    "list.msgpack holds a msgpack list at its top level",
    1,
  ),
]


@pytest.mark.slow
@pytest.mark.parametrize("argv,fragment,exit_code", SUBPROCESS_CASES, ids=["predict", "vqgan"])
def test_cli_exits_with_the_message(argv, fragment, exit_code, tmp_path):
  _msgpack(tmp_path / "list.msgpack", [1, 2])
  argv = [a.format(tmp=tmp_path) for a in argv]
  proc = subprocess.run(
    [sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=300
  )
  assert proc.returncode == exit_code, proc.stderr[-2000:]
  assert fragment in proc.stderr
  assert "Traceback" not in proc.stderr


# --------------------------------------------------------------- every --checkpoint form


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """A tiny run trained 2 steps, saving each (checkpoints 1 and 2, with manifests)."""
  workdir = str(tmp_path_factory.mktemp("bad_inputs") / "run")
  config = _tiny_config()
  config.train.update(
    dict(total_steps=2, batch_size=2, log_every=1, tensorboard=False, geometric_init=False)
  )
  config.checkpoint.update(dict(every_steps=1, keep=3, async_save=False))
  trainer.train(config, workdir)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "2"]
  return workdir


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_every_documented_checkpoint_form_loads(workdir, tmp_path):
  config = predictor_lib.load_config(workdir)
  step_1 = os.path.join(workdir, "checkpoints", "1")
  step_2 = os.path.join(workdir, "checkpoints", "2")
  latest = _leaves(predictor_lib.load_params(config, workdir))
  first = _leaves(predictor_lib.load_params(config, step_1))
  assert all(
    np.array_equal(a, b) for a, b in zip(latest, _leaves(evaluate.load(config, step_2).params))
  )
  assert not all(np.array_equal(a, b) for a, b in zip(latest, first))  # step 1 is step 1
  # What `python -m unified_io.convert` writes: DIR/params (+ config.json, vqgan.msgpack).
  converted = str(tmp_path / "converted")
  convert.save_params(converted, predictor_lib.load_params(config, step_1))
  (tmp_path / "converted" / "config.json").write_text(config.to_json())
  assert all(
    np.array_equal(a, b)
    for a, b in zip(first, _leaves(predictor_lib.load_params(config, converted)))
  )

  # A step directory is verified against its integrity manifest like a resume is.
  copy = str(tmp_path / "copy" / "1")
  shutil.copytree(step_1, copy)
  data = [
    os.path.join(d, n)
    for d, _, names in os.walk(os.path.join(copy, "state", "ocdbt.process_0", "d"))
    for n in names
  ]
  path = max(data, key=os.path.getsize)
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)
    f.write(b"\xff" * 16)
  with pytest.raises(checkpointing.CheckpointError, match=f"checkpoint {copy} is corrupt"):
    predictor_lib.load_params(config, copy)
  with pytest.raises(app.UsageError, match="differs from what was written"):
    evaluate.load(config, copy)


# ------------------------------------------------------------------ 16-bit grayscale PNG


def test_16_bit_grayscale_png_is_scaled_to_8_bits(tmp_path):
  values = np.array([[0, 257, 65535], [32768, 1000, 128]], np.uint16)
  image = Image.new("I;16", (3, 2))
  image.frombytes(values.astype("<u2").tobytes())
  image.save(tmp_path / "gray16.png")
  assert Image.open(tmp_path / "gray16.png").mode == "I;16"
  loaded = image_preprocessing.load_image(tmp_path / "gray16.png")
  # round(v / 257): 0, 1, 255; 32768 / 257 = 127.50 -> 128, 1000 / 257 = 3.89 -> 4,
  # 128 / 257 = 0.498 -> 0.
  expected = np.array([[0, 1, 255], [128, 4, 0]], np.uint8)
  assert loaded.dtype == np.uint8 and loaded.shape == (2, 3, 3)
  for channel in range(3):
    np.testing.assert_array_equal(loaded[:, :, channel], expected)


# --------------------------------------------------------------- prompt truncation notices


def _stub_text(predictor, monkeypatch):
  """The model's text output replaced by "yes" (no compile); the inputs are built as usual."""

  def text(features, **_):
    n = len(features["text_inputs"])
    tokens = np.zeros((n, 4), np.int32)
    return ["yes"] * n, tokens, np.full(n, np.log(0.5))

  monkeypatch.setattr(predictor, "text_with_scores", text)


def test_truncated_prompts_are_noticed(workdir, tmp_path, monkeypatch, capsys):
  config = predictor_lib.load_config(workdir)
  predictor = predictor_lib.Predictor(config, predictor_lib.load_params(config, workdir))
  _stub_text(predictor, monkeypatch)
  limit = config.lengths.text_inputs
  long = "what colour is the " + " ".join(["very"] * (2 * limit)) + " big square ?"
  tokens = len(predictor.tokenizer.encode(long, add_eos=True))
  assert tokens > limit
  image = np.zeros((12, 16, 3), np.uint8)

  out = inference.predict(predictor, image, long, "vqa")
  cut = out["prompt_truncated"]
  assert (cut.tokens, cut.limit) == (tokens, limit)
  assert f"has {tokens} tokens, more than the model's limit of {limit}" in cut.notice()
  assert "prompt_truncated" not in inference.predict(predictor, image, "what is it ?", "vqa")

  grit_dir, _ = test_grit._perfect_submission(tmp_path)
  path = grit.samples_path(grit_dir, "vqa", "ablation")
  samples = json.load(open(path))
  samples[0]["input"]["task_query"] = long
  with open(path, "w") as f:
    json.dump(samples, f)
  lines = []
  runner = grit_eval._Runner(predictor, grit_dir)
  grit_eval.predict_task(runner, grit_dir, "vqa", "ablation", progress=lines.append)
  notices = [line for line in lines if "tokens, more than the model's limit" in line]
  example_id = samples[0]["input"]["example_id"]
  assert len(notices) == 1 and f"(vqa {example_id})" in notices[0], lines
  assert f"limit of {limit}" in notices[0]
