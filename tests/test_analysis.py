"""The differentiable analysis layer against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from diffhep import design


@pytest.mark.parametrize("s,b", [(10.0, 100.0), (50.0, 5.0), (3.0, 0.5)])
def test_one_bin_signal_strength(s, b):
    # ν(μ) = μ s + b: the Hessian of the Asimov −ln L gives σ_μ = sqrt(s + b)/s.
    fisher = design.fisher_information(lambda t: t[0] * jnp.array([s]) + b, jnp.array([1.0]))
    sigma = design.expected_uncertainty(fisher)[0]
    np.testing.assert_allclose(sigma, np.sqrt(s + b) / s, rtol=1e-12)


def test_fisher_hessian_equals_jacobian_form(key):
    s = jnp.array([3.0, 7.0, 2.0])
    b = jnp.array([20.0, 9.0, 4.0])
    shape = jnp.array([0.5, -0.2, 0.3])

    def nu(t):
        return t[0] * s + b * (1.0 + t[1] * shape)

    t0 = jnp.array([1.0, 0.0])
    f_h = design.fisher_information(nu, t0)
    f_j = design.fisher_from_jacobian(nu(t0), jax.jacfwd(nu)(t0))
    np.testing.assert_allclose(f_h, f_j, rtol=1e-12)
    # profiled uncertainty ≥ the one with the nuisance fixed
    assert design.expected_uncertainty(f_h)[0] >= 1.0 / np.sqrt(f_h[0, 0])


@pytest.mark.parametrize("s,b", [(10.0, 100.0), (5.0, 1.0), (1e-3, 10.0)])
def test_asimov_significance(s, b):
    ref = np.sqrt(2.0 * ((s + b) * np.log1p(s / b) - s))
    np.testing.assert_allclose(design.asimov_significance(s, b), ref, rtol=1e-7)
    np.testing.assert_allclose(design.asimov_significance_lr(jnp.array([s]), jnp.array([b])), ref, rtol=1e-5)
    # s ≪ b: Z → s/sqrt(b)
    if s / b < 1e-3:
        np.testing.assert_allclose(design.asimov_significance(s, b), s / np.sqrt(b), rtol=1e-3)


def test_asimov_grads():
    check_grads(design.asimov_significance, (jnp.array([4.0, 2.0]), jnp.array([10.0, 3.0])), order=2, modes=("fwd", "rev"))
    check_grads(
        lambda s: design.expected_uncertainty(design.fisher_information(lambda t: t[0] * s + 10.0, jnp.ones(1))),
        (jnp.array([4.0, 2.0]),),
        order=1,
        modes=("fwd", "rev"),
    )


def test_soft_limits_are_hard(rng):
    x = rng.normal(size=500)
    edges = np.linspace(-2.0, 2.0, 9)
    hard = np.histogram(x, edges)[0]
    # no entry within 1e-3 of an edge, so h = 1e-5 is the hard limit to round-off
    x = x[np.min(np.abs(x[:, None] - edges[None, :]), axis=1) > 1e-3]
    hard = np.histogram(x, edges)[0]
    np.testing.assert_allclose(design.soft_histogram(jnp.asarray(x), jnp.asarray(edges), 1e-5), hard, atol=1e-9)
    cut = design.sigmoid_cut(jnp.asarray(x), 0.3, 1e-6)
    np.testing.assert_allclose(cut, (x > 0.3).astype(float), atol=1e-9)
    below = design.sigmoid_cut(jnp.asarray(x), 0.3, 1e-6, above=False)
    np.testing.assert_allclose(below, (x < 0.3).astype(float), atol=1e-9)
    # finite slopes: the selected count converges monotonically to the hard one
    diffs = [float(jnp.abs(jnp.sum(design.sigmoid_cut(jnp.asarray(x), 0.3, h)) - np.sum(x > 0.3))) for h in (0.3, 0.1, 0.01)]
    assert diffs[2] < diffs[0]


def test_poisson_log_likelihood_grads():
    n = jnp.array([3.0, 0.0, 7.5])
    check_grads(lambda nu: design.poisson_log_likelihood(n, nu), (jnp.array([2.0, 0.5, 6.0]),), order=2, modes=("fwd", "rev"))
    # the maximum is at ν = n (where n > 0)
    g = jax.grad(lambda nu: design.poisson_log_likelihood(n, nu))(jnp.array([3.0, 1.0, 7.5]))
    np.testing.assert_allclose(g, [0.0, -1.0, 0.0], atol=1e-12)
