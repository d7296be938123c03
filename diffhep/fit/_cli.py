"""`diffhep fit-alphas`: the α_s fit from the command line."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._alphas import Target, fit_alphas, make_templates, pseudo_data, write_json_atomic
from ._template import OBSERVABLES

# Fit ranges for pseudo-data, in the fit variable (1−T, C, −ln y23): away from the
# two-jet peak, where the shower cutoff and the discreteness dominate.
DEFAULT_EDGES = {
    "thrust": np.linspace(0.02, 0.32, 16),
    "c": np.linspace(0.08, 0.76, 18),
    "y23": np.linspace(1.5, 7.5, 13),
}


def run_fit_alphas(
    *,
    out: Path,
    truth_alpha_s: float,
    events: int,
    mc_events: int | None,
    seed: int,
    observables: list[str],
    max_steps: int,
    scan: bool,
    progress: bool = True,
    pythia: bool = False,
    jumps: bool = False,
    events_file: str | None = None,
) -> dict:
    """Pseudo-data fit: shower `events` at the truth (or Pythia 8 parton-level events
    with `pythia`, or the events of `events_file`, `diffhep.io.load_events`), fit with
    an independent MC sample. A file written by `diffhep shower` with the templates'
    cutoff names its α_s, which becomes the truth; other files have none."""
    from .. import shower

    for o in observables:
        if o not in OBSERVABLES:
            raise ValueError(f"--observable {o!r} is not one of {', '.join(OBSERVABLES)}")
    lo, hi = shower.ALPHA_S_RANGE
    if not lo <= truth_alpha_s <= hi:
        raise ValueError(f"--truth-alpha-s={truth_alpha_s} is outside the supported range [{lo}, {hi}]")
    if events < 1000:
        raise ValueError(f"--events must be >= 1000, got {events}")
    n_mc = int(mc_events or events)
    if n_mc < 1000:
        raise ValueError(f"--mc-events must be >= 1000, got {n_mc}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    targets, overflow = [], 0.0
    # The fit's templates also shower the pseudo-data (other keys): one compilation.
    templates = make_templates([(o, DEFAULT_EDGES[o]) for o in observables], n_mc, seed + 7919, jumps=jumps)
    source = None
    if events_file is not None:
        base = templates[0].base
        targets, source = file_targets(events_file, observables, seed, float(base.sqrt_s))
        meta = source["metadata"]
        # A truth only where the file's shower is the templates' model at another α_s.
        same_model = meta.get("generator") == "diffhep.shower" and meta.get("kt_min") == float(base.kt_min)
        truth_alpha_s = meta.get("alpha_s") if same_model else None
    elif pythia:
        targets = pythia_targets(observables, events, seed)
        truth_alpha_s = None
    else:
        for i, o in enumerate(observables):
            t, ovf = pseudo_data(o, DEFAULT_EDGES[o], truth_alpha_s, events, seed * 1000 + i, template=templates[i])
            targets.append(t)
            overflow = max(overflow, ovf)
    result, arrays = fit_alphas(
        targets, templates=templates, truth_alpha_s=truth_alpha_s, max_steps=max_steps, scan=scan, progress=progress
    )
    result.overflow_fraction = max(result.overflow_fraction, overflow)
    if truth_alpha_s is not None:
        result.extra["pull"] = (result.alpha_s - truth_alpha_s) / result.alpha_s_err_total
    if source is not None:
        result.extra["data"] = f"events file {events_file}"
        result.extra["events_file"] = source
    else:
        result.extra["data"] = "Pythia 8 parton level" if pythia else "pseudo-data (diffhep shower)"
    check_overflow(result.overflow_fraction)
    from ._plots import plot_fit

    plot_fit(out, result, targets, arrays)
    payload = result.to_json()
    write_json_atomic(out / "result.json", payload)
    return payload


def pythia_targets(observables: list[str], events: int, seed: int) -> list[Target]:
    """Histograms of Pythia 8 parton-level events (e+e- → Z → q q̄, 91.1876 GeV)."""
    from ._pythia import pythia_partons

    p, mask = pythia_partons(events, seed)
    return event_targets(observables, p, mask)


def event_targets(observables: list[str], momenta, mask) -> list[Target]:
    """Counts of each observable of unweighted events `(n, capacity, 4)` with `mask`
    in the fit's default bins (`n` counts every event, also those out of range)."""
    import jax

    from .. import observables as obs
    from ._template import event_shape

    buckets = obs.MultiplicityBuckets(np.asarray(mask))
    out = []
    for o in observables:
        x = np.asarray(jax.jit(lambda pp, mm: buckets.apply(event_shape(o), pp, mm))(momenta, mask))
        counts, _ = np.histogram(x, DEFAULT_EDGES[o])
        out.append(Target(o, DEFAULT_EDGES[o], counts=counts.astype(float), n_events=int(np.shape(mask)[0])))
    return out


def file_targets(path: str, observables: list[str], seed: int, sqrt_s: float) -> tuple[list[Target], dict]:
    """Targets from a parton-level events file (`diffhep.io.load_events`) at the
    templates' `sqrt_s` (GeV); weighted events are unweighted first (accept/reject
    against the largest weight, `seed`), as real data are counts. Returns the targets
    and a record of the file for the result (its metadata and the events kept)."""
    from .. import io

    events, meta = io.load_events(path)
    p, mask, w = (np.asarray(x) for x in (events.momenta, events.mask, events.weights))
    if events.n_events < 1000:
        raise ValueError(f"{path}: {events.n_events} events; a fit needs >= 1000")
    energy = p[..., 0].sum(axis=1)
    off = np.abs(energy / sqrt_s - 1) > 1e-6
    if off.any():
        i = int(np.argmax(off))
        raise ValueError(
            f"{path}: event {i} has total energy {energy[i]:.6g} GeV; the α_s templates shower "
            f"e+e- at √s = {sqrt_s:g} GeV (fit other energies as a .yoda table with --sqrt-s)"
        )
    if w.max() <= 0:
        raise ValueError(f"{path}: every event has weight 0")
    keep = np.ones(len(w), bool) if np.all(w == w[0]) else np.random.default_rng(seed).random(len(w)) < w / w.max()
    targets = event_targets(observables, p[keep], mask[keep])
    record = {"file": str(path), "metadata": meta, "n_file": events.n_events, "n_unweighted": int(keep.sum())}
    return targets, record


def check_overflow(fraction: float) -> None:
    from ..shower import OVERFLOW_TOLERANCE

    if fraction > OVERFLOW_TOLERANCE:
        raise ValueError(
            f"{fraction:.2e} of the showered events overflowed the capacity (tolerance "
            f"{OVERFLOW_TOLERANCE:g}); raise the shower capacity or kt_min"
        )


def summary(payload: dict) -> str:
    lines = [
        f"alpha_s(MZ) = {payload['alpha_s']:.5f} ± {payload['alpha_s_err']:.5f} (stat) "
        f"± {payload['alpha_s_err_mc']:.5f} (MC)",
    ]
    if payload.get("truth_alpha_s") is not None:
        lines.append(f"truth       = {payload['truth_alpha_s']:.5f}   pull = {payload.get('pull', math.nan):+.2f}")
    lines.append(
        f"chi2/ndf = {payload['chi2_ndf']:.2f} ({payload['chi2_ndf_with_mc']:.2f} with the template's MC variance)   steps = {payload['n_steps']}   converged = {payload['converged']}   "
        f"overflow = {payload['overflow_fraction']:.1e}   wall = {payload['wall_s']:.1f} s on {payload['device']}"
    )
    return "\n".join(lines)


_ALEPH_KEYS = {"thrust": "thrust", "c": "c_parameter", "y23": "y23"}
ALEPH_DATASETS = {
    "aleph-thrust-91": ["thrust"],
    "aleph-c-91": ["c"],
    "aleph-y23-91": ["y23"],
    "aleph-91": ["thrust", "c", "y23"],
}


def aleph_target(observable: str, setting: str = "default", with_correction_mc: bool = True) -> Target:
    """ALEPH 91.2 GeV distribution of `observable` in the bins where the Pythia 8
    hadronisation correction is moderate (`moderate_range`), as a `Target` in the fit
    variable (1−T, C, −ln y23) with the per-bin correction (hadron/parton)."""
    from ..io import aleph_event_shapes
    from ._hadronization import load_corrections, moderate_range

    key = _ALEPH_KEYS[observable]
    sc = aleph_event_shapes()[key]
    edges, c, cerr = load_corrections(key, setting)
    if not np.array_equal(edges, sc.edges):
        raise RuntimeError(f"correction bins for {key} do not match the ALEPH bins")
    lo, hi = moderate_range(key)
    sel = (edges[:-1] >= lo - 1e-9) & (edges[1:] <= hi + 1e-9)
    e = np.concatenate([edges[:-1][sel], edges[1:][sel][-1:]])
    y = np.asarray(sc.y)[sel]
    err = np.maximum(np.asarray(sc.y_err_minus), np.asarray(sc.y_err_plus))[sel]
    cf, ce = c[sel], cerr[sel]
    if with_correction_mc:
        err = np.hypot(err, y * ce / cf)
    if observable == "thrust":  # bins in T → bins in 1 − T
        e, y, err, cf = 1.0 - e[::-1], y[::-1], err[::-1], cf[::-1]
    return Target(observable, e, density=y, density_err=err, correction=cf)


def fit_real_data(
    make_target,
    *,
    settings: tuple[str, ...],
    out_dir: Path,
    mc_events: int,
    seed: int,
    max_steps: int,
    scan: bool,
    progress: bool,
    base=None,
    jumps: bool = False,
) -> dict:
    """One real-data fit: `make_target(setting="default", with_correction_mc=True)`
    gives the `Target` with one hadronisation setting's correction. Fits with the
    default, then adds `alpha_s_err_exp` (data errors only), `alpha_s_err_hadronization`
    (the largest shift over the other `settings`) and `alpha_s_err_total`, checks the
    overflow, and plots into `out_dir`. Returns the result's JSON payload."""
    from ._alphas import _Objective
    from ._data import FIT_VARIABLES
    from ._plots import plot_fit

    tgt = make_target()
    result, arrays = fit_alphas(
        [tgt], n_mc=mc_events, seed=seed, max_steps=max_steps, scan=scan, progress=progress,
        start=0.125, base=base, jumps=jumps,
    )
    # Further uncertainties, from one Gauss–Newton step away from the minimum with
    # the template held at the fitted α_s (first order in the shift).
    tpl = arrays["templates"][0]
    a = result.alpha_s

    def shift(target):
        t = _Objective([target], [tpl]).terms(a)
        return -t["grad"] / t["fisher"], t["fisher"]

    _, fisher_exp = shift(make_target(with_correction_mc=False))
    result.extra["alpha_s_err_exp"] = 1.0 / math.sqrt(fisher_exp)
    shifts = {s: shift(make_target(setting=s))[0] for s in settings if s != "default"}
    result.extra["alpha_s_err_hadronization"] = max(abs(v) for v in shifts.values())
    result.extra["hadronization_shifts"] = shifts
    result.extra["fit_range"] = [float(tgt.edges[0]), float(tgt.edges[-1])]
    result.extra["fit_variable"] = FIT_VARIABLES[tgt.observable]
    check_overflow(result.overflow_fraction)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_fit(out_dir, result, [tgt], arrays)
    payload = result.to_json()
    payload["alpha_s_err_total"] = math.sqrt(
        payload["alpha_s_err"] ** 2 + payload["alpha_s_err_mc"] ** 2 + payload["alpha_s_err_hadronization"] ** 2
    )
    return payload


def run_fit_alphas_data(
    *,
    out: Path,
    data: str,
    observables: list[str] | None,
    mc_events: int,
    seed: int,
    max_steps: int,
    scan: bool,
    progress: bool = True,
    jumps: bool = False,
) -> dict:
    """Fit the ALEPH LEP1 event shapes at 91.2 GeV (real data, hadronisation-corrected
    shower), one fit per observable; the first observable's fit is the headline."""
    from ._hadronization import correction_settings

    if data not in ALEPH_DATASETS:
        raise ValueError(f"--data {data!r} is not one of {', '.join(ALEPH_DATASETS)} (or a .yoda file)")
    obs_list = observables or ALEPH_DATASETS[data]
    for o in obs_list:
        if o not in _ALEPH_KEYS:
            raise ValueError(f"--observable {o!r} is not one of {', '.join(_ALEPH_KEYS)}")
    if mc_events < 1000:
        raise ValueError(f"--mc-events must be >= 1000, got {mc_events}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    per_obs = {}
    headline = None
    for i, o in enumerate(obs_list):
        # Own template seed per observable: independent shower MC, so that the
        # agreement χ² below may add their MC errors in quadrature.
        payload = fit_real_data(
            lambda setting="default", with_correction_mc=True, o=o: aleph_target(o, setting, with_correction_mc),
            settings=correction_settings(),
            out_dir=out / o,
            mc_events=mc_events, seed=seed + i, max_steps=max_steps, scan=scan, progress=progress, jumps=jumps,
        )
        payload["data"] = "ALEPH 2004 (Eur. Phys. J. C 35 (2004) 457), 91.2 GeV, hadron level"
        payload["sqrt_s"] = 91.2
        per_obs[o] = payload
        if headline is None:
            headline = dict(payload)
    headline["truth_alpha_s"] = None
    headline["per_observable"] = {k: {kk: v[kk] for kk in (
        "alpha_s", "alpha_s_err", "alpha_s_err_exp", "alpha_s_err_mc", "alpha_s_err_hadronization",
        "alpha_s_err_total", "chi2_ndf", "fit_range", "fit_variable")} for k, v in per_obs.items()}
    vals = np.array([v["alpha_s"] for v in per_obs.values()])
    errs = np.array([v["alpha_s_err_total"] for v in per_obs.values()])
    if len(vals) > 1:
        w = 1.0 / errs**2
        mean = float(np.sum(w * vals) / np.sum(w))
        headline["observables_agreement_chi2"] = float(np.sum(w * (vals - mean) ** 2))
        headline["observables_agreement_ndf"] = len(vals) - 1
    write_json_atomic(out / "result.json", headline)
    return headline


def run_fit_alphas_yoda(
    *,
    out: Path,
    data: str,
    histogram: str | None,
    sqrt_s: float | None,
    observable: str | None,
    x_variable: str | None,
    mc_events: int,
    seed: int,
    max_steps: int,
    scan: bool,
    had_events: int = 100_000,
    had_cache: Path | None = None,
    had_max_rel_err: float = 0.05,
    progress: bool = True,
    jumps: bool = False,
) -> dict:
    """Fit any YODA distribution (`diffhep.fit._data`) at `sqrt_s` GeV: the shower is
    `DiscreteQCD(sqrt_s=sqrt_s)`, the hadronisation corrections are generated with
    Pythia 8 for the table's bins (three settings of `had_events` events each,
    cached), and the fit range is where they are moderate."""
    import sys

    from .. import shower
    from ._data import cache_folder, check_sqrt_s, data_target, read_data_table, select_moderate
    from ._hadronization import HADRONIZATION_SETTINGS, cached_corrections

    if sqrt_s is None:
        raise ValueError("--sqrt-s is required with a .yoda --data file (the table's centre-of-mass energy, GeV)")
    sqrt_s = check_sqrt_s(sqrt_s)
    if mc_events < 1000:
        raise ValueError(f"--mc-events must be >= 1000, got {mc_events}")
    if had_events < 1000:
        raise ValueError(f"--had-events must be >= 1000, got {had_events}")
    if not 0 < had_max_rel_err <= 1:
        raise ValueError(f"--had-max-rel-err must be in (0, 1], got {had_max_rel_err}")
    table = read_data_table(data, histogram, observable, x_variable)
    base = shower.DiscreteQCD(sqrt_s=sqrt_s)  # ValueError below the cutoff
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    def log(line: str) -> None:
        if progress:
            print(f"diffhep: {line}", file=sys.stderr, flush=True)

    corrections, cached = {}, {}
    for k, setting in enumerate(HADRONIZATION_SETTINGS):
        log(
            f"hadronisation corrections ({setting}): Pythia 8, {had_events} events at {sqrt_s:g} GeV"
        )
        corrections[setting], cached[setting] = cached_corrections(
            sqrt_s, table.observable, table.edges, had_events, setting, seed=seed + k, cache_dir=had_cache, log=log
        )
        wall = corrections[setting]["wall_s"]
        log("  read from the cache" if cached[setting] else f"  done in {wall:.0f} s")
    bins = select_moderate(table, corrections, max_rel_err=had_max_rel_err)

    def make_target(setting: str = "default", with_correction_mc: bool = True):
        return data_target(table, corrections[setting], bins, with_correction_mc)

    payload = fit_real_data(
        make_target, settings=tuple(HADRONIZATION_SETTINGS), out_dir=out,
        mc_events=mc_events, seed=seed, max_steps=max_steps, scan=scan, progress=progress, base=base, jumps=jumps,
    )
    payload["truth_alpha_s"] = None
    payload["data"] = table.source
    payload["sqrt_s"] = sqrt_s
    payload["x_variable"] = table.x_variable
    payload["data_integral"] = table.integral
    payload["hadronization"] = {
        "generator": "Pythia 8 (pythia8mc), same method as diffhep/fit/data/hadronization_91GeV.json",
        "n_events": had_events,
        "max_rel_err": had_max_rel_err,
        "cache": str(cache_folder(had_cache)),
        "from_cache": cached,
        "settings": {s: HADRONIZATION_SETTINGS[s]["description"] for s in HADRONIZATION_SETTINGS},
        "fit_bins": [int(bins[0]), int(bins[1])],
        "factor": {s: _finite_or_none(corrections[s]["factor"]) for s in corrections},
        "factor_err": {s: _finite_or_none(corrections[s]["factor_err"]) for s in corrections},
        "edges": [float(v) for v in table.edges],
    }
    write_json_atomic(out / "result.json", payload)
    return payload


def _finite_or_none(a) -> list:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(a, float)]
