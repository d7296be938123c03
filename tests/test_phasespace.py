"""Tests for diffhep.phasespace: conservation, on-shell masses, volumes, Jacobians,
inversion, and σ(e+e- → μ+μ-) against the analytic γ+Z result."""

import math

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from diffhep import phasespace as ps
from diffhep.me import SMParameters, matrix_element

GEV2_TO_PB = 0.3893793721e9


def _minkowski_m2(p):
    return p[..., 0] ** 2 - jnp.sum(p[..., 1:] ** 2, axis=-1)


def _check_event(p, sqrt_s, masses):
    """Momentum conservation relative to √s and on-shell masses relative to E²."""
    p = np.asarray(p)
    target = np.array([sqrt_s, 0.0, 0.0, 0.0])
    np.testing.assert_array_less(np.abs(p.sum(axis=-2) - target) / sqrt_s, 1e-10)
    m2 = p[..., 0] ** 2 - np.sum(p[..., 1:] ** 2, axis=-1)
    np.testing.assert_array_less(np.abs(m2 - np.asarray(masses) ** 2) / p[..., 0] ** 2, 1e-10)


MASSIVE = {2: [4.0, 80.0], 3: [173.0, 4.7, 0.0], 4: [0.0, 10.0, 20.0, 30.0], 5: [1.0, 2.0, 3.0, 4.0, 5.0]}


@pytest.mark.parametrize("n", [2, 3, 5])
def test_rambo(key, n):
    sqrt_s = 500.0
    u = jr.uniform(key, (200, 4 * n))
    p, w = ps.rambo(u, sqrt_s, jnp.zeros(n))
    _check_event(p, sqrt_s, jnp.zeros(n))
    # The massless weight is the constant closed-form volume.
    exact = (2 * math.pi) ** (4 - 3 * n) * (math.pi / 2) ** (n - 1) * sqrt_s ** (2 * (n - 2))
    exact /= math.factorial(n - 1) * math.factorial(n - 2)
    np.testing.assert_allclose(w, exact, rtol=1e-12)
    masses = jnp.asarray(MASSIVE[n])
    p, w = ps.rambo(u, sqrt_s, masses)
    _check_event(p, sqrt_s, masses)
    assert bool(jnp.all(w > 0))


def test_rambo_two_body_massive_weight_is_exact(key):
    # For n = 2 the massive RAMBO weight is the exact 2-body measure |p|/(4π√s).
    sqrt_s, m1, m2 = 100.0, 20.0, 50.0
    _, w = ps.rambo(jr.uniform(key, (10, 8)), sqrt_s, jnp.asarray([m1, m2]))
    _, w2 = ps.two_body(jnp.full((2,), 0.3), sqrt_s, m1, m2)
    np.testing.assert_allclose(w, w2, rtol=1e-12)


def test_rambo_mass_gradient_matches_finite_difference(key):
    u = jr.uniform(key, (12,))
    masses = jnp.asarray([173.0, 4.7, 80.4])

    def f(m, rs):
        p, w = ps.rambo(u, rs, m)
        return jnp.sum(p[:, 0] * jnp.arange(1.0, 4.0)) + 1e7 * w

    g_m, g_s = jax.jit(jax.grad(f, argnums=(0, 1)))(masses, 500.0)
    h = 1e-4
    for i in range(3):
        dm = jnp.zeros(3).at[i].set(h)
        fd = (f(masses + dm, 500.0) - f(masses - dm, 500.0)) / (2 * h)
        np.testing.assert_allclose(g_m[i], fd, rtol=1e-6)
    fd = (f(masses, 500.0 + h) - f(masses, 500.0 - h)) / (2 * h)
    np.testing.assert_allclose(g_s, fd, rtol=1e-6)


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("massive", [False, True])
def test_rambo_diet_round_trip(key, n, massive):
    sqrt_s = 500.0
    masses = jnp.asarray(MASSIVE[n]) if massive else jnp.zeros(n)
    u = jr.uniform(key, (200, 3 * n - 4), minval=0.01, maxval=0.99)
    p, w = jax.jit(ps.rambo_diet)(u, sqrt_s, masses)
    _check_event(p, sqrt_s, masses)
    if not massive:  # flat: the constant massless volume
        np.testing.assert_allclose(w, ps.massless_volume(n, sqrt_s), rtol=1e-12)
    u2, w2 = ps.rambo_diet_inverse(p, masses)
    np.testing.assert_allclose(u2, u, rtol=0, atol=1e-10)
    np.testing.assert_allclose(w2, w, rtol=1e-10)


def _diet_coordinates(u, sqrt_s, masses):
    """Map u → (p⃗_1 … p⃗_{n−2}, u-angles of p_{n−1} in the rest frame of Q_{n−1}),
    coordinates in which dΦ_n has the explicit density
    ∏_{j≤n−2} 1/((2π)³ 2E_j) × |q|/(16π² M_{n−1}) × (2 · 2π) per unit of the last two."""
    n = masses.shape[0]
    p, _ = ps.rambo_diet(u, sqrt_s, masses)
    last = ps.two_body_decay_inverse(p[n - 2 :])
    return jnp.concatenate([p[: n - 2, 1:].reshape(-1), last]), p


@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("massive", [False, True])
def test_rambo_diet_weight_is_jacobian(key, n, massive):
    # distrax-style check: the weight equals |det ∂y/∂u| (slogdet of jacfwd) times
    # the phase-space density in the coordinates y of `_diet_coordinates`.
    sqrt_s = 500.0
    masses = jnp.asarray(MASSIVE[n]) if massive else jnp.zeros(n)
    u = jr.uniform(key, (3, 3 * n - 4), minval=0.05, maxval=0.95)

    @jax.jit
    @jax.vmap
    def check(u):
        jac, p = jax.jacfwd(_diet_coordinates, has_aux=True)(u, sqrt_s, masses)
        _, logdet = jnp.linalg.slogdet(jac)
        big_m = jnp.sqrt(_minkowski_m2(p[n - 2] + p[n - 1]))
        m1, m2 = masses[n - 2], masses[n - 1]
        q = jnp.sqrt((big_m**2 - (m1 + m2) ** 2) * (big_m**2 - (m1 - m2) ** 2)) / (2 * big_m)
        density = jnp.prod(1.0 / ((2 * math.pi) ** 3 * 2 * p[: n - 2, 0])) * q / (16 * math.pi**2 * big_m) * 4 * math.pi
        return ps.rambo_diet(u, sqrt_s, masses)[1], jnp.exp(logdet) * density

    w, expected = check(u)
    np.testing.assert_allclose(w, expected, rtol=1e-9)


def test_rambo_diet_mass_gradient(key):
    u = jr.uniform(key, (5,))
    masses = jnp.asarray([173.0, 4.7, 0.0])

    def f(m):
        p, w = ps.rambo_diet(u, 600.0, m)
        return jnp.sum(p[:, 3] * jnp.arange(1.0, 4.0)) + 1e5 * w

    g = jax.grad(f)(masses)
    h = 1e-4
    for i in range(2):
        dm = jnp.zeros(3).at[i].set(h)
        np.testing.assert_allclose(g[i], (f(masses + dm) - f(masses - dm)) / (2 * h), rtol=1e-6)


def test_two_body_and_decay_round_trip(key):
    k1, k2 = jr.split(key)
    u = jr.uniform(k1, (100, 2))
    p, w = ps.two_body(u, 91.188, 4.7, 10.0)
    _check_event(p, 91.188, jnp.asarray([4.7, 10.0]))
    np.testing.assert_allclose(ps.two_body_inverse(p), u, atol=1e-12)
    np.testing.assert_allclose(ps.two_body(u, 91.0, 0.0, 0.0)[1], 1 / (8 * math.pi), rtol=1e-14)
    # A moving parent: daughters sum to it and invert back.
    parent = jnp.asarray([300.0, 20.0, -50.0, 120.0])
    d, wd = ps.two_body_decay(u, parent, 4.7, 80.4)
    np.testing.assert_allclose(d.sum(-2), jnp.broadcast_to(parent, (100, 4)), rtol=1e-13, atol=1e-11)
    np.testing.assert_allclose(jnp.sqrt(_minkowski_m2(d[:, 1])), 80.4, rtol=1e-10)
    np.testing.assert_allclose(ps.two_body_decay_inverse(d), u, atol=1e-10)


def test_bw_map_round_trip_and_jacobian(key):
    u = jr.uniform(key, (50,))
    mass, width, smin, smax = 80.4, 2.1, 10.0**2, 120.0**2
    s, w = ps.bw_map(u, mass, width, smin, smax)
    assert bool(jnp.all((s >= smin) & (s <= smax)))
    np.testing.assert_allclose(ps.bw_map_inverse(s, mass, width, smin, smax), u, atol=1e-12)
    ds = jax.vmap(jax.grad(lambda x: ps.bw_map(x, mass, width, smin, smax)[0]))(u)
    np.testing.assert_allclose(w, ds, rtol=1e-12)
    # The mapping flattens the Breit–Wigner exactly: w × BW is the constant ∫ BW ds.
    bw = 1.0 / ((s - mass**2) ** 2 + (mass * width) ** 2)
    integral = (math.atan((smax - mass**2) / (mass * width)) - math.atan((smin - mass**2) / (mass * width))) / (mass * width)
    np.testing.assert_allclose(w * bw, integral, rtol=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="4 uniforms"):
        ps.rambo(jnp.full((7,), 0.5), 10.0, jnp.zeros(2))
    with pytest.raises(ValueError, match="threshold"):
        ps.rambo_diet(jnp.full((2,), 0.5), 10.0, jnp.asarray([6.0, 6.0]))
    with pytest.raises(ValueError, match=">= 0"):
        ps.rambo(jnp.full((8,), 0.5), 10.0, jnp.asarray([-1.0, 1.0]))


# ---------------------------------------------------------------- σ(e+e- → μ+μ-)


def sigma_analytic(sqrt_s, params):
    """LO σ(e+e- → μ+μ-) through γ and Z with massless leptons, in pb.

    σ = (π α²/(3s)) Σ_{i,j∈{L,R}} |Q_e Q_μ + g_i g_j/(s_w² c_w²) χ(s)|²,
    χ = s/(s − M_Z² + i M_Z Γ_Z), g_L = −1/2 + s_w², g_R = s_w², with MadGraph's
    sm-scheme α = 1/aEWM1 and s_w² = 1 − M_W²/M_Z² (M_W derived from G_F).
    """
    s = sqrt_s**2
    sw2 = params.sw2
    chi = s / (s - params.MZ**2 + 1j * params.MZ * params.WZ)
    g = jnp.stack([-0.5 + sw2, sw2])
    amp = 1.0 + g[:, None] * g[None, :] / (sw2 * (1 - sw2)) * chi
    return math.pi * params.aEW**2 / (3 * s) * jnp.sum(jnp.abs(amp) ** 2) * GEV2_TO_PB


def sigma_numeric(sqrt_s, params, n_cos=16, n_phi=3):
    """σ from |M|² over `two_body` with Gauss–Legendre in cosθ (|M|² is a quadratic
    polynomial in cosθ, so 16 nodes are exact) and a few φ values."""
    x, wx = np.polynomial.legendre.leggauss(n_cos)
    u0 = (x + 1) / 2
    u1 = (np.arange(n_phi) + 0.5) / n_phi
    u = jnp.stack(jnp.broadcast_arrays(u0[:, None], u1[None, :]), axis=-1).reshape(-1, 2)
    wq = jnp.asarray(np.repeat(wx / 2, n_phi) / n_phi)
    final, w = ps.two_body(u, sqrt_s, 0.0, 0.0)
    e = sqrt_s / 2
    incoming = jnp.asarray([[e, 0.0, 0.0, e], [e, 0.0, 0.0, -e]])
    momenta = jnp.concatenate([jnp.broadcast_to(incoming, (u.shape[0], 2, 4)), final], axis=1)
    me = matrix_element("e+ e- > mu+ mu-", momenta, params)
    return jnp.sum(wq * w * me) / (2 * sqrt_s**2) * GEV2_TO_PB


SQRT_S = (20.0, 60.0, 91.188, 150.0, 500.0)


def test_sigma_ee_mumu():
    params = SMParameters.from_param_card()
    numeric = jax.jit(jax.vmap(sigma_numeric, in_axes=(0, None)))(jnp.asarray(SQRT_S), params)
    analytic = jnp.stack([sigma_analytic(rs, params) for rs in SQRT_S])
    np.testing.assert_allclose(numeric, analytic, rtol=1e-10)


def test_sigma_ee_mumu_gradient_mz():
    params = SMParameters.from_param_card()

    # params is an argument (not a closure constant) so that every field is traced.
    def f(mz, sqrt_s, params):
        return sigma_numeric(sqrt_s, params.replace(MZ=mz))

    sqrt_s = jnp.asarray([88.0, 150.0])
    g = jax.jit(jax.vmap(jax.grad(f), in_axes=(None, 0, None)))(params.MZ, sqrt_s, params)
    h = 1e-4
    f_b = jax.jit(jax.vmap(f, in_axes=(None, 0, None)))
    fd = (f_b(params.MZ + h, sqrt_s, params) - f_b(params.MZ - h, sqrt_s, params)) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6)
    ga = jnp.stack([jax.grad(lambda mz: sigma_analytic(rs, params.replace(MZ=mz)))(params.MZ) for rs in (88.0, 150.0)])
    np.testing.assert_allclose(g, ga, rtol=1e-9)


# ----------------------------------------------------------- t t̄ decay chain
CHAIN = dict(mt=173.0, wt=1.4915, mw=80.419, ww=2.0476)  # MG5 sm card (MW derived)


def _chain_masses(p):
    """(s_t, s_t̄, s_W⁺, s_W⁻) of (b, u, d̄, b̄, d, ū) momenta."""
    p = np.asarray(p)
    w1, w2 = p[..., 1, :] + p[..., 2, :], p[..., 4, :] + p[..., 5, :]
    t1, t2 = p[..., 0, :] + w1, p[..., 3, :] + w2
    return [np.asarray(_minkowski_m2(q)) for q in (t1, t2, w1, w2)]


@pytest.mark.parametrize("mb", [0.0, 4.7])
def test_ttbar_chain_conservation_on_shell_and_round_trip(key, mb):
    """Four-momentum conservation and external masses to 1e-10 (relative to √ŝ, E²);
    intermediate masses follow the BW map; inverse reproduces u and w to 1e-10."""
    sqrt_s = jnp.asarray([400.0, 700.0, 1500.0, 3000.0])[:, None]
    u = jr.uniform(key, (4, 64, ps.N_CHAIN))
    p, w = ps.ttbar_decay_chain(u, sqrt_s, **CHAIN, mb=mb)
    assert p.shape == (4, 64, 6, 4) and w.shape == (4, 64)
    for i in range(4):
        _check_event(p[i], float(sqrt_s[i, 0]), [mb, 0.0, 0.0, mb, 0.0, 0.0])
    assert np.all(np.asarray(w) > 0)
    s_t1 = _chain_masses(p)[0]
    ref, _ = ps.bw_map(u[..., 0], CHAIN["mt"], CHAIN["wt"], mb**2, (sqrt_s - mb) ** 2)
    np.testing.assert_allclose(s_t1, ref, rtol=1e-10)
    u_back, w_back = ps.ttbar_decay_chain_inverse(p, **CHAIN, mb=mb)
    np.testing.assert_allclose(u_back, u, atol=1e-10, rtol=0)
    np.testing.assert_allclose(w_back, w, rtol=1e-10)
    # jit agrees with eager.
    pj, wj = jax.jit(lambda uu: ps.ttbar_decay_chain(uu, sqrt_s, **CHAIN, mb=mb))(u)
    np.testing.assert_allclose(pj, p, rtol=1e-13, atol=1e-11)
    np.testing.assert_allclose(wj, w, rtol=1e-13)


def test_ttbar_chain_weight_is_jacobian(key):
    """The weight is the Jacobian of a bijection. Chart: (u, √ŝ) ↦ (p⃗_1 … p⃗_5)
    (15 → 15; p⃗_6 = −Σ and the energy δ is eaten by √ŝ), where
    dΦ₆ d√ŝ = (2π)⁻¹⁴ ∏_{i≤5} d³p_i / ∏_{i≤6} 2E_i, so
    w = (2π)⁻¹⁴ |det J| / ∏ 2E_i, with log|det J| from `jacfwd` + `slogdet` (rtol 1e-9)."""
    mb = 4.7

    def chart(x):
        p, _ = ps.ttbar_decay_chain(x[:14], x[14], **CHAIN, mb=mb)
        return p[:5, 1:].reshape(-1)

    for u in jr.uniform(key, (5, ps.N_CHAIN)):
        x = jnp.concatenate([u, jnp.asarray([900.0])])
        p, w = ps.ttbar_decay_chain(u, 900.0, **CHAIN, mb=mb)
        _, logdet = jnp.linalg.slogdet(jax.jacfwd(chart)(x))
        expected = logdet - 14 * math.log(2 * math.pi) - jnp.sum(jnp.log(2 * p[:, 0]))
        np.testing.assert_allclose(jnp.log(w), expected, rtol=1e-9)


@pytest.mark.parametrize("sqrt_s", [400.0, 1000.0])
def test_ttbar_chain_volume_narrow_width(key, sqrt_s):
    """∫ dΦ₆ ∏_r 2π·(M_rΓ_r/π)/((s_r − M_r²)² + M_r²Γ_r²) → the narrow-width product
    Φ₂(√ŝ; m_t, m_t) [Φ₂(m_t; 0, m_W) Φ₂(m_W; 0, 0)]², Φ₂ = |q|/(4πM), as Γ → 0.
    With widths × 1e-4 the finite-width corrections are O(10⁻⁵) and the BW-mapped
    integrand is nearly constant (MC error ~1e-8): rtol 1e-4. With the physical widths
    the finite-width result lies 3–5% below (reported, loosely bounded)."""
    u = jr.uniform(key, (4096, ps.N_CHAIN))

    def phi2(m, m1, m2):
        return ps._common.two_body_momentum(m, m1, m2) / (4 * math.pi * m)

    nwa = phi2(sqrt_s, 173.0, 173.0) * (phi2(173.0, 0.0, 80.419) * phi2(80.419, 0.0, 0.0)) ** 2
    for scale, rtol in ((1e-4, 1e-4), (1.0, 0.08)):
        par = dict(CHAIN, wt=CHAIN["wt"] * scale, ww=CHAIN["ww"] * scale)
        p, w = ps.ttbar_decay_chain(u, sqrt_s, **par)
        f = w
        for s, (m, g) in zip(_chain_masses(p), ((par["mt"], par["wt"]),) * 2 + ((par["mw"], par["ww"]),) * 2):
            f = f * 2 * m * g / ((s - m * m) ** 2 + (m * g) ** 2)
        np.testing.assert_allclose(jnp.mean(f), nwa, rtol=rtol)
        assert float(jnp.mean(f)) <= float(nwa) * (1 + 1e-6)


def test_ttbar_chain_mass_gradients(key):
    """d/d(mt, wt, mw, ww) of the weight at fixed u: forward and reverse mode agree
    with central finite differences (h = 1e-4 GeV, rtol 1e-5)."""
    u = jr.uniform(key, (ps.N_CHAIN,))

    def f(theta):
        _, w = ps.ttbar_decay_chain(u, 800.0, theta[0], theta[1], theta[2], theta[3])
        return jnp.log(w)

    theta = jnp.asarray([CHAIN["mt"], CHAIN["wt"], CHAIN["mw"], CHAIN["ww"]])
    g = jax.grad(f)(theta)
    np.testing.assert_allclose(jax.jacfwd(f)(theta), g, rtol=1e-10)
    h = 1e-4
    fd = jnp.stack([(f(theta.at[i].add(h)) - f(theta.at[i].add(-h))) / (2 * h) for i in range(4)])
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-8)


def test_ttbar_chain_bad_input():
    u = jnp.full((14,), 0.5)
    with pytest.raises(ValueError, match=r"\(\.\.\., 14\)"):
        ps.ttbar_decay_chain(u[:13], 500.0, **CHAIN)
    with pytest.raises(ValueError, match="mt must be > 0"):
        ps.ttbar_decay_chain(u, 500.0, **dict(CHAIN, mt=-1.0))
    with pytest.raises(ValueError, match="width ww"):
        ps.ttbar_decay_chain(u, 500.0, **dict(CHAIN, ww=0.0))
    with pytest.raises(ValueError, match="threshold"):
        ps.ttbar_decay_chain(u, 5.0, **CHAIN, mb=4.7)
    with pytest.raises(ValueError, match=r"\(\.\.\., 6, 4\)"):
        ps.ttbar_decay_chain_inverse(jnp.zeros((5, 4)), **CHAIN)
