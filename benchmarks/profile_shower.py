"""Where the shower + thrust time goes, phase by phase, and how the per-backend batch
sizes (`diffhep._devices.WorkSizes`) move it: a diagnostic for tuning, not a result
for the README (that is `bench_shower.py`).

Each phase is timed on its own with `block_until_ready` (median of `--repeats` calls
after a first, compiling one). With `--sweep`, one phase is re-timed with one batch
size changed (`jax.clear_caches()` in between, so the new size is traced).

    python benchmarks/profile_shower.py --events 2000000 [--float32] [--sweep] --out DIR
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def _timed(fn, repeats):
    import jax

    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - start
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(fn())
        runs.append(time.perf_counter() - start)
    return {"first_s": round(first, 4), "steady_s": round(statistics.median(runs), 4)}, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--float32", action="store_true")
    ap.add_argument(
        "--sweep", nargs="?", const="sizes,tiers,skip,buckets,unroll", default="",
        help="comma list of what to re-time: sizes (batch sizes), tiers (slot tiers), skip (skipped steps), buckets (thrust bucket sizes), unroll (cascade steps per loop test); bare: all",
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--trace", action="store_true", help="also write a Perfetto trace of one layout, realize and thrust call to OUT/trace")
    args = ap.parse_args(argv)

    import jax

    if not args.float32:
        jax.config.update("jax_enable_x64", True)
    import equinox as eqx
    import jax.random as jr

    from diffhep import _devices, observables, shower
    from diffhep.shower import _shower

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _harness import trace_summary, trace_top, work_sizes_changed

    n, r = args.events, args.repeats
    model = shower.DiscreteQCD(alpha_s=0.118)
    key = jr.key(20261126)
    result: dict = {
        "device": _devices.device_label(),
        "jax": jax.__version__,
        "dtype": str(model.alpha_s.dtype),
        "n_events": n,
        "sizes": _devices.work_sizes()._asdict(),
        "phases": {},
        "sweep": [],
    }

    def tau(p, m):
        return 1.0 - observables.thrust(p, m)

    def phases(tag: str, which: set[str]):
        out = {}
        keys = jr.split(key, n)
        if "structures" in which or "steps" in which:
            out["structures"], st = _timed(lambda: _shower._structures(keys, model), r)
        if "steps" in which:
            out["emission_order"], (order, busiest) = _timed(lambda: _shower._emission_order(st), r)
            n_used = int(min(model.capacity - 2, max(8, -(-busiest // 8) * 8)))
            out["steps"], _ = _timed(lambda: _shower._steps(st, order, model, n_used), r)
        lay = shower.layout(key, model, n)
        if "layout" in which:
            out["layout_total"], lay = _timed(lambda: shower.layout(key, model, n), r)
        if "realize" in which or "thrust" in which:
            out["realize"], (ev, _) = _timed(lambda: shower.realize(lay, model), r)
        if "thrust" in which:
            out["buckets"], b = _timed(lambda: observables.MultiplicityBuckets(lay.mask), r)
            out["bucket_rows"] = b.rows
            thrust_all = eqx.filter_jit(lambda b, p, m: b.apply(tau, p, m))
            out["thrust_buckets"], _ = _timed(lambda: thrust_all(b, ev.momenta, ev.mask), r)
            for size, idx in zip(b.sizes, b.index):
                one = eqx.filter_jit(
                    lambda idx, p, m, size=size: observables._buckets._bucket_dense(tau, size, idx, b.order, p, m)
                )
                out[f"thrust_size{size}"], _ = _timed(lambda one=one, idx=idx: one(idx, ev.momenta, ev.mask), r)
            fused = eqx.filter_jit(lambda lay, model, b: b.apply(tau, *(lambda e: (e.momenta, e.mask))(shower.realize(lay, model)[0])))
            out["realize_plus_thrust_jit"], _ = _timed(lambda: fused(lay, model, b), r)
        if tag == "default":
            result["phases"] = out
        else:
            result["sweep"].append({"setting": tag, **out})
        print(tag, json.dumps(out), flush=True)
        save()

    def save():
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            name = f"profile-shower-{result['dtype']}.json"
            (args.out / name).write_text(json.dumps(result, indent=1))

    phases("default", {"structures", "steps", "layout", "realize", "thrust"})
    if args.trace and args.out:
        # Kernel-level times as JSON (Perfetto), readable without TensorBoard: one trace
        # per part, each with the device's busy time against its span (the gap is
        # launch and host-sync time).
        lay = jax.block_until_ready(shower.layout(key, model, n))
        ev, _ = jax.block_until_ready(shower.realize(lay, model))
        b = observables.MultiplicityBuckets(lay.mask)
        thrust_all = eqx.filter_jit(lambda b, p, m: b.apply(tau, p, m))
        jax.block_until_ready(thrust_all(b, ev.momenta, ev.mask))
        parts = {
            "layout": lambda: shower.layout(key, model, n),
            "realize": lambda: shower.realize(lay, model),
            "thrust": lambda: thrust_all(observables.MultiplicityBuckets(lay.mask), ev.momenta, ev.mask),
        }
        result["trace"] = {}
        for part, fn in parts.items():
            folder = args.out / "trace" / part
            with jax.profiler.trace(str(folder), create_perfetto_trace=True):
                start = time.perf_counter()
                jax.block_until_ready(fn())
                wall = time.perf_counter() - start
            result["trace"][part] = {"wall_ms": round(wall * 1e3, 3), **trace_summary(folder), "top": trace_top(folder, 25)}
            print(part, json.dumps(result["trace"][part]), flush=True)
        save()
    # Each setting: one change of the backend's `_devices.WorkSizes` and the phases it
    # touches, re-traced with it in force.
    sweep = set(filter(None, args.sweep.split(",")))
    ws = _devices.work_sizes()
    settings: list[tuple[dict, set[str]]] = []
    if "sizes" in sweep:  # batch sizes
        settings += [
            ({"realize_chunk": 2**19}, {"realize"}),
            ({"realize_chunk": 2**21}, {"realize"}),
            ({"observable_scale": 512}, {"thrust"}),
            ({"cascade_lanes": 2**19}, {"structures"}),
            ({"steps_batch": 2**18}, {"steps"}),
        ]
    if "tiers" in sweep:  # emission-slot tiers of `_by_busiest`
        tiers = [(16,), (8, 16), (4, 8, 12, 16, 24, 32)]
        settings += [({"emission_tiers": t}, {"steps", "realize"}) for t in tiers if t != ws.emission_tiers]
    if "skip" in sweep:  # whether loops stop at each chunk's busiest event
        settings.append(({"skip_steps": not ws.skip_steps}, {"steps", "realize"}))
    if "unroll" in sweep:  # work-queue steps of the cascade per test of its loop condition
        settings += [({"cascade_unroll": u}, {"structures"}) for u in (1, 4, 8) if u != ws.cascade_unroll]
    if "buckets" in sweep:  # the thrust buckets of the other backend's sizes
        other = _devices._CPU_SIZES if jax.default_backend() != "cpu" else _devices._ACCELERATOR_SIZES
        settings.append(({"bucket_sizes": other.bucket_sizes}, {"thrust"}))
    for change, which in settings:
        tag = ",".join(f"{k}={v}" for k, v in change.items()).replace(" ", "")
        try:
            with work_sizes_changed(**change):
                phases(tag, which)
        except Exception as exc:  # e.g. out of memory: record, go on
            result["sweep"].append({"setting": tag, "error": str(exc)[:500]})
            print(tag, "failed:", str(exc)[:300], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
