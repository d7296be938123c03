"""Event shapes and soft histograms: analytic cases (3 massless partons, 2-jet,
isotropic events), brute-force references, symmetries, gradients against finite
differences, finite gradients at degenerate events, jit and bad input.

Reference values no one here wrote: pythia8mc and fastjet, in
`test_validation_peers.py`. Here: closed forms, and a brute-force thrust that tries
all 2^(n-1) hemisphere assignments (`T = max_ε |Σ ε_i p⃗_i| / Σ|p⃗_i|`).
Tolerances are 1e-12 in float64 where the maths is exact.
"""

import itertools

import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest
from conftest import massless
from jax.test_util import check_grads

from diffhep import kinematics as K
from diffhep import observables as O

SQRT_S = 91.1876
GRAD_EPS = 1e-6
GRAD_TOL = 1e-6

# Value tests call jitted observables: one compilation per input shape, reused across
# tests. (The public functions are jitted themselves; these wrappers also fix the
# compiled signature per test.) `test_thrust_jit_matches_eager_without_recompiling`
# compares with calls outside jit.
thrust = jax.jit(O.thrust)
thrust_axis = jax.jit(O.thrust_axis)
thrust_and_axis = jax.jit(O.thrust_and_axis)
c_parameter = jax.jit(O.c_parameter)
sphericity = jax.jit(O.sphericity)
aplanarity = jax.jit(O.aplanarity)
jet_broadening = jax.jit(O.jet_broadening)
durham_y23 = jax.jit(O.durham_y23)
soft_histogram = jax.jit(O.soft_histogram)


def grads(f, args, order):
    # Op by op: eager dispatch reuses each compiled primitive, where jit recompiles
    # every transformed function; much faster for check_grads.
    with jax.disable_jit():
        check_grads(
            f, args, order=order, modes=("fwd", "rev"), atol=GRAD_TOL, rtol=GRAD_TOL, eps=GRAD_EPS
        )


@pytest.fixture
def without_runtime_typecheck():
    """Turn off the test-time jaxtyping checks, which reject a wrongly shaped
    argument before diffhep's own check, to test the `ValueError`s users see."""
    before = jaxtyping.config.jaxtyping_disable
    jaxtyping.config.update("jaxtyping_disable", True)
    yield
    jaxtyping.config.update("jaxtyping_disable", before)


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q * np.linalg.det(q)  # proper rotation


def three_partons(x1, x2, rotation=None):
    """Massless q q̄ g momenta `(..., 3, 4)` with energy fractions `x_i = 2E_i/√s`
    (x3 = 2 − x1 − x2), in the x–y plane unless `rotation` is given."""
    x1, x2 = np.asarray(x1, float), np.asarray(x2, float)
    e1, e2 = x1 * SQRT_S / 2, x2 * SQRT_S / 2
    e3 = (2 - x1 - x2) * SQRT_S / 2
    cos12 = (e3**2 - e1**2 - e2**2) / (2 * e1 * e2)
    sin12 = np.sqrt(1 - cos12**2)
    zero = np.zeros_like(e1)
    p1 = np.stack([e1, zero, zero], -1)
    p2 = np.stack([e2 * cos12, e2 * sin12, zero], -1)
    p3 = np.stack([p1, p2, -(p1 + p2)], -2)
    if rotation is not None:
        p3 = np.einsum("...ij,...nj->...ni", rotation, p3)
    return massless(p3)


def random_x(rng, n):
    """`n` points (x1, x2) inside the 3-parton phase space, away from its edges."""
    out = []
    while len(out) < n:
        x1, x2 = rng.uniform(0.05, 0.98, size=2)
        x3 = 2 - x1 - x2
        if 0.05 < x3 < 0.98 and abs(x1 - x2) > 1e-3 and abs(x1 - x3) > 1e-3 and abs(x2 - x3) > 1e-3:
            out.append((x1, x2))
    return np.array(out).T


def brute_thrust(p):
    """Exact thrust `(batch,)` of `(batch, n, 4)` momenta from all 2^(n-1) signs."""
    p3 = np.asarray(p)[..., 1:]
    n = p3.shape[-2]
    signs = np.array([(1,) + s for s in itertools.product((1, -1), repeat=n - 1)], float)
    best = np.linalg.norm(np.einsum("sn,bni->bsi", signs, p3), axis=-1).max(-1)
    return best / np.linalg.norm(p3, axis=-1).sum(-1)


def random_events(rng, n_events, n, kind="generic"):
    """`(n_events, n, 4)` massless momenta, generic or with exact degeneracies."""
    p3 = rng.normal(size=(n_events, n, 3)) * 10
    if kind == "planar":  # exactly in the x-y plane: every pair plane holds all particles
        p3[..., 2] = 0.0
    elif kind == "planar_plus_one":  # coplanar except the last particle
        p3[..., :-1, 2] = 0.0
    elif kind == "collinear_groups":  # particles 1, 2 are parallel/antiparallel to 0
        p3[..., 1, :] = 2.5 * p3[..., 0, :]
        p3[..., 2, :] = -0.5 * p3[..., 0, :]
    elif kind == "duplicates":
        p3[..., 1, :] = p3[..., 0, :]
        p3[..., 3, :] = p3[..., 2, :]
    elif kind == "axis_aligned":  # integer momenta along the axes: many exact ties
        p3 = rng.integers(-1, 2, size=(n_events, n, 3)) * rng.integers(1, 4, size=(n_events, n, 1))
        p3 = p3.astype(float)
        p3[..., 0, :] = [1.0, 2.0, 3.0]  # at least one nonzero particle
    return massless(p3)


# --------------------------------------------------------------------------------------
# Thrust: analytic cases and brute force

N_EVENTS, N_PARTICLES = 20, 6  # the standard shape: one compilation per observable


@pytest.mark.parametrize("rotated", [False, True])
def test_thrust_three_partons(rng, rotated):
    x1, x2 = random_x(rng, N_EVENTS)
    rot = np.stack([random_rotation(rng) for _ in x1]) if rotated else None
    p = three_partons(x1, x2, rot)
    xs = np.stack([x1, x2, 2 - x1 - x2], -1)
    t, axis = thrust_and_axis(p)
    np.testing.assert_allclose(t, xs.max(-1), rtol=1e-12)
    # The axis is along the hardest parton.
    hardest = p[np.arange(len(x1)), xs.argmax(-1), 1:]
    hardest = hardest / np.linalg.norm(hardest, axis=-1, keepdims=True)
    np.testing.assert_allclose(np.abs(np.sum(axis * hardest, -1)), 1.0, rtol=1e-12)


def test_thrust_two_jet_limits(rng):
    d = rng.normal(size=3)
    d /= np.linalg.norm(d)
    # One padded batch: back-to-back pair; collinear particles along ±d with different
    # energies (not balanced); a single particle; an event with no momentum.
    p3 = np.zeros((4, 5, 3))
    p3[0, :2] = [7.0 * d, -7.0 * d]
    p3[1] = [3.0 * d, 1.0 * d, 0.5 * d, -2.0 * d, -4.0 * d]
    p3[2, 0] = 2.0 * d
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 0, 0]], bool)
    t, axis = thrust_and_axis(massless(p3), mask)
    np.testing.assert_allclose(t[:3], 1.0, rtol=1e-14)
    np.testing.assert_allclose(np.abs(axis[:3] @ d), 1.0, rtol=1e-14)
    # No momentum at all: T = 0 and a zero axis, by convention.
    assert t[3] == 0.0 and not jnp.any(axis[3])


@pytest.mark.parametrize(
    "kind, n",
    [
        ("generic", 4),
        ("generic", 9),
        ("planar", N_PARTICLES),
        ("planar_plus_one", N_PARTICLES),
        ("collinear_groups", N_PARTICLES),
        ("duplicates", N_PARTICLES),
        ("axis_aligned", N_PARTICLES),
    ],
)
def test_thrust_matches_brute_force(rng, kind, n):
    p = random_events(rng, N_EVENTS, n, kind)
    np.testing.assert_allclose(thrust(p), brute_thrust(p), rtol=1e-12)


def test_thrust_generic_chunks_and_degenerate_fallback(rng, monkeypatch):
    # Chunks of 8 events: generic chunks use the one-table enumeration, a chunk with
    # one exactly planar event falls back to the full one for the whole chunk. Signs
    # (hence T) equal the per-event full enumeration's, and T equals brute force.
    from diffhep.observables import _thrust

    monkeypatch.setattr(_thrust, "_CHUNK", 8)
    n = N_PARTICLES
    generic = random_events(rng, 20, n, "generic")
    planar = random_events(rng, 3, n, "planar")
    p = np.concatenate([generic[:9], planar[:1], generic[9:], planar[1:]])  # 23 events
    p3 = jnp.asarray(p[..., 1:])
    full = np.asarray(jax.vmap(_thrust._thrust_signs)(p3))
    _, degenerate = jax.vmap(_thrust._thrust_signs_generic)(p3)
    np.testing.assert_array_equal(np.asarray(degenerate), [False] * 9 + [True] + [False] * 11 + [True] * 2)
    t = np.asarray(jax.jit(O.thrust)(p))
    expected = jax.jit(jax.vmap(_thrust._thrust_from_signs))(jnp.asarray(p), jnp.asarray(full))[0]
    # Equal signs: T equal to round-off (another sign would move T by ~|p⃗_i|/Σ|p⃗|).
    np.testing.assert_allclose(t, np.asarray(expected), rtol=1e-15, atol=0)
    np.testing.assert_allclose(t, brute_thrust(p), rtol=1e-12)


@pytest.mark.parametrize("kind", ["generic", "planar", "duplicates", "axis_aligned"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_thrust_written_out_products_equal_matrix_products(rng, monkeypatch, kind, dtype):
    # The GPU form of the enumeration (`_written_out`: elementwise products and sums,
    # which XLA fuses, instead of small GEMMs) run here on the CPU: the same hemisphere
    # signs and degenerate flags, and T equal to round-off, in both precisions. With
    # duplicated particles the triple products that vanish exactly come out 0 or ±1e-17
    # depending on the order of the sums, so the flags (and the signs of tied
    # duplicates) may differ there; T may not.
    from diffhep.observables import _thrust

    p = random_events(rng, 40, N_PARTICLES, kind).astype(dtype)
    p3 = jnp.asarray(p[..., 1:])
    matrix = jax.vmap(_thrust._thrust_signs_generic)(p3), jax.vmap(_thrust._thrust_signs)(p3)
    t_matrix = np.asarray(O.thrust(p))
    monkeypatch.setattr(_thrust, "_written_out", lambda: True)
    written = jax.vmap(_thrust._thrust_signs_generic)(p3), jax.vmap(_thrust._thrust_signs)(p3)
    if kind != "duplicates":
        jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), matrix, written)
    _thrust._thrust_batch.clear_cache()  # trace again with the written-out products
    try:
        t_written = np.asarray(O.thrust(p))
    finally:
        _thrust._thrust_batch.clear_cache()
    np.testing.assert_allclose(t_written, t_matrix, rtol=4 * np.finfo(dtype).eps, atol=0)
    if dtype == np.float64:
        np.testing.assert_allclose(t_written, brute_thrust(p), rtol=1e-12)


def test_thrust_axis_properties(rng):
    p = random_events(rng, N_EVENTS, N_PARTICLES)
    t, axis = thrust_and_axis(p)
    np.testing.assert_allclose(np.linalg.norm(axis, axis=-1), 1.0, rtol=1e-14)
    # Separately compiled graphs may fuse differently: agree to round-off.
    np.testing.assert_allclose(thrust(p), t, rtol=1e-15)
    np.testing.assert_allclose(thrust_axis(p), axis, rtol=1e-14, atol=1e-15)
    assert np.all(axis[:, 2] > 0)  # sign convention
    # T = Σ|p⃗·n| / Σ|p⃗| at the returned axis, and no other direction does better.
    p3 = p[..., 1:]
    norm = np.linalg.norm(p3, axis=-1).sum(-1)
    at_axis = np.abs(np.einsum("eni,ei->en", p3, axis)).sum(-1) / norm
    np.testing.assert_allclose(at_axis, t, rtol=1e-12)
    others = rng.normal(size=(500, 3))
    others /= np.linalg.norm(others, axis=-1, keepdims=True)
    t_others = np.abs(np.einsum("eni,ki->ekn", p3, others)).sum(-1) / norm[:, None]
    assert np.all(t_others <= np.asarray(t)[:, None] * (1 + 1e-14))


def test_thrust_symmetries(rng):
    p = random_events(rng, N_EVENTS, N_PARTICLES)
    t, axis = thrust_and_axis(p)
    perm = rng.permutation(N_PARTICLES)
    np.testing.assert_allclose(thrust(p[:, perm]), t, rtol=1e-14)
    rot = random_rotation(rng)
    t_rot, axis_rot = thrust_and_axis(np.asarray(K.rotate(p, rot)))
    np.testing.assert_allclose(t_rot, t, rtol=1e-12)
    np.testing.assert_allclose(np.abs(np.sum(axis_rot * (axis @ rot.T), -1)), 1.0, rtol=1e-12)
    # Scale invariance; the energies do not enter.
    np.testing.assert_allclose(thrust(3.0 * p), t, rtol=1e-13)
    other_energies = np.concatenate([np.ones_like(p[..., :1]), p[..., 1:]], -1)
    np.testing.assert_allclose(thrust(other_energies), t, rtol=1e-15)


def test_masked_padding_is_ignored(rng):
    n_real = N_PARTICLES - 2
    p = random_events(rng, N_EVENTS, N_PARTICLES)
    p[:, n_real:] = rng.normal(size=(N_EVENTS, 2, 4)) * 50  # garbage in masked slots
    mask = np.arange(N_PARTICLES) < n_real
    mask = np.broadcast_to(mask, (N_EVENTS, N_PARTICLES))
    clean = np.where(mask[..., None], p, 0.0)  # zero padding, all slots unmasked
    unmasked = np.ones_like(mask)
    for f in (thrust, c_parameter, sphericity, aplanarity, durham_y23, jet_broadening):
        for a, b in zip(jax.tree.leaves(f(p, mask)), jax.tree.leaves(f(clean, unmasked))):
            np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-16)
    # Masked slots in the middle are ignored as well.
    np.testing.assert_allclose(
        thrust(p[:, ::-1], mask[:, ::-1]), thrust(clean, unmasked), rtol=1e-14
    )


# --------------------------------------------------------------------------------------
# C-parameter, sphericity, aplanarity, broadening, Durham y23


def test_three_parton_closed_forms(rng):
    x1, x2 = random_x(rng, N_EVENTS)
    x3 = 2 - x1 - x2
    rot = np.stack([random_rotation(rng) for _ in x1])
    p = three_partons(x1, x2, rot)
    # C = 6 (1-x1)(1-x2)(1-x3) / (x1 x2 x3)
    np.testing.assert_allclose(
        c_parameter(p), 6 * (1 - x1) * (1 - x2) * (1 - x3) / (x1 * x2 * x3), rtol=1e-12
    )
    # Durham: y_ij = 2 min(E_i², E_j²)(1 − cos θ_ij)/s = (min/max)(x_i, x_j) · (1 − x_k).
    xs = np.stack([x1, x2, x3], -1)
    y = [
        np.minimum(xs[:, i], xs[:, j]) / np.maximum(xs[:, i], xs[:, j]) * (1 - xs[:, k])
        for i, j, k in ((0, 1, 2), (0, 2, 1), (1, 2, 0))
    ]
    np.testing.assert_allclose(durham_y23(p), np.min(y, axis=0), rtol=1e-12)
    # Planar events: aplanarity 0. Broadening: the hardest parton is alone in its
    # hemisphere, the other two balance its p⃗ and share one transverse momentum.
    np.testing.assert_allclose(aplanarity(p), 0.0, atol=1e-14)
    b_t, b_w = jet_broadening(p)
    hard = xs.argmax(-1)
    n = p[np.arange(len(x1)), hard, 1:] / (xs.max(-1)[:, None] * SQRT_S / 2)
    other = p[np.arange(len(x1)), (hard + 1) % 3, 1:]
    kt = np.linalg.norm(np.cross(other, n), axis=-1)
    np.testing.assert_allclose(b_t, 2 * kt / (2 * SQRT_S), rtol=1e-12)
    np.testing.assert_allclose(b_w, b_t, rtol=1e-12)


def test_isotropic_and_two_jet_limits(rng):
    rot = random_rotation(rng)
    p3 = np.zeros((2, N_PARTICLES, 3))
    p3[0] = 5.0 * np.concatenate([np.eye(3), -np.eye(3)]) @ rot.T  # isotropic tensor
    p3[1, :3] = np.array([[0.0, 0.0, 9.0], [0.0, 0.0, -4.0], [0.0, 0.0, -5.0]]) @ rot.T
    p = massless(p3)
    np.testing.assert_allclose(sphericity(p)[0], 1.0, rtol=1e-12)
    np.testing.assert_allclose(aplanarity(p)[0], 0.5, rtol=1e-12)
    np.testing.assert_allclose(c_parameter(p)[0], 1.0, rtol=1e-12)
    np.testing.assert_allclose(thrust(p)[0], 1 / np.sqrt(3), rtol=1e-12)  # n ∝ (1, 1, 1)
    for f in (sphericity, aplanarity, c_parameter, durham_y23, jet_broadening):
        for value in jax.tree.leaves(f(p)):
            np.testing.assert_allclose(value[1], 0.0, atol=1e-14)
    # Fewer than three particles: y23 = 0.
    mask = np.zeros((N_EVENTS, N_PARTICLES), bool)
    mask[:, :2] = True
    y = durham_y23(random_events(rng, N_EVENTS, N_PARTICLES), mask)
    np.testing.assert_array_equal(y, np.zeros(N_EVENTS))


def test_shapes_against_eigvalsh(rng):
    p = random_events(rng, N_EVENTS, N_PARTICLES)
    p3 = np.asarray(p)[..., 1:]
    tensor = np.einsum("eni,enj->eij", p3, p3) / np.sum(p3**2, axis=(-1, -2))[:, None, None]
    lam = np.linalg.eigvalsh(tensor)  # ascending
    np.testing.assert_allclose(sphericity(p), 1.5 * (lam[:, 0] + lam[:, 1]), rtol=1e-12)
    np.testing.assert_allclose(aplanarity(p), 1.5 * lam[:, 0], rtol=1e-12)
    # C from the eigenvalues of the linearised tensor.
    a = np.linalg.norm(p3, axis=-1)
    theta = np.einsum("en,eni,enj->eij", 1 / a, p3, p3) / a.sum(-1)[:, None, None]
    mu = np.linalg.eigvalsh(theta)
    c = 3 * (mu[:, 0] * mu[:, 1] + mu[:, 1] * mu[:, 2] + mu[:, 2] * mu[:, 0])
    np.testing.assert_allclose(c_parameter(p), c, rtol=1e-12)


def test_jet_broadening_against_definition(rng):
    p = random_events(rng, N_EVENTS, N_PARTICLES)
    p3 = np.asarray(p)[..., 1:]
    # Axis from the brute-force hemisphere assignment, then the definition.
    signs = np.array([(1,) + s for s in itertools.product((1, -1), repeat=N_PARTICLES - 1)])
    sums = np.einsum("sn,eni->esi", signs, p3)
    best = sums[np.arange(N_EVENTS), np.linalg.norm(sums, axis=-1).argmax(-1)]
    n = best / np.linalg.norm(best, axis=-1, keepdims=True)
    kt = np.linalg.norm(np.cross(p3, n[:, None, :]), axis=-1)
    hemi = np.einsum("eni,ei->en", p3, n) > 0
    denom = 2 * np.linalg.norm(p3, axis=-1).sum(-1)
    b1, b2 = (kt * hemi).sum(-1) / denom, (kt * ~hemi).sum(-1) / denom
    b_t, b_w = jet_broadening(p)
    np.testing.assert_allclose(b_t, b1 + b2, rtol=1e-12)
    np.testing.assert_allclose(b_w, np.maximum(b1, b2), rtol=1e-12)


def test_durham_against_direct_clustering(rng):
    """A plain-Python Durham clustering (E-scheme), written from the definition."""
    p = random_events(rng, N_EVENTS, N_PARTICLES)
    p[..., 0] *= rng.uniform(1.0, 1.3, size=p.shape[:2])  # massive particles too

    def y23(event):
        jets = list(event)
        q2 = sum(v[0] for v in event) ** 2
        while True:
            d, i, j = min(
                (2 * min(a[0], b[0]) ** 2 * (1 - K.cos_angle(a, b).item()), i, j)
                for (i, a), (j, b) in itertools.combinations(enumerate(jets), 2)
            )
            if len(jets) == 3:
                return d / q2
            jets = [v for k, v in enumerate(jets) if k not in (i, j)] + [jets[i] + jets[j]]

    np.testing.assert_allclose(durham_y23(p), [y23(e) for e in p], rtol=1e-12)


# --------------------------------------------------------------------------------------
# Soft histogram


def test_soft_histogram_tends_to_numpy(rng):
    edges = np.linspace(-2.0, 3.0, 11)
    x = rng.normal(size=2000)
    # Keep data at least 1e-5 = 100 bandwidths from every edge.
    x = x[np.min(np.abs(x[:, None] - edges[None, :]), axis=1) > 1e-5]
    w = rng.uniform(0.5, 1.5, size=x.shape)
    np.testing.assert_allclose(
        soft_histogram(x, edges, 1e-7), np.histogram(x, edges)[0], rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        soft_histogram(x, edges, 1e-7, w), np.histogram(x, edges, weights=w)[0], rtol=1e-12
    )
    # Away from the outer edges no weight is lost, whatever the bandwidth.
    inner = rng.uniform(-0.5, 1.5, size=x.shape)
    assert jnp.sum(soft_histogram(inner, edges, 0.05)) == pytest.approx(len(x), rel=1e-12)


def test_soft_histogram_bad_input():
    x, edges = np.zeros(5), np.linspace(0, 1, 4)
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        O.soft_histogram(x, edges, 0.0)
    with pytest.raises(ValueError, match="edges must be 1-D with >= 2 entries"):
        O.soft_histogram(x, np.array([0.5]), 0.1)


def test_soft_histogram_bad_shapes(without_runtime_typecheck):
    x, edges = np.zeros(5), np.linspace(0, 1, 4)
    with pytest.raises(ValueError, match=r"x must be 1-D, got shape \(5, 1\)"):
        O.soft_histogram(x[:, None], edges, 0.1)
    with pytest.raises(ValueError, match=r"weights shape \(4,\) must match x \(5,\)"):
        O.soft_histogram(x, edges, 0.1, np.ones(4))


# --------------------------------------------------------------------------------------
# Gradients


def well_separated_events(rng, n_events=2, n=5):
    """Random events whose thrust hemisphere assignment stays fixed under perturbations
    far larger than the finite-difference step, and whose axis is far from n_z = 0."""
    while True:
        p = random_events(rng, n_events, n)
        axis = np.asarray(thrust_axis(p))
        margin = np.abs(np.einsum("eni,ei->en", p[..., 1:], axis)).min()
        if margin > 1e-2 and np.all(axis[:, 2] > 1e-2):
            return p


def test_grads_thrust(rng):
    p = well_separated_events(rng)
    grads(O.thrust, (p,), order=2)
    grads(O.thrust_axis, (p,), order=1)


def test_grads_c_parameter(rng):
    grads(O.c_parameter, (random_events(rng, 2, 5),), order=2)


def test_grads_first_order_shapes(rng):
    p = well_separated_events(rng)
    grads(O.sphericity, (p,), order=1)  # aplanarity shares its eigenvalue code
    grads(lambda p: jnp.stack(O.jet_broadening(p)), (p,), order=1)
    grads(O.durham_y23, (p,), order=1)


def test_grads_soft_histogram(rng):
    x = rng.normal(size=6)
    w = rng.uniform(0.5, 1.5, size=6)
    edges = np.linspace(-2.0, 2.0, 5)
    grads(O.soft_histogram, (x, edges, np.array(0.3), w), order=2)


def test_thrust_gradient_closed_form(rng):
    # Three partons, T = x1 = |p⃗1 − p⃗2 − p⃗3| / Σ|p⃗|.
    p = three_partons(0.9, 0.6, random_rotation(rng))
    g = jax.jit(jax.grad(lambda p: O.thrust(p)))(p)
    p3 = p[:, 1:]
    a = np.linalg.norm(p3, axis=-1)
    total, norm = p3[0] - p3[1] - p3[2], a.sum()
    expected = np.array([1.0, -1.0, -1.0])[:, None] * total / np.linalg.norm(total) / norm
    expected -= np.linalg.norm(total) / norm**2 * p3 / a[:, None]
    np.testing.assert_allclose(g[:, 1:], expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(g[:, 0], 0.0)  # energies do not enter


DEGENERATE_EVENTS = {
    "back_to_back": [[5.0, 0.0, 0.0, 5.0], [5.0, 0.0, 0.0, -5.0], [0.0] * 4, [0.0] * 4],
    "back_to_back_tilted": [[5.0, 3.0, 0.0, 4.0], [5.0, -3.0, 0.0, -4.0], [0.0] * 4, [0.0] * 4],
    "collinear": [[5.0, 3.0, 0.0, 4.0], [10.0, 6.0, 0.0, 8.0], [2.5, -1.5, 0.0, -2.0], [0.0] * 4],
    "identical": [[5.0, 3.0, 0.0, 4.0], [5.0, 3.0, 0.0, 4.0], [5.0, -3.0, 0.0, -4.0], [0.0] * 4],
    "planar": [[5.0, 3.0, 4.0, 0.0], [5.0, -3.0, 4.0, 0.0], [8.0, 0.0, -8.0, 0.0], [0.0] * 4],
    "single": [[5.0, 3.0, 0.0, 4.0], [0.0] * 4, [0.0] * 4, [0.0] * 4],
    "all_zero": [[0.0] * 4] * 4,
}
OBSERVABLES = {
    "thrust": O.thrust,
    "thrust_axis": O.thrust_axis,
    "c_parameter": O.c_parameter,
    "sphericity": O.sphericity,
    "aplanarity": O.aplanarity,
    "jet_broadening": lambda p, m: jnp.stack(O.jet_broadening(p, m), -1),
    "durham_y23": O.durham_y23,
}


def test_finite_gradients_at_degenerate_events():
    names = sorted(DEGENERATE_EVENTS)
    p = jnp.array([DEGENERATE_EVENTS[n] for n in names])
    # Padding is masked; the zero "real" particles of all_zero stay unmasked.
    mask = jnp.any(p != 0, axis=-1) | jnp.array([n == "all_zero" for n in names])[:, None]

    @jax.jit
    def derivatives(p):
        out = {}
        for name, f in OBSERVABLES.items():
            per_event = jax.grad(lambda q, m, f=f: jnp.sum(f(q, m)))
            out[name] = (f(p, mask), jax.vmap(per_event)(p, mask))
        return out

    bad = []
    for name, (value, grad) in derivatives(p).items():
        finite = jnp.isfinite(value.reshape(len(names), -1)).all(-1)
        finite &= jnp.isfinite(grad.reshape(len(names), -1)).all(-1)
        bad += [f"{name} at {ev}" for ev, ok in zip(names, finite) if not ok]
    assert not bad, f"non-finite value or gradient: {bad}"


# --------------------------------------------------------------------------------------
# jit, recompilation, batch shapes, bad input


def test_thrust_jit_matches_eager_without_recompiling(rng):
    traces = 0

    def counted(p, m):
        nonlocal traces
        traces += 1
        return O.thrust_and_axis(p, m)

    jitted = jax.jit(counted)
    for _ in range(3):
        p = random_events(rng, 4, 5)
        m = rng.uniform(size=(4, 5)) > 0.2
        for a, b in zip(jitted(p, m), O.thrust_and_axis(p, m)):
            np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)
    assert traces == 1
    assert jitted._cache_size() == 1


def test_batch_shapes(rng):
    p = random_events(rng, N_EVENTS, N_PARTICLES)
    t = thrust(p)
    batched = thrust(p.reshape(2, -1, N_PARTICLES, 4))
    np.testing.assert_allclose(batched, t.reshape(2, -1), rtol=1e-15)
    np.testing.assert_allclose(thrust(p[0]), t[0], rtol=1e-15)  # a single event


ALL_SHAPES = {
    "thrust": O.thrust,
    "thrust_axis": O.thrust_axis,
    "thrust_and_axis": O.thrust_and_axis,
    "c_parameter": O.c_parameter,
    "sphericity": O.sphericity,
    "aplanarity": O.aplanarity,
    "jet_broadening": O.jet_broadening,
    "durham_y23": O.durham_y23,
}


@pytest.mark.parametrize("name", sorted(ALL_SHAPES))
def test_bad_shapes_raise_value_error(name, without_runtime_typecheck):
    f = ALL_SHAPES[name]
    shape_msg = rf"{name}: momenta must have shape \(\.\.\., n_particles, 4\).*got \(5, 3\)"
    with pytest.raises(ValueError, match=shape_msg):
        f(np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 5\) to match .* got \(2, 4\)"):
        f(np.ones((2, 5, 4)), np.ones((2, 4), bool))


def test_bad_shapes_caught_by_runtime_typecheck():
    with pytest.raises(jaxtyping.TypeCheckError):
        O.thrust(np.ones((5, 3)))
    with pytest.raises(jaxtyping.TypeCheckError):
        O.thrust(np.ones((2, 5, 4)), np.ones((2, 4), bool))
