"""Plots of a detector-design run (matplotlib with the mplhep style), as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._plotting import mpl as _plt
from .._plotting import save as _save
from ..detector import UNITS


def _label(name: str) -> str:
    unit = UNITS.get(name, "")
    return f"{name} [{unit}]" if unit else name


def plot_design(out_dir: Path, result, grid: dict | None, objective_label: str) -> list[Path]:
    """The objective and each free parameter against the step, and (with `grid`) the
    2-D slice of the objective landscape with the optimiser's path. Returns the paths."""
    plt = _plt()
    out_dir = Path(out_dir)
    paths: list[Path] = []
    steps = np.arange(len(result.history_objective))
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.plot(steps, result.history_objective, "o-")
    ax.set_xlabel("step")
    ax.set_ylabel(objective_label)
    _save(plt, fig, out_dir / "objective.png", paths)
    for i, name in enumerate(result.free):
        fig, ax = plt.subplots(figsize=(7, 5))
        ax.plot(np.arange(len(result.history_theta)), result.history_theta[:, i], "o-", label="iterate")
        ax.axhline(result.theta[i], color="k", ls="--", label="optimum")
        ax.set_xlabel("step")
        ax.set_ylabel(_label(name))
        ax.legend()
        _save(plt, fig, out_dir / f"param_{name}.png", paths)
    if grid is not None and len(result.free) >= 2:
        fig, ax = plt.subplots(figsize=(8, 6.5))
        x, y = grid["axes"]
        mesh = ax.pcolormesh(x, y, grid["values"].T, shading="auto", cmap="viridis")
        fig.colorbar(mesh, ax=ax, label=objective_label)
        path = result.history_theta
        ax.plot(path[:, 0], path[:, 1], "w.-", label="optimiser path")
        ax.plot(result.theta[0], result.theta[1], "r*", ms=16, label="gradient optimum")
        ax.plot(grid["optimum"][0], grid["optimum"][1], "wx", ms=12, mew=3, label="grid optimum")
        ax.set_xlabel(_label(result.free[0]))
        ax.set_ylabel(_label(result.free[1]))
        ax.legend(fontsize="small")
        _save(plt, fig, out_dir / "landscape.png", paths)
    return paths
