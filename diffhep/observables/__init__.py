"""Event shapes on ``(..., n, 4)`` momenta with a mask, and soft histograms.

All take four-momenta `(E, px, py, pz)` in GeV with an optional `(..., n)` mask
and return one value per event; all are differentiable (see each docstring for
what is exact and where kinks lie). Each is compiled (`jax.jit`, once per input
shape), also when called outside `jit`, e.g. from a notebook: op by op, the exact
thrust of 24 events took 0.75 s, and of 10⁴ events 1.6× the compiled time.
"""

from ._buckets import MultiplicityBuckets as MultiplicityBuckets
from ._durham import durham_y23 as durham_y23
from ._histogram import soft_bin_weights as soft_bin_weights, soft_histogram as soft_histogram
from ._shapes import (
    aplanarity as aplanarity,
    c_parameter as c_parameter,
    jet_broadening as jet_broadening,
    sphericity as sphericity,
)
from ._thrust import thrust as thrust, thrust_and_axis as thrust_and_axis, thrust_axis as thrust_axis
