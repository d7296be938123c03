"""Pythia 8 parton-level e+e- → Z → q q̄ events as pseudo-data (pythia8mc, lazily)."""

from __future__ import annotations

import numpy as np

#: e+e- → γ*/Z → q q̄ (q = d, u, s, c, b) without ISR; the beam energy is added by callers.
EE_TO_QQBAR = (
    "Beams:idA = 11",
    "Beams:idB = -11",
    "PDF:lepton = off",
    "WeakSingleBoson:ffbar2gmZ = on",
    "23:onMode = off",
    "23:onIfAny = 1 2 3 4 5",
)
#: The same at parton level, quietly.
PYTHIA_PARTON_LEVEL = (*EE_TO_QQBAR, "HadronLevel:all = off", "Next:numberCount = 0", "Print:quiet = on")


def pythia_partons(n_events: int, seed: int, sqrt_s: float = 91.1876, capacity: int = 96):
    """`n_events` Pythia 8 parton-level events as padded `(n, capacity, 4)` momenta and
    a mask (final-state partons and photons: everything final before hadronisation).
    Raises `ValueError` if an event has more than `capacity` particles."""
    import pythia8mc

    py = pythia8mc.Pythia("", False)
    for s in (*PYTHIA_PARTON_LEVEL, f"Beams:eCM = {sqrt_s}", "Random:setSeed = on", f"Random:seed = {int(seed) % 900_000_000 + 1}"):
        py.readString(s)
    if not py.init():
        raise RuntimeError("Pythia failed to initialise")
    p = np.zeros((n_events, capacity, 4))
    mask = np.zeros((n_events, capacity), bool)
    i = 0
    while i < n_events:
        if not py.next():
            continue
        rows = [(q.e(), q.px(), q.py(), q.pz()) for q in py.event if q.isFinal()]
        if len(rows) > capacity:
            raise ValueError(f"a Pythia event has {len(rows)} partons, more than capacity={capacity}")
        p[i, : len(rows)] = rows
        mask[i, : len(rows)] = True
        i += 1
    return p, mask
