"""Unified-IO in JAX/Flax: one encoder-decoder for vision, vision-language and NLP tasks."""
