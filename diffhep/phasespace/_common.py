"""Shared helpers for the phase-space maps: batching, boosts, the Källén function.

Conventions: momenta ``(E, px, py, pz)`` in GeV, metric ``(+,-,-,-)``.
"""

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._precision import FULL

TWO_PI = 2.0 * np.pi


def float_dtype(*args: ArrayLike) -> jnp.dtype:
    """The common floating dtype of `args` (integers promote to the default float)."""
    return jnp.result_type(*(jnp.asarray(a) for a in args), float)


def lift(kernel: Callable, args: Sequence[ArrayLike], core_ndims: Sequence[int]):
    """Apply a per-event `kernel` to broadcast batches of its arguments.

    Each argument has `core_ndims[i]` trailing core dimensions; the leading ones
    broadcast against each other (explicitly, so strict rank promotion is
    respected), are flattened, and the kernel is lifted with `jax.vmap`. The
    lifted kernel is jitted (one compilation per kernel, shapes and dtype), so
    eager calls do not dispatch op by op. Returns the kernel's outputs with the
    batch shape restored.
    """
    dtype = float_dtype(*args)
    arrays = tuple(jnp.asarray(a, dtype=dtype) for a in args)
    return _lift_jit(kernel, arrays, tuple(core_ndims))


@functools.partial(jax.jit, static_argnums=(0, 2))
def _lift_jit(kernel: Callable, arrays: tuple[Array, ...], core_ndims: tuple[int, ...]):
    batch = jnp.broadcast_shapes(*(a.shape[: a.ndim - c] for a, c in zip(arrays, core_ndims)))
    flat = []
    for a, c in zip(arrays, core_ndims):
        core = a.shape[a.ndim - c :]
        flat.append(jnp.broadcast_to(a, batch + core).reshape((-1,) + core))
    out = jax.vmap(kernel)(*flat)
    return jax.tree.map(lambda o: o.reshape(batch + o.shape[1:]), out)


def kallen(a: Float[ArrayLike, "*b"], b: Float[ArrayLike, "*b"], c: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
    """Källén function λ(a, b, c) = a² + b² + c² − 2ab − 2bc − 2ca (arguments are squared masses)."""
    return a * a + b * b + c * c - 2.0 * (a * b + b * c + c * a)


def two_body_momentum(
    m: Float[ArrayLike, "*b"], m1: Float[ArrayLike, "*b"], m2: Float[ArrayLike, "*b"]
) -> Float[Array, "*b"]:
    """|p| of either daughter in the rest frame of a parent of mass `m` → `m1` + `m2` (GeV).

    Written as a product of the four factors of λ(m², m1², m2²) so that it stays
    accurate near threshold and for massless daughters. 0 (with zero gradient)
    below threshold.
    """
    m = jnp.asarray(m)
    lam = (m - m1 - m2) * (m + m1 + m2) * (m - m1 + m2) * (m + m1 - m2)
    ok = lam > 0
    return jnp.where(ok, jnp.sqrt(jnp.where(ok, lam, 1.0)), 0.0) / (2.0 * m)


def _space(frame: Array, ndim: int) -> Array:
    """The spatial part of `frame`, shaped to broadcast against a rank-`ndim`
    array's spatial part without implicit rank promotion."""
    return frame[1:].reshape((1,) * (ndim - 1) + (3,))


def from_rest_frame(p: Float[Array, "*b 4"], frame: Float[Array, "4"], mass: Float[Array, ""]) -> Float[Array, "*b 4"]:
    """Boost `p`, given in the rest frame of `frame` (invariant mass `mass`), to the
    frame in which `frame` is given. The mass is passed in rather than recomputed
    from `frame` so that generated momenta keep the exact generated masses."""
    f3 = _space(frame, p.ndim)
    e = (frame[0] * p[..., 0] + jnp.matmul(p[..., 1:], frame[1:], precision=FULL)) / mass
    c = (p[..., 0] + e) / (frame[0] + mass)
    return jnp.concatenate([e[..., None], p[..., 1:] + c[..., None] * f3], axis=-1)


def to_rest_frame(p: Float[Array, "*b 4"], frame: Float[Array, "4"], mass: Float[Array, ""]) -> Float[Array, "*b 4"]:
    """Inverse of `from_rest_frame`: express `p` in the rest frame of `frame`."""
    f3 = _space(frame, p.ndim)
    e = (frame[0] * p[..., 0] - jnp.matmul(p[..., 1:], frame[1:], precision=FULL)) / mass
    c = (p[..., 0] + e) / (frame[0] + mass)
    return jnp.concatenate([e[..., None], p[..., 1:] - c[..., None] * f3], axis=-1)


def direction(cos_theta: Float[Array, ""], phi: Float[Array, ""]) -> Float[Array, "3"]:
    """Unit vector with polar angle θ (from +z) and azimuth φ."""
    # (1-c)(1+c) rather than 1-c² keeps sinθ accurate near the poles.
    sin_theta = jnp.sqrt(jnp.maximum((1.0 - cos_theta) * (1.0 + cos_theta), 0.0))
    return jnp.stack([sin_theta * jnp.cos(phi), sin_theta * jnp.sin(phi), cos_theta])


def angles_to_uniforms(p3: Float[Array, "3"]) -> Float[Array, "2"]:
    """Inverse of `direction` composed with (cosθ, φ) = (2u₀ − 1, 2π u₁): the two
    uniforms that point along the three-vector `p3`."""
    cos_theta = p3[2] / jnp.sqrt(jnp.sum(p3 * p3))
    phi = jnp.arctan2(p3[1], p3[0])
    phi = jnp.where(phi < 0, phi + TWO_PI, phi)
    return jnp.stack([(cos_theta + 1.0) / 2.0, phi / TWO_PI])


def check_count(name: str, u: ArrayLike, expected: int, what: str) -> None:
    """`ValueError` unless the last axis of `u` has `expected` entries."""
    shape = jnp.shape(u)
    if len(shape) < 1 or shape[-1] != expected:
        raise ValueError(f"{name}: u must have shape (..., {expected}) ({what}); got shape {shape}")


def is_concrete(*xs) -> bool:
    """True when none of `xs` is a tracer, i.e. values can be checked in Python."""
    return not any(isinstance(x, jax.core.Tracer) for x in xs)
