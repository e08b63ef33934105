"""What the catalogue's builders download, and how their preparation time is estimated: data.

`disk_sizes.py` computes sizes, totals and estimates from these tables; it reads the exact
sizes from the checksum files tensorflow-datasets ships, so no exact size is typed here.
- TFDS_URLS: per TFDS builder, the URLs its `_split_generators` asks the download manager
  for (tensorflow-datasets 4.9.10), exact or as a prefix ending in `*`;
  `python -m unified_io.data.disk_sizes --check` compares them with what the code asks for.
- MANUAL_URLS: files a builder reads from a manual download that TFDS's checksums list
  under their download URL (COCO's and Open Images' archives, Visual Genome's image zips,
  Karpathy's caption_datasets.zip, SNLI 1.0, ImageNet 2012): their sizes are exact too.
- OTHER_FILES: the rest, keyed "<release>: <file>", with a documented size and its source,
  or unknown with the reason.
- PREP_RATES, PREP: the measured preparation rates and, per builder, what they multiply.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

EXACT, DOCUMENTED, UNKNOWN = "exact", "documented", "unknown"


@dataclasses.dataclass(frozen=True)
class File:
  key: str  # the URL, or "<release>: <file>" where the release has no URL here
  size: Optional[int]  # bytes; None when unknown
  kind: str  # EXACT, DOCUMENTED or UNKNOWN
  note: str = ""  # where a documented size comes from, or why it is unknown


COCO = "http://images.cocodataset.org/"
C14 = tuple(COCO + f for f in ("zips/train2014.zip", "zips/val2014.zip"))
C17 = tuple(COCO + f for f in ("zips/train2017.zip", "zips/val2017.zip"))
C17_TEST = COCO + "zips/test2017.zip"
C17_ANNOTATIONS = COCO + "annotations/annotations_trainval2017.zip"
OI_V4 = "http://open-images-dataset.s3.amazonaws.com/tar/"
OI_IMAGES = tuple(OI_V4 + f"train_{c}.tar.gz" for c in "0123456789abcdef") + (
  OI_V4 + "validation.tar.gz",
)
VG_IMAGES = (
  "https://cs.stanford.edu/people/rak248/VG_100K_2/images.zip",
  "https://cs.stanford.edu/people/rak248/VG_100K_2/images2.zip",
)
KARPATHY = "https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip"
SNLI = "https://nlp.stanford.edu/projects/snli/snli_1.0.zip"
GLUE = "https://dl.fbaipublicfiles.com/glue/data/"
SUPERGLUE = "https://dl.fbaipublicfiles.com/glue/superglue/data/v2/"
MRQA = "https://s3.us-east-2.amazonaws.com/mrqa/release/v2/"
LVIS = "https://dl.fbaipublicfiles.com/LVIS/"

# TFDS builders: the URLs their _split_generators ask the download manager for (TFDS 4.9.10;
# `python -m unified_io.data.disk_sizes --check` compares them with the builders' requests).
TFDS_URLS: Dict[str, Tuple[str, ...]] = {
  "coco/2017": C17 + (C17_TEST, C17_ANNOTATIONS, COCO + "annotations/image_info_test2017.zip"),
  "coco_captions/2014": C14
  + (COCO + "zips/test2014.zip", COCO + "zips/test2015.zip", KARPATHY)
  + tuple(
    COCO + "annotations/" + f
    for f in ("annotations_trainval2014.zip", "image_info_test2014.zip", "image_info_test2015.zip")
  ),
  "open_images_v4/original": OI_IMAGES
  + (OI_V4 + "test.tar.gz",)
  + tuple(
    f"https://storage.googleapis.com/openimages/2018_04/{s}/{s}-annotations-{kind}.csv"
    for s in ("train", "validation", "test")
    for kind in ("bbox", "human-imagelabels", "machine-imagelabels")
  ),
  "lvis": C17
  + (
    C17_TEST,
    LVIS + "lvis_v1_train.json.zip",
    LVIS + "lvis_v1_val.json.zip",
    LVIS + "lvis_v1_image_info_test_dev.json.zip",
    "https://huggingface.co/GLIPModel/GLIP/resolve/main/lvis_v1_minival_inserted_image_name.json",
  ),
  "places365_small": tuple(
    "http://data.csail.mit.edu/places/places365/" + f
    for f in (
      "train_256_places365standard.tar",
      "val_256.tar",
      "test_256.tar",
      "filelist_places365-standard.tar",
    )
  ),
  "i_naturalist2017": (
    "http://www.vision.caltech.edu/~gvanhorn/datasets/inaturalist/fgvc4_competition/*",
  ),
  "sun397/tfds": ("https://vision.princeton.edu/projects/2010/SUN/*",),
  "caltech_birds2011": ("https://data.caltech.edu/records/*",),
  "nyu_depth_v2": ("http://datasets.lids.mit.edu/fastdepth/data/nyudepthv2.tar.gz",),
  **{f"ref_coco/{c}": () for c in ("refcoco_unc", "refcocoplus_unc", "refcocog_umd")},
  "imagenet2012": (),  # manual downloads: MANUAL_URLS
  "glue/cola": (GLUE + "CoLA.zip",),
  "glue/sst2": (GLUE + "SST-2.zip",),
  "glue/mrpc": (
    "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_*",
    "https://firebasestorage.googleapis.com/v0/b/mtl-sentence-representations.appspot.com/o/"
    "data%2Fmrpc_dev_ids.tsv*",
  ),
  "glue/qqp": (GLUE + "QQP.zip",),
  "glue/stsb": (GLUE + "STS-B.zip",),
  "glue/mnli": (GLUE + "MNLI.zip",),
  "glue/qnli": (GLUE + "QNLIv2.zip",),
  "glue/rte": (GLUE + "RTE.zip",),
  "glue/wnli": (GLUE + "WNLI.zip",),
  "super_glue/cb": (SUPERGLUE + "CB.zip",),
  "super_glue/rte": (SUPERGLUE + "RTE.zip",),
  "super_glue/wic": (SUPERGLUE + "WiC.zip",),
  "super_glue/wsc.fixed": (SUPERGLUE + "WSC.zip",),
  "super_glue/boolq": (SUPERGLUE + "BoolQ.zip",),
  "super_glue/multirc": (SUPERGLUE + "MultiRC.zip",),
  "super_glue/copa": (SUPERGLUE + "COPA.zip",),
  "super_glue/record": (SUPERGLUE + "ReCoRD.zip",),
  "snli": (SNLI,),
  "sci_tail": ("http://data.allenai.org.s3.amazonaws.com/downloads/SciTailV1.1.zip",),
  "imdb_reviews/plain_text": ("http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",),
  "paws_wiki/labeled_final_raw": ("https://storage.googleapis.com/paws/english/*",),
  "squad/v2.0": tuple(
    f"https://rajpurkar.github.io/SQuAD-explorer/dataset/{s}-v2.0.json" for s in ("train", "dev")
  ),
  "cosmos_qa": ("https://raw.githubusercontent.com/wilburOne/cosmosqa/master/data/*",),
  "openbookqa": ("https://s3-us-west-2.amazonaws.com/ai2-website/data/OpenBookQA-V1-Sep2018.zip",),
  "hellaswag": ("https://raw.githubusercontent.com/rowanz/hellaswag/master/data/*",),
  "gigaword": ("https://drive.google.com/uc?export=download&id=1USoQ8lJgN8kAWnUnRrupMGrPMLlDVqlV",),
  "c4/en": (
    "https://data.commoncrawl.org/crawl-data/CC-MAIN-2019-18/wet.paths.gz",
    "https://raw.githubusercontent.com/LDNOOBW/*",
  ),
  "wikipedia/20230601.en": (
    "https://mirror.accum.se/mirror/wikimedia.org/dumps/enwiki/20230601/*",
  ),
}
TFDS_URLS.update(
  {f"mrqa/{n}": () for n in ("news_qa", "trivia_qa", "search_qa", "hotpot_qa", "natural_questions")}
)

NO_SIZE = "no size in TFDS's checksum files or the release page as read offline"


def _unknown(release: str, *names: str, note: str = NO_SIZE) -> Tuple[File, ...]:
  return tuple(File(f"{release}: {name}", None, UNKNOWN, note) for name in names)


SHARDS = "img2dataset shards: their size depends on --image_size and on how many URLs still load"
FLICKR30K_IMAGES = _unknown("Flickr30k", "flickr30k-images.tar.gz (request form)")
VCR_IMAGES = _unknown("VCR", "vcr1images.zip (licence form)")
# Files TFDS's checksums lack, per builder (the rest are in TFDS_URLS and MANUAL_URLS).
OTHER_FILES: Dict[str, Tuple[File, ...]] = {
  "ref_coco/refcoco_unc": _unknown("refer", "refcoco.zip (manual download)"),
  "ref_coco/refcocoplus_unc": _unknown("refer", "refcoco+.zip (manual download)"),
  "ref_coco/refcocog_umd": _unknown("refer", "refcocog.zip (manual download)"),
  "c4/en": _unknown(
    "Common Crawl",
    "CC-MAIN-2019-18 WET files (what the Beam pipeline fetches)",
    note="the WET files are fetched inside the Beam pipeline, not listed in TFDS's checksums",
  ),
  "uio_visual_genome": _unknown(
    "visualgenome.org v1.2",
    "image_data.json.zip",
    "objects.json.zip",
    "region_descriptions.json.zip",
    "question_answers.json.zip",
    "relationships.json.zip",
  ),
  "uio_vqa_v2": _unknown(
    "visualqa.org",
    "v2_Questions_Train_mscoco.zip",
    "v2_Questions_Val_mscoco.zip",
    "v2_Annotations_Train_mscoco.zip",
    "v2_Annotations_Val_mscoco.zip",
  ),
  "uio_okvqa": _unknown(
    "okvqa.allenai.org",
    "OpenEnded_mscoco_{train,val}2014_questions.json",
    "mscoco_{train,val}2014_annotations.json",
  ),
  "uio_aokvqa": _unknown("A-OKVQA", "aokvqa_v1p0.tar.gz"),
  "uio_vizwiz/captions": _unknown("VizWiz-Captions", "annotations.zip", "train.zip", "val.zip"),
  "uio_vizwiz/vqa": _unknown("VizWiz-VQA", "Annotations.zip", "train.zip", "val.zip"),
  "uio_vizwiz/grounding": _unknown(
    "VizWiz-VQA-Grounding", "{train,val}_grounding.json", "binary_masks_png", "train", "val"
  ),
  "uio_snli_ve": _unknown(
    "SNLI-VE", "snli_ve_{train,dev,test}.jsonl (its generator's output from snli_1.0.zip)"
  )
  + FLICKR30K_IMAGES,
  "uio_flickr30k": FLICKR30K_IMAGES,
  "uio_imsitu": _unknown("SWiG", "SWiG_jsons (train, dev, test, imsitu_space)", "images_512.zip"),
  "uio_vcr": _unknown("VCR", "vcr1annots.zip") + VCR_IMAGES,
  "uio_visualcomet": _unknown("VisualCOMET", "visualcomet.zip (annotations)") + VCR_IMAGES,
  "uio_open_images_v6/segmentation": _unknown(
    "Open Images V6",
    "{train,validation}-masks-[0-9a-f].zip (32 zips)",
    "{train,validation}-annotations-object-segmentation.csv",
    "class-descriptions-boxable.csv",
  ),
  "uio_open_images_v6/relationships": _unknown(
    "Open Images V6",
    "oidv6-{train,validation}-annotations-vrd.csv",
    "oidv6-attributes-description.csv",
    "class-descriptions-boxable.csv",
  ),
  "uio_cc3m": _unknown("CC3M", "Train_GCC-training.tsv", "Validation_GCC-1.1.0-Validation.tsv")
  + _unknown("CC3M", "train/*.tar, validation/*.tar", note=SHARDS),
  "uio_cc12m": _unknown("CC12M", "cc12m.tsv") + _unknown("CC12M", "train/*.tar", note=SHARDS),
  "uio_redcaps": _unknown("RedCaps", "redcaps_v1.0_annotations.zip")
  + _unknown("RedCaps", "train/*.tar", note=SHARDS),
  "uio_yfcc15m": _unknown("YFCC15M", "yfcc100m_subset_data.tsv", "YFCC100M metadata")
  + _unknown("YFCC15M", "train/*.tar", note=SHARDS),
  "uio_imagenet21k": _unknown("ImageNet-21K-P", "imagenet21k_resized.tar.gz (winter21)"),
  "uio_framenet": _unknown("FrameNet", "train_test_split.pkl", "scannet-frames zips (ScanNet)"),
  "uio_blendedmvs": (
    File(
      "BlendedMVS: low-res set (768 x 576)",
      27_500_000_000,
      DOCUMENTED,
      "github.com/YoYo000/BlendedMVS README: 27.5 GB",
    ),
  ),
}
for _config in ("news_qa", "trivia_qa", "search_qa", "hotpot_qa", "natural_questions"):
  OTHER_FILES[f"mrqa/{_config}"] = tuple(
    File(
      f"{MRQA}{split}/<{_config}>.jsonl.gz", None, UNKNOWN, "TFDS 4.9.10 ships no mrqa checksums"
    )
    for split in ("train", "dev")
  )

# Manual downloads (the project's builders', and TFDS's imagenet2012 and ref_coco) that are
# files TFDS's checksums list, so their sizes are exact.
MANUAL_URLS: Dict[str, Tuple[str, ...]] = {
  "imagenet2012": ("http://www.image-net.org/challenges/LSVRC/2012/nnoupb/*",),
  **{f"ref_coco/{c}": (C14[0],) for c in ("refcoco_unc", "refcocoplus_unc", "refcocog_umd")},
  "uio_visual_genome": VG_IMAGES,
  "uio_vqa_v2": C14,
  "uio_okvqa": C14,
  "uio_aokvqa": C17 + (C17_TEST,),
  "uio_coco2017/keypoints": C17 + (C17_ANNOTATIONS,),
  "uio_coco2017/instances": C17 + (C17_ANNOTATIONS,),
  "uio_open_images_v6/segmentation": OI_IMAGES,
  "uio_open_images_v6/relationships": OI_IMAGES,
  "uio_flickr30k": (KARPATHY,),
  "uio_snli_ve": (SNLI,),
}


# ------------------------------------------------------------------ preparation

# Measured with `.venv/bin/python benchmarks/prepare_rate.py` (its defaults: 1,000 photos,
# 4,000 web images, 100,000 texts; the median of 3 trials) on the 2-core development machine
# while other jobs shared it (load average 6-7): one core each, local disk, files in the page
# cache. A second run gave the same photo rate within 1% (344 records/s). Rates on an idle
# or faster core are higher; every estimate scales with them.
PREP_RATES = {
  "image_records_per_s": 341.0,  # uio_flickr30k, 640 x 480 JPEGs of 165 KB (COCO's mean)
  "image_mb_per_s": 56.4,  # the same run in JPEG bytes
  "web_records_per_s": 546.0,  # uio_cc3m, 256 x 256 JPEGs of 36 KB, each decoded once
  "text_records_per_s": 12_465.0,  # TFDS's writer on ~1.1 KB text records
  "unzip_mb_per_s": 121.5,  # zipfile on deflated JPEGs
  "untar_gz_mb_per_s": 76.7,  # tarfile on gzipped JPEGs
}


@dataclasses.dataclass(frozen=True)
class Prep:
  basis: str  # "bytes" (image builders: exact bytes), "image", "web", "text" (records), ""
  records: Optional[int] = None  # for the record bases
  more_work: str = ""  # what the builder does beyond the measured work: the time is ">="
  note: str = ""  # where the record count comes from, or why there is no estimate


TEXT = "text"
PREP: Dict[str, Prep] = {
  # TFDS's image builders: their exact download, built at the measured image rate (each stores
  # the JPEG bytes it reads, as uio_flickr30k does), plus TFDS extracting the archives.
  **{
    b: Prep("bytes")
    for b in (
      "coco/2017",
      "coco_captions/2014",
      "open_images_v4/original",
      "places365_small",
      "i_naturalist2017",
      "imagenet2012",
      "nyu_depth_v2",
    )
  },
  "sun397/tfds": Prep("bytes", more_work="OpenCV decodes and re-encodes each image"),
  "caltech_birds2011": Prep("bytes", more_work="segmentation masks are decoded too"),
  "lvis": Prep("bytes", more_work="instance masks are decoded (Beam)"),
  **{
    b: Prep("", note="needs the refer files (size unknown) and TFDS's manual merge step first")
    for b in ("ref_coco/refcoco_unc", "ref_coco/refcocoplus_unc", "ref_coco/refcocog_umd")
  },
  "c4/en": Prep("", note="a Beam pipeline over a Common Crawl dump: run on a cluster (TFDS)"),
  "wikipedia/20230601.en": Prep("", note="Beam + wikitext parsing of 6.7m articles: not measured"),
  # The project's builders: one record per image, or per question on an image (the image
  # stored with each), at the measured 640 x 480 rate; records over all splits built.
  "uio_visual_genome": Prep("image", 108_077, "its annotation JSONs are parsed", "v1.2 images"),
  "uio_vqa_v2": Prep("image", 658_111, note="443,757 train + 214,354 val questions"),
  "uio_okvqa": Prep("image", 14_055, note="9,009 train + 5,046 val questions"),
  "uio_aokvqa": Prep("image", 24_903, note="17,056 train + 1,145 val + 6,702 test"),
  "uio_vizwiz/captions": Prep("image", 31_181, note="23,431 train + 7,750 val images"),
  "uio_vizwiz/vqa": Prep("image", 24_842, note="20,523 train + 4,319 val questions"),
  "uio_vizwiz/grounding": Prep("image", 7_625, "answer masks decoded", "6,494 + 1,131"),
  "uio_snli_ve": Prep("image", 565_286, note="529,527 + 17,858 + 17,901 pairs (README)"),
  "uio_flickr30k": Prep("image", 31_783, note="the images in Karpathy's split file"),
  "uio_imsitu": Prep("image", 126_102, note="75,702 + 25,200 + 25,200 images"),
  "uio_vcr": Prep("image", 239_457, note="212,923 train + 26,534 val questions"),
  "uio_visualcomet": Prep("image", 139_377, note="all 139,377 events (test's are not read)"),
  "uio_coco2017/keypoints": Prep("image", 123_287, note="train2017 + val2017 images"),
  "uio_coco2017/instances": Prep("image", 123_287, "instance masks decoded", "train + val"),
  "uio_open_images_v6/segmentation": Prep("", note="images with masks: count not documented"),
  "uio_open_images_v6/relationships": Prep("", note="images with relations: not documented"),
  "uio_framenet": Prep("", note="FrameNet states no frame count"),
  "uio_blendedmvs": Prep("image", 17_818, "normals computed from each depth map", "images"),
  # Web corpora (img2dataset shards) and ImageNet-21K-P: small images, each decoded once.
  "uio_cc3m": Prep("web", 3_334_173, note="URLs listed (3,318,333 + 15,840); fewer load"),
  "uio_cc12m": Prep("web", 12_423_374, note="URLs listed; fewer load"),
  "uio_redcaps": Prep("web", 12_011_111, note="URLs listed; fewer load"),
  "uio_yfcc15m": Prep("web", 14_829_396, note="URLs listed; fewer load"),
  "uio_imagenet21k": Prep("web", 11_582_723, note="11,060,223 train + 522,500 val, 224 px"),
}
