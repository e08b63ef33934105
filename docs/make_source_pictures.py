"""Draws docs/pictures/<task>.png: one task per project-built source, as the model sees it.

    .venv/bin/python docs/make_source_pictures.py [--out=docs/pictures] [--only=vqa_v2,...]

No real release can be downloaded where this project is developed, so the pictures are drawn
from the tiny copies of each release that the builder tests write (tests/test_builder_*.py):
synthetic images, but the real file layout, the real builder, the real task and
`unified_io.data.show`'s drawing (prompt, boxes of the prompt on the image, target). Run it
with real releases by pointing `python -m unified_io.data.show --task=T --data_dir=D` at them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import tensorflow_datasets as tfds  # noqa: E402

from configs import tiny as tiny_config  # noqa: E402
from unified_io.data import show  # noqa: E402

# (task drawn, test module, writer, manual sub-folder it writes, builders it feeds)
SOURCES = (
  ("vg_region_captioning", "visual_genome", "write_release", "uio_visual_genome", None),
  ("vqa_v2", "vqa", "write_vqa_v2", "uio_vqa_v2", None),
  ("okvqa", "vqa", "write_okvqa", "uio_okvqa", None),
  ("aokvqa", "vqa", "write_aokvqa", "uio_aokvqa", None),
  ("vizwiz_grounding", "vizwiz", "write_release", "uio_vizwiz", ("uio_vizwiz/grounding",)),
  ("snli_ve", "snli_ve_imsitu", "write_snli_ve", "uio_snli_ve", None),
  ("imsitu_roles", "snli_ve_imsitu", "write_imsitu", "uio_imsitu", None),
  ("vcr_qa", "vcr_visualcomet", "write_release", "", ("uio_vcr",)),
  ("visualcomet_intent", "vcr_visualcomet", "write_release", "", ("uio_visualcomet",)),
  (
    "coco_keypoints",
    "coco_annotations",
    "write_release",
    "uio_coco2017",
    ("uio_coco2017/keypoints",),
  ),
  (
    "open_images_segmentation",
    "open_images_v6",
    "write_release",
    "uio_open_images_v6",
    ("uio_open_images_v6/segmentation",),
  ),
  ("cc3m_captioning", "web_image_text", "write_cc3m", "uio_cc3m", None),
  ("imagenet21k_classification", "imagenet21k", "write_release", None, ("uio_imagenet21k",)),
  ("framenet_normals", "surface_normals", "write_framenet", "uio_framenet", None),
  ("blendedmvs_normals", "surface_normals", "write_blendedmvs", "uio_blendedmvs", None),
  ("flickr30k_captioning", "flickr30k", "write_release", "uio_flickr30k", None),
)


def _manual_folder(data_dir, module, folder):
  manual = os.path.join(data_dir, "downloads", "manual")
  if folder is None:  # ImageNet-21K-P: the release unpacks into a folder of its own
    return os.path.join(manual, "uio_imagenet21k", module.imagenet21k.TAR_FOLDER)
  return os.path.join(manual, folder)


def draw(task, module_name, writer, folder, builders, data_dir, out_dir):
  import importlib
  import pathlib

  module = importlib.import_module(f"tests.test_builder_{module_name}")
  getattr(module, writer)(pathlib.Path(_manual_folder(data_dir, module, folder)))
  for builder in builders or (folder,):
    tfds.builder(builder, data_dir=data_dir).download_and_prepare(file_format="array_record")
  out = os.path.join(out_dir, f"{task}.png")
  show.show(tiny_config.get_config(), task, 2, out, data_dir=data_dir)
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(ROOT, "docs", "pictures"))
  parser.add_argument("--only", default="", help="comma-separated task names")
  args = parser.parse_args(argv)
  only = set(filter(None, args.only.split(",")))
  os.makedirs(args.out, exist_ok=True)
  for task, module, writer, folder, builders in SOURCES:
    if only and task not in only:
      continue
    with tempfile.TemporaryDirectory() as data_dir:
      print(f"== {task}", flush=True)
      draw(task, module, writer, folder, builders, data_dir, args.out)


if __name__ == "__main__":
  main()
