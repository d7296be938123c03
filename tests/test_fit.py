"""The α_s fit: likelihood pieces, input validation, data tables, and a small closure."""

import json
import subprocess
import sys

import numpy as np
import pytest

from diffhep import fit, shower
from diffhep.fit._cli import DEFAULT_EDGES, aleph_target


def test_poisson_deviance_is_zero_at_saturation_and_chi2_like():
    n = np.array([10.0, 0.0, 5.0])
    assert fit.poisson_deviance(n, np.where(n > 0, n, 1e-300)) == pytest.approx(0.0, abs=1e-12)
    # Large counts: deviance → Pearson χ² (relative 1e-2 at 1e4 counts, 1σ offsets).
    n = np.full(5, 1e4)
    mu = n + np.sqrt(n)
    assert fit.poisson_deviance(n, mu) == pytest.approx(5.0, rel=1e-2)


def test_target_validation():
    e = np.linspace(0, 0.3, 4)
    with pytest.raises(ValueError, match="unknown observable"):
        fit.Target("mass", e, counts=np.ones(3), n_events=3)
    with pytest.raises(ValueError, match="exactly one"):
        fit.Target("thrust", e)
    with pytest.raises(ValueError, match="3 entries"):
        fit.Target("thrust", e, counts=np.ones(4), n_events=4)
    with pytest.raises(ValueError, match="density_err"):
        fit.Target("thrust", e, density=np.ones(3), density_err=np.zeros(3))


@pytest.mark.parametrize("obs", ["thrust", "c", "y23"])
def test_aleph_targets_in_fit_variable(obs):
    t = aleph_target(obs)
    assert np.all(np.diff(t.edges) > 0)
    assert np.all(t.density > 0) and np.all(t.density_err > 0)
    assert np.all((t.correction > 0.8) & (t.correction < 1.25))
    if obs == "thrust":  # ALEPH bins in T, fit variable 1 − T: first bin at T = 0.96
        assert t.edges[0] == pytest.approx(0.04, abs=1e-12)


def test_small_closure_fit_recovers_truth(tmp_path):
    # Reduced size for CI: 2000 pseudo-data events, 4000 template events, 4 steps. The
    # full closure over 50 pseudo-experiments is `scripts/closure_alphas.py`.
    truth = 0.125
    target, overflow = fit.pseudo_data("thrust", DEFAULT_EDGES["thrust"], truth, 2000, seed=5)
    assert overflow == 0.0
    result, arrays = fit.fit_alphas([target], n_mc=4000, seed=11, start=0.118, max_steps=4, scan=False, progress=False)
    pull = (result.alpha_s - truth) / result.alpha_s_err_total
    assert abs(pull) < 4.0, (result.alpha_s, result.alpha_s_err_total)
    assert 0.0 < result.alpha_s_err < 0.01
    assert result.chi2_ndf < 3.0
    # Adding the template's MC variance lowers χ² (same residuals, larger variances).
    assert 0.0 < result.chi2_ndf_with_mc < result.chi2_ndf + 1.0
    assert np.isfinite(result.alpha_s_err_mc)
    paths = fit.plot_fit(tmp_path, result, [target], arrays)
    assert all(p.stat().st_size > 1000 for p in paths)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "diffhep", *args], capture_output=True, text=True)


@pytest.mark.parametrize(
    "args, word",
    [
        (("fit-alphas", "--truth-alpha-s", "0.5"), "truth-alpha-s"),
        (("fit-alphas", "--truth-alpha-s", "-0.1"), "truth-alpha-s"),
        (("fit-alphas", "--events", "10"), "--events"),
        (("fit-alphas", "--observable", "mass"), "observable"),
        (("fit-alphas", "--data", "cms-2012"), "--data"),
        (("fit-alphas", "--events", "many"), "events"),
    ],
)
def test_cli_bad_arguments_one_line_exit_2(args, word, tmp_path):
    r = _cli(*args, "--out", str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and word in lines[0], r.stderr


def test_cli_fit_to_an_events_file(tmp_path):
    # `diffhep shower` writes weighted parton-level events with their settings;
    # `fit-alphas --data FILE.npz` unweights them (accept/reject), takes the file's
    # α_s as the truth and records the file. The same shower at the same α_s, so the
    # fit must land within a few σ of it.
    events = tmp_path / "ev.npz"
    r = _cli("shower", "--events", "3000", "--seed", "5", "--out", str(events))
    assert r.returncode == 0, r.stderr
    assert "3000 events at alpha_s = 0.118" in r.stdout
    from diffhep import io

    _, meta = io.load_events(events)
    assert meta["generator"] == "diffhep.shower" and meta["alpha_s"] == 0.118 and meta["seed"] == 5
    out = tmp_path / "fit"
    r = _cli("fit-alphas", "--data", str(events), "--mc-events", "3000", "--max-steps", "3", "--no-scan",
             "--quiet", "--out", str(out))
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "result.json").read_text())
    src = res["events_file"]
    assert res["truth_alpha_s"] == 0.118 and src["n_file"] == 3000
    assert res["n_events"] == src["n_unweighted"] and 1000 < src["n_unweighted"] < 3000  # mean weight ≈ 0.6
    assert abs(res["pull"]) < 4 and res["alpha_s_err"] > 0


def test_cli_events_file_errors_are_one_line(tmp_path):
    from diffhep import Events, io

    rng = np.random.default_rng(0)
    p3 = rng.normal(size=(1200, 3, 3))
    p3 -= p3.mean(axis=1, keepdims=True)
    p = np.concatenate([np.linalg.norm(p3, axis=-1, keepdims=True), p3], axis=-1)
    io.save_events(tmp_path / "low.npz", Events(p))  # total energy ≈ 4 GeV, not 91.1876
    io.save_events(tmp_path / "few.npz", Events(p[:10]))
    for name, word in [("low.npz", "has total energy"), ("few.npz", "a fit needs >= 1000"), ("none.npz", "no such file")]:
        r = _cli("fit-alphas", "--data", str(tmp_path / name), "--out", str(tmp_path / "out"))
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and word in lines[0], r.stderr


def test_alpha_s_range_is_documented():
    lo, hi = shower.ALPHA_S_RANGE
    assert lo < 0.118 < hi


def test_shared_templates_are_checked():
    # `fit_alphas(templates=…)` and `pseudo_data(template=…)` share one template (the
    # CLI showers its pseudo-data with the fit's compiled code); a template for
    # another observable or binning is refused before anything is showered.
    edges = DEFAULT_EDGES["thrust"]
    (tpl,) = fit.make_templates([("thrust", edges)], n_mc=1000, seed=3)
    assert tpl.observable == "thrust" and tpl.n_mc == 1000
    target = fit.Target("thrust", edges, counts=np.ones(len(edges) - 1), n_events=len(edges) - 1)
    (other,) = fit.make_templates([("c", DEFAULT_EDGES["c"])], n_mc=1000, seed=3)
    with pytest.raises(ValueError, match="templates must have"):
        fit.fit_alphas([target], templates=[other], progress=False)
    with pytest.raises(ValueError, match="template is for 'c'"):
        fit.pseudo_data("thrust", edges, 0.118, 1000, seed=1, template=other)
    with pytest.raises(ValueError, match="scan_points"):
        fit.fit_alphas([target], templates=[tpl], scan_points=4, progress=False)


def test_template_jump_partners_move_only_the_derivative():
    # `jumps=True` adds the surface term of k⊥-order swaps to the template's α_s
    # derivative (`shower.realize_with_jumps`, validated against common-random-number
    # differences in test_shower.py). The fractions and their MC variance are the same
    # numbers (the partners weigh exactly 0; sums differ at most in rounding); the
    # derivative moves, stays finite and still sums to 0 over the cells (normalised).
    edges = DEFAULT_EDGES["thrust"]
    plain, jumps = (fit.make_templates([("thrust", edges)], n_mc=2000, seed=5, jumps=j)[0] for j in (False, True))
    f0, d0, v0, o0 = plain.predict(0.118)
    f1, d1, v1, o1 = jumps.predict(0.118)
    np.testing.assert_allclose(f1, f0, rtol=0, atol=1e-14)
    np.testing.assert_allclose(v1, v0, rtol=1e-12, atol=0)
    assert o1 == o0
    assert np.all(np.isfinite(d1)) and abs(np.sum(d1)) < 1e-10
    change = np.abs(d1 - d0).max() / np.abs(d0).max()
    print(f"\njump partners move the template derivative by {change:.1%} (largest cell, relative to the largest)")
    assert change > 1e-3

    # `fractions_fn`, the template as one differentiable function for users' jax.grad:
    # at its α_s, `predict`'s values and derivative (with the partners' surface term
    # where `jumps`). One program instead of `predict`'s three: rounding only. (Forward
    # mode: reverse mode through `realize_with_jumps` compiles for ≈ 55 s here, and is
    # tested on the shower's own in test_shower.py.)
    import jax
    import jax.numpy as jnp

    a = jnp.asarray(0.118)
    for template, f, d, v in ((plain, f0, d0, v0), (jumps, f1, d1, v1)):
        (fv, vv), (df, _) = jax.jvp(template.fractions_fn(0.118), (a,), (jnp.ones_like(a),))
        np.testing.assert_allclose(fv, f, rtol=0, atol=1e-14)
        np.testing.assert_allclose(vv, v, rtol=1e-12, atol=0)
        np.testing.assert_allclose(df, d, rtol=0, atol=1e-10 * np.abs(d).max())


def test_template_histogram_hard_values_soft_derivative(rng):
    # Template fractions: the values of hard bins (as the data are binned, last bin
    # closed, everything outside the range in one extra cell), Σw² per cell likewise,
    # and the derivative of the Gaussian-kernel bins for moving x. Exact: 1e-12.
    import jax
    import jax.numpy as jnp

    from diffhep import observables
    from diffhep.fit._template import _normalised_histogram

    edges = np.array([0.1, 0.2, 0.35, 0.5])
    x = np.concatenate([rng.uniform(0.0, 0.6, 500), edges])  # also exactly on every edge
    w = rng.uniform(0.2, 1.0, x.size)
    dx, dw = rng.normal(size=x.size), rng.normal(size=x.size)
    h = 0.02
    (frac, var), (dfrac, _) = jax.jvp(
        lambda x, w: _normalised_histogram(x, w, jnp.asarray(edges), h), (jnp.asarray(x), jnp.asarray(w)), (dx, dw)
    )
    hard, _ = np.histogram(x, edges, weights=w)
    hard2, _ = np.histogram(x, edges, weights=w * w)
    np.testing.assert_allclose(frac, np.append(hard, w.sum() - hard.sum()) / w.sum(), rtol=1e-12)
    np.testing.assert_allclose(var, np.append(hard2, (w * w).sum() - hard2.sum()) / w.sum() ** 2, rtol=1e-12)

    # Derivative: the weights' part is that of the hard bins (weights enter linearly),
    # the part from moving x that of the kernel bins.
    def soft_k(x):
        k = observables.soft_bin_weights(x, jnp.asarray(edges), h)
        return jnp.concatenate([k, (1.0 - jnp.sum(k, axis=1))[:, None]], axis=1)

    _, dk = jax.jvp(soft_k, (jnp.asarray(x),), (dx,))
    idx = np.digitize(x, edges) - 1
    idx[x == edges[-1]] = len(edges) - 2
    idx[(idx < 0) | (idx > len(edges) - 2)] = len(edges) - 1
    k_hard = np.eye(len(edges))[idx]
    expected = (dw @ k_hard + w @ np.asarray(dk)) / w.sum() - np.asarray(frac) * dw.sum() / w.sum()
    np.testing.assert_allclose(dfrac, expected, rtol=1e-12, atol=1e-14)
    assert abs(float(jnp.sum(dfrac))) < 1e-12  # the cells always sum to 1
