"""The discrete-QCD shower (`diffhep.shower`) against Pythia 8's parton shower:
events per second for e+e- → Z → q q̄ at 91.1876 GeV, parton level.

diffhep, three modes, each timed end to end per batch (first call = compile + run,
separately from the steady state; `block_until_ready` everywhere):

- `shower`: `layout(key, m, n)` then `realize(lay, m)` (momenta, masks, weights);
- `shower+thrust`: the same, plus the thrust of every event
  (`MultiplicityBuckets` built from the layout's mask, `thrust` bucket by bucket,
  realize and thrust in one jitted call);
- `shower+thrust+jvp`: the layout, then one jitted forward-mode `jax.jvp` of
  α_s ↦ weighted mean of 1 − T with the layout fixed: the value and d⟨1−T⟩/dα_s.

Each (precision, thread setting) runs in its own subprocess: float32 never enables
x64, float64 does (in that subprocess only). On the CPU, a further subprocess is
pinned to one core (`sched_setaffinity`) with XLA's multi-threaded Eigen switched
off, for an honest per-core comparison with Pythia, which runs on one core.

Peer: Pythia 8 (pythia8mc), e+e- → γ*/Z → q q̄ (d, u, s, c, b), no lepton PDF
(no ISR photons), hadronisation off: `pythia.next()` alone, and `next()` followed
by `pythia8mc.Thrust(1).analyze(event)`; run before and after the diffhep workers
(the machine is shared), median of all runs. pythia8mc is imported lazily:
`--no-peer --peer-from FILE` reuses the Pythia figures of an earlier result (e.g.
the CPU's on a GPU machine where pythia8mc is missing).

    python benchmarks/bench_shower.py                    # CPU: -> results/shower-cpu.json
    python benchmarks/bench_shower.py --sizes 1e6,2e6 --no-single-thread --no-cpu-devices \\
        --no-peer --peer-from benchmarks/results/shower-cpu.json --out $OUT   # GPU
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODES = ("shower", "shower+thrust", "shower+thrust+jvp")
PEER_MODE = {"shower": "next", "shower+thrust": "next+thrust", "shower+thrust+jvp": "next+thrust"}
SINGLE_THREAD_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
# The project's one definition of Pythia 8 e+e- → Z → q q̄ at parton level (a plain
# tuple of strings; importing it does not import pythia8mc).
from diffhep.fit._pythia import PYTHIA_PARTON_LEVEL  # noqa: E402

PYTHIA_SETTINGS = (*PYTHIA_PARTON_LEVEL, "Beams:eCM = 91.1876")


# --------------------------------------------------------------------------- diffhep


def _worker(args: argparse.Namespace) -> None:
    """One subprocess: every (mode, size) at one precision and thread setting.
    Writes its entries to `args.result_file` after each one (a crash keeps the rest)."""
    if args.pin_cpu is not None:
        os.sched_setaffinity(0, {args.pin_cpu})  # before XLA starts its thread pools
    import jax

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import equinox as eqx
    import jax.numpy as jnp
    import numpy as np

    sys.path.insert(0, str(HERE))
    from _harness import time_jax

    from diffhep import observables, shower
    from diffhep._devices import n_shards

    def tau_fn(p, m):
        return 1.0 - observables.thrust(p, m)

    def buckets_of(lay):
        return observables.MultiplicityBuckets(lay.mask, shards=n_shards(lay.n_events))

    @eqx.filter_jit
    def tau_batch(lay, model, buckets):
        events, overflow = shower.realize(lay, model)
        tau = buckets.apply(tau_fn, events.momenta, events.mask)
        return tau, events.weights, jnp.sum(events.mask, axis=1), overflow

    def mean_tau(alpha, lay, base, buckets):
        model = eqx.tree_at(lambda m: m.alpha_s, base, alpha)
        events, _ = shower.realize(lay, model)
        tau = buckets.apply(tau_fn, events.momenta, events.mask)
        w = events.weights
        return jnp.sum(w * tau) / jnp.sum(w)

    @eqx.filter_jit
    def mean_tau_jvp(alpha, lay, base, buckets):
        return jax.jvp(lambda a: mean_tau(a, lay, base, buckets), (alpha,), (jnp.ones_like(alpha),))

    mean_tau_jit = eqx.filter_jit(mean_tau)

    model = shower.DiscreteQCD(alpha_s=args.alpha_s)
    dtype = str(model.alpha_s.dtype)
    if dtype != args.dtype:
        raise RuntimeError(f"asked for {args.dtype}, the model holds {dtype}")
    device = jax.devices()[0]
    record: dict[str, Any] = {
        "dtype": dtype,
        "threads": _threads_label(args.pin_cpu is not None, len(jax.devices())),
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "platform": device.platform,
        "device_kind": device.device_kind,
        "entries": [],
    }

    def save():
        tmp = args.result_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(record, f, indent=1)
        os.replace(tmp, args.result_file)

    save()
    for n in args.sizes:
        key = jax.random.key(args.seed)
        for mode in args.modes.split(","):
            phases: list[dict[str, float]] = []
            info: dict[str, Any] = {}

            def pipeline(key, mode=mode, n=n, phases=phases, info=info):
                t0 = time.perf_counter()
                lay = shower.layout(key, model, n)  # syncs: reads the busiest event's length
                t1 = time.perf_counter()
                info["n_steps"] = lay.n_steps
                if mode == "shower":
                    out = jax.block_until_ready(shower.realize(lay, model))
                else:
                    buckets = buckets_of(lay)
                    info["bucket_rows"] = buckets.rows
                    if mode == "shower+thrust":
                        out = jax.block_until_ready(tau_batch(lay, model, buckets))
                    else:
                        out = jax.block_until_ready(mean_tau_jvp(model.alpha_s, lay, model, buckets))
                        info["lay"], info["buckets"] = lay, buckets
                t2 = time.perf_counter()
                phases.append({"layout_s": t1 - t0, "rest_s": t2 - t1})
                return out

            repeats = args.repeats if n < args.large else args.repeats_large
            load_before = list(os.getloadavg())
            jax.clear_caches()  # every first call compiles everything it uses
            try:
                timing = time_jax(pipeline, key, repeats=repeats)
            except Exception as exc:  # e.g. out of device memory: record, go on
                record["entries"].append(
                    {"mode": mode, "n_events": n, "error": f"{type(exc).__name__}: {str(exc)[:2000]}"}
                )
                save()
                print(f"[{dtype} {record['threads']}] {mode} n={n}: FAILED {type(exc).__name__}", flush=True)
                info.clear()
                continue
            out = timing.pop("output")
            entry: dict[str, Any] = {
                "mode": mode,
                "n_events": n,
                "repeats": repeats,
                **timing,
                "compile_s": timing["first_call_s"] - timing["steady_s"],
                "events_per_s": n / timing["steady_s"],
                "first_call_phases_s": phases[0],
                "steady_phases_s": {
                    k: statistics.median(p[k] for p in phases[1:]) for k in ("layout_s", "rest_s")
                },
                "n_steps": info.get("n_steps"),
                "load_average_before": load_before,
                "load_average_after": list(os.getloadavg()),
            }
            if "bucket_rows" in info:
                entry["bucket_rows"] = {str(k): v for k, v in info["bucket_rows"].items()}
            if mode == "shower":
                events, overflow = out
                w = np.asarray(events.weights, np.float64)
                mult = np.asarray(events.mask).sum(axis=1)
                entry["mean_weight"] = float(w.mean())
                entry["weighted_mean_multiplicity"] = float(np.sum(w * mult) / np.sum(w))
                entry["overflow_fraction"] = float(np.mean(np.asarray(overflow)))
            elif mode == "shower+thrust":
                tau, w, mult, _ = (np.asarray(x, np.float64) for x in out)
                entry["weighted_mean_1_minus_T"] = float(np.sum(w * tau) / np.sum(w))
                entry["weighted_mean_multiplicity"] = float(np.sum(w * mult) / np.sum(w))
                info["forward_mean_tau"] = entry["weighted_mean_1_minus_T"]
            else:
                value, deriv = (float(x) for x in out)
                entry["weighted_mean_1_minus_T"] = value
                entry["d_mean_1_minus_T_d_alpha_s"] = deriv
                fwd = info.get("forward_mean_tau")
                if fwd is not None:
                    entry["jvp_value_minus_forward"] = value - fwd
                    tol = 1e-9 if dtype == "float64" else 1e-4
                    if not abs(value - fwd) <= tol:
                        raise AssertionError(f"jvp primal {value} != forward mean {fwd} ({dtype}, n={n})")
                if n == min(args.sizes):
                    # Central difference with the layout held fixed: the pathwise derivative.
                    h = 1e-4 if dtype == "float64" else 2e-3
                    lay, buckets = info["lay"], info["buckets"]
                    a = model.alpha_s
                    fp = float(mean_tau_jit(a + h, lay, model, buckets))
                    fm = float(mean_tau_jit(a - h, lay, model, buckets))
                    entry["finite_difference_check"] = {"h": h, "central_difference": (fp - fm) / (2 * h)}
            info.pop("lay", None)
            info.pop("buckets", None)
            record["entries"].append(entry)
            save()
            print(
                f"[{dtype} {record['threads']}] {mode:18s} n={n:>8d}: {entry['events_per_s']:10.4g} events/s "
                f"(steady {entry['steady_s']:.3f} s, first {entry['first_call_s']:.2f} s, "
                f"layout {entry['steady_phases_s']['layout_s']:.3f} s)",
                flush=True,
            )


def _threads_label(single_thread: bool, devices: int) -> str:
    if single_thread:
        return "1 (pinned)"
    return "all" if devices == 1 else f"all, {devices} devices"


def _run_worker(
    dtype: str, sizes: list[int], single_thread: bool, args: argparse.Namespace, devices: int = 1
) -> dict[str, Any]:
    env = dict(os.environ)
    if devices > 1:
        # One XLA CPU device per core: events split with jax.shard_map (diffhep._devices).
        env["XLA_FLAGS"] = " ".join(
            filter(None, [env.get("XLA_FLAGS"), f"--xla_force_host_platform_device_count={devices}"])
        )
    env.pop("JAX_ENABLE_X64", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker", "--dtype", dtype,
        "--sizes", ",".join(map(str, sizes)), "--seed", str(args.seed),
        "--repeats", str(args.repeats), "--repeats-large", str(args.repeats_large),
        "--large", str(args.large), "--alpha-s", str(args.alpha_s), "--modes", args.modes,
    ]  # fmt: skip
    if single_thread:
        env["XLA_FLAGS"] = " ".join(filter(None, [env.get("XLA_FLAGS"), SINGLE_THREAD_XLA_FLAGS]))
        cmd += ["--pin-cpu", str(min(os.sched_getaffinity(0)))]
    fd, path = tempfile.mkstemp(prefix="bench-shower-", suffix=".json")
    os.close(fd)
    try:
        start = time.perf_counter()
        proc = subprocess.run([*cmd, "--result-file", path], env=env)
        wall = time.perf_counter() - start
        try:
            with open(path) as f:
                record = json.load(f)
        except (OSError, json.JSONDecodeError):
            record = {"dtype": dtype, "threads": _threads_label(single_thread, devices), "entries": []}
    finally:
        os.unlink(path)
    record["returncode"] = proc.returncode
    record["wall_s"] = wall
    if proc.returncode != 0:
        print(f"worker {dtype} single_thread={single_thread} exited with {proc.returncode}", flush=True)
    return record


# --------------------------------------------------------------------------- Pythia


def _pythia_peer(n_events: int, repeats: int, seed: int) -> dict[str, Any]:
    import numpy as np
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)  # no banner
    for line in (*PYTHIA_SETTINGS, "Random:setSeed = on", f"Random:seed = {seed % 900_000_000}"):
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected {line!r}")
    if not pythia.init():
        raise RuntimeError("Pythia init failed")
    analyser = pythia8mc.Thrust(1)  # select = 1: every final-state particle (parton)
    event = pythia.event

    def next_only():
        for _ in range(n_events):
            pythia.next()

    tau = np.empty(n_events)

    def next_thrust():
        for i in range(n_events):
            pythia.next()
            analyser.analyze(event)
            tau[i] = 1.0 - analyser.thrust()

    runs: dict[str, list[float]] = {"next": [], "next+thrust": []}
    for _ in range(repeats):
        for name, fn in (("next", next_only), ("next+thrust", next_thrust)):
            start = time.perf_counter()
            fn()
            runs[name].append(time.perf_counter() - start)
    # Statistics from a further, untimed pass (the timed loops read only the thrust).
    tau_all, mult = np.empty(n_events), np.empty(n_events)
    for i in range(n_events):
        pythia.next()
        analyser.analyze(event)
        tau_all[i] = 1.0 - analyser.thrust()
        mult[i] = event.nFinal()
    return {
        "runs_s": runs,
        "mean_1_minus_T": float(tau_all.mean()),
        "mean_1_minus_T_error": float(tau_all.std(ddof=1) / np.sqrt(n_events)),
        "mean_multiplicity": float(mult.mean()),
        "load_average_after": list(os.getloadavg()),
    }


def _combine_peer(passes: list[dict[str, Any]], n_events: int) -> dict[str, Any]:
    out: dict[str, Any] = {"n_events": n_events, "passes": passes}
    for name in ("next", "next+thrust"):
        runs = [r for p in passes for r in p["runs_s"][name]]
        out[name] = {"steady_s": statistics.median(runs), "events_per_s": n_events / statistics.median(runs)}
    out["mean_1_minus_T"] = statistics.mean(p["mean_1_minus_T"] for p in passes)
    out["mean_multiplicity"] = statistics.mean(p["mean_multiplicity"] for p in passes)
    return out


# --------------------------------------------------------------------------- driver


def run(
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000),
    dtypes: tuple[str, ...] = ("float64", "float32"),
    single_thread_sizes: tuple[int, ...] = (1_000, 10_000),
    n_peer: int = 20_000,
    peer: bool = True,
    peer_from: str | None = None,
    repeats: int = 5,
    repeats_large: int = 3,
    large: int = 100_000,
    seed: int = 20261125,
    alpha_s: float = 0.118,
    cpu_devices: bool = True,
    modes: tuple[str, ...] = MODES,
) -> dict[str, Any]:
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise ValueError(f"unknown modes {unknown}; known: {', '.join(MODES)}")
    args = argparse.Namespace(
        repeats=repeats, repeats_large=repeats_large, large=large, seed=seed, alpha_s=alpha_s,
        modes=",".join(modes),
    )  # fmt: skip
    pythia: dict[str, Any] | None = None
    peer_passes = []
    if peer:
        print(f"Pythia 8: {n_peer} events x 3, before the diffhep runs", flush=True)
        peer_passes.append(_pythia_peer(n_peer, 3, seed))
    workers = []
    cores = len(os.sched_getaffinity(0))
    for dtype in dtypes:
        if cores > 1 and cpu_devices:
            workers.append(_run_worker(dtype, list(sizes), False, args, devices=cores))
        workers.append(_run_worker(dtype, list(sizes), False, args))
    if single_thread_sizes:
        for dtype in dtypes:
            workers.append(_run_worker(dtype, list(single_thread_sizes), True, args))
    if peer:
        print(f"Pythia 8: {n_peer} events x 3, after the diffhep runs", flush=True)
        peer_passes.append(_pythia_peer(n_peer, 3, seed + 1))
        pythia = _combine_peer(peer_passes, n_peer)
        pythia["source"] = "this run"
    elif peer_from:
        with open(peer_from) as f:
            earlier = json.load(f)
        pythia = dict(earlier["pythia8"])
        pythia["source"] = (
            f"reused from {peer_from} ({earlier['environment']['cpu_model']}, "
            f"{earlier['environment']['date']}); not measured on this machine"
        )

    table = []
    for w in workers:
        for e in w["entries"]:
            row = {"dtype": w["dtype"], "threads": w["threads"], "mode": e["mode"], "n_events": e["n_events"]}
            if "error" in e:
                table.append({**row, "error": e["error"]})
                continue
            row.update(
                events_per_s=e["events_per_s"], compile_s=e["compile_s"], first_call_s=e["first_call_s"]
            )
            if pythia is not None:
                peer_rate = pythia[PEER_MODE[e["mode"]]]["events_per_s"]
                row["pythia_events_per_s"] = peer_rate
                row["ratio_diffhep_over_pythia"] = e["events_per_s"] / peer_rate
            table.append(row)

    def pick(dtype, threads, mode):
        want = (dtype, threads, mode)
        rows = [r for r in table if (r["dtype"], r["threads"], r["mode"]) == want and "error" not in r]
        return max(rows, key=lambda r: r["n_events"]) if rows else None

    head_dtype = "float64" if "float64" in dtypes else dtypes[0]
    all_cores = _threads_label(False, cores)  # the whole CPU: one device per core
    head = pick(head_dtype, all_cores, "shower+thrust") or pick(head_dtype, "all", "shower+thrust")
    peer_rate = pythia["next+thrust"]["events_per_s"] if pythia else float("nan")
    summary: dict[str, Any] = {
        "diffhep_events_per_s": head["events_per_s"] if head else float("nan"),
        "diffhep_first_call_s": head["first_call_s"] if head else float("nan"),
        "diffhep_compile_s": head["compile_s"] if head else float("nan"),
        "diffhep_headline": (
            f"shower+thrust, {head_dtype}, {head['threads']}, n={head['n_events']}" if head else "none"
        ),
        "peer": "Pythia 8 next()+Thrust (parton level)",
        "peer_events_per_s": peer_rate,
        "ratio": (head["events_per_s"] / peer_rate) if head else float("nan"),
    }
    for threads in dict.fromkeys((all_cores, "all", "1 (pinned)")):
        for mode in MODES:
            r = pick(head_dtype, threads, mode)
            if r is not None and "ratio_diffhep_over_pythia" in r:
                summary[f"ratio[{mode}, {head_dtype}, threads={threads}, n={r['n_events']}]"] = r[
                    "ratio_diffhep_over_pythia"
                ]

    return {
        "settings": {
            "sizes": list(sizes),
            "dtypes": list(dtypes),
            "modes_run": list(modes),
            "single_thread_sizes": list(single_thread_sizes),
            "repeats": repeats,
            "repeats_large": repeats_large,
            "large": large,
            "seed": seed,
            "alpha_s": alpha_s,
            "model": "diffhep.shower.DiscreteQCD(alpha_s) defaults: kt_min 0.5 GeV, capacity 64, "
            "ME correction on; weighted events",
            "modes": {
                "shower": "layout(key, m, n) + realize(lay, m)",
                "shower+thrust": "layout + MultiplicityBuckets(mask) + jit(realize + thrust per bucket)",
                "shower+thrust+jvp": "layout + MultiplicityBuckets(mask) + jit(jvp of alpha_s -> "
                "weighted mean of 1-T, layout fixed)",
            },
            "timing": "each mode end to end from the key; jax.clear_caches() before each (mode, n) so "
            "the first call compiles all it uses; steady = median of further calls with the same key",
            "single_thread": f"subprocess pinned to one CPU (sched_setaffinity), XLA_FLAGS="
            f"'{SINGLE_THREAD_XLA_FLAGS}'",
            "n_peer_events": n_peer,
            "peer": "pythia8mc: " + "; ".join(PYTHIA_SETTINGS) + "; timed: n x next(), and n x "
            "(next() + Thrust(1).analyze(event) + thrust()); one core; median of 3 runs before "
            "and 3 after the diffhep workers",
        },
        "workers": workers,
        "pythia8": pythia,
        "table": table,
        "summary": summary,
    }


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_ints, default=[1_000, 10_000, 100_000])
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--single-thread-sizes", type=_ints, default=[1_000, 10_000])
    parser.add_argument("--no-single-thread", action="store_true", help="skip the one-core runs")
    parser.add_argument("--n-peer", type=int, default=20_000)
    parser.add_argument(
        "--no-cpu-devices", action="store_true", help="skip the run with one XLA CPU device per core (on a GPU)"
    )
    parser.add_argument("--no-peer", action="store_true", help="do not run Pythia (no pythia8mc needed)")
    parser.add_argument("--peer-from", help="result JSON whose Pythia figures to reuse with --no-peer")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--repeats-large", type=int, default=3, help="repeats from --large events on")
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--alpha-s", type=float, default=0.118)
    parser.add_argument(
        "--modes", default=",".join(MODES),
        help="comma list of modes to time (a GPU compiles each for 35-60 s: forward modes alone fit a short lease)",
    )  # fmt: skip
    parser.add_argument("--out", help="also copy the result JSON into this folder")
    # internal: one worker subprocess
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", help=argparse.SUPPRESS)
    parser.add_argument("--pin-cpu", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args)
        return 0

    sys.path.insert(0, str(HERE))
    from _harness import write_result

    result = run(
        sizes=tuple(args.sizes),
        dtypes=tuple(args.dtypes.split(",")),
        single_thread_sizes=() if args.no_single_thread else tuple(args.single_thread_sizes),
        n_peer=args.n_peer,
        peer=not args.no_peer,
        peer_from=args.peer_from,
        repeats=args.repeats,
        repeats_large=args.repeats_large,
        large=args.large,
        seed=args.seed,
        alpha_s=args.alpha_s,
        cpu_devices=not args.no_cpu_devices,
        modes=tuple(args.modes.split(",")),
    )
    path = write_result("shower", result)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        shutil.copy(path, Path(args.out) / path.name)
    s = result["summary"]
    print(
        f"shower: {s['diffhep_headline']}: {s['diffhep_events_per_s']:.4g} events/s, "
        f"{s['peer']} {s['peer_events_per_s']:.4g} events/s, ratio {s['ratio']:.3g} -> {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
