"""The paper's datasets as data: Table 1's rows, the pre-training sources (A.2), their sizes.

One `Source` per (paper task, dataset) of Table 1 (rows numbered as in
`../shared/datasets.md`, which maps them to the paper) and per pre-training source. Each names
the registered task(s) that implement it, its builder, its documented size in the paper's
unit with where that number comes from, and, for datasets without a TFDS builder, the issue
that brings one and the original release files it will read. `catalog.py` computes rates
and preparation state from this table; nothing here imports a dataset.

Sizes. Table 1 gives each paper task's total (e.g. Object Localization 6m over 3 datasets)
but not its datasets' shares, and its unit is the training examples a task yields (object
localization counts image x class pairs, categorization counts objects), which dataset
documentation rarely states. So each row records the closest documented count (`size`, with
`unit` and `size_source`), and `catalog.design_size` scales a task's rows so they add up to
Table 1's total: documentation gives the proportions, the paper the totals.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

# The issues that bring the builders TFDS lacks.
VL_ISSUE = 15  # vision-language sources, Visual Genome, VizWiz
VISION_ISSUE = 16  # web captions, ImageNet-21k, COCO/Open Images extras, normals


@dataclasses.dataclass(frozen=True)
class PaperTask:
  """One of Table 1's 22 tasks: its group, #datasets, size, sampling rate (percent)."""

  group: str
  datasets: int
  size: Optional[float]  # training examples; None where Table 1 gives "-"
  rate: float  # Table 1's "Rate" column, percent


PAPER_TASKS = {
  "Image Synthesis from Text": PaperTask("image_synthesis", 9, 55e6, 16.7),
  "Image Inpainting": PaperTask("image_synthesis", 3, 1.2e6, 1.5),
  "Image Synthesis from Seg.": PaperTask("image_synthesis", 2, 220e3, 0.6),
  "Object Detection": PaperTask("sparse_labelling", 3, 1.9e6, 3.6),
  "Object Localization": PaperTask("sparse_labelling", 3, 6e6, 7.1),
  "Keypoint Estimation": PaperTask("sparse_labelling", 1, 140e3, 0.7),
  "Referring Expression": PaperTask("sparse_labelling", 3, 130e3, 1.1),
  "Depth Estimation": PaperTask("dense_labelling", 1, 48e3, 0.4),
  "Surface Normal Estimation": PaperTask("dense_labelling", 2, 210e3, 1.1),
  "Object Segmentation": PaperTask("dense_labelling", 3, 2.1e6, 4.7),
  "Image Classification": PaperTask("image_classification", 6, 16e6, 8.1),
  "Object Categorization": PaperTask("image_classification", 3, 6e6, 4.4),
  "Webly Supervised Captioning": PaperTask("image_captioning", 3, 26e6, 8.8),
  "Supervised Captioning": PaperTask("image_captioning", 3, 1.4e6, 1.7),
  "Region Captioning": PaperTask("image_captioning", 1, 3.8e6, 2.0),
  "Visual Question Answering": PaperTask("vision_language", 13, 3.3e6, 10.4),
  "Relationship Detection": PaperTask("vision_language", 2, 640e3, 1.9),
  "Grounded VQA": PaperTask("vision_language", 1, 6.5e3, 0.1),
  "Text Classification": PaperTask("nlp", 17, 1.6e6, 4.8),
  "Question Answering": PaperTask("nlp", 13, 1.7e6, 5.2),
  "Text Summarization": PaperTask("nlp", 1, 3.8e6, 2.5),
  "Masked Language Modelling": PaperTask("language_modelling", 2, None, 12.5),
}


@dataclasses.dataclass(frozen=True)
class Release:
  """Where a dataset comes from when TFDS cannot download it: page and original files."""

  page: str
  files: Tuple[str, ...]  # under their original names, in the manual folder


@dataclasses.dataclass(frozen=True)
class Source:
  row: str  # "1".."97": Table 1 rows as numbered in datasets.md; "P1".."P9": pre-training
  paper_task: str  # a PAPER_TASKS key, or the pre-training objective
  dataset: str
  tasks: Tuple[str, ...]  # registered task names that implement the row
  builder: str  # TFDS name/config, or the project builder a later issue adds
  size: Optional[int]  # documented count, in `unit`
  unit: str
  size_source: str
  issue: Optional[int] = None  # the issue that adds the builder; None: TFDS builds it
  release: Optional[Release] = None  # original files, for manual or project builders
  extras: Tuple[str, ...] = ()  # what `tfds build` needs beyond requirements.txt
  in_table1: bool = True  # False: named by the A.1 text but not counted by Table 1
  # Registered tasks on the row's dataset that no mixture samples: evaluation-only ones
  # (A-OKVQA multiple choice) and stand-ins a better source replaced (COCO panoptic masks).
  other_tasks: Tuple[str, ...] = ()
  note: str = ""


S = Source
TFDS_DOCS = "TFDS catalog, train split"
IS_TEXT, INPAINT, IS_SEG = (
  "Image Synthesis from Text",
  "Image Inpainting",
  "Image Synthesis from Seg.",
)
DET, LOC, KP, REF = (
  "Object Detection",
  "Object Localization",
  "Keypoint Estimation",
  "Referring Expression",
)
DEPTH, NORMAL, SEG = "Depth Estimation", "Surface Normal Estimation", "Object Segmentation"
CLS, CAT = "Image Classification", "Object Categorization"
WEBLY, SUPCAP, REGION = "Webly Supervised Captioning", "Supervised Captioning", "Region Captioning"
VQA, REL, GVQA = "Visual Question Answering", "Relationship Detection", "Grounded VQA"
TC, QA, SUM = "Text Classification", "Question Answering", "Text Summarization"
MLM = "Masked Language Modelling"

IMAGENET = Release(
  "https://image-net.org/download-images (account needed)",
  ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"),
)
IMAGENET21K = Release(
  "https://image-net.org/download-images (imagenet21k_resized.tar.gz, ImageNet-21K-P winter21)",
  (
    "imagenet21k_resized/imagenet21k_train/<wnid>/*.JPEG",
    "imagenet21k_resized/imagenet21k_val/<wnid>/*.JPEG",
  ),
)
CC3M = Release(  # images as img2dataset webdataset shards (builders/web_image_text.py)
  "https://ai.google.com/research/ConceptualCaptions/download",
  (
    "Train_GCC-training.tsv",
    "Validation_GCC-1.1.0-Validation.tsv",
    "train/*.tar",
    "validation/*.tar (img2dataset shards)",
  ),
)
CC12M = Release(
  "https://github.com/google-research-datasets/conceptual-12m",
  ("cc12m.tsv", "train/*.tar (img2dataset shards)"),
)
REDCAPS = Release(
  "https://redcaps.xyz",
  ("redcaps_v1.0_annotations.zip", "train/*.tar (img2dataset shards of its url/caption list)"),
)
YFCC15M = Release(
  "https://github.com/openai/CLIP/blob/main/data/yfcc100m.md",
  ("yfcc100m_subset_data.tsv", "YFCC100M metadata", "train/*.tar (img2dataset shards)"),
)
VISUAL_GENOME = Release(
  "https://homes.cs.washington.edu/~ranjay/visualgenome/api.html (v1.2)",
  (
    "image_data.json",
    "objects.json",
    "region_descriptions.json",
    "question_answers.json",
    "relationships.json",
    "VG_100K/",
    "VG_100K_2/",
  ),
)
OPEN_IMAGES_V6 = Release(
  "https://storage.googleapis.com/openimages/web/download_v6.html",
  (
    "class-descriptions-boxable.csv",
    "{train,validation}-annotations-object-segmentation.csv",
    "{train,validation}-masks-[0-9a-f].zip",
    "oidv6-{train,validation}-annotations-vrd.csv",
    "oidv6-attributes-description.csv",
    "train/",
    "validation/ (the images, as for V4)",
  ),
)
COCO_ANNOTATIONS = Release(
  "https://cocodataset.org/#download (2017 Train/Val annotations and images)",
  (
    "annotations/person_keypoints_{train,val}2017.json",
    "annotations/instances_{train,val}2017.json",
    "train2017/",
    "val2017/",
  ),
)
REFCOCO = Release(
  "https://github.com/lichengunc/refer (refs annotations) + COCO train2014",
  ("refcoco/refs(unc).p", "refcoco+/refs(unc).p", "refcocog/refs(umd).p", "instances.json"),
)
VIZWIZ = Release(  # each release unzipped into its own sub-folder (builders/vizwiz.py)
  "https://vizwiz.org/tasks-and-datasets/",
  (
    "captions/annotations/{train,val}.json",
    "captions/{train,val}/",
    "vqa/Annotations/{train,val}.json",
    "vqa/{train,val}/",
    "grounding/{train,val}_grounding.json",
    "grounding/binary_masks_png/{train,val}/",
    "grounding/{train,val}/",
  ),
)
VQA_V2 = Release(
  "https://visualqa.org/download.html",
  (
    "v2_OpenEnded_mscoco_{train,val}2014_questions.json",
    "v2_mscoco_{train,val}2014_annotations.json",
    "train2014/",
    "val2014/ (COCO 2014 images; symlinks are fine)",
  ),
)
OKVQA = Release(
  "https://okvqa.allenai.org/download.html",
  (
    "OpenEnded_mscoco_{train,val}2014_questions.json",
    "mscoco_{train,val}2014_annotations.json",
    "train2014/",
    "val2014/",
  ),
)
AOKVQA = Release(
  "https://allenai.org/project/a-okvqa",
  ("aokvqa_v1p0_{train,val,test}.json", "train2017/", "val2017/", "test2017/ (COCO 2017)"),
)
IMSITU = Release(
  "https://github.com/allenai/swig (SWiG JSONs, images_512) + imsitu.org",
  ("train.json", "dev.json", "test.json", "imsitu_space.json", "images_512/"),
)
VCR = Release(
  "https://visualcommonsense.com/download/ (licence form)",
  ("train.jsonl", "val.jsonl", "vcr1images/"),
)
VISUALCOMET = Release(
  "https://visualcomet.xyz (annotations) + VCR images",
  ("train_annots.json", "val_annots.json", "vcr1images/"),
)
FLICKR30K = Release(
  "https://shannon.cs.illinois.edu/DenotationGraph/ (request form) + Karpathy's "
  "caption_datasets.zip",
  ("dataset_flickr30k.json", "flickr30k-images/"),
)
SNLI_VE = Release(
  "https://github.com/necla-ml/SNLI-VE + Flickr30k images (request form)",
  ("snli_ve_train.jsonl", "snli_ve_dev.jsonl", "snli_ve_test.jsonl", "flickr30k-images/"),
)
FRAMENET = Release(
  "https://github.com/hjwdzh/FrameNet (ScanNet frames; ScanNet terms of use)",
  (
    "train_test_split.pkl",
    "scannet-frames/<scene>/frame-NNNNNN-color.png",
    "scannet-frames/<scene>/frame-NNNNNN-normal.png",
  ),
)
BLENDEDMVS = Release(
  "https://github.com/YoYo000/BlendedMVS",
  (
    "training_list.txt",
    "validation_list.txt",
    "<scene>/blended_images/NNNNNNNN.jpg",
    "<scene>/cams/NNNNNNNN_cam.txt",
    "<scene>/rendered_depth_maps/NNNNNNNN.pfm",
  ),
)

VG_IMAGES = "visualgenome.org: 108,077 images (v1.2 image_data.json)"
OI_IMAGES = "TFDS open_images_v4 train: 1,743,042 images with boxes"
COCO_IMAGES = "TFDS coco/2017 train: 118,287 images"
COCO_INSTANCES = "COCO 2017 train: 860,001 instance annotations (instances_train2017.json)"
VG_OBJECTS = "visualgenome.org: 3.8 million objects"
OI_BOXES = "Open Images V4 train: 14,610,229 boxes (storage.googleapis.com/openimages/web)"
CLASS_PROPORTION = "image x class pairs are not published; instance counts give the proportions"

# fmt: off
SOURCES: Tuple[Source, ...] = (
  # ------------------------------------------------------------------ image synthesis
  S("1", IS_TEXT, "COCO Caption", ("coco_image_generation",), "coco_captions/2014", 82_783,
    "images (one caption drawn per image)", "TFDS coco_captions/2014 train (Karpathy)"),
  S("2", IS_TEXT, "Conceptual Captions 3M", ("cc3m_image_generation",), "uio_cc3m", 3_318_333,
    "image-caption pairs", "Sharma et al. 2018", VISION_ISSUE, CC3M),
  S("3", IS_TEXT, "Conceptual 12M", ("cc12m_image_generation",), "uio_cc12m", 12_423_374,
    "image-caption pairs", "Changpinyo et al. 2021", VISION_ISSUE, CC12M),
  S("4", IS_TEXT, "RedCaps", ("redcaps_image_generation",), "uio_redcaps", 12_011_111,
    "image-caption pairs", "Desai et al. 2021", VISION_ISSUE, REDCAPS),
  S("5", IS_TEXT, "ImageNet 2012 (class names)", ("imagenet2012_image_generation",),
    "imagenet2012", 1_281_167, "images", TFDS_DOCS, release=IMAGENET),
  S("6", IS_TEXT, "ImageNet-21k (class names)", ("imagenet21k_image_generation",),
    "uio_imagenet21k", 11_060_223, "images", "Ridnik et al. 2021, ImageNet-21K-P winter21 train",
    VISION_ISSUE, IMAGENET21K),
  S("7", IS_TEXT, "Places365 (class names)", ("places365_image_generation",), "places365_small",
    1_803_460, "images", TFDS_DOCS),
  S("8", IS_TEXT, "SUN397 (class names)", ("sun397_image_generation",), "sun397/tfds", 76_128,
    "images", TFDS_DOCS, extras=("cv2",)),
  S("9", IS_TEXT, "iNaturalist 2017 (class names)", ("inaturalist2017_image_generation",),
    "i_naturalist2017", 579_184, "images", TFDS_DOCS),
  S("10", IS_TEXT, "Caltech-UCSD Birds 2011 (class names)", ("caltech_birds2011_image_generation",),
    "caltech_birds2011", 5_994, "images", TFDS_DOCS, extras=("cv2",),
    note="A.1.1 names 4 caption sets and the 6 classification sets: 10 rows for Table 1's 9"),
  S("11", INPAINT, "Open Images", ("open_images_inpainting",), "open_images_v4/original", 1_743_042,
    "images (one box blanked per image)", OI_IMAGES),
  S("12", INPAINT, "Visual Genome", ("vg_inpainting",), "uio_visual_genome", 108_077,
    "images (one box blanked per image)", VG_IMAGES, VL_ISSUE, VISUAL_GENOME),
  S("13", INPAINT, "COCO", ("coco_inpainting",), "coco/2017", 118_287,
    "images (one box blanked per image)", COCO_IMAGES),
  S("14", IS_SEG, "COCO (instance masks)", ("coco_instance_segmentation_generation",),
    "uio_coco2017/instances", 118_287, "images", COCO_IMAGES, VISION_ISSUE, COCO_ANNOTATIONS,
    other_tasks=("coco_segmentation_generation",),
    note="coco_segmentation_generation: the same on TFDS coco/2017_panoptic's thing segments"),
  S("15", IS_SEG, "Open Images (segmentation masks)", ("open_images_segmentation_generation",),
    "uio_open_images_v6/segmentation", None, "images", "not counted by Table 1", VISION_ISSUE,
    OPEN_IMAGES_V6,
    in_table1=False,
    note="A.1.1 names it, but Table 1 counts 2 datasets whose 220k is COCO's 118k + LVIS's 100k"),
  S("16", IS_SEG, "LVIS", ("lvis_segmentation_generation",), "lvis", 100_170, "images",
    "LVIS v1 train (lvisdataset.org)", extras=("beam", "cv2")),
  # ------------------------------------------------------------------ sparse labelling
  S("17", DET, "Visual Genome", ("vg_detection",), "uio_visual_genome", 108_077, "images",
    VG_IMAGES, VL_ISSUE, VISUAL_GENOME),
  S("18", DET, "Open Images", ("open_images_detection",), "open_images_v4/original", 1_743_042,
    "images",
    OI_IMAGES),
  S("19", DET, "COCO", ("coco_detection",), "coco/2017", 118_287, "images", COCO_IMAGES),
  S("20", LOC, "Visual Genome", ("vg_localization",), "uio_visual_genome", 3_800_000,
    "objects", VG_OBJECTS, VL_ISSUE, VISUAL_GENOME, note=CLASS_PROPORTION),
  S("21", LOC, "Open Images", ("open_images_localization",), "open_images_v4/original", 14_610_229,
    "boxes", OI_BOXES, note=CLASS_PROPORTION),
  S("22", LOC, "COCO", ("coco_localization",), "coco/2017", 860_001, "instances",
    COCO_INSTANCES, note=CLASS_PROPORTION),
  S("23", KP, "COCO person keypoints", ("coco_keypoints",), "uio_coco2017/keypoints", 149_813,
    "persons with keypoints", "COCO 2017 person_keypoints_train2017.json", VISION_ISSUE,
    COCO_ANNOTATIONS),
  S("24", REF, "RefCOCO", ("refcoco_refexp",), "ref_coco/refcoco_unc", 42_404,
    "referred objects", "TFDS ref_coco README (refs, UNC train)", release=REFCOCO),
  S("25", REF, "RefCOCO+", ("refcocoplus_refexp",), "ref_coco/refcocoplus_unc", 42_278,
    "referred objects", "TFDS ref_coco README (refs, UNC train)", release=REFCOCO),
  S("26", REF, "RefCOCOg", ("refcocog_refexp",), "ref_coco/refcocog_umd", 42_226,
    "referred objects", "TFDS ref_coco README (refs, UMD train)", release=REFCOCO),
  # ------------------------------------------------------------------ dense labelling
  S("27", DEPTH, "NYU Depth V2", ("nyu_depth",), "nyu_depth_v2", 47_584, "images", TFDS_DOCS),
  S("28", NORMAL, "FrameNet (ScanNet frames)", ("framenet_normals",), "uio_framenet", 192_182,
    "frames", "Table 1's 210k less BlendedMVS's 17,818 (FrameNet states no count)",
    VISION_ISSUE, FRAMENET),
  S("29", NORMAL, "BlendedMVS", ("blendedmvs_normals",), "uio_blendedmvs", 17_818, "images",
    "Yao et al. 2020", VISION_ISSUE, BLENDEDMVS),
  S("30", SEG, "Open Images (segmentation masks)", ("open_images_segmentation",),
    "uio_open_images_v6/segmentation", 2_686_666, "instance masks",
    "Open Images V6 train segmentations",
    VISION_ISSUE, OPEN_IMAGES_V6, note=CLASS_PROPORTION),
  S("31", SEG, "LVIS", ("lvis_segmentation",), "lvis", 1_270_141, "instances",
    "LVIS v1 train (lvisdataset.org)", extras=("beam", "cv2"), note=CLASS_PROPORTION),
  S("32", SEG, "COCO (instance masks)", ("coco_instance_segmentation",),
    "uio_coco2017/instances", 860_001, "instances", COCO_INSTANCES, VISION_ISSUE,
    COCO_ANNOTATIONS, other_tasks=("coco_segmentation",), note=CLASS_PROPORTION),
  # ------------------------------------------------------------------ image classification
  S("33", CLS, "ImageNet 2012", ("imagenet2012_classification",), "imagenet2012", 1_281_167,
    "images", TFDS_DOCS, release=IMAGENET),
  S("34", CLS, "ImageNet-21k", ("imagenet21k_classification",), "uio_imagenet21k", 11_060_223,
    "images", "Ridnik et al. 2021, ImageNet-21K-P winter21 train", VISION_ISSUE, IMAGENET21K),
  S("35", CLS, "Places365", ("places365_classification",), "places365_small", 1_803_460,
    "images", TFDS_DOCS),
  S("36", CLS, "SUN397", ("sun397_classification",), "sun397/tfds", 76_128, "images",
    TFDS_DOCS, extras=("cv2",)),
  S("37", CLS, "iNaturalist 2017", ("inaturalist2017_classification",), "i_naturalist2017",
    579_184, "images", TFDS_DOCS),
  S("38", CLS, "Caltech-UCSD Birds 2011", ("caltech_birds2011_classification",),
    "caltech_birds2011", 5_994, "images", TFDS_DOCS, extras=("cv2",)),
  S("39", CAT, "Visual Genome", ("vg_categorization",), "uio_visual_genome", 3_800_000,
    "objects", VG_OBJECTS, VL_ISSUE, VISUAL_GENOME),
  S("40", CAT, "Open Images", ("open_images_categorization",), "open_images_v4/original",
    14_610_229,
    "boxes", OI_BOXES),
  S("41", CAT, "COCO", ("coco_categorization",), "coco/2017", 860_001, "instances",
    COCO_INSTANCES),
  # ------------------------------------------------------------------ image captioning
  S("42", WEBLY, "Conceptual Captions 3M", ("cc3m_captioning",), "uio_cc3m", 3_318_333,
    "image-caption pairs", "Sharma et al. 2018", VISION_ISSUE, CC3M),
  S("43", WEBLY, "Conceptual 12M", ("cc12m_captioning",), "uio_cc12m", 12_423_374,
    "image-caption pairs", "Changpinyo et al. 2021", VISION_ISSUE, CC12M),
  S("44", WEBLY, "RedCaps", ("redcaps_captioning",), "uio_redcaps", 12_011_111,
    "image-caption pairs", "Desai et al. 2021", VISION_ISSUE, REDCAPS),
  S("45", SUPCAP, "COCO Caption", ("coco_captioning",), "coco_captions/2014", 82_783,
    "images (one caption drawn per image)", "TFDS coco_captions/2014 train (Karpathy)"),
  S("46", SUPCAP, "VizWiz-Captions", ("vizwiz_captioning",), "uio_vizwiz/captions", 23_431,
    "images",
    "Gurari et al. 2020, VizWiz-Captions train", VL_ISSUE, VIZWIZ),
  S("47", SUPCAP, "Flickr30k (the paper's unnamed third set)", ("flickr30k_captioning",),
    "uio_flickr30k", 29_000, "images (one caption drawn per image)",
    "Karpathy split: 29,000 train images of 31,783", VISION_ISSUE, FLICKR30K,
    note="Table 1 counts 3 supervised caption sets and names 2 (COCO, VizWiz). Chosen: "
    "Flickr30k, the one other crowd-sourced caption set of COCO's protocol that 2022 "
    "multi-task models trained on (12-in-1 trains on its captions), whose images the "
    "mixture already needs for SNLI-VE (train leaves out SNLI-VE's dev/test images); "
    "nocaps has no training split and TextCaps (reading text) has no task of its own in "
    "the paper. A guess: the paper does not say."),
  S("48", REGION, "Visual Genome", ("vg_region_captioning",), "uio_visual_genome", 5_408_689,
    "region descriptions", "visualgenome.org: 5.4 million region descriptions", VL_ISSUE,
    VISUAL_GENOME),
  # ------------------------------------------------------------------ vision & language
  S("49", VQA, "VQA 2.0", ("vqa_v2",), "uio_vqa_v2", 443_757, "questions",
    "visualqa.org: train2014 questions", VL_ISSUE, VQA_V2),
  S("50", VQA, "Visual Genome QA", ("vg_vqa",), "uio_visual_genome", 1_700_000, "questions",
    "visualgenome.org: 1.7 million question answers", VL_ISSUE, VISUAL_GENOME),
  S("51", VQA, "VizWiz-VQA", ("vizwiz_vqa",), "uio_vizwiz/vqa", 20_523, "questions",
    "vizwiz.org: VQA train", VL_ISSUE, VIZWIZ),
  S("52", VQA, "OK-VQA", ("okvqa",), "uio_okvqa", 9_009, "questions", "Marino et al. 2019",
    VL_ISSUE, OKVQA),
  S("53", VQA, "A-OKVQA", ("aokvqa",), "uio_aokvqa", 17_056, "questions",
    "Schwenk et al. 2022", VL_ISSUE, AOKVQA, other_tasks=("aokvqa_mc",)),
  S("54", VQA, "imSitu verbs", ("imsitu_verb",), "uio_imsitu", 75_702, "images",
    "Yatskar et al. 2016, train", VL_ISSUE, IMSITU),
  S("55", VQA, "imSitu roles", ("imsitu_roles",), "uio_imsitu", 75_702,
    "images (one role question drawn per image)", "Yatskar et al. 2016, train", VL_ISSUE, IMSITU),
  S("56", VQA, "VisualCOMET before", ("visualcomet_before",), "uio_visualcomet", 488_568,
    "inferences", "Park et al. 2020: 1,465,704 inferences, a third per kind", VL_ISSUE,
    VISUALCOMET),
  S("57", VQA, "VisualCOMET after", ("visualcomet_after",), "uio_visualcomet", 488_568,
    "inferences", "Park et al. 2020: 1,465,704 inferences, a third per kind", VL_ISSUE,
    VISUALCOMET),
  S("58", VQA, "VisualCOMET intent", ("visualcomet_intent",), "uio_visualcomet", 488_568,
    "inferences", "Park et al. 2020: 1,465,704 inferences, a third per kind", VL_ISSUE,
    VISUALCOMET),
  S("59", VQA, "SNLI-VE", ("snli_ve",), "uio_snli_ve", 529_527, "pairs", "Xie et al. 2019, train",
    VL_ISSUE, SNLI_VE),
  S("60", VQA, "VCR Q->A", ("vcr_qa",), "uio_vcr", 212_923, "questions", "Zellers et al. 2019",
    VL_ISSUE, VCR),
  S("61", VQA, "VCR QA->R", ("vcr_qar",), "uio_vcr", 212_923, "questions", "Zellers et al. 2019",
    VL_ISSUE, VCR),
  S("62", REL, "Visual Genome", ("vg_relationship",), "uio_visual_genome", 2_300_000,
    "relationships", "visualgenome.org: 2.3 million relationships", VL_ISSUE, VISUAL_GENOME),
  S("63", REL, "Open Images VRD", ("open_images_relationship",),
    "uio_open_images_v6/relationships", 3_174_293,
    "relationships", "Open Images V6 train VRD annotations", VISION_ISSUE, OPEN_IMAGES_V6),
  S("64", GVQA, "VizWiz-VQA-Grounding", ("vizwiz_grounding",), "uio_vizwiz/grounding", 6_494,
    "questions",
    "Chen et al. 2022, train", VL_ISSUE, VIZWIZ),
  # ------------------------------------------------------------------ NLP (TFDS train splits)
  S("65", TC, "CoLA", ("glue_cola",), "glue/cola", 8_551, "sentences", TFDS_DOCS),
  S("66", TC, "SST-2", ("glue_sst2",), "glue/sst2", 67_349, "sentences", TFDS_DOCS),
  S("67", TC, "MRPC", ("glue_mrpc",), "glue/mrpc", 3_668, "pairs", TFDS_DOCS),
  S("68", TC, "QQP", ("glue_qqp",), "glue/qqp", 363_846, "pairs", TFDS_DOCS),
  S("69", TC, "STS-B", ("glue_stsb",), "glue/stsb", 5_749, "pairs", TFDS_DOCS),
  S("70", TC, "MNLI", ("glue_mnli",), "glue/mnli", 392_702, "pairs", TFDS_DOCS),
  S("71", TC, "QNLI", ("glue_qnli",), "glue/qnli", 104_743, "pairs", TFDS_DOCS),
  S("72", TC, "RTE (GLUE)", ("glue_rte",), "glue/rte", 2_490, "pairs", TFDS_DOCS),
  S("73", TC, "WNLI", ("glue_wnli",), "glue/wnli", 635, "pairs", TFDS_DOCS),
  S("74", TC, "CB", ("superglue_cb",), "super_glue/cb", 250, "pairs", TFDS_DOCS),
  S("75", TC, "RTE (SuperGLUE)", ("superglue_rte",), "super_glue/rte", 2_490, "pairs", TFDS_DOCS),
  S("76", TC, "WiC", ("superglue_wic",), "super_glue/wic", 5_428, "pairs", TFDS_DOCS),
  S("77", TC, "WSC", ("superglue_wsc",), "super_glue/wsc.fixed", 554, "examples", TFDS_DOCS),
  S("78", TC, "SNLI", ("snli",), "snli", 550_152, "pairs", TFDS_DOCS),
  S("79", TC, "SciTail", ("scitail",), "sci_tail", 23_097, "pairs", TFDS_DOCS),
  S("80", TC, "IMDB Reviews", ("imdb_reviews",), "imdb_reviews/plain_text", 25_000, "reviews",
    TFDS_DOCS),
  S("81", TC, "PAWS", ("paws_wiki",), "paws_wiki/labeled_final_raw", 49_401, "pairs", TFDS_DOCS),
  S("82", QA, "SQuAD 2.0", ("squad_v2",), "squad/v2.0", 130_319, "questions", TFDS_DOCS),
  S("83", QA, "NewsQA (MRQA)", ("mrqa_news_qa",), "mrqa/news_qa", 74_160, "questions", TFDS_DOCS),
  S("84", QA, "TriviaQA (MRQA)", ("mrqa_trivia_qa",), "mrqa/trivia_qa", 61_688, "questions",
    TFDS_DOCS),
  S("85", QA, "SearchQA (MRQA)", ("mrqa_search_qa",), "mrqa/search_qa", 117_384, "questions",
    TFDS_DOCS),
  S("86", QA, "HotpotQA (MRQA)", ("mrqa_hotpot_qa",), "mrqa/hotpot_qa", 72_928, "questions",
    TFDS_DOCS),
  S("87", QA, "Natural Questions (MRQA)", ("mrqa_natural_questions",), "mrqa/natural_questions",
    104_071, "questions", TFDS_DOCS),
  S("88", QA, "BoolQ", ("superglue_boolq",), "super_glue/boolq", 9_427, "questions", TFDS_DOCS),
  S("89", QA, "MultiRC", ("superglue_multirc",), "super_glue/multirc", 27_243,
    "question-answer options", TFDS_DOCS),
  S("90", QA, "COPA", ("superglue_copa",), "super_glue/copa", 400, "questions", TFDS_DOCS),
  S("91", QA, "Cosmos QA", ("cosmos_qa",), "cosmos_qa", 25_262, "questions", TFDS_DOCS),
  S("92", QA, "OpenBookQA", ("openbookqa",), "openbookqa", 4_957, "questions", TFDS_DOCS),
  S("93", QA, "HellaSwag", ("hellaswag",), "hellaswag", 39_905, "contexts", TFDS_DOCS),
  S("94", QA, "ReCoRD (the unnamed 13th)", ("superglue_record",), "super_glue/record", 100_730,
    "queries", TFDS_DOCS, note="Table 1 counts 13 QA sets and names 12; ReCoRD is our choice"),
  S("95", SUM, "Gigaword", ("gigaword",), "gigaword", 3_803_957, "articles", TFDS_DOCS),
  # ------------------------------------------------------------------ language modelling
  S("96", MLM, "C4 (en)", ("c4_masked_lm",), "c4/en", 364_613_570, "documents", TFDS_DOCS,
    extras=("beam",)),
  S("97", MLM, "Wikipedia (en)", ("wikipedia_masked_lm",), "wikipedia/20230601.en", 6_700_000,
    "articles (approx.)", "English Wikipedia dump of 2023-06-01, about 6.7M articles",
    extras=("beam",)),
)

# Pre-training (§3.3, A.2, Figure 3): text span denoising and masked image denoising.
TEXT_DENOISING, VL_TEXT_DENOISING, IMAGE_DENOISING = (
  "text denoising (pure text)",
  "text denoising (image and class/caption)",
  "image denoising",
)
PRETRAINING: Tuple[Source, ...] = (
  S("P1", TEXT_DENOISING, "C4 (en)", ("c4_masked_lm",), "c4/en", 364_613_570, "documents",
    TFDS_DOCS, extras=("beam",)),
  S("P2", TEXT_DENOISING, "Wikipedia (en)", ("wikipedia_masked_lm",), "wikipedia/20230601.en",
    6_700_000, "articles (approx.)", "English Wikipedia dump of 2023-06-01", extras=("beam",)),
  S("P3", VL_TEXT_DENOISING, "ImageNet-21k", ("imagenet21k_text_denoising",), "uio_imagenet21k",
    11_060_223, "images", "Ridnik et al. 2021, ImageNet-21K-P winter21 train", VISION_ISSUE,
    IMAGENET21K),
  S("P4", VL_TEXT_DENOISING, "YFCC15M", ("yfcc15m_text_denoising",), "uio_yfcc15m", 14_829_396,
    "image-caption pairs", "CLIP's data/yfcc100m.md", VISION_ISSUE, YFCC15M),
  S("P5", VL_TEXT_DENOISING, "RedCaps", ("redcaps_text_denoising",), "uio_redcaps", 12_011_111,
    "image-caption pairs", "Desai et al. 2021", VISION_ISSUE, REDCAPS),
  S("P6", VL_TEXT_DENOISING, "SUN397", ("sun397_text_denoising",), "sun397/tfds", 76_128,
    "images", TFDS_DOCS, extras=("cv2",)),
  S("P7", VL_TEXT_DENOISING, "iNaturalist 2017", ("inaturalist2017_text_denoising",),
    "i_naturalist2017", 579_184, "images", TFDS_DOCS),
  S("P8", VL_TEXT_DENOISING, "ImageNet 2012", ("imagenet2012_text_denoising",), "imagenet2012",
    1_281_167, "images", TFDS_DOCS, release=IMAGENET),
  S("P9", VL_TEXT_DENOISING, "COCO Caption", ("coco_text_denoising",), "coco_captions/2014",
    82_783, "images", "TFDS coco_captions/2014 train (Karpathy)"),
  S("P10", IMAGE_DENOISING, "ImageNet 2012", ("imagenet2012_image_denoising",), "imagenet2012",
    1_281_167, "images", TFDS_DOCS, release=IMAGENET),
  S("P11", IMAGE_DENOISING, "SUN397", ("sun397_image_denoising",), "sun397/tfds", 76_128,
    "images", TFDS_DOCS, extras=("cv2",)),
  S("P12", IMAGE_DENOISING, "iNaturalist 2017", ("inaturalist2017_image_denoising",),
    "i_naturalist2017", 579_184, "images", TFDS_DOCS),
  S("P17", IMAGE_DENOISING, "YFCC15M", ("yfcc15m_image_denoising",), "uio_yfcc15m", 14_829_396,
    "image-caption pairs", "CLIP's data/yfcc100m.md", VISION_ISSUE, YFCC15M),
  S("P18", IMAGE_DENOISING, "RedCaps", ("redcaps_image_denoising",), "uio_redcaps", 12_011_111,
    "image-caption pairs", "Desai et al. 2021", VISION_ISSUE, REDCAPS),
  S("P16", IMAGE_DENOISING, "ImageNet-21k", ("imagenet21k_image_denoising",), "uio_imagenet21k",
    11_060_223, "images", "Ridnik et al. 2021, ImageNet-21K-P winter21 train", VISION_ISSUE,
    IMAGENET21K),
  S("P13", IMAGE_DENOISING, "COCO Caption", ("coco_image_denoising",), "coco_captions/2014",
    82_783, "images", "TFDS coco_captions/2014 train (Karpathy)"),
  S("P14", IMAGE_DENOISING, "COCO (image only)", ("coco2017_image_denoising",), "coco/2017",
    118_287, "images", COCO_IMAGES),
  S("P15", IMAGE_DENOISING, "Visual Genome (image only)", ("vg_image_denoising",),
    "uio_visual_genome", 108_077, "images", VG_IMAGES, VL_ISSUE, VISUAL_GENOME),
)
# fmt: on
