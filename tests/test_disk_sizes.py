"""disk_sizes: TFDS checksum files are read as TFDS writes them (awkward lines included), a
file several builders read counts once in a total, every catalogue builder has a size or an
explained "unknown" and an estimate basis, the URL table agrees with what TFDS's builders ask
for, and the estimates are the measured rates times the stated quantities."""

import pathlib

import pytest

from unified_io.data import catalog
from unified_io.data import disk_sizes
from unified_io.data.catalog_rows import PRETRAINING, SOURCES
from unified_io.data.disk_size_rows import DOCUMENTED, EXACT, PREP_RATES, UNKNOWN

# Sizes as listed in tensorflow-datasets 4.9.10's url_checksums/coco.txt and
# datasets/lvis/checksums.tsv, copied by hand.
COCO_2017 = {
  "train2017.zip": 19_336_861_798,
  "val2017.zip": 815_585_330,
  "test2017.zip": 6_646_970_404,
  "annotations_trainval2017.zip": 252_907_541,
  "image_info_test2017.zip": 1_144_034,
}
LVIS_OWN = {  # lvis's files besides the three COCO 2017 image zips it shares with coco/2017
  "lvis_v1_train.json.zip": 350_264_821,
  "lvis_v1_val.json.zip": 64_026_968,
  "lvis_v1_image_info_test_dev.json.zip": 384_629,
  "lvis_v1_minival_inserted_image_name.json": 35_463_626,
}
KARPATHY_ZIP, SNLI_ZIP = 36_745_453, 94_550_081


def write(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)
  return str(path)


def test_read_checksums_takes_tfds_formats_and_skips_blank_and_comment_lines(tmp_path):
  path = write(
    tmp_path / "x.txt",
    "# recorded by hand\n"
    "http://a.example/x.zip\t100\t" + "a" * 64 + "\tx.zip\n"
    "\n"
    "http://a.example/y.json\t2500\t" + "b" * 64 + "\n"  # no file name column
    "http://a.example/with space.tar 777 " + "c" * 64 + "\n"  # legacy, space-separated
    "   \n"
    "http://a.example/x.zip\t100\t" + "a" * 64 + "\tx.zip\r\n",  # listed again, same size
  )
  assert disk_sizes.read_checksums(path) == {
    "http://a.example/x.zip": 100,
    "http://a.example/y.json": 2500,
    "http://a.example/with space.tar": 777,
  }


def test_read_checksums_names_a_contradictory_or_broken_line(tmp_path):
  path = write(
    tmp_path / "c.tsv", "http://a.example/x.zip\t100\th\nhttp://a.example/x.zip\t101\th\n"
  )
  with pytest.raises(ValueError, match=r"c.tsv:2: http://a.example/x.zip listed with 100 and 101"):
    disk_sizes.read_checksums(path)
  path = write(tmp_path / "b.tsv", "http://a.example/x.zip\tlarge\th\n")
  with pytest.raises(ValueError, match=r"b.tsv:1: not URL, size"):
    disk_sizes.read_checksums(path)


def test_shipped_sizes_merges_legacy_and_builder_files(tmp_path):
  write(tmp_path / "url_checksums" / "a.txt", "http://a/1.zip\t10\th\nhttp://a/2.zip\t20\th\n")
  write(tmp_path / "datasets" / "b" / "checksums.tsv", "http://a/2.zip\t20\th\nhttp://b/3\t3\th\n")
  sizes = disk_sizes.shipped_sizes(str(tmp_path))
  assert sizes == {"http://a/1.zip": 10, "http://a/2.zip": 20, "http://b/3": 3}
  assert disk_sizes.select(["http://a/*", "http://b/3"], sizes) == sizes
  with pytest.raises(KeyError, match="http://c/4"):
    disk_sizes.select(["http://c/4"], sizes)
  write(tmp_path / "datasets" / "c" / "checksums.tsv", "http://a/1.zip\t11\th\n")
  with pytest.raises(ValueError, match="http://a/1.zip has"):
    disk_sizes.shipped_sizes.__wrapped__(str(tmp_path))


def test_shared_downloads_count_once():
  coco, lvis = disk_sizes.total(["coco/2017"]), disk_sizes.total(["lvis"])
  assert (coco.size, coco.files, coco.unknown) == (sum(COCO_2017.values()), 5, 0)
  shared = COCO_2017["train2017.zip"] + COCO_2017["val2017.zip"] + COCO_2017["test2017.zip"]
  assert lvis.size == shared + sum(LVIS_OWN.values())
  both = disk_sizes.total(["coco/2017", "lvis"])
  assert (both.size, both.files) == (sum(COCO_2017.values()) + sum(LVIS_OWN.values()), 9)
  # Flickr30k's images (size unknown) are read by both builders: one unknown file, not two.
  flickr = disk_sizes.total(["uio_flickr30k", "uio_snli_ve"])
  assert (flickr.size, flickr.files, flickr.unknown) == (KARPATHY_ZIP + SNLI_ZIP, 4, 2)
  assert flickr.text() == ">=131.3 MB"
  # Karpathy's caption_datasets.zip: coco_captions/2014 downloads it, uio_flickr30k reads it.
  captions = disk_sizes.total(["coco_captions/2014"])
  together = disk_sizes.total(["coco_captions/2014", "uio_flickr30k"])
  assert together.size == captions.size and together.files == captions.files + 1


def test_every_catalogue_builder_has_sizes_or_a_reason_and_an_estimate_basis():
  builders = disk_sizes.builders_of(SOURCES + PRETRAINING)
  assert set(builders) == {s.builder for s in SOURCES + PRETRAINING}
  for builder in builders:
    files = disk_sizes.downloads(builder)
    assert files, builder
    for f in files:
      if f.kind == EXACT:
        assert f.size > 0, (builder, f)
      else:
        assert f.kind in (DOCUMENTED, UNKNOWN) and f.note, (builder, f)
        assert (f.size is None) == (f.kind == UNKNOWN), (builder, f)
    basis = disk_sizes.prep(builder)
    if disk_sizes.prep_seconds(builder) is None:
      assert basis.note, f"{builder}: no estimate and no reason"
  with pytest.raises(KeyError, match="uio_nothing"):
    disk_sizes.downloads("uio_nothing")


def test_estimates_are_the_measured_rates_times_the_stated_quantities():
  coco_bytes = sum(COCO_2017.values())  # zips: built and unzipped
  expected = coco_bytes / (PREP_RATES["image_mb_per_s"] * 1e6)
  expected += coco_bytes / (PREP_RATES["unzip_mb_per_s"] * 1e6)
  assert disk_sizes.prep_seconds("coco/2017") == pytest.approx(expected)
  vqa = 443_757 + 214_354  # train + val questions, one record each
  assert disk_sizes.prep_seconds("uio_vqa_v2") == pytest.approx(
    vqa / PREP_RATES["image_records_per_s"]
  )
  cola = 8_551  # the catalogue row's train sentences
  assert disk_sizes.prep_seconds("glue/cola") == pytest.approx(
    cola / PREP_RATES["text_records_per_s"]
  )
  assert disk_sizes.prep_seconds("c4/en") is None
  assert disk_sizes.duration(7200, lower_bound=True) == ">=2.0 h"
  assert disk_sizes.duration(90) == "2 min" and disk_sizes.duration(None) == "-"


def test_url_table_agrees_with_what_tfds_builders_ask_for(monkeypatch):
  assert disk_sizes.check(["coco/2017", "glue/mrpc", "squad/v2.0"]) == []
  train_only = ("https://rajpurkar.github.io/SQuAD-explorer/dataset/train-v2.0.json",)
  monkeypatch.setitem(disk_sizes.TFDS_URLS, "squad/v2.0", train_only)
  (problem,) = disk_sizes.check(["squad/v2.0"])
  assert "dev-v2.0.json" in problem


def test_catalog_sizes_view(capsys):
  catalog.main(["--sizes"])
  out = capsys.readouterr().out
  coco_line = next(line for line in out.splitlines() if line.startswith("coco/2017 "))
  assert "27.1 GB" in coco_line and "exact" in coco_line
  assert any(line.startswith("Table 1: >=") for line in out.splitlines())
  assert disk_sizes.table(markdown=True).startswith("| builder | rows | download |")


def test_data_guide_table_is_the_modules_output():
  guide = (pathlib.Path(__file__).parent.parent / "docs" / "data.md").read_text()
  assert disk_sizes.table(markdown=True) in guide, (
    "docs/data.md is stale: paste `python -m unified_io.data.disk_sizes --markdown`"
  )
