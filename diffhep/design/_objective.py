"""Design objectives: physics reach through shower → detector → observable → likelihood.

A *simulator call* is one evaluation of the chain (detector response, thrust, soft
histogram, likelihood) on one Monte Carlo sample of `n_events` showered events,
with or without its gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from .. import observables, shower
from .._events import Events
from .._precision import FULL
from .._safe import safe_div, safe_sqrt
from ..detector import BOX, LEAVES, DetectorParams, DetectorNoise, cost, draw_noise, respond_with_noise

OBJECTIVES = ("alphas", "jer")
"""`alphas`: 100 σ(α_s)/α_s in %, the expected relative uncertainty on α_s(M_Z) from
the shape of a detector-level thrust distribution of `n_data` produced events (Fisher
information of the binned likelihood with the normalisation profiled; events pass a
soft visible-energy selection). `jer`: the hemisphere ("jet") energy
resolution in %, the RMS of E_reco/E_true − 1 over the two thrust hemispheres of each
event (bias from acceptance losses included); it drives the top-mass-like
measurements that reconstruct jet energies."""


@dataclass(frozen=True, eq=False)
class DesignProblem:
    """What to optimise and how it is estimated.

    **Fields:**
    - `objective`: a name in `OBJECTIVES`.
    - `free`: names of the design parameters that move (others stay at `base`).
    - `box`: allowed `(low, high)` per free parameter (default `detector.BOX`).
    - `base`: the `DetectorParams` of the fixed parameters and the start point.
    - `cost_weight`: w ≥ 0 of the cost term; the total is J_phys + w · `detector.cost`.
    - `n_events`: showered events per simulator call (static).
    - `n_data`: expected data events of the α_s measurement.
    - `edges`: bin edges in τ = 1 − T; `bandwidth`: the soft-histogram kernel width
      as a fraction of the narrowest bin.
    - `model`: the `shower.DiscreteQCD` at the true α_s.
    """

    objective: str = "alphas"
    free: tuple[str, ...] = ("eta_max", "calo_depth")
    box: dict = field(default_factory=lambda: dict(BOX))
    base: DetectorParams = field(default_factory=DetectorParams)
    cost_weight: float = 0.05
    n_events: int = 1000
    n_data: float = 1e6
    edges: tuple[float, ...] = tuple(np.round(np.linspace(0.0, 0.3, 16), 6))
    bandwidth: float = 1.0
    model: shower.DiscreteQCD = field(default_factory=shower.DiscreteQCD)

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective={self.objective!r} is not one of {', '.join(OBJECTIVES)}")
        if not (self.cost_weight >= 0 and math.isfinite(self.cost_weight)):
            raise ValueError(f"cost_weight={self.cost_weight} is outside the allowed range [0, inf)")
        if not self.free:
            raise ValueError("free must name at least one design parameter")
        for name in self.free:
            if name not in LEAVES:
                raise ValueError(f"unknown design parameter {name!r}; known: {', '.join(LEAVES)}")
            lo, hi = self.box[name]
            if not lo < hi:
                raise ValueError(f"box of {name} must have low < high, got ({lo}, {hi})")
            # Every point of the box must be a physical design.
            for edge in (lo, hi):
                eqx.tree_at(lambda p: getattr(p, name), self.base, jnp.asarray(edge, self.base.b_field.dtype)).check_values()
            v = float(getattr(self.base, name))
            if not lo <= v <= hi:
                raise ValueError(f"start value {name}={v} is outside its box [{lo}, {hi}]")
        if int(self.n_events) < 2:
            raise ValueError(f"n_events must be >= 2, got {self.n_events}")
        if not self.n_data > 0:
            raise ValueError(f"n_data must be > 0, got {self.n_data}")
        if len(self.edges) < 3 or np.any(np.diff(self.edges) <= 0):
            raise ValueError(f"edges must be >= 3 strictly increasing values, got {self.edges}")
        object.__setattr__(self, "_shapes", {})

    def _key(self) -> tuple:
        # Equal problems share compiled code: jitted objectives take the problem as a
        # static argument, hashed by value (the start point and the model are part of
        # the value since the code closes over them).
        leaves = lambda m: tuple(float(x) for x in jax.tree.leaves(m))  # noqa: E731
        return (
            self.objective, self.free, tuple(tuple(self.box[n]) for n in self.free), self.cost_weight,
            int(self.n_events), float(self.n_data), tuple(self.edges), self.bandwidth,
            jax.tree.structure(self.base), leaves(self.base), jax.tree.structure(self.model), leaves(self.model),
        )

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    # -- the box reparameterisation ---------------------------------------------

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array([self.box[n][0] for n in self.free])
        hi = np.array([self.box[n][1] for n in self.free])
        return lo, hi

    def to_params(self, theta: Array) -> DetectorParams:
        """`(k,)` values of the free parameters (physical units) → `DetectorParams`."""
        leaves = [theta[i].astype(self.base.b_field.dtype) for i in range(len(self.free))]
        return eqx.tree_at(lambda p: [getattr(p, n) for n in self.free], self.base, leaves)

    def theta_from_u(self, u: Array) -> Array:
        """Unconstrained `u` → θ = low + (high − low) σ(u), inside the box."""
        lo, hi = self.bounds()
        return jnp.asarray(lo) + jnp.asarray(hi - lo) * jax.nn.sigmoid(u)

    def u_from_theta(self, theta) -> np.ndarray:
        lo, hi = self.bounds()
        x = np.clip((np.asarray(theta, float) - lo) / (hi - lo), 1e-9, 1 - 1e-9)
        return np.log(x) - np.log1p(-x)

    def start(self) -> np.ndarray:
        return np.array([float(getattr(self.base, n)) for n in self.free])


class Sample(NamedTuple):
    """One Monte Carlo sample with its tangent in α_s: showered events (discrete content
    fixed), d(momenta, weights)/dα_s from `jax.jvp` of `shower.realize`, the detector
    noise ε, the multiplicity buckets for thrust, and the true thrust axes."""

    events: Events
    d_momenta: Array
    d_weights: Array
    noise: DetectorNoise
    buckets: observables.MultiplicityBuckets
    axis: Array


def draw_sample(key: PRNGKeyArray, problem: DesignProblem) -> Sample:
    """Shower `problem.n_events` events and draw their detector noise (one simulator
    sample; reuse it for common random numbers)."""
    k_shower, k_noise = jr.split(key)
    model = problem.model
    shapes = problem._shapes
    lay = shower.layout(k_shower, model, problem.n_events, min_steps=shapes.get("n_steps", 24))

    events, dmom, dw = shower.realize_jvp(lay, model)
    mom, mask = events.momenta, events.mask
    # Shapes only grow, so that a loop over fresh samples compiles a few times at most
    # (each compilation of the objective and its gradient: 10-20 s on a CPU). Small
    # samples gain and lose their rare multiplicities from step to step, and their
    # bucket counts fluctuate by √count: every multiplicity gets a bucket of at least
    # 32 events (all of a smaller sample), and each bucket 4σ of headroom. Measured,
    # 24 events per step (the tests), 16 steps: 4 compilations with the buckets sized
    # for the first sample, 2 with the 4σ headroom and a floor of n/8 events, 1 now.
    granule = max(1, problem.n_events // 8)
    buckets = observables.MultiplicityBuckets(
        mask, granularity=granule, min_rows=shapes.get("rows"), sigmas=4.0,
        floor_rows=min(problem.n_events, max(granule, 32)),
    )
    # Built with min_rows: at least the old rows of every size kept (see the template's).
    shapes.update(n_steps=lay.n_steps, rows={**shapes.get("rows", {}), **buckets.rows})
    noise = draw_noise(k_noise, events.n_events, events.capacity, mom.dtype)
    axis = observables.thrust_axis(mom, mask)
    return Sample(events, dmom, dw, noise, buckets, axis)


VISIBLE_CUT = 0.5
"""Event selection of the α_s measurement: visible energy Σ E_reco > 0.5 √s, a sigmoid
of slope 0.05 √s (LEP event-shape analyses cut at about this fraction)."""


def _tau(params: DetectorParams, s: Sample, momenta: Array, weights: Array) -> tuple[Array, Array]:
    """Detector-level τ = 1 − T of each event and its soft selection weight."""
    ev = Events(momenta, s.events.mask, s.events.pdg, weights)
    flow = respond_with_noise(s.noise, ev, params).energy_flow()
    tau = s.buckets.apply(lambda p, m: 1.0 - observables.thrust(p, m), flow, s.events.mask)
    sqrt_s = jnp.sum(momenta[..., 0], axis=-1)
    selected = jax.nn.sigmoid((jnp.sum(flow[..., 0], axis=-1) / sqrt_s - VISIBLE_CUT) / 0.05)
    return tau, selected


def alphas_uncertainty(params: DetectorParams, s: Sample, problem: DesignProblem) -> Array:
    """Expected σ(α_s)/α_s in % from the shape of the detector-level τ = 1 − T
    distribution.

    ν_b(α_s) = n_data × (soft-histogram fraction of the sample in bin b), each event
    weighted by its soft selection `VISIBLE_CUT` (a design that loses energy loses
    events: the expected number of selected events N_sel = Σ_b ν_b scales with the
    acceptance). The outer bins take the under- and overflow, so every selected event
    is counted. dν/dα_s comes from one `jax.jvp` through detector → thrust → histogram
    along the shower's tangent d(events)/dα_s.

    Only the shape is used: the normalisation is a free parameter profiled away (event-
    shape analyses fit 1/σ dσ/dτ; the selected rate depends on α_s through the
    acceptance, which a luminosity or σ_had uncertainty would swamp). The profiled
    Fisher information is

        I = dνᵀ M dν,   M = diag(1/ν) − 1 1ᵀ/Σν   (multinomial information of N_sel events).

    dν is a Monte Carlo sum over `n_events` events, so E[dνᵀ M dν] = μᵀ M μ + tr(M V)
    with V the covariance of the sum; the MC term tr(M V) (estimated from the per-event
    contributions) is subtracted, which removes the upward bias of the plug-in estimate
    (60 % of I at 10³ events with 15 bins of bandwidth 0.5). The subtraction is capped
    at 90 % of the plug-in value so that I stays positive on tiny samples.
    σ = I^(−1/2). Differentiable in `params`.
    """
    edges = jnp.asarray(problem.edges, s.events.momenta.dtype)
    h = problem.bandwidth * float(np.min(np.diff(problem.edges)))
    n = s.events.n_events

    def per_event(mom, w):
        tau, selected = _tau(params, s, mom, w)
        return (w * selected)[:, None] * observables.soft_bin_weights(tau, edges, h, flow=True)

    # The shape information is invariant under ν → c(α_s) ν, so the α_s-dependence of
    # the normalisation Σw may be dropped from the tangent.
    scale = problem.n_data / jnp.sum(s.events.weights)
    a, da = jax.jvp(per_event, (s.events.momenta, s.events.weights), (s.d_momenta, s.d_weights))
    nu = scale * jnp.sum(a, axis=0)
    g = scale * da  # per-event contributions to dν, (n, b)
    dnu = jnp.sum(g, axis=0)
    inv = safe_div(1.0, nu)
    total = jnp.sum(nu)
    plug_in = jnp.sum(dnu**2 * inv) - jnp.sum(dnu) ** 2 / total
    centred = g - jnp.mean(g, axis=0, keepdims=True)
    v_diag = n / (n - 1) * jnp.sum(centred**2, axis=0)
    v_sum = n / (n - 1) * jnp.sum(jnp.sum(centred, axis=1) ** 2)
    mc_term = jnp.sum(v_diag * inv) - v_sum / total
    fisher = plug_in - jnp.minimum(mc_term, 0.9 * plug_in)
    return 100.0 * safe_div(1.0, safe_sqrt(fisher)) / problem.model.alpha_s


def hemisphere_energy_resolution(params: DetectorParams, s: Sample, problem: DesignProblem) -> Array:
    """RMS of E_reco/E_true − 1 over both thrust hemispheres of each event, in %.

    Hemispheres are fixed by the generator-level thrust axis; a reconstructed object
    belongs to the hemisphere of its parton. Differentiable in `params`."""
    ev = s.events
    flow = respond_with_noise(s.noise, ev, params).energy_flow()
    side = (jnp.einsum("nci,ni->nc", ev.momenta[..., 1:], s.axis, precision=FULL) > 0) & ev.mask
    e_true = jnp.stack([jnp.sum(jnp.where(side, ev.momenta[..., 0], 0.0), 1), jnp.sum(jnp.where(~side & ev.mask, ev.momenta[..., 0], 0.0), 1)], 1)
    e_reco = jnp.stack([jnp.sum(jnp.where(side, flow[..., 0], 0.0), 1), jnp.sum(jnp.where(~side & ev.mask, flow[..., 0], 0.0), 1)], 1)
    r = safe_div(e_reco, e_true, default=1.0) - 1.0
    return 100.0 * jnp.sqrt(jnp.mean(r**2))


def physics_term(params: DetectorParams, s: Sample, problem: DesignProblem) -> Array:
    if problem.objective == "alphas":
        return alphas_uncertainty(params, s, problem)
    return hemisphere_energy_resolution(params, s, problem)


def objective(theta: Array, s: Sample, problem: DesignProblem) -> Array:
    """J(θ) = physics term (in %) + cost_weight · `detector.cost`, for the free
    parameters θ in physical units."""
    params = problem.to_params(theta)
    return physics_term(params, s, problem) + problem.cost_weight * cost(params)


@eqx.filter_jit
def objective_value(theta, s, problem):
    return objective(theta, s, problem)


@eqx.filter_jit
def objective_and_grad_u(u, s, problem):
    """J and dJ/du at the unconstrained point `u` (one simulator call)."""
    return jax.value_and_grad(lambda v: objective(problem.theta_from_u(v), s, problem))(u)
