"""Reader and writer for YODA text files (Rivet / HEPData reference data).

Supported blocks (all others, e.g. ``HISTO1D`` or ``COUNTER``, are skipped):

- ``BEGIN YODA_SCATTER2D_V2 <path>`` … ``END YODA_SCATTER2D_V2`` (YODA 1.6–1.9)
  and ``YODA_SCATTER2D_V3`` (YODA 2): YAML-like ``Key: value`` annotations, a
  ``---`` line, then one row per point with six columns
  ``xval xerr- xerr+ yval yerr- yerr+``.
- ``# BEGIN YODA_SCATTER2D <path>`` … ``# END YODA_SCATTER2D`` (YODA 1.0–1.5):
  ``Key=value`` annotations, then the same six columns.
- ``BEGIN YODA_ESTIMATE1D_V3 <path>`` (YODA 2): annotations, ``---``, an
  ``Edges(A1): [e0, …, eN]`` line, an optional ``ErrorLabels: [...]`` line, then
  ``N + 2`` rows ``value errDn(1) errUp(1) errDn(2) …`` for the underflow, the
  ``N`` bins and the overflow. It becomes a `Scatter2D` with `x` at the bin
  centres, `x_err_±` the half widths, and `y_err_±` the quadrature sum of the
  error sources (``---`` counts as no error); under- and overflow are dropped.

Lines that are blank or start with ``#`` (other than the V1 ``# BEGIN``/``# END``
markers) are comments. Malformed input raises `ValueError` naming ``file:line``.
"""

import dataclasses
import math
import os
import re
import types
from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt

from .._atomic import atomic_open

_BEGIN = re.compile(r"^(#\s*)?BEGIN\s+YODA_([A-Z0-9]+)(?:_V(\d+))?(?:\s+(.*))?$")
_END = re.compile(r"^(#\s*)?END\s+YODA_([A-Z0-9]+)(?:_V(\d+))?\s*$")
_SCATTER_COLUMNS = ("x", "x_err_minus", "x_err_plus", "y", "y_err_minus", "y_err_plus")


@dataclasses.dataclass(frozen=True, eq=False)
class Scatter2D:
    """One YODA ``Scatter2D``: points with asymmetric x and y errors.

    The six columns accept any array-like and are stored as read-only float64
    `(n,)` NumPy arrays. Errors are non-negative distances
    from the central value (YODA's ``xerr-``/``xerr+``/``yerr-``/``yerr+``).
    `annotations` holds the block's header entries as strings (``Path``, ``Type``
    and, e.g., ``Title``, ``IsRef``), read-only.
    """

    path: str
    x: npt.ArrayLike
    x_err_minus: npt.ArrayLike
    x_err_plus: npt.ArrayLike
    y: npt.ArrayLike
    y_err_minus: npt.ArrayLike
    y_err_plus: npt.ArrayLike
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        arrays = {}
        for name in _SCATTER_COLUMNS:
            a = np.array(getattr(self, name), dtype=np.float64)
            if a.ndim != 1:
                raise ValueError(f"Scatter2D {self.path!r}: {name} must be 1-d, got shape {a.shape}")
            a.setflags(write=False)
            arrays[name] = a
        n = {a.shape[0] for a in arrays.values()}
        if len(n) != 1:
            raise ValueError(f"Scatter2D {self.path!r}: columns have different lengths {sorted(n)}")
        for name in ("x_err_minus", "x_err_plus", "y_err_minus", "y_err_plus"):
            if np.any(arrays[name] < 0):
                raise ValueError(f"Scatter2D {self.path!r}: {name} must be >= 0")
        for name, a in arrays.items():
            object.__setattr__(self, name, a)
        object.__setattr__(self, "annotations", types.MappingProxyType(dict(self.annotations)))

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def title(self) -> str:
        """The ``Title`` annotation ('' when absent or YAML null ``~``)."""
        title = self.annotations.get("Title", "")
        return "" if title in ("~", "null") else title

    @property
    def edges(self) -> np.ndarray:
        """Bin edges `(n + 1,)` from `x − x_err_minus` and `x + x_err_plus`.

        Raises `ValueError` unless the points form contiguous, increasing bins
        (each upper edge equals the next lower edge to 1e-9 of the range). The
        edges are rounded to 12 significant digits, so that e.g. ``0.585 − 0.005``
        is exactly ``0.58``.
        """
        lo = self.x - self.x_err_minus
        hi = self.x + self.x_err_plus
        if len(self) == 0:
            raise ValueError(f"Scatter2D {self.path!r}: no points, so no bin edges")
        scale = max(float(np.max(np.abs(np.concatenate([lo, hi])))), 1e-300)
        if np.any(hi <= lo) or np.any(np.abs(hi[:-1] - lo[1:]) > 1e-9 * scale):
            raise ValueError(f"Scatter2D {self.path!r}: the points do not form contiguous increasing bins")
        edges = np.array([float(f"{v:.12g}") for v in np.append(lo, hi[-1])])
        edges.setflags(write=False)
        return edges

    @property
    def widths(self) -> np.ndarray:
        """Bin widths `(n,)`, `x_err_minus + x_err_plus`."""
        return self.x_err_minus + self.x_err_plus


def _floats(tokens: list[str], where: str) -> list[float]:
    out = []
    for t in tokens:
        if t == "---":  # YODA 2: no error given
            out.append(math.nan)
            continue
        try:
            out.append(float(t))
        except ValueError:
            raise ValueError(f"{where}: cannot parse {t!r} as a number") from None
    return out


def _annotation(line: str, v1: bool, where: str) -> tuple[str, str]:
    key, sep, value = line.partition("=" if v1 else ":")
    if not sep or not key.strip():
        raise ValueError(f"{where}: expected an annotation 'Key{'=' if v1 else ': '}value', got {line!r}")
    return key.strip(), value.strip()


def _scatter_from_rows(path: str, rows: list[list[float]], annotations: dict[str, str], where: str) -> Scatter2D:
    data = np.array(rows, dtype=np.float64).reshape(-1, 6)
    if np.any(np.isnan(data)):
        raise ValueError(f"{where}: Scatter2D {path!r} has a missing ('---') value")
    return Scatter2D(path, *data.T, annotations=annotations)


def _estimate_from_rows(
    path: str, edges: list[float] | None, rows: list[list[float]], annotations: dict[str, str], where: str
) -> Scatter2D:
    if edges is None:
        raise ValueError(f"{where}: Estimate1D {path!r} has no 'Edges(A1): [...]' line")
    e = np.array(edges)
    if e.size < 2 or np.any(np.diff(e) <= 0):
        raise ValueError(f"{where}: Estimate1D {path!r} edges must be >= 2 increasing numbers")
    n = e.size - 1
    if len(rows) != n + 2:
        raise ValueError(
            f"{where}: Estimate1D {path!r} has {len(rows)} rows; expected {n + 2} "
            f"({n} bins plus underflow and overflow)"
        )
    body = rows[1:-1]
    value = np.array([r[0] for r in body])
    # Total error: quadrature sum over sources; '---' (NaN) counts as zero.
    dn = np.array([math.sqrt(sum(v * v for v in r[1::2] if not math.isnan(v))) for r in body])
    up = np.array([math.sqrt(sum(v * v for v in r[2::2] if not math.isnan(v))) for r in body])
    half = np.diff(e) / 2
    annotations = {**annotations, "Type": "Scatter2D"}
    return Scatter2D(path, e[:-1] + half, half, half, value, dn, up, annotations=annotations)


def read_yoda(path: str | os.PathLike) -> dict[str, Scatter2D]:
    """Read the ``Scatter2D`` (and ``Estimate1D``) objects of a YODA text file.

    **Arguments:** `path` to a ``.yoda`` file (plain text; not ``.yoda.gz``).

    **Returns:** a dict from YODA path (e.g. ``/REF/ALEPH_2004_S5765862/d54-x01-y01``)
    to `Scatter2D`, in file order. Estimate1D blocks are converted as described in
    the module docstring. Other block types are skipped.

    Raises `ValueError` naming ``path:line`` for an unparsable number, a data row
    with the wrong number of columns, an annotation line without a separator, a
    block that is not closed (or closed by the wrong ``END``), a path given twice,
    or an Estimate1D whose rows do not match its edges.
    """
    fname = os.fspath(path)
    with open(fname) as f:
        lines = f.read().splitlines()
    out: dict[str, Scatter2D] = {}
    block = None  # dict describing the open block
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        where = f"{fname}:{lineno}"
        begin = _BEGIN.match(line)
        if begin:
            if block is not None:
                raise ValueError(f"{where}: BEGIN inside the block opened on line {block['line']} (missing END?)")
            hashed, kind, version, obj_path = begin.groups()
            if not obj_path:
                raise ValueError(f"{where}: BEGIN line without an object path")
            block = {
                "line": lineno,
                "kind": kind,
                "version": version,
                "v1": bool(hashed) or version is None,
                "path": obj_path.strip(),
                "annotations": {},
                "rows": [],
                "edges": None,
                "in_data": bool(hashed) or version is None,  # V1 has no '---' separator
                "supported": kind in ("SCATTER2D", "ESTIMATE1D"),
                "last_key": None,
            }
            continue
        end = _END.match(line)
        if end:
            if block is None:
                raise ValueError(f"{where}: END without a matching BEGIN")
            if end.group(2) != block["kind"] or end.group(3) != block["version"]:
                raise ValueError(f"{where}: {line!r} closes the block opened on line {block['line']}")
            if block["supported"]:
                p = block["path"]
                if p in out:
                    raise ValueError(f"{where}: object {p!r} appears twice")
                bwhere = f"{fname}:{block['line']}"
                if block["kind"] == "SCATTER2D":
                    out[p] = _scatter_from_rows(p, block["rows"], block["annotations"], bwhere)
                else:
                    out[p] = _estimate_from_rows(p, block["edges"], block["rows"], block["annotations"], bwhere)
            block = None
            continue
        if block is None or not block["supported"] or not line:
            continue  # text between blocks, or an unsupported block's body
        if line.startswith("#"):
            continue
        if line == "---" and not block["v1"]:
            block["in_data"] = True
            continue
        if block["kind"] == "ESTIMATE1D" and block["in_data"]:
            if line.startswith("Edges"):
                inner = line.partition(":")[2].strip()
                if not (inner.startswith("[") and inner.endswith("]")):
                    raise ValueError(f"{where}: expected 'Edges(A1): [e0, e1, ...]'")
                block["edges"] = _floats([t.strip() for t in inner[1:-1].split(",") if t.strip()], where)
                continue
            if line.startswith("ErrorLabels"):
                continue
        if block["in_data"] and (block["kind"] == "ESTIMATE1D" or _looks_numeric(line) or not block["v1"]):
            values = _floats(line.split(), where)
            if block["kind"] == "SCATTER2D" and len(values) != 6:
                raise ValueError(
                    f"{where}: Scatter2D row has {len(values)} columns; expected 6 "
                    "(xval xerr- xerr+ yval yerr- yerr+)"
                )
            if block["kind"] == "ESTIMATE1D" and len(values) % 2 != 1:
                raise ValueError(f"{where}: Estimate1D row must be 'value' plus (errDn, errUp) pairs")
            block["rows"].append(values)
        elif raw[:1].isspace() and block["last_key"] is not None:
            # A YAML continuation line (an indented list item or mapping entry).
            key = block["last_key"]
            block["annotations"][key] = f"{block['annotations'][key]}\n{raw}"
        else:
            key, value = _annotation(line, block["v1"], where)
            block["annotations"][key] = value
            block["last_key"] = key
    if block is not None:
        raise ValueError(f"{fname}: block {block['path']!r} opened on line {block['line']} is never closed")
    return out


def _looks_numeric(line: str) -> bool:
    """V1 blocks interleave ``Key=value`` annotations and data rows without a
    separator: a row is a line whose first token is not an annotation."""
    return "=" not in line


def write_yoda(path: str | os.PathLike, scatters: Mapping[str, Scatter2D] | Iterable[Scatter2D]) -> None:
    """Write `Scatter2D` objects as ``YODA_SCATTER2D_V2`` blocks, atomically.

    **Arguments:**
    - `path`: the output file; written to a temporary file in the same folder and
      moved into place with `os.replace`, so readers never see a partial file.
    - `scatters`: a dict from YODA path to `Scatter2D` (the key is the path
      written) or an iterable of `Scatter2D` (each written under its own `path`).

    Numbers are written with 17 significant digits, so `read_yoda` gives back
    exactly the same arrays, path and annotations (``Path`` and ``Type`` are set
    from the object).
    """
    items = list(scatters.items()) if isinstance(scatters, Mapping) else [(s.path, s) for s in scatters]
    chunks = []
    for obj_path, s in items:
        if not obj_path or any(c.isspace() for c in obj_path):
            raise ValueError(f"write_yoda: object path {obj_path!r} must be non-empty without whitespace")
        ann = {**dict(s.annotations), "Path": obj_path, "Type": "Scatter2D"}
        body = [f"BEGIN YODA_SCATTER2D_V2 {obj_path}"]
        for key, value in ann.items():
            continuation = value.split("\n")[1:]
            if "\n" in key or ":" in key or any(not c[:1].isspace() for c in continuation):
                raise ValueError(f"write_yoda: annotation {key!r} of {obj_path!r} cannot be written on one line")
            body.append(f"{key}: {value}")
        body.append("---")
        body.append("# xval\t xerr-\t xerr+\t yval\t yerr-\t yerr+")
        cols = np.stack([getattr(s, c) for c in _SCATTER_COLUMNS], axis=1)
        body.extend("\t".join(f"{v:.16e}" for v in row) for row in cols)
        body.append("END YODA_SCATTER2D_V2")
        chunks.append("\n".join(body) + "\n")
    text = "\n".join(chunks)
    with atomic_open(path) as f:
        f.write(text)
