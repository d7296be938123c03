"""`Events`: construction and validation, the padding convention, selection,
concatenation and padding, Scikit-HEP interchange (awkward, vector), PyTree
behaviour under jit/vmap/grad, and run-time rejection of NaN momenta."""

import awkward as ak
import equinox as eqx
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest
import vector
from conftest import massless

from diffhep import kinematics as K
from diffhep import observables as O
from diffhep._events import Events, check_finite, check_momenta


def make_events(rng, counts, capacity):
    """Events with `counts[i]` massless particles in the first slots, zero padding."""
    n = len(counts)
    mom = np.zeros((n, capacity, 4))
    mask = np.arange(capacity)[None, :] < np.asarray(counts)[:, None]
    mom[mask] = massless(rng.normal(size=(int(mask.sum()), 3)) * 10)
    pdg = np.where(mask, rng.choice([21, 1, -1, 2, -2], size=mask.shape), 0).astype(np.int32)
    return Events(mom, mask, pdg, rng.uniform(0.5, 2.0, size=n))


@pytest.fixture
def without_runtime_typecheck():
    """Turn off the test-time jaxtyping checks (`--jaxtyping-packages`), which reject
    a wrongly shaped argument before diffhep's own check runs, so that we test the
    `ValueError`s that users see."""
    before = jaxtyping.config.jaxtyping_disable
    jaxtyping.config.update("jaxtyping_disable", True)
    yield
    jaxtyping.config.update("jaxtyping_disable", before)


def assert_events_equal(a, b):
    for field in ("momenta", "mask", "pdg", "weights"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


# --------------------------------------------------------------------------------------
# Construction and validation


def test_defaults(rng):
    p = massless(rng.normal(size=(3, 5, 3)))
    ev = Events(p)
    assert ev.n_events == len(ev) == 3 and ev.capacity == 5
    assert ev.mask.dtype == jnp.bool_ and bool(jnp.all(ev.mask))
    assert jnp.issubdtype(ev.pdg.dtype, jnp.integer) and not jnp.any(ev.pdg)
    assert ev.weights.dtype == jnp.float64
    np.testing.assert_array_equal(ev.weights, np.ones(3))
    np.testing.assert_array_equal(ev.multiplicity, [5, 5, 5])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(momenta=np.zeros((2, 5, 3))), r"momenta must have shape \(n_events, capacity, 4\)"),
        (dict(momenta=np.zeros((5, 4))), r"momenta must have shape \(n_events, capacity, 4\)"),
        (dict(mask=np.ones((2, 4), bool)), r"mask must have shape \(2, 5\)"),
        (dict(mask=np.ones((2, 5), np.float64)), "mask must be boolean"),
        (dict(pdg=np.zeros((2, 6), np.int32)), r"pdg must have shape \(2, 5\)"),
        (dict(pdg=np.zeros((2, 5))), "pdg must be integer"),
        (dict(weights=np.ones(3)), r"weights must have shape \(2,\)"),
    ],
)
def test_construction_rejects_bad_input(kwargs, match, without_runtime_typecheck):
    args = dict(momenta=np.zeros((2, 5, 4)))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Events(**args)


def test_runtime_typecheck_rejects_bad_shapes_first():
    # With the test-time checks on, the annotations catch shape errors first.
    with pytest.raises(jaxtyping.TypeCheckError, match="capacity"):
        Events(np.zeros((2, 5, 3)))
    with pytest.raises(jaxtyping.TypeCheckError, match="capacity"):
        Events(np.zeros((2, 5, 4)), mask=np.ones((2, 4), bool))


def test_check_momenta_and_check_finite():
    check_momenta(np.zeros((3, 4)), np.ones(3, bool))
    check_momenta(np.zeros((2, 3, 4)), np.ones((2, 3), bool))
    with pytest.raises(ValueError, match=r"momenta must have shape \(\.\.\., n_particles, 4\)"):
        check_momenta(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"mask must have shape \(3,\)"):
        check_momenta(np.zeros((3, 4)), np.ones(2, bool))
    ok = jnp.ones((2, 4))
    np.testing.assert_array_equal(check_finite(ok), ok)
    for bad in (jnp.nan, jnp.inf):
        with pytest.raises(RuntimeError, match="NaN or inf"):
            check_finite(ok.at[1, 2].set(bad)).block_until_ready()
        with pytest.raises(RuntimeError, match="NaN or inf"):
            jax.jit(check_finite)(ok.at[0, 0].set(bad)).block_until_ready()


# --------------------------------------------------------------------------------------
# Selection, padding, concatenation


def test_select_and_slicing(rng):
    ev = make_events(rng, [3, 1, 4, 0, 2], capacity=4)
    one = ev[2]
    assert one.n_events == 1 and one.capacity == 4
    np.testing.assert_array_equal(one.momenta[0], ev.momenta[2])
    assert_events_equal(ev[-1], ev[4:5])
    assert_events_equal(ev[-2], ev[3:4])
    assert_events_equal(ev[np.int64(1)], ev[1:2])
    assert_events_equal(ev.select(slice(1, 3)), ev[1:3])
    idx = np.array([4, 0, 0])
    picked = ev[idx]
    np.testing.assert_array_equal(picked.multiplicity, [2, 3, 3])
    np.testing.assert_array_equal(picked.weights, np.asarray(ev.weights)[idx])
    by_mask = ev[ev.multiplicity >= 3]
    np.testing.assert_array_equal(by_mask.multiplicity, [3, 4])
    with pytest.raises(IndexError, match="out of range"):
        ev[5]
    with pytest.raises(IndexError, match="out of range"):
        ev[-6]


def test_pad_to_and_concatenate(rng):
    a = make_events(rng, [2, 3], capacity=3)
    b = make_events(rng, [5, 0, 1], capacity=6)
    padded = a.pad_to(6)
    assert padded.capacity == 6
    np.testing.assert_array_equal(padded.momenta[:, :3], a.momenta)
    # Padding convention: zero momenta, pdg 0, mask False.
    assert not jnp.any(padded.momenta[:, 3:]) and not jnp.any(padded.pdg[:, 3:])
    assert not jnp.any(padded.mask[:, 3:])
    assert_events_equal(a.pad_to(3), a)
    with pytest.raises(ValueError, match="capacity must be >= the current 3"):
        a.pad_to(2)

    both = Events.concatenate([a, b])
    assert both.n_events == 5 and both.capacity == 6
    np.testing.assert_array_equal(both.multiplicity, [2, 3, 5, 0, 1])
    assert_events_equal(both[:2], padded)
    assert_events_equal(both[2:], b)
    with pytest.raises(ValueError, match="at least one"):
        Events.concatenate([])


def test_padding_is_ignored_by_observables(rng):
    thrust = jax.jit(O.thrust)
    ev = make_events(rng, [3, 5, 4], capacity=5)
    ref = thrust(ev.momenta, ev.mask)
    # Extra padding, and garbage (finite) momenta in masked slots, change nothing.
    wide = ev.pad_to(8)
    garbage = jnp.where(wide.mask[..., None], wide.momenta, 123.0)
    np.testing.assert_allclose(thrust(wide.momenta, wide.mask), ref, rtol=1e-14)
    np.testing.assert_allclose(thrust(garbage, wide.mask), ref, rtol=1e-14)


# --------------------------------------------------------------------------------------
# Scikit-HEP interchange


def test_awkward_round_trip(rng):
    ev = make_events(rng, [3, 1, 4, 0, 2], capacity=4)
    arr = ev.to_awkward()
    np.testing.assert_array_equal(ak.num(arr, axis=1), [3, 1, 4, 0, 2])
    assert set(ak.fields(arr)) == {"px", "py", "pz", "E", "pdg"}
    # vector behaviour is attached: .pt of the records equals ours.
    np.testing.assert_allclose(
        ak.flatten(arr.pt), K.pt(ev.momenta[ev.mask]), rtol=1e-14, atol=1e-14
    )
    back = Events.from_awkward(arr, weights=ev.weights)
    assert_events_equal(back, ev)
    # A larger capacity only adds padding.
    assert_events_equal(Events.from_awkward(arr, capacity=7, weights=ev.weights), ev.pad_to(7))


def test_from_awkward_vector_coordinates():
    # Records given as (pt, eta, phi, mass) are converted through vector.
    arr = ak.Array(
        [
            [{"pt": 10.0, "eta": 0.5, "phi": 1.0, "mass": 2.0, "pdg": 5}],
            [],
            [
                {"pt": 3.0, "eta": -1.0, "phi": -2.0, "mass": 0.0, "pdg": 21},
                {"pt": 4.0, "eta": 0.0, "phi": 3.0, "mass": 1.0, "pdg": -5},
            ],
        ]
    )
    ev = Events.from_awkward(arr)
    assert ev.capacity == 2
    np.testing.assert_array_equal(ev.mask, [[True, False], [False, False], [True, True]])
    np.testing.assert_array_equal(ev.pdg, [[5, 0], [0, 0], [21, -5]])
    ref = K.from_ptetaphim(
        jnp.array([10.0, 3.0, 4.0]), jnp.array([0.5, -1.0, 0.0]),
        jnp.array([1.0, -2.0, 3.0]), jnp.array([2.0, 0.0, 1.0]),
    )  # fmt: skip
    np.testing.assert_allclose(ev.momenta[ev.mask], ref, rtol=1e-13, atol=1e-13)
    assert not jnp.any(ev.momenta[~ev.mask])


def test_from_awkward_overflow_raises(rng):
    arr = make_events(rng, [3, 1, 4], capacity=4).to_awkward()
    msg = r"event 2 has 4 particles, more than capacity=3; raise capacity to at least 4"
    with pytest.raises(ValueError, match=msg):
        Events.from_awkward(arr, capacity=3)


def test_to_vector(rng):
    ev = make_events(rng, [3, 0, 2], capacity=3)
    v = ev.to_vector()
    assert isinstance(v, vector.MomentumNumpy4D) and len(v) == 5
    flat = np.asarray(ev.momenta)[np.asarray(ev.mask)]
    np.testing.assert_array_equal(np.stack([v.E, v.px, v.py, v.pz], -1), flat)
    np.testing.assert_allclose(v.eta, K.eta(flat), rtol=1e-14)


# --------------------------------------------------------------------------------------
# PyTree behaviour


def test_events_through_jit_vmap_grad(rng):
    ev = make_events(rng, [3, 2, 4], capacity=4)

    def weighted_thrust(e: Events):
        return jnp.sum(e.weights * O.thrust(e.momenta, e.mask))

    traces = 0

    def counted(e):
        nonlocal traces
        traces += 1
        return weighted_thrust(e)

    jitted = jax.jit(counted)
    np.testing.assert_allclose(jitted(ev), weighted_thrust(ev), rtol=1e-14)
    jitted(make_events(rng, [1, 4, 4], capacity=4))  # new values, same shapes
    assert traces == 1

    # vmap over the event axis: the kernel sees one event's (capacity, 4) momenta.
    per_event = jax.vmap(lambda e: K.masked_sum(e.momenta, e.mask))(ev)
    np.testing.assert_allclose(per_event, K.masked_sum(ev.momenta, ev.mask), rtol=1e-14)

    # Gradients flow to the float leaves (momenta, weights); mask and pdg are static data.
    g = eqx.filter_jit(eqx.filter_grad(weighted_thrust))(ev)
    assert isinstance(g, Events)
    assert g.mask is None and g.pdg is None
    np.testing.assert_allclose(g.weights, O.thrust(ev.momenta, ev.mask), rtol=1e-14)
    assert jnp.all(jnp.isfinite(g.momenta))
    assert not jnp.any(g.momenta[~ev.mask])  # padding receives no gradient
    # Directional derivative along the gradient: (f(p + hg) − f(p − hg)) / 2h = |g|².
    h = 1e-6
    shifted = [Events(ev.momenta + s * h * g.momenta, ev.mask, ev.pdg, ev.weights) for s in (1, -1)]
    slope = (jitted(shifted[0]) - jitted(shifted[1])) / (2 * h)
    assert slope == pytest.approx(float(jnp.sum(g.momenta**2)), rel=1e-7)
    assert traces == 1


@pytest.mark.parametrize("jit", [False, True])
def test_nan_momenta_rejected_by_observables(rng, jit):
    ev = make_events(rng, [3, 4], capacity=4)
    bad = ev.momenta.at[1, 2, 3].set(jnp.nan)
    for f in (O.thrust, O.c_parameter, O.sphericity, O.durham_y23):
        g = jax.jit(f) if jit else f
        with pytest.raises(RuntimeError, match="NaN"):
            jax.block_until_ready(g(bad, ev.mask))
