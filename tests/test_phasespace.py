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
