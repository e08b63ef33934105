"""The unified-example shapes the data and evaluation tests build examples with: the
shipped 2k-piece SentencePiece model and the built-in VQ-GAN's 64x64 images <-> 8x8 codes
(vqgan/weights/builtin), at text lengths each test picks."""

import os

from unified_io.common import text_tokenizer
from unified_io.data import pipeline
from vqgan import configs as vq_configs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENIZER = os.path.join(ROOT, "tokenizers/uio_tiny_2k.model")


def tiny_spec(text_inputs: int, text_targets: int, patch_size: int = 16) -> pipeline.ExampleSpec:
  vq = vq_configs.get_config("builtin")
  return pipeline.ExampleSpec(
    tokenizer=text_tokenizer.TextTokenizer(TOKENIZER, 512, expected_text_size=2000),
    text_inputs=text_inputs,
    text_targets=text_targets,
    input_image_size=64,
    patch_size=patch_size,
    target_image_size=vq.resolution,
    target_downsample=vq.downsample_factor,
  )
