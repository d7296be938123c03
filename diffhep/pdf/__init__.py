"""Parton distribution functions from LHAPDF6 grids, differentiable in x and Q.

- `PDF`: an equinox Module holding one PDF member's grid; `PDF.load(name_or_path)`
  finds the sets shipped with Pythia 8 (``share/Pythia8/pdfdata``) by name or
  reads any ``lhagrid1`` file. `xfxQ(pid, x, Q)` / `xfxQ2(pid, x, Q²)` evaluate
  x·f with LHAPDF's log-bicubic interpolation; `xfxQ_all` gives all 13 partons.
- `read_lhagrid1`: the file reader (with line-numbered errors).
- `pythia_pdfdata_dir`: where the Pythia 8 sets live.

Scales in GeV. x or Q outside the grid is an error (no extrapolation).
"""

from ._lhagrid import LHAGrid as LHAGrid, Subgrid as Subgrid, read_lhagrid1 as read_lhagrid1
from ._pdf import ALL_PIDS as ALL_PIDS, PDF as PDF, pythia_pdfdata_dir as pythia_pdfdata_dir
from ._hadronic import (
    GEV2_TO_PB as GEV2_TO_PB,
    alpha_s_one_loop as alpha_s_one_loop,
    sigma_pp_ttbar as sigma_pp_ttbar,
    sigma_pp_ttbar_terms as sigma_pp_ttbar_terms,
    sobol_uniforms as sobol_uniforms,
)
