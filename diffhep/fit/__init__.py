"""Fits by gradient descent: α_s(M_Z) from e+e- event shapes (`fit_alphas`)."""

from ._alphas import (
    FitResult as FitResult,
    Target as Target,
    fit_alphas as fit_alphas,
    pseudo_data as pseudo_data,
    write_json_atomic as write_json_atomic,
)
from ._plots import plot_fit as plot_fit
from ._template import (
    OBSERVABLES as OBSERVABLES,
    ShowerTemplate as ShowerTemplate,
    event_shape as event_shape,
    poisson_deviance as poisson_deviance,
    poisson_nll as poisson_nll,
)
