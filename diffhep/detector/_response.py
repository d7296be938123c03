"""Response of the toy detector to a batch of events, reparameterised as g(params, ε)."""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jax.scipy.special import gammainc, ndtr
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

from .._events import Events
from .._safe import safe_div, safe_norm, safe_sqrt
from ._params import (
    PROFILE_B,
    DetectorParams,
    acceptance,
    calo_resolution,
    calo_resolution_terms,
    cluster_angular_resolution,
    cluster_energy_threshold,
    moliere_eta_phi,
    profile_shape,
    track_pt_threshold,
    track_resolution,
)
from .._precision import FULL

_ETA_CLIP = 1.0 - 1e-12  # |cos θ| bound: η stays finite (|η| ≲ 14) for particles along the beam
SHAPE_FLUCTUATION = 0.1
"""Relative shower-to-shower spread of the profile shape `a` and of the lateral width
(log-normal, `exp(0.1 ε)`); a toy choice of the size Grindhammer & Peters find."""


class DetectorNoise(NamedTuple):
    """Standard-normal draws ε for `n` events of `capacity` slots, one per particle and
    use. The response is a deterministic, differentiable function g(params, events, ε):
    reuse one `DetectorNoise` for common random numbers."""

    track: Float[Array, "n cap"]
    energy: Float[Array, "n cap"]
    eta: Float[Array, "n cap"]
    phi: Float[Array, "n cap"]
    charged_energy: Float[Array, "n cap"]
    shape: Float[Array, "n cap"]
    width: Float[Array, "n cap"]


def draw_noise(key: PRNGKeyArray, n_events: int, capacity: int, dtype=None) -> DetectorNoise:
    """Draw the ε of `DetectorNoise` for `n_events` events of `capacity` slots."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    keys = jr.split(key, len(DetectorNoise._fields))
    return DetectorNoise(*(jr.normal(k, (n_events, capacity), dtype) for k in keys))


class Reconstruction(eqx.Module):
    """Reconstructed objects of a batch of events (one track and one cluster per
    generator-level slot; see `diffhep.detector` for the charged/neutral assignment).

    **Fields:**
    - `tracks`: `(n, cap, 4)` track four-momenta (massless, GeV).
    - `track_weight`: `(n, cap)` soft acceptance of each track in [0, 1] (0 on padding).
    - `clusters`: `(n, cap, 4)` neutral calorimeter clusters (massless, GeV).
    - `cluster_weight`: `(n, cap)` soft acceptance of each cluster in [0, 1].
    - `track_charge`: `(n, cap)` int charge ±1 of each track (0 on padding).
    - `mask`: `(n, cap)` the input's padding mask.
    - `image`: `(n, n_eta, n_phi)` calorimeter cell energies in GeV, or `None`.

    All float fields are differentiable in the detector parameters and the input
    momenta.
    """

    tracks: Float[Array, "n cap 4"]
    track_weight: Float[Array, "n cap"]
    clusters: Float[Array, "n cap 4"]
    cluster_weight: Float[Array, "n cap"]
    track_charge: Int[Array, "n cap"]
    mask: Bool[Array, "n cap"]
    image: Float[Array, "n n_eta n_phi"] | None

    def energy_flow(self) -> Float[Array, "n cap 4"]:
        """Track + cluster of each slot, each scaled by its acceptance weight: one
        energy-flow object per generator-level particle (GeV). Event shapes of these
        equal those of `particles()` unless a track and its cluster fall in opposite
        hemispheres, and cost a quarter (for O(n³) thrust an eighth)."""
        return self.tracks * self.track_weight[..., None] + self.clusters * self.cluster_weight[..., None]

    def particles(self) -> Events:
        """Reconstructed particles as `Events` of capacity `2 cap`: tracks (pdg ±211)
        then clusters (pdg 22), momenta scaled by their acceptance weight (a soft
        selection: a particle at weight w counts as w of itself), mask = the padding."""
        mom = jnp.concatenate(
            [self.tracks * self.track_weight[..., None], self.clusters * self.cluster_weight[..., None]], axis=1
        )
        mask = jnp.concatenate([self.mask, self.mask], axis=1)
        pdg = jnp.concatenate([211 * self.track_charge, jnp.where(self.mask, 22, 0)], axis=1).astype(jnp.int32)
        weights = jnp.ones(mom.shape[0], mom.dtype)
        return Events(mom, mask, pdg, weights)


def _eta_phi(p: Array) -> tuple[Array, Array, Array, Array]:
    """η, φ, pT and |p| of `(..., 4)` momenta; finite with finite gradients everywhere."""
    pt = safe_norm(p[..., 1:3])
    mag = safe_norm(p[..., 1:4])
    cos_t = jnp.clip(safe_div(p[..., 3], mag), -_ETA_CLIP, _ETA_CLIP)
    eta = jnp.arctanh(cos_t)
    ok = pt > 0
    phi = jnp.where(ok, jnp.arctan2(jnp.where(ok, p[..., 2], 0.0), jnp.where(ok, p[..., 1], 1.0)), 0.0)
    return eta, phi, pt, mag


def _massless(e: Array, eta: Array, phi: Array) -> Array:
    """`(..., 4)` massless four-momentum of energy `e` GeV at (η, φ)."""
    st = 1.0 / jnp.cosh(eta)
    return jnp.stack([e, e * st * jnp.cos(phi), e * st * jnp.sin(phi), e * jnp.tanh(eta)], axis=-1)


def _gauss_bins(centre: Array, width: Array, edges: Array) -> Array:
    """`(k, m−1)`: the Gaussian N(centre_i, width_i²) integrated over the bins `edges`."""
    cdf = ndtr((edges[None, :] - centre[:, None]) / width[:, None])
    return cdf[:, 1:] - cdf[:, :-1]


def _deposit(energy: Array, eta: Array, phi: Array, width: Array, eta_edges: Array, phi_edges: Array) -> Array:
    """Sum of Gaussian deposits (`energy_i` GeV at (η_i, φ_i), width_i in η and φ) on
    the fixed grid `eta_edges × phi_edges`; φ wraps (images at φ ± 2π)."""
    weta = _gauss_bins(eta, width, eta_edges)
    wphi = sum(_gauss_bins(phi + s, width, phi_edges) for s in (-2 * math.pi, 0.0, 2 * math.pi))
    return jnp.einsum("k,ki,kj->ij", energy, weta, wphi, precision=FULL)


def _respond_event(
    eps: DetectorNoise,
    p: Array,
    mask: Array,
    pdg: Array,
    params: DetectorParams,
    image: tuple[int, int, float] | None,
):
    dt = p.dtype
    f_ch = params.charged_fraction
    eta, phi, pt, mag = _eta_phi(p)
    energy = p[:, 0]

    # Charged part: a massless track along the parton with momentum f_ch |p|, pT
    # smeared by the Gluckstern ⊕ multiple-scattering resolution.
    sig_t = track_resolution(params, f_ch * pt, eta)
    scale = 1.0 + sig_t * eps.track
    track_p3 = f_ch * p[:, 1:] * scale[:, None]
    tracks = jnp.concatenate([safe_norm(track_p3)[:, None], track_p3], axis=1)
    w_eta = acceptance(params.eta_max - jnp.abs(eta), 0.0, params.eta_slope)
    w_track = w_eta * acceptance(f_ch * pt * scale, track_pt_threshold(params), params.energy_slope)

    # Neutral part: an electromagnetic cluster of energy (1 − f_ch) E, energy and
    # direction smeared by the calorimeter resolutions (the mean leakage is
    # calibrated away; its fluctuation sits in the constant term).
    e_n = (1.0 - f_ch) * energy
    e_reco = e_n * (1.0 + calo_resolution(params, e_n) * eps.energy)
    sig_a = cluster_angular_resolution(params, e_n)
    eta_c = eta + sig_a * eps.eta
    phi_c = phi + sig_a * eps.phi
    clusters = _massless(e_reco, eta_c, phi_c)
    w_cluster = acceptance(params.eta_max - jnp.abs(eta_c), 0.0, params.eta_slope) * acceptance(
        e_reco, cluster_energy_threshold(params), params.energy_slope
    )

    m = mask.astype(dt)
    is_gluon = pdg == 21
    slot_sign = jnp.where(jnp.arange(p.shape[0]) % 2 == 0, 1, -1)
    charge = jnp.where(is_gluon, slot_sign, jnp.sign(pdg)).astype(jnp.int32)
    charge = jnp.where(mask, jnp.where(charge == 0, 1, charge), 0)

    img = None
    if image is not None:
        n_eta, n_phi, eta_range = image
        eta_edges = jnp.linspace(-eta_range, eta_range, n_eta + 1, dtype=dt)
        phi_edges = jnp.linspace(-math.pi, math.pi, n_phi + 1, dtype=dt)
        # Both parts shower electromagnetically in this toy; the charged energy is
        # measured by the calorimeter too (the image is raw detector data).
        e_ch_cal = f_ch * energy * (1.0 + calo_resolution(params, f_ch * energy) * eps.charged_energy)
        width = safe_sqrt(
            (moliere_eta_phi(params) * jnp.exp(SHAPE_FLUCTUATION * eps.width)) ** 2 + params.cell_size**2 / 12.0
        )
        dep = (e_reco + e_ch_cal) * m * w_eta
        img = _deposit(dep, eta, phi, width, eta_edges, phi_edges)
    return tracks * m[:, None], w_track * m, clusters * m[:, None], w_cluster * m, charge, img


def respond_with_noise(
    noise: DetectorNoise,
    events: Events,
    params: DetectorParams,
    *,
    image: tuple[int, int, float] | None = None,
) -> Reconstruction:
    """The detector response g(params, events, ε) for given standard-normal draws.

    **Arguments:**
    - `noise`: a `DetectorNoise` of shape `(n, cap)` (see `draw_noise`).
    - `events`: `Events` of `n` events with `cap` slots; momenta in GeV.
    - `params`: a `DetectorParams`.
    - `image`: `(n_eta, n_phi, eta_range)` (static) to also fill the calorimeter image
      on a fixed grid over |η| < eta_range, φ ∈ [−π, π); `None` (default) skips it.

    **Returns:** a `Reconstruction`. Deterministic and differentiable in `params`
    and `events.momenta` (pathwise derivative of the reparameterised response).
    """
    if noise.track.shape != events.mask.shape:
        raise ValueError(f"noise has shape {noise.track.shape}, events {events.mask.shape}; draw it with draw_noise")
    if image is not None:
        n_eta, n_phi, eta_range = image
        if int(n_eta) < 1 or int(n_phi) < 1 or not float(eta_range) > 0:
            raise ValueError(f"image=(n_eta, n_phi, eta_range) needs positive entries, got {image}")
        image = (int(n_eta), int(n_phi), float(eta_range))
    out = jax.vmap(_respond_event, in_axes=(0, 0, 0, 0, None, None))(
        noise, events.momenta, events.mask, events.pdg, params, image
    )
    return Reconstruction(*out[:4], out[4], events.mask, out[5])


def respond(
    key: PRNGKeyArray,
    events: Events,
    params: DetectorParams,
    *,
    image: tuple[int, int, float] | None = None,
) -> Reconstruction:
    """Simulate and reconstruct `events` in the detector `params`.

    Equivalent to `respond_with_noise(draw_noise(key, n, cap), events, params)`; see
    there for the arguments. Differentiable in `params` and momenta with `key` fixed.
    """
    params.check_values()
    noise = draw_noise(key, events.n_events, events.capacity, events.momenta.dtype)
    return respond_with_noise(noise, events, params, image=image)


# -- Per-particle calorimeter shower ------------------------------------------------


def particle_shower(
    key: PRNGKeyArray,
    energy: Float[ArrayLike, ""],
    params: DetectorParams,
    *,
    n_layers: int = 20,
    layer_x0: float = 2.0,
    n_cells: int = 15,
    pitch: float = 0.004,
) -> Float[Array, "n_layers n_cells n_cells"]:
    """The calorimeter shower of one photon of `energy` GeV, deposited into cells.

    **Model.** Longitudinal: the gamma profile dE/dt = E b (bt)^(a−1) e^(−bt)/Γ(a)
    (`profile_shape`), with `a` fluctuated log-normally (`exp(0.1 ε)`), integrated
    over layers of `layer_x0` X0 and truncated at `calo_depth` (deeper layers get
    nothing; differentiable in the depth through P(a, b·depth)). Sampling
    fluctuations: layer k gets E_k + a_stoch √E_k ε_k (a_stoch from
    `calo_resolution_terms`), so the total has variance a_stoch² E. Lateral: a
    Gaussian in η and φ of width (R_M/R)(0.3 + 0.7 t/(t + t_max)) at depth t (narrow
    core early, the Molière radius late; a toy form), fluctuated by `exp(0.1 ε)`,
    blurred by Δ²/12 (the cell size relaxation), integrated over a fixed local grid of
    `n_cells × n_cells` cells of `pitch` (η–φ units) centred on the shower axis.

    **Arguments:** `key` first; `energy` in GeV (scalar); `params`; static grid sizes.

    **Returns:** `(n_layers, n_cells, n_cells)` energies in GeV (visible energy divided
    by the sampling fraction). Differentiable in `energy` and `params` with `key` fixed.
    Batch with `jax.vmap` over keys and energies.
    """
    energy = jnp.asarray(energy)
    dt = energy.dtype
    k_shape, k_width, k_layers = jr.split(key, 3)
    a = profile_shape(energy) * jnp.exp(SHAPE_FLUCTUATION * jr.normal(k_shape, (), dt))
    t = jnp.arange(n_layers + 1, dtype=dt) * layer_x0
    t_trunc = jnp.minimum(t, params.calo_depth)
    cdf = gammainc(a, PROFILE_B * t_trunc)
    e_layer = energy * (cdf[1:] - cdf[:-1])
    a_stoch = calo_resolution_terms(params, energy)[0]
    e_layer = e_layer + a_stoch * safe_sqrt(e_layer) * jr.normal(k_layers, (n_layers,), dt)
    t_mid = 0.5 * (t[1:] + t[:-1])
    t_max = (a - 1.0) / PROFILE_B
    width = moliere_eta_phi(params) * (0.3 + 0.7 * t_mid / (t_mid + t_max + 1.0))
    width = width * jnp.exp(SHAPE_FLUCTUATION * jr.normal(k_width, (), dt))
    width = jnp.sqrt(width**2 + params.cell_size**2 / 12.0)
    edges = (jnp.arange(n_cells + 1, dtype=dt) - 0.5 * n_cells) * pitch
    w = _gauss_bins(jnp.zeros(n_layers, dt), width, edges)  # (layers, cells)
    return e_layer[:, None, None] * w[:, :, None] * w[:, None, :]
