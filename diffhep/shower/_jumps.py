"""Jump partners: the derivative of what `realize`'s pathwise derivative cannot see.

With the random numbers fixed, an event's momenta jump where two of its emissions
swap their k⊥ order as the parameters move: the emissions are applied in decreasing
κ = ln(k⊥²/Λ²), so the dipole that radiates each, and who recoils, change at κ_a = κ_b.
A derivative of `realize` with the layout held fixed misses the flux of events across
that surface. For a per-event quantity h (a weighted histogram entry, w·(1 − T), …)
the missing piece of d E[h]/dθ is the surface term

    E[ δ(g) · ∂g/∂θ · (h₊ − h₋) ],   g = κ_a − κ_b,

with h₊ the event as applied with a before b and h₋ with b first. It is estimated
with a window of half width `window` in g: every event whose two emissions adjacent
in κ order lie closer than `window` gets a *partner*, the same event (same key, same
emissions) realised with those two exchanged, and contributes
(1/(2·window)) · ∂g/∂θ · (h_event − h_partner). Events on both sides of the surface
do so (each sees its own order as "first above second"), hence 2·window. The
estimate is unbiased to O(window²) (symmetric window); its variance grows like
1/window.

It enters through the weights, so that every weighted sum of per-event quantities
(histograms, means, ratios of sums) gets it by the chain rule: `realize_with_jumps`
returns the events followed by their partners (per device, where the events are
split over devices: `JumpPartners.join`), with

    w_event → w_event · (1 + Σ c),   w_partner = −c · w_partner,
    c = (g − stop_gradient(g)) / (2·window),

so every value is unchanged (c = 0; partners weigh exactly 0) and only derivatives
move. Only pairs whose exchange changes the kinematics get partners: two emissions
from disjoint dipoles that share no parton commute exactly.

Measured (12 × 2000 events, α_s = 0.118, the same keys at α_s ± 0.005, each
re-laid out, so that the central difference sees every jump): d⟨1−T⟩/dα_s from
`realize` is 0.6641, +0.0237 ± 0.0054 above the difference 0.6404; with the
partners it is 0.6432 (window 0.1), +0.0027 ± 0.0046; windows 0.05, 0.2 and 0.4
give +0.0014, +0.0021 and +0.0026 (± 0.005). What is left is consistent with zero
and with what partners do not cover, measured before at +0.002 ± 0.003: emissions
appearing at the cutoff (switched on smoothly, `DiscreteQCD.softness`), and two
gluons' colour keys crossing.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from .._devices import event_mesh, n_shards, over_events
from .._events import Events
from ._cascade import emission_values
from ._model import DiscreteQCD
from ._shower import Layout, Steps, _emission_order, _rows, realize

DEFAULT_WINDOW = 0.1
"""Half width in κ of the surface window (see the module docs; measured choice)."""


class JumpPartners(eqx.Module):
    """The partners of a `Layout` (see the module docs): `layout` holds one event per
    partner (its key and structure copied from event `event[i]` of the main layout,
    its steps with the emissions in slots `first[i]` and `second[i]` exchanged;
    `first` has the larger κ at the layout's parameters). Only the entries with `live`
    are partners; the rest pad the count to a stable size (`jump_partners`), so that
    `realize_with_jumps` compiles once for many layouts. `window`: the half width in κ
    of the surface window. `layout` is None when there is no partner at all."""

    layout: Layout | None
    event: Int[Array, " m"]
    first: Int[Array, " m"]
    second: Int[Array, " m"]
    live: Bool[Array, " m"]
    window: float = eqx.field(static=True)

    @property
    def n_partners(self) -> int:
        """Partner slots, padding included (`int(live.sum())` are real)."""
        return int(self.event.shape[0])

    def join(self, events, others):
        """Per-event PyTrees of the layout's events and of the partners (leading axes
        `n_events` and `n_partners`, e.g. their masks) joined in `realize_with_jumps`'s
        order: per device share, its events then its partners (on one device: all
        events, then all partners). No communication between devices."""
        n = jax.tree.leaves(events)[0].shape[0]
        return over_events(_concatenated, n, 2)(events, others)


def _padded_size(n_real: int, n_events: int, at_least: int, headroom: float) -> int:
    """`n_real` (times 1 + `headroom` where it exceeds `at_least`) rounded up to a
    multiple of 64 · 2^⌊log2(n_events/2048)⌋ (1.6-3.1 % of the events from 2048 on),
    and at least `at_least`: shapes that a run of layouts shares."""
    if n_real <= at_least:
        return int(at_least)
    quantum = 64 * 2 ** max(0, int(np.log2(max(n_events, 1) / 2048)))
    return -(-int(np.ceil(n_real * (1.0 + headroom))) // quantum) * quantum


@eqx.filter_jit
def _near_pairs(lay: Layout, window: float) -> Bool[Array, "n pairs"]:
    """Per event and step j: whether the emissions of steps j and j + 1 (adjacent in κ
    order: the steps apply the emissions by decreasing κ) are both valid and closer
    than `window` in κ."""

    def local(steps, kappa):
        slots = jnp.maximum(steps.emitted - 2, 0)
        k = jnp.where(steps.valid, jnp.take_along_axis(kappa, slots, axis=1), -jnp.inf)
        return steps.valid[:, 1:] & (k[:, :-1] - k[:, 1:] < window)

    # Per device on its own events, as everything here: see `realize_with_jumps`.
    return over_events(local, lay.n_events, 2)(lay.steps, lay.structure.kappa)


@jax.jit
def _pairs_and_counts(near: Array, commuting: Array) -> tuple[Bool[Array, "n pairs"], Int[Array, " shares"]]:
    """Per event and step j: whether steps j and j + 1 get a partner (near in κ, not
    commuting); and per device share, how many do (the one number the host needs)."""

    def local(near, commuting):
        pairs = near & ~commuting
        return pairs, jnp.sum(pairs, dtype=jnp.int32)[None]

    return over_events(local, near.shape[0], 2)(near, commuting)


def _select_on_host() -> bool:
    """Whether `jump_partners` selects the pairs in NumPy: on a CPU its nonzero is 6x
    faster than XLA's (10⁵ events: 17 ms against 95 ms); on an accelerator only the
    per-share counts cross to the host (a 10⁶-event step took 0.31 s on an H100 with
    the pair masks copied over)."""
    return jax.default_backend() == "cpu"


def _select_pairs_host(pairs: np.ndarray, shares: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_select_pairs` in NumPy, from the `(n, steps − 1)` pair mask."""
    n_local = pairs.shape[0] // shares
    ev, j = np.nonzero(pairs)
    share = ev // n_local  # `ev` ascends: each share's partners are a contiguous run
    rows = [np.nonzero(share == k)[0] for k in range(shares)]
    pad = lambda x, r, v: np.concatenate([x[r], np.full(size - r.size, x[r[-1]] if r.size else v)])  # noqa: E731
    live = np.concatenate([np.arange(size) < r.size for r in rows])
    j = np.concatenate([pad(j, r, -1) for r in rows]).astype(np.int32)
    ev = np.concatenate([pad(ev, r, k * n_local) for k, r in enumerate(rows)]).astype(np.int32)
    return ev, j, live


@functools.partial(jax.jit, static_argnums=2)
def _select_pairs(pairs: Array, offsets: Array, size: int) -> tuple[Array, Array, Array]:
    """Per share (`offsets`: the index of its first event): its partner pairs as
    (event, step) in order, then padding to `size`, never live: copies of its last
    partner, or its first event unchanged (j = −1). Event indices global."""

    def local(pairs, offset):
        steps = pairs.shape[1]
        flat = pairs.reshape(-1)
        count = jnp.sum(flat, dtype=jnp.int32)
        idx = jnp.nonzero(flat, size=size, fill_value=0)[0].astype(jnp.int32)
        live = jnp.arange(size) < count
        idx = jnp.where(live, idx, idx[jnp.maximum(count - 1, 0)])
        ev = jnp.where(count > 0, idx // steps, 0) + offset[0]
        j = jnp.where(count > 0, idx % steps, -1)
        return ev, j, live

    return over_events(local, pairs.shape[0], 2)(pairs, offsets)


@jax.jit
def _commuting(steps: Steps) -> Bool[Array, "n pairs"]:
    """Per event and step j: whether steps j and j + 1 commute (`_commutes`)."""

    def local(steps):
        e, left, right = steps.emitted, steps.left, steps.right
        return _commutes(e[:, :-1], left[:, :-1], right[:, :-1], left[:, 1:], right[:, 1:])

    return over_events(local, steps.emitted.shape[0], 1)(steps)


def _pair(steps: Steps, j: Array) -> tuple[Array, ...]:
    """Per event, (emitted, left, right) of steps j and j + 1."""
    take = lambda x, i: jnp.take_along_axis(x, i[:, None], axis=1)[:, 0]  # noqa: E731
    return tuple(take(x, i) for i in (j, j + 1) for x in (steps.emitted, steps.left, steps.right))


def _commutes(e1: Array, l1: Array, r1: Array, l2: Array, r2: Array) -> Array:
    """Whether two successive steps (emitted, left, right) commute: the second
    emission's dipole (l2, r2) neither contains the first emission e1 nor shares a
    parton with the first's dipole (l1, r1). Then in the other order each is radiated
    by the same dipole from the same momenta."""
    return (l2 != e1) & (r2 != e1) & (l2 != l1) & (l2 != r1) & (r2 != l1) & (r2 != r1)


@jax.jit
def _exchanged(steps: Steps, j: Array) -> Steps:
    """`steps` (per event) with the emissions of steps j and j + 1 applied in the other
    order. Nothing happens between two steps, so the chain around the first emission
    e1 is (l1, e1, r1) when e2 comes: e2 sits right of e1 (l2 = e1, r2 = r1), left of
    it (r2 = e1, l2 = l1) or elsewhere. Without e1, e2 is radiated by e1's dipole in
    the first two cases and by its own otherwise; e1 then by (l1, e2), (e2, r1) or
    (l1, r1). Later steps see the same partons present and do not change. (Equal to
    the full colour-order search with the two κ exchanged; tested.) Rows with j < 0
    stay."""
    keep, j = j < 0, jnp.maximum(j, 0)
    e1, l1, r1, e2, l2, r2 = _pair(steps, j)
    right_of, left_of = l2 == e1, r2 == e1
    rows = jnp.arange(j.shape[0])

    def put(x, a, b):
        return jnp.where(keep[:, None], x, x.at[rows, j].set(a).at[rows, j + 1].set(b))

    return steps._replace(
        emitted=put(steps.emitted, e2, e1),
        left=put(steps.left, jnp.where(right_of, l1, l2), jnp.where(left_of, e2, l1)),
        right=put(steps.right, jnp.where(left_of, r1, r2), jnp.where(right_of, e2, r1)),
    )


def jump_partners(
    lay: Layout, model: DiscreteQCD, window: float = DEFAULT_WINDOW, min_partners: int = 0, headroom: float = 0.0
) -> JumpPartners:
    """The partners of `lay` at `model` (the parameters `lay` was made with): one per
    pair of emissions adjacent in κ order, closer than `window` in κ, whose exchange
    changes the event. No gradients; a host step like `layout`. At α_s = 0.118 and
    the default window, 1.1 pairs per event are that close and 0.48 per event do not
    commute (window 0.05: 0.25, 0.2: 0.88).

    Where `lay`'s events are split over devices (`diffhep._devices.over_events`), the
    partners are too, each with its event's device: share k of the partners belongs to
    share k of the events, so that `realize_with_jumps` needs no communication between
    devices. Each share's count is padded (`live` False) to the same size: at least
    `min_partners` over all shares and, where they need more, (1 + `headroom`) × the
    largest share's count rounded up to a multiple of 1.6-3.1 % of the share's events
    (64 below 2048 events): callers that handle many layouts pass their largest
    `n_partners` so far, so that shapes (and compilations) stay."""
    if not window > 0:
        raise ValueError(f"window must be > 0 (a half width in kappa = ln(kt^2/Lambda^2)), got {window}")
    if not headroom >= 0:
        raise ValueError(f"headroom must be >= 0, got {headroom}")
    shares = n_shards(lay.n_events)
    n_local = lay.n_events // shares
    near, commuting = _near_pairs(lay, float(window)), _commuting(lay.steps)
    on_host = _select_on_host()
    if on_host:
        pairs = np.asarray(near) & ~np.asarray(commuting)
        counts = pairs.reshape(shares, -1).sum(axis=1)
    else:  # only the per-share counts cross to the host
        pairs, counts = _pairs_and_counts(near, commuting)
        counts = np.asarray(counts)
    size = _padded_size(int(counts.max(initial=0)), n_local, -(-int(min_partners) // shares), headroom)
    if shares == 1 and size and len(jax.devices()) > 1 and event_mesh(size) is not None:
        # Events that the devices do not divide run on one device: so must their partners.
        size += 1
    if size == 0:
        empty = jnp.zeros(0, jnp.int32)
        return JumpPartners(None, empty, empty, empty, jnp.zeros(0, bool), float(window))
    if on_host:
        ev, j, live = (jnp.asarray(x) for x in _select_pairs_host(pairs, shares, size))
    else:
        ev, j, live = _select_pairs(pairs, jnp.arange(shares, dtype=jnp.int32) * n_local, size)
    keys, st, steps, first, second = _partner_content(lay, ev, j)
    # The partners in the layout's own sort by emission count, for `realize`'s chunks.
    partners = Layout(keys, st, steps, _emission_order(st)[0], lay.n_steps)
    return JumpPartners(partners, ev, first, second, live, float(window))


@eqx.filter_jit
def _partner_content(lay: Layout, ev: Array, j: Array):
    """The partners' keys, structures and steps (their events' with steps j and j + 1
    exchanged), and the slots of the two exchanged emissions; each device gathers from
    its own share of `lay` (`ev` global, grouped by share)."""

    def local(keys, st, steps, ev, j):
        i = ev % keys.shape[0]
        # Only the first n_steps slots: all that `realize` reads (the valid slots are a
        # prefix, and parents, ancestors and emitters index valid slots). A mean event
        # fills 8 of the 62; 10⁵ events on 2 CPU cores: the gather 65 → 43 ms. Gathered
        # as `realize` gathers its chunks (`_rows`: one contiguous run per event).
        take = lambda tree: jax.tree.map(lambda x: _rows(x, i, lay.n_steps), tree)  # noqa: E731
        main = take(steps)
        e1, _, _, e2, _, _ = _pair(main, jnp.maximum(j, 0))
        return keys[i], take(st), _exchanged(main, j), jnp.maximum(e1 - 2, 0), jnp.maximum(e2 - 2, 0)

    return over_events(local, lay.n_events, 5)(lay.keys, lay.structure, lay.steps, ev, j)


def _concatenated(a, b):
    return jax.tree.map(lambda x, y: jnp.concatenate([x, y]), a, b)


def _joined(main: Events, flags: Array, others: Events, st, first, second, live, event, model, window, n_steps):
    """One device's share of `realize_with_jumps`: the gaps g of its partners, the
    weights that carry the surface term, and its events followed by its partners."""
    values = jax.vmap(lambda s: emission_values(model, s, n_steps).kappa)(st)
    take = lambda i: jnp.take_along_axis(values, i[:, None], axis=1)[:, 0]  # noqa: E731
    g = take(first) - take(second)  # κ_first − κ_second, differentiably
    c = jnp.where(live, g - jax.lax.stop_gradient(g), 0.0) / (2.0 * window)
    n_local = main.weights.shape[0]
    # `event` is global; within its share it is `event mod n_local`.
    scale = 1.0 + jnp.zeros(n_local, c.dtype).at[event % n_local].add(c)
    joined = _concatenated(
        Events(main.momenta, main.mask, main.pdg, main.weights * scale),
        Events(others.momenta, others.mask, others.pdg, -c * others.weights),
    )
    return joined, jnp.concatenate([flags, jnp.zeros(live.shape[0], bool)])


def realize_with_jumps(
    lay: Layout, partners: JumpPartners, model: DiscreteQCD, chunk: int | None = None
) -> tuple[Events, Bool[Array, " n"]]:
    """`realize(lay, model)` and the partners' events, weighted so that the derivative
    of any weighted sum over the events includes the surface term of k⊥-order swaps
    (module docs). Values equal `realize`'s and the partners weigh exactly 0. Use
    weighted statistics (unweighted ones would count the partners).

    Returns `(Events, overflow)` with `lay.n_events + partners.n_partners` events in
    the order of `JumpPartners.join`: on one device `realize`'s events, then the partners; where
    the events are split over devices, each device's share of them followed by its
    share of the partners (so that no device waits for another: collectives between
    XLA's CPU devices could stall for their 40 s limit and abort the process)."""
    events, overflow = realize(lay, model, chunk)
    if partners.layout is None:
        return events, overflow
    others, _ = realize(partners.layout, model, chunk)
    p = partners
    local = lambda *a: _joined(*a, p.window, p.layout.n_steps)  # noqa: E731
    return over_events(local, lay.n_events, 8, 1)(
        events, overflow, others, p.layout.structure, p.first, p.second, p.live, p.event, model
    )


@eqx.filter_jit
def realize_jvp(
    lay: Layout, model: DiscreteQCD, partners: JumpPartners | None = None
) -> tuple[Events, Float[Array, "n slots 4"], Float[Array, " n"]]:
    """`realize(lay, model)`, or `realize_with_jumps(lay, partners, model)`, and the
    derivative of its momenta and weights in α_s with the layout held fixed, from one
    compiled forward-mode pass: `(events, d_momenta, d_weights)`, the derivatives in
    GeV and per unit α_s. Compiled once per shape of `lay` (and `partners`)."""

    def f(a):
        m = eqx.tree_at(lambda m: m.alpha_s, model, a)
        events, _ = realize(lay, m) if partners is None else realize_with_jumps(lay, partners, m)
        return (events.momenta, events.weights), events

    a = model.alpha_s
    _, (d_momenta, d_weights), events = jax.jvp(f, (a,), (jnp.ones_like(a),), has_aux=True)
    return events, d_momenta, d_weights
