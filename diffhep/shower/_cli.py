"""`diffhep shower`: showered events into a file."""

from __future__ import annotations

from pathlib import Path


def run_shower(*, out: Path, events: int, alpha_s: float, kt_min: float, seed: int) -> str:
    """Shower `events` events with `DiscreteQCD(alpha_s, kt_min)` and the key of `seed`,
    write them with `diffhep.io.save_events` (metadata: the generator and its settings)
    and return a one-line summary."""
    import jax
    import numpy as np

    from .. import __version__, io
    from ._model import DiscreteQCD
    from ._shower import sample

    model = DiscreteQCD(alpha_s=alpha_s, kt_min=kt_min)  # validates the ranges
    ev = sample(jax.random.key(seed), model, events)
    io.save_events(
        out, ev, generator="diffhep.shower", diffhep_version=__version__, level="parton", alpha_s=alpha_s,
        kt_min=kt_min, sqrt_s=float(model.sqrt_s), seed=seed, n_events=events, weighted=True,
        dtype=str(ev.momenta.dtype),
    )
    w = np.asarray(ev.weights)
    n = np.asarray(ev.multiplicity)
    return (
        f"wrote {out}: {events} events at alpha_s = {alpha_s:g}, kt_min = {kt_min:g} GeV; "
        f"mean weight {w.mean():.3f}, weighted <N partons> {np.sum(w * n) / w.sum():.2f}"
    )
