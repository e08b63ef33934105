"""FLOP accounting used by the trainer's progress line and the step benchmark."""

import jax
import jax.numpy as jnp

from unified_io.common import flops


def test_cost_of_a_matmul_is_two_m_k_n():
  m, k, n = 8, 32, 16
  compiled = jax.jit(lambda a, b: a @ b).lower(jnp.ones((m, k)), jnp.ones((k, n))).compile()
  step_flops, bytes_accessed = flops.cost(compiled)
  assert step_flops == 2 * m * k * n
  assert bytes_accessed >= 4 * (m * k + k * n + m * n)


def test_peak_and_utilisation():
  assert flops.peak_flops_per_device(5e12) == (5e12, "config")
  peak, source = flops.peak_flops_per_device()
  assert peak > 0 and source == "measured f32 matmul"  # the CPU test box
  assert flops.utilisation(1e9, 2.0, 4e9) == 0.5
  assert flops.utilisation(0.0, 2.0, 4e9) is None
