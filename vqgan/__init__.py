"""Frozen VQ-GAN tokenizer for Unified-IO: images (and depth, normals, masks) <-> code grids.

See vqgan/api.py for usage, vqgan/configs.py for the presets, vqgan/model.py for the
architecture and parameter names, vqgan/convert.py for importing released weights.
"""

from vqgan.api import (
  VQGAN,
  decode_code_probabilities,
  decode_codes,
  encode_codes,
  init,
  load,
  load_config,
  save,
)
from vqgan.configs import PRESETS, VQGANConfig, get_config

__all__ = [
  "VQGAN",
  "VQGANConfig",
  "PRESETS",
  "get_config",
  "init",
  "load",
  "load_config",
  "save",
  "encode_codes",
  "decode_codes",
  "decode_code_probabilities",
  "from_taming",
  "from_unified_io",
]


def __getattr__(name):
  # Imported on first use: importing vqgan.convert here would make
  # `python -m vqgan.convert` warn that the module was already imported.
  if name in ("from_taming", "from_unified_io"):
    from vqgan import convert

    return getattr(convert, name)
  raise AttributeError(f"module 'vqgan' has no attribute {name!r}")
