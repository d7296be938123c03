"""The toy detector: stated relations, limits, gradients and bad input."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from jax.test_util import check_grads

from diffhep import Events, detector
from diffhep.detector._params import PROFILE_B, gammainc

from conftest import massless


def _events(rng, n=4, cap=6):
    p3 = rng.normal(size=(n, cap, 3)) * 8.0
    mask = np.ones((n, cap), bool)
    mask[:, -1] = False
    p = np.where(mask[..., None], massless(p3), 0.0)
    pdg = np.where(mask, np.array([1, -1, 21, 21, 21, 21]), 0)
    return Events(jnp.asarray(p), jnp.asarray(mask), jnp.asarray(pdg, jnp.int32))


def _with(params, **values):
    names = list(values)
    return eqx.tree_at(lambda p: [getattr(p, n) for n in names], params, [jnp.asarray(values[n], params.b_field.dtype) for n in names])


def test_gluckstern_and_threshold():
    p = _with(detector.DetectorParams(), material=1e-12)
    pt, b, ll, sx, n = 20.0, 3.5, 1.5, 1e-5, 10
    ref = sx * pt / (0.3 * b * ll**2) * math.sqrt(720 / (n + 4))
    np.testing.assert_allclose(detector.track_resolution(p, pt, 0.0), ref, rtol=1e-4)
    # multiple scattering dominates at low pT and does not depend on pT
    q = detector.DetectorParams()
    r1, r2 = detector.track_resolution(q, 0.1, 0.0), detector.track_resolution(q, 0.2, 0.0)
    np.testing.assert_allclose(r1, r2, rtol=1e-2)
    np.testing.assert_allclose(detector.track_pt_threshold(q), 0.3 * 3.5 * 1.5 / 2)


def test_calorimeter_terms():
    p = detector.DetectorParams()
    a, b, c = detector.calo_resolution_terms(p, 10.0)
    np.testing.assert_allclose(a, 0.027 * math.sqrt(0.5 / 0.1))
    assert 0.005 <= float(b) < 0.02
    # the contained fraction is the integral of the gamma profile up to the depth
    e = 10.0
    shape = float(detector.profile_shape(e))
    t = np.linspace(0.0, 24.0, 200_001)
    dens = PROFILE_B * (PROFILE_B * t) ** (shape - 1) * np.exp(-PROFILE_B * t) / math.gamma(shape)
    integral = np.sum(0.5 * (dens[1:] + dens[:-1]) * np.diff(t))
    np.testing.assert_allclose(detector.containment(p, e), integral, rtol=1e-7)
    # t_max = ln(E/E_c) + 0.5 (photon)
    np.testing.assert_allclose((shape - 1) / PROFILE_B, math.log(e / 7.97e-3) + 0.5, rtol=1e-6)
    # deeper is better; infinitely deep contains everything
    depths = [5.0, 10.0, 20.0, 80.0]
    cont = [float(detector.containment(_with(p, calo_depth=d), e)) for d in depths]
    assert np.all(np.diff(cont) > 0) and cont[-1] > 1 - 1e-9
    # smaller cells: more noise in a cluster
    assert detector.calo_resolution_terms(_with(p, cell_size=0.005), 1.0)[2] > c


def test_gammainc_second_derivatives():
    check_grads(gammainc, (2.7, 3.1), order=2, modes=("fwd", "rev"))
    check_grads(lambda d: detector.containment(_with(detector.DetectorParams(), calo_depth=d), 5.0), (7.0,), order=2, modes=("fwd", "rev"))


def test_acceptance_hard_limit(rng):
    x = jnp.asarray(rng.uniform(-3, 3, size=400))
    for slope, tol in ((1e-2, 0.5), (1e-6, 1e-9)):
        soft = detector.acceptance(x, 0.7, slope)
        far = np.abs(np.asarray(x) - 0.7) > 0.25
        np.testing.assert_allclose(np.asarray(soft)[far], (np.asarray(x) > 0.7)[far], atol=tol if slope > 1e-3 else 1e-9)
    # the detector's weights are the hard cuts in the limit of small slopes
    ev = _events(rng, n=20)
    p = detector.DetectorParams(eta_max=1.0, eta_slope=1e-7, energy_slope=1e-7)
    reco = detector.respond(jr.key(0), ev, p)
    eta = np.arctanh(np.asarray(ev.momenta[..., 3]) / np.maximum(np.linalg.norm(np.asarray(ev.momenta[..., 1:]), axis=-1), 1e-300))
    pt = 0.65 * np.linalg.norm(np.asarray(reco.tracks[..., 1:3]) / 0.65, axis=-1) * 0.65
    hard = (np.abs(eta) < 1.0) & (pt > float(detector.track_pt_threshold(p))) & np.asarray(ev.mask)
    np.testing.assert_array_equal(np.asarray(reco.track_weight) > 0.5, hard)
    w = np.asarray(reco.track_weight)
    assert np.all((w < 1e-6) | (w > 1 - 1e-6))


def test_response_physics(rng):
    ev = _events(rng, n=50)
    noise = detector.draw_noise(jr.key(1), ev.n_events, ev.capacity)
    zero = jax.tree.map(jnp.zeros_like, noise)
    wide = detector.DetectorParams(eta_max=30.0, b_field=0.5, lever_arm=0.3)
    reco = detector.respond_with_noise(zero, ev, wide, image=(60, 48, 40.0))
    flow = reco.energy_flow()
    # without noise and with full acceptance, reconstruction returns the event (GeV)
    f_ch = wide.charged_fraction
    expect = ev.momenta * (f_ch * reco.track_weight + (1 - f_ch) * reco.cluster_weight)[..., None]
    np.testing.assert_allclose(flow, expect, rtol=1e-9, atol=1e-9)
    assert float(jnp.min(jnp.where(ev.mask, reco.cluster_weight, 1.0))) > 0.99
    # the image holds every particle's energy (both parts shower in the calorimeter)
    np.testing.assert_allclose(reco.image.sum(axis=(1, 2)), np.sum(np.asarray(ev.momenta[..., 0]), axis=1), rtol=1e-6)
    parts = reco.particles()
    assert parts.capacity == 2 * ev.capacity
    assert set(np.unique(np.asarray(parts.pdg))) <= {0, 22, 211, -211}
    # with noise: the mean cluster-energy response is unbiased, its spread the stated resolution
    p = detector.DetectorParams()
    one = Events(jnp.broadcast_to(jnp.array([10.0, 10.0, 0.0, 0.0]), (4000, 1, 4)), jnp.ones((4000, 1), bool))
    r = detector.respond(jr.key(3), one, p)
    ratio = np.asarray(r.clusters[:, 0, 0]) / (0.35 * 10.0)
    sig = float(detector.calo_resolution(p, 3.5))
    assert abs(ratio.mean() - 1) < 4 * sig / math.sqrt(4000)
    assert abs(ratio.std() / sig - 1) < 0.05


def test_response_grads(rng):
    ev = _events(rng, n=3)
    noise = detector.draw_noise(jr.key(2), ev.n_events, ev.capacity)
    base = detector.DetectorParams(eta_max=1.2, eta_slope=0.2, energy_slope=0.5)

    def summary(v):
        p = _with(base, **{n: v[i] for i, n in enumerate(detector.LEAVES)})
        reco = detector.respond_with_noise(noise, ev, p, image=(4, 4, 3.0))
        img = reco.image
        return jnp.stack([jnp.sum(reco.energy_flow()[..., 0]), jnp.sum(img * img), jnp.sum(reco.tracks[..., 1] * reco.track_weight)])

    v0 = jnp.array([float(getattr(base, n)) for n in detector.LEAVES])
    # scale each leaf to O(1) so that one finite-difference step suits all
    scale = v0
    check_grads(jax.jit(lambda x: summary(x * scale)), (jnp.ones_like(v0),), order=1, modes=("rev",), eps=1e-6)


def test_particle_shower(key):
    p = detector.DetectorParams(calo_depth=9.0)
    s = detector.particle_shower(key, 20.0, p, n_layers=10, layer_x0=2.0)
    assert s.shape == (10, 15, 15)
    assert np.all(np.asarray(s[5:]) == 0)  # layers beyond 9 X0 (index ≥ 5 starts at 10 X0) get nothing
    # averaged over showers: the contained fraction, minus what leaves the local grid sideways
    many = jax.jit(jax.vmap(lambda k: detector.particle_shower(k, 20.0, p).sum()))(jr.split(key, 200))
    cont = float(detector.containment(p, 20.0))
    assert abs(float(many.mean()) / 20.0 - cont) < 0.03
    check_grads(jax.jit(lambda d, e: detector.particle_shower(key, e, _with(p, calo_depth=d), n_layers=8).sum(axis=(1, 2))), (9.0, 20.0), order=1, modes=("rev",))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(calo_depth=-1.0), r"calo_depth=-1.0 X0 is outside the allowed range \(0, inf\)"),
        (dict(b_field=0.0), r"b_field=0.0 T is outside the allowed range \(0, inf\)"),
        (dict(cell_size=3.0, eta_max=1.0), r"cell_size=3.0 is larger than the acceptance.*\(0, 2\]"),
        (dict(sampling_fraction=1.5), r"sampling_fraction=1.5 is outside the allowed range \(0, 1\]"),
        (dict(lever_arm=float("nan")), r"lever_arm=nan m is outside"),
    ],
)
def test_bad_design(kwargs, match):
    with pytest.raises(ValueError, match=match):
        detector.DetectorParams(**kwargs)


def test_jit_matches_eager_and_no_recompile(rng):
    ev = _events(rng)
    noise = detector.draw_noise(jr.key(4), ev.n_events, ev.capacity)
    f = eqx.filter_jit(lambda p: detector.respond_with_noise(noise, ev, p).energy_flow())
    p1 = detector.DetectorParams()
    np.testing.assert_allclose(f(p1), detector.respond_with_noise(noise, ev, p1).energy_flow(), rtol=1e-12)
    f(_with(p1, b_field=2.0))
    assert f._cached._cache_size() == 1


def test_float32_smoke(rng):
    ev = _events(rng)
    ev32 = Events(ev.momenta.astype(jnp.float32), ev.mask, ev.pdg, ev.weights.astype(jnp.float32))
    p = detector.DetectorParams(dtype=jnp.float32)
    noise = detector.draw_noise(jr.key(5), ev.n_events, ev.capacity, jnp.float32)
    reco = detector.respond_with_noise(noise, ev32, p, image=(16, 16, 3.0))
    assert reco.tracks.dtype == jnp.float32 and reco.image.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(reco.energy_flow())))
    g = jax.grad(lambda q: detector.respond_with_noise(noise, ev32, q).energy_flow()[..., 0].sum())(p)
    assert all(np.isfinite(float(getattr(g, n))) for n in detector.LEAVES)
