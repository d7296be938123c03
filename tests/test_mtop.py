"""Tests for the top-mass fit (`diffhep fit-mtop`, diffhep.fit._mtop): the model's
pieces, the pseudo-data, derivatives of the likelihood, a tiny end-to-end fit, bad
input, and (slow) a larger closure."""

import itertools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffhep.cli._main import main
from diffhep.fit import _mtop as M
from diffhep.me import SMParameters, matrix_element
from diffhep.phasespace import two_body

KEYS = ("mt", "mt_err", "mt_err_curvature", "mt_err_sandwich", "truth_mt", "n_events", "wall_s", "device", "converged", "n_steps")


@pytest.fixture(scope="module")
def small():
    cfg = M.MtopConfig(n_int=16, n_norm=2**12)
    ctx = M._ctx(cfg)
    data = M.generate_pseudo_data(jax.random.key(3), 172.5, 16, cfg, ctx, chunk=8192)
    return cfg, ctx, data


def test_permutations_cover_every_distinct_assignment():
    """12 distinct rows; with the 4 equal within-pair swaps they make all 2·4! = 48
    assignments of the (b, b̄) and light jets to the model slots."""
    perms = M.PERMUTATIONS
    assert perms.shape == (12, 6) and len({tuple(p) for p in perms}) == 12
    full = set()
    for p in perms:
        for swap_w1, swap_w2 in itertools.product((False, True), repeat=2):
            q = list(p)
            if swap_w1:
                q[1], q[2] = q[2], q[1]
            if swap_w2:
                q[4], q[5] = q[5], q[4]
            full.add(tuple(q))
    assert len(full) == 48 == 12 * M.PERMUTATION_MULTIPLICITY
    assert all(sorted(p) == list(range(6)) and {p[0], p[3]} == {0, 1} for p in full)


def test_combridge_matches_helas_on_shell():
    """The analytic production |M|² equals diffhep.me's HELAS ``g g > t t~`` on shell
    (relative 1e-12) at three √ŝ and angles, with WT = 0 (HELAS puts the width in the
    t-channel propagator too, a 4e-6 effect); off shell only the model differs."""
    params = SMParameters.from_param_card().replace(WT=0.0)
    for rs, u in ((400.0, (0.3, 0.1)), (1000.0, (0.9, 0.7)), (1500.0, (0.05, 0.4))):
        p2, _ = two_body(jnp.asarray(u), rs, 173.0, 173.0)
        k1 = jnp.asarray([rs / 2, 0.0, 0.0, rs / 2])
        k2 = jnp.asarray([rs / 2, 0.0, 0.0, -rs / 2])
        ref = matrix_element("g g > t t~", jnp.stack([k1, k2, p2[0], p2[1]]), params)
        got = M.combridge_gg_ttbar(k1, k2, p2[0], p2[1], 173.0, float(params.aS))
        np.testing.assert_allclose(got, ref, rtol=1e-12)


def _mass(p):
    return np.sqrt(np.maximum(p[..., 0] ** 2 - np.sum(p[..., 1:] ** 2, axis=-1), 0.0))


def _check_jets(data: M.PseudoData, mt: float, mw: float, tol_gev: float) -> None:
    """Jets massless with E ≥ 1 GeV and along the true partons' directions (b jets
    first); true W and top masses with medians within `tol_gev` of M_W and m_t."""
    jets, truth = data.jets, data.truth
    assert jets.shape == truth.shape
    m2 = jets[..., 0] ** 2 - np.sum(jets[..., 1:] ** 2, axis=-1)
    np.testing.assert_allclose(m2 / jets[..., 0] ** 2, 0.0, atol=1e-12)
    assert np.all(jets[..., 0] > M.E_OBS_MIN)
    tops = np.concatenate([_mass(truth[:, 0] + truth[:, 1] + truth[:, 2]), _mass(truth[:, 3] + truth[:, 4] + truth[:, 5])])
    ws = np.concatenate([_mass(truth[:, 1] + truth[:, 2]), _mass(truth[:, 4] + truth[:, 5])])
    assert abs(np.median(tops) - mt) < tol_gev and abs(np.median(ws) - mw) < tol_gev
    # Each true parton has a jet along its direction (b jets first).
    dirs_j = jets[..., 1:] / jets[..., :1]
    dirs_t = truth[..., 1:] / np.linalg.norm(truth[..., 1:], axis=-1, keepdims=True)
    for ev in range(4):
        cos = dirs_j[ev] @ dirs_t[ev].T
        assert np.allclose(np.sort(cos.max(axis=1)), 1.0, atol=1e-12)
        assert np.allclose(cos[:2][:, [0, 3]].max(axis=1), 1.0, atol=1e-12)


def test_pseudo_data(small):
    """Shapes and jets (`_check_jets`: medians within 2 GeV of 16·2 tops; the BW median
    is exact, 2 GeV allows the finite sample)."""
    cfg, _, data = small
    assert data.jets.shape == (16, 6, 4) and data.source == "model"
    _check_jets(data, 172.5, cfg.mw, 2.0)
    assert 0 < data.efficiency < 1 and data.overflow_fraction < 1e-3


def test_kick_is_a_transverse_boost():
    """The toy-ISR kick of a system at rest in the transverse plane gives it p_T = k and
    keeps its P_z and invariant mass (1e-12 relative) and every parton massless."""
    from diffhep.phasespace import rambo

    p = np.asarray(rambo(jax.random.uniform(jax.random.key(0), (24,)), 400.0, np.zeros(6))[0])
    boost = np.array([1.0, 0.0, 0.0, 0.6]) / math.sqrt(1 - 0.36)  # a longitudinal boost first
    e, pz = boost[0] * p[:, 0] + boost[3] * p[:, 3], boost[3] * p[:, 0] + boost[0] * p[:, 3]
    p = np.stack([e, p[:, 1], p[:, 2], pz], axis=-1)
    k = np.array([30.0, -12.0])
    out = np.asarray(M._kick(jnp.asarray(p), jnp.asarray(k)))
    total, before = out.sum(0), p.sum(0)
    np.testing.assert_allclose(total[1:3], k, rtol=1e-12)
    np.testing.assert_allclose(total[3], before[3], rtol=1e-12)
    np.testing.assert_allclose(_mass(total), _mass(before), rtol=1e-12)
    np.testing.assert_allclose(_mass(out) / out[:, 0], 0.0, atol=1e-7)


def test_pythia_pseudo_data():
    """Pythia 8 t t̄ events (`--pythia`): six massless partons in the model order
    (b, u, d̄, b̄, d, ū) that balance in p_T before the kick (1e-9 of the energy), with
    top and W medians within 1 GeV of the settings over 300 tops; reproducible for a
    seed. Then the model's detector: `_check_jets`."""
    pytest.importorskip("pythia8mc")
    from diffhep.fit._pythia import pythia_ttbar_partons

    p = pythia_ttbar_partons(150, 172.5, 5, M.MtopConfig())
    assert p.shape == (150, 6, 4)
    np.testing.assert_allclose(_mass(p) / p[..., 0], 0.0, atol=1e-6)  # √ of round-off
    np.testing.assert_allclose(p.sum(1)[:, 1:3] / p[..., 0].sum(1, keepdims=True), 0.0, atol=1e-9)
    assert abs(np.median(_mass(p[:, 0] + p[:, 1] + p[:, 2])) - 172.5) < 1.0
    assert abs(np.median(_mass(p[:, 3] + p[:, 4] + p[:, 5])) - 172.5) < 1.0
    assert abs(np.median(_mass(p[:, 1] + p[:, 2])) - 80.419) < 1.0
    np.testing.assert_array_equal(pythia_ttbar_partons(3, 172.5, 5, M.MtopConfig()), p[:3])
    data = M.pythia_pseudo_data(jax.random.key(4), 172.5, 40)
    assert data.jets.shape == (40, 6, 4) and data.source == "pythia8" and data.efficiency is None
    _check_jets(data, 172.5, M.MtopConfig().mw, 3.0)


def test_likelihood_derivative_matches_finite_difference(small):
    """d/dm_t of the per-event log densities (forward mode through the BW map, the ME,
    the transfer function) against central differences with the same integration
    points (h = 1e-3 GeV): rtol 1e-5, atol 1e-7 per event."""
    cfg, ctx, data = small
    lik = M.MtopLikelihood(data.jets[:3], cfg, ctx, jax.random.key(0))
    f = jax.jit(lik.per_event)
    m = jnp.asarray(172.0)
    _, g = jax.jvp(f, (m,), (jnp.ones_like(m),))
    h = 1e-3
    fd = (f(m + h) - f(m - h)) / (2 * h)
    assert np.all(np.isfinite(np.asarray(g)))
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7)


def test_tiny_fit_end_to_end(tmp_path):
    """`diffhep fit-mtop` on 16 events, 16 integration points: runs, writes result.json
    with the documented keys and the plots, and recovers the truth within 4σ (σ the
    reported error, the curvature one; the per-event MEM resolution
    gives σ ≈ 1.5–3 GeV here). The scan's ±1σ agrees with the curvature within 40% (a
    parabola fitted to ±2.5σ)."""
    out = tmp_path / "mt"
    with pytest.raises(SystemExit) as exc:
        main(["fit-mtop", "--events", "16", "--n-int", "16", "--truth-mt", "172.5", "--seed", "2", "--out", str(out), "--quiet"])
    assert exc.value.code == 0
    r = json.loads((out / "result.json").read_text())
    for k in KEYS:
        assert k in r, k
    assert r["n_events"] == 16 and r["truth_mt"] == 172.5 and r["converged"]
    assert 0.3 < r["mt_err"] < 6.0
    assert abs(r["mt"] - 172.5) < 4 * r["mt_err"], r
    assert r["mt_err"] == r["mt_err_curvature"] and r["mt_err_sandwich"] > 0
    assert abs(0.5 * (r["scan_err_lo"] + r["scan_err_hi"]) / r["mt_err_curvature"] - 1) < 0.4
    for name in ("scan.png", "mbjj.png", "trajectory.png"):
        assert (out / name).stat().st_size > 1000


def test_tiny_pythia_fit_end_to_end(tmp_path):
    """`diffhep fit-mtop --pythia` on 16 Pythia events: runs and records its source and
    the Pythia settings (the bias against Pythia is measured at full size, README)."""
    pytest.importorskip("pythia8mc")
    out = tmp_path / "mt"
    with pytest.raises(SystemExit) as exc:
        main(["fit-mtop", "--pythia", "--events", "16", "--n-int", "16", "--out", str(out), "--quiet", "--no-scan"])
    assert exc.value.code == 0
    r = json.loads((out / "result.json").read_text())
    assert r["pseudo_data"] == "pythia8" and "6:m0 = 172.5" in r["pythia_settings"] and "Top:gg2ttbar = on" in r["pythia_settings"]
    assert r["n_events"] == 16 and math.isfinite(r["mt"]) and r["mt_err"] > 0


@pytest.mark.parametrize(
    "args, match",
    [
        (["--truth-mt", "-5"], r"--truth-mt = -5.0 GeV is outside the allowed range \[100, 250\] GeV"),
        (["--truth-mt", "300"], r"--truth-mt = 300.0 GeV is outside the allowed range \[100, 250\] GeV"),
        (["--events", "0"], r"--events = 0 must be >= 1"),
        (["--n-int", "10"], r"--n-int = 10 must be a positive multiple of 16"),
        (["--production", "exact"], r"production must be 'analytic' or 'helas'"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, match):
    import re

    with pytest.raises(SystemExit) as exc:
        main(["fit-mtop", "--out", str(tmp_path / "x"), "--quiet"] + args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(match, err), err
    with pytest.raises(ValueError, match="outside the allowed range"):
        M.check_mt("mt", math.nan)


@pytest.mark.slow
def test_closure_300_events(tmp_path):
    """300 events, 128 points (the default): pull within ±3 and scan vs curvature within 20%."""
    r = M.run_fit_mtop(out=tmp_path, truth_mt=175.0, events=300, seed=11, progress=False)
    assert r["converged"]
    assert abs(r["pull"]) < 3.0, r
    assert abs(0.5 * (r["scan_err_lo"] + r["scan_err_hi"]) / r["mt_err_curvature"] - 1) < 0.2


def test_cli_defaults_match_config():
    # The CLI spells its defaults out (it must not import JAX at import time); they
    # must be the model's.
    import inspect

    from diffhep.cli._main import fit_mtop_cmd

    params = inspect.signature(fit_mtop_cmd).parameters
    assert params["n_int"].default.default == M.MtopConfig.n_int
    assert params["production"].default.default == M.MtopConfig.production
    run = inspect.signature(M.run_fit_mtop).parameters
    assert run["n_int"].default == M.MtopConfig.n_int and run["production"].default == M.MtopConfig.production


def test_pseudo_data_generates_a_margin_for_the_jet_threshold():
    """Regression: this sample's unweighting stopped at exactly 2000 kept points, and
    the one event whose jet fell below `E_OBS_MIN` raised. The generator now keeps
    `_pool_size` events (a 1 % margin), as for Pythia's events."""
    cfg = M.MtopConfig()
    data = M.generate_pseudo_data(jax.random.fold_in(jax.random.key(3014), 1), 172.5, 2000, cfg)
    assert data.jets.shape == (2000, 6, 4)
    assert np.all(data.jets[..., 0] > M.E_OBS_MIN)
    assert M._pool_size(2000) == 2020 and M._pool_size(10) == 18
