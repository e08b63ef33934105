"""Unified-IO Base (241M parameters without the VQ-GAN): 12+12 layers, d=768, 12 heads.

  python -m unified_io.model --config=configs/base.py
"""
from configs import common


def get_config():
  return common.base_config(emb_dim=768, num_heads=12, num_encoder_layers=12,
                            num_decoder_layers=12, mlp_dim=2048)
