"""Group events by multiplicity so that O(n³) shapes do not pay for padding."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from .._devices import work_sizes


def _round_rows(count: int, granularity: int | None) -> int:
    if granularity is not None:
        g = max(1, int(granularity))
    else:
        g = max(8, 1 << max(0, int(count).bit_length() - 4))
    return -(-int(count) // g) * g


class MultiplicityBuckets(eqx.Module):
    """A grouping of a batch of events by their number of real particles.

    Built from a *concrete* mask (e.g. a shower `Layout`'s, known before tracing),
    then passed as an argument into `jit`/`grad` code together with momenta of the
    same batch: `apply` gathers each bucket's events and their real particles (first,
    in their original order) into `(k, size, 4)`, evaluates the observable there and
    scatters the results back to event order. Values are identical to evaluating on
    the padded batch; only the cost changes (thrust is O(n³)).

    `sizes`: the bucket sizes (particles per event); default the backend's
    (`_devices.WorkSizes.bucket_sizes`: finer on an accelerator, which compiles more
    but evaluates less padding).

    Bucket lengths are rounded up (padding rows are dropped) so that batches with
    slightly different multiplicities share shapes and a jitted caller does not
    recompile: to a multiple of `granularity` if given, else to a multiple of the
    largest power of two ≤ count/8 (at least 8), i.e. ≤ 12.5 % padding per bucket. A
    fixed granularity of n/32 made the sparse high-multiplicity buckets, where thrust
    costs O(n³), mostly padding. `min_rows` (size → rows) pins lengths from earlier
    calls; where a bucket outgrows them it is sized for `(1 + headroom)` × its count.
    `sigmas` adds that many Poisson standard deviations, √count, to the headroom (for
    a stream of small batches, whose bucket counts fluctuate by far more than a fixed
    fraction), and `floor_rows` gives every size up to the capacity at least that many
    rows, also where no event needs it (rare multiplicities come and go between small
    batches): then one set of shapes serves the stream instead of recompiling.

    With `shards` > 1 the events are split into that many equal consecutive shares
    (the devices of `diffhep._devices.over_events`): each share is bucketed on its own
    with local indices, every share gets the same rows per size (`rows` counts rows
    per share), and `apply`/`jvp` run each device on its share.
    """

    sizes: tuple[int, ...] = eqx.field(static=True)
    n_events: int = eqx.field(static=True)
    shards: int = eqx.field(static=True)
    index: tuple[Array, ...]  # per share: local event index per row; n_local marks padding
    order: Array | None  # (n_events, capacity): real particles first; None: they are

    def __init__(
        self,
        mask: ArrayLike,
        sizes: Sequence[int] | None = None,
        granularity: int | None = None,
        min_rows: dict[int, int] | None = None,
        headroom: float = 0.0,
        shards: int = 1,
        sigmas: float = 0.0,
        floor_rows: int = 0,
    ):
        if headroom < 0:
            raise ValueError(f"headroom must be >= 0, got {headroom}")
        if sigmas < 0:
            raise ValueError(f"sigmas must be >= 0, got {sigmas}")
        if floor_rows < 0:
            raise ValueError(f"floor_rows must be >= 0, got {floor_rows}")
        shape = np.shape(mask)
        if len(shape) != 2:
            raise ValueError(f"mask must have shape (n_events, capacity), got {shape}")
        n, cap = shape
        if sizes is None:
            sizes = work_sizes().bucket_sizes
        shards = int(shards)
        if shards < 1 or n % shards:
            raise ValueError(f"shards={shards} must be >= 1 and divide the {n} events")
        n_local = n // shards
        sizes = tuple(sorted({min(int(s), cap) for s in sizes} | {cap}))
        # On an accelerator the grouping is computed where the mask lives (a shower's
        # mask is on the device) and only the grouped event indices (one int32 per
        # event) cross to the host: in NumPy, a 2·10⁶-event (argsorted) mask took
        # longer than showering it on an H200. On a CPU, NumPy is the fastest way and
        # compiles nothing.
        on_host = isinstance(mask, np.ndarray) or jax.default_backend() == "cpu"
        if on_host:
            mask = np.asarray(mask, bool)
            grouped, counts, prefix = _group_host(mask, sizes, shards)
        else:
            mask = jnp.asarray(mask, bool)
            grouped, counts, prefix = (np.asarray(x) for x in _group(mask, sizes, shards))
        starts = np.cumsum(counts, axis=1) - counts  # (shards, len(sizes))
        pinned = min_rows or {}
        used, index = [], []
        for b, size in enumerate(sizes):
            most = int(counts[:, b].max())
            if most == 0 and size not in pinned and not floor_rows:
                continue
            rows = _round_rows(most, granularity)
            if rows > pinned.get(size, 0):
                grown = most * (1.0 + headroom) + sigmas * math.sqrt(most)
                rows = max(rows, _round_rows(math.ceil(grown), granularity))
            rows = max(rows, pinned.get(size, 0), int(floor_rows))
            used.append(size)
            idx = np.full((shards, rows), n_local, np.int32)  # n_local marks padding
            for share in range(shards):
                c, s0 = counts[share, b], starts[share, b]
                idx[share, :c] = grouped[share, s0 : s0 + c]
            index.append(jnp.asarray(idx.reshape(-1)))
        self.sizes = tuple(used)
        self.n_events = n
        self.shards = shards
        self.index = tuple(index)
        if bool(prefix):
            self.order = None
        elif on_host:
            self.order = jnp.asarray(np.argsort(~mask, axis=1, kind="stable").astype(np.int32))
        else:
            self.order = _real_first(mask)

    @property
    def rows(self) -> dict[int, int]:
        """Rows (events, padding included) per bucket size, per share."""
        return {s: int(i.shape[0]) // self.shards for s, i in zip(self.sizes, self.index)}

    def apply(self, fn: Callable, momenta: ArrayLike, mask: ArrayLike) -> Array:
        """`fn(momenta, mask)` for the batch, bucket by bucket. `fn` maps
        `(k, n, 4), (k, n)` to `(k,)`; the result has shape `(n_events,)`."""
        momenta, mask = self._check(momenta, mask)
        parts = [_per_share(_bucket_dense, fn, size, self.shards)(idx, self.order, momenta, mask)
                 for size, idx in zip(self.sizes, self.index)]
        return sum(parts[1:], parts[0])

    def jvp(self, fn: Callable, momenta: ArrayLike, tangents: ArrayLike, mask: ArrayLike) -> tuple[Array, Array]:
        """`jax.jvp` of `apply(fn, ·, mask)` at `momenta` along `tangents`, each bucket
        compiled on its own (`fn` must be hashable, e.g. a module-level function).

        Fusing all buckets into one `jit` recompiles all of them (tens of seconds)
        whenever one bucket's length changes, as it does when a fit moves the
        multiplicity; here only that bucket recompiles."""
        momenta, mask = self._check(momenta, mask)
        tangents = jnp.asarray(tangents)
        out = dout = None
        for size, idx in zip(self.sizes, self.index):
            vals, dvals = _bucket_jvp(fn, size, self.shards, idx, self.order, momenta, tangents, mask)
            out = vals if out is None else out + vals
            dout = dvals if dout is None else dout + dvals
        return out, dout

    def _check(self, momenta: ArrayLike, mask: ArrayLike) -> tuple[Array, Array]:
        momenta = jnp.asarray(momenta)
        if momenta.shape[0] != self.n_events:
            raise ValueError(
                f"momenta has {momenta.shape[0]} events but the buckets were built for {self.n_events}"
            )
        return momenta, jnp.asarray(mask)


def _per_share(kernel, fn, size, shards):
    """`kernel(fn, size, idx, order, momenta, ...)` run by each device on its share."""
    from .._devices import event_mesh, over_events

    def local(*args):
        return kernel(fn, size, *args)

    if shards == 1:
        return local

    def run(*args):
        n_events = args[2].shape[0]  # momenta
        mesh = event_mesh(n_events)
        if mesh is None or mesh.size != shards:
            raise ValueError(
                f"the buckets were built for {shards} shares, but the events are split over "
                f"{1 if mesh is None else mesh.size} device(s)"
            )
        return over_events(local, n_events, len(args))(*args)

    return run


def _bucket_dense(fn, size, idx, order, momenta, mask):
    """`fn` on one bucket (its events' real particles first, `size` columns), scattered
    to a dense `(n_events,)` array that is 0 for events of other buckets."""
    n_events = momenta.shape[0]
    rows = jnp.minimum(idx, n_events - 1)
    real = (idx < n_events)[:, None]
    if order is None:  # real particles already first
        p, m = momenta[rows, :size], mask[rows, :size] & real
    else:
        cols = order[rows, :size]
        p, m = momenta[rows[:, None], cols], mask[rows[:, None], cols] & real
    vals = fn(jnp.where(m[..., None], p, 0.0), m)
    return jnp.zeros((n_events,) + vals.shape[1:], vals.dtype).at[idx].set(vals, mode="drop")


def _bucket_dense_jvp(fn, size, idx, order, momenta, tangents, mask):
    return jax.jvp(lambda p: _bucket_dense(fn, size, idx, order, p, mask), (momenta,), (tangents,))


@eqx.filter_jit
def _bucket_jvp(fn, size, shards, idx, order, momenta, tangents, mask):
    return _per_share(_bucket_dense_jvp, fn, size, shards)(idx, order, momenta, tangents, mask)


def _buckets_of(count, sizes):
    """Bucket number per event, `searchsorted(sizes, count)` written as a sum of
    comparisons so that NumPy and JAX arrays share it."""
    return (count[:, None] > sizes[None, :]).sum(axis=1)


def _group_host(mask: np.ndarray, sizes: tuple[int, ...], shards: int):
    """`_group` in NumPy (a stable sort of small integers is a radix sort there)."""
    n, cap = mask.shape
    count = mask.sum(axis=1)
    bucket = _buckets_of(count, np.asarray(sizes)).astype(np.uint8).reshape(shards, n // shards)
    grouped = np.argsort(bucket, axis=1, kind="stable").astype(np.int32)
    counts = np.stack([np.bincount(b, minlength=len(sizes)) for b in bucket])
    prefix = np.array_equal(mask, np.arange(cap)[None, :] < count[:, None])
    return grouped, counts, prefix


@functools.partial(jax.jit, static_argnums=(1, 2))
def _group(mask: Array, sizes: tuple[int, ...], shards: int):
    """Per share: local event indices grouped by bucket `(shards, n_local)` (ascending
    within a bucket, what a stable argsort of the bucket numbers gives), how many each
    bucket holds `(shards, len(sizes))`, and whether every event's real particles come
    first (a shower's mask: then no reordering is needed)."""
    n, cap = mask.shape
    count = jnp.sum(mask, axis=1, dtype=jnp.int32)
    bucket = _buckets_of(count, jnp.asarray(sizes, jnp.int32)).astype(jnp.int32)

    def share(b):
        # A counting sort: rank within the bucket, plus the bucket's start.
        one_hot = b[:, None] == jnp.arange(len(sizes), dtype=jnp.int32)[None, :]
        rank = jnp.cumsum(one_hot, axis=0, dtype=jnp.int32)
        counts = rank[-1]
        starts = jnp.cumsum(counts) - counts
        slot = jnp.sum(jnp.where(one_hot, rank - 1 + starts[None, :], 0), axis=1)
        grouped = jnp.zeros(b.shape, jnp.int32).at[slot].set(jnp.arange(b.shape[0], dtype=jnp.int32), unique_indices=True)
        return grouped, counts

    grouped, counts = jax.vmap(share)(bucket.reshape(shards, n // shards))
    prefix = jnp.all(mask == (jnp.arange(cap)[None, :] < count[:, None]))
    return grouped, counts, prefix


@jax.jit
def _real_first(mask: Array) -> Array:
    """Per event its particle slots `(n, capacity)` with the real ones first, both in
    their original order (a stable argsort of `~mask`, done as one scatter)."""
    n, cap = mask.shape
    real_before = jnp.cumsum(mask, axis=1, dtype=jnp.int32) - 1
    fake_before = jnp.sum(mask, axis=1, keepdims=True, dtype=jnp.int32) + jnp.cumsum(~mask, axis=1, dtype=jnp.int32) - 1
    slot = jnp.where(mask, real_before, fake_before)
    return jnp.zeros((n, cap), jnp.int32).at[jnp.arange(n)[:, None], slot].set(jnp.arange(cap, dtype=jnp.int32))
