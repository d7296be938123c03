"""The Lund-plane cascade: which emissions exist, before any kinematics.

The q q̄ triangle (base L = ln(s/Λ²)) is cut into rapidity bins; each bin holds at
most one effective gluon, its hardest emission (`_lund.sample_bin`). Every emitted
gluon g opens a fold, a triangle of base κ_g, filled by the same rule with the gluon
coupling. Folds are strictly smaller than their parent, so the cascade ends.

**Random numbers.** Every bin is identified by its path in the fold tree (the bins
of all its ancestors). Its three uniforms (κ, rapidity, azimuth) are counter-based
draws `threefry(event key, path)`: the same bin receives the same uniforms at every
parameter value (common random numbers), whichever other emissions appear or
vanish, and no array size depends on the parameters. Holding the event key fixed
holds every uniform fixed.

**Static shapes.** Emissions go into a buffer of `capacity − 2` slots in creation
order (breadth first). Each slot opens its fold of `2B + 1` bins once. If an event
needs more slots, or nests folds deeper than `key_depth`, it is flagged `overflow`
(never silently truncated: the caller counts and reports it).

**Two passes.** `cascade_structure` decides which bins emit (a discrete, locally
constant function of the parameters) without gradients, in a loop whose length is
the number of emissions. `emission_values` then recomputes every emission's κ and
rapidity differentiably, level by level down the fold tree, from the recorded
bins and uniforms. Reverse-mode memory is then a few numbers per emission.

**Batches.** The kernel above handles one event; `cascade_structures` runs the same
steps for a batch as a work queue (lanes that finish an event take the next one),
because a vmapped while loop runs every event as long as the batch's busiest one
(≈ 3.2× the mean work at 1024 events; the work queue is 4.1× faster on one core and
gives the same structures).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Bool, Float, Int, Key, PRNGKeyArray, UInt

from .._devices import work_sizes
from ._lund import sample_bin
from ._model import DiscreteQCD


class Structure(NamedTuple):
    """Discrete content of one event's cascade; `E = capacity − 2` slots."""

    valid: Bool[Array, " E"]
    bin: Int[Array, " E"]  # rapidity bin index b in its triangle
    parent: Int[Array, " E"]  # slot of the parent gluon, −1 for the q q̄ triangle
    depth: Int[Array, " E"]  # 1 for the q q̄ triangle, d+1 in the fold of a depth-d gluon
    path: UInt[Array, " E"]  # path hash that names the bin's random numbers
    uniforms: Float[Array, "E 3"]  # (κ, rapidity, azimuth)
    corner: Float[Array, " E"]  # converged corner solution, reused by `emission_values`
    kappa: Float[Array, " E"]  # κ and rapidity as drawn (no gradients): they order the
    y: Float[Array, " E"]  # emissions (`emission_order_values`) without a second pass
    ancestors: Int[Array, "E D"]  # slot of the ancestor at depth l+1 (itself at depth−1)
    overflow: Bool[Array, ""]


class Emissions(NamedTuple):
    """Differentiable values of one event's emissions (`D = key_depth`)."""

    valid: Bool[Array, " E"]
    kappa: Float[Array, " E"]  # ln(k⊥²/Λ²)
    phi: Float[Array, " E"]  # azimuth in the emitting dipole's frame
    depth: Int[Array, " E"]
    coord: Float[Array, "E D"]  # row coordinate at each level of the ancestry
    owner_kappa: Float[Array, "E D"]  # base of the triangle at each level
    overflow: Bool[Array, ""]


_ROOT_SEED = 0x5EED


def _mix32(h: Array) -> Array:
    """MurmurHash3's 32-bit finaliser: a bijective avalanche mix of uint32."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def child_path(parent: Array, b: Array) -> Array:
    """Path hash of bin `b` inside the triangle named `parent`."""
    return _mix32(parent * jnp.uint32(0x9E3779B1) + (b + 64).astype(jnp.uint32))


_THREEFRY = "threefry2x32"


def slot_uniforms(key: PRNGKeyArray, path: Array, dtype) -> Float[Array, "3"]:
    """Three uniforms in (0, 1) for the bin named `path` (counter-based, threefry):
    `jr.uniform(jr.fold_in(key, path), (3,), dtype, minval=tiny, maxval=1)`, bit for bit.

    For threefry keys the hash is computed here, unrolled: JAX lowers threefry as a
    five-iteration loop on a CPU, which was half of `cascade_structures`' time. Keys of
    another implementation go through `jax.random`.
    """
    minval = jnp.finfo(dtype).tiny
    if _THREEFRY not in str(jr.key_impl(key)):
        return jr.uniform(jr.fold_in(key, path), (3,), dtype=dtype, minval=minval, maxval=1.0)
    k = jr.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    zero = jnp.zeros((), jnp.uint32)
    # fold_in: the hash of the counter pair (0, path); random bits: of (0, i), i = 0, 1, 2.
    f0, f1 = _threefry2x32(k[0], k[1], zero, jnp.asarray(path, jnp.uint32))
    b0, b1 = _threefry2x32(f0, f1, jnp.zeros(3, jnp.uint32), jnp.arange(3, dtype=jnp.uint32))
    finfo = jnp.finfo(dtype)
    if finfo.bits == 64:
        bits = (b0.astype(jnp.uint64) << jnp.uint64(32)) | b1.astype(jnp.uint64)
        one = jnp.asarray(np.array(1.0, np.float64).view(np.uint64))
    else:
        bits = b0 ^ b1
        one = jnp.asarray(np.array(1.0, np.float32).view(np.uint32))
    mantissa = (bits >> jnp.asarray(finfo.bits - finfo.nmant, bits.dtype)) | one
    floats = jax.lax.bitcast_convert_type(mantissa, dtype) - jnp.asarray(1.0, dtype)
    minval, maxval = jnp.asarray(minval, dtype), jnp.asarray(1.0, dtype)
    return jnp.maximum(minval, floats * (maxval - minval) + minval)


def _threefry2x32(k0: Array, k1: Array, x0: Array, x1: Array) -> tuple[Array, Array]:
    """The Threefry-2x32 block cipher (20 rounds, Random123), as `jax.random` uses it."""
    ks = (k0, k1, k0 ^ k1 ^ jnp.uint32(0x1BD11BDA))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for i in range(5):
        for r in ((13, 15, 26, 6), (17, 29, 16, 24))[i % 2]:
            x0 = x0 + x1
            x1 = x0 ^ ((x1 << jnp.uint32(r)) | (x1 >> jnp.uint32(32 - r)))
        x0, x1 = x0 + ks[(i + 1) % 3], x1 + ks[(i + 2) % 3] + jnp.uint32(i + 1)
    return x0, x1


def cascade_structure(key: PRNGKeyArray, model: DiscreteQCD) -> Structure:
    """Which bins of one event emit (no gradients; see module docs): the work queue of
    `cascade_structures` with one lane and one event, i.e. one triangle per loop
    iteration, the q q̄ triangle first, then the folds in slot order."""
    return jax.tree.map(lambda x: x[0], cascade_structures(key[None], model, lanes=1))


def emission_values(
    model: DiscreteQCD, st: Structure, n_used: int | None = None, n_active: Array | None = None
) -> Emissions:
    """Recompute κ, rapidity and the ancestry coordinates of every emission in `st`,
    differentiably in the model's leaves.

    Slots are filled breadth first, so a parent always precedes its children: one
    scan over the slots, each reading its parent's κ as its triangle's base, gives
    every κ with the exact chain-rule dependence on the parents. `n_used` (static)
    bounds the scan when the caller knows how many slots any event uses; `n_active`
    (a traced scalar, not batched under `vmap`) skips the slots from `n_active` on,
    at run time (see `realize_event`).
    """
    dtype = model.alpha_s.dtype
    n_slots = st.valid.shape[0]
    n_used = n_slots if n_used is None else min(int(n_used), n_slots)
    big_l = model.log_s
    a_root, a_fold = model.radiator(fold=False), model.radiator(fold=True)

    def one(kappa, xs):
        i, b, parent, u, w = xs
        root = parent < 0
        base = jnp.where(root, big_l, kappa[jnp.maximum(parent, 0)])
        a = jnp.where(root, a_root, a_fold)
        k, y, _ = sample_bin(b, base, a, model.delta_y, u[0], u[1], model.frozen_coupling, w)
        return kappa.at[i].set(k), y

    if n_active is not None:
        compute = one
        one = lambda kappa, xs: jax.lax.cond(  # noqa: E731
            xs[0] < n_active, compute, lambda kappa, xs: (kappa, jnp.zeros((), dtype)), kappa, xs
        )
    xs = (jnp.arange(n_used), st.bin[:n_used], st.parent[:n_used], st.uniforms[:n_used], st.corner[:n_used])
    kappa, y = jax.lax.scan(one, jnp.full(n_slots, -1.0, dtype), xs)
    y = jnp.concatenate([y, jnp.zeros(n_slots - n_used, dtype)])
    valid = st.valid & (jnp.arange(n_slots) < n_used)
    return _with_ancestry(model, st, valid, kappa, y)


def emission_order_values(model: DiscreteQCD, st: Structure) -> Emissions:
    """`Emissions` from the κ and rapidities recorded in `st` (no gradients): what
    `colour_steps` needs to order the emissions, without `emission_values`'s scan.
    They agree with `emission_values` to rounding."""
    return _with_ancestry(jax.lax.stop_gradient(model), st, st.valid, st.kappa, st.y)


def _with_ancestry(model: DiscreteQCD, st: Structure, valid: Array, kappa: Array, y: Array) -> Emissions:
    n_slots = st.valid.shape[0]
    big_l = model.log_s
    kappa = jnp.where(valid, kappa, -1.0)
    # Row l of an emission's ancestry: the rapidity of its ancestor at depth l+1 in
    # triangle l, and that triangle's base (L for l = 0, else the grandparent's κ).
    anc = st.ancestors
    has = anc >= 0
    ancs = jnp.maximum(anc, 0)
    coord = jnp.where(has, y[ancs], 0.0)
    prev = jnp.concatenate([jnp.full((n_slots, 1), -1, jnp.int32), anc[:, :-1]], axis=1)
    base = jnp.where(prev >= 0, kappa[jnp.maximum(prev, 0)], big_l)
    owner = jnp.where(has, base, 0.0)
    return Emissions(
        valid=valid,
        kappa=kappa,
        phi=2.0 * jnp.pi * st.uniforms[:, 2],
        depth=st.depth,
        coord=coord,
        owner_kappa=owner,
        overflow=st.overflow,
    )


def cascade(key: PRNGKeyArray, model: DiscreteQCD) -> Emissions:
    """Emissions of one event: `emission_values(model, cascade_structure(key, model))`."""
    return emission_values(model, cascade_structure(key, model))


def _small_int(largest: int):
    """The narrowest signed integer type that holds −1 … `largest`."""
    return jnp.int8 if largest <= 127 else jnp.int16 if largest <= 32767 else jnp.int32


def cascade_structures(keys: Key[Array, " n"], model: DiscreteQCD, lanes: int | None = None) -> Structure:
    """`cascade_structure` of many events, `keys (N,)` → `Structure` with leading axis N.

    The same as `jax.vmap(lambda k: cascade_structure(k, model))(keys)` (discrete
    content exactly, floats to rounding), but run as a work queue. A vmapped while
    loop runs every lane until the batch's busiest event is done: the mean event
    opens ≈ 9 triangles and the busiest of 1024 ≈ 30, so 3/4 of that work is padding.
    Here `lanes` lanes each open one triangle per iteration, and a lane whose event is
    complete takes the next unstarted event, so the loop runs ≈ Σ(triangles)/lanes
    iterations. The per-event `Structure` rows are written in place into (N, …)
    buffers. With `lanes=1` and one event it is the per-event kernel. The default
    `lanes` is the backend's (`_devices.work_sizes`: 1024 on a CPU).
    """
    model = jax.lax.stop_gradient(model)
    dtype = model.alpha_s.dtype
    n_ev = keys.shape[0]
    n_slots = model.capacity - 2
    depth_max = model.key_depth
    nb = model.bins_per_side
    bins = jnp.arange(-nb, nb + 1, dtype=jnp.int32)
    nbins = bins.shape[0]
    sizes = work_sizes()
    lanes = int(min(sizes.cascade_lanes if lanes is None else lanes, n_ev))
    kc = model.kappa_cut
    big_l = model.log_s
    a_root, a_fold = model.radiator(fold=False), model.radiator(fold=True)
    levels = jnp.arange(depth_max)

    def open_triangle(ev, i, root, st):
        """Where one lane's next triangle hangs: the q q̄ triangle of a new event
        (`root`) or the fold of slot i; its bins' path hashes and its event's key."""
        evs = jnp.minimum(ev, n_ev - 1)
        si = jnp.minimum(i, n_slots - 1)
        d = jnp.where(root, 0, st.depth[evs, si])
        parent_path = jnp.where(root, jnp.uint32(_ROOT_SEED), st.path[evs, si])
        base = jnp.where(root, big_l, st.kappa[evs, si])
        a = jnp.where(root, a_root, a_fold)
        parent_anc = jnp.where(root, -1, st.ancestors[evs, si])
        return d, parent_anc, child_path(parent_path, bins), base, a, keys[evs]

    def draw(base, a, u_kappa, u_y):
        """The hardest emission of each bin of one lane's triangle."""
        return jax.vmap(lambda b, uk, uy: sample_bin(b, base, a, model.delta_y, uk, uy, model.frozen_coupling))(
            bins, u_kappa, u_y
        )

    def uniforms(lane_keys, paths):
        return jax.vmap(jax.vmap(lambda p, k: slot_uniforms(k, p, dtype), in_axes=(0, None)))(paths, lane_keys)

    def body(carry):
        ev, i, n, nxt, st = carry
        # Lanes whose event is complete take the next unstarted events, in order.
        fresh = i >= n
        new_ev = nxt + jnp.cumsum(fresh, dtype=jnp.int32) - 1
        ev = jnp.where(fresh, jnp.where(new_ev < n_ev, new_ev, n_ev), ev)
        nxt = nxt + jnp.sum(fresh, dtype=jnp.int32)
        i = jnp.where(fresh, 0, i)
        n = jnp.where(fresh, 0, n)
        d, parent_anc, paths, base, a, lane_keys = jax.vmap(open_triangle, in_axes=(0, 0, 0, None))(ev, i, fresh, st)
        # The uniforms are computed once: as a plain expression XLA fused the integer
        # hash into each of its three consumers (κ, rapidity, the stored uniforms), 30 %
        # of this loop's time on a CPU. A branch whose predicate always holds (unknown
        # to XLA) prevents that. An optimisation barrier does too, but was 7 % slower on
        # a CPU core and no faster on an H100 (cascade 44.1 against 43.6 ms, float32,
        # 2·10⁶ events), although there the branch's predicate reaches the host.
        zeros = lambda *_: jnp.zeros((*paths.shape, 3), dtype)  # noqa: E731
        u = jax.lax.cond(nxt >= 0, uniforms, zeros, lane_keys, paths)
        kappa, y, w = jax.vmap(draw)(base, a, u[..., 0], u[..., 1])
        live = ev < n_ev
        emit = (kappa > kc) & live[:, None]
        if model.first_emission_only:
            hardest = jnp.argmax(jnp.where(emit, kappa, -jnp.inf), axis=1)
            emit = emit & (bins[None, :] - bins[0] == hardest[:, None])
        # A fold nested deeper than the key can describe cannot be ordered: flag it.
        too_deep = d >= depth_max
        deep_overflow = too_deep & jnp.any(emit, axis=1)
        emit = emit & ~too_deep[:, None]
        pos = jnp.where(emit, n[:, None] + jnp.cumsum(emit, axis=1, dtype=jnp.int32) - 1, n_slots)
        row = jnp.where(emit & (pos < n_slots), ev[:, None], n_ev)  # out of range: dropped
        n_new = n + jnp.sum(emit, axis=1, dtype=jnp.int32)
        depth = jnp.broadcast_to((d + 1)[:, None], emit.shape)
        parent = jnp.broadcast_to(jnp.where(fresh, -1, i)[:, None], emit.shape)
        anc = jnp.where(levels[None, None, :] == d[:, None, None], pos[:, :, None], parent_anc[:, None, :])
        put = lambda arr, val: arr.at[row, pos].set(jnp.asarray(val).astype(arr.dtype), mode="drop")  # noqa: E731
        st = st._replace(
            valid=put(st.valid, True),
            bin=put(st.bin, jnp.broadcast_to(bins, emit.shape)),
            parent=put(st.parent, parent),
            depth=put(st.depth, depth),
            path=put(st.path, paths),
            uniforms=put(st.uniforms, u),
            corner=put(st.corner, w),
            kappa=put(st.kappa, kappa),
            y=put(st.y, y),
            ancestors=put(st.ancestors, anc),
            overflow=st.overflow.at[jnp.where(live, ev, n_ev)].max((n_new > n_slots) | deep_overflow, mode="drop"),
        )
        n = jnp.minimum(n_new, n_slots)
        # The q q̄ triangle leaves i = 0 (its first fold is next); a fold advances i.
        i = jnp.where(fresh, 0, i + 1)
        if model.first_emission_only:
            i = jnp.where(live, n, i)
        return ev, i, n, nxt, st

    def cond(carry):
        ev, i, n, nxt, _ = carry
        return (nxt < n_ev) | jnp.any((ev < n_ev) & (i < n))

    # Once the queue is empty, `body` changes nothing (every lane takes an event ≥ N,
    # whose rows are dropped), so it may run `unroll` times per test of `cond`: an
    # accelerator copies the loop's predicate to the host at every test.
    unroll = sizes.cascade_unroll

    def body_unrolled(carry):
        return jax.lax.fori_loop(0, unroll, lambda _, c: body(c), carry)

    # Slot indices, bins and depths in the narrowest integers that hold them: the
    # structure is the layout's bulk (int32 ancestors alone were 3 kB per event).
    small = _small_int(max(n_slots, depth_max + 1, nb + 1))
    empty = Structure(
        valid=jnp.zeros((n_ev, n_slots), bool),
        bin=jnp.zeros((n_ev, n_slots), small),
        parent=jnp.full((n_ev, n_slots), -1, small),
        depth=jnp.zeros((n_ev, n_slots), small),
        path=jnp.zeros((n_ev, n_slots), jnp.uint32),
        uniforms=jnp.full((n_ev, n_slots, 3), 0.5, dtype),
        corner=jnp.zeros((n_ev, n_slots), dtype),
        kappa=jnp.full((n_ev, n_slots), -1.0, dtype),
        y=jnp.zeros((n_ev, n_slots), dtype),
        ancestors=jnp.full((n_ev, n_slots, depth_max), -1, small),
        overflow=jnp.zeros(n_ev, bool),
    )
    zeros = jnp.zeros(lanes, jnp.int32)
    carry = (jnp.full(lanes, n_ev, jnp.int32), zeros, zeros, jnp.zeros((), jnp.int32), empty)
    _, _, _, _, st = jax.lax.while_loop(cond, body_unrolled if unroll > 1 else body, carry)
    return st
