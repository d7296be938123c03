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
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--trace", action="store_true", help="also write a Perfetto trace of one layout, realize and thrust call to OUT/trace")
    args = ap.parse_args(argv)

    import jax

    if not args.float32:
        jax.config.update("jax_enable_x64", True)
    import equinox as eqx
    import jax.numpy as jnp
    import jax.random as jr
    import numpy as np

    from diffhep import _devices, observables, shower
    from diffhep.shower import _shower

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
            # Finer buckets (sizes every 2 partons up to 20): thrust is O(n³), so an event
            # of 9 partons costs (12/9)³ = 2.4× in the 12-bucket; more buckets, more
            # compiles and gathers. 10⁵ events on 2 CPU cores: 0.81 → 0.67 s, compile +4 s.
            fine = observables.MultiplicityBuckets(lay.mask, sizes=(4, 6, 8, 10, 12, 14, 16, 18, 20, 24, 32, 48, 64))
            out["fine_bucket_rows"] = fine.rows
            out["thrust_buckets_fine"], _ = _timed(lambda: thrust_all(fine, ev.momenta, ev.mask), r)
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
        # Kernel-level times as JSON (Perfetto), readable without TensorBoard.
        lay = jax.block_until_ready(shower.layout(key, model, n))
        ev, _ = jax.block_until_ready(shower.realize(lay, model))
        b = observables.MultiplicityBuckets(lay.mask)
        thrust_all = eqx.filter_jit(lambda b, p, m: b.apply(tau, p, m))
        jax.block_until_ready(thrust_all(b, ev.momenta, ev.mask))
        with jax.profiler.trace(str(args.out / "trace"), create_perfetto_trace=True):
            lay = jax.block_until_ready(shower.layout(key, model, n))
            ev, _ = jax.block_until_ready(shower.realize(lay, model))
            jax.block_until_ready(thrust_all(b, ev.momenta, ev.mask))
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _harness import trace_top

        result["trace_top"] = trace_top(args.out / "trace")
        print(json.dumps(result["trace_top"], indent=1), flush=True)
        save()
    if args.sweep:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _harness import work_sizes_changed

        for field, value, which in [
            ("realize_chunk", 2**19, {"realize"}),
            ("realize_chunk", 2**21, {"realize"}),
            ("observable_scale", 512, {"thrust"}),
            ("cascade_lanes", 2**19, {"structures"}),
            ("steps_batch", 2**18, {"steps"}),
        ]:
            try:
                with work_sizes_changed(**{field: value}):
                    phases(f"{field}={value}", which)
            except Exception as exc:  # e.g. out of memory: record, go on
                result["sweep"].append({"setting": f"{field}={value}", "error": str(exc)[:500]})
                print(field, value, "failed:", str(exc)[:300], flush=True)
        # Slot tiers of the colour order and `realize` (`_shower._by_busiest`).
        default_tiers = _shower._FEW_EMISSIONS_TIERS
        try:
            _shower._FEW_EMISSIONS_TIERS = (8, 16)
            jax.clear_caches()
            phases("few_emissions_tiers=8,16", {"steps", "realize"})
        finally:
            _shower._FEW_EMISSIONS_TIERS = default_tiers
    return 0


if __name__ == "__main__":
    sys.exit(main())
