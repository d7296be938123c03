"""Per-bin hadronisation corrections for the ALEPH event shapes at √s = 91.2 GeV.

Runs Pythia 8 (``pythia8mc``) e+e- → γ*/Z → q q̄ (q = d, u, s, c, b) at √s = 91.2 GeV
without ISR (``PDF:lepton = off``; ALEPH's data are ISR-corrected) and with
``HadronLevel:all = off``. For each event, the *parton level* is the event record
after ``pythia.next()``: all final-state particles (quarks, gluons and the few
QED-shower photons). Then ``pythia.forceHadronLevel()`` hadronises the *same*
event, and the *hadron level* is every visible final-state particle (neutrinos
from hadron decays excluded), with particles of cτ > 10 mm stable
(``ParticleDecays:limitTau0 = on``, ``tau0Max = 10``: K0_S, Λ, Σ, Ξ, Ω stable, the
usual Rivet/LEP convention).

Observables, binned in exactly the ALEPH bins (``diffhep.io.aleph_event_shapes``):

- thrust T (x = T, not 1 − T): Pythia 8's exact ``Thrust`` (select = 2, visible
  final state). It is the same enumeration as ``diffhep.observables.thrust``
  (agreement to 1e-15 in tests/test_validation_peers.py) but ~10× faster at
  hadron level on a CPU; the script re-checks agreement with
  ``diffhep.observables.thrust`` on the first ``--check`` events of every setting;
- C-parameter: ``diffhep.observables.c_parameter``;
- −ln y23 (Durham, E-scheme): fastjet ``ee_kt_algorithm`` ``exclusive_ymerge(2)``,
  re-checked against ``diffhep.observables.durham_y23`` like thrust. Events with
  fewer than three particles (y23 = 0) fall outside the bins.

Each level is normalised to *all* generated events, (1/N) dN/dx, including events
outside the binned range, like the ALEPH data. The correction is
``c_b = h_b / p_b = H_b / P_b`` (counts in bin b at hadron and parton level of the
same N events). Its MC error, by the delta method for the correlated counts
(``N11_b`` events in bin b at both levels):
``(σ_c / c)² = 1/H_b + 1/P_b − 2 N11_b / (H_b P_b) = M_b / (H_b P_b)``, with
``M_b = H_b + P_b − 2 N11_b`` the events that migrate into or out of the bin
(M_b is set to 1 where none migrate, in bins of a few events, so that no error is
zero); a Poisson bootstrap checks it.
Bins with H_b = 0 or P_b = 0 get ``null``.

Settings: ``default`` (Pythia 8.3 default = Monash 2013 tune) and the
hadronisation-model variations ``sigma_pt_down`` / ``sigma_pt_up``: the string
fragmentation transverse-momentum width ``StringPT:sigma`` 0.335 → 0.30 / 0.37 GeV
(about ±10 %), everything else unchanged. Independent seeds per setting.

Output: ``diffhep/fit/data/hadronization_91GeV.json``, written atomically.

Usage: ``python scripts/make_hadronization_corrections.py [--events 200000]
[--variation-events 200000] [--seed 20261125] [--jobs 1] [--out PATH]``
"""

import argparse
import datetime
import importlib.metadata
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from diffhep.fit._hadronization import (
    HADRONIZATION_SETTINGS as SETTINGS,
    OBSERVABLES,
    bin_index,
    correction_factors,
    generate_event_shapes,
    pythia_settings,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "diffhep" / "fit" / "data" / "hadronization_91GeV.json"
SQRT_S = 91.2


def run_setting(name: str, n_events: int, seed: int, n_check: int) -> dict:
    """Generate `n_events` events for setting `name` (`generate_event_shapes`, all
    three observables); return per-event ALEPH-bin indices (parton, hadron) per
    observable plus summary numbers."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from diffhep.io import aleph_event_shapes

    edges = {k: s.edges for k, s in aleph_event_shapes().items()}
    log = lambda line: print(f"  {line}", file=sys.stderr, flush=True)  # noqa: E731
    gen = generate_event_shapes(SQRT_S, n_events, name, seed, OBSERVABLES, n_check=n_check, log=log)
    values, mult = gen["values"], gen["multiplicity"]
    levels = ("parton", "hadron")
    with np.errstate(divide="ignore"):
        xs = {lv: {**values[lv], "y23": -np.log(values[lv]["y23"])} for lv in levels}
    bins = {k: {lv: bin_index(xs[lv][k], edges[k]) for lv in levels} for k in OBSERVABLES}
    return {
        "name": name,
        "seed": seed,
        "n_events": n_events,
        "n_failed": gen["n_failed"],
        "wall_s": gen["wall_s"],
        "bins": bins,
        "checks": gen["checks"],
        "summary": {
            lv: {
                "mean_1_minus_T": float(np.mean(1 - values[lv]["thrust"])),
                "mean_C": float(np.mean(values[lv]["c_parameter"])),
                "mean_multiplicity": float(np.mean(mult[lv])),
                "fraction_y23_zero": float(np.mean(values[lv]["y23"] == 0)),
            }
            for lv in levels
        },
        "pythia_version": gen["pythia_version"],
    }


def _json_list(a: np.ndarray, digits: int = 10) -> list:
    return [None if not np.isfinite(v) else float(f"{v:.{digits}g}") for v in np.asarray(a, float)]


def write_json_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=1, allow_nan=False)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000, help="events for the default setting")
    ap.add_argument("--variation-events", type=int, default=200_000, help="events per variation")
    ap.add_argument("--seed", type=int, default=20261125, help="seed of the default; variations use seed+1, +2")
    ap.add_argument("--check", type=int, default=500, help="events per setting re-checked against diffhep")
    ap.add_argument("--jobs", type=int, default=1, help="settings run in parallel processes")
    ap.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated subset of " + ",".join(SETTINGS))
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    from diffhep.io import ALEPH_91GEV_PATHS, ALEPH_91GEV_X, aleph_event_shapes

    names = args.settings.split(",")
    for name in names:
        if name not in SETTINGS:
            ap.error(f"unknown setting {name!r}; choose from {', '.join(SETTINGS)}")
    jobs = [
        (name, args.events if name == "default" else args.variation_events, args.seed + k, args.check)
        for k, name in enumerate(names)
    ]
    t0 = time.time()
    if args.jobs > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.starmap(run_setting, jobs)
    else:
        results = [run_setting(*job) for job in jobs]
    wall = time.time() - t0

    shapes = aleph_event_shapes()
    rng = np.random.default_rng(args.seed)
    payload = {
        "description": (
            "Per-bin hadronisation corrections c = h/p for the ALEPH event shapes at 91.2 GeV: "
            "h, p = (1/N) dN/dx at hadron and parton level of the same Pythia 8 events, both "
            "normalised to all N generated events. Multiply a parton-level (1/N) dN/dx by c."
        ),
        "metadata": {
            "generator": f"Pythia {results[0]['pythia_version']:.3f} (pythia8mc {importlib.metadata.version('pythia8mc')})",
            "fastjet": importlib.metadata.version("fastjet"),
            "diffhep": importlib.metadata.version("diffhep"),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "sqrt_s_GeV": SQRT_S,
            "base_settings": [ln for ln in pythia_settings(SQRT_S, "default", 0) if not ln.startswith("Random:seed")],
            "parton_level": "all final-state particles after pythia.next() with HadronLevel:all = off (q, g, QED-shower photons)",
            "hadron_level": "all visible final-state particles after pythia.forceHadronLevel() on the same event; cτ > 10 mm stable",
            "observables": "thrust: pythia8mc.Thrust (select=2), checked vs diffhep.observables.thrust; "
            "C: diffhep.observables.c_parameter; y23: fastjet ee_kt_algorithm exclusive_ymerge(2), "
            "checked vs diffhep.observables.durham_y23",
            "factor_err": "delta method for correlated counts: (err/c)^2 = 1/H + 1/P - 2 N11/(H P) = M/(H P) "
            "with M = H + P - 2 N11 the migrations (M set to 1 where 0); "
            "'bootstrap_err' is a 200-replica Poisson bootstrap of the same",
            "null": "bins with no parton- or hadron-level entries",
            "script": "scripts/make_hadronization_corrections.py",
            "command": " ".join(["python", "scripts/make_hadronization_corrections.py", *(argv or sys.argv[1:])]),
            "wall_s": round(wall, 1),
        },
        "observables": {
            k: {"yoda_path": ALEPH_91GEV_PATHS[k], "x": ALEPH_91GEV_X[k], "edges": _json_list(shapes[k].edges, 12)}
            for k in OBSERVABLES
        },
        "settings": {},
    }
    for res in results:
        name = res["name"]
        entry = {
            "description": SETTINGS[name]["description"],
            "pythia_settings": list(SETTINGS[name]["extra"]),
            "seed": res["seed"],
            "n_events": res["n_events"],
            "n_failed": res["n_failed"],
            "wall_s": round(res["wall_s"], 1),
            "summary": res["summary"],
            "diffhep_cross_check": res["checks"],
            "corrections": {},
        }
        for k in OBSERVABLES:
            n_bins = len(shapes[k])
            corr = correction_factors(res["bins"][k]["parton"], res["bins"][k]["hadron"], n_bins, rng)
            width = np.diff(shapes[k].edges)
            entry["corrections"][k] = {
                "factor": _json_list(corr["factor"]),
                "factor_err": _json_list(corr["factor_err"]),
                "bootstrap_err": _json_list(corr["bootstrap_err"]),
                "parton": _json_list(corr["n_parton"] / (res["n_events"] * width)),
                "hadron": _json_list(corr["n_hadron"] / (res["n_events"] * width)),
                "n_parton": [int(v) for v in corr["n_parton"]],
                "n_hadron": [int(v) for v in corr["n_hadron"]],
                "n_both": [int(v) for v in corr["n_both"]],
            }
        payload["settings"][name] = entry
        print(f"{name}: {res['n_events']} events in {res['wall_s']:.0f} s; {res['summary']}; checks {res['checks']}")
    write_json_atomic(args.out, payload)
    print(f"wrote {args.out} ({wall:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
