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
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, UInt

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


def slot_uniforms(key: PRNGKeyArray, path: Array, dtype) -> Float[Array, "3"]:
    """Three uniforms in (0, 1) for the bin named `path` (counter-based, threefry)."""
    return jr.uniform(
        jr.fold_in(key, path), (3,), dtype=dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0
    )


def cascade_structure(key: PRNGKeyArray, model: DiscreteQCD) -> Structure:
    """Which bins of one event emit (no gradients; see module docs)."""
    model = jax.lax.stop_gradient(model)
    dtype = model.alpha_s.dtype
    n_slots = model.capacity - 2
    depth_max = model.key_depth
    nb = model.bins_per_side
    bins = jnp.arange(-nb, nb + 1, dtype=jnp.int32)
    nbins = bins.shape[0]
    kc = model.kappa_cut
    dy = model.delta_y

    def draw(paths, base, a):
        u = jax.vmap(lambda p: slot_uniforms(key, p, dtype))(paths)
        kappa, _, w = jax.vmap(
            lambda b, uk, uy: sample_bin(b, base, a, dy, uk, uy, model.frozen_coupling)
        )(bins, u[:, 0], u[:, 1])
        return kappa, u, w

    levels = jnp.arange(depth_max)

    def append(st, n, emit, kappa, u, w, depth, parent, paths, parent_anc):
        pos = jnp.where(emit, n + jnp.cumsum(emit, dtype=jnp.int32) - 1, n_slots)
        put = lambda arr, val: arr.at[pos].set(val, mode="drop")  # noqa: E731
        n_new = n + jnp.sum(emit, dtype=jnp.int32)
        anc = jnp.where(levels[None, :] == (depth - 1)[:, None], pos[:, None], parent_anc[None, :])
        return st._replace(
            ancestors=put(st.ancestors, anc),
            valid=put(st.valid, True),
            bin=put(st.bin, bins),
            parent=put(st.parent, parent),
            depth=put(st.depth, depth),
            path=put(st.path, paths),
            uniforms=put(st.uniforms, u),
            corner=put(st.corner, w),
            overflow=st.overflow | (n_new > n_slots),
        ), jnp.minimum(n_new, n_slots)

    empty = Structure(
        valid=jnp.zeros(n_slots, bool),
        bin=jnp.zeros(n_slots, jnp.int32),
        parent=jnp.full(n_slots, -1, jnp.int32),
        depth=jnp.zeros(n_slots, jnp.int32),
        path=jnp.zeros(n_slots, jnp.uint32),
        uniforms=jnp.full((n_slots, 3), 0.5, dtype),
        corner=jnp.zeros(n_slots, dtype),
        ancestors=jnp.full((n_slots, depth_max), -1, jnp.int32),
        overflow=jnp.zeros((), bool),
    )
    kappa_of = jnp.full(n_slots, -1.0, dtype)

    # The q q̄ triangle.
    root_paths = child_path(jnp.uint32(_ROOT_SEED), bins)
    kappa, u, w = draw(root_paths, model.log_s, model.radiator(fold=False))
    emit = kappa > kc
    if model.first_emission_only:
        hardest = jnp.argmax(jnp.where(emit, kappa, -jnp.inf))
        emit = emit & (jnp.arange(nbins) == hardest)
    pos = jnp.where(emit, jnp.cumsum(emit, dtype=jnp.int32) - 1, n_slots)
    kappa_of = kappa_of.at[pos].set(kappa, mode="drop")
    st, n = append(
        empty, jnp.zeros((), jnp.int32), emit, kappa, u, w,
        jnp.ones(nbins, jnp.int32), jnp.full(nbins, -1, jnp.int32), root_paths,
        jnp.full(depth_max, -1, jnp.int32),
    )
    if model.first_emission_only:
        return st

    a_fold = model.radiator(fold=True)

    def cond(carry):
        i, n, _, _ = carry
        return i < n

    def open_fold(carry):
        i, n, st, kappa_of = carry
        d = st.depth[i]
        paths = child_path(st.path[i], bins)
        kappa, u, w = draw(paths, kappa_of[i], a_fold)
        emit = kappa > kc
        # A fold nested deeper than the key can describe cannot be ordered: flag it.
        too_deep = d >= depth_max
        st = st._replace(overflow=st.overflow | (too_deep & jnp.any(emit)))
        emit = emit & ~too_deep
        pos = jnp.where(emit, n + jnp.cumsum(emit, dtype=jnp.int32) - 1, n_slots)
        kappa_of = kappa_of.at[pos].set(kappa, mode="drop")
        st, n = append(
            st, n, emit, kappa, u, w,
            jnp.full(nbins, d + 1, jnp.int32), jnp.full(nbins, i, jnp.int32), paths,
            st.ancestors[i],
        )
        return i + 1, n, st, kappa_of

    _, _, st, _ = jax.lax.while_loop(cond, open_fold, (jnp.zeros((), jnp.int32), n, st, kappa_of))
    return st


def emission_values(model: DiscreteQCD, st: Structure, n_used: int | None = None) -> Emissions:
    """Recompute κ, rapidity and the ancestry coordinates of every emission in `st`,
    differentiably in the model's leaves.

    Slots are filled breadth first, so a parent always precedes its children: one
    scan over the slots, each reading its parent's κ as its triangle's base, gives
    every κ with the exact chain-rule dependence on the parents. `n_used` (static)
    bounds the scan when the caller knows how many slots any event uses.
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

    xs = (jnp.arange(n_used), st.bin[:n_used], st.parent[:n_used], st.uniforms[:n_used], st.corner[:n_used])
    kappa, y = jax.lax.scan(one, jnp.full(n_slots, -1.0, dtype), xs)
    y = jnp.concatenate([y, jnp.zeros(n_slots - n_used, dtype)])
    valid = st.valid & (jnp.arange(n_slots) < n_used)
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
