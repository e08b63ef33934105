"""Unified-IO Large (776M parameters without the VQ-GAN): 24+24 layers, d=1024, 16 heads.

  python -m unified_io.model --config=configs/large.py
"""
from configs import common


def get_config():
  return common.base_config(emb_dim=1024, num_heads=16, num_encoder_layers=24,
                            num_decoder_layers=24, mlp_dim=2816)
