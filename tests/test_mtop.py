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


def test_pseudo_data(small):
    """Shapes; jets massless with E ≥ 1 GeV and the parton directions; true W and top
    masses peak at M_W and the truth m_t (median within 2 GeV of 16·2 tops: the BW
    median is exact, 2 GeV allows the finite sample)."""
    cfg, _, data = small
    jets, truth = data.jets, data.truth
    assert jets.shape == truth.shape == (16, 6, 4)
    m2 = jets[..., 0] ** 2 - np.sum(jets[..., 1:] ** 2, axis=-1)
    np.testing.assert_allclose(m2 / jets[..., 0] ** 2, 0.0, atol=1e-12)
    assert np.all(jets[..., 0] > M.E_OBS_MIN)

    def mass(p):
        return np.sqrt(np.maximum(p[..., 0] ** 2 - np.sum(p[..., 1:] ** 2, axis=-1), 0.0))

    tops = np.concatenate([mass(truth[:, 0] + truth[:, 1] + truth[:, 2]), mass(truth[:, 3] + truth[:, 4] + truth[:, 5])])
    ws = np.concatenate([mass(truth[:, 1] + truth[:, 2]), mass(truth[:, 4] + truth[:, 5])])
    assert abs(np.median(tops) - 172.5) < 2.0 and abs(np.median(ws) - cfg.mw) < 2.0
    # Each true parton has a jet along its direction (b jets first).
    dirs_j = jets[..., 1:] / jets[..., :1]
    dirs_t = truth[..., 1:] / np.linalg.norm(truth[..., 1:], axis=-1, keepdims=True)
    for ev in range(4):
        cos = dirs_j[ev] @ dirs_t[ev].T
        assert np.allclose(np.sort(cos.max(axis=1)), 1.0, atol=1e-12)
        assert np.allclose(cos[:2][:, [0, 3]].max(axis=1), 1.0, atol=1e-12)
    assert 0 < data.efficiency < 1 and data.overflow_fraction < 1e-3


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
