"""Evaluation: predictions, output kinds and their scorers, metrics, reports, GRIT."""
