"""Tests of the discrete-QCD shower (`diffhep.shower`): conservation laws, colour
bookkeeping, the coupling, the O(α_s) limit, pathwise derivatives, bad input, jit.

Cost: every shower compile takes seconds on a 2-core CPU, so the events are shared
through module-scoped fixtures, the static model configuration (`capacity=64`, …) is
the same wherever possible, and batch shapes are pinned (`N` events, `N_STEPS` scan
steps, fixed multiplicity-bucket rows) so that each jitted function compiles once.
The statistical tests use fixed seeds; their sizes and tolerances are stated beside
them, and the `slow` variants repeat them at the sizes quoted in the issue.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from scipy.special import ndtr

from diffhep import observables, shower
from conftest import pin_work_sizes

SQRT_S = shower.MZ
C_F = 4.0 / 3.0
N = 2000  # events per batch everywhere at the default static configuration
N_STEPS = 32  # pinned scan length: the busiest of 56 batches of N events at α_s ≤ 0.123 had 27 emissions
ALPHAS = (0.08, 0.118, 0.2)
KT_MINS = (0.5, 2.0)
# Multiplicity buckets (partons → rows) for N events, pinned so that thrust compiles
# once for every batch of the file (the most seen in 56 batches at kt_min = 0.5: 822,
# 1234, 801, 425, 182, 15, 1; small sizes are cheap, so N rows); a busier batch only
# costs a recompile.
ROWS = {4: N, 8: N, 12: 1000, 16: 550, 24: 300, 32: 100, N_STEPS + 2: 50}


def model(alpha_s: float = 0.118, kt_min: float = 0.5) -> shower.DiscreteQCD:
    """The default static configuration (capacity 64) at the given leaves."""
    return shower.DiscreteQCD(alpha_s, kt_min)


def tangent(base: shower.DiscreteQCD, **leaves: float) -> shower.DiscreteQCD:
    """A tangent (a `DiscreteQCD`-shaped PyTree) with the named leaves set, others 0."""
    t = jax.tree_util.tree_map(jnp.zeros_like, base)
    for name, value in leaves.items():
        t = eqx.tree_at(lambda m, name=name: getattr(m, name), t, jnp.asarray(value, t.alpha_s.dtype))
    return t


def event_mask(lay: shower.Layout) -> np.ndarray:
    return np.asarray(lay.mask)


def buckets(lay: shower.Layout) -> observables.MultiplicityBuckets:
    return observables.MultiplicityBuckets(event_mask(lay), granularity=N // 40, min_rows=ROWS)


# ---------------------------------------------------------------------------------------
# Shared samples at the default static configuration
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grid_samples():
    """N events at each (α_s, kt_min) of `ALPHAS` × `KT_MINS`, one key (common random
    numbers): `{(a, kt): (layout, events, overflow)}`."""
    out = {}
    for a in ALPHAS:
        for kt in KT_MINS:
            m = model(a, kt)
            lay = shower.layout(jr.key(101), m, N, min_steps=N_STEPS)
            events, overflow = shower.realize(lay, m)
            out[a, kt] = (lay, events, np.asarray(overflow))
    return out


# ---------------------------------------------------------------------------------------
# 1. Conservation laws
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha_s", ALPHAS)
@pytest.mark.parametrize("kt_min", KT_MINS)
def test_four_momentum_conservation_and_massless(grid_samples, alpha_s, kt_min):
    lay, events, overflow = grid_samples[alpha_s, kt_min]
    p = np.asarray(events.momenta)
    mask = np.asarray(events.mask)
    w = np.asarray(events.weights)
    assert np.all(np.isfinite(p)) and np.all(np.isfinite(w)), "NaN/inf in momenta or weights"
    # Overflow: none at all in N events at these settings (sample() tolerates 1e-4).
    assert overflow.sum() == 0 and not np.any(np.asarray(lay.structure.overflow))
    # Padding rows are exactly zero.
    assert np.all(p[~mask] == 0.0)
    # Σp = (√s, 0, 0, 0) per event to 1e-10 relative (float64 round-off is ~1e-14).
    total = p.sum(axis=1)
    dev = np.max(np.abs(total - np.array([SQRT_S, 0.0, 0.0, 0.0])), axis=-1) / SQRT_S
    assert dev.max() < 1e-10, f"worst event violates momentum conservation by {dev.max():.2e} (relative)"
    # Massless partons: |m²| ≤ 1e-9 E², or, for soft partons, |E − |p⃗|| ≤ 1e-12 √s:
    # every component goes through boosts at the scale √s and carries an absolute
    # round-off of ~1e-13 √s (measured worst 1.3e-13), which alone gives m²/E² ~ 1e-9
    # for a 10 MeV gluon.
    e = p[..., 0]
    pabs = np.linalg.norm(p[..., 1:], axis=-1)
    m2 = e**2 - pabs**2
    assert np.all(e[mask] >= 0.0)
    bad = (np.abs(m2) > 1e-9 * e**2) & (np.abs(e - pabs) > 1e-12 * SQRT_S)
    assert not np.any(bad & mask), f"{np.sum(bad & mask)} partons off shell; worst |m²| = {np.abs(m2[mask]).max():.2e}"
    print(f"\nα_s={alpha_s} kt_min={kt_min}: max |ΔΣp|/√s = {dev.max():.1e}, "
          f"max |m²|/E² = {np.max(np.abs(m2[mask]) / np.maximum(e[mask], 1e-300) ** 2):.1e}, "
          f"max |E − |p||/√s = {np.max(np.abs(e - pabs)[mask]) / SQRT_S:.1e}, "
          f"<n> = {mask.sum(axis=1).mean():.2f}")


# ---------------------------------------------------------------------------------------
# 2. Colour bookkeeping and PDG codes
# ---------------------------------------------------------------------------------------


def _check_colour_event(steps: dict, st: dict, i: int) -> None:
    """Replay event `i`'s emission steps on a colour chain and check it (see test)."""
    valid_slots = np.nonzero(st["valid"][i])[0]
    n_em = int(steps["valid"][i].sum())
    assert np.all(steps["valid"][i, :n_em]) and not np.any(steps["valid"][i, n_em:]), "valid steps not a prefix"
    assert n_em == len(valid_slots), "steps and structure disagree on the number of emissions"
    emitted = steps["emitted"][i, :n_em]
    assert sorted(emitted.tolist()) == sorted((2 + valid_slots).tolist()), "each emission exactly once"
    parent, depth, b = st["parent"][i], st["depth"][i], st["bin"][i]

    def ancestors(parton: int) -> set[int]:
        out, s = set(), parton - 2
        while s >= 0 and parent[s] >= 0:
            out.add(2 + int(parent[s]))
            s = int(parent[s])
        return out

    for s in valid_slots:
        # Breadth-first slots: a parent precedes its children, one level up.
        if parent[s] < 0:
            assert depth[s] == 1
        else:
            assert parent[s] < s and st["valid"][i, parent[s]] and depth[s] == depth[parent[s]] + 1
    chain = [0, 1]
    for j in range(n_em):
        e, left, right = int(emitted[j]), int(steps["left"][i, j]), int(steps["right"][i, j])
        if j == 0:
            assert (left, right) == (0, 1), "the first emission must come from the q q̄ dipole"
        assert left != right and e not in chain and left in chain and right in chain
        k = chain.index(left)
        assert chain[k + 1] == right, f"dipole ({left}, {right}) is not colour-adjacent in {chain}"
        chain.insert(k + 1, e)
        s = e - 2
        if depth[s] >= 2:
            # A fold emission of gluon g is radiated next to g: one end of its dipole is
            # g or a gluon of g's own fold tree (on g's side of the emission).
            g = 2 + int(parent[s])
            in_tree = lambda x: x == g or g in ancestors(x)  # noqa: E731
            if b[s] > 0:  # fold rapidity > 0: on g's left
                assert in_tree(right), f"fold emission {e} of {g}: right end {right} not in g's tree"
            elif b[s] < 0:
                assert in_tree(left), f"fold emission {e} of {g}: left end {left} not in g's tree"
            else:
                assert in_tree(left) or in_tree(right)
    assert chain[0] == 0 and chain[-1] == 1 and len(chain) == len(set(chain)) == n_em + 2
    pos = {x: k for k, x in enumerate(chain)}
    # Colour order within each triangle (module docs of `_kinematics`): the q q̄
    # triangle's gluons run in increasing rapidity bin from q to q̄; a fold's gluons with
    # bin b > 0 sit left of their parent, b < 0 right, the outermost bins (collinear to
    # the parent) nearest to it: order 1, 2, …, n, g, −n, …, −1 (bin 0 may go either side).
    for owner in {-1} | {int(parent[s]) for s in valid_slots if parent[s] >= 0}:
        kids = [int(s) for s in valid_slots if parent[s] == owner]
        if owner < 0:
            seq = sorted(kids, key=lambda s: pos[2 + s])
            assert [b[s] for s in seq] == sorted(b[s] for s in seq), "q q̄ triangle out of rapidity order"
        else:
            g = 2 + owner
            side = [s for s in kids if b[s] != 0]
            left_kids = [b[s] for s in sorted(side, key=lambda s: pos[2 + s]) if pos[2 + s] < pos[g]]
            right_kids = [b[s] for s in sorted(side, key=lambda s: pos[2 + s]) if pos[2 + s] > pos[g]]
            assert all(x > 0 for x in left_kids) and all(x < 0 for x in right_kids)
            assert left_kids == sorted(left_kids) and right_kids == sorted(right_kids)


@pytest.mark.parametrize("alpha_s", ALPHAS)
def test_colour_bookkeeping(grid_samples, alpha_s):
    lay, events, _ = grid_samples[alpha_s, 0.5]
    steps = {k: np.asarray(getattr(lay.steps, k)) for k in ("emitted", "left", "right", "valid")}
    st = {k: np.asarray(getattr(lay.structure, k)) for k in ("valid", "parent", "depth", "bin")}
    for i in range(N):
        _check_colour_event(steps, st, i)
    n_fold = int(np.sum(st["valid"] & (st["depth"] >= 2)))
    n_deep = int(np.sum(st["valid"] & (st["depth"] >= 3)))
    print(f"\nα_s={alpha_s}: {n_fold} fold emissions ({n_deep} at depth ≥ 3) checked")
    if alpha_s == 0.118:
        assert n_fold > 1000 and n_deep > 10, "too few folds to test the bookkeeping"


@pytest.mark.parametrize("alpha_s", ALPHAS)
def test_pdg_codes(grid_samples, alpha_s):
    lay, events, _ = grid_samples[alpha_s, 0.5]
    pdg = np.asarray(events.pdg)
    mask = np.asarray(events.mask)
    f = pdg[:, 0]
    assert np.all((f >= 1) & (f <= 5)), "quark flavour outside 1..5 (n_f = 5)"
    assert np.all(pdg[:, 1] == -f), "the antiquark must be −(quark)"
    assert np.all(mask[:, :2])
    assert np.all(pdg[:, 2:][mask[:, 2:]] == 21) and np.all(pdg[~mask] == 0)
    # Z couplings: d-type quarks (d, s, b: 1, 3, 5) make ≈ 66% of events (LO, sin²θ_W = 0.2312).
    frac_down = np.isin(f, (1, 3, 5)).mean()
    assert 0.60 < frac_down < 0.72, frac_down  # ±6σ band for N = 2000


# ---------------------------------------------------------------------------------------
# 3. The coupling
# ---------------------------------------------------------------------------------------


def test_coupling_conversions():
    b0 = 23.0 / (12.0 * math.pi)
    lam = float(shower.lambda_qcd(0.118))
    # PHYSICS.md: one loop, n_f = 5: Λ = 87.8 MeV (quoted to 3 digits: 1e-3 relative).
    assert abs(lam / 0.0878 - 1.0) < 1e-3, lam
    # L = ln(M_Z²/Λ²) = 1/(b0 α_s) = 13.89 (quoted to 4 digits).
    assert abs(math.log(SQRT_S**2 / lam**2) - 13.89) < 1e-3 * 13.89
    assert abs(math.log(SQRT_S**2 / lam**2) - 1.0 / (b0 * 0.118)) < 1e-12
    # Round trip, to round-off (1e-14).
    a = jnp.array([0.06, 0.08, 0.118, 0.15, 0.2, 0.22])
    np.testing.assert_allclose(shower.alpha_s_from_lambda(shower.lambda_qcd(a)), a, rtol=1e-14)
    for a0 in (0.08, 0.118, 0.2):
        assert abs(float(shower.running_alpha_s(SQRT_S, a0)) / a0 - 1.0) < 1e-14
    # dΛ/dα_s = Λ/(2 b0 α_s²), by AD, to 1e-12 relative.
    for a0 in (0.08, 0.118, 0.2):
        g = float(jax.grad(shower.lambda_qcd)(a0))
        expected = float(shower.lambda_qcd(a0)) / (2.0 * b0 * a0**2)
        assert abs(g / expected - 1.0) < 1e-12, (a0, g, expected)
    # The model's Λ is the same function.
    assert float(model(0.118).lambda_qcd) == lam


# ---------------------------------------------------------------------------------------
# 4. The O(α_s) limit
# ---------------------------------------------------------------------------------------


def thrust_bracket(t):
    """[…] of the O(α_s) thrust distribution (PHYSICS.md), (1/σ) dσ/dT = (C_F α_s/2π)[…]."""
    return 2 * (3 * t**2 - 3 * t + 2) / (t * (1 - t)) * np.log((2 * t - 1) / (1 - t)) - 3 * (3 * t - 2) * (
        2 - t
    ) / (1 - t)


def test_thrust_bracket_table():
    # The table in PHYSICS.md (re-derived numerically there), to 1e-4 relative.
    t = np.array([0.70, 0.80, 0.90, 0.95, 0.99])
    table = np.array([2.4536, 13.6736, 56.8430, 172.5075, 1531.09])
    np.testing.assert_allclose(thrust_bracket(t), table, rtol=1e-4)


def first_order_model(delta_y: float) -> shower.DiscreteQCD:
    return shower.DiscreteQCD(
        0.118, kt_min=0.05, kt_min_floor=0.05, delta_y=delta_y,
        frozen_coupling=True, first_emission_only=True, capacity=8,
    )  # fmt: skip


_thrust_jit = jax.jit(observables.thrust)


def first_order_chi2(delta_y: float, n_events: int, n_bins: int, seed: int) -> tuple[float, int]:
    """χ² of the weighted thrust distribution of the first-emission density against
    the analytic O(α_s) formula (bin-averaged), over 0.70 < T < 0.98."""
    m = first_order_model(delta_y)
    edges = np.linspace(0.70, 0.98, n_bins + 1)
    sw = np.zeros(n_bins)
    sw2 = np.zeros(n_bins)
    chunk = 100_000
    for c, start in enumerate(range(0, n_events, chunk)):
        n = min(chunk, n_events - start)
        events, overflow = shower.simulate(jr.fold_in(jr.key(seed), c), m, n)
        assert not np.any(np.asarray(overflow))
        t = np.asarray(_thrust_jit(events.momenta, events.mask))
        w = np.asarray(events.weights)
        assert np.all(np.isfinite(w)) and np.all(w >= 0)
        sw += np.histogram(t, edges, weights=w)[0]
        sw2 += np.histogram(t, edges, weights=w * w)[0]
    width = np.diff(edges)
    density = sw / n_events / width
    error = np.sqrt(sw2) / n_events / width
    # Bin average of the formula on a fine midpoint grid (400 points per bin).
    u = (np.arange(400) + 0.5) / 400
    grid = edges[:-1, None] + width[:, None] * u[None, :]
    predicted = C_F * 0.118 / (2 * np.pi) * thrust_bracket(grid).mean(axis=1)
    pulls = (density - predicted) / error
    chi2 = float(np.sum(pulls**2))
    print(f"\nO(α_s) limit, δy = {delta_y:.4g}, {n_events} events, {n_bins} bins: "
          f"χ²/ndf = {chi2 / n_bins:.3f}; pulls {np.round(pulls, 2)}")
    return chi2, n_bins


# The density is exact by construction (first-emission density × its no-emission
# probability⁻¹, ME weight on the exact phase-space map), so χ²/ndf ~ 1. The issue's
# bound χ²/ndf < 1.5 (ndf = bins, no parameters fitted). At 14 bins a correct model
# exceeds it with probability ≈ 10%, at 28 bins ≈ 4%: the seeds are fixed.
@pytest.mark.parametrize("delta_y", [11.0 / 6.0, 3.0])
def test_first_order_thrust_limit(delta_y):
    chi2, ndf = first_order_chi2(delta_y, 50_000, 14, seed=7)
    assert chi2 / ndf < 1.5, f"χ²/ndf = {chi2 / ndf:.3f} for δy = {delta_y}"


@pytest.mark.slow
@pytest.mark.parametrize("delta_y", [11.0 / 6.0, 3.0])
def test_first_order_thrust_limit_full(delta_y):
    chi2, ndf = first_order_chi2(delta_y, 1_000_000, 28, seed=8)
    assert chi2 / ndf < 1.5, f"χ²/ndf = {chi2 / ndf:.3f} for δy = {delta_y}"


# ---------------------------------------------------------------------------------------
# 5. Derivatives against finite differences
# ---------------------------------------------------------------------------------------

# Binned loss: soft-histogram fractions of 1−T against fixed reference fractions (flat,
# so that (f − f_ref) is large compared with the per-batch noise in f and the product
# (f̂ − f_ref)·∂f̂ of one batch is unbiased to O(1/N)).
LOSS_EDGES = np.array([0.0, 0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.12, 0.16, 0.22, 0.30])
LOSS_REF = np.full(len(LOSS_EDGES) - 1, 0.1)
LOSS_H = 0.25 * 0.01  # kernel width: a quarter of the narrowest bin


@eqx.filter_jit
def observe_jvp(lay, b, m, t):
    """Forward-mode derivative along the tangent `t` of the batch's weighted ⟨1−T⟩, the
    binned loss, and of every event's momenta, weight and 1−T, with `lay` fixed."""

    def f(m):
        events, _ = shower.realize(lay, m)
        x = 1.0 - b.apply(observables.thrust, events.momenta, events.mask)
        w = events.weights
        total = jnp.sum(w)
        frac = observables.soft_histogram(x, jnp.asarray(LOSS_EDGES), LOSS_H, weights=w) / total
        loss = jnp.sum((frac - jnp.asarray(LOSS_REF)) ** 2)
        return jnp.sum(w * x) / total, loss, x, w, events.momenta

    return jax.jvp(f, (m,), (t,))


def batch_jvp(alpha_s: float, key, t_leaves: dict | None = None, kt_min: float = 0.5):
    m = model(alpha_s, kt_min)
    lay = shower.layout(key, m, N, min_steps=N_STEPS)
    t = tangent(m, **(t_leaves or {"alpha_s": 1.0}))
    primal, tan = observe_jvp(lay, buckets(lay), m, t)
    return lay, jax.tree_util.tree_map(np.asarray, primal), jax.tree_util.tree_map(np.asarray, tan)


def pooled_estimates(xs: list, ws: list) -> tuple[float, float, float, float]:
    """⟨1−T⟩_w and the loss of a pooled sample, with delta-method variances."""
    x, w = np.concatenate(xs), np.concatenate(ws)
    total = w.sum()
    mean = np.sum(w * x) / total
    var_mean = np.sum(w**2 * (x - mean) ** 2) / total**2
    kern = ndtr((LOSS_EDGES[None, 1:] - x[:, None]) / LOSS_H) - ndtr((LOSS_EDGES[None, :-1] - x[:, None]) / LOSS_H)
    frac = (w[:, None] * kern).sum(axis=0) / total
    loss = np.sum((frac - LOSS_REF) ** 2)
    influence = w * ((kern - frac[None, :]) @ (2.0 * (frac - LOSS_REF))) / total
    return mean, var_mean, loss, np.sum(influence**2)


def derivative_check(n_ad: int, n_fd: int, seed: int, step: float = 0.005) -> dict:
    """AD at α_s = 0.118 (forward mode through `realize`, layout fixed; `n_ad` batches of
    N, mean ± standard error over batches) vs the central difference of independent
    pooled samples at α_s ± step (`n_fd` batches of N each side, own layouts and keys)."""
    a0 = 0.118
    ad = np.array(
        [[float(tan[0]), float(tan[1])] for _, _, tan in (batch_jvp(a0, jr.key(seed + i)) for i in range(n_ad))]
    )
    side = {}
    for sign, offset in ((+1, 10_000), (-1, 20_000)):
        xs, ws = [], []
        for i in range(n_fd):
            _, primal, _ = batch_jvp(a0 + sign * step, jr.key(seed + offset + i))
            xs.append(primal[2])
            ws.append(primal[3])
        side[sign] = pooled_estimates(xs, ws)
    (mp, vmp, lp, vlp), (mm, vmm, lm, vlm) = side[+1], side[-1]
    out = {}
    for name, k, fd, var_fd in (
        ("d<1-T>/dα_s", 0, (mp - mm) / (2 * step), (vmp + vmm) / (2 * step) ** 2),
        ("dL/dα_s", 1, (lp - lm) / (2 * step), (vlp + vlm) / (2 * step) ** 2),
    ):
        ad_mean, ad_err = ad[:, k].mean(), ad[:, k].std(ddof=1) / math.sqrt(n_ad)
        sigma = math.hypot(ad_err, math.sqrt(var_fd))
        out[name] = (ad_mean, ad_err, fd, math.sqrt(var_fd), sigma)
        print(f"\n{name}: AD = {ad_mean:.4f} ± {ad_err:.4f} ({n_ad}×{N} events), "
              f"FD = {fd:.4f} ± {math.sqrt(var_fd):.4f} (2×{n_fd}×{N} events, h = {step}); "
              f"(AD − FD)/σ = {(ad_mean - fd) / sigma:+.2f}")
    return out


def _assert_derivatives(out: dict) -> None:
    for name, (ad_mean, ad_err, fd, fd_err, sigma) in out.items():
        assert abs(ad_mean - fd) < 3.0 * sigma, (
            f"{name}: AD {ad_mean:.4f} ± {ad_err:.4f} vs FD {fd:.4f} ± {fd_err:.4f}: "
            f"|Δ| = {abs(ad_mean - fd):.4f} > 3σ = {3 * sigma:.4f}"
        )


# CI size: AD 4×2000 events (σ_AD ≈ 0.01 on d⟨1−T⟩/dα_s ≈ 0.7); FD 2×6×2000 events
# (σ_FD ≈ 0.075): agreement within 3 combined σ. The `slow` version (AD 20×2000, FD
# 2×100×2000) has σ ≈ 0.02.
def test_derivative_vs_finite_difference():
    _assert_derivatives(derivative_check(n_ad=4, n_fd=6, seed=3000))


@pytest.mark.slow
def test_derivative_vs_finite_difference_full():
    _assert_derivatives(derivative_check(n_ad=20, n_fd=100, seed=4000))


# Jump partners (`shower.realize_with_jumps`) add the surface term of k⊥-order swaps;
# partner slots are pinned for N events (the most seen in 12 batches at window 0.1: 999)
# so that the partners' realize and thrust compile once.
JUMP_SLOTS = 1280


@eqx.filter_jit
def observe_jvp_jumps(lay, partners, m, t):
    """`observe_jvp`'s weighted ⟨1−T⟩ and binned loss, with the jump partners' events."""

    def f(m):
        events, _ = shower.realize_with_jumps(lay, partners, m)
        x = 1.0 - observables.thrust(events.momenta, events.mask)
        w = events.weights
        total = jnp.sum(w)
        frac = observables.soft_histogram(x, jnp.asarray(LOSS_EDGES), LOSS_H, weights=w) / total
        return jnp.sum(w * x) / total, jnp.sum((frac - jnp.asarray(LOSS_REF)) ** 2)

    return jax.jvp(f, (m,), (t,))


def crn_differences(n_batches: int, seed: int, jumps: bool, step: float = 0.005) -> list[str]:
    """AD at α_s = 0.118 (with or without jump partners) against the central difference
    with common random numbers (the same keys at α_s ± step, each re-laid out, so that
    the difference includes every discontinuity), per batch of N; the failures beyond
    3σ of the mean difference over batches."""
    a0 = 0.118
    diffs = []
    for i in range(n_batches):
        key = jr.key(seed + i)
        lay, _, tan = batch_jvp(a0, key)
        if jumps:
            m = model(a0)
            partners = shower.jump_partners(lay, m, min_partners=JUMP_SLOTS)
            tan = jax.tree_util.tree_map(np.asarray, observe_jvp_jumps(lay, partners, m, tangent(m, alpha_s=1.0))[1])
        _, plus, _ = batch_jvp(a0 + step, key)
        _, minus, _ = batch_jvp(a0 - step, key)
        fd = [(plus[k] - minus[k]) / (2 * step) for k in (0, 1)]
        diffs.append([float(tan[0]), fd[0], float(tan[1]), fd[1]])
    d = np.array(diffs)
    failures = []
    for name, k in (("d<1-T>/dα_s", 0), ("dL/dα_s", 2)):
        delta = d[:, k] - d[:, k + 1]
        mean, err = delta.mean(), delta.std(ddof=1) / math.sqrt(n_batches)
        print(f"\n{name} ({'with' if jumps else 'without'} jump partners): AD = {d[:, k].mean():.4f}, "
              f"CRN FD = {d[:, k + 1].mean():.4f}; AD − FD = {mean:+.4f} ± {err:.4f} ({n_batches}×{N} events, h = {step})")
        if abs(mean) > 3.0 * err:
            failures.append(f"{name}: AD − FD = {mean:+.4f} ± {err:.4f}")
    return failures


# With common random numbers the finite difference's noise is small enough to resolve
# the fixed-layout pathwise estimator's bias: where two emissions swap order in κ, the
# dipole that radiates each and its recoil change and the momenta jump, which `realize`
# with a fixed layout cannot see. Measured 2026-11 (12 batches, h = 0.005):
# d⟨1−T⟩/dα_s AD 0.6641 vs FD 0.6404, +0.0237 ± 0.0054 (≈ 4%); of a similar earlier
# measurement, +0.020 came from events whose common emissions change order, +0.002 from
# emissions appearing at the cutoff. This stays a strict xfail: it shows the bias the
# jump partners remove (next test).
@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="known pathwise bias from k⊥-order swaps (recoil jumps)")
def test_derivative_vs_common_random_numbers():
    failures = crn_differences(12, 5000, jumps=False)
    assert not failures, "; ".join(failures)


# With the jump partners the same comparison agrees: AD 0.6432 vs FD 0.6404,
# +0.0027 ± 0.0046 (12 batches, window 0.1). CI size: 4 batches (σ ≈ 0.009).
@pytest.mark.slow
def test_jump_derivative_vs_common_random_numbers_full():
    failures = crn_differences(12, 5000, jumps=True)
    assert not failures, "; ".join(failures)


def test_jump_derivative_vs_common_random_numbers():
    failures = crn_differences(4, 5100, jumps=True)
    assert not failures, "; ".join(failures)


# The jump-partner unit tests share one layout and pin its partner slots above the
# near pairs of N events at window 0.1 (≈ 2.2 × 10³ before the commute filter, ≈ 10³
# after), so that the partners' `realize` compiles once for both tests.
UNIT_SLOTS = 2560


@pytest.fixture(scope="module")
def jump_sample():
    m = model()
    lay = shower.layout(jr.key(5100), m, N, min_steps=N_STEPS)
    events, overflow = shower.realize(lay, m)
    return m, lay, events, overflow


def test_jump_partners_leave_values_and_physics(jump_sample):
    """`realize_with_jumps` returns `realize`'s events bit for bit, then partners of
    weight exactly 0 that are physical events (four-momentum conservation, massless)
    and really differ from their event (only non-commuting swaps get partners)."""
    m, lay, events, overflow = jump_sample
    partners = shower.jump_partners(lay, m, min_partners=UNIT_SLOTS)
    assert partners.n_partners == UNIT_SLOTS
    live = np.asarray(partners.live)
    assert 0.3 * N < live.sum() < 0.65 * N, live.sum()
    joined, flags = shower.realize_with_jumps(lay, partners, m)
    for a, b in zip(jax.tree.leaves(events), jax.tree.leaves(jax.tree.map(lambda x: x[:N], joined))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(flags[:N]), np.asarray(overflow))
    assert np.all(np.asarray(joined.weights[N:]) == 0.0)
    p, mask = np.asarray(joined.momenta[N:]), np.asarray(joined.mask[N:])
    total = np.where(mask[..., None], p, 0.0).sum(axis=1)
    np.testing.assert_allclose(total, np.tile([SQRT_S, 0, 0, 0], (len(p), 1)), atol=1e-10 * SQRT_S)
    m2 = p[..., 0] ** 2 - np.sum(p[..., 1:] ** 2, axis=-1)
    assert np.all(np.abs(np.where(mask, m2, 0.0)) <= 1e-9 * np.maximum(p[..., 0], 1.0) ** 2)
    # Partner rows: as its event's, with the two exchanged emissions' rows swapped.
    change = _partner_change(lay, partners, events, p)[live]
    print(f"\n{live.sum()} partners of {N} events; median max |Δp| = {np.median(change):.2e} GeV")
    assert np.mean(change > 1e-6) > 0.99


def _partner_change(lay, partners, events, p) -> np.ndarray:
    """Per partner, max |Δp| (GeV) between its momenta `p` and its event's, with the
    rows of the two exchanged emissions (steps j and j + 1) swapped back."""
    ev = np.asarray(partners.event)
    emitted = np.asarray(lay.steps.emitted)[ev]
    j = np.argmax(emitted == 2 + np.asarray(partners.first)[:, None], axis=1)
    main = np.asarray(events.momenta)[ev]
    swapped, rows = main.copy(), np.arange(len(ev))
    swapped[rows, 2 + j], swapped[rows, 3 + j] = main[rows, 3 + j], main[rows, 2 + j]
    return np.abs(p - swapped).max(axis=(1, 2))


def test_jump_partner_selection_on_the_device_equals_numpy(jump_sample):
    """The pair selection of `jump_partners`, on the device (`_select_pairs`, what an
    accelerator runs) and in NumPy (a CPU's): the same events, steps and live flags,
    padding included, for a shower's pairs and for a share without any."""
    from diffhep.shower import _jumps

    m, lay, _, _ = jump_sample
    near, commuting = _jumps._near_pairs(lay, 0.1), _jumps._commuting(lay.steps)
    pairs, counts = _jumps._pairs_and_counts(near, commuting)
    host = np.asarray(near) & ~np.asarray(commuting)
    assert np.array_equal(np.asarray(pairs), host) and int(counts[0]) == host.sum() > 0
    for p in (host, np.zeros_like(host)):
        for size in (int(p.sum()), int(p.sum()) + 37):
            if size == 0:
                continue
            on_device = _jumps._select_pairs(jnp.asarray(p), jnp.zeros(1, jnp.int32), size)
            for a, b in zip(on_device, _jumps._select_pairs_host(p, 1, size)):
                np.testing.assert_array_equal(np.asarray(a), b)


def test_jump_partners_drop_only_commuting_swaps(jump_sample, monkeypatch):
    """Swaps of emissions from disjoint dipoles give the same event (rows exchanged):
    with the filter off, every pair the filter drops reproduces its event to 1e-12."""
    m, lay, events, _ = jump_sample
    kept = shower.jump_partners(lay, m)
    monkeypatch.setattr(shower._jumps, "_commuting", lambda steps: jnp.zeros(steps.valid[:, 1:].shape, bool))
    every = shower.jump_partners(lay, m, min_partners=UNIT_SLOTS)
    assert every.n_partners == UNIT_SLOTS
    live = np.asarray(every.live)
    pairs = lambda pj: np.asarray(pj.event) * 64 + np.asarray(pj.first)  # noqa: E731
    dropped = live & ~np.isin(pairs(every), pairs(kept)[np.asarray(kept.live)])
    assert 0.2 * live.sum() < dropped.sum() < 0.8 * live.sum(), (dropped.sum(), live.sum())
    change = _partner_change(lay, every, events, np.asarray(shower.realize(every.layout, m)[0].momenta))
    assert np.all(change[dropped] <= 1e-12 * SQRT_S), change[dropped].max()
    assert np.mean(change[live & ~dropped] > 1e-6) > 0.99


def test_jump_partner_steps_equal_the_full_colour_search(jump_sample, monkeypatch):
    """The partners' steps come from a local rule (`_jumps._exchanged`: only steps j and
    j + 1 change); they equal the colour-order search run again with the two emissions'
    κ values exchanged (so that the other one comes first), exactly, for every near pair."""
    from diffhep.shower._cascade import emission_order_values
    from diffhep.shower._shower import colour_steps

    m, lay, _, _ = jump_sample
    monkeypatch.setattr(shower._jumps, "_commuting", lambda steps: jnp.zeros(steps.valid[:, 1:].shape, bool))
    every = shower.jump_partners(lay, m, min_partners=UNIT_SLOTS)
    live = np.asarray(every.live)

    def search(st, a, b):
        em = emission_order_values(m, st)
        kappa = em.kappa.at[a].set(em.kappa[b]).at[b].set(em.kappa[a])
        return colour_steps(m, em._replace(kappa=kappa))

    full = jax.jit(jax.vmap(search))(every.layout.structure, every.first, every.second)
    for name, a, b in zip(full._fields, full, every.layout.steps):
        np.testing.assert_array_equal(np.asarray(a)[live], np.asarray(b)[live], err_msg=name)


def test_realize_jvp_matches_finite_differences(jump_sample):
    """`shower.realize_jvp` (one compiled forward-mode pass; the fit's and the design
    loop's) returns `realize`'s events (to 1e-12 √s: another compilation, other
    fusions), and d(momenta, weights)/dα_s equal to the central difference of
    `realize` with the layout fixed, to 1e-6 of the largest (h = 1e-7; at h = 1e-6 the
    difference's own truncation error, in two strongly curved events of 2000, exceeds
    that)."""
    m, lay, events, _ = jump_sample
    got, d_momenta, d_weights = shower.realize_jvp(lay, m)
    np.testing.assert_allclose(np.asarray(got.momenta), np.asarray(events.momenta), rtol=0, atol=1e-12 * SQRT_S)
    np.testing.assert_allclose(np.asarray(got.weights), np.asarray(events.weights), rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(got.mask), np.asarray(events.mask))
    h = 1e-7
    up, down = (shower.realize(lay, eqx.tree_at(lambda x: x.alpha_s, m, m.alpha_s + s))[0] for s in (h, -h))
    for ad, fd in (
        (d_momenta, (up.momenta - down.momenta) / (2 * h)),
        (d_weights, (up.weights - down.weights) / (2 * h)),
    ):
        ad, fd = np.asarray(ad), np.asarray(fd)
        assert np.all(np.isfinite(ad))
        np.testing.assert_allclose(ad, fd, rtol=0, atol=1e-6 * np.abs(fd).max())


def test_jump_partners_padding_only(jump_sample):
    """With no pair inside the window but slots asked for, every slot is padding: event
    0 with its own steps, never live, weight 0; the events before it are unchanged."""
    m, lay, events, _ = jump_sample
    partners = shower.jump_partners(lay, m, window=1e-12, min_partners=UNIT_SLOTS)
    assert partners.n_partners == UNIT_SLOTS and not np.any(np.asarray(partners.live))
    for a, b in zip(partners.layout.steps, lay.steps):  # the first n_steps slots
        assert a.shape[1] == lay.n_steps
        np.testing.assert_array_equal(np.asarray(a), np.broadcast_to(np.asarray(b)[:1, : lay.n_steps], a.shape))
    joined, _ = shower.realize_with_jumps(lay, partners, m)
    np.testing.assert_array_equal(np.asarray(joined.weights[:N]), np.asarray(events.weights))
    assert np.all(np.asarray(joined.weights[N:]) == 0.0) and np.all(np.isfinite(np.asarray(joined.momenta)))
    assert shower.jump_partners(lay, m, window=1e-12).layout is None


def test_jump_partners_bad_window(jump_sample):
    m, lay, _, _ = jump_sample
    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="window"):
            shower.jump_partners(lay, m, window=bad)
        if bad:
            with pytest.raises(ValueError, match="headroom"):
                shower.jump_partners(lay, m, headroom=bad)


# ---------------------------------------------------------------------------------------
# 6. Finite derivatives on the parameter grid
# ---------------------------------------------------------------------------------------

GRID_ALPHAS = (0.08, 0.12, 0.16, 0.20)
GRID_KT_MINS = (0.5, 1.5, 5.0)
N_SMALL = 64


@eqx.filter_jit
def reverse_grads(lay, m, c):
    """Reverse-mode gradients, in every model leaf, of the weighted ⟨1−T⟩ and of a fixed
    random projection Σ c·p of all momenta (a non-finite entry of ∂p/∂θ shows in it)."""

    def f(m):
        events, _ = shower.realize(lay, m)
        x = 1.0 - observables.thrust(events.momenta, events.mask)
        w = events.weights
        return jnp.stack([jnp.sum(w * x) / jnp.sum(w), jnp.sum(c * events.momenta)])

    return jax.jacrev(f)(m)


@eqx.filter_jit
def reverse_grads_jumps(lay, partners, m):
    """Reverse-mode gradient, in every model leaf, of the weighted ⟨1−T⟩ with the jump
    partners' surface term (`shower.realize_with_jumps`)."""

    def f(m):
        events, _ = shower.realize_with_jumps(lay, partners, m)
        x = 1.0 - observables.thrust(events.momenta, events.mask)
        return jnp.sum(events.weights * x) / jnp.sum(events.weights)

    return jax.grad(f)(m)


def first_events(lay: shower.Layout, n: int) -> shower.Layout:
    """The layout of the first n events of `lay` (with its own sort by emission count:
    `lay.order` indexes all of `lay`'s events)."""
    from diffhep.shower._shower import _emission_order

    small = jax.tree_util.tree_map(lambda x: x[:n], lay)
    return eqx.tree_at(lambda s: s.order, small, _emission_order(small.structure)[0])


@pytest.mark.parametrize("alpha_s", GRID_ALPHAS)
def test_derivatives_finite_on_grid(alpha_s):
    c = np.asarray(jr.normal(jr.key(9), (N_SMALL, N_STEPS + 2, 4)))
    for kt in GRID_KT_MINS:
        key = jr.fold_in(jr.key(600), int(1000 * alpha_s + kt * 10))
        # Forward mode, N events, along α_s and kt_min at once: the tangent is linear in
        # the input tangent, and a NaN/inf created along either direction cannot cancel
        # (x + NaN, x ± inf, 0·inf are all non-finite; `where` drops values by the primal
        # only), so a finite JVP along (1, 1) means finite JVPs along both.
        lay, primal, tan = batch_jvp(alpha_s, key, {"alpha_s": 1.0, "kt_min": 1.0}, kt_min=kt)
        assert lay.n_steps == N_STEPS
        for name, v in zip(("<1-T>", "loss", "1-T", "weights", "momenta"), tan):
            assert np.all(np.isfinite(v)), f"non-finite d({name}) at α_s={alpha_s}, kt_min={kt}"
        assert np.all(np.isfinite(primal[4]))
        # Reverse mode, the first N_SMALL events of the same layout; with jump partners
        # too (slots pinned: the most partners on this grid are 48 of 64 events).
        m = model(alpha_s, kt)
        small = first_events(lay, N_SMALL)
        g = reverse_grads(small, m, jnp.asarray(c))
        g_jumps = reverse_grads_jumps(small, shower.jump_partners(small, m, min_partners=N_SMALL), m)
        for leaf in ("alpha_s", "kt_min", "delta_y"):
            for what, grads in (("", g), (" with jump partners", g_jumps)):
                v = np.asarray(getattr(grads, leaf))
                assert np.all(np.isfinite(v)), (
                    f"non-finite reverse-mode gradient{what} in {leaf} at α_s={alpha_s}, kt_min={kt}: {v}"
                )


# ---------------------------------------------------------------------------------------
# 7. Pathwise continuity with common random numbers
# ---------------------------------------------------------------------------------------


def discrete_content(lay: shower.Layout) -> list[np.ndarray]:
    st = lay.structure
    fields = [st.valid, st.bin, st.parent, st.depth, st.path, st.ancestors, st.overflow, *lay.steps]
    return [np.asarray(f) for f in fields]


def test_pathwise_continuity():
    key = jr.key(700)
    a0, h = 0.118, 1e-6
    lay0, primal, tan = batch_jvp(a0, key)
    p0, dp = primal[4], tan[4]
    m_up = model(a0 + h)
    # Re-laid out at α_s + h with the same key: the discrete content is locally constant,
    # so almost no event changes it, and the others move by O(h).
    lay_up = shower.layout(key, m_up, N, min_steps=N_STEPS)
    p_up = np.asarray(shower.realize(lay_up, m_up)[0].momenta)
    same = np.ones(N, bool)  # identical discrete content (the float fields move with α_s)
    for x, y in zip(discrete_content(lay0), discrete_content(lay_up)):
        same &= np.all((x == y).reshape(N, -1), axis=1)
    assert same.mean() > 0.99, f"{(~same).sum()} of {N} events changed layout for Δα_s = {h}"
    # Per event, max |Δp| ≤ 1.1·h·max(|∂p/∂α_s|, 1 GeV) + 1e-9 GeV (round-off): the events
    # move at first order only (the worst event has |∂p/∂α_s| ≈ 1e3 GeV and a second
    # derivative ≈ 4e6 GeV, a 0.2% correction at h = 1e-6).
    diff = np.abs(p_up - p0).max(axis=(1, 2))[same]
    bound = 1.1 * h * np.maximum(np.abs(dp).max(axis=(1, 2)), 1.0)[same] + 1e-9
    assert np.all(diff <= bound), f"max |Δp| = {diff.max():.2e} GeV for Δα_s = {h}"
    print(f"\nΔα_s = {h}: {(~same).sum()} of {N} layouts changed; max |Δp| = {diff.max():.2e} GeV, "
          f"max |∂p/∂α_s| = {np.abs(dp).max():.1f} GeV")
    # The JVP equals the finite difference of `realize` with the same layout, to 1e-5
    # relative per event (scale: the event's largest tangent component, ≥ 1e-3 GeV).
    # Central differences at h and h/2, Richardson-extrapolated: the O(h²) truncation
    # error of the plain central difference reaches ~7e-5 for the most curved events
    # (|∂p/∂α_s| ≈ 2e4 GeV); it shrinks as h² there, so the JVP is right.
    def central(step):
        plus = np.asarray(shower.realize(lay0, model(a0 + step))[0].momenta)
        minus = np.asarray(shower.realize(lay0, model(a0 - step))[0].momenta)
        return (plus - minus) / (2 * step)

    fd_h, fd_h2 = central(h), central(h / 2)
    fd = (4.0 * fd_h2 - fd_h) / 3.0
    scale = np.maximum(np.abs(dp).max(axis=(1, 2)), 1e-3)
    rel = np.abs(fd - dp).max(axis=(1, 2)) / scale
    rel_plain = np.abs(fd_h - dp).max(axis=(1, 2)) / scale
    print(f"JVP vs finite difference (h = {h}) with the layout fixed: worst relative {rel.max():.1e} "
          f"(Richardson), {rel_plain.max():.1e} (central); median {np.median(rel):.1e}")
    assert rel.max() < 1e-5, f"event {rel.argmax()}: JVP vs FD differ by {rel.max():.2e} (relative)"
    assert np.mean(rel_plain < 1e-5) > 0.999


def test_hardest_emission_weight():
    """The soft hardest-emission weight: its τ → 0 limit is the exact rule, which equals
    (x_q² + x_q̄²)/2 · Y_d/Y_tri with x_q, x_q̄ read off the momenta after the first
    emission (computed independently, by `dipole_emission` in the q q̄ dipole), to 1e-13;
    at the default τ = 0.1 it is continuous across a swap of the two hardest emissions."""
    from diffhep.shower._cascade import emission_values
    from diffhep.shower._kinematics import half_width
    from diffhep.shower._shower import _born, apply_steps, first_emission_weights, hardest_emission_weight

    m = model()
    lay = shower.layout(jr.key(41), m, 256, min_steps=N_STEPS)
    keys = jax.vmap(lambda k: jr.fold_in(jr.fold_in(k, 0), 0))(lay.keys)

    cold = shower.DiscreteQCD(m.alpha_s, m.kt_min, me_temperature=1e-6)

    def one(key, st, steps, mdl, cold):
        em = emission_values(mdl, st, N_STEPS)
        q, qbar, _ = _born(key, mdl, mdl.alpha_s.dtype)
        p1, _ = apply_steps(mdl, em, steps, q, qbar, 1)  # q, q̄ and the first emission only
        xq, xqb = 2.0 * p1[0, 0] / mdl.sqrt_s, 2.0 * p1[1, 0] / mdl.sqrt_s
        k = em.kappa[steps.emitted[0] - 2]
        jac = half_width(mdl.log_s, k) / (0.5 * (mdl.log_s - k))
        exact = jnp.where(steps.valid[0], jac * 0.5 * (xq**2 + xqb**2), 1.0)
        return exact, hardest_emission_weight(cold, em), hardest_emission_weight(mdl, em)

    exact, cold, soft = jax.vmap(one, (0, 0, 0, None, None))(keys, lay.structure, lay.steps, m, cold)
    np.testing.assert_allclose(cold, exact, rtol=1e-13, atol=1e-15)
    # τ = 0.1 changes only events whose two hardest emissions are close in κ; the mean
    # weight moves by < 0.5% (measured 0.05% on 4000 events), 11% of the weights by > 1e-3.
    assert abs(float(np.mean(soft)) / float(np.mean(exact)) - 1.0) < 5e-3
    assert np.mean(np.abs(soft - exact) > 1e-2) < 0.1, np.mean(np.abs(soft - exact) > 1e-2)

    # Continuity across a swap: two q q̄-triangle emissions at κ_A = κ_B ± ε.
    em = emission_values(m, jax.tree_util.tree_map(lambda x: x[0], lay.structure), N_STEPS)
    kap = em.kappa.at[0].set(6.0).at[1].set(6.0)
    em = em._replace(valid=em.valid.at[:2].set(True), depth=em.depth.at[:2].set(1),
                     coord=em.coord.at[0, 0].set(3.0).at[1, 0].set(0.0))
    w = first_emission_weights(m, em._replace(kappa=kap))
    assert abs(float(w[0] - w[1])) > 0.1  # the hard rule would jump by this much
    for eps in (1e-3, 1e-6):
        up = hardest_emission_weight(m, em._replace(kappa=kap.at[0].add(eps)))
        down = hardest_emission_weight(m, em._replace(kappa=kap.at[0].add(-eps)))
        assert abs(float(up - down)) < 50 * eps


# ---------------------------------------------------------------------------------------
# 8. Bad input
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(alpha_s=0.0), "alpha_s"),
        (dict(alpha_s=-0.1), "alpha_s"),
        (dict(alpha_s=0.05), "alpha_s"),
        (dict(alpha_s=0.25), "alpha_s"),
        (dict(kt_min=-1.0), "kt_min"),
        (dict(kt_min=0.3), "kt_min"),  # below kt_min_floor = 0.5
        (dict(kt_min=50.0), "kt_min"),  # above √s/2
        (dict(sqrt_s=0.9), "sqrt_s"),  # below 2·kt_min_floor
        (dict(delta_y=1.0), "delta_y"),  # below delta_y_min = 1.5
        (dict(delta_y=-1.0), "delta_y"),
        (dict(capacity=2), "capacity"),
        (dict(n_flavours=7), "n_flavours"),
        (dict(alpha_s=np.ones(2)), "alpha_s"),
    ],
)
def test_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        shower.DiscreteQCD(**kwargs)


def test_layout_steps_headroom():
    """`steps_headroom` widens the colour ordering's and `realize`'s step count (so that
    a fit's later layouts keep their compiled shapes) without changing any step or
    event; a negative headroom is an error."""
    m = model()
    lay = shower.layout(jr.key(801), m, 300)
    wide = shower.layout(jr.key(801), m, 300, steps_headroom=16)
    assert wide.n_steps == min(m.capacity - 2, lay.n_steps + 16)
    assert shower.layout(jr.key(801), m, 300, min_steps=wide.n_steps).n_steps == wide.n_steps
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), lay.steps, wide.steps)
    ev, _ = shower.realize(lay, m)
    ev_wide, _ = shower.realize(wide, m)
    np.testing.assert_array_equal(np.asarray(ev_wide.momenta[:, : lay.n_steps + 2]), np.asarray(ev.momenta))
    assert not np.any(np.asarray(ev_wide.mask[:, lay.n_steps + 2 :]))
    with pytest.raises(ValueError, match="steps_headroom must be >= 0, got -1"):
        shower.layout(jr.key(801), m, 300, steps_headroom=-1)


def test_bad_sample_requests():
    key = jr.key(800)
    # Capacity too small for the requested α_s: an error that names `capacity`.
    small = shower.DiscreteQCD(0.2, capacity=6)
    with pytest.raises(ValueError, match="capacity"):
        shower.sample(key, small, 200)
    for n in (0, -5):
        with pytest.raises(ValueError, match="n_events"):
            shower.sample(key, model(), n)
        with pytest.raises(ValueError, match="n_events"):
            shower.layout(key, model(), n)


# ---------------------------------------------------------------------------------------
# 9. jit, eager, batching and recompilation
# ---------------------------------------------------------------------------------------


def test_jit_eager_and_batch_agree(grid_samples):
    lay, events, _ = grid_samples[0.118, 0.5]
    m = model()
    idx = np.array([0, 1, 2])
    keys = lay.keys[idx]
    eager = jax.vmap(shower.shower_event, in_axes=(0, None))(keys, m)  # op by op, no jit
    jitted = jax.jit(shower.shower_event)
    for k, i in enumerate(idx):
        one = jitted(keys[k], m)
        rows = lay.n_steps + 2
        # jit vs eager, to 1e-12 relative to √s (round-off differs with op fusion; the
        # momenta pass through a dozen boosts: measured 2e-14 √s).
        np.testing.assert_allclose(np.asarray(one.momenta), np.asarray(eager.momenta[k]), rtol=0, atol=1e-12 * SQRT_S)
        np.testing.assert_allclose(float(one.weight), float(eager.weight[k]), rtol=1e-12)
        assert np.array_equal(np.asarray(one.pdg), np.asarray(eager.pdg[k]))
        # The batched path (layout + realize, fewer slots) gives the same event.
        assert not np.any(np.asarray(one.mask)[rows:])
        np.testing.assert_allclose(
            np.asarray(one.momenta)[:rows], np.asarray(events.momenta[i]), rtol=0, atol=1e-12 * SQRT_S
        )
        np.testing.assert_allclose(float(one.weight), float(events.weights[i]), rtol=1e-12)
        assert np.array_equal(np.asarray(one.pdg)[:rows], np.asarray(events.pdg[i]))


def test_corner_root_precision_and_derivative():
    # The corner of a Lund-triangle bin solves e^w − w − 1 = c (w ≤ 0). Reference:
    # scipy's Lambert W, w = −1 − c − W₀(−e^{−1−c}), for c ≥ 0.01 (it loses digits near
    # the branch point below), and Newton's iteration in long double from the root
    # for 1e-12 ≤ c < 0.01. Float64 to 2e-13 relative; float32 to 1e-5.
    from scipy.special import lambertw

    from diffhep.shower._lund import _solve_corner

    c = np.concatenate([np.logspace(-12, -2, 400, endpoint=False), np.logspace(-2, 8, 400)])
    w = np.asarray(_solve_corner(jnp.asarray(c)))
    assert np.all(w < 0)
    ref = -1.0 - c - np.real(lambertw(-np.exp(-1.0 - c), 0))
    cl, wl = c.astype(np.longdouble), w.astype(np.longdouble)
    for _ in range(4):
        wl = wl - (np.expm1(wl) - wl - cl) / np.expm1(wl)
    ref = np.where(c < 1e-2, wl.astype(np.float64), ref)
    np.testing.assert_allclose(w, ref, rtol=2e-13, atol=0)
    w32 = np.asarray(_solve_corner(jnp.asarray(c, jnp.float32)), np.float64)
    np.testing.assert_allclose(w32, ref, rtol=1e-5, atol=0)
    # dw/dc = 1/(e^w − 1) (implicit function theorem), finite everywhere.
    grad = np.asarray(jax.vmap(jax.grad(_solve_corner))(jnp.asarray(c)))
    np.testing.assert_allclose(grad, 1.0 / np.expm1(ref), rtol=1e-10)
    # A root from an earlier pass at a nearby c (the layout held fixed while a
    # parameter moves) is carried to the new c by the final Newton step.
    moved = np.asarray(_solve_corner(jnp.asarray(c * (1 + 1e-6)), jnp.asarray(w)))
    np.testing.assert_allclose(moved, np.asarray(_solve_corner(jnp.asarray(c * (1 + 1e-6)))), rtol=1e-11)


@pytest.mark.parametrize(("alpha_s", "unroll"), [(0.08, 1), (0.2, 3)])
def test_work_queue_cascade_equals_per_event_kernel(alpha_s, unroll, monkeypatch):
    """`cascade_structures` (64 lanes that take the next event when theirs is done)
    gives every event the structure of the per-event kernel `cascade_structure` (one
    lane, one event) under `vmap`: the
    discrete content exactly, the drawn κ, rapidity and corner roots to 1e-12
    (round-off differs with op fusion; measured 3e-13). 64 lanes for 300 events
    refill each lane ≈ 5 times. So also with the queue's steps unrolled 3× per test
    of its condition (an accelerator's `WorkSizes.cascade_unroll`), where up to two
    steps run after the queue is empty and must change nothing."""
    from diffhep import _devices
    from diffhep.shower._cascade import cascade_structure, cascade_structures

    pin_work_sizes(monkeypatch, _devices._CPU_SIZES._replace(cascade_unroll=unroll))  # fresh jit below
    m = model(alpha_s)
    keys = jr.split(jr.key(77), 300)
    queue = jax.jit(lambda k: cascade_structures(k, m, lanes=64))(keys)
    ref = jax.jit(jax.vmap(lambda k: cascade_structure(k, m)))(keys)
    for name in ("valid", "bin", "parent", "depth", "path", "ancestors", "overflow"):
        assert np.array_equal(np.asarray(getattr(queue, name)), np.asarray(getattr(ref, name))), name
    for name in ("uniforms", "kappa", "y", "corner"):
        np.testing.assert_allclose(np.asarray(getattr(queue, name)), np.asarray(getattr(ref, name)), rtol=0, atol=1e-12)
    assert int(np.asarray(ref.valid).sum(axis=1).max()) > 3 * float(np.asarray(ref.valid).sum(axis=1).mean())


def test_realize_sorted_chunks_equal_one_batch(grid_samples):
    """`realize` in chunks of multiplicity-sorted events that skip the steps beyond
    the chunk's busiest event (on a smaller table where it has at most 16
    emissions) equals one vmapped batch of all events, to 1e-11 √s:
    round-off differs with op fusion and grows through up to 30 boosts in nearly
    collinear dipoles (measured: 4 of 272000 components above 1e-12 √s, largest
    1.6e-12 √s)."""
    lay, events, _ = grid_samples[0.118, 0.5]
    one_batch, _ = shower.realize(lay, model(), chunk=0)
    assert lay.n_events > 512  # the default chunk: the fixture's events were chunked
    # Both branches of a chunk: the sorted first chunk runs on the 16-slot table
    # (the CPU's `WorkSizes.emission_tiers`) and 6 key levels, the one batch on the layout's n_steps > 16
    # and all 12 levels.
    assert_first_chunk_small(lay, 512)
    np.testing.assert_allclose(np.asarray(events.momenta), np.asarray(one_batch.momenta), rtol=0, atol=1e-11 * SQRT_S)
    np.testing.assert_allclose(np.asarray(events.weights), np.asarray(one_batch.weights), rtol=1e-11)
    assert np.array_equal(np.asarray(events.mask), np.asarray(one_batch.mask))


def test_accelerator_loops_give_the_same_events(monkeypatch):
    """The shower's loops as a GPU runs them (`WorkSizes`: finer slot tiers, and no
    steps skipped: the colour ordering's and `realize`'s loops run to the chunk's tier
    with static trip counts) give the same colour steps exactly and the same events to
    1e-11 √s (fusion round-off), and their derivative along α_s to 1e-9."""
    from diffhep import _devices

    m = model()

    def realize_jvp(lay):  # events and their tangent along α_s
        def fn(a):
            ev = shower.realize(lay, eqx.tree_at(lambda x: x.alpha_s, m, a), chunk=128)[0]
            return ev.momenta, ev.weights

        return jax.tree.map(np.asarray, jax.jvp(fn, (m.alpha_s,), (jnp.ones_like(m.alpha_s),)))

    cpu = _devices._CPU_SIZES
    try:
        pin_work_sizes(monkeypatch, cpu)  # also on a GPU, whose own choices these are not
        jax.clear_caches()  # read at trace time
        lay = shower.layout(jr.key(77), m, 1024)
        (p_cpu, w_cpu), (dp_cpu, dw_cpu) = realize_jvp(lay)
        pin_work_sizes(monkeypatch, cpu._replace(emission_tiers=(8,), skip_steps=False))
        jax.clear_caches()
        lay_gpu = shower.layout(jr.key(77), m, 1024)
        (p_gpu, w_gpu), (dp_gpu, dw_gpu) = realize_jvp(lay_gpu)
    finally:
        monkeypatch.undo()
        jax.clear_caches()
    # The first chunk in emission-count order fits the 8-slot tier.
    assert np.asarray(lay.structure.valid)[np.asarray(lay.order)[:128]].sum(axis=1).max() <= 8
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), lay.steps, lay_gpu.steps)
    assert lay_gpu.n_steps == lay.n_steps
    np.testing.assert_allclose(p_gpu, p_cpu, rtol=0, atol=1e-11 * SQRT_S)
    np.testing.assert_allclose(w_gpu, w_cpu, rtol=1e-11)
    np.testing.assert_allclose(dp_gpu, dp_cpu, rtol=0, atol=1e-9 * np.abs(dp_cpu).max())
    np.testing.assert_allclose(dw_gpu, dw_cpu, rtol=0, atol=1e-9 * np.abs(dw_cpu).max())


def assert_first_chunk_small(lay, chunk: int) -> None:
    """The first `chunk` events in emission-count order take `_by_busiest`'s small
    branch (few emissions, shallow keys); the layout as a whole does not."""
    from diffhep import _devices
    from diffhep.shower import _shower

    first = np.asarray(lay.order)[:chunk]
    valid = np.asarray(lay.structure.valid)
    depth = np.where(valid, np.asarray(lay.structure.depth), 0)
    levels = lay.structure.ancestors.shape[-1]
    # The tier the chunk takes: the CPU's one of 16 slots, or the smallest of an
    # accelerator's tiers that holds its busiest event.
    busiest = valid[first].sum(axis=1).max()
    few = min((t for t in _devices.work_sizes().emission_tiers if t >= busiest), default=lay.n_steps)
    assert few < lay.n_steps
    assert depth[first].max() <= _shower._SHALLOW_LEVELS < levels
    assert depth.max() > _shower._SHALLOW_LEVELS or valid.sum(axis=1).max() > few


def test_layout_order_puts_deep_events_last(grid_samples):
    """`layout` orders events by number of emissions, stably, with the events whose
    folds nest deeper than `_SHALLOW_LEVELS` after all others (so that they share
    chunks); `realize`'s events come back in key order all the same."""
    from diffhep.shower import _shower

    lay, events, _ = grid_samples[0.118, 0.5]  # one of its 2000 events nests 7 levels deep
    valid = np.asarray(lay.structure.valid)
    counts = valid.sum(axis=1)
    deep = np.where(valid, np.asarray(lay.structure.depth), 0).max(axis=1) > _shower._SHALLOW_LEVELS
    assert 0 < deep.sum() < len(deep)
    want = np.argsort(counts + deep * (valid.shape[1] + 1), kind="stable")
    np.testing.assert_array_equal(np.asarray(lay.order), want)
    assert not deep[want[: len(want) - deep.sum()]].any()
    one = jax.jit(jax.vmap(shower.shower_event, in_axes=(0, None)))(lay.keys[:4], model(0.118))
    rows = lay.n_steps + 2
    np.testing.assert_allclose(
        np.asarray(one.momenta)[:, :rows], np.asarray(events.momenta[:4]), rtol=0, atol=1e-12 * SQRT_S
    )


def test_layout_steps_equal_per_event_search(grid_samples):
    """The layout's colour-order steps (sorted chunks, on 16 slots and 6 key levels
    where they fit) equal the per-event search over all slots and all 12 levels,
    exactly: dropping key levels below every emission's depth changes no comparison."""
    from diffhep.shower._cascade import emission_order_values
    from diffhep.shower._shower import colour_steps

    lay, _, _ = grid_samples[0.118, 0.5]
    m = model()
    assert_first_chunk_small(lay, 1024)  # the CPU's colour-ordering chunk
    ref = jax.jit(jax.vmap(lambda s: colour_steps(m, emission_order_values(m, s))))(lay.structure)
    n = lay.n_steps
    for name in ("emitted", "left", "right", "valid"):
        got, want = np.asarray(getattr(lay.steps, name))[:, :n], np.asarray(getattr(ref, name))[:, :n]
        assert np.array_equal(got, want), name


def test_realize_does_not_recompile(grid_samples):
    from diffhep.shower import _shower

    lay, _, _ = grid_samples[0.118, 0.5]
    compiled = _shower._realize_arrays._cached
    shower.realize(lay, model(0.118))
    before = compiled._cache_size()
    # New α_s, new layout of the same shapes: no new compilation.
    m2 = model(0.1234)
    lay2 = shower.layout(jr.key(901), m2, N, min_steps=N_STEPS)
    assert lay2.n_steps == lay.n_steps
    events, _ = shower.realize(lay2, m2)
    jax.block_until_ready(events.momenta)
    shower.realize(lay, model(0.1181))
    assert compiled._cache_size() == before, "realize recompiled for new parameter values"


# ---------------------------------------------------------------------------------------
# 10. Physics sanity
# ---------------------------------------------------------------------------------------


def test_physics_sanity(grid_samples):
    means = {}
    for a in ALPHAS:
        lay, events, _ = grid_samples[a, 0.5]
        m = model(a, 0.5)
        (mean, _, x, w, _), _ = observe_jvp(lay, buckets(lay), m, tangent(m))  # shares a compile
        means[a] = (float(mean), float(np.asarray(events.mask).sum(axis=1).mean()))
    print("\n" + ", ".join(f"α_s={a}: <1-T>_w = {m:.4f}, <n> = {n:.2f}" for a, (m, n) in means.items()))
    one_t, mult = means[0.118]
    # Defaults, N = 2000 events: bands, not tuning targets (measured 0.0599 and 9.76;
    # Pythia 8 parton level gives 0.0635 and 11.2 at its own α_s; PHYSICS.md).
    assert 8.0 <= mult <= 14.0, mult
    assert 0.05 <= one_t <= 0.07, one_t
    # ⟨1−T⟩ grows with α_s (common random numbers across α_s).
    assert means[0.08][0] < means[0.118][0] < means[0.2][0], means


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dipole_emission_near_collinear_dipole(dtype):
    # A dipole whose mass is below round-off of its energy (m²/E² = 4e-10: exact in
    # float64 terms, zero in float32 ones) must not reach the boost to its rest frame
    # with |β| ≥ 1 (a float32 shower of 1e6 events stopped on this); it is returned
    # unchanged with a zero gluon, like an exactly collinear one.
    from diffhep.shower._kinematics import dipole_emission

    e, theta = 45.0, 4e-5
    pa = jnp.asarray([e, 0.0, 0.0, e], dtype)
    pb = jnp.asarray([e, e * math.sin(theta), 0.0, e * math.cos(theta)], dtype)
    kt = 0.25 * 2.0 * e * math.sin(theta / 2)  # inside the dipole's phase space at y = 0.3
    out = jax.jit(dipole_emission)(pa, pb, jnp.asarray(kt, dtype), jnp.asarray(0.3, dtype), jnp.asarray(0.3, dtype))
    for x in out:
        assert bool(jnp.all(jnp.isfinite(x)))
    if dtype == jnp.float32:
        np.testing.assert_array_equal(np.asarray(out[0]), np.asarray(pa))
        np.testing.assert_array_equal(np.asarray(out[1]), 0.0)
    else:  # float64 resolves this dipole: a real emission
        assert float(out[1][0]) > 0.0
    # Conservation to γ² ε (γ = E/m = 5e4 here; a shower dipole that can radiate has
    # m ≥ 2 k⊥,min, so γ ≲ 100 at LEP and conservation holds to 1e-12 there).
    np.testing.assert_allclose(np.asarray(out[0] + out[1] + out[2]), np.asarray(pa + pb), rtol=1e-6, atol=1e-6 * 2 * e)


def test_device_sort_of_counts_equals_numpy():
    # `layout` sorts events by emission count in NumPy on a CPU and on the device
    # elsewhere (`_stable_order`); both must give the same stable order, per share.
    from diffhep.shower import _shower

    counts = np.random.default_rng(5).poisson(9, 3000).astype(np.int32)
    for shares in (1, 3):
        want = np.argsort(counts.reshape(shares, -1), axis=1, kind="stable").reshape(-1)
        np.testing.assert_array_equal(np.asarray(_shower._stable_order(jnp.asarray(counts), shares)), want)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_slot_uniforms_are_jax_random_bit_for_bit(dtype):
    """The cascade's unrolled threefry reproduces `jr.uniform(jr.fold_in(key, path))`
    exactly, for typed and raw keys (the discrete content depends on every bit)."""
    from diffhep.shower._cascade import slot_uniforms

    keys = jr.split(jr.key(7), 2000)
    paths = jr.bits(jr.key(3), (2000,), jnp.uint32)
    tiny = jnp.finfo(dtype).tiny
    ref = jax.vmap(lambda k, p: jr.uniform(jr.fold_in(k, p), (3,), dtype=dtype, minval=tiny, maxval=1.0))(keys, paths)
    for k in (keys, jax.vmap(jr.key_data)(keys)):
        ours = jax.jit(jax.vmap(lambda k, p: slot_uniforms(k, p, dtype)))(k, paths)
        assert ours.dtype == dtype
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))
