"""MultiplicityBuckets: the grouping (computed on the device) against a NumPy reference,
and bucketed observables equal to the padded evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffhep import observables


def _reference(mask: np.ndarray, sizes: tuple[int, ...], shards: int):
    """Per share and bucket, the local event indices in ascending order; per event the
    slots with the real particles first (stable argsort of ~mask)."""
    n = mask.shape[0]
    bucket = np.searchsorted(np.asarray(sizes), mask.sum(axis=1)).reshape(shards, n // shards)
    groups = {b: [np.nonzero(share == b)[0] for share in bucket] for b in range(len(sizes))}
    return groups, np.argsort(~mask, axis=1, kind="stable")


@pytest.mark.parametrize("prefix", [True, False])
@pytest.mark.parametrize("shards", [1, 3])
def test_grouping_matches_numpy(prefix, shards):
    rng = np.random.default_rng(7 + shards + 10 * prefix)
    n, cap = 600, 20
    count = np.minimum(rng.poisson(6, n) + 1, cap)
    if prefix:
        mask = np.arange(cap)[None, :] < count[:, None]
    else:
        mask = rng.random((n, cap)) < count[:, None] / cap
    b = observables.MultiplicityBuckets(jnp.asarray(mask), sizes=(4, 8, 12), headroom=0.1, shards=shards)
    sizes = (4, 8, 12, 20)
    groups, order = _reference(mask, sizes, shards)
    assert (b.order is None) == prefix  # a prefix mask needs no reordering
    if not prefix:
        np.testing.assert_array_equal(np.asarray(b.order), order)
    assert b.sizes == tuple(s for i, s in enumerate(sizes) if any(len(g) for g in groups[i]))
    n_local = n // shards
    for size, idx in zip(b.sizes, b.index):
        rows = b.rows[size]
        per_share = np.asarray(idx).reshape(shards, rows)
        for share, got in zip(groups[sizes.index(size)], per_share):
            assert rows >= len(share) * 1.1 - 1e-9  # headroom
            np.testing.assert_array_equal(got[: len(share)], share)
            assert np.all(got[len(share):] == n_local)  # padding rows


def test_poisson_headroom_and_floor():
    # A stream of small batches: every size up to the capacity gets floor_rows rows
    # (also those no event needs), and a bucket holding c events gets c + sigmas·√c.
    rng = np.random.default_rng(5)
    n, cap = 40, 20
    count = np.minimum(rng.poisson(6, n) + 1, cap)
    mask = np.arange(cap)[None, :] < count[:, None]
    b = observables.MultiplicityBuckets(mask, sizes=(4, 8, 12, 16), granularity=1, sigmas=4.0, floor_rows=7)
    assert b.sizes == (4, 8, 12, 16, 20)
    counts = np.bincount(np.searchsorted(np.asarray(b.sizes), count), minlength=5)
    for size, c in zip(b.sizes, counts):
        assert b.rows[size] == max(7, int(np.ceil(c + 4.0 * np.sqrt(c)))), (size, c)
    # The grouping itself is unchanged: padding rows only.
    plain = observables.MultiplicityBuckets(mask, sizes=(4, 8, 12, 16), granularity=1)
    for size, idx in zip(plain.sizes, plain.index):
        got = np.asarray(b.index[b.sizes.index(size)])
        np.testing.assert_array_equal(got[: idx.shape[0]], np.asarray(idx))
        assert np.all(got[idx.shape[0]:] == n)
    p = jnp.asarray(rng.normal(size=(n, cap, 4)))
    np.testing.assert_array_equal(b.apply(_energy, p, mask), plain.apply(_energy, p, mask))
    for kw, match in ((dict(sigmas=-1.0), "sigmas must be >= 0"), (dict(floor_rows=-1), "floor_rows must be >= 0")):
        with pytest.raises(ValueError, match=match):
            observables.MultiplicityBuckets(mask, **kw)


def _energy(p, m):
    return jnp.sum(jnp.where(m, p[..., 0], 0.0), axis=-1)


@pytest.mark.parametrize("prefix", [True, False])
@pytest.mark.parametrize("shards", [1, 3])
def test_device_grouping_equals_host(prefix, shards):
    # An accelerator groups on the device (counting sort, scatter); a CPU in NumPy.
    from diffhep.observables import _buckets

    rng = np.random.default_rng(11 + shards + 10 * prefix)
    n, cap = 900, 24
    count = np.minimum(rng.poisson(7, n), cap)
    mask = np.arange(cap)[None, :] < count[:, None] if prefix else rng.random((n, cap)) < count[:, None] / cap
    sizes = (4, 8, 12, 16, 24)
    host = _buckets._group_host(mask, sizes, shards)
    device = [np.asarray(x) for x in _buckets._group(jnp.asarray(mask), sizes, shards)]
    for h, d in zip(host, device):
        np.testing.assert_array_equal(h, d)
    np.testing.assert_array_equal(np.asarray(_buckets._real_first(jnp.asarray(mask))), np.argsort(~mask, axis=1, kind="stable"))


def test_bucketed_thrust_equals_padded():
    # Exact: the buckets only drop empty slots, which thrust ignores.
    rng = np.random.default_rng(3)
    n, cap = 300, 16
    count = rng.integers(2, cap + 1, n)
    mask = rng.random((n, cap)) < count[:, None] / cap
    p3 = rng.normal(size=(n, cap, 3))
    p = np.concatenate([np.linalg.norm(p3, axis=-1, keepdims=True), p3], axis=-1)
    want = observables.thrust(p, mask)
    b = observables.MultiplicityBuckets(mask)
    got = jax.jit(lambda q, m: b.apply(observables.thrust, q, m))(p, mask)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-13, atol=0)
