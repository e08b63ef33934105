"""Datasets and task preprocessing for Unified-IO.

`builtin_dataset` holds the embedded default dataset (synthetic scenes and templated text,
no download); importing it registers the TFDS builder `uio_builtin_scenes`. Nothing is
imported here so that `import unified_io.data.<module>` stays cheap.
"""
