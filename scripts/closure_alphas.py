"""Closure of the α_s fit: pulls over independent pseudo-experiments.

Each pseudo-experiment showers `--events` pseudo-data events at `--truth` (its own
seed) and fits them with an independent template sample of `--mc-events` (its own
seed). Pull = (α̂ − truth)/σ_total with σ_total² = σ_stat² + σ_MC². Writes
`scripts/results/closure_alphas.json` (atomically) after every experiment, and a pull
histogram PNG at the end.

Each experiment compiles templates of new shapes, and XLA's JIT code memory is not
returned to the system: one process running dozens of fits dies with "LLVM ERROR:
Unable to allocate section memory". So the script re-executes itself (a fresh
process, `--resume`) every `--per-process` experiments; `--resume` also continues an
interrupted run from the JSON.

    python scripts/closure_alphas.py --experiments 50 --events 5000 --mc-events 50000

On several cores, run shares with `--seed-offset` and their own `--out`, pinned to one
core each, then combine them: `--merge A/closure_alphas.json B/closure_alphas.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from diffhep import fit  # noqa: E402
from diffhep.fit._cli import DEFAULT_EDGES  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=50)
    ap.add_argument("--events", type=int, default=5_000)
    ap.add_argument("--seed-offset", type=int, default=0, help="experiment i uses seeds 1000+offset+i (data), 5000+offset+i (template)")
    ap.add_argument("--mc-events", type=int, default=50_000)
    ap.add_argument("--truth", type=float, default=0.118)
    ap.add_argument("--observable", default="thrust")
    ap.add_argument("--jumps", action="store_true", help="fit with the jump partners' derivative (fit_alphas(jumps=True))")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--per-process", type=int, default=8, help="experiments before re-executing in a fresh process")
    ap.add_argument("--resume", action="store_true", help="continue from the JSON in --out")
    ap.add_argument("--merge", type=Path, nargs="+", help="combine these closure JSONs (same settings) into --out")
    args = ap.parse_args()
    if args.merge:
        return merge(args)
    rows, wall0 = [], 0.0
    if args.resume and (args.out / "closure_alphas.json").exists():
        old = json.loads((args.out / "closure_alphas.json").read_text())
        same = all(old["summary"].get(k, 0) == getattr(args, k) for k in ("truth", "events", "mc_events", "observable", "seed_offset", "jumps"))
        if not same:
            raise SystemExit(f"--resume: {args.out / 'closure_alphas.json'} has other settings: {old['summary']}")
        rows, wall0 = old["experiments"], old["summary"]["wall_s"]
    t0 = time.perf_counter() - wall0
    done_here = 0
    for i in range(len(rows), args.experiments):
        if done_here == args.per_process:
            argv = [a for a in sys.argv if a != "--resume"]
            os.execv(sys.executable, [sys.executable, *argv, "--resume"])
        target, _ = fit.pseudo_data(args.observable, DEFAULT_EDGES[args.observable], args.truth, args.events, seed=1000 + args.seed_offset + i)
        res, _ = fit.fit_alphas([target], n_mc=args.mc_events, seed=5000 + args.seed_offset + i, start=0.122, max_steps=10, scan=False, progress=False, jumps=args.jumps)
        pull = (res.alpha_s - args.truth) / res.alpha_s_err_total
        rows.append(dict(seed=i, alpha_s=res.alpha_s, err=res.alpha_s_err, err_mc=res.alpha_s_err_mc, pull=pull,
                         chi2_ndf=res.chi2_ndf, converged=res.converged, n_steps=res.n_steps))
        print(f"{i:3d} alpha_s={res.alpha_s:.5f} ± {res.alpha_s_err_total:.5f} pull={pull:+.2f} chi2/ndf={res.chi2_ndf:.2f}", flush=True)
        done_here += 1
        if len(rows) >= 2:  # keep a valid file after every experiment
            write(args, rows, t0, final=False)
    write(args, rows, t0, final=True)


def merge(args) -> None:
    """Concatenate runs with different `--seed-offset` into one result (experiment j of
    a run with offset o used data seed 1000 + o + j and template seed 5000 + o + j)."""
    rows, wall, offsets = [], 0.0, set()
    for path in args.merge:
        run = json.loads(Path(path).read_text())
        s = run["summary"]
        if not s.get("complete"):
            raise SystemExit(f"--merge: {path} is not complete")
        for k in ("truth", "events", "mc_events", "observable", "jumps"):
            if s.get(k, False) != getattr(args, k):
                raise SystemExit(f"--merge: {path} has {k} = {s.get(k, False)}, not {getattr(args, k)}")
        o = s.get("seed_offset", 0)
        seeds = {o + j for j in range(len(run["experiments"]))}
        if seeds & offsets:
            raise SystemExit(f"--merge: {path} repeats seeds of another run")
        offsets |= seeds
        rows += [dict(r, seed=o + j) for j, r in enumerate(run["experiments"])]
        wall += s["wall_s"]
    args.seed_offset = min(offsets)
    write(args, sorted(rows, key=lambda r: r["seed"]), time.perf_counter() - wall, final=True)


def write(args, rows, t0, final):
    pulls = np.array([r["pull"] for r in rows])
    n = len(pulls)
    summary = dict(
        pull_mean=float(pulls.mean()), pull_mean_err=float(pulls.std(ddof=1) / np.sqrt(n)),
        pull_width=float(pulls.std(ddof=1)), pull_width_err=float(pulls.std(ddof=1) / np.sqrt(2 * (n - 1))),
        n_experiments=n, truth=args.truth, events=args.events, mc_events=args.mc_events,
        observable=args.observable, seed_offset=args.seed_offset, jumps=args.jumps, wall_s=time.perf_counter() - t0,
        device=f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}",
        passes=bool(abs(pulls.mean()) <= 0.15 and 0.85 <= pulls.std(ddof=1) <= 1.15),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    summary["complete"] = final
    fit.write_json_atomic(args.out / "closure_alphas.json", dict(summary=summary, experiments=rows))
    if not final:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.ROOT)
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.hist(pulls, bins=np.linspace(-4, 4, 17), histtype="step", linewidth=2, label=f"{n} pseudo-experiments")
    xs = np.linspace(-4, 4, 200)
    ax.plot(xs, n * 0.5 * np.exp(-0.5 * xs**2) / np.sqrt(2 * np.pi), "k--", label="N(0,1)")
    ax.set_xlabel(r"pull $(\hat\alpha_s - \alpha_s^{true})/\sigma$")
    ax.set_ylabel("pseudo-experiments")
    ax.set_title(f"mean {summary['pull_mean']:+.2f} ± {summary['pull_mean_err']:.2f}, width {summary['pull_width']:.2f} ± {summary['pull_width_err']:.2f}", fontsize=12)
    ax.legend(fontsize=12)
    fig.tight_layout()
    fig.savefig(args.out / "closure_alphas_pulls.png", dpi=110)
    print(summary)


if __name__ == "__main__":
    main()
