"""Matrix elements: `diffhep.me.matrix_element` throughput and compile time on this
machine, beside MadGraph5 CUDACPP standalone figures (ANCHORS.md).

Processes: ``g g > t t~``, ``g g > t t~ g g`` and the decay chain
``g g > t t~, t > b u d~, t~ > b~ d u~`` (MadJax's 14-dimensional example). For each:

- compile time of `jit(vmap(kernel))` (`lower(...).compile()`, timed alone);
- events/s of the value, and of value + gradient (`jax.value_and_grad` of the
  batch sum with respect to the momenta and every `SMParameters` field, so
  d|M|²/dp per event and d/dM_t, d/dΓ_t, d/dα_s, …), steady state, with
  `block_until_ready`, median of `repeats` calls;
- at batch sizes 1e4 and 1e5 for the value, 1e4 for the gradient
  (``g g > t t~ g g``: 1e3 and 1e2, as larger batches take minutes per call on
  this 2-core CPU). Compile time is given as wall and CPU seconds.

Compile time of every process (`compile_rows`): trace + lower + compile of
`jit(value)` and `jit(value_and_grad)` (momenta and all parameters) for a batch of
64 events (one vmapped kernel; batches above the chunk size of `_api` add a
`lax.map` loop whose gradient recomputes the kernel: the 1e4 rows above), each in a
fresh Python process, so that no JAX cache is shared.

Momenta are on shell (tops, W and b of the decay chain at their pole masses, via
sequential two-body decays), √s = 1500 GeV for the 2 → n processes. XLA may use
every core of the machine; the CUDACPP anchors are per thread and per 2 cores,
measured on the same development CPU (ANCHORS.md; not rerun here: no MadGraph).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from _harness import time_jax

# MadGraph5 CUDACPP standalone, fp64, development CPU (ANCHORS.md, 2026-11-23).
CUDACPP = {
    "g g > t t~": {"1 thread AVX-512": 1.08e6, "2 cores AVX-512/256": 2.17e6, "1 thread scalar": 3.5e5},
    "g g > t t~ g g": {"1 thread AVX-512/512": 2.0e4, "2 cores AVX-512/256": 3.1e4, "1 thread scalar": 3.5e3},
}
# The same on an H100 (ANCHORS.md): the peer of a GPU run.
CUDACPP_H100 = {"g g > t t~": {"fp64": 2.45e8, "fp32": 6.75e8}, "g g > t t~ g g": {"fp64": 1.6e6}}
DECAY_CHAIN = "g g > t t~, t > b u d~, t~ > b~ d u~"


def _two_body(rng, parent: np.ndarray, m1: float, m2: float) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised isotropic decays `(n, 4)` → two `(n, 4)` arrays (lab frame)."""
    mass = np.sqrt(parent[:, 0] ** 2 - np.sum(parent[:, 1:] ** 2, -1))
    p = np.sqrt((mass**2 - (m1 + m2) ** 2) * (mass**2 - (m1 - m2) ** 2)) / (2 * mass)
    n = rng.normal(size=(len(parent), 3))
    n *= (p / np.linalg.norm(n, axis=-1))[:, None]
    d = [np.concatenate([np.sqrt(m * m + p * p)[:, None], s * n], -1) for m, s in ((m1, 1.0), (m2, -1.0))]
    beta = parent[:, 1:] / parent[:, :1]
    b2 = np.sum(beta**2, -1)
    gamma = 1 / np.sqrt(1 - b2)
    out = []
    for q in d:
        bp = np.sum(beta * q[:, 1:], -1)
        safe = np.where(b2 > 0, b2, 1.0)
        coef = np.where(b2 > 0, (gamma - 1) * bp / safe, 0.0) + gamma * q[:, 0]
        out.append(np.concatenate([(gamma * (q[:, 0] + bp))[:, None], q[:, 1:] + coef[:, None] * beta], -1))
    return out[0], out[1]


def make_events(process: str, n: int, seed: int, mt: float = 173.0, mw: float = 80.419, mb: float = 4.7) -> np.ndarray:
    """`(n, n_external, 4)` on-shell momenta in GeV for one of the benchmarked processes."""
    rng = np.random.default_rng(seed)
    e = 750.0
    beams = np.broadcast_to(np.array([[e, 0, 0, e], [e, 0, 0, -e]]), (n, 2, 4))
    total = beams.sum(1)
    n_gluons = {"g g > t t~ g": 1, "g g > t t~ g g": 2}.get(process, 0)
    if n_gluons:
        gluons = []
        for _ in range(n_gluons):
            k = rng.uniform(50, 300, size=n)
            d = rng.normal(size=(n, 3))
            d /= np.linalg.norm(d, axis=-1, keepdims=True)
            gluons.append(np.concatenate([k[:, None], k[:, None] * d], -1))
        rest = total
        for g in gluons:
            rest = rest - g
        t, tbar = _two_body(rng, rest, mt, mt)
        return np.concatenate([beams, np.stack([t, tbar, *gluons], 1)], 1)
    t, tbar = _two_body(rng, total, mt, mt)
    if process == "g g > t t~":
        return np.concatenate([beams, np.stack([t, tbar], 1)], 1)
    b, wp = _two_body(rng, t, mb, mw)
    u, dbar = _two_body(rng, wp, 0.0, 0.0)
    bbar, wm = _two_body(rng, tbar, mb, mw)
    d, ubar = _two_body(rng, wm, 0.0, 0.0)
    return np.concatenate([beams, np.stack([b, u, dbar, bbar, d, ubar], 1)], 1)


def _bench_one(process: str, n: int, dtype, repeats: int, seed: int, gradient: bool) -> dict[str, Any]:
    import diffhep.me as me

    momenta = jax.block_until_ready(jnp.asarray(make_events(process, n, seed), dtype=dtype))
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype=dtype), me.SMParameters.from_param_card())

    def value(p, q):
        return me.matrix_element(process, p, q)

    def value_and_grad(p, q):
        return jax.value_and_grad(lambda p, q: jnp.sum(value(p, q)), argnums=(0, 1))(p, q)

    fn = value_and_grad if gradient else value
    # Wall time and this process's CPU time: on a shared machine the wall time of a
    # (mostly single-threaded) XLA compile grows with the load, the CPU time much less.
    start, cpu_start = time.perf_counter(), time.process_time()
    compiled = jax.jit(fn).lower(momenta, params).compile()
    compile_s, compile_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    timing = time_jax(compiled, momenta, params, repeats=repeats)
    out = timing.pop("output")
    values = out[0] if gradient else out
    if not bool(jnp.all(jnp.isfinite(values))):
        raise AssertionError(f"non-finite |M|² for {process}")
    return {
        "process": process,
        "batch": n,
        "dtype": str(momenta.dtype),
        "gradient": gradient,
        "compile_s": compile_s,
        "compile_cpu_s": compile_cpu_s,
        **timing,
        "events_per_s": n / timing["steady_s"],
    }


def compile_time(process: str, gradient: bool, batch: int = 64, wrt: str = "both") -> dict[str, Any]:
    """Trace + lower + compile of `jit(value)` or `jit(value_and_grad)` in this process.

    Run it in a fresh process (`compile_time_fresh`): JAX caches traces and compiled
    executables per process.
    """
    jax.config.update("jax_enable_x64", True)
    import diffhep.me as me

    n = me.get_process(process).n_external
    momenta = jax.ShapeDtypeStruct((batch, n, 4), jnp.float64)
    params = me.SMParameters.from_param_card()

    def value(p, q):
        return me.matrix_element(process, p, q)

    argnums = {"both": (0, 1), "momenta": (0,), "params": (1,)}[wrt]

    def value_and_grad(p, q):
        return jax.value_and_grad(lambda p, q: jnp.sum(value(p, q)), argnums=argnums)(p, q)

    start, cpu_start = time.perf_counter(), time.process_time()
    lowered = jax.jit(value_and_grad if gradient else value).lower(momenta, params)
    lower_s, lower_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    lowered.compile()
    return {
        "process": process,
        "gradient": gradient,
        "wrt": wrt if gradient else None,
        "batch": batch,
        "trace_lower_s": lower_s,
        "total_s": time.perf_counter() - start,
        "total_cpu_s": time.process_time() - cpu_start,
        "compile_cpu_s": time.process_time() - cpu_start - lower_cpu_s,
        "load_average_1": os.getloadavg()[0],
    }


def _run_self(*args: str, env: dict[str, str] | None = None, all_cores: bool = False) -> dict[str, Any]:
    """This file run with `args` in a new Python process (same interpreter); its last
    line of output, JSON. `all_cores`: on every core of the machine, even if this
    process is pinned to one (taskset)."""
    cores = range(os.cpu_count() or 1)
    out = subprocess.run(
        [sys.executable, __file__, *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if all_cores and hasattr(os, "sched_setaffinity") else None,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def compile_time_fresh(process: str, gradient: bool, batch: int = 64, wrt: str = "both") -> dict[str, Any]:
    """`compile_time` in a new Python process."""
    return _run_self("--compile-time", process, str(int(gradient)), str(batch), wrt)


# (process, batch, gradient) on two CPU devices, against CUDACPP on both cores.
TWO_DEVICE_CASES = [
    ("g g > t t~", 100_000, False), ("g g > t t~", 10_000, True),
    ("g g > t t~ g g", 2_048, False), (DECAY_CHAIN, 100_000, False),
]  # fmt: skip


def _bench_two_devices(process: str, n: int, gradient: bool) -> dict[str, Any]:
    """`--one` with two XLA CPU devices on every core of the machine."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    return _run_self("--one", process, str(n), "float64", str(int(gradient)), env=env, all_cores=True)


def run(repeats: int = 2, seed: int = 20261125, float32: bool = True) -> dict[str, Any]:
    # float64 for this benchmark (the library never flips this flag).
    jax.config.update("jax_enable_x64", True)
    accelerator = jax.default_backend() != "cpu"
    import diffhep.me as me

    if accelerator:
        # A GPU needs ≳ 10⁶ events in flight; the fresh-process compile rows are the
        # CPU's question (the decay chain's < 10 s) and would cost minutes of device time.
        cases = [
            ("g g > t t~", 1_000_000, False), ("g g > t t~", 1_000_000, True),
            ("g g > t t~ g g", 10_000, False), ("g g > t t~ g g", 10_000, True),
            (DECAY_CHAIN, 1_000_000, False), (DECAY_CHAIN, 100_000, True),
        ]  # fmt: skip
        f32_cases = [("g g > t t~", 1_000_000, False), ("g g > t t~ g g", 10_000, False)]
        compile_cases = []
    else:
        # (process, batch, gradient). g g > t t~ g g and the gradients at smaller
        # batches: larger ones take minutes per call on this 2-core CPU.
        cases = [
            ("g g > t t~", 10_000, False), ("g g > t t~", 100_000, False), ("g g > t t~", 10_000, True),
            ("g g > t t~ g g", 1_000, False), ("g g > t t~ g g", 100, True),
            (DECAY_CHAIN, 10_000, False), (DECAY_CHAIN, 100_000, False), (DECAY_CHAIN, 10_000, True),
        ]  # fmt: skip
        f32_cases = [("g g > t t~", 100_000, False)]
        compile_cases = [(p, g, "both") for p in me.processes() for g in (False, True)]
        compile_cases += [(DECAY_CHAIN, True, "momenta"), (DECAY_CHAIN, True, "params")]
    compile_rows = []
    for process, gradient, wrt in compile_cases:
        compile_rows.append(compile_time_fresh(process, gradient, wrt=wrt))
        r = compile_rows[-1]
        print(
            f"  {process!r} grad={gradient} wrt={r['wrt']}: trace+lower+compile {r['total_s']:.2f} s "
            f"(CPU {r['total_cpu_s']:.2f} s; load {r['load_average_1']:.1f})",
            flush=True,
        )
    rows = []
    for process, n, gradient in cases:
        rows.append(_bench_one(process, n, jnp.float64, repeats, seed, gradient))
        r = rows[-1]
        print(
            f"  {process!r} n={n} grad={gradient} f64: compile {r['compile_s']:.2f} s "
            f"(CPU {r['compile_cpu_s']:.2f} s), {r['events_per_s']:.3g}/s",
            flush=True,
        )
    if float32:
        for process, n, gradient in f32_cases:
            rows.append(_bench_one(process, n, jnp.float32, repeats, seed, gradient))
            r = rows[-1]
            print(
                f"  {process!r} n={n} grad={gradient} f32: compile {r['compile_s']:.2f} s, {r['events_per_s']:.3g}/s",
                flush=True,
            )

    two_device_rows = [] if accelerator else [_bench_two_devices(*case) for case in TWO_DEVICE_CASES]
    for r in two_device_rows:
        print(f"  two CPU devices: {r['process']!r} n={r['batch']} grad={r['gradient']}: {r['events_per_s']:.3g}/s", flush=True)

    def best(process: str, gradient: bool = False, dtype: str = "float64") -> dict[str, Any]:
        sel = [r for r in rows if r["process"] == process and r["gradient"] == gradient and r["dtype"] == dtype]
        return max(sel, key=lambda r: r["events_per_s"])

    ttgg = best("g g > t t~ g g")
    # The peer on as many cores as this run had: pinned to one core (taskset), the
    # 1-thread AVX-512 anchors; otherwise the 2-core ones. On a GPU, CUDACPP on the H100.
    one_core = hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) == 1
    if accelerator:
        peer_key = {"g g > t t~": "H100 fp64", "g g > t t~ g g": "H100 fp64"}
        peer = {proc: CUDACPP_H100[proc]["fp64"] for proc in peer_key}
    else:
        peer_key = {"g g > t t~": "1 thread AVX-512", "g g > t t~ g g": "1 thread AVX-512/512"} if one_core else {
            "g g > t t~": "2 cores AVX-512/256", "g g > t t~ g g": "2 cores AVX-512/256"
        }
        peer = {proc: CUDACPP[proc][key] for proc, key in peer_key.items()}
    peer_rate = peer["g g > t t~ g g"]
    return {
        "settings": {
            "repeats": repeats,
            "seed": seed,
            "sqrt_s_GeV": 1500.0,
            "momenta": "on shell; t, t~, W, b at pole masses for the decay chain",
            "gradient": "value_and_grad of the batch sum w.r.t. momenta and all SMParameters fields",
            "peer": "MadGraph5 CUDACPP standalone, fp64, same development CPU (ANCHORS.md, not rerun)",
            # Which cores and XLA threading this run had (e.g. pinned with taskset on a shared machine).
            "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "xla_flags": os.environ.get("XLA_FLAGS"),
            "compile_time_measure": "CPU seconds of the compiling process are the load-robust number; wall seconds grow with the machine load",
        },
        "rows": rows,
        "compile_rows": compile_rows,
        "two_devices": {
            "how": "a subprocess on every core of the machine with --xla_force_host_platform_device_count=2; "
            "matrix_element splits the events over the two devices (shard_map)",
            "rows": two_device_rows,
            "ratios_vs_cudacpp_2_cores": {
                f"{r['process']} value": r["events_per_s"] / CUDACPP[r["process"]]["2 cores AVX-512/256"]
                for r in two_device_rows
                if r["process"] in CUDACPP and not r["gradient"]
            },
        },
        "cudacpp_anchors_per_s": CUDACPP_H100 if accelerator else CUDACPP,
        "cudacpp_peer_same_cores": peer_key,
        "ratios_vs_cudacpp_same_cores": {
            "g g > t t~ value": best("g g > t t~")["events_per_s"] / peer["g g > t t~"],
            "g g > t t~ value+grad": best("g g > t t~", True)["events_per_s"] / peer["g g > t t~"],
            "g g > t t~ g g value": ttgg["events_per_s"] / peer_rate,
            "g g > t t~ g g value+grad": best("g g > t t~ g g", True)["events_per_s"] / peer_rate,
        },
        "decay_chain_compile_s": {
            "value_wall": best(DECAY_CHAIN)["compile_s"],
            "value_cpu": best(DECAY_CHAIN)["compile_cpu_s"],
            "value_and_grad_wall": best(DECAY_CHAIN, True)["compile_s"],
            "value_and_grad_cpu": best(DECAY_CHAIN, True)["compile_cpu_s"],
            "madjax_reference_s": 132.0,
            "fresh_process_batch_64": {
                (f"value_and_grad wrt {r['wrt']}" if r["gradient"] else "value"): {
                    "wall": r["total_s"],
                    "cpu": r["total_cpu_s"],
                }
                for r in compile_rows
                if r["process"] == DECAY_CHAIN
            },
        },
        "summary": {
            "diffhep_events_per_s": ttgg["events_per_s"],
            "diffhep_first_call_s": ttgg["first_call_s"],
            "diffhep_compile_s": ttgg["compile_s"],
            "peer": f"MadGraph5 CUDACPP g g > t t~ g g ({peer_key['g g > t t~ g g']})",
            "peer_events_per_s": peer_rate,
            "ratio": ttgg["events_per_s"] / peer_rate,
        },
    }


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--compile-time":
        print(json.dumps(compile_time(sys.argv[2], bool(int(sys.argv[3])), int(sys.argv[4]), sys.argv[5])))
    elif len(sys.argv) == 6 and sys.argv[1] == "--one":
        # One row (e.g. on a GPU with little device time left): PROCESS N DTYPE GRAD.
        jax.config.update("jax_enable_x64", True)
        row = _bench_one(sys.argv[2], int(float(sys.argv[3])), jnp.dtype(sys.argv[4]), 3, 20261125, bool(int(sys.argv[5])))
        print(json.dumps({"device_kind": jax.devices()[0].device_kind, "n_devices": jax.device_count(), **row}))
    else:
        sys.exit(
            "usage: python benchmarks/run.py me   (or: bench_me.py --compile-time PROCESS GRAD BATCH WRT,"
            " bench_me.py --one PROCESS N DTYPE GRAD)"
        )
