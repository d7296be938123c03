"""The shower of one event, and its batched, jit-compiled public entry points."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._devices import n_shards, over_events, work_sizes
from .._events import Events
from .._safe import safe_sqrt
from ._cascade import (
    Emissions,
    Structure,
    cascade_structure,
    cascade_structures,
    emission_order_values,
    emission_values,
)
from ._kinematics import (
    LOG4,
    _BIG0,
    dipole_emission,
    half_width,
    keys_from_coords,
    lex_less,
    lund_distance,
    smoothstep,
)
from ._lund import log_no_emission
from ._model import DiscreteQCD, z_flavour_weights

OVERFLOW_TOLERANCE = 1e-4
"""Largest overflow fraction `sample` accepts before raising (see `DiscreteQCD.capacity`)."""


class ShowerEvent(NamedTuple):
    """One showered event: q, q̄, then the gluons in the order they were emitted
    (decreasing k⊥); `slots = n_steps + 2 ≤ capacity`."""

    momenta: Float[Array, "slots 4"]
    mask: Bool[Array, " slots"]
    pdg: Int[Array, " slots"]
    weight: Float[Array, ""]
    overflow: Bool[Array, ""]


def _born(key: PRNGKeyArray, model: DiscreteQCD, dtype) -> tuple[Array, Array, Array]:
    """q q̄ pair: flavour by LO Z couplings, direction by 1 + cos²θ."""
    u = jr.uniform(jr.fold_in(key, 0x0B0B), (3,), dtype=dtype)
    cdf = jnp.asarray(np.cumsum(z_flavour_weights(model.n_flavours)), dtype)
    flavour = 1 + jnp.sum(u[0] > cdf[:-1]).astype(jnp.int32)
    # Invert ∫(1 + c²) dc: c³ + 3c + 4 − 8u = 0 (Cardano; one real root).
    d = 8.0 * u[1] - 4.0
    root = jnp.sqrt(d * d / 4.0 + 1.0)
    cos_t = jnp.cbrt(d / 2.0 + root) + jnp.cbrt(d / 2.0 - root)
    sin_t = jnp.sqrt(jnp.clip(1.0 - cos_t**2, 0.0, 1.0))
    phi = 2.0 * jnp.pi * u[2]
    e = 0.5 * model.sqrt_s
    direction = jnp.stack([sin_t * jnp.cos(phi), sin_t * jnp.sin(phi), cos_t])
    q = jnp.concatenate([jnp.full((1,), e, dtype), e * direction])
    qbar = jnp.concatenate([jnp.full((1,), e, dtype), -e * direction])
    return q, qbar, flavour


class Steps(NamedTuple):
    """The emission sequence of one event: at step j parton `emitter[j]` (a parton index,
    2 + slot) is radiated by the dipole (`left[j]`, `right[j]`). Discrete, locally
    constant in the parameters."""

    emitted: Int[Array, " E"]
    left: Int[Array, " E"]
    right: Int[Array, " E"]
    valid: Bool[Array, " E"]


def _tables(model: DiscreteQCD, em: Emissions) -> dict:
    """Per-parton tables (index 0 = q, 1 = q̄, 2 + i = emission slot i)."""
    dtype = em.kappa.dtype
    big_l = model.log_s
    zeros_d = jnp.zeros((2, em.coord.shape[-1]), dtype)  # key levels: `key_depth` or fewer
    depth = jnp.concatenate([jnp.zeros(2, jnp.int32), em.depth])
    coord = jnp.concatenate([zeros_d, em.coord])
    owner = jnp.concatenate([zeros_d.at[:, 0].set(big_l), em.owner_kappa])
    keys = keys_from_coords(coord, depth)
    keys = keys.at[0, 0].set(-_BIG0).at[1, 0].set(_BIG0)
    kappa = jnp.concatenate([jnp.stack([big_l, big_l]), em.kappa])
    return dict(depth=depth, coord=coord, owner=owner, keys=keys, kappa=kappa)


def colour_steps(
    model: DiscreteQCD, em: Emissions, n_used: int | None = None, n_slots: int | None = None, run_all: bool = False
) -> Steps:
    """Order the emissions by decreasing κ and find each one's dipole (no gradients).

    `n_used` (static) bounds the emission slots any event uses: only the q q̄ pair and
    those slots take part in the colour-order search (valid slots come first).
    `n_slots` (static): the length of the returned steps (default: `em`'s slots).
    `run_all`: loop over all `n_used` slots, the ones past the event's emissions
    masked, instead of stopping after them: a static trip count, which a GPU runs
    without a host sync per iteration (same steps)."""
    em = jax.lax.stop_gradient(em)
    n_all = em.kappa.shape[0] if n_slots is None else int(n_slots)
    n_em = n_all if n_used is None else min(int(n_used), n_all)
    em = jax.tree.map(lambda x: x[:n_em] if jnp.ndim(x) else x, em)
    t = _tables(jax.lax.stop_gradient(model), em)
    n_part = n_em + 2
    order = jnp.argsort(jnp.where(em.valid, -em.kappa, jnp.inf)).astype(jnp.int32)
    n_valid = jnp.sum(em.valid, dtype=jnp.int32)
    slots = jnp.arange(n_part)

    def insert(chain, present, j, active):
        """Emission j (in κ order) joins the colour chain, if `active`: its left and
        right neighbours, and the chain and partons present after it."""
        e = order[j] + 2
        rank = jnp.sum(present & lex_less(t["keys"], t["keys"][e]), dtype=jnp.int32)
        left, right = chain[rank - 1], chain[rank]
        chain = jnp.where(active & (slots > rank), jnp.roll(chain, 1), chain)
        chain = chain.at[rank].set(jnp.where(active, e, chain[rank]))
        # Elementwise, so that XLA updates `present` in place (a scatter copied it).
        return chain, present | ((slots == e) & active), left, right

    chain0 = jnp.zeros(n_part, jnp.int32).at[1].set(1)
    present0 = jnp.zeros(n_part, bool).at[:2].set(True)
    if run_all:
        # The neighbours are the scan's outputs, not rows written into the carry: a
        # masked carry update needs the old carry after the new one exists, so XLA
        # copied every carried array every step.
        def step(carry, j):
            active = j < n_valid
            chain, present, left, right = insert(*carry, j, active)
            return (chain, present), (jnp.where(active, left, 0), jnp.where(active, right, 1))

        _, (left, right) = jax.lax.scan(step, (chain0, present0), jnp.arange(n_em, dtype=jnp.int32))
    else:
        def body(carry):
            j, chain, present, left, right = carry
            chain, present, l_j, r_j = insert(chain, present, j, True)
            return j + 1, chain, present, left.at[j].set(l_j), right.at[j].set(r_j)

        idx0 = jnp.zeros(n_em, jnp.int32)
        carry = (jnp.zeros((), jnp.int32), chain0, present0, idx0, idx0.at[:].set(1))
        _, _, _, left, right = jax.lax.while_loop(lambda c: c[0] < n_valid, body, carry)
    valid = jnp.arange(n_em) < n_valid
    pad = lambda x, v: jnp.concatenate([x, jnp.full(n_all - n_em, v, x.dtype)])  # noqa: E731
    return Steps(
        pad(jnp.where(valid, order + 2, 0), 0), pad(left, 0), pad(jnp.where(valid, right, 1), 1), pad(valid, False)
    )


def apply_steps(
    model: DiscreteQCD,
    em: Emissions,
    steps: Steps,
    q: Array,
    qbar: Array,
    n_steps: int,
    n_active: Array | None = None,
) -> tuple[Array, Array]:
    """Apply the first `n_steps` emissions of `steps` to the q q̄ pair; return momenta
    `(n_steps + 2, 4)` (q, q̄, emissions in k⊥ order) and the hardest-emission weight
    (`hardest_emission_weight`). Differentiable in the model's leaves (through `em`);
    reverse-mode memory is one momentum table per step. Steps from `n_active` on (a
    traced scalar, not batched under `vmap`) are skipped at run time."""
    dtype = q.dtype
    lam = model.lambda_qcd
    big_l = model.log_s
    kc = model.kappa_cut
    t = _tables(model, em)
    is_gluon = jnp.arange(model.capacity) >= 2
    tiny = jnp.finfo(dtype).tiny

    def parton(i, k, with_fold):
        fold = jnp.where(with_fold & is_gluon[i], 0.5 * (t["kappa"][i] - k), 0.0)
        return dict(key=t["keys"][i], coord=t["coord"][i], owner=t["owner"][i], depth=t["depth"][i], fold=fold)

    @jax.checkpoint
    def step(p, xs):
        j, e, left, right, valid = xs
        k = t["kappa"][e]
        d_left = jnp.maximum(lund_distance(parton(left, k, True), parton(e, k, False), k), 0.0)
        d_right = jnp.maximum(lund_distance(parton(e, k, False), parton(right, k, True), k), 0.0)
        total = d_left + d_right
        r = jnp.where(total > 0, d_left / jnp.where(total > 0, total, 1.0), 0.5)

        a_row, b_row, g_row = row[left], row[right], 2 + j
        pa, pb = p[a_row], p[b_row]
        # Products written out (a batched `jnp.dot` can become a GEMM kernel on a GPU).
        sd = jnp.maximum(2.0 * (pa[0] * pb[0] - (pa[1] * pb[1] + pa[2] * pb[2] + pa[3] * pb[3])), tiny)
        log_sd = jnp.log(sd / lam**2)
        # Stay inside the dipole's phase space, short of its edge (a ∥ b at the edge).
        k_eff = jnp.minimum(k, log_sd - LOG4 - 0.05)
        y_half = half_width(log_sd, k_eff)
        yd = (2.0 * r - 1.0) * y_half
        kt = lam * jnp.exp(0.5 * k_eff) * jnp.sqrt(smoothstep((k - kc) / model.softness))
        pa2, pg, pb2, xa, xb = dipole_emission(pa, pb, kt, yd, em.phi[e - 2])
        # The three changed rows in one in-place scatter (old values on padding steps).
        # A select of the whole table needs the old table after the writes, and three
        # separate writes fused a read of it into the second: either way XLA copied the
        # table every step (one core, 10⁵ events: realize 0.763 → 0.742 s, JVP 1.63 →
        # 1.57 s). (On an H200 the three writes inside the `n_active` branch lost to
        # the select, 0.28 vs 0.21 s; a GPU no longer takes that branch, `skip_steps`.)
        rows = jnp.stack([a_row, g_row, b_row])
        new = jnp.where(valid, jnp.stack([pa2, pg, pb2]), p[rows])
        p = p.at[rows].set(new, unique_indices=True)
        return p, None

    # Output rows: q, q̄, then the emissions in the order they are applied, so that
    # the momentum table holds only n_steps + 2 rows.
    row = jnp.zeros(model.capacity, jnp.int32).at[1].set(1)
    row = row.at[steps.emitted[:n_steps]].set(jnp.where(steps.valid[:n_steps], 2 + jnp.arange(n_steps, dtype=jnp.int32), 0))
    row = row.at[0].set(0).at[1].set(1)
    p0 = jnp.zeros((n_steps + 2, 4), dtype).at[0].set(q).at[1].set(qbar)
    xs = (jnp.arange(n_steps), steps.emitted[:n_steps], steps.left[:n_steps], steps.right[:n_steps], steps.valid[:n_steps])
    if n_active is not None:
        # A real branch (not a select) as long as n_active is not batched: a chunk of
        # events sorted by multiplicity stops paying at its busiest event's last step.
        apply = step
        step = lambda p, xs: jax.lax.cond(xs[0] < n_active, apply, lambda p, xs: (p, None), p, xs)  # noqa: E731
    p, _ = jax.lax.scan(step, p0, xs)
    weight = hardest_emission_weight(model, em) if model.me_correction else jnp.ones((), dtype)
    return p, weight


def first_emission_weights(model: DiscreteQCD, em: Emissions) -> Float[Array, " E"]:
    """Per emission slot, the exact-O(α_s) weight it would carry as the event's first
    (hardest) emission: |M|²(q q̄ g) over the shower's density, times the Jacobian from
    the Lund triangle (half width Y_tri = (L − κ)/2) to exact three-body phase space
    (half width Y_d, `half_width`). The first emission is radiated by the q q̄ dipole
    (s_d = s) at y_d = y·Y_d/Y_tri, so x_a = 1 − k⊥e^{−y_d}/√s, x_b = 1 − k⊥e^{y_d}/√s
    and the weight is (Y_d/Y_tri)·(x_a² + x_b²)/2 (0 above the edge κ > L − ln 4).
    Meaningful for emissions of the q q̄ triangle (depth 1); 1 elsewhere.
    Differentiable in the model's leaves."""
    dtype = em.kappa.dtype
    big_l = model.log_s
    tiny = jnp.finfo(dtype).tiny
    primary = em.valid & (em.depth == 1)
    # Double where: padding and fold slots see a safe κ, so that no 0·inf reaches the
    # reverse-mode cotangents.
    k = jnp.where(primary, em.kappa, 0.5 * big_l)
    y = jnp.where(primary, em.coord[:, 0], 0.0)
    y_tri = jnp.maximum(0.5 * (big_l - k), tiny)
    k_eff = jnp.minimum(k, big_l - LOG4 - 0.05)
    yd = y * half_width(big_l, k_eff) / y_tri
    # safe_sqrt: a safe κ may lie below the cutoff (smoothstep 0, √ not differentiable).
    kt = model.lambda_qcd * jnp.exp(0.5 * k_eff) * safe_sqrt(smoothstep((k - model.kappa_cut) / model.softness))
    xa = 1.0 - kt * jnp.exp(-yd) / model.sqrt_s
    xb = 1.0 - kt * jnp.exp(yd) / model.sqrt_s
    w = half_width(big_l, k) / y_tri * 0.5 * (xa**2 + xb**2)
    return jnp.where(primary, w, 1.0)


def hardest_emission_weight(model: DiscreteQCD, em: Emissions) -> Float[Array, ""]:
    """The event weight that makes the hardest emission exact at O(α_s).

    The exact rule gives the event the `first_emission_weights` entry of its largest-κ
    emission. That entry jumps when the two hardest emissions swap order as the
    parameters move, a jump that pathwise derivatives cannot see (it biased
    d⟨1−T⟩/dα_s by +8%). So the hardest emission is chosen softly: the weight is
    Σ_i π_i w_i over the q q̄-triangle emissions with π = softmax(κ_i/τ),
    τ = `model.me_temperature`. It is continuous in the parameters and tends to the
    exact rule as τ → 0; events whose two hardest emissions lie within τ in κ
    (≈ 2% at τ = 0.1) are the only ones changed. 1 for an event without emissions."""
    w = first_emission_weights(model, em)
    primary = em.valid & (em.depth == 1)
    logits = jnp.where(primary, em.kappa / model.me_temperature, -jnp.inf)
    top = jnp.where(jnp.any(primary), jnp.max(logits), 0.0)
    p = jnp.where(primary, jnp.exp(jnp.where(primary, logits, top) - top), 0.0)
    total = jnp.sum(p)
    return jnp.where(total > 0, jnp.sum(p * w) / jnp.where(total > 0, total, 1.0), 1.0)


def shower_event(key: PRNGKeyArray, model: DiscreteQCD) -> ShowerEvent:
    """Shower one e+e- → q q̄ event. Pure in `(key, model)`: with `key` fixed, every
    momentum and the weight are differentiable functions of the model's leaves
    (`alpha_s`, `kt_min`, `delta_y`). Lift over events with `jax.vmap`."""
    st = cascade_structure(jr.fold_in(key, 1), model)
    steps = colour_steps(model, emission_order_values(model, st))
    return realize_event(key, model, st, steps, model.capacity - 2)


def realize_event(
    key: PRNGKeyArray,
    model: DiscreteQCD,
    st: Structure,
    steps: Steps,
    n_steps: int,
    n_active: Array | None = None,
) -> ShowerEvent:
    """The differentiable part of `shower_event`, given the event's discrete content
    (`st`, `steps`) at the same parameters; `n_steps` ≥ its number of emissions.
    `n_active`: optional unbatched bound on the emissions of every event in a vmapped
    batch; the loops skip the slots beyond it (same values, less work)."""
    dtype = model.alpha_s.dtype
    q, qbar, flavour = _born(jr.fold_in(key, 0), model, dtype)
    em = emission_values(model, st, n_steps, n_active)
    p, weight = apply_steps(model, em, steps, q, qbar, n_steps, n_active)
    if model.first_emission_only:
        # Divide the hardest emission's distribution by its no-emission probability:
        # the result is the first-emission density itself (the O(α_s) test switch).
        k_h = jnp.max(jnp.where(em.valid, em.kappa, -1.0))
        nb = model.bins_per_side
        psi = jnp.sum(
            jax.vmap(
                lambda b: log_no_emission(
                    k_h, b, model.log_s, model.radiator(fold=False), model.delta_y, model.frozen_coupling
                )
            )(jnp.arange(-nb, nb + 1))
        )
        weight = jnp.where(jnp.any(em.valid), weight * jnp.exp(psi), 0.0)
    mask = jnp.concatenate([jnp.ones(2, bool), steps.valid[:n_steps]])
    p = jnp.where(mask[:, None], p, 0.0)
    pdg = jnp.concatenate([jnp.stack([flavour, -flavour]), jnp.full(n_steps, 21, jnp.int32)])
    pdg = jnp.where(mask, pdg, 0)
    return ShowerEvent(p, mask, pdg, weight, em.overflow)


class Layout(eqx.Module):
    """The discrete content of a batch of events at given parameters: per event its
    key, its cascade `Structure` and its emission `Steps`. No gradients flow through a
    layout; it is locally constant in the parameters, so holding it fixed while
    differentiating `realize` gives the exact pathwise derivative. `order`: per device
    share, the events in stable order of their number of emissions, those with deep
    folds last (local indices; `_sort_keys`), which `layout` computes once and
    `realize` chunks by."""

    keys: Array
    structure: Structure
    steps: Steps
    order: Int[Array, " n"]
    n_steps: int = eqx.field(static=True)

    @property
    def n_events(self) -> int:
        return self.keys.shape[0]

    @property
    def mask(self) -> Bool[Array, "n slots"]:
        """Which particle slots of `realize`'s events are real `(n_events, 2 + n_steps)`,
        on the layout's device: the q q̄ pair and each valid emission (real ones first)."""
        return jnp.concatenate([jnp.ones((self.n_events, 2), bool), self.steps.valid[:, : self.n_steps]], axis=1)


@eqx.filter_jit
def _structures(keys: Array, model: DiscreteQCD) -> Structure:
    def local(keys, model):
        return cascade_structures(jax.vmap(lambda k: jr.fold_in(k, 1))(keys), model)

    return over_events(local, keys.shape[0], 1, 1)(keys, model)


# Colour-key levels of the colour-order search and `realize` for chunks of events with
# shallow folds (`_by_busiest`; the emission-slot tiers are per backend,
# `_devices.WorkSizes.emission_tiers`).
_SHALLOW_LEVELS = 6


@eqx.filter_jit
def _steps(st: Structure, order: Array, model: DiscreteQCD, n_used: int) -> Steps:
    # Events sorted by their number of emissions, so that each chunk's while loop
    # (one iteration per emission) runs about as long as its events need; a chunk
    # of unsorted events runs as long as its busiest (4x the mean at 1024 events).
    run_all = not work_sizes().skip_steps

    def local(st, order, model):
        n_slots = st.valid.shape[1]
        counts, depths = _busiest_deepest(st)

        def chunk(idx):
            # The search costs O(slots × levels) per emission (see `_by_busiest`).
            def run(n, d):
                s = _chunk_structure(st, idx, n, d)
                return jax.vmap(
                    lambda s: colour_steps(model, emission_order_values(model, s), n, n_slots, run_all=run_all)
                )(s)

            return _by_busiest(counts[idx], depths[idx], n_used, st, run)

        return _map_sorted_chunks(chunk, order, work_sizes().steps_batch)

    # `order` sorts each device's share of the events (local indices).
    return over_events(local, order.shape[0], 2, 1)(st, order, model)


def _inverse_permutation(order: Array) -> Array:
    return jnp.zeros_like(order).at[order].set(jnp.arange(order.shape[0], dtype=order.dtype))


def _rows(x: Array, idx: Array, n: int) -> Array:
    """`x[idx, :n]` (events `idx`, their first n slots) for per-event arrays, `x[idx]`
    for per-event scalars. Gathered as one contiguous run per event: XLA's CPU gather
    of `x[idx, :n]` went element by element (int8 ancestors at ≈ 1 GB/s; realize 9 %
    faster this way)."""
    if x.ndim == 1:
        return x[idx]
    flat = x.reshape(x.shape[0], -1)[idx, : n * math.prod(x.shape[2:])]
    return flat.reshape(flat.shape[:1] + (n,) + x.shape[2:])


def _map_sorted_chunks(fn: Callable, order: Array, chunk: int):
    """`fn(idx)` over chunks of `chunk` events taken in `order` (sorted by number of
    emissions, so that a chunk's busiest event is close to its typical one; unsorted,
    4x the mean at 1024 events), `lax.map`-ped; the results back in event order.
    `fn` gathers its own events: a sorted copy of the whole layout up front cost a
    quarter of `realize` on a CPU. The last chunk is padded with copies of the last
    (busiest) event, whose results are dropped. `chunk` 0: one call."""
    n = order.shape[0]
    if not chunk or n <= chunk:
        out = fn(order)
    else:
        n_chunks = -(-n // chunk)
        padded = jnp.concatenate([order, jnp.full(n_chunks * chunk - n, order[-1], order.dtype)])
        out = jax.lax.map(fn, padded.reshape(n_chunks, chunk))
        out = jax.tree.map(lambda x: x.reshape((n_chunks * chunk,) + x.shape[2:]), out)
    inverse = _inverse_permutation(order)
    return jax.tree.map(lambda x: x[inverse], out)


def _busiest_deepest(st: Structure) -> tuple[Array, Array]:
    """Per event: its number of emissions and its deepest fold nesting."""
    counts = jnp.sum(st.valid, axis=-1, dtype=jnp.int32)
    return counts, jnp.max(jnp.where(st.valid, st.depth, 0), axis=-1).astype(jnp.int32)


def _by_busiest(counts: Array, depths: Array, n_full: int, st: Structure, run: Callable):
    """`run(n, levels)` for a chunk of events with these emission `counts` and fold
    `depths` (`_busiest_deepest`): on n slots, the smallest of the backend's
    `WorkSizes.emission_tiers` that holds the chunk's busiest event, and the first
    `_SHALLOW_LEVELS` levels of the colour keys, if its deepest fold nesting has at
    most that many levels (the maxima are unbatched scalars: a real branch), else on
    `n_full` slots and all of `st`'s levels.

    The colour-order search and `realize`'s momentum table cost O(slots) per emission,
    and the key comparisons and Lund distances O(levels); at α_s = 0.118, 95 % of
    events have at most 16 emissions and all but 12 in 10⁵ at most 6 levels (the
    structure keeps `key_depth` = 12; `_sort_keys` puts the deeper ones last). Below
    its depth an emission's key levels are zero, so dropping them changes no comparison
    and no distance. One core, 10⁵ events, with the 6-level branch: colour order
    0.48 → 0.39 s, `realize` 0.85 → 0.78 s (0.72 s with the deep events last)."""
    levels_full = st.ancestors.shape[-1]
    shallow = min(levels_full, _SHALLOW_LEVELS)
    small = sorted({min(n_full, n) for n in work_sizes().emission_tiers})
    branches = [(n, shallow) for n in small if (n, shallow) != (n_full, levels_full)] + [(n_full, levels_full)]
    if len(branches) == 1:
        return run(n_full, levels_full)
    busiest, deepest = jnp.max(counts), jnp.max(depths)
    # The smallest branch that holds the chunk (the tiers ascend, so the ones that do
    # not hold it come first): a real branch, the maxima are unbatched.
    index = sum(((busiest > n) | (deepest > d)).astype(jnp.int32) for n, d in branches[:-1])
    return jax.lax.switch(index, [lambda n=n, d=d: run(n, d) for n, d in branches])


def _chunk_structure(st: Structure, idx: Array, n: int, levels: int) -> Structure:
    """Events `idx` of `st`, their first n slots (the valid ones are a prefix) and the
    first `levels` levels of their ancestry (and so of every colour key built from
    it), gathered inside the branch that uses them: no sorted copy of the whole
    structure (8 % of `realize` on a CPU)."""
    sub = jax.tree.map(lambda x: _rows(x, idx, n), st)
    return sub._replace(ancestors=sub.ancestors[..., :levels])


@functools.partial(jax.jit, static_argnums=1)
def _stable_order(keys: Array, shares: int) -> Array:
    """Per share, the local event indices in stable order of their sort keys."""
    return jnp.argsort(keys.reshape(shares, -1), axis=1, stable=True).reshape(-1).astype(jnp.int32)


def _sort_keys(st: Structure) -> tuple[Array, Array]:
    """Per event, its number of emissions and the key `layout` sorts events by: that
    number, plus `E + 1` for events with folds deeper than `_SHALLOW_LEVELS`, so that
    the rare deep events (12 in 10⁵ at α_s = 0.118) share the last chunks instead of
    keeping many chunks off `_by_busiest`'s shallow branch (a GPU chunk of 2¹⁸ events
    would almost always hold one)."""
    counts, depths = _busiest_deepest(st)
    return counts, counts + jnp.where(depths > _SHALLOW_LEVELS, st.valid.shape[-1] + 1, 0)


def _emission_order(st: Structure) -> tuple[Array, int]:
    """Per device share, the events in stable order of their number of emissions, those
    with deep folds last (`_sort_keys`; local indices), and the busiest event's number."""
    counts, keys = _sort_keys(st)
    shares = n_shards(counts.shape[0])
    if jax.default_backend() == "cpu":
        # NumPy's stable sort of 16-bit integers is a radix sort: 30x faster than XLA's
        # CPU sort at 2·10⁶ events. (Keys are at most twice the capacity.)
        host = np.asarray(keys)
        small = host.astype(np.uint16 if int(host.max()) < 2**16 else np.int64)
        order = jnp.asarray(np.argsort(small.reshape(shares, -1), axis=1, kind="stable").reshape(-1), jnp.int32)
        return order, int(np.asarray(counts).max())
    # On the device: only the busiest count comes to the host.
    return _stable_order(keys, shares), int(jnp.max(counts))


def layout(
    key: PRNGKeyArray, model: DiscreteQCD, n_events: int, min_steps: int = 0, steps_headroom: int = 0
) -> Layout:
    """Discrete content of `n_events` events (event i uses `split(key, n_events)[i]`).

    `n_steps` (the scan length of the colour ordering and of `realize`) is the busiest
    event's number of emissions rounded up to a multiple of 8, plus `steps_headroom`,
    and at least `min_steps` (at most `capacity − 2`): callers that make many layouts
    pass their largest so far, and headroom the first time, so that shapes (and
    compilations) stay when the parameters move. Steps past an event's emissions cost
    nothing in `realize` (its chunks stop at their busiest event).
    """
    if int(n_events) < 1:
        raise ValueError(f"n_events must be >= 1, got {n_events}")
    if int(steps_headroom) < 0:
        raise ValueError(f"steps_headroom must be >= 0, got {steps_headroom}")
    model.check_values()
    keys = jr.split(key, int(n_events))
    st = _structures(keys, model)
    order, busiest = _emission_order(st)
    # Scan only as far as the busiest event needs, rounded up to limit recompilation.
    busy = max(8, -(-busiest // 8) * 8)
    n_steps = int(min(model.capacity - 2, max(busy + int(steps_headroom), int(min_steps))))
    steps = _steps(st, order, model, n_steps)
    return Layout(keys, st, steps, order, n_steps)


@eqx.filter_jit
def _realize_arrays(lay: Layout, model: DiscreteQCD, chunk: int) -> ShowerEvent:
    return over_events(lambda lay, model: _realize_local(lay, model, chunk), lay.n_events, 1, 1)(lay, model)


def _realize_local(lay: Layout, model: DiscreteQCD, chunk: int) -> ShowerEvent:
    counts, depths = _busiest_deepest(lay.structure)  # counts = the steps' valid ones
    skip = work_sizes().skip_steps
    # Only the first n ≤ n_steps slots: the valid slots of a cascade are a prefix (the work
    # queue appends), every event has at most n_steps of them, and parents, ancestors
    # and emitters index valid slots. (A mean event fills 8 of the 62 slots.)
    def batch(idx):
        # Every loop of the batch stops after its busiest event's emissions (or runs
        # to its tier, `WorkSizes.skip_steps`).
        n_active = jnp.max(counts[idx]) if skip else None

        def run(n, d):
            st = _chunk_structure(lay.structure, idx, n, d)
            steps = jax.tree.map(lambda x: _rows(x, idx, n), lay.steps)
            ev = jax.vmap(lambda k, s, t: realize_event(k, model, s, t, n, n_active))(lay.keys[idx], st, steps)
            return _pad_rows(ev, lay.n_steps + 2)

        # A step rewrites the event's whole momentum table (n + 2 rows) and computes
        # two Lund distances over the key levels.
        return _by_busiest(counts[idx], depths[idx], lay.n_steps, lay.structure, run)

    # `lay.order`: the layout's sort by emission count (this share's, local).
    return _map_sorted_chunks(batch, lay.order, chunk)


def _pad_rows(ev: ShowerEvent, rows: int) -> ShowerEvent:
    """`ev` (a batch) with its parton rows padded to `rows` (zero momenta, masked)."""
    extra = rows - ev.momenta.shape[1]
    if not extra:
        return ev
    pad = lambda x: jnp.concatenate([x, jnp.zeros(x.shape[:1] + (extra,) + x.shape[2:], x.dtype)], axis=1)  # noqa: E731
    return ev._replace(momenta=pad(ev.momenta), mask=pad(ev.mask), pdg=pad(ev.pdg))


def realize(lay: Layout, model: DiscreteQCD, chunk: int | None = None) -> tuple[Events, Bool[Array, " n"]]:
    """Momenta and weights of the events in `lay` at `model`, differentiably.

    `model` must have the parameters `lay` was made with (up to the derivative:
    `jax.grad` of a function of `realize(lay, model)` with respect to `model` is the
    pathwise derivative). Events are processed `chunk` at a time to bound memory
    (default: the backend's, `_devices.work_sizes`: 512 on a CPU; 0 = all at once).
    Returns `(Events, overflow)`.
    """
    out = _realize_arrays(lay, model, int(work_sizes().realize_chunk if chunk is None else chunk))
    return Events(out.momenta, out.mask, out.pdg, out.weight), out.overflow


def simulate(key: PRNGKeyArray, model: DiscreteQCD, n_events: int) -> tuple[Events, Bool[Array, " n"]]:
    """Shower `n_events` events; return `(Events, overflow)` with the per-event overflow
    flag. Equivalent to `realize(layout(key, model, n_events), model)`."""
    return realize(layout(key, model, n_events), model)


def sample(key: PRNGKeyArray, model: DiscreteQCD, n_events: int) -> Events:
    """Shower `n_events` e+e- → q q̄ events (see `diffhep.shower` for the model).

    **Arguments:**
    - `key`: a JAX PRNG key; event i uses `jax.random.split(key, n_events)[i]`.
    - `model`: a `DiscreteQCD`.
    - `n_events`: number of events (static).

    **Returns:** `Events` with q, q̄, then the gluons in emission order (decreasing
    k⊥), momenta in GeV, weights = the hardest-emission matrix-element weight. The
    number of slots is the busiest event's multiplicity rounded up to a multiple of 8
    (at most `capacity`), so that downstream O(n³) observables do not pay for padding. Differentiable in the
    model's leaves with the key held fixed (use `shower_event`/`simulate` under `grad`).

    Raises `ValueError` if more than 1e-4 of the events overflow the capacity.
    """
    events, overflow = simulate(key, model, n_events)
    frac = _overflow_fraction(overflow)
    if frac is not None and frac > OVERFLOW_TOLERANCE:
        raise ValueError(
            f"{frac:.2%} of events overflowed capacity={model.capacity} (or key_depth="
            f"{model.key_depth}) at alpha_s={float(model.alpha_s):.4g}, kt_min="
            f"{float(model.kt_min):.3g} GeV; the tolerance is {OVERFLOW_TOLERANCE:g}. "
            "Raise DiscreteQCD(capacity=...) (e.g. double it) or kt_min."
        )
    return events


def _overflow_fraction(overflow: Array) -> float | None:
    try:
        return float(np.mean(np.asarray(overflow)))
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return None
