"""`diffhep fit-alphas`: the α_s fit from the command line."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._alphas import Target, fit_alphas, pseudo_data, write_json_atomic
from ._template import OBSERVABLES

# Fit ranges for pseudo-data, in the fit variable (1−T, C, −ln y23): away from the
# two-jet peak, where the shower cutoff and the discreteness dominate.
DEFAULT_EDGES = {
    "thrust": np.linspace(0.02, 0.32, 16),
    "c": np.linspace(0.08, 0.76, 18),
    "y23": np.linspace(1.5, 7.5, 13),
}


def run_fit_alphas(
    *,
    out: Path,
    truth_alpha_s: float,
    events: int,
    mc_events: int | None,
    seed: int,
    observables: list[str],
    max_steps: int,
    scan: bool,
    progress: bool = True,
) -> dict:
    """Pseudo-data fit: shower `events` at the truth, fit with an independent MC sample."""
    from .. import shower

    for o in observables:
        if o not in OBSERVABLES:
            raise ValueError(f"--observable {o!r} is not one of {', '.join(OBSERVABLES)}")
    lo, hi = shower.ALPHA_S_RANGE
    if not lo <= truth_alpha_s <= hi:
        raise ValueError(f"--truth-alpha-s={truth_alpha_s} is outside the supported range [{lo}, {hi}]")
    if events < 1000:
        raise ValueError(f"--events must be >= 1000, got {events}")
    n_mc = int(mc_events or events)
    if n_mc < 1000:
        raise ValueError(f"--mc-events must be >= 1000, got {n_mc}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    targets, overflow = [], 0.0
    for i, o in enumerate(observables):
        t, ovf = pseudo_data(o, DEFAULT_EDGES[o], truth_alpha_s, events, seed * 1000 + i)
        targets.append(t)
        overflow = max(overflow, ovf)
    result, arrays = fit_alphas(
        targets, n_mc=n_mc, seed=seed + 7919, truth_alpha_s=truth_alpha_s, max_steps=max_steps, scan=scan, progress=progress
    )
    result.overflow_fraction = max(result.overflow_fraction, overflow)
    result.extra["pull"] = (result.alpha_s - truth_alpha_s) / result.alpha_s_err_total
    result.extra["data"] = "pseudo-data (diffhep shower)"
    check_overflow(result.overflow_fraction)
    from ._plots import plot_fit

    plot_fit(out, result, targets, arrays)
    payload = result.to_json()
    write_json_atomic(out / "result.json", payload)
    return payload


def check_overflow(fraction: float) -> None:
    from ..shower import OVERFLOW_TOLERANCE

    if fraction > OVERFLOW_TOLERANCE:
        raise ValueError(
            f"{fraction:.2e} of the showered events overflowed the capacity (tolerance "
            f"{OVERFLOW_TOLERANCE:g}); raise the shower capacity or kt_min"
        )


def summary(payload: dict) -> str:
    lines = [
        f"alpha_s(MZ) = {payload['alpha_s']:.5f} ± {payload['alpha_s_err']:.5f} (stat) "
        f"± {payload['alpha_s_err_mc']:.5f} (MC)",
    ]
    if payload.get("truth_alpha_s") is not None:
        lines.append(f"truth       = {payload['truth_alpha_s']:.5f}   pull = {payload.get('pull', math.nan):+.2f}")
    lines.append(
        f"chi2/ndf = {payload['chi2_ndf']:.2f}   steps = {payload['n_steps']}   converged = {payload['converged']}   "
        f"overflow = {payload['overflow_fraction']:.1e}   wall = {payload['wall_s']:.1f} s on {payload['device']}"
    )
    return "\n".join(lines)
