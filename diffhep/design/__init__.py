"""Detector design by gradient descent through shower → detector → analysis.

**Analysis layer.** `soft_histogram` (the foundation's), `sigmoid_cut`, the binned
Poisson `poisson_log_likelihood`, `fisher_information` (`jax.hessian` of the Asimov
−ln L) and its Jacobian form `fisher_from_jacobian`, `expected_uncertainty`
(Cramér–Rao) and `asimov_significance` (Cowan et al. 2011).

**Objectives** (`DesignProblem.objective`, all in %, plus `cost_weight` ×
`detector.cost`):
- `alphas` (default): 100 σ(α_s)/α_s from the shape of a detector-level τ = 1 − T
  histogram of `n_data` produced events (N_sel of them pass a soft visible-energy
  selection, so acceptance losses cost statistics). A Monte Carlo sample is showered
  at α_s = 0.118 with its discrete content fixed (`shower.layout`); its tangent
  d(momenta, weights)/dα_s comes from `jax.jvp` of `shower.realize`; ν_b and dν_b/dα_s
  then come from one `jax.jvp` through detector → thrust → soft histogram. The
  normalisation is profiled (I = dνᵀ[diag(1/ν) − 11ᵀ/Σν]dν) and the Monte Carlo
  noise term of dν is subtracted; σ = I^(−1/2). `jax.grad` of that with respect to
  the design is reverse-over-forward AD.
- `jer`: the RMS of E_reco/E_true − 1 of the two thrust hemispheres (a "jet energy
  resolution", bias from acceptance losses included).

**Loop** (`optimize`): Adam on u with θ = low + (high − low) σ(u) (box by
reparameterisation); a fresh sample per step, the same sample for value and gradient
(common random numbers within a step); orbax checkpoints every N steps and resume;
the optimum is the mean of the last 5 iterates. `grid_scan` is the brute-force check,
`gradient_check` compares AD with central finite differences on one sample.
`run_optimize_detector` evaluates the grid and the gradient optimum on one common
evaluation sample of 4× the events of a step.
A *simulator call* is one evaluation of detector + thrust + histogram + likelihood on
one sample of `n_events` showered events (value, or value and gradient).
"""

from ._analysis import (
    asimov_nll as asimov_nll,
    asimov_significance as asimov_significance,
    asimov_significance_lr as asimov_significance_lr,
    expected_uncertainty as expected_uncertainty,
    fisher_from_jacobian as fisher_from_jacobian,
    fisher_information as fisher_information,
    poisson_log_likelihood as poisson_log_likelihood,
    sigmoid_cut as sigmoid_cut,
    soft_histogram as soft_histogram,
)
from ._objective import (
    OBJECTIVES as OBJECTIVES,
    DesignProblem as DesignProblem,
    Sample as Sample,
    alphas_uncertainty as alphas_uncertainty,
    draw_sample as draw_sample,
    hemisphere_energy_resolution as hemisphere_energy_resolution,
    objective as objective,
)
from ._loop import (
    DesignResult as DesignResult,
    evaluate as evaluate,
    gradient_check as gradient_check,
    grid_scan as grid_scan,
    optimize as optimize,
)
from ._cli import run_optimize_detector as run_optimize_detector
