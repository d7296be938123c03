"""The top-mass model against Pythia 8 at the same settings, at parton level.

Draws t t̄ → (b u d̄)(b̄ d ū) events from the model (`diffhep.fit.generate_pseudo_data`)
and from Pythia 8 (`diffhep.fit.pythia_pseudo_data`, `ttbar_settings`) at one top
mass, and compares the true partons: the top and W line shapes, m_tt̄, the top p_T,
the W helicity angle and the t t̄ spin correlation in the helicity basis
(⟨cos θ₁ cos θ₂⟩ = −C_hel/9 for the d̄ from the t and the d from the t̄, whose spin
analysing powers are 1). Writes scripts/results/compare_mtop_pythia.json and a PNG.

    .venv/bin/python scripts/compare_mtop_pythia.py --events 20000
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from diffhep import kinematics as kin  # noqa: E402
from diffhep.fit import write_json_atomic  # noqa: E402
from diffhep.fit import _mtop as M  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def _mass(p):
    return np.asarray(kin.mass(p))


# The project's boost, batched over events (one frame per event).
_rest = jax.jit(jax.vmap(kin.boost_to_rest_frame))


def _boost_to_rest(p, frame):
    """`p` `(n, 4)` in the rest frame of `frame` `(n, 4)` (a pure boost)."""
    return np.asarray(_rest(p, frame))


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def observables(truth: np.ndarray) -> dict[str, np.ndarray]:
    """Per event, from the partons `(n, 6, 4)` in the order b, u, d̄, b̄, d, ū."""
    t, tb = truth[:, 0] + truth[:, 1] + truth[:, 2], truth[:, 3] + truth[:, 4] + truth[:, 5]
    w, wb = truth[:, 1] + truth[:, 2], truth[:, 4] + truth[:, 5]
    tt = t + tb
    # Helicity basis: each top's direction in the t t̄ rest frame; the lepton-like
    # analysers (d̄ from W⁺, d from W⁻) in their top's rest frame.
    t_tt, tb_tt = _boost_to_rest(t, tt), _boost_to_rest(tb, tt)
    dbar = _boost_to_rest(_boost_to_rest(truth[:, 2], tt), t_tt)
    d = _boost_to_rest(_boost_to_rest(truth[:, 4], tt), tb_tt)
    cos1 = np.sum(_unit(dbar[:, 1:]) * _unit(t_tt[:, 1:]), axis=-1)
    cos2 = np.sum(_unit(d[:, 1:]) * _unit(tb_tt[:, 1:]), axis=-1)
    # W helicity angle: the d̄ in the W⁺ rest frame against the W⁺ direction in the top frame.
    w_t = _boost_to_rest(w, t)
    dbar_w = _boost_to_rest(_boost_to_rest(truth[:, 2], t), w_t)
    cos_w = np.sum(_unit(dbar_w[:, 1:]) * _unit(w_t[:, 1:]), axis=-1)
    return {
        "m_t": np.concatenate([_mass(t), _mass(tb)]),
        "m_W": np.concatenate([_mass(w), _mass(wb)]),
        "m_tt": _mass(tt),
        "pt_t": np.hypot(t_tt[:, 1], t_tt[:, 2]),
        "cos_w": cos_w,
        "cos1_cos2": cos1 * cos2,
    }


def summary(x: np.ndarray) -> dict[str, float]:
    q16, q50, q84 = np.quantile(x, [0.16, 0.5, 0.84])
    return dict(mean=float(x.mean()), mean_err=float(x.std(ddof=1) / math.sqrt(len(x))), q16=float(q16), median=float(q50), q84=float(q84))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--mt", type=float, default=172.5)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    cfg = M.MtopConfig()
    key = jax.random.key(a.seed)
    samples = {
        "model": M.generate_pseudo_data(jax.random.fold_in(key, 1), a.mt, a.events, cfg).truth,
        "pythia8": M.pythia_pseudo_data(jax.random.fold_in(key, 2), a.mt, a.events, cfg).truth,
    }
    obs = {name: observables(t) for name, t in samples.items()}
    table = {k: {name: summary(o[k]) for name, o in obs.items()} for k in obs["model"]}
    # ⟨cos θ₁ cos θ₂⟩ = −C/9 for analysing powers 1 (and ⟨cos θ_W⟩ from the W helicity fractions).
    for name in obs:
        table["cos1_cos2"][name]["C_hel"] = -9.0 * table["cos1_cos2"][name]["mean"]
        table["cos1_cos2"][name]["C_hel_err"] = 9.0 * table["cos1_cos2"][name]["mean_err"]
    payload = dict(settings=dict(events=a.events, mt=a.mt, seed=a.seed, config=M.asdict(cfg)), observables=table)
    RESULTS.mkdir(exist_ok=True)
    write_json_atomic(RESULTS / "compare_mtop_pythia.json", payload)
    for k, row in table.items():
        print(k, "  ".join(f"{n}: {r['mean']:.4g} ± {r['mean_err']:.2g} (median {r['median']:.4g})" for n, r in row.items()))
    _plot(obs, a)


def _plot(obs, a) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.CMS)
    panels = [
        ("m_t", (a.mt - 8, a.mt + 8), r"$m_{bq\bar q'}$ [GeV]"),
        ("m_W", (72, 89), r"$m_{q\bar q'}$ [GeV]"),
        ("m_tt", (330, 1200), r"$m_{t\bar t}$ [GeV]"),
        ("cos_w", (-1, 1), r"$\cos\theta_W$ ($\bar d$ in the $W^+$ frame)"),
        ("cos1_cos2", (-1, 1), r"$\cos\theta_1\cos\theta_2$ (helicity basis)"),
        ("pt_t", (0, 500), r"top $p_T$ in the $t\bar t$ frame [GeV]"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(21, 12))
    for ax, (k, rng, label) in zip(axes.flat, panels):
        for name, style in (("model", dict(histtype="step", lw=2)), ("pythia8", dict(histtype="step", lw=2, ls="--"))):
            ax.hist(obs[name][k], bins=40, range=rng, density=True, label=name, **style)
        ax.set_xlabel(label, fontsize=16)
        ax.legend(fontsize=14)
    fig.suptitle(f"t tbar at m_t = {a.mt} GeV, parton level: diffhep's model vs Pythia 8 ({a.events} events each)", fontsize=16)
    fig.savefig(RESULTS / "compare_mtop_pythia.png", dpi=80, bbox_inches="tight")


if __name__ == "__main__":
    main()
