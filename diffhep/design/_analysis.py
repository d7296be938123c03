"""A differentiable binned analysis: soft histograms, sigmoid cuts, the binned Poisson
likelihood, Fisher information and Asimov significance.

The expected-uncertainty machinery follows neos / INFERNO (arXiv:2203.05570,
arXiv:1806.04743): the Fisher information of the Asimov data set is the Hessian of
−ln L at the truth, and its inverse bounds the variance of any unbiased estimator.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln
from jaxtyping import Array, ArrayLike, Float

from .._precision import FULL
from .._safe import safe_div, safe_log, safe_sqrt
from ..observables import soft_histogram as soft_histogram


def sigmoid_cut(
    x: Float[ArrayLike, "*b"], cut: Float[ArrayLike, ""], slope: float | Float[ArrayLike, ""], *, above: bool = True
) -> Float[Array, "*b"]:
    """Soft selection weight of `x > cut` (or `x < cut` with `above=False`):
    σ(±(x − cut)/slope), in the units of `x`. Tends to the hard cut (½ on it) as
    slope → 0. Differentiable in `x` and `cut`."""
    d = jnp.asarray(x) - jnp.asarray(cut)
    return jax.nn.sigmoid((d if above else -d) / slope)


def poisson_log_likelihood(counts: Float[ArrayLike, " b"], expected: Float[ArrayLike, " b"]) -> Float[Array, ""]:
    """Binned Poisson ln L = Σ_b [n_b ln ν_b − ν_b − ln Γ(n_b + 1)] (non-integer n allowed,
    as for Asimov data). Bins with ν = 0 contribute 0 if n = 0 (safe log).
    Differentiable in `expected`."""
    n = jnp.asarray(counts)
    nu = jnp.asarray(expected)
    return jnp.sum(jnp.where(n > 0, n * safe_log(nu), 0.0) - nu - gammaln(n + 1.0))


def asimov_nll(
    expected_fn: Callable[[Array], Array], theta: Float[ArrayLike, " p"], theta0: Float[ArrayLike, " p"]
) -> Float[Array, ""]:
    """−ln L(θ) for the Asimov data n = ν(θ0). Derivatives in `theta` hold n fixed;
    derivatives in whatever `expected_fn` closes over move n with ν(θ0), as the
    expected-information of a design must."""
    n = expected_fn(jnp.asarray(theta0))
    return -poisson_log_likelihood(n, expected_fn(jnp.asarray(theta)))


def fisher_information(expected_fn: Callable[[Array], Array], theta0: Float[ArrayLike, " p"]) -> Float[Array, "p p"]:
    """Fisher information of the binned Poisson likelihood at `theta0`:
    `jax.hessian` of the Asimov −ln L, which equals Σ_b ∂ν_b ∂ν_bᵀ / ν_b.

    **Arguments:** `expected_fn` maps `(p,)` parameters to `(b,)` expected counts;
    `theta0` the true parameters. **Returns:** `(p, p)`. Differentiable in anything
    `expected_fn` closes over (e.g. a detector design)."""
    theta0 = jnp.asarray(theta0)
    return jax.hessian(lambda t: asimov_nll(expected_fn, t, theta0))(theta0)


def fisher_from_jacobian(expected: Float[ArrayLike, " b"], jacobian: Float[ArrayLike, "b p"]) -> Float[Array, "p p"]:
    """Σ_b J_b J_bᵀ / ν_b from expected counts and their Jacobian (e.g. from `jax.jvp`);
    the same as `fisher_information` without a second derivative. Empty bins (ν = 0)
    contribute 0."""
    nu = jnp.asarray(expected)
    jac = jnp.asarray(jacobian)
    inv = safe_div(1.0, nu)
    return jnp.einsum("bi,b,bj->ij", jac, inv, jac, precision=FULL)


def expected_uncertainty(fisher: Float[ArrayLike, "p p"]) -> Float[Array, " p"]:
    """Cramér–Rao uncertainties sqrt(diag F⁻¹) (profiling the other parameters)."""
    return safe_sqrt(jnp.diag(jnp.linalg.inv(jnp.asarray(fisher))))


def asimov_significance(s: Float[ArrayLike, "*b"], b: Float[ArrayLike, "*b"]) -> Float[Array, ""]:
    """Median discovery significance for signal `s` over background `b` counts, summed
    over bins in quadrature: Z_A = sqrt(2 Σ[(s + b) ln(1 + s/b) − s]) (Cowan, Cranmer,
    Gross, Vitells, Eur. Phys. J. C 71 (2011) 1554). Differentiable in `s`, `b`."""
    s = jnp.asarray(s)
    b = jnp.asarray(b)
    q0 = 2.0 * jnp.sum((s + b) * jnp.log1p(safe_div(s, b)) - s)
    return safe_sqrt(q0)


def asimov_significance_lr(s: Float[ArrayLike, " b"], b: Float[ArrayLike, " b"]) -> Float[Array, ""]:
    """The same significance from the likelihood ratio itself: sqrt(2[ln L(μ=1) −
    ln L(μ=0)]) on the Asimov data n = s + b (the check of `asimov_significance`)."""
    s = jnp.asarray(s)
    b = jnp.asarray(b)
    n = s + b
    return safe_sqrt(2.0 * (poisson_log_likelihood(n, s + b) - poisson_log_likelihood(n, b)))
