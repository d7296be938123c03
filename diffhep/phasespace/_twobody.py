"""Exact two-body phase space and Breit–Wigner mass mappings.

Normalisation as in `diffhep.phasespace`: dΦ_2 = |p|/(16π² √s) dΩ, so the
weight per unit of the two uniforms (cosθ = 2u₀ − 1, φ = 2π u₁) is
|p| / (4π √s), which is 1/(8π) for massless daughters.
"""

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._common import (
    TWO_PI,
    angles_to_uniforms,
    check_count,
    direction,
    float_dtype,
    from_rest_frame,
    lift,
    to_rest_frame,
    two_body_momentum,
)


def _two_body_kernel(u: Array, sqrt_s: Array, m1: Array, m2: Array) -> tuple[Array, Array]:
    q = two_body_momentum(sqrt_s, m1, m2)
    n = direction(2.0 * u[0] - 1.0, TWO_PI * u[1])
    e1 = jnp.sqrt(q * q + m1 * m1)
    e2 = jnp.sqrt(q * q + m2 * m2)
    p1 = jnp.concatenate([e1[None], q * n])
    p2 = jnp.concatenate([e2[None], -q * n])
    return jnp.stack([p1, p2]), q / (2.0 * TWO_PI * sqrt_s)


def two_body(
    u: Float[ArrayLike, "*#b 2"],
    sqrt_s: Float[ArrayLike, "*#b"],
    m1: Float[ArrayLike, "*#b"] = 0.0,
    m2: Float[ArrayLike, "*#b"] = 0.0,
) -> tuple[Float[Array, "*batch 2 4"], Float[Array, "*batch"]]:
    """Exact 2-body phase space in the centre-of-mass frame.

    Particle 1 goes along the direction with cosθ = 2u₀ − 1 (θ measured from the
    +z axis, the direction of incoming parton 1 in a 2 → 2 process) and
    φ = 2π u₁; particle 2 is back to back.

    **Arguments:**
    - `u`: `(..., 2)` uniforms in [0, 1].
    - `sqrt_s`: √s in GeV; `m1`, `m2`: daughter masses in GeV; all broadcast
      against the batch.

    **Returns:** `(momenta, weight)`: `(..., 2, 4)` momenta `(E, px, py, pz)` in
    GeV and the `(...)` weight |p|/(4π√s) (dimensionless), so that
    ∫ f dΦ_2 = ∫ f(p(u)) w du. The map is a bijection of [0,1)² onto the
    two-body phase space (`two_body_inverse` inverts it). Differentiable in `u`,
    `sqrt_s`, `m1`, `m2`; below threshold the weight is 0.
    """
    check_count("two_body", u, 2, "(cos θ, φ) uniforms")
    return lift(_two_body_kernel, (u, sqrt_s, m1, m2), (1, 0, 0, 0))


def two_body_inverse(momenta: Float[ArrayLike, "*b 2 4"]) -> Float[Array, "*b 2"]:
    """Inverse of `two_body`: the uniforms `(u₀, u₁)` that generate `momenta`.

    **Arguments:** `momenta`: `(..., 2, 4)` centre-of-mass momenta in GeV.

    **Returns:** `(..., 2)` uniforms with cosθ = 2u₀ − 1 and φ = 2π u₁ ∈ [0, 2π)
    of particle 1. Differentiable away from the poles.
    """
    momenta = jnp.asarray(momenta)
    if momenta.ndim < 2 or momenta.shape[-2:] != (2, 4):
        raise ValueError(f"two_body_inverse: momenta must have shape (..., 2, 4); got {momenta.shape}")
    return lift(_two_body_inverse_kernel, (momenta,), (2,))


def _decay_kernel(u: Array, parent: Array, m1: Array, m2: Array) -> tuple[Array, Array]:
    mass = jnp.sqrt(parent[0] ** 2 - jnp.sum(parent[1:] ** 2))
    rest, weight = _two_body_kernel(u, mass, m1, m2)
    return from_rest_frame(rest, parent, mass), weight


def two_body_decay(
    u: Float[ArrayLike, "*#b 2"],
    parent: Float[ArrayLike, "*#b 4"],
    m1: Float[ArrayLike, "*#b"],
    m2: Float[ArrayLike, "*#b"],
) -> tuple[Float[Array, "*batch 2 4"], Float[Array, "*batch"]]:
    """Decay a moving parent into two daughters, isotropically in its rest frame.

    The building block of decay chains (e.g. t → b W, W → q q̄′ with `bw_map`
    for the intermediate masses): the angles are generated as in `two_body` in
    the parent rest frame and boosted (a pure boost, no rotation) to the frame
    of `parent`.

    **Arguments:**
    - `u`: `(..., 2)` uniforms for (cosθ*, φ*) in the parent rest frame.
    - `parent`: `(..., 4)` time-like parent momentum in GeV.
    - `m1`, `m2`: daughter masses in GeV.

    **Returns:** `(momenta, weight)`: `(..., 2, 4)` daughter momenta summing to
    `parent`, and the weight |q|/(4π M) with M the parent mass, i.e. the
    two-body measure dΦ_2(parent) per unit `u`. Differentiable in all inputs.
    """
    check_count("two_body_decay", u, 2, "(cos θ*, φ*) uniforms")
    return lift(_decay_kernel, (u, parent, m1, m2), (1, 1, 0, 0))


def two_body_decay_inverse(momenta: Float[ArrayLike, "*b 2 4"]) -> Float[Array, "*b 2"]:
    """Inverse of `two_body_decay`: uniforms `(u₀, u₁)` from the `(..., 2, 4)` daughters."""
    momenta = jnp.asarray(momenta)
    if momenta.ndim < 2 or momenta.shape[-2:] != (2, 4):
        raise ValueError(f"two_body_decay_inverse: momenta must have shape (..., 2, 4); got {momenta.shape}")

    return lift(_decay_inverse_kernel, (momenta,), (2,))


def _two_body_inverse_kernel(p: Array) -> Array:
    return angles_to_uniforms(p[0, 1:])


def _decay_inverse_kernel(p: Array) -> Array:
    parent = p[0] + p[1]
    mass = jnp.sqrt(parent[0] ** 2 - jnp.sum(parent[1:] ** 2))
    return angles_to_uniforms(to_rest_frame(p[0], parent, mass)[1:])


def _bw_range(mass, width, smin, smax):
    mw = mass * width
    ymin = jnp.arctan((smin - mass * mass) / mw)
    ymax = jnp.arctan((smax - mass * mass) / mw)
    return mw, ymin, ymax


def bw_map(
    u: Float[ArrayLike, "*#b"],
    mass: Float[ArrayLike, "*#b"],
    width: Float[ArrayLike, "*#b"],
    smin: Float[ArrayLike, "*#b"],
    smax: Float[ArrayLike, "*#b"],
) -> tuple[Float[Array, "*batch"], Float[Array, "*batch"]]:
    """Breit–Wigner mapping of a uniform to an invariant mass squared s ∈ [smin, smax].

    s = M² + MΓ tan(y), y uniform between arctan((smin − M²)/(MΓ)) and
    arctan((smax − M²)/(MΓ)): the density of s is then proportional to the
    fixed-width Breit–Wigner 1/((s − M²)² + M²Γ²), which flattens resonant
    propagators in the integrand.

    **Arguments:** `u` uniform in [0, 1]; the pole mass `mass` and width `width`
    (GeV, both > 0); the range `smin < smax` in GeV². All broadcast.

    **Returns:** `(s, weight)` with weight = ds/du =
    (y_max − y_min) ((s − M²)² + M²Γ²)/(MΓ) in GeV², so that
    ∫ f(s) ds = ∫ f(s(u)) w(u) du. A bijection [0,1] → [smin, smax] (inverse:
    `bw_map_inverse`). Differentiable in `u`, `mass`, `width`, `smin`, `smax`.
    """
    dtype = float_dtype(u, mass, width, smin, smax)
    u, mass, width, smin, smax = jnp.broadcast_arrays(*(jnp.asarray(a, dtype=dtype) for a in (u, mass, width, smin, smax)))
    mw, ymin, ymax = _bw_range(mass, width, smin, smax)
    y = ymin + u * (ymax - ymin)
    t = jnp.tan(y)
    s = mass * mass + mw * t
    return s, (ymax - ymin) * mw * (1.0 + t * t)


def bw_map_inverse(
    s: Float[ArrayLike, "*#b"],
    mass: Float[ArrayLike, "*#b"],
    width: Float[ArrayLike, "*#b"],
    smin: Float[ArrayLike, "*#b"],
    smax: Float[ArrayLike, "*#b"],
) -> Float[Array, "*batch"]:
    """Inverse of `bw_map`: the uniform u ∈ [0, 1] that gives `s` (GeV²)."""
    dtype = float_dtype(s, mass, width, smin, smax)
    s, mass, width, smin, smax = jnp.broadcast_arrays(*(jnp.asarray(a, dtype=dtype) for a in (s, mass, width, smin, smax)))
    mw, ymin, ymax = _bw_range(mass, width, smin, smax)
    return (jnp.arctan((s - mass * mass) / mw) - ymin) / (ymax - ymin)
