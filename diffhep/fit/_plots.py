"""Plots of an α_s fit (matplotlib with the mplhep style), written as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._plotting import mpl as _plt
from .._plotting import save as _save
from .._plotting import scan_plot, trajectory_plot
from ._template import OBSERVABLES

_LABELS = {"thrust": r"$\tau = 1-T$", "c": r"$C$", "y23": r"$-\ln y_{23}$"}
assert set(_LABELS) == set(OBSERVABLES)


def plot_fit(out_dir: Path, result, targets, arrays) -> list[Path]:
    """Data vs fitted model (with ratio panel) per observable, the α_s trajectory, and
    the likelihood scan with the ±1σ points. Returns the written paths."""
    plt = _plt()
    out_dir = Path(out_dir)
    paths = []
    for tgt, pred in zip(targets, arrays["pred"]):
        fig, (ax, rax) = plt.subplots(2, 1, sharex=True, gridspec_kw=dict(height_ratios=(3, 1)), figsize=(8, 7))
        edges = tgt.edges
        centres = 0.5 * (edges[1:] + edges[:-1])
        if tgt.poisson:
            data, err, ylabel = tgt.counts, np.sqrt(np.maximum(tgt.counts, 1.0)), "events / bin"
        else:
            data, err, ylabel = np.asarray(tgt.density), np.asarray(tgt.density_err), r"$1/\sigma\ d\sigma/dx$"
        ax.stairs(pred, edges, label=rf"diffhep shower, $\alpha_s$ = {result.alpha_s:.4f}", color="C0", linewidth=2)
        ax.errorbar(centres, data, yerr=err, fmt="ko", markersize=4, label="data" if not tgt.poisson else "pseudo-data")
        ax.set_yscale("log")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=12)
        ratio = data / pred
        rax.errorbar(centres, ratio, yerr=err / pred, fmt="ko", markersize=4)
        rax.axhline(1.0, color="C0")
        rax.set_ylim(0.7, 1.3)
        rax.set_ylabel("data / model")
        rax.set_xlabel(_LABELS[tgt.observable])
        _save(plt, fig, out_dir / f"fit_{tgt.observable}.png", paths)

    fig = trajectory_plot(
        plt, arrays["trajectory"], result.alpha_s, result.alpha_s_err, r"$\alpha_s(M_Z)$", truth=result.truth_alpha_s
    )
    _save(plt, fig, out_dir / "trajectory.png", paths)

    if "scan_alpha" in arrays:
        fig = scan_plot(
            plt, arrays["scan_alpha"], arrays["scan_dnll"], arrays["scan_parabola"],
            result.alpha_s, result.alpha_s_err, r"$\alpha_s(M_Z)$", truth=result.truth_alpha_s,
        )
        _save(plt, fig, out_dir / "scan.png", paths)
    return paths
