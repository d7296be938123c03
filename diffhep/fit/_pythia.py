"""Pythia 8 parton-level events as pseudo-data (pythia8mc, imported lazily): e+e- → Z →
q q̄ for the α_s fit, and p p → t t̄ → 6 partons for the top-mass fit."""

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
    py = _seeded((*PYTHIA_PARTON_LEVEL, f"Beams:eCM = {sqrt_s}"), seed)
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


def _seeded(settings, seed: int):
    """An initialised quiet `pythia8mc.Pythia` with `settings` and a reproducible seed."""
    try:
        import pythia8mc
    except ImportError as err:  # pragma: no cover - a core-only install
        raise ImportError("Pythia pseudo-data needs pythia8mc: pip install pythia8mc==8.317.2") from err

    py = pythia8mc.Pythia("", False)
    for s in (*settings, "Next:numberCount = 0", "Print:quiet = on", "Random:setSeed = on", f"Random:seed = {int(seed) % 900_000_000 + 1}"):
        if not py.readString(s):
            raise RuntimeError(f"Pythia rejected the setting {s!r}")
    if not py.init():
        raise RuntimeError("Pythia failed to initialise")
    return py


def ttbar_settings(mt: float, cfg) -> tuple[str, ...]:
    """Pythia 8 settings for p p → t t̄ → (b u d̄)(b̄ d ū) at parton level, aligned with
    the top-mass model's `cfg` (`diffhep.fit.MtopConfig`): g g → t t̄ only, NNPDF3.1 LO
    (`PDF:pSet = 18`, the grid the model reads), fixed μ_F = μ_R = `cfg.mu` with
    one-loop α_s(M_Z) = 0.118 (as `tests/test_xsec.py` aligns σ(pp → t t̄)), the
    model's top and W masses and widths, massless b, u and d quarks, t → b W⁺ and
    W⁺ → u d̄ only, no showers, no hadronisation. What stays Pythia's own: its
    Breit–Wigner line shapes and the angular weights of its top decays
    (`SigmaProcess::weightDecay`), where the model is spin-averaged."""
    sqrt_s, mu, wt, mw, ww = cfg.sqrt_s, cfg.mu, cfg.wt, cfg.mw, cfg.ww
    return (
        f"Beams:eCM = {sqrt_s}",
        "Top:gg2ttbar = on",
        "PDF:pSet = 18",
        "PartonLevel:all = off",
        "HadronLevel:all = off",
        "SigmaProcess:renormScale2 = 5",  # 5: the fixed scale below (4 would be ŝ)
        "SigmaProcess:factorScale2 = 5",
        f"SigmaProcess:renormFixScale = {mu * mu}",
        f"SigmaProcess:factorFixScale = {mu * mu}",
        "SigmaProcess:alphaSvalue = 0.118",  # one-loop, n_f = 5, as the model's α_s(μ)
        "SigmaProcess:alphaSorder = 1",
        "StandardModel:alphaSnfmax = 5",
        f"6:m0 = {mt}",
        f"6:mWidth = {wt}",
        f"24:m0 = {mw}",
        f"24:mWidth = {ww}",
        "1:m0 = 0",
        "2:m0 = 0",
        "5:m0 = 0",
        "6:onMode = off",
        "6:onIfMatch = 5 24",
        "24:onMode = off",
        "24:onIfMatch = 1 2",
    )


#: Model order of the six partons: b, u, d̄ (from t), b̄, d, ū (from t̄).
_TTBAR_ORDER = (5, 2, -1, -5, 1, -2)


def pythia_ttbar_partons(n_events: int, mt: float, seed: int, cfg) -> np.ndarray:
    """`(n_events, 6, 4)` lab-frame momenta (GeV) of Pythia 8 t t̄ events at top mass
    `mt` (`ttbar_settings(mt, cfg)`), in the order b, u, d̄, b̄, d, ū."""
    py = _seeded(ttbar_settings(mt, cfg), seed)
    out = np.empty((n_events, 6, 4))
    i = 0
    while i < n_events:
        if not py.next():
            continue
        final = {q.id(): (q.e(), q.px(), q.py(), q.pz()) for q in py.process if q.isFinal()}
        if sorted(final) != sorted(_TTBAR_ORDER):  # pragma: no cover - the decay modes allow nothing else
            raise RuntimeError(f"unexpected Pythia t t-bar final state {sorted(final)}")
        out[i] = [final[pid] for pid in _TTBAR_ORDER]
        i += 1
    return out
