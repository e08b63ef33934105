"""Configs for `python -m vqgan.train` (VQ-GAN tokenizer training); see builtin.py."""
