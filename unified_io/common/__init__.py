"""Formats and shared utilities: vocabulary layout, locations, tokenizers, images, mesh,
checkpoints, run logs."""
