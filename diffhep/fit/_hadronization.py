"""Per-bin hadronisation corrections for the ALEPH event shapes at √s = 91.2 GeV.

Our shower stops at partons; the ALEPH data (``diffhep.io.aleph_event_shapes``)
are at hadron level. The shipped table ``fit/data/hadronization_91GeV.json`` holds,
for each ALEPH bin b, ``c_b = h_b / p_b``: the ratio of Pythia 8's hadron-level to
parton-level normalised distributions, (1/N) dN/dx, from the *same* events
(``pythia.forceHadronLevel()`` after a parton-level ``next()``), both normalised to
all N generated events, including those outside the binned range (e.g. parton-level
events with y23 = 0). A parton-level prediction normalised the same way times
``c_b`` predicts the hadron level.

Observables and x variables (the ALEPH ones): ``"thrust"`` (x = T, not 1 − T),
``"c_parameter"`` (x = C), ``"y23"`` (x = −ln y23, Durham). Settings:
``"default"`` (Pythia 8.317 default, Monash 2013 tune) and the hadronisation-model
variations ``"sigma_pt_down"`` / ``"sigma_pt_up"`` (``StringPT:sigma`` 0.335 → 0.30 /
0.37 GeV). How the table was made: ``scripts/make_hadronization_corrections.py``
and the table's own ``metadata``.
"""

import functools
import importlib.resources
import json
import os

import numpy as np

TABLE_FILE = "hadronization_91GeV.json"
OBSERVABLES = ("thrust", "c_parameter", "y23")


def table_path() -> str:
    """File-system path of the shipped correction table."""
    return os.fspath(importlib.resources.files("diffhep") / "fit" / "data" / TABLE_FILE)


@functools.cache
def load_table() -> dict:
    """The whole shipped table (parsed JSON, cached; do not modify it)."""
    with open(table_path()) as f:
        return json.load(f)


def _array(values: list) -> np.ndarray:
    a = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    a.setflags(write=False)
    return a


def correction_settings() -> tuple[str, ...]:
    """Names of the Pythia settings in the table (``"default"`` first)."""
    return tuple(load_table()["settings"])


def load_corrections(observable: str, setting: str = "default") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hadronisation correction factors for one ALEPH observable at 91.2 GeV.

    **Arguments:**
    - `observable`: ``"thrust"`` (bins in T), ``"c_parameter"`` (bins in C) or
      ``"y23"`` (bins in −ln y23).
    - `setting`: ``"default"``, ``"sigma_pt_down"`` or ``"sigma_pt_up"``.

    **Returns:** `(edges, factor, factor_err)`: read-only float64 arrays of shape
    `(n + 1,)`, `(n,)`, `(n,)`. The edges equal the ALEPH bin edges
    (`diffhep.io.aleph_event_shapes()[observable].edges`) exactly. `factor_err` is
    the MC statistical error: the delta method for the correlated parton/hadron
    counts `P`, `H` of the same events, `(err/c)² = M/(H P)` with `M = H + P − 2 N11`
    the events migrating into or out of the bin (`N11` stay in it; `M ≥ 1`). Bins without parton- or hadron-level MC entries are NaN in
    both; use `moderate_bins` to select bins for a fit.

    Raises `ValueError` for an unknown observable or setting.
    """
    table = load_table()
    if observable not in table["observables"]:
        raise ValueError(f"observable {observable!r} unknown; choose from {', '.join(table['observables'])}")
    if setting not in table["settings"]:
        raise ValueError(f"setting {setting!r} unknown; choose from {', '.join(table['settings'])}")
    corr = table["settings"][setting]["corrections"][observable]
    return _array(table["observables"][observable]["edges"]), _array(corr["factor"]), _array(corr["factor_err"])


def moderate_bins(
    observable: str,
    low: float = 0.8,
    high: float = 1.25,
    settings: tuple[str, ...] | None = None,
    max_rel_err: float = 0.05,
) -> np.ndarray:
    """Mask `(n,)` of the bins where the corrections are moderate in every setting.

    **Arguments:**
    - `observable`: as in `load_corrections`.
    - `low`, `high`: the allowed range of the factor (default 0.8–1.25).
    - `settings`: the settings that must all qualify (default: all in the table).
    - `max_rel_err`: the largest allowed relative MC error of the factor.

    **Returns:** a bool array, True where every setting's factor is finite, in
    `[low, high]`, and known to `max_rel_err`. The mask need not be contiguous;
    fits usually take the longest contiguous run of True bins.
    """
    if not 0 < low <= 1 <= high:
        raise ValueError(f"need 0 < low <= 1 <= high, got low={low}, high={high}")
    mask = None
    for s in settings or correction_settings():
        _, c, err = load_corrections(observable, s)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(c) & (c >= low) & (c <= high) & (err <= max_rel_err * c)
        mask = ok if mask is None else mask & ok
    return mask


def moderate_range(observable: str, **kwargs) -> tuple[float, float]:
    """The x range `(lo, hi)` of the longest contiguous run of `moderate_bins`
    (same keyword arguments). With the defaults (0.8 ≤ c ≤ 1.25 and ≤ 5 % MC error
    in all three settings) this is T ∈ [0.73, 0.96], C ∈ [0.20, 0.82] and
    −ln y23 ∈ [1.2, 5.6]. Raises `ValueError` if no bin qualifies."""
    mask = moderate_bins(observable, **kwargs)
    edges = load_corrections(observable)[0]
    best, start = (0, 0), None
    for i, ok in enumerate([*mask, False]):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    if best[1] == best[0]:
        raise ValueError(f"no bin of {observable!r} has a moderate correction with {kwargs or 'the defaults'}")
    return float(edges[best[0]]), float(edges[best[1]])
