"""Hadronic cross sections at leading order: PDFs ⊗ tree-level |M|² ⊗ exact 2 → 2
phase space, integrated by (quasi-)Monte Carlo with common random numbers.

σ(pp → t t̄) = Σ_ab ∫ dx₁ dx₂ f_a(x₁, μ_F) f_b(x₂, μ_F) σ̂_ab(x₁x₂s),
σ̂_ab = 1/(2ŝ) ∫ |M_ab|² dΦ₂, with ab = gg and q q̄ + q̄ q for q = d, u, s, c, b.

**Variables.** Three uniforms per point u = (u_τ, u_y, u_cosθ):
τ = x₁x₂ = τ_min^(1−u_τ) (flat in ln τ, τ_min = 4m_t²/s), y = ½ ln(x₁/x₂) flat in
[½ ln τ, −½ ln τ], and the top's polar angle from `diffhep.phasespace.two_body`
(cosθ = 2u_cosθ − 1 in the partonic CM frame; φ is integrated trivially). The
Jacobian dx₁dx₂ = dτ dy is exact, so the estimate is unbiased for any uniforms and,
with the uniforms fixed, a smooth function of m_t (the τ_min boundary moves with
m_t through the map, so dσ/dm_t includes the threshold).

**Matrix elements.** ``g g > t t~`` and ``u u~ > t t~`` from `diffhep.me`
(MadGraph normalisation). The q q̄ → t t̄ amplitude is flavour blind for massless
incoming quarks, so ``u u~ > t t~`` serves d, s, c and b as well (Pythia also treats
incoming b as massless); q̄ q uses the same amplitude with the beams swapped. The
top width is set to 0 (on-shell tops, no width in the t-channel propagator).

**Couplings.** |M|² ∝ α_s²: the ME is evaluated at α_s = 0.118 and rescaled by
(α_s(μ_R)/0.118)², with α_s(μ_R) from `alpha_s_one_loop`, the running of Pythia's
``SigmaProcess:alphaSorder = 1`` with ``StandardModel:alphaSnfmax = 5``.

**Scales.** ``scale="fixed"``: μ_R = μ_F = `mu` (default m_t, differentiable with
it); ``scale="mT"``: μ_R² = μ_F² = m_T,t m_T,t̄ = p_T² + m_t², Pythia's default
``SigmaProcess:renormScale2 = factorScale2 = 2``.

Units: GeV in, pb out (ħ²c² = 0.3893793721 mb GeV²).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._pdf import ALL_PIDS, PDF

#: GeV⁻² → pb (ħ²c² = 0.3893793721 mb GeV², PDG).
GEV2_TO_PB = 0.3893793721e9

#: Pythia 8's Z mass (``23:m0``), the reference point of its α_s running.
MZ_PYTHIA = 91.188

_REF_ALPHA_S = 0.118
_IG = ALL_PIDS.index(21)
_IQ = tuple(ALL_PIDS.index(q) for q in (1, 2, 3, 4, 5))
_IQBAR = tuple(ALL_PIDS.index(-q) for q in (1, 2, 3, 4, 5))


def alpha_s_one_loop(
    mu: Float[ArrayLike, "*b"], alpha_s_mz: Float[ArrayLike, ""] = 0.118, mz: float = MZ_PYTHIA, nf: int = 5
) -> Float[Array, "*b"]:
    """One-loop α_s(μ) = α_s(M_Z) / (1 + b₀ α_s(M_Z) ln(μ²/M_Z²)), b₀ = (33 − 2n_f)/(12π).

    This is Pythia 8's ``SigmaProcess:alphaSorder = 1`` with a fixed number of
    flavours (``StandardModel:alphaSnfmax = 5`` above m_b). μ in GeV; differentiable
    in `mu` and `alpha_s_mz`.
    """
    b0 = (33.0 - 2.0 * nf) / (12.0 * math.pi)
    mu = jnp.asarray(mu)
    return alpha_s_mz / (1.0 + b0 * alpha_s_mz * jnp.log(mu * mu / (mz * mz)))


def _ttbar_kernel(u: Array, mt: Array, mu_fixed: Array, pdf: PDF, sqrt_s: float, alpha_s_mz, dynamic: bool, params):
    """Integrand × Jacobian of σ(pp → t t̄) at one point `u` (3,), in pb."""
    from ..me import matrix_element
    from ..phasespace import two_body

    s = sqrt_s * sqrt_s
    log_tau_min = jnp.log(4.0 * mt * mt / s)
    log_tau = (1.0 - u[0]) * log_tau_min
    tau = jnp.exp(log_tau)
    y = log_tau * (0.5 - u[1])  # from ½ ln τ to −½ ln τ
    jac = tau * (-log_tau_min) * (-log_tau)
    x1 = jnp.sqrt(tau) * jnp.exp(y)
    x2 = jnp.sqrt(tau) * jnp.exp(-y)
    shat = tau * s
    rs = jnp.sqrt(shat)
    # φ is integrated trivially (the integrand does not depend on it): u_φ = 0.
    final, w2 = two_body(jnp.stack([u[2], jnp.zeros_like(u[2])]), rs, mt, mt)
    half = 0.5 * rs
    zero = jnp.zeros_like(half)
    p1 = jnp.stack([half, zero, zero, half])
    p2 = jnp.stack([half, zero, zero, -half])
    mom = jnp.stack([p1, p2, final[0], final[1]])
    mom_swapped = jnp.stack([p2, p1, final[0], final[1]])
    me_gg = matrix_element("g g > t t~", mom[None], params)[0]
    me_qq = matrix_element("u u~ > t t~", jnp.stack([mom, mom_swapped]), params)
    if dynamic:
        pt2 = final[0, 1] ** 2 + final[0, 2] ** 2
        mu2 = pt2 + mt * mt
    else:
        mu2 = mu_fixed * mu_fixed
    a_s = alpha_s_one_loop(jnp.sqrt(mu2), alpha_s_mz)
    f1 = pdf.xfxQ2_all(x1, mu2) / x1
    f2 = pdf.xfxQ2_all(x2, mu2) / x2
    iq, iqb = jnp.asarray(_IQ), jnp.asarray(_IQBAR)
    lum_qqbar = jnp.sum(f1[iq] * f2[iqb])  # q from beam 1, q̄ from beam 2
    lum_qbarq = jnp.sum(f1[iqb] * f2[iq])
    me = f1[_IG] * f2[_IG] * me_gg + lum_qqbar * me_qq[0] + lum_qbarq * me_qq[1]
    return GEV2_TO_PB * jac * me * (a_s / _REF_ALPHA_S) ** 2 * w2 / (2.0 * shat)


def sigma_pp_ttbar_terms(
    u: Float[ArrayLike, "n d"],
    mt: Float[ArrayLike, ""],
    pdf: PDF,
    *,
    sqrt_s: float = 13000.0,
    scale: str = "fixed",
    mu: Float[ArrayLike, ""] | None = None,
    alpha_s_mz: Float[ArrayLike, ""] = 0.118,
) -> Float[Array, " n"]:
    """Per-point estimates of σ(pp → t t̄) at LO, in pb: their mean is σ.

    See the module docstring for the variables, matrix elements, couplings and
    scales.

    **Arguments:**
    - `u`: `(n, 3)` points in [0, 1)³ (uniform random or quasi-random).
    - `mt`: top mass in GeV (> 0, 2m_t < √s).
    - `pdf`: the proton `PDF` (e.g. ``PDF.load("NNPDF31_lo_as_0118_0000")``).
    - `sqrt_s`: pp centre-of-mass energy in GeV (static).
    - `scale`: ``"fixed"`` (μ_R = μ_F = `mu`, default `mt`) or ``"mT"``
      (μ² = p_T² + m_t², Pythia's default).
    - `alpha_s_mz`: α_s(M_Z) of the one-loop running.

    **Returns:** `(n,)` per-point values in pb. Differentiable in `u`, `mt`, `mu`,
    `alpha_s_mz` and the PDF grid; works under `jit`, `grad`, `jacfwd`.
    """
    from ..me import SMParameters

    if scale not in ("fixed", "mT"):
        raise ValueError(f"scale must be 'fixed' or 'mT', got {scale!r}")
    u = jnp.asarray(u)
    if u.ndim != 2 or u.shape[-1] != 3:
        raise ValueError(f"u must have shape (n, 3); got {u.shape}")
    if not isinstance(mt, jax.core.Tracer):
        m = float(np.asarray(mt))
        if not 0.0 < 2.0 * m < sqrt_s:
            raise ValueError(f"mt = {m} GeV must be positive with 2 mt < sqrt_s = {sqrt_s} GeV")
    dtype = u.dtype
    mt = jnp.asarray(mt, dtype)
    mu_fixed = mt if mu is None else jnp.asarray(mu, dtype)
    params = SMParameters.from_param_card()
    params = _with(params, MT=mt, WT=jnp.zeros((), dtype), aS=jnp.asarray(_REF_ALPHA_S, dtype))
    return _terms(u, mt, mu_fixed, pdf, float(sqrt_s), jnp.asarray(alpha_s_mz, dtype), scale == "mT", params)


@functools.partial(jax.jit, static_argnums=(4, 6))
def _terms(u, mt, mu_fixed, pdf, sqrt_s, alpha_s_mz, dynamic, params):
    # Jitted so that eager calls compile once instead of dispatching op by op.
    kernel = jax.vmap(_ttbar_kernel, in_axes=(0, None, None, None, None, None, None, None))
    return kernel(u, mt, mu_fixed, pdf, sqrt_s, alpha_s_mz, dynamic, params)


def sigma_pp_ttbar(
    u: Float[ArrayLike, "n d"], mt: Float[ArrayLike, ""], pdf: PDF, **kwargs
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """σ(pp → t t̄) at LO in pb and its Monte Carlo standard error (pb).

    The mean of `sigma_pp_ttbar_terms` (same arguments) and its standard error
    std/√n (the error is exact for uniform random `u`, and conservative for
    quasi-random points). Differentiable in `mt` (use the mean).
    """
    terms = sigma_pp_ttbar_terms(u, mt, pdf, **kwargs)
    n = terms.shape[0]
    return jnp.mean(terms), jnp.std(terms) / math.sqrt(n)


def sobol_uniforms(key: PRNGKeyArray | int, n: int, d: int) -> Float[Array, "n d"]:
    """`(n, d)` scrambled Sobol points (scipy.stats.qmc, Owen scrambling) seeded by
    `key`; `n` is rounded up to a power of 2. A randomised QMC set: the mean of an
    integrand over it is unbiased."""
    from scipy.stats import qmc

    seed = int(key) if isinstance(key, int) else int(jax.random.randint(key, (), 0, 2**31 - 1))
    m = max(int(math.ceil(math.log2(max(n, 2)))), 1)
    pts = qmc.Sobol(d, scramble=True, seed=seed).random_base2(m)
    # Keep points off the closed boundary (the maps use ln and arctan of the ends).
    return jnp.asarray(np.clip(pts, 1e-12, 1.0 - 1e-12))


def _with(params, **fields):
    import equinox as eqx

    names = tuple(fields)
    return eqx.tree_at(lambda p: tuple(getattr(p, k) for k in names), params, tuple(fields[k] for k in names))
