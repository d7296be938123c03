"""Group events by multiplicity so that O(n³) shapes do not pay for padding."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

_SIZES = (4, 8, 12, 16, 24, 32, 48, 64, 96, 128)


class MultiplicityBuckets(eqx.Module):
    """A grouping of a batch of events by their number of real particles.

    Built from a *concrete* mask (e.g. a shower `Layout`'s, known before tracing),
    then passed as an argument into `jit`/`grad` code together with momenta of the
    same batch: `apply` gathers each bucket's events and their real particles (first,
    in their original order) into `(k, size, 4)`, evaluates the observable there and
    scatters the results back to event order. Values are identical to evaluating on
    the padded batch; only the cost changes (thrust is O(n³)).

    Bucket lengths are rounded up to a multiple of `granularity` (padding rows are
    dropped), so that batches with slightly different multiplicities share shapes and
    a jitted caller does not recompile; `min_rows` (size → rows) can pin them further.
    """

    sizes: tuple[int, ...] = eqx.field(static=True)
    n_events: int = eqx.field(static=True)
    index: tuple[Array, ...]  # event index per row; n_events marks a padding row
    order: Array  # (n_events, capacity): real particles first

    def __init__(
        self,
        mask: ArrayLike,
        sizes: Sequence[int] = _SIZES,
        granularity: int | None = None,
        min_rows: dict[int, int] | None = None,
    ):
        mask = np.asarray(mask, bool)
        if mask.ndim != 2:
            raise ValueError(f"mask must have shape (n_events, capacity), got {mask.shape}")
        n, cap = mask.shape
        counts = mask.sum(axis=1)
        sizes = sorted({min(int(s), cap) for s in sizes} | {cap})
        bucket = np.searchsorted(np.asarray(sizes), counts)
        gran = max(1, n // 32) if granularity is None else int(granularity)
        used, index = [], []
        for b, size in enumerate(sizes):
            idx = np.nonzero(bucket == b)[0]
            if len(idx) == 0 and size not in (min_rows or {}):
                continue
            rows = max(-(-len(idx) // gran) * gran, (min_rows or {}).get(size, 0))
            used.append(size)
            index.append(jnp.asarray(np.concatenate([idx, np.full(rows - len(idx), n)]), jnp.int32))
        self.sizes = tuple(used)
        self.n_events = n
        self.index = tuple(index)
        self.order = jnp.asarray(np.argsort(~mask, axis=1, kind="stable"), jnp.int32)

    @property
    def rows(self) -> dict[int, int]:
        """Rows (events, padding included) per bucket size."""
        return {s: int(i.shape[0]) for s, i in zip(self.sizes, self.index)}

    def apply(self, fn: Callable, momenta: ArrayLike, mask: ArrayLike) -> Array:
        """`fn(momenta, mask)` for the batch, bucket by bucket. `fn` maps
        `(k, n, 4), (k, n)` to `(k,)`; the result has shape `(n_events,)`."""
        momenta = jnp.asarray(momenta)
        mask = jnp.asarray(mask)
        if momenta.shape[0] != self.n_events:
            raise ValueError(
                f"momenta has {momenta.shape[0]} events but the buckets were built for {self.n_events}"
            )
        out = None
        for size, idx in zip(self.sizes, self.index):
            rows = jnp.minimum(idx, self.n_events - 1)
            cols = self.order[rows, :size]
            real = (idx < self.n_events)[:, None]
            p = momenta[rows[:, None], cols]
            m = mask[rows[:, None], cols] & real
            vals = fn(jnp.where(m[..., None], p, 0.0), m)
            if out is None:
                out = jnp.zeros((self.n_events,) + vals.shape[1:], vals.dtype)
            out = out.at[idx].set(vals, mode="drop")
        return out
