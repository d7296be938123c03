"""jaxtyping aliases shared across diffhep.

Four-momenta are ``(E, px, py, pz)`` in GeV with metric ``(+,-,-,-)``.
"""

from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

FourMomentum = Float[Array, "4"]
FourMomenta = Float[Array, "n 4"]
ThreeVector = Float[Array, "3"]

__all__ = [
    "Array",
    "ArrayLike",
    "Bool",
    "Float",
    "Int",
    "PRNGKeyArray",
    "FourMomentum",
    "FourMomenta",
    "ThreeVector",
]
