"""`Events`: a fixed-capacity, masked batch of particle four-momenta."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int


def check_momenta(momenta: Any, mask: Any = None, *, name: str = "momenta") -> None:
    """Static checks at an API boundary: raise `ValueError` naming the problem.

    `momenta` must have shape `(..., n, 4)`; `mask`, if given, shape `(..., n)`.
    """
    shape = jnp.shape(momenta)
    if len(shape) < 2 or shape[-1] != 4:
        raise ValueError(
            f"{name} must have shape (..., n_particles, 4) with (E, px, py, pz) last, got {shape}"
        )
    if mask is not None and jnp.shape(mask) != shape[:-1]:
        raise ValueError(
            f"mask must have shape {shape[:-1]} to match {name} {shape}, got {jnp.shape(mask)}"
        )


def check_finite(momenta: Array, name: str = "momenta") -> Array:
    """Run-time check (also under jit, via `eqx.error_if`) that no entry is NaN/inf."""
    return eqx.error_if(momenta, ~jnp.all(jnp.isfinite(momenta)), f"{name} contain NaN or inf")


class Events(eqx.Module):
    """A batch of events with static capacity.

    Variable multiplicity lives in a mask: each event holds `capacity` slots, the
    first ones (by convention, not requirement) filled. **Padding convention:**
    empty slots have `momenta = 0`, `pdg = 0` and `mask = False`; every diffhep
    function ignores them, and zero momenta make masked sums safe even when a
    caller forgets the mask.

    **Fields:**
    - `momenta`: `(n_events, capacity, 4)`, `(E, px, py, pz)` in GeV. Differentiable.
    - `mask`: `(n_events, capacity)` bool, True for real particles.
    - `pdg`: `(n_events, capacity)` int PDG codes (21 gluon, ±1..±6 quarks).
    - `weights`: `(n_events,)` event weights (1 for unweighted events). Differentiable.

    `Events` is a PyTree: it passes through `jax.jit`, `jax.vmap` and `jax.grad`.
    """

    momenta: Float[Array, "n capacity 4"]
    mask: Bool[Array, "n capacity"]
    pdg: Int[Array, "n capacity"]
    weights: Float[Array, " n"]

    def __init__(
        self,
        momenta: Float[ArrayLike, "n capacity 4"],
        mask: Bool[ArrayLike, "n capacity"] | None = None,
        pdg: Int[ArrayLike, "n capacity"] | None = None,
        weights: Float[ArrayLike, " n"] | None = None,
    ):
        momenta = jnp.asarray(momenta)
        if momenta.ndim != 3 or momenta.shape[-1] != 4:
            raise ValueError(
                f"Events.momenta must have shape (n_events, capacity, 4), got {momenta.shape}"
            )
        n, cap = momenta.shape[:2]
        mask = jnp.ones((n, cap), bool) if mask is None else jnp.asarray(mask)
        pdg = jnp.zeros((n, cap), jnp.int32) if pdg is None else jnp.asarray(pdg)
        weights = jnp.ones((n,), momenta.dtype) if weights is None else jnp.asarray(weights)
        if mask.shape != (n, cap):
            raise ValueError(f"Events.mask must have shape {(n, cap)}, got {mask.shape}")
        if mask.dtype != jnp.bool_:
            raise ValueError(f"Events.mask must be boolean, got dtype {mask.dtype}")
        if pdg.shape != (n, cap):
            raise ValueError(f"Events.pdg must have shape {(n, cap)}, got {pdg.shape}")
        if not jnp.issubdtype(pdg.dtype, jnp.integer):
            raise ValueError(f"Events.pdg must be integer, got dtype {pdg.dtype}")
        if weights.shape != (n,):
            raise ValueError(f"Events.weights must have shape {(n,)}, got {weights.shape}")
        self.momenta = momenta
        self.mask = mask
        self.pdg = pdg
        self.weights = weights

    @property
    def n_events(self) -> int:
        return self.momenta.shape[0]

    @property
    def capacity(self) -> int:
        return self.momenta.shape[1]

    @property
    def multiplicity(self) -> Int[Array, " n"]:
        """Number of real particles per event."""
        return jnp.sum(self.mask, axis=-1)

    def __len__(self) -> int:
        return self.n_events

    def __getitem__(self, index: Any) -> Events:
        """Select events by integer, slice, index array or boolean array (outside jit for
        boolean selections, whose result size depends on values)."""
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            # Keep the event axis: an integer selects a batch of one event.
            index = int(index)
            if not -self.n_events <= index < self.n_events:
                raise IndexError(f"event index {index} out of range for {self.n_events} events")
            index = slice(index, index + 1 if index != -1 else None)
        return Events(
            self.momenta[index], self.mask[index], self.pdg[index], self.weights[index]
        )

    def select(self, index: Any) -> Events:
        """Same as `events[index]`."""
        return self[index]

    def pad_to(self, capacity: int) -> Events:
        """Return the same events with `capacity` slots (≥ the current capacity)."""
        if capacity < self.capacity:
            raise ValueError(
                f"pad_to: capacity must be >= the current {self.capacity}, got {capacity}"
            )
        extra = capacity - self.capacity
        return Events(
            jnp.pad(self.momenta, ((0, 0), (0, extra), (0, 0))),
            jnp.pad(self.mask, ((0, 0), (0, extra))),
            jnp.pad(self.pdg, ((0, 0), (0, extra))),
            self.weights,
        )

    @staticmethod
    def concatenate(events: Sequence[Events]) -> Events:
        """Concatenate along the event axis, padding to the largest capacity."""
        if len(events) == 0:
            raise ValueError("Events.concatenate needs at least one Events")
        cap = max(e.capacity for e in events)
        padded = [e.pad_to(cap) for e in events]
        return Events(
            jnp.concatenate([e.momenta for e in padded]),
            jnp.concatenate([e.mask for e in padded]),
            jnp.concatenate([e.pdg for e in padded]),
            jnp.concatenate([e.weights for e in padded]),
        )

    # -- Scikit-HEP interchange (imported lazily) ---------------------------------

    def to_awkward(self) -> Any:
        """Jagged awkward array of `Momentum4D` records (fields px, py, pz, E, pdg),
        with the `vector` behaviour registered so that `.pt`, `.eta`, `.mass`, boosts
        etc. work. Masked slots are dropped; event weights are not included."""
        import awkward as ak
        import vector

        vector.register_awkward()
        mom = np.asarray(self.momenta)
        mask = np.asarray(self.mask)
        counts = mask.sum(axis=1)
        flat = mom[mask]
        records = ak.zip(
            {
                "px": flat[:, 1],
                "py": flat[:, 2],
                "pz": flat[:, 3],
                "E": flat[:, 0],
                "pdg": np.asarray(self.pdg)[mask],
            },
            with_name="Momentum4D",
        )
        return ak.unflatten(records, counts)

    def to_vector(self) -> Any:
        """Flat `vector.MomentumNumpy4D` of the real particles, in event order."""
        import vector

        flat = np.asarray(self.momenta)[np.asarray(self.mask)]
        return vector.array(
            {"px": flat[:, 1], "py": flat[:, 2], "pz": flat[:, 3], "E": flat[:, 0]}
        )

    @classmethod
    def from_awkward(
        cls, particles: Any, capacity: int | None = None, weights: ArrayLike | None = None
    ) -> Events:
        """Build `Events` from a jagged awkward array of momentum records.

        Records need fields readable as `px, py, pz, E` (plain fields or `vector`
        properties, e.g. `pt, eta, phi, mass`); an optional `pdg` field is kept.
        `capacity` defaults to the largest multiplicity; an event with more particles
        than `capacity` raises `ValueError` (no silent truncation).
        """
        import awkward as ak
        import vector

        vector.register_awkward()
        counts = np.asarray(ak.num(particles, axis=1))
        maxn = int(counts.max()) if len(counts) else 0
        if capacity is None:
            capacity = max(maxn, 1)
        if maxn > capacity:
            bad = int(np.argmax(counts > capacity))
            raise ValueError(
                f"event {bad} has {counts[bad]} particles, more than capacity={capacity}; "
                f"raise capacity to at least {maxn}"
            )
        vec = ak.with_name(particles, "Momentum4D")
        comps = [ak.flatten(getattr(vec, c)) for c in ("E", "px", "py", "pz")]
        flat = np.stack([np.asarray(c, dtype=np.float64) for c in comps], axis=-1)
        fields = ak.fields(particles)
        flat_pdg = (
            np.asarray(ak.flatten(particles["pdg"]), dtype=np.int32)
            if "pdg" in fields
            else np.zeros(len(flat), np.int32)
        )
        n = len(counts)
        slot = np.arange(capacity)[None, :]
        mask = slot < counts[:, None]
        mom = np.zeros((n, capacity, 4))
        pdg = np.zeros((n, capacity), np.int32)
        mom[mask] = flat
        pdg[mask] = flat_pdg
        return cls(jnp.asarray(mom), jnp.asarray(mask), jnp.asarray(pdg), weights)
