"""Exact thrust: `diffhep.observables.thrust` (jit, float64) against Pythia 8's
`Thrust`, on the same random events in the same run.

Events: `n_partons` massless partons with Gaussian three-momenta (σ = 10 GeV per
component), shifted so that Σp⃗ = 0, and E = |p⃗|. Both programs enumerate the
O(N³) candidate axes exactly; we check that they agree on every compared event.
Pythia analyses `pythia8mc.Event` records filled beforehand (filling, a Python
loop, is timed separately and not counted); its loop calls `analyze` once per event
through the Python binding. XLA may use every core; Pythia runs on one.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from _harness import time_jax, time_python


def make_events(n_events: int, n_partons: int, seed: int) -> np.ndarray:
    """`(n_events, n_partons, 4)` massless, momentum-balanced events in GeV."""
    rng = np.random.default_rng(seed)
    p3 = rng.normal(scale=10.0, size=(n_events, n_partons, 3))
    p3 -= p3.mean(axis=1, keepdims=True)
    e = np.linalg.norm(p3, axis=-1, keepdims=True)
    return np.concatenate([e, p3], axis=-1)


def pythia_events(momenta: np.ndarray) -> list[Any]:
    import pythia8mc

    data = pythia8mc.Pythia("", False).particleData  # no banner
    records = []
    for event in momenta:
        record = pythia8mc.Event()
        record.init("thrust benchmark", data)
        record.reset()
        for e, px, py, pz in event:
            record.append(21, 23, 101, 102, px, py, pz, e)  # final-state gluons
        records.append(record)
    return records


def run(
    n_events: int = 100_000, n_partons: int = 16, n_peer: int = 20_000, repeats: int = 5,
    seed: int = 20261125,
) -> dict[str, Any]:  # fmt: skip
    import pythia8mc

    from diffhep import observables

    # float64 for this benchmark only (the library never flips this flag).
    jax.config.update("jax_enable_x64", True)
    momenta = make_events(n_events, n_partons, seed)
    device_momenta = jax.block_until_ready(jnp.asarray(momenta))

    ours = time_jax(jax.jit(observables.thrust), device_momenta, repeats=repeats)
    t_ours = np.asarray(ours.pop("output"))

    fill = time_python(lambda: pythia_events(momenta[:n_peer]), repeats=1)
    records = fill.pop("output")
    # select = 1: all final-state particles, as diffhep (every particle given counts).
    analyser = pythia8mc.Thrust(1)

    def analyse() -> np.ndarray:
        out = np.empty(len(records))
        for i, record in enumerate(records):
            analyser.analyze(record)
            out[i] = analyser.thrust()
        return out

    peer = time_python(analyse, repeats=3)
    t_peer = peer.pop("output")
    max_dev = float(np.max(np.abs(t_ours[:n_peer] - t_peer)))
    if not max_dev < 1e-12:
        raise AssertionError(f"diffhep and Pythia thrust differ by {max_dev:.3g}")

    ours_rate = n_events / ours["steady_s"]
    peer_rate = n_peer / peer["steady_s"]
    return {
        "settings": {
            "n_events": n_events,
            "n_partons": n_partons,
            "n_peer_events": n_peer,
            "repeats": repeats,
            "seed": seed,
            "dtype": str(device_momenta.dtype),
            "momenta": "Gaussian p (sigma 10 GeV), sum p = 0, massless",
            "peer": "pythia8mc.Thrust(select=1).analyze on pre-filled pythia8mc.Event",
        },
        "diffhep": {**ours, "events_per_s": ours_rate},
        "pythia8": {**peer, "fill_s": fill["steady_s"], "events_per_s": peer_rate},
        "max_abs_thrust_difference": max_dev,
        "mean_thrust": float(np.mean(t_ours)),
        "summary": {
            "diffhep_events_per_s": ours_rate,
            "diffhep_first_call_s": ours["first_call_s"],
            "diffhep_compile_s": ours["first_call_s"] - ours["steady_s"],
            "peer": "Pythia 8 Thrust",
            "peer_events_per_s": peer_rate,
            "ratio": ours_rate / peer_rate,
        },
    }
