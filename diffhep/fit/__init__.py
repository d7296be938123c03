"""Fits by gradient descent: α_s(M_Z) from e+e- event shapes (`fit_alphas`)."""

from ._alphas import (
    FitResult as FitResult,
    Target as Target,
    fit_alphas as fit_alphas,
    make_templates as make_templates,
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
from ._mtop import (
    MT_RANGE as MT_RANGE,
    MtopConfig as MtopConfig,
    MtopLikelihood as MtopLikelihood,
    MtopResult as MtopResult,
    PseudoData as PseudoData,
    fit_mtop as fit_mtop,
    generate_pseudo_data as generate_pseudo_data,
    model_sigma as model_sigma,
    pythia_pseudo_data as pythia_pseudo_data,
    reconstruct_mbjj as reconstruct_mbjj,
    run_fit_mtop as run_fit_mtop,
)
