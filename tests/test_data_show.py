"""`python -m unified_io.data.show`: one row per example, prompts on stdout, clear errors."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from configs import tiny
from unified_io.common import visualize
from unified_io.data import builtin_dataset
from unified_io.data import show
from unified_io.data.tasks import registry as tasks_lib

N = 2
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  # As tests/test_pipeline.py: a few examples per split, built in about a second.
  path = str(tmp_path_factory.mktemp("tfds"))
  for config in ("scenes", "text"):
    builtin_dataset.build(path, config, num_examples=8)
  return path


def _expected_size(n, tile, lines):
  """The grid of n rows of blank tiles whose captions fill `lines` lines: the layout
  show.picture must produce whatever the examples' texts are."""
  rows = [[(None, "\n" * (lines - 1))] * len(show.COLUMNS)] * n
  return visualize.grid(
    rows,
    tile_size=tile,
    col_titles=list(show.COLUMNS),
    pad=show.PAD,
    row_titles=[f"#{i}" for i in range(n)],
    row_title_width=show.ROW_TITLE_WIDTH,
    max_caption_lines=lines,
  ).size


@pytest.mark.parametrize(
  "name", ["builtin_detection", "builtin_depth", "builtin_keypoints", "builtin_entailment"]
)
def test_picture_has_one_row_per_example_and_stdout_the_prompts(name, data_dir, tmp_path, capsys):
  out = str(tmp_path / f"{name}.png")
  show.show(tiny.get_config(), name, N, out, data_dir=data_dir)
  printed = capsys.readouterr().out
  text_only = name == "builtin_entailment"
  tile = (show.TILE, 0) if text_only else (show.TILE, show.TILE)
  lines = show.TEXT_CAPTION_LINES if text_only else show.CAPTION_LINES
  picture = np.asarray(Image.open(out).convert("RGB"))
  assert picture.shape[1::-1] == _expected_size(N, tile, lines)
  assert _expected_size(N + 1, tile, lines)[1] > picture.shape[0]  # rows, not just width
  for piece in tasks_lib.get(name).prompts[0].split("{}"):  # the template's literal text
    assert piece.strip() in printed
  for i in range(N):
    assert f"#{i} prompt: " in printed and f"#{i} target: " in printed
  assert f"wrote {out}" in printed
  if not text_only:
    # Row 0's target tile (boxes, skeleton or depth colours) differs from its input tile.
    top = _expected_size(0, tile, lines)[1]  # the column titles and the first pad
    x0 = show.ROW_TITLE_WIDTH + show.PAD
    inputs = picture[top : top + show.TILE, x0 : x0 + show.TILE]
    target = picture[top : top + show.TILE, x0 + show.TILE + show.PAD :][:, : show.TILE]
    assert inputs.std() > 0 and target.std() > 0
    assert (inputs != target).any(axis=-1).mean() > 0.005


def test_unseen_patches_are_greyed():
  image = np.zeros((64, 64, 3), np.float32)  # normalised 0: the ImageNet mean colour
  mask = np.ones(16, bool)
  mask[0] = False  # top-left 16x16 patch
  seen = show.input_image({"image_inputs": image, "image_input_mask": mask})
  assert np.allclose(seen[16:, 16:], np.asarray((0.485, 0.456, 0.406)), atol=1e-6)
  assert np.abs(seen[:16, :16] - show.GREY).max() < np.abs(seen[16:, 16:] - show.GREY).max()


@pytest.mark.slow
def test_unknown_task_is_named_with_the_known_ones(tmp_path):
  with pytest.raises(KeyError, match="no_such_task"):
    show.show(tiny.get_config(), "no_such_task", N, str(tmp_path / "x.png"))
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "unified_io.data.show",
      "--task=no_such_task",
      f"--out={tmp_path / 'x.png'}",
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=120,
    check=False,
  )
  assert result.returncode != 0
  assert "Unknown task 'no_such_task'" in result.stderr and "builtin_detection" in result.stderr
  assert "Traceback" not in result.stderr and not (tmp_path / "x.png").exists()
