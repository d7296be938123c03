"""Resonance-aware phase space for the decay chain g g → t t̄ → (b u d̄)(b̄ d ū).

The six-body phase space is factorised into two-body decays with the four
intermediate masses as integration variables (normalisation of
`diffhep.phasespace`):

    dΦ₆(P; b u d̄ b̄ d ū) = dΦ₂(P; t, t̄) ds_t/2π ds_t̄/2π
                          × dΦ₂(t; b, W⁺) ds_W⁺/2π dΦ₂(W⁺; u, d̄)
                          × dΦ₂(t̄; b̄, W⁻) ds_W⁻/2π dΦ₂(W⁻; d, ū).

Each s is drawn from a fixed-width Breit–Wigner over its full kinematic range with
`bw_map`, in the nested order

    s_t  ∈ [m_b², (√ŝ − m_b)²],   s_t̄ ∈ [m_b², (√ŝ − m_t)²],
    s_W⁺ ∈ [0, (m_t − m_b)²],     s_W⁻ ∈ [0, (m_t̄ − m_b)²]

(m_t, m_t̄ the generated masses), so the map is a bijection of [0, 1)¹⁴ onto the
phase space and the weight |∂Φ/∂u| flattens all four resonance peaks. Each decay
takes (cosθ, φ) = (2u − 1, 2πu′) in the parent's rest frame, reached from the
partonic centre-of-mass frame by a pure boost (as `two_body_decay`). The same
sequence of BW-mapped two-body decays is what MadGraph's (and MadJax's) multichannel
uses for this resonant topology; Plätzer's RAMBO on diet (arXiv:1308.2922) is the
non-resonant counterpart, `rambo_diet`.

Layout of `u` (14 entries, MadJax's 14-dimensional example):
``u[0:4]`` = (s_t, s_t̄, s_W⁺, s_W⁻); ``u[4:6]`` t t̄ in the CM frame (angles of t);
``u[6:8]`` t → b W⁺ (angles of b); ``u[8:10]`` W⁺ → u d̄ (angles of u);
``u[10:12]`` t̄ → b̄ W⁻ (angles of b̄); ``u[12:14]`` W⁻ → d ū (angles of d).
Output order is MadGraph's for ``g g > t t~, t > b u d~, t~ > b~ d u~`` without
the two gluons: (b, u, d̄, b̄, d, ū).
"""

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._common import (
    TWO_PI,
    angles_to_uniforms,
    check_count,
    direction,
    from_rest_frame,
    is_concrete,
    lift,
    to_rest_frame,
    two_body_momentum,
)
from ._twobody import _bw_range

#: Number of uniforms of `ttbar_decay_chain`.
N_CHAIN = 14


def _bw(u, mass, width, smin, smax):
    mw, ymin, ymax = _bw_range(mass, width, smin, smax)
    t = jnp.tan(ymin + u * (ymax - ymin))
    return mass * mass + mw * t, (ymax - ymin) * mw * (1.0 + t * t)


def _bw_inv(s, mass, width, smin, smax):
    mw, ymin, ymax = _bw_range(mass, width, smin, smax)
    return (jnp.arctan((s - mass * mass) / mw) - ymin) / (ymax - ymin)


def _split(u2, parent, m_parent, m1, m2):
    """Two-body decay of `parent` (mass `m_parent`, given) in its rest frame, boosted
    back by a pure boost: daughters (2, 4) and the weight |q|/(4π M)."""
    q = two_body_momentum(m_parent, m1, m2)
    n = direction(2.0 * u2[0] - 1.0, TWO_PI * u2[1])
    e1 = jnp.sqrt(q * q + m1 * m1)
    e2 = jnp.sqrt(q * q + m2 * m2)
    rest = jnp.stack([jnp.concatenate([e1[None], q * n]), jnp.concatenate([e2[None], -q * n])])
    return from_rest_frame(rest, parent, m_parent), q / (2.0 * TWO_PI * m_parent)


def _ranges(sqrt_s, mb, m_t1, m_t2):
    """(smin, smax) of s_t, s_t̄, s_W⁺, s_W⁻; those of s_t̄ and the Ws depend on the
    already generated top masses (nested order)."""
    zero = jnp.zeros_like(sqrt_s)
    return (
        (mb * mb + zero, (sqrt_s - mb) ** 2),
        (mb * mb + zero, (sqrt_s - m_t1) ** 2),
        (zero, (m_t1 - mb) ** 2),
        (zero, (m_t2 - mb) ** 2),
    )


def _chain_kernel(u, sqrt_s, mt, wt, mw, ww, mb):
    zero = jnp.zeros_like(sqrt_s)
    r = _ranges(sqrt_s, mb, zero, zero)
    s_t1, j_t1 = _bw(u[0], mt, wt, *r[0])
    m_t1 = jnp.sqrt(s_t1)
    r = _ranges(sqrt_s, mb, m_t1, zero)
    s_t2, j_t2 = _bw(u[1], mt, wt, *r[1])
    m_t2 = jnp.sqrt(s_t2)
    r = _ranges(sqrt_s, mb, m_t1, m_t2)
    s_w1, j_w1 = _bw(u[2], mw, ww, *r[2])
    s_w2, j_w2 = _bw(u[3], mw, ww, *r[3])
    m_w1, m_w2 = jnp.sqrt(s_w1), jnp.sqrt(s_w2)

    cm = jnp.stack([sqrt_s, zero, zero, zero])
    (t1, t2), w_cm = _split(u[4:6], cm, sqrt_s, m_t1, m_t2)
    (b, w1), w_t1 = _split(u[6:8], t1, m_t1, mb, m_w1)
    (up, dbar), w_w1 = _split(u[8:10], w1, m_w1, zero, zero)
    (bbar, w2), w_t2 = _split(u[10:12], t2, m_t2, mb, m_w2)
    (down, ubar), w_w2 = _split(u[12:14], w2, m_w2, zero, zero)
    momenta = jnp.stack([b, up, dbar, bbar, down, ubar])
    weight = j_t1 * j_t2 * j_w1 * j_w2 / TWO_PI**4 * w_cm * w_t1 * w_w1 * w_t2 * w_w2
    return momenta, jnp.where(sqrt_s > 2.0 * mb, weight, 0.0)


def _check(name, sqrt_s, mt, wt, mw, ww, mb):
    if not is_concrete(sqrt_s, mt, wt, mw, ww, mb):
        return
    for label, v in (("mt", mt), ("mw", mw)):
        if np.any(np.asarray(v) <= 0):
            raise ValueError(f"{name}: {label} must be > 0 GeV, got {np.asarray(v)}")
    for label, v in (("wt", wt), ("ww", ww)):
        if np.any(np.asarray(v) <= 0):
            raise ValueError(f"{name}: width {label} must be > 0 GeV (Breit–Wigner mapping), got {np.asarray(v)}")
    if np.any(np.asarray(mb) < 0):
        raise ValueError(f"{name}: mb must be >= 0 GeV, got {np.asarray(mb)}")
    if sqrt_s is not None and np.any(np.asarray(sqrt_s) <= 2 * np.asarray(mb)):
        raise ValueError(f"{name}: sqrt_s = {np.asarray(sqrt_s)} GeV is not above the threshold 2 mb = {2 * np.asarray(mb)} GeV")


def ttbar_decay_chain(
    u: Float[ArrayLike, "*#b d"],
    sqrt_s: Float[ArrayLike, "*#b"],
    mt: Float[ArrayLike, "*#b"],
    wt: Float[ArrayLike, "*#b"],
    mw: Float[ArrayLike, "*#b"],
    ww: Float[ArrayLike, "*#b"],
    mb: Float[ArrayLike, "*#b"] = 0.0,
) -> tuple[Float[Array, "*batch 6 4"], Float[Array, "*batch"]]:
    """Map 14 uniforms to the six partons of t t̄ → (b u d̄)(b̄ d ū) in the partonic
    centre-of-mass frame, with Breit–Wigner-mapped top and W masses.

    See the module docstring for the factorisation, the nested mass ranges and the
    layout of `u`.

    **Arguments:**
    - `u`: `(..., 14)` uniforms in (0, 1).
    - `sqrt_s`: partonic √ŝ in GeV.
    - `mt`, `wt`: top pole mass and width of the mapping (GeV, > 0).
    - `mw`, `ww`: W pole mass and width (GeV, > 0).
    - `mb`: b-quark mass (GeV, ≥ 0; default massless); u, d quarks are massless.

    **Returns:** `(momenta, weight)`: `(..., 6, 4)` momenta `(E, px, py, pz)` in the
    order (b, u, d̄, b̄, d, ū), summing to `(√ŝ, 0, 0, 0)`, and the `(...)` weight
    |∂Φ₆/∂u| in GeV⁸, so that ∫ f dΦ₆ = ∫_{[0,1]¹⁴} f(p(u)) w(u) du. A bijection
    (inverse: `ttbar_decay_chain_inverse`). Differentiable in `u`, `sqrt_s` and all
    masses and widths; works under `jit`, `vmap`, `grad`, `jacfwd`.

    Raises `ValueError` for a wrong number of uniforms, non-positive masses or
    widths, or √ŝ ≤ 2m_b (concrete values).
    """
    check_count("ttbar_decay_chain", u, N_CHAIN, "4 BW-mapped masses + 5 decays × (cos θ, φ)")
    _check("ttbar_decay_chain", sqrt_s, mt, wt, mw, ww, mb)
    return lift(_chain_kernel, (u, sqrt_s, mt, wt, mw, ww, mb), (1, 0, 0, 0, 0, 0, 0))


def _minkowski_mass2(p):
    return p[0] ** 2 - jnp.sum(p[1:] ** 2)


def _chain_inverse_kernel(p, mt, wt, mw, ww, mb):
    b, up, dbar, bbar, down, ubar = p
    w1, w2 = up + dbar, down + ubar
    t1, t2 = b + w1, bbar + w2
    total = t1 + t2
    sqrt_s = jnp.sqrt(_minkowski_mass2(total))
    s_t1, s_t2 = _minkowski_mass2(t1), _minkowski_mass2(t2)
    s_w1, s_w2 = _minkowski_mass2(w1), _minkowski_mass2(w2)
    m_t1, m_t2, m_w1, m_w2 = jnp.sqrt(s_t1), jnp.sqrt(s_t2), jnp.sqrt(s_w1), jnp.sqrt(s_w2)
    r = _ranges(sqrt_s, mb, m_t1, m_t2)
    u_m = jnp.stack(
        [_bw_inv(s_t1, mt, wt, *r[0]), _bw_inv(s_t2, mt, wt, *r[1]), _bw_inv(s_w1, mw, ww, *r[2]), _bw_inv(s_w2, mw, ww, *r[3])]
    )
    ang = [
        angles_to_uniforms(to_rest_frame(t1, total, sqrt_s)[1:]),
        angles_to_uniforms(to_rest_frame(b, t1, m_t1)[1:]),
        angles_to_uniforms(to_rest_frame(up, w1, m_w1)[1:]),
        angles_to_uniforms(to_rest_frame(bbar, t2, m_t2)[1:]),
        angles_to_uniforms(to_rest_frame(down, w2, m_w2)[1:]),
    ]
    u = jnp.concatenate([u_m] + ang)
    _, weight = _chain_kernel(u, sqrt_s, mt, wt, mw, ww, mb)
    return u, weight


def ttbar_decay_chain_inverse(
    momenta: Float[ArrayLike, "*#b n 4"],
    mt: Float[ArrayLike, "*#b"],
    wt: Float[ArrayLike, "*#b"],
    mw: Float[ArrayLike, "*#b"],
    ww: Float[ArrayLike, "*#b"],
    mb: Float[ArrayLike, "*#b"] = 0.0,
) -> tuple[Float[Array, "*batch 14"], Float[Array, "*batch"]]:
    """Inverse of `ttbar_decay_chain`: the uniforms that generate `momenta`, and
    their weight.

    **Arguments:** `momenta`: `(..., 6, 4)` in the order (b, u, d̄, b̄, d, ū), in
    their centre-of-mass frame (GeV); the mapping parameters as for
    `ttbar_decay_chain`.

    **Returns:** `(u, weight)`: `(..., 14)` uniforms and the weight that
    `ttbar_decay_chain(u, √ŝ, ...)` gives, √ŝ the invariant mass of the sum.
    Differentiable in `momenta` and the parameters.
    """
    momenta = jnp.asarray(momenta)
    if momenta.ndim < 2 or momenta.shape[-2:] != (6, 4):
        raise ValueError(f"ttbar_decay_chain_inverse: momenta must have shape (..., 6, 4); got {momenta.shape}")
    _check("ttbar_decay_chain_inverse", None, mt, wt, mw, ww, mb)
    return lift(_chain_inverse_kernel, (momenta, mt, wt, mw, ww, mb), (2, 0, 0, 0, 0, 0))
