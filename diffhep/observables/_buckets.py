"""Group events by multiplicity so that O(n³) shapes do not pay for padding."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike


class MultiplicityBuckets:
    """A static grouping of a batch of events by their number of real particles.

    Built from a *concrete* mask (e.g. a shower `Layout`'s, known before tracing),
    it can then be applied inside `jit`/`grad` to momenta of the same batch: each
    bucket gathers its events and their real particles (first, in their original
    order) into `(n_bucket, size, 4)` and evaluates the observable there. Results are
    scattered back to the original event order. The values are identical to
    evaluating on the padded batch; only the cost changes (thrust is O(n³)).

    Not a PyTree: it holds NumPy index arrays and is used as a constant (closed over)
    by the traced function.
    """

    sizes: tuple[int, ...]
    n_events: int
    index: tuple[np.ndarray, ...]  # event indices per bucket
    order: np.ndarray  # (n, capacity): real particles first

    def __init__(self, mask: ArrayLike, sizes: Sequence[int] = (4, 8, 12, 16, 24, 32, 48, 64, 96, 128)):
        mask = np.asarray(mask, bool)
        if mask.ndim != 2:
            raise ValueError(f"mask must have shape (n_events, capacity), got {mask.shape}")
        counts = mask.sum(axis=1)
        cap = mask.shape[1]
        sizes = sorted({min(int(s), cap) for s in sizes} | {cap})
        bucket = np.searchsorted(np.asarray(sizes), counts)
        self.sizes = tuple(sizes)
        self.n_events = mask.shape[0]
        self.index = tuple(np.nonzero(bucket == b)[0] for b in range(len(sizes)))
        self.order = np.argsort(~mask, axis=1, kind="stable")

    def apply(self, fn: Callable, momenta: ArrayLike, mask: ArrayLike) -> Array:
        """`fn(momenta, mask)` for the batch, evaluated bucket by bucket. `fn` maps
        `(k, n, 4), (k, n)` to `(k, ...)`."""
        momenta = jnp.asarray(momenta)
        mask = jnp.asarray(mask)
        if momenta.shape[0] != self.n_events:
            raise ValueError(
                f"momenta has {momenta.shape[0]} events but the buckets were built for {self.n_events}"
            )
        parts, where = [], []
        for size, idx in zip(self.sizes, self.index):
            if len(idx) == 0:
                continue
            cols = self.order[idx, :size]
            p = momenta[idx[:, None], cols]
            m = mask[idx[:, None], cols]
            parts.append(fn(p, m))
            where.append(idx)
        out = jnp.concatenate(parts, axis=0)
        inverse = np.argsort(np.concatenate(where))
        return out[inverse]
