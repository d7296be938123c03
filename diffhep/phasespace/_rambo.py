"""RAMBO: flat n-body phase space (Kleiss, Stirling, Ellis, Comput. Phys. Commun. 40 (1986) 359).

Phase-space normalisation used throughout `diffhep.phasespace`:

    dΦ_n(P; p_1..p_n) = (2π)⁴ δ⁴(P − Σ p_i) ∏_i d³p_i / ((2π)³ 2E_i),

so that ∫ dΦ_2 = 1/(8π) for two massless particles and a cross section is
σ = (1/flux) ∫ |M|² dΦ_n. Every generator returns a weight w(u) such that
∫ f dΦ_n = ∫_{[0,1]^d} f(p(u)) w(u) du.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._common import TWO_PI, check_count, is_concrete, lift
from .._precision import FULL

#: Newton iterations for the massive rescaling factor ξ. Newton converges
#: quadratically and monotonically after the first step (Σ√(m²+ξ²p²) is convex in
#: ξ), so this fixed count reaches machine precision for any physical point.
N_NEWTON = 30


def massless_volume(n: int, sqrt_s: Float[ArrayLike, "*b"]) -> Float[Array, "*b"]:
    """Volume of massless n-body phase space in the normalisation of this module:

        Φ_n = (2π)^(4−3n) (π/2)^(n−1) s^(n−2) / ((n−1)! (n−2)!),

    in GeV^(2n−4). `n ≥ 2`. Differentiable in `sqrt_s` (GeV).
    """
    if n < 2:
        raise ValueError(f"massless_volume needs n >= 2 particles, got n = {n}")
    s = jnp.asarray(sqrt_s) ** 2
    c = (2 * math.pi) ** (4 - 3 * n) * (math.pi / 2) ** (n - 1) / (math.factorial(n - 1) * math.factorial(n - 2))
    return c * s ** (n - 2)


def _rambo_kernel(u: Array, sqrt_s: Array, masses: Array) -> tuple[Array, Array]:
    n = masses.shape[0]
    r = u.reshape(n, 4)
    # Step 1: n independent massless momenta with isotropic directions and
    # energies distributed as q0 e^{-q0} (the product of two uniforms).
    cos_t = 2.0 * r[:, 0] - 1.0
    phi = TWO_PI * r[:, 1]
    q0 = -jnp.log(r[:, 2] * r[:, 3])
    sin_t = jnp.sqrt(jnp.maximum((1.0 - cos_t) * (1.0 + cos_t), 0.0))
    q3 = q0[:, None] * jnp.stack([sin_t * jnp.cos(phi), sin_t * jnp.sin(phi), cos_t], axis=-1)
    # Step 2: the conformal transformation (boost + scaling) that takes their sum
    # to (sqrt_s, 0, 0, 0); RAMBO's weight is then a constant.
    big_q0 = jnp.sum(q0)
    big_q3 = jnp.sum(q3, axis=0)
    big_m = jnp.sqrt(big_q0**2 - jnp.sum(big_q3**2))
    b = -big_q3 / big_m
    x = sqrt_s / big_m
    gamma = big_q0 / big_m
    a = 1.0 / (1.0 + gamma)
    bq = jnp.matmul(q3, b, precision=FULL)
    p0 = x * (gamma * q0 + bq)
    p3 = x * (q3 + b[None, :] * q0[:, None] + (a * bq)[:, None] * b[None, :])
    w0 = massless_volume(n, sqrt_s)

    # Step 3 (massive): rescale three-momenta by the ξ solving Σ√(m²+ξ²|p|²) = √s.
    # Fixed Newton iterations without gradient, then one Newton step *with*
    # gradient: at the root that step has derivative −(∂F/∂θ)/(∂F/∂ξ), the
    # implicit-function gradient with respect to the masses and √s.
    def residual(xi, m, e, rs):
        k0 = jnp.sqrt(m * m + (xi * e) ** 2)
        return jnp.sum(k0) - rs, xi * jnp.sum(e * e / k0)

    m_sg, p0_sg, rs_sg = jax.lax.stop_gradient((masses, p0, sqrt_s))
    xi0 = jnp.sqrt(jnp.maximum(1.0 - (jnp.sum(m_sg) / rs_sg) ** 2, 0.0))

    def newton(_, xi):
        f, df = residual(xi, m_sg, p0_sg, rs_sg)
        return jnp.clip(xi - f / df, 0.0, 1.0)

    xi_star = jax.lax.fori_loop(0, N_NEWTON, newton, xi0)
    f, df = residual(xi_star, masses, p0, sqrt_s)
    xi = xi_star - f / df

    kabs = xi * p0  # |k_i|; p0 = |p_i| for the massless momenta
    k0 = jnp.sqrt(masses**2 + kabs**2)
    k3 = xi * p3
    # Kleiss–Stirling–Ellis massive weight factor relative to the massless volume.
    sum_k = jnp.sum(kabs)
    w_mass = (sum_k / sqrt_s) ** (2 * n - 3) * jnp.prod(kabs / k0) * sqrt_s / jnp.sum(kabs**2 / k0)
    physical = jnp.sum(masses) < sqrt_s
    weight = jnp.where(physical, w0 * w_mass, 0.0)
    return jnp.concatenate([k0[:, None], k3], axis=-1), weight


def rambo(
    u: Float[ArrayLike, "*#b d"], sqrt_s: Float[ArrayLike, "*#b"], masses: Float[ArrayLike, "*#b n"]
) -> tuple[Float[Array, "*batch n 4"], Float[Array, "*batch"]]:
    """RAMBO: map 4n uniforms to n outgoing momenta in the centre-of-mass frame.

    Massless momenta are generated with the algorithm of Kleiss, Stirling and Ellis
    (CPC 40 (1986) 359); their weight is the constant massless volume
    `massless_volume(n, sqrt_s)`. Massive momenta follow by the standard
    rescaling `k⃗ = ξ p⃗`, `k0 = √(m² + ξ²|p⃗|²)` with ξ from Newton's method, and
    the weight is multiplied by (Σ|k|/√s)^(2n−3) ∏(|k_i|/k0_i) √s / Σ(|k_i|²/k0_i).

    The weight is in the normalisation dΦ_n = (2π)⁴ δ⁴(P − Σp) ∏ d³p/((2π)³ 2E)
    (see the module docstring), so E[w f(p)] = ∫ f dΦ_n for `u` uniform on
    [0, 1]^(4n). This map is *not* a bijection (4n → 3n − 4 dimensions): for an
    invertible map use `rambo_diet`.

    **Arguments:**
    - `u`: `(..., 4n)` uniforms in the open interval (0, 1); four per particle.
    - `sqrt_s`: centre-of-mass energy √s in GeV, broadcast against the batch.
    - `masses`: `(..., n)` outgoing masses in GeV (zeros for massless RAMBO);
      n = `masses.shape[-1]` ≥ 2.

    **Returns:** `(momenta, weight)`: `(..., n, 4)` momenta `(E, px, py, pz)` in
    GeV summing to `(√s, 0, 0, 0)`, and the `(...)` weight in GeV^(2n−4). Below
    threshold (Σm ≥ √s) the weight is 0. Differentiable with respect to `u`,
    `sqrt_s` and `masses` (the ξ solve uses the implicit-function theorem); works
    under `jit`, `vmap` and `grad`.

    Raises `ValueError` for a wrong number of uniforms, n < 2, or (for concrete
    values) Σm ≥ √s or a negative mass.
    """
    masses = jnp.asarray(masses)
    if masses.ndim < 1 or masses.shape[-1] < 2:
        raise ValueError(f"rambo: masses must have shape (..., n) with n >= 2; got shape {masses.shape}")
    n = masses.shape[-1]
    check_count("rambo", u, 4 * n, f"4 uniforms for each of n = {n} particles")
    _check_physical("rambo", sqrt_s, masses)
    return lift(_rambo_kernel, (u, sqrt_s, masses), (1, 0, 1))


def _check_physical(name: str, sqrt_s: ArrayLike, masses: ArrayLike) -> None:
    """`ValueError` for negative masses or √s at or below threshold, when the values
    are concrete (checked in NumPy so that no JAX operation is staged under jit)."""
    if not is_concrete(sqrt_s, masses):
        return
    m = np.asarray(masses)
    if np.any(m < 0):
        raise ValueError(f"{name}: masses must be >= 0 GeV, got {m}")
    total = np.sum(m, axis=-1)
    if np.any(total >= np.asarray(sqrt_s)):
        raise ValueError(f"{name}: sqrt_s = {np.asarray(sqrt_s)} GeV is not above the threshold sum(masses) = {total} GeV")
