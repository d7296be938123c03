"""RAMBO on diet: an invertible n-body phase-space map with 3n − 4 uniforms
(S. Plätzer, arXiv:1308.2922).

The n-body phase space is factorised into a chain of two-body decays

    P = Q_1 → p_1 + Q_2,  Q_2 → p_2 + Q_3,  …,  Q_{n−1} → p_{n−1} + p_n,

    dΦ_n = ∏_{i=2}^{n} dΦ_2(Q_{i−1}; p_{i−1}, Q_i) ∏_{i=2}^{n−1} dM_i²/(2π),

(normalisation of `diffhep.phasespace`). The intermediate masses are written as
M_i = K_i + Σ_{j≥i} m_j with K_1 = √s − Σ m_j and K_i = u_i K_{i−1}, where u_i
solves

    (k+1) u^{2k} − k u^{2(k+1)} = r_i,   k = n − i,

for a uniform r_i: this is the cumulative distribution of M_i/M_{i−1} for
massless particles, so that the massless weight is constant and equal to the
RAMBO volume. For massive particles the weight is the exact Jacobian of the
same map and varies from point to point. Each decay takes two uniforms,
cosθ = 2u − 1 and φ = 2π u′, in the rest frame of Q_{i−1}, reached from the
lab by a pure boost.

Layout of `u` (length 3n − 4): `u[:n-2]` are r_2 … r_{n−1}; `u[n-2:]` are the
(cosθ, φ) pairs of the n − 1 decays, in chain order.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._common import TWO_PI, angles_to_uniforms, check_count, direction, from_rest_frame, lift, to_rest_frame, two_body_momentum
from ._rambo import _check_physical

#: Bisection steps for the mass-ratio equation: 2^-64 brackets the root at
#: float64 resolution for any r in [0, 1].
N_BISECT = 64


def _cdf(u: Array, k: Array) -> Array:
    """(k+1) u^{2k} − k u^{2(k+1)}: the CDF of the mass ratio M_i/M_{i−1} (massless)."""
    u2k = u ** (2 * k)
    return (k + 1) * u2k - k * u2k * u * u


def _cdf_prime(u: Array, k: Array) -> Array:
    return 2 * k * (k + 1) * u ** (2 * k - 1) * (1.0 - u) * (1.0 + u)


def _solve_ratio(r: Array, k: Array) -> Array:
    """u with `_cdf(u, k) = r`, elementwise, differentiable in r.

    Bisection (monotone CDF, guaranteed bracket) without gradient, then one
    Newton step with gradient: at the root its derivative is 1/CDF′(u), the
    implicit-function derivative du/dr.
    """
    r_sg = jax.lax.stop_gradient(r)

    def step(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        below = _cdf(mid, k) < r_sg
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, N_BISECT, step, (jnp.zeros_like(r_sg), jnp.ones_like(r_sg)))
    u_star = 0.5 * (lo + hi)
    d = _cdf_prime(u_star, k)
    ok = d > 0
    return u_star - jnp.where(ok, (_cdf(u_star, k) - r) / jnp.where(ok, d, 1.0), 0.0)


def _diet_kernel(u: Array, sqrt_s: Array, masses: Array) -> tuple[Array, Array]:
    n = masses.shape[0]
    r = u[: n - 2]
    ang = u[n - 2 :].reshape(n - 1, 2)
    tail = jnp.cumsum(masses[::-1])[::-1]  # tail[j] = Σ_{l≥j} m_l (0-based)
    k = jnp.arange(n - 2, 0, -1)  # k = n − i for i = 2 … n−1
    ratio = _solve_ratio(r, k)
    k1 = sqrt_s - tail[0]
    kk = k1 * jnp.concatenate([jnp.ones((1,), dtype=u.dtype), jnp.cumprod(ratio)])  # K_1 … K_{n−1}
    big_m = jnp.concatenate([kk + tail[: n - 1], masses[n - 1 :]])  # M_1 = √s, …, M_{n−1}, M_n = m_n
    big_m = big_m.at[0].set(sqrt_s)  # exact, not √s − Σm + Σm

    # Weight: ∏ two-body factors |q|/(4π M_{i−1}) × ∏ (1/2π) dM_i²/dr_i, with
    # dM_i² = 2 M_i dK_i and dK_i/dr_i = K_{i−1}/CDF′(u_i) (triangular Jacobian).
    q = two_body_momentum(big_m[:-1], masses[:-1], big_m[1:])
    w_decays = jnp.prod(q / (2.0 * TWO_PI * big_m[:-1]))
    w_masses = jnp.prod(2.0 * big_m[1 : n - 1] * kk[:-1] / _cdf_prime(ratio, k) / TWO_PI)

    # Sequential decays, boosted from each parent's rest frame to the lab. The loop
    # runs over the n − 1 decays of one event (static n), not over events.
    parent = jnp.zeros((4,), dtype=u.dtype).at[0].set(sqrt_s)
    out = []
    for i in range(n - 1):
        nhat = direction(2.0 * ang[i, 0] - 1.0, TWO_PI * ang[i, 1])
        e_d = jnp.sqrt(q[i] ** 2 + masses[i] ** 2)
        e_c = jnp.sqrt(q[i] ** 2 + big_m[i + 1] ** 2)
        rest = jnp.stack([jnp.concatenate([e_d[None], q[i] * nhat]), jnp.concatenate([e_c[None], -q[i] * nhat])])
        lab = from_rest_frame(rest, parent, big_m[i])
        out.append(lab[0])
        parent = lab[1]
    out.append(parent)
    physical = tail[0] < sqrt_s
    return jnp.stack(out), jnp.where(physical, w_decays * w_masses, 0.0)


def rambo_diet(
    u: Float[ArrayLike, "*#b d"], sqrt_s: Float[ArrayLike, "*#b"], masses: Float[ArrayLike, "*#b n"]
) -> tuple[Float[Array, "*batch n 4"], Float[Array, "*batch"]]:
    """RAMBO on diet (Plätzer, arXiv:1308.2922): an invertible map from 3n − 4
    uniforms to n momenta in the centre-of-mass frame.

    See the module docstring for the construction and the layout of `u`. For
    massless particles the weight is the constant RAMBO volume
    (2π)^(4−3n) (π/2)^(n−1) s^(n−2)/((n−1)!(n−2)!); for massive ones it is the
    exact Jacobian |∂Φ/∂u| of the map, in the normalisation
    dΦ_n = (2π)⁴ δ⁴(P − Σp) ∏ d³p/((2π)³ 2E). `rambo_diet_inverse` inverts it.

    **Arguments:**
    - `u`: `(..., 3n − 4)` uniforms in (0, 1).
    - `sqrt_s`: √s in GeV.
    - `masses`: `(..., n)` outgoing masses in GeV, n ≥ 2.

    **Returns:** `(momenta, weight)`: `(..., n, 4)` momenta `(E, px, py, pz)`
    summing to `(√s, 0, 0, 0)` with exactly the requested masses, and the
    `(...)` weight in GeV^(2n−4) (0 below threshold). Differentiable in `u`,
    `sqrt_s` and `masses`; the mass-ratio equation is solved by bisection with an
    implicit-function gradient. Works under `jit`, `vmap`, `grad`, `jacfwd`.
    """
    masses = jnp.asarray(masses)
    if masses.ndim < 1 or masses.shape[-1] < 2:
        raise ValueError(f"rambo_diet: masses must have shape (..., n) with n >= 2; got shape {masses.shape}")
    n = masses.shape[-1]
    check_count("rambo_diet", u, 3 * n - 4, f"3n - 4 uniforms for n = {n} particles")
    _check_physical("rambo_diet", sqrt_s, masses)
    return lift(_diet_kernel, (u, sqrt_s, masses), (1, 0, 1))


def _diet_inverse_kernel(p: Array, masses: Array) -> tuple[Array, Array]:
    n = masses.shape[0]
    tail = jnp.cumsum(masses[::-1])[::-1]
    cluster = jnp.cumsum(p[::-1], axis=0)[::-1]  # Q_i = Σ_{j≥i} p_j, Q_1 = P
    m2 = cluster[:, 0] ** 2 - jnp.sum(cluster[:, 1:] ** 2, axis=-1)
    big_m = jnp.sqrt(m2[: n - 1])  # M_1 … M_{n−1}
    kk = big_m - tail[: n - 1]
    ratio = kk[1:] / kk[:-1]
    k = jnp.arange(n - 2, 0, -1)
    r = _cdf(ratio, k)
    angles = []
    for i in range(n - 1):
        angles.append(angles_to_uniforms(to_rest_frame(p[i], cluster[i], big_m[i])[1:]))
    u = jnp.concatenate([r, jnp.concatenate(angles)])
    _, weight = _diet_kernel(u, big_m[0], masses)
    return u, weight


def rambo_diet_inverse(
    momenta: Float[ArrayLike, "*#b n 4"], masses: Float[ArrayLike, "*#b n"]
) -> tuple[Float[Array, "*batch d"], Float[Array, "*batch"]]:
    """Inverse of `rambo_diet`: the uniforms that generate `momenta`, and their weight.

    **Arguments:**
    - `momenta`: `(..., n, 4)` momenta in GeV in their centre-of-mass frame.
    - `masses`: `(..., n)` their masses in GeV (passed explicitly so that the
      mass-ratio variables do not suffer from recomputed-mass rounding).

    **Returns:** `(u, weight)`: `(..., 3n − 4)` uniforms and the weight that
    `rambo_diet(u, √s, masses)` gives, with √s the invariant mass of the sum.
    Differentiable in `momenta` and `masses`.
    """
    momenta = jnp.asarray(momenta)
    masses = jnp.asarray(masses)
    if masses.ndim < 1 or masses.shape[-1] < 2 or momenta.shape[-2:] != (masses.shape[-1], 4):
        raise ValueError(
            f"rambo_diet_inverse: need momenta (..., n, 4) and masses (..., n) with n >= 2; "
            f"got {momenta.shape} and {masses.shape}"
        )
    return lift(_diet_inverse_kernel, (momenta, masses), (2, 1))
