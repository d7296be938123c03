"""Lorentz boosts and rotations of ``(..., 4)`` four-momenta.

Conventions: `boost(p, beta)` is the *active* boost that gives a particle at rest
the velocity `beta`; `boost_to_rest_frame(p, frame)` expresses `p` in the rest
frame of the four-vector `frame`, and `boost_from_rest_frame` undoes it. All are
differentiable; `β = 0` is a regular point (we use `(γ−1)/β² = γ²/(γ+1)`).
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._precision import FULL
from .._safe import safe_div, safe_sqrt


def _lift(v: Array, ndim: int) -> Array:
    """Reshape a `(k,)` vector so that it broadcasts against an array of rank `ndim`
    without implicit rank promotion."""
    return jnp.reshape(v, (1,) * (ndim - v.ndim) + v.shape)


def boost(p: Float[ArrayLike, "*b 4"], beta: Float[ArrayLike, "3"]) -> Float[Array, "*b 4"]:
    """Active Lorentz boost of `p` by the velocity `beta` (|β| < 1).

    **Arguments:**
    - `p`: four-momenta `(..., 4)` in GeV.
    - `beta`: velocity three-vector `(3,)`, in units of c.

    **Returns:** boosted four-momenta `(..., 4)`. Differentiable in `p` and `beta`.
    Raises at run time (also under jit) if `|β| ≥ 1`.
    """
    p = jnp.asarray(p)
    beta = jnp.asarray(beta)
    b2 = jnp.sum(beta**2)
    b2 = eqx.error_if(b2, b2 >= 1.0, "boost: |beta| must be < 1")
    gamma = 1.0 / jnp.sqrt(1.0 - b2)
    bp = jnp.sum(p[..., 1:] * _lift(beta, p.ndim), axis=-1)
    e = p[..., 0]
    coef = gamma**2 / (gamma + 1.0) * bp + gamma * e
    space = p[..., 1:] + coef[..., None] * _lift(beta, p.ndim)
    return jnp.concatenate([(gamma * (e + bp))[..., None], space], axis=-1)


def _beta_of(frame: Float[ArrayLike, "4"]) -> Array:
    frame = jnp.asarray(frame)
    frame = eqx.error_if(
        frame,
        frame[0] ** 2 <= jnp.sum(frame[1:] ** 2),
        "boost frame must be time-like with E > 0 (m² > 0)",
    )
    return frame[1:] / frame[0]


def boost_to_rest_frame(
    p: Float[ArrayLike, "*b 4"], frame: Float[ArrayLike, "4"]
) -> Float[Array, "*b 4"]:
    """Express `p` in the rest frame of the time-like four-vector `frame`."""
    return boost(p, -_beta_of(frame))


def boost_from_rest_frame(
    p: Float[ArrayLike, "*b 4"], frame: Float[ArrayLike, "4"]
) -> Float[Array, "*b 4"]:
    """Inverse of `boost_to_rest_frame`: take `p` given in the rest frame of `frame`
    back to the frame in which `frame` was given."""
    return boost(p, _beta_of(frame))


def boost_along_axis(
    p: Float[ArrayLike, "*b 4"], rapidity: Float[ArrayLike, ""], axis: int = 3
) -> Float[Array, "*b 4"]:
    """Active boost along a coordinate axis (1=x, 2=y, 3=z) by a rapidity `ω`,
    i.e. velocity `tanh ω`. Smooth in `ω` everywhere, including `ω = 0`."""
    if axis not in (1, 2, 3):
        raise ValueError(f"axis must be 1, 2 or 3 (x, y, z), got {axis!r}")
    p = jnp.asarray(p)
    w = jnp.asarray(rapidity)
    ch, sh = jnp.cosh(w), jnp.sinh(w)
    e, pa = p[..., 0], p[..., axis]
    p = p.at[..., 0].set(ch * e + sh * pa)
    return p.at[..., axis].set(sh * e + ch * pa)


def rotation_matrix(axis: Float[ArrayLike, "3"], angle: Float[ArrayLike, ""]) -> Float[Array, "3 3"]:
    """Rotation by `angle` (radians, right-handed) about the direction `axis`
    (Rodrigues' formula). A zero `axis` gives the identity."""
    axis = jnp.asarray(axis)
    n = safe_div(axis, safe_sqrt(jnp.sum(axis**2)) * jnp.ones(3))
    c, s = jnp.cos(angle), jnp.sin(angle)
    k = jnp.array(
        [[0.0, -n[2], n[1]], [n[2], 0.0, -n[0]], [-n[1], n[0], 0.0]], dtype=n.dtype
    )
    return jnp.eye(3, dtype=n.dtype) + s * k + (1 - c) * jnp.matmul(k, k, precision=FULL)


def rotation_to_z(direction: Float[ArrayLike, "3"]) -> Float[Array, "3 3"]:
    """The rotation matrix `R` that takes the unit vector along `direction` onto +z,
    by the smallest angle. Finite (value and gradient) also for `direction ∥ ±z`
    and for the zero vector (identity)."""
    d = jnp.asarray(direction)
    r = safe_sqrt(jnp.sum(d**2))
    n = safe_div(d, r * jnp.ones(3))
    # Rotation taking n to z: axis n × z = (n_y, -n_x, 0), cos = n_z, and
    # R = I + K + K²/(1 + c). Near n = -z, 1 + c cancels catastrophically (a
    # relative error 1e-16/(1 + c) in R), so there we use the exact identity
    # 1 + c = (n_x² + n_y²)/(1 − c). Exactly at n = -z (n_x = n_y = 0, c < 0) the
    # smallest rotation is not unique: we use the rotation by π about x.
    c = n[2]
    sxy = n[0] ** 2 + n[1] ** 2
    anti = (c < 0) & (sxy == 0)
    one_plus_c = jnp.where(c >= 0, 1.0 + c, sxy / (1.0 - jnp.minimum(c, 0.0)))
    one_plus_c = jnp.where(anti, 1.0, one_plus_c)
    k = jnp.array([[0.0, 0.0, -n[0]], [0.0, 0.0, -n[1]], [n[0], n[1], 0.0]], dtype=n.dtype)
    # K² written out, not `k @ k`: batched under vmap, a 3×3 product became a GEMM
    # kernel per call on a GPU (with the dipole mass's dot product, 32 of the 197 ms of
    # the shower's `realize` of 2·10⁶ events on an H100).
    xy = n[0] * n[1]
    k2 = -jnp.array([[n[0] ** 2, xy, 0.0], [xy, n[1] ** 2, 0.0], [0.0, 0.0, sxy]], dtype=n.dtype)
    r_gen = jnp.eye(3, dtype=n.dtype) + k + k2 / one_plus_c
    r_flip = jnp.diag(jnp.array([1.0, -1.0, -1.0], dtype=n.dtype))
    return jnp.where(anti, r_flip, r_gen)


def rotate(p: Float[ArrayLike, "*b 4"], matrix: Float[ArrayLike, "3 3"]) -> Float[Array, "*b 4"]:
    """Apply the 3×3 rotation `matrix` to the spatial part of `p` (energy unchanged)."""
    p = jnp.asarray(p)
    matrix = jnp.asarray(matrix)
    space = jnp.einsum("ij,...j->...i", matrix, p[..., 1:], precision=FULL)
    return jnp.concatenate([p[..., :1], space], axis=-1)
