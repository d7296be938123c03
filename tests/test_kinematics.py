"""Four-vector kinematics: values against closed forms and the `vector` library,
gradients against finite differences (`check_grads`, order 2, fwd and rev), finite
values, gradients and Hessians at degenerate points, jit against eager, and no
recompilation.

Tolerances: 1e-12 (relative, or absolute on O(1–10) GeV quantities) where the maths
is exact in float64; gradients to `GRAD_TOL` with finite-difference step `GRAD_EPS`
(central differences: truncation error ~eps², round-off ~1e-16/eps).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import vector
from jax.test_util import check_grads

from diffhep import kinematics as K

GRAD_EPS = 1e-6
GRAD_TOL = 1e-6


def grads(f, args, order=2):
    # Op by op without jit: eager dispatch compiles each primitive once per shape and
    # reuses it, where jit would compile every transformed function anew; that is
    # several times faster for check_grads' many small transformations.
    with jax.disable_jit():
        check_grads(
            f, args, order=order, modes=("fwd", "rev"), atol=GRAD_TOL, rtol=GRAD_TOL, eps=GRAD_EPS
        )


def massive(rng, n, scale=10.0):
    """`(n, 4)` random time-like momenta with masses in [1, 5] GeV."""
    p3 = rng.normal(size=(n, 3)) * scale
    m = rng.uniform(1.0, 5.0, size=n)
    e = np.sqrt(np.sum(p3**2, -1) + m**2)
    return np.concatenate([e[:, None], p3], -1)


def vec(p):
    """`(n, 4)` → `vector` NumPy array, the independent reference."""
    p = np.asarray(p)
    return vector.array({"px": p[:, 1], "py": p[:, 2], "pz": p[:, 3], "E": p[:, 0]})


# --------------------------------------------------------------------------------------
# Values


def test_values_against_vector(rng):
    p, q = massive(rng, 50), massive(rng, 50)
    vp, vq = vec(p), vec(q)
    close = dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K.pt(p), vp.pt, **close)
    np.testing.assert_allclose(K.eta(p), vp.eta, **close)
    np.testing.assert_allclose(K.phi(p), vp.phi, **close)
    np.testing.assert_allclose(K.rapidity(p), vp.rapidity, **close)
    np.testing.assert_allclose(K.mass(p), vp.mass, **close)
    np.testing.assert_allclose(K.mass2(p), vp.mass2, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(K.p3_abs(p), vp.p, **close)
    np.testing.assert_allclose(K.dot(p, q), vp.dot(vq), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(K.delta_phi(p, q), vp.deltaphi(vq), **close)
    np.testing.assert_allclose(K.delta_r(p, q), vp.deltaR(vq), **close)
    np.testing.assert_allclose(K.cos_angle(p, q), np.cos(vp.deltaangle(vq)), **close)


def test_values_closed_forms():
    # (E, px, py, pz) = (13, 3, 4, 12): |p| = 13 -> massless; pt = 5.
    p = jnp.array([13.0, 3.0, 4.0, 12.0])
    assert K.pt(p) == pytest.approx(5.0, rel=1e-15)
    assert K.p3_abs(p) == pytest.approx(13.0, rel=1e-15)
    assert K.mass(p) == 0.0
    assert K.eta(p) == pytest.approx(np.arcsinh(12.0 / 5.0), rel=1e-15)
    # Massless: rapidity equals pseudorapidity.
    assert K.rapidity(p) == pytest.approx(float(K.eta(p)), rel=1e-14)
    assert K.phi(p) == pytest.approx(np.arctan2(4.0, 3.0), rel=1e-15)
    q = jnp.array([5.0, 0.0, 0.0, 3.0])  # m = 4 along the beam
    assert K.mass(q) == pytest.approx(4.0, rel=1e-15)
    assert K.rapidity(q) == pytest.approx(0.5 * np.log(8.0 / 2.0), rel=1e-15)
    assert K.dot(p, q) == pytest.approx(13 * 5 - 12 * 3, rel=1e-15)


def test_delta_phi_wraps():
    p = K.from_ptetaphim(1.0, 0.0, 3.1, 0.0)
    q = K.from_ptetaphim(1.0, 0.0, -3.1, 0.0)
    assert K.delta_phi(p, q) == pytest.approx(6.2 - 2 * np.pi, abs=1e-12)
    assert K.delta_phi(q, p) == pytest.approx(2 * np.pi - 6.2, abs=1e-12)
    assert K.delta_r(p, q) == pytest.approx(2 * np.pi - 6.2, abs=1e-12)


def test_beam_and_zero_conventions():
    beam = jnp.array([[3.0, 0.0, 0.0, 3.0], [3.0, 0.0, 0.0, -3.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(K.eta(beam), [K.RAPIDITY_CAP, -K.RAPIDITY_CAP, 0.0])
    np.testing.assert_array_equal(K.rapidity(beam), [K.RAPIDITY_CAP, -K.RAPIDITY_CAP, 0.0])
    np.testing.assert_array_equal(K.phi(beam), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(K.pt(beam), [0.0, 0.0, 0.0])
    # A massive particle along the beam has a finite rapidity.
    assert K.rapidity(jnp.array([5.0, 0.0, 0.0, 3.0])) == pytest.approx(np.log(2.0), rel=1e-15)
    # cos_angle with a zero vector is 1 by convention.
    assert K.cos_angle(beam[2], jnp.array([1.0, 1.0, 0.0, 0.0])) == 1.0


def test_masked_sum(rng):
    p = massive(rng, 2 * 5).reshape(2, 5, 4)
    mask = np.array([[True, False, True, True, False], [False, False, False, False, False]])
    expected = np.stack([p[0, mask[0]].sum(0), np.zeros(4)])
    np.testing.assert_allclose(K.masked_sum(p, mask), expected, rtol=1e-14, atol=1e-14)


def test_from_ptetaphim_round_trip(rng):
    p = massive(rng, 50)
    back = K.from_ptetaphim(K.pt(p), K.eta(p), K.phi(p), K.mass(p))
    np.testing.assert_allclose(back, p, rtol=1e-12, atol=1e-12)
    v = vector.array({"pt": [7.0, 2.0], "eta": [0.3, -2.5], "phi": [1.0, -3.0], "mass": [4.0, 0.0]})
    ours = K.from_ptetaphim(jnp.array(v.pt), jnp.array(v.eta), jnp.array(v.phi), jnp.array(v.mass))
    ref = np.stack([v.E, v.px, v.py, v.pz], -1)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------
# Boosts and rotations


def test_boost_against_vector_and_invariants(rng):
    p = massive(rng, 20)
    beta = np.array([0.3, -0.5, 0.6])
    ours = K.boost(p, beta)
    v = vec(p).boost_beta3(vector.obj(x=beta[0], y=beta[1], z=beta[2]))
    np.testing.assert_allclose(ours, np.stack([v.E, v.px, v.py, v.pz], -1), rtol=1e-12)
    np.testing.assert_allclose(K.mass2(ours), K.mass2(p), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(K.dot(ours[:-1], ours[1:]), K.dot(p[:-1], p[1:]), rtol=1e-12)
    # beta = 0 is the identity (a regular point of the formula).
    np.testing.assert_array_equal(K.boost(p, np.zeros(3)), p)


def test_boost_along_axis_matches_boost(rng):
    p = massive(rng, 10)
    w = 0.7
    for axis in (1, 2, 3):
        beta = np.zeros(3)
        beta[axis - 1] = np.tanh(w)
        np.testing.assert_allclose(K.boost_along_axis(p, w, axis), K.boost(p, beta), rtol=1e-12)
    # Boosting along z shifts rapidity by w.
    np.testing.assert_allclose(
        K.rapidity(K.boost_along_axis(p, w)), K.rapidity(p) + w, rtol=1e-12, atol=1e-12
    )


def test_rest_frame_round_trip(rng):
    p = massive(rng, 20)
    frame = massive(rng, 1)[0]
    rest = K.boost_to_rest_frame(p, frame)
    np.testing.assert_allclose(K.boost_from_rest_frame(rest, frame), p, rtol=1e-12, atol=1e-12)
    # The frame itself is at rest in its rest frame.
    m = float(K.mass(frame))
    np.testing.assert_allclose(
        K.boost_to_rest_frame(frame, frame), [m, 0.0, 0.0, 0.0], rtol=1e-12, atol=1e-12
    )
    # Same convention as vector: boost_p4 takes rest-frame momenta to the lab.
    v = vec(rest).boost_p4(vector.obj(px=frame[1], py=frame[2], pz=frame[3], E=frame[0]))
    np.testing.assert_allclose(np.stack([v.E, v.px, v.py, v.pz], -1), p, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("jit", [False, True])
def test_boost_superluminal_raises(jit):
    boost = jax.jit(K.boost) if jit else K.boost
    p = jnp.array([[5.0, 1.0, 2.0, 3.0]])
    with pytest.raises(RuntimeError, match=r"\|beta\| must be < 1"):
        boost(p, jnp.array([1.0, 0.0, 0.0])).block_until_ready()
    with pytest.raises(RuntimeError, match=r"\|beta\| must be < 1"):
        boost(p, jnp.array([0.8, 0.8, 0.0])).block_until_ready()
    to_rest = jax.jit(K.boost_to_rest_frame) if jit else K.boost_to_rest_frame
    with pytest.raises(RuntimeError, match="time-like"):
        to_rest(p, jnp.array([1.0, 1.0, 0.0, 0.0])).block_until_ready()


def test_boost_along_axis_rejects_bad_axis():
    with pytest.raises(ValueError, match="axis must be 1, 2 or 3"):
        K.boost_along_axis(jnp.ones((1, 4)), 0.1, axis=0)


def test_rotation_matrix_closed_form():
    axis = jnp.array([0.3, -1.2, 0.8])
    angle = 0.9
    r = K.rotation_matrix(axis, angle)
    n = axis / jnp.linalg.norm(axis)
    kmat = jnp.array([[0.0, -n[2], n[1]], [n[2], 0.0, -n[0]], [-n[1], n[0], 0.0]])
    np.testing.assert_allclose(r, jax.scipy.linalg.expm(angle * kmat), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-14)
    assert jnp.linalg.det(r) == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(r @ axis, axis, atol=1e-14)
    # Right-handed: x -> y under a quarter turn about z.
    quarter = K.rotation_matrix(jnp.array([0.0, 0.0, 2.0]), np.pi / 2)
    np.testing.assert_allclose(quarter @ jnp.array([1.0, 0.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-15)
    np.testing.assert_array_equal(K.rotation_matrix(jnp.zeros(3), 0.4), np.eye(3))


@pytest.mark.parametrize(
    "direction",
    [
        [0.3, -0.4, 0.8],
        [0.0, 0.0, 1.0],
        [0.0, 0.0, -1.0],
        [0.0, 0.0, -7.0],
        [1e-7, -2e-7, -1.0],  # near -z: 1 + cos θ cancels in the naive formula
        [1e-5, 0.0, -1.0],
        [2.0, 1.0, -1e-3],
        [-0.2, 0.1, -3.0],
    ],
)
def test_rotation_to_z(direction):
    d = jnp.array(direction)
    r = K.rotation_to_z(d)
    n = d / jnp.linalg.norm(d)
    np.testing.assert_allclose(r @ n, [0.0, 0.0, 1.0], atol=1e-14)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-14)
    assert jnp.linalg.det(r) == pytest.approx(1.0, abs=1e-14)
    # Smallest angle: rotation angle θ with cos θ = n_z, i.e. tr R = 1 + 2 n_z.
    assert jnp.trace(r) == pytest.approx(1.0 + 2.0 * float(n[2]), abs=1e-14)


def test_rotation_to_z_of_zero_is_identity():
    np.testing.assert_array_equal(K.rotation_to_z(jnp.zeros(3)), np.eye(3))


def test_rotate(rng):
    p = massive(rng, 6)
    r = K.rotation_matrix(jnp.array([1.0, 2.0, 3.0]), 1.1)
    out = K.rotate(p, r)
    np.testing.assert_array_equal(out[:, 0], p[:, 0])
    np.testing.assert_allclose(out[:, 1:], p[:, 1:] @ np.asarray(r).T, rtol=1e-14, atol=1e-13)
    np.testing.assert_allclose(K.p3_abs(out), K.p3_abs(p), rtol=1e-14)


# --------------------------------------------------------------------------------------
# Gradients at random, non-degenerate points


UNARY = {
    "mass2": K.mass2,
    "mass": K.mass,
    "p3_abs": K.p3_abs,
    "pt": K.pt,
    "eta": K.eta,
    "rapidity": K.rapidity,
    "phi": K.phi,
}
BINARY = {
    "dot": K.dot,
    "delta_phi": K.delta_phi,
    "delta_r": K.delta_r,
    "cos_angle": K.cos_angle,
}


# check_grads runs eagerly, and eager dispatch compiles each primitive once per
# shape: the same (N_GRAD, 4) momenta everywhere keep that cache warm.
N_GRAD = 2


@pytest.mark.parametrize("name", sorted(UNARY))
def test_grads_unary(name, rng):
    grads(UNARY[name], (massive(rng, N_GRAD),))


@pytest.mark.parametrize("name", sorted(BINARY))
def test_grads_binary(name, rng):
    grads(BINARY[name], (massive(rng, N_GRAD), massive(rng, N_GRAD)))


def test_grads_boosts(rng):
    p = massive(rng, N_GRAD)
    frame = massive(rng, 1)[0]
    grads(K.boost, (p, np.array([0.3, -0.2, 0.5])))
    grads(K.boost_to_rest_frame, (p, frame))
    grads(K.boost_from_rest_frame, (p, frame))
    along = lambda p, w: jnp.stack([K.boost_along_axis(p, w, axis) for axis in (1, 2, 3)])
    grads(along, (p, np.array(0.4)))


def test_grads_rotations(rng):
    grads(K.rotation_matrix, (np.array([0.3, -1.2, 0.8]), np.array(0.9)))
    grads(K.rotation_to_z, (np.array([0.3, -0.4, 0.8]),))
    grads(K.rotation_to_z, (np.array([0.3, -0.4, -0.8]),))  # the n_z < 0 branch
    grads(K.rotate, (massive(rng, N_GRAD), np.asarray(K.rotation_matrix(np.ones(3), 0.7))))


def test_grads_masked_sum_and_from_ptetaphim(rng):
    mask = np.array([True, False])
    grads(lambda p: K.masked_sum(p, mask), (massive(rng, N_GRAD),))
    grads(
        K.from_ptetaphim,
        (np.array([5.0, 20.0]), np.array([0.3, -1.5]), np.array([1.0, -2.5]), np.array([2.0, 0.5])),
    )


# --------------------------------------------------------------------------------------
# Degenerate points: value, gradient and Hessian are finite (no NaN)

DEGENERATE = {
    "massless": [5.0, 3.0, 0.0, 4.0],
    "massive_on_beam": [5.0, 0.0, 0.0, 3.0],
    "massless_on_beam": [3.0, 0.0, 0.0, 3.0],
    "massless_on_minus_beam": [3.0, 0.0, 0.0, -3.0],
    "at_rest": [2.0, 0.0, 0.0, 0.0],
    "zero": [0.0, 0.0, 0.0, 0.0],
}
PAIRS = {
    "identical": ([5.0, 3.0, 0.0, 4.0], [5.0, 3.0, 0.0, 4.0]),
    "collinear": ([5.0, 3.0, 0.0, 4.0], [10.0, 6.0, 0.0, 8.0]),
    "back_to_back": ([5.0, 3.0, 0.0, 4.0], [5.0, -3.0, 0.0, -4.0]),
    "with_zero": ([5.0, 3.0, 0.0, 4.0], [0.0, 0.0, 0.0, 0.0]),
    "both_zero": ([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]),
    "both_on_beam": ([3.0, 0.0, 0.0, 3.0], [3.0, 0.0, 0.0, 3.0]),
}


def assert_finite_derivatives(cases):
    """For each `name: (f, args, point_names)`, with `args` a tuple of arrays with a
    leading point axis: value, gradient and Hessian of `sum(f(*args))` in every
    argument are finite at each point. All cases compile as one function."""

    def derivatives(f, *a):
        def total(*a):
            return jnp.sum(f(*a))

        argnums = tuple(range(len(a)))
        return f(*a), jax.grad(total, argnums)(*a), jax.hessian(total, argnums)(*a)

    def finite(args):
        out = {}
        for name, (f, _, _) in cases.items():
            res = jax.vmap(lambda *a, f=f: derivatives(f, *a))(*args[name])
            leaves = [jnp.isfinite(x.reshape(x.shape[0], -1)) for x in jax.tree.leaves(res)]
            out[name] = jnp.all(jnp.concatenate(leaves, axis=1), axis=1)
        return out

    args = {
        name: tuple(jnp.asarray(a, dtype=jnp.float64) for a in c[1]) for name, c in cases.items()
    }
    ok = jax.jit(finite)(args)
    bad = [
        f"{name} at {point}"
        for name, (_, _, points) in cases.items()
        for point, good in zip(points, ok[name])
        if not good
    ]
    assert not bad, f"non-finite value or derivative: {bad}"


ONE_MOMENTUM = {
    **UNARY,
    "boost": lambda p: K.boost(p, jnp.array([0.3, 0.1, -0.2])),
    "boost_to_rest_frame": lambda p: K.boost_to_rest_frame(p, jnp.array([5, 1, 2, 3.0])),
    "boost_from_rest_frame": lambda p: K.boost_from_rest_frame(p, jnp.array([5, 1, 2, 3.0])),
    "boost_along_axis": lambda p: K.boost_along_axis(p, 0.3),
    "rotate": lambda p: K.rotate(p, K.rotation_matrix(jnp.ones(3), 0.5)),
    # Directions derived from the momentum itself.
    "rotation_to_z": lambda p: K.rotation_to_z(p[1:]),
    "rotate_to_z": lambda p: K.rotate(p, K.rotation_to_z(p[1:])),
    "rotation_matrix": lambda p: K.rotation_matrix(p[1:], p[0]),
    "boost_by_own_velocity": lambda p: K.boost(jnp.zeros(4), 0.5 * p[1:] / (p[0] + 1)),
    "masked_sum": lambda p: K.masked_sum(jnp.stack([p, p]), jnp.array([True, False])),
    "masked_sum_all_masked": lambda p: K.masked_sum(jnp.stack([p, p]), jnp.zeros(2, bool)),
}


def test_finite_at_degenerate_momenta():
    names = sorted(DEGENERATE)
    points = (np.array([DEGENERATE[n] for n in names]),)
    assert_finite_derivatives({fn: (f, points, names) for fn, f in ONE_MOMENTUM.items()})


def test_finite_at_degenerate_pairs():
    names = sorted(PAIRS)
    points = tuple(np.array([PAIRS[n][i] for n in names]) for i in (0, 1))
    assert_finite_derivatives({fn: (f, points, names) for fn, f in BINARY.items()})


def test_finite_at_special_parameters():
    p = np.array([[5.0, 1.0, 2.0, 3.0]])
    axes = np.array([[0.0, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 1]])
    dirs = np.array([[0.0, 0, 1], [0, 0, -1], [0, 0, 0], [1e-9, 0, -1]])
    cases = {
        # beta = 0, a frame at rest and rapidity 0 are regular points of the boosts.
        "boost": (K.boost, (p, np.zeros((1, 3))), ["beta=0"]),
        "boost_to_rest_frame": (K.boost_to_rest_frame, (p, np.array([[2.0, 0, 0, 0]])), ["rest"]),
        "boost_along_axis": (K.boost_along_axis, (p, np.zeros(1)), ["w=0"]),
        # Zero axis or angle for rotation_matrix; ±z, zero and near -z for rotation_to_z.
        "rotation_matrix": (
            K.rotation_matrix,
            (axes, np.array([0.0, 0.0, 0.7, 0.7])),
            ["0,0", "z,0", "0,0.7", "z,0.7"],
        ),
        "rotation_to_z": (K.rotation_to_z, (dirs,), ["+z", "-z", "zero", "near -z"]),
        # from_ptetaphim at p_T = m = 0 (the zero vector) and on the massless shell.
        "from_ptetaphim": (
            K.from_ptetaphim,
            (np.array([0.0, 4.0]), np.array([0.3, 0.3]), np.array([0.1, 0.1]), np.zeros(2)),
            ["pt=m=0", "m=0"],
        ),
    }
    assert_finite_derivatives(cases)


# --------------------------------------------------------------------------------------
# jit against eager, and no recompilation for new values

CALLS = {
    **{name: (lambda p, q, f=f: f(p)) for name, f in UNARY.items()},
    **BINARY,
    "boost": lambda p, q: K.boost(p, 0.1 * q[0, 1:] / q[0, 0]),
    "boost_to_rest_frame": lambda p, q: K.boost_to_rest_frame(p, q[0]),
    "boost_from_rest_frame": lambda p, q: K.boost_from_rest_frame(p, q[0]),
    "boost_along_axis": lambda p, q: K.boost_along_axis(p, q[0, 1] / q[0, 0], 2),
    "rotate": lambda p, q: K.rotate(p, K.rotation_matrix(q[0, 1:], q[0, 0])),
    "rotation_to_z": lambda p, q: K.rotation_to_z(p[0, 1:]),
    "masked_sum": lambda p, q: K.masked_sum(p, p[:, 1] > 0),
    "from_ptetaphim": lambda p, q: K.from_ptetaphim(p[:, 0], 0.1 * p[:, 1], p[:, 2], p[:, 3]),
}


def test_jit_matches_eager_without_recompiling(rng):
    # Every function in one jitted call (one compilation), each compared with eager.
    traces = 0

    def all_calls(p, q):
        nonlocal traces
        traces += 1
        return {name: f(p, q) for name, f in CALLS.items()}

    jitted = jax.jit(all_calls)
    for _ in range(3):  # new values, same shapes
        p, q = jnp.asarray(massive(rng, N_GRAD)), jnp.asarray(massive(rng, N_GRAD))
        out = jitted(p, q)
        for name, f in CALLS.items():
            np.testing.assert_allclose(out[name], f(p, q), rtol=1e-14, atol=1e-13, err_msg=name)
    assert traces == 1
    assert jitted._cache_size() == 1
