"""`python -m unified_io.data.prepare`: builds datasets as ArrayRecord, once, naming failures."""

import numpy as np
import tensorflow_datasets as tfds

from unified_io.data import pipeline
from unified_io.data import prepare


class UioPrepareTestTiny(tfds.core.GeneratorBasedBuilder):
  """Three records; registered under uio_prepare_test_tiny (the test's own builder)."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(
      builder=self,
      features=tfds.features.FeaturesDict({"value": np.int64, "text": tfds.features.Text()}),
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples(3)}

  def _generate_examples(self, n):
    for i in range(n):
      yield i, {"value": i * 10, "text": f"record {i}"}


def test_prepare_writes_array_record_once(tmp_path, capsys):
  builder = prepare.prepare("uio_prepare_test_tiny", str(tmp_path))
  assert builder.info.file_format.value == "array_record"
  assert sorted(p.name for p in builder.data_path.iterdir() if "array_record" in p.name) == [
    "uio_prepare_test_tiny-train.array_record-00000-of-00001"
  ]
  source = pipeline.RecordSource("uio_prepare_test_tiny", "train", str(tmp_path))
  assert sorted(int(source[i]["value"]) for i in range(len(source))) == [0, 10, 20]
  prepare.prepare("uio_prepare_test_tiny", str(tmp_path))
  assert "already prepared" in capsys.readouterr().out


def test_cli_goes_on_after_a_failure_and_exits_1(tmp_path, capsys):
  code = prepare.main(["no_such_dataset", "uio_prepare_test_tiny", f"--data_dir={tmp_path}"])
  assert code == 1
  err = capsys.readouterr().err
  assert "no_such_dataset: FAILED: ValueError: no_such_dataset: no TFDS or project builder" in err
  assert "1 of 2 failed: no_such_dataset" in err
  assert tfds.builder("uio_prepare_test_tiny", data_dir=str(tmp_path)).is_prepared()
