"""The ALEPH LEP1 event-shape distributions shipped with diffhep.

Source: the Rivet reference data of analysis ``ALEPH_2004_S5765862`` (ALEPH
Collaboration, Eur. Phys. J. C 35 (2004) 457), √s = 91.2 GeV; see
``diffhep/data/README.md``. Normalised hadron-level distributions (charged and
neutral particles), corrected for detector effects and ISR; the errors are the
total experimental ones.
"""

import importlib.resources
import os

from ._yoda import Scatter2D, read_yoda

ALEPH_91GEV_FILE = "ALEPH_2004_91GeV.yoda"

#: YODA path of each distribution at √s = 91.2 GeV, and its x variable.
ALEPH_91GEV_PATHS: dict[str, str] = {
    "thrust": "/REF/ALEPH_2004_S5765862/d54-x01-y01",  # x = T (not 1 − T): 42 bins of 0.01, 0.58–1.00
    "c_parameter": "/REF/ALEPH_2004_S5765862/d86-x01-y01",  # x = C: 50 bins of 0.02, 0–1
    "y23": "/REF/ALEPH_2004_S5765862/d157-x01-y01",  # x = −ln y23 (Durham): 49 bins of 0.2, 1.0–10.8
}
ALEPH_91GEV_X: dict[str, str] = {"thrust": "T", "c_parameter": "C", "y23": "-ln y23"}


def aleph_yoda_path() -> str:
    """File-system path of the shipped ``ALEPH_2004_91GeV.yoda``."""
    return os.fspath(importlib.resources.files("diffhep") / "data" / ALEPH_91GEV_FILE)


def aleph_event_shapes() -> dict[str, Scatter2D]:
    """The ALEPH thrust, C-parameter and Durham y23 distributions at √s = 91.2 GeV.

    **Returns:** a dict with keys
    - ``"thrust"``: `/REF/ALEPH_2004_S5765862/d54-x01-y01`, x = T (thrust itself,
      *not* 1 − T), y = (1/σ) dσ/dT; 42 bins of width 0.01 from 0.58 to 1.00;
    - ``"c_parameter"``: `/REF/ALEPH_2004_S5765862/d86-x01-y01`, x = C,
      y = (1/σ) dσ/dC; 50 bins of width 0.02 from 0 to 1;
    - ``"y23"``: `/REF/ALEPH_2004_S5765862/d157-x01-y01`, x = −ln y23 (Durham),
      y = (1/σ) dσ/d(−ln y23); 49 bins of width 0.2 from 1.0 to 10.8.

    y errors are the total experimental errors as published (symmetric here).
    """
    scatters = read_yoda(aleph_yoda_path())
    return {name: scatters[p] for name, p in ALEPH_91GEV_PATHS.items()}
