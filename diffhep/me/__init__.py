"""Differentiable tree-level matrix elements: a JAX port of MadGraph's HELAS/ALOHA.

- `SMParameters`: the MG5 ``sm`` model parameters (a PyTree; derived couplings
  computed differentiably from the param-card inputs).
- `matrix_element(process, momenta, params)`: |M|² in MadGraph's normalisation.
- `processes()`: the supported ``generate`` strings.
- HELAS wavefunctions (`ixxxxx`, `oxxxxx`, `vxxxxx`, `sxxxxx`) and ALOHA vertices
  for building new processes.

Momenta are ``(E, px, py, pz)`` in GeV with metric ``(+,-,-,-)``.
"""

from ._api import get_process as get_process, matrix_element as matrix_element, processes as processes
from ._helas import (
    FFV1_0 as FFV1_0,
    FFV1_1 as FFV1_1,
    FFV1_2 as FFV1_2,
    FFV1P0_3 as FFV1P0_3,
    FFV2_0 as FFV2_0,
    FFV2_3 as FFV2_3,
    FFV2_4_0 as FFV2_4_0,
    FFV2_4_3 as FFV2_4_3,
    FFV4_0 as FFV4_0,
    VVV1_0 as VVV1_0,
    VVV1P0_1 as VVV1P0_1,
    VVVV1_0 as VVVV1_0,
    VVVV1P0_1 as VVVV1P0_1,
    VVVV3_0 as VVVV3_0,
    VVVV3P0_1 as VVVV3P0_1,
    VVVV4_0 as VVVV4_0,
    VVVV4P0_1 as VVVV4P0_1,
    ixxxxx as ixxxxx,
    oxxxxx as oxxxxx,
    sxxxxx as sxxxxx,
    vxxxxx as vxxxxx,
)
from ._params import SMParameters as SMParameters, read_param_card as read_param_card
from ._process import Process as Process, parse_process as parse_process
