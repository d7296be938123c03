"""Real data from any YODA file: `diffhep fit-alphas --data FILE.yoda --histogram PATH --sqrt-s E`.

**What the table must be.** A ``Scatter2D`` (or YODA 2 ``Estimate1D``) of a
normalised hadron-level distribution, (1/σ) dσ/dx per bin, corrected for detector
effects and ISR, with contiguous bins (a Rivet ``/REF`` table or a HEPData YODA
export). y errors are the total experimental ones; asymmetric errors enter as
the larger of the two. A table that integrates to more than `MAX_INTEGRAL` over
its range is not normalised to all events and is refused.

**Which observable** (`--observable thrust|c|y23`): taken from the option, else
from the ``Title`` annotation when it names exactly one of thrust, C-parameter or
y23 (Rivet reference tables often have no title: then the option is required).

**Which x variable** (`--x-variable`, else recognised from the bin range; the
ranges below exclude each other for physical tables):

- thrust: ``T`` if every edge is ≥ 0.5, ``1-T`` if every edge is ≤ 0.5 (T ≥ 1/2
  for massless particles, so 1 − T ≤ 1/2); a range straddling 0.5 is an error.
- c: ``C``; the edges must lie in [0, 1].
- y23: ``y23`` if every edge is in [0, 1] (y23 ≤ 1/3, while −ln y23 ≥ ln 3 ≈ 1.1,
  so a −ln y23 table inside [0, 1] would be empty), ``-ln y23`` if every edge is
  ≥ 0 and the last is above 1, ``ln y23`` if every edge is ≤ 0; a range with both
  signs is an error (log10 tables are not supported: convert them).

The fit works in 1 − T, C and −ln y23. T and ln y23 tables are mirrored (unit
Jacobian); y23 tables are rebinned in −ln y23 with each bin's integral kept (the
density is divided by the new width); a bin with lower edge y23 ≤ 0 has no finite
image and is dropped (it is in the two-jet region, never in a fit range).

**Hadronisation corrections** are generated for the table's own bins at its √s
with Pythia 8 (`_hadronization.cached_corrections`, default and the two
``StringPT:sigma`` variations), and the fit range is the longest run of bins where
all three are moderate (`moderate_mask`), as for the shipped ALEPH tables.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._alphas import Target
from ._template import OBSERVABLES

X_VARIABLES = {"thrust": ("T", "1-T"), "c": ("C",), "y23": ("-ln y23", "y23", "ln y23")}
"""x variables understood per observable (`recognise_x_variable`)."""
FIT_VARIABLES = {"thrust": "1-T", "c": "C", "y23": "-ln y23"}
"""The variable each observable is fitted in (the shower template's)."""
MAX_INTEGRAL = 1.1
"""Largest Σ (1/σ dσ/dx) Δx accepted: a normalised table integrates to ≤ 1 (plus errors)."""
_TITLE_WORDS = {"thrust": ("thrust",), "c": ("c-parameter", "c parameter", "c_parameter"), "y23": ("y23", "y_{23}", "y_23")}


@dataclass(frozen=True)
class DataTable:
    """A YODA distribution converted to the fit variable.

    **Fields:** `observable` (``"thrust"``, ``"c"`` or ``"y23"``), `x_variable` (as
    in the file), `edges` `(n + 1,)` increasing in the fit variable, `density`,
    `density_err` `(n,)` (1/σ dσ/dx in the fit variable), `integral` (Σ density ×
    width over the file's bins), `source` (``file:path``).
    """

    observable: str
    x_variable: str
    edges: np.ndarray
    density: np.ndarray
    density_err: np.ndarray
    integral: float
    source: str


def guess_observable(scatter) -> str | None:
    """The observable named by the ``Title`` annotation, or None if it names none or
    several."""
    title = scatter.title.lower()
    hits = [o for o, words in _TITLE_WORDS.items() if any(w in title for w in words)]
    return hits[0] if len(hits) == 1 else None


def recognise_x_variable(observable: str, edges: np.ndarray) -> str:
    """The x variable of a table of `observable` with bin `edges` (rules in the module
    docs). Raises `ValueError` when the range fits none of them or is ambiguous."""
    e = np.asarray(edges, float)
    lo, hi = float(e[0]), float(e[-1])
    tol = 1e-9
    if observable == "thrust":
        if lo >= 0.5 - tol and hi <= 1.0 + tol:
            return "T"
        if lo >= -tol and hi <= 0.5 + tol:
            return "1-T"
        hint = "T needs edges in [0.5, 1], 1-T edges in [0, 0.5]"
    elif observable == "c":
        if lo >= -tol and hi <= 1.0 + tol:
            return "C"
        hint = "C needs edges in [0, 1]"
    elif observable == "y23":
        if lo >= -tol and hi <= 1.0 + tol:
            return "y23"
        if lo >= -tol:
            return "-ln y23"
        if hi <= tol:
            return "ln y23"
        hint = "y23 needs edges in [0, 1], -ln y23 edges >= 0 reaching above 1, ln y23 edges <= 0"
    else:
        raise ValueError(f"--observable {observable!r} is not one of {', '.join(OBSERVABLES)}")
    raise ValueError(
        f"cannot tell the x variable of this {observable} table from its bin range [{lo:g}, {hi:g}] ({hint}); "
        f"check --observable, or give --x-variable ({' | '.join(X_VARIABLES[observable])})"
    )


def read_data_table(
    path: str | os.PathLike, histogram: str | None, observable: str | None = None, x_variable: str | None = None
) -> DataTable:
    """Read one distribution from a YODA file and convert it to the fit variable.

    **Arguments:**
    - `path`: a ``.yoda`` text file.
    - `histogram`: the YODA path of the object (e.g.
      ``/REF/ALEPH_2004_S5765862/d54-x01-y01``); may be None if the file holds
      exactly one.
    - `observable`: ``"thrust"``, ``"c"`` or ``"y23"``; None to take it from the
      title (see the module docs).
    - `x_variable`: one of `X_VARIABLES[observable]`; None to recognise it from the
      bin range.

    Raises `ValueError` for a missing file, an unknown histogram (listing the paths
    in the file), an unknown observable or x variable, non-contiguous bins, a table
    that is not normalised, or non-finite values (the reader itself reports
    malformed lines as ``file:line``).
    """
    from ..io import read_yoda

    fname = os.fspath(path)
    if not os.path.isfile(fname):
        raise ValueError(f"--data {fname!r}: no such file (give a .yoda file or one of the aleph-* names)")
    scatters = read_yoda(fname)
    if not scatters:
        raise ValueError(f"--data {fname!r}: no Scatter2D or Estimate1D objects in the file")
    if histogram is None:
        if len(scatters) != 1:
            raise ValueError(f"--histogram is required: {fname!r} holds {len(scatters)} objects: {', '.join(scatters)}")
        histogram = next(iter(scatters))
    if histogram not in scatters:
        raise ValueError(f"--histogram {histogram!r} is not in {fname!r}; available: {', '.join(scatters)}")
    sc = scatters[histogram]
    if observable is None:
        observable = guess_observable(sc)
        if observable is None:
            raise ValueError(
                f"cannot tell which observable {histogram!r} is (title {sc.title!r}); give --observable thrust|c|y23"
            )
    if observable not in OBSERVABLES:
        raise ValueError(f"--observable {observable!r} is not one of {', '.join(OBSERVABLES)}")
    edges = np.asarray(sc.edges, float)  # ValueError unless the bins are contiguous
    if x_variable is None:
        x_variable = recognise_x_variable(observable, edges)
    elif x_variable not in X_VARIABLES[observable]:
        raise ValueError(f"--x-variable {x_variable!r} is not one of {', '.join(X_VARIABLES[observable])} for {observable}")
    y = np.asarray(sc.y, float)
    err = np.maximum(np.asarray(sc.y_err_minus, float), np.asarray(sc.y_err_plus, float))
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{histogram!r}: y values must be finite")
    integral = float(np.sum(y * np.diff(edges)))
    if integral > MAX_INTEGRAL:
        raise ValueError(
            f"{histogram!r} integrates to {integral:.4g} over its bins; the fit needs a normalised "
            f"(1/sigma) dsigma/dx, which integrates to at most 1 (accepted up to {MAX_INTEGRAL})"
        )
    if x_variable in ("T", "ln y23"):  # x → −x + const: mirror, unit Jacobian
        edges = (1.0 - edges if x_variable == "T" else -edges)[::-1]
        y, err = y[::-1], err[::-1]
    elif x_variable == "y23":  # rebin in −ln y23, keeping each bin's integral
        k = int(np.searchsorted(edges, 0.0, side="right"))  # first bin with lower edge > 0
        e = edges[k:]
        scale = np.diff(e) / np.diff(np.log(e))  # width in y23 / width in −ln y23
        y, err = (y[k:] * scale)[::-1], (err[k:] * scale)[::-1]
        edges = -np.log(e)[::-1]
    if observable == "y23" and np.any(np.diff(edges) <= 0):
        raise ValueError(f"{histogram!r}: bins are not increasing in -ln y23")
    return DataTable(observable, x_variable, edges, y, err, integral, f"{fname}:{histogram}")


def select_moderate(
    table: DataTable,
    corrections: dict[str, dict],
    *,
    low: float = 0.8,
    high: float = 1.25,
    max_rel_err: float = 0.05,
) -> tuple[int, int]:
    """Bin range `(start, stop)` of the longest contiguous run where every setting's
    correction is moderate (`moderate_mask`) and the data have positive errors.
    Raises `ValueError` if it has fewer than three bins."""
    from ._hadronization import longest_run, moderate_mask

    mask = moderate_mask([(c["factor"], c["factor_err"]) for c in corrections.values()], low, high, max_rel_err)
    mask &= (table.density_err > 0) & np.isfinite(table.density_err) & (table.density > 0)
    start, stop = longest_run(mask)
    if stop - start < 3:
        raise ValueError(
            f"{table.source}: only {stop - start} contiguous bins have a moderate hadronisation correction "
            f"({low} <= c <= {high}, MC error <= {max_rel_err:.0%} in every setting); need 3. "
            "Raise --had-events (or --had-max-rel-err)"
        )
    return start, stop


def data_target(
    table: DataTable, corrections: dict, bins: tuple[int, int], with_correction_mc: bool = True
) -> Target:
    """The `Target` in bins `bins` of `table`, corrected by `corrections` (one
    setting's table), with its MC error added to the data error in quadrature unless
    `with_correction_mc` is False."""
    sl = slice(*bins)
    y, err = table.density[sl], table.density_err[sl]
    c, ce = np.asarray(corrections["factor"])[sl], np.asarray(corrections["factor_err"])[sl]
    if with_correction_mc:
        err = np.hypot(err, y * ce / c)
    return Target(table.observable, table.edges[bins[0] : bins[1] + 1], density=y, density_err=err, correction=c)


def check_sqrt_s(sqrt_s: float) -> float:
    """`sqrt_s` as a float, or `ValueError` naming the allowed range."""
    from ._hadronization import SQRT_S_RANGE

    lo, hi = SQRT_S_RANGE
    if not (isinstance(sqrt_s, (int, float)) and math.isfinite(sqrt_s) and lo <= sqrt_s <= hi):
        raise ValueError(
            f"--sqrt-s={sqrt_s} GeV is outside [{lo:g}, {hi:g}] GeV (Pythia's five-flavour "
            "hadronisation corrections and the shower's cutoff need it)"
        )
    return float(sqrt_s)


def cache_folder(cache: str | os.PathLike | None) -> Path:
    from ._hadronization import default_cache_dir

    return Path(cache) if cache is not None else default_cache_dir()
