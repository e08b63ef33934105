"""Unified-IO Small (71M parameters without the VQ-GAN): 8+8 layers, d=512, 6 heads.

  python -m unified_io.model --config=configs/small.py
"""
from configs import common


def get_config():
  return common.base_config(emb_dim=512, num_heads=6, num_encoder_layers=8,
                            num_decoder_layers=8, mlp_dim=1024)
