"""Shared matplotlib plumbing for the workflows' PNG plots (mplhep style, no display)."""

from __future__ import annotations

from pathlib import Path


def mpl():
    """`matplotlib.pyplot` with the Agg backend and the mplhep ROOT style (imported
    lazily: `import diffhep` does not need matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.ROOT)
    return plt


def save(plt, fig, path: Path, paths: list[Path]) -> None:
    """Lay out, write `fig` to `path` as PNG, close it, and record the path."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)


def scan_plot(plt, x, dnll, parabola, centre: float, err: float, xlabel: str, truth: float | None = None):
    """Likelihood scan: −ΔlnL points at `x`, the fitted parabola `(c2, c1, c0)` in
    `x − centre`, ΔlnL = ½, and the curvature ±1σ lines at `centre ± err`. Returns the
    figure."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 5))
    c2, c1, c0 = parabola
    xs = np.linspace(np.min(x), np.max(x), 200)
    par = c2 * (xs - centre) ** 2 + c1 * (xs - centre) + c0
    ax.plot(x, dnll, "ko", label=r"$-\Delta \ln L$ (scan)")
    ax.plot(xs, par - par.min(), "C0-", label="parabola")
    ax.axhline(0.5, color="grey", linestyle=":")
    for v in (centre - err, centre + err):
        ax.axvline(v, color="C1", linestyle="--")
    ax.plot([], [], "C1--", label=r"$\pm1\sigma$ (curvature)")
    if truth is not None:
        ax.axvline(truth, color="k", linestyle=":", label="truth")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"$-\Delta \ln L$")
    ax.legend(fontsize=12)
    return fig


def trajectory_plot(plt, trajectory, value: float, err: float, ylabel: str, truth: float | None = None):
    """The optimiser's parameter against the step, the fit's ±1σ band and the truth.
    Returns the figure."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 5))
    traj = np.asarray(trajectory)
    ax.plot(np.arange(len(traj)), traj, "o-", label="optimiser")
    ax.axhspan(value - err, value + err, alpha=0.25, label=r"fit $\pm 1\sigma$")
    if truth is not None:
        ax.axhline(truth, color="k", linestyle="--", label="truth")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=12)
    return fig
