"""Momentum-tensor event shapes and jet broadening.

- C-parameter (Parisi; Ellis, Ross & Terrano): with the linearised tensor
  `Θ^{ab} = Σ p^a p^b/|p⃗| / Σ|p⃗|`, `C = 3(λ1λ2 + λ2λ3 + λ3λ1) = 3/2 (1 − tr Θ²)`
  since `tr Θ = 1`. No eigen-decomposition is needed, so `C` is smooth everywhere.
- Sphericity (Bjorken & Brodsky): with `S^{ab} = Σ p^a p^b / Σ|p⃗|²` and eigenvalues
  `λ1 ≥ λ2 ≥ λ3`, `S = 3/2 (λ2 + λ3) = 3/2 (1 − λ1)`; aplanarity `A = 3/2 λ3`.
  Pythia 8's `Sphericity` (power 2) uses the same definition.
- Jet broadening: `B_{T,W} = Σ_{hemisphere} |p⃗_i × n_T| / (2 Σ|p⃗_i|)`, with the thrust
  axis `n_T`; `B_T = B_1 + B_2`, `B_W = max(B_1, B_2)`. Its derivative includes the
  motion of `n_T` (exact wherever the hemisphere assignment is locally constant).

Eigenvalues enter through the Rayleigh quotient `λ1 = v1ᵀ S v1` with the
eigenvector under `stop_gradient`: the first derivative is exact (first-order
perturbation theory) and stays finite at degenerate eigenvalues, where
`eigh`'s own derivative divides by `λi − λj`.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

from .._precision import FULL
from .._safe import safe_div, safe_norm
from ._common import batched
from ._thrust import _CACHE_ELEMENTS, _thrust_event


def _c_parameter_event(p: Array, mask: Array) -> Array:
    p3 = p[:, 1:]
    a = safe_norm(p3)
    w = safe_div(jnp.ones_like(a), a)  # 1/|p|, 0 for padding
    theta = jnp.einsum("i,ia,ib->ab", w, p3, p3, precision=FULL)
    theta = safe_div(theta, jnp.sum(a) * jnp.ones_like(theta))
    return 1.5 * (jnp.trace(theta) ** 2 - jnp.sum(theta * theta))


def _sphericity_eigen(p: Array, mask: Array) -> tuple[Array, Array]:
    """Largest and smallest eigenvalues of the normalised quadratic tensor."""
    p3 = p[:, 1:]
    s = jnp.matmul(p3.T, p3, precision=FULL)
    s = safe_div(s, jnp.trace(s) * jnp.ones_like(s))
    _, vecs = jnp.linalg.eigh(jax.lax.stop_gradient(s))  # ascending eigenvalues
    v1, v3 = vecs[:, -1], vecs[:, 0]
    quadratic = lambda v: jnp.dot(v, jnp.dot(s, v, precision=FULL), precision=FULL)  # noqa: E731
    return quadratic(v1), quadratic(v3)


def _sphericity_event(p: Array, mask: Array) -> Array:
    lam1, _ = _sphericity_eigen(p, mask)
    has = jnp.any(mask & (jnp.sum(p[:, 1:] ** 2, -1) > 0))
    return jnp.where(has, 1.5 * (1.0 - lam1), 0.0)


def _aplanarity_event(p: Array, mask: Array) -> Array:
    return 1.5 * _sphericity_eigen(p, mask)[1]


def _broadening_event(p: Array, mask: Array) -> tuple[Array, Array]:
    # The axis is differentiable: `_thrust_event` fixes only the hemisphere signs ε,
    # and n_T = Σε p⃗/|Σε p⃗| then moves with the momenta. (Unlike T, B is not
    # stationary in n, so holding the axis fixed would give a wrong gradient.)
    _, axis = _thrust_event(p, mask)
    p3 = p[:, 1:]
    trans = safe_norm(jnp.cross(p3, jnp.broadcast_to(axis, p3.shape)))
    denom = 2.0 * jnp.sum(safe_norm(p3))
    hemi = jnp.dot(p3, axis, precision=FULL) > 0
    b1 = safe_div(jnp.sum(jnp.where(hemi, trans, 0.0)), denom)
    b2 = safe_div(jnp.sum(jnp.where(hemi, 0.0, trans)), denom)
    return b1 + b2, jnp.maximum(b1, b2)


def c_parameter(
    momenta: Float[ArrayLike, "*b n 4"], mask: Bool[ArrayLike, "*b n"] | None = None
) -> Float[Array, "*b"]:
    """C-parameter in `[0, 1]` of each event (`(..., n, 4)` GeV in, `(...)` out).
    Smooth and differentiable everywhere (no eigen-decomposition)."""
    return batched(_c_parameter_event, momenta, mask, "c_parameter")


def sphericity(
    momenta: Float[ArrayLike, "*b n 4"], mask: Bool[ArrayLike, "*b n"] | None = None
) -> Float[Array, "*b"]:
    """Sphericity `S = 3/2 (λ2 + λ3)` in `[0, 1]` (`(..., n, 4)` GeV in, `(...)` out).
    First derivatives are exact and finite, also at degenerate eigenvalues."""
    return batched(_sphericity_event, momenta, mask, "sphericity")


def aplanarity(
    momenta: Float[ArrayLike, "*b n 4"], mask: Bool[ArrayLike, "*b n"] | None = None
) -> Float[Array, "*b"]:
    """Aplanarity `A = 3/2 λ3` in `[0, 1/2]`; same derivative rule as `sphericity`."""
    return batched(_aplanarity_event, momenta, mask, "aplanarity")


def jet_broadening(
    momenta: Float[ArrayLike, "*b n 4"], mask: Bool[ArrayLike, "*b n"] | None = None
) -> tuple[Float[Array, "*b"], Float[Array, "*b"]]:
    """Total and wide jet broadening `(B_T, B_W)` with respect to the thrust axis.
    Differentiable, including through the axis; exact wherever the hemisphere
    assignment is locally constant (kinks where `B_1 = B_2` for `B_W`)."""
    return batched(_broadening_event, momenta, mask, "jet_broadening", chunk=512, cache_elements=_CACHE_ELEMENTS)
