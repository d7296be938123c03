"""Differentiable parton distributions from LHAPDF6 grids, interpolated as LHAPDF does.

Interpolation follows LHAPDF 6's default ``logcubic`` interpolator
(``LogBicubicInterpolator.cc`` and ``GridPDF::_computePolynomialCoefficients``):

- in ln x, a cubic Hermite spline on each knot interval, with knot derivatives
  d(xf)/d ln x from the average of the two adjacent finite differences (one-sided
  at the first and last x knot);
- in ln Q², a cubic Hermite spline through the four x-interpolated values at
  Q knots iq−1 … iq+2 of the same subgrid, with derivatives from finite
  differences (central inside, one-sided at a subgrid edge, each scaled to the
  interval width as LHAPDF does); a subgrid with only two Q knots falls back to
  bilinear interpolation in (ln x, ln Q²).

Subgrids (flavour-threshold blocks) are stacked along Q with the boundary knot
repeated, exactly as LHAPDF's ``KnotArray``; a Q on a boundary uses the upper
subgrid. Knot values are reproduced exactly.

Outside the grid we do *not* extrapolate (LHAPDF's ``nearest``/``continuation``
extrapolators): x or Q outside [x_min, x_max] × [Q_min, Q_max] is an error, a
`ValueError` for concrete inputs and an `eqx.error_if` run-time error under jit.
"""

import importlib.metadata
import os
import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from ._lhagrid import read_lhagrid1

#: PDG ids answered by `PDF.xfxQ2_all`, in order: t̄ … d̄, g, d … t (LHAPDF's order).
ALL_PIDS = tuple(range(-6, 0)) + (21,) + tuple(range(1, 7))


def _pid_code(pid):
    """Map a PDG id to a slot 0 … 14: −6 … 6 → 0 … 12 (0 is the gluon, as in
    LHAPDF), 21 → 6 (gluon), 22 → 13 (photon); anything else → 14 (invalid)."""
    pid = jnp.asarray(pid)
    code = jnp.where(jnp.abs(pid) <= 6, pid + 6, 14)
    code = jnp.where(pid == 21, 6, code)
    return jnp.where(pid == 22, 13, code)


def _cubic(t, vl, vdl, vh, vdh):
    """Cubic Hermite polynomial on [0, 1] with end values vl, vh and end slopes
    (per unit t) vdl, vdh; exact at t = 0 and t = 1."""
    t2 = t * t
    t3 = t2 * t
    return (2 * t3 - 3 * t2 + 1) * vl + (t3 - 2 * t2 + t) * vdl + (-2 * t3 + 3 * t2) * vh + (t3 - t2) * vdh


def _safe_den(d):
    # Differences across clipped (repeated) indices are 0 and only ever feed
    # branches that `where` discards; 1 keeps them (and their gradients) finite.
    return jnp.where(d == 0, 1.0, d)


class PDF(eqx.Module):
    """A PDF member on an (x, Q) grid, with LHAPDF-style log-bicubic interpolation.

    Build it with `PDF.load(name_or_path)` (or `PDF.from_lhagrid(path)`). All
    grid arrays are leaves, so the values are differentiable with respect to the
    grid too; shapes and the flavour table are static.

    **Fields:**
    - `logx`: `(n_x,)` ln of the x knots.
    - `logq2`: `(n_q,)` ln of the Q² knots (GeV²) of all subgrids stacked, with
      boundary knots repeated.
    - `xf`: `(n_x, n_q, n_f + 1)` x·f values; the last column is zero and stands
      for partons absent from the set (e.g. the top quark).
    - `columns`: static tuple of 15 column indices for the slots of `_pid_code`.
    - `x_range`, `q_range`: static (min, max) of the grid, x and Q in GeV.
    - `name`: the set's name.
    """

    logx: Float[Array, " nx"]
    logq2: Float[Array, " nq"]
    xf: Float[Array, "nx nq nf"]
    columns: tuple[int, ...] = eqx.field(static=True)
    x_range: tuple[float, float] = eqx.field(static=True)
    q_range: tuple[float, float] = eqx.field(static=True)
    name: str = eqx.field(static=True)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_lhagrid(cls, path: str | os.PathLike, name: str | None = None) -> "PDF":
        """Read an LHAPDF6 ``lhagrid1`` member file (see `read_lhagrid1`)."""
        grid = read_lhagrid1(path)
        sub = grid.subgrids
        xs = sub[0].xs
        qs = np.concatenate([g.qs for g in sub])
        values = np.concatenate([g.xf for g in sub], axis=1)
        pids = [int(p) for p in sub[0].pids]
        n_f = len(pids)
        values = np.concatenate([values, np.zeros(values.shape[:2] + (1,))], axis=-1)
        columns = [n_f] * 15
        for col, pid in enumerate(pids):
            code = int(_pid_code(pid))
            if code == 14:
                raise ValueError(f"{path}: unsupported parton id {pid} (expected -6..6, 21 or 22)")
            columns[code] = col
        return cls(
            logx=jnp.asarray(np.log(xs)),
            # ln(Q·Q) exactly as the queries compute it, so knots give t = 0 exactly.
            logq2=jnp.asarray(np.log(qs * qs)),
            xf=jnp.asarray(values),
            columns=tuple(columns),
            x_range=(float(xs[0]), float(xs[-1])),
            q_range=(float(qs[0]), float(qs[-1])),
            name=name or pathlib.Path(path).stem,
        )

    @classmethod
    def load(cls, name_or_path: str | os.PathLike) -> "PDF":
        """Load a PDF member by file path, or by name from the sets shipped with Pythia 8.

        **Arguments:** `name_or_path`: a path to an ``lhagrid1`` ``.dat`` file, or a
        member name such as ``"NNPDF31_lo_as_0118_0000"`` (``"NNPDF31_lo_as_0118"``
        means member 0), looked up in ``share/Pythia8/pdfdata/`` of the installed
        ``pythia8mc`` package.

        **Returns:** a `PDF`. Raises `FileNotFoundError` listing the available
        names if the set is not found.
        """
        path = pathlib.Path(name_or_path)
        if path.is_file():
            return cls.from_lhagrid(path)
        name = str(name_or_path)
        datadir = pythia_pdfdata_dir()
        for candidate in (name, name + ".dat", name + "_0000.dat"):
            if (datadir / candidate).is_file():
                return cls.from_lhagrid(datadir / candidate, name=pathlib.Path(candidate).stem)
        available = sorted(p.stem for p in datadir.glob("*.dat"))
        raise FileNotFoundError(f"no PDF file or Pythia 8 set named {name!r}; sets in {datadir}: {', '.join(available)}")

    # ------------------------------------------------------------ evaluation
    def _kernel(self, x: Array, q2: Array) -> Array:
        """x·f for every column at one (x, Q²): `(n_f + 1,)`."""
        lx, lq = jnp.log(x), jnp.log(q2)
        logx, logq2, f = self.logx, self.logq2, self.xf
        nx, nq = logx.shape[0], logq2.shape[0]
        ix = jnp.clip(jnp.searchsorted(logx, lx, side="right") - 1, 0, nx - 2)
        # side="right": a Q on a repeated subgrid-boundary knot falls in the upper subgrid.
        iq = jnp.clip(jnp.searchsorted(logq2, lq, side="right") - 1, 0, nq - 2)

        def at(i, n):
            return jnp.clip(i, 0, n - 1)

        def dxf_dlogx(i, rows):
            # LHAPDF's knot derivative in ln x: mean of the adjacent slopes inside,
            # one-sided at the first and last knot. `rows` are Q indices (4,).
            im, ip = at(i - 1, nx), at(i + 1, nx)
            left = (f[i, rows] - f[im, rows]) / _safe_den(logx[i] - logx[im])
            right = (f[ip, rows] - f[i, rows]) / _safe_den(logx[ip] - logx[i])
            return jnp.where(i == 0, right, jnp.where(i == nx - 1, left, 0.5 * (left + right)))

        rows = at(iq + jnp.arange(-1, 3), nq)  # iq−1 … iq+2, clipped
        dlx = logx[ix + 1] - logx[ix]
        tx = (lx - logx[ix]) / dlx
        v = _cubic(tx, f[ix, rows], dxf_dlogx(ix, rows) * dlx, f[ix + 1, rows], dxf_dlogx(ix + 1, rows) * dlx)
        vll, vl, vh, vhh = v[0], v[1], v[2], v[3]

        dq1 = logq2[iq + 1] - logq2[iq]
        dq0 = _safe_den(logq2[iq] - logq2[at(iq - 1, nq)])
        dq2 = _safe_den(logq2[at(iq + 2, nq)] - logq2[iq + 1])
        lower = (iq == 0) | (logq2[iq] == logq2[at(iq - 1, nq)])
        upper = (iq + 1 == nq - 1) | (logq2[iq + 1] == logq2[at(iq + 2, nq)])
        tq = (lq - logq2[iq]) / dq1
        # Slopes per unit tq, as in LHAPDF 6.5: (vh − vl) is the interval's own
        # difference; neighbours' differences are rescaled by the width ratio.
        central_l = 0.5 * ((vh - vl) + (vl - vll) * dq1 / dq0)
        central_h = 0.5 * ((vh - vl) + (vhh - vh) * dq1 / dq2)
        # One-sided (the interval's own difference) at a subgrid's lower/upper edge.
        vdl = jnp.where(lower, vh - vl, central_l)
        vdh = jnp.where(upper & ~lower, vh - vl, central_h)
        cubic = _cubic(tq, vl, vdl, vh, vdh)
        # Two-knot subgrid: LHAPDF falls back to bilinear in (ln x, ln Q²).
        fl = f[ix, iq] + tx * (f[ix + 1, iq] - f[ix, iq])
        fh = f[ix, iq + 1] + tx * (f[ix + 1, iq + 1] - f[ix, iq + 1])
        linear = fl + tq * (fh - fl)
        return jnp.where(lower & upper, linear, cubic)

    def _check_range(self, out: Array, x: Array, q2: Array) -> Array:
        (xmin, xmax), (qmin, qmax) = self.x_range, self.q_range
        msg = f"PDF {self.name}: x must lie in [{xmin:g}, {xmax:g}] and Q in [{qmin:g}, {qmax:g}] GeV (no extrapolation)"
        if not isinstance(x, jax.core.Tracer) and not isinstance(q2, jax.core.Tracer):
            xn, qn = np.asarray(x), np.sqrt(np.asarray(q2))
            bad_x = (xn < xmin) | (xn > xmax) | np.isnan(xn)
            bad_q = (qn < qmin) | (qn > qmax) | np.isnan(qn)
            if np.any(bad_x):
                raise ValueError(f"{msg}; got x = {xn[bad_x].ravel()[:5]}")
            if np.any(bad_q):
                raise ValueError(f"{msg}; got Q = {qn[bad_q].ravel()[:5]} GeV")
            return out
        bad = (x < xmin) | (x > xmax) | (q2 < qmin * qmin) | (q2 > qmax * qmax) | jnp.isnan(x) | jnp.isnan(q2)
        return eqx.error_if(out, bad, msg)

    def xfxQ2_all(self, x: Float[ArrayLike, "*#b"], q2: Float[ArrayLike, "*#b"]) -> Float[Array, "*batch 13"]:
        """x·f(x, Q²) for the 13 partons t̄ … d̄, g, d … t (`ALL_PIDS` order).

        **Arguments:** `x` in [x_min, x_max] and `q2` = Q² in GeV², broadcast
        together.

        **Returns:** `(..., 13)` values of x·f (partons absent from the set give 0).
        Differentiable in `x` and `q2` (piecewise cubic, C¹ in ln x inside the
        grid); works under `jit` and `vmap`. Out-of-grid points raise (see the
        module docstring).
        """
        full = self._all_columns(x, q2)
        # Static column indices, computed in Python: `_pid_code` is a jnp function
        # and would be staged (not concrete) under an outer jit.
        cols = [self.columns[p + 6 if abs(p) <= 6 else 6] for p in ALL_PIDS]
        return full[..., np.asarray(cols)]

    def xfxQ_all(self, x: Float[ArrayLike, "*#b"], q: Float[ArrayLike, "*#b"]) -> Float[Array, "*batch 13"]:
        """`xfxQ2_all` with the scale given as Q in GeV."""
        q = jnp.asarray(q)
        return self.xfxQ2_all(x, q * q)

    def _all_columns(self, x, q2):
        dtype = jnp.result_type(jnp.asarray(x), jnp.asarray(q2), float)
        x, q2 = jnp.broadcast_arrays(jnp.asarray(x, dtype=dtype), jnp.asarray(q2, dtype=dtype))
        x = self._check_range(x, x, q2)
        return _evaluate(self, x, q2)

    def xfxQ2(
        self, pid: Int[ArrayLike, "*#b"], x: Float[ArrayLike, "*#b"], q2: Float[ArrayLike, "*#b"]
    ) -> Float[Array, "*batch"]:
        """x·f(x, Q²) of parton `pid`, like LHAPDF's ``xfxQ2``.

        **Arguments:**
        - `pid`: PDG id(s): −6 … 6 (0 or 21 for the gluon), 22 for the photon.
        - `x`: momentum fraction(s) in [x_min, x_max].
        - `q2`: Q² in GeV², Q within the grid.

        **Returns:** x·f, broadcast over the inputs; 0 for a parton the set does
        not contain. Differentiable in `x` and `q2`; works under `jit` and `vmap`.
        Raises `ValueError` for an unknown pid or (concrete) out-of-grid x or Q,
        and an `eqx.error_if` error for out-of-grid values under jit.
        """
        code = _pid_code(pid)
        if not isinstance(code, jax.core.Tracer) and np.any(np.asarray(code) == 14):
            raise ValueError(f"unknown parton id {np.asarray(pid)}; expected -6..6, 21 (gluon) or 22 (photon)")
        full = self._all_columns(x, q2)
        col = jnp.asarray(self.columns)[code]
        col = jnp.broadcast_to(col, jnp.broadcast_shapes(col.shape, full.shape[:-1]))
        full = jnp.broadcast_to(full, col.shape + full.shape[-1:])
        return jnp.take_along_axis(full, col[..., None], axis=-1)[..., 0]

    def xfxQ(
        self, pid: Int[ArrayLike, "*#b"], x: Float[ArrayLike, "*#b"], q: Float[ArrayLike, "*#b"]
    ) -> Float[Array, "*batch"]:
        """`xfxQ2` with the scale given as Q in GeV."""
        q = jnp.asarray(q)
        return self.xfxQ2(pid, x, q * q)


@jax.jit
def _evaluate(pdf: PDF, x: Array, q2: Array) -> Array:
    # Jitted so that eager calls compile once per shape instead of dispatching
    # the interpolation op by op; under an outer jit this simply inlines.
    out = jax.vmap(pdf._kernel)(x.reshape(-1), q2.reshape(-1))
    return out.reshape(x.shape + out.shape[-1:])


def pythia_pdfdata_dir() -> pathlib.Path:
    """``share/Pythia8/pdfdata`` of the installed ``pythia8mc`` package.

    Found from the package's installed-file list; failing that, by importing
    ``pythia8mc`` (only here, lazily) and looking beside it and under the
    installation prefix. Raises `FileNotFoundError` if there is none.
    """
    candidates: list[pathlib.Path] = []
    try:
        dist = importlib.metadata.distribution("pythia8mc")
        for f in dist.files or ():
            if f.parent.name == "pdfdata" and f.suffix == ".dat":
                candidates.append(pathlib.Path(dist.locate_file(f)).parent)
                break
    except importlib.metadata.PackageNotFoundError:
        pass
    if not candidates:
        try:
            import pythia8mc  # noqa: PLC0415 — deliberately lazy: heavy and optional
        except ImportError as e:
            raise FileNotFoundError("pythia8mc is not installed; pass a path to an lhagrid1 .dat file") from e
        here = pathlib.Path(pythia8mc.__file__).resolve().parent
        candidates += [p / "share" / "Pythia8" / "pdfdata" for p in (here, *here.parents)]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    raise FileNotFoundError(f"no share/Pythia8/pdfdata directory found for pythia8mc (looked in {candidates})")
