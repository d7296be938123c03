"""NaN-safe elementary functions (the double-``where`` trick).

``jnp.where(c, f(x), y)`` still differentiates ``f`` at the masked points, and
``0 * inf = nan`` then poisons the gradient. Each function below first moves the
singular inputs to a harmless value, applies ``f``, then selects: value *and*
gradient are finite everywhere. At the singular point the returned gradient is
the one of the selected branch (zero for the constant branch).
"""

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float


def safe_sqrt(x: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
    """`sqrt(x)` for `x > 0`, else 0; gradient 0 where `x <= 0`."""
    x = jnp.asarray(x)
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


def safe_norm(v: Float[ArrayLike, "*b d"], axis: int = -1) -> Float[Array, "*b"]:
    """Euclidean norm along `axis`; 0 with zero gradient for the zero vector."""
    v = jnp.asarray(v)
    return safe_sqrt(jnp.sum(v * v, axis=axis))


def safe_div(
    num: Float[ArrayLike, "*#b"], den: Float[ArrayLike, "*#b"], default: float = 0.0
) -> Float[Array, "..."]:
    """`num / den` where `den != 0`, else `default` (zero gradient there); the shapes
    broadcast."""
    num = jnp.asarray(num)
    den = jnp.asarray(den)
    ok = den != 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), default)


def safe_log(x: Float[ArrayLike, "*b"], default: float = 0.0) -> Float[Array, "*b"]:
    """`log(x)` for `x > 0`, else `default` (zero gradient there)."""
    x = jnp.asarray(x)
    pos = x > 0
    return jnp.where(pos, jnp.log(jnp.where(pos, x, 1.0)), default)
