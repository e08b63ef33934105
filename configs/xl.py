"""Unified-IO XL (2.9B parameters without the VQ-GAN): 24+24 layers, d=2048, 32 heads.

  python -m unified_io.model --config=configs/xl.py

The released XL checkpoint has 8 segment embeddings (only 2 are used); kept so it loads.
"""
from configs import common


def get_config():
  return common.base_config(emb_dim=2048, num_heads=32, num_encoder_layers=24,
                            num_decoder_layers=24, mlp_dim=5120, num_segment_embeddings=8)
