"""Reader for LHAPDF6 ``lhagrid1`` data files (one PDF member per ``.dat`` file).

Format (as written by LHAPDF 6 and read by its ``GridPDF::_loadData``):

- a YAML-like header (``Key: value`` lines, e.g. ``Format: lhagrid1``) ending
  with a line ``---``;
- one or more subgrid blocks, each ended by ``---``:
  1. the x knots (increasing, in (0, 1]),
  2. the Q knots in GeV (increasing),
  3. the parton ids (PDG codes, 21 = gluon),
  4. n_x · n_Q rows of x·f(x, Q) values, one column per parton id, with x the
     *outer* index: row r holds (x_{r // n_Q}, Q_{r % n_Q}).

Lines starting with ``#`` are comments. Every block must share the x knots and
the parton ids; consecutive blocks share their boundary Q knot (a flavour
threshold). Malformed input raises `ValueError` naming the file and line.
"""

import dataclasses
import os

import numpy as np


@dataclasses.dataclass(frozen=True)
class Subgrid:
    """One block of an ``lhagrid1`` file: knots and values as NumPy float64 arrays.

    `xs`: `(n_x,)`; `qs`: `(n_Q,)` in GeV; `pids`: `(n_f,)` ints;
    `xf`: `(n_x, n_Q, n_f)` values of x·f(x, Q).
    """

    xs: np.ndarray
    qs: np.ndarray
    pids: np.ndarray
    xf: np.ndarray


@dataclasses.dataclass(frozen=True)
class LHAGrid:
    """A parsed ``lhagrid1`` file: its header entries and its subgrids in Q order."""

    header: dict[str, str]
    subgrids: tuple[Subgrid, ...]
    path: str


def _numbers(tokens: list[str], kind, where: str, what: str) -> np.ndarray:
    try:
        return np.array([kind(t) for t in tokens])
    except ValueError:
        bad = next(t for t in tokens if not _parses(t, kind))
        raise ValueError(f"{where}: cannot parse {bad!r} as {what}") from None


def _parses(token: str, kind) -> bool:
    try:
        kind(token)
        return True
    except ValueError:
        return False


def read_lhagrid1(path: str | os.PathLike) -> LHAGrid:
    """Parse an LHAPDF6 ``lhagrid1`` ``.dat`` file.

    **Arguments:** `path` to the file.

    **Returns:** an `LHAGrid` with the header entries (strings) and the subgrids.

    Raises `ValueError` naming ``path:line`` for an unparsable number, a row with
    the wrong number of columns, a block with the wrong number of rows, knots that
    are not strictly increasing (or x outside (0, 1]), blocks whose x knots or
    parton ids differ, a ``Format`` other than ``lhagrid1``, or a missing final
    ``---``.
    """
    path = os.fspath(path)
    with open(path) as f:
        lines = f.read().splitlines()

    header: dict[str, str] = {}
    blocks: list[Subgrid] = []
    state = "header"
    xs = qs = pids = None
    rows: list[np.ndarray] = []
    block_start = 0
    last_content = ""
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        last_content = line
        where = f"{path}:{lineno}"
        if line == "---":
            if state == "header":
                fmt = header.get("Format", "lhagrid1")
                if fmt != "lhagrid1":
                    raise ValueError(f"{where}: unsupported Format {fmt!r}; only 'lhagrid1' is supported")
            elif state != "xs":
                expected = len(xs) * len(qs)
                if state != "rows" or len(rows) != expected:
                    raise ValueError(
                        f"{where}: block starting on line {block_start} ends after {len(rows)} data rows; "
                        f"expected {len(xs)} x knots × {len(qs)} Q knots = {expected}"
                    )
                xf = np.stack(rows).reshape(len(xs), len(qs), len(pids))
                blocks.append(Subgrid(xs=xs, qs=qs, pids=pids, xf=xf))
            state, rows = "xs", []
            continue
        if state == "header":
            # Only top-level 'Key: value' entries are kept; YAML continuation lines
            # (lists, nested maps) carry nothing the grid needs.
            key, sep, value = line.partition(":")
            if sep and not raw[:1].isspace():
                header[key.strip()] = value.strip()
        elif state == "xs":
            block_start = lineno
            xs = _numbers(line.split(), float, where, "an x knot")
            if xs.size < 4 or np.any(np.diff(xs) <= 0) or xs[0] <= 0 or xs[-1] > 1:
                raise ValueError(f"{where}: x knots must be >= 4 strictly increasing values in (0, 1]")
            if blocks and not np.array_equal(xs, blocks[0].xs):
                raise ValueError(f"{where}: x knots differ from those of the first block")
            state = "qs"
        elif state == "qs":
            qs = _numbers(line.split(), float, where, "a Q knot")
            if qs.size < 2 or np.any(np.diff(qs) <= 0) or qs[0] <= 0:
                raise ValueError(f"{where}: Q knots must be >= 2 strictly increasing positive values")
            if blocks and qs[0] != blocks[-1].qs[-1]:
                raise ValueError(
                    f"{where}: first Q knot {qs[0]} does not continue the previous block (last knot {blocks[-1].qs[-1]})"
                )
            state = "pids"
        elif state == "pids":
            pids = _numbers(line.split(), int, where, "an integer parton id")
            if blocks and not np.array_equal(pids, blocks[0].pids):
                raise ValueError(f"{where}: parton ids differ from those of the first block")
            state = "rows"
        else:
            values = _numbers(line.split(), float, where, "an x·f value")
            if values.size != len(pids):
                raise ValueError(f"{where}: {values.size} values on the line but {len(pids)} parton ids declared")
            if len(rows) == len(xs) * len(qs):
                raise ValueError(f"{where}: more than {len(xs)} × {len(qs)} data rows in the block (missing '---'?)")
            rows.append(values)
    if last_content != "---":
        raise ValueError(f"{path}: file must end with a '---' separator line (truncated file?)")
    if not blocks:
        raise ValueError(f"{path}: no data blocks found")
    return LHAGrid(header=header, subgrids=tuple(blocks), path=path)
