"""Detector design by gradient descent through shower → detector → analysis (WIP)."""

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
