"""Multi-process helpers: starting JAX's distributed runtime, barriers, agreeing on flags."""

import os

import jax
import numpy as np


def initialize_distributed(coordinator_address, num_processes, process_id):
  if coordinator_address:
    # Only affects the CPU backend: lets CPU-only multi-process runs (and tests) all-reduce.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  elif "," in os.environ.get("TPU_WORKER_HOSTNAMES", ""):
    jax.distributed.initialize()  # TPU pod: every worker discovers the others


def _client():
  from jax._src import distributed

  return distributed.global_state.client


def host_barrier(name, timeout_s=1800):
  """Waits until every process reaches `name` (no-op with one process).

  Uses the coordination service, not a device collective, so a slow host (e.g. still
  compiling) cannot trip the collectives' short connection timeout.
  """
  if jax.process_count() > 1:
    _client().wait_at_barrier(name, timeout_in_ms=timeout_s * 1000)


def any_host(flag):
  """True on every process if `flag` is true on any process."""
  if jax.process_count() == 1:
    return bool(flag)
  from jax.experimental import multihost_utils

  return bool(np.max(multihost_utils.process_allgather(np.int32(bool(flag)))))


def all_gather_bytes(key: str, payload: bytes, timeout_s=1800) -> list:
  """Every process's `payload` in process order, through the coordination service.

  For host-side results of any size and shape (evaluation predictions), where a device
  all-gather would need equal shapes. `key` must be unique per call.
  """
  if jax.process_count() == 1:
    return [payload]
  client = _client()
  client.key_value_set_bytes(f"{key}/{jax.process_index()}", payload)
  return [
    client.blocking_key_value_get_bytes(f"{key}/{i}", timeout_s * 1000)
    for i in range(jax.process_count())
  ]
