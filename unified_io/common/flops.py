"""FLOP accounting: a compiled step's FLOPs and a device's peak, for utilisation estimates.

The trainer's progress line and benchmarks/train_step.py both report
    utilisation = step FLOPs per device (XLA cost analysis) x steps/s / peak FLOP/s per device.
XLA counts the FLOPs of the partitioned program each device runs, so the ratio is per device
and holds for any mesh. Peaks are the vendors' dense bf16 figures for accelerators; a CPU
has no such figure, so its "peak" is a float32 matmul rate measured on the spot (the same
yardstick the benchmark uses). Override with config.train.peak_flops_per_device.
"""

from __future__ import annotations

import time
from typing import Optional, Tuple

import jax
import jax.numpy as jnp

# Dense bf16 FLOP/s per device (one JAX device: a TPU core pair / chip, one GPU).
PEAK_FLOPS_BY_KIND = {
  "TPU v2": 22.5e12,
  "TPU v3": 61.5e12,
  "TPU v4": 275e12,
  "TPU v5 lite": 197e12,
  "TPU v5e": 197e12,
  "TPU v5p": 459e12,
  "TPU v6 lite": 918e12,
  "TPU v6e": 918e12,
  "NVIDIA A100": 312e12,
  "NVIDIA H100": 989e12,
  "NVIDIA H200": 989e12,
  "NVIDIA L4": 121e12,
  "NVIDIA A10": 125e12,
  "NVIDIA V100": 125e12,
}


def cost(compiled) -> Tuple[float, float]:
  """(FLOPs, bytes accessed) per device of a compiled computation (XLA cost analysis)."""
  analysis = compiled.cost_analysis()
  analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
  analysis = analysis or {}
  return float(analysis.get("flops", 0.0)), float(analysis.get("bytes accessed", 0.0))


def matmul_flops_per_s(n: int = 2048, repeats: int = 5) -> float:
  """Measured float32 matmul FLOP/s of the default device."""
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  start = time.perf_counter()
  for _ in range(repeats):
    out = f(a)
  out.block_until_ready()
  return 2 * n**3 * repeats / (time.perf_counter() - start)


def peak_flops_per_device(override: float = 0.0) -> Tuple[float, str]:
  """(peak FLOP/s of one device, where the figure comes from)."""
  if override:
    return float(override), "config"
  kind = jax.devices()[0].device_kind
  for name, peak in PEAK_FLOPS_BY_KIND.items():
    if kind.lower().startswith(name.lower()):
      return peak, f"{name} bf16 spec"
  if jax.default_backend() == "cpu":
    return matmul_flops_per_s(n=1024, repeats=10), "measured f32 matmul"
  return 0.0, f"unknown device kind {kind!r}"


def utilisation(step_flops: float, steps_per_s: float, peak: float) -> Optional[float]:
  if not step_flops or not peak:
    return None
  return step_flops * steps_per_s / peak
