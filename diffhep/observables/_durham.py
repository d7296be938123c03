"""Durham (e+e- k_t) exclusive clustering.

Distance `y_ij = 2 min(E_i², E_j²)(1 − cos θ_ij) / E_vis²` with E-scheme
recombination (four-momenta add), as fastjet's `ee_kt_algorithm`
(Catani, Dokshitzer, Olsson, Turnock, Webber, PLB 269 (1991) 432). `y23` is the
`y` of the merging that takes the event from three jets to two, i.e. fastjet's
`exclusive_ymerge(2)`; `E_vis` is the sum of the energies of all particles.

The clustering sequence is discrete: argmin choices are made on the values, and
the result is differentiable through the momenta of the chosen sequence (exact
wherever the sequence is locally constant). Padding never clusters.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

from .._precision import FULL
from .._safe import safe_div, safe_norm
from ._common import batched


def _durham_event(p: Array, mask: Array) -> Array:
    n = p.shape[0]
    q2 = jnp.sum(jnp.where(mask, p[:, 0], 0.0)) ** 2
    eye = jnp.eye(n, dtype=bool)

    def distances(p, active):
        p3 = p[:, 1:]
        a = safe_norm(p3)
        unit = safe_div(p3, a[:, None] * jnp.ones((1, 3), p.dtype))
        one_minus_cos = 1.0 - jnp.matmul(unit, unit.T, precision=FULL)
        e2 = p[:, 0] ** 2
        d = 2.0 * jnp.minimum(e2[:, None], e2[None, :]) * one_minus_cos
        valid = active[:, None] & active[None, :] & ~eye
        return jnp.where(valid, d, jnp.inf)

    def step(carry, _):
        p, active, y23 = carry
        n_active = jnp.sum(active)
        d = distances(p, active)
        flat = jnp.argmin(d)
        i, j = flat // n, flat % n
        # Record the 3 → 2 merging; merge only while more than two jets remain.
        # With fewer than two active jets every distance is inf: replace it before
        # dividing, or the unselected branch's gradient would be 0 · inf = NaN.
        record = n_active == 3
        dmin = jnp.where(record, d[i, j], 0.0)
        y23 = jnp.where(record, safe_div(dmin, q2), y23)
        do = n_active > 2
        lo, hi = jnp.minimum(i, j), jnp.maximum(i, j)
        merged = p[lo] + p[hi]
        p = jnp.where(do, p.at[lo].set(merged).at[hi].set(0.0), p)
        active = jnp.where(do, active.at[hi].set(False), active)
        return (p, active, y23), None

    y0 = jnp.zeros((), p.dtype)
    (_, _, y23), _ = jax.lax.scan(step, (p, mask, y0), None, length=max(n - 2, 0))
    return y23


def durham_y23(
    momenta: Float[ArrayLike, "*b n 4"], mask: Bool[ArrayLike, "*b n"] | None = None
) -> Float[Array, "*b"]:
    """Durham `y23` of each event (`(..., n, 4)` GeV in, `(...)` out); 0 for events
    with fewer than three particles. Matches fastjet's `ee_kt_algorithm`
    `exclusive_ymerge(2)`. Cost `O(n³)` per event."""
    # A CPU core wants ≲ 2²⁰ / n³ events per step: 4096 events of 24 (12) particles
    # took 53 (7.5) µs per event in steps of 64 (512), 61 (9.1) µs in steps of 4096.
    return batched(_durham_event, momenta, mask, "durham_y23", chunk=4096, cache_elements=2**20)
