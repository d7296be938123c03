"""The shower of one event, and its batched, jit-compiled public entry points."""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._events import Events
from ._cascade import Emissions, cascade
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
    """One showered event with `capacity` slots: q, q̄, then the gluon slots."""

    momenta: Float[Array, "capacity 4"]
    mask: Bool[Array, " capacity"]
    pdg: Int[Array, " capacity"]
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


def _kinematics(model: DiscreteQCD, em: Emissions, q: Array, qbar: Array) -> tuple[Array, Array]:
    """Apply the emissions in decreasing κ; return momenta `(capacity, 4)` and the
    hardest-emission weight."""
    dtype = q.dtype
    n_em = model.capacity - 2
    n_part = model.capacity
    depth_max = model.key_depth
    lam = model.lambda_qcd
    big_l = model.log_s
    kc = model.kappa_cut

    # Parton tables: index 0 = q, 1 = q̄, 2 + i = emission slot i.
    zeros_d = jnp.zeros((2, depth_max), dtype)
    depth = jnp.concatenate([jnp.zeros(2, jnp.int32), em.depth])
    coord = jnp.concatenate([zeros_d, em.coord])
    owner = jnp.concatenate([zeros_d.at[:, 0].set(big_l), em.owner_kappa])
    keys = keys_from_coords(coord, depth)
    keys = keys.at[0, 0].set(-_BIG0).at[1, 0].set(_BIG0)
    kappa = jnp.concatenate([jnp.stack([big_l, big_l]), em.kappa])
    is_gluon = jnp.arange(n_part) >= 2

    order = jnp.argsort(jnp.where(em.valid, -em.kappa, jnp.inf))
    p0 = jnp.zeros((n_part, 4), dtype).at[0].set(q).at[1].set(qbar)
    chain0 = jnp.zeros(n_part, jnp.int32).at[1].set(1)
    present0 = jnp.zeros(n_part, bool).at[:2].set(True)
    slots = jnp.arange(n_part)

    def parton(i, k, with_fold):
        fold = jnp.where(with_fold & is_gluon[i], 0.5 * (kappa[i] - k), 0.0)
        return dict(key=keys[i], coord=coord[i], owner=owner[i], depth=depth[i], fold=fold)

    def step(j, carry):
        p, chain, n_chain, present, weight = carry
        slot = order[j]
        valid = em.valid[slot]
        e = (slot + 2).astype(jnp.int32)
        k = em.kappa[slot]
        rank = jnp.sum(present & lex_less(keys, keys[e]))
        left = chain[rank - 1]
        right = chain[rank]
        d_left = lund_distance(parton(left, k, True), parton(e, k, False), k)
        d_right = lund_distance(parton(e, k, False), parton(right, k, True), k)
        d_left = jnp.maximum(d_left, 0.0)
        d_right = jnp.maximum(d_right, 0.0)
        r = jnp.where(d_left + d_right > 0, d_left / jnp.where(d_left + d_right > 0, d_left + d_right, 1.0), 0.5)

        pa, pb = p[left], p[right]
        sd = jnp.maximum(2.0 * (pa[0] * pb[0] - jnp.dot(pa[1:], pb[1:])), jnp.finfo(dtype).tiny)
        log_sd = jnp.log(sd / lam**2)
        k_eff = jnp.minimum(k, log_sd - LOG4)  # stay inside the dipole's phase space
        y_half = half_width(log_sd, k_eff)
        yd = (2.0 * r - 1.0) * y_half
        kt = lam * jnp.exp(0.5 * k_eff) * jnp.sqrt(smoothstep((k - kc) / model.softness))
        pa2, pg, pb2, xa, xb = dipole_emission(pa, pb, kt, yd, em.phi[slot])

        if model.me_correction:
            # Hardest emission: exact O(α_s) matrix element, and the Jacobian of the map
            # from the Lund triangle (half width (L−κ)/2) to exact phase space (Y_d).
            first = valid & (j == 0)
            jac = y_half / jnp.maximum(0.5 * (big_l - k), jnp.finfo(dtype).tiny)
            me = 0.5 * (xa**2 + xb**2)
            weight = jnp.where(first, weight * jac * me, weight)
        p = jnp.where(valid, p.at[left].set(pa2).at[e].set(pg).at[right].set(pb2), p)
        shifted = jnp.where(slots > rank, jnp.roll(chain, 1), chain).at[rank].set(e)
        chain = jnp.where(valid, shifted, chain)
        n_chain = n_chain + valid.astype(jnp.int32)
        present = present.at[e].set(present[e] | valid)
        return p, chain, n_chain, present, weight

    carry = (p0, chain0, jnp.asarray(2, jnp.int32), present0, jnp.ones((), dtype))
    p, _, _, _, weight = jax.lax.fori_loop(0, n_em, step, carry)
    return p, weight


def shower_event(key: PRNGKeyArray, model: DiscreteQCD) -> ShowerEvent:
    """Shower one e+e- → q q̄ event. Pure in `(key, model)`: with `key` fixed, every
    momentum and the weight are differentiable functions of the model's leaves
    (`alpha_s`, `kt_min`, `delta_y`). Lift over events with `jax.vmap`."""
    dtype = model.alpha_s.dtype
    k_born, k_shower = jr.split(key)
    q, qbar, flavour = _born(k_born, model, dtype)
    em = cascade(k_shower, model)
    p, weight = _kinematics(model, em, q, qbar)
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
    mask = jnp.concatenate([jnp.ones(2, bool), em.valid])
    p = jnp.where(mask[:, None], p, 0.0)
    pdg = jnp.concatenate([jnp.stack([flavour, -flavour]), jnp.full(model.capacity - 2, 21, jnp.int32)])
    pdg = jnp.where(mask, pdg, 0)
    return ShowerEvent(p, mask, pdg, weight, em.overflow)


@eqx.filter_jit
def _sample_arrays(key: PRNGKeyArray, model: DiscreteQCD, n_events: int) -> ShowerEvent:
    keys = jr.split(key, n_events)
    return jax.vmap(shower_event, in_axes=(0, None))(keys, model)


def simulate(key: PRNGKeyArray, model: DiscreteQCD, n_events: int) -> tuple[Events, Bool[Array, " n"]]:
    """Shower `n_events` events; return `(Events, overflow)` with the per-event overflow
    flag. jit-compiled once per (model static fields, n_events)."""
    if n_events < 1:
        raise ValueError(f"n_events must be >= 1, got {n_events}")
    model.check_values()
    out = _sample_arrays(key, model, int(n_events))
    return Events(out.momenta, out.mask, out.pdg, out.weight), out.overflow


def sample(key: PRNGKeyArray, model: DiscreteQCD, n_events: int) -> Events:
    """Shower `n_events` e+e- → q q̄ events (see `diffhep.shower` for the model).

    **Arguments:**
    - `key`: a JAX PRNG key; event i uses `jax.random.split(key, n_events)[i]`.
    - `model`: a `DiscreteQCD`.
    - `n_events`: number of events (static).

    **Returns:** `Events` with `capacity` slots: q, q̄, then gluons (masked), momenta
    in GeV, weights = the hardest-emission matrix-element weight. Differentiable in the
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
