"""Ahead-of-time compilation of the train and decoding steps for a TPU slice, on a CPU.

`python -m unified_io.aot` (__main__.py) is the command; `steps.analyse` compiles and
measures, `report` turns the numbers into the table, the verdict and the advice.
"""
