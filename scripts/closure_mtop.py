"""Closure of the top-mass fit: pulls (m_t − truth)/σ over independent pseudo-experiments.

Pulls use the reported `mt_err` (the curvature error); the width with the sandwich
error is recorded too. Each experiment draws new pseudo-data
(seed s) and new integration points, and fits
with the same settings as `diffhep fit-mtop` (compiled once, reused for every
experiment). Writes scripts/results/closure_mtop.json (atomically, after every
experiment, so that an interrupted run keeps what it has) with the per-experiment
results and the pull mean and width with their statistical errors.

    nice -n 10 .venv/bin/python scripts/closure_mtop.py --experiments 30 --events 100 --n-int 128

With `--newton` each experiment is one Newton step of the likelihood from the truth,
m_t ≈ truth − g/h (g, h its m_t derivatives there; error h^{−1/2}, sandwich error
beside it), instead of the full fit with its scan: one evaluation instead of about a
dozen, for closures of large samples. On seeds 3000–3009 at 2000 events it is within
0.01 GeV (0.07σ) of the full fits of `closure_mtop_2000_exact_unweighting.json`.

    nice -n 10 .venv/bin/python scripts/closure_mtop.py --newton --experiments 44 --events 2000 \
        --first-seed 3000 --out scripts/results/closure_mtop_2000_newton.json

With `--pythia` the pseudo-data come from Pythia 8 (`diffhep.fit.pythia_pseudo_data`)
instead of the model: the pull mean then measures the fit's bias against a generator
we did not write (default output closure_mtop_pythia.json).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from types import SimpleNamespace

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from diffhep.fit import write_json_atomic  # noqa: E402
from diffhep.fit import _mtop as M  # noqa: E402


def newton_estimate(jets, cfg, ctx, seed: int, truth: float) -> SimpleNamespace:
    """One Newton step of `fit_mtop`'s likelihood (same integration points) from the
    truth, with the fields of `MtopResult` that the closure records."""
    t0 = time.perf_counter()
    lik = M.MtopLikelihood(jets, cfg, ctx, M.likelihood_key(seed))
    _, g, h = (float(x) for x in lik.nll_derivs(truth))
    if not h > 0:
        raise RuntimeError(f"seed {seed}: no positive curvature at the truth (h = {h})")
    sigma = 1.0 / math.sqrt(h)
    return SimpleNamespace(
        mt=truth - g / h, mt_err=sigma, mt_err_curvature=sigma, mt_err_sandwich=lik.sandwich_error(truth, g, h),
        # One step: nothing was iterated to convergence.
        converged=None, n_steps=1, scan_err_lo=None, scan_err_hi=None, wall_s=time.perf_counter() - t0,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=30)
    ap.add_argument("--events", type=int, default=100)
    ap.add_argument("--n-int", type=int, default=128)
    ap.add_argument("--truth-mt", type=float, default=172.5)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--pythia", action="store_true", help="Pythia 8 pseudo-data instead of the model's")
    ap.add_argument("--newton", action="store_true", help="one Newton step from the truth instead of the full fit")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    name = "closure_mtop_pythia.json" if a.pythia else "closure_mtop.json"
    a.out = a.out or Path(__file__).parent / "results" / name
    cfg = M.MtopConfig(n_int=a.n_int)
    ctx = M._ctx(cfg)
    rows = []
    t0 = time.perf_counter()
    for i in range(a.experiments):
        seed = a.first_seed + i
        key = jax.random.fold_in(jax.random.key(seed), 1)
        if a.pythia:
            data = M.pythia_pseudo_data(key, a.truth_mt, a.events, cfg)
        else:
            data = M.generate_pseudo_data(key, a.truth_mt, a.events, cfg, ctx)
        if a.newton:
            r = newton_estimate(data.jets, cfg, ctx, seed, a.truth_mt)
        else:
            r, _ = M.fit_mtop(data.jets, cfg=cfg, ctx=ctx, seed=seed, truth_mt=a.truth_mt, progress=False, scan=True)
        row = dict(
            seed=seed, mt=r.mt, mt_err=r.mt_err, mt_err_curvature=r.mt_err_curvature, mt_err_sandwich=r.mt_err_sandwich,
            pull=(r.mt - a.truth_mt) / r.mt_err, pull_curvature=(r.mt - a.truth_mt) / r.mt_err_curvature,
            pull_sandwich=(r.mt - a.truth_mt) / r.mt_err_sandwich,
            converged=r.converged,
            n_steps=r.n_steps, scan_err_lo=r.scan_err_lo, scan_err_hi=r.scan_err_hi, wall_s=r.wall_s,
        )
        rows.append(row)
        pulls = np.array([x["pull"] for x in rows])
        n = len(pulls)
        summary = dict(
            n_experiments=n,
            pull_mean=float(pulls.mean()),
            pull_mean_err=float(pulls.std(ddof=1) / math.sqrt(n)) if n > 1 else None,
            pull_width=float(pulls.std(ddof=1)) if n > 1 else None,
            pull_width_err=float(pulls.std(ddof=1) / math.sqrt(2 * (n - 1))) if n > 1 else None,
            mean_mt_err=float(np.mean([x["mt_err"] for x in rows])),
            pull_width_curvature=float(np.std([x["pull_curvature"] for x in rows], ddof=1)) if n > 1 else None,
            pull_width_sandwich=float(np.std([x["pull_sandwich"] for x in rows], ddof=1)) if n > 1 else None,
            # None for --newton rows (one step, no convergence test).
            all_converged=None if a.newton else all(x["converged"] for x in rows),
        )
        payload = dict(
            summary=summary,
            settings=dict(
                truth_mt=a.truth_mt, events=a.events, n_int=a.n_int, config=M.asdict(cfg), first_seed=a.first_seed,
                estimator="one Newton step from the truth" if a.newton else "fit_mtop",
                pseudo_data=data.source,
            ),
            device=f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}",
            wall_s=time.perf_counter() - t0,
            experiments=rows,
            complete=n == a.experiments,
        )
        write_json_atomic(a.out, payload)
        print(f"[{n}/{a.experiments}] mt = {r.mt:.3f} ± {r.mt_err:.3f}  pull = {row['pull']:+.2f}  "
              f"(mean {summary['pull_mean']:+.3f}, width {summary['pull_width'] or float('nan'):.3f})  {r.wall_s:.1f} s", flush=True)


if __name__ == "__main__":
    main()
