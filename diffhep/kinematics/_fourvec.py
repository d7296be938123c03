"""Four-vector helpers.

Every function acts on the last axis of ``(..., 4)`` arrays ``(E, px, py, pz)`` in
GeV with metric ``(+,-,-,-)`` and broadcasts over leading axes, so a per-event
kernel can call it on ``(capacity, 4)`` and be lifted with `jax.vmap`. All are
differentiable; at massless, collinear and zero-momentum points the value and the
gradient are finite (double-``where``). Where a quantity is undefined (the
azimuth of a particle along the beam, the pseudorapidity of a zero vector) the
convention is stated in its docstring.
"""

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

from .._safe import safe_div, safe_log, safe_sqrt

# Pseudorapidity and rapidity of a particle exactly along the beam are infinite.
# Like ROOT's TVector3::Eta we return a large finite value with the sign of p_z,
# so that differences of rapidities stay finite (and NaN-free).
RAPIDITY_CAP = 1e10


def dot(p: Float[ArrayLike, "*b 4"], q: Float[ArrayLike, "*b 4"]) -> Float[Array, "*b"]:
    """Minkowski product `p·q = E_p E_q - p⃗·q⃗` in GeV²."""
    p = jnp.asarray(p)
    q = jnp.asarray(q)
    return p[..., 0] * q[..., 0] - jnp.sum(p[..., 1:] * q[..., 1:], axis=-1)


def mass2(p: Float[ArrayLike, "*b 4"]) -> Float[Array, "*b"]:
    """Invariant mass squared `p·p` in GeV² (may be slightly negative from round-off)."""
    return dot(p, p)


def mass(p: Float[ArrayLike, "*b 4"]) -> Float[Array, "*b"]:
    """Invariant mass in GeV; 0 (with zero gradient) when `m² ≤ 0`."""
    return safe_sqrt(mass2(p))


def p3_abs(p: Float[ArrayLike, "*b 4"]) -> Float[Array, "*b"]:
    """Magnitude of the three-momentum `|p⃗|` in GeV; gradient 0 at `p⃗ = 0`."""
    p = jnp.asarray(p)
    return safe_sqrt(jnp.sum(p[..., 1:] ** 2, axis=-1))


def pt(p: Float[ArrayLike, "*b 4"]) -> Float[Array, "*b"]:
    """Transverse momentum with respect to the z axis in GeV."""
    p = jnp.asarray(p)
    return safe_sqrt(p[..., 1] ** 2 + p[..., 2] ** 2)


def _signed_cap(z: Array) -> Array:
    return jnp.where(z > 0, RAPIDITY_CAP, jnp.where(z < 0, -RAPIDITY_CAP, 0.0))


def eta(p: Float[ArrayLike, "*b 4"]) -> Float[Array, "*b"]:
    """Pseudorapidity `η = asinh(p_z/p_T)`.

    For `p_T = 0` returns `sign(p_z)·1e10` (0 for `p⃗ = 0`), with zero gradient.
    """
    p = jnp.asarray(p)
    pt_ = pt(p)
    ok = pt_ > 0
    return jnp.where(ok, jnp.arcsinh(p[..., 3] / jnp.where(ok, pt_, 1.0)), _signed_cap(p[..., 3]))


def rapidity(p: Float[ArrayLike, "*b 4"]) -> Float[Array, "*b"]:
    """Rapidity `y = ½ ln((E+p_z)/(E−p_z))`.

    For `E = |p_z|` (a massless particle along the beam) returns `sign(p_z)·1e10`
    (0 for the zero vector), with zero gradient.
    """
    p = jnp.asarray(p)
    plus = p[..., 0] + p[..., 3]
    minus = p[..., 0] - p[..., 3]
    ok = (plus > 0) & (minus > 0)
    y = 0.5 * (safe_log(jnp.where(ok, plus, 1.0)) - safe_log(jnp.where(ok, minus, 1.0)))
    return jnp.where(ok, y, _signed_cap(p[..., 3]))


def phi(p: Float[ArrayLike, "*b 4"]) -> Float[Array, "*b"]:
    """Azimuth in `(-π, π]`; 0 (zero gradient) for `p_T = 0`."""
    p = jnp.asarray(p)
    px, py = p[..., 1], p[..., 2]
    ok = (px != 0) | (py != 0)
    return jnp.where(ok, jnp.arctan2(jnp.where(ok, py, 0.0), jnp.where(ok, px, 1.0)), 0.0)


def delta_phi(p: Float[ArrayLike, "*b 4"], q: Float[ArrayLike, "*b 4"]) -> Float[Array, "*b"]:
    """Azimuthal difference `φ_p − φ_q` wrapped into `[-π, π)`."""
    d = phi(p) - phi(q)
    return jnp.mod(d + jnp.pi, 2 * jnp.pi) - jnp.pi


def delta_r(p: Float[ArrayLike, "*b 4"], q: Float[ArrayLike, "*b 4"]) -> Float[Array, "*b"]:
    """`ΔR = sqrt(Δη² + Δφ²)`; 0 with zero gradient for coincident directions."""
    return safe_sqrt((eta(p) - eta(q)) ** 2 + delta_phi(p, q) ** 2)


def cos_angle(p: Float[ArrayLike, "*b 4"], q: Float[ArrayLike, "*b 4"]) -> Float[Array, "*b"]:
    """Cosine of the opening angle between the three-momenta; 1 if either is zero."""
    p = jnp.asarray(p)
    q = jnp.asarray(q)
    num = jnp.sum(p[..., 1:] * q[..., 1:], axis=-1)
    return safe_div(num, p3_abs(p) * p3_abs(q), default=1.0)


def masked_sum(
    p: Float[ArrayLike, "*b n 4"], mask: Bool[ArrayLike, "*b n"]
) -> Float[Array, "*b 4"]:
    """Sum of the four-momenta whose `mask` is True (padding contributes nothing)."""
    p = jnp.asarray(p)
    mask = jnp.asarray(mask)
    return jnp.sum(jnp.where(mask[..., None], p, 0.0), axis=-2)


def from_ptetaphim(
    pt_: Float[ArrayLike, "*b"],
    eta_: Float[ArrayLike, "*b"],
    phi_: Float[ArrayLike, "*b"],
    m: Float[ArrayLike, "*b"],
) -> Float[Array, "*b 4"]:
    """Build `(E, px, py, pz)` from `(p_T, η, φ, m)`; differentiable in all four
    (gradient of `E` finite, zero, at `p_T = m = 0`)."""
    pt_, eta_, phi_, m = (jnp.asarray(x) for x in (pt_, eta_, phi_, m))
    px = pt_ * jnp.cos(phi_)
    py = pt_ * jnp.sin(phi_)
    pz = pt_ * jnp.sinh(eta_)
    e = safe_sqrt(m**2 + (pt_ * jnp.cosh(eta_)) ** 2)
    return jnp.stack([e, px, py, pz], axis=-1)
