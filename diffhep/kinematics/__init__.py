"""Pure four-vector kinematics on ``(..., 4)`` arrays ``(E, px, py, pz)`` in GeV.

Metric ``(+,-,-,-)``. Every function is differentiable and NaN-free in value and
gradient at massless, collinear and zero-momentum points.
"""

from ._fourvec import (
    RAPIDITY_CAP as RAPIDITY_CAP,
    cos_angle as cos_angle,
    delta_phi as delta_phi,
    delta_r as delta_r,
    dot as dot,
    eta as eta,
    from_ptetaphim as from_ptetaphim,
    mass as mass,
    mass2 as mass2,
    masked_sum as masked_sum,
    p3_abs as p3_abs,
    phi as phi,
    pt as pt,
    rapidity as rapidity,
)
from ._lorentz import (
    boost as boost,
    boost_along_axis as boost_along_axis,
    boost_from_rest_frame as boost_from_rest_frame,
    boost_to_rest_frame as boost_to_rest_frame,
    rotate as rotate,
    rotation_matrix as rotation_matrix,
    rotation_to_z as rotation_to_z,
)
