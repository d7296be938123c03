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

**On the fly.** `compute_corrections` makes the same kind of table for any √s, any
of the three observables and any bins (the fit's own variable: 1 − T, C or
−ln y23), with the same method and settings; the script calls the same
`generate_event_shapes` / `correction_factors`, so there is one implementation.
`cached_corrections` stores each result as JSON in a cache folder, keyed by every
input (√s, observable, edges, Pythia settings, events, seed, Pythia version), so
that a rerun does not regenerate.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ._pythia import EE_TO_QQBAR

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
    factors = [load_corrections(observable, s)[1:] for s in settings or correction_settings()]
    return moderate_mask(factors, low=low, high=high, max_rel_err=max_rel_err)


def moderate_mask(
    factors: Sequence[tuple[np.ndarray, np.ndarray]],
    low: float = 0.8,
    high: float = 1.25,
    max_rel_err: float = 0.05,
) -> np.ndarray:
    """`moderate_bins` for any tables: `factors` is a list of `(factor, factor_err)`
    pairs of `(n,)` arrays (one per setting). Returns the `(n,)` bool mask of bins
    where every factor is finite, in `[low, high]`, with relative error ≤ `max_rel_err`."""
    if not 0 < low <= 1 <= high:
        raise ValueError(f"need 0 < low <= 1 <= high, got low={low}, high={high}")
    if not max_rel_err > 0:
        raise ValueError(f"max_rel_err must be > 0, got {max_rel_err}")
    mask = None
    for c, err in factors:
        c, err = np.asarray(c, float), np.asarray(err, float)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(c) & (c >= low) & (c <= high) & (err <= max_rel_err * c)
        mask = ok if mask is None else mask & ok
    return mask


def longest_run(mask: np.ndarray) -> tuple[int, int]:
    """`(start, stop)` bin indices of the longest contiguous run of True in `mask`
    (the first one if several are equally long); `(0, 0)` if there is none."""
    best, start = (0, 0), None
    for i, ok in enumerate([*np.asarray(mask, bool), False]):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return best


def moderate_range(observable: str, **kwargs) -> tuple[float, float]:
    """The x range `(lo, hi)` of the longest contiguous run of `moderate_bins`
    (same keyword arguments). With the defaults (0.8 ≤ c ≤ 1.25 and ≤ 5 % MC error
    in all three settings) this is T ∈ [0.73, 0.96], C ∈ [0.20, 0.82] and
    −ln y23 ∈ [1.2, 5.6]. Raises `ValueError` if no bin qualifies."""
    mask = moderate_bins(observable, **kwargs)
    edges = load_corrections(observable)[0]
    best = longest_run(mask)
    if best[1] == best[0]:
        raise ValueError(f"no bin of {observable!r} has a moderate correction with {kwargs or 'the defaults'}")
    return float(edges[best[0]]), float(edges[best[1]])


# -- Pythia 8 generation (shared with scripts/make_hadronization_corrections.py) ----------

#: Pythia 8 settings common to every setting, without the beam energy and the seed.
PYTHIA_BASE_SETTINGS = (
    *EE_TO_QQBAR,
    "HadronLevel:all = off",
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10",
    "Next:numberCount = 0",
    "Print:quiet = on",
    "Random:setSeed = on",
)
#: The hadronisation settings: the default and the two ``StringPT:sigma`` variations.
HADRONIZATION_SETTINGS = {
    "default": {"extra": (), "description": "Pythia 8 default tune (Monash 2013), StringPT:sigma = 0.335"},
    "sigma_pt_down": {"extra": ("StringPT:sigma = 0.30",), "description": "StringPT:sigma 0.335 -> 0.30 GeV"},
    "sigma_pt_up": {"extra": ("StringPT:sigma = 0.37",), "description": "StringPT:sigma 0.335 -> 0.37 GeV"},
}
#: √s range (GeV) accepted for on-the-fly corrections and `--data FILE.yoda` fits. The
#: shower is massless with five flavours, which needs √s well above the b b̄ threshold
#: (10 GeV is the lowest accepted; JADE/PETRA data start at 14 GeV); t t̄ (above
#: 2 m_t ≈ 345 GeV) is neither generated nor showered. Up to 340 GeV the shower's
#: default capacity (64) holds: at most 50 partons in 4000 events at α_s = 0.15.
SQRT_S_RANGE = (10.0, 340.0)
_CHUNK = 4096  # events per C-parameter batch
_PAD = 16  # pad multiplicities to a multiple of this (few jit shapes)
_METHOD_VERSION = 1  # bump when the generation or binning changes (invalidates caches)


def pythia_settings(sqrt_s: float, setting: str, seed: int) -> list[str]:
    """All Pythia 8 setting lines for one hadronisation `setting` at `sqrt_s` (GeV)."""
    if setting not in HADRONIZATION_SETTINGS:
        raise ValueError(f"setting {setting!r} unknown; choose from {', '.join(HADRONIZATION_SETTINGS)}")
    if not 0 <= int(seed) <= 900_000_000:
        raise ValueError(f"seed={seed} must be in [0, 900000000] (Pythia's Random:seed)")
    return [
        *PYTHIA_BASE_SETTINGS[:2],
        f"Beams:eCM = {float(sqrt_s)!r}",
        *PYTHIA_BASE_SETTINGS[2:],
        *HADRONIZATION_SETTINGS[setting]["extra"],
        f"Random:seed = {int(seed)}",
    ]


def _pad(particles: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    cap = max(_PAD, -(-max(len(p) for p in particles) // _PAD) * _PAD)
    momenta = np.zeros((len(particles), cap, 4))
    mask = np.zeros((len(particles), cap), bool)
    for i, p in enumerate(particles):
        momenta[i, : len(p)] = p
        mask[i, : len(p)] = True
    return momenta, mask


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index per value, −1 outside [edges[0], edges[-1]] (and for NaN); bins are
    closed on the left, the last one also on the right (T = 1 for back-to-back
    q q̄); values within 1e-12 outside the range (round-off, e.g. C = −1e-17) count
    as inside."""
    values = np.asarray(values, float)
    edges = np.asarray(edges, float)
    v = np.clip(values, edges[0], edges[-1])
    v = np.where(np.abs(values - v) <= 1e-12, v, np.nan)
    idx = np.searchsorted(edges, v, side="right") - 1
    idx = np.where(v == edges[-1], len(edges) - 2, idx)
    return np.where(np.isnan(v), -1, idx).astype(np.int32)


def generate_event_shapes(
    sqrt_s: float,
    n_events: int,
    setting: str = "default",
    seed: int = 1,
    observables: Sequence[str] = OBSERVABLES,
    n_check: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Event shapes of Pythia 8 e+e- → γ*/Z → q q̄ events at parton and hadron level.

    Each event is generated with ``HadronLevel:all = off`` (`pythia.next()`); its
    *parton level* is every visible final-state particle then (q, g and QED-shower
    photons). `pythia.forceHadronLevel()` then hadronises the *same* event, and its
    *hadron level* is every visible final-state particle (cτ > 10 mm stable).

    **Arguments:**
    - `sqrt_s`: centre-of-mass energy in GeV, in `SQRT_S_RANGE`.
    - `n_events`: events to generate (≥ 1; failed events are regenerated).
    - `setting`: a key of `HADRONIZATION_SETTINGS`.
    - `seed`: Pythia's ``Random:seed``, in [0, 9e8].
    - `observables`: a subset of ``("thrust", "c_parameter", "y23")``. Thrust T is
      Pythia's ``Thrust`` (select = 2), C is `diffhep.observables.c_parameter`, and
      y23 (not −ln y23; 0 for fewer than three particles) is fastjet's
      ``ee_kt_algorithm`` ``exclusive_ymerge(2)``.
    - `n_check`: the first `n_check` events are re-checked against
      `diffhep.observables.thrust` / `durham_y23` (`RuntimeError` if they disagree).
    - `log`: called with a progress line every 20000 events.

    **Returns:** a dict with ``values`` (level → observable → `(n_events,)` array),
    ``multiplicity`` (level → `(n_events,)`), ``n_failed``, ``wall_s``, ``checks``
    and ``pythia_version``.
    """
    for o in observables:
        if o not in OBSERVABLES:
            raise ValueError(f"observable {o!r} unknown; choose from {', '.join(OBSERVABLES)}")
    lo, hi = SQRT_S_RANGE
    if not lo <= float(sqrt_s) <= hi:
        raise ValueError(f"sqrt_s={sqrt_s} GeV is outside the range [{lo}, {hi}] GeV of the hadronisation corrections")
    if int(n_events) < 1:
        raise ValueError(f"n_events must be >= 1, got {n_events}")
    import jax
    import pythia8mc

    from .. import observables as O

    pythia = pythia8mc.Pythia("", False)
    for line in pythia_settings(sqrt_s, setting, seed):
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected {line!r}")
    if not pythia.init():
        raise RuntimeError("Pythia init failed")
    thrust = pythia8mc.Thrust()  # select = 2: visible final state
    c_param = jax.jit(O.c_parameter)
    if "y23" in observables:
        import fastjet

        jet_def = fastjet.JetDefinition0Param(fastjet.ee_kt_algorithm)

    def y23(p: np.ndarray) -> float:
        jets = [fastjet.PseudoJet(px, py, pz, e) for e, px, py, pz in p]
        return fastjet.ClusterSequence(jets, jet_def).exclusive_ymerge(2) if len(jets) >= 3 else 0.0

    levels = ("parton", "hadron")
    values = {lv: {k: np.empty(n_events) for k in observables} for lv in levels}
    mult = {lv: np.empty(n_events, np.int32) for lv in levels}
    check = {lv: [] for lv in levels}
    buffer = {lv: [] for lv in levels}
    n_failed = 0
    t0 = time.perf_counter()

    def flush(end: int):
        for lv in levels:
            if buffer[lv] and "c_parameter" in observables:
                momenta, mask = _pad(buffer[lv])
                values[lv]["c_parameter"][end - len(buffer[lv]) : end] = np.asarray(c_param(momenta, mask))
            buffer[lv] = []

    i = 0
    while i < n_events:
        if not pythia.next():
            n_failed += 1
            continue
        event = pythia.event
        parts = {}
        ok = True
        for lv in levels:
            if lv == "hadron" and not pythia.forceHadronLevel():
                ok = False
                break
            p = np.array([(q.e(), q.px(), q.py(), q.pz()) for q in event if q.isFinal() and q.isVisible()])
            t = np.nan
            if "thrust" in observables or i < n_check:
                if not thrust.analyze(event):
                    ok = False
                    break
                t = thrust.thrust()
            parts[lv] = (p, t)
        if not ok:
            n_failed += 1
            continue
        for lv, (p, t) in parts.items():
            if "thrust" in observables:
                values[lv]["thrust"][i] = t
            if "y23" in observables:
                values[lv]["y23"][i] = y23(p)
            mult[lv][i] = len(p)
            buffer[lv].append(p)
            if i < n_check:
                check[lv].append((p, t))
        i += 1
        if i % _CHUNK == 0 or i == n_events:
            flush(i)
        if log is not None and i % 20000 == 0:
            log(f"[{setting}] {i}/{n_events} events, {i / (time.perf_counter() - t0):.0f}/s")
    wall = time.perf_counter() - t0

    checks = {}
    if n_check > 0:
        # Pythia's thrust and fastjet's y23 against diffhep.observables.
        for lv in levels:
            momenta, mask = _pad([p for p, _ in check[lv]])
            t_ref = np.array([t for _, t in check[lv]])
            dt = np.abs(np.asarray(jax.jit(O.thrust)(momenta, mask)) - t_ref)
            checks[lv] = {"n_events": len(check[lv]), "max_abs_dT": float(dt.max())}
            if "y23" in observables:
                y_ref = values[lv]["y23"][: len(check[lv])]
                dy = np.abs(np.asarray(jax.jit(O.durham_y23)(momenta, mask)) - y_ref) / np.maximum(y_ref, 1e-300)
                checks[lv]["max_rel_dy23"] = float(dy.max())
            if checks[lv]["max_abs_dT"] > 1e-10 or checks[lv].get("max_rel_dy23", 0.0) > 1e-9:
                raise RuntimeError(f"{setting}/{lv}: diffhep vs Pythia/fastjet disagree: {checks[lv]}")
    return {
        "setting": setting,
        "seed": int(seed),
        "sqrt_s": float(sqrt_s),
        "n_events": int(n_events),
        "n_failed": n_failed,
        "wall_s": wall,
        "values": values,
        "multiplicity": mult,
        "checks": checks,
        "pythia_version": pythia.parm("Pythia:versionNumber"),
    }


def correction_factors(
    bp: np.ndarray, bh: np.ndarray, n_bins: int, rng: np.random.Generator | None = None, n_boot: int = 200
) -> dict:
    """Correction factors `c_b = H_b / P_b` and their MC errors from the per-event bin
    indices at parton (`bp`) and hadron (`bh`) level of the same events (−1: outside).

    The error is the delta method for the correlated counts (`N11_b` events in bin b
    at both levels): `(σ_c/c)² = M_b/(H_b P_b)` with `M_b = H_b + P_b − 2 N11_b` the
    migrations (set to 1 where none are seen, so that no error is zero). With a
    `rng`, also an `n_boot`-replica Poisson bootstrap of the same (``bootstrap_err``).
    Bins with `H_b = 0` or `P_b = 0` are NaN.

    **Returns:** a dict of `(n_bins,)` arrays: ``factor``, ``factor_err``,
    ``bootstrap_err`` (NaN without `rng`), ``n_parton``, ``n_hadron``, ``n_both``.
    """
    bp, bh = np.asarray(bp), np.asarray(bh)
    n = len(bp)
    p = np.bincount(bp[bp >= 0], minlength=n_bins).astype(float)
    h = np.bincount(bh[bh >= 0], minlength=n_bins).astype(float)
    both = bp == bh
    n11 = np.bincount(bp[both & (bp >= 0)], minlength=n_bins).astype(float)
    ok = (p > 0) & (h > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(ok, h / p, np.nan)
        migrations = np.maximum(h + p - 2 * n11, 1.0)
        rel2 = np.where(ok, migrations / (h * p), np.nan)
    err = c * np.sqrt(np.maximum(rel2, 0.0))
    boot_err = np.full(n_bins, np.nan)
    if rng is not None:
        # Poisson bootstrap: each event gets a Poisson(1) weight in each replica.
        boot = np.empty((n_boot, n_bins))
        for r in range(n_boot):
            w = rng.poisson(1.0, n).astype(float)
            pw = np.bincount(bp[bp >= 0], weights=w[bp >= 0], minlength=n_bins)
            hw = np.bincount(bh[bh >= 0], weights=w[bh >= 0], minlength=n_bins)
            with np.errstate(divide="ignore", invalid="ignore"):
                boot[r] = hw / pw
        boot = np.where(np.isfinite(boot), boot, np.nan)
        enough = np.sum(np.isfinite(boot), axis=0) > 1
        boot_err[enough] = np.nanstd(boot[:, enough], axis=0, ddof=1)
        boot_err = np.where(ok, boot_err, np.nan)
    return {"factor": c, "factor_err": err, "bootstrap_err": boot_err, "n_parton": p, "n_hadron": h, "n_both": n11}


#: Fit observable (`diffhep.fit.OBSERVABLES`) → (observable generated, map to the fit variable).
_FIT_VARIABLES = {
    "thrust": ("thrust", lambda t: 1.0 - t),  # 1 − T
    "c": ("c_parameter", lambda c: c),  # C
    "y23": ("y23", lambda y: -np.log(y)),  # −ln y23 (+inf for y23 = 0: outside any bin)
}


def compute_corrections(
    sqrt_s: float,
    observable: str,
    edges: np.ndarray,
    n_events: int,
    setting: str = "default",
    seed: int = 1,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Hadronisation corrections for any √s and bins, generated now with Pythia 8.

    The same method as the shipped table (see the module docs and
    `generate_event_shapes`): `c_b = H_b / P_b` from the parton and hadron level
    of the same `n_events` events, with delta-method errors.

    **Arguments:**
    - `sqrt_s`: GeV, in `SQRT_S_RANGE`.
    - `observable`: ``"thrust"``, ``"c"`` or ``"y23"`` (the fit's names).
    - `edges`: increasing bin edges `(n + 1,)` in the fit variable: 1 − T, C or
      −ln y23 (the shipped table's thrust bins are in T: flip them).
    - `n_events`, `setting`, `seed`: as in `generate_event_shapes`.

    **Returns:** a dict with ``edges`` `(n + 1,)`, and ``factor``, ``factor_err``,
    ``n_parton``, ``n_hadron``, ``n_both`` as `(n,)` float64 arrays (NaN factors in
    bins without parton- or hadron-level events), plus the inputs, ``n_failed``,
    ``wall_s`` and ``pythia_version``.
    """
    if observable not in _FIT_VARIABLES:
        raise ValueError(f"observable {observable!r} unknown; choose from {', '.join(_FIT_VARIABLES)}")
    edges = np.asarray(edges, float)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be increasing with at least 2 entries, got {edges}")
    name, to_fit = _FIT_VARIABLES[observable]
    gen = generate_event_shapes(sqrt_s, n_events, setting, seed, observables=(name,), log=log)
    with np.errstate(divide="ignore"):
        bins = {lv: bin_index(to_fit(gen["values"][lv][name]), edges) for lv in ("parton", "hadron")}
    corr = correction_factors(bins["parton"], bins["hadron"], len(edges) - 1)
    return {
        "sqrt_s": float(sqrt_s),
        "observable": observable,
        "setting": setting,
        "pythia_settings": pythia_settings(sqrt_s, setting, seed),
        "seed": int(seed),
        "n_events": int(n_events),
        "n_failed": gen["n_failed"],
        "wall_s": gen["wall_s"],
        "pythia_version": gen["pythia_version"],
        "edges": edges,
        **{k: corr[k] for k in ("factor", "factor_err", "n_parton", "n_hadron", "n_both")},
    }


def default_cache_dir() -> Path:
    """Where `cached_corrections` keeps its tables: ``$DIFFHEP_CACHE`` or
    ``$XDG_CACHE_HOME/diffhep`` (default ``~/.cache/diffhep``), subfolder
    ``hadronization``."""
    root = os.environ.get("DIFFHEP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "diffhep"
    )
    return Path(root) / "hadronization"


def cache_key(sqrt_s: float, observable: str, edges: np.ndarray, n_events: int, setting: str, seed: int) -> str:
    """Hex digest of everything a computed table depends on."""
    import importlib.metadata

    blob = json.dumps(
        {
            "method": _METHOD_VERSION,
            "observable": observable,
            "edges": [float(f"{e:.12g}") for e in np.asarray(edges, float)],
            "pythia_settings": pythia_settings(sqrt_s, setting, seed),
            "n_events": int(n_events),
            "pythia8mc": importlib.metadata.version("pythia8mc"),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def cached_corrections(
    sqrt_s: float,
    observable: str,
    edges: np.ndarray,
    n_events: int,
    setting: str = "default",
    seed: int = 1,
    cache_dir: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict, bool]:
    """`compute_corrections`, stored in (and read back from) `cache_dir` (default
    `default_cache_dir()`) as ``<observable>_<sqrt_s>GeV_<setting>_<key>.json``.

    **Returns:** `(table, from_cache)`; the table's arrays are float64 NumPy arrays
    (NaN for empty bins), as from `compute_corrections`.
    """
    from ._alphas import write_json_atomic

    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(sqrt_s, observable, edges, n_events, setting, seed)
    path = folder / f"{observable}_{float(sqrt_s):g}GeV_{setting}_{key}.json"
    arrays = ("edges", "factor", "factor_err", "n_parton", "n_hadron", "n_both")
    if path.exists():
        with open(path) as f:
            table = json.load(f)
        for k in arrays:
            table[k] = np.array([np.nan if v is None else v for v in table[k]], float)
        return table, True
    table = compute_corrections(sqrt_s, observable, edges, n_events, setting, seed, log=log)
    payload = {k: ([None if not np.isfinite(v) else float(v) for v in table[k]] if k in arrays else table[k]) for k in table}
    payload["cache_key"] = key
    write_json_atomic(path, payload)
    return table, False


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
