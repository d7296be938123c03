"""Plots of a top-mass fit (matplotlib with the mplhep style), written as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._plotting import mpl as _plt
from .._plotting import save as _save
from .._plotting import scan_plot, trajectory_plot


def plot_mtop(
    out_dir: Path, result, arrays: dict, mbjj_data: np.ndarray, mbjj_model: np.ndarray, data_label: str = "pseudo-data"
) -> list[Path]:
    """The likelihood scan with the ±1σ points (`scan.png`), the reconstructed m_bjj of
    the data against the model at the fitted m_t (`mbjj.png`, model normalised to the
    data), and the optimiser trajectory (`trajectory.png`). Returns the written paths."""
    plt = _plt()
    out_dir = Path(out_dir)
    paths: list[Path] = []

    if "scan_mt" in arrays:
        fig = scan_plot(
            plt, arrays["scan_mt"], arrays["scan_dnll"], arrays["scan_parabola"],
            result.mt, result.mt_err_curvature, r"$m_t$ [GeV]", truth=result.truth_mt,
        )
        _save(plt, fig, out_dir / "scan.png", paths)

    fig, (ax, rax) = plt.subplots(2, 1, sharex=True, gridspec_kw=dict(height_ratios=(3, 1)), figsize=(8, 7))
    edges = np.linspace(100.0, 260.0, 33)
    centres = 0.5 * (edges[1:] + edges[:-1])
    data, _ = np.histogram(np.ravel(mbjj_data), edges)
    model, _ = np.histogram(np.ravel(mbjj_model), edges)
    scale = np.ravel(mbjj_data).size / max(np.ravel(mbjj_model).size, 1)
    pred = model * scale
    err = np.sqrt(np.maximum(data, 1.0))
    ax.stairs(pred, edges, color="C0", linewidth=2, label=rf"model, $m_t$ = {result.mt:.2f} GeV")
    ax.errorbar(centres, data, yerr=err, fmt="ko", markersize=4, label=data_label)
    ax.set_ylabel("tops / 5 GeV")
    ax.legend(fontsize=12)
    with np.errstate(divide="ignore", invalid="ignore"):
        rax.errorbar(centres, data / pred, yerr=err / pred, fmt="ko", markersize=4)
    rax.axhline(1.0, color="C0")
    rax.set_ylim(0.0, 2.0)
    rax.set_ylabel("data / model")
    rax.set_xlabel(r"reconstructed $m_{bjj}$ [GeV]")
    _save(plt, fig, out_dir / "mbjj.png", paths)

    fig = trajectory_plot(plt, arrays["trajectory"], result.mt, result.mt_err, r"$m_t$ [GeV]", truth=result.truth_mt)
    _save(plt, fig, out_dir / "trajectory.png", paths)
    return paths
