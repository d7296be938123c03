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
