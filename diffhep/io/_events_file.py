"""`Events` in NumPy `.npz` files: what `diffhep shower` writes and `diffhep fit-alphas
--data FILE.npz` reads.

A file holds five arrays (`numpy.savez`, no pickled objects):

- `momenta` `(n_events, capacity, 4)` float, `(E, px, py, pz)` in GeV;
- `mask` `(n_events, capacity)` bool, True for real particles;
- `pdg` `(n_events, capacity)` integer PDG codes;
- `weights` `(n_events,)` float, ≥ 0;
- `metadata`: a 0-d string array holding a JSON object with at least
  `"format": "diffhep-events/1"` (the generator's settings go there too, e.g. `alpha_s`,
  `sqrt_s` in GeV, `seed`, `level`).

Padding slots (`mask` False) must be all-zero momenta with PDG code 0 (the `Events`
convention). The reader checks all of this and raises `ValueError` naming the file,
the array and, for bad values, the first offending event.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

import numpy as np

from .._atomic import atomic_open
from .._events import Events

EVENTS_FORMAT = "diffhep-events/1"
"""The `metadata["format"]` of the files `save_events` writes."""

_ARRAYS = ("momenta", "mask", "pdg", "weights", "metadata")


def save_events(path: str | os.PathLike, events: Events, **metadata: Any) -> None:
    """Write `events` and JSON-serialisable `metadata` to the `.npz` file `path`,
    atomically (a temporary file in the same folder, created if missing, then a
    rename). Trailing slots that no event uses are dropped, so the file's capacity is
    the largest multiplicity."""
    mask = np.asarray(events.mask)
    used = np.flatnonzero(mask.any(axis=0))
    width = int(used[-1]) + 1 if used.size else 0
    meta = {"format": EVENTS_FORMAT, **metadata}
    with atomic_open(path, "wb") as fh:
        np.savez(
            fh,
            momenta=np.asarray(events.momenta)[:, :width],
            mask=mask[:, :width],
            pdg=np.asarray(events.pdg)[:, :width],
            weights=np.asarray(events.weights),
            metadata=np.array(json.dumps(meta, sort_keys=True)),
        )


def load_events(path: str | os.PathLike) -> tuple[Events, dict[str, Any]]:
    """Read a file written by `save_events` (or by anyone following the format above):
    the `Events` and the metadata dict. The arrays become JAX arrays, so float64 files
    keep their precision only with `jax_enable_x64` on (the `diffhep` commands turn
    it on unless `--no-x64`)."""
    name = os.fspath(path)
    if os.path.exists(name) and not zipfile.is_zipfile(name):
        raise ValueError(f"{name}: not a NumPy .npz file (not a zip archive)")
    try:
        with np.load(name, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in _ARRAYS if k in npz.files}
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{name}: not a NumPy .npz file ({exc})") from None
    except ValueError as exc:  # np.load refuses object arrays (pickles) with a ValueError
        raise ValueError(f"{name}: unreadable array ({exc}); the format has no pickled objects") from None
    missing = [k for k in _ARRAYS if k not in arrays]
    if missing:
        raise ValueError(f"{name}: missing array(s) {', '.join(missing)}; a diffhep events file holds {', '.join(_ARRAYS)}")
    meta = _metadata(name, arrays["metadata"])
    p, mask, pdg, w = (arrays[k] for k in ("momenta", "mask", "pdg", "weights"))
    if p.ndim != 3 or p.shape[-1] != 4 or not np.issubdtype(p.dtype, np.floating):
        raise ValueError(f"{name}: momenta must be a float array (n_events, capacity, 4), got {p.dtype} {p.shape}")
    n, cap = p.shape[:2]
    if mask.shape != (n, cap) or mask.dtype != np.bool_:
        raise ValueError(f"{name}: mask must be a bool array {(n, cap)}, got {mask.dtype} {mask.shape}")
    if pdg.shape != (n, cap) or not np.issubdtype(pdg.dtype, np.integer):
        raise ValueError(f"{name}: pdg must be an integer array {(n, cap)}, got {pdg.dtype} {pdg.shape}")
    if w.shape != (n,) or not np.issubdtype(w.dtype, np.floating):
        raise ValueError(f"{name}: weights must be a float array ({n},), got {w.dtype} {w.shape}")
    _first_bad(name, ~np.isfinite(p).all(axis=(1, 2)), "has a momentum component that is NaN or inf")
    _first_bad(name, ~np.isfinite(w) | (w < 0), "has a weight that is negative, NaN or inf (allowed: finite, >= 0)")
    pad = ~mask
    _first_bad(name, ((p != 0).any(axis=-1) & pad).any(axis=1), "has a padding slot (mask False) with non-zero momentum")
    _first_bad(name, ((pdg != 0) & pad).any(axis=1), "has a padding slot (mask False) with a non-zero PDG code")
    _first_bad(name, ((p[..., 0] < 0) & mask).any(axis=1), "has a particle with negative energy")
    return Events(p, mask, pdg.astype(np.int32), w), meta


def _metadata(name: str, raw: np.ndarray) -> dict[str, Any]:
    if raw.shape != () or raw.dtype.kind != "U":
        raise ValueError(f"{name}: metadata must be a 0-d string array of JSON, got {raw.dtype} {raw.shape}")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != EVENTS_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{name}: metadata format is {got!r}, expected {EVENTS_FORMAT!r}")
    return meta


def _first_bad(name: str, bad: np.ndarray, what: str) -> None:
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}: event {i} {what} ({int(bad.sum())} event(s) in all)")
