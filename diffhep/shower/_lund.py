"""One rapidity bin of a Lund triangle: the hardest emission in it, from one uniform.

A triangle of base K (K = L for the q q̄ dipole, K = κ_g for the fold of gluon g)
is the region |y| ≤ (K − κ)/2 of the (y, κ) plane, i.e. κ < t(y) = K − 2|y|. Bin b
covers y ∈ [(b − ½)δy, (b + ½)δy], so the centre bin straddles y = 0. The emission
density is ρ = a/κ (running) or a (frozen) per dy dκ. The largest κ in the bin has

    P(κ_max < κ) = exp(−Ψ(κ)),   Ψ(κ) = ∫_bin dy ∫_κ^{t(y)} ρ dκ',

integrated over the *exact* triangle inside the bin, not a rectangle, so that the
first emission has exactly the density ρ everywhere in the triangle. With
t running linearly from t0 (inner edge) to t1 (outer edge) across the bin:

- running, κ ≤ t1:  Ψ = a δy ln(κ̄/κ) with ln κ̄ = (t0 ln t0 − t1 ln t1)/(t0 − t1) − 1,
  so κ = κ̄ u^{1/(a δy)}: the discrete-QCD power law with κ_top = κ̄, the
  logarithmic mean of t over the bin;
- running, κ > t1 (the corner at the triangle's edge):  Ψ = (a m/2)(t0 ln(t0/κ) − t0 + κ),
  a Lambert-W equation e^w − w − 1 = c for w = ln(κ/t0), c = 2r/(a m t0), solved
  by its series in √c for small c and by four Newton steps otherwise (`_solve_corner`);
- frozen: Ψ = a δy (t̄ − κ) for κ ≤ t1, (a m/4)(t0 − κ)² above (closed forms);

where m = 2 for the centre bin (both halves) and 1 otherwise. Given κ, the emission's
rapidity is uniform over the part of the bin that lies inside the triangle at that κ.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._safe import safe_log, safe_sqrt

_NEWTON_STEPS = 4
# Below these c the series is the root to rounding (truncation ≤ 3e-14 relative in
# float64 at c = 1e-4, ≤ 3e-9 in float32 at c = 1e-2, which is below the rounding of
# any narrower float too), and Newton's residual e^w − 1 − w − c would lose its digits
# to cancellation.
_SERIES_BELOW_F64 = 1e-4
_SERIES_BELOW_NARROWER = 1e-2
# w = −s − s²/6 − s³/36 − s⁴/270 − s⁵/4320 + …, s = √(2c): the series inverse of
# e^w − 1 − w = s²/2 on the branch w ≤ 0.
_SERIES = (-1.0, -1.0 / 6.0, -1.0 / 36.0, -1.0 / 270.0, -1.0 / 4320.0)


def _corner_series(c: Array) -> Array:
    s = safe_sqrt(2.0 * c)
    w = jnp.zeros_like(s)
    for coefficient in reversed(_SERIES):  # Horner in s
        w = (w + coefficient) * s
    return w


def _solve_corner(c: Array, w_init: Array | None = None) -> Array:
    """Root w ≤ 0 of e^w − w − 1 = c (c ≥ 0); returns w = ln(κ/t0).

    Small c: the series in s = √(2c) (exact to rounding there). Otherwise Newton's
    method from the series (c < 1) or from −1 − c + e^{−1−c−e^{−1−c}} (c ≥ 1), both
    within 2.2 % of the root; the function is convex and decreasing for w < 0, and
    `_NEWTON_STEPS` = 4 steps reach it to ≤ 7e-13 relative in float64 over
    1e-4 ≤ c ≤ 1e8 (checked against long-double iterations; 12 steps from the old
    start −√(2c) − c left up to 8e-9, from cancellation in the residual, which is now
    written with expm1). The iterations run under stop_gradient; one final Newton
    step restores the exact derivative dw/dc = 1/(e^w − 1) (implicit function
    theorem) and follows c where `w_init`, a converged root from an earlier pass,
    is given for a slightly different c.
    """
    c = jnp.maximum(c, 0.0)
    c0 = jax.lax.stop_gradient(c)
    series = _corner_series(c)
    if w_init is not None:  # a converged root from an earlier pass: only the final step
        w, steps = jax.lax.stop_gradient(w_init), 0
    else:
        large = -1.0 - c0 + jnp.exp(-1.0 - c0 - jnp.exp(-1.0 - c0))
        w, steps = jnp.where(c0 < 1.0, jax.lax.stop_gradient(series), large), _NEWTON_STEPS

    tiny = jnp.finfo(c.dtype).tiny

    def slope(w):
        dg = jnp.expm1(w)  # g'(w) < 0 for w < 0; guard the root at w = 0 (c = 0)
        return jnp.where(dg < -tiny, dg, -tiny)

    def step(w, _):
        g = jnp.expm1(w) - w - c0
        return jnp.minimum(w - g / slope(w), 0.0), None

    if steps:
        w, _ = jax.lax.scan(step, w, None, length=steps)
    w = jax.lax.stop_gradient(w)
    newton = w - (jnp.expm1(w) - w - c) / slope(w)
    below = _SERIES_BELOW_F64 if jnp.finfo(c.dtype).bits == 64 else _SERIES_BELOW_NARROWER
    return jnp.where(c0 < below, series, newton)


def bin_geometry(b: Array, base: Array, delta_y: Array) -> tuple[Array, Array, Array, Array]:
    """|y| range `[u0, u1]` of bin `b` and the triangle heights `t0 = t(u0)`, `t1 = t(u1)`."""
    ab = jnp.abs(b).astype(base.dtype)
    u0 = jnp.where(b == 0, 0.0, (ab - 0.5) * delta_y)
    u1 = jnp.where(b == 0, 0.5 * delta_y, (ab + 0.5) * delta_y)
    return u0, u1, base - 2.0 * u0, base - 2.0 * u1


def sample_bin(
    b: Array,
    base: Array,
    a: Array | float,
    delta_y: Array,
    u_kappa: Array,
    u_y: Array,
    frozen: bool,
    w_init: Array | None = None,
) -> tuple[Array, Array, Array]:
    """Hardest emission `(κ, y)` of bin `b` in a triangle of base `base`.

    **Arguments:** `b` integer bin index; `base` K; `a` the density coefficient;
    `delta_y` bin width; `u_kappa`, `u_y` uniforms in (0, 1).

    **Returns:** `κ` (may lie below the cutoff, or be −1 for an empty bin: the caller
    compares with κ_c), the rapidity `y` in the triangle's coordinates, and `w`, the
    corner solution ln(κ/t0) (pass it back as `w_init` to recompute the same point with
    a single Newton step, e.g. in a differentiable second pass). `κ` and `y` are
    differentiable in `base`, `a` and `delta_y`.
    """
    m = jnp.where(b == 0, 2.0, 1.0)
    u0, u1, t0, t1 = bin_geometry(b, base, delta_y)
    r = -jnp.log(u_kappa)  # Ψ(κ) = r
    alive = t0 > 0.0
    t0s = jnp.where(alive, t0, 1.0)
    if frozen:
        k_rect = 0.5 * (t0s + t1) - r / (a * delta_y)
        k_corner = t0s - 2.0 * jnp.sqrt(r / (a * m))
        kappa = jnp.where((t1 > 0.0) & (k_rect <= t1), k_rect, k_corner)
        w = jnp.zeros_like(kappa)
    else:
        t1p = t1 > 0.0
        t1s = jnp.where(t1p, t1, 1.0)
        log_kbar = (t0s * safe_log(t0s) - t1s * safe_log(t1s)) / jnp.where(t1p, t0s - t1s, 1.0) - 1.0
        k_rect = jnp.exp(log_kbar - r / (a * delta_y))
        w = _solve_corner(2.0 * r / (a * m * t0s), w_init)
        k_corner = t0s * jnp.exp(w)
        use_rect = t1p & (k_rect <= t1s)
        kappa = jnp.where(use_rect, k_rect, k_corner)
    kappa = jnp.where(alive, kappa, -1.0)
    # Rapidity: uniform over the bin's slice inside the triangle at this κ.
    edge = jnp.maximum(0.5 * (base - kappa), u0)
    hi = jnp.minimum(u1, edge)
    sign = jnp.sign(b).astype(base.dtype)
    y_side = sign * (u0 + u_y * (hi - u0))
    y_centre = (2.0 * u_y - 1.0) * hi
    y = jnp.where(b == 0, y_centre, y_side)
    return kappa, y, w


def log_no_emission(
    kappa: Array, b: Array, base: Array, a: Array | float, delta_y: Array, frozen: bool
) -> Array:
    """Ψ(κ) of bin `b`: minus the log-probability of no emission above κ in the bin."""
    m = jnp.where(b == 0, 2.0, 1.0)
    _, _, t0, t1 = bin_geometry(b, base, delta_y)
    k = jnp.maximum(kappa, jnp.finfo(jnp.result_type(kappa)).tiny)

    def g(t):
        above = t > k
        ts = jnp.where(above, t, 2.0 * k)
        if frozen:
            val = 0.5 * (ts - k) ** 2
        else:
            val = ts * jnp.log(ts / k) - ts + k
        return jnp.where(above, val, 0.0)

    return 0.5 * a * m * (g(t0) - g(t1))
