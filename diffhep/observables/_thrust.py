"""Exact thrust and its axis, differentiable.

Thrust `T = max_n Σ|p⃗_i·n| / Σ|p⃗_i|`, equivalently `max_ε |Σ ε_i p⃗_i| / Σ|p⃗_i|`
over hemisphere signs `ε_i = ±1`. At the optimum no particle lies on the plane
orthogonal to the axis, so the optimal split is made by a plane through the origin
that touches no particle. Rotate that plane until it touches a particle `j`, then
about `p⃗_j` until it touches a second one `k`: the particles off the plane
`span(p⃗_j, p⃗_k)` keep their sides, so enumerating the planes spanned by every pair
`(j, k)` with the sign choices of the particles *on* the plane finds the exact
maximum (Brandt & Dahmen, Z. Phys. C1 (1979) 61; Pythia 8's `Thrust` uses the same
enumeration).

Particles on the plane get their side from the plane tilted slightly about `p⃗_j`
(normal `n = p⃗_j × p⃗_k`, tilt `±`): side `±sign(n·(p⃗_i × p⃗_j))`, which is `∓1` for
`k` itself. Particles collinear with `p⃗_j` follow `j`: side `ε_j sign(p⃗_i·p⃗_j)`.
That gives four candidates per pair, `A ± B ± C`, and keeps the result exact also
for exactly coplanar or collinear momenta (e.g. events in the x–y plane), where
assigning on-plane particles an arbitrary side would miss the maximum. We also try
the `N` axes along the particles themselves, which covers single-particle events.
Any sign choice gives a lower bound, so extra candidates never overestimate.
Cost `O(N³)`, done as matrix products on a CPU and written out on a GPU
(`_written_out`). For generic momenta no particle other than
`j` and `k` lies exactly on a candidate plane, and the tilt and collinear terms reduce
to `−p⃗_k` and `+p⃗_j`: a chunk of events is first enumerated that way (one sign table
per pair instead of three), and again in full only if one of its events has a particle
exactly on a plane (flagged exactly, so the result is the same).

**Derivative.** With the winning hemisphere assignment `ε_i = ±1` held fixed,
`T = |Σ ε_i p⃗_i| / Σ|p⃗_i|` exactly. We evaluate that expression with `ε` under
`stop_gradient`: the value is the exact thrust and the gradient is the exact
gradient (to all orders) wherever the assignment is locally constant, i.e.
everywhere except on the measure-zero set where a particle crosses the plane
orthogonal to the axis — there thrust itself has a kink.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from .._safe import safe_div, safe_norm
from .._devices import observable_chunk
from ._common import prepare


def _written_out() -> bool:
    """Whether the small products below are written out as elementwise products and
    sums (read at trace time). On a CPU each `(m, 3) @ (3, n)` or `(m, n) @ (n, 3)` is a
    fast small GEMM (written out, 1.5x slower at 12 partons). On a GPU XLA gives each
    its own GEMM kernel, which in float32 also rounds its inputs to TF32 (it changed
    hemisphere signs: `benchmarks/ab_thrust_products.py`); written out, they fuse into
    their neighbours in full precision. H100, 786 432 events of 12 partons in chunks of
    16 384: 10.8 → 6.0 ms in float32, 16.5 → 13.8 ms in float64."""
    return jax.default_backend() != "cpu"


def _pair_dots(a: Array, b: Array) -> Array:
    """`a @ b.T` for 3-vectors `a (m, 3)`, `b (n, 3)`: the `(m, n)` dot products."""
    if _written_out():
        a, b = a[:, None, :], b[None, :, :]
        return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]
    return a @ b.T


def _combine(w: Array, p3: Array) -> Array:
    """`w @ p3`: for weights `w (m, n)` and 3-vectors `p3 (n, 3)`, Σ_i w_i p⃗_i `(m, 3)`."""
    if _written_out():
        return jnp.sum(w[:, :, None] * p3[None], axis=1)
    return w @ p3


def _planes(p3: Array):
    """Candidate planes span(p⃗_j, p⃗_k) for every pair j < k (static indices) and the
    side `(pairs, n)` of each particle off the plane (0 on it; j and k are set to 0
    explicitly, as their computed sides are round-off)."""
    n = p3.shape[0]
    j, k = np.triu_indices(n, 1)
    slot = np.arange(n)[None, :]
    is_j = slot == j[:, None]  # (pairs, n), static
    is_k = slot == k[:, None]
    pj, pk = p3[j], p3[k]
    normal = jnp.cross(pj, pk)
    side = jnp.where(is_j | is_k, 0.0, jnp.sign(_pair_dots(normal, p3)))
    return is_j, is_k, pj, pk, normal, side


def _signs_of_best(p3: Array, combos: Array) -> Array:
    """Hemisphere signs of the longest of the plane candidates `combos` and the `n`
    axes along the particles (the only candidates for a single particle)."""
    candidates = jnp.concatenate([combos.reshape(-1, 3), _combine(jnp.sign(_pair_dots(p3, p3)), p3)], axis=0)
    best = candidates[jnp.argmax(jnp.sum(candidates**2, axis=-1))]
    # The hemisphere assignment that the best axis induces reproduces its |Σ ε p|
    # (or improves on it); particles exactly on the plane (zero padding) contribute
    # nothing either way.
    eps = jnp.where(_pair_dots(p3, best[None])[:, 0] >= 0, 1.0, -1.0).astype(p3.dtype)
    # Fix the overall sign (which of the equal candidates ±axis wins is round-off):
    # the axis points to z > 0, or y > 0 if n_z = 0, or x ≥ 0 if n_y = n_z = 0. It
    # then changes sign only where n_z does, not between jit and eager or under
    # tiny perturbations.
    total = _combine(eps[None], p3)[0]
    flip = jnp.where(
        total[2] != 0, total[2] < 0, jnp.where(total[1] != 0, total[1] < 0, total[0] < 0)
    )
    return jnp.where(flip, -eps, eps)


def _thrust_signs(p3: Array) -> Array:
    """Hemisphere signs `ε` `(n,)` of the exact thrust axis for one event's `(n, 3)`,
    exact for every configuration (also particles exactly on a candidate plane)."""
    is_j, is_k, pj, pk, normal, side = _planes(p3)
    # On the plane: side under a small tilt about p_j, sign((p_j × n)·p_i); -1 for k.
    tilt = jnp.where(is_j, 0.0, jnp.where(is_k, -1.0, jnp.sign(_pair_dots(jnp.cross(pj, normal), p3))))
    tilt = jnp.where(side == 0, tilt, 0.0)
    # Collinear with p_j (and j itself): same side as j if parallel, else opposite.
    coll = jnp.where(is_j, 1.0, jnp.sign(_pair_dots(pj, p3)))
    coll = jnp.where((side == 0) & (tilt == 0), coll, 0.0)
    a, b, c = _combine(side, p3), _combine(tilt, p3), _combine(coll, p3)  # (pairs, 3) each
    # The other four sign choices are the negatives, i.e. the same axes.
    return _signs_of_best(p3, jnp.stack([a + b + c, a + b - c, a - b + c, a - b - c], 1))


def _thrust_signs_generic(p3: Array) -> tuple[Array, Array]:
    """`_thrust_signs` where no particle other than j and k (and zero padding) lies
    exactly on a candidate plane, and whether that assumption fails for this event.

    Then the tilt and collinear terms of `_thrust_signs` reduce to −p⃗_k and +p⃗_j, so
    one sign table of the three is computed: about 2.5× less work."""
    is_j, is_k, pj, pk, _, side = _planes(p3)
    real = jnp.any(p3 != 0, axis=-1)
    # Planes through a zero-momentum (padding) particle have no normal: their full
    # candidates are the axes along p⃗_j, which both enumerations try anyway.
    pair_real = jnp.any(is_j & real[None, :], axis=1) & jnp.any(is_k & real[None, :], axis=1)
    on_plane = (side == 0) & ~(is_j | is_k) & real[None, :]
    degenerate = jnp.any(on_plane & pair_real[:, None])
    a = _combine(side, p3)
    combos = jnp.stack([a - pk + pj, a - pk - pj, a + pk + pj, a + pk - pj], 1)
    return _signs_of_best(p3, combos), degenerate


def _signs_chunk(p3: Array) -> Array:
    """Exact hemisphere signs `(c, n)` of a chunk of events `(c, n, 3)`: the generic
    enumeration, and the full one for the whole chunk if any event needs it (events
    with particles exactly on a candidate plane, e.g. all in the x–y plane; an
    unbatched `lax.cond`, so only such chunks pay for it)."""
    eps, degenerate = jax.vmap(_thrust_signs_generic)(p3)
    return jax.lax.cond(jnp.any(degenerate), jax.vmap(_thrust_signs), lambda _: eps, p3)


# Events per chunk: the pair enumeration holds (n²/2, n) intermediates per event,
# which a CPU wants in cache (≲ 2¹⁶ n³ per step; a GPU takes larger steps,
# `_devices.observable_chunk`).
_CHUNK = 512
_CACHE_ELEMENTS = 2**16


def _thrust_from_signs(p: Array, eps: Array) -> tuple[Array, Array]:
    """T and the axis of one event `(n, 4)` for fixed signs `ε` (no gradient through
    ε): the exact gradient wherever the assignment is locally constant."""
    p3 = p[:, 1:]
    total = jnp.sum(jax.lax.stop_gradient(eps)[:, None] * p3, axis=0)
    norm = safe_norm(total)
    denom = jnp.sum(safe_norm(p3), axis=-1)
    t = safe_div(norm, denom)
    axis = safe_div(total, norm * jnp.ones(3, p.dtype))
    return t, axis


def _thrust_event(p: Array, mask: Array) -> tuple[Array, Array]:
    """One event's T and axis (the per-event kernel for other event shapes)."""
    return _thrust_from_signs(p, _thrust_signs(jax.lax.stop_gradient(p[:, 1:])))


@functools.partial(jax.jit, static_argnames="name")
def _thrust_batch(momenta: ArrayLike, mask: ArrayLike | None, name: str) -> tuple[Array, Array]:
    p, _ = prepare(momenta, mask, name)
    batch, n = p.shape[:-2], p.shape[-2]
    pf = p.reshape((-1, n, 4))
    p3 = jax.lax.stop_gradient(pf[..., 1:])
    chunk = observable_chunk(_CHUNK, n, _CACHE_ELEMENTS)
    n_ev = p3.shape[0]
    if n_ev <= chunk:
        eps = _signs_chunk(p3)
    else:
        # Padded to whole chunks with empty events (no particle, not degenerate).
        n_chunks = -(-n_ev // chunk)
        padded = jnp.concatenate([p3, jnp.zeros((n_chunks * chunk - n_ev, n, 3), p3.dtype)])
        eps = jax.lax.map(_signs_chunk, padded.reshape(n_chunks, chunk, n, 3)).reshape(-1, n)[:n_ev]
    t, axis = jax.vmap(_thrust_from_signs)(pf, eps)
    return t.reshape(batch), axis.reshape(batch + (3,))


def thrust(
    momenta: Float[ArrayLike, "*b n 4"], mask: Bool[ArrayLike, "*b n"] | None = None
) -> Float[Array, "*b"]:
    """Exact thrust of each event.

    **Arguments:**
    - `momenta`: `(..., n, 4)` four-momenta `(E, px, py, pz)` in GeV (only p⃗ is used).
    - `mask`: `(..., n)` bool, True for real particles (default: all).

    **Returns:** `(...)` thrust in `[1/2, 1]` (0 for an event with no momentum).
    Differentiable in `momenta`: the gradient is exact wherever the hemisphere
    assignment is locally constant (see module docs). Cost `O(n³)` per event.
    """
    return _thrust_batch(momenta, mask, "thrust")[0]


def thrust_axis(
    momenta: Float[ArrayLike, "*b n 4"], mask: Bool[ArrayLike, "*b n"] | None = None
) -> Float[Array, "*b 3"]:
    """Unit thrust axis `(..., 3)` of each event; the zero vector for an event with no
    momentum. Sign convention: `n_z > 0` (if `n_z = 0`: `n_y > 0`, then `n_x > 0`).
    Differentiable (exact wherever the hemisphere assignment is locally constant)."""
    return _thrust_batch(momenta, mask, "thrust_axis")[1]


def thrust_and_axis(
    momenta: Float[ArrayLike, "*b n 4"], mask: Bool[ArrayLike, "*b n"] | None = None
) -> tuple[Float[Array, "*b"], Float[Array, "*b 3"]]:
    """Both `thrust` and `thrust_axis` from one enumeration."""
    return _thrust_batch(momenta, mask, "thrust_and_axis")
