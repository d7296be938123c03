"""diffhep: differentiable high-energy physics in JAX.

Importing diffhep changes no JAX configuration. Enable float64 yourself with
``jax.config.update("jax_enable_x64", True)`` where precision matters.
"""

from . import (
    design as design,
    detector as detector,
    fit as fit,
    io as io,
    kinematics as kinematics,
    me as me,
    observables as observables,
    pdf as pdf,
    phasespace as phasespace,
    shower as shower,
)
from ._events import Events as Events
from ._version import __version__ as __version__
