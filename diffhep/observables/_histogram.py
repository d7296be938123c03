"""Soft (kernel-density) histograms.

Each entry `x_i` with weight `w_i` is spread by a Gaussian kernel of width
`bandwidth`; bin `b` receives `w_i [Φ((e_{b+1} − x_i)/h) − Φ((e_b − x_i)/h)]`.
As `h → 0` this is `numpy.histogram` (an entry exactly on an inner edge is shared
half-half, a measure-zero difference). Counts are smooth in `x`, `w` and the edges,
so a binned likelihood built on them is differentiable with respect to whatever
moved the entries. Mass that the kernel pushes outside the outer edges is lost,
as for a hard histogram, unless `flow=True`, where the outer bins take the under- and
overflow (every entry counted once).
"""

import jax.numpy as jnp
from jax.scipy.special import ndtr
from jaxtyping import Array, ArrayLike, Float


def soft_bin_weights(
    x: Float[ArrayLike, " n"],
    edges: Float[ArrayLike, " m"],
    bandwidth: float | Float[ArrayLike, ""],
    flow: bool = False,
) -> Float[Array, "n m-1"]:
    """Per entry, the fraction of its Gaussian kernel in each bin: `(n, m−1)`, rows
    summing to ≤ 1 (= 1 with `flow=True`, where the outer bins take the under- and
    overflow). `soft_histogram` is their weighted sum over entries; keep them per entry
    where per-entry contributions matter (e.g. a Monte Carlo variance). Differentiable
    in `x`, `edges` and `bandwidth`."""
    x = jnp.asarray(x)
    edges = jnp.asarray(edges)
    cdf = ndtr((edges[None, :] - x[:, None]) / bandwidth)  # (n, m)
    if flow:
        cdf = cdf.at[:, 0].set(0.0).at[:, -1].set(1.0)
    return cdf[:, 1:] - cdf[:, :-1]


def soft_histogram(
    x: Float[ArrayLike, " n"],
    edges: Float[ArrayLike, " m"],
    bandwidth: float | Float[ArrayLike, ""],
    weights: Float[ArrayLike, " n"] | None = None,
    flow: bool = False,
) -> Float[Array, " m-1"]:
    """Kernel-density histogram of the values `x` in the bins `edges`.

    **Arguments:**
    - `x`: `(n,)` values.
    - `edges`: `(m,)` strictly increasing bin edges.
    - `bandwidth`: Gaussian kernel width `h > 0`, in the units of `x`.
    - `weights`: `(n,)` entry weights (default 1).
    - `flow`: if True the outer bins take the under- and overflow.

    **Returns:** `(m−1,)` soft counts. Differentiable in `x`, `edges`, `weights` and
    `bandwidth`. Tends to `numpy.histogram(x, edges, weights=weights)` as `h → 0`.
    """
    x = jnp.asarray(x)
    edges = jnp.asarray(edges)
    if x.ndim != 1:
        raise ValueError(f"soft_histogram: x must be 1-D, got shape {x.shape}")
    if edges.ndim != 1 or edges.shape[0] < 2:
        raise ValueError(f"soft_histogram: edges must be 1-D with >= 2 entries, got {edges.shape}")
    if isinstance(bandwidth, (int, float)) and not bandwidth > 0:
        raise ValueError(f"soft_histogram: bandwidth must be > 0, got {bandwidth}")
    w = jnp.ones_like(x) if weights is None else jnp.asarray(weights)
    if w.shape != x.shape:
        raise ValueError(f"soft_histogram: weights shape {w.shape} must match x {x.shape}")
    return jnp.sum(w[:, None] * soft_bin_weights(x, edges, bandwidth, flow), axis=0)
