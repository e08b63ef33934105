"""Formats and shared utilities: vocabulary layout, locations, tokenizers, image preprocessing, mesh, checkpoints, logs."""
