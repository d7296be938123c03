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
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, UInt

from ._lund import sample_bin
from ._model import DiscreteQCD


class Emissions(NamedTuple):
    """Buffer of emissions of one event; `E = capacity − 2` slots, `D = key_depth`."""

    valid: Bool[Array, " E"]
    kappa: Float[Array, " E"]  # ln(k⊥²/Λ²)
    phi: Float[Array, " E"]  # azimuth in the emitting dipole's frame
    depth: Int[Array, " E"]  # 1 for the q q̄ triangle, d+1 in the fold of a depth-d gluon
    parent: Int[Array, " E"]  # slot of the parent gluon, −1 for the q q̄ triangle
    path: UInt[Array, " E"]  # path hash that names the bin's random numbers
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


def cascade(key: PRNGKeyArray, model: DiscreteQCD) -> Emissions:
    """Generate the emissions of one event (see module docs). Differentiable in the
    model's leaves through every emission's κ and rapidity."""
    dtype = model.alpha_s.dtype
    n_slots = model.capacity - 2
    depth_max = model.key_depth
    nb = model.bins_per_side
    bins = jnp.arange(-nb, nb + 1)
    kc = model.kappa_cut
    dy = model.delta_y
    big_l = model.log_s

    def draw(paths, base, a):
        u = jax.vmap(lambda p: slot_uniforms(key, p, dtype))(paths)
        kappa, y = jax.vmap(
            lambda b, uk, uy: sample_bin(b, base, a, dy, uk, uy, model.frozen_coupling)
        )(bins, u[:, 0], u[:, 1])
        return kappa, y, 2.0 * jnp.pi * u[:, 2]

    # The q q̄ triangle.
    root_paths = child_path(jnp.uint32(_ROOT_SEED), bins)
    kappa, y, phi = draw(root_paths, big_l, model.radiator(fold=False))
    emit = kappa > kc
    if model.first_emission_only:
        hardest = jnp.argmax(jnp.where(emit, kappa, -jnp.inf))
        emit = emit & (jnp.arange(bins.shape[0]) == hardest)

    levels = jnp.arange(depth_max)
    empty = Emissions(
        valid=jnp.zeros(n_slots, bool),
        kappa=jnp.full(n_slots, -1.0, dtype),
        phi=jnp.zeros(n_slots, dtype),
        depth=jnp.zeros(n_slots, jnp.int32),
        parent=jnp.full(n_slots, -1, jnp.int32),
        path=jnp.zeros(n_slots, jnp.uint32),
        coord=jnp.zeros((n_slots, depth_max), dtype),
        owner_kappa=jnp.zeros((n_slots, depth_max), dtype),
        overflow=jnp.zeros((), bool),
    )

    def append(buf, n, emit, kappa, y, phi, depth, parent, paths, coord, owner):
        pos = jnp.where(emit, n + jnp.cumsum(emit) - 1, n_slots)  # n_slots = dropped
        put = lambda arr, val: arr.at[pos].set(val, mode="drop")  # noqa: E731
        n_new = n + jnp.sum(emit)
        return buf._replace(
            valid=put(buf.valid, True),
            kappa=put(buf.kappa, kappa),
            phi=put(buf.phi, phi),
            depth=put(buf.depth, depth),
            parent=put(buf.parent, parent),
            path=put(buf.path, paths),
            coord=put(buf.coord, coord),
            owner_kappa=put(buf.owner_kappa, owner),
            overflow=buf.overflow | (n_new > n_slots),
        ), jnp.minimum(n_new, n_slots)

    nbins = bins.shape[0]
    root_coord = jnp.where(levels[None, :] == 0, y[:, None], 0.0)
    root_owner = jnp.where(levels[None, :] == 0, big_l, 0.0) * jnp.ones((nbins, 1), dtype)
    buf, n = append(
        empty, jnp.zeros((), jnp.int32), emit, kappa, y, phi,
        jnp.ones(nbins, jnp.int32), jnp.full(nbins, -1, jnp.int32), root_paths,
        root_coord, root_owner,
    )
    if model.first_emission_only:
        return buf

    a_fold = model.radiator(fold=True)

    def open_fold(i, carry):
        buf, n = carry
        parent_kappa = buf.kappa[i]
        d = buf.depth[i]
        paths = child_path(buf.path[i], bins)
        kappa, y, phi = draw(paths, parent_kappa, a_fold)
        emit = buf.valid[i] & (kappa > kc)
        # A fold nested deeper than the key can describe cannot be ordered: flag it.
        too_deep = d >= depth_max
        buf = buf._replace(overflow=buf.overflow | (too_deep & jnp.any(emit)))
        emit = emit & ~too_deep
        coord = jnp.where(levels[None, :] == d, y[:, None], buf.coord[i][None, :])
        owner = jnp.where(levels[None, :] == d, parent_kappa, buf.owner_kappa[i][None, :])
        return append(
            buf, n, emit, kappa, y, phi,
            jnp.full(nbins, d + 1, jnp.int32), jnp.full(nbins, i, jnp.int32), paths,
            coord, owner,
        )

    buf, _ = jax.lax.fori_loop(0, n_slots, open_fold, (buf, n))
    return buf
