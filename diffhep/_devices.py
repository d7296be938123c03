"""Data parallelism over events with JAX's own sharding (`jax.shard_map`).

Event batches are split along their first axis over the default backend's devices:
every device runs the per-event kernels on its own events, with no communication
until a reduction (a histogram) needs it. On a CPU, XLA shows one device unless
`--xla_force_host_platform_device_count` says otherwise (the `diffhep` command
line sets it to the number of cores; see `cpu_devices_flag`); with one device, or a
batch that the devices do not divide, everything runs unsharded.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, PartitionSpec

EVENTS = "events"
"""Mesh axis name of the event dimension."""

_FLAG = "--xla_force_host_platform_device_count"


def event_mesh(n_events: int) -> Mesh | None:
    """A 1-D mesh over the default backend's devices for a batch of `n_events`, or
    None where sharding does not apply (one device, or `n_events` not divisible)."""
    devices = jax.devices()
    if len(devices) <= 1 or int(n_events) % len(devices):
        return None
    return Mesh(np.asarray(devices), (EVENTS,))


def n_shards(n_events: int) -> int:
    mesh = event_mesh(n_events)
    return 1 if mesh is None else mesh.size


def over_events(fn, n_events: int, n_sharded: int, n_replicated: int = 0):
    """`fn(*sharded, *replicated)` run per device on its share of the events: the first
    `n_sharded` arguments (PyTrees) are split along axis 0, the rest replicated, and
    every output is split along axis 0. Plain `fn` where `event_mesh` is None."""
    mesh = event_mesh(n_events)
    if mesh is None:
        return fn
    specs = (PartitionSpec(EVENTS),) * n_sharded + (PartitionSpec(),) * n_replicated
    return jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=PartitionSpec(EVENTS), check_vma=False)


def cpu_devices_flag(n: int | None = None) -> None:
    """Ask XLA for `n` CPU devices (default: the cores this process may use), so that
    `over_events` can use every core. Only an application entry point should call
    this, before JAX starts its backends; an `XLA_FLAGS` that already sets the count
    wins. (Importing diffhep never calls it.)"""
    flags = os.environ.get("XLA_FLAGS", "")
    if _FLAG in flags:
        return
    if n is None:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}={int(n)}".strip()


class WorkSizes(NamedTuple):
    """Batch sizes of the sequential loops over events, per backend."""

    cascade_lanes: int
    """Work-queue lanes of `shower.cascade_structures`."""
    cascade_unroll: int
    """Work-queue steps of `shower.cascade_structures` per test of its loop condition
    (each test is a device-to-host copy on an accelerator)."""
    steps_batch: int
    """Events per `lax.map` step of the shower's colour ordering."""
    realize_chunk: int
    """Events per chunk of `shower.realize`."""
    me_lanes: int
    """Helicity × event × call lanes per sequential step of `me.matrix_element`."""
    me_min_events: int
    """Events per sequential step of `me.matrix_element`, at least."""
    me_max_chunk: int
    """Events per chunk of `me.matrix_element`, at most."""
    mtop_batch: int
    """Events per `lax.map` step of the top-mass likelihood (12 × n_int points each)."""
    observable_scale: int
    """Factor on the per-step event chunks of the O(n²)–O(n³) event shapes."""
    emission_tiers: tuple[int, ...]
    """Emission-slot counts of the shower's small branches (`_shower._by_busiest`): a
    chunk runs on the smallest that holds its busiest event."""
    skip_steps: bool
    """Whether the shower's per-emission loops stop at each chunk's busiest event (a
    `lax.cond` per step, and a `while_loop` in the colour ordering), or run to the
    chunk's tier with a static trip count. A GPU syncs with the host at every such
    branch and copies the skipped steps' carry (H100, 2·10⁶ events: 2 178 device
    copies, 12 ms of `realize`'s 109), so there the tiers are fine enough instead."""
    bucket_sizes: tuple[int, ...]
    """Default sizes of `observables.MultiplicityBuckets` (thrust costs O(n³): an event
    of 9 partons costs (12/9)³ = 2.4× in a bucket of 12)."""


# A CPU core wants small batches that stay in cache (these were tuned on a 2-core
# Xeon: 4x over one big vmap for the cascade); a GPU wants ≳ 10⁵ threads in flight
# per kernel and pays a launch per loop iteration, so it gets batches 64-128x larger.
# realize on an H200, 2·10⁶ events, float64: 0.27 s in chunks of 2¹⁶, 0.21 s in 2¹⁸,
# 0.58 s in one (each chunk's scan runs to its busiest event; the chunks of events
# sorted by emissions stop early). Other sizes moved their phase by < 10 %.
# Matrix elements on one CPU core (helicity recycling by broadcasting): 2¹⁴ lanes per
# step, g g > t t~ 3.9e5/s (2¹³: 3.7e5, 2¹⁵: 3.7e5); g g > t t~ g g at 16 events per step
# 1.35e3/s (8: 1.09e3, 32: 1.27e3); before, 2¹⁹ lanes gave 1.0e5 and 350.
# On an H100, 2²² lanes is the fastest of 2²², 2²⁴, 2²⁶ for g g > t t~ and the decay chain
# (`me._api.chunk_size` has the numbers and the exception, g g > t t~ g g).
_CPU_SIZES = WorkSizes(
    cascade_lanes=1024,
    cascade_unroll=1,
    steps_batch=1024,
    realize_chunk=512,
    me_lanes=2**14,
    me_min_events=16,
    me_max_chunk=16384,
    mtop_batch=8,
    observable_scale=1,
    # More tiers compile more branches: one core, 10⁵ events, tiers (8, 16): colour
    # order 0.434 → 0.391 s, realize 0.787 → 0.737 s, but compiles +0.8 s and +2.8 s,
    # which the 60 s CPU demo cannot spare.
    emission_tiers=(16,),
    skip_steps=True,
    # Finer buckets: 2 cores, 10⁵ events, thrust 0.81 → 0.67 s but compiles +4 s.
    bucket_sizes=(4, 8, 12, 16, 24, 32, 48, 64, 96, 128),
)
_ACCELERATOR_SIZES = WorkSizes(
    cascade_lanes=2**17,
    # H100, float32, 2·10⁶ events: ≈ 170 steps of 2¹⁷ lanes take 44 ms; 2¹⁹ lanes (≈ 64
    # steps) also 44 ms, so a step costs ≈ 0.12 ms + 1.1 ns per lane. Steps per test of
    # the loop condition (stop 23, `profile_shower.py --sweep unroll`): 1, 4, 8 took
    # 45.1, 44.1, 44.5 ms, so the per-step cost is kernel launches, not predicate syncs.
    cascade_unroll=4,
    steps_batch=2**16,
    realize_chunk=2**18,
    me_lanes=2**22,
    me_min_events=16,
    me_max_chunk=2**17,
    mtop_batch=1024,
    observable_scale=32,
    # H100, float32, 2·10⁶ events (stop 20), steps still skipped: finer buckets, thrust
    # 82 → 59 ms; tiers (4 … 32) against (16,), realize 93.5 → 87 ms (its compile
    # 15 → 32 s), colour order 43.5 → 38 ms. All three choices together: shower +
    # thrust 7.3e6 → 8.1e6 events/s (4·10⁶: 8.1e6 → 9.3e6).
    emission_tiers=(4, 8, 12, 16, 24, 32),
    skip_steps=False,
    bucket_sizes=(4, 6, 8, 10, 12, 14, 16, 18, 20, 24, 32, 48, 64, 96, 128),
)


def work_sizes() -> WorkSizes:
    """The `WorkSizes` of the default backend (read at trace time)."""
    return _CPU_SIZES if jax.default_backend() == "cpu" else _ACCELERATOR_SIZES


def observable_chunk(chunk: int, n: int, cache_elements: int | None = None) -> int:
    """Events per step of an event-shape kernel written for `chunk` events on a CPU,
    on the default backend, for events of `n` slots.

    On a CPU, with `cache_elements` given (for kernels with O(n³) intermediates per
    event), the chunk is cut to the largest power of two ≤ `cache_elements / n³`, at
    least 8, so that a step's intermediates stay in cache: exact thrust on one core,
    2048 events of 24 slots, takes 22 µs per event in steps of 8 and 63 µs in steps
    of 512 (n = 12: 5.2 vs 6.8 µs, n = 8: 1.5 vs 2.0 µs). On an accelerator:
    ×`observable_scale`, but at most ≈ 2²⁸ elements of the O(n³) intermediates
    (2 GiB in float64) per step.
    """
    scale = work_sizes().observable_scale
    if not chunk:
        return chunk
    if scale == 1:
        if cache_elements is None:
            return chunk
        fits = max(1, cache_elements // max(n, 1) ** 3)
        return max(8, min(chunk, 1 << (fits.bit_length() - 1)))
    return int(min(chunk * scale, max(chunk, 2**28 // max(n, 1) ** 3)))


def device_label() -> str:
    """`platform:kind`, with `×n` where the default backend has n > 1 devices
    (e.g. `cpu:cpu×2`), for result files."""
    devices = jax.devices()
    d = devices[0]
    return f"{d.platform}:{d.device_kind}" + (f"×{len(devices)}" if len(devices) > 1 else "")
