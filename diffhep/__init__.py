"""diffhep: differentiable high-energy physics in JAX.

Importing diffhep changes no JAX configuration. Enable float64 yourself with
``jax.config.update("jax_enable_x64", True)`` where precision matters.
"""

from . import kinematics as kinematics, observables as observables
from ._events import Events as Events
from ._version import __version__ as __version__
